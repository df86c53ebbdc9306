#!/usr/bin/env bash
# Times a real project's `npm install` through our server and through Verdaccio 6, each as a
# pull-through cache of the upstream in `npm config get registry`, with a cold and a warm cache.
#   bash e2e/bench/install.sh [--packages "express react ..."]
# A benchmark, not a test: it prints figures and never fails on them.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
VERDACCIO="$ROOT/e2e/peers/node_modules/verdaccio"
if [[ ! -f "$VERDACCIO/package.json" ]]; then
  VERDACCIO="$HERE/.peers/node_modules/verdaccio"
  if [[ ! -f "$VERDACCIO/package.json" ]]; then
    mkdir -p "$HERE/.peers"
    echo '{"private":true,"dependencies":{"verdaccio":"^6"},"overrides":{"node-fetch":"2.7.0"}}' > "$HERE/.peers/package.json"
    (cd "$HERE/.peers" && npm install --no-audit --no-fund --loglevel=error)
  fi
fi
if [[ -n "${BENCH_SERVER_BIN:-}" ]]; then
  SERVER="$BENCH_SERVER_BIN"
else
  (cd "$ROOT" && cargo build --release -p registry-server)
  TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
  SERVER="$TARGET/release/npm-registry-server"
fi
exec python3 "$HERE/install.py" --server-bin "$SERVER" --verdaccio "$VERDACCIO" "$@"
