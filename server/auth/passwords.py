"""Password and API-key hashing (scrypt for passwords, sha256 for random API keys)."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets

_N, _R, _P, _DKLEN = 2**14, 8, 1, 32


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=_DKLEN, maxmem=64 * 1024 * 1024
    )


def hash_password(password: str) -> str:
    """Hash a password as ``scrypt$n$r$p$salt$hash`` (base64 parts)."""
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, _N, _R, _P)
    parts = (base64.b64encode(salt).decode(), base64.b64encode(digest).decode())
    return f"scrypt${_N}${_R}${_P}${parts[0]}${parts[1]}"


def verify_password(password: str, stored: str) -> bool:
    """Check a password against a stored hash in constant time; malformed hashes never match."""
    try:
        scheme, n, r, p, salt_b64, digest_b64 = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest_b64)
        actual = _scrypt(password, base64.b64decode(salt_b64), int(n), int(r), int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(expected, actual)


@functools.cache
def dummy_hash() -> str:
    """A hash to verify against when the username is unknown (timing hides who exists)."""
    return hash_password(secrets.token_urlsafe(16))


def hash_api_key(api_key: str) -> str:
    """sha256 hex of a (random, high-entropy) node API key: storable and searchable."""
    return hashlib.sha256(api_key.strip().lower().encode("ascii")).hexdigest()
