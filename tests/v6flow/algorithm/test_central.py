"""Flows as central tasks: the wrapper finds them, fills token parameters, runs Prefect."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.v6flow.algorithm.conftest import RunFolder, make_token
from v6flow.algorithm.central import (
    PREFECT_MODE_ENV,
    ContainerConnection,
    PrefectMode,
    central_flow_modules,
    in_algorithm_container,
    is_flow,
    prepare_ephemeral_prefect,
    prepare_prefect,
)
from v6flow.errors import AlgorithmError
from v6flow_flows.parameters import Federation, ServerParameters, resolve_connection

FLOWS_MODULE = "tests.v6flow.algorithm.central_flows"


@pytest.mark.slow
def test_wrapper_runs_a_flow_with_token_parameters(run_folder: RunFolder) -> None:
    """``V6FLOW_CENTRAL_PREFECT=ephemeral``: the flow runs in an ephemeral Prefect with a
    private home, and ``collaboration_id``/``image`` come from the container token."""
    # Prepare
    run_folder.write_input("context_report", value=21)
    # Execute
    proc = run_folder.run(extra={"V6FLOW_CENTRAL_FLOWS": FLOWS_MODULE,
                                 PREFECT_MODE_ENV: "ephemeral"})
    # Assert
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = run_folder.result()
    assert result["collaboration_id"] == 5 and result["image"] == "v6flow-test/basic:latest"
    assert result["doubled"] == 42
    assert result["api_url"] is None and "v6flow-prefect-" in result["prefect_home"]
    assert "running flow context_report as the central task" in proc.stdout


@pytest.mark.slow
def test_without_a_prefect_api_the_flow_function_runs_alone(run_folder: RunFolder) -> None:
    """No server answers (auto mode): the flow's function runs without Prefect's engine,
    with the token's parameters, and the log says so."""
    run_folder.write_input("token_report", value=21)
    proc = run_folder.run(extra={"V6FLOW_CENTRAL_FLOWS": FLOWS_MODULE})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert run_folder.result() == {"collaboration_id": 5, "image": "v6flow-test/basic:latest",
                                   "doubled": 42, "api_url": None}
    assert "Prefect: none: the server has no Prefect API" in proc.stdout


def test_without_a_prefect_api_a_task_call_fails_with_a_hint(run_folder: RunFolder) -> None:
    """A flow that calls a Prefect task needs an API: exit 1 naming the two ways out."""
    run_folder.write_input("context_report", value=21)
    proc = run_folder.run(extra={"V6FLOW_CENTRAL_FLOWS": FLOWS_MODULE,
                                 PREFECT_MODE_ENV: "none"})
    assert proc.returncode == 1
    assert "set prefect.api_url on the server" in proc.stderr
    assert "V6FLOW_CENTRAL_PREFECT=ephemeral" in proc.stderr


def test_declared_flow_runs_without_importing_the_package(run_folder: RunFolder) -> None:
    """``module:name`` in ``V6FLOW_CENTRAL_FLOWS``: the flow runs even though the partial
    package cannot be imported (it is never imported for a declared flow)."""
    run_folder.write_input("token_report", value=2)
    proc = run_folder.run(pkg="no_such_package", extra={
        "V6FLOW_CENTRAL_FLOWS": f"{FLOWS_MODULE}:token_report"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert run_folder.result()["doubled"] == 4


def test_declared_flow_that_is_missing_is_named(run_folder: RunFolder) -> None:
    """A declared flow the module lacks: exit 1 naming the declaration."""
    run_folder.write_input("nowhere")
    proc = run_folder.run(extra={"V6FLOW_CENTRAL_FLOWS": f"{FLOWS_MODULE}:nowhere"})
    assert proc.returncode == 1
    assert f"declares 'nowhere' in {FLOWS_MODULE}, which has no such flow" in proc.stderr


def test_prefect_mode_server_without_an_api_fails(tmp_path: Path) -> None:
    """``server`` insists on the server's Prefect API; an unknown mode is named."""
    token_file = tmp_path / "token"
    token_file.write_text("header.payload.signature")
    env = {"HOST": "http://127.0.0.1", "PORT": "9", "API_PATH": "",
           "TOKEN_FILE": str(token_file), PREFECT_MODE_ENV: "server"}
    with pytest.raises(AlgorithmError, match="forwards to no Prefect API"):
        prepare_prefect(env)
    with pytest.raises(AlgorithmError, match="V6FLOW_CENTRAL_PREFECT='sometimes'"):
        prepare_prefect({**env, PREFECT_MODE_ENV: "sometimes"})
    plan = prepare_prefect({**env, PREFECT_MODE_ENV: "none"})
    assert plan.mode is PrefectMode.NONE and plan.probe_seconds < 1


def test_invalid_flow_parameter_fails_naming_it(run_folder: RunFolder) -> None:
    """A parameter the flow's types refuse: exit 1, the error names the parameter."""
    run_folder.write_input("needs_positive", count=0)
    proc = run_folder.run(extra={"V6FLOW_CENTRAL_FLOWS": FLOWS_MODULE})
    assert proc.returncode == 1
    assert "count" in proc.stderr and "greater than or equal to 1" in proc.stderr
    assert run_folder.output.read_bytes() == b""


def test_unknown_name_lists_where_it_looked(run_folder: RunFolder) -> None:
    """Neither a function of the package nor a flow of the listed modules: MethodNotFound."""
    run_folder.write_input("nowhere")
    proc = run_folder.run(extra={"V6FLOW_CENTRAL_FLOWS": FLOWS_MODULE})
    assert proc.returncode == 1
    assert "no function or flow 'nowhere' in v6flow_test_algos, " + FLOWS_MODULE in proc.stderr


def test_prepare_ephemeral_prefect_copies_the_template(tmp_path: Path) -> None:
    """A private home holding the migrated template; an inherited API URL is dropped."""
    template = tmp_path / "template"
    template.mkdir()
    (template / "prefect.db").write_bytes(b"migrated")
    env = {"PREFECT_API_URL": "http://somewhere/api", "PREFECT_UI_ENABLED": "true"}
    home = prepare_ephemeral_prefect(env, template)
    assert (home / "prefect.db").read_bytes() == b"migrated"
    assert env["PREFECT_HOME"] == str(home) and "PREFECT_API_URL" not in env
    assert env["PREFECT_UI_ENABLED"] == "true"  # explicit settings win
    assert env["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"


def test_container_connection_reads_the_contract_env(tmp_path: Path) -> None:
    """Proxy URL from HOST/PORT/API_PATH, token from TOKEN_FILE; the repr hides the token."""
    token_file = tmp_path / "token"
    token_file.write_text("secret-container-token\n")
    env = {"HOST": "http://127.0.0.1", "PORT": "8080", "API_PATH": "",
           "TOKEN_FILE": str(token_file)}
    connection = ContainerConnection.from_environ(env)
    assert connection.base_url == "http://127.0.0.1:8080"
    assert connection.token == "secret-container-token"
    assert "secret" not in repr(connection)
    assert in_algorithm_container(env) and not in_algorithm_container({})
    assert central_flow_modules({"V6FLOW_CENTRAL_FLOWS": " a.b , c "}) == ["a.b", "c"]
    assert central_flow_modules({"V6FLOW_CENTRAL_FLOWS": "a.b:f, a.b:g,c"}) == ["a.b", "c"]


def test_flows_without_login_outside_a_container_fail_clearly(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """No server, no Block, no container: a ValueError that says what to give."""
    for name in ("TOKEN_FILE", "HOST"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValueError, match="give 'server', 'credentials_block'"):
        asyncio.run(resolve_connection(None, image="img:1"))
    server = ServerParameters(url="http://127.0.0.1:1/api", username="u",
                              password="p")  # type: ignore[arg-type]
    connection = asyncio.run(resolve_connection(
        Federation(collaboration_id=2, server=server), image="img:1"))
    assert connection.source.get_async_client().base_url == "http://127.0.0.1:1/api"


def test_flows_in_a_container_take_the_proxy_collaboration_and_image_from_the_token(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A central task's flow without a ``federation``: the node proxy with the container
    token, and the token's collaboration and image (subtasks must use the same image)."""
    token_file = tmp_path / "token"
    token_file.write_text(make_token(collaboration_id=7, image="v6flow-test/own:1"))
    for name, value in {"HOST": "http://127.0.0.1", "PORT": "8080", "API_PATH": "",
                        "TOKEN_FILE": str(token_file)}.items():
        monkeypatch.setenv(name, value)
    connection = asyncio.run(resolve_connection(None, image="v6flow/summary:0.1.0"))
    assert isinstance(connection.source, ContainerConnection)
    assert connection.source.base_url == "http://127.0.0.1:8080"
    assert (connection.collaboration_id, connection.image) == (7, "v6flow-test/own:1")


def test_is_flow_tells_flows_from_functions() -> None:
    """Flows are recognised without importing Prefect in the wrapper."""
    from tests.v6flow.algorithm import central_flows

    assert is_flow(central_flows.context_report) and is_flow(central_flows.needs_positive)
    assert not is_flow(len) and not is_flow(central_flows.double)
