"""LINKS over real TCP, on every backend (one server: it lists itself)."""

from __future__ import annotations

import pytest

from chat.message import Message
from tests.conftest import RunningServer, suite_config
from tests.server.helpers import ask

SERVER = "test.server"


def numeric(code: str, *params: str) -> Message:
    return Message(code, list(params), SERVER)


SELF = numeric("364", "alice", SERVER, SERVER, "0 TestNet")  # itself, linked to itself


def end(mask: str = "*") -> Message:
    return numeric("365", "alice", mask, "End of /LINKS list")


async def test_links_lists_this_server(server: RunningServer) -> None:
    alice = await server.client("alice")
    assert await ask(alice, "LINKS") == [SELF, end()]
    assert await ask(alice, "LINKS :") == [SELF, end()]  # an empty mask is no mask


@pytest.mark.parametrize("mask", ["*", "test.*", "*.SERVER", "t?st.server", SERVER])
async def test_a_matching_mask(server: RunningServer, mask: str) -> None:
    alice = await server.client("alice")
    assert await ask(alice, f"LINKS {mask}") == [SELF, end(mask)]


@pytest.mark.parametrize("mask", ["*.example", "test", "other.server"])
async def test_a_mask_that_matches_nothing(server: RunningServer, mask: str) -> None:
    alice = await server.client("alice")
    assert await ask(alice, f"LINKS {mask}") == [end(mask)]


async def test_remote_server_and_mask(server: RunningServer) -> None:
    alice = await server.client("alice")
    # A remote server this one knows (itself, here) answers with the mask applied.
    assert await ask(alice, f"LINKS {SERVER} *.server") == [SELF, end("*.server")]
    assert await ask(alice, "LINKS TEST.* *") == [SELF, end()]
    assert await ask(alice, f"LINKS {SERVER} nomatch") == [end("nomatch")]
    # One it does not know: 402, no list.
    assert await ask(alice, "LINKS other.server *") == [
        numeric("402", "alice", "other.server", "No such server")
    ]


async def test_links_echoes_odd_masks_safely(server: RunningServer) -> None:
    alice = await server.client("alice")
    long_mask = "x" * 300 + "*"  # too long to echo back: the 365 says '*'
    assert await ask(alice, f"LINKS {long_mask}") == [end()]
    assert await ask(alice, "LINKS :a b") == [end()]  # a space cannot be a middle param


async def test_links_before_registration(server: RunningServer) -> None:
    c = await server.client()
    assert await ask(c, "LINKS") == [numeric("451", "*", "You have not registered")]


@pytest.mark.parametrize(
    "server_config", [suite_config(description="The test server")], ids=["described"]
)
async def test_the_description_shows_in_links_and_whois(server: RunningServer) -> None:
    alice = await server.client("alice")
    assert await ask(alice, "LINKS") == [
        numeric("364", "alice", SERVER, SERVER, "0 The test server"), end()]
    whois = await ask(alice, "WHOIS alice")
    assert [m.params[2:] for m in whois if m.command == "312"] == [[SERVER, "The test server"]]
