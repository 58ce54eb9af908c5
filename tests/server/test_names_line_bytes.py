"""NAMES splits its members into 353 lines of at most 512 bytes, CRLF included, counting
UTF-8 bytes: userhost-in-names usernames of multibyte characters left lines of 650
bytes, which clients and servers that keep to 512 cut (channel names of multibyte
characters too, before CHANNELLEN counted bytes). Over real TCP, on every backend,
read as the raw bytes the server sent."""

from __future__ import annotations

from chat.message import MAX_LINE_BODY, parse
from server.config import ServerConfig
from tests.conftest import RunningServer, serving, suite_config
from tests.ircclient import IRCTestClient

CHANNEL = "#" + "😀" * 12  # 49 bytes: CHANNELLEN (50) counts bytes
MEMBERS = 20
# Nicks are ASCII: the asker's is as long as nicks go, to make the prefix longest.
ASKER = "a" * 30


def member_nick(n: int) -> str:
    return f"member{n:02d}".ljust(30, "x")


async def raw_names(client: IRCTestClient) -> list[bytes]:
    """The raw 353 lines of ``NAMES CHANNEL``, up to its 366."""
    await client.send(f"NAMES {CHANNEL}")
    lines: list[bytes] = []
    while True:
        raw = await client.reader.readline()
        command = raw.split(b" ", 2)[1]
        if command == b"366":
            return lines
        if command == b"353":
            lines.append(raw)


def listed(lines: list[bytes]) -> list[str]:
    """The members the lines name, without prefixes or user@host."""
    names = [parse(line.decode().rstrip("\r\n")).params[3] for line in lines]
    return sorted(entry.lstrip("@+").partition("!")[0] for text in names for entry in text.split())


async def fill(running: RunningServer) -> list[str]:
    """MEMBERS members in CHANNEL, each with a username of ten four-byte characters (what
    USERLEN allows); their nicks."""
    nicks = [member_nick(n) for n in range(MEMBERS)]
    for nick in nicks:
        member = await running.client()
        await member.send(f"NICK {nick}")
        await member.send(f"USER {'😀' * 10} 0 * :{nick}")
        await member.collect_until("376", "422")
        await member.join(CHANNEL)
    return nicks


async def names_seen(config: ServerConfig, backend: str, caps: list[str]) -> None:
    async with serving(config, backend) as running:
        nicks = await fill(running)
        asker = await running.client(ASKER, caps)
        lines = await raw_names(asker)
        assert len(lines) > 1  # the split is under test
        assert max(len(line) for line in lines) <= MAX_LINE_BODY
        assert all(line.endswith(b"\r\n") for line in lines)
        assert listed(lines) == sorted(nicks)


async def test_names_lines_fit_512_bytes(backend: str) -> None:
    await names_seen(suite_config(db=""), backend, [])


async def test_userhost_in_names_lines_fit_512_bytes(backend: str) -> None:
    await names_seen(suite_config(db="", cloak_hosts=True), backend, ["userhost-in-names"])


async def test_a_long_server_name_leaves_less_room(backend: str) -> None:
    await names_seen(suite_config(db="", name="irc." + "n" * 50 + ".example"), backend, [])
