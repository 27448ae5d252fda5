#!/usr/bin/env bash
# Command 2 of the README: set up, then run the default (not slow) test suite offline.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 RAY_USAGE_STATS_ENABLED=0
exec .venv/bin/python -m pytest -m "not slow" -q "$@"
