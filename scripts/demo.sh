#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the tour: a mixture, an HMM, LDA and a VAE fitted on real data, each
# posterior printed and plotted beside the point estimate it replaces (demo_output/tour.png).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
MPLBACKEND="${MPLBACKEND:-Agg}" .venv/bin/python examples/tour.py
