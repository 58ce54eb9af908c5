"""Drive ``ServerCore`` with fake connections and a fake clock; check it after every step.

Shared by the hypothesis properties in this package and the atheris targets in ``fuzz/``.
No sockets, no threads: the harness plays the transport (it drains ``take_output`` and
``take_effects`` after each call, answers history requests from an in-memory store and
calls ``connection_lost`` for connections the core closed) and asserts, after each step,
the invariants a hostile network must never break.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, NoReturn

from chat.framing import MAX_LINE
from chat.message import MAX_LINE_BODY, MAX_TAGS, ParseError, parse
from chat.msgid import MsgIdGenerator
from chat.names import is_valid_channel, is_valid_nick
from server.accounts import Account, MemoryAccountStore
from server.config import ServerConfig
from server.core.bans import BanList, ServerBan
from server.core.core import ServerCore
from server.core.handlers.accounts import (
    SASL_MAX,
    DropAccount,
    FindAccount,
    FindScram,
    Login,
    Register,
    SetPassword,
    reserved_for_other,
)
from server.core.handlers.bans import SaveBans, banned_by, matching_ban
from server.core.handlers.chanserv import DropChannel, RegisterChannel, SaveChannel
from server.core.handlers.memoserv import (
    MAX_MEMOS,
    DeleteMemos,
    ListMemos,
    MarkMemoRead,
    SendMemo,
)
from server.core.handlers.operator import CheckOper, Rehash
from server.core.handlers.readmarker import CONNECTION_MARKERS, SaveReadMarkers
from server.core.handlers.redact import FindMessage, RedactMessage
from server.core.history import ChannelEnded, HistoryRequest, StoreMessage, dm_key, is_dm_key
from server.core.state import Client, LocalCounts
from server.history.model import REDACT_EVENT, REDACTED_COMMAND, FoundMessage, StoredMessage
from server.history.query import served
from server.passwords import verify_password

SERVER_NAME = "fuzz.server"
# answered off the loop
Check = (
    CheckOper | Login | Register | SetPassword | DropAccount | FindAccount | FindScram
    | RegisterChannel | SendMemo | ListMemos | FindMessage
)
START = 1_700_000_000.0  # a fixed epoch so that runs reproduce
OPER_NAME = "root"
OPER_PASSWORD = "hunter2"


def cheap_oper_hash(password: str) -> str:
    """A valid ``scrypt$...`` hash with the smallest cost: OPER stays fast under fuzzing."""
    salt = b"fuzzsalt"
    key = hashlib.scrypt(password.encode(), salt=salt, n=2, r=1, p=1, dklen=16)
    enc = base64.b64encode
    return f"scrypt$2$1$1${enc(salt).decode()}${enc(key).decode()}"


def fuzz_config(**overrides: Any) -> ServerConfig:
    """Small limits so the fuzzer reaches them; history on (the core only emits effects)."""
    base = ServerConfig(
        name=SERVER_NAME,
        network="FuzzNet",
        db="fuzz-never-opened.db",  # non-empty: history on; the harness is the store
        motd_lines=("hello", "world"),
        opers={OPER_NAME: cheap_oper_hash(OPER_PASSWORD)},
        cloak_key="fuzz",
        max_channels=4,
        max_targets=3,
        accept_limit=3,
        multiline_max_lines=4,
        multiline_max_bytes=600,
        max_clients=12,
        max_per_host=4,
        throttle_burst=6,
        throttle_rate=1.0,
        flood_burst=8,
        flood_rate=2.0,
        flood_max_queue=12,
        history_playback=3,
        chathistory_limit=5,
        registration_timeout=30.0,
        ping_interval=60.0,
        ping_timeout=20.0,
        anti_spam_exit_message_time=0,  # quit reasons reach the channels, long ones too
    )
    return replace(base, **overrides)


def recount(core: ServerCore) -> LocalCounts:
    """``core.counts`` computed from scratch: what LUSERS showed before it kept counts."""
    clients = list(core.clients.values())
    users = [c for c in clients if c.registered and c.closing is None]
    return LocalCounts(
        unknown=sum(1 for c in clients if not c.registered and c.closing is None),
        users=len(users),
        invisible=sum(1 for c in users if "i" in c.modes),
        opers=sum(1 for c in users if "o" in c.modes),
        registered=sum(1 for c in clients if c.registered),
    )


class FakeClock:
    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class ErrorRecords(logging.Handler):
    """Collects ERROR (and worse) records: a logged exception in the core is a bug."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def capture_core_errors() -> Iterator[ErrorRecords]:
    handler = ErrorRecords()
    logger = logging.getLogger("chat.server.core")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


class InvariantError(AssertionError):
    """The core broke one of the properties checked here."""


def _fail(why: str) -> NoReturn:
    raise InvariantError(why)


def check_output_line(line: bytes, conn_id: int = -1) -> None:
    """One line the server wrote: a single well-formed, bounded, round-tripping message."""
    where = f"conn {conn_id}: {line[:200]!r}"
    if not line.endswith(b"\r\n"):
        _fail(f"output line does not end with CRLF: {where}")
    body = line[:-2]
    for bad in (b"\r", b"\n", b"\x00"):
        if bad in body:
            _fail(f"output line holds {bad!r}: {where}")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        _fail(f"output line is not UTF-8: {where}")
    tag_len = 0
    if body.startswith(b"@"):
        space = body.find(b" ")
        if space == -1:
            _fail(f"output line is only tags: {where}")
        tag_len = space + 1  # '@' ... and the space after the tags
        if tag_len > MAX_TAGS:
            _fail(f"output tags are {tag_len} bytes (> {MAX_TAGS}): {where}")
    if len(line) - tag_len > MAX_LINE_BODY:
        _fail(f"output body is {len(line) - tag_len} bytes (> {MAX_LINE_BODY}): {where}")
    try:
        msg = parse(text)
    except ParseError:
        _fail(f"output line does not parse: {where}")
    if not msg.command or " " in msg.command:
        _fail(f"output command is malformed: {where}")
    # Tags may be spelt differently ("k=" and "k" are the same tag); the rest is exact.
    again = msg.to_bytes()
    if (
        parse(again.decode("utf-8")) != msg
        or again[len(again) - len(line) + tag_len :] != line[tag_len:]
    ):
        _fail(f"output line does not round-trip: {where} -> {again[:200]!r}")


@dataclass
class Conn:
    conn_id: int
    ip: str
    lines: list[bytes] = field(default_factory=list)  # the newest output lines (bounded)
    partial: bytes = b""  # bytes of a line still being written
    total_out: int = 0
    closed_by_core: bool = False  # reported closing through take_output
    lost: bool = False  # connection_lost was called
    got_error: bool = False  # saw an ERROR line


KEEP_LINES = 200  # per connection; enough for tests to look at, bounded for long fuzz runs


class CoreHarness:
    """The transport's side of ``ServerCore``: fake connections, fake clock, fake store."""

    def __init__(
        self,
        config: ServerConfig | None = None,
        *,
        check_every_step: bool = True,
        auto_close: bool = True,
    ):
        self.config = config or fuzz_config()
        self.clock = FakeClock()
        self.core = ServerCore(self.config, self.clock, msgids=MsgIdGenerator(node=7))
        self.conns: dict[int, Conn] = {}
        self.next_id = 1
        self.senders: dict[str, str] = {}  # msgid -> who sent it, as the stores keep it
        self.store: list[StoredMessage] = []
        self.requests: list[HistoryRequest] = []
        # Password checks (OPER, SASL, REGISTER): answered after each step, in order.
        self.oper_checks: list[Check] = []
        self.accounts = MemoryAccountStore()  # what the transport's account store holds
        self.saved_bans: tuple[ServerBan, ...] = ()
        # Bans each connection was exempt from as an operator: it stays after dropping +o.
        self.exempt: dict[int, set[tuple[str, str, float]]] = {}
        self.check_every_step = check_every_step
        # Like a real transport: connection_lost soon after the core closes a connection.
        # Off, closed connections linger until lose_closed() (a slow close, or a peer that
        # keeps the socket open): the core must cope with both.
        self.auto_close = auto_close
        self.steps = 0
        self._errors = ErrorRecords()
        logging.getLogger("chat.server.core").addHandler(self._errors)

    def close(self) -> None:
        logging.getLogger("chat.server.core").removeHandler(self._errors)

    def __enter__(self) -> CoreHarness:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ transport calls

    def connect(self, ip: str = "192.0.2.1", *, secure: bool = False) -> int:
        conn_id = self.next_id
        self.next_id += 1
        self.conns[conn_id] = Conn(conn_id, ip)
        self.core.connect(conn_id, ip, 40000 + conn_id, secure=secure)
        self._after_step()
        return conn_id

    def send(self, conn_id: int, data: bytes) -> dict[int, list[bytes]]:
        """Feed bytes; returns the complete lines each connection got in this step.

        ``%MSGID%`` stands for the newest stored message's id (REDACT needs a real one).
        """
        if b"%MSGID%" in data and self.store:
            data = data.replace(b"%MSGID%", self.store[-1].msgid.encode())
        self.core.data_received(conn_id, data)
        got = self._after_step()
        for other, lines in got.items():
            if other != conn_id:
                for line in lines:
                    # A labelled answer is for the asker alone: never another user's data.
                    if line.startswith(b"@") and b"label" in line[: line.find(b" ")]:
                        tags = parse(line.decode()).tags
                        if "label" in tags:
                            _fail(f"conn {other} got conn {conn_id}'s labelled reply: {line!r}")
        return got

    def send_line(self, conn_id: int, line: str | bytes) -> dict[int, list[bytes]]:
        raw = line.encode() if isinstance(line, str) else line
        return self.send(conn_id, raw + b"\r\n")

    def tick(self, seconds: float = 0.0) -> dict[int, list[bytes]]:
        self.clock.advance(seconds)
        self.core.tick()
        return self._after_step()

    def lose(
        self, conn_id: int, reason: str = "Connection reset by peer"
    ) -> dict[int, list[bytes]]:
        conn = self.conns.get(conn_id)
        if conn is not None:
            conn.lost = True
        self.core.connection_lost(conn_id, reason)
        return self._after_step()

    def lose_closed(self) -> dict[int, list[bytes]]:
        """What a transport does after a flush: close what the core closed."""
        for conn in list(self.conns.values()):
            if conn.closed_by_core and not conn.lost:
                conn.lost = True
                self.core.connection_lost(conn.conn_id, "closed")
        return self._after_step()

    def sendq_exceeded(self, conn_id: int) -> dict[int, list[bytes]]:
        self.core.sendq_exceeded(conn_id)
        return self._after_step()

    def shutdown(self) -> dict[int, list[bytes]]:
        self.core.shutdown("Fuzz shutdown")
        return self._after_step()

    def answer_history(self, index: int = 0, fail: bool = False) -> dict[int, list[bytes]]:
        """Answer one outstanding history request (any order: the store is concurrent)."""
        if not self.requests:
            return {}
        req = self.requests.pop(index % len(self.requests))
        if req.search is not None:
            q = req.search
            hits = [
                m for m in self.store
                if m.target in q.targets and m.command in ("PRIVMSG", "NOTICE")
                and q.text.lower() in m.text.lower()
            ]
            hits = hits[len(hits) - q.limit :] if q.limit else []
            self.core.history_ready(req.request_id, None if fail else hits)
        elif req.query is None:
            targets = [
                (m.channel, m.time_ms)
                for m in self.store
                if m.target in req.targets and req.start_ms <= m.time_ms <= req.end_ms
            ]
            self.core.history_ready(req.request_id, None if fail else [], targets[-5:])
        else:
            rows = [
                m
                for m in self.store
                if m.target == req.query.target and m.command in served(req.query)
            ]
            self.core.history_ready(req.request_id, None if fail else rows[-req.query.limit :])
        return self._after_step()

    def answer_all_history(self) -> None:
        while self.requests:
            self.answer_history()

    def finish(self) -> None:
        """Everyone hangs up; afterwards the core must hold no state for anyone."""
        self.answer_all_history()
        for conn in list(self.conns.values()):
            if not conn.lost:
                self.lose(conn.conn_id)
        self.answer_all_history()
        core = self.core
        if core.clients:
            _fail(f"clients left after every connection was lost: {core.clients}")
        if core.nicks:
            _fail(f"nicks left after every connection was lost: {core.nicks}")
        if core.channels:
            _fail(f"channels left after every connection was lost: {list(core.channels)}")
        if core.limits.per_host:
            _fail(f"per-host counts left: {core.limits.per_host}")
        if core._flooded:
            _fail(f"flood queues left: {core._flooded}")
        if core._pending_history:
            _fail(f"history requests left: {core._pending_history}")
        if core.pending_answers or any(c.held is not None for c in core.clients.values()):
            _fail(f"checks left unanswered: {core.pending_answers}")
        if core.snotice_users:
            _fail(f"server-notice users left: {core.snotice_users}")
        if core.accept.accepted_by or core.accept.told:
            _fail(f"accept lists left: {core.accept.accepted_by}, {core.accept.told}")
        if tuple(core.bans) != self.saved_bans:
            _fail("the bans in force are not the last ones saved")
        self.check_errors()

    # ------------------------------------------------------------------ after each step

    def _after_step(self) -> dict[int, list[bytes]]:
        self.steps += 1
        core = self.core
        effects = core.take_effects()
        while effects:
            for effect in effects:
                if isinstance(effect, StoreMessage):
                    m = effect.message
                    # A deletion's record is not conversation activity: no dm pair.
                    if (is_dm_key(m.target) and m.command != REDACT_EVENT) != (
                        m.dm is not None
                    ) or (
                        m.dm is not None and dm_key(m.dm.sender, m.dm.recipient) != m.target
                    ):
                        _fail(f"a private message stored under the wrong key: {m!r}")
                    seq = len(self.store) + 1
                    self.senders[m.msgid] = m.sender
                    self.store.append(
                        StoredMessage(
                            m.target,
                            seq,
                            m.msgid,
                            m.time_ms,
                            m.source,
                            m.command,
                            m.channel,
                            m.text,
                            m.tags,
                        )
                    )
                elif isinstance(effect, HistoryRequest):
                    self.requests.append(effect)
                elif isinstance(effect, ChannelEnded):
                    pass  # a transport drops its cached window: no cache here
                elif isinstance(effect, RedactMessage):  # in the tick, as a transport does
                    self.store = [
                        r._replace(command=REDACTED_COMMAND, text="", tags="")
                        if r.msgid == effect.msgid and r.target == effect.target
                        else r
                        for r in self.store
                    ]
                elif isinstance(effect, Check):
                    self.oper_checks.append(effect)
                elif isinstance(effect, Rehash):  # a reload that keeps the configuration
                    core.rehash_done(effect.conn_id, "fuzz", None, effect.label)
                elif isinstance(effect, SaveReadMarkers):  # written behind by a transport
                    self._check_saved_markers(effect)
                elif isinstance(effect, SaveBans):
                    self.saved_bans = effect.bans  # a transport writes them to the ban file
                elif isinstance(effect, SaveChannel):  # written behind, as a transport does
                    self.accounts.save_channel(effect.folded, effect.channel)
                elif isinstance(effect, DropChannel):
                    self.accounts.drop_channel(effect.folded)
                elif isinstance(effect, MarkMemoRead):
                    self.accounts.mark_memo_read(effect.recipient, effect.memo_id)
                elif isinstance(effect, DeleteMemos):
                    self.accounts.delete_memos(effect.recipient, list(effect.memo_ids))
                else:
                    _fail(f"unknown effect {effect!r}")
            effects = core.take_effects()  # from lines a REHASH answer released
            # Like a transport: the scrypt check runs "elsewhere", and its answer is
            # handed back once the step is over (releasing the lines it held).
            while self.oper_checks and not effects:
                check = self.oper_checks.pop(0)
                core.answered(check.check_id, self.answer_check(check))
                effects = core.take_effects()
        got: dict[int, list[bytes]] = {}
        pending = core.take_output()
        while pending:
            for client in pending:
                data = b"".join(client.out)
                client.out.clear()
                conn = self.conns.get(client.conn_id)
                if conn is None:
                    _fail(f"output for a connection never opened: {client!r}")
                if conn.lost and data:
                    _fail(f"output for conn {conn.conn_id} after connection_lost: {data[:200]!r}")
                if data:
                    got.setdefault(conn.conn_id, []).extend(self._receive(conn, data))
                if client.closing is not None:
                    conn.closed_by_core = True
            pending = core.take_output()
        self.check_errors()
        if self.auto_close:
            for conn in list(self.conns.values()):
                if conn.closed_by_core and not conn.lost:
                    self.check_state()  # as it was before the transport reacted
                    conn.lost = True
                    core.connection_lost(conn.conn_id, "closed")
                    for client in core.take_output():  # nothing: it was closing already
                        _fail(f"output after connection_lost of a closing client: {client!r}")
            self.check_errors()
        if self.check_every_step:
            self.check_state()
        return got

    def _check_saved_markers(self, effect: SaveReadMarkers) -> None:
        """Markers only move forward: each saved is the one kept, an older one, or one
        a later marker of the account pushed out since; never one of a dropped account."""
        for account, target, time_ms in effect.markers:
            markers = self.core.read_markers.get(account)
            if markers is None:
                _fail(f"a read marker saved for an account without markers: {effect!r}")
            kept = markers.get(target)
            if kept is not None and kept < time_ms:
                _fail(f"a read marker saved beyond the one kept: {effect!r}")

    def _receive(self, conn: Conn, data: bytes) -> list[bytes]:
        conn.total_out += len(data)
        buf = conn.partial + data
        lines: list[bytes] = []
        start = 0
        while True:
            end = buf.find(b"\n", start)
            if end == -1:
                break
            lines.append(buf[start : end + 1])
            start = end + 1
        conn.partial = buf[start:]
        if conn.partial:
            _fail(f"conn {conn.conn_id}: a write ended mid-line: {conn.partial[:200]!r}")
        for line in lines:
            check_output_line(line, conn.conn_id)
            if line.startswith(b"ERROR ") or line.startswith(b"ERROR\r"):
                conn.got_error = True
        conn.lines.extend(lines)
        if len(conn.lines) > KEEP_LINES:
            del conn.lines[: len(conn.lines) - KEEP_LINES]
        return lines

    def check_errors(self) -> None:
        if self._errors.records:
            record = self._errors.records[0]
            detail = record.getMessage()
            if record.exc_text is None and record.exc_info:
                detail += "\n" + logging.Formatter().formatException(record.exc_info)
            elif record.exc_text:
                detail += "\n" + record.exc_text
            self._errors.records.clear()
            _fail(f"the core logged an error: {detail}")

    def answer_check(self, check: Check) -> object:
        """What the transport answers: as server.transport.ops does, with cheap hashes."""
        if isinstance(check, CheckOper):
            return verify_password(check.password, check.stored)
        if isinstance(check, SendMemo):
            memo_id = self.accounts.send_memo(
                check.recipient, check.sender, check.sent_ms, check.text, MAX_MEMOS
            )
            return "full" if memo_id is None else memo_id
        if isinstance(check, ListMemos):
            return self.accounts.memos(check.recipient)
        if isinstance(check, FindMessage):
            row = next(
                (r for r in self.store if r.target == check.target and r.msgid == check.msgid),
                None,
            )
            return None if row is None else FoundMessage(row, self.senders[row.msgid])
        if isinstance(check, FindAccount):
            found = self.accounts.find(check.folded)
            return None if found is None else (found.name, found.created_ms)
        if isinstance(check, FindScram):  # the harness's accounts have none: decoys
            found = self.accounts.find(check.folded)
            return None if found is None or found.scram is None else (found.name, found.scram)
        if isinstance(check, RegisterChannel):
            return "ok" if self.accounts.register_channel(check.folded, check.channel) else "exists"
        if isinstance(check, DropAccount):
            return self.accounts.delete(check.folded)
        if isinstance(check, SetPassword):
            return self.accounts.set_password(check.folded, cheap_oper_hash(check.password))
        if isinstance(check, Login):
            account = self.accounts.find(check.folded)
            ok = account is not None and verify_password(check.password, account.password_hash)
            return account.name if ok and account is not None else None
        new = Account(check.name, cheap_oper_hash(check.password), int(self.clock() * 1000))
        return "ok" if self.accounts.create(check.folded, new) else "exists"

    def ban_in_force(self, client: Client) -> ServerBan | None:
        """A ban that should have shut ``client`` out: bans are checked when set and at
        registration, and an operator is exempt from those set meanwhile, even after -o."""
        core = self.core
        exempt = self.exempt.get(client.conn_id)
        if "o" in client.modes:
            marks = {(b.kind, core.fold(b.mask), b.set_at) for b in core.bans}
            self.exempt[client.conn_id] = marks if exempt is None else exempt | marks
            return None
        if not exempt:
            return banned_by(core, client)
        binding = BanList(core.fold)
        for ban in core.bans:
            if (ban.kind, core.fold(ban.mask), ban.set_at) not in exempt:
                binding.add(ban)
        return matching_ban(binding, client)

    def check_state(self) -> None:
        core = self.core
        fold = core.fold
        sessions: dict[str, set[Client]] = {}
        for client in core.clients.values():
            if client.account is not None:
                sessions.setdefault(fold(client.account), set()).add(client)
        if sessions != {a: set(c) for a, c in core.account_sessions.items()}:
            _fail(f"account_sessions {core.account_sessions} != the clients' accounts")
        if not core.pending_answers:
            # What ChanServ keeps in memory is what the store of record holds.
            stored = dict(self.accounts.channels())
            if stored != core.registered_channels:
                _fail(f"registered channels {core.registered_channels} != stored {stored}")
            for folded, registered in stored.items():
                if registered.founder not in core.account_names:
                    _fail(f"{folded} is registered to {registered.founder}, not an account")
                if not set(registered.ops) <= core.account_names:
                    _fail(f"{folded}'s access list names dropped accounts: {registered.ops}")
            unread = dict(self.accounts.unread_memos())
            if unread != core.unread_memos:
                _fail(f"unread memos {core.unread_memos} != stored {unread}")
        live = {c.conn_id: c for c in core.clients.values()}
        # Clients: the table is keyed by conn_id, every one is a connection we opened.
        for conn_id, client in core.clients.items():
            if client.conn_id != conn_id:
                _fail(f"clients[{conn_id}] is {client!r}")
            conn = self.conns.get(conn_id)
            if conn is None or conn.lost:
                _fail(f"client {client!r} outlived its connection")
            if client.out and not core.output_held(client):  # (held: a playback read)
                _fail(f"{client!r} holds output the transport was never told about")
            if client.closing is not None and not conn.closed_by_core:
                _fail(f"{client!r} is closing but was never handed to the transport")
            if client.sasl is not None and len(client.sasl) > SASL_MAX:
                _fail(f"{client!r} holds {len(client.sasl)} bytes of SASL")
            if client.linebuf.pending > MAX_LINE + 1:
                _fail(f"{client!r} buffers {client.linebuf.pending} bytes of a partial line")
            if (
                client.flood is not None
                and client.flood.queued > self.config.flood_max_queue + 1
            ):
                _fail(f"{client!r} has {client.flood.queued} tokens' worth of delayed lines")
            batch = client.multiline
            if batch is not None and (
                len(batch.lines) > self.config.multiline_max_lines
                or batch.size > self.config.multiline_max_bytes
            ):
                _fail(f"{client!r} holds a multiline batch past its limits")
            if client.markers is not None and len(client.markers) > CONNECTION_MARKERS:
                _fail(f"{client!r} keeps {len(client.markers)} read markers")
            if client.closing is not None:
                if client.channels:
                    _fail(f"closing {client!r} is still in {list(client.channels)}")
                continue
            if client.registered:
                if not client.folded or not client.user:
                    _fail(f"registered {client!r} without nick or user")
                ban = self.ban_in_force(client)
                if ban is not None:
                    _fail(f"{client!r} stays registered under {ban}")
                if ("s" in client.modes) != (client in core.snotice_users):
                    _fail(f"{client!r}: user mode +s and the server-notice list disagree")
                if "s" in client.modes and "o" not in client.modes:
                    _fail(f"{client!r} has server notices without being an operator")
                if client.account is not None and self.accounts.find(
                    fold(client.account)
                ) is None:
                    _fail(f"{client!r} is logged in to {client.account!r}, which does not exist")
                if reserved_for_other(core, client, client.folded):
                    _fail(f"{client!r} uses the nick of account {client.folded!r}")
                if not is_valid_nick(client.nick, self.config.nicklen):
                    _fail(f"registered {client!r} has an invalid nick {client.nick!r}")
            if client.folded:
                if fold(client.nick) != client.folded:
                    _fail(f"{client!r}: folded {client.folded!r} != fold({client.nick!r})")
                if core.nicks.get(client.folded) is not client:
                    _fail(f"{client!r} lost its nick reservation {client.folded!r}")
            elif client.channels:
                _fail(f"{client!r} without a nick is in channels")
            if len(client.channels) > self.config.max_channels:
                _fail(f"{client!r} is in {len(client.channels)} channels")
            for folded, channel in client.channels.items():
                if core.channels.get(folded) is not channel:
                    _fail(f"{client!r} is in {folded!r}, which the server does not know")
                if client not in channel.members:
                    _fail(f"{client!r} thinks it is in {folded!r}; the channel disagrees")
        # Nicks: folded -> a live, not closing client whose nick folds to the key.
        for folded, client in core.nicks.items():
            if live.get(client.conn_id) is not client:
                _fail(f"nick {folded!r} belongs to a dead client {client!r}")
            if client.closing is not None:
                _fail(f"nick {folded!r} belongs to closing {client!r}")
            if client.folded != folded or fold(client.nick) != folded:
                _fail(f"nick {folded!r} maps to {client!r} ({client.folded!r})")
        # Channels: never empty, members live and registered and agree on membership.
        for folded, channel in core.channels.items():
            if channel.folded != folded or fold(channel.name) != folded:
                _fail(f"channel key {folded!r} for {channel.name!r}")
            if not is_valid_channel(channel.name, self.config.channellen):
                _fail(f"channel with an invalid name {channel.name!r}")
            if not channel.members:
                _fail(f"empty channel {channel.name!r} kept")
            for member, modes in channel.members.items():
                if live.get(member.conn_id) is not member or member.closing is not None:
                    _fail(f"{channel.name!r} has a dead or closing member {member!r}")
                if not member.registered:
                    _fail(f"{channel.name!r} has an unregistered member {member!r}")
                if member.channels.get(folded) is not channel:
                    _fail(f"{member!r} in {channel.name!r} does not know it")
                if set(modes) - {"o", "v"} or len(set(modes)) != len(modes):
                    _fail(f"{member!r} in {channel.name!r} has prefix modes {modes!r}")
            if channel.limit is not None and channel.limit <= 0:
                _fail(f"{channel.name!r} has limit {channel.limit}")
            if len(channel.bans) > 100:
                _fail(f"{channel.name!r} has {len(channel.bans)} bans")
        # Connection accounting matches the clients that hold a slot.
        counted = Counter(c.host_key for c in core.clients.values() if c.counted)
        if dict(counted) != core.limits.per_host:
            _fail(f"per-host counts {core.limits.per_host} != live {dict(counted)}")
        # The LUSERS figures the core keeps as it goes agree with a count of the clients.
        if core.counts != recount(core):
            _fail(f"LUSERS counts {core.counts} != live {recount(core)}")
        for client in core._flooded:
            if live.get(client.conn_id) is not client:
                _fail(f"flood queue kept for a dead client {client!r}")
        self.check_accept_lists(live)
        if len(core._pending_history) > len(self.requests):
            _fail("the core waits for history answers nobody was asked for")

    def check_accept_lists(self, live: dict[int, Client]) -> None:
        """Caller ID: every list holds live users, within the limit, and the reverse index
        says exactly the same; nobody gone is on a list, or has one."""
        core = self.core
        index = core.accept
        pairs: set[tuple[Client, Client]] = set()
        for client in core.clients.values():
            if client.accepting is None:
                continue
            if client.closing is not None or not client.registered:
                _fail(f"{client!r} keeps an accept list after leaving (or before registering)")
            if not client.accepting or len(client.accepting) > self.config.accept_limit:
                _fail(f"{client!r} has an accept list of {len(client.accepting)}")
            pairs |= {(client, user) for user in client.accepting}
        for owner, user in pairs:
            if live.get(user.conn_id) is not user or user.closing is not None:
                _fail(f"{owner!r} accepts {user!r}, who is gone")
        reverse = {(owner, user) for user, owners in index.accepted_by.items() for owner in owners}
        if reverse != pairs or any(not owners for owners in index.accepted_by.values()):
            _fail(f"accept index {index.accepted_by} disagrees with the lists {pairs}")
        for client in index.told:
            if live.get(client.conn_id) is not client:
                _fail(f"caller ID notice time kept for a dead client {client!r}")

    # ------------------------------------------------------------------ conveniences

    def register(self, nick: str, ip: str = "192.0.2.1", caps: str = "") -> int:
        conn_id = self.connect(ip)
        if caps:
            self.send_line(conn_id, f"CAP REQ :{caps}")
        self.send(conn_id, f"NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\n".encode())
        if caps:
            self.send_line(conn_id, "CAP END")
        return conn_id

    def client(self, conn_id: int) -> Client | None:
        return self.core.clients.get(conn_id)
