"""Account recovery by mail: single-use, expiring reset tokens for a password or second factor.

A token is 256 random bits shown only in the mail; the database keeps its sha256. It works
once, for one purpose, until it expires. ``POST /recover/lost`` answers before the account
is even looked up (:func:`mail_password_token` runs after the response), so the answer for a
known and an unknown account is the same in status, body and time.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from enum import StrEnum

import structlog
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from v6flow.wire import utcnow
from v6flow_server.auth.passwords import hash_password, hash_reset_token
from v6flow_server.db.models import AccountToken, User
from v6flow_server.errors import BadRequestError
from v6flow_server.mail import Mail, Mailer, MailError
from v6flow_server.services import audit
from v6flow_server.services.accounts import (
    AccountRules,
    Enrolment,
    RefuseAfterCommit,
    enrol,
    failures_of,
    store_failures,
    where_login,
    with_password,
)
from v6flow_server.services.audit import AuditEvent

log = structlog.get_logger(__name__)

RECOVERY_ANSWER = "If the username or email is in our database you will soon receive an email."
PASSWORD_RESET_DONE = "The password has successfully been reset!"  # noqa: S105 - a message
TWO_FACTOR_MAILED = "You should have received an email that will allow you to reset your 2FA."
NO_MAIL = ("This server cannot send mail, so it cannot send you a reset token; ask an "
           "administrator")
NO_ADDRESS = "Your account has no e-mail address; ask an administrator"
NO_TWO_FACTOR = "This server does not use two-factor authentication"
TOKEN_INVALID = "The reset token is not valid"  # noqa: S105 - a message
TOKEN_USED = "The reset token has already been used"  # noqa: S105 - a message
TOKEN_EXPIRED = "The reset token has expired; ask for a new one"  # noqa: S105 - a message
#: Expired tokens are kept this long (so their use is answered 'expired'), then deleted.
KEEP_EXPIRED = timedelta(days=1)


class Purpose(StrEnum):
    """What a reset token may reset."""

    PASSWORD = "password"  # noqa: S105 - a purpose, not a secret
    TWO_FACTOR = "2fa"


_SUBJECTS = {Purpose.PASSWORD: "Password reset for your v6flow account",
             Purpose.TWO_FACTOR: "Two-factor authentication reset for your v6flow account"}
_HOW = {
    Purpose.PASSWORD: ("Set a new password with it: client.util.set_my_password(token, "
                       "new_password) in the vantage6 client, or POST /api/recover/reset "
                       "with {\"reset_token\", \"password\"}."),
    Purpose.TWO_FACTOR: ("Set up a new second factor with it: client.util.set_two_factor_auth"
                         "(token) in the vantage6 client, or POST /api/recover/2fa/reset with "
                         "{\"reset_token\"}. If you did not ask for this, someone knows your "
                         "password: change it."),
}


def _mail(user: User, purpose: Purpose, token: str, validity: timedelta) -> Mail:
    minutes = max(1, round(validity.total_seconds() / 60))
    body = "\n".join([
        f"Hello {user.firstname or user.username},",
        "",
        f"a reset of the {'password' if purpose is Purpose.PASSWORD else 'second factor'} "
        f"of the v6flow account '{user.username}' was requested.",
        "",
        f"Reset token: {token}",
        "",
        f"It works once and expires in about {minutes} minute(s).",
        _HOW[purpose],
        "",
        "If you did not ask for this, ignore this mail.",
    ])
    return Mail(to=user.email or "", subject=_SUBJECTS[purpose], body=body)


def _issue(session: Session, rules: AccountRules, user: User, purpose: Purpose,
           now: datetime) -> Mail | None:
    """A new token for ``user`` and its mail; None when one was mailed too recently."""
    session.execute(delete(AccountToken).where(AccountToken.expires_at < now - KEEP_EXPIRED))
    latest = session.scalar(select(AccountToken.created_at).where(
        AccountToken.user_id == user.id, AccountToken.purpose == purpose.value,
    ).order_by(AccountToken.created_at.desc()).limit(1))
    if latest is not None and now - latest < rules.between_mails:
        log.info("recovery_mail_skipped", user_id=user.id, purpose=purpose.value,
                 reason="one was sent recently")
        return None
    token = secrets.token_urlsafe(32)
    session.add(AccountToken(user_id=user.id, purpose=purpose.value,
                             token_hash=hash_reset_token(token), created_at=now,
                             expires_at=now + rules.token_validity))
    return _mail(user, purpose, token, rules.token_validity)


def send_quietly(mailer: Mailer, mail: Mail | None) -> None:
    """Send ``mail`` (after the response); a failure is logged, never raised."""
    if mail is None:
        return
    try:
        mailer.send(mail)
    except MailError as exc:
        log.warning("recovery_mail_failed", subject=mail.subject, error=str(exc))


def mail_password_token(*, sessions: sessionmaker[Session], mailer: Mailer,
                        rules: AccountRules, username: str | None, email: str | None,
                        now: datetime | None = None) -> None:
    """Mail a password reset token to the account named, if it exists and has an address.

    Runs after the response has been sent; it never raises (failures are logged).
    """
    now = now or utcnow()
    try:
        with sessions.begin() as session:
            user = session.scalar(select(User).where(where_login(username, email)))
            if user is None or not user.email:
                log.info("password_recovery_for_no_account")
                return
            mail = _issue(session, rules, user, Purpose.PASSWORD, now)
        send_quietly(mailer, mail)
    except Exception:
        log.exception("password_recovery_failed")


def request_two_factor_reset(*, sessions: sessionmaker[Session], mailer: Mailer,
                             rules: AccountRules, username: str | None, email: str | None,
                             password: str, now: datetime | None = None) -> Mail | None:
    """Check the password (a failure counts towards the lockout), then make a reset token.

    Returns:
        The mail to send (after the response), or None when one was sent recently.

    Raises:
        BadRequestError: the server has no second factor or cannot send mail, or the account
            has no e-mail address.
        UnauthorizedError: unknown account, wrong password, or the account is locked.
    """
    if not rules.two_factor_required:
        raise BadRequestError(NO_TWO_FACTOR)
    moment = now or utcnow()

    def on_success(session: Session, user: User) -> Mail | None:
        if not mailer.enabled:
            raise RefuseAfterCommit(BadRequestError(NO_MAIL))
        if not user.email:
            raise RefuseAfterCommit(BadRequestError(NO_ADDRESS))
        return _issue(session, rules, user, Purpose.TWO_FACTOR, moment)

    return with_password(sessions=sessions, rules=rules, where=where_login(username, email),
                         password=password, on_success=on_success, now=moment)


def _redeem(session: Session, token: str, purpose: Purpose, now: datetime) -> User:
    """Use up ``token`` for ``purpose`` and return its user.

    Raises:
        BadRequestError: unknown token (or one for another purpose), used, or expired.
    """
    row = session.scalar(select(AccountToken).where(
        AccountToken.token_hash == hash_reset_token(token)).with_for_update())
    if row is None or row.purpose != purpose.value:
        raise BadRequestError(TOKEN_INVALID)
    if row.used_at is not None:
        raise BadRequestError(TOKEN_USED)
    if now >= row.expires_at:
        raise BadRequestError(TOKEN_EXPIRED)
    user = session.get(User, row.user_id)
    if user is None:  # pragma: no cover - the token row is deleted with its user
        raise BadRequestError(TOKEN_INVALID)
    # This token and every other open one of the same purpose are spent.
    session.execute(update(AccountToken).where(
        AccountToken.user_id == user.id, AccountToken.purpose == purpose.value,
        AccountToken.used_at.is_(None)).values(used_at=now))
    return user


def reset_password(*, session: Session, rules: AccountRules, token: str, password: str,
                   now: datetime | None = None) -> str:
    """Set a new password with a mailed token; this also lifts a lockout.

    Returns:
        The message for the caller.

    Raises:
        BadRequestError: the token is not valid, used or expired, or the password breaks
            the policy (then the token stays usable).
    """
    now = now or utcnow()
    user = _redeem(session, token, Purpose.PASSWORD, now)
    rules.password_policy.check(password, username=user.username)
    user.password_hash = hash_password(password)
    was_locked = rules.lockout.is_locked(failures_of(user), now)
    store_failures(user, rules.lockout.after_success())
    actor = audit.Actor.user(user)
    audit.record(session, event=AuditEvent.PASSWORD_CHANGED, actor=actor,
                 target=("user", user.id), reason="reset by mail")
    if was_locked:
        audit.record(session, event=AuditEvent.ACCOUNT_UNLOCKED, actor=actor,
                     target=("user", user.id), reason="password reset")
    log.info("password_reset", user_id=user.id)
    return PASSWORD_RESET_DONE


def reset_two_factor(*, session: Session, rules: AccountRules, token: str,
                     now: datetime | None = None) -> Enrolment:
    """Replace the second factor with a fresh one (shown once) using a mailed token.

    Raises:
        BadRequestError: the token is not valid, used or expired.
    """
    user = _redeem(session, token, Purpose.TWO_FACTOR, now or utcnow())
    audit.record(session, event=AuditEvent.TWO_FACTOR_RESET, actor=audit.Actor.user(user),
                 target=("user", user.id))
    log.info("two_factor_reset", user_id=user.id)
    return enrol(session, rules, user)
