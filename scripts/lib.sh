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

WEAVIATE_VERSION="${WEAVIATE_VERSION:-v1.35.2}"

# ensure_weaviate installs the pinned weaviate-server (a clustered vector
# database, for the index/weaviate tests) into $FRESHEN_CACHE/bin, once.
ensure_weaviate() {
  local bin="$FRESHEN_CACHE/bin/weaviate-server" stamp="$FRESHEN_CACHE/bin/.weaviate-$WEAVIATE_VERSION"
  if [ -x "$bin" ] && [ -f "$stamp" ]; then
    return 0
  fi
  log "installing weaviate-server $WEAVIATE_VERSION into $FRESHEN_CACHE/bin (about 3 minutes, once)"
  (cd / && GOBIN="$FRESHEN_CACHE/bin" GOFLAGS=-mod=mod go install "github.com/weaviate/weaviate/cmd/weaviate-server@$WEAVIATE_VERSION")
  touch "$stamp"
}

PGLITE_VERSION="${PGLITE_VERSION:-0.5.14}"
PGLITE_SOCKET_VERSION="${PGLITE_SOCKET_VERSION:-0.2.17}"

# ensure_pglite installs PGlite (PostgreSQL in WebAssembly, with pgvector)
# and its Postgres-wire server into $FRESHEN_CACHE/pglite, once, and a
# launcher $FRESHEN_CACHE/bin/pglite-server that the pgvector tests start.
ensure_pglite() {
  local dir="$FRESHEN_CACHE/pglite-$PGLITE_VERSION-$PGLITE_SOCKET_VERSION" bin="$FRESHEN_CACHE/bin/pglite-server"
  if ! command -v node >/dev/null 2>&1; then
    log "installing Node.js (apt) for PGlite"
    apt_install nodejs npm
  fi
  if [ ! -f "$dir/.installed" ]; then
    log "installing PGlite $PGLITE_VERSION with pgvector into $dir (npm, once)"
    mkdir -p "$dir"
    (cd "$dir" && { [ -f package.json ] || echo '{"private":true}' > package.json; } &&
      npm install --no-audit --no-fund --loglevel=error -E "@electric-sql/pglite@$PGLITE_VERSION" "@electric-sql/pglite-socket@$PGLITE_SOCKET_VERSION")
    touch "$dir/.installed"
  fi
  cat > "$bin.tmp" <<LAUNCH
#!/bin/sh
# Serves one PGlite database with pgvector over the Postgres protocol:
# pglite-server -h 127.0.0.1 -p PORT [-d DATADIR]
exec node "$dir/node_modules/@electric-sql/pglite-socket/dist/scripts/server.js" -e @electric-sql/pglite-pgvector:vector -m 64 "\$@"
LAUNCH
  chmod +x "$bin.tmp" && mv "$bin.tmp" "$bin"
}

# apt_install installs Debian packages, as root or through sudo.
apt_install() {
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@"
}

# ensure_postgres installs Debian's PostgreSQL 15 server (the tests start
# their own clusters with initdb; nothing runs as a system service).
ensure_postgres() {
  if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1; then
    return 0
  fi
  log "installing PostgreSQL 15 (apt) for the PostgreSQL ledger's tests"
  apt_install postgresql-15 postgresql-client-15
  # Debian starts a cluster as a service; the tests do not use it.
  if command -v pg_ctlcluster >/dev/null 2>&1; then
    pg_ctlcluster 15 main stop >/dev/null 2>&1 || true
  fi
}

# ensure_chromium installs Debian's chromium, which the dashboard's test
# drives headless (chromedp); the test fails, not skips, without it.
ensure_chromium() {
  if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
    return 0
  fi
  log "installing chromium (apt) for the dashboard's browser test"
  apt_install chromium
}
