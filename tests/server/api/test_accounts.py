"""Passwords (policy, change, argon2 hashes) and the rate limits of the token endpoints."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from alembic import command
from argon2 import PasswordHasher
from sqlalchemy import text

from tests.fixtures.server import ServerProcess
from tests.server.api.accounts_support import create_user, login, root_token, sql, start_backend
from tests.server.conftest import HTTP, World, auth, unique
from v6flow_node.proxy import ProxyServer
from v6flow_server.db.migrate import alembic_config
from v6flow_server.db.session import make_engine

PER_ADDRESS = 5
PER_USERNAME = 3
MIN_LENGTH = 12


def _new_user(world: World, password: str, username: str | None = None) -> httpx.Response:
    username = username or unique("user")
    return world.call("POST", "/user", json={"username": username, "password": password,
                                             "firstname": "Po", "lastname": "Licy"})


# --- password policy -------------------------------------------------------------------------

def test_policy_refuses_the_username_in_the_password(world: World) -> None:
    """A password containing the username (any case) is a 400 naming the rule."""
    username = unique("alice")
    response = _new_user(world, f"My{username.upper()}!", username)
    assert response.status_code == 400
    assert response.json()["msg"] == ("Password must not contain the username "
                                      "(password rule 'not_username')")


def test_policy_refuses_a_common_password(world: World) -> None:
    """A password from the bundled list of common ones (any case) is a 400 naming the rule."""
    for common in ("password123", "QwErTy123"):
        response = _new_user(world, common)
        assert response.status_code == 400
        assert "'not_common'" in response.json()["msg"]


def test_policy_accepts_a_good_password(world: World) -> None:
    """A long random password passes."""
    assert _new_user(world, secrets.token_urlsafe(12)).status_code == 201


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def strict(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
           postgres_databases: Callable[[], str]) -> Iterator[ServerProcess]:
    """A server with small rate limits and a 12-character minimum password length."""
    proc = start_backend(request.param, tmp_path_factory, postgres_databases, {
        "V6FLOW_SERVER_RATE_LIMIT_PER_ADDRESS": f"{PER_ADDRESS}/minute",
        "V6FLOW_SERVER_RATE_LIMIT_PER_USERNAME": f"{PER_USERNAME}/minute",
        "V6FLOW_SERVER_PASSWORD_MIN_LENGTH": str(MIN_LENGTH)})
    yield proc
    proc.stop()


def test_policy_minimum_length_is_a_setting(strict: ServerProcess) -> None:
    """With password_min_length=12, 11 characters are refused and 12 accepted."""
    token = root_token(strict)
    body = {"username": unique("user"), "firstname": "Mi", "lastname": "Len"}
    short = HTTP.post(f"{strict.url}/user", headers=auth(token), timeout=10,
                      json={**body, "password": "x7Kq2mVw9Lp"})
    assert short.status_code == 400
    assert short.json()["msg"] == ("Password must be at least 12 characters long "
                                   "(password rule 'min_length')")
    enough = HTTP.post(f"{strict.url}/user", headers=auth(token), timeout=10,
                       json={**body, "password": "x7Kq2mVw9Lp3"})
    assert enough.status_code == 201


# --- password change -------------------------------------------------------------------------

def _change(url: str, token: str, current: str, new: str) -> httpx.Response:
    return HTTP.patch(f"{url}/password/change", headers=auth(token), timeout=10,
                      json={"current_password": current, "new_password": new})


def test_change_password(world: World) -> None:
    """v4's body changes the password: the new one logs in, the old one no longer."""
    username, password, _ = create_user(world.url, world.root_token)
    token = login(world.url, username, password).json()["access_token"]
    new = secrets.token_urlsafe(12)
    response = _change(world.url, token, password, new)
    assert (response.status_code, response.json()) == (
        200, {"msg": "The password has been changed successfully!"})
    assert login(world.url, username, new).status_code == 200
    assert login(world.url, username, password).status_code == 401


def test_change_password_refusals(world: World) -> None:
    """Wrong current password 401; the same password or one the policy refuses 400."""
    username, password, _ = create_user(world.url, world.root_token)
    token = login(world.url, username, password).json()["access_token"]
    wrong = _change(world.url, token, "not-my-password", secrets.token_urlsafe(12))
    same = _change(world.url, token, password, password)
    weak = _change(world.url, token, password, "password123")
    assert (wrong.status_code, wrong.json()) == (401, {"msg": "Failed to login"})
    assert (same.status_code, same.json()) == (
        400, {"msg": "New password is the same as current password!"})
    assert weak.status_code == 400 and "'not_common'" in weak.json()["msg"]
    assert login(world.url, username, password).status_code == 200


def test_change_password_is_for_users_only(world: World) -> None:
    """A node token is refused with 403."""
    node_token = world.node_token(world.org_ids[0])
    response = _change(world.url, node_token, "whatever-it-is", secrets.token_urlsafe(12))
    assert response.status_code == 403


# --- argon2 hashes ---------------------------------------------------------------------------

def _stored_hash(proc: ServerProcess, user_id: int) -> str:
    return str(sql(proc, 'SELECT password_hash FROM "user" WHERE id = :uid', uid=user_id)[0][0])


def _scrypt_hash(password: str) -> str:
    """The format v6flow stored before argon2: ``scrypt$n$r$p$salt$hash`` (base64)."""
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    return (f"scrypt${2**14}$8$1${base64.b64encode(salt).decode()}$"
            f"{base64.b64encode(digest).decode()}")


def test_new_passwords_are_stored_as_argon2id(api_server: ServerProcess, world: World) -> None:
    """A created user's hash is argon2id and verifies with argon2-cffi itself."""
    _, password, user_id = create_user(world.url, world.root_token)
    stored = _stored_hash(api_server, user_id)
    assert stored.startswith("$argon2id$")
    assert PasswordHasher().verify(stored, password)


def test_root_password_is_stored_as_argon2id(api_server: ServerProcess) -> None:
    """The bootstrap root user gets the same hasher."""
    stored = sql(api_server, "SELECT password_hash FROM \"user\" WHERE username = 'root'")[0][0]
    assert PasswordHasher().verify(stored, api_server.root_password)


def test_scrypt_hash_is_rehashed_to_argon2_on_login(api_server: ServerProcess,
                                                    world: World) -> None:
    """An old scrypt hash still logs in, and is then replaced by an argon2id hash."""
    username, password, user_id = create_user(world.url, world.root_token)
    sql(api_server, 'UPDATE "user" SET password_hash = :h WHERE id = :uid',
        h=_scrypt_hash(password), uid=user_id)
    assert login(world.url, username, "not-the-password").status_code == 401
    assert _stored_hash(api_server, user_id).startswith("scrypt$")
    assert login(world.url, username, password).status_code == 200
    stored = _stored_hash(api_server, user_id)
    assert stored.startswith("$argon2id$") and PasswordHasher().verify(stored, password)
    assert login(world.url, username, password).status_code == 200


# --- rate limits -----------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def _one_rate_window(request: pytest.FixtureRequest) -> None:
    """Tests on the rate-limited server start with at least 20 s left in the limit's window.

    The limits are sliding-window counters over windows aligned to the clock's minutes: a
    sequence that straddles a window's end is weighed partly by the previous window, so the
    (N+1)-th hit could pass and the test would fail by the clock, not by the server.
    """
    if "strict" in request.fixturenames:
        left = 60.0 - time.time() % 60.0
        if left < 20.0:
            time.sleep(left + 0.5)


def _from(address: str) -> httpx.Client:
    """A client whose connections come from ``address`` (any 127.x address is loopback)."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=10)


def _assert_429(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert response.json()["msg"].startswith("Too many requests")


def test_login_limit_per_address(strict: ServerProcess) -> None:
    """The (N+1)-th login from one address within a minute is 429; another address is not."""
    with _from("127.0.0.2") as client:
        for _ in range(PER_ADDRESS):
            assert login(strict.url, unique("nobody"), "pw", client=client).status_code == 401
        _assert_429(login(strict.url, unique("nobody"), "pw", client=client))
    with _from("127.0.0.3") as other:
        assert login(strict.url, unique("nobody"), "pw", client=other).status_code == 401


def test_login_limit_per_username(strict: ServerProcess) -> None:
    """One username gets N attempts a minute, from all addresses together."""
    username = unique("target")
    for index in range(PER_USERNAME):
        with _from(f"127.0.1.{index + 1}") as client:
            assert login(strict.url, username, "pw", client=client).status_code == 401
    with _from("127.0.1.200") as client:
        _assert_429(login(strict.url, username, "pw", client=client))


def test_forwarded_for_does_not_pick_the_address(strict: ServerProcess) -> None:
    """A local caller that varies X-Forwarded-For is still counted for its own address.

    uvicorn trusts that header from 127.0.0.1 unless told otherwise, so the caller here is
    127.0.0.1 (which earlier tests may have used: a 429 must come within N+1 requests).
    """
    with _from("127.0.0.1") as client:
        answers = []
        for i in range(PER_ADDRESS + 1):
            answers.append(client.post(f"{strict.url}/token/user",
                                       headers={"X-Forwarded-For": f"10.0.0.{i}"},
                                       json={"username": unique("nobody"), "password": "pw"}))
            if answers[-1].status_code == 429:
                break
    _assert_429(answers[-1])


ENDPOINTS: dict[str, Callable[[httpx.Client, str], httpx.Response]] = {
    "token/node": lambda c, url: c.post(f"{url}/token/node", json={"api_key": str(uuid.uuid4())}),
    "token/refresh": lambda c, url: c.post(f"{url}/token/refresh", headers=auth("garbage")),
    "recover/lost": lambda c, url: c.post(f"{url}/recover/lost",
                                          json={"username": unique("u")}),
    "recover/reset": lambda c, url: c.post(f"{url}/recover/reset",
                                           json={"reset_token": "x", "password": "y"}),
    "recover/2fa/lost": lambda c, url: c.post(f"{url}/recover/2fa/lost",
                                              json={"username": unique("u"), "password": "p"}),
    "recover/2fa/reset": lambda c, url: c.post(f"{url}/recover/2fa/reset",
                                               json={"reset_token": "x"}),
    "password/change": lambda c, url: c.patch(f"{url}/password/change", headers=auth("garbage"),
                                              json={"current_password": "a",
                                                    "new_password": "b"}),
}


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_every_credential_endpoint_is_limited(strict: ServerProcess, endpoint: str) -> None:
    """Each token and recovery endpoint answers 429 past the per-address limit."""
    address = f"127.0.2.{list(ENDPOINTS).index(endpoint) + 1}"  # a budget of its own
    with _from(address) as client:
        answers = [ENDPOINTS[endpoint](client, strict.url) for _ in range(PER_ADDRESS + 1)]
    assert all(a.status_code != 429 for a in answers[:-1]), [a.status_code for a in answers]
    _assert_429(answers[-1])


@pytest.fixture
async def node_proxy(strict: ServerProcess, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """A node's real proxy (v6flow_node.proxy) in front of the server; yields a container's client.

    The proxy's upstream connections come from 127.0.3.1, the node's address here.
    """
    upstream = httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(local_address="127.0.3.1"))
    proxy = ProxyServer(server_url=strict.url, socket_path=tmp_path / "p" / "proxy.sock",
                        client=upstream)
    await proxy.start()
    caller = httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(uds=str(proxy.socket_path)),
                               base_url="http://127.0.0.1:8080", timeout=10)
    yield caller
    await caller.aclose()
    await proxy.stop()
    await upstream.aclose()


@pytest.mark.asyncio(loop_scope="session")
async def test_token_endpoints_are_out_of_reach_through_a_node_proxy(
        node_proxy: httpx.AsyncClient, strict: ServerProcess) -> None:
    """A container cannot log in through its node's proxy at all: the proxy refuses (403)
    before the server sees it, so the refusals use none of the node address's logins."""
    answers = [await node_proxy.post("/token/user", headers={"X-Forwarded-For": f"10.9.9.{i}"},
                                     json={"username": unique("nobody"), "password": "pw"})
               for i in range(PER_ADDRESS + 1)]
    assert [a.status_code for a in answers] == [403] * (PER_ADDRESS + 1)
    with _from("127.0.3.1") as node_address:
        direct = [login(strict.url, unique("nobody"), "pw", client=node_address)
                  for _ in range(PER_ADDRESS)]
    assert [a.status_code for a in direct] == [401] * PER_ADDRESS


# --- migration -------------------------------------------------------------------------------

@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_migration_keeps_users_and_their_roles(backend: str, tmp_path: Path,
                                               postgres_url: Callable[[], str]) -> None:
    """0001 → head → 0001 → head loses no user, role membership or failure count."""
    url = f"sqlite:///{tmp_path}/m.sqlite" if backend == "sqlite" else postgres_url()
    engine = make_engine(url)
    config = alembic_config(engine)
    try:
        command.upgrade(config, "0001")
        with engine.begin() as conn:
            for statement in (
                "INSERT INTO organization (id, name) VALUES (1, 'o')",
                "INSERT INTO authenticatable (id, type) VALUES (1, 'user')",
                'INSERT INTO "user" (id, username, password_hash, organization_id, '
                "failed_login_attempts) VALUES (1, 'u', 'h', 1, 2)",
                "INSERT INTO role (id, name, is_default_role) VALUES (1, 'r', false)",
                "INSERT INTO user_role (user_id, role_id) VALUES (1, 1)",
            ):
                conn.execute(text(statement))
        for target in ("head", "0001", "head"):
            (command.upgrade if target == "head" else command.downgrade)(config, target)
            with engine.connect() as conn:
                assert conn.execute(text("SELECT count(*) FROM user_role")).scalar() == 1
                assert conn.execute(text(
                    'SELECT username, failed_login_attempts FROM "user"')).all() == [("u", 2)]
    finally:
        engine.dispose()
