"""/ignore: messages, notices, CTCPs and invites from matching senders are dropped."""

from __future__ import annotations

from pathlib import Path

import pytest

from client.cli import build
from client.config import ConfigError, parse
from client.ignore import IgnoreList
from client.model import BufferKind, Kind
from client.session import Session
from server.config import ServerConfig
from tests.conftest import start_server

from .helpers import NOW, T0, chat_session, feed, history_batch, texts
from .netutil import ChatClient, has_texts, in_channel


def infos(s: Session) -> list[str]:
    return [ln.text for ln in s.current.lines if ln.kind is Kind.INFO]


def test_masks_match_nicks_and_hosts_under_the_casemapping() -> None:
    ig = IgnoreList(["Bob", "*!*@bad.example", "eve!~e@*"])
    assert ig.masks() == ["Bob!*@*", "*!*@bad.example", "eve!~e@*"]
    assert ig.matches("bob!~b@good.example") and ig.matches("BOB")
    assert ig.matches("anyone!x@BAD.example")
    assert ig.matches("eve!~e@h") and not ig.matches("eve!other@h")
    assert not ig.matches("eve") and not ig.matches("carol!~c@h") and not ig.matches(None)
    assert ig.add("bob") is None and ig.remove("BOB!*@*") == "Bob!*@*"
    ig.refold(lambda n: n.lower().translate(str.maketrans("[]", "{}")))
    assert ig.add("x[1]") == "x[1]!*@*" and ig.matches("X{1}!u@h")


def test_ignored_messages_never_reach_a_buffer() -> None:
    s = chat_session(ignore=("bob",))
    chan = s.buffer("#t")
    assert chan is not None
    feed(s, [
        ":bob!~b@h PRIVMSG #t :hello from bob",
        ":carol!~c@h PRIVMSG #t :hello from carol",
        ":bob!~b@h PRIVMSG alice :a private word",  # no query opens
        ":bob!~b@h NOTICE alice :a notice",
        ":bob!~b@h INVITE alice #secret",
    ])  # fmt: skip
    assert texts(chan) == ["hello from carol"]
    assert s.buffer("bob") is None
    all_lines = [ln.text for b in s.buffers for ln in b.lines]
    assert not any("bob" in t and ("notice" in t or "invites" in t) for t in all_lines)
    # A CTCP request from an ignored sender gets no reply.
    assert feed(s, [":bob!~b@h PRIVMSG alice :\x01VERSION\x01"]) == []
    assert feed(s, [":carol!~c@h PRIVMSG alice :\x01VERSION\x01"])[0].startswith("NOTICE carol")


def test_ignored_history_lines_are_dropped() -> None:
    s = chat_session(ignore=("*!~mallory@*",))
    chan = s.buffer("#t")
    assert chan is not None
    feed(s, history_batch("h1", "#t", [
        ("carol", "first", "m1", T0 - 3),
        ("mallory", "spam", "m2", T0 - 2),
        ("carol", "second", "m3", T0 - 1),
    ]))  # fmt: skip
    assert texts(chan) == ["first", "second"]


def test_ignore_commands() -> None:
    s = chat_session(channels=())
    s.input("/ignore bob *!*@bad.example", NOW)
    assert infos(s)[-2:] == ["Ignoring bob!*@*", "Ignoring *!*@bad.example"]
    s.input("/ignore add BOB", NOW)
    assert infos(s)[-1] == "Already ignored: BOB"
    s.input("/ignore", NOW)
    assert infos(s)[-1] == "Ignoring: bob!*@*, *!*@bad.example"
    s.input("/unignore bob", NOW)
    s.input("/ignore del zed", NOW)
    assert infos(s)[-2:] == ["No longer ignoring bob!*@*", "Not ignored: zed"]
    feed(s, [":bob!~b@h PRIVMSG alice :back in favour"])
    query = s.buffer("bob")
    assert query is not None and query.kind is BufferKind.QUERY
    assert texts(query) == ["back in favour"]
    for bad in ("/ignore add", "/unignore", "/ignore a,b"):
        s.input(bad, NOW)
        assert s.current.lines[-1].kind is Kind.ERROR, bad
    assert s.take_outgoing() == []


def test_own_messages_are_never_ignored() -> None:
    s = chat_session(ignore=("*",))
    chan = s.buffer("#t")
    assert chan is not None
    feed(s, [
        "@msgid=x1 :alice!~a@127.0.0.1 PRIVMSG #t :my own echo",
        ":carol!~c@h PRIVMSG #t :everyone else",
    ])  # fmt: skip
    assert texts(chan) == ["my own echo"]


def test_config_ignore_lists_merge(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        'ignore = ["spammer"]\n[servers.home]\nhost = "127.0.0.1"\nignore = ["*!*@bad.example"]\n'
    )
    setup = build(["--config", str(path), "home"])
    assert setup.session.ignores.masks() == ["spammer!*@*", "*!*@bad.example"]
    with pytest.raises(ConfigError, match="ignore"):
        parse({"ignore": ["a b"]})


async def test_an_ignored_user_on_a_real_server(clients: list[ChatClient]) -> None:
    running = start_server(ServerConfig(name="test.server", network="TestNet"), "asyncio")
    try:
        alice, buf = await in_channel(clients, running.port, "alice")
        alice.session.ignore(["bob"], NOW)
        bob = ChatClient.start(running.port, "bob", ("#t",))
        carol = ChatClient.start(running.port, "carol", ("#t",))
        clients += [bob, carol]
        b_buf, c_buf = await bob.joined("#t"), await carol.joined("#t")
        bob.conn.switch(b_buf)
        bob.conn.input("you cannot see me")
        bob.conn.input("/msg alice nor this")
        await bob.wait(lambda: has_texts(b_buf, ["you cannot see me"]), "bob's echo")
        carol.conn.switch(c_buf)
        carol.conn.input("but you see me")
        await alice.wait(lambda: has_texts(buf, ["but you see me"]), "carol's message")
        assert texts(buf) == ["but you see me"]
        assert alice.session.buffer("bob") is None
    finally:
        for c in clients:
            await c.stop()
        clients.clear()
        running.handle.stop()


def test_joins_parts_quits_and_nicks_of_ignored_users_are_hidden_not_lost() -> None:
    s = chat_session(ignore=("bob",))
    chan = s.buffer("#t")
    assert chan is not None
    feed(s, [":bob!~b@h JOIN #t", ":carol!~c@h JOIN #t"])
    assert set(chan.members) == {"alice", "bob", "carol"}  # the member list is true
    feed(s, [":bob!~b@h NICK bobby", ":bobby!~b@h PART #t :bye"])
    assert set(chan.members) == {"alice", "carol"}
    feed(s, [":bob!~b@h JOIN #t", ":bob!~b@h QUIT :gone", ":carol!~c@h QUIT :gone too"])
    events = [(ln.kind, ln.nick) for ln in chan.lines if ln.kind is not Kind.INFO]
    # bob's join, quit and nick change are not shown; after the NICK, "bobby" no
    # longer matches "bob!*@*" (as in irssi), so that PART is.
    assert events == [
        (Kind.JOIN, "alice"), (Kind.JOIN, "carol"), (Kind.PART, "bobby"), (Kind.QUIT, "carol"),
    ]
