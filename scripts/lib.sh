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
