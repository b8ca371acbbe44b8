"""``GET /vpn/algorithm/addresses``: where the other containers of the caller's job listen."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from v6flow.schemas import AlgorithmAddressesOut
from v6flow.schemas.port import MAX_LABEL_LENGTH
from v6flow_server.api.deps import ContainerPrincipal, WorkDep
from v6flow_server.api.openapi import errors
from v6flow_server.services import ports

router = APIRouter(tags=["vpn"])

Flag = Annotated[bool, Query(description="v4 sends 1 when set.")]
Label = Annotated[str | None, Query(max_length=MAX_LABEL_LENGTH,
                                    description="Only ports with this label.")]


@router.get("/vpn/algorithm/addresses", responses=errors(403))
def algorithm_addresses(work: WorkDep, container: ContainerPrincipal,
                        only_children: Flag = False, only_parent: Flag = False,
                        only_siblings: Flag = False, only_self: Flag = False,
                        include_children: Flag = False, include_parent: Flag = False,
                        label: Label = None) -> AlgorithmAddressesOut:
    """The ports registered by runs of the caller's task (and, as asked, its parent or
    children); containers only. A v6flow node proxy turns each into a loopback address."""
    query = ports.AddressFilter(
        only_children=only_children, only_parent=only_parent, only_siblings=only_siblings,
        only_self=only_self, include_children=include_children,
        include_parent=include_parent, label=label)
    found = ports.algorithm_addresses(session=work.session, container=container, query=query)
    return AlgorithmAddressesOut(addresses=found)
