"""Accounts: password logins with lockout and a TOTP second factor, and password changes.

Every check of a password runs in three steps, so that a refusal cannot undo what it counts:

1. a short transaction reads the account (its hash and nothing else);
2. the password is verified outside any transaction (argon2 takes a while, and SQLite would
   hold its write lock meanwhile);
3. a second transaction locks the row, applies the lockout rules, records the failure or the
   success, and **commits**; only then is the refusal raised.

That is why these functions take a ``sessionmaker`` and not the request's session. An unknown
username costs the same argon2 verification (against a dummy hash) as a known one, and a
locked account answers exactly like a wrong password.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

import structlog
from sqlalchemy import ColumnElement, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from v6flow.schemas.audit import AuditEvent
from v6flow.wire import utcnow
from v6flow_server.auth import otp
from v6flow_server.auth.lockout import Failures, LockoutPolicy
from v6flow_server.auth.password_policy import PasswordPolicy, PasswordPolicyError
from v6flow_server.auth.passwords import dummy_hash, hash_password, verify_and_update
from v6flow_server.auth.principals import ClientType, UserIdentity
from v6flow_server.auth.tokens import TokenIssuer, TokenPair
from v6flow_server.db.models import ServerSetting, User
from v6flow_server.errors import (
    BadRequestError,
    ForbiddenError,
    ServerDomainError,
    UnauthorizedError,
)
from v6flow_server.services import audit
from v6flow_server.services.auth import resolve_identity
from v6flow_server.settings import ServerSettings

log = structlog.get_logger(__name__)

LOGIN_FAILED = "Failed to login"
CODE_NEEDED = "Please include your two-factor authentication code"
CODE_WRONG = "Your two-factor authentication code is incorrect"
SECRET_UNREADABLE = "Your second factor cannot be checked: reset it (/recover/2fa/lost)"  # noqa: S105
ENROLMENT_MSG = ("This server requires two-factor authentication. Add the QR code (or the "
                 "secret) to your authenticator app, then log in again with the code it shows. "
                 "The secret is shown only this once.")
SAME_PASSWORD = "New password is the same as current password!"  # noqa: S105 - a message
PASSWORD_CHANGED = "The password has been changed successfully!"  # noqa: S105 - a message
OTP_KEY_SETTING = "otp_key"

T = TypeVar("T")


@dataclass(frozen=True)
class AccountRules:
    """The account settings of the server, as the services use them."""

    password_policy: PasswordPolicy
    lockout: LockoutPolicy
    two_factor_required: bool
    two_factor_issuer: str
    otp_key: str | None
    token_validity: timedelta
    between_mails: timedelta

    @classmethod
    def from_settings(cls, settings: ServerSettings) -> AccountRules:
        """Read them from the server settings."""
        window = timedelta(minutes=settings.inactivation_in_minutes)
        return cls(
            password_policy=PasswordPolicy(min_length=settings.password_min_length),
            lockout=LockoutPolicy(max_failed=settings.max_failed_attempts, window=window),
            two_factor_required=settings.two_factor_auth,
            two_factor_issuer=settings.two_factor_issuer,
            otp_key=(settings.otp_encryption_key.get_secret_value()
                     if settings.otp_encryption_key else None),
            token_validity=timedelta(minutes=settings.email_token_validity_minutes),
            between_mails=timedelta(minutes=settings.between_user_emails_minutes),
        )


@dataclass(frozen=True)
class LoggedIn:
    """A successful login: the user and their tokens."""

    user_id: int
    pair: TokenPair


@dataclass(frozen=True)
class Enrolment:
    """A new second factor, to be shown once."""

    qr_uri: str
    secret: str
    msg: str = ENROLMENT_MSG


@dataclass(frozen=True)
class CodeNeeded:
    """The password was right; the second-factor code is missing."""

    msg: str = CODE_NEEDED


LoginOutcome = LoggedIn | Enrolment | CodeNeeded


class RefuseAfterCommit(Exception):
    """Raised by an ``on_success`` step: commit what was recorded, then raise ``error``."""

    def __init__(self, error: ServerDomainError) -> None:
        super().__init__(error.msg)
        self.error = error


# --- the password check in three steps -------------------------------------------------------

def where_login(username: str | None, email: str | None) -> ColumnElement[bool]:
    """The account a login or recovery names: by username when given, else by e-mail."""
    return User.username == username if username else User.email == (email or "")


def _read_hash(sessions: sessionmaker[Session],
               where: ColumnElement[bool]) -> tuple[int, str] | None:
    with sessions() as session:
        row = session.execute(select(User.id, User.password_hash).where(where)).first()
    return (row[0], row[1]) if row else None


def failures_of(user: User) -> Failures:
    """The lockout record of ``user``."""
    return Failures(count=user.failed_login_attempts or 0, since=user.failed_login_since,
                    locked_until=user.locked_until)


def record_failure(session: Session, rules: AccountRules, user: User, now: datetime, *,
                   reason: str) -> None:
    """Count a failed login of ``user`` and audit it (and the lock it may cause)."""
    failures = rules.lockout.after_failure(failures_of(user), now)
    store_failures(user, failures)
    actor = audit.Actor.user(user)
    audit.record(session, event=AuditEvent.LOGIN_FAILED, actor=actor, reason=reason)
    if rules.lockout.is_locked(failures, now):
        audit.record(session, event=AuditEvent.ACCOUNT_LOCKED, actor=actor,
                     failed_attempts=failures.count)


def store_failures(user: User, failures: Failures) -> None:
    """Write a lockout record back to ``user``."""
    user.failed_login_attempts = failures.count
    user.failed_login_since = failures.since
    user.locked_until = failures.locked_until


def with_password(*, sessions: sessionmaker[Session], rules: AccountRules,
                  where: ColumnElement[bool], password: str,
                  on_success: Callable[[Session, User], T],
                  now: datetime | None = None) -> T:
    """Check the password of the account ``where`` names, then run ``on_success``.

    The failure (or what ``on_success`` records) is committed before any refusal is raised.
    ``on_success`` runs inside the committing transaction with the row locked; it raises
    :class:`RefuseAfterCommit` to refuse after the commit, or any other error to roll
    everything back.

    Raises:
        UnauthorizedError: unknown account, wrong password, or the account is locked (all
            ``Failed to login``); or what ``on_success`` refuses.
    """
    now = now or utcnow()
    seen = _read_hash(sessions, where)
    matches, new_hash = verify_and_update(password, seen[1] if seen else dummy_hash())
    if seen is None:
        with sessions.begin() as session:  # the name is not kept: often a misplaced password
            audit.record(session, event=AuditEvent.LOGIN_FAILED, actor=None,
                         reason="unknown username")
        raise UnauthorizedError(LOGIN_FAILED)
    user_id, seen_hash = seen
    refusal: ServerDomainError | None = None
    with sessions.begin() as session:
        user = session.get(User, user_id, with_for_update=True, populate_existing=True)
        if user is None or user.password_hash != seen_hash:  # deleted or changed meanwhile
            raise UnauthorizedError(LOGIN_FAILED)
        user.last_login_attempt = now
        failures = failures_of(user)
        if rules.lockout.is_locked(failures, now):
            audit.record(session, event=AuditEvent.LOGIN_FAILED, actor=audit.Actor.user(user),
                         reason="account locked")
            refusal = UnauthorizedError(LOGIN_FAILED)
        elif not matches:
            record_failure(session, rules, user, now, reason="wrong password")
            refusal = UnauthorizedError(LOGIN_FAILED)
        else:
            if new_hash is not None:  # an old scrypt hash (or older argon2 parameters)
                user.password_hash = new_hash
            try:
                result = on_success(session, user)
            except RefuseAfterCommit as refused:
                refusal = refused.error
    if refusal is not None:  # raised only now: the transaction above has committed
        raise refusal
    return result


# --- the second factor -----------------------------------------------------------------------

def secret_box(session: Session, rules: AccountRules) -> otp.SecretBox:
    """The box that seals TOTP secrets: the configured key, else one kept in the database."""
    if rules.otp_key:
        return otp.SecretBox(rules.otp_key)
    stored = session.get(ServerSetting, OTP_KEY_SETTING)
    if stored is None:
        key = otp.new_secret() + otp.new_secret()
        try:
            with session.begin_nested():
                session.add(ServerSetting(key=OTP_KEY_SETTING, value=key))
        except IntegrityError:  # another request created it first: use theirs
            stored = session.get(ServerSetting, OTP_KEY_SETTING, populate_existing=True)
            if stored is None:
                raise
            key = stored.value
        return otp.SecretBox(key)
    return otp.SecretBox(stored.value)


def enrol(session: Session, rules: AccountRules, user: User) -> Enrolment:
    """Give ``user`` a fresh secret (sealed in the row) and the one answer that shows it."""
    secret = otp.new_secret()
    user.otp_secret = secret_box(session, rules).seal(secret)
    user.otp_confirmed = False
    user.otp_last_step = None
    return Enrolment(qr_uri=otp.provisioning_uri(secret, username=user.username,
                                                 issuer=rules.two_factor_issuer),
                     secret=secret)


def _second_factor(session: Session, rules: AccountRules, user: User, code: str | None,
                   now: datetime) -> Enrolment | CodeNeeded | None:
    """None when the code is right; otherwise what to answer instead of tokens.

    Raises:
        RefuseAfterCommit: the code is wrong (counted as a failed login) or unreadable.
    """
    if user.otp_secret is None:
        return enrol(session, rules, user)
    if not code:
        return CodeNeeded()
    try:
        secret = secret_box(session, rules).open(user.otp_secret)
    except otp.SecretUnreadable:
        log.warning("otp_secret_unreadable", user_id=user.id)
        raise RefuseAfterCommit(UnauthorizedError(SECRET_UNREADABLE)) from None
    step = otp.matching_step(secret, code, after_step=user.otp_last_step, now=time.time())
    if step is None:  # wrong, too old, or already used: a failed login
        record_failure(session, rules, user, now, reason="wrong second-factor code")
        raise RefuseAfterCommit(UnauthorizedError(CODE_WRONG))
    user.otp_last_step = step
    user.otp_confirmed = True
    return None


# --- the services ----------------------------------------------------------------------------

def login(*, sessions: sessionmaker[Session], issuer: TokenIssuer, rules: AccountRules,
          username: str, password: str, mfa_code: str | None = None,
          now: datetime | None = None) -> LoginOutcome:
    """Log a user in with a password (and a TOTP code when the server requires one).

    Returns:
        :class:`LoggedIn` with tokens; or, with ``two_factor_auth`` on, :class:`Enrolment`
        (once, for a user without a second factor) or :class:`CodeNeeded`.

    Raises:
        UnauthorizedError: unknown user, wrong password, locked account (one message for
            all three), or a wrong, expired or replayed code.
    """
    moment = now or utcnow()

    def on_success(session: Session, user: User) -> LoginOutcome:
        if rules.two_factor_required:
            answer = _second_factor(session, rules, user, mfa_code, moment)
            if answer is not None:
                return answer
        store_failures(user, rules.lockout.after_success())
        user.last_seen = moment
        audit.record(session, event=AuditEvent.LOGIN, actor=audit.Actor.user(user))
        roles = [role.name for role in user.roles]
        return LoggedIn(user.id, issuer.issue_pair(subject_id=user.id,
                                                   client_type=ClientType.USER, roles=roles))

    return with_password(sessions=sessions, rules=rules, where=User.username == username,
                         password=password, on_success=on_success, now=moment)


def change_password(*, sessions: sessionmaker[Session], issuer: TokenIssuer,
                    rules: AccountRules, token: str, current_password: str,
                    new_password: str, now: datetime | None = None) -> str:
    """Change the caller's password; a wrong current password counts as a failed login.

    Returns:
        The message for the caller.

    Raises:
        UnauthorizedError: bad token, wrong current password, or a locked account.
        ForbiddenError: the token is not a user's.
        BadRequestError: the new password equals the current one or breaks the policy.
    """
    with sessions() as session:
        identity = resolve_identity(session=session, issuer=issuer, token=token)
    if not isinstance(identity, UserIdentity):
        raise ForbiddenError(f"This endpoint is not available to {identity.client_type.value} "
                             "tokens (allowed: user)")

    def on_success(_session: Session, user: User) -> str:
        if current_password == new_password:
            raise RefuseAfterCommit(BadRequestError(SAME_PASSWORD))
        try:
            rules.password_policy.check(new_password, username=user.username)
        except PasswordPolicyError as exc:
            raise RefuseAfterCommit(exc) from None
        user.password_hash = hash_password(new_password)
        store_failures(user, rules.lockout.after_success())
        audit.record(_session, event=AuditEvent.PASSWORD_CHANGED, actor=audit.Actor.user(user))
        log.info("password_changed", user_id=user.id)
        return PASSWORD_CHANGED

    return with_password(sessions=sessions, rules=rules, where=User.id == identity.user_id,
                         password=current_password, on_success=on_success, now=now)
