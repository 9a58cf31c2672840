#!/usr/bin/env bash
# Runs the core tests (estimators, losses, plugin loading, rewards, evaluation, theory) against the oldest
# verl that pyproject.toml accepts, in a virtualenv of its own:
#
#   bash scripts/test_oldest_verl.sh [pytest args...]
#   VERL_FOCAL_TEST_VERL=0.8.0 bash scripts/test_oldest_verl.sh     # another release of the range
#
# The virtualenv lives in ${VERL_FOCAL_CACHE:-~/.cache/verl-focal}/venv-verl-<version>. It is built when it
# is missing or its recipe changed (the verl version, scripts/oldest-verl-constraints.txt, the torch pin,
# the Python): torch's CPU build first (as scripts/setup.sh does, so that verl pulls no CUDA torch), then
# that verl, then a plain `pip install -e ".[test]"` of this checkout, which must leave that verl in place.
# The last step is repeated whenever pyproject.toml changed; otherwise the checkout is only re-pointed.
# verl < 0.9 has no `verl.plugins` entry points: the tests load the plugin the documented way,
# VERL_USE_EXTERNAL_MODULES=verl_focal.plugin (docs/install.md).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
TORCH_PIN="torch==2.13.0"

# The lower bound of the verl requirement in pyproject.toml is the version under test.
OLDEST="$(sed -nE 's/^ *"verl(\[[^]]*\])?>=([0-9][0-9.]*),.*/\2/p' pyproject.toml)"
[[ -n "$OLDEST" ]] || { echo "test_oldest_verl.sh: no \"verl>=X,...\" requirement in pyproject.toml" >&2; exit 2; }
OLDEST="${VERL_FOCAL_TEST_VERL:-$OLDEST}"

CONSTRAINTS=scripts/oldest-verl-constraints.txt
CACHE="${VERL_FOCAL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/verl-focal}"
VENV="$CACHE/venv-verl-$OLDEST"
PY="$VENV/bin/python"
RECIPE="$( { echo "$OLDEST $TORCH_PIN"; "$PYTHON" -VV; cat "$CONSTRAINTS"; } | sha256sum | cut -c1-16)"
PROJECT="$(sha256sum pyproject.toml | cut -c1-16)"

# pip, without the warnings about this machine's missing local indexes, keeping pip's exit status.
quiet_pip() { "$@" 2>&1 | { grep -v "^WARNING: Location" || true; }; return "${PIPESTATUS[0]}"; }
PIP=("$PY" -m pip --disable-pip-version-check -q)

if [[ "$(cat "$VENV/.recipe" 2>/dev/null)" != "$RECIPE" ]]; then
    echo "test_oldest_verl.sh: building $VENV (verl $OLDEST)"
    start=$SECONDS
    rm -rf "$VENV"   # .recipe is written last: an interrupted build is never reused
    mkdir -p "$CACHE"
    "$PYTHON" -m venv "$VENV"
    quiet_pip "${PIP[@]}" install "$TORCH_PIN" "setuptools>=68"
    quiet_pip "${PIP[@]}" install -c "$CONSTRAINTS" "verl==$OLDEST"
    echo "$RECIPE" > "$VENV/.recipe"
    echo "test_oldest_verl.sh: verl $OLDEST installed in $((SECONDS - start)) s"
fi

start=$SECONDS
if [[ "$(cat "$VENV/.project" 2>/dev/null)" != "$PROJECT" ]]; then
    # What a user with a cluster image does: install verl-focal next to the verl that is there.
    quiet_pip "${PIP[@]}" install -e ".[test]"
    quiet_pip "${PIP[@]}" check
else
    quiet_pip "${PIP[@]}" install --no-deps --no-build-isolation -e .
fi
"$PY" - "$OLDEST" <<'PY'
import sys
from importlib.metadata import version

import torch

have = version("verl")
if have != sys.argv[1]:
    sys.exit(f"test_oldest_verl.sh: `pip install -e .` replaced verl {sys.argv[1]} with verl {have}")
if not torch.__version__.endswith("+cpu"):
    sys.exit(f"test_oldest_verl.sh: torch {torch.__version__} is not the CPU build")
print(f"test_oldest_verl.sh: verl {have} left in place by `pip install -e .`; torch {torch.__version__}")
PY
echo "$PROJECT" > "$VENV/.project"
echo "test_oldest_verl.sh: verl-focal installed in $((SECONDS - start)) s"

export VERL_USE_EXTERNAL_MODULES=verl_focal.plugin
exec "$PY" -m pytest -p no:cacheprovider "$@" \
    tests/test_estimators.py tests/test_losses.py tests/test_plugin.py tests/test_versions.py \
    tests/test_rewards.py tests/test_evaluation_passk.py tests/test_evaluation_significance.py \
    tests/test_theory_closed_form.py tests/test_theory_categorical.py tests/test_theory_simulation.py
