#!/usr/bin/env bash
# The README's test command: installs what the tests need (cached under
# $HOME/.cache/freshen, so a second run installs nothing) and runs every
# test. Idempotent; safe on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_go
ensure_versitygw
ensure_pglite
ensure_weaviate
ensure_postgres
ensure_chromium
go mod download
go vet ./...
# -count=1: integration tests talk to real servers; never trust a cached pass.
go test -count=1 -timeout 30m "$@" ./...
