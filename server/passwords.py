"""Password hashing for operator (and optionally server) passwords.

Stored form: ``scrypt$<n>$<r>$<p>$<salt base64>$<hash base64>``, produced by
``chat-server --hash-password``. Verification never raises: a malformed or
absurd stored string (for instance cost parameters that would make the server
spend minutes or gigabytes on one OPER attempt) simply fails to verify.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from typing import NamedTuple

SCHEME = "scrypt"

# Parameters used for new hashes (about 16 MiB and a few tens of ms per check).
DEFAULT_N = 2**14
DEFAULT_R = 8
DEFAULT_P = 1
SALT_BYTES = 16
KEY_BYTES = 32

# Bounds accepted when parsing a stored hash.
_MAX_N = 2**20
_MAX_R = 32
_MAX_P = 16
_MAX_MEMORY = 64 * 1024 * 1024  # 128 * n * r bytes of scrypt working memory
_MAX_WORK = 2**20  # n * r * p; the default is 2**17
_MIN_SALT, _MAX_SALT = 8, 64
_MIN_KEY, _MAX_KEY = 16, 64
_MAXMEM = 2 * _MAX_MEMORY  # passed to hashlib.scrypt; room for the p * 128 * r block

_INT = re.compile(r"[1-9][0-9]{0,7}")
_B64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")


class _Params(NamedTuple):
    n: int
    r: int
    p: int
    salt: bytes
    key: bytes


def _encode(plain: str) -> bytes:
    # surrogatepass: never raises, whatever str the caller hands us.
    return plain.encode("utf-8", "surrogatepass")


def _b64decode(text: str) -> bytes | None:
    if not _B64.fullmatch(text):
        return None
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def _parse(stored: object) -> _Params | None:
    if not isinstance(stored, str) or len(stored) > 512:
        return None
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != SCHEME:
        return None
    if not all(_INT.fullmatch(x) for x in parts[1:4]):
        return None
    n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
    if n < 2 or n > _MAX_N or n & (n - 1):  # scrypt needs a power of two
        return None
    if not 1 <= r <= _MAX_R or not 1 <= p <= _MAX_P:
        return None
    if 128 * n * r > _MAX_MEMORY or n * r * p > _MAX_WORK:
        return None
    salt = _b64decode(parts[4])
    key = _b64decode(parts[5])
    if salt is None or key is None:
        return None
    if not _MIN_SALT <= len(salt) <= _MAX_SALT or not _MIN_KEY <= len(key) <= _MAX_KEY:
        return None
    return _Params(n, r, p, salt, key)


def _scrypt(plain: str, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    return hashlib.scrypt(_encode(plain), salt=salt, n=n, r=r, p=p, dklen=dklen, maxmem=_MAXMEM)


def hash_password(plain: str) -> str:
    """Hash ``plain`` with scrypt and a fresh random salt."""
    salt = secrets.token_bytes(SALT_BYTES)
    key = _scrypt(plain, salt, DEFAULT_N, DEFAULT_R, DEFAULT_P, KEY_BYTES)
    return "$".join(
        (
            SCHEME,
            str(DEFAULT_N),
            str(DEFAULT_R),
            str(DEFAULT_P),
            base64.b64encode(salt).decode("ascii"),
            base64.b64encode(key).decode("ascii"),
        )
    )


def verify_password(plain: str, stored: str) -> bool:
    """True if ``plain`` matches ``stored``; False for a mismatch or a malformed hash."""
    params = _parse(stored)
    if params is None:
        return False
    try:
        key = _scrypt(plain, params.salt, params.n, params.r, params.p, len(params.key))
    except (ValueError, MemoryError, OverflowError):
        return False
    return hmac.compare_digest(key, params.key)


def is_password_hash(s: object) -> bool:
    """True if ``s`` is a well-formed hash that :func:`verify_password` accepts."""
    return _parse(s) is not None
