"""Account lockout: after N failed logins within a window the account is locked for as long.

Pure rules on an account's failure record; :mod:`v6flow_server.services.accounts` loads the record,
applies them and commits the result in a transaction of its own, so that the refusal that
follows cannot roll the count back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Failures:
    """An account's record of failed logins.

    Attributes:
        count: failures since ``since`` (0 when none are being counted).
        since: the first failure of the current window, or None.
        locked_until: the end of the current lock, or None.
    """

    count: int = 0
    since: datetime | None = None
    locked_until: datetime | None = None


@dataclass(frozen=True)
class LockoutPolicy:
    """``max_failed`` failures within ``window`` lock the account for ``window``."""

    max_failed: int
    window: timedelta

    def is_locked(self, failures: Failures, now: datetime) -> bool:
        """True while the lock lasts."""
        return failures.locked_until is not None and now < failures.locked_until

    def after_failure(self, failures: Failures, now: datetime) -> Failures:
        """The record after one more failure at ``now`` (a lock starts at the N-th)."""
        if self.is_locked(failures, now):
            return failures  # attempts during a lock neither count nor extend it
        fresh = failures.since is None or now - failures.since > self.window
        count = 1 if fresh else failures.count + 1
        since = now if fresh else failures.since
        if count >= self.max_failed:
            return Failures(count=0, since=None, locked_until=now + self.window)
        return Failures(count=count, since=since, locked_until=None)

    @staticmethod
    def after_success() -> Failures:
        """The record after a successful login (or a password reset): nothing counted."""
        return Failures()
