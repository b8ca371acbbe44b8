"""A vantage6 4.15.2 algorithm whose partials talk over ``client.vpn`` runs unmodified."""

from __future__ import annotations

import hashlib

import pytest

from tests.fixtures.docker import ALGORITHMS_DIR, V6COMPAT_REQUIREMENTS, BuildImage
from tests.fixtures.federation import Federation
from v6flow.wire import result_from_wire

P2P_V4_IMAGE = "v6flow-test/p2p-v4:latest"


@pytest.fixture(scope="session")
def p2p_v4_image(algorithm_image: BuildImage) -> str:
    """``v6flow-test/p2p-v4:latest``: vantage6-algorithm-tools 4.15.2 only, EXPOSE 8888."""
    return algorithm_image(ALGORITHMS_DIR / "p2p_v4", P2P_V4_IMAGE,
                           requirements=V6COMPAT_REQUIREMENTS)


def test_v4_vpn_algorithm_exchanges_data_between_its_partials(
    federation: Federation, p2p_v4_image: str
) -> None:
    """The central function starts two partials on two nodes; one finds the other with
    get_sibling_addresses and sends it 1 MB; both sides report the digest the test computes."""
    # Prepare
    size, seed = 1_000_000, "v4-vpn-e2e"
    central_org, *partial_orgs = federation.organization_ids
    # Execute
    task = federation.create_task("central", image=p2p_v4_image,
                                  organization_ids=[central_org], databases=[],
                                  kwargs={"size": size, "organizations": partial_orgs,
                                          "seed": seed}, name="v4-p2p-central")
    (run,) = federation.wait_for_runs(task["id"], timeout=240)
    assert run["status"] == "completed", run["log"]
    (item,) = federation.results(task["id"])
    result = result_from_wire(item["result"])
    # Assert
    expected = hashlib.sha256(hashlib.shake_256(seed.encode()).digest(size)).hexdigest()
    roles = {r["role"]: r for r in result["results"]}
    assert result["exchanged"] is True
    assert roles["listener"]["sha256"] == roles["sender"]["reply"] == expected
    assert roles["listener"]["organization_id"] == min(partial_orgs)
    assert roles["sender"]["peer"]["ip"] == "127.0.0.1"
    subtask = federation.get(f"task/{result['subtask_id']}")
    assert subtask["job_id"] == task["job_id"] and subtask["parent"]["id"] == task["id"]
