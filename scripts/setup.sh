#!/usr/bin/env bash
# Creates .venv and installs verl-focal with its test tools and the out-of-domain extra. Idempotent; no GPU needed.
# torch is installed first with the CPU pin, so that verl's dependency on torch is already met
# (an unpinned torch would pull several GB of CUDA wheels). verl-focal accepts verl>=0.7.1,<0.10
# (docs/install.md); the main job, the CPU backend and the full test suite use verl 0.9.1.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
[[ -x .venv/bin/python ]] || "$PYTHON" -m venv .venv
PIP=(.venv/bin/python -m pip --disable-pip-version-check -q)
# pip, without the warnings about this machine's missing local indexes, keeping pip's exit status.
quiet_pip() { "$@" 2>&1 | { grep -v "^WARNING: Location" || true; }; return "${PIPESTATUS[0]}"; }
quiet_pip "${PIP[@]}" install --upgrade pip || echo "setup.sh: could not upgrade pip; going on with the one there"
quiet_pip "${PIP[@]}" install "torch==2.13.0"
# ood: IFEval's checks (lm-eval); the suite tests them, so the README's commands install them.
quiet_pip "${PIP[@]}" install "verl[verl-core]==0.9.1" -e ".[test,ood]"
.venv/bin/python -c "import torch, verl, verl_focal; print(f'setup ok: torch {torch.__version__}, verl {verl.__version__}')"
