"""The UI's pure functions, run in the browser as the UI runs them (ES modules, no Node.js):
result tables, the event-stream parser, the permission rules, JSON argument checks."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.fixtures.server import ServerProcess
from tests.ui.browser import ui_url


@pytest.fixture
def modules(page: Any, server: ServerProcess) -> Any:
    """A page of the UI's origin, to import its modules from."""
    page.goto(ui_url(server.url) + "/")
    return page


def call(page: Any, module: str, body: str, *args: Any) -> Any:
    """Import ``/src/<module>`` as ``m`` and evaluate ``body`` (an expression) with ``args``."""
    return page.evaluate(
        f"async (args) => {{ const m = await import('/src/{module}'); return ({body}); }}",
        list(args))


@pytest.mark.parametrize(("value", "expected"), [
    ([{"a": 1, "b": 2}, {"a": 3}], {"columns": ["a", "b"], "rows": [[1, 2], [3, None]]}),
    ({"x": [1, 2], "y": [3, 4]}, {"columns": ["x", "y"], "rows": [[1, 3], [2, 4]]}),
    ({"age": {"n": 3}, "bmi": {"n": 2}}, {"columns": ["", "n"], "rows": [["age", 3], ["bmi", 2]]}),
    ({"count": 3, "sum": 4.5}, {"columns": ["count", "sum"], "rows": [[3, 4.5]]}),
    ({"columns": ["a"], "data": [[1], [2]]}, {"columns": ["a"], "rows": [[1], [2]]}),
    ([1, 2], None), ({"a": {"b": {"c": 1}}}, None), ("text", None), ([], None),
])
def test_tabular_results_become_tables(modules: Any, value: Any, expected: Any) -> None:
    """Records, columns, keyed rows, one flat object and pandas' split form are tables."""
    assert call(modules, "format.js", "m.asTable(args[0])", value) == expected


def test_the_event_stream_parser_survives_any_chunking(modules: Any) -> None:
    """Events split across chunks at every byte, with pings and CRLF, arrive whole."""
    # Prepare
    stream = (": ping\r\n\r\nevent: sync\ndata: {}\n\n"
              "event: run_update\ndata: {\"run_id\": 7,\ndata:  \"status\": \"active\"}\n\n"
              "event: algorithm_log\r\ndata: {\"lines\": [\"a\"]}\r\n\r\n")
    # Execute
    seen = call(modules, "events.js", """(async () => {
      const bytes = new TextEncoder().encode(args[0]);
      const outcomes = [];
      for (const size of [1, 2, 7, bytes.length]) {
        const body = new ReadableStream({ start(controller) {
          for (let i = 0; i < bytes.length; i += size) controller.enqueue(bytes.slice(i, i + size));
          controller.close();
        } });
        const events = [];
        await m.readEventStream(body, (name, data) => events.push([name, data]));
        outcomes.push(events);
      }
      return outcomes;
    })()""", stream)
    # Assert
    expected = [["sync", {}], ["run_update", {"run_id": 7, "status": "active"}],
                ["algorithm_log", {"lines": ["a"]}]]
    assert seen == [expected] * 4


PERMISSIONS = """(() => {
  const me = { userId: 5, organizationId: 1, collaborationIds: new Set([10]),
               partnerOrganizationIds: new Set([1, 2]) };
  const p = m.buildPermissions(args[0], me);
  return {
    orgCreate: p.can('organization', 'create', 'GLOBAL'),
    nodeEditMine: p.reaches('node', 'edit', { collaborationIds: [10], organizationIds: [1] }),
    nodeEditPartner: p.reaches('node', 'edit', { collaborationIds: [10], organizationIds: [2] }),
    nodeEditOther: p.reaches('node', 'edit', { collaborationIds: [11], organizationIds: [3] }),
    taskCreateMine: p.canCreateTask(10), taskCreateOther: p.canCreateTask(11),
    deleteOwnOrgTask: p.canDeleteTask({ collaborationId: 11, initOrganizationId: 1 }),
    killPartnerTask: p.canKill({ collaborationId: 10, organizationId: 2 }),
    userEditSelf: p.canChangeUser('edit', { id: 5, organizationId: 1 }),
    userEditPartner: p.canChangeUser('edit', { id: 6, organizationId: 2 }),
  };
})()"""


def _rules(*triples: tuple[str, str, str]) -> list[dict[str, Any]]:
    return [{"id": i, "name": n, "operation": o, "scope": s}
            for i, (n, o, s) in enumerate(triples, 1)]


def test_permissions_follow_the_server_rules(modules: Any) -> None:
    """Scopes nest (COLLABORATION covers ORGANIZATION) and reach follows services/scope.py."""
    # Prepare
    rules = _rules(("node", "EDIT", "ORGANIZATION"), ("node", "EDIT", "COLLABORATION"),
                   ("task", "CREATE", "COLLABORATION"), ("task", "DELETE", "ORGANIZATION"),
                   ("event", "SEND", "COLLABORATION"), ("user", "EDIT", "OWN"))
    # Execute
    allowed = call(modules, "permissions.js", PERMISSIONS, rules)
    # Assert
    assert allowed == {
        "orgCreate": False, "nodeEditMine": True, "nodeEditPartner": True,
        "nodeEditOther": False, "taskCreateMine": True, "taskCreateOther": False,
        "deleteOwnOrgTask": True, "killPartnerTask": True, "userEditSelf": True,
        "userEditPartner": False,
    }


def test_no_rules_allow_nothing(modules: Any) -> None:
    """A user without rules may do none of it (stored spellings 'v'/'org' are understood)."""
    # Prepare
    rules = _rules(("user", "v", "own"))
    # Execute
    allowed = call(modules, "permissions.js", PERMISSIONS, rules)
    # Assert
    assert not any(allowed.values())
    assert call(modules, "permissions.js",
                "m.buildPermissions(args[0], {collaborationIds: new Set(), "
                "partnerOrganizationIds: new Set()}).scope('user', 'view')", rules) == "OWN"


@pytest.mark.parametrize(("text", "kind", "ok"), [
    ("[]", "array", True), ("[1, {\"a\": 2}]", "array", True), ("{}", "array", False),
    ("{\"column\": \"age\"}", "object", True), ("[1]", "object", False),
    ("null", "object", False), ("[1,", "array", False), ("", "array", True),
])
def test_json_arguments_are_checked(modules: Any, text: str, kind: str, ok: bool) -> None:
    """Arguments must be a JSON list, keyword arguments a JSON object."""
    error = call(modules, "pages/task_create.js", "m.jsonError(args[0], args[1])", text, kind)
    assert (error is None) == ok, error


def test_inputs_and_results_travel_as_base64_json(modules: Any) -> None:
    """The UI encodes input and decodes results exactly as v6flow.wire does (non-ASCII too)."""
    # Prepare
    from v6flow.wire import input_from_wire, result_to_wire

    value = {"method": "echo", "args": ["ß€😀"], "kwargs": {"n": 1}}
    result = {"mean": 1.5, "names": ["Zoë"]}
    # Execute
    encoded = call(modules, "wire.js", "m.encodeInput(args[0])", value)
    decoded = call(modules, "wire.js", "m.readResult(args[0])",
                   result_to_wire(json.dumps(result).encode()))
    # Assert
    assert input_from_wire(encoded) == value
    assert decoded == {"ok": True, "value": result, "scheme": "plain"}


def test_json_is_shown_compactly_and_losslessly(modules: Any) -> None:
    """Pretty JSON keeps lists of plain values on one line and parses back to the value."""
    # Prepare
    value = {"histograms": {"age": {"counts": [0, 3, 5], "edges": [0.5, 1e-9]}},
             "rows": [{"a": None, "b": "x]\"y"}], "empty": {}, "none": []}
    # Execute
    text = call(modules, "components/ui.js", "m.prettyJson(args[0])", value)
    # Assert
    assert json.loads(text) == value
    assert '"counts": [0, 3, 5]' in text
