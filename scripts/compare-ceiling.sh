#!/usr/bin/env bash
# Compares the pipeline ceiling (objects/s with a zero-cost embedder, the
# real extractor, chunker, SQLite ledger and embedded index) of two
# revisions in one run, alternating them so that the machine's noise hits
# both alike:
#
#   ./scripts/compare-ceiling.sh BASE [HEAD] [ROUNDS]
#
# Revisions whose bench lacks the `-child ceiling` mode get it patched in
# (it only calls the suite's own pipelineCeiling).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_go
base=${1:?usage: compare-ceiling.sh BASE [HEAD] [ROUNDS]}
head=${2:-HEAD}
rounds=${3:-3}
tmp=$(mktemp -d)
trap 'git worktree remove --force "$tmp/a" >/dev/null 2>&1 || true; git worktree remove --force "$tmp/b" >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
build() { # rev dir out
	git worktree add --detach "$2" "$1" >/dev/null 2>&1
	if ! grep -q '"ceiling"' "$2/bench/reconcile.go"; then
		perl -0pi -e 's/(\tswitch name \{\n)/$1\tcase "ceiling":\n\t\tobjs, _, err := pipelineCeiling(ctx, false)\n\t\tif err != nil {\n\t\t\treturn err\n\t\t}\n\t\treturn json.NewEncoder(os.Stdout).Encode(map[string]float64{"objects_per_s": objs})\n/' "$2/bench/reconcile.go"
	fi
	(cd "$2" && go build -o "$3" ./bench)
}
build "$base" "$tmp/a" "$tmp/bench-a"
build "$head" "$tmp/b" "$tmp/bench-b"
table="$tmp/table.md"
{
	echo "| round | $base (objects/s) | $head (objects/s) | ratio |"
	echo "|---|---|---|---|"
	for i in $(seq 1 "$rounds"); do
		a=$(cd "$tmp" && ./bench-a -child ceiling | sed 's/.*: *\([0-9.]*\).*/\1/')
		b=$(cd "$tmp" && ./bench-b -child ceiling | sed 's/.*: *\([0-9.]*\).*/\1/')
		printf '| %d | %.0f | %.0f | %.2f |\n' "$i" "$a" "$b" "$(echo "$b / $a" | bc -l)"
	done
} | tee "$table"
# Keep the table in BENCHMARKS.md, under its own heading (the bench
# program keeps sections it did not run).
python3 - "$table" "$base" "$head" "$rounds" <<'PY'
import re, sys
table, base, head, rounds = open(sys.argv[1]).read(), sys.argv[2], sys.argv[3], sys.argv[4]
title = "## Pipeline ceiling: two revisions"
body = (f"{title}\n\nThe pipeline ceiling (zero-cost embedder; real extractor, chunker, SQLite ledger and embedded index; "
        f"2,000 objects from memory) of `{base}` and `{head}`, alternated in one run so that the machine's noise hits both alike. "
        f"Reproduce with `./scripts/compare-ceiling.sh {base} {head} {rounds}`.\n\n{table}\n")
doc = open("BENCHMARKS.md").read()
if title in doc:
    doc = re.sub(re.escape(title) + r".*?(?=\n## |\Z)", body.rstrip("\n") + "\n", doc, flags=re.S)
else:
    doc = doc.rstrip("\n") + "\n\n" + body
open("BENCHMARKS.md", "w").write(doc)
PY
