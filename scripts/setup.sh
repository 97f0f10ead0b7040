#!/usr/bin/env bash
# Create .venv with the CPU build of torch and lowbit installed in editable mode.
# torch is pinned first: an unpinned `pip install torch` fetches a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
.venv/bin/python -m pip install -q "torch==${LOWBIT_TORCH_VERSION:-2.13.0}"
.venv/bin/python -m pip install -q -e ".[dev]"
echo "lowbit environment ready: $(pwd)/.venv"
