"""Screenshots of the web UI's main pages (docs/img/ui-*.png), shown in README "Web UI".

What it does:
1. builds (offline, when missing) the base image and the test algorithm image
   ``v6flow-test/basic:latest`` from tests/algorithms/basic (the folder is read, not imported);
2. starts a local federation (:func:`v6flow_flows.local_federation.local_federation`: a server
   subprocess, 3 organizations with synthetic CSVs, 3 node processes);
3. through the REST API: a study (as root), and tasks (as the researcher) that complete
   (column statistics, row counts), fail, and keep running;
4. an encrypted collaboration of the first two organizations, with a key pair each and one
   node each running with ``encryption.enabled``, and an encrypted task the researcher makes
   with v6flow's client;
5. drives headless Chromium (Debian's, through Playwright) over the UI and saves
   ``ui-login``, ``ui-tasks``, ``ui-task``, ``ui-nodes``, ``ui-admin`` and ``ui-phone`` (as
   root), and ``ui-encrypted`` (as the researcher, who loads the key into the tab);
6. stops everything (nodes kill the running task's containers) and prints the files.

Usage (from the repository root; Docker running, ``apt-get install -y chromium``)::

    python benchmarks/ui_screenshots.py [--out docs/img]
"""

from __future__ import annotations

import argparse
import contextlib
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]
TEST_ALGORITHMS = REPO_ROOT / "tests" / "algorithms" / "basic"
TEST_IMAGE = "v6flow-test/basic:latest"
POLICY = ("^v6flow/.*", "^v6flow-test/.*")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
#: The organizations of the encrypted collaboration (the first ones), one node each.
ENCRYPTED_ORGANIZATIONS = 2
FINISHED = {"completed", "failed", "crashed", "killed by user", "start failed",
            "non-existing Docker image", "not allowed", "unknown error"}


def say(message: str) -> None:
    """Progress on stderr."""
    print(f"- {message}", file=sys.stderr)


class Api:
    """One user's calls to the federation's server."""

    def __init__(self, url: str, username: str, password: str) -> None:
        """Log in."""
        self.url = url
        token = httpx.post(f"{url}/token/user", json={"username": username,
                                                      "password": password},
                           timeout=30).json()["access_token"]
        self.client = httpx.Client(base_url=url, timeout=30,
                                   headers={"Authorization": f"Bearer {token}"})

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """One call; raises on an error status."""
        response = self.client.request(method, path, **kwargs)
        response.raise_for_status()
        return response.json()

    def task(self, name: str, method: str, organization_ids: list[int], collaboration_id: int,
             args: list[Any] | None = None, kwargs: dict[str, Any] | None = None) -> int:
        """Create a task of the test image; its id."""
        from v6flow.wire import input_to_wire, make_input

        payload = input_to_wire(make_input(method, args, kwargs))
        task = self.call("POST", "/task", json={
            "name": name, "image": TEST_IMAGE, "collaboration_id": collaboration_id,
            "description": "made by benchmarks/ui_screenshots.py",
            "organizations": [{"id": oid, "input": payload} for oid in organization_ids],
            "databases": [{"label": "default"}]})
        return int(task["id"])

    def wait(self, task_id: int, done: Any, timeout: float = 180) -> None:
        """Poll the runs of a task until ``done(statuses)``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            runs = self.call("GET", "/run", params={"task_id": task_id})["data"]
            if runs and done([r["status"] for r in runs]):
                return
            time.sleep(0.3)
        raise RuntimeError(f"task {task_id} did not get there in {timeout} s")


def ensure_images() -> str:
    """Base image and test image; returns the base image tag."""
    from v6flow import images

    client = images.docker_client()
    base = images.ensure_base_image(client=client)
    if images.image_labels(client, TEST_IMAGE) is None:
        say(f"building {TEST_IMAGE}")
        images.build_algorithm_image(TEST_ALGORITHMS, TEST_IMAGE, client=client,
                                     labels={"v6flow.test": "1"})
    return base


def prepare(fed: Any) -> dict[str, int]:
    """A study (by root) and four tasks (by the researcher); the ids the screenshots need."""
    root = Api(fed.url, "root", fed.root_password)
    api = Api(fed.url, fed.username, fed.password)
    orgs = fed.organization_ids
    study = root.call("POST", "/study", json={"name": "age over 50", "organization_ids": orgs[:2],
                                             "collaboration_id": fed.collaboration_id})
    stats = api.task("age statistics", "column_stats", orgs, fed.collaboration_id,
                     kwargs={"column": "age"})
    counts = api.task("row counts", "row_count", orgs, fed.collaboration_id)
    failing = api.task("missing column", "column_stats", orgs[:1], fed.collaboration_id,
                       kwargs={"column": "weight"})
    running = api.task("long analysis", "sleep", orgs[1:], fed.collaboration_id, args=[900])
    for task_id in (stats, counts, failing):
        api.wait(task_id, lambda statuses: all(s in FINISHED for s in statuses))
    api.wait(running, lambda statuses: all(s == "active" for s in statuses))
    return {"stats": stats, "study": int(study["id"])}


@contextlib.contextmanager
def encrypted_task(fed: Any, directory: Path, base_image: str) -> Iterator[tuple[int, Path]]:
    """An encrypted collaboration of the first two organizations, their keys, one node each
    with encryption, and a finished encrypted task of the researcher: (task id, key of the
    researcher's organization). The nodes stop on exit."""
    import yaml

    from v6flow import crypto
    from v6flow.client import Client

    root = Api(fed.url, "root", fed.root_password)
    orgs = fed.organization_ids[:ENCRYPTED_ORGANIZATIONS]
    collaboration = root.call("POST", "/collaboration", json={
        "name": "encrypted", "organization_ids": orgs, "encrypted": True})["id"]
    keys: dict[int, Path] = {}
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for index, org in enumerate(orgs):
            keys[org] = directory / f"org-{org}.pem"
            keys[org].write_bytes(crypto.private_key_to_pem(crypto.generate_private_key()))
            keys[org].chmod(0o600)
            name = f"enc-{secrets.token_hex(3)}-{index}"
            node = root.call("POST", "/node", json={"organization_id": org, "name": name,
                                                    "collaboration_id": collaboration})
            config = directory / f"{name}.yaml"
            config.write_text(yaml.safe_dump({
                "server_url": fed.url, "api_key": node["api_key"], "name": name,
                "task_dir": str(directory / "tasks" / name),
                "databases": [{"label": "default", "uri": str(fed.csvs[index]), "type": "csv"}],
                "policies": {"allowed_algorithms": list(POLICY), "require_algorithm_pull": False},
                "share_algorithm_logs": True, "sidecar_image": base_image,
                "encryption": {"enabled": True, "private_key": str(keys[org])}}),
                encoding="utf-8")
            with (directory / f"{name}.log").open("ab") as log:
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "v6flow.cli.main", "node", "start", "--config",
                     str(config)], stdout=log, stderr=subprocess.STDOUT))
            deadline = time.monotonic() + 60
            while root.call("GET", f"/node/{node['id']}")["status"] != "online":
                if time.monotonic() > deadline:
                    raise RuntimeError(f"encrypted node {name} did not come online")
                time.sleep(0.3)
        say("encrypted collaboration: 2 nodes online")
        with Client(fed.url, username=fed.username, password=fed.password,
                    private_key=keys[orgs[0]]) as client:
            task = client.task.create(collaboration, orgs, TEST_IMAGE, "column_stats",
                                      kwargs={"column": "bmi"}, name="bmi statistics")
        Api(fed.url, fed.username, fed.password).wait(
            task.id, lambda statuses: all(s in FINISHED for s in statuses))
        yield task.id, keys[orgs[0]]
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(timeout=60)


def shoot_encrypted(base: str, fed: Any, task_id: int, key: Path, out: Path) -> Path:
    """Log in as the researcher, load the key into the tab, save the encrypted task's page."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(base + "/account")
        page.get_by_label("Username").fill(fed.username)
        page.get_by_label("Password").fill(fed.password)
        page.get_by_role("button", name="Log in").click()
        page.get_by_label("Private key file (PEM)").set_input_files(str(key))
        expect(page.locator(".key-status")).to_contain_text("Key loaded")
        # navigate inside the page: a reload would forget the key (by design)
        page.evaluate("(href) => { history.pushState(null, '', href);"
                      " dispatchEvent(new PopStateEvent('popstate')); }", f"/tasks/{task_id}")
        expect(page.locator(".result-table")).to_have_count(ENCRYPTED_ORGANIZATIONS)
        expect(page.locator(".loading")).to_have_count(0)
        path = out / "ui-encrypted.png"
        page.screenshot(path=str(path), full_page=True)
        browser.close()
    return path


def shoot(base: str, fed: Any, ids: dict[str, int], out: Path) -> list[Path]:
    """Log in as root and save the pages."""
    from playwright.sync_api import expect, sync_playwright

    saved: list[Path] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})

        def save(name: str, full_page: bool = False) -> None:
            # no "networkidle": the UI keeps its event stream open; callers wait on content
            expect(page.locator(".loading")).to_have_count(0)
            path = out / f"ui-{name}.png"
            page.screenshot(path=str(path), full_page=full_page)
            saved.append(path)

        page.goto(base + "/tasks")
        expect(page.get_by_label("Username")).to_be_focused()
        page.get_by_label("Username").fill("root")
        save("login")
        page.get_by_label("Password").fill(fed.root_password)
        page.get_by_role("button", name="Log in").click()
        expect(page.locator(".data-table")).to_be_visible()
        expect(page.get_by_role("status").filter(has_text="Live")).to_be_visible()
        save("tasks")
        page.goto(f"{base}/tasks/{ids['stats']}")
        expect(page.locator(".result-table")).to_have_count(3)
        save("task", full_page=True)
        page.goto(base + "/nodes")
        expect(page.locator('.badge[data-status="online"]')).to_have_count(
            len(fed.node_names) + ENCRYPTED_ORGANIZATIONS)
        save("nodes")
        page.goto(f"{base}/collaborations/{fed.collaboration_id}")
        expect(page.locator(".related")).to_have_count(3)
        save("admin", full_page=True)
        page.set_viewport_size({"width": 390, "height": 844})
        page.goto(f"{base}/tasks/{ids['stats']}")
        expect(page.locator(".result-table")).to_have_count(3)
        save("phone")
        browser.close()
    return saved


def main(argv: list[str] | None = None) -> int:
    """Run the whole sequence; print the PNG paths."""
    from v6flow_flows.local_federation import local_federation

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "img")
    options = parser.parse_args(argv)
    options.out.mkdir(parents=True, exist_ok=True)
    base_image = ensure_images()
    with tempfile.TemporaryDirectory(prefix="v6flow-ui-shots-") as tmp, \
            local_federation(Path(tmp), sidecar_image=base_image, policy=POLICY,
                             say=say) as fed:
        ids = prepare(fed)
        with encrypted_task(fed, Path(tmp), base_image) as (task_id, key):
            say("taking screenshots")
            base = fed.url.removesuffix("/api")
            saved = shoot(base, fed, ids, options.out)
            saved.append(shoot_encrypted(base, fed, task_id, key, options.out))
    for path in saved:
        print(f"{path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path} "
              f"({path.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
