#!/usr/bin/env bash
# Runs the demo federated analysis (embedded server, three Docker-isolated nodes, a Prefect
# flow), installing whatever is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-machine.sh demo
export PATH="$PWD/.venv/bin:$PATH"
export DO_NOT_TRACK=1 PREFECT_SERVER_ANALYTICS_ENABLED=false
exec v6flow demo "$@"
