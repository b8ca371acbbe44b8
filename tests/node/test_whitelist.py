"""The node whitelist: algorithm containers reach exactly the listed hosts and ports, through
the node's forward proxy, and nothing else (a 403 that says why, and a node log line).

Only services of this machine are used: two HTTP servers of the test on the host's loopback,
one on a listed port and one not, reached by the host's own name (which the node resolves).
"""

from __future__ import annotations

import http.server
import ipaddress
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
import yaml

from tests.fixtures.docker import ALGORITHMS_DIR, BuildImage
from tests.fixtures.federation import Federation, create_federation, shutdown_federation
from tests.fixtures.server import ServerProcess
from v6flow.errors import ConfigurationError
from v6flow.wire import result_from_wire
from v6flow_node.settings import Whitelist, load_settings
from v6flow_node.whitelist import WhitelistPolicy

P2P_IMAGE = "v6flow-test/p2p:latest"
PROXY = "http://127.0.0.1:3128"


# --- settings and policy -----------------------------------------------------------------
@pytest.mark.parametrize(("whitelist", "field"), [
    ({"ips": ["10.0.0.1", "300.1.1.1"]}, "whitelist.ips[1]"),
    ({"domains": ["ok.org", "not a name"]}, "whitelist.domains[1]"),
    ({"ports": [443, 70000]}, "whitelist.ports[1]"),
    ({"hosts": ["x"]}, "whitelist.hosts"),
])
def test_bad_whitelist_settings_name_the_field(tmp_path: Path, whitelist: dict[str, Any],
                                               field: str) -> None:
    """A wrong whitelist entry is a configuration error naming the entry."""
    config = tmp_path / "node.yaml"
    config.write_text(yaml.safe_dump({"server_url": "http://127.0.0.1:1/api", "api_key": "k",
                                      "task_dir": str(tmp_path), "whitelist": whitelist}))
    with pytest.raises(ConfigurationError) as caught:
        load_settings(config)
    assert caught.value.field == field


@pytest.mark.asyncio
async def test_policy_decisions() -> None:
    """Ports must be listed; hosts match by name, .suffix, address or network; a name not
    listed passes only when all its addresses are listed."""
    policy = WhitelistPolicy(Whitelist.model_validate({
        "domains": ["exact.example", ".trusted.example"],
        "ips": ["10.1.0.0/16", "127.0.0.1", "::1"], "ports": [443, 8080]}))
    cases = {  # only literal addresses and names in /etc/hosts: nothing leaves the machine
        ("exact.example", 22): False, ("10.1.2.3", 443): True, ("10.2.0.1", 443): False,
        ("[::1]", 443): True, ("127.0.0.2", 443): False, ("127.0.0.1", 8080): True,
        ("127.0.0.1", 80): False, ("localhost", 443): True,
    }
    for (host, port), allowed in cases.items():
        assert (await policy.decide(host, port)).allowed is allowed, (host, port)
    assert policy.domain_listed("a.b.trusted.example") and policy.domain_listed("trusted.example")
    assert not policy.domain_listed("untrusted.example")
    assert not policy.domain_listed("exact.example.evil")
    assert not policy.domain_listed("sub.exact.example")


# --- a node with a whitelist -------------------------------------------------------------
@dataclass
class Services:
    """Two HTTP servers on the host's loopback, reached by the host's name."""

    host: str
    listed: int
    unlisted: int


def _loopback_name() -> str:
    """This machine's name; it must resolve (on the host) to a loopback address."""
    name = socket.gethostname()
    address = ipaddress.ip_address(socket.gethostbyname(name))
    assert address.is_loopback, f"{name} resolves to {address}; the test needs loopback"
    return name


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"hello from {cast(http.server.HTTPServer, self.server).server_port}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def services() -> Iterator[Services]:
    """The listed and the unlisted service (threads of this test process)."""
    name = _loopback_name()
    address = socket.gethostbyname(name)
    servers = [http.server.ThreadingHTTPServer((address, 0), _Hello) for _ in range(2)]
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    for thread in threads:
        thread.start()
    yield Services(host=name, listed=servers[0].server_address[1],
                   unlisted=servers[1].server_address[1])
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def p2p_image(algorithm_image: BuildImage) -> str:
    """``v6flow-test/p2p:latest`` (its ``fetch`` goes through the proxy)."""
    return algorithm_image(ALGORITHMS_DIR / "p2p", P2P_IMAGE)


@pytest.fixture(scope="module")
def guarded(server: ServerProcess, base_image: str, p2p_image: str, services: Services,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    """One organization whose node whitelists the host's name and one port (not its
    address), and has peer-to-peer off."""
    fed = create_federation(server_url=server.url, root_password=server.root_password,
                            directory=tmp_path_factory.mktemp("whitelist"),
                            base_image=base_image, test_image=p2p_image, sizes=(30,))
    node = fed.nodes[0]
    assert fed.stop_node(node) == 0
    config = yaml.safe_load(node.config_path.read_text())
    config["whitelist"] = {"domains": [services.host], "ips": ["192.0.2.0/24"],
                           "ports": [services.listed]}
    config["peer_to_peer"] = False
    node.config_path.write_text(yaml.safe_dump(config))
    fed.start_node(node)
    fed.wait_online(node)
    yield fed
    shutdown_federation(fed)


def _run(fed: Federation, method: str, **kwargs: Any) -> Any:
    task = fed.create_task(method, kwargs=kwargs, databases=[])
    (run,) = fed.wait_for_runs(task["id"], timeout=90)
    assert run["status"] == "completed", run["log"]
    (item,) = fed.results(task["id"])
    return result_from_wire(item["result"])


def test_listed_name_and_port_are_reachable(guarded: Federation, services: Services) -> None:
    """GET through HTTP_PROXY reaches the listed service by the host's name, which the node
    resolves (the container cannot); the proxy variables are set, loopback is not proxied."""
    got = _run(guarded, "fetch", url=f"http://{services.host}:{services.listed}/")
    assert (got["status"], got["body"]) == (200, f"hello from {services.listed}")
    assert got["env"] == {"HTTP_PROXY": PROXY, "HTTPS_PROXY": PROXY, "http_proxy": PROXY,
                          "https_proxy": PROXY, "NO_PROXY": "localhost,127.0.0.1",
                          "no_proxy": "localhost,127.0.0.1"}
    assert _run(guarded, "resolve", name=services.host) == "gaierror"


def test_connect_tunnel_reaches_the_listed_service(guarded: Federation,
                                                   services: Services) -> None:
    """CONNECT host:port (what https clients do) opens a tunnel to the listed service."""
    got = _run(guarded, "fetch", url=f"http://{services.host}:{services.listed}/",
               tunnel=True)
    assert (got["status"], got["body"]) == (200, f"hello from {services.listed}")


def test_unlisted_port_is_refused_and_logged(guarded: Federation, services: Services) -> None:
    """A port not on the list: 403 naming it, and a 'whitelist refused' node log line."""
    got = _run(guarded, "fetch", url=f"http://{services.host}:{services.unlisted}/")
    assert got["status"] == 403
    assert f"port {services.unlisted} is not on this node's whitelist" in got["body"]
    log = guarded.nodes[0].log_text()
    assert "whitelist refused" in log and str(services.unlisted) in log


def test_unlisted_address_and_name_are_refused(guarded: Federation,
                                               services: Services) -> None:
    """The service's own address, and another name of it, are not listed: 403 for both
    (by HTTP and by CONNECT), although they lead to the same listed port."""
    address = socket.gethostbyname(services.host)
    by_address = _run(guarded, "fetch", url=f"http://{address}:{services.listed}/",
                      ignore_no_proxy=True)
    by_name = _run(guarded, "fetch", url=f"http://localhost:{services.listed}/",
                   ignore_no_proxy=True)
    tunnel = _run(guarded, "fetch", url=f"http://{address}:{services.listed}/", tunnel=True)
    assert by_address["status"] == 403 and f"address {address}" in by_address["body"]
    assert by_name["status"] == 403 and "host localhost" in by_name["body"]
    assert tunnel["status"] == 403


def test_v4_algorithm_api_calls_bypass_the_proxy(guarded: Federation,
                                                 v6compat_image: str) -> None:
    """A vantage6 4.15.2 central function (requests honours HTTP_PROXY) still reaches the
    node API at 127.0.0.1:8080: NO_PROXY keeps loopback direct."""
    org = guarded.organization_ids[0]
    task = guarded.create_task("central", image=v6compat_image, organization_ids=[org],
                               kwargs={"column": "age", "organizations": [org]})
    (run,) = guarded.wait_for_runs(task["id"], timeout=120)
    assert run["status"] == "completed", run["log"]


def test_node_without_peer_to_peer_registers_no_ports(guarded: Federation) -> None:
    """With peer_to_peer off, a run of an image that EXPOSEs ports has no address."""
    assert _run(guarded, "addresses", only_self=True) == []
