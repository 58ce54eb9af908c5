"""Minimal reproductions of what the fuzzers found, each fixed; they must stay fixed.

Every test drives ServerCore through the harness, so besides its own assertions each one
also re-checks every invariant (one bounded, parseable line per output line; nick,
channel and connection state consistent; no logged exception) after each step.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from chat.message import MAX_LINE_BODY, Message, ParseError, parse
from tests.fuzz.harness import SERVER_NAME, CoreHarness, check_output_line, fuzz_config

CONFIG = replace(fuzz_config(), flood_burst=0, throttle_burst=0, max_per_host=0, db="")
LABELS = "labeled-response batch message-tags echo-message server-time"


def harness(**overrides: Any) -> CoreHarness:
    return CoreHarness(replace(CONFIG, **overrides))


def body_len(line: bytes) -> int:
    """Bytes of a line without its tags, CRLF included: what the 512-byte limit counts."""
    return len(line) - (line.find(b" ") + 1 if line.startswith(b"@") else 0)


def only(got: dict[int, list[bytes]], conn: int) -> Message:
    assert len(got[conn]) == 1, got
    return parse(got[conn][0].decode())


# ---------------------------------------------------------------------- labeled-response


@pytest.mark.parametrize(
    ("escaped", "label"),
    [
        ("a\\sb", "a b"),  # was: "@label=a b :srv PONG": "b" became the source
        ("x\\r\\nPRIVMSG\\sme\\s:forged", "x\r\nPRIVMSG me :forged"),  # was: a second line
        ("semi\\:colon", "semi;colon"),  # was: "label=semi;colon": a tag "colon" appeared
        ("back\\\\slash", "back\\slash"),
    ],
)
def test_label_value_is_escaped_in_the_reply(escaped: str, label: str) -> None:
    with harness() as h:
        alice = h.register("alice", caps=LABELS)
        got = h.send_line(alice, f"@label={escaped} PING tok")
        msg = only(got, alice)
        assert msg.tags == {"label": label}
        assert (msg.command, msg.params) == ("PONG", [SERVER_NAME, "tok"])
        h.finish()


def test_label_over_64_bytes_is_ignored_not_echoed_past_the_tag_limit() -> None:
    # Was: an 8170-byte label echoed with time and msgid gave 8231 bytes of tags (> 8191).
    with harness() as h:
        alice = h.register("alice", caps=LABELS)
        h.send_line(alice, "JOIN #c")
        got = h.send_line(alice, "@label=" + "L" * 8170 + " PRIVMSG #c :hi")
        assert "label" not in only(got, alice).tags
        got = h.send_line(alice, "@label=" + "L" * 64 + " PRIVMSG #c :hi")
        assert only(got, alice).tags["label"] == "L" * 64
        h.finish()


def test_empty_label_is_no_label() -> None:
    # The label tag "has a required value": "@label" alone is not a label (was: "@label=").
    with harness() as h:
        alice = h.register("alice", caps=LABELS)
        got = h.send_line(alice, "@label PING tok")
        assert "label" not in only(got, alice).tags
        h.finish()


# ---------------------------------------------------------------------- 512-byte lines


def test_relayed_full_length_notice_is_cut_to_512_bytes_on_a_character_boundary() -> None:
    # Was: a legal 510-byte NOTICE relayed with the sender's mask in front: 555 bytes.
    # (A PRIVMSG that long is refused with 417 since 6de0eaa: below.)
    with harness() as h:
        alice = h.register("alice", caps="echo-message")
        bob = h.register("bob")
        h.send_line(alice, "JOIN #c")
        h.send_line(bob, "JOIN #c")
        text = "é" * 249  # 11 + 498 = 509 bytes sent; two-byte characters to split
        got = h.send_line(alice, "NOTICE #c :" + text)
        for conn in (alice, bob):
            line = got[conn][0]
            assert len(line) <= MAX_LINE_BODY
            relayed = parse(line.decode())
            assert relayed.command == "NOTICE"
            assert text.startswith(relayed.params[1])
            assert len(relayed.params[1]) >= 220  # cut, not dropped
        h.finish()


def test_a_privmsg_too_long_once_relayed_is_refused_and_never_stored() -> None:
    with CoreHarness(replace(CONFIG, db="on", history_playback=0)) as h:
        alice = h.register("alice")
        bob = h.register("bob")
        h.send_line(alice, "JOIN #c")
        h.send_line(bob, "JOIN #c")
        got = h.send_line(alice, "PRIVMSG #c :" + "x" * 498)
        assert [parse(line.decode()).command for line in got[alice]] == ["417"]
        assert not got.get(bob)
        assert [m for m in h.store if m.command == "PRIVMSG"] == []
        h.finish()


def test_history_keeps_the_text_the_channel_saw() -> None:
    with CoreHarness(replace(CONFIG, db="on", history_playback=0)) as h:
        alice = h.register("alice")
        bob = h.register("bob")
        h.send_line(alice, "JOIN #c")
        h.send_line(bob, "JOIN #c")
        got = h.send_line(alice, "NOTICE #c :" + "x" * 499)
        seen = parse(got[bob][0].decode()).params[1]
        assert len(seen) < 499  # cut for the channel: stored as cut
        assert [m.text for m in h.store if m.command == "NOTICE"] == [seen]
        h.finish()


@pytest.mark.parametrize(
    "command",
    [
        "QUIT :" + "☃" * 168,  # ERROR :Closing Link: host (Quit: ...): was 514+ bytes
        "TOPIC #c :" + "𝄞" * 120,  # TOPICLEN counts characters: 390 of them can be 1560 bytes
        "KICK #c bob :" + "é" * 240,
        "PART #c :" + "é" * 240,
        "AWAY :" + "☃" * 160,
    ],
)
def test_multibyte_reasons_within_character_limits_still_fit_512_bytes(command: str) -> None:
    with harness(cloak_hosts=False) as h:
        alice = h.register("alice", "2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff", caps="away-notify")
        bob = h.register("bob", caps="away-notify")
        h.send_line(alice, "JOIN #c")
        h.send_line(bob, "JOIN #c")
        h.send_line(alice, "PRIVMSG bob :hi")  # bob and alice share #c: AWAY reaches bob
        got = h.send_line(alice, command)
        assert got, "the command did something"
        for lines in got.values():
            for line in lines:
                assert body_len(line) <= MAX_LINE_BODY
        h.finish()


def test_topic_of_multibyte_characters_fits_in_332_and_list() -> None:
    # 250 two-byte characters are within TOPICLEN (390 characters) and a legal 510-byte
    # TOPIC line; 332 to a 30-character nick then needed 554 bytes.
    with harness() as h:
        nick = "z" * 30
        alice = h.register(nick)
        h.send_line(alice, "JOIN #c")
        h.send_line(alice, "TOPIC #c :" + "é" * 250)
        for command in ("TOPIC #c", "LIST"):
            got = h.send_line(alice, command)
            for line in got[alice]:
                assert body_len(line) <= MAX_LINE_BODY
        rpl_topic = parse(h.send_line(alice, "TOPIC #c")[alice][0].decode())
        assert rpl_topic.command == "332"
        assert ("é" * 250).startswith(rpl_topic.params[-1])
        h.finish()


def test_long_realname_fits_in_whois_and_who_replies() -> None:
    with harness() as h:
        zed = h.connect("192.0.2.9")
        h.send(zed, ("NICK " + "z" * 30 + "\r\nUSER z 0 * :" + "r" * 480 + "\r\n").encode())
        for command in ("WHOIS " + "z" * 30, "WHO " + "z" * 30, "WHO *"):
            got = h.send_line(zed, command)
            assert got[zed]
            for line in got[zed]:
                assert body_len(line) <= MAX_LINE_BODY
        h.finish()


def test_whois_lists_all_fifty_channels_over_several_319_lines() -> None:
    # Was: one 319 line of ~2600 bytes (50 channels of 50 characters, the defaults).
    with harness(max_channels=50) as h:
        carol = h.register("carol")
        names = ["#" + str(i).rjust(49, "c") for i in range(50)]
        for name in names:
            h.send_line(carol, "JOIN " + name)
        got = h.send_line(carol, "WHOIS carol")
        listed: list[str] = []
        for line in got[carol]:
            msg = parse(line.decode())
            if msg.command == "319":
                assert len(line) <= MAX_LINE_BODY
                listed += msg.params[-1].split()
        assert listed == ["@" + name for name in names]
        h.finish()


def test_ison_with_one_nick_repeated_stays_one_line_of_whole_nicks() -> None:
    with harness() as h:
        nick = "z" * 30
        alice = h.register(nick)
        got = h.send_line(alice, "ISON" + (" " + nick) * 16)  # a 501-byte line
        reply = only(got, alice)
        assert reply.command == "303"
        assert set(reply.params[-1].split()) == {nick}
        h.finish()


def test_cap_req_too_long_to_echo_is_refused_whole() -> None:
    # fit_line would cut an ACK mid-list ("batch ba"): a request that cannot fit is a NAK.
    # (492 bytes: a legal line to send, but its ACK would need 518.)
    with harness() as h:
        conn = h.connect()
        got = h.send_line(conn, "CAP REQ :" + "batch " * 82)
        reply = only(got, conn)
        assert reply.params[1] == "NAK"
        got = h.send_line(conn, "CAP REQ :batch message-tags")
        assert only(got, conn).params[1:] == ["ACK", "batch message-tags"]
        h.finish()


LONG = "q" * 470  # a "name" no limit allows, in a line that is still legal (<= 510 bytes)


@pytest.mark.parametrize(
    "command",
    [
        f"PRIVMSG {LONG} :x",  # 401
        f"PART #{LONG}",  # 403
        f"JOIN #{LONG}",  # 476
        f"PRIVMSG a,b,c,{LONG} :x",  # 407 echoes the whole target list
        f"NICK {LONG}",  # 432
        f"KICK #c {LONG}",  # 441
        f"{LONG} x",  # 421 echoes the command
        f"NAMES #{LONG}",  # 366
        f"WHO {LONG}",  # 315
        f"VERSION {LONG}",  # 402
        f"MODE #c +l {LONG}",  # 696 echoes the bad limit
        f"CAP {LONG}",  # 410
        f"CHATHISTORY {LONG} #c * 5",  # FAIL ... INVALID_PARAMS <subcommand>
        f"CHATHISTORY LATEST #{LONG} * 5",  # FAIL ... INVALID_TARGET LATEST <target>
        f"CHATHISTORY LATEST #c {LONG} 5",  # FAIL ... INVALID_PARAMS LATEST <ref>
    ],
)
def test_replies_echoing_an_overlong_name_fit_512_bytes(command: str) -> None:
    # Was: ":srv 401 <30-char nick> <470 bytes> :No such nick/channel", 542 bytes; cutting
    # the trailing text cannot help when the echoed middle parameter alone is too long.
    with CoreHarness(replace(CONFIG, db="on", max_targets=3)) as h:
        nick = "z" * 30
        alice = h.register(nick)
        h.send_line(alice, "JOIN #c")
        h.answer_all_history()  # (the join's playback: its output waits for it)
        got = h.send_line(alice, command)
        assert got[alice]
        for line in got[alice]:
            assert body_len(line) <= MAX_LINE_BODY
        h.finish()


def test_four_long_bans_are_relayed_over_several_mode_lines_not_cut() -> None:
    # Was: one MODE line of 4 x 116-byte masks behind a long source, its last mask cut short
    # by the 512-byte fitting, so the other members' ban lists went wrong.
    with harness(cloak_hosts=False) as h:
        alice = h.register("z" * 30, "2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff")
        bob = h.register("bob")
        h.send_line(alice, "JOIN #c")
        h.send_line(bob, "JOIN #c")
        # 105 bytes each, the longest kept (nick, user and host cut to 30, 10 and 63).
        masks = ["m" * 29 + f"{i}!{'u' * 10}@{'h' * 63}" for i in range(4)]
        got = h.send_line(alice, "MODE #c +bbbb " + " ".join(masks))
        seen: list[str] = []
        for line in got[bob]:
            msg = parse(line.decode())
            assert msg.command == "MODE" and len(line) <= MAX_LINE_BODY
            letters, *args = msg.params[1:]
            assert letters == "+" + "b" * len(args)
            seen += args
        assert seen == masks
        assert len(got[bob]) > 1
        h.finish()


def test_ban_mask_limit_counts_bytes() -> None:
    # Was: 150 two-byte characters passed the 200-character check; 367 then overflowed.
    with harness() as h:
        alice = h.register("alice")
        h.send_line(alice, "JOIN #c")
        reply = only(h.send_line(alice, "MODE #c +b " + "é" * 150), alice)
        assert reply.command == "696"
        assert h.core.channels["#c"].bans == []
        h.finish()


# ---------------------------------------------------------------------- state after shutdown


def test_shutdown_leaves_no_nick_or_channel_behind() -> None:
    # Was: shutdown() marked clients closing without quit(), so connection_lost skipped the
    # clean-up and core.nicks and core.channels kept every client that had been connected.
    with harness() as h:
        alice = h.register("alice")
        bob = h.register("bob")
        h.send_line(alice, "JOIN #c")
        h.send_line(bob, "JOIN #c")
        got = h.shutdown()
        assert got[alice][0].startswith(b"ERROR ")
        assert h.core.nicks == {} and h.core.channels == {}
        h.finish()
        assert h.core.clients == {}


def test_shutdown_leaves_no_accept_list_behind() -> None:
    # Was (found by fuzz_core before caller ID was committed): shutdown() skips quit(), so
    # the closing clients kept their accept lists, and their places on others', until the
    # transport reported each connection lost.
    with harness() as h:
        alice = h.register("alice")
        bob = h.register("bob")
        h.send_line(alice, "MODE alice +g")
        h.send_line(alice, "ACCEPT bob")
        h.send_line(bob, "ACCEPT alice")
        h.shutdown()  # check_state: nobody closing keeps a list or is on one
        assert h.core.accept.accepted_by == {}
        h.finish()


# ---------------------------------------------------------------------- the checker itself


@pytest.mark.parametrize(
    "line",
    [
        b"PING x",  # no CRLF
        b"PING x\r\nPONG y\r\n",  # two lines
        b"PING \x00\r\n",
        b"@label=a b :srv ACK\r\n",
        b"PRIVMSG #a :" + b"x" * 510 + b"\r\n",
        b"@" + b"t" * 8191 + b" PING x\r\n",
        b"PRIVMSG #a :\xff\r\n",
    ],
)
def test_the_line_checker_rejects_what_it_should(line: bytes) -> None:
    with pytest.raises(AssertionError):
        check_output_line(line)


# ---------------------------------------------------------------------- parser


@pytest.mark.parametrize("line", [": :\x10TD", ": :x", "@ @x", ": @x", ":src :x", "@a=1 :src :CMD"])
def test_a_second_source_or_tag_section_is_not_a_command(line: str) -> None:
    # Was (fuzz_parser): parse(": :\x10TD") gave command ":\x10TD", whose serialisation
    # ":\x10TD" parses as a source without a command: parse -> to_line -> parse failed.
    with pytest.raises(ParseError):
        parse(line)


def test_such_a_line_from_a_client_is_ignored() -> None:
    with harness() as h:
        alice = h.register("alice")
        assert h.send_line(alice, ": :PRIVMSG alice :hi") == {}
        h.finish()


# ---------------------------------------------------------------------- WHOX


@pytest.mark.parametrize("options", ["%", "%xyz", "o%", "%,42"])
def test_who_with_whox_options_but_no_field_is_a_plain_who(options: str) -> None:
    """`WHO #chan %` once made a 354 with no parameter at all: the handler crashed."""
    with harness() as h:
        alice = h.register("alice")
        h.send_line(alice, "JOIN #chan")
        got = h.send_line(alice, f"WHO #chan {options}")
        replies = [parse(line.decode()).command for line in got[alice]]
        assert replies == (["315"] if options.startswith("o") else ["352", "315"])


def test_an_address_with_a_leading_colon_is_shown_with_a_zero() -> None:
    """From "::1" the host was "::1", which replies turned into "*" (a middle parameter
    cannot start with ':'); WHO, WHOIS and WHOX now say "0::1", as other servers do."""
    with harness(cloak_hosts=False) as h:
        alice = h.register("alice", ip="::1")
        who = [parse(line.decode()) for line in h.send_line(alice, "WHO alice %ih")[alice]]
        assert who[0].command == "354" and who[0].params[1:] == ["0::1", "0::1"]
        got = h.send_line(alice, "WHOIS alice")
        whois = parse(got[alice][0].decode())
        assert whois.command == "311" and whois.params[3] == "0::1"


# ---------------------------------------------------------------------- server bans


def test_an_operator_exempt_from_a_ban_stays_after_dropping_o() -> None:
    """Bans are checked when set and at registration (as on solanum): an operator the
    ban matched stays connected after MODE -o. The harness once called that a bug; a ban
    set after -o still disconnects."""
    with harness() as h:
        alice = h.register("alice", ip="192.0.2.1")
        h.send_line(alice, "OPER root hunter2")
        h.send_line(alice, "KLINE MYSELF *@*.1 :mine")
        h.send_line(alice, "MODE alice -o")
        assert h.core.clients[alice].modes == set()
        got = h.send_line(alice, "PING still")
        assert parse(got[alice][0].decode()).command == "PONG"
        bob = h.register("bob", ip="192.0.2.2")
        h.send_line(bob, "OPER root hunter2")
        got = h.send_line(bob, "KLINE MYSELF *@192.0.2.* :all of them")
        assert [parse(line.decode()).command for line in got[alice]] == ["465", "ERROR"]
        assert alice not in h.core.clients
        h.finish()


# ---------------------------------------------------------------------- accounts


def test_the_harness_answers_account_requests() -> None:
    """REGISTER and SASL PLAIN through the harness's account store: the fuzzer's
    account invariants check real logins, not only refusals."""
    with harness() as h:
        alice = h.register("alice", caps="account-notify")
        got = h.send_line(alice, "REGISTER * * password1")
        assert [parse(line.decode()).command for line in got[alice]] == [
            "REGISTER", "900", "ACCOUNT"]
        bob = h.connect("192.0.2.2")
        h.send_line(bob, "CAP REQ sasl")
        h.send_line(bob, "AUTHENTICATE PLAIN")
        got = h.send_line(bob, "AUTHENTICATE AGFsaWNlAHBhc3N3b3JkMQ==")  # \0alice\0password1
        assert [parse(line.decode()).command for line in got[bob]] == ["900", "903"]
        assert h.core.clients[bob].account == "alice"
        h.finish()


def test_private_messages_between_accounts_are_stored_under_their_pair() -> None:
    with harness(db="on") as h:  # history on (the harness keeps the rows)
        alice = h.register("alice")
        bob = h.register("bob", ip="192.0.2.2")
        h.register("carol", ip="192.0.2.3")
        h.send_line(alice, "REGISTER * * password1")
        h.send_line(bob, "REGISTER * * password2")
        h.send_line(alice, "PRIVMSG bob :hi")
        h.send_line(alice, "PRIVMSG carol :no account, not kept")
        assert [(m.target, m.channel, m.text) for m in h.store] == [("$alice$bob", "bob", "hi")]
        h.finish()


def test_lines_wait_for_a_chain_of_answers() -> None:
    """NS DROP checks the password, then drops: two answers in a row. The second hold
    once replaced the first's held lines, so a PING sent meanwhile was lost (a real
    client hung); now it waits for both and is answered last."""
    with harness() as h:
        xena = h.register("xena")
        h.send_line(xena, "REGISTER * * password1")
        got = h.send(xena, b"NS DROP xena password1\r\nPING after\r\n")
        replies = [parse(line.decode()) for line in got[xena]]
        assert [m.command for m in replies] == ["NOTICE", "901", "PONG"]
        assert replies[-1].params[-1] == "after"
        h.finish()


def test_a_user_watching_its_own_nick_gets_no_731_as_it_leaves() -> None:
    """The core fuzzer: alice MONITORs alice, then her connection is lost; the 731 for
    her own nick was written to her dead connection. Others watching still get it."""
    with harness() as h:
        alice = h.register("alice")
        bob = h.register("bob")
        h.send_line(alice, "MONITOR + alice")
        h.send_line(bob, "MONITOR + alice")
        got = h.lose(alice)  # the harness fails on output after connection_lost
        assert [parse(line.decode()).command for line in got[bob]] == ["731"]
        h.finish()
