"""Passwords typed to NickServ: sent unchanged, never shown, logged or kept.

First the masking itself (client/passwords.py) and which typed lines stay out of the
input history (commands.secret_input); then sans-IO cases our server cannot produce
(an echo-message copy of our message to NickServ, one in a chathistory batch); then
IDENTIFY, REGISTER and SET PASSWORD against our real server over TCP, with and without
echo-message, checking buffers and chat log files. The UI's Up/Down history is checked
in test_ui.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from client import session as session_module
from client.chatlog import ChatLog
from client.commands import secret_input
from client.model import Buffer, BufferKind, Kind
from client.passwords import MASK, is_nickserv, mask_message, mask_nickserv, secret_raw
from client.session import Session
from tests.conftest import RunningServer

from .helpers import (
    NOW,
    T0,
    all_text,
    chat_session,
    feed,
    history_batch,
    messages,
    ngircd_session,
    sent,
)
from .netutil import ChatClient, start_logged
from .test_accounts import make_account, whois_account
from .test_query_history import logged_in_session

PASSWORD = "s3cret-Pa55word"
NEW_PASSWORD = "n3w-s3cret-Pa55"
LOGGED_IN = "You are now logged in as {}"

# ---------------------------------------------------------------------- the masking


@pytest.mark.parametrize(
    ("typed", "shown"),
    [
        ("IDENTIFY hunter22", f"IDENTIFY {MASK}"),
        ("IDENTIFY alice hunter22", f"IDENTIFY alice {MASK}"),
        ("identify alice hunter22", f"identify alice {MASK}"),  # the case as typed
        ("Identify Alice hunter22", f"Identify Alice {MASK}"),
        ("  IDENTIFY   alice\thunter22  ", f"IDENTIFY alice {MASK}"),  # any whitespace
        ("IDENTIFY alice pass word", f"IDENTIFY alice {MASK}"),  # the rest is masked whole
        ("ID alice hunter22", f"ID alice {MASK}"),
        ("LOGIN hunter22", f"LOGIN {MASK}"),
        ("REGISTER hunter22", f"REGISTER {MASK}"),
        ("register hunter22 alice@example.com", f"register {MASK} alice@example.com"),
        ("REGISTER pass word", f"REGISTER {MASK}"),  # no email: nothing shows
        ("SET PASSWORD hunter22", f"SET PASSWORD {MASK}"),
        ("set password hunter22", f"set password {MASK}"),
        ("SET  PASSWORD   two words", f"SET PASSWORD {MASK}"),
        ("SET PASS hunter22", f"SET PASS {MASK}"),
        ("SASET bob PASSWORD hunter22", f"SASET bob PASSWORD {MASK}"),
        ("PASSWD old new new", f"PASSWD {MASK}"),
        ("GHOST alice hunter22", f"GHOST alice {MASK}"),
        ("RECOVER alice hunter22", f"RECOVER alice {MASK}"),
        ("GROUP alice hunter22", f"GROUP alice {MASK}"),
        ("DROP alice hunter22", f"DROP alice {MASK}"),
    ],
)
def test_passwords_are_masked(typed: str, shown: str) -> None:
    assert mask_nickserv(typed) == shown
    assert "hunter22" not in shown


@pytest.mark.parametrize(
    "typed",
    ["HELP", "help register", "IDENTIFY", "  IDENTIFY  ", "REGISTER", "SET EMAIL a@b.c",
     "SET PASSWORD", "INFO alice", "GHOST alice", "DROP alice", "", "   "],
)
def test_text_without_a_password_is_unchanged(typed: str) -> None:
    assert mask_nickserv(typed) == typed


@pytest.mark.parametrize(
    ("target", "expected"),
    [("NickServ", True), ("nickserv", True), ("NICKSERV", True), ("NickServ@services.example",
     True), ("NickServ_", False), ("ChanServ", False), ("#nickserv", False), ("bob", False)],
)  # fmt: skip
def test_the_nickserv_nick_in_any_case(target: str, expected: bool) -> None:
    assert is_nickserv(target) is expected
    masked = mask_message(target, "IDENTIFY hunter22")
    assert (masked == f"IDENTIFY {MASK}") is expected
    if not expected:
        assert masked == "IDENTIFY hunter22"  # others get the text as typed


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        ("NS IDENTIFY hunter22", True),
        ("ns identify alice hunter22", True),
        ("NICKSERV REGISTER hunter22", True),
        ("NickServ :SET PASSWORD hunter22", True),
        ("NS :IDENTIFY alice hunter22", True),
        ("PRIVMSG NickServ :IDENTIFY hunter22", True),
        ("privmsg nickserv :identify hunter22", True),
        ("PASS hunter22", True),
        ("OPER admin hunter22", True),
        ("AUTHENTICATE AGFsaWNlAGh1bnRlcjIy", True),
        ("REGISTER * * hunter22", True),
        ("NS HELP", False),
        ("NICKSERV", False),
        ("PRIVMSG NickServ :HELP", False),
        ("PRIVMSG #t :IDENTIFY hunter22", False),
        ("JOIN #t", False),
        ("", False),
    ],
)
def test_raw_lines_with_credentials(line: str, secret: bool) -> None:
    assert secret_raw(line) is secret


SERVER = Buffer(BufferKind.SERVER, "server")
CHANNEL = Buffer(BufferKind.CHANNEL, "#t")
NICKSERV_QUERY = Buffer(BufferKind.QUERY, "nickserv")
BOB_QUERY = Buffer(BufferKind.QUERY, "bob")


@pytest.mark.parametrize(
    ("typed", "current"),
    [
        ("/register hunter22", SERVER),
        ("/REGISTER acct hunter22", SERVER),
        ("/msg NickServ IDENTIFY hunter22", SERVER),
        ("/msg nickserv identify alice hunter22", CHANNEL),
        ("/MSG  NICKSERV   IDENTIFY  hunter22", SERVER),
        ("/m NickServ REGISTER hunter22 a@b.c", SERVER),
        ("/query NickServ SET PASSWORD hunter22", SERVER),
        ("/q nickserv identify hunter22", SERVER),
        ("/notice NickServ IDENTIFY hunter22", SERVER),
        ("/ns IDENTIFY hunter22", SERVER),
        ("/NS identify alice hunter22", SERVER),
        ("/nickserv SET PASSWORD hunter22", SERVER),
        ("/quote NS IDENTIFY hunter22", SERVER),
        ("/raw NICKSERV :IDENTIFY alice hunter22", SERVER),
        ("/quote PRIVMSG NickServ :REGISTER hunter22", SERVER),
        ("/quote PASS hunter22", SERVER),
        ("IDENTIFY hunter22", NICKSERV_QUERY),
        ("identify alice hunter22", NICKSERV_QUERY),
    ],
)
def test_lines_with_a_password_stay_out_of_the_history(typed: str, current: Buffer) -> None:
    assert secret_input(typed, current)


@pytest.mark.parametrize(
    ("typed", "current"),
    [
        ("/msg NickServ HELP", SERVER),
        ("/msg bob IDENTIFY hunter22", SERVER),  # only NickServ's commands are passwords
        ("/msg #t IDENTIFY hunter22", SERVER),
        ("/query NickServ", SERVER),
        ("/ns HELP", SERVER),
        ("/quote NS HELP", SERVER),
        ("/quote PRIVMSG bob :IDENTIFY hunter22", SERVER),
        ("/join #t", SERVER),
        ("/help register", SERVER),
        ("HELP", NICKSERV_QUERY),
        ("IDENTIFY hunter22", BOB_QUERY),
        ("IDENTIFY hunter22", CHANNEL),
        ("/me IDENTIFY hunter22", NICKSERV_QUERY),
    ],
)
def test_other_lines_are_kept_in_the_history(typed: str, current: Buffer) -> None:
    assert not secret_input(typed, current)


# ---------------------------------------------------------------------- sans-IO


def nickserv_texts(s: Session, own: bool = False) -> list[str]:
    """The NickServ query's message lines (only ours with ``own``)."""
    buf = s.buffer("NickServ")
    assert buf is not None
    return [ln.text for ln in messages(buf) if ln.own or not own]


def test_an_echo_of_our_message_to_nickserv_is_masked(tmp_path: Path) -> None:
    """Our server does not echo messages to NickServ; servers that do are masked too."""
    s = chat_session()
    assert s.echo
    log = ChatLog(tmp_path / "logs")
    s.input("/msg NickServ IDENTIFY alice hunter22", NOW)
    assert s.take_outgoing() == ["@label=o1 PRIVMSG NickServ :IDENTIFY alice hunter22"]
    feed(s, ["@label=o1;msgid=E1 :alice!~a@h PRIVMSG NickServ :IDENTIFY alice hunter22",
             ":alice!~a@h PRIVMSG nickserv :identify hunter22",
             ":alice!~a@h NOTICE NickServ :SET PASSWORD hunter22",
             ":alice!~a@h PRIVMSG NickServ :HELP"])  # fmt: skip
    assert nickserv_texts(s) == [
        f"IDENTIFY alice {MASK}", f"identify {MASK}", f"SET PASSWORD {MASK}", "HELP"]
    for event in s.take_events():
        log.handle(event)
    log.close()
    logged = (tmp_path / "logs" / "nickserv.log").read_text()
    assert f"<alice> IDENTIFY alice {MASK}" in logged and "hunter22" not in logged
    assert not any("hunter22" in text for text in all_text(s))


def test_our_messages_to_nickserv_in_chathistory_are_masked() -> None:
    s = logged_in_session()  # private history needs an account
    s.open_query("NickServ", NOW)
    assert sent(s) == ["CHATHISTORY LATEST NickServ * 100"]
    rows = [("alice", "IDENTIFY alice hunter22", "M1", T0),
            ("NickServ", "You are now logged in as alice", "M2", T0 + 1),
            ("alice_", "REGISTER hunter22", "M3", T0 + 2)]  # fmt: skip
    feed(s, history_batch("h1", "NickServ", rows))
    assert nickserv_texts(s) == [
        f"IDENTIFY alice {MASK}", "You are now logged in as alice", f"REGISTER {MASK}"]
    assert not any("hunter22" in text for text in all_text(s))


def test_without_echo_our_line_is_shown_masked_and_sent_unchanged() -> None:
    s = ngircd_session()
    assert not s.echo
    s.input("/ns IDENTIFY alice hunter22", NOW)
    s.input("/msg nickserv HELP", NOW)
    s.input("/notice NickServ REGISTER hunter22", NOW)
    s.switch("NickServ")
    s.input("set password hunter22", NOW)
    assert s.take_outgoing() == [
        "PRIVMSG NickServ :IDENTIFY alice hunter22",
        "PRIVMSG nickserv :HELP",
        "NOTICE NickServ :REGISTER hunter22",
        "PRIVMSG NickServ :set password hunter22",
    ]
    buf = s.buffer("NickServ")
    assert buf is not None
    assert [(ln.kind, ln.text, ln.own) for ln in buf.lines] == [
        (Kind.MESSAGE, f"IDENTIFY alice {MASK}", True),
        (Kind.MESSAGE, "HELP", True),
        (Kind.NOTICE, f"REGISTER {MASK}", True),
        (Kind.MESSAGE, f"set password {MASK}", True),
    ]
    assert not any("hunter22" in text for text in all_text(s))


def test_ns_needs_text_and_is_in_help() -> None:
    s = chat_session()
    s.input("/ns", NOW)
    assert s.take_outgoing() == []
    assert s.current.lines[-1].kind is Kind.ERROR
    assert s.current.lines[-1].text.startswith("Usage: /ns TEXT")
    s.input("/help", NOW)
    assert any(ln.text.strip().startswith("/ns TEXT") for ln in s.current.lines)
    s.input("/help nickserv", NOW)  # the alias
    assert s.current.lines[-1].text.startswith("/ns TEXT — Send TEXT to NickServ")


def test_cs_and_ms_send_to_chanserv_and_memoserv() -> None:
    s = chat_session()
    s.input("/cs", NOW)
    assert s.take_outgoing() == []
    assert s.current.lines[-1].text.startswith("Usage: /cs TEXT")
    s.input("/cs REGISTER #chat", NOW)
    s.input("/chanserv OP #chat", NOW)  # the alias
    s.input("/ms SEND bob see you", NOW)
    s.input("/memoserv READ NEW", NOW)
    assert s.take_outgoing() == ["@label=o1 PRIVMSG ChanServ :REGISTER #chat",
                                 "@label=o2 PRIVMSG ChanServ :OP #chat",
                                 "@label=o3 PRIVMSG MemoServ :SEND bob see you",
                                 "@label=o4 PRIVMSG MemoServ :READ NEW"]


# ---------------------------------------------------------------------- our server, over TCP


@pytest.fixture(params=["echo", "no-echo"])
def echo(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """With echo-message (our server sends no echo to NickServ: nothing of ours shows)
    and without it (the client shows our line itself, masked)."""
    if request.param == "no-echo":
        caps = tuple(c for c in session_module.WANTED_CAPS if c != "echo-message")
        monkeypatch.setattr(session_module, "WANTED_CAPS", caps)
    return bool(request.param == "echo")


def logs_of(tmp_path: Path) -> str:
    return "".join(p.read_text() for p in sorted((tmp_path / "logs").rglob("*.log")))


def notices_from_nickserv(s: Session) -> list[str]:
    return [ln.text for b in s.buffers for ln in b.lines
            if ln.kind is Kind.NOTICE and ln.nick == "NickServ"]  # fmt: skip


def assert_nowhere(secret: str, c: ChatClient, tmp_path: Path) -> None:
    assert not any(secret in text for text in all_text(c.session))
    assert secret not in logs_of(tmp_path)


async def test_identify_through_msg_nickserv_logs_in(
    server: RunningServer, clients: list[ChatClient], tmp_path: Path, echo: bool
) -> None:
    await make_account(server, "alice", PASSWORD)
    alice, log = await start_logged(clients, server.port, "alice", tmp_path)
    s = alice.session
    assert s.echo is echo
    alice.conn.input(f"/msg nickserv IDENTIFY alice {PASSWORD}")
    await alice.wait(lambda: s.account == "alice", "the login (900)")
    await alice.wait(lambda: LOGGED_IN.format("alice") in notices_from_nickserv(s),
                     "NickServ's notice")  # fmt: skip
    assert f"PRIVMSG nickserv :IDENTIFY alice {PASSWORD}" in alice.untagged  # sent as typed
    # Registered as alice_ (the nick was reserved for the account); logged in, the
    # client takes it (client/regain.py).
    await alice.wait(lambda: s.nick == "alice", "the account's nick")
    assert await whois_account(server, "alice") == "alice"
    await alice.wait(lambda: not s.outbox.pending, "our messages confirmed")
    log.close()
    assert_nowhere(PASSWORD, alice, tmp_path)
    assert LOGGED_IN.format("alice") in logs_of(tmp_path)  # the log has the exchange
    # Our server echoes nothing to NickServ: with echo-message the end of its labelled
    # answer confirms the line, masked as without.
    shown = f"IDENTIFY alice {MASK}"
    assert nickserv_texts(s)[0] == shown
    assert f"<alice_> {shown}" in (tmp_path / "logs" / "nickserv.log").read_text()


async def test_a_wrong_password_is_refused_and_not_shown(
    server: RunningServer, clients: list[ChatClient], tmp_path: Path, echo: bool
) -> None:
    await make_account(server, "bert", PASSWORD)
    bert, log = await start_logged(clients, server.port, "bert", tmp_path)
    s = bert.session
    bert.conn.input("/query NickServ")
    await bert.wait(lambda: s.current.name == "NickServ", "the query")
    bert.conn.input("identify wr0ng-guess")  # typed in the query buffer
    # (bert's nick is reserved for his account: he is bert_, and the refusal names the
    # account it tried after the reason.)
    await bert.wait(lambda: any(text.startswith("Invalid account name or password")
                                for text in notices_from_nickserv(s)),
                    "the refusal")  # fmt: skip
    assert s.account is None
    await bert.wait(lambda: not s.outbox.pending, "our messages confirmed")
    log.close()
    assert_nowhere("wr0ng-guess", bert, tmp_path)
    assert nickserv_texts(s)[0] == f"identify {MASK}"


async def test_register_and_set_password_through_nickserv(
    server: RunningServer, clients: list[ChatClient], tmp_path: Path, echo: bool
) -> None:
    carol, log = await start_logged(clients, server.port, "carol", tmp_path)
    s = carol.session
    carol.conn.input(f"/ns REGISTER {PASSWORD} carol@example.com")
    await carol.wait(lambda: s.account == "carol", "the account (900)")
    assert f"PRIVMSG NickServ :REGISTER {PASSWORD} carol@example.com" in carol.untagged
    notices = len(notices_from_nickserv(s))
    carol.conn.input(f"/msg NICKSERV set password {NEW_PASSWORD}")
    await carol.wait(lambda: len(notices_from_nickserv(s)) > notices, "NickServ's answer")
    assert "password" in notices_from_nickserv(s)[-1].lower()
    await carol.wait(lambda: not s.outbox.pending, "our messages confirmed")
    log.close()
    for secret in (PASSWORD, NEW_PASSWORD):
        assert_nowhere(secret, carol, tmp_path)
    assert nickserv_texts(s, own=True) == [
        f"REGISTER {MASK} carol@example.com", f"set password {MASK}"]
    logged = (tmp_path / "logs" / "nickserv.log").read_text()
    assert f"<carol> set password {MASK}" in logged
    # The new password reached the server unchanged: it logs in, the old one does not.
    later = ChatClient.start(server.port, "carol2", sasl=("carol", NEW_PASSWORD))
    clients.append(later)
    await later.wait(lambda: later.session.registered, "registration")
    assert later.session.account == "carol"
    old = ChatClient.start(server.port, "carol3", sasl=("carol", PASSWORD))
    clients.append(old)
    await old.wait(lambda: old.session.registered, "registration")
    assert old.session.account is None


async def test_quote_ns_identify_logs_in_and_shows_nothing(
    server: RunningServer, clients: list[ChatClient], tmp_path: Path
) -> None:
    await make_account(server, "dora", PASSWORD)
    dora, log = await start_logged(clients, server.port, "dora", tmp_path)
    s = dora.session
    dora.conn.input(f"/quote NS IDENTIFY dora {PASSWORD}")
    await dora.wait(lambda: s.account == "dora", "the login (900)")
    assert f"NS IDENTIFY dora {PASSWORD}" in dora.sent
    await dora.wait(lambda: LOGGED_IN.format("dora") in notices_from_nickserv(s),
                    "NickServ's notice")  # fmt: skip
    log.close()
    assert_nowhere(PASSWORD, dora, tmp_path)
