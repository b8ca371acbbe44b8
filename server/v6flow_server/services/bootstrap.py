"""Start-up state: the rule table, default roles, the root user and the JWT secret.

The JWT signing key is never kept in the database: whoever reads a backup could forge
tokens. It comes from the settings, or from a file beside the database (mode 0600, written
once). Databases of earlier versions kept it in ``server_setting``; :func:`load_jwt_secret`
moves it into the file and deletes the row, so tokens issued before the upgrade stay valid.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from v6flow.errors import ConfigurationError
from v6flow_server.auth.passwords import hash_password
from v6flow_server.auth.permissions import DEFAULT_ROLES, ROOT_ROLE, RULE_TABLE, rule_key
from v6flow_server.db.models import Organization, Role, Rule, ServerSetting, User

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


def load_jwt_secret(*, session: Session, configured: str | None, secret_file: Path) -> str:
    """The signing key: the configured one, or the file's; a key left in the database moves out.

    Raises:
        ConfigurationError: the file cannot be read or written, is empty, or holds another key
            than the one the database still carries (field ``jwt_secret_file``).
    """
    stored = session.get(ServerSetting, JWT_SECRET_KEY)
    if stored is not None:
        legacy = stored.value
        session.delete(stored)
        session.flush()
        if configured:
            return configured  # the database's key was not in use
        write_secret_file(secret_file, legacy)
        return legacy
    if configured:
        return configured
    return read_secret_file(secret_file, create=True)


def _config_error(secret_file: Path, reason: str) -> ConfigurationError:
    return ConfigurationError("jwt_secret_file", f"{secret_file}: {reason}")


def read_secret_file(secret_file: Path, *, create: bool) -> str:
    """The key in ``secret_file``; with ``create``, a new one is written first when missing.

    Raises:
        ConfigurationError: unreadable, empty, or not creatable.
    """
    if create and not secret_file.exists():
        try:
            write_secret_file(secret_file, secrets.token_urlsafe(48))
        except ConfigurationError:
            if not secret_file.exists():
                raise
    try:
        value = secret_file.read_text(encoding="utf-8").strip()
        mode = stat.S_IMODE(secret_file.stat().st_mode)
    except OSError as exc:
        raise _config_error(secret_file, f"cannot read the key ({exc.strerror})") from exc
    if not value:
        raise _config_error(secret_file, "the file is empty")
    if mode & 0o077:
        raise _config_error(secret_file, f"others may read the key (mode {mode:o}); "
                                         "chmod 600 it")
    return value


def write_secret_file(secret_file: Path, value: str) -> None:
    """Write ``value`` to a new file only its owner may read; an identical file is kept.

    The key is written to a temporary file that is then hard-linked into place, so a reader
    (another replica starting at the same moment) never sees a half-written file.

    Raises:
        ConfigurationError: the file exists with another key, or cannot be written.
    """
    temporary = secret_file.with_name(f".{secret_file.name}.{secrets.token_hex(4)}")
    try:
        secret_file.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(value + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.link(temporary, secret_file)
    except FileExistsError:
        if read_secret_file(secret_file, create=False) != value:
            raise _config_error(
                secret_file, "holds another key than the one this database used; tokens "
                             "issued by this server need the database's key: move the file "
                             "away and start again") from None
    except OSError as exc:
        raise _config_error(secret_file, f"cannot create the key file ({exc.strerror})") from exc
    finally:
        temporary.unlink(missing_ok=True)
