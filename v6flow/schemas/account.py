"""Accounts: ``/password/change`` and the recovery routes ``/recover/*`` (v4 bodies)."""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import BaseModel, Field, model_validator

Password = Annotated[str, Field(min_length=1, max_length=1024)]
ResetToken = Annotated[str, Field(min_length=1, max_length=255,
                                  description="The token from the recovery mail.")]
_NAME = Field(default=None, max_length=255)
_ONE_OF = "give a username or an e-mail address"


class PasswordChange(BaseModel):
    """``PATCH /password/change``: the current password proves who asks."""

    current_password: Password
    new_password: Password


class PasswordRecover(BaseModel):
    """``POST /recover/lost``: mail a reset token to the account with this name or address."""

    username: str | None = _NAME
    email: str | None = _NAME

    @model_validator(mode="after")
    def _one_given(self) -> Self:
        if not (self.username or self.email):
            raise ValueError(_ONE_OF)
        return self


class PasswordReset(BaseModel):
    """``POST /recover/reset``: a mailed token and the new password."""

    reset_token: ResetToken
    password: Password


class TwoFactorRecover(BaseModel):
    """``POST /recover/2fa/lost``: the password proves who asks; a token is mailed."""

    username: str | None = _NAME
    email: str | None = _NAME
    password: Password

    @model_validator(mode="after")
    def _one_given(self) -> Self:
        if not (self.username or self.email):
            raise ValueError(_ONE_OF)
        return self


class TwoFactorReset(BaseModel):
    """``POST /recover/2fa/reset``: a mailed token; the answer is a new enrolment."""

    reset_token: ResetToken
