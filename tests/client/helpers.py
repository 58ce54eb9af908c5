"""Helpers for sans-IO session tests."""

from __future__ import annotations

import re
from collections.abc import Iterable

from chat.servertime import format_time, parse_time
from client.model import Buffer, Kind, Line
from client.session import Session, SessionConfig

from .recorded import CHAT_BURST, CHAT_JOIN, NGIRCD_BURST, NGIRCD_JOIN

T0 = parse_time("2026-11-21T06:58:42.076Z")  # server time of the recorded JOIN #t
# A local clock reading: 10 minutes behind the recordings' server clock, well within
# the skew the client believes (MAX_CLOCK_SKEW).
NOW = float(int(T0) - 600)


def make(nick: str = "alice", **kw: object) -> Session:
    return Session(SessionConfig(nick=nick, **kw))  # type: ignore[arg-type]


def feed(s: Session, lines: Iterable[str | bytes], now: float = NOW) -> list[str]:
    """Feed lines; return what the session sent meanwhile, CHATHISTORY requests without
    their labels (see :func:`unlabelled`)."""
    for line in lines:
        s.feed(line, now)
    return sent(s)


def sent(s: Session) -> list[str]:
    """What the session sent since last asked, CHATHISTORY requests without labels."""
    return unlabelled(s.take_outgoing())


def unlabelled(lines: list[str]) -> list[str]:
    """``lines`` with the ``label`` tag of each CHATHISTORY request left out: over
    labeled-response (our server's) every request has one, ``h1``, ``h2``..., which
    tests of what is asked need not spell out. The answers fed back without a label are
    matched in order, as a server's without labeled-response; test_history_labels.py
    tests the labels."""
    return [_HISTORY_LABEL.sub("", line) for line in lines]


_HISTORY_LABEL = re.compile(r"^@label=h\d+ (?=CHATHISTORY )")


def chat_session(channels: tuple[str, ...] = ("#t",), **kw: object) -> Session:
    """Registered against (a recording of) our server, joined to #t when asked."""
    s = make(channels=channels, **kw)
    s.connection_made(NOW)
    feed(s, CHAT_BURST)
    if "#t" in channels:
        feed(s, CHAT_JOIN)
    s.take_events()
    return s


def ngircd_session(channels: tuple[str, ...] = ("#t",), **kw: object) -> Session:
    s = make(channels=channels, **kw)
    s.connection_made(NOW)
    feed(s, NGIRCD_BURST)
    if "#t" in channels:
        feed(s, NGIRCD_JOIN)
    s.take_events()
    return s


def privmsg(
    nick: str,
    target: str,
    text: str,
    msgid: str | None = None,
    t: float | None = None,
    batch: str | None = None,
) -> str:
    tags = []
    if batch is not None:
        tags.append(f"batch={batch}")
    if t is not None:
        tags.append(f"time={format_time(t)}")
    if msgid is not None:
        tags.append(f"msgid={msgid}")
    prefix = "@" + ";".join(tags) + " " if tags else ""
    return f"{prefix}:{nick}!~{nick}@host PRIVMSG {target} :{text}"


def chathistory_batch(ref: str, target: str, lines: list[str]) -> list[str]:
    """``lines`` (tagged ``batch=ref`` already) inside BATCH +ref chathistory target."""
    return [f":test.server BATCH +{ref} chathistory {target}", *lines,
            f":test.server BATCH -{ref}"]  # fmt: skip


def history_batch(ref: str, target: str, rows: list[tuple[str, str, str, float]]) -> list[str]:
    """BATCH +ref chathistory target, rows (nick, text, msgid, time), BATCH -ref."""
    return chathistory_batch(
        ref, target, [privmsg(n, target, text, mid, t, batch=ref) for n, text, mid, t in rows]
    )


def reconnect(s: Session, burst: list[str] = CHAT_BURST, now: float = NOW + 60) -> list[str]:
    """The connection dies and comes back, registered with ``burst`` (no JOIN answered
    yet): what the session sent meanwhile."""
    s.connection_lost(now - 30, "Connection reset by peer")
    s.connection_made(now)
    return feed(s, burst, now)


def messages(buf: Buffer) -> list[Line]:
    return [ln for ln in buf.lines if ln.kind in (Kind.MESSAGE, Kind.ACTION, Kind.NOTICE)]


def texts(buf: Buffer) -> list[str]:
    return [ln.text for ln in messages(buf)]


def all_text(s: Session) -> list[str]:
    """Every display string in every buffer (text, nick, spans, reactions, topic, member
    nicks)."""
    out: list[str] = []
    for buf in s.buffers:
        out.append(buf.name)
        out.append(buf.topic)
        out.extend(sp.text for sp in buf.topic_spans)
        out.extend(m.nick for m in buf.members.values())
        for ln in buf.lines:
            out += [ln.text, ln.nick, ln.prefix]
            out.extend(sp.text for sp in ln.spans)
            for r in ln.reactions:
                out += [r.text, r.nick]
    return out


def run(s: Session, text: str) -> list[str]:
    """What the user typed: the lines it sends."""
    s.input(text, NOW)
    return s.take_outgoing()


def last_error(s: Session) -> str:
    """The text of the current buffer's last line, an error line."""
    line = s.current.lines[-1]
    assert line.kind is Kind.ERROR, line
    return line.text


def burst_offering(caps: str) -> list[str]:
    """The recording of our server's registration, also offering and acknowledging
    ``caps`` (space-separated; a ``name=value`` is offered with its value and
    acknowledged by name)."""
    ls, ack, *rest = CHAT_BURST
    names = " ".join(cap.partition("=")[0] for cap in caps.split())
    return [f"{ls} {caps}", f"{ack} {names}", *rest]


def burst_without(*caps: str) -> list[str]:
    """The recording of our server's registration, with ``caps`` neither offered nor
    acknowledged."""
    ls, ack, *rest = CHAT_BURST

    def drop(line: str) -> str:
        head, _, offered = line.partition(" :")
        return head + " :" + " ".join(c for c in offered.split() if c not in caps)

    return [drop(ls), drop(ack), *rest]


def joined_session(
    burst: list[str], members: tuple[str, ...], channels: tuple[str, ...] = ("#t",),
    **kw: object,
) -> Session:
    """Registered with ``burst``; in #t (when asked) with ``members``, #t current."""
    s = make(channels=channels, **kw)
    s.connection_made(NOW)
    feed(s, burst)
    if "#t" in channels:
        feed(s, [":alice!~a@h JOIN #t", *(f":{n}!{n[0]}@h JOIN #t" for n in members)])
        s.switch("#t")
    s.take_events()
    return s
