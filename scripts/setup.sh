#!/usr/bin/env bash
# Create .venv (Python 3.11) with probspace and everything its demo, tests and docs need.
# torch is pinned to 2.13.0 and installed first: on this machine that takes a local
# CPU wheel, where any other version would download gigabytes of CUDA packages.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_pip.sh
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
pip_quiet .venv/bin/python --upgrade pip
pip_quiet .venv/bin/python "torch==2.13.0"
pip_quiet .venv/bin/python -e ".[test,docs,examples,dask]"
.venv/bin/python -c "import torch, probspace; assert torch.__version__.startswith('2.13.0'), torch.__version__; print('probspace', probspace.__version__, '| torch', torch.__version__)"
