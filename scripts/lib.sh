# Shared helpers for the project's scripts. Source it; do not run it.
# Everything installed lands in $FRESHEN_CACHE (default ~/.cache/freshen)
# outside the checkout, so CI's clean clones reuse it.

FRESHEN_CACHE="${FRESHEN_CACHE:-$HOME/.cache/freshen}"
export FRESHEN_CACHE
mkdir -p "$FRESHEN_CACHE/bin"
export PATH="$FRESHEN_CACHE/bin:$PATH"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

ensure_go() {
  if ! command -v go >/dev/null 2>&1; then
    if [ -x /usr/local/go/bin/go ]; then
      export PATH="/usr/local/go/bin:$PATH"
    else
      echo "Go is not installed: install Go 1.26 or newer (https://go.dev/dl/)" >&2
      exit 1
    fi
  fi
}

VERSITYGW_VERSION="${VERSITYGW_VERSION:-v1.8.0}"

# ensure_versitygw installs the pinned versitygw (an S3-compatible server
# with real event notifications) into $FRESHEN_CACHE/bin, once.
ensure_versitygw() {
  local bin="$FRESHEN_CACHE/bin/versitygw" stamp="$FRESHEN_CACHE/bin/.versitygw-$VERSITYGW_VERSION"
  if [ -x "$bin" ] && [ -f "$stamp" ]; then
    return 0
  fi
  log "installing versitygw $VERSITYGW_VERSION into $FRESHEN_CACHE/bin (about 2 minutes, once)"
  # Build outside the checkout so the project's go.mod is not involved.
  (cd / && GOBIN="$FRESHEN_CACHE/bin" GOFLAGS=-mod=mod go install "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION")
  touch "$stamp"
}

# ensure_peers installs the benchmark peers (bench/peers: LangChain.js and
# LlamaIndex.TS, pinned by package-lock.json) into a cache directory keyed
# by the lock file, outside the checkout, and sets PEERS_DIR.
ensure_peers() {
  local lock_hash
  lock_hash=$(cat bench/peers/package-lock.json bench/peers/package.json | sha256sum | cut -c1-12)
  PEERS_DIR="$FRESHEN_CACHE/peers-$lock_hash"
  if [ ! -f "$PEERS_DIR/.installed" ]; then
    log "installing the benchmark peers (npm ci) into $PEERS_DIR"
    mkdir -p "$PEERS_DIR"
    cp bench/peers/package.json bench/peers/package-lock.json "$PEERS_DIR/"
    (cd "$PEERS_DIR" && npm ci --no-audit --no-fund --loglevel=error)
    touch "$PEERS_DIR/.installed"
  fi
  # The scripts themselves are always fresh from the checkout.
  cp bench/peers/*.mjs "$PEERS_DIR/"
}
