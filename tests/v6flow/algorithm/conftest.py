"""Helpers for algorithm-tool tests: a run folder, an encoded env and a real wrapper process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import pytest

from v6flow.wire import encode_env

ALGORITHMS = Path(__file__).resolve().parents[2] / "algorithms"
BASIC_PACKAGE_DIR = ALGORITHMS / "basic"
WRAPPER = "from v6flow.algorithm import wrap_algorithm; wrap_algorithm()"


def make_token(**sub: Any) -> str:
    """A container-style JWT (``sub`` is an object, no ``exp``) signed with a test key."""
    claims = {"client_type": "container", "node_id": 11, "organization_id": 3,
              "collaboration_id": 5, "task_id": 42, "image": "v6flow-test/basic:latest",
              "databases": [{"label": "default"}], "study_id": None, "store_id": None, **sub}
    return jwt.encode({"sub": claims, "type": "access"}, "test-key-" + "x" * 32,
                      algorithm="HS256")


@dataclass
class RunFolder:
    """A node-like run folder: input, output (pre-created empty), token, tmp."""

    root: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def input(self) -> Path:
        return self.root / "input"

    @property
    def output(self) -> Path:
        return self.root / "output"

    def write_input(self, method: str, *args: Any, **kwargs: Any) -> None:
        self.input.write_text(json.dumps({"method": method, "args": list(args),
                                          "kwargs": kwargs}))

    def add_database(self, label: str, uri: Path | str, db_type: str | None = "csv") -> None:
        key = label.upper()
        labels = [x for x in self.env.get("USER_REQUESTED_DATABASE_LABELS", "").split(",") if x]
        self.env["USER_REQUESTED_DATABASE_LABELS"] = ",".join([*labels, label])
        self.env[f"{key}_DATABASE_URI"] = str(uri)
        if db_type is not None:
            self.env[f"{key}_DATABASE_TYPE"] = db_type

    def run(self, *, pkg: str | None = "v6flow_test_algos", encode: bool = True,
            extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run the real wrapper in a subprocess with the (encoded) contract env."""
        contract = {**self.env, **(extra or {})}
        env = {"PATH": os.environ.get("PATH", ""),
               "PYTHONPATH": str(BASIC_PACKAGE_DIR),
               **(encode_env(contract) if encode else contract)}
        if pkg is not None:
            env["PKG_NAME"] = pkg  # set by the Dockerfile: never encoded
        return subprocess.run([sys.executable, "-c", WRAPPER], env=env, capture_output=True,
                              text=True, timeout=60, check=False)

    def result(self) -> Any:
        return json.loads(self.output.read_bytes())


@pytest.fixture
def run_folder(tmp_path: Path) -> RunFolder:
    """A fresh run folder with the contract env a node would set (values not yet encoded)."""
    root = tmp_path / "task-000000042"
    (root / "tmp").mkdir(parents=True)
    (root / "output").write_bytes(b"")
    (root / "token").write_text(make_token() + "\n")
    folder = RunFolder(root=root)
    folder.env = {
        "INPUT_FILE": str(folder.input), "OUTPUT_FILE": str(folder.output),
        "TOKEN_FILE": str(root / "token"), "TEMPORARY_FOLDER": str(root / "tmp"),
        "HOST": "http://127.0.0.1", "PORT": "9", "API_PATH": "",
        "USER_REQUESTED_DATABASE_LABELS": "",
    }
    return folder


TokenFactory = Callable[..., str]


@pytest.fixture
def token_factory() -> TokenFactory:
    """``make_token(**sub_overrides)``."""
    return make_token
