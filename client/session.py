"""Sans-IO IRC client session: lines in, state + outgoing lines + UI events out.

The session never touches a socket, never awaits and never reads a clock: every
method that needs the time takes ``now`` (epoch seconds). A driver (see
:mod:`client.connection`) feeds it received lines and user input, then drains
:meth:`Session.take_outgoing` to the socket and :meth:`Session.take_events` to the UI.

Everything a server sends is untrusted: text is sanitised before it reaches a
:class:`~client.model.Line`, every structure is bounded, and a malformed line never
raises out of :meth:`Session.feed`.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace

from chat import numerics as N
from chat.casemap import Casemapping, casefold, is_casemapping
from chat.digits import is_digits
from chat.framing import MAX_LINE
from chat.message import Message, ParseError, parse, serialize_tags
from chat.names import is_channel_name, is_valid_nick
from chat.servertime import format_time, parse_time

from . import multiline
from .config import default_user, user_problem
from .formatting import Span, decode, display, display_lines, plain, sanitize
from .history import HISTORY_BATCHES, ChatHistory
from .ignore import IgnoreList
from .model import (
    MAX_CLOCK_SKEW,
    MESSAGE_KINDS,
    NICK_CHANGE,
    Buffer,
    BufferChanged,
    BufferCleared,
    BufferClosed,
    BufferKind,
    BufferOpened,
    CurrentChanged,
    Event,
    HistoryAdded,
    Kind,
    Line,
    LineAdded,
    LineReacted,
    LineRedacted,
    Member,
    QuitRequested,
    Reaction,
    ReconnectRequested,
    State,
    StatusChanged,
    StsPolicy,
    StsUpgrade,
)
from .multiline import Limits, MultilineMessage, WireLine
from .netsplit import Netsplits, split_servers
from .notify import NotifyList, Watched, chunks
from .outbox import JOIN_ERRORS, Outbox, Piece
from .passwords import (
    confirms_password_change,
    is_nickserv,
    mask_message,
    nickserv_login,
    nickserv_password_change,
)
from .regain import NickRegain
from .replies import (
    ERR_LISTMODEALREADYSET,
    ERR_LISTMODENOTSET,
    LIST_NUMERICS,
    QUERY_NUMERICS,
    dcc_text,
    list_mode_text,
    query_text,
)
from .sasl import SaslLogin
from .smartfilter import DEFAULT_MINUTES, EventFilter, Events
from .sts import parse_sts, valid_duration, valid_port

PRE_AWAY_CAP = "draft/pre-away"

# Capabilities requested when the server offers them.
WANTED_CAPS = (
    "server-time",
    "message-tags",
    "echo-message",
    "batch",
    "labeled-response",
    "draft/chathistory",
    "multi-prefix",
    "away-notify",
    "draft/pre-away",  # /away kept across a reconnect is set before registration ends
    "extended-monitor",  # AWAY of notify-list nicks we share no channel with
    "userhost-in-names",  # members' hosts, for /ban NICK
    "invite-notify",  # who invites whom to our channels
    "draft/read-marker",  # what the account's other sessions have read (MARKREAD)
    "draft/message-redaction",  # deleted messages (REDACT); only with message-tags
    "draft/event-playback",  # reactions (TAGMSG) in history; only with chathistory + tags
    "soju.im/search",  # message search (/search); only with batch (the results are one)
    "draft/multiline",  # messages of several lines; only with batch and message-tags
)
# draft/chathistory is only used with all of these (msgids, times and batches).
HISTORY_CAPS = frozenset({"draft/chathistory", "batch", "server-time", "message-tags"})
READ_MARKER_CAP = "draft/read-marker"
REDACT_CAP = "draft/message-redaction"
EVENT_PLAYBACK_CAP = "draft/event-playback"
# Message search (soju.im/search): SEARCH <attrs>, answered by a batch of this type.
SEARCH_CAP = "soju.im/search"
SEARCH_BATCH = "soju.im/search"
SEARCH_BUFFER = "*search*"  # the results buffer's name (no nick or channel has a '*')
SEARCH_LIMIT = 100  # results asked for (the newest matches), at most scrollback - 2
MAX_PENDING_SEARCHES = 8  # searches awaiting their answer (answered in order)
MAX_PENDING_WHOIS = 16  # nicks whose WHOIS reply is awaited or under way
MAX_AWAY_SHOWN = 256  # nicks whose away text (301) answering a message was said
# "<nick> <#chan> :text" numerics said in words: "bob is already on #a".
NICK_ON_CHANNEL = {"441": "is not on", "443": "is already on"}  # ERR_USERNOTINCHANNEL, ..ONCHANNEL
# Refusals of a NICK of ours: 431 none given, 432 erroneous, 433 in use, 436 collision,
# 437 unavailable (for a nick: a channel's is about the channel), 438 changed too fast,
# 447 InspIRCd's "cannot change nick while on #chan (+N)".
NICK_ERRORS = frozenset({"431", "432", "433", "436", "437", "438", "447"})
_RESERVED = re.compile(r"\breserved\b", re.IGNORECASE)  # (a 433 about an account's nick)
# IRCv3 reactions: a TAGMSG with these client tags (the reaction, the msgid reacted to).
REACT_TAG = "+draft/react"
REPLY_TAG = "+draft/reply"
MAX_REACTION = 32  # characters of a reaction's text kept (longer ones are cut)
MAX_REACTION_TEXTS = 20  # different reactions (texts) kept per line
MAX_REACTIONS = 200  # reactions (one per nick and text) kept per line
MAX_REACTION_IDS = 4  # msgids kept for one nick's same reaction sent again
MAX_MSGID = 128  # characters of a msgid kept
# Seconds after a message written without echo-message before a PING asks the server to
# vouch for it (and what was written with it): short, since until then a silently dead
# link would take it unnoticed, but one PING covers a paste.
ACK_DELAY = 2.0
# Seconds without the PONG to a PING (or, while registering, without any line) before
# the status line says the server is not answering (irssi shows its lag as "??" then):
# the ping timeout takes much longer.
LAG_STALLED = 5.0
# Seconds of silence while registering before the server buffer says so too: the
# status line alone is easily missed while nothing else happens.
REGISTER_SLOW = 10.0
# What a deleted message shows instead of its text (plus " by <nick>" when the sender
# did not delete it, and ": <reason>" when one was given).
REDACTED_TEXT = "(message deleted"
MAX_REASON = 300  # characters of a deletion reason kept

# Bounds against a hostile server.
MAX_BUFFERS = 500
MAX_MEMBERS = 20_000  # per channel
MAX_OPEN_BATCHES = 32
MAX_ISUPPORT = 256
MAX_CAPS = 256
MAX_NICK_ATTEMPTS = 30
MAX_NAME = 200  # longest channel/nick accepted as a buffer name
MAX_INPUT_LINES = 100  # lines one paste of plain text may send
# Automatic CTCP replies: a burst of a few (VERSION, then PING...), then one per interval,
# so that many senders at once cannot make the server drop us for flooding.
CTCP_REPLY_BURST = 3
CTCP_REPLY_INTERVAL = 2.0  # seconds per reply once the burst is spent
MAX_CTCP_PINGS = 16  # /ping times remembered for their replies
MAX_ACCEPT_LIST = 1000  # nicks of an accept list (281 lines) gathered for one line
MAX_SELVES = 16  # nicks (with user@host) we had this run, for Session.was_me
ACCEPT_CHUNK = 400  # bytes of nicks per ACCEPT line sent

DEFAULT_PREFIX = ("ov", "@+")
DEFAULT_CHANMODES = ("b", "k", "l", "imnst")
LINE_LIMIT = 510  # bytes of an IRC line without CRLF
HOST_ESTIMATE = 63  # longest hostname assumed when splitting long messages

_CTCP_REPLIES = ("VERSION", "PING", "TIME", "CLIENTINFO")
# Numerics whose optional leading parameters (counts) are repeated in their text:
# RPL_LOCALUSERS, RPL_GLOBALUSERS.
_COUNTS_IN_TEXT = frozenset({"265", "266"})


@dataclass(slots=True)
class SessionConfig:
    nick: str
    user: str = ""  # default: the nick's letters, digits, '_' and '-' (config.default_user)
    realname: str = ""  # default: the nick
    password: str | None = None
    sasl_username: str | None = None  # SASL at connect when both are set
    sasl_password: str | None = field(default=None, repr=False)
    sasl_mechanism: str | None = None  # "SCRAM-SHA-256" or "PLAIN"; None: SCRAM if offered
    sasl_plain_insecure: bool = False  # PLAIN also over plaintext or unverified TLS
    channels: tuple[str, ...] = ()  # joined after registration
    show_first_channel: bool = False  # switch to channels[0] once joined (chat-client does)
    user_modes: str = ""  # set on ourselves after every registration, e.g. "+g"
    server_label: str = "server"  # name of the server buffer
    scrollback: int = 2000
    max_buffers: int = MAX_BUFFERS
    history_lines: int = 100  # per CHATHISTORY request (capped by ISUPPORT CHATHISTORY)
    highlight_words: tuple[str, ...] = ()
    notify: tuple[str, ...] = ()  # nicks to watch (MONITOR, or ISON polling)
    ignore: tuple[str, ...] = ()  # masks whose messages are dropped
    send_typing: bool = False  # tell others when we type (IRCv3 +typing); shown either way
    # Joins, parts, quits and nick changes shown in channels: "all", "smart" (of nicks
    # who spoke within smart_filter_minutes) or "none" (client/smartfilter.py).
    events: str = Events.SMART
    smart_filter_minutes: int = DEFAULT_MINUTES
    version: str = "chat-client 0.1.0"
    # The UI's key bindings (config ``keys``), for /help keys; None: the defaults.
    keys: Mapping[str, tuple[str, ...]] | None = None


@dataclass(slots=True)
class _Batch:
    type: str
    params: list[str]
    lines: list[tuple[Message, float]] = field(default_factory=list)
    label: str | None = None  # a labeled-response batch: the label it answers
    opener: Message | None = None  # a draft/multiline batch: its BATCH line (the tags)
    parent: str | None = None  # the batch the BATCH line was in (history, search)


@dataclass(frozen=True, slots=True)
class Search:
    """A ``/search`` sent and not answered yet: ``text`` (may be '' with ``sender``), in
    ``target`` (None: all our channels and conversations), by ``sender`` (None: anyone),
    at most ``limit`` results; typed in ``origin``."""

    text: str
    target: str | None
    sender: str | None
    limit: int
    origin: Buffer

    def describe(self) -> str:
        """'Search for "foo" from bob in #chan' (the results header, without the count)."""
        what = f'Search for "{self.text}"' if self.text else "Search for messages"
        if self.sender:
            what += f" from {self.sender}"
        return what + (f" in {self.target}" if self.target else " in all conversations")


@dataclass(slots=True)
class Completion:
    """Replace ``text[start:end]`` with one of ``candidates`` (best first)."""

    start: int
    end: int
    candidates: list[str]


def ago(seconds: float) -> str:
    """How long ago, in words: "3 min ago", "5 h ago", "12 days ago"."""
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60:.0f} min ago"
    if seconds < 48 * 3600:
        return f"{seconds // 3600:.0f} h ago"
    return f"{seconds // 86400:.0f} days ago"


class Session:
    def __init__(self, config: SessionConfig) -> None:
        self.config = config
        self.state = State.DISCONNECTED
        self.nick = config.nick
        self._wanted_nick = config.nick  # the nick asked for on (re)connect
        self.away = False
        # What /away asked for, kept across reconnects (None: present); the server
        # forgets a connection's away state with it.
        self.away_message: str | None = None
        self._away_sent = False  # this connection was told it (draft/pre-away)
        self.lag: float | None = None  # seconds, from the last PING/PONG round trip
        self.caps: set[str] = set()  # enabled capabilities
        self.available_caps: dict[str, str] = {}  # offered by the server (CAP LS)
        self.isupport: dict[str, str] = {}
        self.network = ""
        self.server_name = ""
        self.user_modes = ""
        self.account: str | None = None  # logged in as (900), None when not
        self.reconnect_delay: float | None = None  # set while waiting to reconnect
        # The driver stopped retrying (``not_reconnecting``) until /reconnect.
        self.not_retrying = False
        self.malformed = 0  # lines that could not be parsed
        self._told_too_long = False  # lines_too_long said so once
        self.connects = 0  # connections made so far
        self.registrations = 0  # connections that got as far as the end of the MOTD
        self.secure = False  # the current connection is TLS
        self.tls_verified = False  # ...and its certificate was verified
        self.casemapping: Casemapping = "rfc1459"
        self.chantypes = "#&"
        self.prefix_modes, self.prefix_symbols = DEFAULT_PREFIX
        self.chanmodes = DEFAULT_CHANMODES
        self.chathistory_limit = 0  # 0: no limit advertised
        self.nicklen = 0

        self._out: list[str] = []
        self._typed_out: list[tuple[int, int]] = []  # spans of _out that input() wrote
        self._events: list[Event] = []
        # Joins, parts... hidden from view (the message pane asks :meth:`hidden`).
        self.event_filter = EventFilter(Events(config.events), config.smart_filter_minutes)
        self.buffers: list[Buffer] = []
        self._by_key: dict[str, Buffer] = {}
        self.server = self._new_buffer(BufferKind.SERVER, config.server_label, "")
        self.current = self.server

        self._nick_attempt = 0
        self._nick_taken = False  # the nick asked for was in use at this registration
        self._nick_reserved = False  # ...or reserved for an account (a login gets it)
        self._regain = NickRegain()  # getting it back later (client/regain.py)
        self._nick_typed_in: Buffer | None = None  # where the last /nick was typed
        self._cap_ls: dict[str, str] = {}
        self._cap_negotiating = False
        self._sasl = SaslLogin(config, self)
        self._registered_account: str | None = None  # REGISTER SUCCESS: a hint follows 900
        self._motd_done = False
        self._closed_why = ""  # the ERROR that ended the connection we were in
        # The ERROR a server closed this connection with before letting us in (a user
        # name it refuses, a ban); "" otherwise. The driver stops retrying on repeats.
        self.refusal = ""
        self._batches: dict[str, _Batch] = {}
        self._batch_seq = 0  # draft/multiline batches we sent (their references)
        self.outbox = Outbox(self)  # our messages until the server confirms them
        self._history = ChatHistory(config, self, self.outbox)
        self._label: str | None = None  # labeled-response: the label of what is handled
        self._names: dict[str, dict[str, Member]] = {}
        self._names_shown: set[str] = set()  # /names asked by the user: show the result
        self._invites_typed: dict[tuple[str, str], Buffer] = {}  # (nick, channel) -> where
        self._topic_shown: set[str] = set()  # /topic asked by the user: say "no topic" too
        self._last_query_numeric = ""  # the previous reply shown for a query (WHOIS, WHOWAS)
        # Folded nicks of a /whois not answered yet or a WHOIS reply under way (311 to
        # 318): their away line (301) is part of the reply, not news for their query.
        self._whois: deque[str] = deque(maxlen=MAX_PENDING_WHOIS)
        # Folded nick -> the away text last said for a message to them: said again only
        # when it changes (irssi's show_away_once), not after every message.
        self._away_shown: dict[str, str] = {}
        self._switch_on_join: set[str] = set()
        # The first configured channel (--join): shown once joined, unless the user has
        # gone to another buffer by then.
        self._switch_to_first: str | None = None
        # Configured channels (--join) not answered yet (our JOIN, or a refusal): joined
        # at every registration until then, as a connection may end before it gets
        # that far (an STS upgrade, a restart) or before the server answers.
        self._autojoin: list[str] = list(dict.fromkeys(c for c in config.channels if c))
        self._join_keys: dict[str, str] = {}  # folded name -> key, of /join while offline
        # PING token -> (when it was sent, outbox.written then): its PONG gives the lag
        # and vouches for as many messages written without echo-message.
        self._pings: dict[str, tuple[float, int]] = {}
        self._ping_seq = 0
        self._ack_due: float | None = None  # when to PING for messages written since
        # Seconds the oldest PING has waited for its PONG (registering: since the
        # server's last line), once past LAG_STALLED (a server or link that stopped
        # answering); None while answers come.
        self.waiting_reply: float | None = None
        self._stall_check: float | None = None  # when to look at the unanswered PINGs
        self._heard_at = 0.0  # the server's last line (or the connect): registering
        self._slow_said = False  # the server buffer said registration is slow
        self._retry_at: float | None = None  # when the driver reconnects (reconnect_delay)
        self._offset = 0.0  # server clock - local clock, from server-time tags
        self._ctcp_tokens = float(CTCP_REPLY_BURST)
        self._ctcp_at = 0.0  # when the tokens were counted
        self._ctcp_pings: dict[str, float] = {}  # /ping: our token -> when it was sent
        self._quitting = False  # /quit was used: the coming disconnect is expected
        self._user_reconnect = False  # /reconnect: the coming disconnect is expected too
        # /reconnect was typed and no connection has been made since (nor has an attempt
        # failed): typed again, it has nothing more to do.
        self._reconnect_asked = False
        self.quit_warned_at = float("-inf")  # /quit refused once for messages not sent
        self._upgrading = False  # STS: this connection ends to reconnect with TLS
        self._mask_len = 0  # length of our nick!user@host as the server sees it
        # Who we were in our channels this run, newest last: (folded nick, user@host,
        # account), each '' when not known. A reconnect's gap fill brings back the quit
        # of the connection lost, under the nick it had then (see was_me).
        self._selves: deque[tuple[str, str, str]] = deque(maxlen=MAX_SELVES)
        self._highlight: re.Pattern[str] | None = None
        self._rebuild_highlight()
        self.notify = NotifyList(config.notify, self.fold)
        self.ignores = IgnoreList(config.ignore, self.fold)
        self._ison_polls: deque[list[str]] = deque()  # nicks of each ISON we sent, in order
        self._ison_skipped = 0  # keepalives without a poll while one was unanswered
        # A netsplit's quits and joins, folded per channel (shown later: see tick).
        self.netsplits = Netsplits(self.fold)
        self._accept_list: list[str] = []  # caller ID: the nicks of 281s, until the 282
        self._accept_more = 0  # ... and how many more there were than MAX_ACCEPT_LIST
        self._searches: deque[Search] = deque(maxlen=MAX_PENDING_SEARCHES)  # sent, unanswered
        # Set when typed text was refused (not sent, and not waiting in the outbox):
        # the UI puts it in its input history (commands.run_input).
        self.input_refused = False
        self._recall = ""  # how the input being run is got back when refused (UI's words)
        # A "//command text" line refused once (see commands.run_input): sent if the
        # user enters it again.
        self.slash_refused: str | None = None

    # ------------------------------------------------------------------ driver API

    def take_outgoing(self) -> list[str]:
        """Lines to send (without CRLF), oldest first; the queue is emptied."""
        return [line for line, _typed in self.take_lines()]

    def take_lines(self) -> list[tuple[str, bool]]:
        """As :meth:`take_outgoing`, each with whether the user typed it (a command's
        line, written by :meth:`input`): flood control lets those go first."""
        out, self._out = self._out, []
        typed = [False] * len(out)
        for start, end in self._typed_out:
            typed[start:end] = [True] * (min(end, len(out)) - min(start, len(out)))
        self._typed_out = []
        return list(zip(out, typed, strict=True))

    def take_events(self) -> list[Event]:
        events, self._events = self._events, []
        return events

    def connection_made(
        self, now: float, *, secure: bool = False, verified: bool = False
    ) -> None:
        """TCP (and TLS, when ``secure``; its certificate checked, when ``verified``) is
        up: start CAP negotiation and registration."""
        text = "Connected (TLS), registering" if secure else "Connected, registering"
        self._add(self.server, self._local(Kind.INFO, text, now))
        self.connects += 1
        self.secure = secure
        self.tls_verified = secure and verified
        self.state = State.REGISTERING
        self.reconnect_delay = None
        self.caps = set()
        self.available_caps = {}
        self.isupport = {}
        self._reset_isupport()
        self._cap_ls = {}
        self._cap_negotiating = True
        self._sasl.reset(now)
        self._registered_account = None
        self.account = None
        self._motd_done = False
        self._closed_why = ""
        self.refusal = ""
        self._batches.clear()
        self._history.connection_made()
        self.outbox.connection_made()
        self._names.clear()
        self._topic_shown.clear()
        self._whois.clear()
        self._away_shown.clear()
        self._pings.clear()
        self._heard_at = now
        self._slow_said = False
        # (A server that never lets us in shows in the status line, not only at the
        # ping timeout.)
        self._stall_check = now + LAG_STALLED
        self.waiting_reply = None
        self._nick_attempt = 0
        self._nick_taken = self._nick_reserved = False
        self._regain.stop()  # (the server forgot the last connection's MONITOR list)
        self.nick = self._wanted_nick
        self.away = False
        self.user_modes = ""  # a new connection starts without the old one's (+g, +i...)
        self._away_sent = False
        self._quitting = False
        self._upgrading = False
        self._user_reconnect = False
        self._reconnect_asked = False
        self._out.clear()
        self._typed_out.clear()
        self.notify.forget_states()
        self._ison_polls.clear()
        self._accept_list, self._accept_more = [], 0
        self.netsplits.clear()
        for buf in self.buffers:  # the server says again (JOIN, or asked for queries)
            buf.marked_ms = None
        self._send("CAP", "LS", "302")
        if self.config.password:
            self._send("PASS", self.config.password)
        self._send("NICK", self.nick)
        self._send("USER", self._user_name(), "0", "*", self.config.realname or self.config.nick)
        if self.connects == 1:
            self._sasl.check_credentials(now)
        self._status()

    def connection_lost(self, now: float, reason: str = "") -> None:
        """The connection is gone; channels are remembered for the rejoin."""
        was = self.state
        self._show_folds(self.netsplits.take())  # (they happened before the loss)
        self.state = State.DISCONNECTED
        self._out.clear()
        self._typed_out.clear()
        self._batches.clear()
        self._searches.clear()
        self._history.connection_lost()
        self.outbox.connection_lost(quitting=self._quitting)
        self._pings.clear()
        self._ack_due = None
        self._stall_check = None
        self.waiting_reply = None
        self._ison_polls.clear()
        self.lag = None
        expected = self._quitting or self._upgrading or self._user_reconnect
        # Only a connection we were in (welcomed) is lost where the user talks: a retry
        # closed before that (a proxy, a server refusing us) says so in the server
        # buffer alone, or every open query would get a line per retry.
        why = self._closed_why or plain(reason)  # (the server's words, when it said any)
        lost = "" if expected or was is not State.CONNECTED else (
            "Disconnected" + (f": {why}" if why else ""))
        for buf in self.buffers:
            if lost and (buf.joined or buf.kind is BufferKind.QUERY):
                # Said where the user is talking too (as WeeChat), not only in the server
                # buffer: a channel's next line is otherwise the rejoin, or nothing.
                self._add(buf, self._local(Kind.ERROR, lost, now), count=False)
            if buf.kind is BufferKind.QUERY and buf.history_loading:
                buf.history_loading = False
                self.emit(BufferChanged(buf))
            if buf.kind is BufferKind.CHANNEL:
                if buf.joined:
                    buf.rejoin = True
                buf.joined = False
                buf.members.clear()
                buf.history_loading = False
                buf.version += 1
                self.emit(BufferChanged(buf))
        if was is not State.DISCONNECTED:
            if self._quitting:
                self._add(self.server, self._local(Kind.INFO, "Disconnected", now))
            elif self._upgrading:  # meant to be: no error
                text = "Disconnected, to reconnect with TLS (STS)"
                self._add(self.server, self._local(Kind.INFO, text, now))
            elif self._user_reconnect:
                self._add(self.server, self._local(Kind.INFO, "Disconnected (/reconnect)", now))
            else:
                text = "Disconnected" + (f": {plain(reason)}" if reason else "")
                # (Once in, said where the user talks too, and the status line shows it.)
                line = self._local(Kind.ERROR, text, now)
                self._add(self.server, line, count=not self.registrations)
        self._status()

    def connecting(self, now: float, delay: float | None = None, target: str = "") -> None:
        """The driver waits ``delay`` seconds (None: connects right now, to ``target``)."""
        self.reconnect_delay = delay
        self.not_retrying = False
        # The status line counts the wait down: tick() every second until then.
        self._retry_at = now + delay if delay else None
        self.state = State.DISCONNECTED if delay else State.CONNECTING
        if delay:
            self._reconnect_asked = False  # (that attempt failed: /reconnect retries now)
            self._add(self.server, self._local(Kind.INFO, f"Reconnecting in {delay:.1f} s", now))
        elif target:  # (until the welcome, the server buffer showed nothing happening)
            self._add(self.server, self._local(Kind.INFO, f"Connecting to {target}", now))
        self._status()

    def not_reconnecting(self, refusal: str, times: int, now: float) -> None:
        """The driver stops retrying: the server refused us the same way ``times`` in
        a row. Said where the user is too: nothing else will happen until they act."""
        self._retry_at = self.reconnect_delay = None
        self.not_retrying = True
        text = (f"Not reconnecting: the server refused us {times} times in a row "
                f"({refusal}); /reconnect to try again")
        self.error(text, now, self.server)
        if self.current is not self.server:
            self.error(text, now)
        self._status()

    def ping(self, now: float) -> str:
        """A keepalive: queue a PING, whose PONG sets :attr:`lag`, and return its token.
        Not before the welcome (""): servers answer it with 451 "You have not
        registered", never a PONG, and the status line counted "no reply" after it."""
        token = self._send_ping(now) if self.registered else ""
        self._sasl.keepalive(now)
        if self.registered and self.notify and not self.monitor_supported:
            self._poll_notify()
        if self.registered and self._regain.due(now):
            self._try_regain()
        self._mark_read(self.current)  # what arrived while it was in view: read
        self.tick(now)
        return token

    def _send_ping(self, now: float) -> str:
        self._ping_seq += 1
        token = f"chat-lag-{self._ping_seq}"
        while len(self._pings) >= 8:
            del self._pings[next(iter(self._pings))]
        self._pings[token] = (now, self.outbox.written)
        self._send("PING", token)
        if self._stall_check is None:
            self._stall_check = now + LAG_STALLED
        return token

    def want_ack(self, now: float) -> None:
        """A message was written without echo-message: a PING shortly after it (not one
        per message: a paste is one) lets the PONG vouch for it."""
        if self._ack_due is None:
            self._ack_due = now + ACK_DELAY

    def tick(self, now: float) -> None:
        """Show the folded netsplit lines due by ``now``, end history requests left
        unanswered, and PING for messages written without echo-message when due. Called
        with every line fed and keepalive; the connection also calls it at
        :attr:`due_at`, so they come without traffic."""
        if self.netsplits.due_at is not None:
            self._show_folds(self.netsplits.due(now))
        self._history.expire(now)
        if self._retry_at is not None and self.reconnect_delay is not None:
            left = max(0.0, self._retry_at - now)
            if round(left) != round(self.reconnect_delay):
                self.reconnect_delay = left
                self._status()
        if self._stall_check is not None and now >= self._stall_check:
            self._stall_check = None
            registering = self.state is State.REGISTERING
            if registering or self._pings:
                # (Registering, no 001 yet: any line is an answer.)
                pinged = min((at for at, _ in self._pings.values()), default=now)
                waited = now - (self._heard_at if registering else pinged)
                if waited >= LAG_STALLED:
                    self.waiting_reply = waited
                    self._status()
                if registering and waited >= REGISTER_SLOW and not self._slow_said:
                    self._slow_said = True
                    self.info(f"No reply from the server for {waited:.0f} s: still waiting "
                              "for registration (/reconnect to try again)", now, self.server)
                self._stall_check = now + 1.0  # (the status line counts the seconds)
        if self._ack_due is not None and now >= self._ack_due:
            self._ack_due = None
            vouched = max((n for _, n in self._pings.values()), default=0)  # a PING's on its way
            if not self.registered or vouched >= self.outbox.written:
                return
            if self.outbox.queued:  # the rest of a paste is coming: after it
                self._ack_due = now + ACK_DELAY
            else:
                self._send_ping(now)

    def history_written(self, buffer: str, now: float) -> None:
        """Flood control wrote a CHATHISTORY request for ``buffer`` (folded): its
        answer is waited for from now (see :meth:`tick`)."""
        self._history.written(buffer, now)

    @property
    def due_at(self) -> float | None:
        """When :meth:`tick` has something to do (the clock ``now`` is read from)."""
        counting = None
        if self._retry_at is not None and self.reconnect_delay:
            counting = self._retry_at - self.reconnect_delay + 1.0  # the next whole second
        due = [t for t in (self.netsplits.due_at, self._ack_due, self._stall_check, counting,
                           self._history.due_at) if t is not None]  # fmt: skip
        return min(due) if due else None

    def _show_folds(self, folds: list[tuple[Buffer, Line]]) -> None:
        for buf, line in folds:
            if buf in self.buffers:
                self._add(buf, line)

    def _poll_notify(self) -> None:
        """ISON the notify list at a keepalive.

        A poll still unanswered means a slow (or penalising) server: skip this turn.
        After three such turns the answers are taken as lost (a server that dropped or
        refused them), or the notify list would never be polled again.
        """
        if self._ison_polls:
            self._ison_skipped += 1
            if self._ison_skipped < 3:
                return
            self._ison_polls.clear()
        self._ison_skipped = 0
        self._poll(self.notify.nicks())

    def feed(self, line: str | bytes, now: float) -> None:
        """Process one received line (without CRLF). Never raises."""
        try:
            if isinstance(line, bytes):
                line = decode(line)
            if not line.strip():
                return
            try:
                msg = parse(line)
            except ParseError:
                self.malformed += 1
                return
            self.tick(now)
            if self.state is State.REGISTERING:
                self._heard_at = now
                if self.waiting_reply is not None:  # it answers after all
                    self.waiting_reply = None
                    self._status()
            self._dispatch(msg, now)
        except Exception as exc:  # a hostile line must never take the client down
            self.malformed += 1
            self._add(
                self.server,
                self._local(Kind.ERROR, f"Ignored a line that could not be handled ({exc!r})", now),
            )

    def lines_too_long(self, count: int, now: float) -> None:
        """``count`` lines from the server longer than an IRC line may be were dropped
        (the lines around them were not): said once in the server buffer, then counted."""
        self.malformed += count
        if not self._told_too_long:
            self._told_too_long = True
            self.error(f"Dropped a line from the server longer than {MAX_LINE} bytes "
                       "(later ones are dropped without a word)", now, self.server)

    # ------------------------------------------------------------------ UI API

    @property
    def registered(self) -> bool:
        return self.state is State.CONNECTED

    @property
    def reconnecting(self) -> bool:
        """Not registered, but will be again (not after /quit): messages typed now wait
        in the outbox."""
        return not self.registered and not self._quitting and self.connects > 0

    @property
    def sasl_configured(self) -> bool:
        """A SASL username and password are set: log in at every connect."""
        return self._sasl.configured

    @property
    def sasl_learned(self) -> str | None:
        """The account a login during this session (``/register``, NickServ
        ``IDENTIFY``) was made to: connects log in to it when nothing is configured."""
        return self._sasl.learned

    def login_attempt(self, account: str | None, password: str, now: float) -> None:
        """A password was sent to log in (``/register``): when the 900 follows, the next
        connects of this session log in with it (SASL), unless credentials are
        configured. ``account`` None: the one the server names. Kept in memory only."""
        self._sasl.attempt(account, password, now)

    @property
    def history_enabled(self) -> bool:
        return self.caps >= HISTORY_CAPS

    @property
    def query_history_enabled(self) -> bool:
        """Private (query) history can be asked for: draft/chathistory, and logged in to
        an account (servers keep private history only between accounts)."""
        return self.history_enabled and self.account is not None

    @property
    def read_markers_enabled(self) -> bool:
        """IRCv3 draft/read-marker is usable: the cap (with server-time, as markers are
        server times), logged in to an account (the server keeps markers per account)."""
        return (
            self.registered
            and self.account is not None
            and READ_MARKER_CAP in self.caps
            and "server-time" in self.caps
        )

    @property
    def redaction_enabled(self) -> bool:
        """IRCv3 draft/message-redaction is negotiated: REDACT can be sent (and arrives)."""
        return REDACT_CAP in self.caps and "message-tags" in self.caps

    @property
    def search_enabled(self) -> bool:
        """soju.im/search is negotiated (with batch, which carries the results)."""
        return SEARCH_CAP in self.caps and "batch" in self.caps

    @property
    def search_buffer(self) -> Buffer | None:
        """The message search results buffer (``*search*``), None until a search is
        answered (or after it is closed)."""
        return next((b for b in self.buffers if b.kind is BufferKind.SEARCH), None)

    @property
    def echo(self) -> bool:
        return "echo-message" in self.caps

    @property
    def multiline_limits(self) -> Limits | None:
        """IRCv3 draft/multiline is negotiated (with batch) and the server said how much
        one message may hold: text with line breaks goes out as one message. None: it
        goes out as a message per line."""
        if multiline.CAP not in self.caps or "batch" not in self.caps:
            return None
        return multiline.parse_limits(self.available_caps.get(multiline.CAP, ""))

    def fold(self, name: str) -> str:
        return casefold(name, self.casemapping)

    def is_channel(self, name: str) -> bool:
        return is_channel_name(name, self.chantypes)

    def buffer(self, name: str) -> Buffer | None:
        """The channel or query buffer called ``name`` (case-insensitive)."""
        return self._by_key.get(self.fold(name)) if name else None

    def find_buffer(self, name: str) -> Buffer | None:
        """Any buffer the user may name (``/win``, ``/close``): a channel or query, or
        the search results (``*search*``), which server lines never reach by name."""
        found = self.buffer(name)
        if found is None and name and self.fold(name) == self.fold(SEARCH_BUFFER):
            found = self.search_buffer
        return found

    def switch(self, target: Buffer | str | int, now: float | None = None) -> bool:
        """Make a buffer current: a Buffer, a name, or a 0-based index. With the clock
        ``now``, a channel's history put off (many joined at once) is asked for."""
        if isinstance(target, int):
            if not 0 <= target < len(self.buffers):
                return False
            buf = self.buffers[target]
        elif isinstance(target, str):
            found = self.find_buffer(target)
            if found is None:
                return False
            buf = found
        else:
            buf = target
            if buf not in self.buffers:
                return False
        left = self.current
        if left is not buf:  # what was read there ends here: the UI marks what comes after
            left.read_marker = left.lines[-1] if left.lines else None
            left.version += 1
        self.current = buf
        if buf.unread or buf.highlights or buf.activity:
            buf.unread = buf.highlights = 0
            buf.activity = False
            buf.version += 1
            self.emit(BufferChanged(buf))
        self.emit(CurrentChanged(buf))
        if left is not buf and left in self.buffers:  # read while it was in view
            self._mark_read(left)
        self._mark_read(buf)
        if now is not None:
            self._history.shown(buf, now)
        return True

    def hidden(self, buf: Buffer, line: Line) -> bool:
        """Whether ``line`` of ``buf`` is left out of view (a join, part, quit or nick
        change the filter hides, client/smartfilter.py); it stays in the buffer."""
        return self.event_filter.hides(buf, line)

    def set_filter(self, mode: Events | None, now: float) -> None:
        """``/filter``: show joins, parts, quits and nick changes by ``mode`` (None: the
        next mode, all -> smart -> none -> all) for the rest of this session."""
        if mode is None:
            modes = list(Events)
            mode = modes[(modes.index(self.event_filter.mode) + 1) % len(modes)]
        self.event_filter.mode = mode
        for buf in self.buffers:
            buf.events_hidden = mode is not Events.ALL  # (what a full scrollback drops first)
            buf.version += 1  # drawn anew
        self.info(self.event_filter.describe(), now)
        self.emit(BufferChanged(self.current))

    def switch_relative(self, step: int, now: float | None = None) -> None:
        """Ctrl+N / Ctrl+P: the next or previous buffer, wrapping around."""
        i = self.buffers.index(self.current)
        self.switch((i + step) % len(self.buffers), now)

    def next_active(self) -> Buffer | None:
        """Alt+A (as irssi): the buffer to go to next, one with highlights first, then
        unread messages, then other activity; the first after the current one in the
        list among equals. None when no other buffer has any."""
        start = self.buffers.index(self.current)
        best: Buffer | None = None
        best_level = 0
        for i in range(1, len(self.buffers)):
            buf = self.buffers[(start + i) % len(self.buffers)]
            level = 3 if buf.highlights else 2 if buf.unread else 1 if buf.activity else 0
            if level > best_level:
                best, best_level = buf, level
        return best

    def member_ranks(self) -> str:
        """Prefix symbols, highest rank first: pass to Buffer.sorted_members()."""
        return self.prefix_symbols

    def input(self, text: str, now: float, recall: str = "") -> bool:
        """A line typed by the user: a /command or text for the current buffer. False
        when it was neither run nor sent (an unknown command, a paste starting with
        ``/``; an error line says why, ending with ``recall``, how the user gets it
        back to correct it, e.g. "Up brings it back"), see
        :func:`client.commands.run_input`."""
        from .commands import run_input

        start = len(self._out)
        self._recall = recall
        try:
            return run_input(self, text, now)
        except Exception as exc:  # a command bug must not kill the UI
            self.error(f"Command failed: {exc!r}", now)
            return True
        finally:
            self._recall = ""
            if len(self._out) > start:
                self._typed_out.append((start, len(self._out)))

    def complete(self, text: str, cursor: int | None = None) -> Completion:
        """Tab completion of the word before ``cursor``: commands, channels or nicks."""
        from .commands import complete

        return complete(self, text, len(text) if cursor is None else cursor)

    def request_older(self, buffer: Buffer, now: float) -> bool:
        """PageUp at the top: ask for history before the oldest line. False if not possible."""
        return self._history.request_older(buffer, now)

    def follow(self, buffer: Buffer) -> None:
        """The view of ``buffer`` follows new lines again (at the bottom): a scrollback
        PageUp grew goes back to its size (:meth:`Buffer.shrink`)."""
        buffer.shrink()

    def close_buffer(self, buffer: Buffer, now: float, reason: str = "") -> bool:
        """Close a channel or query (parting a joined channel). The server buffer stays."""
        if buffer.kind is BufferKind.SERVER or buffer not in self.buffers:
            return False
        if buffer.kind is BufferKind.CHANNEL and buffer.joined and self.registered:
            self.send("PART", buffer.name, *([reason] if reason else []))
        elif buffer.kind is BufferKind.CHANNEL and not self.registered:
            self.forget_join(buffer.name, now)  # (closed: not rejoined either)
        i = self.buffers.index(buffer)
        self.buffers.remove(buffer)
        self.netsplits.forget(buffer)
        key = self.fold(buffer.name)
        if self._by_key.get(key) is buffer:  # (the search buffer is not there)
            self._by_key.pop(key)
            self._history.buffer_closed(buffer)
        self.emit(BufferClosed(buffer))
        if self.current is buffer:
            self.switch(max(0, i - 1), now)
        dropped = self.outbox.closed(buffer)
        if dropped:
            text = f"Closed {buffer.name}: {dropped} unsent message{'' if dropped == 1 else 's'}"
            self.info(text + " dropped", now)
        return True

    def clear(self, buffer: Buffer) -> None:
        buffer.clear()
        self._history.cleared(buffer)
        self.emit(BufferCleared(buffer))

    def info(
        self, text: str, now: float, buffer: Buffer | None = None, *, count: bool = True
    ) -> None:
        """Add a local info line (to the current buffer by default); ``count`` False:
        no news, the buffer does not look active for it."""
        self._add(buffer or self.current, self._local(Kind.INFO, text, now), count=count)

    def error(
        self, text: str, now: float, buffer: Buffer | None = None, *, count: bool = True
    ) -> None:
        """Add a local error line (to the current buffer by default); ``count`` as
        :meth:`info`'s."""
        self._add(buffer or self.current, self._local(Kind.ERROR, text, now), count=count)

    def refuse(self, text: str, now: float) -> None:
        """The input being run is neither run nor sent: an error line says why (and
        how to get it back, when the caller of :meth:`input` said)."""
        self.error(f"{text}; {self._recall}" if self._recall else text, now)
        self.input_refused = True

    def send(self, command: str, *params: str, tags: dict[str, str] | None = None) -> None:
        """Queue a line to the server (CR, LF and NUL are removed from parameters)."""
        self._send(command, *params, tags=tags)

    def send_raw(self, line: str) -> None:
        self._out.append(line.replace("\r", "").replace("\n", "").replace("\0", ""))

    def open_query(
        self, nick: str, now: float, switch: bool = True, *, fetch: bool = True
    ) -> Buffer | None:
        """The query with ``nick``, opened if needed (asking for its history unless
        ``fetch`` is False); None when it cannot be (see :meth:`_ensure`)."""
        buf = self._ensure(nick, BufferKind.QUERY, now, fetch=fetch)
        if buf is not None and switch:
            self.switch(buf, now)
        return buf

    def say(self, target: str, text: str, now: float, *, action: bool = False) -> None:
        """Send PRIVMSG (split to fit a line); shown now unless echo-message will show it."""
        self._say("PRIVMSG", target, text, now, action=action)

    def notice(self, target: str, text: str, now: float) -> None:
        self._say("NOTICE", target, text, now)

    def join(
        self, channels: Iterable[str], keys: Iterable[str] = (), *, switch: bool = True
    ) -> None:
        names = [c for c in channels if c]
        key_list = list(keys)
        for i, name in enumerate(names):
            buf = self.buffer(name)
            if buf is not None and i < len(key_list):
                buf.key = key_list[i]
            if switch:
                self._switch_on_join.add(self.fold(name))
        self._send_joins(names, key_list)

    def join_later(self, channels: list[str], keys: list[str], now: float) -> None:
        """``/join`` while not registered: joined (and switched to) at the next
        registration, as the configured channels are."""
        known = {self.fold(c) for c in self._autojoin}
        for i, name in enumerate(channels):
            key = self.fold(name)
            if i < len(keys) and keys[i]:
                self._join_keys[key] = keys[i]
            buf = self.buffer(name)
            if buf is not None and buf.kind is BufferKind.CHANNEL:
                buf.rejoin = True  # (rejoined with its key)
                if key in self._join_keys:
                    buf.key = self._join_keys[key]
            elif key not in known:
                self._autojoin.append(name)
                known.add(key)
            self._switch_on_join.add(key)
        self.info(f"Not connected: will join {', '.join(channels)} when connected", now)

    def forget_join(self, name: str, now: float) -> bool:
        """``/part`` (or ``/close``) while not registered: ``name`` is not joined at the
        next registration after all (a ``/join`` typed meanwhile, a configured channel,
        a channel to rejoin). False when it was not to be joined."""
        key = self.fold(name)
        buf = self.buffer(name)
        rejoin = buf is not None and buf.kind is BufferKind.CHANNEL and buf.rejoin
        listed = any(self.fold(c) == key for c in self._autojoin)
        if not rejoin and not listed:
            return False
        if buf is not None and rejoin:
            buf.rejoin = False
            self.emit(BufferChanged(buf))
        self._autojoin_answered(name)
        self._join_keys.pop(key, None)
        self._switch_on_join.discard(key)
        self.info(f"Not connected: will no longer join {name}", now)
        return True

    def set_away(self, message: str, now: float) -> None:
        """/away: away with ``message`` ("": back), kept for later connections too.
        While not registered it is only kept (and said so)."""
        self.away_message = message or None
        if self.registered:
            self._send("AWAY", *([message] if message else []))
        elif message:
            self.info(f"You will be marked away when connected: {message}", now)
        else:
            self.info("You will not be marked away when connected", now)

    def stopped(self, now: float) -> None:
        """The driver will not connect again (reconnecting is off, or it was closed):
        what waits in the outbox cannot go out, and nothing typed will wait."""
        self._show_folds(self.netsplits.take())
        if not self._quitting:
            self._quitting = True
            self.outbox.quit(now, "no more connections")

    def quit(self, message: str, now: float) -> None:
        self._quitting = True
        self.outbox.quit(now)
        if self.state in (State.REGISTERING, State.CONNECTED):
            self._send("QUIT", message or "Leaving")
        self.emit(QuitRequested(message))

    def reconnect(self, now: float) -> None:
        """``/reconnect``: end this connection (a QUIT, as irssi's) and connect again at
        once; what was typed meanwhile waits in the outbox as after any loss."""
        if self._reconnect_asked:  # typed twice: one reconnect, said once
            return
        self._reconnect_asked = True
        if self.state in (State.REGISTERING, State.CONNECTED):
            self._send("QUIT", "Reconnecting")
            self._user_reconnect = True  # the coming disconnect is asked for: no error
        self.info("Reconnecting…", now)
        self.emit(ReconnectRequested())

    def whois(self, nick: str) -> None:
        """/whois: the reply goes where the user is, the away line (301) included."""
        self._send("WHOIS", nick)
        self._whois_started(nick)

    def _whois_started(self, nick: str) -> None:
        key = self.fold(nick)
        if key not in self._whois:
            self._whois.append(key)

    def invite(self, nick: str, channel: str) -> None:
        """``/invite``: its confirmation (341, seconds later on a penalising server)
        shows in the buffer it was typed in, wherever the user is by then."""
        while len(self._invites_typed) >= 32:
            del self._invites_typed[next(iter(self._invites_typed))]
        self._invites_typed[(self.fold(nick), self.fold(channel))] = self.current
        self._send("INVITE", nick, channel)

    def show_names(self, channel: str) -> None:
        """Show the next NAMES reply for ``channel`` as a line (for /names)."""
        if len(self._names_shown) < 32:
            self._names_shown.add(self.fold(channel))

    def show_topic(self, channel: str) -> None:
        """Say so when the next TOPIC reply for ``channel`` is 331 (for /topic): the
        user asked, and the topic bar alone does not answer."""
        if len(self._topic_shown) < 32:
            self._topic_shown.add(self.fold(channel))

    @property
    def monitor_supported(self) -> bool:
        return "MONITOR" in self.isupport

    @property
    def callerid_mode(self) -> str | None:
        """Caller ID's user mode letter (ISUPPORT ``CALLERID``; ``g`` when it names none),
        None when the server has no caller ID."""
        value = self.isupport.get("CALLERID")
        if value is None:
            return None
        return value if len(value) == 1 and value.isalpha() else "g"

    def accept(self, entries: list[str]) -> None:
        """Caller ID: ``ACCEPT nick,-nick,...`` (in as many lines as it takes), then
        ``ACCEPT *``. A change the server makes is not confirmed, so the list it then
        holds is shown (after the refusals, 457/458/456, if any)."""
        line: list[str] = []
        size = 0
        for entry in entries:
            if line and size + len(entry.encode()) + 1 > ACCEPT_CHUNK:
                self._send("ACCEPT", ",".join(line))
                line, size = [], 0
            line.append(entry)
            size += len(entry.encode()) + 1
        if line:
            self._send("ACCEPT", ",".join(line))
        self._send("ACCEPT", "*")

    def watch(self, nicks: list[str], now: float) -> None:
        """Add nicks to the notify list and, when connected, ask the server about them."""
        added = [nick for nick in nicks if self.notify.add(nick)]
        known = [nick for nick in nicks if nick not in added]
        if known:
            self.info(f"Already on the notify list: {', '.join(known)}", now)
        if not added:
            return
        self.info(f"Watching {', '.join(added)}", now)
        if self.registered:
            self._watch(added)

    def unwatch(self, nicks: list[str], now: float) -> None:
        removed: list[str] = []
        missing: list[str] = []
        for nick in nicks:
            watched = self.notify.remove(nick)  # under the casemapping: BOB removes bob
            if watched is None:
                missing.append(nick)
            else:
                removed.append(watched.nick)
        if missing:
            self.info(f"Not on the notify list: {', '.join(missing)}", now)
        if not removed:
            return
        self.info(f"No longer watching {', '.join(removed)}", now)
        if self.registered and self.monitor_supported:
            target = self._regain.target
            if target is not None and any(self.fold(n) == self.fold(target) for n in removed):
                # Getting our nick back still watches it: its MONITOR entry stays, and
                # goes when that ends (_stop_regain), as one regain added itself would.
                self._regain.monitored = True
                removed = [n for n in removed if self.fold(n) != self.fold(target)]
            for part in chunks(removed):
                self._send("MONITOR", "-", ",".join(part))

    def ignore(self, masks: list[str], now: float) -> None:
        for mask in masks:
            full = self.ignores.add(mask)
            self.info(f"Ignoring {full}" if full else f"Already ignored: {mask}", now)

    def unignore(self, masks: list[str], now: float) -> None:
        for mask in masks:
            full = self.ignores.remove(mask)
            self.info(f"No longer ignoring {full}" if full else f"Not ignored: {mask}", now)

    def show_ignores(self, now: float) -> None:
        masks = self.ignores.masks()
        text = f"Ignoring: {', '.join(masks)}" if masks else "Nobody is ignored (/ignore NICK)"
        self.info(text, now)

    def show_notify(self, now: float) -> None:
        if not self.notify:
            self.info("The notify list is empty (/notify add NICK)", now)
            return
        state = {True: "online", False: "offline", None: "unknown"}
        entries = [
            f"{w.nick} ({state[w.online]}" + (f", away: {w.away})" if w.away else ")")
            for w in self.notify.watched.values()
        ]
        self.info(f"Notify list: {', '.join(entries)}", now)

    def local_time(self, now: float) -> float:
        """``now`` corrected to the server's clock (from server-time tags)."""
        return now + self._offset

    # ------------------------------------------------------------------ internals: output

    def _send(self, command: str, *params: str, tags: dict[str, str] | None = None) -> None:
        clean = [_strip_crlf(p) for p in params]
        for p in clean[:-1]:
            if not p or " " in p or p.startswith(":"):
                raise ValueError(f"bad parameter for {command}: {p!r}")
        self._out.append(Message(command, clean, tags=tags or {}).to_line())

    def emit(self, event: Event) -> None:
        """Queue a UI event (see :meth:`take_events`)."""
        self._events.append(event)

    def _status(self) -> None:
        self.emit(StatusChanged())

    def _say(
        self, command: str, target: str, text: str, now: float, *, action: bool = False
    ) -> None:
        pieces = self.pieces(command, target, text, action)
        if not pieces:
            return
        if command == "PRIVMSG" and not action and is_nickserv(target):
            for line in multiline.LINE_BREAK.split(text):  # IDENTIFY [account] password
                login = nickserv_login(line)
                if login is not None:
                    self._sasl.attempt(*login, now)
                change = nickserv_password_change(line)
                if change is not None:
                    self._sasl.change_sent(change, now)
        sent_to = self.buffer(target)
        if sent_to is not None:
            sent_to.typing_sent = 0.0  # the message ends our typing there
        bare = target.lstrip(self.prefix_symbols)
        if self.is_channel(bare):
            buf = self.buffer(bare)
            if buf is None:
                self._say_elsewhere(command, target, pieces, now, action=action)
                return
        else:
            buf = self._ensure(target, BufferKind.QUERY, now)
        # Through the outbox even without echo-message: pending until written (flood
        # control may hold it back), then shown as sent until a PONG vouches for it.
        if buf is not None:
            if not self.outbox.add(buf, command, target, pieces, now, action=action):
                self.refuse(self.outbox.refusal(text, pieces), now)
            return
        for piece in pieces:  # (no buffer to show it in: none could be opened)
            self.write_message(command, target, piece.text, lines=piece.lines, action=action)

    def _say_elsewhere(
        self, command: str, target: str, pieces: list[Piece], now: float, *, action: bool
    ) -> None:
        """A message to a channel we have no buffer for (``/msg #c`` while not in it):
        written at once and shown where the user is, marked as irssi's ``[msg(#c)]``;
        with echo-message, when it comes back (:meth:`_message`)."""
        kind = Kind.ACTION if action else Kind.NOTICE if command == "NOTICE" else Kind.MESSAGE
        for piece in pieces:
            self.write_message(command, target, piece.text, lines=piece.lines, action=action)
            if not self.echo:
                shown, spans = display_lines(piece.shown)
                line = Line(self.local_time(now), kind, plain(self.nick), shown, spans,
                            own=True, where=_elsewhere(command, target))  # fmt: skip
                self._add(self.current, line)

    def pieces(self, command: str, target: str, text: str, action: bool) -> list[Piece]:
        """The messages ``text`` makes: pieces that fit a line each; with line breaks (a
        PRIVMSG), one draft/multiline message when the server takes them (several past
        its limits), else a message per line. Actions and notices stay one line. Typed
        before the server said whether it takes them: one message, planned when the
        outbox writes it (``Piece.later``)."""
        budget = self._text_budget(command, target, action)
        if action or command != "PRIVMSG" or not multiline.LINE_BREAK.search(text):
            chunks = split_text(text, budget)[:MAX_INPUT_LINES]
            masked = text if action else mask_message(target, text)
            return [Piece(chunk, chunk if masked == text else masked) for chunk in chunks]
        lines = multiline.LINE_BREAK.split(text)
        limits = self.multiline_limits
        # (A password to NickServ: each line is shown masked on its own.)
        secret = any(mask_message(target, line) != line for line in lines)
        if limits is None or secret or not self.registered:
            each = [p for line in lines if line for p in self.pieces(command, target, line, False)]
            kept = [line for line in lines if line.strip()]
            # (Not registered: the caps, and limits, are the last connection's or none.)
            if secret or self.registered or len(kept) < 2:
                return each
            start, end = lines.index(kept[0]), len(lines) - lines[::-1].index(kept[-1])
            whole = "\n".join(lines[start:end])  # (the blank lines between kept)
            return [Piece(whole, whole, later=len(each))]
        pieces = []
        for group in multiline.plan(text, budget, limits):
            combined = multiline.combine(group)
            pieces.append(Piece(combined, combined, tuple(group) if len(group) > 1 else None))
        return pieces

    def _text_budget(self, command: str, target: str, action: bool) -> int:
        """Bytes of text one line to ``target`` can carry, as others will get it (with
        our nick!user@host in front)."""
        overhead = len(f":{self.nick}!~{self._user_part()} {command} {target} :".encode())
        if self._mask_len:
            overhead = len(f": {command} {target} :".encode()) + self._mask_len
        if action:
            overhead += len("\x01ACTION \x01")
        return max(32, LINE_LIMIT - overhead)

    def write_message(
        self,
        command: str,
        target: str,
        text: str,
        *,
        lines: tuple[WireLine, ...] | None = None,
        action: bool = False,
        tags: dict[str, str] | None = None,
    ) -> None:
        """Write one message: a PRIVMSG or NOTICE, or with ``lines`` a draft/multiline
        batch of them (``tags``, a label, go on its BATCH line)."""
        if lines is None:
            self._send(command, target, f"\x01ACTION {text}\x01" if action else text, tags=tags)
            return
        self._batch_seq += 1
        ref = f"ml{self._batch_seq}"
        self._send("BATCH", "+" + ref, multiline.BATCH_TYPE, target, tags=tags)
        for line, concat in lines:
            line_tags = {"batch": ref, multiline.CONCAT: ""} if concat else {"batch": ref}
            self._send("PRIVMSG", target, line, tags=line_tags)
        self._send("BATCH", "-" + ref)

    def _user_name(self) -> str:
        """The user name for USER: the configured one when it can be sent."""
        user = self.config.user
        return user if user and user_problem(user) is None else default_user(self.config.nick)

    def _user_part(self) -> str:
        return self._user_name()[:10] + "@" + "x" * HOST_ESTIMATE

    def _send_joins(self, names: list[str], keys: list[str]) -> None:
        """JOIN in as few lines as fit (keyed channels first, as the syntax needs)."""
        keyed = [(n, k) for n, k in zip(names, keys, strict=False) if k]
        plain_names = [n for n in names if n not in {n2 for n2, _ in keyed}]
        batch: list[tuple[str, str]] = []
        size = 0
        for name, key in [*keyed, *((n, "") for n in plain_names)]:
            if batch and size + len(name) + len(key) + 2 > 400:
                self._flush_join(batch)
                batch, size = [], 0
            batch.append((name, key))
            size += len(name) + len(key) + 2
        if batch:
            self._flush_join(batch)

    def _flush_join(self, batch: list[tuple[str, str]]) -> None:
        chans = ",".join(n for n, _ in batch)
        keys = [k for _, k in batch if k]
        if keys:
            self._send("JOIN", chans, ",".join(keys))
        else:
            self._send("JOIN", chans)

    # ------------------------------------------------------------------ internals: buffers

    def _new_buffer(self, kind: BufferKind, name: str, key: str) -> Buffer:
        buf = Buffer(kind, name, scrollback=self.config.scrollback, fold=self.fold,
                     events_hidden=self.event_filter.mode is not Events.ALL)  # fmt: skip
        self.buffers.append(buf)
        self._by_key[key] = buf
        self.emit(BufferOpened(buf))
        return buf

    def _ensure(
        self, name: str, kind: BufferKind, now: float, *, fetch: bool = True
    ) -> Buffer | None:
        """The buffer for ``name``, created if needed; None when the name is unsafe or
        the buffer limit is reached (the caller then uses the server buffer).

        A new query asks for the recent conversation (CHATHISTORY LATEST) when the server
        can have it, unless ``fetch`` is False; what is shown live meanwhile is merged
        with it by msgid."""
        key = self.fold(name)
        buf = self._by_key.get(key)
        if buf is not None and key:
            return buf
        if not _safe_name(name) or len(self.buffers) >= self.config.max_buffers:
            return None
        buf = self._new_buffer(kind, name, key)
        if kind is BufferKind.QUERY and fetch and self.registered:
            self._history.for_query(buf, now)
        if kind is BufferKind.QUERY:
            self._ask_marker(buf)  # a channel's comes with the JOIN
        return buf

    def _add(self, buf: Buffer, line: Line, *, count: bool = True) -> bool:
        if self.netsplits.waiting(buf):  # a fold of earlier quits or joins goes first
            self._show_folds(self.netsplits.take(buf))
        if not buf.append(line):
            return False
        if (
            buf is not self.current
            and count
            and not line.own
            and not self.hidden(buf, line)
            and not self._reconnect_chatter(buf, line)
        ):
            if line.kind in MESSAGE_KINDS:
                buf.unread += 1
            if line.highlight:
                buf.highlights += 1
            if not buf.activity or line.kind in MESSAGE_KINDS or line.highlight:
                buf.activity = True
                self.emit(BufferChanged(buf))
        self.emit(LineAdded(buf, line))
        return True

    def _reconnect_chatter(self, buf: Buffer, line: Line) -> bool:
        """``line`` is the server buffer's part of a reconnect: from the loss of a
        connection we were in to the next one's end of MOTD (the Disconnected and
        Connecting lines, the welcome, ISUPPORT, LUSERS, the MOTD, server notices), the
        same at every reconnect, and the status line shows the state. An error still
        counts (a ban, a failed login), as at any time."""
        return (
            buf is self.server
            and line.kind is not Kind.ERROR
            and self.registrations > 0
            and (self.state is not State.CONNECTED or not self._motd_done)
        )

    def _local(self, kind: Kind, text: str, now: float, nick: str = "") -> Line:
        shown, spans = display(text)
        return Line(self.local_time(now), kind, plain(nick), shown, spans)

    def _line(
        self,
        msg: Message,
        now: float,
        kind: Kind,
        text: str,
        *,
        nick: str = "",
        buf: Buffer | None = None,
        mention: bool = False,
        history: bool = False,
        own: bool | None = None,
    ) -> Line:
        when = self._msg_time(msg, now, history)
        # Line feeds are kept only in a message assembled from a multiline batch.
        multi = isinstance(msg, MultilineMessage)
        shown, spans = display_lines(text) if multi else display(text)
        if own is None:
            own = bool(nick) and self.fold(nick) == self.fold(self.nick)
        prefix = ""
        # (A history line's sender may have had another rank then, or none: today's
        # would be a guess.)
        if buf is not None and buf.is_channel and nick and not history:
            member = buf.members.get(self.fold(nick))
            if member is not None:
                prefix = member.prefix
        highlight = False
        if mention and not own:
            highlight = (buf is not None and buf.kind is BufferKind.QUERY) or self._mentions(shown)
        msgid = _msgid(msg)
        return Line(when, kind, plain(nick), shown, spans, msgid, prefix, own, highlight, history)

    def _msg_time(self, msg: Message, now: float, history: bool = False) -> float:
        """The line's server time; live lines keep the clock offset up to date. A time
        more than MAX_CLOCK_SKEW from the local clock (the future, or for a live line
        the past too: history may be old) is not believed: the line is dated now, and
        the offset, the buffer's newest time and the chat log never see it."""
        stamp = msg.tags.get("time")
        if stamp:
            try:
                when = parse_time(stamp)
            except (ValueError, OverflowError, OSError):
                return self.local_time(now)
            if when - now > MAX_CLOCK_SKEW or (not history and now - when > MAX_CLOCK_SKEW):
                return self.local_time(now)
            if not history:
                self._offset = when - now
            return when
        return self.local_time(now)

    def _mentions(self, text: str) -> bool:
        return self._highlight is not None and self._highlight.search(self.fold(text)) is not None

    def _rebuild_highlight(self) -> None:
        words = [self.nick, *self.config.highlight_words]
        alts = "|".join(re.escape(self.fold(w)) for w in words if w)
        if not alts:
            self._highlight = None
            return
        edge = r"[\w\[\]\\`^{|}\-]"
        self._highlight = re.compile(rf"(?<!{edge})(?:{alts})(?!{edge})")

    def _target_buffer(self, name: str) -> Buffer:
        """The buffer a numeric about ``name`` belongs in: that buffer, else the current one."""
        return self.buffer(name) or self.current

    # ------------------------------------------------------------------ internals: dispatch

    def _dispatch(self, msg: Message, now: float) -> None:
        ref = msg.tags.get("batch")
        batch = self._batches.get(ref) if ref is not None else None
        if (
            batch is not None
            and (batch.type in HISTORY_BATCHES or batch.type == SEARCH_BATCH)
            and msg.command != "BATCH"
        ):
            self._keep(batch, msg, now)
            return
        if batch is not None and batch.type == multiline.BATCH_TYPE and msg.command != "BATCH":
            if len(batch.lines) < multiline.MAX_LINES:  # shown when the batch ends
                batch.lines.append((msg, now))
            return
        label = msg.tags.get("label")
        # What answers one of our messages (labeled-response) says so: the line itself,
        # or the labelled batch it is in.
        self._label = label if label is not None else batch.label if batch else None
        try:
            handler = _HANDLERS.get(msg.command)
            if handler is not None:
                handler(self, msg, now)
            elif is_digits(msg.command) and len(msg.command) == 3:
                self._numeric(msg, now)
        finally:
            self._label = None
        if label is not None and msg.command != "BATCH":
            self.outbox.answered(label)
            self._history.answered(label, now)

    def _keep(self, batch: _Batch, msg: Message, now: float) -> None:
        """A message of a history or search batch, kept until it ends (a hostile
        server's endless batch: no more than a buffer can show). Past that, a history
        batch keeps its newest, nearest to what is shown (the join, the bottom of the
        gap, the top of the pane); search results their first."""
        if len(batch.lines) < max(self.config.scrollback, 1000):
            batch.lines.append((msg, now))
        elif batch.type in HISTORY_BATCHES:
            del batch.lines[0]  # (a list of a buffer's lines: a short move)
            batch.lines.append((msg, now))

    def _ignored(self, msg: Message) -> bool:
        """From an ignored sender (never ourselves: our own echoes always show)."""
        return bool(self.ignores) and (
            self.ignores.matches(msg.source) and not self.is_me(self._source_nick(msg))
        )

    def _source_nick(self, msg: Message) -> str:
        return (msg.source or "").split("!", 1)[0]

    def is_me(self, nick: str) -> bool:
        return bool(nick) and self.fold(nick) == self.fold(self.nick)

    def was_me(self, msg: Message) -> bool:
        """Whether ``msg`` came from us, on this connection or an earlier one of this run:
        a nick we had in a channel, with the user@host and account we had it with where
        both sides know them (someone who took the nick meanwhile is not us). Not by
        account alone: the account's other sessions are not this one."""
        nick, _, rest = (msg.source or "").partition("!")
        if not nick:
            return False
        key, userhost = self.fold(nick), _userhost(rest).lower()
        account = self.fold(msg.tags.get("account") or "")
        return any(
            k == key and (not h or not userhost or h == userhost)
            and (not a or not account or a == account)
            for k, h, a in self._selves
        )  # fmt: skip

    def _note_self(self, nick: str, msg: Message) -> None:
        """We are ``nick`` in a channel, from ``msg``'s user@host (our JOIN, our NICK)."""
        me = (self.fold(nick), _source_userhost(msg).lower(), self.fold(self.account or ""))
        if me in self._selves:
            self._selves.remove(me)
        self._selves.append(me)

    def _from_server(self, msg: Message) -> bool:
        src = msg.source
        if src is None or src == self.server_name:
            return True
        return "!" not in src and "@" not in src and "." in src

    # --- connection-level

    def _on_ping(self, msg: Message, now: float) -> None:
        self._send("PONG", msg.params[0] if msg.params else "")
        if self.registered and not self._motd_done:
            self._after_registration(now)  # a server that sent no end of MOTD

    def _on_pong(self, msg: Message, now: float) -> None:
        token = msg.params[-1] if msg.params else ""
        ping = self._pings.pop(token, None)
        if ping is None:
            return
        sent, written = ping
        self.outbox.acknowledged(written)
        self.waiting_reply = None
        # Older unanswered pings are superseded by this answer.
        for old in [t for t, (at, _) in self._pings.items() if at <= sent]:
            del self._pings[old]
        if not self._pings and self.registered:  # (registering: see tick)
            self._stall_check = None
        self.lag = max(0.0, now - sent)
        self._status()

    def _on_error(self, msg: Message, now: float) -> None:
        """The server's last word before it closes the connection. Once we were in, the
        Disconnected line where the user talks gives its words (connection_lost): its
        line here is then no news, a restart's "Server shutting down" say."""
        text = msg.params[-1] if msg.params else "connection closed"
        kind = Kind.INFO if self._quitting or self._user_reconnect else Kind.ERROR
        inside = self.state is State.CONNECTED
        if inside:
            self._closed_why = plain(text)
        elif self.state is State.REGISTERING and kind is Kind.ERROR and not self._upgrading:
            self.refusal = plain(text)
        self._add(self.server, self._local(kind, f"Server: {text}", now), count=not inside)

    # --- CAP

    def _on_cap(self, msg: Message, now: float) -> None:
        if len(msg.params) < 2:
            return
        sub = msg.params[1].upper()
        args = msg.params[2:]
        if sub == "LS":
            more = len(args) >= 2 and args[0] == "*"
            for token in (args[-1] if args else "").split()[:MAX_CAPS]:
                name, _, value = token.partition("=")
                if len(self._cap_ls) < MAX_CAPS:
                    self._cap_ls[name] = value
            if not more:
                self.available_caps = dict(self._cap_ls)
                self._cap_ls = {}
                if not self._sts(now):
                    self._request_caps(self.available_caps, now)
        elif sub == "ACK":
            acked = (args[-1] if args else "").split()
            for token in acked:
                if token.startswith("-"):
                    self.caps.discard(token[1:])
                else:
                    self.caps.add(token)
            if not self._sasl.cap_acked(acked, now):
                self.end_cap()
            self._status()
        elif sub == "NAK":
            self._sasl.cap_refused(now)
            self.end_cap()
        elif sub == "NEW":
            offered: dict[str, str] = {}
            for token in (args[-1] if args else "").split()[:MAX_CAPS]:
                name, _, value = token.partition("=")
                offered[name] = value
                if len(self.available_caps) < MAX_CAPS:
                    self.available_caps[name] = value
            if "sts" in offered and self._sts(now):
                return
            self._request_caps(offered, now)
        elif sub == "DEL":
            for name in (args[-1] if args else "").split():
                self.caps.discard(name)
                self.available_caps.pop(name, None)
            self._status()

    def _sts(self, now: float) -> bool:
        """IRCv3 STS in CAP LS: True when this plaintext connection must move to TLS
        (registration stops here; the connection reconnects on ``StsUpgrade``)."""
        value = self.available_caps.get("sts")
        if value is None:
            return False
        params = parse_sts(value)
        if not self.secure:
            port = valid_port(params.get("port", ""))
            if port is None:
                return False
            text = f"The server asks for TLS (STS): reconnecting securely to port {port}"
            self._add(self.server, self._local(Kind.INFO, text, now))
            self._upgrading = True
            self.emit(StsUpgrade(port))
            return True
        duration = valid_duration(params.get("duration", ""))
        if duration is not None:
            self.emit(StsPolicy(duration))
        return False

    def _request_caps(self, offered: dict[str, str], now: float) -> None:
        wanted = [
            c for c in WANTED_CAPS
            if c in offered
            and c not in self.caps
            # Message ids are message tags: deleting messages needs them.
            and (c != REDACT_CAP or "message-tags" in self.available_caps)
            # TAGMSGs in history: only of use with history, and tags to read.
            and (c != EVENT_PLAYBACK_CAP or {"draft/chathistory", "message-tags"}
                 <= self.available_caps.keys())
            # The results come as a batch.
            and (c != SEARCH_CAP or "batch" in self.available_caps)
            # A batch of lines, some tagged draft/multiline-concat.
            and (c != multiline.CAP or {"batch", "message-tags"} <= self.available_caps.keys())
        ]  # fmt: skip
        if self._cap_negotiating and self._sasl.request(offered, now):
            wanted.append("sasl")  # only while registering: CAP END waits for the login
        if wanted:
            self._send("CAP", "REQ", " ".join(wanted))
        else:
            self.end_cap()

    def end_cap(self) -> None:
        """End CAP negotiation (once): the server completes registration. The SASL
        login holds it back until its exchange is over, then calls this."""
        if self._cap_negotiating:
            self._cap_negotiating = False
            if self.away_message and PRE_AWAY_CAP in self.caps:
                self._send("AWAY", self.away_message)  # away from the first moment
                self._away_sent = True
            self._send("CAP", "END")

    # --- accounts, and SASL at connect (client/sasl.py)

    def _on_authenticate(self, msg: Message, now: float) -> None:
        self._sasl.challenge(msg.params, now)

    def _rpl_loggedin(self, msg: Message, now: float) -> None:
        """900 ``<nick> <mask> <account> :You are now logged in as <account>``."""
        p = msg.params
        if len(p) >= 3:
            self.account = plain(p[2])[:MAX_NAME]
        text = p[3] if len(p) >= 4 else f"You are now logged in as {self.account}"
        buf = self.current if self.registered else self.server
        self._add(buf, self._line(msg, now, Kind.INFO, text))
        # A login with a password during the session (/register, NickServ IDENTIFY):
        # reconnects log in with it (SASL), as the server may keep the nick for it.
        learned = (self.registered and self.account is not None
                   and self._sasl.logged_in(self.account, now))  # fmt: skip
        account, self._registered_account = self._registered_account, None
        hints = []
        if learned and not self.sasl_configured:
            hints.append(f"Reconnects log in as {self.account} for the rest of this session")
        if account is not None and not self.sasl_configured:
            hints.append(
                f"to log in as {account} when connecting: --sasl-username {account} with "
                "CHAT_SASL_PASSWORD set, or sasl_username and sasl_password in the config"
            )
        if hints:
            hint = "; ".join(hints)
            self.info(hint[:1].upper() + hint[1:], now, buf)
        if self.registered and self.account and self._regain.is_target(self.account, self.fold):
            self._try_regain()  # the server may keep the account's name for it
        self._status()

    def _rpl_loggedout(self, msg: Message, now: float) -> None:
        self.account = None
        if self.registered:  # (/ns LOGOUT): a reconnect does not log in again by itself
            self._sasl.forget()
        buf = self.current if self.registered else self.server
        self._add(buf, self._line(msg, now, Kind.INFO, msg.params[-1] if msg.params else ""))
        self._status()

    def _sasl_reply(self, msg: Message, now: float) -> None:
        """903 success, 902/904/905/906 failures, 907 already, 908 the mechanisms."""
        shown = self._sasl.reply(msg.command, msg.params, now)
        if shown is not None:
            kind, text = shown
            buf = self.current if self.registered else self.server
            self._add(buf, self._line(msg, now, kind, text))

    def _on_account(self, msg: Message, now: float) -> None:
        """account-notify (never requested; a /quote CAP REQ may turn it on): only our
        own account is followed, as AWAY only updates state."""
        if msg.params and self.is_me(self._source_nick(msg)):
            name = msg.params[0]
            self.account = None if name == "*" else plain(name)[:MAX_NAME]
            self._status()

    def _on_register(self, msg: Message, now: float) -> None:
        """``REGISTER SUCCESS|VERIFICATION_REQUIRED <account> :message`` (the 900 follows
        a success)."""
        p = msg.params
        if len(p) < 2:
            return
        sub, account = p[0].upper(), p[1]
        message = p[2] if len(p) > 2 else ""
        if sub == "SUCCESS":
            self._add(self.current, self._line(
                msg, now, Kind.INFO, message or f"Account {account} registered"))
            self._registered_account = plain(account)[:MAX_NAME]  # the 900 that follows
        elif sub == "VERIFICATION_REQUIRED":
            text = f"Account {account} must be verified: {message}"
            self._add(self.current, self._line(msg, now, Kind.INFO, text))
        else:
            self._add(self.current, self._line(msg, now, Kind.INFO, " ".join(p)))

    # --- registration and ISUPPORT

    def _reset_isupport(self) -> None:
        self._set_casemapping("rfc1459")
        self.chantypes = "#&"
        self.prefix_modes, self.prefix_symbols = DEFAULT_PREFIX
        self.chanmodes = DEFAULT_CHANMODES
        self.chathistory_limit = 0
        self.nicklen = 0
        self.network = ""

    def _welcome(self, msg: Message, now: float) -> None:
        if msg.params and _safe_name(msg.params[0]):
            self.nick = msg.params[0]
        self.server_name = msg.source or ""
        self.state = State.CONNECTED
        if not self._pings:  # (registration's wait is over: PINGs set their own)
            self._stall_check = None
        self._cap_negotiating = False
        self._sasl.welcomed(now)
        self._rebuild_highlight()
        text = msg.params[-1] if len(msg.params) > 1 else "Welcome"
        mask = text.rsplit(" ", 1)[-1]
        if "!" in mask and "@" in mask:
            self._mask_len = len(mask.encode()) + 1
        self._add(self.server, self._line(msg, now, Kind.INFO, text))
        if self._nick_reserved and not self.is_me(self._wanted_nick):
            self._regain.start(self._wanted_nick, now, login_only=True)
            self._add(self.server, self._local(Kind.INFO, _reserved_text(self._wanted_nick), now))
        elif self._nick_taken and not self.is_me(self._wanted_nick):
            self._regain.start(self._wanted_nick, now)
            self._add(self.server, self._local(
                Kind.INFO,
                f"{self._wanted_nick} is in use: trying to get it back when it is free "
                "(/nick stops this)",
                now,
            ))
        wanted = self.fold(self._wanted_nick)
        if self.account and self.fold(self.account) == wanted != self.fold(self.nick):
            # Not done for the user: the holder may be its other, live session.
            self._add(self.server, self._local(
                Kind.INFO,
                f"{self._wanted_nick} is held by another connection; if it is a lost "
                "one of yours, /ns REGAIN takes it back",
                now,
            ))
        self._status()

    def _isupport(self, msg: Message) -> None:
        for token in msg.params[1:-1]:
            if len(self.isupport) >= MAX_ISUPPORT:
                break
            if token.startswith("-"):
                self.isupport.pop(token[1:], None)
                continue
            name, _, value = token.partition("=")
            self.isupport[name] = value
            if name == "PREFIX":
                m = re.fullmatch(r"\(([A-Za-z]*)\)(\S*)", value)
                if m and len(m.group(1)) == len(m.group(2)):
                    self.prefix_modes, self.prefix_symbols = m.group(1), m.group(2)
            elif name == "CHANTYPES":
                self.chantypes = value[:8]
            elif name == "CASEMAPPING":
                self._set_casemapping(value if is_casemapping(value) else "ascii")
            elif name == "CHANMODES":
                parts = [*value.split(","), "", "", ""][:4]
                self.chanmodes = (parts[0], parts[1], parts[2], parts[3])
            elif name == "CHATHISTORY":
                self.chathistory_limit = int(value) if is_digits(value) and len(value) < 7 else 0
            elif name == "NICKLEN":
                self.nicklen = int(value) if is_digits(value) and len(value) < 4 else 0
            elif name == "NETWORK":
                self.network = plain(value)[:64]
        self._status()

    def _set_casemapping(self, mapping: str) -> None:
        if not is_casemapping(mapping):
            mapping = "ascii"
        new: Casemapping = mapping  # type: ignore[assignment]
        if new == self.casemapping:
            return
        self.casemapping = new
        self._by_key = {
            ("" if b is self.server else self.fold(b.name)): b
            for b in self.buffers
            if b.kind is not BufferKind.SEARCH
        }
        for buf in self.buffers:
            buf.members = {self.fold(m.nick): m for m in buf.members.values()}
        self.notify.refold(self.fold)
        self.ignores.refold(self.fold)
        self._rebuild_highlight()

    def _after_registration(self, now: float) -> None:
        """End of MOTD: join the configured channels and rejoin after a reconnect."""
        if self._motd_done:
            return
        self._motd_done = True
        if self.away_message and not self._away_sent:
            self._send("AWAY", self.away_message)  # the new connection starts present
        self.registrations += 1
        names: list[str] = []
        keys: list[str] = []
        seen: set[str] = set()
        for buf in self.buffers:
            if buf.kind is BufferKind.CHANNEL and buf.rejoin:
                names.append(buf.name)
                keys.append(buf.key)
                seen.add(self.fold(buf.name))
        if self.config.user_modes:  # the server forgot them with the last connection
            self._send("MODE", self.nick, self.config.user_modes)
        # The configured channels: on the first registration, and on later ones those
        # no connection got an answer for yet (not the first connection's: it may have
        # ended before registering).
        wanted = [name for name in self._autojoin if self.fold(name) not in seen]
        first_wanted = self.config.channels[0] if self.config.channels else ""
        if (
            wanted
            and self.config.show_first_channel
            and self.current is self.server
            and self.fold(wanted[0]) == self.fold(first_wanted)
        ):
            self._switch_to_first = self.fold(wanted[0])
        for name in wanted:
            names.append(name)
            keys.append(self._join_keys.get(self.fold(name), ""))
            seen.add(self.fold(name))
        if names:
            self._send_joins(names, keys)
        if self.notify:
            self._watch(self.notify.nicks())
        target = self._regain.target
        if (
            target is not None
            and not self._regain.login_only  # (free, it is still reserved)
            and self.monitor_supported
            and target not in self.notify
        ):
            self._send("MONITOR", "+", target)  # 731 says when it is free
            self._regain.monitored = True
        for buf in self.buffers:
            if buf.kind is BufferKind.QUERY:  # the recent conversation, or what was missed
                self._history.for_query(buf, now)
                self._ask_marker(buf)
        self.outbox.registered(now)
        if self.registrations > 1:
            self._history.ask_targets(now)

    def _autojoin_answered(self, name: str) -> None:
        """Our JOIN for ``name`` came, or the server refused it: a configured channel is
        not joined again by later registrations (a rejoin follows the buffer)."""
        if self._autojoin:
            key = self.fold(name)
            self._autojoin = [c for c in self._autojoin if self.fold(c) != key]

    def _watch(self, nicks: list[str]) -> None:
        if self.monitor_supported:
            for part in chunks(nicks):
                self._send("MONITOR", "+", ",".join(part))
        else:
            self._poll(nicks)

    def _poll(self, nicks: list[str]) -> None:
        """ISON for servers without MONITOR; the replies come back in order."""
        for part in chunks(nicks):
            if len(self._ison_polls) >= 64:  # a server that never answers ISON
                return
            self._ison_polls.append(part)
            self._send("ISON", *part)

    def _announce(self, watched: Watched, now: float) -> None:
        """A watched nick came or went: say so where the user is, and in its query."""
        if watched.online:
            host = watched.mask.split("!", 1)[1] if "!" in watched.mask else ""
            text = "is online" + (f" ({host})" if host else "")
            line = self._local(Kind.JOIN, text, now, nick=watched.nick)
        else:
            line = self._local(Kind.QUIT, "is offline", now, nick=watched.nick)
        self._add(self.current, line)
        query = self.buffer(watched.nick)
        if query is not None and query is not self.current and not query.is_channel:
            self._add(query, line)

    def _rpl_mononline(self, msg: Message, now: float) -> None:
        for target in (msg.params[-1] if len(msg.params) > 1 else "").split(","):
            nick = target.split("!", 1)[0]
            watched = self.notify.seen(nick, True, target) if nick else None
            if watched is not None:
                self._announce(watched, now)

    def _rpl_monoffline(self, msg: Message, now: float) -> None:
        for nick in (msg.params[-1] if len(msg.params) > 1 else "").split(","):
            watched = self.notify.seen(nick, False) if nick else None
            if watched is not None:
                self._announce(watched, now)
            if (
                nick
                and self._regain.is_target(nick, self.fold)
                and not self._regain.asked
                and not self._regain.login_only
            ):
                self._try_regain()  # our nick is free

    # --- getting our nick back (client/regain.py)

    def _try_regain(self) -> None:
        if self._regain.target is not None and self.registered:
            self._regain.asked = True
            self._send("NICK", self._regain.target)

    def _stop_regain(self) -> None:
        target = self._regain.target
        self._unmonitor(target, self._regain.stop())

    def _unmonitor(self, target: str | None, monitored: bool) -> None:
        """MONITOR watched ``target`` for the regain, and needs to no more."""
        if monitored and target is not None and target not in self.notify and self.registered:
            self._send("MONITOR", "-", target)

    def change_nick(self, nick: str) -> None:
        """``/nick``: the user's choice; the fallback nick's own nick is not tried for
        any more."""
        self._stop_regain()
        self._nick_typed_in = self.current
        self._send("NICK", nick)

    def _err_monlistfull(self, msg: Message, now: float) -> None:
        p = msg.params
        limit, targets = (p[1], p[2]) if len(p) > 3 else ("?", p[-1] if p else "")
        text = f"The server watches at most {limit} nicks: not watching {targets}"
        self._add(self.current, self._local(Kind.ERROR, text.replace(",", ", "), now))

    def _rpl_ison(self, msg: Message, now: float) -> None:
        if not self._ison_polls:
            self._show_query(msg, now)  # the user's own /quote ISON
            return
        asked = self._ison_polls.popleft()
        online = (msg.params[-1] if len(msg.params) > 1 else "").split()
        for watched in self.notify.polled(asked, online):
            self._announce(watched, now)

    # --- caller ID (user mode +g and ACCEPT, as on solanum and charybdis)

    def _callerid_letter(self) -> str:
        return self.callerid_mode or "g"

    def _rpl_acceptlist(self, msg: Message, now: float) -> None:
        """281 ``<me> <nick> <nick>...``: part of our accept list (the 282 shows it)."""
        for param in msg.params[1:]:
            for nick in param.split():
                if len(self._accept_list) < MAX_ACCEPT_LIST:
                    self._accept_list.append(plain(nick)[:MAX_NAME])
                else:
                    self._accept_more += 1

    def _rpl_endofaccept(self, msg: Message, now: float) -> None:
        """282: the end of the accept list: one line, where the user is."""
        nicks, more = self._accept_list, self._accept_more
        self._accept_list, self._accept_more = [], 0
        text = f"Accepted: {', '.join(nicks)}" if nicks else "Your accept list is empty"
        if more:
            text += f" … and {more} more"
        self._add(self.current, self._line(msg, now, Kind.INFO, text))

    def _err_targumodeg(self, msg: Message, now: float) -> None:
        """716 ``<me> <target> :is in +g mode``: our PRIVMSG to ``target`` was dropped."""
        p = msg.params
        if len(p) < 3:
            self._numeric_error(msg, now)
            return
        text = (
            f"{plain(p[1])} has +{self._callerid_letter()} (server-side ignore):"
            " your message was not delivered"
        )
        self._add(self._target_buffer(p[1]), self._line(msg, now, Kind.ERROR, text))

    def _rpl_targnotify(self, msg: Message, now: float) -> None:
        """717 ``<me> <target> :has been informed``: follows a 716 when ``target`` was
        told of our message (at most once a minute)."""
        p = msg.params
        if len(p) < 3:
            self._numeric_error(msg, now)
            return
        text = f"{plain(p[1])} was told that you tried to message them"
        self._add(self._target_buffer(p[1]), self._line(msg, now, Kind.INFO, text))

    def _rpl_umodegmsg(self, msg: Message, now: float) -> None:
        """718 ``<me> <sender> <user@host> :is messaging you``: our +g dropped a private
        message. A highlight, as the message would have been (the server says so at
        most once a minute), where the user is and in the sender's query; nothing for
        an ignored sender."""
        p = msg.params
        if len(p) < 4:
            self._numeric_error(msg, now)
            return
        sender, userhost = p[1], p[2]
        if self.ignores.matches(f"{sender}!{userhost}"):
            return
        nick = plain(sender)[:MAX_NAME]
        text = (
            f"{nick} ({plain(userhost)[:MAX_NAME]}) is trying to message you, but you have"
            f" +{self._callerid_letter()}: /accept {nick} to let them"
        )
        line = replace(self._line(msg, now, Kind.INFO, text), highlight=True)
        self._add(self.current, line)
        query = self.buffer(sender)
        if query is not None and query is not self.current and query.kind is BufferKind.QUERY:
            self._add(query, line)

    def _err_accept(self, msg: Message, now: float) -> None:
        """456 (the accept list is full), 457 (already on it), 458 (not on it): replies
        to /accept, where the user is; 494 (a +g user's PRIVMSG could not put its target
        on the full list), where the message was."""
        p = msg.params
        words = p[1:]  # "<nick> :<text>", or only the text (456)
        text = " ".join([*map(plain, words[:-1]), *words[-1:]]) or msg.command
        if msg.command == N.ERR_ACCEPTFULL:
            limit = self.isupport.get("ACCEPT", "")
            if is_digits(limit) and len(limit) < 6:
                text += f" (at most {limit})"
            text += ": /accept -NICK makes room"
        buf = self.current
        if msg.command == N.ERR_OWNMODE and len(p) > 2:
            buf = self._target_buffer(p[1])
        self._add(buf, self._line(msg, now, Kind.ERROR, text))

    def _nick_in_use(self, msg: Message, now: float) -> None:
        p = msg.params
        about = p[1] if len(p) > 2 else ""
        if self.state is State.CONNECTED:
            if about and self._regain.asked and self._regain.is_target(about, self.fold):
                self._regain.asked = False
                if _reserved(msg):  # free, but kept for an account: no use waiting
                    self._unmonitor(about, self._regain.reserved())
                    self.info(_reserved_text(about), now, self.server)
                    return
                if msg.command != N.ERR_ERRONEUSNICKNAME:
                    if self._regain.exhausted and not self._regain.monitored:
                        self._stop_regain()
                        self.info(f"{about} is still in use: no more tries to get it "
                                  f"back (/nick {about} to try again)", now, self.server)
                    return  # a try of ours: said nothing when it was made either
                self._stop_regain()  # never ours to have
            self._numeric_error(msg, now)
            return
        if msg.command != N.ERR_ERRONEUSNICKNAME and about and self.fold(about) == self.fold(
            self._wanted_nick
        ):
            if _reserved(msg):
                self._nick_reserved = True  # for an account: to be got back by logging in
            else:
                self._nick_taken = True  # in use: to be got back once free
        self._nick_attempt += 1
        if self._nick_attempt > MAX_NICK_ATTEMPTS:
            self._add(self.server, self._local(Kind.ERROR, "No usable nick found", now))
            return
        suffix = "_" if self._nick_attempt == 1 else f"_{self._nick_attempt}"
        base = self._wanted_nick
        if msg.command != N.ERR_NICKNAMEINUSE:
            # Erroneous (or too long): keep the valid characters, 9 in all (RFC minimum).
            base = re.sub(r"[^A-Za-z0-9\[\]\\`_^{|}\-]", "", base)
            if not is_valid_nick(base):
                base = "guest"
            base = base[: max(1, 9 - len(suffix))]
        nick = base + suffix
        self.nick = nick
        text = msg.params[-1] if msg.params else "Nickname is already in use"
        self._add(
            self.server,
            self._local(Kind.INFO, f"{plain(text).rstrip(' .')}; trying {nick}", now),
        )
        self._send("NICK", nick)

    # --- numerics

    def _numeric(self, msg: Message, now: float) -> None:
        code = msg.command
        p = msg.params
        handler = _NUMERICS.get(code)
        if code in JOIN_ERRORS and len(p) > 2:
            self._autojoin_answered(p[1])
        if self.outbox.refused(code, p, self._label) and handler is None:
            return  # the message's line says why it was not sent
        if handler is not None:
            handler(self, msg, now)
            return
        if code >= "400" and code < "600":
            self._numeric_error(msg, now)
            return
        if code in QUERY_NUMERICS and self.registered:
            self._show_query(msg, now)
            return
        text = " ".join(p[1:]) if len(p) > 1 else (p[0] if p else "")
        if code in _COUNTS_IN_TEXT and len(p) > 1:
            text = p[-1]  # "1 1 :Current local users 1, max 1": the text says it
        self._add(self.server, self._line(msg, now, Kind.INFO, text))

    def _show_query(self, msg: Message, now: float) -> None:
        """A reply to a query the user made, in the current buffer."""
        after_whowas = self._last_query_numeric == N.RPL_WHOWASUSER
        self._last_query_numeric = msg.command
        p = msg.params
        if msg.command == N.RPL_WHOISUSER and len(p) > 1:
            self._whois_started(p[1])
        elif msg.command == N.RPL_ENDOFWHOIS and len(p) > 1:
            key = self.fold(p[1])
            while key in self._whois:
                self._whois.remove(key)
        text = query_text(msg.command, msg.params, after_whowas)
        buf = self.server if msg.command in LIST_NUMERICS else self.current
        self._add(buf, self._line(msg, now, Kind.INFO, text))

    def _numeric_error(self, msg: Message, now: float) -> None:
        p = msg.params
        subject = p[1] if len(p) > 2 else ""
        if len(p) > 3 and self.is_channel(p[2]) and not self.is_channel(subject):
            # "<nick> <#chan> :text" (441, 443...): about the channel, where the /kick or
            # /invite was typed, not the nick's query.
            subject = p[2]
        buf = self._target_buffer(subject) if subject else self.current
        if msg.command == N.ERR_NOSUCHNICK and subject and not self.is_channel(subject):
            buf = self._asked_about(subject) or buf
        if msg.command in NICK_ERRORS and not self.is_channel(subject):
            # About our own NICK, not a conversation with that nick: said where /nick
            # was typed, as irssi and WeeChat do, not in a query with that name.
            typed = self._nick_typed_in
            buf = next((b for b in self.buffers if b is typed), self.current)
        if msg.params[1:2] == ["SEARCH"] and self._searches:
            self._searches.popleft()  # answered (421, say): no batch comes
        if msg.params[1:2] == ["CHATHISTORY"] and msg.command == N.ERR_UNKNOWNCOMMAND:
            # The server does not really support it: stop asking.
            self.caps.discard("draft/chathistory")
            self._history.fail_all(now, f"{p[-1]} ({msg.command})")
            return
        text = ": ".join(x for x in (" ".join(p[1:-1]), p[-1] if len(p) > 1 else "") if x)
        if msg.command in NICK_ON_CHANNEL and len(p) > 3:  # in words, as irssi
            text = f"{p[1]} {NICK_ON_CHANNEL[msg.command]} {p[2]}"
        self._add(buf, self._line(msg, now, Kind.ERROR, text or msg.command))

    def _asked_about(self, nick: str) -> Buffer | None:
        """Where a /whois or /invite of ``nick`` still unanswered was typed: its 401
        is said there, with the rest of the answer, not in a query with that nick."""
        key = self.fold(nick)
        if key in self._whois:
            return self.current  # (as the WHOIS reply: _show_query)
        typed = next((k for k in self._invites_typed if k[0] == key), None)
        if typed is None:
            return None
        buf = self._invites_typed.pop(typed)
        return buf if buf in self.buffers else self.current

    def _err_listmode(self, msg: Message, now: float) -> None:
        """InspIRCd's 697/698: a mask already on (or not on) a list, in its channel."""
        p = msg.params
        text = list_mode_text(msg.command, p)
        if text is None:
            text = " ".join(p[1:]) or msg.command
        buf = self._target_buffer(p[1]) if len(p) > 1 else self.current
        self._add(buf, self._line(msg, now, Kind.ERROR, text))

    def _rpl_isupport(self, msg: Message, now: float) -> None:
        self._isupport(msg)
        self._add(self.server, self._line(msg, now, Kind.INFO, " ".join(msg.params[1:])))

    def _rpl_endofmotd(self, msg: Message, now: float) -> None:
        text = msg.params[-1] if len(msg.params) > 1 else ""
        self._add(self.server, self._line(msg, now, Kind.INFO, text))
        self._after_registration(now)

    def _rpl_topic(self, msg: Message, now: float) -> None:
        if len(msg.params) < 3:
            return
        self._topic_shown.discard(self.fold(msg.params[1]))
        buf = self.buffer(msg.params[1])
        if buf is None:
            self._add(self.current, self._line(msg, now, Kind.INFO, " ".join(msg.params[1:])))
            return
        buf.topic, buf.topic_spans = display(msg.params[2])
        buf.version += 1
        self.emit(BufferChanged(buf))
        text = f"Topic for {msg.params[1]}: {msg.params[2]}"
        self._add(buf, self._line(msg, now, Kind.INFO, text), count=False)

    def _rpl_notopic(self, msg: Message, now: float) -> None:
        name = msg.params[1] if len(msg.params) > 1 else ""
        buf = self.buffer(name)
        if buf is not None:
            buf.topic, buf.topic_spans, buf.topic_setter = "", (), ""
            buf.version += 1
            self.emit(BufferChanged(buf))
        if name and self.fold(name) in self._topic_shown:  # /topic asked
            self._topic_shown.discard(self.fold(name))
            text = f"No topic is set for {name}"
            self._add(buf or self.current, self._line(msg, now, Kind.INFO, text), count=False)

    def _rpl_topicwhotime(self, msg: Message, now: float) -> None:
        buf = self.buffer(msg.params[1]) if len(msg.params) > 2 else None
        if buf is not None:
            buf.topic_setter = plain(msg.params[2].split("!", 1)[0])[:MAX_NAME]
            self.emit(BufferChanged(buf))
            # Under the "Topic for" line (join, /topic), as irssi and WeeChat say it.
            when = msg.params[3] if len(msg.params) > 3 else ""
            age = f" {ago(now - int(when))}" if is_digits(when) else ""
            text = f"Topic set by {buf.topic_setter}{age}"
            self._add(buf, self._line(msg, now, Kind.INFO, text), count=False)

    def _rpl_namreply(self, msg: Message, now: float) -> None:
        if len(msg.params) < 4:
            return
        key = self.fold(msg.params[2])
        pending = self._names.get(key)
        if pending is None:
            if len(self._names) >= 64:
                del self._names[next(iter(self._names))]
            pending = self._names[key] = {}
        for item in msg.params[3].split():
            if len(pending) >= MAX_MEMBERS:
                break
            member = self._parse_member(item)
            if member is not None:
                pending[self.fold(member.nick)] = member

    def _rpl_endofnames(self, msg: Message, now: float) -> None:
        if len(msg.params) < 2:
            return
        key = self.fold(msg.params[1])
        pending = self._names.pop(key, {})
        buf = self._by_key.get(key)
        if buf is not None and buf.kind is BufferKind.CHANNEL and buf.joined:
            for folded, member in pending.items():
                old = buf.members.get(folded)
                if old is not None:
                    member.away = old.away
            buf.members = pending
            buf.version += 1
            self.emit(BufferChanged(buf))
        if key in self._names_shown:
            self._names_shown.discard(key)
            shown = [m.prefixes + m.nick for m in _sorted(pending.values(), self.prefix_symbols)]
            more = len(shown) - 300
            text = " ".join(shown[:300]) + (f" … and {more} more" if more > 0 else "")
            target = buf or self.current
            name = plain(msg.params[1])
            self._add(target, self._local(Kind.INFO, f"Names {name} ({len(shown)}): {text}", now))

    def _parse_member(self, item: str) -> Member | None:
        i = 0
        while i < len(item) and item[i] in self.prefix_symbols:
            i += 1
        nick, _, userhost = item[i:].partition("!")
        if not _safe_name(nick):
            return None
        ranks = self.prefix_symbols
        prefixes = "".join(sorted(set(item[:i]), key=ranks.find))
        return Member(nick, prefixes, _userhost(userhost))

    def _rpl_away(self, msg: Message, now: float) -> None:
        if len(msg.params) < 3:
            return
        nick = msg.params[1]
        # Answering a message to them: said in their query, once a text; in a WHOIS,
        # with the reply.
        whois = self.fold(nick) in self._whois
        if not whois and not self._away_news(nick, msg.params[2]):
            return
        buf = self.current if whois else self.buffer(nick) or self.current
        self._add(buf, self._line(msg, now, Kind.INFO, f"{nick} is away: {msg.params[2]}"))

    def _away_news(self, nick: str, text: str) -> bool:
        """Whether ``nick``'s away ``text`` answering a message is news: not the text
        said last time (remembered from now on)."""
        key = self.fold(nick)
        if self._away_shown.get(key) == text:
            return False
        self._away_shown.pop(key, None)  # (the newest last: the oldest go first)
        while len(self._away_shown) >= MAX_AWAY_SHOWN:
            del self._away_shown[next(iter(self._away_shown))]
        self._away_shown[key] = text
        return True

    def _rpl_unaway(self, msg: Message, now: float) -> None:
        self.away = msg.command == N.RPL_NOWAWAY
        default = "You are marked as away" if self.away else "You are no longer marked as away"
        text = msg.params[-1] if len(msg.params) > 1 else default  # (a bare 305/306 too)
        self._add(self.current, self._line(msg, now, Kind.INFO, text))
        self._status()

    def _rpl_channelmodeis(self, msg: Message, now: float) -> None:
        if len(msg.params) < 3:
            return
        buf = self._target_buffer(msg.params[1])
        modes = " ".join(msg.params[2:])
        self._add(buf, self._line(msg, now, Kind.INFO, f"Mode {msg.params[1]}: {modes}"))

    def _rpl_umodeis(self, msg: Message, now: float) -> None:
        if len(msg.params) >= 2:
            # Letters only, as a MODE line leaves them: the status bar adds the "+".
            self.user_modes = _apply_user_modes("", plain(msg.params[1]))
            modes = self.user_modes
            text = f"Your modes: +{modes}" if modes else "You have no user modes"
            self._add(self.current, self._line(msg, now, Kind.INFO, text))
            self._status()

    def _rpl_list(self, msg: Message, now: float) -> None:
        if len(msg.params) < 3:
            return
        topic = msg.params[3] if len(msg.params) > 3 else ""
        text = f"{msg.params[1]} ({msg.params[2]}) {topic}".rstrip()
        self._add(self.server, self._line(msg, now, Kind.INFO, text))  # (LIST_NUMERICS)

    def _rpl_inviting(self, msg: Message, now: float) -> None:
        if len(msg.params) >= 3:  # where /invite was typed (as irssi), not in the channel
            typed = self._invites_typed.pop((self.fold(msg.params[1]), self.fold(msg.params[2])),
                                            None)  # fmt: skip
            buf = typed if typed is not None and typed in self.buffers else self.current
            text = f"Invited {msg.params[1]} to {msg.params[2]}"
            self._add(buf, self._line(msg, now, Kind.INFO, text))

    # --- channel membership

    def _on_join(self, msg: Message, now: float) -> None:
        if not msg.params:
            return
        name = msg.params[0]
        nick = self._source_nick(msg)
        if self.is_me(nick):
            if msg.source and "!" in msg.source:
                self._mask_len = len(msg.source.encode()) + 1
            self._note_self(nick, msg)
            buf = self._ensure(name, BufferKind.CHANNEL, now)
            if buf is None:
                self._add(
                    self.server,
                    self._local(Kind.ERROR, f"Cannot open a buffer for {plain(name)[:64]}", now),
                )
                return
            self._autojoin_answered(name)
            # After a refused rejoin, a JOIN is a /join by hand, no reconnect: a join's
            # history and no "Reconnected". (The next connection tries the rejoin again.)
            rejoin = buf.rejoin and not self.outbox.rejoin_refused(buf)
            buf.joined = True
            buf.rejoin = False
            buf.members = {self.fold(nick): Member(nick, userhost=_source_userhost(msg))}
            # The topic may have changed (or gone) while we were out; a 332 follows the
            # JOIN only when one is set (no 331 comes on JOIN).
            buf.topic, buf.topic_spans, buf.topic_setter = "", (), ""
            buf.history_complete = False
            buf.history_refused = ""
            buf.version += 1
            self.emit(BufferChanged(buf))
            text = event_text("JOIN", msg.params) or ""
            self._add(buf, self._line(msg, now, Kind.JOIN, text, nick=nick))
            # (Switched to without the clock: the join's own history follows.)
            if self.fold(name) in self._switch_on_join:
                self._switch_on_join.discard(self.fold(name))
                self.switch(buf)
            elif self.fold(name) == self._switch_to_first:
                self._switch_to_first = None
                if self.current is self.server:  # the user has not gone elsewhere
                    self.switch(buf)
            self._history.on_join(buf, rejoin, now)
            self.outbox.target_ready(buf, now)
            return
        buf = self.buffer(name)
        if buf is None or not buf.joined:
            return
        userhost = _source_userhost(msg)
        if len(buf.members) < MAX_MEMBERS and _safe_name(nick):
            buf.members[self.fold(nick)] = Member(nick, userhost=userhost)
        buf.version += 1
        self.emit(BufferChanged(buf))
        if not self._ignored(msg):  # the member list follows; the line is not shown
            text = event_text("JOIN", msg.params) or ""
            line = self._line(msg, now, Kind.JOIN, text, nick=nick, buf=buf)
            if self.netsplits.rejoined(buf, nick, userhost, now):
                self.netsplits.join(buf, line.nick, line.time, now)
            else:
                self._add(buf, line)

    def _on_part(self, msg: Message, now: float) -> None:
        if not msg.params:
            return
        nick = self._source_nick(msg)
        hidden = self._ignored(msg)
        for name in msg.params[0].split(",")[:16]:
            buf = self.buffer(name)
            if buf is None or buf.kind is not BufferKind.CHANNEL:
                continue
            text = event_text("PART", msg.params, name) or ""
            line = self._line(msg, now, Kind.PART, text, nick=nick, buf=buf)
            if self.is_me(nick):
                buf.joined = False
                buf.rejoin = False
                buf.members.clear()
            else:
                buf.members.pop(self.fold(nick), None)
            buf.version += 1
            self.emit(BufferChanged(buf))
            if not hidden:
                self._add(buf, line)
            if self.is_me(nick):
                self.outbox.left(buf, f"not sent: left {buf.name}")

    def _on_kick(self, msg: Message, now: float) -> None:
        if len(msg.params) < 2:
            return
        name, victim = msg.params[0], msg.params[1]
        buf = self.buffer(name)
        if buf is None or buf.kind is not BufferKind.CHANNEL:
            return
        line = self._kick_line(msg, now, buf)
        if self.is_me(victim):
            buf.joined = False
            buf.rejoin = False
            buf.members.clear()
            line = replace(line, highlight=True)
        else:
            buf.members.pop(self.fold(victim), None)
        buf.version += 1
        self.emit(BufferChanged(buf))
        self._add(buf, line)
        if self.is_me(victim):
            self.outbox.left(buf, f"not sent: kicked from {buf.name}")

    def _kick_line(self, msg: Message, now: float, buf: Buffer, history: bool = False) -> Line:
        """A KICK's line (live or from history); ours said to us, as irssi does: "You
        have been kicked from #c by op (reason)", not "op has kicked alice"."""
        nick = self._source_nick(msg)
        p = msg.params
        if not self.is_me(p[1]):
            text = event_text("KICK", p) or ""
            return self._line(msg, now, Kind.KICK, text, nick=nick, buf=buf, history=history)
        text = f"You have been kicked from {p[0]} by {nick or msg.source or 'the server'}"
        text += f" ({p[2]})" if len(p) > 2 and p[2] else ""
        return self._line(msg, now, Kind.KICK, text, buf=buf, history=history)

    def _on_quit(self, msg: Message, now: float) -> None:
        nick = self._source_nick(msg)
        if not nick:
            return
        key = self.fold(nick)
        text = event_text("QUIT", msg.params) or ""
        hidden = self._ignored(msg)
        # A netsplit's quits are folded into a line per channel (queries keep theirs).
        split = split_servers(msg.params[0]) if msg.params else None
        for buf in list(self.buffers):
            if (buf.is_channel and key in buf.members) or (
                buf.kind is BufferKind.QUERY and self.fold(buf.name) == key
            ):
                line = self._line(msg, now, Kind.QUIT, text, nick=nick, buf=buf)
                buf.members.pop(key, None)
                buf.version += 1
                self.emit(BufferChanged(buf))
                if hidden:
                    continue
                if split is not None and buf.is_channel and not self.is_me(nick):
                    userhost = _source_userhost(msg)
                    self.netsplits.quit(buf, line.nick, userhost, split, line.time, now)
                else:
                    self._add(buf, line)

    def _on_nick(self, msg: Message, now: float) -> None:
        if not msg.params:
            return
        old, new = self._source_nick(msg), msg.params[0]
        if not _safe_name(new):
            return
        old_key, new_key = self.fold(old), self.fold(new)
        me = self.is_me(old)
        hidden = self._ignored(msg)
        text = event_text("NICK", msg.params) or ""
        if me:
            self.nick = self._wanted_nick = new
            if self._mask_len:  # others now see the new nick in front of our lines
                self._mask_len += len(new.encode()) - len(old.encode())
            self._note_self(new, msg)
            if self._regain.is_target(new, self.fold):
                self._stop_regain()  # got it back
            self._rebuild_highlight()
            self._status()
            self._add(self.server, self._line(msg, now, Kind.NICK, text, nick=old, own=True))
        for buf in list(self.buffers):
            if buf.is_channel and old_key in buf.members:
                member = buf.members.pop(old_key)
                member.nick = new
                buf.members[new_key] = member
                buf.version += 1
                self.emit(BufferChanged(buf))
                if not hidden:
                    line = self._line(msg, now, Kind.NICK, text, nick=old, buf=buf, own=me)
                    self._add(buf, line)
            elif buf.kind is BufferKind.QUERY and self.fold(buf.name) == old_key:
                if new_key not in self._by_key or new_key == old_key:
                    del self._by_key[old_key]
                    buf.name = new
                    self._by_key[new_key] = buf
                    if new_key != old_key:
                        self._history.query_renamed(buf, old_key, now)
                    buf.version += 1
                    self.emit(BufferChanged(buf))
                self._add(buf, self._line(msg, now, Kind.NICK, text, nick=old, buf=buf))
            elif me and buf.kind is BufferKind.QUERY:
                # Our partner sees the new nick from now on (WeeChat says it there too).
                line = self._line(msg, now, Kind.NICK, text, nick=old, buf=buf, own=True)
                self._add(buf, line, count=False)

    def _on_mode(self, msg: Message, now: float) -> None:
        if len(msg.params) < 2:
            return
        target = msg.params[0]
        nick = self._source_nick(msg) or (msg.source or "")
        text = event_text("MODE", msg.params) or ""
        if not self.is_channel(target):
            if self.is_me(target):
                self.user_modes = _apply_user_modes(self.user_modes, msg.params[1])
                self._status()
                self._add(self.server, self._user_mode_line(msg, nick, now))
                return
            self._add(self.server, self._line(msg, now, Kind.MODE, text, nick=nick))
            return
        buf = self.buffer(target)
        if buf is None or buf.kind is not BufferKind.CHANNEL:
            return
        args = list(msg.params[2:])
        sign = "+"
        changed = False
        list_modes, always, set_only, _ = self.chanmodes
        for ch in msg.params[1][:64]:
            if ch in "+-":
                sign = ch
                continue
            if ch in self.prefix_modes:
                if not args:
                    break
                who = args.pop(0)
                member = buf.members.get(self.fold(who))
                if member is not None:
                    symbol = self.prefix_symbols[self.prefix_modes.index(ch)]
                    have = set(member.prefixes)
                    if sign == "+":
                        have.add(symbol)
                    else:
                        have.discard(symbol)
                    member.prefixes = "".join(sorted(have, key=self.prefix_symbols.find))
                    changed = True
            elif args and (ch in list_modes or ch in always or (ch in set_only and sign == "+")):
                args.pop(0)
        if changed:
            buf.version += 1
            self.emit(BufferChanged(buf))
        self._add(buf, self._line(msg, now, Kind.MODE, text, nick=nick, buf=buf))

    def _user_mode_line(self, msg: Message, setter: str, now: float) -> Line:
        """Our user modes changed, said as irssi says it: "Mode change [+i] for user
        alice" (the status bar alone went unnoticed), and by whom when another user
        set them (services, an operator); ours or the server's are no news."""
        text = f"Mode change [{' '.join(msg.params[1:])}] for user {msg.params[0]}"
        other = "!" in (msg.source or "") and not self.is_me(setter)
        if other:
            text += f" by {setter}"
        return self._line(msg, now, Kind.MODE, text, own=not other)

    def _on_topic(self, msg: Message, now: float) -> None:
        if len(msg.params) < 2:
            return
        buf = self.buffer(msg.params[0])
        if buf is None or buf.kind is not BufferKind.CHANNEL:
            return
        nick = self._source_nick(msg)
        buf.topic, buf.topic_spans = display(msg.params[1])
        buf.topic_setter = plain(nick)[:MAX_NAME]
        buf.version += 1
        self.emit(BufferChanged(buf))
        text = event_text("TOPIC", msg.params) or ""
        self._add(buf, self._line(msg, now, Kind.TOPIC, text, nick=nick, buf=buf))

    def _on_away(self, msg: Message, now: float) -> None:
        nick = self._source_nick(msg)
        key = self.fold(nick)
        away = bool(msg.params and msg.params[0])
        self.notify.set_away(nick, plain(msg.params[0])[:200] if away else None)
        self._away_shown.pop(key, None)  # back (or away anew): a 301 is news again
        for buf in self.buffers:
            member = buf.members.get(key) if buf.is_channel else None
            if member is not None and member.away != away:
                member.away = away
                buf.version += 1
                self.emit(BufferChanged(buf))

    def _on_invite(self, msg: Message, now: float) -> None:
        if len(msg.params) < 2:
            return
        nick = self._source_nick(msg)
        if self._ignored(msg):
            return
        target, channel = msg.params[0], msg.params[1]
        if self.is_me(target):
            text = f"{nick} invites {target} to {channel}"
            self._add(self.current, self._line(msg, now, Kind.INFO, text))
            return
        if self.is_me(nick):
            return  # the echo of our own /invite: its 341 said "Invited bob to #c"
        # invite-notify: someone else was invited to a channel we are on.
        buf = self.buffer(channel)
        text = f"{nick} invited {target} to {channel}"
        self._add(buf if buf is not None else self.current,
                  self._line(msg, now, Kind.INFO, text, buf=buf))

    def _on_tagmsg(self, msg: Message, now: float) -> None:
        """IRCv3 typing notifications (``+typing``) and reactions (``+draft/react``);
        other TAGMSGs are not shown."""
        if REACT_TAG in msg.tags and msg.params:
            self._on_reaction(msg, now)
        state = msg.tags.get("+typing", "")
        if state not in (*_TYPING_FOR, "done") or not msg.params:
            return
        nick = self._source_nick(msg)
        if not nick or self.is_me(nick) or self._ignored(msg):
            return
        target = msg.params[0].lstrip(self.prefix_symbols)
        buf = self.buffer(target) if self.is_channel(target) else self.buffer(nick)
        if buf is None:  # no buffer is opened just to say someone types
            return
        key = self.fold(nick)
        if state == "done":
            if buf.typing.pop(key, None) is None:
                return
        else:
            buf.typing[key] = (nick, state, now + _TYPING_FOR[state])
        buf.version += 1
        self.emit(BufferChanged(buf))

    def typing_nicks(self, buf: Buffer, now: float) -> list[str]:
        """Who is typing in ``buf`` now (expired entries are dropped)."""
        channel = buf.kind is BufferKind.CHANNEL
        for key in [
            k for k, (_, _, until) in buf.typing.items()
            if until <= now or (channel and k not in buf.members)  # left, quit, kicked
        ]:
            del buf.typing[key]
        return sorted(n for n, state, _ in buf.typing.values() if state == "active")

    def typed(self, text: str, now: float) -> None:
        """The input line now holds ``text``: tell the current buffer's peers, at most
        every TYPING_EVERY seconds (only with ``send_typing`` and message-tags)."""
        buf = self.current
        if (
            not self.config.send_typing
            or not self.registered
            or "message-tags" not in self.caps
            or buf.kind in (BufferKind.SERVER, BufferKind.SEARCH)
            or (buf.kind is BufferKind.CHANNEL and not buf.joined)
        ):
            return
        writing = bool(text) and (not text.startswith("/") or text.startswith("//"))
        if writing and now - buf.typing_sent >= TYPING_EVERY:
            buf.typing_sent = now
            self._send_typing(buf, "active")
        elif not writing and buf.typing_sent:
            buf.typing_sent = 0.0
            self._send_typing(buf, "done")

    def _send_typing(self, buf: Buffer, state: str) -> None:
        self._out.append(Message("TAGMSG", [buf.name], tags={"+typing": state}).to_line())

    def _on_wallops(self, msg: Message, now: float) -> None:
        """An operators' broadcast (user mode +w): in the server buffer."""
        if not msg.params or self._ignored(msg):
            return
        nick = self._source_nick(msg) or (msg.source or "")
        self._add(self.server, self._line(msg, now, Kind.NOTICE, msg.params[-1], nick=nick))

    def _on_fail(self, msg: Message, now: float) -> None:
        p = msg.params
        if len(p) < 2:
            return
        kind = Kind.ERROR if msg.command == "FAIL" else Kind.INFO
        if p[0] == "CHATHISTORY" and self._history.on_fail(p, now, self._label):
            return
        if msg.command == "FAIL" and self.outbox.refused("FAIL", p, self._label):
            return
        if p[0] == "MARKREAD":  # the client's own background request: nothing to show
            return
        if p[0] == "SEARCH" and msg.command == "FAIL":
            # FAIL SEARCH <code> [...] :text: the oldest search sent is answered.
            search = self._searches.popleft() if self._searches else None
            what = f'"{search.text}"' if search and search.text else "messages"
            text = f"Search for {what} failed: {p[-1]} ({p[1]})"
            self._add(self.current, self._line(msg, now, kind, text))
            return
        if p[0] == "REDACT" and msg.command == "FAIL":
            # FAIL REDACT <code> <target> [<msgid> [<window>]] :text, in the buffer
            # the message was in.
            buf = self.buffer(p[2]) if len(p) > 3 else None
            text = f"Message not deleted: {p[-1]} ({p[1]})"
            self._add(buf or self.current, self._line(msg, now, kind, text))
            return
        text = f"{p[0]} {p[1]}: {p[-1]}"
        if p[0] == "REGISTER" and msg.command == "FAIL":
            # The account parameter is not always the one asked for (ALREADY_AUTHENTICATED
            # names the current one): the line before says which was asked for.
            text = f"Account registration failed: {p[-1]} ({p[1]})"
        self._add(self.current, self._line(msg, now, kind, text))

    # --- read markers (IRCv3 draft/read-marker)

    def _mark_read(self, buf: Buffer) -> None:
        """``buf`` has been read up to its newest message: tell the server (and so the
        account's other sessions) when that is newer than what it has."""
        when = buf.last_time  # server time of the newest message (one with a msgid)
        if (
            when is None
            or buf.kind in (BufferKind.SERVER, BufferKind.SEARCH)
            or buf.name.startswith(":")
            or not self.read_markers_enabled
        ):
            return
        ms = _ms(when)
        if buf.marked_ms is not None and ms <= buf.marked_ms:
            return
        buf.marked_ms = ms
        self._send("MARKREAD", buf.name, "timestamp=" + format_time(ms / 1000))

    def _ask_marker(self, buf: Buffer) -> None:
        if self.read_markers_enabled and not buf.name.startswith(":"):
            self._send("MARKREAD", buf.name)

    def _on_markread(self, msg: Message, now: float) -> None:
        """``MARKREAD <target> timestamp=…``: the account has read ``target`` up to then,
        in this session or another (``*``: nothing known). Never shown."""
        p = msg.params
        if len(p) < 2 or not p[1].startswith("timestamp="):
            return
        buf = self.buffer(p[0])
        if buf is None:  # no buffer is opened for a marker
            return
        try:
            ms = _ms(parse_time(p[1][len("timestamp=") :]))
        except (ValueError, OverflowError, OSError):
            return
        if ms / 1000 - now > MAX_CLOCK_SKEW:
            return  # read in the future: it would leave nothing unread for the connection
        if buf.marked_ms is None or ms > buf.marked_ms:
            buf.marked_ms = ms
        if buf is not self.current:  # in view, everything is read already
            self._read_elsewhere(buf, ms)

    def _read_elsewhere(self, buf: Buffer, ms: int) -> None:
        """Lines at or before ``ms`` were read (in another session): they no longer
        count, and when that is all of them the buffer is read, as if the user had
        looked at it here (the pane's rule goes under them). Later lines stay unread."""
        unread = highlights = 0
        later = False  # a line of others after the point read (events too)
        read_to: Line | None = None  # the newest line at or before it
        rule_below = False  # the local read marker is there already, or further down
        for line in reversed(buf.lines):  # lines arrive in time order
            if line is buf.read_marker:
                rule_below = True
            if _ms(line.time) <= ms:
                read_to = line
                break
            if line.own:
                continue
            if line.kind in MESSAGE_KINDS:
                unread += 1
                highlights += line.highlight
            elif not self.hidden(buf, line):
                later = True
        before = (buf.unread, buf.highlights, buf.activity)
        buf.unread = min(buf.unread, unread)
        buf.highlights = min(buf.highlights, highlights)
        if not unread and not later:
            buf.activity = False
        moved = read_to is not None and not rule_below and read_to is not buf.read_marker
        if moved:
            buf.read_marker = read_to
        if moved or (buf.unread, buf.highlights, buf.activity) != before:
            buf.version += 1
            self.emit(BufferChanged(buf))

    # --- messages

    def _on_message(self, msg: Message, now: float) -> None:
        self._message(msg, now, history=None)

    def _message(self, msg: Message, now: float, history: Buffer | None) -> Line | None:
        """Route a PRIVMSG/NOTICE; with ``history`` it is only turned into a Line."""
        if len(msg.params) < 2:
            return None
        target, text = msg.params[0], msg.params[1]
        nick = self._source_nick(msg)
        notice = msg.command == "NOTICE"
        kind = Kind.NOTICE if notice else Kind.MESSAGE
        ctcp = None
        if text.startswith("\x01"):
            body = text[1:-1] if text.endswith("\x01") and len(text) > 1 else text[1:]
            ctcp, _, rest = body.partition(" ")
            ctcp = ctcp.upper()
            if ctcp == "ACTION":
                kind, text, ctcp = Kind.ACTION, rest, None
        bare = target.lstrip(self.prefix_symbols)
        server_msg = self._from_server(msg) or (not self.registered and not nick)
        if not server_msg and self._ignored(msg):
            return None
        if ctcp is not None:  # shown (and answered) by _ctcp alone: it opens no buffer
            if history is None:
                self._ctcp(msg, nick, ctcp, text, notice, now)
            return None
        where = ""
        if history is not None:
            buf: Buffer | None = history
        elif self.is_channel(bare):
            buf = self.buffer(bare)
            if buf is None and self.is_me(nick):  # ours, to a channel we are not in
                buf, where = self.current, _elsewhere(msg.command, target)
            elif buf is None:
                buf = self._ensure(bare, BufferKind.CHANNEL, now)
        elif server_msg:
            buf = self.server
        elif self.is_me(nick):
            buf = self._ensure(target, BufferKind.QUERY, now)
        elif notice:
            # In the answer to a message of ours (a service's word about it, as our
            # MemoServ's hint after a 401), it is said where that message is.
            buf = self.outbox.answering(self._label) or self.buffer(nick) or self.current
        else:
            buf = self._ensure(nick, BufferKind.QUERY, now)
        raw = text
        if kind is not Kind.ACTION:
            text = mask_message(bare, text)  # our echo (or history) to NickServ
        if buf is None:  # unsafe name or too many buffers: show it in the server buffer
            buf = self.server
            text = f"[{nick} → {target}] {text}"
        own = None
        if history is not None and history.kind is BufferKind.QUERY and not self.is_me(nick):
            # Private history holds both sides: what we sent under another nick (another
            # session of our account, or before a nick change) went to the partner.
            partner = self.fold(history.name)
            own = self.fold(bare) == partner and self.fold(nick) != partner
        line = self._line(
            msg, now, kind, text, nick=nick or (msg.source or ""), buf=None if where else buf,
            mention=not server_msg, history=history is not None, own=own,
        )  # fmt: skip
        if history is not None:
            return line
        if where:  # (no pending line of ours: written at once, see _say_elsewhere)
            self._add(buf, replace(line, where=where))
            return line
        if buf.typing.pop(self.fold(nick), None) is not None:  # a message ends typing
            buf.version += 1
        if line.own and self.outbox.echo(target, kind, raw, line, self._label):
            return line  # it took the place of its pending line
        self._add(buf, line)
        if buf.is_channel:  # a channel whose history was put off gets it now, room permitting
            self._history.activity(buf, now)
        if notice and is_nickserv(nick) and confirms_password_change(raw):
            self._password_changed(now, buf)
        return line

    def _password_changed(self, now: float, buf: Buffer) -> None:
        """NickServ confirmed a ``SET PASSWORD`` we sent: reconnects use the new one."""
        if not self._sasl.change_confirmed(self.account, now):
            return
        text = "Reconnects log in with the new password for the rest of this session"
        if self._sasl.configured_outdated:
            text += ("; the configured password is the old one: update sasl_password in the"
                     " config (or CHAT_SASL_PASSWORD)")
        self.info(text, now, buf)

    def _ctcp(self, msg: Message, nick: str, cmd: str, text: str, reply: bool, now: float) -> None:
        body = text[1:-1] if text.endswith("\x01") else text[1:]
        arg = body.partition(" ")[2]
        if self.is_me(nick):  # the echo of our own request or reply (echo-message)
            return
        if reply:
            sent = self._ctcp_pings.get(arg.strip()) if cmd == "PING" else None
            if sent is not None:  # (kept: a ping to a channel gets several replies)
                self.info(f"CTCP PING reply from {plain(nick)}: {max(0.0, now - sent):.3f} s", now)
                return
            self.info(f"CTCP {cmd} reply from {plain(nick)}: {plain(arg)}", now)
            return
        if cmd == "DCC":  # (what it offers, and that we take none of it)
            self.info(dcc_text(nick, arg), now, self.server)
            return
        self.info(f"CTCP {cmd} from {plain(nick)}", now, self.server)
        if cmd not in _CTCP_REPLIES or not _safe_name(nick) or not self._ctcp_token(now):
            return
        if cmd == "VERSION":
            answer = self.config.version
        elif cmd == "PING":
            answer = plain(arg)[:64]
        elif cmd == "TIME":
            answer = format_time(now)
        else:
            answer = " ".join(_CTCP_REPLIES)
        self._send("NOTICE", nick, f"\x01{cmd} {answer}\x01".replace(" \x01", "\x01"))

    def ctcp(self, target: str, cmd: str, args: str, now: float) -> None:
        """``/ctcp``: send CTCP ``cmd`` to ``target``. A PING without ``args`` carries
        the time, so its reply shows the round trip."""
        cmd = cmd.upper()
        args = args.replace("\x01", "")
        if cmd == "PING" and not args:
            args = str(round(now * 1000))
            self._ctcp_pings[args] = now
            while len(self._ctcp_pings) > MAX_CTCP_PINGS:
                del self._ctcp_pings[next(iter(self._ctcp_pings))]
        self._send("PRIVMSG", target, f"\x01{cmd} {args}\x01" if args else f"\x01{cmd}\x01")
        self.info(f"CTCP {cmd} to {plain(target)}", now)

    def _ctcp_token(self, now: float) -> bool:
        """Whether an automatic CTCP reply may go out now (takes its token)."""
        earned = max(0.0, now - self._ctcp_at) / CTCP_REPLY_INTERVAL
        self._ctcp_tokens = min(float(CTCP_REPLY_BURST), self._ctcp_tokens + earned)
        self._ctcp_at = now
        if self._ctcp_tokens < 1.0:
            return False
        self._ctcp_tokens -= 1.0
        return True

    # --- deleted messages (IRCv3 draft/message-redaction)

    def _on_redact(self, msg: Message, now: float) -> None:
        """``REDACT <target> <msgid> [:reason]``: the message with ``msgid`` was deleted.
        Its line stays, with a placeholder for its text that says by whom (unknown
        messages, and ones deleted already, are ignored)."""
        p = msg.params
        if len(p) < 2:
            return
        buf = self._about_buffer(msg)
        if buf is not None:
            self._redact(buf, msg, p[1], now)

    def _about_buffer(self, msg: Message) -> Buffer | None:
        """The open buffer a REDACT or a reaction (``<command> <target> ...``) is about:
        the channel, or for a private one the query with the other party. None when
        there is none (no buffer is opened for it)."""
        target = msg.params[0]
        nick = self._source_nick(msg)
        bare = target.lstrip(self.prefix_symbols)
        if self.is_channel(bare):
            return self.buffer(bare)
        if self.is_me(target):  # private, to us: the query with the sender
            return self.buffer(nick)
        if self.is_me(nick):  # ours, to ``target`` (or the echo of our own)
            return self.buffer(target)
        return None

    def history_redaction(self, msg: Message, now: float, buf: Buffer) -> str | None:
        """A REDACT in a chathistory batch for ``buf`` (a deletion made while we were not
        there to see it): the msgid it deletes, None when it is not about ``buf``. A line
        of ``buf`` with that msgid is replaced as by a live REDACT."""
        p = msg.params
        if len(p) < 2 or not p[1] or not self._history_about(msg, buf):
            return None
        self._redact(buf, msg, p[1], now, history=True)
        return p[1]

    def _history_about(self, msg: Message, buf: Buffer) -> bool:
        """An item of a chathistory batch for ``buf`` (a REDACT, a TAGMSG) is about it:
        the same channel, or private when ``buf`` is a query (a query's may name either
        side, under any of its nicks)."""
        target = msg.params[0].lstrip(self.prefix_symbols) if msg.params else ""
        if buf.is_channel != self.is_channel(target):
            return False
        return not buf.is_channel or self.fold(target) == self.fold(buf.name)

    def _redact(
        self, buf: Buffer, msg: Message, msgid: str, now: float, *, history: bool = False
    ) -> None:
        """Replace the message line of ``buf`` with ``msgid`` by its placeholder (unknown
        messages, and ones deleted already, are ignored)."""
        p = msg.params
        nick = self._source_nick(msg)
        old = buf.find_message(msgid)
        if old is None:  # a reaction's msgid: it is taken back
            self._unreact(buf, msg, msgid, now, history=history)
            return
        if old.redacted:
            return
        by = plain(nick or msg.source or "")[:MAX_NAME]
        reason = plain(p[2])[:MAX_REASON] if len(p) > 2 else ""
        # The sender deleted it: the same nick, or ours deleted by us (a line of ours
        # can carry another nick: history from another session of the account).
        by_sender = (bool(nick) and self.fold(nick) == self.fold(old.nick)) or (
            old.own and self.is_me(nick)
        )
        text = REDACTED_TEXT + ("" if by_sender else f" by {by}")
        text += f": {reason})" if reason else ")"
        # A deleted message's reactions go with it.
        new = replace(
            old, text=text, spans=(Span(text),), highlight=False, redacted=True, reactions=()
        )
        if buf.replace(old, new):
            self._uncount(buf, old)
            when = self._msg_time(msg, now, history)
            self.emit(LineRedacted(buf, old, new, by, reason, when, by_sender))

    def _uncount(self, buf: Buffer, old: Line) -> None:
        """A deleted message that was still unread (one of the newest ``buf.unread``
        messages of others) no longer counts, nor as a highlight."""
        if buf is self.current or old.own or old.kind not in MESSAGE_KINDS or not buf.unread:
            return
        seen = 0
        for line in reversed(buf.lines):
            if line.msgid == old.msgid:  # the placeholder now stands where it was
                buf.unread -= 1
                if old.highlight and buf.highlights:
                    buf.highlights -= 1
                self.emit(BufferChanged(buf))
                return
            if line.own or line.kind not in MESSAGE_KINDS or line.redacted:
                continue  # never counted, or uncounted when it was deleted
            seen += 1
            if seen >= buf.unread:
                return

    # --- reactions (IRCv3 +draft/react and +draft/reply client tags on a TAGMSG)

    def _on_reaction(self, msg: Message, now: float) -> None:
        """``@+draft/react=👍;+draft/reply=<msgid> TAGMSG <target>``: annotates the
        message line with that msgid (newest first) in the channel, or for a private one
        the query with the other party. No buffer is opened for it; it is never unread."""
        if self._ignored(msg):
            return
        buf = self._about_buffer(msg)
        if buf is not None:
            self._reaction(buf, msg, now)

    def history_reaction(self, msg: Message, now: float, buf: Buffer) -> None:
        """A TAGMSG in a chathistory batch for ``buf`` (draft/event-playback): a reaction
        is applied as a live one would be (no line of its own)."""
        if REACT_TAG in msg.tags and self._history_about(msg, buf) and not self._ignored(msg):
            self._reaction(buf, msg, now, history=True)

    def _reaction(self, buf: Buffer, msg: Message, now: float, *, history: bool = False) -> None:
        nick = self._source_nick(msg)
        text = reaction_text(msg.tags.get(REACT_TAG, ""))
        reply = msg.tags.get(REPLY_TAG, "")[:MAX_MSGID]
        if not nick or not text or not reply:
            return
        when = self._msg_time(msg, now, history)
        self._add_reaction(buf, reply, text, nick, _msgid(msg), when, history=history)

    def react(self, buf: Buffer, line: Line, text: str, now: float) -> None:
        """Send a reaction to ``line`` (it has a msgid) of ``buf``; shown when the echo
        comes back (it carries the reaction's msgid), or at once without echo-message."""
        tags = {REACT_TAG: text, REPLY_TAG: line.msgid or ""}
        self._out.append(Message("TAGMSG", [buf.name], tags=tags).to_line())
        if not self.echo and line.msgid:
            self._add_reaction(buf, line.msgid, text, self.nick, None, self.local_time(now))

    def _add_reaction(
        self,
        buf: Buffer,
        reply: str,
        text: str,
        nick: str,
        msgid: str | None,
        when: float,
        *,
        history: bool = False,
    ) -> None:
        """``nick`` reacted with ``text`` to the message ``reply`` of ``buf``: its line is
        replaced by one with the reaction (``LineReacted``). A reaction known already (by
        msgid, or taken back), to a message not in the buffer or deleted, or over the
        bounds is ignored; the same nick's same reaction counts once."""
        if msgid is not None and msgid in buf.seen:
            return
        old = buf.find_message(reply)
        if old is None or old.redacted:
            return
        key = self.fold(nick)
        reactions = old.reactions
        for i, r in enumerate(reactions):
            if r.text == text and self.fold(r.nick) == key:  # sent again: counts once
                if msgid is not None and len(r.msgids) < MAX_REACTION_IDS:
                    # Kept, so that taking it back takes back every copy.
                    again = replace(r, msgids=(*r.msgids, msgid))
                    new = replace(old, reactions=(*reactions[:i], again, *reactions[i + 1 :]))
                    if buf.replace(old, new):
                        buf.seen.add(msgid)
                return
        texts = {r.text for r in reactions}
        if len(reactions) >= MAX_REACTIONS or (
            text not in texts and len(texts) >= MAX_REACTION_TEXTS
        ):
            return
        # In a query, a nick other than the partner's is ours (history from another
        # session of the account, or before a nick change).
        own = key != self.fold(buf.name) if buf.kind is BufferKind.QUERY else self.is_me(nick)
        shown = plain(nick)[:MAX_NAME]
        reaction = Reaction(text, shown, when, (msgid,) if msgid else (), own)
        new = replace(old, reactions=(*reactions, reaction))
        if not buf.replace(old, new):
            return
        if msgid is not None:
            buf.seen.add(msgid)
        by_sender = key == self.fold(old.nick) or (own and old.own)
        self.emit(LineReacted(buf, old, new, shown, text, when, msgid, by_sender,
                              history=history))  # fmt: skip

    def _unreact(
        self, buf: Buffer, msg: Message, msgid: str, now: float, *, history: bool = False
    ) -> None:
        """A REDACT of a reaction's msgid: the reaction is taken back (by the one who
        reacted; a channel operator may remove others'). Unknown msgids are ignored."""
        found = buf.find_reaction(msgid)
        if found is None:
            return
        old, reaction = found
        rest = tuple(m for m in reaction.msgids if m != msgid)
        others = tuple(r for r in old.reactions if r is not reaction)
        if rest:  # sent more than once: still there through the other copies
            kept = replace(reaction, msgids=rest)
            new = replace(old, reactions=tuple(kept if r is reaction else r for r in old.reactions))
            buf.replace(old, new)
            return
        new = replace(old, reactions=others)
        if not buf.replace(old, new):
            return
        nick = self._source_nick(msg)
        who = self.fold(nick)
        by = "" if who == self.fold(reaction.nick) or (reaction.own and self.is_me(nick)) else (
            plain(nick or msg.source or "")[:MAX_NAME])  # fmt: skip
        key = self.fold(reaction.nick)
        by_sender = key == self.fold(old.nick) or (reaction.own and old.own)
        when = self._msg_time(msg, now, history)
        self.emit(LineReacted(buf, old, new, reaction.nick, reaction.text, when, msgid,
                              by_sender, removed=True, by=by, history=history))  # fmt: skip

    # --- batches and history (client/history.py)

    # --- message search (soju.im/search)

    def search(self, text: str, target: str | None, sender: str | None, now: float) -> None:
        """``SEARCH <attrs>`` for messages holding ``text`` (may be '' with ``sender``), in
        ``target`` (None: all our channels and conversations), by ``sender``; the answer
        (a batch) replaces the search buffer's lines. The caller checked
        :attr:`search_enabled`."""
        limit = max(1, min(SEARCH_LIMIT, self.config.scrollback - 2))
        attrs: dict[str, str] = {}
        if text:
            attrs["text"] = text
        if target:
            attrs["in"] = target
        if sender:
            attrs["from"] = sender
        attrs["limit"] = str(limit)
        self._send("SEARCH", serialize_tags(attrs))
        self._searches.append(Search(text, target, sender, limit, self.current))

    def _search_results(self, messages: list[tuple[Message, float]], now: float) -> None:
        """A search answer (its batch ended): the search buffer, opened if needed, holds
        a header and the messages, oldest first, each naming where it was said. They
        are no live messages: no unread, highlight, chat log line or read marker, and
        no channel or query sees them. Shown at once when the user is still where the
        search was typed (or in the search buffer)."""
        search = self._searches.popleft() if self._searches else None
        buf = self.search_buffer
        if buf is None:
            buf = Buffer(BufferKind.SEARCH, SEARCH_BUFFER, scrollback=self.config.scrollback)
            self.buffers.append(buf)
            self.emit(BufferOpened(buf))
        limit = search.limit if search is not None else max(1, self.config.scrollback - 2)
        results: list[Line] = []
        for msg, at in messages:
            line = self._search_line(msg, at, buf)
            if line is not None:
                results.append(line)
        results.sort(key=lambda ln: ln.time)  # (stable: the server's order on a tie)
        results = results[-limit:]
        count = len(results)
        head = search.describe() if search is not None else "Search"
        head += f": {count} result{'' if count == 1 else 's'}"
        if search is not None and count >= search.limit:
            head += f" (the newest {count}; narrow the search for older ones)"
        lines = [self._local(Kind.INFO, head, now), *results]
        if not results:
            lines.append(self._local(Kind.INFO, "No results", now))
        buf.reset(lines)
        self.emit(BufferCleared(buf))
        self.emit(HistoryAdded(buf, len(lines), False, tuple(lines)))
        if search is None or self.current in (search.origin, buf):
            self.switch(buf, now)
        elif not buf.activity:
            buf.activity = True
            self.emit(BufferChanged(buf))

    def _search_line(self, msg: Message, now: float, buf: Buffer) -> Line | None:
        """A message of a search answer as a result line (a history line naming where it
        was said), None when it is not shown (not a message, a CTCP, ignored)."""
        if msg.command not in ("PRIVMSG", "NOTICE") or len(msg.params) < 2:
            return None
        line = self._message(msg, now, history=buf)
        if line is None:
            return None
        target = msg.params[0]
        bare = target.lstrip(self.prefix_symbols)
        if self.is_channel(bare):
            where = bare
        elif self.is_me(self._source_nick(msg)):
            where = target  # sent by us: the conversation with its target
        else:
            where = line.nick  # someone else's private message: sent to us
        return replace(line, highlight=False, where=plain(where)[:MAX_NAME])

    def _on_batch(self, msg: Message, now: float) -> None:
        if not msg.params:
            return
        ref = msg.params[0]
        if ref.startswith("+") and len(msg.params) >= 2:
            while len(self._batches) >= MAX_OPEN_BATCHES:
                self._close_batch(next(iter(self._batches)), now)
            kind = msg.params[1]
            opener = msg if kind == multiline.BATCH_TYPE else None
            self._batches[ref[1:]] = _Batch(
                kind, msg.params[2:], label=self._label, opener=opener,
                parent=msg.tags.get("batch"),
            )  # fmt: skip
        elif ref.startswith("-"):
            self._close_batch(ref[1:], now)

    def _close_batch(self, ref: str, now: float) -> None:
        batch = self._batches.pop(ref, None)
        if batch is None:
            return
        if batch.opener is not None:  # before the label's end: the echo it may be
            self._multiline(batch, batch.opener, now)
        if batch.label is not None:
            self.outbox.answered(batch.label)
        if batch.type == SEARCH_BATCH:
            self._search_results(batch.lines, now)
        elif batch.opener is None:
            self._history.on_batch(batch.type, batch.params, batch.lines, now, batch.label)
        if batch.label is not None and batch.parent is None:  # (a nested one's goes on)
            self._history.answered(batch.label, now)

    def _multiline(self, batch: _Batch, opener: Message, now: float) -> None:
        """A ``draft/multiline`` batch ended: its message, one PRIVMSG of several lines.
        Nested in a history or search batch it is one of that batch's messages;
        otherwise it is handled as a live PRIVMSG (labelled as its BATCH line was)."""
        msg = multiline.assemble(opener, [m for m, _ in batch.lines])
        if msg is None:
            return
        outer = self._batches.get(batch.parent) if batch.parent is not None else None
        if outer is not None and (outer.type in HISTORY_BATCHES or outer.type == SEARCH_BATCH):
            self._keep(outer, msg, now)
            return
        label, self._label = self._label, batch.label
        try:
            self._on_message(msg, now)
        finally:
            self._label = label

    def history_line(self, msg: Message, now: float, buf: Buffer) -> Line | None:
        """A message of a chathistory batch for ``buf`` as a line; None when not shown."""
        nick = self._source_nick(msg)
        cmd = msg.command
        if cmd in ("PRIVMSG", "NOTICE"):
            return self._message(msg, now, history=buf)
        # The text the live line has (a PART of several channels: this one's).
        channel = ""
        if cmd == "PART" and msg.params:
            names = msg.params[0].split(",")
            channel = next((n for n in names if self.fold(n) == self.fold(buf.name)), buf.name)
        body = event_text(cmd, msg.params, channel)
        if body is None:
            return None
        if cmd == "KICK":
            return self._kick_line(msg, now, buf, history=True)
        return self._line(msg, now, Kind(cmd.lower()), body, nick=nick, buf=buf, history=True)

    def _on_chathistory(self, msg: Message, now: float) -> None:
        """``CHATHISTORY TARGETS <target> <time>``: a conversation with messages since
        we left, when its name is one a query can have."""
        p = msg.params
        if len(p) >= 2 and p[0].upper() == "TARGETS" and _safe_name(p[1]):
            self._history.on_target(p[1], now)


def event_text(command: str, params: list[str], channel: str = "") -> str | None:
    """The text after the nick of a join, part, quit, nick change, kick, topic or mode
    line, the same for a live line and one from history; ``channel``: the PART's channel
    this line is for (one of a list). None for other commands, or without the
    parameters the line needs."""
    p = params
    if command == "JOIN" and p:
        return f"has joined {p[0]}"
    if command == "PART" and p:
        reason = p[1] if len(p) > 1 else ""
        return f"has left {channel or p[0]}" + (f" ({reason})" if reason else "")
    if command == "QUIT":
        reason = p[0] if p else ""
        return "has quit" + (f" ({reason})" if reason else "")
    if command == "NICK" and p:
        return NICK_CHANGE + p[0]
    if command == "KICK" and len(p) >= 2:
        reason = p[2] if len(p) > 2 else ""
        return f"has kicked {p[1]}" + (f" ({reason})" if reason else "")
    if command == "TOPIC" and len(p) >= 2:
        return f"changed the topic to: {p[1]}" if p[1] else "cleared the topic"
    if command == "MODE" and len(p) >= 2:
        return "sets mode " + " ".join(p[1:])
    return None


def _sorted(members: Iterable[Member], ranks: str) -> list[Member]:
    def key(m: Member) -> tuple[int, str]:
        p = m.prefix
        return (ranks.find(p) if p and p in ranks else len(ranks)), m.nick.lower()

    return sorted(members, key=key)


def _apply_user_modes(current: str, change: str) -> str:
    modes = set(current)
    sign = "+"
    for ch in change[:32]:
        if ch in "+-":
            sign = ch
        elif ch.isalpha():
            if sign == "+":
                modes.add(ch)
            else:
                modes.discard(ch)
    return "".join(sorted(modes))


def _ms(when: float) -> int:
    """Epoch seconds as whole milliseconds (server-time's precision)."""
    return round(when * 1000)


def _msgid(msg: Message) -> str | None:
    """The message's msgid tag (cut to MAX_MSGID), None without one."""
    return (msg.tags.get("msgid") or "")[:MAX_MSGID] or None


def reaction_text(value: str) -> str:
    """A reaction as shown: sanitised, without formatting or surrounding spaces, at most
    MAX_REACTION characters; '' when nothing is left."""
    return plain(value).strip()[:MAX_REACTION].strip()


def _strip_crlf(text: str) -> str:
    if "\r" in text or "\n" in text or "\0" in text:
        return text.replace("\r", " ").replace("\n", " ").replace("\0", "")
    return text


def _userhost(text: str) -> str:
    """``user@host`` as a server gave it, or '' when it is not one we would put in a ban."""
    user, at, host = text.partition("@")
    return text if at and user and host and _safe_name(text) else ""


def _reserved(msg: Message) -> bool:
    """A 433 saying the nick is kept for an account (ours: "Nickname is reserved for
    the account alice: log in to it first ...", Ergo's: "... reserved by a different
    account"): nobody may be holding it, and only logging in gets it."""
    return msg.command == N.ERR_NICKNAMEINUSE and bool(_RESERVED.search(msg.params[-1]))


def _reserved_text(nick: str) -> str:
    return f"{plain(nick)} is reserved for an account: log in to it to get it back"


def _source_userhost(msg: Message) -> str:
    return _userhost(msg.source.partition("!")[2]) if msg.source else ""


def _elsewhere(command: str, target: str) -> str:
    """What marks our message to ``target`` shown in another buffer: ``[msg(#c)]``."""
    return f"[{'notice' if command == 'NOTICE' else 'msg'}({plain(target)})]"


def _safe_name(name: str) -> bool:
    """A nick or channel usable as a buffer name: printable, no spaces, commas or codes."""
    return (
        0 < len(name) <= MAX_NAME
        and sanitize(name) == name
        and plain(name) == name
        and " " not in name
        and "," not in name
    )


def split_text(text: str, limit: int) -> list[str]:
    """Split ``text`` into pieces of at most ``limit`` UTF-8 bytes, at spaces when possible."""
    text = _strip_crlf(text)
    if len(text.encode()) <= limit:
        return [text]
    out: list[str] = []
    while text:
        if len(text.encode()) <= limit:
            out.append(text)
            break
        cut = 0
        size = 0
        for i, ch in enumerate(text):
            size += len(ch.encode("utf-8", "surrogatepass"))
            if size > limit:
                break
            cut = i + 1
        space = text.rfind(" ", 0, cut + 1)
        if space > cut // 2:
            out.append(text[:space])
            text = text[space + 1 :]
        else:
            out.append(text[:cut])
            text = text[cut:]
    return [piece for piece in out if piece] or [""]


Handler = Callable[[Session, Message, float], None]

# IRCv3 typing: how long a notification holds without another, and how often we send.
_TYPING_FOR = {"active": 6.0, "paused": 30.0}
TYPING_EVERY = 3.0

_HANDLERS: dict[str, Handler] = {
    "PING": Session._on_ping,
    "PONG": Session._on_pong,
    "ERROR": Session._on_error,
    "CAP": Session._on_cap,
    "JOIN": Session._on_join,
    "PART": Session._on_part,
    "KICK": Session._on_kick,
    "QUIT": Session._on_quit,
    "NICK": Session._on_nick,
    "MODE": Session._on_mode,
    "TOPIC": Session._on_topic,
    "AWAY": Session._on_away,
    "INVITE": Session._on_invite,
    "WALLOPS": Session._on_wallops,
    "PRIVMSG": Session._on_message,
    "TAGMSG": Session._on_tagmsg,
    "NOTICE": Session._on_message,
    "BATCH": Session._on_batch,
    "CHATHISTORY": Session._on_chathistory,
    "FAIL": Session._on_fail,
    "AUTHENTICATE": Session._on_authenticate,
    "REGISTER": Session._on_register,
    "ACCOUNT": Session._on_account,
    "MARKREAD": Session._on_markread,
    "REDACT": Session._on_redact,
    "WARN": Session._on_fail,
    "NOTE": Session._on_fail,
}

_NUMERICS: dict[str, Handler] = {
    N.RPL_WELCOME: Session._welcome,
    N.RPL_ISUPPORT: Session._rpl_isupport,
    N.RPL_ENDOFMOTD: Session._rpl_endofmotd,
    N.ERR_NOMOTD: Session._rpl_endofmotd,
    N.RPL_TOPIC: Session._rpl_topic,
    N.RPL_NOTOPIC: Session._rpl_notopic,
    N.RPL_TOPICWHOTIME: Session._rpl_topicwhotime,
    N.RPL_NAMREPLY: Session._rpl_namreply,
    N.RPL_ENDOFNAMES: Session._rpl_endofnames,
    N.RPL_AWAY: Session._rpl_away,
    N.RPL_UNAWAY: Session._rpl_unaway,
    N.RPL_NOWAWAY: Session._rpl_unaway,
    N.RPL_CHANNELMODEIS: Session._rpl_channelmodeis,
    N.RPL_UMODEIS: Session._rpl_umodeis,
    N.RPL_LIST: Session._rpl_list,
    N.RPL_INVITING: Session._rpl_inviting,
    N.ERR_NICKNAMEINUSE: Session._nick_in_use,
    N.ERR_ERRONEUSNICKNAME: Session._nick_in_use,
    "437": Session._nick_in_use,  # ERR_UNAVAILRESOURCE
    N.RPL_CREATIONTIME: lambda s, m, now: None,
    N.RPL_MONONLINE: Session._rpl_mononline,
    N.RPL_MONOFFLINE: Session._rpl_monoffline,
    N.ERR_MONLISTFULL: Session._err_monlistfull,
    N.RPL_ISON: Session._rpl_ison,
    # Caller ID (user mode +g, ACCEPT), as on solanum and charybdis.
    N.RPL_ACCEPTLIST: Session._rpl_acceptlist,
    N.RPL_ENDOFACCEPT: Session._rpl_endofaccept,
    N.ERR_TARGUMODEG: Session._err_targumodeg,
    N.RPL_TARGNOTIFY: Session._rpl_targnotify,
    N.RPL_UMODEGMSG: Session._rpl_umodegmsg,
    N.ERR_ACCEPTFULL: Session._err_accept,
    N.ERR_ACCEPTEXIST: Session._err_accept,
    ERR_LISTMODEALREADYSET: Session._err_listmode,
    ERR_LISTMODENOTSET: Session._err_listmode,
    N.ERR_ACCEPTNOT: Session._err_accept,
    N.ERR_OWNMODE: Session._err_accept,
    # Accounts and SASL (numbers as IRCv3 sasl-3.1 gives them).
    "900": Session._rpl_loggedin,
    "901": Session._rpl_loggedout,
    **{code: Session._sasl_reply for code in ("902", "903", "904", "905", "906", "907", "908")},
}
