#!/usr/bin/env bash
# Command 1 of the README: set up, run the pair-building job on the offline demo config, validate it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 RAY_USAGE_STATS_ENABLED=0
.venv/bin/python pipelines/build_pairs.py --config configs/demo.yaml "$@"
.venv/bin/python -m pairgen.validate out/demo
echo "demo: pairs in out/demo/ (summary: out/demo/stats.md, contact sheet: out/demo/preview.png)"
