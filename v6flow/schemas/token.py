"""Logins and tokens: ``/token/user``, ``/token/node``, ``/token/refresh``, ``/token/container``.

A user login answers one of three shapes (CONTRACT §3.1): a :class:`TokenPairOut`; a
:class:`TwoFactorEnrolmentOut` once, when the server requires a second factor and the user
has none yet; or :class:`~v6flow.schemas.common.Msg` asking for the code.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, BeforeValidator, Field

from v6flow.schemas.common import Id, SingleLine, StoredText


def _code_text(value: Any) -> Any:
    """v4 clients may send the code as a number: ``12345`` is the code ``012345``."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**6:
        return f"{value:06d}"
    return value


MfaCode = Annotated[str, BeforeValidator(_code_text), Field(max_length=16)]


class UserLogin(BaseModel):
    """``POST /token/user``."""

    username: SingleLine = Field(min_length=1, max_length=255)
    password: StoredText = Field(min_length=1, max_length=1024)
    mfa_code: MfaCode | None = Field(
        default=None, description="The six-digit code of the authenticator app (text or number).")


class NodeLogin(BaseModel):
    """``POST /token/node``: the API key must be a UUID."""

    api_key: UUID


class ContainerTokenRequest(BaseModel):
    """``POST /token/container`` (sent by a node for the container it is about to start)."""

    task_id: Id
    image: SingleLine = Field(min_length=1, max_length=1024)


class TokenPairOut(BaseModel):
    """A login or refresh: an access token, a refresh token and where to refresh it.

    ``user_url`` is set for users, ``node_url`` for nodes.
    """

    access_token: str
    refresh_token: str
    refresh_url: str
    user_url: str | None = None
    node_url: str | None = None


class ContainerTokenOut(BaseModel):
    """``POST /token/container``."""

    container_token: str


class TwoFactorEnrolmentOut(BaseModel):
    """The one answer that shows a new TOTP secret: scan ``qr_uri``, then log in with a code.

    Given by ``POST /token/user`` when the server requires a second factor and the user has
    none, and by ``POST /recover/2fa/reset``. The secret is never shown again.
    """

    qr_uri: str = Field(description="otpauth:// URI for an authenticator app (as a QR code).")
    otp_secret: str = Field(description="The base32 secret, for typing it in by hand.")
    msg: str
