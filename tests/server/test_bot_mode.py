"""IRCv3 bot mode (+B) over real TCP on every backend."""

from __future__ import annotations

from tests.conftest import RunningServer
from tests.server.helpers import ask, only


async def test_bot_mode_is_shown_and_tags_its_messages(server: RunningServer) -> None:
    bot = await server.client("ci-bot")
    tagged = await server.client("alice", ["message-tags", "draft/chathistory", "batch",
                                           "server-time"])
    plain = await server.client("bob")
    tokens = [t for m in await ask(plain, "VERSION") if m.command == "005" for t in m.params]
    assert "BOT=B" in tokens
    msgs = await ask(bot, "MODE ci-bot +B")
    assert [(m.command, m.params) for m in msgs] == [("MODE", ["ci-bot", "+B"])]
    assert (await ask(bot, "MODE ci-bot"))[0].params[1] == "+B"
    whois = await ask(plain, "WHOIS ci-bot")
    assert only(whois, "335")[0].params[1:] == ["ci-bot", "is a bot on TestNet"]
    for c in (bot, tagged, plain):
        await c.join("#builds")
    who = only(await ask(plain, "WHO #builds"), "352")
    assert {m.params[5]: m.params[6] for m in who}["ci-bot"] == "HB@"  # as ergo orders them
    await tagged.sync()
    await plain.sync()
    await bot.send("PRIVMSG #builds :build 42 passed")
    got = await tagged.expect("PRIVMSG")
    assert "bot" in got.tags and got.params == ["#builds", "build 42 passed"]
    assert "bot" not in (await plain.expect("PRIVMSG")).tags  # no message-tags: no tags
    # A bare TAGMSG from a bot carries only the server's tag: relayed, never stored.
    await bot.send("@+typing=active TAGMSG #builds")
    assert (await tagged.expect("TAGMSG")).tags.get("bot") == ""
    await tagged.send("CHATHISTORY LATEST #builds * 10")
    history = await tagged.collect_until("BATCH")  # the opening BATCH
    rows = await tagged.collect_until("BATCH")
    assert [m.command for m in rows[:-1]] == ["PRIVMSG"] and "bot" in rows[0].tags, history
    msgs = await ask(bot, "MODE ci-bot -B")
    assert [(m.command, m.params) for m in msgs] == [("MODE", ["ci-bot", "-B"])]
    assert only(await ask(plain, "WHOIS ci-bot"), "335") == []


async def test_a_bots_joins_parts_and_nick_changes_carry_the_bot_tag(
    server: RunningServer,
) -> None:
    """bot-mode: the tag "SHOULD be added by the server to all commands sent by a bot
    (e.g. PRIVMSG, JOIN, MODE, NOTICE, and all others)"."""
    tagged = await server.client("alice", ["message-tags"])
    bot = await server.client("relaybot")
    await ask(bot, "MODE relaybot +B")
    await tagged.join("#ops")
    await tagged.sync()
    await bot.send("JOIN #ops")
    assert "bot" in (await tagged.expect("JOIN")).tags
    await bot.send("NICK relaybot2")
    assert "bot" in (await tagged.expect("NICK")).tags
    await bot.send("PRIVMSG alice :psst")
    assert "bot" in (await tagged.expect("PRIVMSG")).tags
    await bot.send("PART #ops :done")
    assert "bot" in (await tagged.expect("PART")).tags
    human = await server.client("carol")
    await human.join("#ops")
    assert "bot" not in (await tagged.expect("JOIN")).tags
