"""chat/scram.py (SCRAM-SHA-256) against RFC 7677's example exchange, both ends against
each other, and every malformed message refused with ScramError alone; chat/sasl.py's
AUTHENTICATE framing."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chat import sasl, scram
from chat.scram import Credentials, ScramClient, ScramError, ScramServer

# RFC 7677 section 3: user "user", password "pencil".
CLIENT_NONCE = "rOprNGfwEbeRWgbNEkqO"
SERVER_NONCE = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
SALT = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
CLIENT_FIRST = b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
SERVER_FIRST = (
    b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
)
CLIENT_FINAL = (
    b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
)
SERVER_FINAL = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="


@pytest.fixture(scope="module")
def pencil() -> Credentials:
    return scram.derive("pencil", SALT, 4096)


def test_client_side_of_the_rfc_7677_example() -> None:
    client = ScramClient("user", "pencil", nonce=CLIENT_NONCE)
    assert client.first() == CLIENT_FIRST
    assert client.final(SERVER_FIRST) == CLIENT_FINAL
    client.verify(SERVER_FINAL)  # no error: the signature is the RFC's


def test_server_side_of_the_rfc_7677_example(pencil: Credentials) -> None:
    server = ScramServer(CLIENT_FIRST)
    assert (server.username, server.authzid) == ("user", "")
    assert server.first(pencil, nonce=SERVER_NONCE) == SERVER_FIRST
    assert server.final(CLIENT_FINAL) == SERVER_FINAL


def test_the_two_ends_with_random_nonces_and_salt() -> None:
    credentials = scram.derive("s3cret pass")
    client = ScramClient("alice", "s3cret pass")
    server = ScramServer(client.first())
    first = server.first(credentials)
    nonce = first.split(b",")[0][2:]
    assert len(nonce) == 2 * len(scram.make_nonce())  # ours: 18 random bytes each side
    client.verify(server.final(client.final(first)))


def test_a_wrong_password_fails_the_proof(pencil: Credentials) -> None:
    client = ScramClient("user", "pencil!")
    server = ScramServer(client.first())
    final = client.final(server.first(pencil))
    with pytest.raises(ScramError, match="wrong proof"):
        server.final(final)


def test_the_client_rejects_a_wrong_server_signature(pencil: Credentials) -> None:
    client = ScramClient("user", "pencil", nonce=CLIENT_NONCE)
    client.final(SERVER_FIRST)
    forged = b"v=" + base64.b64encode(bytes(32))
    with pytest.raises(ScramError, match="signature is wrong"):
        client.verify(forged)
    with pytest.raises(ScramError, match="refused"):
        client.verify(b"e=invalid-proof")


@pytest.mark.parametrize(
    ("server_first", "error"),
    [
        (b"r=someoneelse,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "nonce"),
        (b"r=rOprNGfwEbeRWgbNEkqO,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "nonce"),  # not extended
        (b"r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4095", "out of bounds"),
        (b"r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=600001", "out of bounds"),
        (b"r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=-1", "out of bounds"),
        (b"r=rOprNGfwEbeRWgbNEkqOx,s=,i=4096", "salt"),
        (b"r=rOprNGfwEbeRWgbNEkqOx,s=!!,i=4096", "base64"),
        (b"r=rOprNGfwEbeRWgbNEkqOx,i=4096", "missing"),
        (b"r=rOprNGfwEbeRWgbNEkqOx,i=4096,s=AAAA", "expected s="),
        (b"m=ext,r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "expected r="),
        (b"e=other-error", "refused"),
        (b"\xff", "UTF-8"),
    ],
)
def test_the_client_rejects_a_bad_server_first(server_first: bytes, error: str) -> None:
    client = ScramClient("user", "pencil", nonce=CLIENT_NONCE)
    with pytest.raises(ScramError, match=error):
        client.final(server_first)


def test_names_are_escaped_both_ways() -> None:
    client = ScramClient("a,b=c", "pw")
    assert b"n=a=2Cb=3Dc," in client.first()
    assert ScramServer(client.first()).username == "a,b=c"


def test_an_authzid_and_the_y_flag_are_read(pencil: Credentials) -> None:
    server = ScramServer(b"y,a=root,n=user,r=abc")
    assert (server.username, server.authzid) == ("user", "root")
    server.first(pencil, nonce="xyz")
    # The channel binding data is the header as the client sent it.
    binding = base64.b64encode(b"y,a=root,").decode()
    with pytest.raises(ScramError, match="wrong proof"):  # well-formed, so only the proof fails
        server.final(f"c={binding},r=abcxyz,p={base64.b64encode(bytes(32)).decode()}".encode())


@pytest.mark.parametrize(
    "client_first",
    [
        b"p=tls-unique,,n=user,r=abc",  # channel binding asked for
        b"x,,n=user,r=abc",
        b"n,,",
        b"n,n=user,r=abc",
        b"n,b=root,n=user,r=abc",
        b"n,,n=,r=abc",
        b"n,,n=us=er,r=abc",  # a stray '='
        b"n,,n=user,r=",
        b"n,,n=user,r=a,b",  # ',' ends the nonce: 'b' is no attribute
        b"n,,n=user,r=a\x7fb",
        b"n,,m=ext,n=user,r=abc",  # mandatory extension
        b"n,,n=user,r=abc,m=ext",
        b"n,,r=abc,n=user",
        b"n,,n=user",
        b"n,,n=\xff,r=abc",
    ],
)
def test_the_server_rejects_a_bad_client_first(client_first: bytes) -> None:
    with pytest.raises(ScramError):
        ScramServer(client_first)


@pytest.mark.parametrize(
    "client_final",
    [
        b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",  # no proof
        b"c=biws,r=rOprNGfwEbeRWgbNEkqO,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
        b"c=eSws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
        b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",  # binding of 'y,,', not 'n,,'
        b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=AAAA",  # short
        b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=%%%",
        b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,c=biws,"
        b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
        b"\xff,p=x",
    ],
)
def test_the_server_rejects_a_bad_client_final(client_final: bytes, pencil: Credentials) -> None:
    server = ScramServer(CLIENT_FIRST)
    server.first(pencil, nonce=SERVER_NONCE)
    with pytest.raises(ScramError):
        server.final(client_final)


def test_client_final_before_server_first_is_an_error() -> None:
    with pytest.raises(ScramError):
        ScramServer(CLIENT_FIRST).final(CLIENT_FINAL)
    with pytest.raises(ScramError):
        ScramClient("user", "pencil").verify(SERVER_FINAL)


@settings(deadline=None, max_examples=300)
@given(st.binary(max_size=200), st.binary(max_size=200))
def test_any_bytes_are_refused_with_scram_error_only(first: bytes, final: bytes) -> None:
    try:
        server = ScramServer(first)
    except ScramError:
        server = ScramServer(CLIENT_FIRST)
    server.first(scram.decoy(b"k", "user"))
    with pytest.raises(ScramError):  # decoy credentials: nothing passes
        server.final(final)


def test_decoy_credentials_look_real_and_never_pass() -> None:
    a = scram.decoy(b"secret", "nobody")
    assert a == scram.decoy(b"secret", "nobody")  # the same at every attempt
    assert a.salt != scram.decoy(b"secret", "nobody2").salt
    assert a.salt != scram.decoy(b"other secret", "nobody").salt
    assert len(a.salt) == scram.SALT_BYTES and a.iterations == scram.ITERATIONS
    client = ScramClient("nobody", "")
    server = ScramServer(client.first())
    final = client.final(server.first(a))
    with pytest.raises(ScramError, match="wrong proof"):
        server.final(final)


def test_stored_credentials_round_trip(pencil: Credentials) -> None:
    text = pencil.to_text()
    assert text == (
        "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$"
        "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="
    )
    assert Credentials.from_text(text) == pencil
    fresh = scram.derive("pencil")
    assert fresh.salt != SALT and len(fresh.salt) == scram.SALT_BYTES
    assert fresh.iterations == scram.ITERATIONS == 4096


@pytest.mark.parametrize(
    "text",
    [
        None,
        "",
        "scrypt$16384$8$1$abc$def",
        "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$AAAA:AAAA",  # short keys
        "SCRAM-SHA-256$12:W22ZaJ0SNY7soEsUEjb6gQ==$",
        "SCRAM-SHA-256$x:y$z:w",
        "SCRAM-SHA-1$4096:W22ZaJ0SNY7soEsUEjb6gQ==$",
    ],
)
def test_malformed_stored_credentials_are_none(text: str | None) -> None:
    assert Credentials.from_text(text) is None


@pytest.mark.parametrize(
    ("given", "prepared"),
    [
        ("I\u00adX", "IX"),  # RFC 4013's examples: soft hyphen mapped to nothing
        ("user", "user"),
        ("USER", "USER"),  # case kept
        ("\u00aa", "a"),  # NFKC
        ("\u2168", "IX"),
        ("a\u00a0b", "a b"),  # non-ASCII space to SPACE
    ],
)
def test_saslprep(given: str, prepared: str) -> None:
    assert scram.saslprep(given) == prepared


@pytest.mark.parametrize("given", ["\u0007", "\u0627\u0031"])  # a control; bidi mixed
def test_saslprep_refusals(given: str) -> None:
    with pytest.raises(ValueError):
        scram.saslprep(given)


def test_passwords_saslprep_refuses_still_work_at_both_ends() -> None:
    credentials = scram.derive("bell\u0007")
    client = ScramClient("u", "bell\u0007")
    server = ScramServer(client.first())
    client.verify(server.final(client.final(server.first(credentials))))
    # ...and equivalent spellings are one password.
    assert scram.derive("I\u00adX", SALT) == scram.derive("IX", SALT)


# ---------------------------------------------------------------------- chat/sasl.py


@pytest.mark.parametrize(
    ("size", "lengths"),
    [(0, [1]), (3, [4]), (300, [400, 1]), (301, [400, 4]), (600, [400, 400, 1])],
)
def test_messages_go_in_400_byte_lines(size: int, lengths: list[int]) -> None:
    message = bytes(range(256)) * 3
    lines = sasl.to_lines(message[:size])
    assert [len(line) for line in lines] == lengths
    gathered, done = "", False
    for line in lines:
        assert not done
        gathered, done = sasl.add_line(gathered, line)
    assert done and base64.b64decode(gathered) == message[:size]
