"""Lockout: N failed logins within the window lock the account for as long.

Before this, the failure counter was incremented in the request's transaction and rolled back
with the 401 (``failed_login_attempts`` stayed 0): ``test_failure_count_survives_the_refusal``
reproduces that.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import pytest

from tests.fixtures.server import ServerProcess
from tests.server.api.accounts_support import create_user, login, root_token, sql, start_backend
from tests.server.conftest import HTTP, World, auth, unique
from v6flow_server.auth.lockout import Failures, LockoutPolicy

MAX_FAILED = 3
LOCK_SECONDS = 6.0
FAILED = {"msg": "Failed to login"}


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def lock_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                postgres_databases: Callable[[], str]) -> Iterator[ServerProcess]:
    """A server that locks after 3 failures within 6 s, for 6 s."""
    proc = start_backend(request.param, tmp_path_factory, postgres_databases, {
        "V6FLOW_SERVER_MAX_FAILED_ATTEMPTS": str(MAX_FAILED),
        "V6FLOW_SERVER_INACTIVATION_IN_MINUTES": str(LOCK_SECONDS / 60)})
    yield proc
    proc.stop()


def _fail(proc: ServerProcess, username: str, times: int) -> None:
    for _ in range(times):
        response = login(proc.url, username, "not-the-password")
        assert (response.status_code, response.json()) == (401, FAILED)


def test_failure_count_survives_the_refusal(lock_server: ServerProcess) -> None:
    """Each 401 leaves its failure in the database (it is not rolled back with the error)."""
    username, _, user_id = create_user(lock_server.url, root_token(lock_server))
    _fail(lock_server, username, MAX_FAILED - 1)
    stored = sql(lock_server, 'SELECT failed_login_attempts FROM "user" WHERE id = :uid',
                 uid=user_id)
    assert stored == [(MAX_FAILED - 1,)]


def test_right_password_fails_while_locked(lock_server: ServerProcess) -> None:
    """After N failures the right password is refused with the wrong-password answer."""
    username, password, _ = create_user(lock_server.url, root_token(lock_server))
    _fail(lock_server, username, MAX_FAILED)
    response = login(lock_server.url, username, password)
    assert (response.status_code, response.json()) == (401, FAILED)


def test_lock_ends_after_its_time(lock_server: ServerProcess) -> None:
    """Once the lock time has passed, the right password works again."""
    username, password, _ = create_user(lock_server.url, root_token(lock_server))
    _fail(lock_server, username, MAX_FAILED)
    locked_at = time.monotonic()
    assert login(lock_server.url, username, password).status_code == 401
    time.sleep(max(0.0, LOCK_SECONDS + 0.5 - (time.monotonic() - locked_at)))
    assert login(lock_server.url, username, password).status_code == 200


def test_success_resets_the_count(lock_server: ServerProcess) -> None:
    """N-1 failures, a success, then N-1 failures again do not lock."""
    username, password, _ = create_user(lock_server.url, root_token(lock_server))
    _fail(lock_server, username, MAX_FAILED - 1)
    assert login(lock_server.url, username, password).status_code == 200
    _fail(lock_server, username, MAX_FAILED - 1)
    assert login(lock_server.url, username, password).status_code == 200


def test_locked_unknown_and_wrong_answer_alike(lock_server: ServerProcess) -> None:
    """A locked account, an unknown user and a wrong password get the same status and body."""
    username, password, _ = create_user(lock_server.url, root_token(lock_server))
    other, _, _ = create_user(lock_server.url, root_token(lock_server))
    _fail(lock_server, username, MAX_FAILED)
    answers = [login(lock_server.url, username, password),
               login(lock_server.url, unique("nobody"), password),
               login(lock_server.url, other, "not-the-password")]
    assert {(r.status_code, r.text) for r in answers} == {(401, '{"msg":"Failed to login"}')}


def test_wrong_current_password_on_change_counts(lock_server: ServerProcess) -> None:
    """Wrong current passwords at /password/change lock the account too."""
    username, password, _ = create_user(lock_server.url, root_token(lock_server))
    token = login(lock_server.url, username, password).json()["access_token"]
    for _ in range(MAX_FAILED):
        response = HTTP.patch(f"{lock_server.url}/password/change", headers=auth(token),
                              json={"current_password": "wrong-password-here",
                                    "new_password": "another-good-password"}, timeout=10)
        assert response.status_code == 401
    assert login(lock_server.url, username, password).status_code == 401


def test_concurrent_failures_are_all_counted(api_server: ServerProcess, world: World) -> None:
    """Four wrong logins at once leave a count of four (default limit 5: no lock yet)."""
    username, _, user_id = create_user(world.url, world.root_token)
    with ThreadPoolExecutor(4) as pool:
        codes = list(pool.map(lambda _: login(world.url, username, "wrong").status_code,
                              range(4)))
    assert codes == [401] * 4
    stored = sql(api_server, 'SELECT failed_login_attempts, locked_until FROM "user" '
                             "WHERE id = :uid", uid=user_id)
    assert stored == [(4, None)]


def _after(policy: LockoutPolicy, moments: list[datetime]) -> Failures:
    failures = Failures()
    for moment in moments:
        failures = policy.after_failure(failures, moment)
    return failures


def test_rules_count_only_failures_within_the_window() -> None:
    """N failures spread wider than the window do not lock; N within it do, for the window."""
    policy = LockoutPolicy(max_failed=3, window=timedelta(minutes=10))
    start = datetime(2026, 1, 1, 12, 0)
    spread = [start, start + timedelta(minutes=6), start + timedelta(minutes=12)]
    assert not policy.is_locked(_after(policy, spread), spread[-1])
    close = [start, start + timedelta(minutes=1), start + timedelta(minutes=2)]
    locked = _after(policy, close)
    assert locked.locked_until == close[-1] + timedelta(minutes=10)
    assert policy.is_locked(locked, close[-1] + timedelta(minutes=9, seconds=59))
    assert not policy.is_locked(locked, close[-1] + timedelta(minutes=10))


def test_rules_do_not_extend_a_lock() -> None:
    """Failures during a lock neither count nor move its end."""
    policy = LockoutPolicy(max_failed=2, window=timedelta(minutes=5))
    start = datetime(2026, 1, 1, 12, 0)
    locked = _after(policy, [start, start])
    assert policy.after_failure(locked, start + timedelta(minutes=4)) == locked
