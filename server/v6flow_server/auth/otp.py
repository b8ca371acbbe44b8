"""Time-based one-time passwords (RFC 6238 through pyotp) and how their secrets are stored.

A code is accepted for the current 30-second step and one step either side (clock drift),
and only for a step later than the last one the account used: a code cannot be replayed,
not even within its own window. Secrets are kept encrypted (Fernet) with a key derived from
the server's OTP key, and are shown to the user exactly once, at enrolment.
"""

from __future__ import annotations

import base64
import hmac
import time

import pyotp
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

DIGITS = 6
STEP_SECONDS = 30
#: Steps accepted either side of the current one.
VALID_WINDOW = 1
_KDF_INFO = b"v6flow totp secrets"


class SecretUnreadable(Exception):
    """A stored secret cannot be decrypted (the OTP key changed)."""


def new_secret() -> str:
    """A fresh random base32 secret (160 bits)."""
    return pyotp.random_base32(length=32)


def provisioning_uri(secret: str, *, username: str, issuer: str) -> str:
    """The ``otpauth://totp/…`` URI an authenticator app reads from a QR code."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).provisioning_uri(
        name=username, issuer_name=issuer)


def current_step(now: float | None = None) -> int:
    """The number of the 30-second step at ``now`` (unix seconds)."""
    return int((time.time() if now is None else now) // STEP_SECONDS)


def code_at(secret: str, step: int) -> str:
    """The code of ``secret`` for ``step``."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).generate_otp(step)


def matching_step(secret: str, code: str, *, after_step: int | None,
                  now: float | None = None) -> int | None:
    """The step ``code`` belongs to, if it is valid now and newer than ``after_step``.

    Args:
        secret: the base32 secret.
        code: what the user typed (six digits).
        after_step: the last step this account used; that step and earlier ones are refused.
        now: unix time (tests); defaults to the clock.

    Returns:
        The matching step, or None when the code is wrong, outside the window or replayed.
    """
    if len(code) != DIGITS or not code.isdigit():
        return None
    here = current_step(now)
    for step in range(here - VALID_WINDOW, here + VALID_WINDOW + 1):
        if after_step is not None and step <= after_step:
            continue
        if hmac.compare_digest(code_at(secret, step), code):
            return step
    return None


class SecretBox:
    """Encrypts TOTP secrets for the database with a key derived from ``key_material``."""

    def __init__(self, key_material: str) -> None:
        """Derive the Fernet key (HKDF-SHA256) from the server's OTP key."""
        raw = HKDF(algorithm=SHA256(), length=32, salt=None, info=_KDF_INFO).derive(
            key_material.encode("utf-8"))
        self._fernet = Fernet(base64.urlsafe_b64encode(raw))

    def seal(self, secret: str) -> str:
        """The stored form of ``secret``."""
        return self._fernet.encrypt(secret.encode("ascii")).decode("ascii")

    def open(self, sealed: str) -> str:
        """The secret back from its stored form.

        Raises:
            SecretUnreadable: it was sealed with another key, or is damaged.
        """
        try:
            return self._fernet.decrypt(sealed.encode("ascii")).decode("ascii")
        except (InvalidToken, ValueError) as exc:
            raise SecretUnreadable("the second-factor secret cannot be decrypted") from exc
