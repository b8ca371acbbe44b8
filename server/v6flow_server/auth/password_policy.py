"""The password policy: the one place that decides whether a new password is acceptable.

Applied wherever a password is set: user creation, password change and password reset. A
refused password is a 400 whose message names the rule it broke.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from v6flow_server.errors import BadRequestError

COMMON_PASSWORDS_FILE = Path(__file__).with_name("common-passwords.txt")
#: A username shorter than this is only compared for equality, not searched inside passwords
#: (a one-letter username would otherwise forbid every password containing that letter).
MIN_USERNAME_TO_SEARCH = 3


class PasswordRule(StrEnum):
    """The rules of the policy, named in every refusal."""

    MIN_LENGTH = "min_length"
    NOT_USERNAME = "not_username"
    NOT_COMMON = "not_common"


class PasswordPolicyError(BadRequestError):
    """A password breaks a rule of the policy (400); ``rule`` names which."""

    def __init__(self, rule: PasswordRule, msg: str) -> None:
        super().__init__(f"{msg} (password rule '{rule.value}')")
        self.rule = rule


@functools.cache
def common_passwords() -> frozenset[str]:
    """The bundled list of common passwords, lower-cased."""
    lines = COMMON_PASSWORDS_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip().lower() for line in lines
                     if line.strip() and not line.lstrip().startswith("#"))


@dataclass(frozen=True)
class PasswordPolicy:
    """What a new password must satisfy."""

    min_length: int = 8

    def check(self, password: str, *, username: str) -> None:
        """Accept ``password`` for the account ``username`` or say which rule it breaks.

        Raises:
            PasswordPolicyError: too short, equal to or containing the username, or common.
        """
        if len(password) < self.min_length:
            raise PasswordPolicyError(
                PasswordRule.MIN_LENGTH,
                f"Password must be at least {self.min_length} characters long")
        lowered, name = password.lower(), username.strip().lower()
        if name and (lowered == name or (len(name) >= MIN_USERNAME_TO_SEARCH and name in lowered)):
            raise PasswordPolicyError(PasswordRule.NOT_USERNAME,
                                      "Password must not contain the username")
        if lowered in common_passwords():
            raise PasswordPolicyError(PasswordRule.NOT_COMMON,
                                      "Password is too common: choose one that is harder to "
                                      "guess")


#: The policy with its defaults (the ``password_min_length`` setting may raise the minimum).
DEFAULT_PASSWORD_POLICY = PasswordPolicy()
