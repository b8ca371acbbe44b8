"""Routes for the audit trail of security events (root only)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query

from v6flow.schemas import AuditEntryOut, AuditEvent, Page
from v6flow_server.api.deps import UserPrincipal, WorkDep
from v6flow_server.api.openapi import errors
from v6flow_server.api.pagination import PageDep, paginate_query
from v6flow_server.api.params import IdQuery
from v6flow_server.db.models import AuditEntry
from v6flow_server.services import audit

router = APIRouter(tags=["audit"])

MomentQuery = Annotated[datetime | None, Query(
    description="ISO datetime; without a zone it is read as UTC.")]
ActorTypeQuery = Annotated[str | None, Query(
    max_length=16, description="'user', 'node', 'container' or 'anonymous'.")]


def _utc(moment: datetime | None) -> datetime | None:
    """Naive UTC, as stored."""
    if moment is None or moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


def _entry_out(entry: AuditEntry) -> AuditEntryOut:
    return AuditEntryOut(
        id=entry.id, at=entry.at, event=AuditEvent(entry.event), actor_type=entry.actor_type,
        actor_id=entry.actor_id, actor_name=entry.actor_name, target_type=entry.target_type,
        target_id=entry.target_id, client_address=entry.client_address,
        details=audit.details_of(entry))


@router.get("/audit", responses=errors(403))
def list_audit(work: WorkDep, identity: UserPrincipal, page: PageDep,
               event: AuditEvent | None = None, actor_type: ActorTypeQuery = None,
               actor_id: IdQuery = None, since: MomentQuery = None,
               until: MomentQuery = None) -> Page[AuditEntryOut]:
    """The audit trail, newest first: logins, lockouts, role and key changes, kills, deletes.

    ``since`` is inclusive and ``until`` exclusive. Root only.
    """
    stmt = audit.list_entries(identity=identity, event=event, actor_type=actor_type,
                              actor_id=actor_id, since=_utc(since), until=_utc(until))

    def shape(rows: Sequence[AuditEntry]) -> list[AuditEntryOut]:
        return [_entry_out(row) for row in rows]

    return paginate_query(work.session, stmt, page, shape)
