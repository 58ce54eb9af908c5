"""chat-client command line: options, config merging, headless mode."""

from __future__ import annotations

import asyncio
import gc
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from client import cli
from client.pacing import DEFAULT_BURST, DEFAULT_RATE, Pacing
from tests.conftest import RunningServer

from .helpers import NOW, feed, make
from .recorded import CHAT_BURST

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def no_user_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


def test_help_documents_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for option in ("HOST", "--port", "--tls", "--nick", "--user", "--realname", "--password",
                   "--join", "--config", "--headless", "config.toml", "--sasl-username",
                   "--sasl-mechanism", "--sasl-plain-insecure", "--forget-sts",
                   "CHAT_SASL_PASSWORD", "/register"):  # fmt: skip
        assert option.lower() in out.lower(), option


def test_python_m_client_is_chat_client() -> None:
    """``python -m client`` runs the entry point chat-client does (pyproject.toml)."""
    pyproject = (REPO / "pyproject.toml").read_text()
    assert 'chat-client = "client.cli:main"' in pyproject
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    runs = [subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True,
                           text=True, timeout=60, env=env, check=False)
            for module in ("client", "client.cli")]  # fmt: skip
    assert [r.returncode for r in runs] == [0, 0], runs[0].stderr
    assert runs[0].stdout == runs[1].stdout and "usage: chat-client" in runs[0].stdout


def test_sasl_settings(tmp_path: Path) -> None:
    conf = tmp_path / "c.toml"
    conf.write_text('[servers.home]\nhost = "h"\nsasl_username = "amy"\nsasl_password = "file"\n',
                    encoding="utf-8")  # fmt: skip
    config = cli.build(["home", "--config", str(conf)], env={}).session.config
    assert (config.sasl_username, config.sasl_password) == ("amy", "file")
    env = {"CHAT_SASL_PASSWORD": "from env"}  # the environment wins over the file
    argv = ["home", "--config", str(conf), "--sasl-username", "bo"]
    config = cli.build(argv, env=env).session.config
    assert (config.sasl_username, config.sasl_password) == ("bo", "from env")
    config = cli.build(["other.host", "--sasl-username", "cy"], env=env).session.config
    assert (config.sasl_username, config.sasl_password) == ("cy", "from env")
    assert cli.build(["other.host"], env=env).session.config.sasl_username is None
    assert (config.sasl_mechanism, config.sasl_plain_insecure) == (None, False)
    argv = ["h", "--sasl-mechanism", "plain", "--sasl-plain-insecure"]
    config = cli.build(argv, env=env).session.config
    assert (config.sasl_mechanism, config.sasl_plain_insecure) == ("PLAIN", True)


@pytest.mark.parametrize("argv", [["h", "--sasl-password", "pw"], ["h", "--sasl-username", "a b"],
                                  ["h", "--sasl-mechanism", "EXTERNAL"]])
def test_sasl_options_that_are_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.build(argv, env={})
    assert info.value.code == 2


@pytest.mark.parametrize(("argv", "said"), [
    (["--nick", "bad nick!"], "--nick: 'bad nick!' is not a valid nick"),
    (["--nick", ":colon"], "--nick: ':colon' is not a valid nick"),
    (["--user", "a b"], "--user: 'a b': a user name has no spaces or control characters"),
    (["--user", ":u"], "--user: ':u': a user name cannot begin with ':'"),
])  # fmt: skip
def test_a_nick_or_user_name_that_cannot_be_sent_is_refused_at_start(
    argv: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        cli.build(["h", *argv], env={})
    assert info.value.code == 2
    assert said in capsys.readouterr().err


def test_the_user_name_defaults_to_the_nicks_plain_characters(tmp_path: Path) -> None:
    s = cli.build(["h", "--nick", "[bob]"], env={}).session
    s.connection_made(NOW)
    assert "USER bob 0 * [bob]" in s.take_outgoing()  # ngIRCd drops "[bob]" as a user name
    conf = tmp_path / "c.toml"
    conf.write_text('user = "alice/net@phone"\n', encoding="utf-8")  # (a bouncer's)
    argv = ["h", "--config", str(conf), "--nick", "[bob]"]
    assert cli.build(argv, env={}).session.config.user == "alice/net@phone"


def test_forget_sts_drops_the_hosts_policy_before_connecting(tmp_path: Path) -> None:
    store = tmp_path / "state" / "chat-client" / "sts.json"  # (XDG_STATE_HOME: the fixture's)
    store.parent.mkdir(parents=True)
    expires = time.time() + 3600
    store.write_text(json.dumps({"h": {"port": 6697, "expires": expires},
                                 "other": {"port": 7000, "expires": expires}}))  # fmt: skip
    assert cli.build(["h"], env={}).connection.endpoint() == (True, 6697)
    setup = cli.build(["h", "--forget-sts"], env={})
    assert setup.connection.endpoint() == (False, 6667)
    assert setup.session.server.lines[-1].text == "Forgot the STS policy of h"
    assert list(json.loads(store.read_text())) == ["other"]
    setup = cli.build(["h", "--forget-sts"], env={})
    assert setup.session.server.lines[-1].text == "No STS policy was stored for h"


def test_options_override_the_config(tmp_path: Path) -> None:
    conf = tmp_path / "c.toml"
    conf.write_text(
        'nick = "zed"\n[servers.home]\nhost = "irc.example"\ntls = true\nchannels = ["#a"]\n',
        encoding="utf-8",
    )
    setup = cli.build(["home", "--config", str(conf), "--join", "#b,#a, #c"])
    assert setup.connection.settings.host == "irc.example"
    assert setup.connection.settings.port == 6697 and setup.connection.settings.tls
    assert setup.session.config.nick == "zed"
    assert setup.session.config.channels == ("#a", "#b", "#c")
    setup = cli.build(["--config", str(conf), "--nick", "amy", "--port", "7000"])
    assert setup.session.config.nick == "amy" and setup.connection.settings.port == 7000
    setup = cli.build(["other.host", "--config", str(conf), "--user", "u", "--password", "pw"])
    assert setup.connection.settings.host == "other.host"
    assert setup.connection.settings.port == 6667
    assert setup.session.config.user == "u" and setup.session.config.password == "pw"


def test_flood_control_from_the_config(tmp_path: Path) -> None:
    # On by default: a paste must not get us killed for flooding (client/pacing.py).
    setup = cli.build(["irc.example"])
    assert setup.connection.pacing == Pacing(DEFAULT_BURST, DEFAULT_RATE)
    assert setup.session.outbox.paced
    conf = tmp_path / "c.toml"
    conf.write_text(
        "send_burst = 8\nsend_rate = 0.5\n"
        '[servers.bnc]\nhost = "bnc.example"\nsend_rate = 4\n'
        '[servers.lan]\nhost = "lan.example"\nsend_burst = 0\n',
        encoding="utf-8",
    )
    assert cli.build(["other", "--config", str(conf)]).connection.pacing == Pacing(8, 0.5)
    assert cli.build(["bnc", "--config", str(conf)]).connection.pacing == Pacing(8, 4.0)
    lan = cli.build(["lan", "--config", str(conf)]).connection
    assert lan.pacing is None and not lan.session.outbox.paced  # 0: every line at once


def test_connection_timeout_from_the_config(tmp_path: Path) -> None:
    assert cli.build(["irc.example"]).connection.settings.register_timeout == 60
    conf = tmp_path / "c.toml"
    conf.write_text("connection_timeout = 15\n", encoding="utf-8")
    assert cli.build(["h", "--config", str(conf)]).connection.settings.register_timeout == 15


def test_join_on_the_command_line_lands_in_the_first_channel(tmp_path: Path) -> None:
    conf = tmp_path / "c.toml"
    conf.write_text('nick = "alice"\n', encoding="utf-8")
    s = cli.build(["irc.example", "--config", str(conf), "--join", "#b,#a"]).session
    s.connection_made(NOW)
    assert "JOIN #b,#a" in feed(s, CHAT_BURST)
    feed(s, [":alice!~a@127.0.0.1 JOIN #a"])  # the second one comes first: stay
    assert s.current is s.server
    feed(s, [":alice!~a@127.0.0.1 JOIN #b"])
    assert s.current.name == "#b"
    feed(s, [":alice!~a@127.0.0.1 PART #b", ":alice!~a@127.0.0.1 JOIN #b"])
    assert s.current.name == "#b"  # (once)


def test_the_first_channel_is_not_shown_once_the_user_went_elsewhere() -> None:
    s = make(channels=("#a",), show_first_channel=True)
    s.connection_made(NOW)
    feed(s, CHAT_BURST)
    s.open_query("bob", NOW)
    s.switch("bob")
    feed(s, [":alice!~a@127.0.0.1 JOIN #a"])
    assert s.current.name == "bob"
    # The session alone (tests, scripts) stays where it is unless asked.
    t = make(channels=("#a",))
    t.connection_made(NOW)
    feed(t, [*CHAT_BURST, ":alice!~a@127.0.0.1 JOIN #a"])
    assert t.current is t.server


def test_bad_config_is_reported_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    conf = tmp_path / "c.toml"
    conf.write_text("scrollback = -1\n", encoding="utf-8")
    assert cli.main(["host", "--config", str(conf), "--headless"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "scrollback" in err


def test_no_host(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main([])
    assert info.value.code == 2
    assert "no HOST" in capsys.readouterr().err


def test_headless_subprocess(server: RunningServer, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAT_")}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")
    env["XDG_STATE_HOME"] = str(tmp_path / "state")
    env["PYTHONPATH"] = str(REPO)
    args = ["127.0.0.1", "--port", str(server.port), "--nick", "scripty", "--headless"]
    result = subprocess.run(
        [sys.executable, "-m", "client.cli", *args],
        input="/join #t\nhello from a script\n/me is done\n",
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "#t -- scripty has joined #t" in out
    assert "#t <@scripty> hello from a script" in out
    assert out.count("hello from a script") == 1  # once, confirmed: never while pending
    assert "#t * scripty is done" in out
    assert "\x1b" not in out


async def test_headless_sasl_login_with_the_password_from_the_environment(
    server: RunningServer, tmp_path: Path
) -> None:
    maker = await server.client("maker")
    await maker.send("REGISTER scripty * tr0ub4dor&3")
    await maker.expect("900")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAT_")}
    env.update(XDG_CONFIG_HOME=str(tmp_path / "xdg"), XDG_STATE_HOME=str(tmp_path / "state"),
               PYTHONPATH=str(REPO), CHAT_SASL_PASSWORD="tr0ub4dor&3")  # fmt: skip
    args = ["127.0.0.1", "--port", str(server.port), "--nick", "bot", "--sasl-username", "scripty"]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "client.cli", *args, "--headless",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(b"/whois bot\n"), 60)
    assert proc.returncode == 0, err
    text = out.decode()
    assert "You are now logged in as scripty" in text
    assert "bot is logged in as scripty" in text  # the server's WHOIS agrees
    assert "tr0ub4dor" not in text


def test_falls_back_to_headless_without_the_ui(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def no_ui(name: str) -> object:
        raise ImportError(f"No module named {name!r}")

    monkeypatch.setattr(cli.importlib, "import_module", no_ui)
    monkeypatch.setattr(sys, "stdin", io.StringIO("/join #t\nfallback works\n"))
    gc.unfreeze()
    try:
        assert cli.main(["127.0.0.1", "--port", str(server.port), "--nick", "fb"]) == 0
        # What is left at the exit is hidden from the collector (a quick /quit).
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
    captured = capsys.readouterr()
    assert "running headless" in captured.err
    assert "fallback works" in captured.out
