"""Schema-conformance fuzz of the live server with schemathesis (a bounded, seeded gate).

Every operation of ``/api/openapi.json`` is called with data generated from its own schema,
both valid (positive) and schema-violating (negative), as root and as a researcher, against a
real server on PostgreSQL (the stricter backend: it refuses NUL characters and out-of-range
numbers that SQLite would store). Every answer must pass four checks: no 5xx, a documented
status code, a body that matches the documented schema, and the documented content type.

Bounded and deterministic: hypothesis is derandomized (the same examples every run), nothing
is shrunk, and the examples per operation shrink as operations are added so the whole fuzz
stays near :data:`REQUEST_BUDGET` requests (about a minute on two cores).

Left out (and why):

- ``GET /api/events``: a stream that does not end, so no answer to check.
- ``DELETE`` except on :data:`HARMLESS_DELETES`: generated ids are small, and ``1`` is the root
  user and its organization; deleting users, organizations, roles or nodes would remove the
  identities the fuzz runs as. Deleting a task or ports only removes tasks and nothing.
- operations whose path names credentials (:data:`CREDENTIAL_WORDS`): changing a password or a
  second factor, or locking an account, would end the fuzz's own sessions.
- generated framing headers (:data:`FRAMING_HEADERS`, e.g. ``Transfer-Encoding: .3S``): the
  HTTP server (uvicorn) refuses such a request before the application sees it, with its own
  plain-text 400; that is the transport's answer, not the API's.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.fixtures.server import ServerProcess, start_server
from tests.server.conftest import HTTP, World, build_world

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
#: About how many requests the whole fuzz sends (examples per operation follow from it).
REQUEST_BUDGET = 2400
MIN_EXAMPLES, MAX_EXAMPLES = 4, 25
STREAMS = {("GET", "/api/events")}
HARMLESS_DELETES = {"/api/task/{task_id}", "/api/port"}
CREDENTIAL_WORDS = re.compile(r"password|2fa|mfa|otp|lock|logout|revoke|recover|reset")
FRAMING_HEADERS = frozenset({"transfer-encoding", "content-length", "host", "connection",
                             "upgrade", "te", "trailer", "expect"})
MODES = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)


def excluded(method: str, path: str) -> bool:
    """Whether the fuzz leaves this operation out (see the module docstring)."""
    return ((method, path) in STREAMS
            or (method == "DELETE" and path not in HARMLESS_DELETES)
            or CREDENTIAL_WORDS.search(path) is not None)


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory,
                postgres_databases: Callable[[], str]) -> Iterator[ServerProcess]:
    """A server of its own on PostgreSQL: the fuzz writes whatever it generates."""
    proc = start_server(database_url=postgres_databases(),
                        root_password=secrets.token_urlsafe(12),
                        log_dir=tmp_path_factory.mktemp("fuzz"))
    yield proc
    proc.stop()


def _examples(operations: int) -> int:
    runs = operations * 2 * len(MODES)  # two identities, two modes
    return max(MIN_EXAMPLES, min(MAX_EXAMPLES, REQUEST_BUDGET // max(runs, 1)))


def _fuzz(operation: Any, *, base_url: str, token: str, mode: schemathesis.GenerationMode,
          examples: int) -> str | None:
    """Run one operation's examples; the first failure's report, or None."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=examples, derandomize=True, database=None, deadline=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck),
              report_multiple_bugs=False)
    def run(case: schemathesis.Case) -> None:
        if case.headers:
            case.headers = {name: value for name, value in case.headers.items()
                            if name.lower() not in FRAMING_HEADERS}
        response = case.call(base_url=base_url, timeout=30,
                             headers={"Authorization": f"Bearer {token}"})
        case.validate_response(response, checks=CHECKS)

    try:
        run()
    except Unsatisfiable:  # nothing to violate (an operation without parameters)
        return None
    except FailureGroup as failure:
        return str(failure)
    return None


@pytest.mark.timeout(300)
def test_every_operation_conforms_to_its_schema(fuzz_server: ServerProcess) -> None:
    """No 5xx, no undocumented status, body or content type, as root and as a researcher."""
    world: World = build_world(fuzz_server)
    spec = HTTP.get(f"{fuzz_server.url}/openapi.json").json()
    schema = schemathesis.openapi.from_dict(spec)
    operations = [result.ok() for result in schema.get_all_operations()]
    selected = [op for op in operations if not excluded(op.method.upper(), op.path)]
    examples = _examples(len(selected))
    base_url = fuzz_server.url.removesuffix("/api")
    failures: list[str] = []
    for operation in selected:
        for who, token in (("root", world.root_token), ("researcher", world.researcher_token)):
            for mode in MODES:
                report = _fuzz(operation, base_url=base_url, token=token, mode=mode,
                               examples=examples)
                if report is not None:
                    failures.append(f"{operation.method.upper()} {operation.path} as {who}, "
                                    f"{mode.value}:\n{report}")
    assert len(selected) >= 35 and len(operations) - len(selected) <= 3 + len(operations) // 4
    assert not failures, "\n\n".join(failures)
    assert "Traceback" not in fuzz_server.log_text()
