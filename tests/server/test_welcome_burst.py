"""The registration burst, LUSERS and ERROR, built from caches, counts and f-strings.

The core serialises the burst's fixed numerics once per configuration and keeps the
LUSERS figures as clients come and go, instead of formatting every line and counting
every client at each registration. These tests hold the result to what the plain
construction (Message per line, a scan of the clients) gives, byte for byte. They run
on ServerCore through the fuzz harness, which also re-checks the running counts
against a recount after every step.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chat import numerics as N
from chat.message import Message
from chat.servertime import format_time
from server import VERSION
from server.config import ServerConfig
from server.core.core import ServerCore, _safe_middle, closing_link
from server.core.handlers.registration import isupport_tokens
from server.core.relay import fit_line
from server.core.state import Client
from tests.fuzz.harness import CoreHarness, fuzz_config, recount

CONFIG = replace(fuzz_config(), flood_burst=0, throttle_burst=0, max_per_host=0, max_clients=0)
LONG_MOTD = ("short", "é" * 300, "x" * 600, "")
# A MOTD line that fits with a nick of up to 5 characters and is cut for a longer one:
# the burst goes out whole for short nicks and line by line (cut) for long ones.
EDGE_MOTD = ("y" * (512 - len(f":{CONFIG.name} 372 ") - len(" :- \r\n") - 5),)


def plain_reply(core: ServerCore, nick: str, code: str, *params: str) -> bytes:
    """A numeric the way the core built every reply before: through Message."""
    middles = [_safe_middle(p) for p in params[:-1]]
    return fit_line(Message(code, [nick, *middles, *params[-1:]], core.config.name).to_bytes())


def plain_lusers(core: ServerCore, nick: str) -> list[bytes]:
    counts = recount(core)
    mine, total = counts.users, counts.users + len(core.remote)
    peak, gpeak = str(max(core.max_clients_seen, mine)), str(max(core.max_clients_seen, total))
    inv = counts.invisible

    def r(code: str, *params: str) -> bytes:
        return plain_reply(core, nick, code, *params)

    return [
        r(N.RPL_LUSERCLIENT, f"There are {total - inv} users and {inv} invisible on 1 servers"),
        r(N.RPL_LUSEROP, str(counts.opers), "operator(s) online"),
        r(N.RPL_LUSERUNKNOWN, str(counts.unknown), "unknown connection(s)"),
        r(N.RPL_LUSERCHANNELS, str(len(core.channels)), "channels formed"),
        r(N.RPL_LUSERME, f"I have {mine} clients and 0 servers"),
        r(N.RPL_LOCALUSERS, str(mine), peak, f"Current local users {mine}, max {peak}"),
        r(N.RPL_GLOBALUSERS, str(total), gpeak, f"Current global users {total}, max {gpeak}"),
    ]


def plain_isupport(core: ServerCore, nick: str) -> list[bytes]:
    tokens = isupport_tokens(core)
    return [
        plain_reply(core, nick, N.RPL_ISUPPORT, *tokens[i : i + 13], "are supported by this server")
        for i in range(0, len(tokens), 13)
    ]


def plain_motd(core: ServerCore, nick: str) -> list[bytes]:
    cfg = core.config
    if not cfg.motd_lines:
        return [plain_reply(core, nick, N.ERR_NOMOTD, "MOTD File is missing")]
    return [
        plain_reply(core, nick, N.RPL_MOTDSTART, f"- {cfg.name} Message of the day - "),
        *(plain_reply(core, nick, N.RPL_MOTD, f"- {line}") for line in cfg.motd_lines),
        plain_reply(core, nick, N.RPL_ENDOFMOTD, "End of /MOTD command."),
    ]


def plain_burst(core: ServerCore, client: Client) -> list[bytes]:
    """001 through the MOTD as try_register built them line by line."""
    cfg, nick = core.config, client.nick

    def r(code: str, *params: str) -> bytes:
        return plain_reply(core, nick, code, *params)

    return [
        r(N.RPL_WELCOME, f"Welcome to the {cfg.network} IRC Network {client.mask}"),
        r(N.RPL_YOURHOST, f"Your host is {cfg.name}, running version {VERSION}"),
        r(N.RPL_CREATED, f"This server was created {format_time(core.created)}"),
        r(N.RPL_MYINFO, cfg.name, VERSION, "BRgiosw", "CIbceiklmnoqrstv", "Ibekloqv"),
        *plain_isupport(core, nick),
        *plain_lusers(core, nick),
        *plain_motd(core, nick),
    ]


def register(h: CoreHarness, nick: str) -> tuple[int, list[bytes]]:
    conn = h.connect()
    h.send_line(conn, f"NICK {nick}")
    got = h.send_line(conn, f"USER {nick} 0 * :{nick}")[conn]
    return conn, got


@pytest.mark.parametrize(
    "config",
    [
        CONFIG,
        replace(CONFIG, db=""),  # no CHATHISTORY tokens in ISUPPORT
        replace(CONFIG, motd_lines=None),
        replace(CONFIG, motd_lines=LONG_MOTD, network="Ünï Net", nicklen=30),
        replace(CONFIG, motd_lines=EDGE_MOTD),
        replace(CONFIG, name="odd%d%%.server"),  # LUSERS is a %-template
    ],
    ids=["history", "no-history", "no-motd", "long-motd", "edge-motd", "percent-name"],
)
@pytest.mark.parametrize("nick", ["a", "n" * 5, "n" * 6, "n" * 9, "[weird]^_`"])
def test_burst_is_what_one_message_per_line_gives(config: ServerConfig, nick: str) -> None:
    with CoreHarness(config) as h:
        register(h, "first")
        conn, got = register(h, nick)
        client = h.client(conn)
        assert client is not None
        # Counted at the moment of registration: the recount after it is the same.
        assert got == plain_burst(h.core, client)
        assert all(len(line) <= 512 for line in got)


def test_motd_and_version_send_the_cached_lines() -> None:
    config = replace(CONFIG, motd_lines=LONG_MOTD)
    with CoreHarness(config) as h:
        conn, _ = register(h, "alice")
        assert h.send_line(conn, "MOTD")[conn] == plain_motd(h.core, "alice")
        version = h.send_line(conn, "VERSION")[conn]
        assert version[1:] == plain_isupport(h.core, "alice")


def test_rehash_rebuilds_the_burst() -> None:
    with CoreHarness(CONFIG) as h:
        register(h, "before")
        h.core.reload(replace(CONFIG, network="OtherNet", motd_lines=("new",), nicklen=12))
        conn, got = register(h, "after")
        client = h.client(conn)
        assert client is not None
        assert got == plain_burst(h.core, client)
        assert b"NETWORK=OtherNet" in b"".join(got)
        assert b"NICKLEN=12" in b"".join(got)
        assert got[-2].endswith(b" :- new\r\n")


def test_rehash_leaves_the_cluster_settings_for_a_restart() -> None:
    """The cluster bus keeps the settings it started with: a reload that changes them
    names them as needing a restart rather than showing values nothing uses."""
    with CoreHarness(CONFIG) as h:
        changed = replace(CONFIG, cluster=True, node_id="n9", cluster_heartbeat=3.0,
                          cluster_dead_after=20.0, nick_lease=60.0, network="OtherNet")
        ignored = h.core.reload(changed)
        assert ignored == ["cluster", "node_id", "cluster_heartbeat", "cluster_dead_after",
                           "nick_lease"]
        config = h.core.config
        assert (config.cluster, config.node_id, config.cluster_heartbeat,
                config.cluster_dead_after, config.nick_lease) == (
            CONFIG.cluster, CONFIG.node_id, CONFIG.cluster_heartbeat,
            CONFIG.cluster_dead_after, CONFIG.nick_lease)
        assert config.network == "OtherNet"  # the rest is taken


def test_lusers_follows_modes_quits_and_unregistered_connections() -> None:
    config = replace(CONFIG, motd_lines=None)
    with CoreHarness(config, auto_close=False) as h:
        alice, _ = register(h, "alice")
        bob, _ = register(h, "bob")
        carol, _ = register(h, "carol")
        h.connect()  # unknown: never registers
        h.send_line(alice, "MODE alice +i")
        h.send_line(bob, "OPER root hunter2")
        h.send_line(bob, "MODE bob +i")
        h.send_line(carol, "JOIN #room")
        h.answer_all_history()  # (the join's playback: its output waits for it)
        assert recount(h.core) == h.core.counts
        assert h.core.counts.invisible == 2 and h.core.counts.opers == 1

        def lusers(conn: int, nick: str) -> None:
            assert h.send_line(conn, "LUSERS")[conn] == plain_lusers(h.core, nick)

        lusers(carol, "carol")
        h.send_line(bob, "QUIT :gone")  # closing, not yet lost: no longer a user
        assert h.core.counts.users == 2 and h.core.counts.opers == 0
        assert h.core.user_count() == 3  # the peak still counts it until it is gone
        lusers(carol, "carol")
        h.send_line(alice, "MODE alice -i")
        lusers(alice, "alice")
        h.lose_closed()
        assert h.core.counts.registered == 2
        lusers(alice, "alice")
        h.shutdown()
        assert h.core.counts == recount(h.core)
        assert (h.core.counts.users, h.core.counts.unknown) == (0, 0)


def test_a_quit_nobody_sees_is_not_relayed() -> None:
    with CoreHarness(CONFIG) as h:
        alone, _ = register(h, "alone")
        h.send_line(alone, "QUIT")
        assert "QUIT" not in h.core.stats.relayed
        a, _ = register(h, "a")
        b, _ = register(h, "b")
        h.send_line(a, "JOIN #x")
        h.send_line(b, "JOIN #x")
        h.answer_all_history()  # (the joins' playback: their output waits for it)
        quitter = h.client(a)
        assert quitter is not None
        got = h.send_line(a, "QUIT :bye")
        assert got[b] == [f":{quitter.mask} QUIT :Quit: bye\r\n".encode()]
        assert h.core.stats.relayed["QUIT"] == 1


_TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00\r\n"))


@settings(max_examples=300, deadline=None)
@given(st.lists(_TEXT, min_size=1, max_size=5))
def test_numeric_is_what_message_serialises(params: list[str]) -> None:
    core = ServerCore(CONFIG, clock=lambda: 0.0)
    expected = plain_reply(core, "nick", "404", *params)
    assert fit_line(core.numeric("nick", "404", *params)) == expected


@settings(max_examples=300, deadline=None)
@given(_TEXT, _TEXT)
def test_closing_link_is_what_message_serialises(host: str, reason: str) -> None:
    expected = Message("ERROR", [f"Closing Link: {host} ({reason})"]).to_bytes()
    assert closing_link(host, reason) == expected
