"""Netsplit and netjoin folding (client/netsplit.py): one line per channel for the
quits of a split and for the joins of the users coming back, given out once the
burst is over (the test drives the clock), member lists kept current at once."""

from __future__ import annotations

import asyncio
import io
import time

from prompt_toolkit.data_structures import Size
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output.vt100 import Vt100_Output

from client.config import ClientConfig
from client.connection import Connection, ConnectionSettings
from client.history import HISTORY_TIMEOUT
from client.model import Kind
from client.netsplit import MAX_NICKS, QUIET, split_servers
from client.session import SessionConfig
from client.smartfilter import Events
from client.ui.app import ChatUI

from .helpers import NOW, T0, feed
from .netutil import DEADLINE, Ircd, headless
from .test_smart_filter import event, in_t, said, shown

SPLIT = ":irc.hub.net irc.leaf.net"


def joined(nicks: list[str], t: float = T0 - 1000) -> list[str]:
    return [event(n, "JOIN", t) for n in nicks]


def test_split_reasons_are_two_server_names_and_nothing_else() -> None:
    assert split_servers("irc.hub.net irc.leaf.net") == ("irc.hub.net", "irc.leaf.net")
    assert split_servers("*.net *.split") == ("*.net", "*.split")
    for reason in [
        "Quit: irc.hub.net irc.leaf.net",  # a user's own quit message
        "irc.hub.net irc.hub.net", "irc.hub.net", "irc.hub.net  irc.leaf.net",
        "foo.bar baz.qux!", "see http://a.b c.de", "a.b c.d e.f", "1.2.3.4 5.6.7.8",
        "hub.net leaf.", ".net leaf.net", "hub leaf.net",
    ]:  # fmt: skip
        assert split_servers(reason) is None, reason


def test_a_splits_quits_are_one_line_per_channel_once_quiet() -> None:
    s, buf = in_t(channels=("#t",), events="all")
    nicks = [f"u{i}" for i in range(13)]
    feed(s, joined(nicks))
    feed(s, [event(n, "QUIT", T0 + 1, SPLIT) for n in nicks], now=NOW + 10)
    # The members go at once; the line waits for the end of the burst.
    assert not any(f"u{i}" in buf.members for i in range(13))
    assert "u0 has quit (irc.hub.net irc.leaf.net)" not in shown(s, buf)
    assert not any("Netsplit" in t for t in shown(s, buf))
    assert s.due_at == NOW + 10 + QUIET
    s.tick(NOW + 10.5)
    assert not any("Netsplit" in t for t in shown(s, buf))
    s.tick(NOW + 11)
    line = buf.lines[-1]
    assert line.kind is Kind.QUIT and line.nick == "" and len(line.nicks) == 13
    assert line.text == (
        "Netsplit irc.hub.net <-> irc.leaf.net quits: "
        + ", ".join(nicks[:MAX_NICKS]) + " (+3 more)"
    )
    assert line.time == T0 + 1  # (server time of the first quit)
    assert s.due_at == NOW + HISTORY_TIMEOUT  # (#t's history, never answered here)
    assert [ln.kind for ln in buf.lines].count(Kind.QUIT) == 1


def test_a_fold_names_those_who_spoke_first_most_recently_first() -> None:
    """30 split, 3 of whom had spoken: the line named the last 10 to quit, the talkers
    hidden in "+20 more". They come first now, the newest speaker first; the joins of
    their return too."""
    s, buf = in_t(events="all")
    nicks = [f"n{i}" for i in range(30)]
    feed(s, [*joined(nicks), said("n2", "first", T0), said("n1", "second", T0 + 1),
             said("n3", "third", T0 + 2), said("n2", "again", T0 + 3)])  # fmt: skip
    feed(s, [event(n, "QUIT", T0 + 10, SPLIT) for n in reversed(nicks)], now=NOW)
    s.tick(NOW + 5)
    quiet = [f"n{i}" for i in range(29, 3, -1)][: MAX_NICKS - 3]
    assert buf.lines[-1].text == (
        "Netsplit irc.hub.net <-> irc.leaf.net quits: "
        + ", ".join(["n2", "n3", "n1", *quiet]) + " (+20 more)"
    )
    feed(s, [event(n, "JOIN", T0 + 60) for n in nicks], now=NOW + 60)
    s.tick(NOW + 65)
    assert buf.lines[-1].text.startswith("Netsplit over, joins: n2, n3, n1, n0, n4, n5, ")


def test_a_fold_goes_before_any_later_line_of_its_channel() -> None:
    s, buf = in_t(events="all")
    feed(s, joined(["bob", "carol", "dave"]))
    feed(s, [event("bob", "QUIT", T0 + 1, SPLIT), event("carol", "QUIT", T0 + 1, SPLIT),
             said("dave", "what happened", T0 + 2)], now=NOW)  # fmt: skip
    assert shown(s, buf)[-2:] == [
        " Netsplit irc.hub.net <-> irc.leaf.net quits: bob, carol",
        "dave what happened",
    ]


def test_the_same_users_joining_again_is_one_netjoin_line() -> None:
    s, buf = in_t(events="all")
    feed(s, joined(["bob", "carol", "dave"]))
    feed(s, [event(n, "QUIT", T0 + 1, SPLIT) for n in ("bob", "carol")], now=NOW)
    feed(s, [event("erin", "JOIN", T0 + 50)], now=NOW + 60)  # (not split: as ever)
    feed(s, [event(n, "JOIN", T0 + 60) for n in ("bob", "carol")], now=NOW + 120)
    assert "bob" in buf.members and "carol" in buf.members  # at once
    s.tick(NOW + 122)
    assert shown(s, buf)[-3:] == [
        " Netsplit irc.hub.net <-> irc.leaf.net quits: bob, carol",
        "erin has joined #t",
        " Netsplit over, joins: bob, carol",
    ]
    # Joined once more (a part and join later): an ordinary join line.
    feed(s, [event("bob", "PART", T0 + 70), event("bob", "JOIN", T0 + 71)], now=NOW + 130)
    assert shown(s, buf)[-1] == "bob has joined #t"


def test_a_join_long_after_the_split_is_an_ordinary_one() -> None:
    s, buf = in_t(events="all")
    feed(s, joined(["bob"]))
    feed(s, [event("bob", "QUIT", T0 + 1, SPLIT)], now=NOW)
    feed(s, [event("bob", "JOIN", T0 + 3600)], now=NOW + 3600)
    assert shown(s, buf)[-1] == "bob has joined #t"


def test_a_user_quit_that_looks_like_a_split_is_shown_as_a_quit() -> None:
    s, buf = in_t(events="all")
    feed(s, joined(["bob"]))
    feed(s, [event("bob", "QUIT", T0 + 1, ":Quit: irc.hub.net irc.leaf.net")])
    assert shown(s, buf)[-1] == "bob has quit (Quit: irc.hub.net irc.leaf.net)"


def test_a_query_keeps_its_own_quit_line() -> None:
    s, buf = in_t(events="all")
    feed(s, [*joined(["bob"]), said("bob", "hi", T0)])
    feed(s, [":bob!b@h PRIVMSG alice :psst"])
    feed(s, [event("bob", "QUIT", T0 + 1, SPLIT)], now=NOW)
    query = s.buffer("bob")
    assert query is not None
    assert query.lines[-1].text == "has quit (irc.hub.net irc.leaf.net)"
    assert not any("Netsplit" in t for t in shown(s, buf))
    s.tick(NOW + 5)
    assert "Netsplit" in buf.lines[-1].text


def test_the_smart_filter_shows_a_fold_when_any_of_its_nicks_spoke() -> None:
    s, buf = in_t()  # smart
    feed(s, [*joined(["bob", "carol", "dave"]), said("carol", "hi", T0)])
    feed(s, [event(n, "QUIT", T0 + 10, SPLIT) for n in ("bob", "carol")], now=NOW)
    feed(s, [event("dave", "QUIT", T0 + 10, ":other.net leaf.net")], now=NOW)
    s.tick(NOW + 2)
    folds = [ln for ln in buf.lines if ln.nicks]
    assert len(folds) == 2
    assert [s.hidden(buf, ln) for ln in folds] == [False, True]  # dave never spoke
    s.set_filter(Events.NONE, NOW)
    assert all(s.hidden(buf, ln) for ln in folds)
    s.set_filter(Events.ALL, NOW)
    assert not any(s.hidden(buf, ln) for ln in folds)


def test_folds_waiting_at_a_disconnect_are_shown_then() -> None:
    s, buf = in_t(events="all")
    feed(s, joined(["bob"]))
    feed(s, [event("bob", "QUIT", T0 + 1, SPLIT)], now=NOW)
    s.connection_lost(NOW + 0.2, "reset")
    assert any(ln.text.startswith("Netsplit") for ln in buf.lines)


async def test_the_ui_shows_a_fold_when_due_without_more_traffic() -> None:
    s, buf = in_t(events="all")
    conn = Connection(s, ConnectionSettings(host="127.0.0.1", port=1))
    output = Vt100_Output(io.StringIO(), lambda: Size(rows=20, columns=80), term="xterm")
    with create_pipe_input() as pipe:
        ChatUI(conn, ClientConfig(), input=pipe, output=output)
        feed(s, joined(["bob"]), now=time.time())
        feed(s, [event("bob", "QUIT", T0 + 1, SPLIT)], now=time.time())
        conn.flush()  # (the events reach the UI, which asks to be called back)
        assert not any(ln.nicks for ln in buf.lines)
        deadline = time.monotonic() + 5
        while not any(ln.nicks for ln in buf.lines) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    assert buf.lines[-1].text == "Netsplit irc.hub.net <-> irc.leaf.net quits: bob"


async def test_headless_prints_a_fold_when_due_without_more_traffic(ircd: Ircd) -> None:
    # The connection calls Session.tick at due_at, so every front end gets the folded
    # line: --headless printed it only when the next line or keepalive came.
    # Every event shown: bob never spoke, and the smart filter would hide his quit.
    config = SessionConfig(nick="alice", channels=("#t",), events=Events.ALL)
    async with headless(ircd.port, config) as (out, _typed):
        await ircd.wait(lambda: "JOIN #t" in ircd.lines, "the JOIN")
        ircd.send(":alice!a@h JOIN #t")
        ircd.send(":srv 353 alice = #t :alice bob")
        ircd.send(":srv 366 alice #t :End of /NAMES list.")
        ircd.send(":bob!b@h QUIT :irc.hub.net irc.leaf.net")
        deadline = time.monotonic() + DEADLINE
        while "Netsplit" not in out.getvalue() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert "#t -- Netsplit irc.hub.net <-> irc.leaf.net quits: bob\n" in out.getvalue()
        assert ircd.lines[-1] == "JOIN #t"  # (nothing since: no traffic woke it)
