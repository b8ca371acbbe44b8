"""Ports of algorithm runs and the addresses algorithm containers reach each other at.

An algorithm image declares the ports it listens on with ``EXPOSE`` (and names them with
``LABEL p<port>="<label>"``); the node registers them for each run (``POST /port``) and
removes them when the run ends (``DELETE /port?run_id=``). Containers of one job ask for the
addresses of their peers with ``GET /vpn/algorithm/addresses`` (CONTRACT §2.2).
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from v6flow.schemas.common import Id, Rel

#: The most ports one run may register (a Dockerfile rarely exposes more than a few).
MAX_PORTS_PER_RUN = 32
#: Longest port label (v4: ``_MAX_LEN_STR_SHORT``).
MAX_LABEL_LENGTH = 128

PortNumber = Field(ge=1, le=65535, description="A TCP port number (1 to 65535).")


class PortCreate(BaseModel):
    """``POST /port``: one port a run's container listens on (node only)."""

    port: int = PortNumber
    run_id: Id
    label: str | None = Field(None, max_length=MAX_LABEL_LENGTH,
                              description="The image's LABEL p<port> value, if any.")


class PortOut(BaseModel):
    """A registered port, with its run."""

    id: int
    port: int
    label: str | None = None
    run: Rel


class RunPortOut(BaseModel):
    """A port as a run's ``ports`` list shows it (without the run)."""

    id: int
    port: int
    label: str | None = None


class PortsDeletedOut(BaseModel):
    """``DELETE /port``."""

    msg: str
    deleted: int


class AlgorithmAddress(BaseModel):
    """Where a peer algorithm container listens (v4's keys, plus ``run_id``).

    The server answers the peer's node ``ip`` (None for v6flow nodes, which have no VPN) and the
    port the image exposes; a v6flow node proxy rewrites both into an address on the
    caller's own loopback that its node relays to the peer (docs/p2p.md).
    """

    ip: str | None = None
    port: int
    label: str | None = None
    organization_id: int
    task_id: int
    parent_id: int | None = None
    run_id: int


class AlgorithmAddressesOut(BaseModel):
    """``GET /vpn/algorithm/addresses``."""

    addresses: list[AlgorithmAddress] = Field(default_factory=list)
