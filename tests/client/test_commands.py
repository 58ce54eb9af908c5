"""User commands and tab completion."""

from __future__ import annotations

from pathlib import Path

import pytest

from client.commands import COMMANDS
from client.config import DEFAULT_KEYS
from client.keyhelp import KEY_HELP, markdown
from client.model import BufferClosed, BufferKind, Delivery, Kind, QuitRequested
from client.session import Session, split_text
from tests.conftest import RunningServer

from .helpers import (
    NOW,
    chat_session,
    feed,
    last_error,
    make,
    ngircd_session,
    reconnect,
    run,
    texts,
)
from .netutil import ChatClient, has_texts, in_channel


@pytest.fixture
def s() -> Session:
    session = chat_session()
    session.switch("#t")
    feed(session, [":bob!b@h JOIN #t", ":bobby!b@h JOIN #t", ":carol!c@h JOIN #t"])
    return session


@pytest.mark.parametrize(
    ("typed", "sent"),
    [
        ("/join #a", ["JOIN #a"]),
        ("/join a,#b", ["JOIN #a,#b"]),
        ("/join #a,#b k1", ["JOIN #a,#b k1"]),
        ("/j #a #b", ["JOIN #a,#b"]),
        ("/part", ["PART #t"]),
        ("/who", ["WHO #t"]),
        ("/who *.example.org o", ["WHO *.example.org o"]),
        ("/part see you", ["PART #t :see you"]),
        ("/part #other bye", ["PART #other bye"]),
        ("/msg bob hi there", ["@label=o1 PRIVMSG bob :hi there"]),  # (labeled-response)
        ("/notice bob psst", ["@label=o1 NOTICE bob :psst"]),
        ("/me waves", ["@label=o1 PRIVMSG #t :\x01ACTION waves\x01"]),
        ("/nick alicia", ["NICK alicia"]),
        ("/topic", ["TOPIC #t"]),
        ("/topic a new topic", ["TOPIC #t :a new topic"]),
        ("/topic #x new", ["TOPIC #x new"]),
        ("/topic -delete", ["TOPIC #t :"]),
        ("/names", ["NAMES #t"]),
        ("/list", ["LIST"]),
        ("/list #c*", ["LIST #c*"]),
        ("/whois bob", ["WHOIS bob"]),
        ("/whowas bob", ["WHOWAS bob"]),
        ("/whowas bob 3", ["WHOWAS bob 3"]),
        ("/away gone fishing", ["AWAY :gone fishing"]),
        ("/away", ["AWAY"]),
        ("/invite dave", ["INVITE dave #t"]),
        ("/invite dave #x", ["INVITE dave #x"]),
        ("/knock #closed", ["KNOCK #closed"]),
        ("/knock #closed let me in", ["KNOCK #closed :let me in"]),
        ("/wallops hear ye", ["WALLOPS :hear ye"]),
        ("/kick bob", ["KICK #t bob"]),
        ("/kick bob be nice", ["KICK #t bob :be nice"]),
        ("/kick #x bob", ["KICK #x bob"]),
        ("/mode +m", ["MODE #t +m"]),
        ("/mode +o bob", ["MODE #t +o bob"]),
        ("/mode #x +b *!*@h", ["MODE #x +b *!*@h"]),
        ("/mode alice +i", ["MODE alice +i"]),
        ("/op bob", ["MODE #t +o bob"]),
        ("/op bob carol bobby", ["MODE #t +ooo bob carol bobby"]),
        ("/deop #x bob", ["MODE #x -o bob"]),
        ("/voice bob carol", ["MODE #t +vv bob carol"]),
        ("/devoice bob", ["MODE #t -v bob"]),
        ("/ban", ["MODE #t +b"]),
        ("/ban #x", ["MODE #x +b"]),
        ("/ban bob", ["MODE #t +b *!*@h"]),  # bob!b@h joined #t: banned by host
        ("/ban troll", ["MODE #t +b troll!*@*"]),  # not a member: by nick
        ("/ban *!*@bad.example n!u@h", ["MODE #t +bb *!*@bad.example n!u@h"]),
        ("/unban bob", ["MODE #t -b *!*@h"]),
        ("/unban #x *!*@h", ["MODE #x -b *!*@h"]),
        ("/kickban bob", ["MODE #t +b *!*@h", "KICK #t bob"]),
        ("/quiet", ["MODE #t +q"]),
        ("/quiet bob troll", ["MODE #t +qq *!*@h troll!*@*"]),
        ("/unquiet #x *!*@h", ["MODE #x -q *!*@h"]),
        ("/kb bob stop that", ["MODE #t +b *!*@h", "KICK #t bob :stop that"]),
        ("/quote PRIVMSG #t :raw line", ["PRIVMSG #t :raw line"]),
        ("/raw PING x\0y", ["PING xy"]),  # (several lines: not run, see below)
        ("/quit", ["QUIT Leaving"]),
        ("/quit bye all", ["QUIT :bye all"]),
        ("hello world", ["@label=o1 PRIVMSG #t :hello world"]),
        ("//slash text", ["@label=o1 PRIVMSG #t :/slash text"]),
        ("line one\nline two", ["@label=o1 PRIVMSG #t :line one",
                                 "@label=o2 PRIVMSG #t :line two"]),
        ("/HELP", []),
    ],
)
def test_commands_send(s: Session, typed: str, sent: list[str]) -> None:
    assert run(s, typed) == sent


@pytest.mark.parametrize(
    "typed",
    [
        "/join",
        "/msg bob",
        "/msg",
        "/notice",
        "/kick",
        "/nick",
        "/whois",
        "/whowas",
        "/whowas bob many",
        "/knock",
        "/knock bob",
        "/op",
        "/deop #x",
        "/unban",
        "/kickban",
        "/unquiet",
        "/op bad,nick",
        "/wallops",
        "/invite",
        "/quote",
        "/me",
        "/win",
        "/win 99",
        "/win #nope",
        "/who #t x",
        "/who #t o x",
        "/query",
        "/query #chan",
        "/nosuch",
        "/join #bad\x07name",
        "/msg bad,:target hi",
        "/help nosuch",
        "/register",
        "/register acct my pass word",
    ],
)
def test_bad_usage_gives_an_error_line(s: Session, typed: str) -> None:
    assert run(s, typed) == []
    assert last_error(s)


def test_help_lists_commands(s: Session) -> None:
    run(s, "/help")
    text = "\n".join(ln.text for ln in s.current.lines)
    for name in ("join", "part", "msg", "query", "me", "notice", "nick", "topic", "names",
                 "list", "whois", "whowas", "who", "notify", "ignore", "unignore", "away", "invite",
                 "knock", "wallops", "kick", "mode", "op", "deop", "voice", "devoice", "ban",
                 "unban", "kickban", "quiet", "unquiet", "quit", "close", "win", "clear", "help",
                 "quote", "register", "redact"):  # fmt: skip
        assert f"/{name}" in text
    run(s, "/help kick")
    assert "/kick" in s.current.lines[-1].text


def test_help_keys_lists_the_key_bindings_the_user_has() -> None:
    s = chat_session(keys={**DEFAULT_KEYS, "quit": ("c-x",), "next_active": ()})
    run(s, "/help")
    assert "/help keys for the keys" in s.current.lines[-len(COMMANDS) - 1].text
    run(s, "/help keys")
    shown = [ln.text for ln in s.current.lines][-len(KEY_HELP):]
    assert [text.split()[0] for text in shown][:3] == ["Alt+1..Alt+9", "Alt+0", "Alt+Q..Alt+O"]
    assert any(text.split() == ["Ctrl+X", "quit"] for text in shown), shown  # rebound
    assert any(text.startswith("  (none)") and "highlights" in text for text in shown), shown
    assert any("PgUp / PgDn" in text and "PgUp at the top" in text for text in shown), shown


def test_the_readme_lists_the_keys_help_keys_does() -> None:
    """One source for both: client/keyhelp.py (python -m client.keyhelp prints the table)."""
    readme = (Path(__file__).resolve().parents[2] / "client" / "README.md").read_text()
    assert markdown() in readme
    for action in DEFAULT_KEYS:  # every bindable action is described
        assert f"`{action}`" in markdown() or action.startswith("buffer_"), action


def test_join_help_says_what_it_does_typed_while_not_connected(s: Session) -> None:
    run(s, "/help join")
    assert s.current.lines[-1].text.endswith(
        "Join channels (and switch to them); typed while not connected, they are joined "
        "once connected.")


def test_status_modes_follow_isupport_modes(s: Session) -> None:
    s.isupport["MODES"] = "2"
    assert run(s, "/op a b c d e") == ["MODE #t +oo a b", "MODE #t +oo c d", "MODE #t +o e"]
    del s.isupport["MODES"]  # none advertised: RFC 2812's three
    assert run(s, "/voice a b c d") == ["MODE #t +vvv a b c", "MODE #t +v d"]
    s.isupport["MODES"] = ""  # no limit: still bounded per line
    assert run(s, "/deop " + " ".join("abcdefghijklmn")) == [
        "MODE #t -oooooooooooo a b c d e f g h i j k l", "MODE #t -oo m n"]


def test_ban_uses_hosts_from_names(s: Session) -> None:
    feed(s, [":test.server 353 alice = #t :@alice!~a@127.0.0.1 +dave!~d@dave.example "
             "erin!e",
             ":test.server 366 alice #t :End of /NAMES list"])
    assert run(s, "/ban dave") == ["MODE #t +b *!*@dave.example"]
    assert run(s, "/ban erin") == ["MODE #t +b erin!*@*"]  # no host given: by nick
    feed(s, [":dave!~d@dave.example NICK david"])
    assert run(s, "/kb david bye") == ["MODE #t +b *!*@dave.example", "KICK #t david bye"]


def test_an_unknown_command_or_a_pasted_block_starting_with_a_slash_is_given_back(
    s: Session,
) -> None:
    # False: neither run nor sent, refused (the UI puts it in the input history).
    assert s.input("/mgs bob a long message with a typo in the command", NOW) is False
    assert s.take_outgoing() == [] and last_error(s).startswith("Unknown command /mgs")
    for paste in ("/etc/passwd is a file\nand another line",  # not a command at all
                  "/join #a\n/join #b",  # commands (not run as one /join "#a /join")
                  "/set sasl_password hunter2\r\n/connect libera",  # another client's
                  "/raw PING x\r\nQUIT",  # not one raw line "PING xQUIT"
                  "/nosuch\n"):  # fmt: skip
        assert s.input(paste, NOW) is False, paste
        assert s.take_outgoing() == [], paste
        assert "put // before them" in last_error(s) or "Unknown command" in last_error(s)
        assert not any("hunter2" in ln.text for ln in s.current.lines)
    # The text of a command that sends text may be a paste ("/msg bob " then a paste);
    # a command line with a line break after it is that command; // sends the block.
    assert s.input("/msg bob one\ntwo", NOW) is True
    assert s.take_outgoing() == ["@label=o1 PRIVMSG bob :one", "@label=o2 PRIVMSG bob :two"]
    assert s.input("/join #a\n", NOW) is True and s.take_outgoing() == ["JOIN #a"]
    assert s.input("//etc/passwd is a file\nand another line", NOW) is True
    assert s.take_outgoing() == ["@label=o3 PRIVMSG #t :/etc/passwd is a file",
                                 "@label=o4 PRIVMSG #t :and another line"]  # fmt: skip
    assert s.input("/join", NOW) is True  # bad usage: understood, an error line
    assert last_error(s).startswith("Usage: /join")


def test_a_refused_input_says_how_to_get_it_back_when_the_caller_says(s: Session) -> None:
    assert s.input("/mgs bob hi", NOW, "Up brings it back") is False
    assert last_error(s) == ("Unknown command /mgs (try /help; // sends a line starting "
                             "with /); Up brings it back")
    s.switch(s.server)
    assert s.input("hello", NOW, "Up brings it back") is False
    assert last_error(s).endswith("/quote a line; Up brings it back")
    assert s.input("/mgs bob hi", NOW) is False  # (headless: nothing to bring back)
    assert last_error(s).endswith("starting with /)")


def test_a_command_retyped_after_a_slash_is_not_sent_to_the_channel_unless_entered_again(
    s: Session,
) -> None:
    # "/mgs NickServ IDENTIFY pw" brought back, then "/msg ..." typed after its "/".
    typed = "//msg NickServ IDENTIFY hunter2mgs NickServ IDENTIFY hunter2"
    assert s.input(typed, NOW) is False  # refused
    assert s.take_outgoing() == []
    assert "//msg looks like a command" in last_error(s)
    assert not any("hunter2" in ln.text for ln in s.current.lines)
    for alias in ("//j #a", "//MSG bob hi", "//ns identify pw"):
        assert s.input(alias, NOW) is False and s.take_outgoing() == [], alias
    # Entered again at once: meant. Sent as a message starting with "/".
    assert s.input("//join #a please", NOW) is False
    assert run(s, "//join #a please") == ["@label=o1 PRIVMSG #t :/join #a please"]
    # ...only the very next input confirms it.
    assert s.input("//join #a please", NOW) is False
    assert run(s, "/names") == ["NAMES #t"]
    assert s.input("//join #a please", NOW) is False
    # Not a command name followed by text: sent at once.
    assert run(s, "//join") == ["@label=o2 PRIVMSG #t :/join"]
    assert run(s, "//shrug me") == ["@label=o3 PRIVMSG #t :/shrug me"]
    assert run(s, "// msg x") == ["@label=o4 PRIVMSG #t :/ msg x"]


def test_channel_commands_need_a_channel() -> None:
    s = chat_session(channels=())
    for typed in ("/op bob", "/ban", "/unban bob", "/kickban bob"):
        assert run(s, typed) == [], typed
        assert last_error(s).startswith("Usage: /")


def test_mask_lists_are_shown_in_the_current_buffer(s: Session) -> None:
    feed(s, [":test.server 367 alice #t *!*@bad.example op!o@h 1763700000",
             ":test.server 368 alice #t :End of channel ban list",
             ":test.server 348 alice #t friend!*@* op!o@h 1763700000",
             ":test.server 349 alice #t :End of channel exception list",
             ":test.server 346 alice #t trusted!*@* op!o@h 1763700000",
             ":test.server 347 alice #t :End of channel invite list",
             ":test.server 728 alice #t q mute!*@* op!o@h 1763700000",
             ":test.server 729 alice #t q :End of channel quiet list"])
    assert [ln.text for ln in s.current.lines][-8:] == [
        "#t: ban *!*@bad.example (set by op!o@h)", "End of #t ban list",
        "#t: ban exception friend!*@* (set by op!o@h)", "End of #t exception list",
        "#t: invite exception trusted!*@* (set by op!o@h)", "End of #t invite list",
        "#t: quiet mute!*@* (set by op!o@h)", "End of #t quiet list"]


def test_the_channel_list_goes_to_the_server_buffer_not_the_channel(s: Session) -> None:
    """As irssi's status window and WeeChat's server buffer: a LIST of a big network is
    thousands of lines, not the channel's (nor its chat log's)."""
    before = list(s.current.lines)
    assert run(s, "/list") == ["LIST"]
    feed(s, [":test.server 321 alice Channel :Users  Name",
             ":test.server 322 alice #t 4 :a topic",
             ":test.server 322 alice #u 1 :",
             ":test.server 323 alice :End of /LIST"])  # fmt: skip
    assert list(s.current.lines) == before
    assert [ln.text for ln in s.server.lines][-4:] == [
        "Channels (users) topic:", "#t (4) a topic", "#u (1)", "End of channel list"]


def test_inspircds_list_mode_refusals_are_said_in_words_in_their_channel(s: Session) -> None:
    s.switch(s.server)
    feed(s, [":irc.local 697 alice #t *!*@127.0.0.1 b"
             " :Channel ban list already contains *!*@127.0.0.1",
             ":irc.local 698 alice #t bad!*@* e :Channel exception list does not contain bad!*@*",
             ":irc.local 698 alice #t x!*@* Z :Channel Z list does not contain x!*@*"])  # fmt: skip
    t = s.buffer("#t")
    assert t is not None
    assert [(ln.kind, ln.text) for ln in t.lines][-3:] == [
        (Kind.ERROR, "#t: *!*@127.0.0.1 is already on the ban list"),
        (Kind.ERROR, "#t: bad!*@* is not on the ban exception list"),
        (Kind.ERROR, "#t: x!*@* is not on the +Z list"),
    ]
    # About a channel we have no buffer for: where the user is.
    feed(s, [":irc.local 697 alice #gone n!*@* b :Channel ban list already contains n!*@*"])
    assert s.current.lines[-1].text == "#gone: n!*@* is already on the ban list"


def test_query_close_win_clear(s: Session) -> None:
    assert run(s, "/query bob hello") == ["@label=o1 PRIVMSG bob :hello"]
    assert s.current.name == "bob" and s.current.kind is BufferKind.QUERY
    # echo-message is on: pending until the echo comes
    assert texts(s.current) == ["hello"]
    assert s.current.lines[-1].delivery is Delivery.PENDING
    assert run(s, "/win 2") == [] and s.current.name == "#t"
    assert run(s, "/win 1") == [] and s.current is s.server
    assert run(s, "/win bob") == [] and s.current.name == "bob"
    s.take_events()
    assert run(s, "/close") == []
    assert s.buffer("bob") is None
    assert any(isinstance(e, BufferClosed) for e in s.take_events())
    s.switch("#t")
    feed(s, [":bob!b@h PRIVMSG #t :something"])
    run(s, "/clear")
    assert len(s.current.lines) == 0
    assert run(s, "/close") == ["PART #t"]
    assert s.buffer("#t") is None and s.current is s.server
    feed(s, [":alice!a@h PART #t"])  # the late PART echo does not recreate it
    assert s.buffer("#t") is None
    run(s, "/close")
    assert "cannot be closed" in last_error(s)


def test_win_and_buffer_take_a_number_a_name_or_part_of_one(s: Session) -> None:
    feed(s, [f":alice!a@h JOIN {name}" for name in ("#c4", "#c45", "#c450")])
    s.switch(s.server)
    assert run(s, "/buffer 2") == [] and s.current.name == "#t"
    assert run(s, "/buffer #c4") == [] and s.current.name == "#c4"
    assert run(s, "/win c450") == [] and s.current.name == "#c450"
    assert run(s, "/win C45") == [] and s.current.name == "#c45"  # #c45, not #c450 too
    assert run(s, "/win c4") == [] and s.current.name == "#c4"
    assert run(s, "/win c") == []
    assert last_error(s) == "Several buffers match 'c': #c4, #c45, #c450"
    assert s.current.name == "#c4"
    run(s, "/help buffer")
    assert s.current.lines[-1].text.startswith("/win N|NAME")


def test_window_takes_irssis_subcommands(s: Session) -> None:
    feed(s, [f":alice!a@h JOIN {name}" for name in ("#c4", "#c5")])  # buffers 3 and 4
    s.open_query("next", NOW, switch=False)  # buffer 5: a nick named like a subcommand
    s.switch(s.server)
    assert run(s, "/window goto 3") == [] and s.current.name == "#c4"
    assert run(s, "/window next") == [] and s.current.name == "#c5"
    assert run(s, "/window prev") == [] and s.current.name == "#c4"
    assert run(s, "/window prev") == [] and s.current.name == "#t"
    assert run(s, "/window goto next") == [] and s.current.name == "next"  # the buffer
    assert run(s, "/window next") == [] and s.current is s.server  # (wraps around)
    assert run(s, "/window goto c5") == [] and s.current.name == "#c5"
    assert run(s, "/window close") == ["PART #c5"] and s.buffer("#c5") is None
    assert run(s, "/window close 3") == ["PART #c4"] and s.buffer("#c4") is None
    assert run(s, "/WINDOW CLOSE next") == [] and s.buffer("next") is None
    assert not any(ln.kind is Kind.ERROR for ln in s.current.lines)
    run(s, "/window goto")
    assert last_error(s).startswith("Usage: /win")
    run(s, "/window close 1")
    assert "cannot be closed" in last_error(s)
    run(s, "/window goto 9")
    assert last_error(s) == "No buffer number 9 (there are 2)"


def test_join_switches_when_joined(s: Session) -> None:
    s.switch(s.server)
    assert run(s, "/join #new") == ["JOIN #new"]
    assert s.current is s.server
    feed(s, [":alice!a@h JOIN #new"])
    assert s.current.name == "#new"
    # Joining a channel we are in just switches to it.
    s.switch(s.server)
    assert run(s, "/join #t") == []
    assert s.current.name == "#t"


def test_plain_text_needs_a_target() -> None:
    s = chat_session()
    assert s.current is s.server
    assert run(s, "hello") == []
    assert "server buffer" in last_error(s)
    s.switch("#t")
    feed(s, [":alice!a@h PART #t"])
    assert run(s, "hello") == []
    assert "not in #t" in last_error(s)


def test_commands_while_disconnected() -> None:
    s = make()
    assert run(s, "/whois bob") == []
    assert "not connected" in last_error(s)
    assert run(s, "/help") == []
    s.take_events()
    assert run(s, "/quit") == []
    assert any(isinstance(e, QuitRequested) for e in s.take_events())


def test_messages_without_echo_show_locally(s: Session) -> None:
    n = ngircd_session()
    n.switch("#t")
    assert run(n, "/me waves") == ["PRIVMSG #t :\x01ACTION waves\x01"]
    assert run(n, "/msg bob hi") == ["PRIVMSG bob :hi"]
    q = n.buffer("bob")
    assert q is not None and texts(q) == ["hi"]
    assert n.current.name == "#t"  # /msg does not switch
    assert n.current.lines[-1].kind is Kind.ACTION


def test_long_messages_are_split_to_fit_a_line(s: Session) -> None:
    word = "wörd "
    out = run(s, word * 400)
    assert len(out) > 1
    # Each piece has a label of its own (its own pending line); tags have a budget of
    # their own, apart from the 512 bytes of the line.
    assert [line.split(" ", 1)[0] for line in out] == [f"@label=o{i + 1}" for i in range(len(out))]
    out = [line.split(" ", 1)[1] for line in out]
    mask = ":alice!~a@127.0.0.1 "  # as seen in our JOIN: the server relays it in front
    for line in out:
        assert len(line.encode()) + len(mask) <= 510
    assert all(len(line.encode()) + len(mask) > 450 for line in out[:-1])
    joined = " ".join(line.split(" :", 1)[1] for line in out)
    assert joined.split() == (word * 400).split()
    shown = list(s.current.lines)[-len(out) :]
    assert [ln.delivery for ln in shown] == [Delivery.PENDING] * len(out)


def test_after_our_nick_change_long_messages_fit_with_the_new_mask(s: Session) -> None:
    long_nick = "alice-with-a-much-longer-nick"
    feed(s, [f":alice!~a@127.0.0.1 NICK {long_nick}"])
    out = [line.split(" ", 1)[1] for line in run(s, "wörd " * 400)]
    mask = f":{long_nick}!~a@127.0.0.1 "  # what the server now puts in front
    assert len(out) > 1
    for line in out:
        assert len(line.encode()) + len(mask) <= 510  # no 417 from the server
    assert all(len(line.encode()) + len(mask) > 450 for line in out[:-1])


def test_split_text() -> None:
    assert split_text("short", 100) == ["short"]
    assert split_text("a" * 25, 10) == ["a" * 10, "a" * 10, "a" * 5]
    assert split_text("ééééé", 4) == ["éé", "éé", "é"]
    assert split_text("aaa bbb ccc", 7) == ["aaa bbb", "ccc"]


# ---------------------------------------------------------------------- completion


def test_complete_nicks_channels_commands(s: Session) -> None:
    c = s.complete("bo")
    assert c.start == 0 and c.end == 2
    assert sorted(c.candidates) == ["bob: ", "bobby: "]
    c = s.complete("hi BO")
    assert c.start == 3 and sorted(c.candidates) == ["bob ", "bobby "]
    assert s.complete("hi al").candidates == []  # not ourselves
    # Recent speakers first.
    feed(s, [":bobby!b@h PRIVMSG #t :i spoke"], now=NOW + 10)
    assert s.complete("bo").candidates[0] == "bobby: "
    assert s.complete("/jo").candidates == ["/join "]
    assert "/quit " in s.complete("/q").candidates
    assert s.complete("see #").candidates == ["#t"]
    assert s.complete("").candidates == []
    c = s.complete("ca and more", cursor=2)
    assert (c.start, c.end, c.candidates) == (0, 2, ["carol: "])


async def test_completion_ranks_who_spoke_not_who_joined_also_after_a_reconnect(
    server: RunningServer, clients: list[ChatClient]
) -> None:
    alice, a_buf = await in_channel(clients, server.port, "alice")
    alice.conn.switch(a_buf)
    alice.conn.input("alice talks")
    await alice.wait(lambda: has_texts(a_buf, ["alice talks"]), "alice's echo")
    carol = ChatClient.start(server.port, "carol", ("#t",))  # alice's line: join history
    alfred = ChatClient.start(server.port, "alfred", ("#t",))  # joins later, silent
    clients += [carol, alfred]
    c_buf = await carol.joined("#t")
    carol.conn.switch(c_buf)
    await alfred.joined("#t")
    await carol.wait(lambda: "alfred" in c_buf.members, "alfred's join")
    assert carol.session.complete("al").candidates == ["alice: ", "alfred: "]

    await carol.lose_connection()
    carol.gate.open()
    await carol.wait(lambda: carol.session.connects == 2 and c_buf.joined
                     and not c_buf.history_loading and "alfred" in c_buf.members,
                     "the rejoin")  # fmt: skip
    assert carol.session.complete("al").candidates == ["alice: ", "alfred: "]

    alfred.conn.switch("#t")
    alfred.conn.input("now me")
    await carol.wait(lambda: has_texts(c_buf, ["now me"]), "alfred's message")
    assert carol.session.complete("al").candidates == ["alfred: ", "alice: "]


def test_ctcp_ping_and_version_commands(s: Session) -> None:
    assert run(s, "/ctcp bob version") == ["PRIVMSG bob :\x01VERSION\x01"]
    assert s.current.lines[-1].text == "CTCP VERSION to bob"
    assert run(s, "/ctcp #t clientinfo x y") == ["PRIVMSG #t :\x01CLIENTINFO x y\x01"]
    assert run(s, "/version bob") == ["PRIVMSG bob :\x01VERSION\x01"]
    feed(s, [":bob!b@h NOTICE alice :\x01VERSION irssi 1.4\x01"])
    assert s.current.lines[-1].text == "CTCP VERSION reply from bob: irssi 1.4"
    # /ping carries the time; the reply shows the round trip.
    token = str(round(NOW * 1000))
    assert run(s, "/ping bob") == [f"PRIVMSG bob :\x01PING {token}\x01"]
    feed(s, [f":bob!b@h NOTICE alice :\x01PING {token}\x01"], now=NOW + 0.25)
    assert s.current.lines[-1].text == "CTCP PING reply from bob: 0.250 s"
    feed(s, [":bob!b@h NOTICE alice :\x01PING 12345\x01"])  # not ours: as it came
    assert s.current.lines[-1].text == "CTCP PING reply from bob: 12345"
    assert s.buffer("bob") is None  # no query opened
    for bad in ("/ctcp bob", "/ctcp", "/ctcp ", "/ctcp bob VER\x01SION", "/ping", "/ping ",
                "/ping a b", "/version", "/version ", "/ctcp bo,b VERSION"):  # fmt: skip
        assert run(s, bad) == [], bad
        error = s.current.lines[-1]
        assert error.kind is Kind.ERROR, bad
        assert error.text.startswith(("Usage: /", "Invalid ")), (bad, error.text)


def test_text_that_cannot_be_sent_is_given_back_to_the_input_line(s: Session) -> None:
    from client.outbox import MAX_WAITING

    # False: not sent, nor waiting: refused (the UI puts it in the input history).
    s.switch(s.server)
    assert s.input("hello server", NOW) is False
    assert s.input("/me waves", NOW) is False
    feed(s, [":alice!~a@h PART #t"])
    s.switch("#t")
    assert s.input("text in a parted channel", NOW) is False
    assert last_error(s) == "You are not in #t (/join #t)"
    assert s.take_outgoing() == []
    # A paste of more lines than the outbox takes: refused whole, kept.
    feed(s, [":alice!~a@h JOIN #t"])
    paste = "\n".join(f"m{i}" for i in range(MAX_WAITING + 1))
    assert s.input(f"/msg bob {paste}", NOW) is False
    assert last_error(s).startswith(f"Not sent: this paste makes {MAX_WAITING + 1} messages")
    s.connection_lost(NOW + 1)
    assert s.input(paste, NOW) is False
    assert s.take_outgoing() == []
    assert s.input("one", NOW) is True  # waits in the outbox: taken


def test_msg_to_a_comma_list_sends_one_message_to_each(s: Session) -> None:
    assert run(s, "/msg bob,#t,bob hi both") == [
        "@label=o1 PRIVMSG bob :hi both", "@label=o2 PRIVMSG #t :hi both"]  # fmt: skip
    assert run(s, "/msg bob,,carol hi") == [] and "Invalid target" in last_error(s)


def test_part_or_close_while_not_connected_forgets_the_join() -> None:
    s = chat_session(channels=("#t",))
    s.connection_lost(NOW + 1)
    assert run(s, "/join #p1,#j2,#p3 k1") == []
    assert run(s, "/part #p1") == []
    assert s.current.lines[-1].text == "Not connected: will no longer join #p1"
    assert run(s, "/part #nowhere") == [] and last_error(s) == "/part: not connected"
    assert run(s, "/close #t") == []  # (a channel to rejoin, its buffer closed)
    assert run(s, "/part #p3") == []
    out = reconnect(s)
    assert [o for o in out if o.startswith("JOIN ")] == ["JOIN #j2"]


def test_join_while_not_connected_joins_at_the_next_registration() -> None:
    s = chat_session(channels=("#t",))
    feed(s, [":alice!~a@h PART #t"])
    s.connection_lost(NOW + 1)
    assert run(s, "/join #a,#t,b k1,,k3") == []
    assert s.current.lines[-1].text == "Not connected: will join #a, #t, #b when connected"
    s.take_events()
    out = reconnect(s)
    assert [o for o in out if o.startswith("JOIN ")] == ["JOIN #a,#b,#t k1,k3"]  # keyed first
    feed(s, [":alice!~a@h JOIN #a"])
    assert s.current.name == "#a"  # switched to, as a /join does


async def test_a_refused_nick_is_said_where_nick_was_typed_not_in_that_nicks_query(
    server: RunningServer, clients: list[ChatClient]
) -> None:
    alice = ChatClient.start(server.port, "alice", ("#t",))
    bobby = ChatClient.start(server.port, "bobby")
    clients += [alice, bobby]
    t = await alice.joined("#t")
    await bobby.wait(lambda: bobby.session.registered, "bobby's registration")
    bobby.conn.input("/msg alice hi")
    await alice.wait(lambda: has_texts(alice.session.buffer("bobby"), ["hi"]), "the query")
    query = alice.session.buffer("bobby")
    assert query is not None
    alice.conn.switch(t)
    alice.conn.input("/nick bobby")
    await alice.wait(lambda: any(ln.kind is Kind.ERROR for ln in t.lines), "the 433 in #t")
    assert [ln.text for ln in t.lines if ln.kind is Kind.ERROR] == [
        "bobby: Nickname is already in use"]  # fmt: skip
    assert not [ln for ln in query.lines if ln.kind is Kind.ERROR]
