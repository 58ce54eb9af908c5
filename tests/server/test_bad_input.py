"""Hostile and malformed input over real TCP: never a crash, never another user's problem."""

from __future__ import annotations

import asyncio
import logging
import random

import pytest

from chat.message import Message
from server.config import ServerConfig
from tests.conftest import RunningServer
from tests.ircclient import IRCTestClient

SERVER = "test.server"
HOST = "127.0.0.1"
TOO_LONG = "Input line was too long"


@pytest.fixture
def server_config() -> ServerConfig:
    # History off: join playback arrives asynchronously and would interleave here.
    return ServerConfig(name=SERVER, network="TestNet", db="")


def mask(nick: str) -> str:
    return f"{nick}!~{nick}@{HOST}"


def numeric(code: str, *params: str) -> Message:
    return Message(code, list(params), SERVER)


async def pair(server: RunningServer) -> tuple[IRCTestClient, IRCTestClient]:
    """alice and bob, both in #chan, with every join already seen."""
    alice = await server.client("alice")
    bob = await server.client("bob")
    await alice.join("#chan")
    await bob.join("#chan")
    await alice.sync()
    await bob.sync()
    return alice, bob


async def still_works(server: RunningServer, *clients: IRCTestClient) -> None:
    """The given clients and a fresh one can still talk to each other."""
    fresh = await server.client("fresh")
    await fresh.join("#chan")
    for c in clients:
        await c.sync()
    await fresh.send("PRIVMSG #chan :still here")
    for c in clients:
        assert await c.expect("PRIVMSG") == Message(
            "PRIVMSG", ["#chan", "still here"], mask("fresh")
        )


# ---------------------------------------------------------------------- empty lines


async def test_empty_and_blank_lines_are_ignored(server: RunningServer) -> None:
    alice, bob = await pair(server)
    await alice.send_raw(b"\r\n\r\n\n   \r\n \n\r\n")
    assert await alice.sync() == []
    await alice.send_raw(b"\r\nPRIVMSG #chan :after blanks\r\n\r\n")
    assert await bob.expect("PRIVMSG") == Message(
        "PRIVMSG", ["#chan", "after blanks"], mask("alice")
    )
    assert await alice.sync() == []


async def test_blank_lines_before_registration(server: RunningServer) -> None:
    c = await server.client()
    await c.send_raw(b"\r\n   \r\n\n")
    assert await c.sync() == []
    await c.send("NICK alice")
    await c.send("USER alice 0 * :Alice")
    assert (await c.collect_until("376", "422"))[0].command == "001"


# ---------------------------------------------------------------------- line lengths


@pytest.mark.parametrize("chunked", [False, True], ids=["one-write", "chunked"])
async def test_overlong_line_gives_417_and_disconnects(
    server: RunningServer, chunked: bool
) -> None:
    alice, bob = await pair(server)
    line = b"PRIVMSG #chan :" + b"x" * (10 * 1024 - 17) + b"\r\n"
    if chunked:
        # No line ending for 9,000 bytes: the server must give up without waiting for one.
        for i in range(0, 9000, 1000):
            await alice.send_raw(line[i : i + 1000])
    else:
        await alice.send_raw(line)
    assert await alice.wait_closed() == [
        numeric("417", "alice", TOO_LONG),
        Message("ERROR", [f"Closing Link: {HOST} ({TOO_LONG})"]),
    ]
    assert await bob.expect("QUIT") == Message("QUIT", [TOO_LONG], mask("alice"))
    assert await bob.sync() == []  # the long line itself was never relayed
    await still_works(server, bob)


RELAY_TOO_LONG = "Line too long to be relayed without truncation"


async def test_a_message_too_long_once_relayed_is_refused_not_cut(server: RunningServer) -> None:
    """A 510-byte body is a valid line, but with the sender's mask in front the
    recipients' line would pass 512 bytes: 417, as Ergo, rather than a text cut short
    for them (and stored whole). What fits exactly is relayed whole."""
    alice, bob = await pair(server)
    prefix = "PRIVMSG #chan :"
    await alice.send(prefix + "y" * (510 - len(prefix)))
    assert await alice.expect("417") == numeric("417", "alice", RELAY_TOO_LONG)
    assert await bob.sync() == []
    await alice.send("PRIVMSG bob :x")  # learn the mask the others see
    source = (await bob.expect("PRIVMSG")).source
    assert source is not None
    fits = 512 - len(f":{source} {prefix}\r\n".encode())
    await alice.send(prefix + "é" * (fits // 2) + "z" * (fits % 2))
    got = await bob.expect("PRIVMSG")
    assert len(got.params[1].encode()) == fits
    await alice.send(prefix + "é" * (fits // 2) + "z" * (fits % 2 + 1))
    assert await alice.expect("417") == numeric("417", "alice", RELAY_TOO_LONG)
    await alice.send("NOTICE #chan :" + "n" * 480)  # a NOTICE gets no error: cut as before
    notice = await bob.expect("NOTICE")
    assert notice.params[1] == "n" * len(notice.params[1]) and len(notice.params[1]) < 480


async def test_body_over_510_bytes_gives_417(server: RunningServer) -> None:
    alice, bob = await pair(server)
    prefix = "PRIVMSG #chan :"
    await alice.send(prefix + "y" * (511 - len(prefix)))
    assert await alice.expect("417") == numeric("417", "alice", TOO_LONG)
    assert await alice.sync() == []  # not disconnected
    assert await bob.sync() == []  # not relayed
    await alice.send("PRIVMSG #chan :short")
    assert (await bob.expect("PRIVMSG")).params == ["#chan", "short"]


async def test_body_limit_counts_bytes_not_characters(server: RunningServer) -> None:
    alice, bob = await pair(server)
    prefix = "PRIVMSG #chan :"
    text = "é" * 250  # 250 characters, 500 bytes: with the prefix, 515 bytes
    await alice.send(prefix + text)
    assert await alice.expect("417") == numeric("417", "alice", TOO_LONG)
    assert await bob.sync() == []


async def test_tag_data_up_to_4094_bytes_is_accepted(server: RunningServer) -> None:
    c = await server.client("alice")
    # '@' + 'a=' + value + ' ': the whole tag section, exactly 4096 bytes.
    value = "v" * (4096 - 4)
    await c.send(f"@a={value} PING token")
    assert (await c.expect("PONG")).params == [SERVER, "token"]


async def test_tag_data_over_4094_bytes_gives_417(server: RunningServer) -> None:
    """message-tags: a client's tag data, client-only tags or not, is at most 4094 bytes;
    the server "MUST reply with ERR_INPUTTOOLONG" (8191 is the limit with its own tags)."""
    c = await server.client("alice")
    value = "v" * (4097 - 4)
    await c.send(f"@a={value} PING token")
    assert await c.expect("417") == numeric("417", "alice", TOO_LONG)
    assert await c.sync() == []  # no PONG for the rejected line, still connected


async def test_client_tags_over_the_limit_give_417_and_are_not_relayed(
    server: RunningServer,
) -> None:
    alice, bob = await pair(server)
    await alice.send("CAP REQ message-tags")
    await alice.expect("CAP")
    # As irctest: 4095 bytes of tag data in all, only part of it client-only.
    await alice.send(f"@foo=bar;+big={'v' * 4082} TAGMSG #chan")
    assert await alice.expect("417") == numeric("417", "alice", TOO_LONG)
    await alice.send(f"@foo=bar;+big={'v' * 4081} PRIVMSG #chan :hi")
    assert (await bob.expect("PRIVMSG")).params == ["#chan", "hi"]


# ---------------------------------------------------------------------- encoding and NUL


@pytest.mark.parametrize(
    ("raw", "command"),
    [
        (b"PRIVMSG #chan :caf\xe9\r\n", "PRIVMSG"),
        (b"privmsg #chan :\xff\xfe\r\n", "PRIVMSG"),
        (b"@+x=\xc3 NOTICE #chan :hi\r\n", "NOTICE"),
        (b"\xe9T #chan :hi\r\n", "*"),  # no command to name
    ],
    ids=["latin1", "bom", "in-tags", "in-command"],
)
async def test_invalid_utf8_fails_and_is_not_relayed(
    server: RunningServer, raw: bytes, command: str
) -> None:
    alice, bob = await pair(server)
    await alice.send_raw(raw)
    # The FAIL names the command the line was (IRCv3 UTF8ONLY; irctest).
    assert await alice.expect("FAIL") == Message(
        "FAIL", [command, "INVALID_UTF8", "Message rejected: it was not valid UTF-8"], SERVER
    )
    assert await alice.sync() == []
    assert await bob.sync() == []
    await still_works(server, alice, bob)


async def test_invalid_utf8_before_registration(server: RunningServer) -> None:
    c = await server.client()
    await c.send_raw(b"NICK \xe9\xe9\r\n")
    assert (await c.expect("FAIL")).params[:2] == ["NICK", "INVALID_UTF8"]
    await c.send("NICK alice")
    await c.send("USER alice 0 * :Alice")
    assert (await c.collect_until("376", "422"))[0].command == "001"


@pytest.mark.parametrize(
    ("raw", "command"),
    [(b"PRIVMSG #chan :a\x00b\r\n", "PRIVMSG"), (b"PRIVMSG #ch\x00an :hi\r\n", "PRIVMSG"),
     (b"\x00\r\n", "*")],
)
async def test_nul_byte_fails_and_is_not_relayed(
    server: RunningServer, raw: bytes, command: str
) -> None:
    alice, bob = await pair(server)
    await alice.send_raw(raw)
    assert await alice.expect("FAIL") == Message(
        "FAIL", [command, "INVALID_MESSAGE", "Message rejected: it contained NUL or CR"], SERVER
    )
    assert await bob.sync() == []
    await still_works(server, alice, bob)


async def test_bare_cr_inside_a_line_is_never_relayed(server: RunningServer) -> None:
    alice, bob = await pair(server)
    await alice.send_raw(b"PRIVMSG #chan :hi\r:evil!x@y PRIVMSG #chan :forged\r\n")
    assert (await alice.expect("FAIL")).params[:2] == ["PRIVMSG", "INVALID_MESSAGE"]
    received = await bob.sync()
    assert not [m for m in received if m.command == "PRIVMSG"]


async def test_lines_before_an_overlong_line_still_count(server: RunningServer) -> None:
    alice, bob = await pair(server)
    await alice.send_raw(b"PRIVMSG #chan :before\r\n" + b"x" * 10_000 + b"\r\n")
    assert (await bob.expect("PRIVMSG")).params == ["#chan", "before"]
    quit_msg = await bob.expect("QUIT")
    assert quit_msg.params == ["Input line was too long"]


# ---------------------------------------------------------------------- line endings


async def test_bare_lf_line_endings(server: RunningServer) -> None:
    alice, bob = await pair(server)
    await alice.send_raw(b"PRIVMSG #chan :one\nPRIVMSG #chan :two\r\nPRIVMSG #chan :three\n")
    for text in ("one", "two", "three"):
        assert await bob.expect("PRIVMSG") == Message("PRIVMSG", ["#chan", text], mask("alice"))


async def test_bare_lf_registration(server: RunningServer) -> None:
    c = await server.client()
    await c.send_raw(b"NICK alice\nUSER alice 0 * :Alice\n")
    assert (await c.collect_until("376", "422"))[0].command == "001"


async def test_crlf_and_utf8_split_across_writes(server: RunningServer) -> None:
    alice, bob = await pair(server)
    pieces = [
        b"PRIV",
        b"MSG #chan :caf\xc3",
        b"\xa9 split",
        b"\r",
        b"\nPRIVMSG #chan :next\r",
        b"\n",
    ]
    for piece in pieces:
        await alice.send_raw(piece)
        await asyncio.sleep(0.02)  # let each piece go out as a segment of its own
    assert await bob.expect("PRIVMSG") == Message("PRIVMSG", ["#chan", "café split"], mask("alice"))
    assert await bob.expect("PRIVMSG") == Message("PRIVMSG", ["#chan", "next"], mask("alice"))
    assert await alice.sync() == []


async def test_one_byte_at_a_time(server: RunningServer) -> None:
    alice, bob = await pair(server)
    for byte in b"PRIVMSG #chan :slow\r\n":
        await alice.send_raw(bytes([byte]))
    assert await bob.expect("PRIVMSG") == Message("PRIVMSG", ["#chan", "slow"], mask("alice"))


async def test_partial_line_then_close(server: RunningServer) -> None:
    alice, bob = await pair(server)
    await alice.send_raw(b"PRIVMSG #chan :half a li")
    await asyncio.sleep(0.1)  # let the server buffer the partial line before the close
    await alice.close()
    quit_ = await bob.expect("QUIT")
    assert quit_ == Message("QUIT", ["Connection closed"], mask("alice"))
    # The partial line was never executed.
    await bob.send("NAMES #chan")
    assert (await bob.expect("353")).params[-1] == "bob"
    await still_works(server, bob)


# ---------------------------------------------------------------------- garbage


async def test_random_binary_garbage(server: RunningServer) -> None:
    alice, bob = await pair(server)
    rng = random.Random(20240601)
    for _ in range(16):
        await alice.send_raw(rng.randbytes(4096))
    await alice.send_raw(b"\r\n")
    # Whatever the garbage drew as replies, the connection is still in sync afterwards.
    replies = await alice.sync(timeout=10)
    assert all(m.command in {"FAIL", "421", "417", "461"} for m in replies), {
        m.command for m in replies
    }
    assert await bob.sync() == []  # nothing reached the channel
    await still_works(server, alice, bob)


async def test_garbage_from_unregistered_connection(server: RunningServer) -> None:
    bob = await server.client("bob")
    c = await server.client()
    rng = random.Random(7)
    await c.send_raw(rng.randbytes(8000) + b"\r\n")
    await c.send_raw(bytes(range(256)) + b"\r\n")
    await c.close()
    assert await bob.sync() == []
    await bob.send("PRIVMSG bob :self")
    assert (await bob.expect("PRIVMSG")).params == ["bob", "self"]


async def test_unknown_and_odd_commands(server: RunningServer) -> None:
    c = await server.client("alice")
    await c.send("FOO")
    assert await c.expect("421") == numeric("421", "alice", "FOO", "Unknown command")
    await c.send("privmsgx #chan :x")
    assert await c.expect("421") == numeric("421", "alice", "PRIVMSGX", "Unknown command")
    await c.send("\x01\x02 x")
    assert await c.expect("421") == numeric("421", "alice", "\x01\x02", "Unknown command")
    await c.send("123")
    assert await c.expect("421") == numeric("421", "alice", "123", "Unknown command")
    assert await c.sync() == []


@pytest.mark.parametrize("line", [":src", ":", "@a=b", "@a=b :src", "@", ":src   ", "@a=b  "])
async def test_prefix_or_tags_without_command_are_ignored(server: RunningServer, line: str) -> None:
    alice, bob = await pair(server)
    await alice.send(line)
    assert await alice.sync() == []
    assert await bob.sync() == []


async def test_source_prefix_from_client_is_ignored(server: RunningServer) -> None:
    alice, bob = await pair(server)
    await alice.send(":bob!~bob@elsewhere PRIVMSG #chan :who am i")
    assert await bob.expect("PRIVMSG") == Message("PRIVMSG", ["#chan", "who am i"], mask("alice"))
    await alice.send(":alice PING tok")
    assert (await alice.expect("PONG")).params == [SERVER, "tok"]


async def test_lowercase_command_and_extra_spaces(server: RunningServer) -> None:
    alice, bob = await pair(server)
    await alice.send("privmsg   #chan    :spaced  out ")
    assert await bob.expect("PRIVMSG") == Message(
        "PRIVMSG", ["#chan", "spaced  out "], mask("alice")
    )


async def test_missing_params_give_461(server: RunningServer) -> None:
    c = await server.client("alice")
    for command in ("JOIN", "PART", "KICK #chan", "MODE", "WHOIS", "TOPIC", "TAGMSG"):
        await c.send(command)
        reply = await c.expect("461")
        assert reply == numeric("461", "alice", command.split()[0], "Not enough parameters")
    await c.send("PRIVMSG")
    assert await c.expect("411") == numeric("411", "alice", "No recipient given (PRIVMSG)")
    await c.send("PRIVMSG #chan")
    assert await c.expect("412") == numeric("412", "alice", "No text to send")
    assert await c.sync() == []


async def test_flood_of_small_lines_in_one_write(server: RunningServer) -> None:
    alice, bob = await pair(server)
    await alice.send_raw(b"".join(b"PRIVMSG #chan :n%d\r\n" % i for i in range(300)))
    for i in range(300):
        assert (await bob.expect("PRIVMSG")).params == ["#chan", f"n{i}"]


# ---------------------------------------------------------------------- odd digits


async def test_digits_that_are_not_ascii_are_not_numbers(
    server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    # str.isdigit() admits "²", which int() rejects: each of these raised in its
    # handler (a traceback in the log per line, no end-of-list reply).
    alice = await server.client("alice")
    await alice.join("#chan")
    await alice.sync()
    with caplog.at_level(logging.ERROR):
        await alice.send("LIST >²")
        await alice.expect("323")
        await alice.send("LIST C<²")
        await alice.expect("323")
        await alice.send("WHOWAS nobody ²")
        await alice.expect("406")
        await alice.expect("369")
        await alice.send("CAP LS ²")
        assert (await alice.expect("CAP")).params[1] == "LS"
        await alice.send("MODE #chan +l ²")
        await alice.sync()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    await still_works(server, alice)
