#!/usr/bin/env bash
# Regenerates ../reference.json with the TF.js reference. Needs Node and the
# npm registry; the result is committed so the tests need neither.
set -euo pipefail
cd "$(dirname "$0")"
npm install --no-save --no-audit --no-fund --silent
node gen.js
