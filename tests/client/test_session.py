"""Sans-IO session tests with lines recorded from real servers."""

from __future__ import annotations

import time

import pytest

from chat.message import parse
from chat.servertime import format_time
from client import history as client_history
from client.model import (
    BufferKind,
    Delivery,
    HistoryAdded,
    Kind,
    LineAdded,
    QuitRequested,
    State,
)
from client.session import LAG_STALLED, MAX_MEMBERS, Session

from .helpers import (
    NOW,
    T0,
    chat_session,
    chathistory_batch,
    feed,
    history_batch,
    joined_session,
    last_error,
    make,
    messages,
    ngircd_session,
    privmsg,
    reconnect,
    run,
    sent,
    texts,
)
from .recorded import CHAT_BURST, CHAT_JOIN, NGIRCD_BURST, NGIRCD_JOIN, NO_CAP_BURST

ALL_CAPS = (
    "server-time message-tags echo-message batch labeled-response draft/chathistory "
    "multi-prefix away-notify userhost-in-names"
)


# ---------------------------------------------------------------------- registration


def test_registration_against_our_server() -> None:
    s = make(channels=("#t",))
    s.connection_made(NOW)
    assert s.take_outgoing() == ["CAP LS 302", "NICK alice", "USER alice 0 * alice"]
    assert s.state is State.REGISTERING
    assert feed(s, CHAT_BURST[:1]) == [f"CAP REQ :{ALL_CAPS}"]
    assert feed(s, CHAT_BURST[1:2]) == ["CAP END"]
    assert feed(s, CHAT_BURST[2:-1]) == []
    assert s.state is State.CONNECTED and s.registered
    assert s.history_enabled and s.echo
    assert s.chathistory_limit == 100 and s.network == "TestNet"
    assert s.prefix_symbols == "@+" and s.casemapping == "rfc1459"
    # End of MOTD (422 here): join the configured channels.
    assert feed(s, CHAT_BURST[-1:]) == ["JOIN #t"]
    assert feed(s, CHAT_JOIN) == ["CHATHISTORY LATEST #t * 100"]
    buf = s.buffer("#T")
    assert buf is not None and buf.joined and buf.kind is BufferKind.CHANNEL
    assert [(m.prefixes, m.nick) for m in buf.sorted_members(s.prefix_symbols)] == [("@", "alice")]
    assert buf.history_loading


@pytest.mark.parametrize("user", ["", "a b", ":u"])
def test_a_user_name_that_cannot_be_sent_is_derived_from_the_nick(user: str) -> None:
    """USER never carries what ``_send`` refuses (that raised out of connection_made),
    nor, by default, the nick's characters ngIRCd drops the connection for."""
    s = make("[bob]", user=user)
    s.connection_made(NOW)
    assert s.take_outgoing()[-1] == "USER bob 0 * [bob]"


def test_registration_against_ngircd_degrades() -> None:
    s = make(channels=("#t",))
    s.connection_made(NOW)
    s.take_outgoing()
    # Only what the server offers is requested.
    assert feed(s, NGIRCD_BURST[:1]) == ["CAP REQ multi-prefix"]
    assert feed(s, NGIRCD_BURST[1:2]) == ["CAP END"]
    assert feed(s, NGIRCD_BURST[2:]) == ["JOIN #t"]
    assert s.caps == {"multi-prefix"}
    assert not s.history_enabled and not s.echo
    assert s.casemapping == "ascii" and s.prefix_symbols == "~&@%+" and s.chantypes == "#&+"
    assert s.nicklen == 9
    # No CHATHISTORY after the JOIN.
    assert feed(s, NGIRCD_JOIN) == []
    buf = s.buffer("#t")
    assert buf is not None and buf.joined and not buf.history_loading
    assert s.request_older(buf, NOW) is False


def test_cap_nak_still_ends_negotiation() -> None:
    s = make()
    s.connection_made(NOW)
    s.take_outgoing()
    feed(s, [":srv CAP * LS :server-time batch"])
    assert feed(s, [":srv CAP * NAK :server-time batch"]) == ["CAP END"]
    assert s.caps == set()


def test_server_without_cap_registers() -> None:
    s = make(channels=("#a",))
    s.connection_made(NOW)
    s.take_outgoing()
    assert feed(s, NO_CAP_BURST) == ["JOIN #a"]
    assert s.registered and s.caps == set()


def test_multiline_cap_ls() -> None:
    s = make()
    s.connection_made(NOW)
    s.take_outgoing()
    assert feed(s, [":srv CAP * LS * :server-time sasl=PLAIN"]) == []
    assert feed(s, [":srv CAP * LS :batch echo-message"]) == [
        "CAP REQ :server-time echo-message batch"
    ]
    assert s.available_caps["sasl"] == "PLAIN"


def test_password_goes_before_nick() -> None:
    s = make(password="sekrit", user="al", realname="Alice Liddell")
    s.connection_made(NOW)
    assert s.take_outgoing() == [
        "CAP LS 302",
        "PASS sekrit",
        "NICK alice",
        "USER al 0 * :Alice Liddell",
    ]


def test_nick_in_use_fallbacks_and_retry_on_reconnect() -> None:
    s = make()
    s.connection_made(NOW)
    s.take_outgoing()
    assert feed(s, [":srv 433 * alice :Nickname is already in use"]) == ["NICK alice_"]
    assert feed(s, [":srv 433 * alice_ :Nickname is already in use."]) == ["NICK alice_2"]
    assert s.server.lines[-1].text == "Nickname is already in use; trying alice_2"  # not ".;"
    feed(s, [":srv 001 alice_2 :Welcome"])
    assert s.nick == "alice_2"
    # After registration a 433 (from /nick) is only an error line.
    assert feed(s, [":srv 433 alice_2 bob :Nickname is already in use"]) == []
    assert s.current.lines[-1].kind is Kind.ERROR
    # A reconnect asks for the preferred nick again.
    s.connection_lost(NOW)
    s.connection_made(NOW)
    assert "NICK alice" in s.take_outgoing()


def test_the_user_mode_reply_is_kept_without_its_sign() -> None:
    """221 (``/mode alice``): the status bar showed ``alice(++i)``, or ``(++)``."""
    s = chat_session(channels=())
    feed(s, [":test.server 221 alice +iw"])
    assert s.user_modes == "iw" and s.current.lines[-1].text == "Your modes: +iw"
    feed(s, [":test.server 221 alice +"])
    assert s.user_modes == "" and s.current.lines[-1].text == "You have no user modes"


def test_user_modes_follow_mode_lines_and_are_forgotten_on_reconnect() -> None:
    s = chat_session(channels=())
    feed(s, [":alice!~alice@host MODE alice :+gi"])
    assert s.user_modes == "gi"
    feed(s, [":alice!~alice@host MODE alice :-i"])
    assert s.user_modes == "g"
    # The server starts a new connection without them: the status line must not show +g.
    s.connection_lost(NOW)
    s.connection_made(NOW)
    assert s.user_modes == ""


def test_own_user_mode_changes_are_said_in_the_server_buffer_as_irssi_says_them() -> None:
    """``/mode alice +i`` (ngIRCd) changed only the status bar; now a line, as irssi's
    "Mode change [+i] for user alice", and by whom when services set one."""
    s = chat_session(channels=())
    feed(s, [":alice!~a@h MODE alice :+i", ":alice MODE alice -i+w",
             ":NickServ!s@services MODE alice :+r"])  # fmt: skip
    assert [(ln.kind, ln.nick, ln.text) for ln in list(s.server.lines)[-3:]] == [
        (Kind.MODE, "", "Mode change [+i] for user alice"),
        (Kind.MODE, "", "Mode change [-i+w] for user alice"),
        (Kind.MODE, "", "Mode change [+r] for user alice by NickServ"),
    ]
    assert s.user_modes == "rw"


def test_erroneous_nick_falls_back_to_a_short_valid_one() -> None:
    s = make(nick="averyveryverylongnick")
    s.connection_made(NOW)
    s.take_outgoing()
    out = feed(s, [":srv 432 * averyveryverylongnick :Erroneous nickname"])
    assert out == ["NICK averyver_"]


def test_server_ping_is_answered_and_lag_measured() -> None:
    s = chat_session()
    assert feed(s, ["PING :abc123"]) == ["PONG abc123"]
    token = s.ping(100.0)
    assert s.take_outgoing() == [f"PING {token}"]
    feed(s, [":test.server PONG test.server :bogus"], now=100.1)
    assert s.lag is None
    feed(s, [f":test.server PONG test.server :{token}"], now=100.25)
    assert s.lag == pytest.approx(0.25)


def test_a_server_that_stops_answering_shows_in_the_status_line_before_the_timeout() -> None:
    from client.session import LAG_STALLED
    from client.ui.views import Views, status_fragments

    def status() -> str:
        return "".join(t for _, t, *_ in status_fragments(s, Views()))

    s = chat_session()
    token = s.ping(100.0)
    assert s.due_at == 100.0 + LAG_STALLED
    s.tick(100.0 + LAG_STALLED - 1)
    assert s.waiting_reply is None and "no reply" not in status()
    s.tick(100.0 + LAG_STALLED)
    assert s.waiting_reply == LAG_STALLED and "no reply for 5 s" in status()
    s.tick(100.0 + LAG_STALLED + 3)  # the connection calls it every second meanwhile
    assert "no reply for 8 s" in status()
    feed(s, [f":test.server PONG test.server :{token}"], now=109.0)
    assert s.waiting_reply is None and "lag 9.0 s" in status()
    assert s.due_at == NOW + client_history.HISTORY_TIMEOUT  # (#t's, never answered here)


def test_a_server_that_does_not_let_us_in_shows_in_the_status_line_and_the_server_buffer(
) -> None:
    from client.session import LAG_STALLED, REGISTER_SLOW
    from client.ui.views import Views, status_fragments

    def status() -> str:
        return "".join(t for _, t, *_ in status_fragments(s, Views()))

    def said() -> list[str]:
        return [ln.text for ln in s.server.lines if ln.text.startswith("No reply from")]

    s = make()
    s.connection_made(100.0)
    assert s.due_at == 100.0 + LAG_STALLED  # (the connection ticks then, traffic or not)
    s.tick(100.0 + LAG_STALLED - 1)
    assert "[registering]" in status()
    feed(s, [":srv NOTICE * :*** Looking up your hostname..."], now=102.0)
    s.tick(100.0 + LAG_STALLED)  # an answer 3 s ago: the silence counts from it
    assert "[registering]" in status()
    s.tick(102.0 + LAG_STALLED)
    assert "[registering, no reply for 5 s]" in status() and not said()
    s.tick(102.0 + REGISTER_SLOW)
    assert "[registering, no reply for 10 s]" in status()
    assert said() == ["No reply from the server for 10 s: still waiting for registration "
                      "(/reconnect to try again)"]  # fmt: skip
    s.tick(102.0 + REGISTER_SLOW + 1)
    assert "no reply for 11 s" in status() and len(said()) == 1  # (said once)
    feed(s, CHAT_BURST, now=114.0)
    assert s.registered and "no reply" not in status()
    assert s.waiting_reply is None and s.due_at is None


def test_no_keepalive_ping_before_the_welcome_nor_a_stale_no_reply_after_it() -> None:
    """A PING before 001 got 451 "You have not registered", never a PONG: after the
    welcome the status line counted "no reply" on a healthy connection."""
    s = make()
    s.connection_made(NOW)
    s.take_outgoing()
    assert s.ping(NOW + 1) == "" and s.take_outgoing() == []
    feed(s, CHAT_BURST, NOW + 2)
    s.tick(NOW + 2 + LAG_STALLED + 5)
    assert s.waiting_reply is None
    token = s.ping(NOW + 30)
    assert token and s.take_outgoing() == [f"PING {token}"]


def test_the_wait_before_reconnecting_counts_down_in_the_status_line() -> None:
    from client.ui.views import Views, status_fragments

    def status() -> str:
        return "".join(t for _, t, *_ in status_fragments(s, Views()))

    s = chat_session()
    s.connection_lost(NOW, "Connection reset by peer")
    s.connecting(NOW, 21.0)
    assert "retrying in 21 s" in status() and s.due_at == NOW + 1
    s.tick(NOW + 1)
    assert "retrying in 20 s" in status() and s.due_at == NOW + 2
    s.tick(NOW + 5.2)
    assert "retrying in 16 s" in status()
    s.connecting(NOW + 21)  # connecting now: no more ticks for it
    assert s.due_at is None


def test_the_status_line_says_when_the_client_stopped_retrying() -> None:
    from client.ui.views import Views, status_fragments

    def status() -> str:
        return "".join(t for _, t, *_ in status_fragments(s, Views()))

    s = chat_session()
    s.connection_lost(NOW, "closed")
    s.not_reconnecting("Invalid user name", 3, NOW)
    assert "disconnected, not retrying: /reconnect" in status()
    s.connecting(NOW + 60)  # /reconnect: connecting again
    assert "not retrying" not in status()


# ---------------------------------------------------------------------- members


def test_names_with_multi_prefix() -> None:
    s = ngircd_session()
    feed(
        s,
        [
            ":test.local 353 alice = #t :~&dave @+bob +carol",
            ":test.local 353 alice = #t :alice %erin +@frank",
            ":test.local 366 alice #t :End of NAMES list",
        ],
    )
    buf = s.buffer("#t")
    assert buf is not None
    got = [(m.prefixes, m.nick) for m in buf.sorted_members(s.prefix_symbols)]
    assert got == [
        ("~&", "dave"),
        ("@+", "bob"),
        ("@+", "frank"),  # normalised to rank order
        ("%", "erin"),
        ("+", "carol"),
        ("", "alice"),
    ]
    # A later NAMES reply replaces the list.
    feed(s, [":test.local 353 alice = #t :alice bob", ":test.local 366 alice #t :End"])
    assert sorted(buf.members) == ["alice", "bob"]


def test_membership_updates() -> None:
    s = chat_session()
    buf = s.buffer("#t")
    assert buf is not None
    feed(
        s,
        [
            ":bob!b@h JOIN #t",
            ":carol!c@h JOIN #t",
            ":dave!d@h JOIN #t",
            ":alice!a@h MODE #t +bo *!*@spam bob",
            ":alice!a@h MODE #t +kv key carol",
            ":bob!b@h NICK robert",
            ":carol!c@h PART #t :bye",
            ":alice!a@h KICK #t dave :behave",
        ],
    )
    got = {m.nick: m.prefixes for m in buf.members.values()}
    assert got == {"alice": "@", "robert": "@"}
    kinds = [ln.kind for ln in buf.lines]
    for kind in (Kind.JOIN, Kind.MODE, Kind.NICK, Kind.PART, Kind.KICK):
        assert kind in kinds
    feed(s, [":robert!b@h QUIT :gone"])
    assert set(buf.members) == {"alice"}
    assert buf.lines[-1].kind is Kind.QUIT and buf.lines[-1].nick == "robert"


def test_quit_and_nick_reach_every_channel_and_query() -> None:
    s = chat_session(channels=())
    feed(s, [":alice!a@h JOIN #a", ":alice!a@h JOIN #b", ":bob!b@h JOIN #a", ":bob!b@h JOIN #b"])
    feed(s, [privmsg("bob", "alice", "psst")])
    query = s.buffer("bob")
    assert query is not None and query.kind is BufferKind.QUERY
    feed(s, [":bob!b@h NICK bobby"])
    assert s.buffer("bob") is None and s.buffer("bobby") is query and query.name == "bobby"
    feed(s, [":bobby!b@h QUIT :bye"])
    for name in ("#a", "#b", "bobby"):
        buf = s.buffer(name)
        assert buf is not None and buf.lines[-1].kind is Kind.QUIT


def test_own_kick_part_and_nick() -> None:
    s = chat_session()
    buf = s.buffer("#t")
    assert buf is not None
    query = s.open_query("bob", NOW)
    assert query is not None
    feed(s, [":alice!a@h NICK alicia"])
    assert s.nick == "alicia"
    # Said in the query too (bob sees the new nick from now on), without activity there.
    assert query.lines[-1].kind is Kind.NICK and query.lines[-1].own and not query.activity
    feed(s, [":op!o@h KICK #t alicia :out you go"])
    assert not buf.joined and buf.members == {}
    assert buf.lines[-1].kind is Kind.KICK and buf.lines[-1].highlight
    # As irssi: not "op has kicked alicia (out you go)".
    assert (buf.lines[-1].nick, buf.lines[-1].text) == (
        "", "You have been kicked from #t by op (out you go)")


def test_away_notify() -> None:
    s = chat_session()
    feed(s, [":bob!b@h JOIN #t", ":bob!b@h AWAY :lunch"])
    buf = s.buffer("#t")
    assert buf is not None and buf.members["bob"].away
    feed(s, [":bob!b@h AWAY"])
    assert not buf.members["bob"].away


def test_topic() -> None:
    s = chat_session()
    feed(
        s,
        [
            ":test.server 332 alice #t :the \x02topic\x02",
            f":test.server 333 alice #t bob!b@h {int(NOW)}",
        ],
    )
    buf = s.buffer("#t")
    assert buf is not None and buf.topic == "the topic" and buf.topic_setter == "bob"
    assert any(sp.style.bold and sp.text == "topic" for sp in buf.topic_spans)
    # Who set it and when, under it (as irssi and WeeChat).
    assert [ln.text for ln in list(buf.lines)[-2:]] == ["Topic for #t: the topic",
                                                  "Topic set by bob just now"]  # fmt: skip
    feed(s, [f":test.server 333 alice #t bob!b@h {int(NOW) - 10000}"])
    assert buf.lines[-1].text == "Topic set by bob 2 h ago"
    feed(s, [":carol!c@h TOPIC #t :new one"])
    assert buf.topic == "new one" and buf.topic_setter == "carol"
    assert buf.lines[-1].kind is Kind.TOPIC


def test_topic_asked_when_there_is_none_says_so() -> None:
    s = chat_session()
    s.switch("#t")
    buf = s.current
    notopic = ":test.server 331 alice {} :No topic is set"
    feed(s, [notopic.format("#t")])  # not asked (some servers send it on JOIN): no line
    assert buf.lines[-1].kind is not Kind.INFO
    s.input("/topic", NOW)
    assert s.take_outgoing() == ["TOPIC #t"]
    feed(s, [notopic.format("#t")])
    assert buf.lines[-1].text == "No topic is set for #t" and buf.lines[-1].kind is Kind.INFO
    assert buf.unread == 0
    s.input("/topic #elsewhere", NOW)  # a channel we are not in: where the user is
    feed(s, [notopic.format("#elsewhere")])
    assert buf.lines[-1].text == "No topic is set for #elsewhere"
    feed(s, [notopic.format("#elsewhere")])  # answered once
    assert [ln.text for ln in buf.lines].count("No topic is set for #elsewhere") == 1


def test_our_join_forgets_the_old_topic() -> None:
    s = chat_session()
    buf = s.buffer("#t")
    assert buf is not None
    topic = [":test.server 332 alice #t :old topic", ":test.server 333 alice #t bob!b@h 1"]
    feed(s, topic)
    # Parted, and the topic removed meanwhile: the JOIN comes without a 332 (nor a 331).
    feed(s, [":alice!~a@127.0.0.1 PART #t", *CHAT_JOIN])
    assert (buf.topic, buf.topic_spans, buf.topic_setter) == ("", (), "")
    feed(s, [":alice!~a@127.0.0.1 PART #t", *CHAT_JOIN[:1], *topic, *CHAT_JOIN[1:]])
    assert buf.topic == "old topic" and buf.topic_setter == "bob"  # a 332 sets it again
    # The same across a reconnect's rejoin.
    reconnect(s)
    feed(s, CHAT_JOIN, NOW + 60)
    assert buf.joined and (buf.topic, buf.topic_setter) == ("", "")


# ---------------------------------------------------------------------- history


def test_latest_batch_is_merged_above_the_join_and_deduplicated() -> None:
    s = chat_session()
    buf = s.buffer("#t")
    assert buf is not None
    # A live message arrives before the history reply; the reply contains it too.
    feed(s, [privmsg("bob", "#t", "live", "M3", T0 + 3)])
    rows = [("bob", "one", "M1", T0 - 2), ("carol", "two", "M2", T0 - 1)]
    feed(s, history_batch("b1", "#t", [*rows, ("bob", "live", "M3", T0 + 3)]))
    assert texts(buf) == ["one", "two", "live"]
    assert [ln.history for ln in messages(buf)] == [True, True, False]
    # History is not unread: it is what happened before we came.
    assert buf.unread == 1  # only the live one
    events = [e for e in s.take_events() if isinstance(e, HistoryAdded)]
    assert len(events) == 1 and events[0].count == 2
    assert [ln.text for ln in events[0].lines] == ["one", "two"]
    assert not buf.history_loading and buf.history_complete  # fewer than asked for


def test_history_lines_are_not_unread_but_live_ones_are() -> None:
    s = chat_session(channels=())
    feed(s, [":alice!a@h JOIN #t"])
    buf = s.buffer("#t")
    assert buf is not None
    s.switch(s.server)
    feed(s, history_batch("b1", "#t", [("bob", "old alice", "M1", T0 + 1)]))
    assert buf.unread == 0 and buf.highlights == 0
    feed(s, [privmsg("bob", "#t", "new alice", "M2", T0 + 2)])
    assert buf.unread == 1 and buf.highlights == 1


# A line of each event kind (and its variants): shown live, then as history.
EVENTS = [
    ":dave!~d@h JOIN #t",
    ":bob!~b@h PART #t :gone home",
    ":bob!~b@h PART #t",
    ":bob!~b@h PART #t :",  # an empty reason: none
    ":bob!~b@h PART #u,#t :bye",  # several channels: this one's line
    ":bob!~b@h QUIT :Ping timeout",
    ":bob!~b@h QUIT",
    ":bob!~b@h NICK robert",
    ":carol!~c@h KICK #t bob :spamming",
    ":carol!~c@h KICK #t bob",
    ":carol!~c@h KICK #t alice :out you go",  # ours: "You have been kicked from #t by carol"
    ":carol!~c@h TOPIC #t :a \x02new\x02 topic",
    ":carol!~c@h TOPIC #t :",  # removed
    ":carol!~c@h MODE #t +ov bob carol",
    ":test.server MODE #t +n",
]


@pytest.mark.parametrize("event", EVENTS)
def test_history_event_lines_read_as_the_live_ones(event: str) -> None:
    live = joined_session(CHAT_BURST, ("bob", "carol"))
    feed(live, [event])
    buf = live.buffer("#t")
    assert buf is not None
    shown = buf.lines[-1]
    past = joined_session(CHAT_BURST, ("bob", "carol"))
    stamp = f"@batch=h1;time={format_time(T0 - 60)};msgid=E1 "
    feed(past, chathistory_batch("h1", "#t", [stamp + event]))
    old = past.buffer("#t")
    assert old is not None
    got = [ln for ln in old.lines if ln.history and ln.kind is shown.kind]
    assert len(got) == 1 and got[0].kind is not Kind.INFO
    assert (got[0].nick, got[0].text, got[0].spans) == (shown.nick, shown.text, shown.spans)


def test_request_older_prepends_and_keeps_order() -> None:
    s = chat_session()
    buf = s.buffer("#t")
    assert buf is not None
    rows = [(f"u{i}", f"m{i}", f"M{i:03d}", T0 - 1000 + i) for i in range(100, 200)]
    feed(s, history_batch("b1", "#t", rows))  # exactly the limit: maybe more exists
    assert not buf.history_complete
    assert s.request_older(buf, NOW)
    assert sent(s) == ["CHATHISTORY BEFORE #t msgid=M100 100"]
    assert buf.history_loading
    assert not s.request_older(buf, NOW), "one request at a time"
    older = [(f"u{i}", f"m{i}", f"M{i:03d}", T0 - 1000 + i) for i in range(50, 100)]
    s.take_events()
    feed(s, history_batch("b2", "#t", older))
    assert texts(buf) == [f"m{i}" for i in range(50, 200)]
    (event,) = [e for e in s.take_events() if isinstance(e, HistoryAdded)]
    assert event.older and event.count == 50
    assert buf.history_complete and not s.request_older(buf, NOW)


def test_pageup_refused_for_now_asks_again_later_and_other_refusals_end_it() -> None:
    """Our server refuses a read past the host's budget with MESSAGE_ERROR, "try again
    in a few seconds": PageUp asks again after RETRY_REFUSED_SECONDS, not never."""
    s = chat_session()
    buf = s.buffer("#t")
    assert buf is not None
    rows = [(f"u{i}", f"m{i}", f"M{i:03d}", T0 - 1000 + i) for i in range(100, 200)]
    feed(s, history_batch("b1", "#t", rows))
    assert s.request_older(buf, NOW)
    s.take_outgoing()
    feed(s, ["FAIL CHATHISTORY MESSAGE_ERROR BEFORE #t :Too much history was read from your "
             "host just now; try again in a few seconds"])
    assert buf.history_refused and not buf.history_complete
    assert not s.request_older(buf, NOW + 1)
    assert s.request_older(buf, NOW + client_history.RETRY_REFUSED_SECONDS)
    assert sent(s) == ["CHATHISTORY BEFORE #t msgid=M100 100"]
    feed(s, ["FAIL CHATHISTORY INVALID_PARAMS BEFORE #t :Invalid parameters"])
    assert buf.history_complete
    assert not s.request_older(buf, NOW + 60)


def test_request_older_when_scrollback_is_full() -> None:
    s = chat_session(scrollback=100)
    buf = s.buffer("#t")
    assert buf is not None
    rows = [("bob", f"h{i}", f"H{i:03d}", T0 - 1000 + i) for i in range(100)]
    feed(s, history_batch("b1", "#t", rows))  # a full page: there may be more
    assert not buf.history_complete and not buf.history_loading
    feed(s, [privmsg("bob", "#t", f"x{i}", f"L{i:04d}", T0 + 1000 + i) for i in range(200)])
    assert len(buf.lines) == 100 and buf.full
    s.take_outgoing()
    assert s.request_older(buf, NOW)  # the scrollback grows by a page for it
    assert sent(s) == ["CHATHISTORY BEFORE #t msgid=L0100 100"]
    assert buf.lines.maxlen == 200 and not buf.full


def test_older_history_fills_the_room_left_in_the_scrollback() -> None:
    s = chat_session(scrollback=15, history_lines=10)
    buf = s.buffer("#t")
    assert buf is not None and len(buf.lines) == 1  # the JOIN
    rows = [("bob", f"h{i}", f"H{i:03d}", T0 - 100 + i) for i in range(10)]
    feed(s, history_batch("b0", "#t", rows))  # all older than the JOIN: room for them
    assert texts(buf) == [f"h{i}" for i in range(10)]


def test_lines_falling_off_the_top_are_not_the_beginning_of_history() -> None:
    """A new channel's history is complete until the scrollback drops its oldest lines:
    the server still has them, and PageUp (once there is room) pages back to them."""
    s = chat_session(scrollback=50, history_lines=10)
    buf = s.buffer("#t")
    assert buf is not None
    s.switch(buf)
    s.take_outgoing()
    feed(s, history_batch("b0", "#t", []))  # a new channel: nothing older
    assert buf.history_complete
    feed(s, [privmsg("bob", "#t", f"x{i}", f"L{i:03d}", T0 + i) for i in range(60)])
    assert buf.full and not buf.history_complete
    run(s, "/clear")
    feed(s, [privmsg("bob", "#t", f"y{i}", f"N{i:03d}", T0 + 100 + i) for i in range(60)])
    assert not buf.cleared  # the top is the scrollback's limit, not where /clear left off
    run(s, "/clear")
    assert s.request_older(buf, NOW)
    assert sent(s) == ["CHATHISTORY LATEST #t * 10"]
    rows = [("bob", f"y{i}", f"N{i:03d}", T0 + 100 + i) for i in range(50, 60)]
    feed(s, history_batch("b1", "#t", rows))
    assert texts(buf) == [f"y{i}" for i in range(50, 60)] and not buf.history_complete
    assert s.request_older(buf, NOW)
    assert sent(s) == ["CHATHISTORY BEFORE #t msgid=N050 10"]


def test_an_older_page_that_does_not_fit_is_not_the_beginning_of_history() -> None:
    s = chat_session(scrollback=15, history_lines=10)
    buf = s.buffer("#t")
    assert buf is not None
    rows = [("bob", f"h{i}", f"H{i:03d}", T0 - 100 + i) for i in range(10, 20)]
    feed(s, history_batch("b0", "#t", rows))  # a full page: there may be more
    room = buf.lines.maxlen - len(buf.lines) if buf.lines.maxlen else 0
    assert 0 < room < 9
    assert s.request_older(buf, NOW)
    assert sent(s) == ["CHATHISTORY BEFORE #t msgid=H010 10"]
    rows = [("bob", f"h{i}", f"H{i:03d}", T0 - 100 + i) for i in range(1, 10)]  # the last
    feed(s, history_batch("b1", "#t", rows))
    assert texts(buf)[0] == f"h{10 - room}" and buf.full
    assert not buf.history_complete  # h1.. did not fit: the server has more than is held


def test_pageup_after_lines_fell_off_goes_on_from_the_oldest_line_held() -> None:
    s = chat_session(scrollback=15, history_lines=2, ignore=("dave!*@*",))
    buf = s.buffer("#t")
    assert buf is not None
    s.take_outgoing()
    rows = [("dave", "x", "M3", T0 - 7), ("dave", "y", "M4", T0 - 6)]
    feed(s, history_batch("b0", "#t", rows))  # a full page, nothing shown: M3 is the floor
    feed(s, [privmsg("bob", "#t", f"x{i}", f"L{i:03d}", T0 + i) for i in range(20)])
    assert buf.full and buf.remove(buf.lines[-1])  # room again (the outbox moves lines)
    assert s.request_older(buf, NOW)
    assert sent(s) == ["CHATHISTORY BEFORE #t msgid=L005 2"]  # not M3: L0-L4 gone


def test_merge_interleaves_by_time_without_duplicates() -> None:
    s = chat_session()
    buf = s.buffer("#t")
    assert buf is not None
    feed(s, history_batch("b0", "#t", []))
    buf.clear()
    feed(s, [privmsg("bob", "#t", t, m, T0 + i) for t, m, i in [("b", "M2", 2), ("d", "M4", 4)]])
    rows = [("x", "a", "M1", T0 + 1), ("x", "b", "M2", T0 + 2), ("x", "c", "M3", T0 + 3)]
    rows += [("x", "e", "M5", T0 + 5)]
    feed(s, history_batch("b1", "#t", rows))
    assert texts(buf) == ["a", "b", "c", "d", "e"]


def test_nested_batches_and_unknown_batches() -> None:
    s = chat_session()
    buf = s.buffer("#t")
    assert buf is not None
    feed(
        s,
        [
            "@label=x :test.server BATCH +L labeled-response",
            "@batch=L :test.server BATCH +H chathistory #t",
            privmsg("bob", "#t", "nested", "N1", T0, batch="H"),
            "@batch=L :test.server BATCH -H",
            ":test.server BATCH -L",
            ":test.server BATCH +n netsplit a b",
            "@batch=n :bob!b@h QUIT :a b",
            ":test.server BATCH -n",
        ],
    )
    assert "nested" in texts(buf)


def test_history_of_a_query_and_failures() -> None:
    """Private history is asked for only when logged in (tests/client/test_query_history.py
    has the rest)."""
    s = chat_session()
    q = s.open_query("bob", NOW)
    assert q is not None and s.take_outgoing() == [] and not s.request_older(q, NOW)
    feed(s, [":test.server 900 alice alice!~a@h alice :You are now logged in as alice"])
    q = s.open_query("carol", NOW)
    assert q is not None
    assert sent(s) == ["CHATHISTORY LATEST carol * 100"]
    feed(s, ["FAIL CHATHISTORY INVALID_TARGET LATEST carol :Messages could not be retrieved"])
    assert not q.history_loading and q.no_history


def test_chathistory_unknown_command_disables_history() -> None:
    s = chat_session()
    feed(s, [":test.server 421 alice CHATHISTORY :Unknown command"])
    assert not s.history_enabled
    buf = s.buffer("#t")
    assert buf is not None and not buf.history_loading


# ---------------------------------------------------------------------- reconnect


def test_reconnect_rejoins_and_fills_the_gap_once() -> None:
    s = chat_session(history_lines=2)
    buf = s.buffer("#t")
    assert buf is not None
    s.switch(buf)
    feed(s, history_batch("b0", "#t", []))
    feed(s, [privmsg("bob", "#t", f"m{i}", f"M{i}", T0 + i) for i in (1, 2, 3)])
    s.connection_lost(NOW, "Connection reset")
    assert not buf.joined and buf.rejoin and buf.members == {}
    s.connection_made(NOW + 5)
    s.take_outgoing()
    assert feed(s, CHAT_BURST, NOW + 5)[-1] == "JOIN #t"
    rejoin = [f"@time={format_time(T0 + 6.5)};msgid=J2 :alice!~a@h JOIN #t", *CHAT_JOIN[1:]]
    assert feed(s, rejoin, NOW + 5) == ["CHATHISTORY AFTER #t msgid=M3 2"]
    # A live message arrives before the gap fill; the fill includes it too.
    feed(s, [privmsg("bob", "#t", "m7", "M7", T0 + 7)], NOW + 6)
    s.switch(s.server)
    page1 = [("bob", "m4", "M4", T0 + 4), ("bob", "m5", "M5", T0 + 5)]
    out = feed(s, history_batch("g1", "#t", page1))
    assert out == ["CHATHISTORY AFTER #t msgid=M5 2"]  # a full page: ask for more
    page2 = [("bob", "m6", "M6", T0 + 6), ("bob", "m7", "M7", T0 + 7)]
    out = feed(s, history_batch("g2", "#t", page2))
    assert out == []  # m7 was known: caught up
    assert texts(buf) == ["m1", "m2", "m3", "m4", "m5", "m6", "m7"]
    notes = [ln.text for ln in buf.lines if "Reconnected" in ln.text]
    assert notes == ["Reconnected, fetched 3 missed messages"]
    assert buf.unread == 3  # the missed ones count as unread (plus m7, seen while current)


def _event(ref: str, source: str, rest: str, msgid: str, t: float, tags: str = "") -> str:
    """An event of a chathistory batch (draft/event-playback)."""
    return f"@batch={ref};time={format_time(t)};msgid={msgid}{tags} :{source} {rest}"


def test_a_gap_fill_leaves_out_our_own_quit_and_join_under_the_nick_we_had() -> None:
    """The quit of the connection lost (under the nick it had then) and a join of ours
    are no news: the Disconnected and Reconnected lines say it. Others' are kept, also
    those of someone who took our old nick meanwhile (another user@host)."""
    s = chat_session(history_lines=10)
    buf = s.buffer("#t")
    assert buf is not None
    feed(s, history_batch("b0", "#t", [("bob", "m1", "M1", T0 + 1)]))
    feed(s, [":alice!~a@127.0.0.1 NICK alice2"], NOW + 2)
    s.connection_lost(NOW + 3, "Connection reset")
    s.connection_made(NOW + 5)
    feed(s, CHAT_BURST, NOW + 5)  # (registered as alice again)
    rejoin = [f"@time={format_time(T0 + 9)};msgid=J9 :alice!~a@127.0.0.1 JOIN #t",
              *CHAT_JOIN[1:]]  # fmt: skip
    assert feed(s, rejoin, NOW + 9) == ["CHATHISTORY AFTER #t msgid=M1 10"]
    page = [
        _event("g1", "alice2!~a@127.0.0.1", "QUIT :Connection closed", "Q1", T0 + 2),
        _event("g1", "carol!~c@host", "QUIT :bye", "Q2", T0 + 4),
        _event("g1", "alice2!~x@elsewhere", "JOIN #t", "J5", T0 + 5),  # not us
        privmsg("bob", "#t", "missed", "M6", T0 + 6, batch="g1"),
        _event("g1", "alice2!~x@elsewhere", "QUIT :gone", "Q7", T0 + 7),
        _event("g1", "alice!~a@127.0.0.1", "JOIN #t", "J8", T0 + 8),  # a connection between
        _event("g1", "alice!~a@127.0.0.1", "QUIT :Ping timeout", "Q8", T0 + 8.5),
        _event("g1", "alice!~a@127.0.0.1", "JOIN #t", "J9", T0 + 9),  # the rejoin, seen
    ]
    assert feed(s, chathistory_batch("g1", "#t", page), NOW + 10) == []
    events = [(ln.nick, ln.text) for ln in buf.lines
              if ln.history and ln.kind is not Kind.MESSAGE]  # fmt: skip
    assert events == [
        ("carol", "has quit (bye)"),
        ("alice2", "has joined #t"),
        ("alice2", "has quit (gone)"),
    ]
    assert texts(buf) == ["m1", "missed"]
    assert [ln.text for ln in buf.lines if "Reconnected" in ln.text] == [
        "Reconnected, fetched 1 missed message"]  # fmt: skip
    assert all(m in buf.seen for m in ("Q1", "J8", "Q8"))  # no later answer brings them


def test_was_me_needs_the_nick_and_where_known_the_user_host_and_account() -> None:
    s = chat_session(channels=())
    feed(s, [":test.server 900 alice alice!~a@h alice :You are now logged in as alice",
             ":alice!~a@h JOIN #t"])  # fmt: skip

    def was_me(line: str) -> bool:
        return s.was_me(parse(line))

    assert was_me(":alice!~a@h QUIT :x") and was_me(":ALICE!~A@H QUIT :x")
    assert was_me(":alice QUIT :x")  # (no user@host to tell)
    assert not was_me(":alice!~x@elsewhere QUIT :x")
    assert was_me("@account=alice :alice!~a@h QUIT :x")
    assert not was_me("@account=mallory :alice!~a@h QUIT :x")
    assert not was_me(":bob!~a@h QUIT :x")  # not by user@host alone
    feed(s, [":alice!~a@h NICK alice2"])
    assert was_me(":alice!~a@h QUIT :x") and was_me(":alice2!~a@h QUIT :x")


def test_a_channel_rejoined_with_no_message_seen_says_reconnected_as_any_other() -> None:
    """Its fill is the LATEST page (every message there was missed), ending with the same
    line as an AFTER fill; a failed fill says so in every rejoined channel."""
    s = chat_session(history_lines=10)
    buf = s.buffer("#t")
    assert buf is not None
    feed(s, history_batch("b0", "#t", []))
    s.connection_lost(NOW + 1, "Connection reset")
    s.connection_made(NOW + 5)
    feed(s, CHAT_BURST, NOW + 5)
    rejoin = [f"@time={format_time(T0 + 6)};msgid=J6 :alice!~a@127.0.0.1 JOIN #t",
              *CHAT_JOIN[1:]]  # fmt: skip
    assert feed(s, rejoin, NOW + 6) == ["CHATHISTORY LATEST #t * 10"]
    assert not [ln for ln in buf.lines if "Reconnected" in ln.text]  # not before the fill
    page = [
        _event("g1", "alice!~a@127.0.0.1", "JOIN #t", "06GZSSKD3G0012WN", T0),  # seen
        _event("g1", "alice!~a@127.0.0.1", "QUIT :Connection closed", "Q2", T0 + 2),
        privmsg("bob", "#t", "missed", "M3", T0 + 3, batch="g1"),
        _event("g1", "alice!~a@127.0.0.1", "JOIN #t", "J6", T0 + 6),  # seen
    ]
    assert feed(s, chathistory_batch("g1", "#t", page), NOW + 7) == []
    assert not [ln for ln in buf.lines if ln.kind is Kind.QUIT]
    assert texts(buf) == ["missed"] and buf.unread == 1
    assert [ln.text for ln in buf.lines if "Reconnected" in ln.text] == [
        "Reconnected, fetched 1 missed message"]  # fmt: skip

    s.connection_lost(NOW + 8, "Connection reset")
    s.connection_made(NOW + 10)
    feed(s, CHAT_BURST, NOW + 10)
    rejoin = [f"@time={format_time(T0 + 11)};msgid=J11 :alice!~a@127.0.0.1 JOIN #t",
              *CHAT_JOIN[1:]]  # fmt: skip
    assert feed(s, rejoin, NOW + 11) == ["CHATHISTORY AFTER #t msgid=M3 10"]
    feed(s, ["FAIL CHATHISTORY MESSAGE_ERROR AFTER #t :Messages could not be retrieved"])
    assert [ln.text for ln in buf.lines if "Reconnected" in ln.text][1:] == [
        "Reconnected, missed messages not fetched: Messages could not be retrieved "
        "(MESSAGE_ERROR)"]  # fmt: skip


@pytest.mark.parametrize("server", ["chat", "ngircd", "chat, nothing seen"])
def test_a_reconnect_alone_makes_no_channel_look_active(server: str) -> None:
    """Our rejoin's JOIN and the "Reconnected" line are no news, as the Disconnected
    line is not: after every reconnect, every channel would be in [Act: ...]."""
    if server == "ngircd":
        s, burst, join = ngircd_session(), NGIRCD_BURST, NGIRCD_JOIN
    else:
        s, burst, join = chat_session(history_lines=2), CHAT_BURST, CHAT_JOIN
    buf = s.buffer("#t")
    assert buf is not None
    if server == "chat":
        feed(s, history_batch("b0", "#t", [("bob", "m1", "M1", T0 + 1)]))
    s.switch(s.server)
    s.connection_lost(NOW, "Connection reset")
    s.connection_made(NOW + 5)
    feed(s, burst, NOW + 5)
    feed(s, join, NOW + 5)
    if s.history_enabled:
        feed(s, history_batch("g1", "#t", []), NOW + 6)
    reconnected = [ln.text for ln in buf.lines if ln.text.startswith("Reconnected")]
    assert len(reconnected) == 1, reconnected
    assert not buf.activity and not buf.unread


def test_a_gap_fill_stopped_at_max_gap_pages_says_later_ones_were_not_fetched(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(client_history, "MAX_GAP_PAGES", 2)
    s = chat_session(history_lines=2)
    buf = s.buffer("#t")
    assert buf is not None
    feed(s, history_batch("b0", "#t", [("bob", "m1", "M1", T0 + 1)]))
    s.connection_lost(NOW)
    s.connection_made(NOW + 5)
    feed(s, CHAT_BURST, NOW + 5)
    assert feed(s, CHAT_JOIN, NOW + 5) == ["CHATHISTORY AFTER #t msgid=M1 2"]
    page = [("bob", "m2", "M2", T0 + 2), ("bob", "m3", "M3", T0 + 3)]
    assert feed(s, history_batch("g1", "#t", page)) == ["CHATHISTORY AFTER #t msgid=M3 2"]
    page = [("bob", "m4", "M4", T0 + 4), ("bob", "m5", "M5", T0 + 5)]
    assert feed(s, history_batch("g2", "#t", page)) == []  # the last page allowed
    assert [ln.text for ln in buf.lines if "Reconnected" in ln.text] == [
        "Reconnected, fetched 4 missed messages (later ones not fetched)"]


def test_a_gap_fill_answered_after_its_timeout_is_merged_as_missed_and_late() -> None:
    """The fill is given up after HISTORY_TIMEOUT (its line says so) and PageUp asks for
    older lines; then the fill's answer comes after all. It is the fill's (answers come
    in order), not PageUp's: missed messages, unread, its line saying they came late;
    the page that follows is PageUp's."""
    s = chat_session(history_lines=2)
    buf = s.buffer("#t")
    assert buf is not None
    feed(s, history_batch("b0", "#t", [("bob", "m0", "M0", T0), ("bob", "m1", "M1", T0 + 1)]))
    s.connection_lost(NOW)
    s.connection_made(NOW + 5)
    feed(s, CHAT_BURST, NOW + 5)
    assert feed(s, CHAT_JOIN, NOW + 5) == ["CHATHISTORY AFTER #t msgid=M1 2"]
    s.tick(NOW + 5 + client_history.HISTORY_TIMEOUT)
    assert not buf.history_loading and s.due_at is None
    assert s.request_older(buf, NOW + 70)
    assert sent(s) == ["CHATHISTORY BEFORE #t msgid=M0 2"]
    s.take_events()
    feed(s, history_batch("g1", "#t", [("bob", "missed", "M2", T0 + 2)]), NOW + 80)
    [late] = [e for e in s.take_events() if isinstance(e, HistoryAdded)]
    assert (late.cause, late.late, late.older) == ("missed", True, False)
    assert buf.history_loading and buf.unread == 1  # (PageUp's page is still to come)
    assert [ln.text for ln in buf.lines if "Reconnected" in ln.text] == [
        "Reconnected, missed messages not fetched: no answer from the server",
        "Reconnected, fetched 1 missed message (late: the server answered after 60 s)"]
    feed(s, history_batch("b1", "#t", [("bob", "older", "Ma", T0 - 1)]), NOW + 81)
    [page] = [e for e in s.take_events() if isinstance(e, HistoryAdded)]
    assert (page.cause, page.late, page.older) == ("older", False, True)
    assert not buf.history_loading
    assert texts(buf) == ["older", "m0", "m1", "missed"]


def test_paging_counts_what_the_server_sent_not_what_is_shown() -> None:
    s = chat_session(history_lines=3, ignore=("dave!*@*",))
    buf = s.buffer("#t")
    assert buf is not None
    # A full page of which a CTCP and an ignored sender are not shown: more may exist.
    rows = [("bob", "one", "M1", T0 + 1), ("carol", "\x01PING 1\x01", "M2", T0 + 2),
            ("dave", "ignored", "M3", T0 + 3)]
    feed(s, history_batch("b1", "#t", rows))
    assert texts(buf) == ["one"] and not buf.history_complete
    assert s.request_older(buf, NOW)
    assert sent(s) == ["CHATHISTORY BEFORE #t msgid=M1 3"]
    feed(s, history_batch("b2", "#t", [("dave", "x", "M0", T0)]))
    assert buf.history_complete

    # The gap fill pages on from the newest message sent, shown or not.
    s.connection_lost(NOW)
    s.connection_made(NOW + 5)
    feed(s, CHAT_BURST, NOW + 5)
    assert feed(s, CHAT_JOIN, NOW + 5) == ["CHATHISTORY AFTER #t msgid=M1 3"]
    page = [("bob", "two", "M4", T0 + 4), ("dave", "a", "M5", T0 + 5), ("dave", "b", "M6", T0 + 6)]
    assert feed(s, history_batch("g1", "#t", page)) == ["CHATHISTORY AFTER #t msgid=M6 3"]
    page = [("dave", "c", "M7", T0 + 7), ("dave", "d", "M8", T0 + 8), ("dave", "e", "M9", T0 + 9)]
    assert feed(s, history_batch("g2", "#t", page)) == ["CHATHISTORY AFTER #t msgid=M9 3"]
    assert feed(s, history_batch("g3", "#t", [("bob", "three", "M10", T0 + 10)])) == []
    assert texts(buf) == ["one", "two", "three"]
    assert [ln.text for ln in buf.lines if "Reconnected" in ln.text] == [
        "Reconnected, fetched 2 missed messages"]


def test_pageup_goes_on_past_a_page_with_nothing_shown() -> None:
    s = chat_session(history_lines=2, ignore=("dave!*@*",))
    buf = s.buffer("#t")
    assert buf is not None
    feed(s, history_batch("b1", "#t", [("bob", "a", "M5", T0 + 5), ("bob", "b", "M6", T0 + 6)]))
    assert s.request_older(buf, NOW)
    assert sent(s) == ["CHATHISTORY BEFORE #t msgid=M5 2"]
    feed(s, history_batch("b2", "#t", [("dave", "x", "M3", T0 + 3), ("dave", "y", "M4", T0 + 4)]))
    assert texts(buf) == ["a", "b"] and not buf.history_complete
    assert s.request_older(buf, NOW)
    assert sent(s) == ["CHATHISTORY BEFORE #t msgid=M3 2"]  # not M5 again
    feed(s, history_batch("b3", "#t", [("bob", "c", "M2", T0 + 2)]))
    assert texts(buf) == ["c", "a", "b"] and buf.history_complete


def test_reconnect_without_history_says_so_once() -> None:
    s = ngircd_session()
    buf = s.buffer("#t")
    assert buf is not None
    s.connection_lost(NOW)
    s.connection_made(NOW)
    s.take_outgoing()
    assert feed(s, NGIRCD_BURST)[-1] == "JOIN #t"
    assert feed(s, NGIRCD_JOIN) == []
    assert sum("Reconnected" in ln.text for ln in buf.lines) == 1


def test_parted_channels_are_not_rejoined() -> None:
    s = chat_session(channels=())
    feed(s, [":alice!a@h JOIN #a", ":alice!a@h JOIN #b", ":alice!a@h PART #b"])
    s.connection_lost(NOW)
    s.connection_made(NOW)
    s.take_outgoing()
    assert feed(s, CHAT_BURST)[-1] == "JOIN #a"


def test_configured_channels_wait_for_a_connection_that_registers() -> None:
    """The first connection ends before the end of the MOTD (an STS upgrade, a restart,
    a K-line): the channels are joined on the first one that registers."""
    s = make(channels=("#t", "#u"))
    s.connection_made(NOW)
    s.take_outgoing()
    assert feed(s, [":srv CAP * LS :sts=port=6697"]) == []  # told to move to TLS
    s.connection_lost(NOW, "connection closed")
    s.connection_made(NOW + 1, secure=True)
    s.take_outgoing()
    feed(s, CHAT_BURST[:3], NOW + 1)  # welcomed, but lost before the end of the MOTD
    s.connection_lost(NOW + 2, "Connection reset by peer")
    s.connection_made(NOW + 5, secure=True)
    s.take_outgoing()
    assert feed(s, CHAT_BURST, NOW + 5)[-1] == "JOIN #t,#u"


def test_configured_channels_are_joined_until_the_server_answers() -> None:
    """Registered, JOIN sent, lost before the answer: joined again. Once joined (#t) or
    refused (#u), a configured channel is not asked for again: #t is rejoined as an
    open channel, #u, refused, and #v, parted, are not."""
    s = make(channels=("#t", "#u", "#v"))
    s.connection_made(NOW)
    assert feed(s, CHAT_BURST)[-1] == "JOIN #t,#u,#v"
    assert reconnect(s)[-1] == "JOIN #t,#u,#v"
    feed(s, [*CHAT_JOIN, ":test.server 473 alice #u :Cannot join channel (+i)",
             ":alice!~a@h JOIN #v", ":alice!~a@h PART #v"])  # fmt: skip
    assert reconnect(s)[-1] == "JOIN #t"
    assert reconnect(s)[-1] == "JOIN #t"  # (not answered this time: rejoined as before)


# ---------------------------------------------------------------------- messages


def test_echo_message_shows_own_messages_once() -> None:
    s = chat_session()
    s.switch("#t")
    s.input("hello", NOW)
    assert s.take_outgoing() == ["@label=o1 PRIVMSG #t :hello"]
    buf = s.buffer("#t")
    assert buf is not None and texts(buf) == ["hello"]  # pending until the echo comes back
    assert messages(buf)[0].delivery is Delivery.PENDING
    feed(s, ["@label=o1;time=2026-11-21T07:00:00.000Z;msgid=E1 :alice!~a@h PRIVMSG #t :hello"])
    assert texts(buf) == ["hello"]
    assert messages(buf)[0].own and not messages(buf)[0].highlight
    assert messages(buf)[0].delivery is Delivery.DELIVERED and messages(buf)[0].msgid == "E1"
    assert buf.unread == 0


def test_without_echo_message_own_messages_are_shown_locally_once() -> None:
    s = ngircd_session()
    s.switch("#t")
    s.input("hello", NOW)
    assert s.take_outgoing() == ["PRIVMSG #t :hello"]
    buf = s.buffer("#t")
    assert buf is not None and texts(buf) == ["hello"] and messages(buf)[0].own
    assert messages(buf)[0].prefix == "@"


def test_echo_of_a_private_message_goes_to_the_query() -> None:
    s = chat_session()
    s.input("/msg bob hi there", NOW)
    assert s.take_outgoing() == ["@label=o1 PRIVMSG bob :hi there"]
    feed(s, ["@label=o1;msgid=E2 :alice!~a@h PRIVMSG bob :hi there"])
    q = s.buffer("bob")
    assert q is not None and texts(q) == ["hi there"]


def test_highlights_and_unread_counts() -> None:
    s = chat_session(highlight_words=("deploy",))
    buf = s.buffer("#t")
    assert buf is not None
    s.switch(s.server)
    cases = [
        ("alice: ping", True),
        ("hey ALICE!", True),
        ("malice aforethought", False),
        ("alice_ is someone else", False),
        ("<alice>", True),
        ("time to Deploy now", True),
        ("nothing here", False),
    ]
    feed(s, [privmsg("bob", "#t", text) for text, _ in cases])
    assert [ln.highlight for ln in messages(buf)] == [h for _, h in cases]
    assert buf.unread == len(cases) and buf.highlights == 4 and buf.highlight
    s.switch(buf)
    assert buf.unread == 0 and buf.highlights == 0
    # Private messages always highlight; own messages never do.
    feed(s, [privmsg("bob", "alice", "psst"), privmsg("alice", "#t", "alice alice")])
    q = s.buffer("bob")
    assert q is not None and q.highlights == 1 and not messages(buf)[-1].highlight


def test_highlight_uses_the_casemapping() -> None:
    s = make(nick="al[ce]")
    s.connection_made(NOW)
    feed(s, [":srv 001 al[ce] :hi", ":srv 005 al[ce] CASEMAPPING=rfc1459 :ok", ":srv 376 x :e"])
    feed(s, [":bob!b@h JOIN #x", ":al[ce]!a@h JOIN #x", privmsg("bob", "#x", "AL{CE} look")])
    buf = s.buffer("#x")
    assert buf is not None and messages(buf)[-1].highlight


def test_the_echo_of_our_own_ctcp_reply_is_neither_shown_nor_a_query() -> None:
    s = chat_session()  # (echo-message)
    s.switch("#t")
    buf = s.current
    out = feed(s, [privmsg("bob", "alice", "\x01VERSION\x01")], now=NOW)
    assert out == ["NOTICE bob :\x01VERSION chat-client 0.1.0\x01"]
    before = list(buf.lines)
    # The server echoes our reply back to us.
    echo = "@msgid=E1 :alice!~a@127.0.0.1 NOTICE bob :\x01VERSION chat-client 0.1.0\x01"
    assert feed(s, [echo], now=NOW + 0.1) == []
    assert list(buf.lines) == before  # no "CTCP VERSION reply from alice"
    assert not any("reply from" in ln.text for b in s.buffers for ln in b.lines)
    assert s.buffer("bob") is None  # and no query with bob opened for it
    # A reply from someone else is still shown where the user is.
    feed(s, [":bob!b@h NOTICE alice :\x01VERSION other 1.0\x01"], now=NOW + 1)
    assert buf.lines[-1].text == "CTCP VERSION reply from bob: other 1.0"


def test_ctcp_action_version_and_throttle() -> None:
    s = chat_session()
    feed(s, [privmsg("bob", "#t", "\x01ACTION waves\x01")])
    buf = s.buffer("#t")
    assert buf is not None and messages(buf)[-1].kind is Kind.ACTION
    assert messages(buf)[-1].text == "waves"
    out = feed(s, [privmsg("bob", "alice", "\x01VERSION\x01")], now=NOW)
    assert out == ["NOTICE bob :\x01VERSION chat-client 0.1.0\x01"]
    # A PING right after the VERSION is answered (a burst of three), then one per 2 s.
    assert feed(s, [privmsg("bob", "alice", "\x01PING 1\x01")], now=NOW + 0.5) == [
        "NOTICE bob :\x01PING 1\x01"
    ]
    assert feed(s, [privmsg("carl", "alice", "\x01TIME\x01")], now=NOW + 0.6) != []
    assert feed(s, [privmsg("dora", "alice", "\x01PING 2\x01")], now=NOW + 0.7) == []
    assert feed(s, [privmsg("dora", "alice", "\x01PING 3\x01")], now=NOW + 2.8) == [
        "NOTICE dora :\x01PING 3\x01"
    ]
    assert feed(s, [privmsg("dora", "alice", "\x01PING 4\x01")], now=NOW + 3.0) == []
    assert s.buffer("bob") is None  # CTCP requests open no query
    s.input("/me dances", NOW)
    assert s.take_outgoing() == []  # in the server buffer: an error, nothing sent
    s.switch("#t")
    s.input("/me dances", NOW)
    assert s.take_outgoing() == ["@label=o1 PRIVMSG #t :\x01ACTION dances\x01"]


def test_a_dcc_offer_says_what_it_offers_and_that_dcc_is_not_supported() -> None:
    """It showed only "CTCP DCC from carol": a file offer names the file (quoted when
    it has spaces; sanitised, cut when long) and its size; nothing is answered."""
    s = chat_session()
    long_name = "x" * 300
    out = feed(s, [
        privmsg("carol", "alice", "\x01DCC SEND file.txt 2130706433 5000 1234\x01"),
        privmsg("carol", "alice", '\x01DCC SEND "my \x02notes\x02 v2.txt" 1 0 98765 7\x01'),
        privmsg("carol", "alice", "\x01DCC SEND evil\u202etxt.exe 1 2 ²\x01"),
        privmsg("carol", "alice", f"\x01DCC SEND {long_name} 1 2 3\x01"),
        privmsg("carol", "alice", "\x01DCC CHAT chat 2130706433 5001\x01"),
        privmsg("carol", "alice", "\x01DCC RESUME file.txt 5000 100\x01"),
    ])  # fmt: skip
    assert out == []
    said = [ln.text for ln in list(s.server.lines)[-6:]]
    unsupported = "; DCC is not supported"
    assert said == [
        "carol offers a file by DCC: file.txt (1,234 bytes)" + unsupported,
        "carol offers a file by DCC: my notes v2.txt (98,765 bytes)" + unsupported,
        "carol offers a file by DCC: eviltxt.exe" + unsupported,
        "carol offers a file by DCC: " + "x" * 99 + "… (3 bytes)" + unsupported,
        "carol offers a chat by DCC" + unsupported,
        "carol sent a DCC RESUME request" + unsupported,
    ]
    assert s.buffer("carol") is None


def test_whois_whowas_and_who_replies_are_shown_in_words() -> None:
    s = chat_session()
    feed(s, [
        ":srv 311 alice bob ~bob h1 * :Real bob",
        ":srv 312 alice bob srv :TestNet",
        ":srv 318 alice bob :End of /WHOIS list",
        ":srv 314 alice carol ~carol h2 * :Real carol",
        ":srv 312 alice carol srv :Sat Nov 21 15:00:00 2026",
        ":srv 314 alice carol ~c h3 * :Old carol",
        ":srv 312 alice carol srv :Fri Nov 20 09:00:00 2026",
        ":srv 369 alice carol :End of WHOWAS",
    ])  # fmt: skip
    assert [ln.text for ln in list(s.current.lines)[-8:]] == [
        "bob is ~bob@h1 (Real bob)",
        "bob is connected to srv (TestNet)",
        "End of WHOIS for bob",
        "carol was ~carol@h2 (Real carol)",
        "carol left srv at Sat Nov 21 15:00:00 2026",
        "carol was ~c@h3 (Old carol)",
        "carol left srv at Fri Nov 20 09:00:00 2026",
        "End of WHOWAS for carol",
    ]
    feed(s, [
        ":srv 352 alice #t ~bob h1 srv bob H@ :0 Real bob",
        ":srv 352 alice * ~c h3 srv carol G :0 Old carol",
        ":srv 315 alice #t :End of /WHO list",
    ])  # fmt: skip
    assert [ln.text for ln in list(s.current.lines)[-3:]] == [
        "#t: bob [H@] ~bob@h1 (Real bob)",
        "*: carol [G] ~c@h3 (Old carol)",
        "End of WHO for #t",
    ]
    feed(s, [":srv 406 alice dave :There was no such nickname"])
    error = s.current.lines[-1]
    assert (error.kind, error.text) == (Kind.ERROR, "dave: There was no such nickname")


@pytest.mark.parametrize(
    ("zone", "signon"),
    [("UTC", "Mon Nov 23 06:12:01 2026"), ("EST5", "Mon Nov 23 01:12:01 2026")],
)
def test_whois_says_the_idle_time_in_words_and_the_signon_as_a_local_date(
    monkeypatch: pytest.MonkeyPatch, zone: str, signon: str
) -> None:
    """A 317's idle seconds in words and its signon time (1795414321, 06:12:01 UTC) in
    the local zone, as irssi; a 317 without a signon, or with numbers no time can be,
    still says what it has."""
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    try:
        s = chat_session()
        feed(s, [
            ":srv 317 alice bob 3723 1795414321 :seconds idle, signon time",
            ":srv 317 alice carol 5 :seconds idle",
            ":srv 317 alice dave 172805 99999999999999999 :seconds idle, signon time",
            ":srv 317 alice erin soon 1795414321 :seconds idle, signon time",
        ])  # fmt: skip
    finally:
        monkeypatch.undo()
        time.tzset()
    assert [ln.text for ln in list(s.current.lines)[-4:]] == [
        f"bob idle : 1 hour 2 mins 3 secs [signon : {signon}]",
        "carol idle : 5 secs",
        "dave idle : 2 days 0 hours 0 mins 5 secs",
        "erin has been idle for soon s",
    ]


def test_server_notices_go_to_the_server_buffer() -> None:
    s = make()
    s.connection_made(NOW)
    feed(s, [":irc.example NOTICE * :*** Looking up your hostname"])
    assert s.server.lines[-1].kind is Kind.NOTICE
    assert "Looking up" in s.server.lines[-1].text


def test_statusmsg_targets_and_playback_notices() -> None:
    s = chat_session()
    feed(s, [privmsg("bob", "@#t", "ops only"), ":test.server NOTICE #t :[06:58] <bob> old"])
    buf = s.buffer("#t")
    assert buf is not None and texts(buf) == ["ops only", "[06:58] <bob> old"]


def test_events_for_the_ui() -> None:
    s = chat_session()
    s.take_events()
    feed(s, [privmsg("bob", "#t", "hi")])
    events = s.take_events()
    added = [e for e in events if isinstance(e, LineAdded)]
    assert len(added) == 1 and added[0].line.text == "hi" and added[0].buffer.name == "#t"
    s.input("/quit bye", NOW)
    assert s.take_outgoing() == ["QUIT bye"]
    assert any(isinstance(e, QuitRequested) for e in s.take_events())


def test_buffer_switching() -> None:
    s = chat_session(channels=())
    feed(s, [":alice!a@h JOIN #a", ":alice!a@h JOIN #b"])
    assert [b.name for b in s.buffers][1:] == ["#a", "#b"]
    assert s.switch(1) and s.current.name == "#a"
    s.switch_relative(1)
    assert s.current.name == "#b"
    s.switch_relative(1)
    assert s.current is s.server
    s.switch_relative(-1)
    assert s.current.name == "#b"
    assert not s.switch(99) and not s.switch("#nope")


def test_casemapping_change_rekeys_buffers() -> None:
    s = make()
    s.connection_made(NOW)
    feed(s, [":srv 001 alice :hi", ":alice!a@h JOIN #A[x]"])
    assert s.buffer("#a{x}") is not None  # rfc1459 before ISUPPORT
    feed(s, [":srv 005 alice CASEMAPPING=ascii :ok"])
    assert s.buffer("#a[x]") is not None and s.buffer("#a{x}") is None


def test_session_type_is_exported() -> None:
    assert Session.__name__ == "Session" and MAX_MEMBERS > 0


def test_disconnect_after_quit_is_not_an_error() -> None:
    s = chat_session()
    s.connection_lost(NOW, "reset by peer")
    assert s.server.lines[-1].kind is Kind.ERROR and "reset by peer" in s.server.lines[-1].text
    s.connection_made(NOW)
    feed(s, CHAT_BURST)
    s.input("/quit", NOW)
    feed(s, ["ERROR :Closing Link: (Quit: Leaving)"])
    s.connection_lost(NOW, "connection closed by the server")
    assert [ln.kind for ln in s.server.lines][-2:] == [Kind.INFO, Kind.INFO]


def test_autojoin_without_end_of_motd() -> None:
    s = make(channels=("#a",))
    s.connection_made(NOW)
    s.take_outgoing()
    feed(s, [":srv 001 alice :hi"])
    assert feed(s, ["PING :srv"]) == ["PONG srv", "JOIN #a"]
    assert feed(s, [":srv 376 alice :End of MOTD"]) == []


def test_wallops_is_shown_in_the_server_buffer() -> None:
    s = chat_session()
    feed(s, [":oper!~o@h WALLOPS :maintenance at noon", ":srv.example WALLOPS :from a server"])
    got = [(ln.kind, ln.nick, ln.text) for ln in list(s.server.lines)[-2:]]
    assert got == [
        (Kind.NOTICE, "oper", "maintenance at noon"),
        (Kind.NOTICE, "srv.example", "from a server"),
    ]


def test_invites_to_us_and_invite_notify_for_others() -> None:
    s = chat_session()  # joined to #t, the current buffer is the server's
    feed(s, [":bob!b@h INVITE alice #secret"])
    assert s.server.lines[-1].text == "bob invites alice to #secret"
    feed(s, [":bob!b@h INVITE carol #t"])  # invite-notify: in the channel's buffer
    buf = s.buffer("#t")
    assert buf is not None and buf.lines[-1].text == "bob invited carol to #t"
    assert s.server.lines[-1].text == "bob invites alice to #secret"
    # Our own /invite: its 341 says it where it was typed (the channel may not be in
    # view); the invite-notify echo is not shown again.
    s.switch(buf)
    feed(s, [":srv 341 alice dave #t", ":alice!a@h INVITE dave #t"])
    assert [ln.text for ln in buf.lines][-2:] == ["bob invited carol to #t", "Invited dave to #t"]
    s.switch(s.server)
    feed(s, [":srv 341 alice erin #t"])
    assert s.server.lines[-1].text == "Invited erin to #t"
    assert buf.lines[-1].text == "Invited dave to #t"
    # Typed in #t; the answer comes late (a penalising server), the user elsewhere by then.
    s.switch(buf)
    assert run(s, "/invite frank") == ["INVITE frank #t"]
    s.switch(s.server)
    feed(s, [":srv 341 alice Frank #t"])
    assert buf.lines[-1].text == "Invited Frank to #t"


def test_lusers_counts_are_shown_as_their_text() -> None:
    s = chat_session()
    shown = [ln.text for ln in s.server.lines]
    assert "Current local users 1, max 1" in shown  # not "1 1 Current local users 1, max 1"
    assert "Current global users 1, max 1" in shown
    assert "0 operator(s) online" in shown  # (252's count is not in its text: kept)
    n = ngircd_session()
    assert "Current local users: 1, Max: 1" in [ln.text for ln in n.server.lines]


def test_errors_about_a_nick_on_a_channel_go_to_the_channel_not_the_nicks_query() -> None:
    s = joined_session(CHAT_BURST, ("carol",))
    bob = s.open_query("bob", NOW, switch=False)
    assert bob is not None
    feed(s, [":srv 441 alice bob #t :They aren't on that channel",  # /kick bob in #t
             ":srv 443 alice bob #t :is already on channel"])  # /invite bob in #t  # fmt: skip
    t = s.buffer("#t")
    assert t is not None and t is s.current
    assert [ln.text for ln in t.lines][-2:] == [
        "bob is not on #t", "bob is already on #t"]  # fmt: skip
    assert not any(ln.kind is Kind.ERROR for ln in bob.lines)
    # A channel we have no buffer for: where the user is.
    feed(s, [":srv 441 alice bob #elsewhere :They aren't on that channel"])
    assert last_error(s) == "bob is not on #elsewhere"
    # An error about the nick alone still goes to its query.
    feed(s, [":srv 401 alice bob :No such nick/channel"])
    assert bob.lines[-1].text == "bob: No such nick/channel"


def test_a_line_that_is_not_utf8_is_read_as_windows_1252() -> None:
    from client.formatting import decode

    assert decode(b"cp1252 \x93quoted\x94 na\xefve \x80 \x96") == "cp1252 “quoted” naïve € \u2013"
    assert decode("déjà “vu”".encode()) == "déjà “vu”"  # UTF-8 first
    # The five bytes cp1252 leaves undefined are latin-1's C1 controls (then stripped).
    assert decode(b"\xe9\x81\x8d\x8f\x90\x9d") == "é\x81\x8d\x8f\x90\x9d"
    s = joined_session(CHAT_BURST, ("bob",))
    feed(s, [b":bob!b@h PRIVMSG #t :cp1252 \x93quoted\x94 na\xefve"])
    assert s.current.lines[-1].text == "cp1252 “quoted” naïve"


def test_a_message_to_a_channel_we_are_not_in_is_shown_where_it_was_typed() -> None:
    """As irssi's ``[msg(#x)] text``, and no buffer opened out of sight for it."""
    s = ngircd_session()
    s.switch("#t")
    assert run(s, "/msg #x not joined msg") == ["PRIVMSG #x :not joined msg"]
    assert run(s, "/notice #x a notice") == ["NOTICE #x :a notice"]
    assert s.buffer("#x") is None
    shown = [(m.where, m.kind, m.nick, m.text, m.own) for m in messages(s.current)]
    assert shown == [("[msg(#x)]", Kind.MESSAGE, "alice", "not joined msg", True),
                     ("[notice(#x)]", Kind.NOTICE, "alice", "a notice", True)]  # fmt: skip


def test_the_echo_of_a_message_to_a_channel_we_are_not_in_is_shown_where_it_was_typed() -> None:
    s = chat_session()
    s.switch("#t")
    assert run(s, "/msg #x hello") == ["PRIVMSG #x :hello"]
    assert messages(s.current) == []  # (the echo shows it)
    feed(s, ["@msgid=e1 :alice!~a@127.0.0.1 PRIVMSG #x :hello"])
    assert s.buffer("#x") is None and [b.name for b in s.buffers] == ["server", "#t"]
    assert [(m.where, m.text, m.own) for m in messages(s.current)] == [("[msg(#x)]", "hello", True)]
    feed(s, [privmsg("bob", "#y", "others' messages to a channel still open it")])
    assert s.buffer("#y") is not None


def test_an_away_reply_to_messages_is_said_once_a_text() -> None:
    """As irssi's show_away_once: "carol is away: lunch" after every message to her."""
    s = chat_session()
    query = s.open_query("carol", NOW, switch=False)
    assert query is not None
    for _ in range(3):
        run(s, "/msg carol hi")
        feed(s, [":test.server 301 alice carol :lunch"])
    feed(s, [":test.server 301 alice Carol :still at lunch"])  # another text: said
    feed(s, [":carol!c@h AWAY", ":carol!c@h AWAY :still at lunch",  # back, then away again
             ":test.server 301 alice carol :still at lunch"])  # fmt: skip
    away = [ln.text for ln in query.lines if " is away: " in ln.text]
    assert away == ["carol is away: lunch", "Carol is away: still at lunch",
                    "carol is away: still at lunch"]  # fmt: skip
    # A WHOIS says it whatever was said before, with its reply.
    run(s, "/whois carol")
    feed(s, [":test.server 311 alice carol c h * :Carol",
             ":test.server 301 alice carol :still at lunch",
             ":test.server 318 alice carol :End of /WHOIS list"])  # fmt: skip
    assert s.current is not query
    assert "carol is away: still at lunch" in [ln.text for ln in s.current.lines]
