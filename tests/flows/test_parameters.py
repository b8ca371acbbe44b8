"""The ``Federation`` flow parameter: validation, the connection order, flat v4 kwargs."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from v6flow.algorithm.central import fold_flat_kwargs
from v6flow_flows.parameters import Federation, ServerParameters, resolve_connection
from v6flow_flows.summary import SUMMARY_IMAGE
from v6flow_flows.summary.flow import summary_statistics

LOGIN = ServerParameters(url="http://127.0.0.1:9/api", username="u",
                         password="p")  # type: ignore[arg-type]


def test_server_and_credentials_block_together_are_refused() -> None:
    """Two logins are ambiguous: the error names both fields."""
    with pytest.raises(ValidationError, match="'server' or 'credentials_block'"):
        Federation(collaboration_id=1, server=LOGIN, credentials_block="x")


def test_unknown_keys_are_refused_naming_them() -> None:
    """A misspelt setting is an error, not silently ignored."""
    with pytest.raises(ValidationError, match="retires"):
        Federation.model_validate({"collaboration_id": 1, "retires": 3})


async def test_no_login_outside_a_node_container_is_a_clear_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Without server, credentials_block or collaboration_block the message says so."""
    monkeypatch.delenv("TOKEN_FILE", raising=False)
    with pytest.raises(ValueError, match="'server', 'credentials_block'"):
        await resolve_connection(Federation(collaboration_id=1), image=SUMMARY_IMAGE)


async def test_ad_hoc_connection_takes_the_flow_image_unless_given() -> None:
    """The flow's own image is the default; every other setting is passed through."""
    default = await resolve_connection(Federation(collaboration_id=2, server=LOGIN,
                                                  organizations=[3], retries=0),
                                       image=SUMMARY_IMAGE)
    chosen = await resolve_connection(Federation(collaboration_id=2, server=LOGIN,
                                                 image="mine:1", timeout_seconds=5),
                                      image=SUMMARY_IMAGE)
    assert (default.image, default.collaboration_id, default.organizations,
            default.retries) == (SUMMARY_IMAGE, 2, [3], 0)
    assert (chosen.image, chosen.timeout_seconds, chosen.organizations) == ("mine:1", 5, None)


def test_flat_v4_kwargs_go_into_the_federation_parameter() -> None:
    """A central task's ``{"retries": 0, "columns": [...]}`` calls the flow with
    ``federation={"retries": 0}``; values given inside ``federation`` win."""
    folded = fold_flat_kwargs(summary_statistics.fn, {
        "columns": ["age"], "retries": 0, "timeout_seconds": 120,
        "federation": {"retries": 2}})
    assert folded == {"columns": ["age"],
                      "federation": {"retries": 2, "timeout_seconds": 120}}
    assert summary_statistics.validate_parameters(folded)["federation"].retries == 2


def test_kwargs_no_parameter_takes_are_left_for_the_flow_to_refuse() -> None:
    """An unknown keyword stays, so Prefect's parameter check names it."""
    assert fold_flat_kwargs(summary_statistics.fn, {"nonsense": 1}) == {"nonsense": 1}
