#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the tour: a model fitted on real data, its posterior printed and plotted.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
MPLBACKEND="${MPLBACKEND:-Agg}" .venv/bin/python examples/tour.py
