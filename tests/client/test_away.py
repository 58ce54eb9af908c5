"""/away is kept across reconnects: set again on the new connection, before its
registration ends when the server offers draft/pre-away, else right after it. Others'
away lines (301) go with a WHOIS reply, or to the query a message went to."""

from __future__ import annotations

from client.model import Buffer
from tests.client.helpers import CHAT_BURST, NOW, burst_offering, chat_session, feed, reconnect
from tests.conftest import RunningServer

from .netutil import ChatClient, has_texts


def test_away_is_set_again_after_a_reconnect() -> None:
    s = chat_session()
    s.input("/away lunch", NOW)
    assert s.take_outgoing() == ["AWAY lunch"]
    sent = reconnect(s, CHAT_BURST)
    # No draft/pre-away: once registered (end of MOTD), before the rejoins.
    assert "AWAY lunch" in sent
    assert sent.index("AWAY lunch") > sent.index("CAP END")
    assert sent.index("AWAY lunch") < next(i for i, x in enumerate(sent) if x.startswith("JOIN"))


def test_with_pre_away_it_goes_before_registration_ends() -> None:
    s = chat_session()
    s.input("/away lunch", NOW)
    s.take_outgoing()
    sent = reconnect(s, burst_offering("draft/pre-away"))
    assert any(line.startswith("CAP REQ") and "draft/pre-away" in line for line in sent)
    assert sent.count("AWAY lunch") == 1
    assert sent.index("AWAY lunch") == sent.index("CAP END") - 1


def test_back_is_not_set_again_and_disconnected_away_is_kept() -> None:
    s = chat_session()
    s.input("/away lunch", NOW)
    s.input("/away", NOW)
    assert s.take_outgoing() == ["AWAY lunch", "AWAY"]
    assert not [x for x in reconnect(s, CHAT_BURST) if x.startswith("AWAY")]
    # While disconnected: kept, said so, sent on the next connection.
    s.connection_lost(NOW, "gone")
    s.input("/away dinner", NOW)
    assert s.take_outgoing() == []
    assert "marked away when connected: dinner" in s.current.lines[-1].text
    s.connection_made(NOW)
    s.take_outgoing()
    assert "AWAY dinner" in feed(s, CHAT_BURST)


async def test_the_away_line_of_a_whois_goes_with_the_reply_not_to_the_query(
    server: RunningServer, clients: list[ChatClient]
) -> None:
    alice = ChatClient.start(server.port, "alice", ("#t",))
    carol = ChatClient.start(server.port, "carol")
    clients += [alice, carol]
    chan = await alice.joined("#t")
    await carol.wait(lambda: carol.session.registered, "registration")
    alice.conn.input("/msg carol hi")
    query = alice.session.buffer("carol")
    assert query is not None
    await alice.wait(lambda: has_texts(query, ["hi"]), "alice's message")
    carol.conn.input("/away lunch")
    await carol.wait(lambda: carol.session.away, "carol away")

    def said(buf: Buffer, text: str) -> int:
        return sum(ln.text == text for ln in buf.lines)

    alice.conn.switch(chan)
    alice.conn.input("/whois carol")
    await alice.wait(lambda: said(chan, "End of WHOIS for carol") == 1, "the WHOIS reply")
    assert said(chan, "carol is away: lunch") == 1
    assert said(query, "carol is away: lunch") == 0
    # A message to her is answered by a 301 too: that one is said in the query.
    alice.conn.input("/msg carol are you there?")
    await alice.wait(lambda: said(query, "carol is away: lunch") == 1, "the 301 in the query")
    assert said(chan, "carol is away: lunch") == 1
