from __future__ import annotations

import base64
import hashlib
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.passwords import hash_password, is_password_hash, verify_password


@pytest.fixture(scope="module")
def stored() -> str:
    return hash_password("correct horse")


def test_roundtrip(stored: str) -> None:
    assert verify_password("correct horse", stored)
    assert is_password_hash(stored)


def test_wrong_password(stored: str) -> None:
    assert not verify_password("correct horsE", stored)
    assert not verify_password("", stored)
    assert not verify_password("correct horse ", stored)


def test_format(stored: str) -> None:
    scheme, n, r, p, salt, key = stored.split("$")
    assert (scheme, n, r, p) == ("scrypt", str(2**14), "8", "1")
    assert len(base64.b64decode(salt, validate=True)) == 16
    assert len(base64.b64decode(key, validate=True)) == 32


def test_salt_is_random() -> None:
    a, b = hash_password("same"), hash_password("same")
    assert a != b
    assert verify_password("same", a)
    assert verify_password("same", b)


def test_unicode_password() -> None:
    h = hash_password("pässwörd ☃")
    assert verify_password("pässwörd ☃", h)
    assert not verify_password("passwörd ☃", h)


def test_parameters_come_from_the_stored_string() -> None:
    salt = b"0123456789abcdef"
    key = hashlib.scrypt(b"pw", salt=salt, n=2**10, r=4, p=2, dklen=24)
    b64 = base64.b64encode
    stored = f"scrypt$1024$4$2${b64(salt).decode()}${b64(key).decode()}"
    assert is_password_hash(stored)
    assert verify_password("pw", stored)
    assert not verify_password("pw2", stored)


def _with(stored: str, index: int, value: str) -> str:
    parts = stored.split("$")
    parts[index] = value
    return "$".join(parts)


MALFORMED_EDITS = [
    (0, "bcrypt"),
    (0, "SCRYPT"),
    (1, "abc"),
    (1, "016384"),  # leading zero
    (1, "\uff11\uff16\uff13\uff18\uff14"),  # fullwidth digits
    (1, "-16384"),
    (1, "1000"),  # not a power of two
    (1, "1"),
    (1, str(2**30)),  # absurd memory
    (1, str(2**40)),
    (2, "0"),
    (2, "1000"),
    (3, "0"),
    (3, "1000000"),  # absurd work
    (4, "!!!notbase64"),
    (4, base64.b64encode(b"short").decode()),  # salt too short
    (4, ""),
    (5, base64.b64encode(b"x" * 8).decode()),  # key too short
    (5, "A"),
    (5, ""),
]


@pytest.mark.parametrize(("index", "value"), MALFORMED_EDITS)
def test_malformed_hash_is_rejected_quickly(stored: str, index: int, value: str) -> None:
    bad = _with(stored, index, value)
    results: list[bool] = []
    # Absurd scrypt costs must be refused before any work: a check that runs them
    # would not finish within this generous deadline.
    worker = threading.Thread(
        target=lambda: results.extend(
            [verify_password("correct horse", bad), is_password_hash(bad)]
        ),
        daemon=True,
    )
    worker.start()
    worker.join(30)
    assert results == [False, False]


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "scrypt",
        "correct horse",
        "scrypt$$$$$",
        "scrypt$16384$8$1$c2FsdHNhbHRzYWx0$",
        "$16384$8$1$c2FsdHNhbHRzYWx0c2FsdA==$c2FsdHNhbHRzYWx0c2FsdHNhbHRzYWx0c2FsdA==",
        "scrypt$16384$8$1$c2FsdHNhbHRzYWx0c2FsdA==$c2FsdHNhbHRzYWx0c2FsdHNhbHRzYWx0c2FsdA==$x",
        "scrypt$16384$8$1$c2FsdHNhbHRzYWx0c2FsdA==$" + "A" * 10_000,
    ],
)
def test_malformed_strings(bad: str) -> None:
    assert not verify_password("correct horse", bad)
    assert not is_password_hash(bad)


def test_extra_whitespace_is_malformed(stored: str) -> None:
    assert not is_password_hash(stored + "\n")
    assert not is_password_hash(" " + stored)
    assert not verify_password("correct horse", stored + " ")


def test_is_password_hash_of_non_strings() -> None:
    assert not is_password_hash(None)
    assert not is_password_hash(12345)
    assert not is_password_hash(b"scrypt$16384$8$1$AAAA$AAAA")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_verify_never_raises_on_arbitrary_text(text: str) -> None:
    assert verify_password("x", text) is False
    assert is_password_hash(text) is False


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(alphabet="0123456789abcdefAZ+/=$ -", max_size=20), min_size=6, max_size=6))
def test_verify_never_raises_on_dollar_separated_junk(parts: list[str]) -> None:
    candidate = "scrypt$" + "$".join(parts[1:])
    verify_password("x", candidate)  # must not raise
