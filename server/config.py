"""Server configuration: one frozen dataclass that every layer reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from chat.casemap import Casemapping

BACKENDS = ("auto", "asyncio", "uvloop", "select")


@dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 6667
    # TLS listener next to the plaintext one (None: no TLS). Port 0 picks a free port.
    tls_port: int | None = None
    tls_cert: str | None = None  # PEM certificate, optionally followed by intermediates
    tls_key: str | None = None  # PEM private key (unencrypted)
    tls_handshake_timeout: float = 10.0  # seconds a TLS client has to finish its handshake
    # IRCv3 STS: clients told to use the TLS port, and to keep doing so for this many
    # seconds (0: not advertised). Only with a certificate clients can verify.
    sts_duration: int = 0
    name: str = "chat.local"
    network: str = "ChatNet"
    description: str = ""  # what LINKS and WHOIS say of the server ("": the network name)
    admin_location: str = "A chat server"  # ADMIN replies
    admin_email: str = "admin@chat.local"
    motd: str | None = None  # path of the MOTD file; None -> 422
    motd_lines: tuple[str, ...] | None = None  # loaded text (the core never reads files)
    config_file: str | None = None  # the TOML file read (--config): what REHASH re-reads
    password: str | None = None  # server password for PASS; None -> not required
    backend: str = "auto"
    select_impl: str = "auto"  # select backend: "auto" (epoll/kqueue/poll) | "select"
    log_level: str = "info"
    log_format: Literal["text", "json"] = "text"
    metrics_port: int | None = None  # Prometheus /metrics and /healthz; off when None
    metrics_host: str = "127.0.0.1"
    # Operator name -> password hash ("scrypt$..." from `chat-server --hash-password`).
    opers: dict[str, str] = field(default_factory=dict)
    casemapping: Casemapping = "rfc1459"
    nicklen: int = 30
    channellen: int = 50
    topiclen: int = 390
    kicklen: int = 390
    awaylen: int = 390
    userlen: int = 10
    max_channels: int = 50  # per user
    max_targets: int = 4  # TARGMAX for PRIVMSG/NOTICE and friends
    whowas_size: int = 256  # nicks remembered for WHOWAS; 0 turns WHOWAS off
    monitor_limit: int = 100  # nicks one client may MONITOR (ISUPPORT MONITOR)
    accept_limit: int = 50  # users one client may ACCEPT past its +g (ISUPPORT ACCEPT)
    multiline_max_bytes: int = 4096  # draft/multiline message size (0: not offered)
    multiline_max_lines: int = 100  # lines in one draft/multiline message
    sendq: int = 1 << 20  # bytes queued to one client before it is disconnected
    registration_timeout: float = 60.0
    ping_interval: float = 120.0  # idle seconds before the server pings a client
    ping_timeout: float = 60.0  # seconds to answer that PING
    # Abuse limits (0 turns each off).
    flood_burst: int = 20  # lines a client may send at once before fakelag applies
    flood_rate: float = 5.0  # lines per second a client may sustain
    flood_max_queue: int = 100  # delayed lines beyond which: ERROR :Excess Flood
    max_clients: int = 20000  # connections in all
    max_per_host: int = 10  # connections per IPv4 address or IPv6 /64
    throttle_burst: int = 10  # connects per host in a burst ...
    throttle_rate: float = 1.0  # ... refilled at this many per second
    oper_attempts: int = 3  # failed password checks (OPER, SASL) per connection per minute
    # Failed logins per account, whatever the connection or host (a brute force from
    # many addresses): at once, then one more per login_refill seconds.
    login_failures: int = 10
    login_refill: float = 6.0
    # Failed password checks (logins, OPER, REGISTER) per host (an IPv4 address or an
    # IPv6 /64), whatever the account or connection: at once, then one more per
    # host_password_refill seconds (Atheme's throttle). All checks share one thread.
    host_password_failures: int = 10
    host_password_refill: float = 6.0
    target_limit: int = 10  # new nicks a client may message at once (0: no limit) ...
    target_refill: float = 6.0  # ... and seconds until it may message one more
    # Seconds before a client may set or change its away message once more, past one
    # extra (solanum's away_interval): each reaches every channel peer and watcher.
    away_interval: int = 30  # 0: no limit
    # Seconds a client must have been connected before its QUIT and PART reasons are relayed
    # (solanum's anti_spam_exit_message_time): a drive-by connection's QUIT says "Client
    # Quit" instead, its PART has none. 0: always relayed; operators (of the channel, for
    # PART) are exempt.
    anti_spam_exit_message_time: int = 300
    cloak_hosts: bool = True  # show a keyed hash instead of the client's address
    cloak_key: str = ""  # secret for cloaks; empty: one kept in the --db database
    ban_file: str = "bans.json"  # K-/D-lines kept across restarts ("": only in memory)
    reserve_account_nicks: bool = True  # an account's name is a nick for it alone
    allow_register: bool = True  # REGISTER / NickServ REGISTER create accounts
    account_limit: int = 3  # accounts a host may register at once (0: no limit) ...
    account_refill: float = 1200.0  # ... and seconds until it may register one more
    # Registrations server-wide, whatever the host: many addresses, each within its
    # account_limit, would otherwise keep the server hashing passwords.
    register_limit: int = 10  # at once (0: no limit) ...
    register_refill: float = 3.0  # ... and seconds until one more (20 a minute)
    password_min_length: int = 8  # characters in an account's password, at least
    memo_limit: int = 5  # memos an account may send at once (0: no limit) ...
    memo_refill: float = 60.0  # ... and seconds until it may send one more
    # LIST, WHO, NAMES, SEARCH, CHATHISTORY and join playback walk channels, users or
    # history: matches (rows) a host may spend at once (0: no limit) and earns back per
    # second; operators are not counted.
    scan_burst: int = 200_000
    scan_rate: float = 50_000.0
    # History: SQLite store of record ("" turns history off), Redis cache-aside.
    db: str = "chat.db"
    history_playback: int = 20  # messages replayed on JOIN to clients without chathistory
    history_events: bool = True  # joins, parts, kicks, quits, nick and mode changes kept
    chathistory_limit: int = 100  # ISUPPORT CHATHISTORY: most messages per request
    redact_window: int = 86400  # seconds one may REDACT one's own message (0: no limit)
    history_max_rows: int = 10000  # per channel; 0 keeps everything
    history_max_age_days: int = 0  # 0 keeps messages forever
    redis: str | None = None  # redis://host:port/db; None: no cache
    redis_window: int = 100  # newest messages per channel kept in Redis
    redis_timeout: float = 0.25  # seconds before a Redis call counts as failed
    breaker_failures: int = 3  # consecutive Redis failures that open the breaker
    breaker_cooldown: float = 5.0  # seconds open before a half-open probe
    # Cluster: several nodes share state over Redis pub/sub (needs redis and db).
    cluster: bool = False
    node_id: str = ""  # this node's name in the cluster; empty: a random one per start
    cluster_heartbeat: float = 1.0  # seconds between heartbeats and nick lease renewals
    cluster_dead_after: float = 5.0  # a node not heard from for this long is gone
    nick_lease: float = 15.0  # seconds a nick claim lives in Redis without renewal
