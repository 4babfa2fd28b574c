#!/usr/bin/env bash
# Set up (or refresh) the project's virtual environment in .venv.
# torch's CPU build is installed first when torch is missing, so pip never pulls GBs of CUDA packages.
#   QKD_TORCH_SPEC   torch requirement to install when torch is missing (default torch==2.13.0)
#   QKD_TORCH_INDEX  optional index for it, e.g. https://download.pytorch.org/whl/cpu
#   QKD_EXTRAS       extras to install (default "test")
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))' || { echo "error: Python >= 3.10 required" >&2; exit 1; }
[ -x .venv/bin/python ] || "$PY" -m venv .venv
VPY=.venv/bin/python
export PIP_DISABLE_PIP_VERSION_CHECK=1
if ! "$VPY" -c 'import torch' 2>/dev/null; then
  echo "setup: installing ${QKD_TORCH_SPEC:-torch==2.13.0} (CPU build)"
  "$VPY" -m pip install -q ${QKD_TORCH_INDEX:+--index-url "$QKD_TORCH_INDEX"} "${QKD_TORCH_SPEC:-torch==2.13.0}"
fi
echo "setup: installing qkd-qiskit[${QKD_EXTRAS:-test}]"
"$VPY" -m pip install -q -e ".[${QKD_EXTRAS:-test}]" 2>&1 | grep -v -E "^(WARNING: Location|  )" || true
"$VPY" -c 'import qkd_qiskit, torch, qiskit' || { echo "error: installation incomplete" >&2; exit 1; }
echo "setup: ready (.venv)"
