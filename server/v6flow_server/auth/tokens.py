"""JSON Web Tokens (HS256) with the v4 claim set: user, node, refresh and container tokens."""

from __future__ import annotations

import contextlib
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import jwt

from v6flow_server.errors import UnauthorizedError

ALGORITHM = "HS256"
#: How many verified tokens :meth:`TokenIssuer.decode` remembers.
VERIFIED_CACHE_SIZE = 4096


class TokenType(StrEnum):
    """The ``type`` claim."""

    ACCESS = "access"
    REFRESH = "refresh"


@dataclass(frozen=True)
class TokenPair:
    """What a login or refresh hands out."""

    access_token: str
    refresh_token: str


class TokenIssuer:
    """Signs and verifies tokens with one secret."""

    def __init__(self, *, secret: str, access_minutes: int, refresh_minutes: int) -> None:
        """Keep the key and lifetimes; the secret is never logged."""
        self._secret = secret
        self._access = timedelta(minutes=access_minutes)
        self._refresh = timedelta(minutes=refresh_minutes)
        #: token → its verified claims (insertion order: the first is the oldest)
        self._verified: dict[str, dict[str, Any]] = {}

    def _claims(self, *, sub: Any, client_type: str, token_type: TokenType,
                lifetime: timedelta | None, roles: list[str]) -> dict[str, Any]:
        now = datetime.now(UTC)
        claims: dict[str, Any] = {
            "fresh": False,
            "iat": now,
            "jti": str(uuid.uuid4()),
            "type": token_type.value,
            "sub": sub,
            "nbf": now,
            "client_type": client_type,
            "roles": roles,
        }
        if token_type is TokenType.ACCESS:
            claims["csrf"] = str(uuid.uuid4())
        if lifetime is not None:
            claims["exp"] = now + lifetime
        return claims

    def _encode(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def issue_pair(self, *, subject_id: int, client_type: str,
                   roles: list[str] | None = None) -> TokenPair:
        """Access + refresh token for a user or node; ``sub`` is the integer id (v4)."""
        roles = roles or []
        access = self._claims(sub=subject_id, client_type=client_type,
                              token_type=TokenType.ACCESS, lifetime=self._access, roles=roles)
        refresh = self._claims(sub=subject_id, client_type=client_type,
                               token_type=TokenType.REFRESH, lifetime=self._refresh, roles=roles)
        return TokenPair(self._encode(access), self._encode(refresh))

    def issue_container(self, sub: dict[str, Any], *, lifetime: timedelta | None = None) -> str:
        """Container token: ``sub`` is an identity dict (v4); ``exp`` only with ``lifetime``.

        v4 container tokens have no ``exp``. The server also rejects a container token once
        its run is finished (``services.auth``), so ``lifetime`` is only the upper bound.
        """
        claims = self._claims(sub=sub, client_type="container", token_type=TokenType.ACCESS,
                              lifetime=lifetime, roles=[])
        return self._encode(claims)

    def decode(self, token: str, *, expected_type: TokenType) -> dict[str, Any]:
        """Verify signature, time claims and type; raise UnauthorizedError otherwise.

        A request checks its token up to three times (body limit, identity, access log), and
        a client sends the same token for minutes: a token whose signature was verified is
        remembered (:data:`VERIFIED_CACHE_SIZE` tokens) with its claims, and only its expiry
        is checked again. Refused tokens are never remembered.
        """
        claims = self._verified.get(token)
        if claims is None:
            claims = self._verify(token)
            if len(self._verified) >= VERIFIED_CACHE_SIZE:
                with contextlib.suppress(KeyError, StopIteration, RuntimeError):
                    del self._verified[next(iter(self._verified))]  # the oldest
            self._verified[token] = claims
        elif "exp" in claims and claims["exp"] <= time.time():
            self._verified.pop(token, None)
            raise UnauthorizedError("Token has expired")
        if claims.get("type") != expected_type.value:
            raise UnauthorizedError(f"Only {expected_type.value} tokens are accepted here")
        return dict(claims)

    def _verify(self, token: str) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token, self._secret, algorithms=[ALGORITHM],
                options={"verify_sub": False, "require": ["iat", "sub", "type"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise UnauthorizedError("Token has expired") from exc
        except jwt.PyJWTError as exc:
            raise UnauthorizedError("Invalid token") from exc
        return claims
