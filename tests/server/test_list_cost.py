"""LIST of channel names is paid from the host's scan budget, a match per channel named
(as a LIST without names pays a match per channel on the server); one name alone stays
free, as a WHO of a nick."""

from __future__ import annotations

from tests.ircclient import IRCTestClient
from tests.server.test_abuse_limits import product_config, started, stop

NAMED = 5


async def list_of(client: IRCTestClient, query: str) -> list[str] | None:
    """The channels a LIST answers with, or None when it was told to try again."""
    await client.send(f"LIST {query}")
    replies = await client.collect_until("323")
    if any(m.command == "263" for m in replies):
        assert [m.command for m in replies] == ["263", "323"]
        return None
    return sorted(m.params[1] for m in replies if m.command == "322")


async def test_a_list_of_channel_names_is_paid_per_name(backend: str) -> None:
    # Two LISTs of 5 names fit the burst, a third does not: earned back at one match
    # every 100 s, so a slow machine changes nothing.
    server = await started(backend, product_config(scan_burst=2 * NAMED, scan_rate=0.01,
                                                   flood_burst=0))
    try:
        alice = await server.client("alice")
        names = [f"#c{n}" for n in range(NAMED)]
        for name in names:
            await alice.join(name)
        query = ",".join(names)
        assert await list_of(alice, query + ",#C0") == names  # a repeat is one name
        assert await list_of(alice, query) == names
        assert await list_of(alice, query) is None
        # One name alone is one lookup and one line: always answered.
        assert await list_of(alice, "#c1") == ["#c1"]
    finally:
        await stop(server)
