"""Spec and storage hygiene: what used to be stored as given is refused with a 400 naming it.

Image references follow Docker's grammar, database labels the one definition the node also
uses, and names refuse NUL and control characters (descriptions may span lines). Logs, which
are whatever a container printed, are kept with unstorable characters replaced.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from tests.server.conftest import World, unique
from v6flow.schemas import image_reference_problem, is_database_label
from v6flow_node.settings import Database

VALID_IMAGES = [
    "ubuntu", "ubuntu:22.04", "v6flow-test/basic:latest", "library/ubuntu",
    "harbor2.vantage6.ai/demo/average", "localhost:5000/algo:1.0", "localhost/a",
    "registry.example.com:443/team/sub/algo:v1.2-rc_3", "a__b", "a-b--c", "a.b_c",
    "[::1]:5000/algo", "MyRegistry/algo",
    "algo@sha256:" + "a" * 64, "reg.io/algo:tag@sha256:" + "0" * 64,
    "x:" + "t" * 128,
]
INVALID_IMAGES = [
    "", "../../../etc/passwd", "/etc/passwd", "ubuntu/", "a//b", "UPPER", "a___b", ".a", "a.",
    "a-", "-a", "a:", "a:-tag", "a:tag with space", "x:" + "t" * 129, "a@sha256:abc",
    "a@sha256", "a@:" + "0" * 64, "a b", "a\x00b", "a\nb", "reg.io:port/a", "-reg.io/a",
    "[::1/a", "[zz]:1/a", "a" * 256, "a/" + "b" * 254,
]


@pytest.mark.parametrize("image", VALID_IMAGES)
def test_valid_docker_references_are_accepted(image: str) -> None:
    """References Docker accepts pass."""
    assert image_reference_problem(image) is None


@pytest.mark.parametrize("image", INVALID_IMAGES)
def test_invalid_docker_references_are_refused(image: str) -> None:
    """Path tricks, bad characters, bad tags and digests and over-long names are refused."""
    assert image_reference_problem(image) is not None


LABELS = {"default": True, "_x": True, "patients_2024": True, "A" * 64: True,
          "": False, "A" * 65: False, "1abc": False, "../data": False, "a/b": False,
          "a-b": False, "a\x00b": False, "a b": False, "é": False}


@pytest.mark.parametrize(("label", "valid"), LABELS.items())
def test_database_labels_have_one_definition_for_tasks_and_nodes(label: str, valid: bool,
                                                                 tmp_path: Any) -> None:
    """The server's and the node's settings give every label the same verdict."""
    data = tmp_path / "data.csv"
    data.write_text("a\n1\n")
    try:
        Database(label=label, uri=data)
        node_accepts = True
    except ValidationError:
        node_accepts = False
    assert (is_database_label(label), node_accepts) == (valid, valid)


def _field_of(response: Any) -> list[str]:
    assert response.status_code == 400, response.text
    return [error["field"] for error in response.json()["errors"]]


def _task_count(world: World) -> int:
    return int(world.call("GET", "/task", params={"per_page": 1}).headers["total-count"])


@pytest.mark.parametrize(("change", "field"), [
    ({"image": "../../../etc/passwd"}, "image"),
    ({"image": "Ubuntu"}, "image"),
    ({"databases": [{"label": "../../etc"}]}, "databases.0.label"),
    ({"databases": [{"label": "db\x00"}]}, "databases.0.label"),
    ({"name": "task\x00name"}, "name"),
    ({"name": "two\nlines"}, "name"),
    ({"description": "escape \x1b[31m red"}, "description"),
    ({"description": "nul \x00"}, "description"),
])
def test_a_task_with_a_bad_field_is_refused_and_not_stored(world: World, change: dict[str, Any],
                                                           field: str) -> None:
    """400 naming the field; no task is stored."""
    before = _task_count(world)
    response = world.call("POST", "/task", world.researcher_token,
                          json={**world.task_body(), **change})
    assert _field_of(response) == [field]
    assert _task_count(world) == before


def test_a_description_may_span_lines(world: World) -> None:
    """Newlines and tabs in a description are kept."""
    description = "first line\n\tsecond line\r\n"
    task = world.create_task(description=description)
    assert world.ok("GET", f"/task/{task['id']}")["description"] == description


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/organization", {"name": "org\x00"}, "name"),
    ("/organization", {"name": unique("org"), "country": "N\x07L"}, "country"),
    ("/collaboration", {"name": "collab\x00"}, "name"),
    ("/user", {"username": "user\x00", "password": "long enough password"}, "username"),
    ("/user", {"username": unique("u"), "password": "long enough password",
               "firstname": "Ann\x1b"}, "firstname"),
])
def test_names_refuse_nul_and_control_characters(world: World, path: str,
                                                 body: dict[str, Any], field: str) -> None:
    """Every name-like field answers 400 naming it."""
    assert _field_of(world.call("POST", path, json=body)) == [field]


def test_a_node_name_refuses_control_characters(world: World) -> None:
    """POST /node with a NUL in the name is a 400 naming it."""
    response = world.call("POST", "/node", json={"collaboration_id": world.collaboration_id,
                                                 "organization_id": world.outsider_id,
                                                 "name": "node\x00"})
    assert _field_of(response) == ["name"]


def test_a_text_filter_refuses_a_nul(world: World) -> None:
    """``?name=`` with a NUL is a 400 naming the parameter, not a database error."""
    assert _field_of(world.call("GET", "/organization", params={"name": "a\x00b"})) == ["name"]


def test_an_unpaired_surrogate_is_refused(world: World) -> None:
    """A JSON escape of half a surrogate pair cannot be stored: 400 naming the field."""
    raw = '{"name": "org \\ud800"}'
    response = world.call("POST", "/organization", content=raw.encode(),
                          headers={"Content-Type": "application/json"})
    assert _field_of(response) == ["name"]


def test_a_log_keeps_what_the_container_printed(world: World) -> None:
    """NUL and unpaired surrogates in log lines are stored as U+FFFD, not refused."""
    task = world.create_task([world.org_ids[0]])
    run_id = world.runs(task["id"])[0]["id"]
    token = world.node_token(world.org_ids[0])
    world.ok("PATCH", f"/run/{run_id}", token, json={"status": "active"})
    raw = json.dumps({"lines": ["a\x00b", "c\ud800d"]}, ensure_ascii=True)
    response = world.call("POST", f"/run/{run_id}/log", token, content=raw.encode(),
                          headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    assert world.ok("GET", f"/run/{run_id}")["log"] == "a\ufffdb\nc\ufffdd\n"
