"""Routes that recover an account by mail: a lost password or a lost second factor.

``/recover/lost`` answers before it looks the account up, the same for every body; the
lookup and the mail happen after the response (FastAPI background task).
"""

from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks

from v6flow.schemas import (
    Msg,
    PasswordRecover,
    PasswordReset,
    TwoFactorEnrolmentOut,
    TwoFactorRecover,
    TwoFactorReset,
)
from v6flow_server.api.accounts import MailerDep, RulesDep, limit
from v6flow_server.api.deps import StateDep, WorkDep
from v6flow_server.api.openapi import errors
from v6flow_server.auth.ratelimit import LimitGroup
from v6flow_server.services import recovery

router = APIRouter(prefix="/recover", tags=["account"],
                   dependencies=[limit(LimitGroup.RECOVER)])


@router.post("/lost", responses=errors(429))
def recover_password(body: PasswordRecover, state: StateDep, rules: RulesDep,
                     mailer: MailerDep, background: BackgroundTasks) -> Msg:
    """Ask for a password reset token by mail (by username or e-mail address).

    The answer is the same whether or not the account exists.
    """
    for name in (body.username, body.email):
        if name:
            state.rate_limiter.check_username(name)
    background.add_task(recovery.mail_password_token, sessions=state.session_factory,
                        mailer=mailer, rules=rules, username=body.username, email=body.email)
    return Msg(msg=recovery.RECOVERY_ANSWER)


@router.post("/reset", responses=errors(429))
def reset_password(body: PasswordReset, work: WorkDep, rules: RulesDep) -> Msg:
    """Set a new password with the token from the mail (it works once)."""
    return Msg(msg=recovery.reset_password(session=work.session, rules=rules,
                                           token=body.reset_token, password=body.password))


@router.post("/2fa/lost", responses=errors(401, 429))
def recover_two_factor(body: TwoFactorRecover, state: StateDep, rules: RulesDep,
                       mailer: MailerDep, background: BackgroundTasks) -> Msg:
    """Ask for a second-factor reset token by mail; the password proves who asks.

    A wrong password counts as a failed login (lockout).
    """
    for name in (body.username, body.email):
        if name:
            state.rate_limiter.check_username(name)
    mail = recovery.request_two_factor_reset(
        sessions=state.session_factory, mailer=mailer, rules=rules, username=body.username,
        email=body.email, password=body.password)
    background.add_task(recovery.send_quietly, mailer, mail)
    return Msg(msg=recovery.TWO_FACTOR_MAILED)


@router.post("/2fa/reset", responses=errors(429))
def reset_two_factor(body: TwoFactorReset, work: WorkDep,
                     rules: RulesDep) -> TwoFactorEnrolmentOut:
    """Replace the second factor with the token from the mail; the new secret is shown once."""
    enrolment = recovery.reset_two_factor(session=work.session, rules=rules,
                                          token=body.reset_token)
    return TwoFactorEnrolmentOut(qr_uri=enrolment.qr_uri, otp_secret=enrolment.secret,
                                 msg=enrolment.msg)
