"""Per-connection and per-channel state held by the core."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from chat.framing import LineBuffer

from .flood import FloodGate
from .targets import TargetGate

if TYPE_CHECKING:
    from chat.masks import Glob

    from .connlimits import HostRate
    from .handlers.accounts import ScramExchange
    from .handlers.batch import OpenBatch

# Bits of Client.tag_form: which tags a client gets on relayed messages.
FORM_TIME = 1
FORM_TAGS = 2
FORM_MULTILINE = 4  # draft/multiline (with batch): multiline messages come as a batch
FORM_ACCOUNT = 8  # account-tag without message-tags: the account tag, no other
FORMS = 16  # tag forms a relay may be serialised in


def shown_address(ip: str) -> str:
    """``ip`` as replies show it: "::1" cannot be a middle parameter (a leading ':'
    starts the trailing one), so, as other servers do, it is shown as "0::1"."""
    return "0" + ip if ip.startswith(":") else ip


class Client:
    """One connection, registered or not. The transport only reads ``out`` and ``closing``."""

    __slots__ = (
        "accepting",
        "account",
        "away",
        "away_rate",
        "cap_negotiating",
        "cap_version",
        "caps",
        "channels",
        "closing",
        "conn_id",
        "connected_at",
        "counted",
        "flood",
        "folded",
        "held",
        "host",
        "host_key",
        "invites",
        "ip",
        "knocks",
        "last_recv",
        "last_speak",
        "linebuf",
        "markers",
        "modes",
        "monitoring",
        "multiline",
        "nick",
        "nick_rate",
        "oper_name",
        "out",
        "pass_login",
        "pass_ok",
        "password_failures",
        "ping_sent_at",
        "port",
        "realname",
        "registered",
        "remote",
        "sasl",
        "scram",
        "secure",
        "tag_form",
        "targets",
        "user",
    )

    def __init__(self, conn_id: int, ip: str, port: int, now: float, secure: bool) -> None:
        self.conn_id = conn_id
        self.ip = ip
        self.host = shown_address(ip)
        self.port = port
        self.secure = secure
        self.nick = "*"
        self.folded = ""
        self.user = ""
        self.realname = ""
        self.registered = False
        self.pass_ok = False
        # PASS <account>:<password> (no server password): checked when registration ends.
        self.pass_login: tuple[str, str] | None = None
        self.caps: set[str] = set()
        self.cap_negotiating = False
        self.cap_version = 0
        self.tag_form = 0
        self.channels: dict[str, Channel] = {}
        self.modes: set[str] = set()
        self.away: str | None = None
        self.account: str | None = None  # the account logged in to (SASL, REGISTER)
        self.sasl: str | None = None  # an AUTHENTICATE exchange: the base64 so far
        self.scram: ScramExchange | None = None  # that exchange's SCRAM state, if SCRAM
        # Channels this connection was invited to: folded name -> that channel (an
        # invite is to one channel, not to the next one of its name); see invite().
        self.invites: dict[str, Channel | None] = {}
        # draft/read-marker without an account: folded target -> ms, this connection's.
        self.markers: dict[str, int] | None = None
        # draft/multiline: the batch of PRIVMSG lines being received (batch.OpenBatch).
        self.multiline: OpenBatch | None = None
        self.knocks: dict[str, float] | None = None  # KNOCK: folded channel -> when (clock)
        self.monitoring: dict[str, str] | None = None  # MONITOR list: folded -> as written
        # ACCEPT list (caller ID, +g): the users let through, in the order added; made
        # on the first ACCEPT (kept in step with ServerCore.accept, see callerid.py).
        self.accepting: dict[Client, None] | None = None
        self.oper_name: str | None = None
        self.connected_at = now
        self.last_recv = now
        self.last_speak = now
        self.ping_sent_at: float | None = None
        self.out: list[bytes] = []
        self.closing: str | None = None
        self.linebuf = LineBuffer()
        self.host_key = ip
        self.counted = False  # holds a slot in the per-host connection count
        self.flood: FloodGate | None = None
        self.password_failures: list[float] = []  # OPER, SASL: when, for the limit
        self.targets: TargetGate | None = None  # made at the first private message
        self.nick_rate: HostRate | None = None  # nick changes; made at the first one
        self.away_rate: HostRate | None = None  # away messages set; made at the first
        # Lines received while the client's OPER (checked off the loop) or REHASH
        # awaits its answer: handled, in order, once it is in (None: nothing pending).
        self.held: list[bytes] | None = None
        # Cluster: the uid ("node:conn") of a user connected to another node. Such a
        # client has no connection here: nothing is ever written to it.
        self.remote: str | None = None

    @property
    def mask(self) -> str:
        return f"{self.nick}!{self.user}@{self.host}"

    def __repr__(self) -> str:
        return f"<Client {self.conn_id} {self.nick}>"


@dataclass(slots=True)
class LocalCounts:
    """LUSERS figures for this node's connections, kept as clients change.

    Scanning every client at each registration made a connect storm quadratic.
    ServerCore moves these at each transition: connect (unknown), set_registered
    (unknown -> user), set_user_mode (+i, +o), closing (leaves unknown or users),
    and forgetting the connection (registered).
    """

    unknown: int = 0  # connected, not registered, not closing
    users: int = 0  # registered, not closing
    invisible: int = 0  # of those users: +i
    opers: int = 0  # of those users: +o
    registered: int = 0  # registered and still in core.clients, closing or not (the peak)


@dataclass(slots=True)
class Ban:
    mask: str
    setter: str
    set_at: int
    # The mask folded and compiled, made at its first match (handlers.channels.on_list):
    # every message to the channel matches its sender against the b and q lists.
    glob: Glob | None = field(default=None, compare=False, repr=False)


@dataclass(slots=True, eq=False)
class Channel:
    name: str
    folded: str
    created: int
    # Member -> its prefix modes ("o", "v", "ov"); dict keeps join order for NAMES.
    members: dict[Client, str] = field(default_factory=dict)
    topic: str = ""
    topic_setter: str = ""
    topic_time: int = 0
    modes: set[str] = field(default_factory=lambda: {"n", "t"})
    key: str | None = None
    limit: int | None = None
    bans: list[Ban] = field(default_factory=list)  # +b
    excepts: list[Ban] = field(default_factory=list)  # +e: exempt from +b
    invex: list[Ban] = field(default_factory=list)  # +I: may join while +i
    quiets: list[Ban] = field(default_factory=list)  # +q: may not speak (+e exempts)
    origin: str = ""  # cluster: the node that created it (ties on `created` go to the lower)
    last_knock: float | None = None  # the last KNOCK delivered here (core clock), any node's

    def mask_list(self, letter: str) -> list[Ban]:
        """The list behind list mode ``letter`` (b, e, I or q)."""
        lists = {"b": self.bans, "e": self.excepts, "I": self.invex, "q": self.quiets}
        return lists[letter]

    def is_op(self, client: Client) -> bool:
        return "o" in self.members.get(client, "")

    def is_voiced(self, client: Client) -> bool:
        return "v" in self.members.get(client, "")

    def prefix_of(self, client: Client, multi: bool) -> str:
        modes = self.members.get(client, "")
        prefix = ("@" if "o" in modes else "") + ("+" if "v" in modes else "")
        return prefix if multi else prefix[:1]
