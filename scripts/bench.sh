#!/usr/bin/env bash
# The README's benchmark command: installs what the suites need (versitygw,
# PGlite, weaviate-server, and the npm peers LangChain.js and LlamaIndex.TS, cached under
# $HOME/.cache/freshen), then runs `go run ./bench` with the given flags
# (default: the whole suite; --quick for a 2-minute version). It rewrites
# BENCHMARKS.md, bench/results/*.png and bench/results/summary.json.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_go
ensure_versitygw
ensure_pglite
ensure_weaviate
ensure_postgres
ensure_peers
export FRESHEN_PEERS_DIR="$PEERS_DIR"
exec go run ./bench "$@"
