"""Failed TLS handshakes: counted, and logged with what an operator can act on.

asyncio and uvloop report a failed handshake only in debug mode, and a client
without TLS on the TLS port, or one that does not trust the certificate, just sees
the connection closed: the log line says which it was. A scanner can fail
handshakes as fast as it connects, so at most ``LOG_PER_MINUTE`` lines a minute
are written, and then one line with how many were not.

``HandshakeGate`` admits a TLS connection before its handshake, with the core's limits
and D-lines.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from server.core.connlimits import THROTTLED, HostRate, host_key
from server.core.logbudget import LogBudget

if TYPE_CHECKING:
    from server.core import ServerCore

log = logging.getLogger("chat.server.transport")

LOG_PER_MINUTE = 20

# OpenSSL's reasons, as the person at the keyboard would put them.
# Bytes that began as a handshake record (0x16) and went on as something else: a
# scanner, a fuzzer, another protocol. Not "no TLS": a first byte other than 0x16
# never reaches OpenSSL (NotTLS), so its WRONG_VERSION_NUMBER and kin mean this too.
_MALFORMED = {
    # the record layer
    "WRONG_VERSION_NUMBER", "UNKNOWN_PROTOCOL", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG",
    "ENCRYPTED_LENGTH_TOO_LONG", "RECORD_LENGTH_MISMATCH", "BAD_RECORD_TYPE", "UNEXPECTED_RECORD",
    "BAD_PACKET_LENGTH", "NOT_ON_RECORD_BOUNDARY",
    # the ClientHello in it
    "UNEXPECTED_MESSAGE", "EXCESSIVE_MESSAGE_SIZE", "LENGTH_MISMATCH", "LENGTH_TOO_SHORT",
    "LENGTH_TOO_LONG", "BAD_LENGTH", "BAD_PACKET", "BAD_HANDSHAKE_LENGTH", "BAD_DATA",
    "BAD_LEGACY_VERSION", "BAD_EXTENSION", "PARSE_TLSEXT", "CLIENTHELLO_TLSEXT", "BAD_KEY_SHARE",
    "BAD_ECPOINT", "MISSING_SUPPORTED_GROUPS_EXTENSION", "MISSING_SIGALGS_EXTENSION",
    "NO_COMPRESSION_SPECIFIED", "INVALID_COMPRESSION_ALGORITHM", "POST_HANDSHAKE_AUTH_ENCODING_ERR",
}  # fmt: skip
_UNTRUSTED = {"TLSV1_ALERT_UNKNOWN_CA", "SSLV3_ALERT_BAD_CERTIFICATE",
              "SSLV3_ALERT_CERTIFICATE_UNKNOWN", "TLSV1_ALERT_DECRYPT_ERROR"}
_TOO_OLD = {"UNSUPPORTED_PROTOCOL", "TLSV1_ALERT_PROTOCOL_VERSION", "NO_PROTOCOLS_AVAILABLE"}


TLS_RECORD = 0x16  # the first byte of every ClientHello: a handshake record


class NotTLS(Exception):
    """The client's first byte was not a TLS handshake record."""


def first_byte(sock: socket.socket) -> bytes:
    """The client's first byte, peeked: left in the socket for OpenSSL to read (even
    on an ``SSLSocket`` before its handshake); b"" once the client closed, or reset,
    without sending one.

    Both backends judge a plaintext client by this byte, not by OpenSSL's error,
    which names the same client differently (``WRONG_VERSION_NUMBER``,
    ``HTTP_REQUEST``...). Raises ``BlockingIOError`` while nothing has come."""
    try:
        return socket.socket.recv(sock, 1, socket.MSG_PEEK)
    except ConnectionResetError:
        # The kernel hands over bytes received before a reset first, so none came:
        # HAProxy's checks, for one, close with a reset.
        return b""


def not_tls_reply(plain_port: int) -> bytes:
    """What a client that spoke plaintext to the TLS port is told (irssi shows it)."""
    return (f"ERROR :This port speaks TLS: connect with TLS, or to port {plain_port} "
            "without it\r\n").encode()


def answer_plaintext(sock: socket.socket, reply: bytes) -> None:
    """Tell a client without TLS why it is refused, in plaintext (even on an
    ``SSLSocket`` whose handshake failed). What it sent is read first, so that the
    close is a FIN, not a reset that can discard the reply before it is read."""
    with contextlib.suppress(OSError):
        for _ in range(4):  # a registration burst; more is not waited for
            if not socket.socket.recv(sock, 4096):
                break
    with contextlib.suppress(OSError):
        socket.socket.send(sock, reply)
        socket.socket.shutdown(sock, socket.SHUT_WR)


def describe(exc: BaseException | None) -> str:
    """Why a handshake failed, in a few words (None: it timed out)."""
    if exc is None or isinstance(exc, TimeoutError) or "taking longer" in str(exc):
        return "timed out"
    if isinstance(exc, NotTLS):
        return "plaintext (not TLS: a client without TLS on the TLS port?)"
    if isinstance(exc, ssl.SSLError) and not isinstance(exc, ssl.SSLEOFError):
        reason = getattr(exc, "reason", None) or type(exc).__name__
        if reason in _MALFORMED:
            return f"{reason} (not a valid TLS handshake)"
        if reason in _UNTRUSTED:
            return f"{reason} (the client does not trust our certificate)"
        if reason in _TOO_OLD:
            return f"{reason} (the client is older than TLS 1.2)"
        return str(reason)
    if isinstance(exc, (ConnectionError, ssl.SSLEOFError, EOFError)):
        return "closed by the client"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return type(exc).__name__


class HandshakeFailures:
    """One server's failed TLS handshakes (``count`` goes to the metrics), and its TCP
    probes (``silent``)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.count = 0
        self.silent = 0  # connections closed before their first byte
        self._budget = LogBudget(
            log, LOG_PER_MINUTE, "%d more TLS handshakes failed in that minute (not logged)",
            clock,
        )

    def failed(self, ip: str, exc: BaseException | None) -> None:
        self.count += 1
        if self._budget.allow():
            log.info("TLS handshake from %s failed: %s", ip, describe(exc))

    def closed_silently(self, ip: str) -> None:
        """A connection closed before sending a byte: no handshake was tried. A load
        balancer's TCP check or ``nc -z`` does this every few seconds, which would
        bury the real failures in the log."""
        self.silent += 1
        log.debug("TLS port: %s closed before sending a byte (a TCP probe?)", ip)

    def tick(self) -> None:
        """Once a second (the transport's timer): a minute over, the count of the
        failures not logged in it is."""
        self._budget.tick()


class Admission:
    """A TLS connection's place among the handshakes in flight; given back once, by
    whichever comes first: the core taking the connection over, or its end."""

    __slots__ = ("_gate", "key")

    def __init__(self, gate: HandshakeGate, key: str) -> None:
        self._gate: HandshakeGate | None = gate
        self.key = key

    def release(self) -> None:
        gate = self._gate
        if gate is not None:
            self._gate = None
            gate.released(self.key)


class HandshakeGate:
    """The core's admission checks, made for the TLS port as it accepts, before any
    handshake work: the core hears of a TLS connection only once its handshake is over,
    and until then each holds a descriptor and tens of kB (one address held 9,000).

    A D-lined address is refused here too. A handshake in flight counts as one of its
    host's connections and towards the global cap, until the core counts it instead. A
    refused socket is just closed: a TLS client could not read a plaintext ERROR."""

    def __init__(self, core: ServerCore) -> None:
        self._core = core
        self._per_host: dict[str, int] = {}
        self.in_flight = 0
        # TLS accepts per host, with the core's throttle settings. The core's own
        # bucket cannot be charged here: it is charged again when the core takes the
        # connection over (and cannot refund). So each bucket pays once per connection,
        # and the core's is only looked at: empty, the core would refuse it anyway.
        self._throttle = HostRate(0, 0.0)

    def admit(self, ip: str) -> Admission | None:
        """The connection's place, or None: refused (counted and logged as the core's
        refusals are, within the same log budget)."""
        core = self._core
        limits = core.limits
        key = host_key(ip)
        now = core.clock()
        throttle = self._throttle
        throttle.burst, throttle.rate = limits.throttle.burst, limits.throttle.rate  # as REHASHed
        # The core's checks and words, so the metrics count them together. A D-line
        # first: its handshake would be CPU spent for a client the core then refuses.
        refusal = core.bans.dline_refusal(ip)
        if refusal is None:
            refusal = limits.full(key, len(core.clients) + self.in_flight,
                                  self._per_host.get(key, 0))
        if refusal is None and (limits.throttle.wait(key, now) > 0.0
                                or not throttle.take(key, now)):
            refusal = THROTTLED
        if refusal is not None:
            core.stats.refuse(refusal)
            if core.refusal_log.allow():
                log.info("refused TLS connection from %s before its handshake: %s", ip, refusal)
            return None
        self._per_host[key] = self._per_host.get(key, 0) + 1
        self.in_flight += 1
        return Admission(self, key)

    def released(self, key: str) -> None:
        """Called by ``Admission.release`` only."""
        self.in_flight -= 1
        count = self._per_host.get(key, 0) - 1
        if count > 0:
            self._per_host[key] = count
        else:
            self._per_host.pop(key, None)

    def expire(self) -> None:
        """Once a second (the transport's timer): forget refilled throttle buckets."""
        self._throttle.expire(self._core.clock())
