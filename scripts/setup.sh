#!/usr/bin/env bash
# Set up the toolkit in ./.venv (Python 3.11). Idempotent: a second run only checks.
#
# torch first: where no CUDA GPU is present, the CPU build (torch==2.13.0) is installed before
# anything that depends on torch, so pip never pulls several GB of CUDA packages. Where a CUDA GPU
# is present, the venv sees the system's packages, so a torch the user already installed is kept.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
  echo "setup: Python 3.11 is required, $PYTHON is $("$PYTHON" --version 2>&1); set PYTHON=/path/to/python3.11" >&2
  exit 1
fi

has_cuda_gpu() { command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q GPU; }

if [ ! -x .venv/bin/python ]; then
  if has_cuda_gpu; then
    "$PYTHON" -m venv --system-site-packages .venv
  else
    "$PYTHON" -m venv .venv
  fi
fi
# pip on this kind of machine warns about every package missing from a local index; keep real errors
pip_install() { .venv/bin/python -m pip --disable-pip-version-check -q install "$@" 2> >(grep -v "is ignored: it is neither" >&2); }

stamp=.venv/.eliq-installed
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  if ! .venv/bin/python -c 'import torch' >/dev/null 2>&1; then
    if has_cuda_gpu; then
      echo "setup: CUDA GPU found and no torch installed: installing the default (CUDA) torch"
      pip_install torch
    else
      echo "setup: no CUDA GPU: installing the CPU build torch==2.13.0"
      pip_install torch==2.13.0
    fi
  else
    echo "setup: keeping the installed torch $(.venv/bin/python -c 'import torch; print(torch.__version__)')"
  fi
  echo "setup: installing the toolkit and its dependencies (a few minutes the first time)"
  pip_install -e ".[dev]"
  echo "$want" > "$stamp"
fi

# Offline fixtures: tiny random-weight diffusers pipelines, saved with save_pretrained and loaded
# back through the same from_pretrained path as real models (the demo and the tests use them).
# Rebuilt whenever the code that builds them changes (a new family, another tiny config).
fixtures_want=$(sha256sum pairgen/generators/fixtures.py | cut -d' ' -f1)
if [ "$(cat .cache/fixtures/.complete 2>/dev/null)" != "$fixtures_want" ]; then
  echo "setup: building offline fixture pipelines in .cache/fixtures"
  .venv/bin/python -m pairgen.generators.fixtures --out .cache/fixtures --overwrite
  echo "$fixtures_want" > .cache/fixtures/.complete
fi
echo "setup: ready (.venv/bin/python)"
