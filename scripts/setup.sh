#!/usr/bin/env bash
# Creates .venv and installs verl-focal with its test tools. Idempotent; no GPU needed.
# torch is installed first with the CPU pin, so that verl's dependency on torch is already met
# (an unpinned torch would pull several GB of CUDA wheels).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
[[ -x .venv/bin/python ]] || "$PYTHON" -m venv .venv
PIP=(.venv/bin/python -m pip --disable-pip-version-check -q)
"${PIP[@]}" install --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
"${PIP[@]}" install "torch==2.13.0" 2>&1 | grep -v "^WARNING: Location" || true
"${PIP[@]}" install -e ".[test]" 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -c "import torch, verl, verl_focal; print(f'setup ok: torch {torch.__version__}, verl {verl.__version__}')"
