"""The sans-IO server: feed it bytes per connection, collect output and effects.

The transport calls ``connect``, ``data_received``, ``connection_lost``, ``tick``
and ``shutdown``; after each of those it drains ``take_output()`` (clients whose
``out`` holds bytes, or that are ``closing``) and ``take_effects()``. The core
never awaits and never reads a clock other than the one it is given.
"""

from __future__ import annotations

import logging
import secrets
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from chat import numerics as N
from chat.casemap import folder
from chat.framing import LineTooLong
from chat.message import (
    FORCE_TRAILING,
    MAX_LINE_BODY,
    Message,
    ParseError,
    escape_tag_value,
    parse,
    serialize_tags,
    trailing,
)
from chat.msgid import MsgIdGenerator
from chat.multiline import CAP as MULTILINE_CAP
from chat.multiline import Line
from chat.servertime import format_time, parse_time
from server.accounts.model import Markers, RegisteredChannel
from server.config import ServerConfig
from server.history.model import DirectPair, NewMessage, Query, StoredMessage

from . import caps as caps_mod
from .bans import BanList
from .callerid import AcceptIndex
from .cloak import cloak_host
from .connlimits import ConnectionLimits, HostRate, host_key
from .departures import Departures
from .flood import FloodGate, line_cost
from .history import (
    STORED_COMMANDS,
    HistoryRequest,
    Pending,
    StoreMessage,
    deliver_history,
    dm_key,
    end_private_channel,
    message_to_store,
    record_departure,
    request_playback,
    sender_key,
    transit_key,
)
from .logbudget import LogBudget
from .monitor import MonitorIndex
from .multiline import MultilineRelay, batch_line_cost, has_batch_tag
from .relay import Relay, add_tag, fit_line, relay_wire
from .state import Channel, Client, LocalCounts
from .stats import CoreStats
from .whowas import WhowasLog

log = logging.getLogger("chat.server.core")

# A joiner's output waits at most this long for its playback (a store that is slow
# to answer); what comes later is appended to what was written meanwhile.
PLAYBACK_HOLD_SECONDS = 5.0
# Cluster: how long after a join its playback and another node's live messages are
# told apart by msgid (an event in flight takes milliseconds).
JOINER_MSGIDS_SECONDS = 10.0
HELD_LINES = 64  # lines a client may send while its OPER or REHASH awaits its answer
# Join playback reads of one client on the history reader at once: a JOIN of 50
# channels queued 50 reads ahead of everyone else's; later joins' reads wait their turn.
PLAYBACK_READS = 4
REFUSALS_LOGGED = 20  # refused connections logged a minute (see refusal_log)
# Tracebacks of one command's handler logged a minute (see _failure_log): a bug a client
# can reach would otherwise log ~1 KB per line it sends (gigabytes a day).
FAILURES_LOGGED = 20

# Settings a running server cannot change: REHASH keeps the old value and says so.
RESTART_ONLY = (
    "host",
    "port",
    "tls_port",
    "tls_cert",
    "tls_key",
    "tls_handshake_timeout",
    "backend",
    "select_impl",
    "db",
    "ban_file",
    "redis",
    "casemapping",
    "metrics_port",
    "metrics_host",
    "name",
    # The cluster bus keeps the config it started with.
    "cluster",
    "node_id",
    "cluster_heartbeat",
    "cluster_dead_after",
    "nick_lease",
)

Handler = Callable[["ServerCore", Client, Message], None]


@dataclass(slots=True)
class Waits:
    """What one connection waits for from the transport (``ServerCore._waits``), counted
    where each entry is added and removed, so that an answer looks at its own client
    only rather than at every request pending."""

    # Answers its input is held for: checks (pending_answers), history reads other than
    # playback (_pending_history), nick claims (nick_pending).
    input: int = 0
    playbacks: int = 0  # join playback reads asked and not answered
    # Join playback reads waiting their turn (PLAYBACK_READS), in join order.
    queued: deque[tuple[Pending, HistoryRequest]] = field(default_factory=deque)

    def idle(self) -> bool:
        return not (self.input or self.playbacks or self.queued)


def _per_second(refill: float) -> float:
    """A refill period (seconds per token) as a rate; 0 turns the limit off."""
    return 1.0 / refill if refill > 0 else 0.0
Answer = Callable[[Client, Any], None]  # what to do with a result computed off the loop

# Commands a client may send before it has registered.
PRE_REGISTRATION = frozenset(
    {"CAP", "NICK", "USER", "PASS", "PING", "PONG", "QUIT", "AUTHENTICATE", "REGISTER", "VERIFY",
     "AWAY"}  # AWAY only with draft/pre-away: its handler checks
)
# message-tags: "Clients MUST NOT send messages with tag data exceeding 4094 bytes, this
# includes tags with or without the client-only prefix" (the data between '@' and ' ').
MAX_CLIENT_TAGS = 4094


def _command_of(raw: bytes) -> str:
    """The command a rejected line names, for its FAIL ("*" when it names none)."""
    try:
        command = parse(raw.split(b"\x00", 1)[0].decode("utf-8", "replace")).command
    except ParseError:
        return "*"
    return command.upper() if command.isascii() and command.isalnum() else "*"


def _is_one_batch(lines: list[bytes]) -> bool:
    """Whether ``lines`` are exactly one batch: BATCH +ref ... BATCH -ref."""
    first = lines[0].split(b" ", 4)
    if first and first[0].startswith(b"@"):
        first = first[1:]
    if len(first) < 3 or first[1] != b"BATCH" or not first[2].startswith(b"+"):
        return False
    ref = first[2][1:]
    return lines[-1].rstrip(b"\r\n").endswith(b"BATCH -" + ref)


MAX_ECHOED_MIDDLE = 200  # bytes: the longest name or mask a reply repeats back (ban masks)


def _safe_middle(param: str) -> str:
    # Text echoed from a client ("WHOIS :a b") must not turn into extra params, and a
    # 470-byte "nick" in "401 <nick>" would push the reply past 512 bytes.
    if (
        not param
        or " " in param
        or param[0] == ":"
        or len(param.encode("utf-8", "surrogateescape")) > MAX_ECHOED_MIDDLE
    ):
        return "*"
    return param


def closing_link(host: str, reason: str) -> bytes:
    """The ERROR line that ends a connection (``write`` cuts it to 512 bytes)."""
    # Formatted directly: one per connection, and the text always holds a space, so
    # the param is always a trailing one.
    return f"ERROR :Closing Link: {host} ({reason})\r\n".encode("utf-8", "surrogateescape")


class ServerCore:
    def __init__(
        self,
        config: ServerConfig,
        clock: Callable[[], float],
        *,
        msgids: MsgIdGenerator | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.fold = folder(config.casemapping)
        self.msgids = msgids or MsgIdGenerator()
        self.created = clock()
        self.clients: dict[int, Client] = {}
        self.nicks: dict[str, Client] = {}  # folded nick -> registered or reserving client
        self.channels: dict[str, Channel] = {}  # folded name -> channel
        self._dirty: list[Client] = []
        self._effects: list[Any] = []
        self._capture_client: Client | None = None
        self._capture: list[bytes] | None = None
        self._label: str | None = None  # label of the request being dispatched
        self._label_deferred = False  # that request's answer comes later
        # OPER checks out with the transport: id -> (conn_id, oper name, label).
        # Answers the transport computes off the loop (password checks): check id ->
        # (conn_id, label, what to do with the answer).
        # check id -> (conn_id, label, answer, what to do if the client has left).
        self.pending_answers: dict[
            int, tuple[int, str | None, Answer, Callable[[Any], None] | None]
        ] = {}
        # Folded names of the registered accounts: the nicks they reserve. The transport
        # loads them at start; REGISTER here and on other nodes adds to them.
        self.account_names: set[str] = set()
        # Local clients logged in, by folded account: who hears of a moved read marker,
        # who is logged out when an account is dropped (without scanning every client).
        self.account_sessions: dict[str, dict[Client, None]] = {}
        # draft/read-marker: folded account -> folded target -> time (ms) of the last
        # message read (readmarker.keep_marker: ACCOUNT_MARKERS at most); read from the
        # account store at start, written behind.
        self.read_markers: dict[str, Markers] = {}
        # (account, target) -> time of the markers moved since the last batch written
        # behind (readmarker.save_marker).
        self.markers_to_save: dict[tuple[str, str], int] = {}
        self.markers_saved_at = float("-inf")  # (the clock's) when the last batch went
        # Join playback: "<folded channel> <history.departure_keys key>" -> msgid marking
        # when a local user last left it (history.record_departure), in fixed memory.
        self.departures = Departures()
        self._answer_seq = 0
        self._batch_seq = 0
        self.max_clients_seen = 0
        self.counts = LocalCounts()
        # handlers.registration.WelcomeBurst: the registration burst's fixed lines,
        # serialised once per configuration (rebuilt when REHASH replaces self.config).
        self.welcome: Any = None
        self.command_counts: dict[str, int] = {}  # STATS m: commands seen by name
        self.whowas = WhowasLog(config.whowas_size)
        self.monitor = MonitorIndex()
        self.accept = AcceptIndex()  # caller ID (+g): accept lists, both ways
        self.snotice_users: dict[Client, None] = {}  # local operators with user mode +s
        self.stats = CoreStats()
        self._time_ms = -1
        self._time_text = ""
        self.history_enabled = bool(config.db)
        # Set by the transport while a failed commit's messages wait for the store: new
        # messages that would be stored are refused, not relayed unstored.
        self.history_unwritable = False
        self.caps_available = caps_mod.available(
            self.history_enabled, config.allow_register,
            (config.multiline_max_bytes, config.multiline_max_lines),
        )
        self.sts_port: int | None = None  # the bound TLS port, set by the transport (STS)
        self._history_seq = 0
        self._pending_history: dict[int, Pending] = {}
        # conn_id -> what it waits for (Waits); no entry when nothing.
        self._waits: dict[int, Waits] = {}
        # Clients told their join playback was skipped (history.playback_charged).
        self.told_playback_skipped: dict[Client, None] = {}
        # Joiners whose playback is being read -> (since when, request id -> where in
        # their output it goes): their output waits, so that what others said after
        # the join comes after the playback of what they said before it.
        self._playback_holds: dict[Client, tuple[float, dict[int, int]]] = {}
        # Cluster: joiner -> (since when, msgids of channel messages it was sent since it
        # joined): another node's message stored before the join but heard after it was
        # in the playback and came live as well (shown twice).
        self._joiner_msgids: dict[Client, tuple[float, set[str]]] = {}
        self.bans = BanList(self.fold)  # K-/D-lines; the transport loads the saved ones
        self.limits = ConnectionLimits(
            config.max_clients, config.max_per_host, config.throttle_burst, config.throttle_rate
        )
        # Accounts registered per host: each reserves a nick and a row for good.
        self.account_rate = HostRate(config.account_limit, _per_second(config.account_refill))
        # Accounts registered server-wide (a single bucket): each costs a scrypt hash,
        # and many addresses, each within its own rate, kept the hashing busy.
        self.register_rate = HostRate(config.register_limit, _per_second(config.register_refill))
        # MemoServ SEND per sender account: filling someone's memo box takes time.
        self.memo_rate = HostRate(config.memo_limit, _per_second(config.memo_refill))
        # Searches that walk every channel or user (LIST, WHO <mask>): matches per host.
        # Flood control counts lines, and one such line over 20,000 users (or with 125
        # LIST masks) held the loop for a second.
        self.scan_rate = HostRate(config.scan_burst, config.scan_rate)
        # A connect flood is refused at the rate it connects: a line each would be
        # gigabytes of log a day (the metrics count them all).
        self.refusal_log = LogBudget(
            log, REFUSALS_LOGGED, "%d more connections refused in that minute (not logged)", clock
        )
        # Logins and REGISTERs refused past their limits (too many failures, too many
        # accounts from the host) are as cheap to repeat: the same twenty a minute.
        self.login_refusal_log = LogBudget(
            logging.getLogger("chat.server.accounts"), REFUSALS_LOGGED,
            "%d more logins or registrations refused in that minute (not logged)", clock,
        )
        # Failed logins per folded account (handlers/accounts.py check_login, SCRAM).
        self.login_failures = HostRate(config.login_failures, _per_second(config.login_refill))
        # Failed password checks per host (handlers/operator.py host_wait, start_check).
        self.password_hosts = HostRate(
            config.host_password_failures, _per_second(config.host_password_refill))
        self.cloak_key = config.cloak_key.encode() or secrets.token_bytes(32)
        self._flooded: dict[Client, None] = {}  # clients with delayed lines
        self._failure_logs: dict[str, LogBudget] = {}  # per command (_failure_log)
        # Cluster (server/cluster): remote users by uid, event counters, pending nick claims.
        self.cluster = config.cluster
        self.node_id = config.node_id or secrets.token_hex(4)
        self.run_id = secrets.token_hex(4)  # this run of the server, also with a fixed node_id
        self.started_ms = int(clock() * 1000)
        self.remote: dict[str, Client] = {}
        self.nick_pending: dict[str, Client] = {}  # folded nick -> client awaiting its claim
        # ChanServ: folded channel name -> its registration (from the account store).
        self.registered_channels: dict[str, RegisteredChannel] = {}
        # Clustered: folded -> name of the channels a killed cluster left closed, until
        # this node's view of the cluster is whole (history.end_unended).
        self.unended: dict[str, str] = {}
        # MemoServ: folded account -> unread memos (from the account store).
        self.unread_memos: dict[str, int] = {}
        # NickServ REGAIN of a remote user's nick: folded -> (client, nick as asked,
        # the ghost's uid), claimed when the QUIT of that user comes from its node.
        self.regaining: dict[str, tuple[Client, str, str]] = {}
        self.cluster_state: Any = None  # server.cluster.apply.ClusterState, when clustered
        if self.cluster:
            from server.cluster.apply import ClusterState

            self.cluster_state = ClusterState()
        from .handlers import COMMANDS

        self.commands: dict[str, tuple[Handler, int]] = COMMANDS

    # ------------------------------------------------------------------ transport API

    def connect(self, conn_id: int, ip: str, port: int, *, secure: bool = False) -> Client:
        """A new connection. Refused ones get an ERROR and are closed at once."""
        now = self.clock()
        client = Client(conn_id, ip, port, now, secure)
        key = host_key(ip)
        client.host_key = key
        refusal = self.limits.admit(key, len(self.clients), now)
        if self.bans.dlines:
            refusal = self.bans.dline_refusal(ip) or refusal
        self.clients[conn_id] = client
        if refusal is not None:
            self.stats.refuse(refusal)
            if self.refusal_log.allow():
                log.info("refused connection from %s: %s", ip, refusal)
            self.write(client, closing_link(ip, refusal))
            client.closing = refusal  # write() above put it on the dirty list
            return client
        self.limits.opened(key)
        client.counted = True
        self.counts.unknown += 1
        self.stats.connections_opened += 1
        if log.isEnabledFor(logging.INFO):  # (the extra dict is made for nothing otherwise)
            log.info("connection %d from %s", conn_id, ip, extra={"event": "open", "conn": conn_id})
        if self.config.cloak_hosts:
            client.host = cloak_host(ip, self.cloak_key)
        if self.config.flood_burst > 0:
            client.flood = FloodGate(self.config.flood_burst, self.config.flood_rate, now)
        return client

    def data_received(self, conn_id: int, data: bytes) -> None:
        client = self.clients.get(conn_id)
        if client is None or client.closing is not None:
            return
        too_long = False
        try:
            lines = client.linebuf.feed(data)
        except LineTooLong as exc:
            lines, too_long = exc.lines, True  # the lines before it still count
        now = self.clock()
        client.last_recv = now
        client.ping_sent_at = None
        self._gate_lines(client, lines, now)
        if too_long and client.closing is None:
            self.reply(client, N.ERR_INPUTTOOLONG, "Input line was too long")
            self.disconnect(client, "Input line was too long")

    def _gate_lines(self, client: Client, lines: list[bytes], now: float) -> None:
        """Handle a read's lines as flood control lets them: now, later, or never."""
        gate = client.flood
        for line in lines:
            # A line may close the connection (QUIT, bad PASS): drop the rest.
            if client.closing is not None:
                break
            if gate is not None and "o" not in client.modes:
                # An empty line is ignored but costs its token, as solanum counts it:
                # free, 64 KiB of newlines was 65,000 lines a read past flood control,
                # a loop held at 100 % by one connection (registered or not).
                # A line with tags (64: '@') may be a multiline batch's: it costs less
                # (a batch holds PRIVMSGs: a JOIN or PART in one is refused, never run).
                cost = batch_line_cost(client.caps, line) if line and line[0] == 64 else 1.0
                if cost == 1.0:
                    cost = line_cost(line, gate.burst)
                if not gate.admit(line, now, cost):
                    if gate.queued > self.config.flood_max_queue:
                        # They will never run: dropped now, not held until the close
                        # (one JOIN may take them a burst's worth past the bound).
                        gate.clear()
                        self.flood_disconnect(client)
                        break
                    self._flooded[client] = None
                    continue
            if line:
                self._take_line(client, line)

    def input_waiting(self, conn_id: int) -> bool:
        """Whether the client has lines waiting behind its flood gate (fakelag): the
        transport stops reading its socket until they have run, so that the kernel's
        buffer pushes back (as on ngIRCd) rather than the loop splitting megabytes the
        client sends meanwhile."""
        client = self.clients.get(conn_id)
        return client is not None and client.closing is None and client in self._flooded

    def connection_lost(self, conn_id: int, reason: str = "Connection closed") -> None:
        client = self.clients.get(conn_id)
        if client is None:
            return
        if client.closing is None:
            self.quit(client, reason, send_error=False)
        self._forget(client)

    def sendq_exceeded(self, conn_id: int) -> None:
        client = self.clients.get(conn_id)
        if client is not None and client.closing is None:
            self.stats.sendq_disconnects += 1
            self.snotice(f"SendQ exceeded: {self.describe(client)}")
            self.disconnect(client, "SendQ exceeded")

    def flood_disconnect(self, client: Client) -> None:
        self.stats.flood_disconnects += 1
        self.snotice(f"Excess Flood: {self.describe(client)}")
        self.disconnect(client, "Excess Flood")

    def tick(self) -> None:
        """Timers: registration timeout, keepalive PING, ping timeout."""
        now = self.clock()
        cfg = self.config
        self._release_flooded(now)
        for client, (since, _marks) in list(self._playback_holds.items()):
            if now - since >= PLAYBACK_HOLD_SECONDS:  # a slow store: live output goes on
                self._release_output(client)
        for client, (since, _ids) in list(self._joiner_msgids.items()):
            if now - since >= JOINER_MSGIDS_SECONDS:
                del self._joiner_msgids[client]
        self.limits.expire(now)
        self.account_rate.expire(now)
        self.memo_rate.expire(now)
        self.scan_rate.expire(now)
        self.refusal_log.tick()
        self.login_refusal_log.tick()
        for budget in self._failure_logs.values():
            budget.tick()
        self.login_failures.expire(now)
        self.password_hosts.expire(now)
        if self.bans:
            from .handlers.bans import expire_bans

            expire_bans(self)
        from .handlers.readmarker import save_markers

        save_markers(self)
        for client in list(self.clients.values()):
            if client.closing is not None:
                continue
            if not client.registered:
                if now - client.connected_at >= cfg.registration_timeout:
                    self.disconnect(client, "Registration timeout")
                continue
            if client.ping_sent_at is not None:
                if now - client.ping_sent_at >= cfg.ping_timeout:
                    secs = int(now - client.last_recv)
                    self.disconnect(client, f"Ping timeout: {secs} seconds")
            elif now - client.last_recv >= cfg.ping_interval:
                client.ping_sent_at = now
                self.write(client, Message("PING", [cfg.name]).to_bytes())

    def reload(self, new: ServerConfig) -> list[str]:
        """Take a re-read config (REHASH, SIGHUP); returns fields that need a restart."""
        ignored = [
            name for name in RESTART_ONLY if getattr(new, name) != getattr(self.config, name)
        ]
        new = replace(new, **{name: getattr(self.config, name) for name in RESTART_ONLY})
        self.config = new
        self.limits.max_clients = new.max_clients
        self.limits.max_per_host = new.max_per_host
        self.limits.throttle.burst = new.throttle_burst
        self.limits.throttle.rate = new.throttle_rate
        # Clients that negotiated already are not told (no CAP DEL/NEW for it).
        self.caps_available = caps_mod.available(
            self.history_enabled, new.allow_register,
            (new.multiline_max_bytes, new.multiline_max_lines),
        )
        self.account_rate.burst = new.account_limit
        self.account_rate.rate = _per_second(new.account_refill)
        self.register_rate.burst = new.register_limit
        self.register_rate.rate = _per_second(new.register_refill)
        self.memo_rate.burst = new.memo_limit
        self.memo_rate.rate = _per_second(new.memo_refill)
        self.scan_rate.burst, self.scan_rate.rate = new.scan_burst, new.scan_rate
        self.login_failures.burst = new.login_failures
        self.login_failures.rate = _per_second(new.login_refill)
        self.password_hosts.burst = new.host_password_failures
        self.password_hosts.rate = _per_second(new.host_password_refill)
        self.whowas.resize(new.whowas_size)
        return ignored

    def rehash_done(
        self, conn_id: int | None, source: str, error: str | None, label: str | None = None
    ) -> None:
        """The transport re-read the configuration for an operator's REHASH."""
        client = self.clients.get(conn_id) if conn_id is not None else None
        if client is None or client.closing is not None:
            return

        def answer() -> None:
            assert client is not None
            if error is None:
                self.reply(client, "382", source, "Rehashing")
            else:
                text = f"Rehash failed, old config kept: {error}"
                self.fail(client, "REHASH", "CONFIG_INVALID", text)

        self.answer_later(client, label, answer)
        self._release_input(client)

    def defer_label(self) -> str | None:
        """The label of the request being handled, whose answer comes in a later call."""
        if self._label is not None:
            self._label_deferred = True
        return self._label

    def answer_later(self, client: Client, label: str | None, answer: Callable[[], None]) -> None:
        """Run ``answer`` for a deferred request, labelled as the request was."""
        if label is None:
            answer()
            return
        self._write_labeled(client, self._captured(client, answer), label)

    def _captured(self, client: Client, run: Callable[[], None]) -> list[bytes]:
        """What ``run`` writes to ``client``, kept aside instead of queued."""
        captured: list[bytes] = []
        self._capture_client, self._capture = client, captured
        try:
            run()
        finally:
            self._capture_client, self._capture = None, None
        return captured

    def _release_flooded(self, now: float) -> None:
        """Fakelag: handle delayed lines as the clients' buckets refill."""
        for client in list(self._flooded):
            gate = client.flood
            if gate is None or client.closing is not None:
                del self._flooded[client]
                continue
            lines = gate.clear() if "o" in client.modes else gate.release(now)
            for line in lines:
                if line and client.closing is None:  # an empty line only cost its token
                    self._take_line(client, line)
            if not gate.queue:
                del self._flooded[client]

    def shutdown(self, reason: str = "Server shutting down") -> None:
        # Everyone is leaving at once: an ERROR each, no storm of QUITs between them.
        keeps = self.history_enabled and self.config.history_events
        for client in list(self.clients.values()):
            if client.closing is None:
                if keeps and client.registered and client.channels:
                    # Stored as a real QUIT is (committed by the transport's last
                    # flush): after the restart, with no departures in memory, join
                    # playback finds where each user left (history.last_departure).
                    relay = self.new_relay(client, "QUIT", [reason])
                    self.on_channel_event(client.channels.values(), client.mask, relay, reason)
                self.write(client, closing_link(client.host, reason))
                self._set_closing(client, reason)
                client.channels.clear()
                self.accept.forget(client)
                if not client.out:
                    self._dirty.append(client)
        # Channels no other node keeps end here: after the restart they come back open.
        for channel in self.channels.values():
            if all(member.remote is None for member in channel.members):
                end_private_channel(self, channel)
        # connection_lost skips quit() for closing clients: drop what quit() would have.
        self.channels.clear()
        self.nicks.clear()
        from .handlers.readmarker import save_markers

        save_markers(self)  # the transport's stop lets the account worker finish

    def take_output(self) -> list[Client]:
        dirty = self._dirty
        self._dirty = []
        if self._playback_holds:
            holds = self._playback_holds
            for client in [c for c in holds if c.closing is not None]:
                del holds[client]  # its ERROR and the close go now, playback or not
                if client not in dirty:
                    dirty.append(client)
            dirty = [c for c in dirty if c not in holds]
        return dirty

    def has_work(self) -> bool:
        """Whether a flush would find output or effects (a flush for nothing costs a tick)."""
        return bool(self._dirty or self._effects)

    def take_effects(self) -> list[Any]:
        effects = self._effects
        self._effects = []
        return effects

    # ------------------------------------------------------------------ output helpers

    def write(self, client: Client, data: bytes) -> None:
        if len(data) > MAX_LINE_BODY:
            data = fit_line(data)  # text from a client (topic, realname...) can overflow
        if client is self._capture_client and self._capture is not None:
            self._capture.append(data)
            return
        self._queue(client, data)

    def _queue(self, client: Client, data: bytes) -> None:
        """``data`` for ``client``'s next write, never part of a labelled answer."""
        if client.closing is not None or client.remote is not None:
            return
        if not client.out:
            self._dirty.append(client)
        client.out.append(data)

    def write_lines(self, client: Client, lines: list[bytes]) -> None:
        """``write`` for each line, with the checks done once (bursts of numerics)."""
        captured = client is self._capture_client
        if captured or client.closing is not None or client.remote is not None:
            for data in lines:
                self.write(client, data)
            return
        if not client.out:
            self._dirty.append(client)
        client.out += [data if len(data) <= MAX_LINE_BODY else fit_line(data) for data in lines]

    def write_block(self, client: Client, block: bytes) -> None:
        """Several whole lines in one bytes object, each already known to fit a line."""
        captured = client is self._capture_client
        if captured or client.closing is not None or client.remote is not None:
            self.write_lines(client, block.splitlines(keepends=True))
            return
        if not client.out:
            self._dirty.append(client)
        client.out.append(block)

    def output_full(self, client: Client) -> bool:
        """Whether ``client`` is closing, or has more queued this tick than its sendq,
        which then cuts it (SendQ exceeded). For answers that can be large (lists), asked
        before each part: the transports' check comes only after the flush, when all of
        it was built; the fan-out path does not ask."""
        if client.closing is not None:
            return True
        queued = sum(map(len, client.out))
        if client is self._capture_client and self._capture is not None:
            queued += sum(map(len, self._capture))
        if queued <= self.config.sendq:
            return False
        self.sendq_exceeded(client.conn_id)
        return True

    def send(self, client: Client, msg: Message) -> None:
        self.write(client, msg.to_bytes())

    def reply(self, client: Client, code: str, *params: str) -> None:
        """A numeric; middle params echoed from the client are made safe for the wire."""
        self.write(client, self.numeric(client.nick, code, *params))

    def numeric(self, nick: str, code: str, *params: str) -> bytes:
        """The line ``reply`` sends: ``Message(code, [nick, *middles, last], server)``.

        Joined here rather than through Message: every reply is a numeric, and a
        registration alone sends fourteen.
        """
        *middles, last = params
        last = trailing(last, code in FORCE_TRAILING)
        words = [":" + self.config.name, code, nick, *map(_safe_middle, middles), last]
        return " ".join(words).encode("utf-8", "surrogateescape") + b"\r\n"

    def may_scan(self, client: Client, command: str, matches: int) -> bool:
        """Whether ``client`` may run a search costing about ``matches`` matches now
        (``scan_burst``, ``scan_rate``); if not it is told to try again later (263, as
        solanum's pacing of LIST and WHO)."""
        if self.scan_allowed(client, matches):
            return True
        self.reply(client, N.RPL_TRYAGAIN, command, "Server load is temporarily too heavy. "
                   "Please wait a while and try again.")
        return False

    def scan_allowed(self, client: Client, matches: int) -> bool:
        """``may_scan`` without the reply (operators are not counted)."""
        return "o" in client.modes or self.scan_rate.take(client.host_key, self.clock(), matches)

    def fail(self, client: Client, command: str, code: str, *context: str) -> None:
        """IRCv3 standard reply: FAIL <command> <code> [<context>...] :<description>."""
        params = [command, code, *(_safe_middle(p) for p in context[:-1]), *context[-1:]]
        self.write(client, Message("FAIL", params, self.config.name).to_bytes())

    def notice(self, client: Client, text: str) -> None:
        self.write(client, Message("NOTICE", [client.nick, text], self.config.name).to_bytes())

    def snotice(self, text: str, skip: Client | None = None, *, local: bool = False) -> None:
        """A server notice to the operators with user mode +s (rare events only), but
        ``skip``: the operator who did it, and was answered already. Clustered, the other
        nodes' operators get it too, marked ``[name/node id]`` (unless ``local``: it came
        from another node)."""
        for client in self.snotice_users:
            if client.closing is None and client is not skip:
                self.notice(client, f"*** Notice -- {text}")
        if self.cluster and not local:
            # Nodes often share a name (the default chat.local, or one name for all behind
            # one address); the node id is unique. A name starting with it says it already.
            name = self.config.name
            same = name.split(".", 1)[0].lower() == self.node_id.lower()
            tag = name if same else f"{name}/{self.node_id}"
            self.publish("snotice", (), f"{self.node_id}:0", t=f"[{tag}] {text}")

    @staticmethod
    def describe(client: Client) -> str:
        """``nick (user@address)`` for server notices: operators see real addresses."""
        return f"{client.nick or '*'} ({client.user or '*'}@{client.ip})"

    def new_relay(
        self,
        source: Client | str,
        command: str,
        params: list[str],
        client_tags: dict[str, str] | None = None,
        lines: list[Line] | None = None,
    ) -> Relay:
        """A message to relay from ``source`` (a user, or a server's or service's
        mask); ``lines``: a draft/multiline PRIVMSG's (``params`` then only names the
        target). A logged-in user's messages carry its account (IRCv3 account-tag:
        every message it sends, JOIN, INVITE or QUIT as much as PRIVMSG), and a bot's
        (user mode +B) the ``bot`` tag, which bot-mode asks for on all of them."""
        if not isinstance(source, str):
            if source.account is not None and not (client_tags and "account" in client_tags):
                client_tags = {**(client_tags or {}), "account": source.account}
            if "B" in source.modes:
                client_tags = {**(client_tags or {}), "bot": ""}
            source = source.mask
        msgid = self.msgids.next(self.clock())
        # The time tag is the msgid's own millisecond, so a stored row's time_ms always
        # names its msgid's (the store finds a msgid by it) and times never go back.
        ms = self.msgids.last_ms
        if ms != self._time_ms:  # many messages share a millisecond: format it once
            self._time_ms, self._time_text = ms, format_time(ms / 1000)
        if lines is not None:
            return MultilineRelay(source, params[0], lines, self._time_text, msgid, client_tags)
        return Relay(source, command, params, self._time_text, msgid, client_tags)

    def deliver(self, client: Client, relay: Relay) -> None:
        self.write(client, relay.for_form(client.tag_form))

    def deliver_unlabelled(self, client: Client, relay: Relay) -> None:
        """``deliver``, outside the labelled answer being made (a message to oneself:
        the echo, or else an ACK, answers the label, the delivery does not)."""
        self._queue(client, relay.for_form(client.tag_form))

    def fan_out(
        self,
        members: Iterable[Client],
        relay: Relay,
        exclude: Client | None = None,
        need_cap: str | None = None,
    ) -> None:
        """The hot path: shared bytes appended to each recipient's queue."""
        forms = relay.forms
        dirty = self._dirty
        delivered = 0
        for member in members:
            if member is exclude or member.closing is not None or member.remote is not None:
                continue
            if need_cap is not None and need_cap not in member.caps:
                continue
            data = forms[member.tag_form]
            if data is None:
                data = relay.build(member.tag_form)
            if member is self._capture_client:
                self.write(member, data)
                continue
            out = member.out
            if not out:
                dirty.append(member)
            out.append(data)
            delivered += 1
        stats = self.stats
        stats.deliveries += delivered
        stats.relayed[relay.command] = stats.relayed.get(relay.command, 0) + 1

    def peers(self, client: Client, include_self: bool) -> list[Client]:
        """Everyone sharing a channel with ``client``, each once."""
        seen: dict[Client, None] = {client: None} if include_self else {}
        for channel in client.channels.values():
            for member in channel.members:
                seen[member] = None
        if not include_self:
            seen.pop(client, None)
        return list(seen)

    def with_watchers(self, client: Client, audience: list[Client]) -> list[Client]:
        """``audience`` plus those MONITORing ``client`` with extended-monitor, each once.

        extended-monitor: AWAY, SETNAME and ACCOUNT reach a client's watchers as if they
        shared a channel (``fan_out``'s ``need_cap`` still asks for away-notify,
        setname or account-notify).
        """
        watching = self.monitor.watchers.get(client.folded) if self.monitor.watchers else None
        if not watching:
            return audience
        extra = [w for w in watching if "extended-monitor" in w.caps]
        return list(dict.fromkeys([*audience, *extra])) if extra else audience

    def next_batch_id(self) -> str:
        self._batch_seq += 1
        return f"b{self._batch_seq}"

    def on_channel_message(
        self,
        channel: Channel,
        sender: Client,
        relay: Relay,
        command: str,
        text: list[str],
        client_tags: dict[str, str] | None,
        status: str,
    ) -> None:
        """A channel message was relayed: queue it for the store of record."""
        if not self.history_enabled or status or command not in STORED_COMMANDS:
            return
        stored = message_to_store(
            channel.folded,
            channel.name,
            sender.mask,
            command,
            text,
            client_tags,
            relay.msgid,
            self._relay_time_ms(relay),
            sender=sender_key(self, sender),
        )
        if stored is not None:
            self._effects.append(StoreMessage(stored))
            if self.cluster_state is not None:
                self.cluster_state.seen(channel.folded, relay.msgid)

    def on_channel_event(
        self, channels: Iterable[Channel], source: str, relay: Relay, text: str
    ) -> None:
        """``source``'s JOIN, PART, KICK, QUIT, NICK, MODE or TOPIC went to these channels'
        members: kept in their history (``text``: its parameters as ``row_params`` reads
        them) for draft/event-playback clients, one row per channel, the relay's msgid.
        A topic change is part of the conversation: kept even without history_events."""
        if not self.history_enabled or not (
            self.config.history_events or relay.command == "TOPIC"
        ):
            return
        time_ms = self._relay_time_ms(relay)
        tags = serialize_tags(relay.client_tags) if relay.client_tags else ""
        for channel in channels:
            self._effects.append(StoreMessage(NewMessage(
                channel.folded, relay.msgid, time_ms, source, relay.command,
                channel.name, text, tags,
            )))

    def keeps_private(self, sender: Client, target: Client, command: str) -> bool:
        """Whether a private message from ``sender`` to ``target`` is stored: between
        two accounts, or to a user of another node (a transit row)."""
        return (
            self.history_enabled
            and command in STORED_COMMANDS
            and (target.remote is not None
                 or (sender.account is not None and target.account is not None))
        )

    def on_private_message(
        self,
        sender: Client,
        target: Client,
        relay: Relay,
        command: str,
        client_tags: dict[str, str] | None,
    ) -> str | None:
        """A private message was relayed: stored between two accounts (a nick is not an
        identity) under their conversation's key, which is returned. To a user of
        another node it is otherwise stored as a transit row (None is returned: no
        conversation keeps it), which that node reads back only after a gap in our
        events: the ``msg`` event is all that carried it, and may be lost."""
        if not self.keeps_private(sender, target, command):
            return None
        pair: DirectPair | None = None
        if sender.account is not None and target.account is not None:
            a, b = self.fold(sender.account), self.fold(target.account)
            key, pair = dm_key(a, b), DirectPair(a, sender.account, b, target.account)
        else:
            from server.cluster.apply import user_run

            key = transit_key(self.uid(target), user_run(self, target))
        stored = message_to_store(
            key,
            target.nick,
            sender.mask,
            command,
            relay.params[1:],
            client_tags,
            relay.msgid,
            self._relay_time_ms(relay),
            pair,
            sender=sender_key(self, sender),
        )
        if stored is None:
            return None
        self._effects.append(StoreMessage(stored))
        if pair is None:
            return None
        if self.cluster_state is not None:  # a recovery after a gap must not repeat it
            self.cluster_state.seen_direct(pair.sender, relay.msgid)
            if target.remote is None:
                self.cluster_state.seen_direct(pair.recipient, relay.msgid)
        return stored.target

    def _relay_time_ms(self, relay: Relay) -> int:
        if relay.time == self._time_text:  # made by new_relay this millisecond
            return self._time_ms
        return round(parse_time(relay.time) * 1000)

    def after_join(self, client: Client, channel: Channel) -> None:
        """Replay recent history to a joiner that will not ask for it itself."""
        if self.history_enabled and "draft/chathistory" not in client.caps:
            request_playback(self, client, channel.folded, channel.name)

    def new_history_request(
        self,
        client: Client,
        kind: Literal["chathistory", "targets", "search"],
        channel: str,
    ) -> int:
        """A history read the client asked for: the caller emits its HistoryRequest."""
        self._history_seq += 1
        pending = Pending(client.conn_id, kind, channel, self.defer_label())
        self._add_history(self._history_seq, pending)
        # Replies in the order of the commands: a PING sent after a CHATHISTORY (a
        # client's "done" marker) was answered before it, and so was a later WHOIS.
        # Not for a JOIN's playback (read_playback): a bot that joins and talks at once
        # would have its lines held, and past HELD_LINES disconnected for flooding.
        self.hold_input(client)
        return self._history_seq

    def read_playback(self, client: Client, pending: Pending, query: Query, *,
                      first: bool = True) -> None:
        """A join's playback read: its rows go in the held output where the join's
        replies end now. A ``first`` read waits its turn while PLAYBACK_READS of the
        client's are being read (or others wait already): asked, in join order, as
        those are answered (``_next_playbacks``), unless it left the channel first."""
        self._history_seq += 1
        request = HistoryRequest(self._history_seq, query)
        hold = self._playback_holds.setdefault(client, (self.clock(), {}))
        hold[1][request.request_id] = len(client.out)
        if self.cluster:
            self._joiner_msgids.setdefault(client, (self.clock(), set()))
        waits = self._waits_of(client.conn_id)
        if first and (waits.queued or waits.playbacks >= PLAYBACK_READS):
            waits.queued.append((pending, request))
        else:
            self._ask_history(pending, request)

    def _ask_history(self, pending: Pending, request: HistoryRequest) -> None:
        self._add_history(request.request_id, pending)
        self.emit(request)

    def _next_playbacks(self, client: Client) -> None:
        """Ask for the client's waiting playback reads that have a turn now."""
        waits = self._waits.get(client.conn_id)
        while waits is not None and waits.queued and waits.playbacks < PLAYBACK_READS:
            self._ask_history(*waits.queued.popleft())

    def _drop_queued(self, client: Client, folded: str | None) -> None:
        """Forget the client's waiting playback reads of channel ``folded`` (left before
        their turn), or all of them (None: it has gone)."""
        waits = self._waits.get(client.conn_id)
        if waits is None or not waits.queued:
            return
        hold = self._playback_holds.get(client)
        kept: deque[tuple[Pending, HistoryRequest]] = deque()
        for pending, request in waits.queued:
            playback = pending.playback
            if folded is None or (playback is not None and playback.folded == folded):
                if hold is not None:
                    hold[1].pop(request.request_id, None)
            else:
                kept.append((pending, request))
        waits.queued = kept
        self._tidy(client.conn_id, waits)
        if hold is not None and not hold[1]:
            self._release_output(client)

    def _waits_of(self, conn_id: int) -> Waits:
        waits = self._waits.get(conn_id)
        if waits is None:
            waits = self._waits[conn_id] = Waits()
        return waits

    def _tidy(self, conn_id: int, waits: Waits) -> None:
        if waits.idle():
            del self._waits[conn_id]

    def _add_history(self, request_id: int, pending: Pending) -> None:
        self._pending_history[request_id] = pending
        waits = self._waits_of(pending.conn_id)
        if pending.kind == "playback":
            waits.playbacks += 1
        else:
            waits.input += 1

    def _pop_history(self, request_id: int) -> Pending | None:
        pending = self._pending_history.pop(request_id, None)
        if pending is not None:
            waits = self._waits[pending.conn_id]
            if pending.kind == "playback":
                waits.playbacks -= 1
            else:
                waits.input -= 1
            self._tidy(pending.conn_id, waits)
        return pending

    def history_requester(self, request_id: int) -> int | None:
        """The connection id of the client waiting for history request ``request_id``;
        None once it has gone (closed or closing) or the request is answered: the
        transport then need not read anything, only call ``history_ready`` (which
        forgets the request)."""
        pending = self._pending_history.get(request_id)
        if pending is None:
            return None
        client = self.clients.get(pending.conn_id)
        if client is None or client.closing is not None:
            return None
        return pending.conn_id

    def await_answer(
        self, client: Client, answer: Answer, orphaned: Callable[[Any], None] | None = None
    ) -> int:
        """Hold the client's input until ``answered`` brings the transport's result for
        the returned check id; then ``answer(client, result)`` runs, labelled as the
        request was. If the client has left by then, ``orphaned(result)`` runs instead:
        what the store did (a memo stored, a name registered) matters to others too."""
        self._answer_seq += 1
        self.pending_answers[self._answer_seq] = (
            client.conn_id, self.defer_label(), answer, orphaned
        )
        self._waits_of(client.conn_id).input += 1
        self.hold_input(client)
        return self._answer_seq

    def hold_input(self, client: Client) -> None:
        """Keep the client's next lines until its pending answer is given (in order);
        lines held already stay held."""
        if client.held is None:
            client.held = []

    def _release_input(self, client: Client) -> None:
        held, client.held = client.held or [], None
        for line in held:  # a line among them that holds again keeps the rest, in order
            self._take_line(client, line)

    def answered(self, check_id: int, result: Any) -> None:
        """The transport's answer to a check (CheckOper, an account request): handle it,
        then the lines the client sent meanwhile."""
        found = self.pending_answers.pop(check_id, None)
        if found is None:
            return
        conn_id, label, answer, orphaned = found
        waits = self._waits[conn_id]
        waits.input -= 1
        self._tidy(conn_id, waits)
        client = self.clients.get(conn_id)
        if client is None or client.closing is not None:
            if orphaned is not None:
                orphaned(result)
            return
        self.answer_later(client, label, lambda: answer(client, result))
        # An answer may ask for another (a password checked, then the account dropped):
        # what the client sent meanwhile waits for that one too.
        self._release_unless_waiting(client)

    def _release_unless_waiting(self, client: Client) -> None:
        """The client's held lines, unless it still waits for an answer, a history read
        or a nick claim."""
        waits = self._waits.get(client.conn_id)
        if waits is None or not waits.input:
            self._release_input(client)

    def _take_line(self, client: Client, line: bytes) -> None:
        """Handle a line, or keep it while an answer the client waits for is pending."""
        held = client.held
        if client.closing is not None:
            return  # a line before it closed the connection (QUIT, Excess Flood)
        if held is None:
            self.handle_line(client, line)
        elif len(held) >= HELD_LINES:
            self.flood_disconnect(client)
        else:
            held.append(line)

    def history_ready(
        self,
        request_id: int,
        rows: list[StoredMessage] | None = None,
        targets: list[tuple[str, int]] | None = None,
    ) -> None:
        """The transport's answer to a HistoryRequest (rows None: the store failed)."""
        pending = self._pop_history(request_id)
        if pending is None:
            return
        client = self.clients.get(pending.conn_id)
        if client is None or client.closing is not None:
            return
        joined = self._joiner_msgids.get(client)
        if joined is not None and rows and pending.kind == "playback":
            rows = [row for row in rows if row.msgid not in joined[1]]  # came live already
            joined[1].update(row.msgid for row in rows)
        hold = self._playback_holds.get(client)
        mark = hold[1].pop(request_id, None) if hold is not None else None
        if hold is None or mark is None:
            self.answer_later(
                client, pending.label,
                lambda: deliver_history(self, client, pending, rows, targets),
            )
        else:
            self._deliver_playback(client, hold[1], mark, pending, rows)
        if pending.kind == "playback":
            self._next_playbacks(client)
        self._release_unless_waiting(client)

    def _deliver_playback(
        self,
        client: Client,
        marks: dict[int, int],
        mark: int,
        pending: Pending,
        rows: list[StoredMessage] | None,
    ) -> None:
        """A joiner's playback, put in its held output where the join left off, before
        what others said since; its output goes once no playback is being read."""
        asked = self._history_seq
        captured = self._captured(
            client, lambda: deliver_history(self, client, pending, rows, None))
        client.out[mark:mark] = captured
        for request_id, later in marks.items():
            if later >= mark:
                marks[request_id] = later + len(captured)
        second = self._pending_history.get(self._history_seq)
        if self._history_seq != asked and second is not None and second.kind == "playback":
            marks[self._history_seq] = mark + len(captured)  # its second read (events)
        if not marks:
            self._release_output(client)

    def not_played(self, members: Iterable[Client], msgid: str) -> Iterable[Client]:
        """Cluster: ``members`` less the joiners whose playback had ``msgid`` (the others
        who just joined are noted as sent it, so that their playback will not)."""
        joiners = self._joiner_msgids
        if not joiners:
            return members
        live: list[Client] = []
        for member in members:
            joined = joiners.get(member)
            if joined is not None:
                if msgid in joined[1]:
                    continue
                joined[1].add(msgid)
            live.append(member)
        return live

    def output_held(self, client: Client) -> bool:
        """Whether ``client``'s output waits for its join playback (``take_output``)."""
        return client in self._playback_holds

    def _release_output(self, client: Client) -> None:
        """Let the transport write a joiner's held output."""
        self._playback_holds.pop(client, None)
        if client.out and client not in self._dirty:
            self._dirty.append(client)

    def emit(self, effect: Any) -> None:
        self._effects.append(effect)

    # ------------------------------------------------------------------ cluster

    def uid(self, client: Client) -> str:
        """A user's cluster-wide id: ``node:conn``."""
        return client.remote or f"{self.node_id}:{client.conn_id}"

    def publish(self, kind: str, channels: Iterable[str], uid: str, **fields: Any) -> None:
        """Queue a cluster event touching ``channels`` (folded names), numbered per channel."""
        from server.cluster.apply import publish

        publish(self, kind, channels, uid, fields)

    def claim_nick(self, client: Client, nick: str, folded: str, ghost: str = "") -> None:
        """Cluster: the nick is free here; ask Redis before taking it (from ``ghost``,
        the uid of a user NickServ REGAIN disconnected, too)."""
        from server.cluster.events import ClaimNick

        self._drop_nick_claims(client)
        self._drop_nick_claim(folded)  # (another's: the handlers refuse that before)
        self.nick_pending[folded] = client
        self._waits_of(client.conn_id).input += 1
        # What the client sends next waits for the answer: a bot's JOIN right after
        # NICK and USER came before its registration and got 451 (lost).
        self.hold_input(client)
        self._effects.append(ClaimNick(client.conn_id, self.uid(client), nick, folded, ghost))

    def nick_claim_result(self, conn_id: int, nick: str, folded: str, ok: bool) -> None:
        """The transport's answer to a ClaimNick."""
        from server.cluster.events import ReleaseNick

        client = self.clients.get(conn_id)
        mine = client is not None and self.nick_pending.get(folded) is client
        if not mine or client is None or client.closing is not None:
            if ok:  # nobody wants it any more
                self._effects.append(ReleaseNick(f"{self.node_id}:{conn_id}", folded))
            return
        self._drop_nick_claim(folded)
        holder = self.nicks.get(folded)
        if not ok or (holder is not None and holder is not client):
            if ok:
                self._effects.append(ReleaseNick(self.uid(client), folded))
            self.reply(client, N.ERR_NICKNAMEINUSE, nick, "Nickname is already in use")
        else:
            from .handlers.registration import apply_nick

            apply_nick(self, client, nick, folded)
        self._release_unless_waiting(client)

    def release_nick(self, client: Client) -> None:
        from server.cluster.events import ReleaseNick

        self._drop_nick_claims(client)
        if client.folded and client.remote is None:
            self._effects.append(ReleaseNick(self.uid(client), client.folded))

    def _drop_nick_claims(self, client: Client) -> None:
        """Forget ``client``'s nick claims (one at most: claim_nick drops the last)."""
        for key in [key for key, holder in self.nick_pending.items() if holder is client]:
            self._drop_nick_claim(key)

    def _drop_nick_claim(self, folded: str) -> None:
        holder = self.nick_pending.pop(folded, None)
        if holder is not None:
            waits = self._waits[holder.conn_id]
            waits.input -= 1
            self._tidy(holder.conn_id, waits)

    def server_of(self, client: Client) -> str:
        """The name of the server a user is on: ours, or another node's (WHO, WHOIS)."""
        if client.remote is None:
            return self.config.name
        from server.cluster.apply import server_name

        return server_name(self, client)

    def remote_event(self, event: dict[str, Any]) -> None:
        """An event another node published: update state, deliver to local members."""
        from server.cluster.apply import remote_event

        remote_event(self, event)

    def remote_snapshot(self, snapshot: dict[str, Any]) -> None:
        """Another node's full state (from Redis): make our view of it match."""
        from server.cluster.apply import remote_snapshot

        remote_snapshot(self, snapshot)

    def remote_node_gone(self, node: str, reason: str = "*.net *.split") -> None:
        """A node stopped or died: its users quit here."""
        from server.cluster.apply import node_gone

        node_gone(self, node, reason)

    def cluster_snapshot(self) -> dict[str, Any]:
        """This node's users and their channels, for Redis (what others resync from)."""
        from server.cluster.apply import snapshot

        return snapshot(self)

    # ------------------------------------------------------------------ dispatch

    def handle_line(self, client: Client, raw: bytes) -> None:
        if raw[0:1] == b"@":
            space = raw.find(b" ")
            tag_len = space + 1 if space != -1 else len(raw)
        else:
            tag_len = 0
        if tag_len > MAX_CLIENT_TAGS + 2 or len(raw) - tag_len > MAX_LINE_BODY - 2:
            self.reply(client, N.ERR_INPUTTOOLONG, "Input line was too long")
            return
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            self.fail(client, _command_of(raw), "INVALID_UTF8",
                      "Message rejected: it was not valid UTF-8")
            return
        if "\x00" in text or "\r" in text:
            # A bare CR would end the line early for some receivers: a forging vector.
            self.fail(client, _command_of(raw), "INVALID_MESSAGE",
                      "Message rejected: it contained NUL or CR")
            return
        try:
            msg = parse(text)
        except ParseError:
            return
        if client.multiline is not None:
            from .handlers.batch import take_line

            if take_line(self, client, msg):
                return
        elif "batch" in msg.tags and MULTILINE_CAP in client.caps:
            # Lines of a batch cost less (flood control): one that is not open is void.
            self.fail(client, "BATCH", "MULTILINE_INVALID", "No such batch is open")
            return
        label = msg.tags.get("label") if msg.tags else None
        if label is not None and (
            # labeled-response "depends on the batch capability which MUST be negotiated
            # to use labeled responses": without batch a multi-line answer could carry
            # the label on neither one line nor a batch, so the label counts only with
            # both, as on InspIRCd (without: answers as if unlabelled, and no ACK).
            "labeled-response" not in client.caps
            or "batch" not in client.caps
            # A required value that "MUST NOT exceed 64 bytes".
            or not 0 < len(label.encode("utf-8", "surrogateescape")) <= 64
        ):
            label = None
        if label is not None:
            self._dispatch_labeled(client, msg, label)
        else:
            self._dispatch(client, msg)

    def _dispatch(self, client: Client, msg: Message) -> None:
        entry = self.commands.get(msg.command)
        if entry is None:
            if client.registered:
                self.reply(client, N.ERR_UNKNOWNCOMMAND, msg.command, "Unknown command")
            else:
                self.reply(client, N.ERR_NOTREGISTERED, "You have not registered")
            return
        handler, min_params = entry
        counts = self.command_counts
        counts[msg.command] = counts.get(msg.command, 0) + 1
        if not client.registered and msg.command not in PRE_REGISTRATION:
            self.reply(client, N.ERR_NOTREGISTERED, "You have not registered")
            return
        # An empty last required parameter is a missing one (USER's realname too).
        if len(msg.params) < min_params or (min_params and not msg.params[min_params - 1]):
            self.reply(client, N.ERR_NEEDMOREPARAMS, msg.command, "Not enough parameters")
            return
        try:
            handler(self, client, msg)
        except Exception:
            # A bug of ours, not the client's: keep serving everyone else.
            if self._failure_log(msg.command).allow():
                log.exception("handler for %s failed", msg.command)

    def _failure_log(self, command: str) -> LogBudget:
        """The log budget of ``command``'s handler failures (one per command: a bug a
        client repeats at will does not hide another's traceback)."""
        budget = self._failure_logs.get(command)
        if budget is None:
            budget = self._failure_logs[command] = LogBudget(
                log, FAILURES_LOGGED,
                f"%d more failures of the handler for {command} in that minute (not logged)",
                self.clock,
            )
        return budget

    def _dispatch_labeled(self, client: Client, msg: Message, label: str) -> None:
        captured: list[bytes] = []
        self._capture_client, self._capture = client, captured
        self._label, self._label_deferred = label, False
        try:
            self._dispatch(client, msg)
        finally:
            self._capture_client, self._capture = None, None
            self._label = None
        if self._label_deferred and not captured:
            return  # the answer comes later (history) and carries the label then
        self._write_labeled(client, captured, label)

    def _write_labeled(self, client: Client, captured: list[bytes], label: str) -> None:
        """One labelled line, an ACK, or everything in a labeled-response batch."""
        # Escaped: a label "a b" or one holding CR LF must stay inside its tag.
        tag = b"label=" + escape_tag_value(label).encode("utf-8", "surrogateescape")
        if not captured:
            lines = [add_tag(Message("ACK", [], self.config.name).to_bytes(), tag)]
        elif len(captured) == 1 or _is_one_batch(captured):
            # A reply that is itself one batch carries the label on its opening line.
            lines = [add_tag(captured[0], tag), *captured[1:]]
        else:
            ref = self.next_batch_id()
            start = Message("BATCH", ["+" + ref, "labeled-response"], self.config.name)
            lines = [add_tag(start.to_bytes(), tag)]
            btag = b"batch=" + ref.encode()
            for data in captured:
                # A multiline message is several lines: those of its own batch stay in
                # it, its opening and closing lines (or its fallback lines) join this one.
                for line in data.splitlines(keepends=True) if data.count(b"\n") > 1 else (data,):
                    lines.append(line if has_batch_tag(line) else add_tag(line, btag))
            lines.append(Message("BATCH", ["-" + ref], self.config.name).to_bytes())
        if client.closing is None:
            self.write_lines(client, lines)
        else:
            # The request closed the connection (QUIT, a wrong PASS, a KILL of oneself):
            # its answer, the ERROR among it, is the last the client gets, and the spec
            # lets it carry the label. write() drops output to a closing client, so it
            # is queued here; closing put the client on the dirty list already.
            client.out += [d if len(d) <= MAX_LINE_BODY else fit_line(d) for d in lines]

    # ------------------------------------------------------------------ lifecycle

    def set_caps(self, client: Client, caps: set[str]) -> None:
        client.caps = caps
        client.tag_form = caps_mod.tag_form(caps)

    def set_account(self, client: Client, name: str | None) -> None:
        """Log a local client in to ``name`` (None: out), keeping ``account_sessions``."""
        if client.account is not None:
            folded = self.fold(client.account)
            sessions = self.account_sessions.get(folded)
            if sessions is not None:
                sessions.pop(client, None)
                if not sessions:
                    del self.account_sessions[folded]
        client.account = name
        if name is not None:
            self.account_sessions.setdefault(self.fold(name), {})[client] = None

    def set_registered(self, client: Client) -> None:
        """The client completed registration: it moves from unknown to users."""
        client.registered = True
        counts = self.counts
        counts.unknown -= 1
        counts.users += 1
        counts.registered += 1
        counts.invisible += "i" in client.modes
        counts.opers += "o" in client.modes

    def set_user_mode(self, client: Client, mode: str, on: bool) -> None:
        """Add or remove a user mode; +i and +o are counted for LUSERS."""
        if (mode in client.modes) == on:
            return
        if on:
            client.modes.add(mode)
        else:
            client.modes.discard(mode)
        if mode == "s" and client.remote is None:
            if on:
                self.snotice_users[client] = None
            else:
                self.snotice_users.pop(client, None)
        if client.registered and client.closing is None and client.remote is None:
            step = 1 if on else -1
            if mode == "i":
                self.counts.invisible += step
            elif mode == "o":
                self.counts.opers += step
            if self.cluster:  # other nodes count +i/+o in LUSERS and hide +i from WHO
                self.publish("umode", (), self.uid(client), m=mode, on=on)

    def _set_closing(self, client: Client, reason: str) -> None:
        """An accepted local connection starts closing: it leaves the LUSERS figures."""
        client.closing = reason
        if client.remote is not None:
            return
        counts = self.counts
        if client.registered:
            counts.users -= 1
            counts.invisible -= "i" in client.modes
            counts.opers -= "o" in client.modes
        else:
            counts.unknown -= 1

    def disconnect(self, client: Client, reason: str) -> None:
        """Server-initiated close: QUIT to peers, ERROR to the client, then close."""
        self.quit(client, reason, send_error=True)

    def quit(self, client: Client, reason: str, *, send_error: bool) -> None:
        if client.closing is not None:
            return
        # Nobody shares a channel with most quitting clients: then there is nothing to
        # relay, nor to keep unless its channels keep quits as history events.
        in_channels = client.registered and bool(client.channels)
        peers = self.peers(client, include_self=False) if in_channels else []
        keeps = in_channels and self.history_enabled and self.config.history_events
        if client.registered and (peers or self.cluster or keeps):
            relay = self.new_relay(client, "QUIT", [reason])
            self.fan_out(peers, relay)
            self.on_channel_event(client.channels.values(), client.mask, relay, reason)
            if self.cluster:
                self.publish("quit", client.channels, self.uid(client), r=relay_wire(client, relay))
        if self.cluster:
            self.release_nick(client)
        self.remember(client)
        if client.registered and self.monitor.watchers:
            self.nick_offline(client.folded, client.nick, gone=client)
        for channel in list(client.channels.values()):
            self.remove_member(channel, client)
        if client.folded and self.nicks.get(client.folded) is client:
            del self.nicks[client.folded]
        self.accept.forget(client)  # off every accept list, and its own list gone
        if send_error:
            self.write(client, closing_link(client.host, reason))
        self._set_closing(client, reason)
        if not client.out:
            self._dirty.append(client)

    def nick_online(self, client: Client) -> None:
        """730 to the clients that MONITOR the nick ``client`` now holds, and to those
        with extended-monitor and away-notify its AWAY when it is away (set before
        registration with draft/pre-away, or before a nick change)."""
        watching = self.monitor.watchers.get(client.folded)
        if watching:
            for watcher in watching:
                self.reply(watcher, N.RPL_MONONLINE, client.mask)
            if client.away is not None:
                told = [w for w in watching if "extended-monitor" in w.caps]
                if told:
                    away = self.new_relay(client, "AWAY", [client.away])
                    self.fan_out(told, away, need_cap="away-notify")

    def nick_offline(self, folded: str, nick: str, gone: Client | None = None) -> None:
        """731 to the clients that MONITOR ``nick``, which nobody holds any more (not to
        ``gone``, the user leaving, who may have been watching its own nick)."""
        watching = self.monitor.watchers.get(folded)
        if watching:
            for watcher in watching:
                if watcher is not gone:
                    self.reply(watcher, N.RPL_MONOFFLINE, nick)

    def remember(self, client: Client) -> None:
        """Keep a registered user's nick for WHOWAS as they give it up (QUIT, NICK)."""
        if client.registered:
            self.whowas.record(
                client.folded, client.nick, client.user, client.host, client.realname, self.clock()
            )

    def _forget(self, client: Client) -> None:
        if client.conn_id in self.clients and client.counted and log.isEnabledFor(logging.INFO):
            log.info(
                "connection %d closed: %s",
                client.conn_id,
                client.closing or "closed",
                extra={"event": "close", "conn": client.conn_id},
            )
        if self.clients.pop(client.conn_id, None) is client and client.registered:
            self.counts.registered -= 1
        if client.monitoring is not None:
            self.monitor.clear(client)
        self._flooded.pop(client, None)
        self._playback_holds.pop(client, None)
        self._drop_queued(client, None)  # (none left unless it went without a quit)
        self.told_playback_skipped.pop(client, None)
        self._joiner_msgids.pop(client, None)
        self.snotice_users.pop(client, None)
        if client.account is not None:
            self.set_account(client, None)
        if client.counted:
            client.counted = False
            self.limits.closed(client.host_key)

    def remove_member(self, channel: Channel, client: Client) -> None:
        """Every way out of a channel (PART, KICK, QUIT, KILL, disconnect) ends here."""
        channel.members.pop(client, None)
        client.channels.pop(channel.folded, None)
        if client.remote is None:
            self._drop_queued(client, channel.folded)  # its playback is not read
        if not channel.members:
            self.channels.pop(channel.folded, None)
            end_private_channel(self, channel)
        if client.remote is None and client.registered and self.history_enabled:
            record_departure(self, client, channel.folded)  # its join playback starts here

    def user_count(self) -> int:
        """Registered local connections, closing ones included (the peak LUSERS shows)."""
        return self.counts.registered
