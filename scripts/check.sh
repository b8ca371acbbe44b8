#!/usr/bin/env bash
# The gates (what a reviewer runs before a merge; .ci/run runs them before the tests): no old
# package name left, ruff, mypy --strict on the six packages, the import-linter contracts.
#   scripts/check.sh                 all four, in this order
#   scripts/check.sh mypy imports    some of them: names, ruff, mypy, imports
#                                    (.pre-commit-config.yaml runs them one by one)
# Needs the six distributions installed with the dev extra (scripts/setup-machine.sh test, or
# pip install -e ".[dev]" -e ./server -e ./node -e ./blocks -e ./flows -e ./ui).
set -euo pipefail
cd "$(dirname "$0")/.."
gates=("$@")
[ "${#gates[@]}" -eq 0 ] && gates=(names ruff mypy imports)
for gate in "${gates[@]}"; do
  case "$gate" in
    names)
      echo "== old package names (scripts/rename_packages.py --check)"
      python scripts/rename_packages.py --check --quiet ;;
    ruff)
      echo "== ruff"
      ruff check . ;;
    mypy)
      echo "== mypy --strict"
      # Package mode: packages are found by import name (mypy_path in pyproject.toml); the
      # flows' flow.py/combine.py are modules of v6flow_flows; the partial/ packages are not
      # (each is built into its flow's image).
      mypy -p v6flow -p v6flow_server -p v6flow_node -p prefect_v6flow -p v6flow_flows \
        -p v6flow_ui ;;
    imports)
      echo "== import-linter (the architecture's borders, [tool.importlinter] in pyproject.toml)"
      lint-imports ;;
    *)
      echo "unknown gate $gate (names, ruff, mypy, imports)" >&2
      exit 2 ;;
  esac
done
