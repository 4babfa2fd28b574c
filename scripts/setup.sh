#!/usr/bin/env bash
# Set up (or refresh) the project's virtual environment in .venv and install qkd-qiskit into it.
#
# What it does, in order:
#   1. creates .venv with $PYTHON (default python3; Python >= 3.10) unless it exists;
#   2. if .venv has no torch: installs $QKD_TORCH_SPEC (default torch==2.13.0) from PyTorch's CPU-only
#      index https://download.pytorch.org/whl/cpu (a few hundred MB instead of several GB of CUDA
#      packages). If that index cannot be reached (a machine that reaches only PyPI, like CI here) or
#      the install from it fails, it SAYS SO and installs torch from pip's default index instead (on
#      Linux x86-64, PyPI's torch is the CUDA build, much larger, unless a local wheel or mirror offers
#      a CPU build). A torch already in .venv (any build, CUDA included) is kept;
#   3. installs this checkout in editable mode with its test extra: pip install -e ".[test]" (code,
#      configs/ and backends/ are read in place; `pip install .` instead copies them into the package).
#
# Environment:
#   QKD_TORCH_SPEC   torch requirement to install when torch is missing (default torch==2.13.0)
#   QKD_TORCH_INDEX  index for torch (default: PyTorch's CPU index, with the fallback above); set it to
#                    another index to use that one (no fallback), or to "" for pip's default index
#   QKD_EXTRAS       extras to install (default "test")
#   PYTHON           interpreter that creates .venv (default python3)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))' || { echo "error: Python >= 3.10 required" >&2; exit 1; }
[ -x .venv/bin/python ] || "$PY" -m venv .venv
VPY=.venv/bin/python
export PIP_DISABLE_PIP_VERSION_CHECK=1
CPU_INDEX=https://download.pytorch.org/whl/cpu
TORCH_SPEC=${QKD_TORCH_SPEC:-torch==2.13.0}
TORCH_INDEX=${QKD_TORCH_INDEX-$CPU_INDEX}   # unset: the CPU index; set to "": pip's default index

reachable() {  # can this machine open the index page? (a few seconds at most)
  "$VPY" - "$1" <<'PY' 2>/dev/null
import sys, urllib.request
urllib.request.urlopen(sys.argv[1].rstrip("/") + "/", timeout=10).close()
PY
}

if ! "$VPY" -c 'import torch' 2>/dev/null; then
  if [ -z "$TORCH_INDEX" ]; then
    echo "setup: installing $TORCH_SPEC from pip's default index (QKD_TORCH_INDEX is empty)"
    "$VPY" -m pip install -q "$TORCH_SPEC"
  elif [ -n "${QKD_TORCH_INDEX:-}" ]; then
    echo "setup: installing $TORCH_SPEC from QKD_TORCH_INDEX=$TORCH_INDEX"
    "$VPY" -m pip install -q --index-url "$TORCH_INDEX" "$TORCH_SPEC" \
      || { echo "error: could not install $TORCH_SPEC from $TORCH_INDEX" >&2; exit 1; }
  else
    echo "setup: installing $TORCH_SPEC, CPU build, from PyTorch's CPU index ($CPU_INDEX)"
    if ! { reachable "$CPU_INDEX" && "$VPY" -m pip install -q --index-url "$CPU_INDEX" "$TORCH_SPEC"; }; then
      echo "setup: PyTorch's CPU index could not be reached or did not serve $TORCH_SPEC;" \
           "installing $TORCH_SPEC from pip's default index instead (on Linux x86-64 PyPI's torch is" \
           "the CUDA build, several GB, unless a local wheel or mirror offers a CPU build)." \
           "Set QKD_TORCH_INDEX to choose the index." >&2
      "$VPY" -m pip install -q "$TORCH_SPEC"
    fi
  fi
fi
echo "setup: installing qkd-qiskit[${QKD_EXTRAS:-test}] (editable)"
"$VPY" -m pip install -q -e ".[${QKD_EXTRAS:-test}]" 2>&1 | grep -v -E "^(WARNING: Location|  )" || true
"$VPY" -c 'import qkd_qiskit, torch, qiskit' || { echo "error: installation incomplete" >&2; exit 1; }
"$VPY" - <<'PY'
import torch
from qkd_qiskit.shipped import package_version
print(f"setup: ready (.venv: qkd-qiskit {package_version()}, torch {torch.__version__},",
      "CUDA build)" if torch.version.cuda else "CPU build)")
PY
