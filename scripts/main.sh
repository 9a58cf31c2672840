#!/usr/bin/env bash
# Installs everything, then runs the main job on its embedded default (CPU only, no downloads).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/verl-focal demo "$@"
