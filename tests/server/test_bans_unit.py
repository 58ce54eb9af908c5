"""Ban masks, durations, matching and the ban file, without a server."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import pytest

from chat.casemap import folder
from server.banfile import load_bans, save_bans
from server.core.bans import (
    DLINE,
    KLINE,
    MAX_SECONDS,
    REMOVALS_KEPT,
    BadMask,
    BanList,
    Removal,
    ServerBan,
    describe_duration,
    dline_mask,
    dline_network,
    kline_mask,
    parse_duration,
)


def ban(kind: str, mask: str, expires: float | None = None) -> ServerBan:
    return ServerBan(kind, mask, "reason", "root (root)", 100.0, expires)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30", 1800), ("0", 0), ("90s", 90), ("30m", 1800), ("2h", 7200), ("7d", 604800),
     ("1w", 604800), ("9999999w", MAX_SECONDS)],
)
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "1y", "h", "-5", "1.5", "12345678", "spam@host", "1 h"])
def test_parse_duration_rejects(text: str) -> None:
    assert parse_duration(text) is None


@pytest.mark.parametrize(
    ("seconds", "text"), [(90, "90 s"), (1800, "30 min."), (7200, "2 h"), (172800, "2 d"),
                          (5400, "90 min.")]
)
def test_describe_duration(seconds: int, text: str) -> None:
    assert describe_duration(seconds) == text


@pytest.mark.parametrize(
    ("text", "mask"),
    [("host.example", "*@host.example"), ("@1.2.3.4", "*@1.2.3.4"),
     ("u@1.2.3.4/24", "u@1.2.3.0/24"), ("~u@*.example", "~u@*.example"),
     ("a@b@c.d", "a@b@c.d"), ("~eve@*", "~eve@*"), ("*spambot*@*", "*spambot*@*"),
     ("u@*.*", "u@*.*"), ("u@0.0.0.0/0", "u@0.0.0.0/0"), ("*@?", "*@?"), ("?@*", "?@*")],
)
def test_kline_mask(text: str, mask: str) -> None:
    assert kline_mask(text) == mask


@pytest.mark.parametrize(
    "text", ["*@*", "?*@*", "~*@*", "*", "@*", "*@*.*", "**@*:*", "*@0.0.0.0/0", "u@",
             "a b@c.d", "a,b@c.d", "n!u@h.x", "*!*@*", "u@" + "h" * 200]
)
def test_kline_mask_rejects(text: str) -> None:
    with pytest.raises(BadMask):
        kline_mask(text)


def test_dline_mask() -> None:
    assert dline_mask("192.0.2.7") == "192.0.2.7"
    assert dline_mask("192.0.2.7/32") == "192.0.2.7"
    assert dline_mask("192.0.2.7/24") == "192.0.2.0/24"
    assert dline_mask("2001:DB8::1") == "2001:db8::1"


def test_dline_network() -> None:
    assert str(dline_network("192.0.2.7")) == "192.0.2.7/32"
    assert str(dline_network("192.0.2.7/24")) == "192.0.2.0/24"
    assert str(dline_network("::ffff:192.0.2.7")) == "192.0.2.7/32"
    assert str(dline_network("::ffff:192.0.2.0/120")) == "192.0.2.0/24"
    assert str(dline_network("2001:db8::1/64")) == "2001:db8::/64"
    for bad in ("10.0.0.0/7", "2001::/23", "example.org", "", "1.2.3.4/33"):
        with pytest.raises(BadMask):
            dline_network(bad)


def test_dlines_match_addresses_in_their_network() -> None:
    bans = BanList(folder("rfc1459"))
    assert bans.dline_for("192.0.2.7") is None
    net = ban(DLINE, "2001:db8:1::/64")
    bans.add(net)
    one = ban(DLINE, "192.0.2.7/32")
    bans.add(one)
    assert bans.dline_for("2001:db8:1::99") is net
    assert bans.dline_for("2001:db8:2::99") is None
    assert bans.dline_for("192.0.2.7") is one
    assert bans.dline_for("::ffff:192.0.2.7") is one  # a dual-stack socket's form
    assert bans.dline_for("192.0.2.8") is None
    assert bans.dline_for("not an address") is None
    assert bans.kline_for("~u", "192.0.2.7", "x") is None  # D-lines are not K-lines


def test_klines_match_user_and_address_or_cloak() -> None:
    bans = BanList(folder("rfc1459"))
    cidr = ban(KLINE, "*@198.51.100.0/24")
    cloak = ban(KLINE, "bad*@*.ip")
    tilde = ban(KLINE, "~eve@203.0.113.9")
    for b in (cidr, cloak, tilde):
        bans.add(b)
    assert bans.kline_for("~anyone", "198.51.100.20", "aa.bb.cc.ip") is cidr
    assert bans.kline_for("~Badger", "192.0.2.1", "aa.bb.cc.ip") is cloak  # by the cloak
    assert bans.kline_for("~badger", "192.0.2.1", "aa.bb.cc.ip6") is None
    assert bans.kline_for("~eve", "203.0.113.9", "x") is tilde
    assert bans.kline_for("~eve", "203.0.113.10", "x") is None
    # 'name@host' bans the unverified '~name' too; '~name@host' does not ban 'name'.
    bans.add(plain := ban(KLINE, "mallory@203.0.113.9"))
    assert bans.kline_for("~mallory", "203.0.113.9", "x") is plain
    assert bans.kline_for("eve", "203.0.113.9", "x") is None


def test_add_replace_remove_and_counts() -> None:
    bans = BanList(folder("rfc1459"))
    assert bans.add(first := ban(KLINE, "u@h.example")) is None
    assert bans.add(ban(KLINE, "U@H.EXAMPLE")) is first  # same mask, another case
    bans.add(ban(DLINE, "192.0.2.0/24"))
    assert (len(bans), bans.klines, bans.dlines) == (2, 1, 1)
    assert bans.remove(KLINE, "u@h.EXAMPLE") is not None
    assert bans.remove(KLINE, "u@h.example") is None
    assert bans.remove(DLINE, "192.0.2.0/24") is not None
    assert (len(bans), bans.klines, bans.dlines) == (0, 0, 0)


def test_expire_and_load_skip_bans_whose_time_is_up() -> None:
    bans = BanList(folder("rfc1459"))
    bans.load([ban(KLINE, "a@h.x", expires=50.0), ban(KLINE, "b@h.x", expires=200.0),
               ban(DLINE, "192.0.2.1")], [], now=100.0)
    assert [b.mask for b in bans] == ["b@h.x", "192.0.2.1"]
    assert [b.mask for b in bans.expire(199.0)] == []
    assert [b.mask for b in bans.expire(200.0)] == ["b@h.x"]
    assert [b.mask for b in bans] == ["192.0.2.1"] and bans.klines == 0


@pytest.mark.parametrize(
    "record",
    [None, [], {}, {"kind": "Z", "mask": "a@b.c", "reason": "r", "setter": "s", "set_at": 1,
                    "expires": None},
     {"kind": "K", "mask": "*@*", "reason": "r", "setter": "s", "set_at": 1, "expires": None},
     {"kind": "D", "mask": "a.b", "reason": "r", "setter": "s", "set_at": 1, "expires": None},
     {"kind": "K", "mask": "a@b.c", "reason": 5, "setter": "s", "set_at": 1, "expires": None},
     {"kind": "K", "mask": "a@b.c", "reason": "r", "setter": "s", "set_at": "1",
      "expires": None},
     {"kind": "K", "mask": "a@b.c", "reason": "r\r\nQUIT", "setter": "s", "set_at": 1,
      "expires": None}],
)
def test_from_record_rejects_malformed(record: object) -> None:
    with pytest.raises(ValueError):
        ServerBan.from_record(record)


def test_the_newer_change_to_a_mask_wins() -> None:
    bans = BanList(folder("rfc1459"))
    old, new = ban(KLINE, "u@h.x"), replace(ban(KLINE, "U@H.x"), set_at=300.0)
    assert bans.is_news(old)
    bans.add(old)
    assert not bans.is_news(old) and bans.is_news(new)
    # Lifted at 200: the ban set at 100 is old news, the one set at 300 is not.
    assert not bans.is_news_removal(Removal(KLINE, "u@h.x", 50.0))
    assert bans.is_news_removal(removal := Removal(KLINE, "u@h.x", 200.0))
    assert bans.remove(KLINE, "u@h.x", removal.at) is old
    assert bans.removals() == [removal] and not bans.is_news(old) and bans.is_news(new)
    assert not bans.is_news_removal(removal)
    bans.add(new)  # set again after the removal: the removal is forgotten
    assert bans.removals() == [] and not bans.is_news_removal(removal)
    # A removal of a mask never banned here is remembered too, for later snapshots.
    bans.remove(DLINE, "192.0.2.1", 400.0)
    assert not bans.is_news(ban(DLINE, "192.0.2.1"))
    assert bans  # removals alone keep the tick's expiry running
    bans.expire(400.0 + REMOVALS_KEPT)
    assert bans.removals() == [] and bans.is_news(ban(DLINE, "192.0.2.1"))


def test_load_applies_removals_newer_than_the_bans() -> None:
    bans = BanList(folder("rfc1459"))
    bans.load([ban(KLINE, "a@h.x"), ban(KLINE, "b@h.x")],
              [Removal(KLINE, "a@h.x", 150.0), Removal(KLINE, "b@h.x", 50.0),
               Removal(KLINE, "c@h.x", 1.0)], now=200.0 + REMOVALS_KEPT - 100)
    assert [b.mask for b in bans] == ["b@h.x"]
    assert [r.mask for r in bans.removals()] == ["a@h.x"]  # c's is too old to keep


def test_ban_file_round_trip(tmp_path: Path) -> None:
    path = str(tmp_path / "bans.json")
    assert load_bans(path) == ([], [])  # not there yet
    bans = (ban(KLINE, "u@h.example", expires=500.0), ban(DLINE, "192.0.2.0/24"))
    removed = (Removal(KLINE, "x@h.example", 99.0),)
    save_bans(path, bans, removed)
    assert load_bans(path) == (list(bans), list(removed))
    save_bans(path, ())
    assert load_bans(path) == ([], [])
    assert [p.name for p in tmp_path.iterdir()] == ["bans.json"]  # no temporary left


def test_ban_file_off_and_unwritable(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    save_bans("", (ban(KLINE, "u@h.example"),))
    assert load_bans("") == ([], [])
    caplog.set_level(logging.ERROR, "chat.server.bans")
    save_bans(str(tmp_path / "missing" / "bans.json"), (ban(KLINE, "u@h.example"),))
    assert "cannot save 1 bans" in caplog.text
