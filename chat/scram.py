"""SASL SCRAM-SHA-256 (RFC 5802, RFC 7677): the messages and the maths of one exchange,
for both ends (the server's AUTHENTICATE handler and the client's login).

    client                                   server
    first()            n,,n=user,r=cnonce ->  ScramServer(client_first)
                 <- r=cnonce+snonce,s=salt,i=4096   .first(credentials)
    final(server_first)  c=biws,r=..,p=proof ->     .final(client_final)
    verify(server_final)        <- v=signature

Pure: no I/O, no clock; randomness (nonces, salts) only where none is given. Every
malformed or failing message raises ``ScramError``, never anything else, so a caller
turns any bad input into a refusal with one ``except``.

Only ``n`` and ``y`` channel binding flags are taken (no SCRAM-SHA-256-PLUS here): a
client asking for binding (``p=``) is refused.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import re
import secrets
import stringprep
import unicodedata
from dataclasses import dataclass

from .digits import is_digits

MECHANISM = "SCRAM-SHA-256"
ITERATIONS = 4096  # for new credentials: RFC 7677's minimum, as ergo and Atheme use
# What a client computes when a server asks: below RFC 7677's minimum is a downgrade,
# above this a hostile server could stall the client (PBKDF2 runs where it is called).
MIN_ITERATIONS = 4096
MAX_ITERATIONS = 600_000
SALT_BYTES = 16
NONCE_BYTES = 18  # random bytes in each side's part of the nonce (24 base64 characters)
KEY_BYTES = 32  # SHA-256
GS2_HEADER = "n,,"  # the client supports no channel binding and asks for no authzid
_STORED_PREFIX = "SCRAM-SHA-256$"  # RFC 5803's form of stored credentials

# RFC 5802 'printable': %x21-7E except ',' (the nonce's alphabet).
_PRINTABLE = re.compile(r"[\x21-\x2b\x2d-\x7e]+")
_B64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")


class ScramError(ValueError):
    """A message that is malformed, out of order, or fails a check."""


# ---------------------------------------------------------------------- the maths


def _hmac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def saslprep(text: str) -> str:
    """RFC 4013 SASLprep of a password (stringprep profile); ValueError when it holds a
    prohibited character."""
    mapped = "".join(
        " " if stringprep.in_table_c12(c) else c  # non-ASCII spaces map to SPACE
        for c in text
        if not stringprep.in_table_b1(c)  # "commonly mapped to nothing"
    )
    out = unicodedata.normalize("NFKC", mapped)
    prohibited = (
        stringprep.in_table_a1, stringprep.in_table_c12, stringprep.in_table_c21_c22,
        stringprep.in_table_c3, stringprep.in_table_c4, stringprep.in_table_c5,
        stringprep.in_table_c6, stringprep.in_table_c7, stringprep.in_table_c8,
        stringprep.in_table_c9,
    )  # fmt: skip
    if any(check(c) for c in out for check in prohibited):
        raise ValueError("a prohibited character")
    if any(stringprep.in_table_d1(c) for c in out):  # right-to-left text (RFC 3454 6)
        if any(stringprep.in_table_d2(c) for c in out):
            raise ValueError("mixed bidirectional text")
        if not (stringprep.in_table_d1(out[0]) and stringprep.in_table_d1(out[-1])):
            raise ValueError("right-to-left text must start and end so")
    return out


def _password_bytes(password: str) -> bytes:
    # A password SASLprep refuses is used as it is rather than refused: both ends here
    # do the same, and the account stays usable (other clients would fail such a one).
    with contextlib.suppress(ValueError):
        password = saslprep(password)
    try:  # the bytes a client typed, also when they were not UTF-8 (surrogateescape)
        return password.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return password.encode("utf-8", "surrogatepass")


def salted_password(password: str, salt: bytes, iterations: int) -> bytes:
    """Hi(Normalize(password), salt, i): PBKDF2-HMAC-SHA-256. Slow on purpose (about
    a millisecond per thousand iterations): the server runs it off its event loop."""
    return hashlib.pbkdf2_hmac("sha256", _password_bytes(password), salt, iterations)


def _keys(salted: bytes) -> tuple[bytes, bytes, bytes]:
    """(ClientKey, StoredKey, ServerKey) of a salted password."""
    client_key = _hmac(salted, b"Client Key")
    return client_key, hashlib.sha256(client_key).digest(), _hmac(salted, b"Server Key")


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a server keeps of a password for SCRAM: it proves the client knows the
    password without the server holding it (nor anything a client could log in with)."""

    salt: bytes
    iterations: int
    stored_key: bytes
    server_key: bytes

    def to_text(self) -> str:
        """RFC 5803's form: ``SCRAM-SHA-256$<i>:<salt>$<StoredKey>:<ServerKey>`` (base64)."""
        return (
            f"{_STORED_PREFIX}{self.iterations}:{_b64(self.salt)}"
            f"${_b64(self.stored_key)}:{_b64(self.server_key)}"
        )

    @classmethod
    def from_text(cls, text: str | None) -> Credentials | None:
        """The credentials ``to_text`` wrote; None for None or anything malformed (a
        damaged row fails SCRAM like an account without credentials)."""
        if not text or not text.startswith(_STORED_PREFIX):
            return None
        first, _, keys = text[len(_STORED_PREFIX):].partition("$")
        count, _, salt_text = first.partition(":")
        stored_text, _, server_text = keys.partition(":")
        if not is_digits(count) or not MIN_ITERATIONS <= int(count) <= MAX_ITERATIONS:
            return None
        try:
            salt, stored, server = (_unb64(t) for t in (salt_text, stored_text, server_text))
        except ScramError:
            return None
        if not salt or len(stored) != KEY_BYTES or len(server) != KEY_BYTES:
            return None
        return cls(salt, int(count), stored, server)


def derive(password: str, salt: bytes | None = None, iterations: int = ITERATIONS) -> Credentials:
    """The credentials to store for ``password`` (a fresh random salt unless given)."""
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    _client_key, stored_key, server_key = _keys(salted_password(password, salt, iterations))
    return Credentials(salt, iterations, stored_key, server_key)


def decoy(secret: bytes, name: str) -> Credentials:
    """Stand-in credentials for a name without any (no such account, or one from before
    SCRAM): the server-first message looks like a real one (a salt that is the same at
    every attempt, the usual count), and no proof matches the empty keys."""
    salt = _hmac(secret, b"scram decoy salt\0" + name.encode("utf-8", "surrogatepass"))
    return Credentials(salt[:SALT_BYTES], ITERATIONS, b"", b"")


# ---------------------------------------------------------------------- message parts


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    if not _B64.fullmatch(text):
        raise ScramError("not base64")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as e:
        raise ScramError("not base64") from e


def _text(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ScramError("not UTF-8") from e


def _attributes(text: str, *names: str) -> list[str]:
    """The values of the leading ``x=value`` attributes, which must be ``names`` in that
    order; more attributes may follow (extensions, ignored) unless one is ``m``, which
    RFC 5802 reserves for a mandatory extension no one knows."""
    parts = text.split(",")
    if len(parts) < len(names):
        raise ScramError("missing attributes")
    values = []
    for i, part in enumerate(parts):
        key, eq, value = part.partition("=")
        if not eq or len(key) != 1 or not key.isascii() or not key.isalpha():
            raise ScramError("malformed attribute")
        if i < len(names):
            if key != names[i]:
                raise ScramError(f"expected {names[i]}=, got {key}=")
            values.append(value)
        elif key == "m":
            raise ScramError("unsupported mandatory extension")
    return values


def encode_name(name: str) -> str:
    """A saslname: ``,`` and ``=`` escaped as ``=2C`` and ``=3D``."""
    return name.replace("=", "=3D").replace(",", "=2C")


def decode_name(text: str) -> str:
    """The name of a saslname; ScramError for an empty one or a stray ``=``."""
    if not text or re.search(r"=(?!2C|3D)", text):
        raise ScramError("malformed name")
    return text.replace("=2C", ",").replace("=3D", "=")


def make_nonce() -> str:
    """NONCE_BYTES random bytes as base64: printable and without ','."""
    return _b64(secrets.token_bytes(NONCE_BYTES))


def _nonce(text: str) -> str:
    if not _PRINTABLE.fullmatch(text):
        raise ScramError("malformed nonce")
    return text


# ---------------------------------------------------------------------- the server's side


class ScramServer:
    """One exchange as the server sees it: built from the client-first message, then
    ``first`` once the account's credentials are known, then ``final``."""

    def __init__(self, client_first: bytes) -> None:
        text = _text(client_first)
        parts = text.split(",", 2)
        if len(parts) != 3:
            raise ScramError("malformed client-first message")
        flag, authzid, self._bare = parts
        if flag.startswith("p="):
            raise ScramError("channel binding is not supported")
        if flag not in ("n", "y"):
            raise ScramError("malformed channel binding flag")
        if authzid and not authzid.startswith("a="):
            raise ScramError("malformed authzid")
        self.authzid = decode_name(authzid[2:]) if authzid else ""
        self._gs2_header = f"{flag},{authzid},"
        name, nonce = _attributes(self._bare, "n", "r")
        self.username = decode_name(name)
        self._client_nonce = _nonce(nonce)
        self._nonce = ""
        self._server_first = ""
        self._credentials: Credentials | None = None

    def first(self, credentials: Credentials, nonce: str | None = None) -> bytes:
        """The server-first message, with the salt and count of ``credentials`` (a
        ``decoy`` when the account has none) and the client's nonce extended by
        ``nonce`` (random unless given)."""
        self._nonce = self._client_nonce + _nonce(make_nonce() if nonce is None else nonce)
        self._credentials = credentials
        self._server_first = (
            f"r={self._nonce},s={_b64(credentials.salt)},i={credentials.iterations}"
        )
        return self._server_first.encode("ascii")

    def final(self, client_final: bytes) -> bytes:
        """The server-final message (``v=`` ServerSignature) once the client's proof
        checks out; ScramError when it is malformed, does not match this exchange, or
        the proof is wrong (also for decoy credentials, which no proof matches)."""
        credentials = self._credentials
        if credentials is None:
            raise ScramError("client-final before server-first")
        text = _text(client_final)
        without_proof, sep, proof_text = text.rpartition(",p=")
        if not sep:
            raise ScramError("no proof")
        binding, nonce = _attributes(without_proof, "c", "r")
        if _unb64(binding) != self._gs2_header.encode("utf-8"):
            raise ScramError("channel binding does not match the client-first message")
        if nonce != self._nonce:
            raise ScramError("nonce does not match")
        proof = _unb64(proof_text)
        if len(proof) != KEY_BYTES:
            raise ScramError("malformed proof")
        auth = f"{self._bare},{self._server_first},{without_proof}".encode()
        client_key = _xor(proof, _hmac(credentials.stored_key, auth))
        # Constant time: how much of a guess matched must not show in the timing.
        if not hmac.compare_digest(hashlib.sha256(client_key).digest(), credentials.stored_key):
            raise ScramError("wrong proof")
        return f"v={_b64(_hmac(credentials.server_key, auth))}".encode("ascii")


# ---------------------------------------------------------------------- the client's side


class ScramClient:
    """One exchange as the client sees it: ``first``, ``final`` of the server-first
    message, then ``verify`` of the server-final one: only then is the server known to
    hold the password's credentials (and a login it confirms to be real)."""

    def __init__(self, username: str, password: str, nonce: str | None = None) -> None:
        self._password = password
        self._nonce = _nonce(make_nonce() if nonce is None else nonce)
        self._bare = f"n={encode_name(username)},r={self._nonce}"
        self._server_signature: bytes | None = None

    def first(self) -> bytes:
        return (GS2_HEADER + self._bare).encode("utf-8", "surrogateescape")

    def final(self, server_first: bytes) -> bytes:
        """The client-final message, with the proof; ScramError when the server-first
        message is malformed, an error, not for our nonce, or asks for a count out of
        [MIN_ITERATIONS, MAX_ITERATIONS]."""
        text = _text(server_first)
        if text.startswith("e="):
            raise ScramError(f"the server refused: {text[2:80]}")
        nonce, salt_text, count = _attributes(text, "r", "s", "i")
        if not nonce.startswith(self._nonce) or len(nonce) == len(self._nonce):
            raise ScramError("the server's nonce does not extend ours")
        _nonce(nonce)
        salt = _unb64(salt_text)
        if not salt:
            raise ScramError("empty salt")
        if not is_digits(count) or not MIN_ITERATIONS <= int(count) <= MAX_ITERATIONS:
            raise ScramError(f"iteration count {count[:12]!r} out of bounds")
        client_key, stored_key, server_key = _keys(
            salted_password(self._password, salt, int(count))
        )
        without_proof = f"c={_b64(GS2_HEADER.encode())},r={nonce}"
        auth = f"{self._bare},{text},{without_proof}".encode("utf-8", "surrogateescape")
        proof = _xor(client_key, _hmac(stored_key, auth))
        self._server_signature = _hmac(server_key, auth)
        return f"{without_proof},p={_b64(proof)}".encode("ascii")

    def verify(self, server_final: bytes) -> None:
        """Check the server's signature; ScramError when it is wrong, an error, or
        malformed."""
        if self._server_signature is None:
            raise ScramError("server-final before server-first")
        text = _text(server_final)
        if text.startswith("e="):
            raise ScramError(f"the server refused: {text[2:80]}")
        (signature,) = _attributes(text, "v")
        if not hmac.compare_digest(_unb64(signature), self._server_signature):
            raise ScramError("the server's signature is wrong")
