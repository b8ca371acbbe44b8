"""The audit trail: record a security event in one call, read the trail back (root only).

Recording is one line wherever the event happens::

    audit.record(session, event=AuditEvent.LOGIN_FAILED, actor=audit.Actor.user(user),
                 own_transaction=True, reason="wrong password")

``actor`` is an :class:`~v6flow_server.auth.principals.Identity` (whoever called), an
:class:`Actor` (e.g. the account a login is for) or None (anonymous). ``target`` names the
object acted on, ``("task", 12)``. The client address is taken from the request context
(bound by the access-log middleware, :func:`client_address`), so services never pass it.

Two ways an entry is stored:

- by default, in the request's transaction: it is stored with the action it describes and
  disappears with it when the request fails (a refused change changed nothing);
- with ``own_transaction=True``, whatever becomes of the request's transaction. That is for
  events that are failures themselves (a wrong password, a lockout, a refused token), whose
  request is rolled back. The entry is written right after the request's transaction ended,
  in a transaction of its own: on SQLite the request's transaction holds the write lock from
  its first statement, so a second transaction opened before it ended would wait for itself.

Entries never hold secrets or data: no password, token, API key, input or result. Details
are ids, flags, names and short reasons (strings are cut at :data:`MAX_TEXT` characters).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import Engine, Select, select
from sqlalchemy import event as orm_events
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, SessionTransaction

from v6flow.schemas.audit import AuditEvent
from v6flow.wire import utcnow
from v6flow_server.auth.permissions import ROOT_RULES
from v6flow_server.auth.principals import ContainerIdentity, Identity, NodeIdentity, UserIdentity
from v6flow_server.db.models import AuditEntry, User
from v6flow_server.errors import ForbiddenError

__all__ = ["Actor", "AuditEvent", "client_address", "list_entries", "record"]

log = structlog.get_logger(__name__)

#: Longest string kept in an entry's details.
MAX_TEXT = 200
#: A detail value: plain ids, flags and short texts only.
AuditValue = int | bool | str | None | list[int]

_CLIENT_ADDRESS: ContextVar[str | None] = ContextVar("v6flow_client_address", default=None)
_PENDING = "v6flow_audit_pending"
_LISTENING = "v6flow_audit_listening"


@contextmanager
def client_address(address: str | None) -> Iterator[None]:
    """Bind the address of the request being served (the access-log middleware does this)."""
    reset = _CLIENT_ADDRESS.set(address)
    try:
        yield
    finally:
        _CLIENT_ADDRESS.reset(reset)


@dataclass(frozen=True)
class Actor:
    """Who acted, as stored: ``user``/``node``/``container``/``anonymous``, an id, a name."""

    type: str
    id: int | None = None
    name: str | None = None

    @classmethod
    def user(cls, user: User) -> Actor:
        """The account a request acts as (e.g. the user a login attempt names)."""
        return cls("user", user.id, user.username)

    @classmethod
    def of(cls, who: Identity | Actor | None) -> Actor:
        """An identity as an actor (a container acts for its node); None is anonymous."""
        if who is None:
            return cls("anonymous")
        if isinstance(who, Actor):
            return who
        if isinstance(who, UserIdentity):
            return cls("user", who.user_id, who.username)
        if isinstance(who, ContainerIdentity):
            return cls("container", who.node_id)
        if isinstance(who, NodeIdentity):
            return cls("node", who.node_id)
        return cls(who.client_type.value)


def _clean(details: dict[str, AuditValue]) -> dict[str, AuditValue]:
    return {key: value[:MAX_TEXT] if isinstance(value, str) else value
            for key, value in details.items()}


def record(session: Session, *, event: AuditEvent, actor: Identity | Actor | None,
           target: tuple[str, int | None] | None = None, own_transaction: bool = False,
           **details: AuditValue) -> None:
    """Record one security event (see the module docstring for the two ways it is stored).

    Args:
        session: the request's session.
        event: what happened.
        actor: who did it (an identity, an :class:`Actor`, or None for anonymous).
        target: the object acted on, as ``(kind, id)``.
        own_transaction: store it even when the request's transaction is rolled back.
        **details: ids, flags and short reasons; never secrets or data.
    """
    who = Actor.of(actor)
    entry = AuditEntry(
        at=utcnow(), event=event.value, actor_type=who.type, actor_id=who.id,
        actor_name=who.name, target_type=target[0] if target else None,
        target_id=target[1] if target else None, client_address=_CLIENT_ADDRESS.get(),
        details=json.dumps(_clean(details), separators=(",", ":"), sort_keys=True),
    )
    if not own_transaction:
        session.add(entry)
        return
    if not session.in_transaction():  # nothing to wait for: write it now
        _write(session.get_bind(), [entry])
        return
    session.info.setdefault(_PENDING, []).append(entry)
    if not session.info.get(_LISTENING):  # write them when the outermost transaction ends
        session.info[_LISTENING] = True
        orm_events.listen(session, "after_transaction_end", _after_transaction_end)


def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is not None:  # a savepoint or an inner transaction
        return
    entries: list[AuditEntry] = session.info.pop(_PENDING, [])
    if entries:
        _write(session.get_bind(), entries)


def _write(bind: Any, entries: list[AuditEntry]) -> None:
    engine: Engine = bind.engine
    try:
        with Session(engine) as own, own.begin():
            own.add_all(entries)
    except SQLAlchemyError:  # the request's outcome stands; say loudly what was not stored
        log.exception("audit_write_failed", events=[e.event for e in entries])


def is_root(identity: Identity) -> bool:
    """A user who holds every rule (the Root role)."""
    return isinstance(identity, UserIdentity) and identity.rules >= ROOT_RULES


def list_entries(*, identity: Identity, event: AuditEvent | None = None,
                 actor_type: str | None = None, actor_id: int | None = None,
                 since: datetime | None = None, until: datetime | None = None,
                 ) -> Select[AuditEntry]:
    """Query of the trail, newest first; ``since`` is inclusive, ``until`` exclusive (UTC).

    Raises:
        ForbiddenError: the caller is not root.
    """
    if not is_root(identity):
        raise ForbiddenError("Only root may read the audit trail")
    stmt = select(AuditEntry).order_by(AuditEntry.id.desc())
    if event is not None:
        stmt = stmt.where(AuditEntry.event == event.value)
    if actor_type is not None:
        stmt = stmt.where(AuditEntry.actor_type == actor_type)
    if actor_id is not None:
        stmt = stmt.where(AuditEntry.actor_id == actor_id)
    if since is not None:
        stmt = stmt.where(AuditEntry.at >= since)
    if until is not None:
        stmt = stmt.where(AuditEntry.at < until)
    return stmt


def details_of(entry: AuditEntry) -> dict[str, Any]:
    """An entry's details as a dict (empty when unreadable)."""
    try:
        value = json.loads(entry.details or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
