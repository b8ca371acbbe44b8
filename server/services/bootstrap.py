"""Start-up state: the rule table, default roles, the root user and the JWT secret."""

from __future__ import annotations

import secrets

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server.auth.passwords import hash_password
from server.auth.permissions import DEFAULT_ROLES, ROOT_ROLE, RULE_TABLE, rule_key
from server.db.models import Organization, Role, Rule, ServerSetting, User
from v6flow.errors import ConfigurationError

JWT_SECRET_KEY = "jwt_secret"  # noqa: S105 - the name of a row, not a secret
ROOT_USERNAME = "root"
ROOT_ORGANIZATION = "root"


def seed_rules_and_roles(*, session: Session) -> None:
    """Insert missing rules and make the global default roles hold exactly their rules."""
    existing = {rule_key(r.name, r.operation, r.scope) for r in session.scalars(select(Rule))}
    for key in RULE_TABLE:
        if key not in existing:
            session.add(Rule(name=key.resource.value, operation=key.operation.value,
                             scope=key.scope.value))
    session.flush()
    by_key = {(r.name, r.operation, r.scope): r for r in session.scalars(select(Rule))}
    for default in DEFAULT_ROLES:
        role = session.scalar(
            select(Role).where(Role.name == default.name, Role.organization_id.is_(None))
        )
        if role is None:
            role = Role(name=default.name, description=default.description,
                        organization_id=None, is_default_role=True)
            session.add(role)
        role.rules = [by_key[(k.resource.value, k.operation.value, k.scope.value)]
                      for k in sorted(default.rules)]
    session.flush()


def ensure_root_user(*, session: Session, root_password: str | None) -> bool:
    """Create organization and user ``root`` (role Root) when there are no users yet.

    Returns:
        True when the root user was created now.

    Raises:
        ConfigurationError: the database has no users and no root password was given.
    """
    if session.scalar(select(func.count()).select_from(User)):
        return False
    if not root_password:
        raise ConfigurationError(
            "root_password",
            "the database has no users yet; set V6FLOW_SERVER_ROOT_PASSWORD so the first "
            "start can create the user 'root'",
        )
    organization = session.scalar(
        select(Organization).where(Organization.name == ROOT_ORGANIZATION))
    if organization is None:
        organization = Organization(name=ROOT_ORGANIZATION)
        session.add(organization)
        session.flush()
    root_role = session.scalar(
        select(Role).where(Role.name == ROOT_ROLE, Role.organization_id.is_(None))
    )
    user = User(username=ROOT_USERNAME, password_hash=hash_password(root_password),
                firstname="Root", lastname="User", organization_id=organization.id,
                failed_login_attempts=0, roles=[root_role] if root_role else [])
    session.add(user)
    session.flush()
    return True


def jwt_secret(*, session: Session) -> str:
    """The signing key kept in the database; generated once on the very first start."""
    stored = session.get(ServerSetting, JWT_SECRET_KEY)
    if stored is not None:
        return stored.value
    value = secrets.token_urlsafe(48)
    try:
        with session.begin_nested():
            session.add(ServerSetting(key=JWT_SECRET_KEY, value=value))
    except IntegrityError:  # another replica won the race: use its secret
        stored = session.get(ServerSetting, JWT_SECRET_KEY)
        if stored is None:
            raise
        return stored.value
    return value
