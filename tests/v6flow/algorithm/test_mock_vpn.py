"""client.vpn on the mock: v4's address filters over the mock's runs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.v6flow.algorithm.conftest import ALGORITHMS
from v6flow.algorithm import MockAlgorithmClient
from v6flow.errors import BadRequest

ORG_IDS = [4, 9, 2]
PORTS = {8888: "exchange", 9999: "bench"}


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> MockAlgorithmClient:
    """A mock of three organizations whose runs expose 8888 and 9999."""
    monkeypatch.syspath_prepend(str(ALGORITHMS / "p2p"))
    frames = [[pd.DataFrame({"x": [i]})] for i in range(len(ORG_IDS))]
    return MockAlgorithmClient(frames, "v6flow_p2p_algos", organization_ids=ORG_IDS,
                               exposed_ports=PORTS)


def _seen(client: MockAlgorithmClient, orgs: list[int], **options: object) -> list[list[
        tuple[int, int, str]]]:
    task = client.task.create({"method": "addresses", "kwargs": options}, orgs)
    return [sorted((a["organization_id"], a["port"], a["label"]) for a in found)
            for found in client.wait_for_results(task["id"])]


def test_siblings_see_each_other_not_themselves(client: MockAlgorithmClient) -> None:
    """only_siblings: each run sees the other organizations' ports, labelled."""
    seen = _seen(client, [4, 9], only_siblings=True)
    assert seen == [[(9, 8888, "exchange"), (9, 9999, "bench")],
                    [(4, 8888, "exchange"), (4, 9999, "bench")]]


def test_label_and_self_filters(client: MockAlgorithmClient) -> None:
    """only_self keeps the run's own ports; label keeps one port of every run."""
    assert _seen(client, [2], only_self=True) == [[(2, 8888, "exchange"), (2, 9999, "bench")]]
    assert _seen(client, [4, 9], label="bench") == [[(4, 9999, "bench"), (9, 9999, "bench")]] * 2


def test_two_only_options_are_refused(client: MockAlgorithmClient) -> None:
    """Two only_* options are a 400, as on the server."""
    with pytest.raises(BadRequest):
        client.vpn.get_addresses(only_self=True, only_parent=True)
