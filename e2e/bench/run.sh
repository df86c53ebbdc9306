#!/usr/bin/env bash
# Side-by-side benchmark: npm-registry-server vs Verdaccio 6 vs nginx serving the same bytes.
#
#   bash e2e/bench/run.sh            # full run (~6-8 minutes)
#   bash e2e/bench/run.sh --quick    # smoke run (~2 minutes)
#   bash e2e/bench/run.sh --help     # every option (durations, connections, subsets)
#
# Installs what is missing (nginx and wrk from Debian's packages, Verdaccio 6 from the npm
# registry into e2e/bench/.peers unless e2e/peers has it), builds the server in release mode,
# then runs bench.py. Set BENCH_SERVER_BIN to benchmark an already built binary instead.
# A benchmark, not a test: it reports figures and never fails on them.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"

for a in "$@"; do
  if [[ "$a" == "-h" || "$a" == "--help" ]]; then
    exec python3 "$HERE/bench.py" --server-bin - --help
  fi
done

# nginx and wrk (Debian packages).
missing=()
command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || missing+=(nginx)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
if ((${#missing[@]})); then
  echo "[bench] installing ${missing[*]}" >&2
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"

# Verdaccio 6: the test peers' copy if e2e/test.sh installed it, else our own.
VERDACCIO="$ROOT/e2e/peers/node_modules/verdaccio"
if [[ ! -f "$VERDACCIO/package.json" ]]; then
  VERDACCIO="$HERE/.peers/node_modules/verdaccio"
  if [[ ! -f "$VERDACCIO/package.json" ]]; then
    echo "[bench] installing Verdaccio 6 into $HERE/.peers" >&2
    mkdir -p "$HERE/.peers"
    # node-fetch: a Verdaccio dependency asks for a dist-tag this environment's registry lacks.
    echo '{"private":true,"dependencies":{"verdaccio":"^6"},"overrides":{"node-fetch":"2.7.0"}}' \
      > "$HERE/.peers/package.json"
    (cd "$HERE/.peers" && npm install --no-audit --no-fund --loglevel=error)
  fi
fi

# Our server, release build.
if [[ -n "${BENCH_SERVER_BIN:-}" ]]; then
  SERVER="$BENCH_SERVER_BIN"
else
  TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
  [[ "$TARGET" == /* ]] || TARGET="$ROOT/$TARGET"
  echo "[bench] cargo build --release -p registry-server" >&2
  (cd "$ROOT" && cargo build --release -p registry-server)
  SERVER="$TARGET/release/npm-registry-server"
fi

cd "$HERE"
exec python3 "$HERE/bench.py" --server-bin "$SERVER" --verdaccio "$VERDACCIO" --nginx "$NGINX" "$@"
