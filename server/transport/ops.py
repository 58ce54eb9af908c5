"""What both transports share for operations: metrics snapshot, group commit, reload."""

from __future__ import annotations

import collections
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from server.accounts import AccountStore, open_accounts
from server.accounts.model import RegisteredChannel
from server.accounts.service import (
    NewPassword,
    create,
    drop,
    hash_new_password,
    login,
    scram_credentials,
    store_password,
)
from server.banfile import load_bans
from server.config import ServerConfig
from server.core import ServerCore
from server.core.handlers.accounts import (
    DropAccount,
    FindAccount,
    FindScram,
    Login,
    Register,
    SetPassword,
)
from server.core.handlers.chanserv import DropChannel, RegisterChannel, SaveChannel
from server.core.handlers.memoserv import MAX_MEMOS, DeleteMemos, ListMemos, MarkMemoRead, SendMemo
from server.core.handlers.operator import CheckOper, Rehash
from server.core.handlers.readmarker import SaveReadMarkers, keep_marker
from server.core.handlers.redact import FindMessage, RedactMessage
from server.core.history import ChannelEnded, HistoryRequest, StoreMessage, marker_row
from server.history.model import ENDED_COMMAND, NewMessage
from server.history.service import HistoryService, Wanted
from server.history.sqlite_store import SQLiteStore
from server.passwords import verify_password
from server.transport.handshakes import HandshakeFailures

BACKLOG = 1024  # pending connections a listening socket queues
ACCEPT_RETRY_SECONDS = 1.0  # pause accepting after EMFILE and friends (as asyncio does)
# SO_SNDBUF asked for each client's socket (Linux doubles it: 256 KiB in the kernel).
# Left to autotuning, a reader that stops takes up to tcp_wmem's max (4 MiB) of kernel
# memory before the transport's buffer, which the sendq counts, grows at all.
SEND_BUFFER = 128 * 1024

log = logging.getLogger("chat.server.ops")

Reloader = Callable[[], ServerConfig]
BREAKER_STATES = {"closed": 0, "half-open": 1, "open": 2}


@dataclass(slots=True)
class TransportStats:
    history_writes: int = 0
    history_commits: int = 0
    history_commit_seconds: float = 0.0
    history_commit_failures: int = 0
    loop_lag: float = 0.0
    heartbeat: float = field(default_factory=time.monotonic)
    tls_failures: HandshakeFailures = field(default_factory=HandshakeFailures)


def limit_send_buffer(sock: Any) -> None:
    """Fix ``sock``'s kernel send buffer at ``SEND_BUFFER`` (a socket, or uvloop's
    stand-in), so that a slow reader's backlog is in the sendq's view."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
    except OSError as exc:  # the peer is gone already: its connection ends anyway
        log.debug("cannot set SO_SNDBUF: %s", exc)


def check_oper(effect: CheckOper) -> bool:
    """The scrypt check of an OPER password; runs on a worker thread, never the loop."""
    try:
        return verify_password(effect.password, effect.stored)
    except Exception:
        log.exception("OPER password check failed")
        return False


def open_account_store(config: ServerConfig) -> AccountStore | None:
    """The accounts' store of record (the ``--db`` database, or memory for ``""``); None,
    logged, when it cannot be opened: logins and registrations then fail, politely."""
    try:
        return open_accounts(config.db)
    except Exception:
        log.exception("the account store cannot be opened: SASL and REGISTER will fail")
        return None


# Account requests a client waits for (answered with core.answered), and account-store
# writes nothing waits for (written behind, in order, on the account worker). A Login
# is checked on the password worker instead (``check_login``), so that writes behind
# never wait for the scrypt hashes of queued logins; a new password (NEW_PASSWORDS) is
# hashed on a worker of its own before its store call takes its turn on the account
# worker (``store_new_password``; why: the comment above ``AccountTurns``).
ANSWERED = (
    Register, SetPassword, DropAccount, FindAccount, FindScram, RegisterChannel, SendMemo,
    ListMemos,
)
AnsweredEffect = (
    Register | SetPassword | DropAccount | FindAccount | FindScram | RegisterChannel
    | SendMemo | ListMemos
)
NEW_PASSWORDS = (Register, SetPassword)
NewPasswordEffect = Register | SetPassword
STORE_REQUESTS = (DropAccount, FindAccount, FindScram, RegisterChannel, SendMemo, ListMemos)
StoreRequest = DropAccount | FindAccount | FindScram | RegisterChannel | SendMemo | ListMemos
WRITTEN_BEHIND = (SaveReadMarkers, SaveChannel, DropChannel, MarkMemoRead, DeleteMemos)
WrittenBehind = SaveReadMarkers | SaveChannel | DropChannel | MarkMemoRead | DeleteMemos


# What ``core.answered`` gets for a check whose work failed: the answer of a failed
# check (a wrong password, an unavailable store), per effect.
FAILED_ANSWERS: dict[type, object] = {
    CheckOper: False, Login: None, Register: "unavailable", SetPassword: False,
    DropAccount: False, FindAccount: None, FindScram: None, RegisterChannel: "unavailable",
    SendMemo: "unavailable", ListMemos: None,
}


def failed_answer(effect: CheckOper | Login | AnsweredEffect) -> object:
    """The answer to give the core for a password check or an account request that
    raised (a server bug: the work functions catch store failures themselves). The
    client is told the check failed, and the lines it sent meanwhile go on."""
    return FAILED_ANSWERS[type(effect)]


def log_failed_check(effect: CheckOper | Login | AnsweredEffect, exc: BaseException) -> None:
    """Log, once, the exception of a check answered with ``failed_answer``. Only the
    effect's kind is named: its fields hold passwords."""
    log.exception("%s raised (a server bug): answered as failed", type(effect).__name__,
                  exc_info=exc)


@dataclass(frozen=True, slots=True)
class AccountState:
    """What the account store holds that the core keeps in memory."""

    names: list[str]
    markers: list[tuple[str, str, int]]  # (account, target, time_ms)
    channels: list[tuple[str, RegisteredChannel]]  # ChanServ registrations
    memos: list[tuple[str, int]]  # (account, unread memos)


def read_account_state(store: AccountStore | None) -> AccountState | None:
    """Every account's name, the read markers and the registered channels from the store
    (None, logged, on a failure); blocking: at start, or on a worker thread."""
    if store is None:
        return None
    try:
        return AccountState(
            store.names(), store.read_markers(), store.channels(), store.unread_memos()
        )
    except Exception:
        log.exception("account names, read markers, channels and memos could not be read")
        return None


def take_account_state(core: ServerCore, state: AccountState) -> None:
    """Add what the store holds to the core's view: names reserve their nicks (only
    added: a name being registered here stays), markers only move forward, and a
    marker written as its account was dropped elsewhere (which may outlive it) is
    skipped; registered channels are as stored (one being registered here stays). At
    start this fills the empty view; after a cluster outage it adds what other nodes
    did meanwhile."""
    core.account_names.update(state.names)
    for account, target, time_ms in state.markers:
        if account in core.account_names:
            keep_marker(core, account, target, time_ms)
    core.registered_channels.update(state.channels)
    # Counts, not events: what the store holds is the whole truth (the writes behind
    # this node's own changes ran before this read, on the same worker).
    core.unread_memos = dict(state.memos)


def load_account_state(core: ServerCore, store: AccountStore | None) -> None:
    """At start: the cloak key kept in the store (without ``--cloak-key``, so that cloaks
    and the bans on them outlive a restart, and every node of a cluster cloaks alike),
    the accounts' names, read markers and registered channels."""
    if store is not None and not core.config.cloak_key:
        try:
            core.cloak_key = store.secret("cloak_key").encode()
        except Exception:
            log.exception("the kept cloak key could not be read: cloaks change on restart")
    state = read_account_state(store)
    if state is not None:
        take_account_state(core, state)
        if core.account_names:
            log.info("%d accounts, %d registered channels",
                     len(core.account_names), len(core.registered_channels))


def write_behind(store: AccountStore | None, effect: WrittenBehind) -> None:
    """A moved read marker or a channel registration's change, written behind on a
    worker thread. A failure loses only that write (memory stands), so it is logged
    and not retried."""
    if store is None:
        return
    try:
        if isinstance(effect, SaveReadMarkers):
            store.set_read_markers(effect.markers)
        elif isinstance(effect, SaveChannel):
            store.save_channel(effect.folded, effect.channel)
        elif isinstance(effect, DropChannel):
            store.drop_channel(effect.folded)
        elif isinstance(effect, MarkMemoRead):
            store.mark_memo_read(effect.recipient, effect.memo_id)
        else:
            store.delete_memos(effect.recipient, list(effect.memo_ids))
    except Exception:
        log.exception("account store: writing %r failed", effect)


def answer_account(store: AccountStore | None, effect: StoreRequest) -> object:
    """The answer to an account request without a new password (a RegisterResult value
    for a channel's registration, success of a drop, name and creation time for a
    lookup, name and SCRAM credentials, memos); runs on the ordered account worker."""
    if isinstance(effect, FindScram):
        return None if store is None else scram_credentials(store, effect.folded)
    if isinstance(effect, RegisterChannel):
        return register_channel(store, effect)
    if isinstance(effect, FindAccount):
        return find_account(store, effect.folded)
    if isinstance(effect, DropAccount):
        return store is not None and drop(store, effect.folded)
    return memo_request(store, effect)


def hash_new(effect: NewPasswordEffect) -> NewPassword:
    """The new password of a registration or a password change, hashed; runs on the
    new-password worker, never the loop."""
    return hash_new_password(effect.password)


def store_new_password(
    store: AccountStore | None, new: NewPassword, effect: NewPasswordEffect
) -> object:
    """The answer to a registration (a RegisterResult value) or a password change
    (success), whose password ``new`` was hashed already: the store call alone, on the
    ordered account worker."""
    if isinstance(effect, SetPassword):
        return store is not None and store_password(store, effect.folded, new)
    if store is None:
        return "unavailable"
    now_ms = int(time.time() * 1000)
    return create(store, effect.folded, effect.name, new, now_ms).value


def account_key(effect: StoreRequest) -> str | None:
    """The folded account whose row ``effect`` reads or deletes, for ``AccountTurns``
    (None: none that a new password changes)."""
    return effect.folded if isinstance(effect, DropAccount | FindAccount | FindScram) else None


# A new password is hashed (scrypt and PBKDF2: tens of ms) on a worker of its own, not
# on the ordered account worker, where a burst of registrations held every store call
# and every login's confirmation (``login_stands``) behind their hashes; nor on the
# password worker, where a login's check would queue behind them instead. Only its
# store call runs on the ordered worker, and it must run there in the place its effect
# came in: a login confirmed before a password change asked for earlier (or a SCRAM
# lookup answered with the old credentials) would let the old password in, and a
# DropAccount must not overtake the change or the registration queued before it.
# So, per account, what comes in while a new password of that account is hashed (the
# store calls of other new passwords, drops, lookups and login confirmations) waits
# until the store calls before it are on the ordered worker; other accounts' work does
# not wait. Loop thread only.
@dataclass(slots=True)
class Turn:
    """A place in an account's queue; ``submit`` is None while its password is hashed."""

    folded: str
    submit: Callable[[], object] | None = None


class AccountTurns:
    """Store calls on the ordered account worker, per account in the order their effects
    came, though new passwords are hashed first elsewhere (why: the comment above)."""

    __slots__ = ("_queues",)

    def __init__(self) -> None:
        self._queues: dict[str, collections.deque[Turn]] = {}

    def hashing(self, folded: str) -> Turn:
        """A new password of ``folded`` is being hashed: its turn, kept until ``hashed``;
        what comes in for ``folded`` meanwhile waits behind it."""
        turn = Turn(folded)
        self._queues.setdefault(folded, collections.deque()).append(turn)
        return turn

    def hashed(self, turn: Turn, submit: Callable[[], object]) -> None:
        """The password of ``turn`` is hashed: ``submit`` its store call in its turn, and
        what waited behind it up to the next password still being hashed."""
        turn.submit = submit
        queue = self._queues[turn.folded]
        while queue and (ready := queue[0].submit) is not None:
            queue.popleft()
            ready()
        if not queue:
            del self._queues[turn.folded]

    def run(self, folded: str | None, submit: Callable[[], object]) -> None:
        """``submit`` (a store call of ``folded`` on the ordered worker) now, or behind
        the new passwords of ``folded`` that came before it."""
        if folded is None or folded not in self._queues:
            submit()
            return
        self._queues[folded].append(Turn(folded, submit))


# Logins are checked on the password worker, beside the ordered account worker: a
# Login may then be checked before a SetPassword, DropAccount or Register of the same
# account queued just before it has run (the old password let in), or a DropAccount
# queued just after it may be answered first (this login then outliving the account's
# log-out). Neither is acceptable, and preventing both is cheap: the check notes the
# password hash it saw, and ``login_stands`` reads it again on the ordered worker,
# after everything queued before; a different hash (every hash has a fresh salt, so a
# change never gives the old one back) means the check runs again, and an unchanged one
# is answered before anything queued after. The check's one write, SCRAM credentials
# for an account that has none (``service._upgrade``), is safe off the ordered worker:
# it only updates a row whose hash is still the one verified, so a password change or
# a drop on the ordered worker, before or after it, wins.
LOGIN_ROUNDS = 3  # checks of one Login before it fails (the account kept changing)


@dataclass(frozen=True, slots=True)
class CheckedLogin:
    """A Login checked on the password worker: the answer (the account's name or None)
    and the password hash it was checked against, for ``login_stands`` to confirm."""

    name: str | None
    seen: str | None  # None: no such account
    final: bool = False  # nothing to confirm: no store, or it failed


def check_login(store: AccountStore | None, effect: Login) -> CheckedLogin:
    """A Login's scrypt check; runs on the password worker, never the loop."""
    if store is None:
        return CheckedLogin(None, None, final=True)
    try:
        before = store.find(effect.folded)
    except Exception:
        log.exception("account store: looking up account %r failed", effect.folded)
        return CheckedLogin(None, None, final=True)
    account = login(store, effect.folded, effect.password)
    return CheckedLogin(
        None if account is None else account.name,
        None if before is None else before.password_hash,
    )


def login_stands(store: AccountStore | None, effect: Login, checked: CheckedLogin) -> bool:
    """Whether the account's password hash is still the one ``checked`` saw; runs on the
    ordered account worker (one read, no hash). A failed read does not confirm."""
    if checked.final or store is None:
        return True
    try:
        account = store.find(effect.folded)
    except Exception:
        log.exception("account store: looking up account %r failed", effect.folded)
        return False
    return (None if account is None else account.password_hash) == checked.seen


def find_account(store: AccountStore | None, folded: str) -> tuple[str, int] | None:
    if store is None:
        return None
    try:
        account = store.find(folded)
    except Exception:
        log.exception("account store: looking up account %r failed", folded)
        return None
    return None if account is None else (account.name, account.created_ms)


def memo_request(store: AccountStore | None, effect: SendMemo | ListMemos) -> object:
    """A sent memo's id ("full" when the box is, "unavailable" when the store failed),
    or an account's memos (None when the store failed)."""
    try:
        if isinstance(effect, ListMemos):
            return None if store is None else store.memos(effect.recipient)
        if store is None:
            return "unavailable"
        memo_id = store.send_memo(
            effect.recipient, effect.sender, effect.sent_ms, effect.text, MAX_MEMOS
        )
    except Exception:
        log.exception("account store: memos of %r failed", effect.recipient)
        return None if isinstance(effect, ListMemos) else "unavailable"
    return "full" if memo_id is None else memo_id


def register_channel(store: AccountStore | None, effect: RegisterChannel) -> str:
    if store is None:
        return "unavailable"
    try:
        created = store.register_channel(effect.folded, effect.channel)
    except Exception:
        log.exception("account store: registering channel %r failed", effect.folded)
        return "unavailable"
    return "ok" if created else "exists"


def restore_bans(core: ServerCore) -> None:
    """Put the ban file's unexpired K-/D-lines in force (at start, before any connection)."""
    bans, removals = load_bans(core.config.ban_file)
    core.bans.load(bans, removals, core.clock())
    if bans:
        log.info("%d bans in force from %s", len(core.bans), core.config.ban_file)


class HistoryReaders:
    """Whether a history read is still wanted, asked when its turn comes on the thread
    that would run it: a read whose client has gone is skipped (``ReadSkipped``).

    Reads queue on the one history-read thread (SEARCHes on theirs) behind each other,
    and a JOIN of 50 channels queued 50 playback reads (a few at once now, the rest
    waiting in the core: ``core.PLAYBACK_READS``): JOIN/JOIN 0 churn from clients that
    then left kept the reader busy for minutes after they were gone. Checking as
    a read is queued is not enough, so each read carries a ``Wanted``.

    The core knows who is gone (``history_requester``) but is not thread-safe: only the
    loop thread may touch it. So the loop thread, as it queues a read, gives it a
    ``threading.Event`` of the client's connection, made then (one per connection with
    reads queued, whatever their number), and sets it when that connection goes
    (``gone``: the transport closes it for the core, or its peer closed it); the reader
    thread only calls ``is_set()``, which is thread-safe. Set is final, and the dict is
    touched on the loop thread only. Seen a moment late, an event costs one read, never
    a wrong answer: a read that ran is answered as before, and the core drops an answer
    for a client that is gone (``history_ready``), as it does for a skipped read.
    """

    __slots__ = ("_gone",)

    def __init__(self) -> None:
        self._gone: dict[int, threading.Event] = {}

    def wanted(self, core: ServerCore, request_id: int) -> Wanted | None:
        """Loop thread, as the read is queued: what the reader asks before reading; None
        when its client is gone already (answer ``history_ready`` now, read nothing)."""
        conn_id = core.history_requester(request_id)
        if conn_id is None:
            return None
        gone = self._gone.get(conn_id)
        if gone is None:
            gone = self._gone[conn_id] = threading.Event()
        return lambda: not gone.is_set()

    def gone(self, conn_id: int) -> None:
        """Loop thread: the connection is closing or closed; its queued reads are not run."""
        gone = self._gone.pop(conn_id, None)
        if gone is not None:
            gone.set()


async def list_targets(
    history: HistoryService, request: HistoryRequest, wanted: Wanted | None = None
) -> list[tuple[str, int]]:
    """CHATHISTORY TARGETS: the channels', and an account's private conversations'
    (by the partner's account name), in the order and limit the store gives each."""
    start, end, limit = request.start_ms, request.end_ms, request.limit
    targets = await history.targets(request.targets, start, end, limit, wanted)
    if not request.account:
        return targets
    talks = await history.conversations(request.account, start, end, limit, wanted)
    merged = [*targets, *((name, last_ms) for name, _key, last_ms in talks)]
    return sorted(merged, key=lambda t: t[1])[:limit]


def commit_messages(
    core: ServerCore, history: HistoryService, messages: list[NewMessage], stats: TransportStats
) -> None:
    """Group commit: the tick's messages in one transaction, before any byte is sent,
    after those an earlier failed commit left (``history.backlog``). While some wait,
    the core refuses new messages that would be stored."""
    backlog = history.backlog
    batch = backlog.batch(messages)
    started = time.perf_counter()
    try:
        stored = history.store.append(batch)
    except Exception as exc:
        stats.history_commit_failures += 1
        backlog.failed(batch, exc)
        core.history_unwritable = bool(backlog)
        return
    backlog.stored()
    core.history_unwritable = False
    stats.history_commit_seconds += time.perf_counter() - started
    stats.history_commits += 1
    stats.history_writes += len(stored)
    history.committed(stored)


def end_channels_left_closed(
    core: ServerCore, history: HistoryService | None, stats: TransportStats
) -> None:
    """At start, after the registrations are loaded: the channels a killed server left
    closed (``HistoryStore.left_closed``) end now, as they would have at a stop, so
    that the open channel anyone may make of the name next does not show their history.
    Clustered, another node may hold such a channel still: they wait until this node's
    view of the cluster is whole (``core.unended``, ``history.end_unended``)."""
    if history is None:
        return
    try:
        left = history.store.left_closed()
    except Exception:
        log.exception("history: the channels left closed could not be read")
        return
    left = [(target, name) for target, name in left if target not in core.registered_channels]
    if core.config.cluster:
        core.unended = dict(left)
        if left:
            log.info("history: %d channels left closed; those no node holds end once "
                     "every node has been heard from", len(left))
        return
    rows = [marker_row(core, target, name, ENDED_COMMAND) for target, name in left]
    if rows:
        commit_messages(core, history, rows, stats)
        log.info("history: %d channels left closed by the last run ended", len(rows))


def check_history_file(history: HistoryService) -> None:
    """Once a tick, before the backlog's retry: a SQLite history file deleted or replaced
    under the running server is put back from the open connection
    (``SQLiteStore.check_file``, which logs what it did and never raises)."""
    store = history.store
    if isinstance(store, SQLiteStore):
        store.check_file()


def retry_backlog(core: ServerCore, history: HistoryService, stats: TransportStats) -> None:
    """Once a second (the transport's timer): try the messages a failed commit left
    again, even when no new message comes (the core refuses them meanwhile)."""
    if history.backlog:
        commit_messages(core, history, [], stats)


def write_history(
    core: ServerCore, history: HistoryService, effects: list[Any], stats: TransportStats
) -> None:
    """The tick's history writes, before any byte is sent: its messages in one
    transaction, then its redactions; then the cached windows of the channels that
    ended are dropped (after their last rows: the cache applies updates in order)."""
    to_store = [e.message for e in effects if isinstance(e, StoreMessage)]
    if to_store:
        commit_messages(core, history, to_store, stats)
    redactions = [e for e in effects if isinstance(e, RedactMessage)]
    if redactions:
        redact_messages(history, redactions)
    ended = [e.target for e in effects if isinstance(e, ChannelEnded)]
    if ended:
        history.ended(ended)


def redact_messages(history: HistoryService, redactions: list[RedactMessage]) -> None:
    """The tick's REDACTs made tombstones in the store (after its messages were
    committed, before any byte is sent), then their cached windows dropped. A failure
    is logged and the REDACT still goes out, as a message whose commit failed does:
    the store keeps the message."""
    changed: list[str] = []
    for redaction in redactions:
        try:
            if history.store.redact(redaction.target, redaction.msgid):
                changed.append(redaction.target)
        except Exception:
            log.exception("history: redacting %s failed", redaction.msgid)
    history.stale(changed)


async def find_message(history: HistoryService, effect: FindMessage) -> object:
    """The answer to a REDACT's lookup: the message and its sender, None, or
    "unavailable" (logged) when the store failed."""
    try:
        return await history.find(effect.target, effect.msgid)
    except Exception:
        log.exception("history: looking up %s failed", effect.msgid)
        return "unavailable"


def snapshot(
    core: ServerCore, stats: TransportStats, history: HistoryService | None
) -> dict[str, Any]:
    """Copies of plain counters; safe to call from the metrics thread."""
    cs = core.stats
    data: dict[str, Any] = {
        "connections": len(core.clients),
        "connections_opened": cs.connections_opened,
        "connections_refused": cs.refused.copy(),
        "registrations": cs.registrations,
        "messages_in": core.command_counts.copy(),
        "messages_out": cs.relayed.copy(),
        "deliveries": cs.deliveries,
        "sendq_disconnects": cs.sendq_disconnects,
        "flood_disconnects": cs.flood_disconnects,
        "loop_lag_seconds": stats.loop_lag,
        "tls_handshake_failures": stats.tls_failures.count,
        "tls_silent_closes": stats.tls_failures.silent,
    }
    if history is not None:
        data.update(
            history_writes=stats.history_writes,
            history_commits=stats.history_commits,
            history_commit_seconds=stats.history_commit_seconds,
            history_commit_failures=stats.history_commit_failures,
            history_unstored=len(history.backlog),
        )
        cache = history.cache
        if cache is not None:
            data.update(
                cache_hits=cache.hits,
                cache_misses=cache.misses,
                cache_fills=cache.fills,
                cache_invalidations=cache.invalidations,
                cache_drops=cache.drops,
                breaker_open=BREAKER_STATES.get(cache.breaker.state, 2),
            )
    return data


def reload(core: ServerCore, reloader: Reloader | None) -> str | None:
    """Re-read the configuration into the running core; the error text, or None."""
    if reloader is None:
        return "no configuration source to reload"
    try:
        new = reloader()
    except Exception as exc:  # ConfigError or an unreadable file: keep the old config
        log.warning("configuration reload rejected: %s", exc)
        return str(exc)
    ignored = core.reload(new)
    if ignored:
        log.warning("reload: %s change only on restart", ", ".join(ignored))
    log.info("configuration reloaded", extra={"event": "rehash"})
    return None


def reload_on_signal(core: ServerCore, reloader: Reloader | None) -> None:
    """SIGHUP: reload, told to the operators with +s as an operator's REHASH is."""
    core.snotice("Rehashing the server configuration (SIGHUP)")
    error = reload(core, reloader)
    if error is not None:  # nobody asked, so nobody else would hear of it
        core.snotice(f"Rehash failed, old config kept: {error}")


def rehash(core: ServerCore, reloader: Reloader | None, effect: Rehash) -> None:
    """An operator's REHASH: reload, then answer naming the file re-read (382)."""
    error = reload(core, reloader)
    source = core.config.config_file or "configuration"  # only flags and environment
    core.rehash_done(effect.conn_id, source, error, effect.label)


def start_metrics(
    config: ServerConfig, source: Callable[[], dict[str, Any]], heartbeat: Callable[[], float]
) -> Any:
    """The metrics/health HTTP server when --metrics-port is set, else None."""
    if config.metrics_port is None:
        return None
    from server.metrics import MetricsServer

    server = MetricsServer(config.metrics_host, config.metrics_port, source, heartbeat)
    server.start()
    return server


def bind_listeners(host: str, port: int) -> tuple[list[socket.socket], int]:
    """Listening sockets for every address of ``host`` (one port); and that port."""
    infos = socket.getaddrinfo(
        host or None, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE
    )
    seen: set[tuple[int, Any]] = set()
    socks: list[socket.socket] = []
    bound = port
    try:
        for family, socktype, proto, _name, addr in infos:
            if (family, addr) in seen:
                continue
            seen.add((family, addr))
            sock = socket.socket(family, socktype, proto)
            socks.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6 and hasattr(socket, "IPPROTO_IPV6"):
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if port == 0 and len(socks) > 1:
                # Every address on the same ephemeral port as the first one.
                addr = (addr[0], bound, *addr[2:])
            sock.bind(addr)
            sock.listen(BACKLOG)
            sock.setblocking(False)
            if len(socks) == 1:
                bound = int(sock.getsockname()[1])
    except OSError:
        for sock in socks:
            sock.close()
        raise
    return socks, bound
