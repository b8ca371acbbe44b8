"""User authentication as an ``httpx.Auth``: login, bearer header, one refresh on 401.

One class serves the sync and the async client: the flow itself (:meth:`UserAuth.auth_flow`)
is I/O-free; only reading the bodies of the login/refresh answers differs, so those two
wrappers are overridden. Bodies of other responses are never read here, which keeps
streaming responses (the SSE event stream) streaming.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator
from typing import Any

import httpx
import jwt
from pydantic import ValidationError

from v6flow._http_errors import raise_for_response
from v6flow.errors import AuthenticationError
from v6flow.schemas import Msg, TokenPairOut, UserLogin

LOGIN_PATH = "token/user"
REFRESH_PATH = "token/refresh"


class UserAuth(httpx.Auth):
    """Bearer-token auth for a user: logs in when needed and refreshes once on a 401.

    Args:
        base_url: server API root, e.g. ``http://127.0.0.1:7601/api``.
        username: user name for ``POST /token/user`` (None when only a token is given).
        password: the user's password.
        access_token: an existing access token to start with.
        refresh_token: an existing refresh token to start with.
    """

    requires_response_body = False

    def __init__(self, base_url: str | httpx.URL, *, username: str | None = None,
                 password: str | None = None, access_token: str | None = None,
                 refresh_token: str | None = None) -> None:
        if access_token is None and (username is None or password is None):
            raise ValueError("give username and password, or an access token")
        root = str(base_url).rstrip("/") + "/"
        self._login_url = httpx.URL(root + LOGIN_PATH)
        self._refresh_url = httpx.URL(root + REFRESH_PATH)
        self._username = username
        self._password = password
        self.access_token = access_token
        self.refresh_token = refresh_token

    # -- the I/O-free flow ---------------------------------------------------------------
    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Log in if needed, send with the bearer token, refresh (or re-login) once on 401."""
        if self.access_token is None:
            yield from self._login()
        request.headers["Authorization"] = f"Bearer {self.access_token}"
        response = yield request
        if response.status_code != 401:
            return
        if not (yield from self._renew()):
            return  # nothing to renew with: the caller maps the 401
        request.headers["Authorization"] = f"Bearer {self.access_token}"
        yield request

    def login_flow(self) -> Generator[httpx.Request, httpx.Response, None]:
        """The login exchange alone (``POST /token/user``), for an explicit ``login()``."""
        return self._login()

    def _login(self) -> Generator[httpx.Request, httpx.Response, None]:
        if self._username is None or self._password is None:
            raise AuthenticationError("the access token was refused and no password is known")
        try:
            login = UserLogin(username=self._username, password=self._password)
        except ValidationError as exc:  # never echo the values: one is the password
            fields = ", ".join(str(e["loc"][0]) for e in exc.errors())
            raise AuthenticationError(f"cannot log in: {fields} not acceptable") from None
        response = yield httpx.Request("POST", self._login_url,
                                       json=login.model_dump(exclude_none=True))
        raise_for_response(response)
        self._store(response.json())

    def _renew(self) -> Generator[httpx.Request, httpx.Response, bool]:
        """Refresh the tokens; fall back to a new login. False when neither is possible."""
        if self.refresh_token is not None:
            response = yield httpx.Request(
                "POST", self._refresh_url,
                headers={"Authorization": f"Bearer {self.refresh_token}"},
            )
            if response.status_code == 200:
                self._store(response.json())
                return True
        if self._username is None or self._password is None:
            return False
        yield from self._login()
        return True

    def _store(self, body: Any) -> None:
        try:
            pair = TokenPairOut.model_validate(body)
        except ValidationError:
            try:
                message = Msg.model_validate(body).msg
            except ValidationError:
                message = "the login answer carries no token pair"
            raise AuthenticationError(message) from None
        self.access_token = pair.access_token
        self.refresh_token = pair.refresh_token

    # -- transports: read only the auth answers ------------------------------------------
    def _is_auth_request(self, request: httpx.Request) -> bool:
        return request.url in (self._login_url, self._refresh_url)

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        """Drive :meth:`auth_flow`, reading the bodies of login/refresh answers."""
        flow = self.auth_flow(request)
        outgoing = next(flow)
        while True:
            response = yield outgoing
            if self._is_auth_request(outgoing):
                response.read()
            try:
                outgoing = flow.send(response)
            except StopIteration:
                return

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """Async twin of :meth:`sync_auth_flow`."""
        flow = self.auth_flow(request)
        outgoing = next(flow)
        while True:
            response = yield outgoing
            if self._is_auth_request(outgoing):
                await response.aread()
            try:
                outgoing = flow.send(response)
            except StopIteration:
                return


def token_subject(access_token: str) -> Any:
    """The ``sub`` claim of a JWT, decoded without verification (the user id for users)."""
    return jwt.decode(access_token, options={"verify_signature": False}).get("sub")
