#!/usr/bin/env bash
# Runs every test in the workspace. First installs the real npm clients the tests drive (pnpm,
# yarn 1, yarn 4) and Verdaccio into e2e/peers/node_modules, from e2e/peers/package-lock.json, and
# moto (the S3 server the S3 tests start) into the Python venv e2e/peers/venv.
set -euo pipefail
cd "$(dirname "$0")/.."

peers=e2e/peers
if [ ! -f "$peers/node_modules/.package-lock.json" ] || [ "$peers/package-lock.json" -nt "$peers/node_modules/.package-lock.json" ]; then
  echo "installing test peers into $peers/node_modules"
  npm ci --prefix "$peers" --no-audit --no-fund --loglevel=error
fi

moto_pin="moto[s3]==5.2.5"
if [ ! -x "$peers/venv/bin/moto_server" ] || [ "$(cat "$peers/venv/.moto-pin" 2>/dev/null)" != "$moto_pin" ]; then
  echo "installing moto into $peers/venv"
  python3 -m venv "$peers/venv"
  "$peers/venv/bin/pip" install --quiet --disable-pip-version-check "$moto_pin" flask flask-cors
  echo "$moto_pin" > "$peers/venv/.moto-pin"
fi

# cargo prints one summary per test binary; close with the workspace total so the last line says
# how many tests ran.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --workspace "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
awk '/^test result:/ { p += $4; f += $6; s += $8 } END { printf "total: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$status"
