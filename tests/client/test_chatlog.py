"""Chat logs on disk (log_dir): formats, what history adds, failures, and the CLI wiring."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chat.servertime import format_time
from client.chatlog import (
    HOLD_SECONDS,
    LEGACY_FILE,
    NAME_BYTES,
    OLD_MARK,
    OPEN_FILES,
    SERVER_FILE,
    TIME_FORMAT,
    ChatLog,
    log_root,
    safe_name,
)
from client.config import ConfigError, parse
from client.history import HISTORY_TIMEOUT
from client.model import LineAdded
from client.session import Session
from tests.conftest import RunningServer

from .helpers import NOW, T0, chat_session, feed, history_batch, privmsg
from .netutil import DEADLINE, ChatClient, HistoryStandIn, Ircd, has_texts, in_channel
from .recorded import CHAT_BURST, CHAT_JOIN

REPO = Path(__file__).resolve().parents[2]


def stamp(t: float) -> str:
    return time.strftime(TIME_FORMAT, time.localtime(t))


def logged(s: Session, log: ChatLog) -> None:
    for event in s.take_events():
        log.handle(event)


def lines_of(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def test_live_lines_are_appended_per_buffer(tmp_path: Path) -> None:
    s = chat_session()
    log = ChatLog(tmp_path / "home")
    feed(s, [":bob!b@h PRIVMSG #t :hello there",
             ":bob!b@h PRIVMSG #t :\x01ACTION waves\x01",
             ":bob!b@h NOTICE #t :psst",
             ":carol!c@h JOIN #t",
             ":bob!b@h PRIVMSG alice :just you",
             ":srv.example NOTICE alice :server news"])
    logged(s, log)
    log.close()
    buf = s.buffer("#t")
    assert buf is not None
    when = stamp(buf.lines[-1].time)  # the time the client gave the line
    assert lines_of(tmp_path / "home" / "#t.log") == [
        f"{when} <bob> hello there", f"{when} * bob waves", f"{when} -bob- psst",
        f"{when} -!- carol has joined #t"]
    assert lines_of(tmp_path / "home" / "bob.log") == [f"{when} <bob> just you"]
    assert any("server news" in ln for ln in lines_of(tmp_path / "home" / "@server.log"))


def test_history_adds_only_what_the_log_lacks(tmp_path: Path) -> None:
    folder = tmp_path / "home"
    folder.mkdir()
    before = NOW - 3600
    (folder / "#t.log").write_text(f"{stamp(before)} <bob> logged last time\n")
    s = chat_session(channels=())
    feed(s, [":alice!a@h JOIN #t"])
    log = ChatLog(folder)
    logged(s, log)
    # The join's history: one line the file has (its time), two it lacks (before the
    # JOIN, as in the pane), then a live line, then the same history again (a gap
    # fill): nothing is written twice.
    batch = [
        ":srv BATCH +h chathistory #t",
        f"@batch=h;time={iso(before)};msgid=m1 :bob!b@h PRIVMSG #t :logged last time",
        f"@batch=h;time={iso(before + 60)};msgid=m2 :bob!b@h PRIVMSG #t :missed one",
        f"@batch=h;time={iso(before + 120)};msgid=m3 :bob!b@h PRIVMSG #t :missed two",
        ":srv BATCH -h",
    ]
    feed(s, batch)
    feed(s, ["@time=" + iso(NOW) + ";msgid=m4 :bob!b@h PRIVMSG #t :live"])
    feed(s, [line.replace("+h", "+g").replace("=h", "=g").replace("-h", "-g") for line in batch])
    logged(s, log)
    log.close()
    texts = [ln[20:] for ln in lines_of(folder / "#t.log")]
    assert texts == ["<bob> logged last time", "<bob> missed one", "<bob> missed two",
                     "-!- alice has joined #t", "<bob> live"]


def test_history_in_the_files_last_second_is_not_written_again(tmp_path: Path) -> None:
    """The file keeps whole seconds: a history line at 12:00:00.5 is the one logged as
    12:00:00 by the last run (a query's history here, as a new session fetches it)."""
    folder = tmp_path / "home"
    folder.mkdir()
    before = float(int(NOW - 3600))
    (folder / "bob.log").write_text(f"{stamp(before)} <bob> logged last time\n")
    s = chat_session(channels=())
    log = ChatLog(folder)
    feed(s, [":srv BATCH +h chathistory bob",
             f"@batch=h;time={format_time(before + 0.5)};msgid=m1 :bob!b@h PRIVMSG alice :logged "
             "last time",
             f"@batch=h;time={format_time(before + 1.25)};msgid=m2 :bob!b@h PRIVMSG alice :missed",
             ":srv BATCH -h"])  # fmt: skip
    logged(s, log)
    log.close()
    assert [ln[20:] for ln in lines_of(folder / "bob.log")] == [
        "<bob> logged last time", "<bob> missed"]


def iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(t))


@pytest.mark.parametrize(
    ("name", "file"),
    [("#Chan", "#chan"), ("&local", "&local"), ("bob_", "bob_"), ("#日本", "#日本"),
     # Changed: "~" and a hash of the name follow, so that it is the file of no other.
     ("../etc/passwd", "_etc_passwd~"), ("a/b\\c", "a_b_c~"), ("..", "_~"), ("", "_~"),
     ("bob|", "bob_~"), ("#a/b", "#a_b~")],
)
def test_safe_name(name: str, file: str) -> None:
    made = safe_name(name)
    if file.endswith("~"):
        assert made.startswith(file) and len(made) == len(file) + 8
    else:
        assert made == file
    assert len(made.encode()) <= NAME_BYTES + 9 and "/" not in made
    assert made != SERVER_FILE and safe_name(name.upper()) == made


def test_a_long_name_is_cut_in_whole_characters() -> None:
    """297 bytes of UTF-8: cut to the characters that fit NAME_BYTES, then the hash."""
    made = safe_name("#" + "日" * 99)
    assert made.startswith("#" + "日" * 49 + "~") and len(made) == 1 + 49 + 1 + 8
    assert safe_name("#" + "日" * 98 + "月") != made  # (the same first 150 bytes)


async def test_names_that_differ_get_files_of_their_own(
    alice: ChatClient, ircd: Ircd, tmp_path: Path
) -> None:
    """A long non-ASCII channel name (297 bytes of UTF-8, past the 255 a file name may
    have) and a long nick are logged, as what comes after them is; #a/b and #a_b, bob|
    and bob_, and a nick called server and the server buffer each have a file."""
    log = ChatLog(tmp_path / "home")
    alice.conn.subscribe(log.handle)
    long_channel, long_nick = "#" + "日" * 99, "\U0001d400" * 64  # (4 bytes each)
    said = {long_channel: "to the long channel", "#a/b": "to a/b", "#a_b": "to a_b",
            "#ok": "to ok"}  # fmt: skip
    for channel in said:
        ircd.send(f":alice!a@h JOIN {channel}")
    for nick, text in [(long_nick, "from the long nick"), ("bob|", "from bob|"),
                       ("bob_", "from bob_"), ("server", "from a nick called server")]:
        said[nick] = text
        ircd.send(f":{nick}!u@h PRIVMSG alice :{text}")
    for channel in (long_channel, "#a/b", "#a_b", "#ok"):
        ircd.send(f":bob!b@h PRIVMSG {channel} :{said[channel]}")
    ircd.send(":srv NOTICE alice :server news")
    s = alice.session
    await alice.wait(lambda: any("server news" in ln.text for ln in s.server.lines), "the last")
    log.close()
    folder = tmp_path / "home"
    files = {name: folder / f"{safe_name(name)}.log" for name in said}
    assert len(set(files.values())) == len(files)
    for name, path in files.items():
        assert [ln[20:] for ln in lines_of(path)][-1].endswith(said[name]), name
    assert [ln[20:] for ln in lines_of(folder / f"{SERVER_FILE}.log")][-1].endswith(
        "server news")
    assert "from a nick called server" not in (folder / f"{SERVER_FILE}.log").read_text()


def test_logs_under_the_old_names_take_the_new_ones_once(tmp_path: Path) -> None:
    """An older client named files without bounds or hashes: the server buffer's was
    server.log, bob|'s bob_.log. They take the new names (the server's at once, before
    a nick called server logs a line), and what is written next follows them there;
    a name kept as it is keeps its file."""
    folder = tmp_path / "home"
    folder.mkdir()
    before = stamp(NOW - 3600)
    old = {"server": f"{before} -!- old server news\n", "bob_": f"{before} <bob|> old bob|\n",
           "#t": f"{before} <carol> old #t\n"}
    for stem, text in old.items():
        (folder / f"{stem}.log").write_text(text)
    s = chat_session()
    log = ChatLog(folder)
    feed(s, [":server!u@h PRIVMSG alice :from a nick called server",
             ":bob|!b@h PRIVMSG alice :new from bob|",
             ":carol!c@h PRIVMSG #t :new in #t",
             ":srv.example NOTICE alice :new server news"])
    logged(s, log)
    log.close()
    texts = {path.name: [ln[20:] for ln in lines_of(path)] for path in folder.glob("*.log")}
    assert texts == {
        f"{SERVER_FILE}.log": ["-!- old server news", texts[f"{SERVER_FILE}.log"][1]],
        "server.log": ["<server> from a nick called server"],
        f"{safe_name('bob|')}.log": ["<bob|> old bob|", "<bob|> new from bob|"],
        "#t.log": ["<carol> old #t", "<carol> new in #t"],
    }, texts
    assert "new server news" in texts[f"{SERVER_FILE}.log"][1]


def test_a_file_under_a_new_name_is_never_taken_for_an_old_one(tmp_path: Path) -> None:
    """A first run with the new names: a nick called server, and bob_, log before the
    server buffer and bob| do. In the next run those files stay theirs: server.log and
    bob_.log are the old names of the server buffer and bob|, but not old files."""
    folder = tmp_path / "home"
    s = chat_session()
    first = ChatLog(folder)
    feed(s, [":server!u@h PRIVMSG alice :from a nick called server",
             ":bob_!b@h PRIVMSG alice :from bob_"])
    logged(s, first)
    first.close()
    again = ChatLog(folder)
    feed(s, [":srv.example NOTICE alice :server news", ":bob|!b@h PRIVMSG alice :from bob|"])
    logged(s, again)
    again.close()
    assert [ln[20:] for ln in lines_of(folder / "server.log")] == [
        "<server> from a nick called server"]
    assert [ln[20:] for ln in lines_of(folder / "bob_.log")] == ["<bob_> from bob_"]
    assert [ln[20:] for ln in lines_of(folder / f"{safe_name('bob|')}.log")] == [
        "<bob|> from bob|"]
    assert "server news" in (folder / f"{SERVER_FILE}.log").read_text()


def test_an_old_networks_folder_takes_the_new_name_once(tmp_path: Path) -> None:
    (tmp_path / "my_net").mkdir()
    (tmp_path / "my_net" / "#t.log").write_text("old\n")
    root = log_root(tmp_path, "My Net")
    assert root == tmp_path / safe_name("My Net") and (root / "#t.log").read_text() == "old\n"
    assert not (tmp_path / "my_net").exists()
    # A network logged as my_net by this version (its folder listed) is never moved.
    log = ChatLog(log_root(tmp_path, "my_net"))
    feed(s := chat_session(), [":bob!b@h PRIVMSG alice :hi"])
    logged(s, log)
    log.close()
    assert (tmp_path / "my_net" / LEGACY_FILE).exists()
    root.rename(tmp_path / "elsewhere")
    assert log_root(tmp_path, "My Net") == tmp_path / safe_name("My Net")
    assert (tmp_path / "my_net" / "bob.log").exists()


def every_line(folder: Path) -> list[str]:
    """Every line of every log in ``folder`` and its subfolders, sorted."""
    return sorted(ln for path in folder.rglob("*.log") for ln in lines_of(path))


def test_an_old_log_beside_a_new_one_of_its_buffer_is_kept_beside_it(tmp_path: Path) -> None:
    """bob|'s log under its old name (bob_.log, listed as old) and one under its new
    name are both there: the old one goes beside the new one as <new name>@old.log, not
    left to be taken for bob_'s; every line stays, and bob_ gets a file of its own."""
    folder = tmp_path / "home"
    folder.mkdir()
    before = stamp(NOW - 3600)
    new = safe_name("bob|")
    (folder / "bob_.log").write_text(f"{before} <bob|> old bob|\n")
    (folder / f"{new}.log").write_text(f"{before} <bob|> new-named bob|\n")
    (folder / f"{new}{OLD_MARK}.log").write_text(f"{before} <bob|> kept before\n")
    (folder / LEGACY_FILE).write_text("bob_\n")
    lines = every_line(folder)
    s = chat_session()
    log = ChatLog(folder)
    feed(s, [":bob|!b@h PRIVMSG alice :from bob|", ":bob_!b@h PRIVMSG alice :from bob_"])
    logged(s, log)
    log.close()
    assert [ln[20:] for ln in lines_of(folder / f"{new}.log")] == [
        "<bob|> new-named bob|", "<bob|> from bob|"]
    assert lines_of(folder / f"{new}{OLD_MARK}2.log") == [f"{before} <bob|> old bob|"]
    assert lines_of(folder / f"{new}{OLD_MARK}.log") == [f"{before} <bob|> kept before"]
    assert [ln[20:] for ln in lines_of(folder / "bob_.log")] == ["<bob_> from bob_"]
    assert (folder / LEGACY_FILE).read_text() == ""
    assert set(lines) <= set(every_line(folder))


def test_an_old_networks_folder_beside_the_new_one_is_moved_into_it(tmp_path: Path) -> None:
    """Both my_net (an older client's) and the new folder of My Net exist: the old
    logs move into the new folder, each under its name when free (still an old name,
    listed: bob_.log takes bob|'s new name when bob| is logged), else beside the file
    there as <name>@old.log, the server buffer's as @server.old.log. No line is lost
    and the old folder goes."""
    old, root = tmp_path / "my_net", tmp_path / safe_name("My Net")
    old.mkdir()
    root.mkdir()
    before, later = stamp(NOW - 7200), stamp(NOW - 3600)
    (old / "#t.log").write_text(f"{before} <carol> old #t\n")
    (old / "bob_.log").write_text(f"{before} <bob|> old bob|\n")
    (old / "server.log").write_text(f"{before} -!- old server news\n")
    (root / "#t.log").write_text(f"{later} <carol> new #t\n")
    (root / f"{SERVER_FILE}.log").write_text(f"{later} -!- new server news\n")
    (root / LEGACY_FILE).write_text("")
    lines = every_line(tmp_path)
    assert log_root(tmp_path, "My Net") == root
    assert not old.exists()
    assert every_line(tmp_path) == lines
    assert lines_of(root / "#t.log") == [f"{later} <carol> new #t"]
    assert lines_of(root / f"#t{OLD_MARK}.log") == [f"{before} <carol> old #t"]
    assert lines_of(root / f"{SERVER_FILE}.old.log") == [f"{before} -!- old server news"]
    assert (root / LEGACY_FILE).read_text() == "bob_\n"
    s = chat_session()
    log = ChatLog(root)
    feed(s, [":bob|!b@h PRIVMSG alice :new from bob|"])
    logged(s, log)
    log.close()
    assert [ln[20:] for ln in lines_of(root / f"{safe_name('bob|')}.log")] == [
        "<bob|> old bob|", "<bob|> new from bob|"]
    assert not (root / "bob_.log").exists()


async def test_a_file_that_cannot_be_written_stops_only_its_own_log(
    alice: ChatClient, ircd: Ircd, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "home"
    (folder / "carol.log").mkdir(parents=True)  # (not a file: it cannot be opened)
    log = ChatLog(folder)
    alice.conn.subscribe(log.handle)
    ircd.send(":carol!c@h PRIVMSG alice :lost")
    ircd.send(":dave!d@h PRIVMSG alice :kept")
    ircd.send(":carol!c@h PRIVMSG alice :lost again")
    ircd.send(":dave!d@h PRIVMSG alice :kept too")
    await alice.wait(lambda: has_texts(alice.session.buffer("dave"), ["kept", "kept too"]),
                     "dave's lines")  # fmt: skip
    log.close()
    assert not log.failed
    assert [ln[20:] for ln in lines_of(folder / "dave.log")] == ["<dave> kept", "<dave> kept too"]
    warnings = [r.getMessage() for r in caplog.records if "carol.log" in r.getMessage()]
    assert len(warnings) == 1 and "cannot write" in warnings[0]  # said once


def test_more_buffers_than_open_files(tmp_path: Path) -> None:
    """Past OPEN_FILES the least recently written file is closed, and reopened later."""
    s = chat_session()
    log = ChatLog(tmp_path / "home")
    nicks = [f"user{i}" for i in range(OPEN_FILES + 5)]
    for round_ in (1, 2):
        feed(s, [f":{n}!u@h PRIVMSG alice :round {round_}" for n in nicks])
        logged(s, log)
    log.close()
    for n in nicks:
        assert [ln[20:] for ln in lines_of(tmp_path / "home" / f"{n}.log")] == [
            f"<{n}> round 1", f"<{n}> round 2"]


def test_a_failed_write_stops_logging_without_raising(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    s = chat_session()
    log = ChatLog(blocker / "home")
    feed(s, [":bob!b@h PRIVMSG alice :hello"])  # (#t's join history is loading: held)
    logged(s, log)
    assert log.failed
    feed(s, [":bob!b@h PRIVMSG alice :again"])
    logged(s, log)  # still nothing raised


async def test_a_gap_fill_is_logged_before_the_line_that_counts_it(
    server: RunningServer, clients: list[ChatClient], tmp_path: Path
) -> None:
    log = ChatLog(tmp_path)
    alice = ChatClient.start(server.port, "alice", ("#t",))
    alice.conn.subscribe(log.handle)
    bob = ChatClient.start(server.port, "bob", ("#t",))
    clients += [alice, bob]
    a_buf, b_buf = await alice.joined("#t"), await bob.joined("#t")
    bob.conn.switch(b_buf)
    bob.conn.input("before")  # (the gap fill asks for what came after it)
    await alice.wait(lambda: has_texts(a_buf, ["before"]), "bob's first message")
    await alice.lose_connection()
    await bob.wait(lambda: "alice" not in b_buf.members, "the server to notice")
    bob.conn.input("missed")
    await bob.wait(lambda: has_texts(b_buf, ["missed"]), "bob's echo (stored)")
    alice.gate.open()
    note = "Reconnected, fetched 1 missed message"
    await alice.wait(lambda: any(ln.text == note for ln in a_buf.lines), "the gap fill")
    log.close()
    assert a_buf.lines[-1].text == note  # the pane's order...
    file = lines_of(tmp_path / "#t.log")
    logged = [ln[20:] for ln in file]
    assert logged[-1] == f"-!- {note}", logged  # ...is the log's
    # The gap fill (older) comes before the rejoin's JOIN, as in the pane: the times
    # never go backwards.
    assert logged.index("<bob> missed") < len(logged) - 1 - logged[::-1].index(
        "-!- alice has joined #t"), logged
    assert [ln[:19] for ln in file] == sorted(ln[:19] for ln in file), file


async def test_a_joins_history_is_logged_before_the_join(
    server: RunningServer, clients: list[ChatClient], tmp_path: Path
) -> None:
    bob, b_buf = await in_channel(clients, server.port, "bob")
    bob.conn.switch(b_buf)
    bob.conn.input("said before alice came")
    await bob.wait(lambda: has_texts(b_buf, ["said before alice came"]), "bob's echo (stored)")
    log = ChatLog(tmp_path)
    alice = ChatClient.start(server.port, "alice", ("#t",))
    alice.conn.subscribe(log.handle)
    clients.append(alice)
    a_buf = await alice.joined("#t")
    assert has_texts(a_buf, ["said before alice came"])
    log.close()
    logged = [ln[20:] for ln in lines_of(tmp_path / "#t.log")]
    assert logged[-2:] == ["<bob> said before alice came", "-!- alice has joined #t"], logged


async def test_a_301_answering_our_message_is_logged_after_it(
    server: RunningServer, clients: list[ChatClient], tmp_path: Path
) -> None:
    bob = ChatClient.start(server.port, "bob")
    clients.append(bob)
    await bob.wait(lambda: bob.session.registered, "bob's registration")
    bob.conn.input("/away lunch")
    await bob.wait(lambda: bob.session.away is not None, "bob away")
    log = ChatLog(tmp_path)
    alice = ChatClient.start(server.port, "alice")
    alice.conn.subscribe(log.handle)
    clients.append(alice)
    await alice.wait(lambda: alice.session.registered, "alice's registration")
    alice.conn.input("/query bob are you there")
    query = alice.session.buffer("bob")
    assert query is not None
    await alice.wait(lambda: has_texts(query, ["are you there"]), "alice's echo")
    await alice.wait(lambda: any("lunch" in ln.text for ln in query.lines), "the 301")
    pane = [ln.text for ln in query.lines]
    assert pane.index("are you there") < next(i for i, t in enumerate(pane) if "lunch" in t)
    log.close()
    logged = [ln[20:] for ln in lines_of(tmp_path / "bob.log")]
    assert logged[0] == "<alice> are you there", logged
    assert "lunch" in logged[1], logged


async def _history_never_answered(
    ircd: Ircd, clients: list[ChatClient], log: ChatLog
) -> ChatClient:
    """``ircd`` offers CHATHISTORY and never answers it; the client joins #t."""
    ircd.welcome = False
    alice = ChatClient.start(ircd.port, "alice", ("#t",))
    clients.append(alice)
    alice.conn.subscribe(log.handle)
    await ircd.wait(lambda: any(ln.startswith("CAP LS") for ln in ircd.lines), "CAP LS")
    ircd.send(":srv CAP * LS :batch draft/chathistory message-tags server-time")
    await ircd.wait(lambda: any(ln.startswith("CAP REQ") for ln in ircd.lines), "CAP REQ")
    req = next(ln for ln in ircd.lines if ln.startswith("CAP REQ"))
    ircd.send(f":srv CAP * ACK {req.split(' ', 2)[2]}")
    await ircd.wait(lambda: "CAP END" in ircd.lines, "CAP END")
    ircd.send(":srv 001 alice :Welcome")
    ircd.send(":srv 422 alice :No MOTD")
    await ircd.wait(lambda: "JOIN #t" in ircd.lines, "the JOIN")
    ircd.send(":alice!a@h JOIN #t")
    await ircd.wait(lambda: any(ln.startswith("CHATHISTORY") for ln in ircd.lines), "history")
    return alice


async def test_held_lines_are_written_when_the_history_never_answers(
    clients: list[ChatClient], ircd: Ircd, tmp_path: Path
) -> None:
    log = ChatLog(tmp_path / "a", loading_hold_seconds=0.05)
    alice = await _history_never_answered(ircd, clients, log)
    try:
        buf = alice.session.buffer("#t")
        assert buf is not None and buf.history_loading
        path = tmp_path / "a" / "#t.log"
        async with asyncio.timeout(DEADLINE):  # (the hold's own timer writes it)
            while not (path.exists() and path.read_text()):
                await asyncio.sleep(0.01)
        assert [ln[20:] for ln in lines_of(path)] == ["-!- alice has joined #t"]
        assert buf.history_loading  # (still unanswered)
    finally:
        log.close()


async def test_held_lines_are_written_at_exit(
    clients: list[ChatClient], ircd: Ircd, tmp_path: Path
) -> None:
    log = ChatLog(tmp_path / "a", loading_hold_seconds=3600)
    alice = await _history_never_answered(ircd, clients, log)
    await alice.wait(lambda: any(isinstance(e, LineAdded) for e in alice.events), "JOIN")
    assert not (tmp_path / "a" / "#t.log").exists()  # held: the history may come
    log.close()
    assert [ln[20:] for ln in lines_of(tmp_path / "a" / "#t.log")] == [
        "-!- alice has joined #t"]


def test_log_dir_config(tmp_path: Path) -> None:
    assert parse({}).log_dir is None
    assert parse({"log_dir": "/var/log/irc"}).log_dir == Path("/var/log/irc")
    assert parse({"log_dir": "logs"}, tmp_path / "config.toml").log_dir == tmp_path / "logs"
    assert parse({"log_dir": "~/irclogs"}).log_dir == Path.home() / "irclogs"
    with pytest.raises(ConfigError):
        parse({"log_dir": 5})


def test_the_client_writes_logs_under_the_servers_name(
    server: RunningServer, tmp_path: Path
) -> None:
    config = tmp_path / "xdg" / "chat-client" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f'log_dir = "logs"\n[servers.Home]\nhost = "127.0.0.1"\n'
                      f"port = {server.port}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAT_")}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")
    env["XDG_STATE_HOME"] = str(tmp_path / "state")
    env["PYTHONPATH"] = str(REPO)
    result = subprocess.run(
        [sys.executable, "-m", "client.cli", "Home", "--nick", "scripty", "--headless"],
        input="/join #t\nhello from a script\n",
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )
    assert result.returncode == 0, result.stderr
    texts = [ln[20:] for ln in lines_of(config.parent / "logs" / "home" / "#t.log")]
    assert texts == ["-!- scripty has joined #t", "<@scripty> hello from a script"]


def _gap_fill_pending(tmp_path: Path, clock: list[float], **kw: float) -> tuple[Session, ChatLog]:
    """#t logged, the connection lost and #t rejoined: its gap fill is asked for and
    not answered yet (queued behind other channels' requests, say)."""
    s = chat_session(history_lines=10)
    log = ChatLog(tmp_path, clock=lambda: clock[0], **kw)
    feed(s, history_batch("b0", "#t", [("bob", "before", "M1", T0 + 1)]))
    logged(s, log)
    s.connection_lost(NOW + 10, "Connection reset by peer")
    s.connection_made(NOW + 20)
    feed(s, CHAT_BURST, NOW + 20)
    rejoin = [f"@time={format_time(T0 + 20)};msgid=J2 :alice!~a@h JOIN #t", *CHAT_JOIN[1:]]
    assert feed(s, rejoin, NOW + 20) == ["CHATHISTORY AFTER #t msgid=M1 10"]
    logged(s, log)
    for i in range(4):  # live lines for 40 s while the fill waits its turn
        clock[0] += 10
        feed(s, [privmsg("bob", "#t", f"live {i}", f"L{i}", T0 + 21 + 10 * i)],
             NOW + 21 + 10 * i)  # fmt: skip
        logged(s, log)
    return s, log


def test_a_gap_fill_answered_after_the_hold_seconds_is_logged_in_time_order(
    tmp_path: Path,
) -> None:
    clock = [0.0]
    s, log = _gap_fill_pending(tmp_path, clock)
    assert clock[0] > HOLD_SECONDS
    feed(s, history_batch("g1", "#t", [("bob", "missed", "M2", T0 + 15)]), NOW + 70)
    logged(s, log)
    log.close()
    file = lines_of(tmp_path / "#t.log")
    assert [ln[:19] for ln in file] == sorted(ln[:19] for ln in file), file
    texts = [ln[20:] for ln in file]
    assert texts.index("<bob> missed") < texts.index("-!- alice has joined #t"), texts
    assert texts[-1] == "-!- Reconnected, fetched 1 missed message", texts


def test_history_later_than_the_hold_bound_follows_a_line_saying_it_is_late(
    tmp_path: Path,
) -> None:
    clock = [0.0]
    s, log = _gap_fill_pending(tmp_path, clock, loading_hold_seconds=25)
    written = [ln[20:] for ln in lines_of(tmp_path / "#t.log")]
    assert written[-2:] == ["<bob> live 2", "<bob> live 3"]  # (held 25 s, no more)
    feed(s, history_batch("g1", "#t", [("bob", "missed", "M2", T0 + 15)]), NOW + 70)
    logged(s, log)
    log.close()
    texts = [ln[20:] for ln in lines_of(tmp_path / "#t.log")]
    late = texts.index("<bob> missed")
    when = time.strftime("%H:%M:%S", time.localtime(T0 + 15))
    assert texts[late - 1] == (f"-!- Missed messages of {when} follow, late: their history "
                               "came after the lines above"), texts
    assert texts[late - 2] == "<bob> live 3", texts
    assert texts[-1] == "-!- Reconnected, fetched 1 missed message", texts


def test_a_gap_fill_answered_after_its_timeout_follows_a_line_saying_it_is_late(
    tmp_path: Path,
) -> None:
    """The session gave the fill up (HISTORY_TIMEOUT) and the log wrote what it held;
    the answer then comes after all: below a line saying it is late, not as if it had
    been in time."""
    clock = [0.0]
    s, log = _gap_fill_pending(tmp_path, clock)
    s.tick(NOW + 20 + HISTORY_TIMEOUT)
    logged(s, log)
    feed(s, history_batch("g1", "#t", [("bob", "missed", "M2", T0 + 15)]), NOW + 90)
    logged(s, log)
    log.close()
    texts = [ln[20:] for ln in lines_of(tmp_path / "#t.log")]
    when = time.strftime("%H:%M:%S", time.localtime(T0 + 15))
    late = texts.index("<bob> missed")
    assert texts[late - 2:] == [
        "-!- Reconnected, missed messages not fetched: no answer from the server",
        f"-!- Missed messages of {when} follow, late: their history came after the lines "
        "above",
        "<bob> missed",
        "-!- Reconnected, fetched 1 missed message (late: the server answered after 60 s)",
    ], texts


def test_a_pageup_page_follows_a_line_saying_it_goes_back_in_time(tmp_path: Path) -> None:
    """A fresh log: the join's history and a live line are written, then PageUp's older
    page comes in time (held with a live line that came meanwhile). It is older than
    every line written: below a line saying so, the live lines in their order."""
    s = chat_session(history_lines=2)
    buf = s.buffer("#t")
    assert buf is not None
    log = ChatLog(tmp_path)
    feed(s, history_batch("b0", "#t", [("bob", "five", "M5", T0 + 5),
                                       ("bob", "six", "M6", T0 + 6)]))
    feed(s, [privmsg("bob", "#t", "seven", "M7", T0 + 7)], NOW + 7)
    logged(s, log)
    assert s.request_older(buf, NOW + 8)
    feed(s, [privmsg("bob", "#t", "eight", "M8", T0 + 8)], NOW + 8)  # (held: PageUp loads)
    logged(s, log)
    feed(s, history_batch("b1", "#t", [("bob", "three", "M3", T0 + 3),
                                       ("bob", "four", "M4", T0 + 4)]))
    logged(s, log)
    log.close()
    first, last = (time.strftime("%H:%M:%S", time.localtime(T0 + t)) for t in (3, 4))
    assert [ln[20:] for ln in lines_of(tmp_path / "#t.log")] == [
        "<bob> five", "<bob> six", "<bob> seven",
        f"-!- Older messages from {first} to {last} follow, late: the scrollback asked for "
        "with PageUp came after the lines above",
        "<bob> three", "<bob> four", "<bob> eight"]


def late_notes(path: Path) -> list[str]:
    return [ln[24:] for ln in lines_of(path) if " follow, late: " in ln]


async def test_a_joins_late_history_is_said_to_be_the_joins(
    server: RunningServer, clients: list[ChatClient], tmp_path: Path
) -> None:
    """History later than the hold (here at once) follows a line saying what it is:
    the join's history, not messages missed (the gap fill's word)."""
    bob, b_buf = await in_channel(clients, server.port, "bob")
    bob.conn.switch(b_buf)
    bob.conn.input("said before alice came")
    await bob.wait(lambda: has_texts(b_buf, ["said before alice came"]), "bob's echo (stored)")
    log = ChatLog(tmp_path, loading_hold_seconds=0)
    alice = ChatClient.start(server.port, "alice", ("#t",))
    alice.conn.subscribe(log.handle)
    clients.append(alice)
    await alice.joined("#t")
    log.close()
    logged = [ln[20:] for ln in lines_of(tmp_path / "#t.log")]
    assert logged[0] == "-!- alice has joined #t", logged
    assert "<bob> said before alice came" in logged[2:]
    [note] = late_notes(tmp_path / "#t.log")
    assert note.startswith("Earlier messages "), note
    assert note.endswith(" follow, late: the history fetched on joining came after the "
                         "lines above")  # fmt: skip


async def test_late_scrollback_is_said_to_be_pageups(
    server: RunningServer, clients: list[ChatClient], tmp_path: Path
) -> None:
    """PageUp's older page comes after a live line the log could not hold longer: the
    line before it says it is the scrollback asked for."""
    bob, b_buf = await in_channel(clients, server.port, "bob")
    bob.conn.switch(b_buf)
    for text in ("first", "second", "third"):
        bob.conn.input(text)
    await bob.wait(lambda: has_texts(b_buf, ["first", "second", "third"]), "bob's echoes")
    relay = HistoryStandIn(server.port)
    await relay.start()
    log = ChatLog(tmp_path, loading_hold_seconds=0)
    try:
        alice = ChatClient.start(relay.port, "alice", ("#t",), history_lines=2)
        alice.conn.subscribe(log.handle)
        clients.append(alice)
        a_buf = await alice.joined("#t")
        relay.answer = lambda request: None  # PageUp's request waits...
        assert alice.conn.request_older(a_buf)
        async with asyncio.timeout(DEADLINE):
            while not relay.waiting:
                await asyncio.sleep(0.01)
        bob.conn.input("live")  # ...while a live line comes
        await alice.wait(lambda: has_texts(a_buf, ["live"]), "the live line")
        relay.release()
        await alice.wait(lambda: has_texts(a_buf, ["first"]), "the older page")
        await alice.wait(lambda: not a_buf.history_loading, "the page merged")
    finally:
        log.close()
        await relay.stop()
    logged = [ln[20:] for ln in lines_of(tmp_path / "#t.log")]
    assert logged.index("<@bob> live") < logged.index("<bob> first"), logged
    note = late_notes(tmp_path / "#t.log")[-1]
    assert note.startswith("Older messages "), note
    assert note.endswith(" follow, late: the scrollback asked for with PageUp came after "
                         "the lines above")  # fmt: skip
