#!/usr/bin/env bash
# Set up .venv/ in the repo root with everything the main job and the tests need.
#   bash scripts/setup.sh            Python packages only
#   bash scripts/setup.sh --system   also the Debian packages the slow tests use (needs root)
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${1:-}" == "--system" ]]; then
    # sshd for the ssh-target test, qemu for emulated ARM, chromium for the browser demo test.
    if [[ $(id -u) -eq 0 ]]; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends openssh-server openssh-client adb qemu-user qemu-user-static \
            chromium chromium-driver xz-utils binutils ca-certificates gcc libc6-dev >/dev/null
    else
        echo "setup: --system needs root for apt-get; skipping Debian packages" >&2
    fi
fi
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
[[ -x .venv/bin/python ]] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e ".[test]"
# the demo's WebAssembly runtimes (and playwright-core for its browser test), pinned by package-lock.json
(cd android_demo && npm ci --no-audit --no-fund --loglevel=error)
echo "setup: .venv ready ($(.venv/bin/python -c 'import torch, onnxruntime; print("torch", torch.__version__, "onnxruntime", onnxruntime.__version__)'))"
