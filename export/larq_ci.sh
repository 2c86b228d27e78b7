#!/usr/bin/env bash
# Larq import tests in their own environment (Larq 0.14 needs tf_keras and
# numpy < 2). Creates the venv once (VENV, default .venv-larq in the repo),
# installs the pins of requirements-larq.txt and edgebnn itself, then runs
# tests/test_export_larq.py with TF_USE_LEGACY_KERAS=1.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${VENV:-$repo/.venv-larq}"
py="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
    "$py" -m venv "$venv"
fi
"$venv/bin/pip" install -q -r "$repo/requirements-larq.txt"
"$venv/bin/pip" install -q -e "$repo"
cd "$repo"
TF_USE_LEGACY_KERAS=1 TF_CPP_MIN_LOG_LEVEL=2 "$venv/bin/python" -m pytest -q \
    -p no:cacheprovider tests/test_export_larq.py "$@"
