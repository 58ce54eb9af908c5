"""/away is kept across reconnects: set again on the new connection, before its
registration ends when the server offers draft/pre-away, else right after it."""

from __future__ import annotations

from tests.client.helpers import CHAT_BURST, NOW, burst_offering, chat_session, feed, reconnect


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
