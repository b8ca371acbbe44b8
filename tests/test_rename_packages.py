"""scripts/rename_packages.py on a small checkout in the old layout (issue 12).

The script is what makes branches written against the old names (``server``, ``node``,
``flows``, ``blocks``, ``ui``) mergeable: it must move files that did not exist when it was
written, rewrite their references, leave look-alikes alone and change nothing on a second run.
This file holds the old names on purpose (rename-packages: skip).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: A checkout in the old layout: path → content.
OLD_LAYOUT = {
    "server/__init__.py": '"""The server."""\n',
    "server/settings.py": "class ServerSettings:\n    pass\n",
    "server/api/__init__.py": "",
    "server/api/routes/__init__.py": "",
    # a module added on another branch after the script was written
    "server/api/routes/central.py": (
        '"""Central tasks (see :mod:`server.settings` and server/api/routes/central.py)."""\n'
        "from server.settings import ServerSettings\n"
        "\n"
        "LOGGER = 'server.api.routes.central'\n"
    ),
    "node/__init__.py": "",
    "node/proxy.py": (
        "import node.settings\n"
        "\n"
        "\n"
        "def config(self_node: object) -> object:\n"
        "    return node.settings.NodeSettings, 'node.yaml', '/api/node/1'\n"
    ),
    "node/settings.py": "class NodeSettings:\n    pass\n",
    "blocks/__init__.py": '"""Blocks: ``prefect block register -m blocks``."""\n',
    "flows/__init__.py": "",
    "flows/summary/__init__.py": "",
    "flows/summary/flow.py": "from blocks import Federation\n",
    "flows/summary/Dockerfile": "ENV V6FLOW_CENTRAL_FLOWS=flows.summary.flow\n",
    "ui/index.html": "<html></html>\n",
    "ui/vendor.sh": "#!/bin/sh\n",
    "v6flow/__init__.py": "",
    "v6flow/demo.py": '"""The demo."""\n',
    "v6flow/images.py": "",
    "tests/test_x.py": (
        "from pathlib import Path\n"
        "\n"
        "from v6flow import demo, images\n"
        "from v6flow.demo import run\n"
        "\n"
        'CONTEXT = Path("repo") / "flows" / "summary"\n'
        'SELF = "tests/node/test_proxy.py"\n'
        'CMD = "python -c \\"import prefect, blocks, os\\""\n'
        'REGISTER = ["prefect", "block", "register", "-m", "blocks"]\n'
        "\n"
        "\n"
        "def f(node: object, server: object) -> object:\n"
        '    return server.settings, node.proxy, f"{node.settings}"  # not modules here\n'
    ),
    "docs/flows.md": (
        "Build `v6flow image build flows/summary`, then `from blocks import Federation`;\n"
        "the server is `server/settings.py` (`server.settings`), a node reads node.yaml.\n"
        "A method lives in `flows/<method>/`.\n"
    ),
}

#: What it becomes: path → content (files not listed keep their content, moved).
NEW_LAYOUT = {
    "server/v6flow_server/api/routes/central.py": (
        '"""Central tasks (see :mod:`v6flow_server.settings` and '
        'server/v6flow_server/api/routes/central.py)."""\n'
        "from v6flow_server.settings import ServerSettings\n"
        "\n"
        "LOGGER = 'v6flow_server.api.routes.central'\n"
    ),
    "node/v6flow_node/proxy.py": (
        "import v6flow_node.settings\n"
        "\n"
        "\n"
        "def config(self_node: object) -> object:\n"
        "    return v6flow_node.settings.NodeSettings, 'node.yaml', '/api/node/1'\n"
    ),
    "blocks/prefect_v6flow/__init__.py":
        '"""Blocks: ``prefect block register -m prefect_v6flow``."""\n',
    "flows/v6flow_flows/summary/flow.py": "from prefect_v6flow import Federation\n",
    "flows/v6flow_flows/summary/Dockerfile":
        "ENV V6FLOW_CENTRAL_FLOWS=v6flow_flows.summary.flow\n",
    "flows/v6flow_flows/demo.py": '"""The demo."""\n',
    "ui/v6flow_ui/index.html": "<html></html>\n",
    "ui/vendor.sh": "#!/bin/sh\n",  # a distribution file: stays
    "tests/test_x.py": (
        "from pathlib import Path\n"
        "\n"
        "from v6flow import images\n"
        "from v6flow_flows import demo\n"
        "from v6flow_flows.demo import run\n"
        "\n"
        'CONTEXT = Path("repo") / "flows" / "v6flow_flows" / "summary"\n'
        'SELF = "tests/node/test_proxy.py"\n'
        'CMD = "python -c \\"import prefect, prefect_v6flow, os\\""\n'
        'REGISTER = ["prefect", "block", "register", "-m", "prefect_v6flow"]\n'
        "\n"
        "\n"
        "def f(node: object, server: object) -> object:\n"
        '    return server.settings, node.proxy, f"{node.settings}"  # not modules here\n'
    ),
    "docs/flows.md": (
        "Build `v6flow image build flows/v6flow_flows/summary`, then "
        "`from prefect_v6flow import Federation`;\n"
        "the server is `server/v6flow_server/settings.py` (`v6flow_server.settings`), a node "
        "reads node.yaml.\n"
        "A method lives in `flows/v6flow_flows/<method>/`.\n"
    ),
}


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
                          cwd=repo, check=True, capture_output=True, text=True).stdout


def _run(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "scripts/rename_packages.py", "--no-ruff", *args],
                          cwd=repo, capture_output=True, text=True, check=False, timeout=120)


@pytest.fixture
def old_checkout(tmp_path: Path) -> Path:
    """A git checkout in the old layout, with the script."""
    repo = tmp_path / "repo"
    for name, text in OLD_LAYOUT.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    (repo / "scripts").mkdir()
    shutil.copy2(ROOT / "scripts" / "rename_packages.py", repo / "scripts")
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "old layout")
    return repo


def test_check_reports_pending_work_and_changes_nothing(old_checkout: Path) -> None:
    """--check exits 1 on the old layout and leaves every file as it was."""
    before = _git(old_checkout, "status", "--porcelain")
    done = _run(old_checkout, "--check")
    assert done.returncode == 1
    assert "would move server/settings.py -> server/v6flow_server/settings.py" in done.stdout
    assert _git(old_checkout, "status", "--porcelain") == before


def test_moves_and_rewrites_to_the_namespaced_packages(old_checkout: Path) -> None:
    """Files move into their packages (with git), references follow, look-alikes stay."""
    done = _run(old_checkout)
    assert done.returncode == 0, done.stderr
    for name, text in NEW_LAYOUT.items():
        assert (old_checkout / name).read_text() == text, name
    for old in ("server/settings.py", "v6flow/demo.py", "ui/index.html", "flows/summary"):
        assert not (old_checkout / old).exists(), old
    renames = _git(old_checkout, "status", "--porcelain")
    assert "R  server/settings.py -> server/v6flow_server/settings.py" in renames


def test_a_second_run_changes_nothing(old_checkout: Path) -> None:
    """Idempotent: after one run, --check is clean and a run rewrites nothing."""
    assert _run(old_checkout).returncode == 0
    snapshot = {p: p.read_bytes() for p in old_checkout.rglob("*")
                if p.is_file() and ".git" not in p.parts}
    again = _run(old_checkout, "--check")
    assert again.returncode == 0, again.stdout
    assert _run(old_checkout).stdout.strip().endswith("0 moves, 0 rewrites done")
    assert snapshot == {p: p.read_bytes() for p in old_checkout.rglob("*")
                        if p.is_file() and ".git" not in p.parts}


def test_this_checkout_has_no_old_name_left() -> None:
    """The repository itself: nothing to move, nothing to rewrite."""
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "rename_packages.py"),
                           "--check", "--quiet"], capture_output=True, text=True, check=False,
                          timeout=120)
    assert done.returncode == 0, done.stdout
