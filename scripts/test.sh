#!/usr/bin/env bash
# Runs the whole test suite on this machine, installing whatever is missing first.
#   scripts/test.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-machine.sh test
export PATH="$PWD/.venv/bin:$PATH"
export DO_NOT_TRACK=1 PREFECT_SERVER_ANALYTICS_ENABLED=false
exec python -m pytest "$@"
