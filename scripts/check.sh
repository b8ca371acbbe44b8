#!/usr/bin/env bash
# Lint and type-check (what a reviewer runs before a merge): ruff, then mypy --strict.
#   pip install -e ".[dev]" first.
set -euo pipefail
cd "$(dirname "$0")/.."
ruff check .
mypy v6flow server node blocks flows/v6flow_flows/*/flow.py flows/v6flow_flows/*/combine.py
