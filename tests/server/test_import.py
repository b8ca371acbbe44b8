"""`v6flow server import`: a whole federation from one file, idempotent, all-or-nothing."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.fixtures.server import ServerProcess, start_server
from tests.server.conftest import auth, login

IMPORT = ("v6flow", "server", "import")
KINDS = ("organization", "collaboration", "user", "node")
ROLES = ("Researcher", "Organization Admin", "Collaboration Admin", "Viewer")


@dataclass
class Target:
    """A running server and the server.yaml that points the importer at its database."""

    server: ServerProcess
    config: Path
    directory: Path

    def import_(self, path: Path, *args: str) -> subprocess.CompletedProcess[str]:
        """Run the importer on ``path`` (env without V6FLOW_SERVER_*: the file is the config)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("V6FLOW_SERVER_")}
        return subprocess.run([*IMPORT, str(path), "--config", str(self.config), *args],
                              env=env, capture_output=True, text=True, timeout=120, check=False)

    def token(self) -> str:
        """A root token."""
        return login(self.server.url, "root", self.server.root_password)

    def get(self, path: str, token: str | None = None, **params: Any) -> httpx.Response:
        """GET through the REST API."""
        response = httpx.get(f"{self.server.url}/{path}", params=params,
                             headers=auth(token or self.token()), timeout=10)
        assert response.status_code == 200, response.text
        return response

    def counts(self) -> dict[str, int]:
        """How many organizations, collaborations, users and nodes the API reports."""
        token = self.token()
        return {kind: int(self.get(kind, token, per_page=1).headers["total-count"])
                for kind in KINDS}


def _target(directory: Path, database_url: str) -> Iterator[Target]:
    server = start_server(database_url=database_url, root_password=secrets.token_urlsafe(12),
                          log_dir=directory)
    config = directory / "server.yaml"
    config.write_text(yaml.safe_dump({"database_url": database_url, "port": server.port}),
                      encoding="utf-8")
    yield Target(server=server, config=config, directory=directory)
    server.stop()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
           postgres_databases: Callable[[], str]) -> Iterator[Target]:
    """A server per backend; the importer works on its database while it runs."""
    directory = tmp_path_factory.mktemp(f"import-{request.param}")
    url = (f"sqlite:///{directory}/server.sqlite" if request.param == "sqlite"
           else postgres_databases())
    yield from _target(directory, url)


@pytest.fixture(scope="module")
def sqlite_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """One SQLite server for the node test (real nodes on Docker)."""
    directory = tmp_path_factory.mktemp("import-nodes")
    yield from _target(directory, f"sqlite:///{directory}/server.sqlite")


def federation(suffix: str) -> dict[str, Any]:
    """5 organizations, 2 collaborations (one encrypted), 8 users with roles, 6 nodes."""
    orgs = [f"Hospital {i} {suffix}" for i in range(5)]
    plain, encrypted = f"Study {suffix}", f"Registry {suffix}"
    users = [{"username": f"user{i}-{suffix}", "password": f"pw-{i}-{uuid.uuid4().hex[:12]}",
              "organization": orgs[i % 5], "email": f"user{i}-{suffix}@example.org",
              "roles": [ROLES[i % 4]] + (["Viewer"] if i % 3 == 0 and i % 4 != 3 else [])}
             for i in range(8)]
    return {
        "organizations": [{"name": name, "country": "NL"} for name in orgs],
        "collaborations": [
            {"name": plain, "organizations": orgs[:4]},
            {"name": encrypted, "encrypted": True, "organizations": orgs[3:]},
        ],
        "users": users,
        "nodes": [{"organization": org, "collaboration": plain} for org in orgs[:4]]
        + [{"organization": org, "collaboration": encrypted, "name": f"reg-{i}-{suffix}"}
           for i, org in enumerate(orgs[3:])],
    }


def test_the_documented_example_is_a_valid_file() -> None:
    """The complete example in docs/import.md parses as an ImportFile with every list filled."""
    from v6flow.schemas.imports import ImportFile

    text = (Path(__file__).resolve().parents[2] / "docs" / "import.md").read_text("utf-8")
    example = ImportFile.model_validate(yaml.safe_load(text.split("```yaml\n", 1)[1]
                                                       .split("```", 1)[0]))
    assert all((example.organizations, example.collaborations, example.users, example.nodes))


def _write(directory: Path, body: dict[str, Any]) -> Path:
    path = directory / f"import-{uuid.uuid4().hex[:8]}.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False), encoding="utf-8")
    return path


def _report(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode == 0, result.stderr
    body: dict[str, Any] = json.loads(result.stdout)
    return body


def _node_names(body: dict[str, Any]) -> list[str]:
    return [n.get("name") or f"{n['collaboration']} - {n['organization']} Node"
            for n in body["nodes"]]


def _names(body: dict[str, Any]) -> dict[str, list[str]]:
    return {"organizations": [o["name"] for o in body["organizations"]],
            "collaborations": [c["name"] for c in body["collaborations"]],
            "users": [u["username"] for u in body["users"]], "nodes": _node_names(body)}


@pytest.fixture(scope="module")
def imported(target: Target) -> tuple[Target, dict[str, Any], dict[str, Any], Path]:
    """The federation imported once: (target, file body, JSON report, node-config dir)."""
    body = federation(uuid.uuid4().hex[:6])
    configs = target.directory / f"nodes-{uuid.uuid4().hex[:6]}"
    report = _report(target.import_(_write(target.directory, body), "--node-configs",
                                    str(configs), "--json"))
    return target, body, report, configs


def test_import_creates_everything_once(
        imported: tuple[Target, dict[str, Any], dict[str, Any], Path]) -> None:
    """The first run creates every entry; a second run creates nothing and lists all as existing."""
    # Prepare
    target, body, first, configs = imported
    before = target.counts()
    # Execute
    second = _report(target.import_(_write(target.directory, body), "--node-configs",
                                    str(configs), "--json"))
    # Assert
    for kind, names in _names(body).items():
        assert first[kind] == {"create": names, "exists": []}
        assert second[kind] == {"create": [], "exists": names}
    assert second["node_configs"] == {}
    assert target.counts() == before


def test_imported_users_log_in_and_hold_their_roles(
        imported: tuple[Target, dict[str, Any], dict[str, Any], Path]) -> None:
    """Every user logs in over REST with the file's password and has exactly its roles."""
    target, body, _, _ = imported
    orgs = {o["name"]: o["id"] for o in target.get("organization", per_page=100).json()["data"]}
    for user in body["users"]:
        token = login(target.server.url, user["username"], user["password"])
        me = target.get("user", username=user["username"]).json()["data"][0]
        roles = target.get("role", user_id=me["id"]).json()["data"]
        assert sorted(r["name"] for r in roles) == sorted(user["roles"])
        assert me["organization"]["id"] == orgs[user["organization"]]
        assert token


def test_imported_collaborations_keep_flag_members_and_nodes(
        imported: tuple[Target, dict[str, Any], dict[str, Any], Path]) -> None:
    """Each collaboration has its encrypted flag, its members and one node per listed member."""
    target, body, _, _ = imported
    token = target.token()
    org_names = {o["id"]: o["name"] for o in
                 target.get("organization", token, per_page=100).json()["data"]}
    for spec in body["collaborations"]:
        collab = target.get("collaboration", token, name=spec["name"]).json()["data"][0]
        assert collab["encrypted"] is spec.get("encrypted", False)
        members = target.get("organization", token, collaboration_id=collab["id"],
                             per_page=100).json()["data"]
        assert sorted(m["name"] for m in members) == sorted(spec["organizations"])
        nodes = target.get("node", token, collaboration_id=collab["id"]).json()["data"]
        want = sorted(n["organization"] for n in body["nodes"]
                      if n["collaboration"] == spec["name"])
        assert sorted(org_names[n["organization"]["id"]] for n in nodes) == want


def test_node_configs_are_private_and_kept_on_rerun(
        imported: tuple[Target, dict[str, Any], dict[str, Any], Path]) -> None:
    """One 0600 node.yaml per node; a re-run says the key is unrecoverable and keeps the file."""
    # Prepare
    target, body, report, configs = imported
    files = {name: Path(path) for name, path in report["node_configs"].items()}
    digests = {name: hashlib.sha256(p.read_bytes()).hexdigest() for name, p in files.items()}
    # Execute
    rerun = target.import_(_write(target.directory, body), "--node-configs", str(configs))
    # Assert
    assert sorted(files) == sorted(_node_names(body))
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in files.values())
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.stdout.count("cannot be recovered") == len(files)
    assert {n: hashlib.sha256(p.read_bytes()).hexdigest() for n, p in files.items()} == digests
    assert not any(user["password"] in rerun.stdout + rerun.stderr for user in body["users"])


def test_bad_file_names_entry_and_field_and_creates_nothing(target: Target) -> None:
    """One bad reference among valid new entries: exit 2, named, and no row is created."""
    # Prepare
    body = federation(uuid.uuid4().hex[:6])
    body["users"][3]["organization"] = "Hospital X"
    body["users"][5]["roles"] = ["Chief"]
    before = target.counts()
    # Execute
    result = target.import_(_write(target.directory, body), "--node-configs",
                            str(target.directory / "never"))
    # Assert
    assert result.returncode == 2
    assert ("users[3].organization: 'Hospital X' is not an organization in this file or "
            "the database") in result.stderr
    assert "users[5].roles[0]: 'Chief' is not a role" in result.stderr
    assert not any(u["password"] in result.stdout + result.stderr for u in body["users"])
    assert target.counts() == before
    assert not (target.directory / "never").exists()


def test_duplicates_and_missing_fields_are_all_named(target: Target) -> None:
    """A repeated name and a missing field are both reported, each at its entry."""
    # Prepare
    body = federation(uuid.uuid4().hex[:6])
    body["organizations"].append(dict(body["organizations"][0]))
    del body["nodes"][2]["collaboration"]
    before = target.counts()
    # Execute
    missing = target.import_(_write(target.directory, body))
    del body["organizations"][-1]
    body["nodes"][2]["collaboration"] = body["collaborations"][0]["name"]
    body["users"][7]["username"] = body["users"][1]["username"]
    repeated = target.import_(_write(target.directory, body))
    # Assert
    assert missing.returncode == 2 and "nodes[2].collaboration: Field required" in missing.stderr
    assert repeated.returncode == 2
    assert "users[7].username:" in repeated.stderr and "listed twice" in repeated.stderr
    assert target.counts() == before


def test_dry_run_changes_nothing(target: Target) -> None:
    """--dry-run reports what it would create, and the API shows no new row."""
    # Prepare
    body = federation(uuid.uuid4().hex[:6])
    before = target.counts()
    configs = target.directory / f"dry-{uuid.uuid4().hex[:6]}"
    # Execute
    report = _report(target.import_(_write(target.directory, body), "--dry-run",
                                    "--node-configs", str(configs), "--json"))
    # Assert
    assert report["dry_run"] is True
    for kind, names in _names(body).items():
        assert report[kind]["create"] == names
    assert target.counts() == before
    assert not configs.exists()


def _fill_in(config: Path, csv: Path) -> None:
    """What an operator does: point the placeholder database at a real file."""
    values = yaml.safe_load(config.read_text(encoding="utf-8"))
    values["databases"][0]["uri"] = str(csv)
    config.write_text(yaml.safe_dump(values), encoding="utf-8")


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A folder with a short path: the node's proxy socket path must stay under 108 bytes."""
    path = Path(tempfile.mkdtemp(prefix="v6i-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_too_long_socket_path_is_warned_about(
        imported: tuple[Target, dict[str, Any], dict[str, Any], Path]) -> None:
    """A node.yaml whose task_dir/name/proxy/proxy.sock exceeds 107 bytes gets a warning."""
    _, body, report, configs = imported
    tasks = configs.resolve() / "tasks"
    too_long = sorted(report["node_configs"][name] for name in _node_names(body)
                      if len(f"{tasks}/{name}/proxy/proxy.sock".encode()) > 107)
    warned = sorted(w.split(":", 1)[0] for w in report["warnings"])
    assert warned == too_long


def test_written_node_configs_start_nodes_that_come_online(
        sqlite_target: Target, base_image: str, short_dir: Path) -> None:
    """Each written node.yaml, with a database path filled in, starts a node the server sees."""
    # Prepare
    target, tmp_path = sqlite_target, short_dir
    body = federation(uuid.uuid4().hex[:6])
    configs = tmp_path / "n"
    report = _report(target.import_(_write(tmp_path, body), "--node-configs", str(configs),
                                    "--json"))
    assert report["warnings"] == []
    csv = tmp_path / "data.csv"
    csv.write_text("age\n40\n", encoding="utf-8")
    token = target.token()
    ids = {n["name"]: n["id"] for n in target.get("node", token, per_page=100).json()["data"]}
    processes: dict[str, subprocess.Popen[bytes]] = {}
    # Execute
    try:
        for name, path in report["node_configs"].items():
            _fill_in(Path(path), csv)
            with (tmp_path / f"{ids[name]}.log").open("wb") as log:
                processes[name] = subprocess.Popen(
                    [sys.executable, "-m", "v6flow.cli.main", "node", "start", "--config", path],
                    stdout=log, stderr=subprocess.STDOUT)
        # Assert
        pending = set(processes)
        deadline = time.monotonic() + 90
        while pending and time.monotonic() < deadline:
            for name in sorted(pending):
                assert processes[name].poll() is None, (tmp_path / f"{ids[name]}.log").read_text()
                if target.get(f"node/{ids[name]}", token).json()["status"] == "online":
                    pending.discard(name)
            time.sleep(0.2)
        assert not pending, f"not online: {pending}"
        assert len(processes) == len(body["nodes"])
    finally:
        for proc in processes.values():
            proc.send_signal(signal.SIGTERM)
        codes = [proc.wait(timeout=60) for proc in processes.values()]
    assert codes == [0] * len(processes)


def test_a_password_the_server_policy_refuses_is_named_by_the_dry_run(target: Target) -> None:
    """The file check applies the server's password policy, so --dry-run already names a
    password that the import would refuse (it contains its username), and prints neither."""
    # Prepare
    body = federation(uuid.uuid4().hex[:6])
    user = body["users"][0]
    user["password"] = f"x-{user['username']}-x"
    before = target.counts()
    # Execute
    result = target.import_(_write(target.directory, body), "--dry-run")
    # Assert
    assert result.returncode == 2, result.stdout + result.stderr
    assert "users[0].password" in result.stderr
    assert user["password"] not in result.stdout + result.stderr
    assert target.counts() == before
