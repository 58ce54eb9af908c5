"""Private-message (query) history in the client: what the server keeps between two
accounts comes back when a query opens, on PageUp, and after a reconnect.

First against our real server over TCP (clients logged in with SASL; the server's
wire behaviour is tests/server/test_private_history.py), then sans-IO cases a real
server does not produce on demand (a rename or a close while an answer is due, a
hostile TARGETS list).
"""

from __future__ import annotations

from pathlib import Path

from chat.servertime import format_time
from client.chatlog import ChatLog
from client.history import MAX_TARGETS
from client.model import Buffer, BufferKind, Kind
from client.session import Session
from client.ui.render import LineRenderer
from client.ui.views import MessagePane, Views
from tests.conftest import RunningServer

from .helpers import NOW, T0, chat_session, feed, history_batch, privmsg, sent
from .netutil import ChatClient, has_texts, texts
from .recorded import CHAT_BURST
from .test_accounts import PASSWORD, make_account


async def logged_in(
    server: RunningServer, clients: list[ChatClient], nick: str, account: str | None = None,
    **kw: object,
) -> ChatClient:
    """A client logged in to ``account`` (default: the nick), registered."""
    c = ChatClient.start(server.port, nick, sasl=(account or nick, PASSWORD), **kw)  # type: ignore[arg-type]
    clients.append(c)
    await c.wait(lambda: c.session.registered, "registration")
    assert c.session.account == (account or nick)
    return c


async def settled(c: ChatClient, name: str, wanted: list[str]) -> Buffer:
    """``c``'s buffer ``name`` once it shows ``wanted`` and no history is in flight."""

    def ok() -> bool:
        buf = c.session.buffer(name)
        return has_texts(buf, wanted) and buf is not None and not buf.history_loading

    await c.wait(ok, f"{wanted} in {name}")
    buf = c.session.buffer(name)
    assert buf is not None
    return buf


def history_asked(c: ChatClient, target: str) -> list[str]:
    return [ln for ln in c.untagged if ln.startswith("CHATHISTORY ") and ln.split()[2] == target]


def errors(s: Session) -> list[str]:
    return [ln.text for buf in s.buffers for ln in buf.lines if ln.kind is Kind.ERROR]


def logged(path: Path) -> list[str]:
    return [ln[20:] for ln in path.read_text(encoding="utf-8").splitlines()]


# ---------------------------------------------------------------------- real server


async def test_a_new_session_shows_the_earlier_conversation(
    server: RunningServer, clients: list[ChatClient], tmp_path: Path
) -> None:
    for account in ("alice", "bob"):
        await make_account(server, account)
    alice = await logged_in(server, clients, "alice")
    bob = await logged_in(server, clients, "bob")
    log = ChatLog(tmp_path / "logs")
    alice.conn.subscribe(log.handle)
    alice.conn.input("/msg bob hello bob")
    await settled(bob, "alice", ["hello bob"])  # opened by the live line, then LATEST
    bob.conn.input("/msg alice hi alice")
    await settled(alice, "bob", ["hello bob", "hi alice"])
    await settled(bob, "alice", ["hello bob", "hi alice"])
    # Each side opened its query with one LATEST whose answer repeated the live
    # line(s): merged by msgid, nothing twice.
    for c, partner in ((alice, "bob"), (bob, "alice")):
        buf = c.session.buffer(partner)
        assert buf is not None and texts(buf) == ["hello bob", "hi alice"]
        assert history_asked(c, partner) == [f"CHATHISTORY LATEST {partner} * 100"]
    await alice.stop()
    log.close()
    assert logged(tmp_path / "logs" / "bob.log") == ["<alice> hello bob", "<bob> hi alice"]

    # The same account from a new client (another nick): /query bob shows it all.
    again = await logged_in(server, clients, "alice2", "alice")
    log = ChatLog(tmp_path / "logs")  # a new run, the same files
    again.conn.subscribe(log.handle)
    again.conn.input("/query bob")
    buf = await settled(again, "bob", ["hello bob", "hi alice"])
    assert again.session.current is buf
    lines = [ln for ln in buf.lines if ln.kind is Kind.MESSAGE]
    assert [(ln.nick, ln.text, ln.history) for ln in lines] == [
        ("alice", "hello bob", True), ("bob", "hi alice", True)]
    # What our account said under the other nick is ours; bob's line is the one to notice.
    assert [(ln.own, ln.highlight) for ln in lines] == [(True, False), (False, True)]
    assert buf.unread == 0
    log.close()  # the history was logged by the first run: not written again
    assert logged(tmp_path / "logs" / "bob.log") == ["<alice> hello bob", "<bob> hi alice"]


async def test_page_up_loads_older_lines_in_a_query(
    server: RunningServer, clients: list[ChatClient]
) -> None:
    for account in ("alice", "bob"):
        await make_account(server, account)
    alice = await logged_in(server, clients, "alice")
    bob = await logged_in(server, clients, "bob")
    sent = [f"line {i}" for i in range(12)]
    for text in sent:
        alice.conn.input(f"/msg bob {text}")
    await settled(bob, "alice", sent)
    later = await logged_in(server, clients, "alice2", "alice", history_lines=5)
    later.conn.input("/query bob")
    buf = await settled(later, "bob", sent[-5:])
    assert texts(buf) == sent[-5:] and not buf.history_complete  # a full page: maybe more
    assert later.conn.request_older(buf)
    buf = await settled(later, "bob", sent[-10:])
    assert texts(buf) == sent[-10:] and not buf.history_complete
    assert later.conn.request_older(buf)
    buf = await settled(later, "bob", sent)
    assert texts(buf) == sent and buf.history_complete  # 2 < 5: the beginning
    assert not later.conn.request_older(buf)
    assert [ln.split()[1] for ln in history_asked(later, "bob")] == ["LATEST", "BEFORE", "BEFORE"]


async def test_a_reconnect_fetches_what_the_accounts_other_session_got(
    server: RunningServer, clients: list[ChatClient], tmp_path: Path
) -> None:
    for account in ("alice", "bob", "carol"):
        await make_account(server, account)
    alice = await logged_in(server, clients, "alice")
    other = await logged_in(server, clients, "alice2", "alice")  # the same account
    bob = await logged_in(server, clients, "bob")
    carol = await logged_in(server, clients, "carol")
    log = ChatLog(tmp_path / "logs")
    alice.conn.subscribe(log.handle)
    bob.conn.input("/msg alice before the drop")
    await settled(alice, "bob", ["before the drop"])
    s = alice.session
    # The connection goes down; meanwhile bob and carol write to the account's other
    # session (a message to an offline nick would only get 401).
    await alice.lose_connection()
    bob.conn.input("/msg alice2 while you were out")
    carol.conn.input("/msg alice2 carol here")
    await settled(other, "bob", ["while you were out"])
    await settled(other, "carol", ["carol here"])
    alice.gate.open()
    await alice.wait(lambda: s.connects == 2 and s.registered, "the reconnect")
    buf = await settled(alice, "bob", ["before the drop", "while you were out"])
    assert texts(buf) == ["before the drop", "while you were out"]
    notes = [ln.text for ln in buf.lines if "Reconnected" in ln.text]
    assert notes == ["Reconnected, fetched 1 missed message"]
    assert [ln.split()[1] for ln in history_asked(alice, "bob")] == ["LATEST", "AFTER"]
    # carol had no query open: CHATHISTORY TARGETS since the last message seen opened it.
    assert any(ln.startswith("CHATHISTORY TARGETS ") for ln in alice.sent)
    opened = await settled(alice, "carol", ["carol here"])
    assert texts(opened) == ["carol here"] and opened.unread == 1
    assert s.current is s.server  # opened in the background
    log.close()
    assert logged(tmp_path / "logs" / "bob.log") == [  # what was missed, then the note
        "<bob> before the drop", "-!- Disconnected: connection closed by the server",
        "<bob> while you were out", "-!- Reconnected, fetched 1 missed message"]
    assert [ln.text for ln in buf.lines][-2:] == [  # (as the pane shows them)
        "while you were out", "Reconnected, fetched 1 missed message"]
    assert logged(tmp_path / "logs" / "carol.log") == [
        "<carol> carol here", "-!- Reconnected, fetched 1 missed message"]


async def test_memoservs_hint_about_a_refused_message_goes_to_its_query(
    server: RunningServer, clients: list[ChatClient]
) -> None:
    """Our server answers a message to an account's nick nobody uses with 401 and a
    MemoServ notice, in the same labelled answer: the notice is about the message, so
    it is said where the message (its failure) is, not where the user happens to be."""
    for account in ("alice", "bob"):
        await make_account(server, account)
    alice = await logged_in(server, clients, "alice", channels=("#t",))
    chan = await alice.joined("#t")
    alice.conn.switch(chan)
    alice.conn.input("/msg bob are you there?")
    query = alice.session.buffer("bob")
    assert query is not None
    hint = "bob is not online; /msg MemoServ SEND bob <text> leaves a memo"
    await alice.wait(lambda: any(ln.text == hint for ln in query.lines), "the hint in the query")
    [failed] = [ln for ln in query.lines if ln.text == "are you there?"]
    assert failed.note == "not sent: No such nick/channel"
    assert not any(ln.text == hint for ln in chan.lines)
    assert alice.session.current is chan and alice.session.buffer("MemoServ") is None


async def test_a_query_without_accounts_on_both_sides_asks_once(
    server: RunningServer, clients: list[ChatClient]
) -> None:
    await make_account(server, "alice")
    alice = await logged_in(server, clients, "alice")
    dave = ChatClient.start(server.port, "dave")  # no account
    clients.append(dave)
    await dave.wait(lambda: dave.session.registered, "registration")
    alice.conn.input("/query dave")
    buf = alice.session.buffer("dave")
    assert buf is not None
    await alice.wait(lambda: buf.no_history and not buf.history_loading, "the refusal")
    dave.conn.input("/msg alice hey")
    await settled(alice, "dave", ["hey"])
    assert not alice.conn.request_older(buf)  # PageUp does not ask again
    dave.conn.input("/msg alice again")
    await settled(alice, "dave", ["hey", "again"])
    assert history_asked(alice, "dave") == ["CHATHISTORY LATEST dave * 100"]
    assert texts(buf) == ["hey", "again"]
    assert errors(alice.session) == []  # refused quietly
    # dave is not logged in: his query with alice never asks at all.
    query = dave.session.buffer("alice")
    assert query is not None and not dave.conn.request_older(query)
    assert not any(ln.startswith("CHATHISTORY") for ln in dave.sent)


# ---------------------------------------------------------------------- sans-IO

LOGIN = ":test.server 900 alice alice!~a@h alice :You are now logged in as alice"


def logged_in_session(**kw: object) -> Session:
    s = chat_session(channels=(), **kw)
    feed(s, [LOGIN])
    s.take_events()
    return s


def reconnect(s: Session, now: float = NOW + 60) -> list[str]:
    """Lose the connection and register again (logged in); what the session sent."""
    s.connection_lost(now, "Connection reset")
    s.connection_made(now)
    s.take_outgoing()
    return feed(s, [LOGIN, *CHAT_BURST], now)


def test_a_rename_while_history_is_due_asks_again_under_the_new_name() -> None:
    s = logged_in_session()
    out = feed(s, [privmsg("bob", "alice", "hi", "M1", T0 + 1)])
    assert out == ["CHATHISTORY LATEST bob * 100"]
    out = feed(s, [":bob!~b@h NICK robert"])
    assert out == ["CHATHISTORY LATEST robert * 100"]  # still the recent conversation
    rows = [("bob", "older", "M0", T0), ("bob", "hi", "M1", T0 + 1)]
    feed(s, history_batch("h1", "bob", rows))  # the first answer, under the old name
    assert s.buffer("bob") is None  # dropped: not a new buffer
    buf = s.buffer("robert")
    assert buf is not None and buf.history_loading and texts(buf) == ["hi"]
    feed(s, history_batch("h2", "robert", rows))
    assert texts(buf) == ["older", "hi"] and not buf.history_loading


def test_a_query_closed_while_history_is_due_stays_closed() -> None:
    s = logged_in_session()
    for nick in ("bob", "carol"):
        buf = s.open_query(nick, NOW)
        assert buf is not None and buf.history_loading
        assert s.close_buffer(buf, NOW)
        assert not buf.history_loading  # (nothing is loading into it any more)
    assert sent(s) == ["CHATHISTORY LATEST bob * 100", "CHATHISTORY LATEST carol * 100"]
    feed(s, history_batch("h1", "bob", [("bob", "old", "M1", T0)]))
    feed(s, ["FAIL CHATHISTORY MESSAGE_ERROR * carol :Messages could not be retrieved"])
    assert s.buffer("bob") is None and s.buffer("carol") is None
    assert errors(s) == []
    # A server sending a conversation unasked still opens its query (without asking).
    assert feed(s, history_batch("h2", "dave", [("dave", "pushed", "M2", T0)])) == []
    pushed = s.buffer("dave")
    assert pushed is not None and texts(pushed) == ["pushed"]


def test_the_gap_fill_of_a_query_says_only_what_was_missed() -> None:
    s = logged_in_session()
    feed(s, [privmsg("bob", "alice", "hi", "M1", T0 + 1), privmsg("carol", "alice", "yo", "M2",
                                                                    T0 + 2)])
    feed(s, history_batch("h1", "bob", [("bob", "hi", "M1", T0 + 1)]))
    feed(s, history_batch("h2", "carol", [("carol", "yo", "M2", T0 + 2)]))
    s.take_outgoing()
    out = reconnect(s)
    assert "CHATHISTORY AFTER bob msgid=M1 100" in out
    assert "CHATHISTORY AFTER carol msgid=M2 100" in out
    bob, carol = s.buffer("bob"), s.buffer("carol")
    assert bob is not None and carol is not None
    unread = bob.unread
    # bob's: our own line sent from another session of the account, and his answer.
    feed(s, [":test.server BATCH +g1 chathistory bob",
             privmsg("alice2", "bob", "from my phone", "M3", T0 + 3, batch="g1"),
             privmsg("bob", "alice2", "seen it", "M4", T0 + 4, batch="g1"),
             ":test.server BATCH -g1"])  # fmt: skip
    feed(s, history_batch("g2", "carol", []))
    assert texts(bob) == ["hi", "from my phone", "seen it"]
    assert [ln.own for ln in bob.lines if ln.kind is Kind.MESSAGE] == [False, True, False]
    assert bob.unread == unread + 1  # only bob's line counts
    assert [ln.text for ln in bob.lines if "Reconnected" in ln.text] == [
        "Reconnected, fetched 1 missed message"]  # (and in the note: ours is no news)
    assert not any("Reconnected" in ln.text for ln in carol.lines)  # nothing missed: quiet


def test_refused_history_is_asked_again_on_the_next_connection_only() -> None:
    s = logged_in_session()
    buf = s.open_query("dave", NOW)
    assert buf is not None
    assert sent(s) == ["CHATHISTORY LATEST dave * 100"]
    feed(s, ["FAIL CHATHISTORY INVALID_TARGET LATEST dave :Messages could not be retrieved"])
    assert buf.no_history and not buf.history_complete and not s.request_older(buf, NOW)
    assert feed(s, [privmsg("dave", "alice", "hey")]) == []  # a live line asks nothing
    out = reconnect(s)
    assert "CHATHISTORY LATEST dave * 100" in out and not buf.no_history
    s.connection_lost(NOW)
    s.connection_made(NOW)
    s.take_outgoing()
    assert not any("CHATHISTORY" in ln for ln in feed(s, CHAT_BURST))  # not logged in: never


def test_targets_open_queries_for_new_conversations_only() -> None:
    s = logged_in_session()
    s.switch(s.server)
    feed(s, [":alice!~a@h JOIN #t", privmsg("bob", "alice", "hi", "M1", T0 + 1)])
    s.take_outgoing()
    out = reconnect(s)
    since = format_time(T0 + 1)
    targets = [ln for ln in out if ln.startswith("CHATHISTORY TARGETS")]
    assert len(targets) == 1 and targets[0].startswith(f"CHATHISTORY TARGETS timestamp={since} ")
    listed = ["#t", "alice", "bob", "Carol", *[f"u{i}" for i in range(MAX_TARGETS + 5)]]
    lines = [":test.server BATCH +t draft/chathistory-targets",
             "@batch=t :test.server CHATHISTORY TARGETS ::evil",  # as a trailing parameter
             "@batch=t :test.server CHATHISTORY TARGETS :two words"]  # fmt: skip
    lines += [f"@batch=t :test.server CHATHISTORY TARGETS {n} {since}" for n in listed]
    lines.append(":test.server BATCH -t")
    out = feed(s, lines)
    carol = s.buffer("carol")
    assert carol is not None and carol.kind is BufferKind.QUERY
    assert out[0] == f"CHATHISTORY AFTER Carol timestamp={since} 100"
    queries = [b.name for b in s.buffers if b.kind is BufferKind.QUERY]
    # Not names that cannot be a query (':evil' could not be sent back), not the channel,
    # not ourselves, bob's query once, and no more than MAX_TARGETS in all, each asked
    # about once.
    assert queries[:3] == ["bob", "Carol", "u0"] and len(queries) == 1 + MAX_TARGETS
    assert len(out) == MAX_TARGETS
    assert s.current is s.server
    # After the batch, stray TARGETS lines open nothing.
    feed(s, [f":test.server CHATHISTORY TARGETS zed {since}"])
    assert s.buffer("zed") is None


def test_a_targets_failure_is_quiet_and_the_first_connect_does_not_ask() -> None:
    s = logged_in_session()
    assert not any("TARGETS" in ln for ln in s.take_outgoing())
    feed(s, [privmsg("bob", "alice", "hi", "M1", T0 + 1)])
    assert any(ln.startswith("CHATHISTORY TARGETS") for ln in reconnect(s))
    before = errors(s)
    feed(s, ["FAIL CHATHISTORY INVALID_PARAMS TARGETS :Invalid timestamp"])
    assert errors(s) == before
    feed(s, ["FAIL CHATHISTORY INVALID_PARAMS TARGETS :Invalid timestamp"])  # not asked
    assert sorted(errors(s)) == sorted([*before, "CHATHISTORY INVALID_PARAMS: Invalid timestamp"])


def test_the_pane_says_a_refused_query_has_no_history() -> None:
    s = logged_in_session()
    buf = s.open_query("dave", NOW)
    assert buf is not None
    pane = MessagePane(s, LineRenderer(), Views())

    def top() -> str:
        content = pane.create_content(60, 10)
        return "".join(t for _, t, *_ in content.get_line(0))

    assert top().startswith("… loading older messages")
    feed(s, ["FAIL CHATHISTORY INVALID_TARGET LATEST dave :Messages could not be retrieved",
             privmsg("dave", "alice", "hey")])  # fmt: skip
    assert top().startswith("— no history kept for this conversation —")
