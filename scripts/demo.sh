#!/usr/bin/env bash
# The README's demo command: installs what it needs (cached under
# $HOME/.cache/freshen), builds freshen, starts versitygw with S3 event
# notifications pointed at `freshen run`, uploads the sample corpus,
# searches, edits a document and shows the new answer arriving; then stays
# up until Ctrl-C. Idempotent: every run starts from a clean .demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_go
ensure_versitygw
log "building freshen"
go build -o bin/freshen ./cmd/freshen
go build -o bin/freshen-demo ./examples/demo
exec bin/freshen-demo --freshen bin/freshen --versitygw "$FRESHEN_CACHE/bin/versitygw" --corpus examples/corpus --dir .demo "$@"
