"""TLS listener on every backend, next to the plaintext one; TLS options; RLIMIT_NOFILE.

A throwaway PKI is made at test time with the ``openssl`` command: a root CA, an
intermediate CA, and a server certificate for localhost/127.0.0.1 signed by the
intermediate. The server is given the leaf followed by the intermediate (a "full
chain" file); clients trust only the root, so a successful verification proves the
server sent the whole chain, and the chain is also read back with ``s_client``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import selectors
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from chat import numerics as N
from server.config import ServerConfig
from server.settings import ConfigError, load_config
from server.tls import TLSConfigError, server_context
from server.transport.select_transport import SelectServer
from tests.conftest import RunningServer, start_server
from tests.ircclient import IRCTestClient
from tests.net import free_port
from tests.server.test_operations import sample, scrape

OPENSSL = shutil.which("openssl")
pytestmark = pytest.mark.skipif(OPENSSL is None, reason="the openssl command is needed")

ROOT_CN = "Chat Test Root CA"
INTERMEDIATE_CN = "Chat Test Intermediate CA"
LEAF_CN = "localhost"
HANDSHAKE_TIMEOUT = 1.0
REPO = Path(__file__).resolve().parents[2]

OPENSSL_CNF = """\
[req]
distinguished_name = dn
[dn]
[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[v3_leaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
"""


# ---------------------------------------------------------------------- the test PKI


@dataclass(frozen=True)
class PKI:
    root: Path  # the CA clients trust
    other_root: Path  # an unrelated CA
    intermediate: Path
    leaf: Path  # the server certificate alone
    chain: Path  # leaf + intermediate: what the server is given
    key: Path
    other_key: Path  # a key that does not match the leaf
    encrypted_key: Path  # the leaf key under a passphrase


def _openssl(*args: str, cwd: Path) -> None:
    assert OPENSSL is not None
    env = {**os.environ, "OPENSSL_CONF": str(cwd / "openssl.cnf")}
    subprocess.run([OPENSSL, *args], cwd=cwd, env=env, check=True, capture_output=True, timeout=60)


def _new_key_and_csr(d: Path, name: str, cn: str) -> None:
    _openssl(
        "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn}",
        "-config", "openssl.cnf", cwd=d,
    )  # fmt: skip


def _self_signed_ca(d: Path, name: str, cn: str) -> None:
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.pem", "-subj", f"/CN={cn}",
        "-days", "2", "-config", "openssl.cnf", "-extensions", "v3_ca", cwd=d,
    )  # fmt: skip


def _sign(d: Path, name: str, ca: str, extensions: str, serial: int) -> None:
    _openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
        "-set_serial", str(serial), "-days", "2", "-out", f"{name}.pem",
        "-extfile", "openssl.cnf", "-extensions", extensions, cwd=d,
    )  # fmt: skip


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    d = tmp_path_factory.mktemp("pki")
    (d / "openssl.cnf").write_text(OPENSSL_CNF)
    _self_signed_ca(d, "root", ROOT_CN)
    _self_signed_ca(d, "other", "Somebody Else's CA")
    _new_key_and_csr(d, "intermediate", INTERMEDIATE_CN)
    _sign(d, "intermediate", "root", "v3_ca", 2)
    _new_key_and_csr(d, "leaf", LEAF_CN)
    _sign(d, "leaf", "intermediate", "v3_leaf", 3)
    chain = d / "chain.pem"
    chain.write_text((d / "leaf.pem").read_text() + (d / "intermediate.pem").read_text())
    _openssl(
        "pkey", "-in", "leaf.key", "-aes256", "-passout", "pass:secret",
        "-out", "encrypted.key", cwd=d,
    )  # fmt: skip
    return PKI(
        root=d / "root.pem",
        other_root=d / "other.pem",
        intermediate=d / "intermediate.pem",
        leaf=d / "leaf.pem",
        chain=chain,
        key=d / "leaf.key",
        other_key=d / "other.key",
        encrypted_key=d / "encrypted.key",
    )


# ---------------------------------------------------------------------- servers, clients


def tls_config(pki: PKI, **kwargs: object) -> ServerConfig:
    settings: dict[str, object] = {
        "tls_port": 0,
        "tls_cert": str(pki.chain),
        "tls_key": str(pki.key),
        "tls_handshake_timeout": HANDSHAKE_TIMEOUT,
    }
    settings.update(kwargs)
    return replace(ServerConfig(name="test.server", network="TestNet"), **settings)  # type: ignore[arg-type]


@pytest.fixture
def tls_server(backend: str, pki: PKI, tmp_path: Path) -> Iterator[RunningServer]:
    running = start_server(tls_config(pki), backend, db=str(tmp_path / "history.db"))
    try:
        assert running.handle.tls_port
        assert running.handle.tls_port != running.port
        yield running
    finally:
        running.handle.stop()


def tls_port(server: RunningServer) -> int:
    port = server.handle.tls_port
    assert port is not None
    return port


def client_context(pki: PKI) -> ssl.SSLContext:
    """What a careful client does: verify the chain against the CA it trusts."""
    return ssl.create_default_context(cafile=str(pki.root))


async def open_tls(
    port: int, ctx: ssl.SSLContext, server_hostname: str = "localhost"
) -> IRCTestClient:
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=ctx, server_hostname=server_hostname, limit=1 << 20
    )
    return IRCTestClient(reader, writer)


@contextlib.asynccontextmanager
async def connected(
    server: RunningServer, pki: PKI, nick: str | None = None
) -> AsyncIterator[IRCTestClient]:
    c = await open_tls(tls_port(server), client_context(pki))
    try:
        if nick is not None:
            await c.register(nick)
        yield c
    finally:
        await c.close()


def common_name(name: object) -> str | None:
    """The commonName of a getpeercert() subject or issuer (a tuple of RDN tuples)."""
    assert isinstance(name, tuple)
    for rdn in name:
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None


def wait_eof(sock: socket.socket, timeout: float) -> float:
    """Read until the server closes the connection; returns the seconds it took."""
    start = time.monotonic()
    sock.settimeout(timeout)
    try:
        while sock.recv(4096):
            pass
    except ConnectionResetError:
        pass
    return time.monotonic() - start


def timed_out(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The log's handshakes that failed by the handshake timeout."""
    return [r.getMessage() for r in caplog.records
            if "TLS handshake from" in r.getMessage() and r.getMessage().endswith("timed out")]


async def settle(done: Callable[[], bool]) -> None:
    """Wait for what the server's loop does in its own time (a deadline on the wait,
    not an assertion on how long it took)."""
    deadline = time.monotonic() + 10 * HANDSHAKE_TIMEOUT
    while not done() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


def read_until_closed(sock: socket.socket, timeout: float) -> bytes:
    """Everything the server sends before it closes the connection."""
    sock.settimeout(timeout)
    data = b""
    while chunk := sock.recv(4096):
        data += chunk
    return data


# ---------------------------------------------------------------------- the chain


async def test_tls_client_checks_the_certificate_chain_it_was_given(
    tls_server: RunningServer, pki: PKI
) -> None:
    ctx = client_context(pki)
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    for hostname in ("localhost", "127.0.0.1"):  # both subjectAltName entries verify
        c = await open_tls(tls_port(tls_server), ctx, server_hostname=hostname)
        try:
            ssl_object = c.writer.get_extra_info("ssl_object")
            assert isinstance(ssl_object, ssl.SSLObject)
            assert ssl_object.version() in ("TLSv1.2", "TLSv1.3")
            cert = ssl_object.getpeercert()
            assert cert is not None
            assert common_name(cert["subject"]) == LEAF_CN
            # Signed by the intermediate, which the client does not trust by itself:
            # verifying up to the root worked only because the server sent it.
            assert common_name(cert["issuer"]) == INTERMEDIATE_CN
            assert ("DNS", "localhost") in cert["subjectAltName"]
            assert ("IP Address", "127.0.0.1") in cert["subjectAltName"]
            leaf_der = ssl.PEM_cert_to_DER_cert(pki.leaf.read_text())
            assert ssl_object.getpeercert(binary_form=True) == leaf_der
        finally:
            await c.close()


def test_the_server_sends_leaf_and_intermediate(tls_server: RunningServer, pki: PKI) -> None:
    """The chain as it comes over the wire, read with openssl s_client."""
    assert OPENSSL is not None
    result = subprocess.run(
        [OPENSSL, "s_client", "-connect", f"127.0.0.1:{tls_port(tls_server)}",
         "-servername", "localhost", "-CAfile", str(pki.root), "-showcerts",
         "-verify_return_error"],
        input=b"", capture_output=True, timeout=30,
    )  # fmt: skip
    out = result.stdout.decode()
    chain = out.split("Certificate chain", 1)[1].split("\n---\n", 1)[0]
    subjects = [line.split("s:", 1)[1].strip() for line in chain.splitlines() if " s:" in line]
    issuers = [line.split("i:", 1)[1].strip() for line in chain.splitlines() if " i:" in line]
    assert subjects == [f"CN = {LEAF_CN}", f"CN = {INTERMEDIATE_CN}"]
    assert issuers == [f"CN = {INTERMEDIATE_CN}", f"CN = {ROOT_CN}"]
    assert "Verify return code: 0 (ok)" in out


async def test_a_client_trusting_another_ca_refuses_the_server(
    tls_server: RunningServer, pki: PKI
) -> None:
    ctx = ssl.create_default_context(cafile=str(pki.other_root))
    with pytest.raises(ssl.SSLCertVerificationError):
        await open_tls(tls_port(tls_server), ctx)
    async with connected(tls_server, pki, "after") as c:  # the server did not mind
        await c.sync()


# ---------------------------------------------------------------------- IRC over TLS


async def test_tls_and_plaintext_clients_share_a_channel(
    tls_server: RunningServer, pki: PKI
) -> None:
    async with connected(tls_server, pki, "secure") as secure:
        plain = await tls_server.client("plain")
        await secure.join("#mixed")
        await plain.join("#mixed")
        await secure.expect("JOIN", lambda m: m.source is not None and "plain" in m.source)

        await secure.send("PRIVMSG #mixed :hello from TLS")
        got = await plain.expect("PRIVMSG")
        assert got.params == ["#mixed", "hello from TLS"]
        await plain.send("PRIVMSG #mixed :hello from plaintext")
        got = await secure.expect("PRIVMSG")
        assert got.params == ["#mixed", "hello from plaintext"]

        # WHOIS: 671 for the TLS client, for anyone who asks; not for the plaintext one.
        await plain.send("WHOIS secure")
        replies = await plain.collect_until(N.RPL_ENDOFWHOIS)
        assert [m for m in replies if m.command == N.RPL_WHOISSECURE]
        await secure.send("WHOIS plain")
        replies = await secure.collect_until(N.RPL_ENDOFWHOIS)
        assert not [m for m in replies if m.command == N.RPL_WHOISSECURE]
        await secure.send("WHOIS secure")
        replies = await secure.collect_until(N.RPL_ENDOFWHOIS)
        secure_line = [m for m in replies if m.command == N.RPL_WHOISSECURE]
        assert secure_line and secure_line[0].params[1] == "secure"


async def test_bulk_output_to_a_slow_tls_reader_arrives_in_order(
    tls_server: RunningServer, pki: PKI
) -> None:
    """Enough to fill the socket buffers: partial TLS writes resume where they stopped."""
    reader_ctx = client_context(pki)
    r, w = await asyncio.open_connection(
        "127.0.0.1", tls_port(tls_server), ssl=reader_ctx, server_hostname="localhost",
        limit=4096,  # a small stream buffer: the client stops reading from the socket
    )  # fmt: skip
    slow = IRCTestClient(r, w)
    try:
        await slow.register("slow")
        await slow.join("#bulk")
        talker = await tls_server.client("talker")
        await talker.join("#bulk")
        count, payload = 1500, "x" * 400
        for n in range(count):
            await talker.send(f"PRIVMSG #bulk :{n} {payload}")
        await talker.sync(timeout=30)
        got: list[int] = []
        while len(got) < count:
            msg = await slow.expect("PRIVMSG", timeout=30)
            number, text = msg.params[1].split(" ", 1)
            assert text == payload
            got.append(int(number))
        assert got == list(range(count))
        await slow.sync()
    finally:
        await slow.close()


class SmallBufferSelectServer(SelectServer):
    """Tiny kernel send buffers on TLS sockets: SSL writes stop part way."""

    def _new_tls_connection(self, sock: socket.socket, addr: Any, ctx: ssl.SSLContext) -> None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        super()._new_tls_connection(sock, addr, ctx)


def read_lines(sock: ssl.SSLSocket, until: bytes, buf: bytearray) -> list[bytes]:
    """Lines up to and including the first containing ``until``."""
    out: list[bytes] = []
    while True:
        while b"\r\n" in buf:
            line, _, rest = bytes(buf).partition(b"\r\n")
            buf[:] = rest
            out.append(line)
            if until in line:
                return out
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("closed")
        buf += data


def test_select_tls_partial_writes_resume_in_order(
    pki: PKI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SSL_write stopped by a full socket (SSLWantWriteError or a partial count) resumes
    with the same bytes once the selector says writable; nothing is lost or reordered."""
    blocked = 0
    send = ssl.SSLSocket.send

    def counting_send(self: ssl.SSLSocket, data: Any, flags: int = 0) -> int:
        nonlocal blocked
        try:
            n = send(self, data, flags)
        except ssl.SSLWantWriteError:
            blocked += 1
            raise
        if n < len(data):
            blocked += 1
        return n

    monkeypatch.setattr(ssl.SSLSocket, "send", counting_send)
    config = replace(tls_config(pki), host="127.0.0.1", port=0, db="", flood_burst=0)
    server = SmallBufferSelectServer(config)
    server.listen()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.settimeout(30)
    try:
        raw.connect(("127.0.0.1", tls_port_of(server)))
        slow = client_context(pki).wrap_socket(raw, server_hostname="localhost")
        buf = bytearray()
        slow.sendall(b"NICK slow\r\nUSER slow 0 * :slow\r\nJOIN #bulk\r\nPING :joined\r\n")
        read_lines(slow, b"joined", buf)
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as talker:
            talker.sendall(b"NICK talker\r\nUSER talker 0 * :t\r\nJOIN #bulk\r\n")
            count, payload = 600, b"z" * 400
            talker.sendall(
                b"".join(b"PRIVMSG #bulk :%d %s\r\n" % (n, payload) for n in range(count))
            )
            talker.sendall(b"PING :sent\r\n")
            tbuf = bytearray()
            while b"sent" not in tbuf:
                tbuf += talker.recv(65536)
            conn = next(c for c in list(server.conns.values()) if c.tls)
            deadline = time.monotonic() + 10
            while not conn.wbuf and time.monotonic() < deadline:
                time.sleep(0.01)
            assert conn.wbuf and conn.events & selectors.EVENT_WRITE  # stuck part way
            got = [
                int(line.split(b" :", 1)[1].split()[0])
                for line in read_lines(slow, b" :%d " % (count - 1), buf)
                if b" PRIVMSG #bulk :" in line
            ]
            assert got == list(range(count))
            assert blocked > 0
        slow.close()
    finally:
        raw.close()
        server.request_stop()
        thread.join(15)


def tls_port_of(server: SelectServer) -> int:
    assert server.tls_port is not None
    return server.tls_port


async def test_quit_over_tls_gets_error_and_a_clean_close(
    tls_server: RunningServer, pki: PKI
) -> None:
    async with connected(tls_server, pki, "leaver") as c:
        await c.send("QUIT :bye")
        tail = await c.wait_closed()
        assert [m.command for m in tail][-1:] == ["ERROR"]
    plain = await tls_server.client("still")
    await plain.send("WHOIS leaver")
    replies = await plain.collect_until(N.RPL_ENDOFWHOIS)
    assert [m for m in replies if m.command == N.ERR_NOSUCHNICK]


async def test_server_shutdown_says_error_to_tls_clients(
    backend: str, pki: PKI, tmp_path: Path
) -> None:
    running = start_server(tls_config(pki), backend, db=str(tmp_path / "h.db"))
    stopping = None
    try:
        async with connected(running, pki, "stayer") as c:
            stopping = asyncio.get_running_loop().run_in_executor(None, running.handle.stop)
            tail = await c.wait_closed()
            errors = [m for m in tail if m.command == "ERROR"]
            assert errors and "Server shutting down" in errors[0].params[0]
    finally:
        if stopping is None:
            running.handle.stop()
        else:
            await stopping


# ---------------------------------------------------------------------- refusals


def old_protocol_context(maximum: ssl.TLSVersion) -> ssl.SSLContext:
    """A client willing to speak old protocols (security level 0, no verification)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.maximum_version = maximum
    return ctx


def handshake(port: int, ctx: ssl.SSLContext) -> tuple[str | None, str | None]:
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        ctx.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        cipher = tls.cipher()
        return tls.version(), cipher[0] if cipher else None


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
def test_tls_1_1_is_refused_and_1_2_accepted(tls_server: RunningServer) -> None:
    port = tls_port(tls_server)
    with pytest.raises(ssl.SSLError) as refused:
        handshake(port, old_protocol_context(ssl.TLSVersion.TLSv1_1))
    # The server said no: a protocol_version alert (select), or a plain close (asyncio
    # and uvloop drop the connection without flushing the alert). Not the client
    # before trying: it would say NO_PROTOCOLS_AVAILABLE or NO_CIPHERS_AVAILABLE.
    reason = refused.value.reason or ""
    assert "PROTOCOL_VERSION" in reason or "UNEXPECTED_EOF" in reason, reason
    with pytest.raises(ssl.SSLError):
        handshake(port, old_protocol_context(ssl.TLSVersion.TLSv1))
    version, cipher = handshake(port, old_protocol_context(ssl.TLSVersion.TLSv1_2))
    assert version == "TLSv1.2"
    assert cipher is not None and cipher.startswith("ECDHE-")
    assert "GCM" in cipher or "CHACHA" in cipher
    version, _ = handshake(port, old_protocol_context(ssl.TLSVersion.TLSv1_3))
    assert version == "TLSv1.3"


async def test_a_client_that_never_handshakes_is_closed_on_time(
    tls_server: RunningServer, pki: PKI, caplog: pytest.LogCaptureFixture
) -> None:
    loop = asyncio.get_running_loop()
    with caplog.at_level(logging.INFO, logger="chat.server.transport"):
        idle = socket.create_connection(("127.0.0.1", tls_port(tls_server)), timeout=10)
        half = socket.create_connection(("127.0.0.1", tls_port(tls_server)), timeout=10)
        try:
            # A ClientHello cut short: the server waits for the rest, but not for ever.
            half.sendall(bytes.fromhex("160301020001"))
            # (wait_eof's own deadline, ten handshake timeouts, fails a server that waits
            # for ever; how long it took is not asserted: a loaded machine is slow)
            await asyncio.gather(
                loop.run_in_executor(None, wait_eof, idle, 10 * HANDSHAKE_TIMEOUT),
                loop.run_in_executor(None, wait_eof, half, 10 * HANDSHAKE_TIMEOUT),
            )
        finally:
            idle.close()
            half.close()
        await settle(lambda: len(timed_out(caplog)) >= 2)
    # Closed by the handshake timeout (its logged reason), not at once nor otherwise;
    # no bound on the time taken, which a loaded machine's executor threads stretch.
    assert len(timed_out(caplog)) == 2
    async with connected(tls_server, pki, "punctual") as c:
        await c.sync()


@pytest.mark.parametrize(
    "garbage",
    [
        b"NICK plain\r\nUSER plain 0 * :plaintext on the TLS port\r\n",
        bytes(range(256)) * 8,
        b"\x16\x03\x01\xff\xff" + b"\x00" * 600,  # a record header promising 64 KB
        b"\x16\x03\x03\x00\x05\x01\x00\x00\x01\x00",  # a truncated, malformed ClientHello
    ],
    ids=["plaintext-irc", "binary", "huge-record", "bad-hello"],
)
async def test_garbage_on_the_tls_port_does_no_harm(
    tls_server: RunningServer, pki: PKI, garbage: bytes
) -> None:
    loop = asyncio.get_running_loop()
    plain = await tls_server.client("bystander")
    socks = []
    for _ in range(3):
        s = socket.create_connection(("127.0.0.1", tls_port(tls_server)), timeout=10)
        with contextlib.suppress(OSError):
            s.sendall(garbage)
        socks.append(s)
    try:
        for s in socks:  # (closed, at the latest, by the handshake timeout: the deadline
            # of wait_eof, ten of them, fails a server that keeps them open)
            await loop.run_in_executor(None, wait_eof, s, 10 * HANDSHAKE_TIMEOUT)
    finally:
        for s in socks:
            s.close()
    await plain.sync()
    fresh = await tls_server.client("newcomer")
    await fresh.sync()
    async with connected(tls_server, pki, "secure") as c:
        await c.sync()


async def test_failed_handshakes_are_logged_with_their_reason_and_counted(
    tls_server: RunningServer, pki: PKI, caplog: pytest.LogCaptureFixture
) -> None:
    """asyncio's TLS listener dropped a failed handshake without a word (outside debug
    mode): an operator could not tell a client without TLS on the TLS port, or one
    that does not trust the certificate, from one that never connected."""
    assert OPENSSL is not None
    loop = asyncio.get_running_loop()
    port = tls_port(tls_server)
    with caplog.at_level(logging.INFO, logger="chat.server.transport"):
        plain = socket.create_connection(("127.0.0.1", port), timeout=10)
        silent = socket.create_connection(("127.0.0.1", port), timeout=10)
        try:
            plain.sendall(b"CAP LS 302\r\nNICK plain\r\nUSER plain 0 * :no TLS\r\n")
            told, _ = await asyncio.gather(
                loop.run_in_executor(None, read_until_closed, plain, 10 * HANDSHAKE_TIMEOUT),
                loop.run_in_executor(None, wait_eof, silent, 10 * HANDSHAKE_TIMEOUT),
            )
            # Told in plaintext, with the port to use instead (irssi shows it).
            assert told == (b"ERROR :This port speaks TLS: connect with TLS, or to port "
                            b"%d without it\r\n" % tls_server.port)
        finally:
            plain.close()
            silent.close()
        await asyncio.to_thread(
            subprocess.run,
            [OPENSSL, "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "localhost",
             "-CAfile", str(pki.other_root), "-verify_return_error"],
            input=b"", capture_output=True, timeout=30,
        )  # fmt: skip
        async with connected(tls_server, pki, "fine") as c:  # not counted
            await c.sync()
    failures = tls_server.handle.server.stats.tls_failures  # type: ignore[attr-defined]
    assert failures.count == 3
    said = [r.getMessage() for r in caplog.records if "TLS handshake from" in r.getMessage()]
    assert len(said) == 3 and all("127.0.0.1" in line for line in said)
    # In the same words on every backend (select said WRONG_VERSION_NUMBER: OpenSSL's).
    assert ("TLS handshake from 127.0.0.1 failed: plaintext (not TLS: a client without TLS "
            "on the TLS port?)") in said
    assert any(line.endswith("failed: timed out") for line in said)
    assert any("does not trust our certificate" in line for line in said)


async def test_a_tcp_probe_of_the_tls_port_is_not_a_failed_handshake(
    backend: str, pki: PKI, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A load balancer's TCP check, Docker's ``nc -z``: connect, then close before a
    byte. Each was logged as a failed handshake ("closed by the client") and counted,
    every few seconds, burying real failures; a client that sent part of a
    ClientHello and closed did fail, and still does."""
    metrics_port = free_port()
    running = start_server(tls_config(pki, metrics_port=metrics_port), backend,
                           db=str(tmp_path / "h.db"))
    try:
        port = tls_port(running)
        with caplog.at_level(logging.INFO, logger="chat.server.transport"):
            # Not counted at all; and once it is through, the metrics thread is up.
            async with connected(running, pki, "fine") as c:
                await c.sync()
            socket.create_connection(("127.0.0.1", port), timeout=10).close()  # a FIN
            reset = socket.create_connection(("127.0.0.1", port), timeout=10)
            # HAProxy's checks close with a reset (SO_LINGER 0), to leave no TIME_WAIT.
            reset.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            reset.close()
            with socket.create_connection(("127.0.0.1", port), timeout=10) as half:
                half.sendall(bytes.fromhex("160301020001"))  # a ClientHello cut short
            half = socket.create_connection(("127.0.0.1", port), timeout=10)
            half.sendall(bytes.fromhex("160301020001"))
            half.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            half.close()  # and a reset

            def counted() -> tuple[float, float]:
                """(failed handshakes, silent closes), from /metrics."""
                text = scrape(metrics_port)[1]
                silent = "chat_tls_silent_closes_total"
                return (sample(text, "chat_tls_handshake_failures_total"),
                        sample(text, silent) if silent in text else 0.0)  # fmt: skip

            await settle(lambda: sum(counted()) >= 4)
        assert counted() == (2.0, 2.0)
    finally:
        running.handle.stop()
    said = [r.getMessage() for r in caplog.records if "TLS handshake" in r.getMessage()]
    assert said == ["TLS handshake from 127.0.0.1 failed: closed by the client"] * 2


async def test_a_malformed_handshake_is_logged_as_one(
    tls_server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Bytes that begin as a TLS handshake record (0x16) and go on as garbage: a
    scanner, a fuzzer. Their OpenSSL reasons were logged bare ("UNEXPECTED_MESSAGE"),
    or as a client without TLS, which these are not (their first byte was TLS's)."""
    garbage = {
        b"\x16\x03\x01\xff\xff" + b"\x00" * 600: "PACKET_LENGTH_TOO_LONG",  # 64 KB record
        b"\x16\x03\x03\x00\x05\x01\x00\x00\x01\x00": "LENGTH_TOO_SHORT",
        b"\x16\x03\x01\x00\x08\x01\x00\x00\x04\x03\x03\x00\x00": "LENGTH_MISMATCH",
        b"\x16\x03\x01\x00\x04\x02\x00\x00\x00": "UNEXPECTED_MESSAGE",  # a ServerHello
        b"\x16" + bytes(range(1, 256)): "WRONG_VERSION_NUMBER",
    }
    port = tls_port(tls_server)

    def said() -> list[str]:
        return [r.getMessage() for r in caplog.records if "TLS handshake from" in r.getMessage()]

    with caplog.at_level(logging.INFO, logger="chat.server.transport"):
        for data in garbage:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                s.sendall(data)
                await asyncio.to_thread(wait_eof, s, 10 * HANDSHAKE_TIMEOUT)
        await settle(lambda: len(said()) >= len(garbage))
    assert sorted(said()) == sorted(
        f"TLS handshake from 127.0.0.1 failed: {reason} (not a valid TLS handshake)"
        for reason in garbage.values()
    )


async def test_a_handshake_under_way_is_closed_when_the_server_stops(
    backend: str, pki: PKI, tmp_path: Path
) -> None:
    running = start_server(tls_config(pki, tls_handshake_timeout=60.0), backend,
                           db=str(tmp_path / "h.db"))
    try:
        silent = socket.create_connection(("127.0.0.1", tls_port(running)), timeout=10)
        await asyncio.sleep(0.2)  # accepted: its handshake waits for a first byte
    finally:
        running.handle.stop()
    try:
        # Closed by the stop, with nothing said (read_until_closed raises on its timeout
        # if the socket is left open).
        assert await asyncio.to_thread(read_until_closed, silent, 10.0) == b""
    finally:
        silent.close()


def test_failed_handshakes_are_logged_at_most_twenty_a_minute(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from server.transport.handshakes import LOG_PER_MINUTE, HandshakeFailures

    now = [0.0]
    failures = HandshakeFailures(clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="chat.server.transport"):
        for _ in range(LOG_PER_MINUTE + 5):
            failures.failed("192.0.2.1", ssl.SSLError(1, "x"))
        now[0] = 59.0
        failures.tick()
        assert len(caplog.records) == LOG_PER_MINUTE  # the minute is not over
        now[0] = 61.0
        failures.tick()  # the transport's timer: said when the minute ends, not later
        failures.failed("192.0.2.1", None)
    said = [r.getMessage() for r in caplog.records]
    assert failures.count == LOG_PER_MINUTE + 6
    assert len(said) == LOG_PER_MINUTE + 2
    assert said[-2] == "5 more TLS handshakes failed in that minute (not logged)"
    assert said[-1] == "TLS handshake from 192.0.2.1 failed: timed out"


# ---------------------------------------------------------------------- options


def test_tls_port_without_cert_is_rejected_by_the_cli(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAT_")}
    result = subprocess.run(
        [sys.executable, "-m", "server", "--tls-port", "0"],
        cwd=tmp_path, env={**env, "PYTHONPATH": str(REPO)},
        capture_output=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    err = result.stderr.decode()
    assert "--tls-port" in err and "--tls-cert" in err and "--tls-key" in err
    assert "Traceback" not in err


def test_tls_options_are_validated(pki: PKI, tmp_path: Path) -> None:
    cert, key = str(pki.chain), str(pki.key)
    ok = load_config(["--tls-port", "0", "--tls-cert", cert, "--tls-key", key], {})
    assert (ok.tls_port, ok.tls_cert, ok.tls_key) == (0, cert, key)
    env = {"CHAT_TLS_PORT": "6697", "CHAT_TLS_CERT": cert, "CHAT_TLS_KEY": key}
    assert load_config([], env).tls_port == 6697

    def error(argv: list[str], environ: dict[str, str] | None = None) -> str:
        with pytest.raises(ConfigError) as e:
            load_config(argv, environ or {})
        return str(e.value)

    assert "--tls-key" in error(["--tls-port", "0", "--tls-cert", cert])
    assert error(["--tls-port", "6697"], {"CHAT_TLS_KEY": key}).startswith("--tls-port:")
    assert "between 0 and 65535" in error(["--tls-port", "70000"])
    assert "must differ" in error(["--port", "6697", "--tls-port", "6697",
                                   "--tls-cert", cert, "--tls-key", key])  # fmt: skip
    assert load_config(["--tls-cert", cert], {}).tls_port is None  # no port: no TLS
    missing = str(tmp_path / "missing.pem")
    msg = error(["--tls-port", "0", "--tls-cert", missing, "--tls-key", key])
    assert msg.startswith("--tls-cert: cannot read certificate file") and missing in msg
    msg = error(["--tls-port", "0", "--tls-cert", cert, "--tls-key", cert])
    assert msg.startswith("--tls-key: ") and "PEM" in msg
    msg = error(["--tls-port", "0", "--tls-cert", cert, "--tls-key", str(pki.other_key)])
    assert "does not match" in msg
    msg = error(["--tls-port", "0", "--tls-cert", cert, "--tls-key", str(pki.encrypted_key)])
    assert msg.startswith("--tls-key: ") and "encrypted" in msg
    msg = error(["--tls-port", "0", "--tls-cert", str(tmp_path), "--tls-key", key])
    assert "not a regular file" in msg


# ---------------------------------------------------------------------- STS


async def cap_ls(c: IRCTestClient, version: str = "302") -> dict[str, str]:
    await c.send(f"CAP LS {version}")
    reply = await c.expect("CAP", lambda m: m.params[1] == "LS")
    return dict(t.partition("=")[::2] for t in reply.params[-1].split())


async def test_sts_sends_plaintext_clients_to_the_tls_port(
    backend: str, pki: PKI, tmp_path: Path
) -> None:
    running = start_server(tls_config(pki, sts_duration=86400), backend, db="")
    try:
        plain = await running.client()
        caps = await cap_ls(plain)
        assert caps["sts"] == f"port={tls_port(running)}"
        assert "sts" not in await cap_ls(plain, "")  # no values before 302: not offered
        await plain.send("CAP REQ sts")  # listed, never requestable
        assert (await plain.expect("CAP", lambda m: m.params[1] in ("ACK", "NAK"))).params[1] \
            == "NAK"
        async with connected(running, pki) as secure:
            assert (await cap_ls(secure))["sts"] == "duration=86400"
    finally:
        for c in running.clients:
            await c.close()
        running.handle.stop()


async def test_no_sts_unless_asked_for(tls_server: RunningServer, pki: PKI) -> None:
    plain = await tls_server.client()
    assert "sts" not in await cap_ls(plain)
    async with connected(tls_server, pki) as secure:
        assert "sts" not in await cap_ls(secure)


def test_sts_needs_a_tls_listener() -> None:
    with pytest.raises(ConfigError) as e:
        load_config(["--sts-duration", "3600"], {})
    assert str(e.value) == "--sts-duration: STS needs a TLS listener (tls_port)"
    assert load_config(["--sts-duration", "0"], {}).sts_duration == 0


def test_tls_paths_in_a_config_file_are_relative_to_it(pki: PKI, tmp_path: Path) -> None:
    conf_dir = tmp_path / "etc"
    conf_dir.mkdir()
    shutil.copy(pki.chain, conf_dir / "cert.pem")
    shutil.copy(pki.key, conf_dir / "key.pem")
    (conf_dir / "chat.toml").write_text(
        'tls_port = 6697\ntls_cert = "cert.pem"\ntls_key = "key.pem"\n'
    )
    config = load_config(["--config", str(conf_dir / "chat.toml")], {})
    assert config.tls_cert == str(conf_dir / "cert.pem")
    assert config.tls_key == str(conf_dir / "key.pem")


def test_server_context_has_modern_defaults(pki: PKI) -> None:
    ctx = server_context(str(pki.chain), str(pki.key))
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    assert ctx.options & ssl.OP_NO_COMPRESSION
    assert ctx.options & ssl.OP_NO_RENEGOTIATION
    tls12 = [c for c in ctx.get_ciphers() if c["protocol"] == "TLSv1.2"]
    assert tls12 and all(c["aead"] and c["kea"] in ("kx-ecdhe", "kx-dhe") for c in tls12)
    with pytest.raises(TLSConfigError) as e:
        server_context(str(pki.chain), str(pki.other_key))
    assert e.value.which is None


def test_a_bad_certificate_stops_the_server_before_it_listens(
    backend: str, pki: PKI, tmp_path: Path
) -> None:
    config = tls_config(pki, tls_key=str(pki.other_key))
    with pytest.raises(TLSConfigError):
        start_server(config, backend, db=str(tmp_path / "h.db"))


# ---------------------------------------------------------------------- the process


def _soft_nofile_of(pid: int) -> str | None:
    """The soft RLIMIT_NOFILE of a running process (Linux only), as /proc shows it."""
    try:
        with open(f"/proc/{pid}/limits") as f:
            line = next(x for x in f if x.startswith("Max open files"))
    except (OSError, StopIteration):
        return None
    return line.split()[3]


@pytest.mark.parametrize("proc_backend", ["asyncio", "select"])
async def test_the_process_serves_tls_and_raises_its_fd_limit(
    proc_backend: str, pki: PKI, tmp_path: Path
) -> None:
    import resource

    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    lowered = 256 if hard == resource.RLIM_INFINITY or hard > 256 else hard
    port, tport = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAT_")}

    def lower_limit() -> None:  # the child starts with a low soft limit
        resource.setrlimit(resource.RLIMIT_NOFILE, (lowered, hard))

    proc = subprocess.Popen(
        [sys.executable, "-m", "server", "--port", str(port), "--tls-port", str(tport),
         "--tls-cert", str(pki.chain), "--tls-key", str(pki.key), "--backend", proc_backend,
         "--name", "proc.test", "--db", str(tmp_path / "h.db"), "--log-level", "info"],
        cwd=tmp_path, env={**env, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=lower_limit,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 15
        while True:
            assert proc.poll() is None, "the server exited early"
            try:
                c = await open_tls(tport, client_context(pki))
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)
        try:
            await c.register("procuser")
            await c.send("WHOIS procuser")
            replies = await c.collect_until(N.RPL_ENDOFWHOIS)
            assert [m for m in replies if m.command == N.RPL_WHOISSECURE]
        finally:
            await c.close()
        plain = await IRCTestClient.open(port)
        try:
            await plain.register("plainuser")
        finally:
            await plain.close()
        child_soft = _soft_nofile_of(proc.pid)
        if child_soft is not None and lowered < hard:
            if hard == resource.RLIM_INFINITY:
                assert child_soft != str(lowered)
            else:
                assert child_soft == str(hard)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert "listening for TLS on" in stderr
    if lowered < hard:
        assert "open file limit raised from 256" in stderr
