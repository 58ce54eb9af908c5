"""Config file loading and validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from client.config import (
    DEFAULT_COLOURS,
    DEFAULT_KEYS,
    ClientConfig,
    ConfigError,
    default_nick,
    default_path,
    default_user,
    load,
)

GOOD = """
nick = "alice"
scrollback = 5000
highlight_words = ["deploy"]
bell = true
mouse = true
default_server = "home"

[servers.home]
host = "irc.example.org"
port = 6697
tls = true
channels = ["#chat", "#dev"]
password = "pw"
sasl_username = "alice"
sasl_password = "s3cret pass"
sasl_mechanism = "plain"
sasl_plain_insecure = true

[servers.local]
host = "127.0.0.1"

[colours]
highlight = "bold #ff0000"
nicks = ["#111111", "#222222"]

[keys]
next_buffer = "c-right"
toggle_nicklist = ["f7", "escape n"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_default_path_follows_xdg(tmp_path: Path) -> None:
    assert default_path({"XDG_CONFIG_HOME": str(tmp_path)}) == (
        tmp_path / "chat-client" / "config.toml"
    )
    assert default_path({}).parts[-3:] == (".config", "chat-client", "config.toml")
    assert default_path({"XDG_CONFIG_HOME": "relative"}).parts[-3] == ".config"


def test_missing_default_file_gives_defaults(tmp_path: Path) -> None:
    config = load(env={"XDG_CONFIG_HOME": str(tmp_path)})
    assert config.servers == {} and config.scrollback == 2000
    assert not config.mouse  # a plain drag selects text in the terminal (WeeChat's default)
    assert config.colours == DEFAULT_COLOURS and config.keys == DEFAULT_KEYS


def test_default_file_is_read(tmp_path: Path) -> None:
    (tmp_path / "chat-client").mkdir()
    (tmp_path / "chat-client" / "config.toml").write_text('nick = "zed"\n', encoding="utf-8")
    assert load(env={"XDG_CONFIG_HOME": str(tmp_path)}).nick == "zed"


def test_good_config(tmp_path: Path) -> None:
    config = load(write(tmp_path, GOOD))
    home = config.server(None)
    assert home is not None and home.host == "irc.example.org" and home.tls
    assert home.effective_port == 6697 and home.channels == ("#chat", "#dev")
    assert home.password == "pw"
    assert home.sasl_username == "alice" and home.sasl_password == "s3cret pass"
    assert "s3cret" not in repr(home)  # tracebacks and debug prints keep it to themselves
    assert home.sasl_mechanism == "PLAIN" and home.sasl_plain_insecure
    local = config.server("local")
    assert local is not None and local.effective_port == 6667
    assert local.sasl_mechanism is None and not local.sasl_plain_insecure
    assert config.scrollback == 5000 and config.bell and config.nick == "alice"
    assert config.mouse and not ClientConfig().mouse
    assert config.colours["highlight"] == "bold #ff0000"
    assert config.colours["error"] == DEFAULT_COLOURS["error"]
    assert config.nick_colours == ("#111111", "#222222")
    assert config.keys["next_buffer"] == ("c-right",)
    assert config.keys["toggle_nicklist"] == ("f7", "escape n")
    assert config.keys["prev_buffer"] == DEFAULT_KEYS["prev_buffer"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nick = ", "invalid TOML"),
        ("bogus = 1", "unknown setting 'bogus'"),
        ("scrollback = 5", "scrollback: expected an integer from 100"),
        ("scrollback = true", "scrollback: expected an integer"),
        ('nick = "1bad"', "nick: '1bad' is not a valid nick"),
        ("bell = 1", "bell: expected true or false"),
        ('user = "a b"', "user: 'a b': a user name has no spaces or control characters"),
        ('[servers.x]\nhost = "h"\nuser = ":u"', "servers.x.user: ':u': a user name cannot "),
        ('events = "some"', 'events: expected one of "all", "smart", "none", got \'some\''),
        ("events = 1", "events: expected one of"),
        ("smart_filter_minutes = 0", "smart_filter_minutes: expected an integer from 1 to 1440"),
        ("send_burst = -1", "send_burst: expected an integer from 0 to 1000"),
        ("connection_timeout = -1", "connection_timeout: expected an integer from 0 to 3600"),
        ("send_burst = 2.5", "send_burst: expected an integer"),
        ('send_rate = "fast"', "send_rate: expected a number of lines a second from 0"),
        ("send_rate = -1", "send_rate: expected a number"),
        ('[servers.x]\nhost = "h"\nsend_rate = true', "servers.x.send_rate: expected a number"),
        ('[servers.x]\nhost = "h"\nsend_burst = 1e3', "servers.x.send_burst: expected an int"),
        ("[servers.x]\nport = 1", "servers.x.host: expected a host name"),
        ('[servers.x]\nhost = "h"\nport = 70000', "servers.x.port: expected an integer from 1"),
        ('[servers.x]\nhost = "h"\nchannels = "#a"', "servers.x.channels: expected a list"),
        ('[servers.x]\nhost = "h"\nchannels = ["#a b"]', "invalid channel name"),
        ('[servers.x]\nhost = "h"\nuser_modes = "g"', "servers.x.user_modes: expected modes"),
        ('[servers.x]\nhost = "h"\nuser_modes = "+g x"', "servers.x.user_modes: expected"),
        ('[servers.x]\nhost = "h"\nwhat = 1', "servers.x.what: unknown setting"),
        ('[servers.x]\nhost = "h"\nsasl_username = "a b"', "servers.x.sasl_username: expected"),
        ('[servers.x]\nhost = "h"\nsasl_username = 5', "servers.x.sasl_username: expected"),
        ('[servers.x]\nhost = "h"\nsasl_password = 5', "servers.x.sasl_password: expected"),
        ('[servers.x]\nhost = "h"\nsasl_password = "a\\u0000b"', "must not contain NUL"),
        ('[servers.x]\nhost = "h"\nsasl_mechanism = "EXTERNAL"',
         "servers.x.sasl_mechanism: expected one of SCRAM-SHA-256, PLAIN, got 'EXTERNAL'"),
        ('[servers.x]\nhost = "h"\nsasl_plain_insecure = "yes"',
         "servers.x.sasl_plain_insecure: expected true or false"),
        ('default_server = "nope"', "default_server: no [servers.nope] table"),
        ('[colours]\nbogus = "red"', "colours.bogus: unknown colour"),
        ("[colours]\nerror = 1", "colours.error: expected a style string"),
        ("[colors]\nnicks = []", "colors.nicks: must not be empty"),
        ('[keys]\nfly = "c-f"', "keys.fly: unknown action"),
        ("[keys]\nquit = 3", "keys.quit: expected a list of strings"),
        ('[keys]\nquit = ""', "keys.quit: empty key name"),
    ],
)
def test_bad_config_is_one_line(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load(path)
    error = str(info.value)
    assert "\n" not in error
    assert error.startswith(str(path)) and message in error


def test_explicit_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load(tmp_path / "nope.toml")


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_bytes(b'nick = "\xff"\n')
    with pytest.raises(ConfigError, match="not UTF-8"):
        load(path)


def test_default_nick() -> None:
    assert default_nick({"USER": "jane.doe"}) == "janedoe"
    assert default_nick({"USER": "123"}) == "guest"
    assert default_nick({}) == "guest"


def test_default_user_keeps_what_every_server_takes_from_the_nick() -> None:
    assert default_user("alice") == "alice"
    assert default_user("[bob]") == "bob"  # ngIRCd drops a connection for the brackets
    assert default_user("_x|y-2") == "xy-2"  # solanum refuses a leading '_'
    assert default_user("[]") == "guest"
