#!/usr/bin/env bash
# Installs and starts what v6flow needs on a fresh Debian 12 machine (idempotent):
# Docker engine (docker.io + dockerd), debootstrap (offline base image), PostgreSQL, haproxy
# (tests: server replicas behind a load balancer; the tests start their own unprivileged
# haproxy on loopback ports, never the system service) and headless Chromium (tests; the web
# UI's browser tests drive /usr/bin/chromium through Playwright), and a virtualenv in .venv
# with v6flow, its extras and the five distributions beside it (server/ node/ blocks/ flows/
# ui/), all editable.
#   scripts/setup-machine.sh [demo|test]     (default: test)
set -euo pipefail
cd "$(dirname "$0")/.."
purpose="${1:-test}"

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

need_pkgs=()
command -v dockerd >/dev/null 2>&1 || need_pkgs+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || need_pkgs+=(debootstrap)
if [ "$purpose" = test ] && ! command -v pg_ctlcluster >/dev/null 2>&1; then
  need_pkgs+=(postgresql)
fi
if [ "$purpose" = test ] && [ ! -x /usr/sbin/haproxy ]; then
  need_pkgs+=(haproxy)
fi
if [ "$purpose" = test ] && [ ! -x /usr/bin/chromium ]; then
  need_pkgs+=(chromium chromium-driver)
fi
if [ "${#need_pkgs[@]}" -gt 0 ]; then
  echo "== installing ${need_pkgs[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  echo "== starting dockerd"
  as_root sh -c 'nohup dockerd >/var/log/v6flow-dockerd.log 2>&1 &'
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || { echo "dockerd did not start: see /var/log/v6flow-dockerd.log" >&2; exit 1; }
fi

if [ "$purpose" = test ]; then
  version=$(ls /etc/postgresql 2>/dev/null | sort -n | tail -1)
  if [ -n "$version" ] && ! pg_lsclusters -h | awk '{print $4}' | grep -q online; then
    echo "== starting PostgreSQL $version"
    as_root pg_ctlcluster "$version" main start
  fi
fi

if [ ! -x .venv/bin/python ]; then
  echo "== creating .venv"
  python3 -m venv .venv
fi
extras=all
# test: the dev extra (the tests and the gates .ci/run runs before them: ruff, mypy, import-linter)
[ "$purpose" = test ] && extras=dev
# The library (.) and the five distributions beside it (issue 12), editable, in ONE pip command:
# pip takes v6flow-server, v6flow-node, prefect-v6flow, v6flow-flows and v6flow-ui, which the
# extras name, from these paths (never from an index).
dists=(-e ".[${extras}]" -e ./server -e ./node -e ./blocks -e ./flows -e ./ui)
# The stamp changes with any of the six pyproject.toml files.
hash=$(cat pyproject.toml server/pyproject.toml node/pyproject.toml blocks/pyproject.toml \
  flows/pyproject.toml ui/pyproject.toml | sha1sum | cut -c1-12)
stamp=".venv/.v6flow-installed-$extras-$hash"
if [ ! -f "$stamp" ]; then
  echo "== installing Python dependencies (.[${extras}] and server node blocks flows ui)"
  .venv/bin/pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
  .venv/bin/pip install -q "${dists[@]}" 2>&1 | grep -v "^WARNING: Location" || true
  .venv/bin/python -c "import v6flow, v6flow_server, v6flow_node, prefect_v6flow, v6flow_flows, v6flow_ui" \
    && touch "$stamp"
fi
