#!/usr/bin/env bash
# Set everything up, lint, and run the test suite (what CI runs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
.venv/bin/ruff check .
.venv/bin/python -m pytest "$@"
