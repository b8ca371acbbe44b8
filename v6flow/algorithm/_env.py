"""The container side of the node→algorithm contract: env decoding and the container token.

The node base32-encodes every env value (CONTRACT §1.2). :func:`decode_environ` undoes that in
place, exactly like the reference ``wrap_algorithm``; the decorators then read plain values.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from v6flow.errors import DeserializationError, MissingEnvironment
from v6flow.wire import decode_env_value

#: Env var names of the contract a node sets for every run.
CONTRACT_ENV = (
    "INPUT_FILE", "OUTPUT_FILE", "TOKEN_FILE", "TEMPORARY_FOLDER", "HOST", "PORT", "API_PATH",
    "USER_REQUESTED_DATABASE_LABELS",
)


def decode_environ(environ: MutableMapping[str, str] | None = None) -> None:
    """Decode every value of ``environ`` (default ``os.environ``) in place.

    Values that are not valid base32 stay as they are (``PATH``, ``HOME``, hand-set values).
    """
    env = os.environ if environ is None else environ
    for key in list(env):
        env[key] = decode_env_value(env[key])


def require_env(name: str, environ: MutableMapping[str, str] | None = None) -> str:
    """Value of a contract env var.

    Raises:
        MissingEnvironment: the variable is not set.
    """
    env = os.environ if environ is None else environ
    try:
        return env[name]
    except KeyError:
        raise MissingEnvironment(name) from None


def read_token(path: str | os.PathLike[str]) -> str:
    """Read the container JWT from ``TOKEN_FILE`` (stripped)."""
    try:
        return Path(path).read_text(encoding="ascii").strip()
    except OSError as exc:
        raise MissingEnvironment(f"TOKEN_FILE ({path}: {exc.strerror})") from exc


@dataclass(frozen=True)
class ContainerIdentity:
    """The ``sub`` claim of a container token (CONTRACT §2.1), decoded without verification."""

    task_id: int | None
    node_id: int | None
    organization_id: int | None
    collaboration_id: int | None
    image: str | None = None
    study_id: int | None = None
    store_id: int | None = None
    databases: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_token(cls, token: str) -> ContainerIdentity:
        """Decode the token's ``sub`` claim (no signature check: the server checks it).

        Raises:
            DeserializationError: not a JWT, or ``sub`` is not an object.
        """
        import jwt  # lazily: ~0.2 s of import that data-only partials skip

        try:
            payload = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise DeserializationError(f"container token is not a JWT: {exc}") from exc
        sub = payload.get("sub")
        if not isinstance(sub, dict):
            raise DeserializationError("container token 'sub' claim is not an object")
        return cls(
            task_id=sub.get("task_id"), node_id=sub.get("node_id"),
            organization_id=sub.get("organization_id"),
            collaboration_id=sub.get("collaboration_id"), image=sub.get("image"),
            study_id=sub.get("study_id"), store_id=sub.get("store_id"),
            databases=list(sub.get("databases") or []),
        )
