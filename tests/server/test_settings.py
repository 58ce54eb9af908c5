from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import pytest

from server.config import ServerConfig
from server.passwords import hash_password
from server.settings import (
    MOTD_LINE_BYTES,
    MOTD_MAX_BYTES,
    OPTIONS,
    ConfigError,
    Option,
    load_config,
    read_motd,
)

OPER_HASH = hash_password("operpass")


def write(tmp_path: Path, text: str, name: str = "chat.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def sample(opt: Option) -> tuple[object, str]:
    """A valid non-default value for ``opt``: (typed value, its text form)."""
    if opt.choices:
        choice = next(c for c in opt.choices if c != opt.default)
        return choice, choice
    if opt.kind == "int":
        assert isinstance(opt.default, int)
        value = opt.default + 1
        return value, str(value)
    if opt.kind == "float":
        assert isinstance(opt.default, float)
        return opt.default + 1.5, str(opt.default + 1.5)
    if opt.kind == "bool":
        return (not opt.default), str(not opt.default).lower()
    texts = {"name": "irc.example.org", "redis": "redis://cache.example:6379/1"}
    text = texts.get(opt.name, "some-value")
    return text, text


def toml_literal(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)


# --------------------------------------------------------------------------- defaults


def test_no_sources_gives_defaults() -> None:
    assert load_config([], {}) == ServerConfig()


def test_every_scalar_field_is_an_option() -> None:
    names = {o.name for o in OPTIONS}
    fields = {f.name for f in dataclasses.fields(ServerConfig)}
    # motd_lines is derived from motd, opers comes from the [opers] table. Any other
    # field missing here has a type settings.py does not know how to parse.
    assert fields - names == {"motd_lines", "config_file", "opers"}


# --------------------------------------------------------------------------- each option

# motd names a file that must exist; it has tests of its own below.
# Paths resolved against the config file, the optional TLS port and STS (which needs
# it) have tests of their own (test_tls.py); the generic option tests cover the rest.
SCALARS = [
    o for o in OPTIONS
    if o.name not in ("motd", "tls_port", "tls_cert", "tls_key", "metrics_port", "sts_duration")
]


@pytest.mark.parametrize("opt", SCALARS, ids=lambda o: o.name)
def test_option_from_toml(tmp_path: Path, opt: Option) -> None:
    value, _ = sample(opt)
    path = write(tmp_path, f"{opt.name} = {toml_literal(value)}\n")
    config = load_config(["--config", str(path)], {})
    assert getattr(config, opt.name) == value


@pytest.mark.parametrize("opt", SCALARS, ids=lambda o: o.name)
def test_option_from_env(opt: Option) -> None:
    value, text = sample(opt)
    assert opt.env == "CHAT_" + opt.name.upper()
    config = load_config([], {opt.env: text})
    assert getattr(config, opt.name) == value


@pytest.mark.parametrize("opt", SCALARS, ids=lambda o: o.name)
def test_option_from_flag(opt: Option) -> None:
    value, text = sample(opt)
    assert opt.flag == "--" + opt.name.replace("_", "-")
    if opt.kind == "bool":  # switches: --name / --no-name
        argv = [opt.flag] if value else ["--no-" + opt.flag[2:]]
    else:
        argv = [opt.flag, text]
    config = load_config(argv, {})
    assert getattr(config, opt.name) == value


# --------------------------------------------------------------------------- precedence


def test_precedence_file_env_cli(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'port = 1111\nname = "file.example"\nnetwork = "FileNet"\nnicklen = 11\n',
    )
    env = {"CHAT_PORT": "2222", "CHAT_NAME": "env.example", "CHAT_NETWORK": "EnvNet"}
    argv = ["--config", str(path), "--port", "3333"]
    config = load_config(argv, env)
    assert config.port == 3333  # CLI beats env and file
    assert config.name == "env.example"  # env beats file
    assert config.network == "EnvNet"
    assert config.nicklen == 11  # file beats default
    assert config.topiclen == ServerConfig().topiclen  # default


def test_env_beats_file(tmp_path: Path) -> None:
    path = write(tmp_path, 'log_level = "error"\nbackend = "select"\n')
    config = load_config(["--config", str(path)], {"CHAT_LOG_LEVEL": "debug"})
    assert config.log_level == "debug"
    assert config.backend == "select"


def test_config_file_from_environment(tmp_path: Path) -> None:
    path = write(tmp_path, "port = 4444\n")
    assert load_config([], {"CHAT_CONFIG": str(path)}).port == 4444


def test_config_flag_beats_config_environment(tmp_path: Path) -> None:
    env_file = write(tmp_path, "port = 4444\n", "env.toml")
    flag_file = write(tmp_path, "port = 5555\n", "flag.toml")
    config = load_config(["--config", str(flag_file)], {"CHAT_CONFIG": str(env_file)})
    assert config.port == 5555


def test_empty_environment_variable_is_ignored(tmp_path: Path) -> None:
    path = write(tmp_path, 'password = "filepass"\nport = 1234\n')
    config = load_config(["--config", str(path)], {"CHAT_PASSWORD": "", "CHAT_PORT": ""})
    assert config.password == "filepass"
    assert config.port == 1234


def test_unrelated_environment_is_ignored() -> None:
    assert load_config([], {"PORT": "1", "CHAT_SOMETHING_ELSE": "x"}) == ServerConfig()


def test_choices_are_case_insensitive() -> None:
    config = load_config(["--log-level", "DEBUG"], {"CHAT_BACKEND": "Select"})
    assert config.log_level == "debug"
    assert config.backend == "select"


def test_float_option_accepts_toml_integer(tmp_path: Path) -> None:
    path = write(tmp_path, "ping_timeout = 30\n")
    config = load_config(["--config", str(path)], {})
    assert config.ping_timeout == 30.0
    assert isinstance(config.ping_timeout, float)


def test_port_zero_is_allowed() -> None:
    assert load_config(["--port", "0"], {}).port == 0


def test_whowas_size_zero_turns_whowas_off() -> None:
    assert load_config(["--whowas-size", "0"], {}).whowas_size == 0


def test_account_limit_zero_turns_the_per_host_limit_off() -> None:
    # (config.py: "0: no limit", as --register-limit 0.)
    assert load_config(["--account-limit", "0"], {}).account_limit == 0
    assert load_config([], {"CHAT_ACCOUNT_LIMIT": "0"}).account_limit == 0


def test_opers_table(tmp_path: Path) -> None:
    path = write(tmp_path, f'[opers]\nalice = "{OPER_HASH}"\nbob = "{OPER_HASH}"\n')
    config = load_config(["--config", str(path)], {})
    assert config.opers == {"alice": OPER_HASH, "bob": OPER_HASH}


def test_full_example_file(tmp_path: Path) -> None:
    motd = write(tmp_path, "Welcome!\n", "motd.txt")
    path = write(
        tmp_path,
        f"""
host = "0.0.0.0"
port = 6697
name = "irc.example.org"
network = "ExampleNet"
motd = "{motd}"
password = "hunter2"
backend = "asyncio"
log_level = "warning"
casemapping = "ascii"
sendq = 65536
registration_timeout = 10.5
ping_interval = 90
ping_timeout = 20
nicklen = 16
channellen = 32
topiclen = 300
max_channels = 20

[opers]
root = "{OPER_HASH}"
""",
    )
    config = load_config(["--config", str(path)], {})
    assert config == ServerConfig(
        host="0.0.0.0",
        port=6697,
        name="irc.example.org",
        network="ExampleNet",
        motd=str(motd),
        motd_lines=("Welcome!",),
        password="hunter2",
        backend="asyncio",
        log_level="warning",
        casemapping="ascii",
        sendq=65536,
        registration_timeout=10.5,
        ping_interval=90.0,
        ping_timeout=20.0,
        nicklen=16,
        channellen=32,
        topiclen=300,
        max_channels=20,
        opers={"root": OPER_HASH},
        config_file=str(path),
    )


# --------------------------------------------------------------------------- errors


def config_error(argv: list[str], env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(argv, env or {})
    message = str(info.value)
    assert "\n" not in message
    return message


TOML_ERRORS = [
    ("prot = 6667", ["'prot'", "unknown key", "did you mean 'port'"]),
    ('log-level = "info"', ["'log-level'", "unknown key", "log_level"]),
    ("motd_lines = []", ["'motd_lines'", "unknown key"]),
    ('config_file = "x.toml"', ["'config_file'", "unknown key"]),
    ("[server]\nport = 1", ["'server'", "unknown key"]),
    ('port = "6667"', ["port", "integer", "string"]),
    ("port = true", ["port", "integer", "boolean"]),
    ("port = 6667.0", ["port", "integer", "float"]),
    ("port = 70000", ["port", "65535", "70000"]),
    ("port = -1", ["port", "65535"]),
    ("nicklen = 0", ["nicklen", "at least 1"]),
    ("userlen = 1", ["userlen", "at least 2"]),
    ("sendq = 10", ["sendq", "at least"]),
    ("whowas_size = -1", ["whowas_size", "between 0 and 100000"]),
    ("whowas_size = 100001", ["whowas_size", "100000"]),
    ('ping_timeout = "30"', ["ping_timeout", "number", "string"]),
    ("ping_timeout = 0", ["ping_timeout", "above 0"]),
    ("ping_interval = -5.0", ["ping_interval", "above 0"]),
    ("registration_timeout = inf", ["registration_timeout"]),
    ("registration_timeout = nan", ["registration_timeout"]),
    ("registration_timeout = 1e12", ["registration_timeout"]),
    ("name = 5", ["name", "string", "integer"]),
    ('name = "has space.example"', ["name", "hostname"]),
    ('name = "nodot"', ["name", "dot"]),
    ('name = ""', ["name", "empty"]),
    ('network = "Two Words"', ["network", "whitespace"]),
    ('host = ""', ["host", "empty"]),
    ('password = "a\\nb"', ["password", "LF"]),
    ('password = ""', ["password", "empty"]),
    ('backend = "tokio"', ["backend", "tokio", "asyncio"]),
    ('log_level = "verbose"', ["log_level", "verbose", "debug"]),
    ('casemapping = "unicode"', ["casemapping", "unicode", "rfc1459"]),
    ('opers = "x"', ["opers", "table"]),
    ('[opers]\nalice = "secret"', ["opers.alice", "plaintext", "--hash-password"]),
    ('[opers]\nalice = "scrypt$1$2$3$4$5"', ["opers.alice", "--hash-password"]),
    ("[opers]\nalice = 3", ["opers.alice", "hash", "integer"]),
    (f'[opers]\n"al ice" = "{OPER_HASH}"', ["opers.al ice", "operator name"]),
    ('motd = "does-not-exist.txt"', ["motd", "does-not-exist.txt", "cannot read"]),
    ("port = ", ["invalid TOML"]),
    ("port = 1\nport = 2", ["invalid TOML"]),
]


@pytest.mark.parametrize(("text", "expected"), TOML_ERRORS, ids=[t for t, _ in TOML_ERRORS])
def test_toml_errors(tmp_path: Path, text: str, expected: list[str]) -> None:
    path = write(tmp_path, text + "\n")
    message = config_error(["--config", str(path)])
    assert str(path) in message
    for part in expected:
        assert part in message


ENV_ERRORS = [
    ("CHAT_PORT", "abc", ["CHAT_PORT", "integer", "'abc'"]),
    ("CHAT_PORT", "70000", ["CHAT_PORT", "65535"]),
    ("CHAT_PORT", "6667.5", ["CHAT_PORT", "integer"]),
    ("CHAT_PING_TIMEOUT", "soon", ["CHAT_PING_TIMEOUT", "number"]),
    ("CHAT_PING_TIMEOUT", "nan", ["CHAT_PING_TIMEOUT"]),
    ("CHAT_PING_TIMEOUT", "-1", ["CHAT_PING_TIMEOUT"]),
    ("CHAT_BACKEND", "tokio", ["CHAT_BACKEND", "tokio"]),
    ("CHAT_LOG_LEVEL", "loud", ["CHAT_LOG_LEVEL", "loud"]),
    ("CHAT_CASEMAPPING", "utf8", ["CHAT_CASEMAPPING", "utf8"]),
    ("CHAT_NAME", "nodot", ["CHAT_NAME", "dot"]),
    ("CHAT_MOTD", "/nonexistent/motd.txt", ["CHAT_MOTD", "/nonexistent/motd.txt"]),
    ("CHAT_CONFIG", "/nonexistent/chat.toml", ["CHAT_CONFIG", "/nonexistent/chat.toml"]),
]


@pytest.mark.parametrize(("var", "value", "expected"), ENV_ERRORS)
def test_env_errors(var: str, value: str, expected: list[str]) -> None:
    message = config_error([], {var: value})
    for part in expected:
        assert part in message


CLI_ERRORS = [
    (["--port", "x"], ["--port", "integer"]),
    (["--port", "65536"], ["--port", "65535"]),
    (["--port", "-1"], ["--port", "65535"]),
    (["--sendq", "1"], ["--sendq"]),
    (["--ping-interval", "0"], ["--ping-interval"]),
    (["--name", "bad name"], ["--name"]),
    (["--motd", "/nonexistent/motd.txt"], ["--motd", "cannot read"]),
    (["--config", "/nonexistent/chat.toml"], ["--config", "/nonexistent/chat.toml"]),
    # A shell variable left unexpanded: the server ran with every history read failing.
    (["--redis", "redis://127.0.0.1:$RP/0"], ["--redis", "not a Redis URL", "Port"]),
    (["--redis", "localhost:6379"], ["--redis", "not a Redis URL", "redis://"]),
    (["--redis", "redis://:secret@h:99999/0"], ["--redis", "Port out of range"]),
]


@pytest.mark.parametrize(("argv", "expected"), CLI_ERRORS, ids=[" ".join(a) for a, _ in CLI_ERRORS])
def test_cli_errors(argv: list[str], expected: list[str]) -> None:
    message = config_error(argv)
    for part in expected:
        assert part in message


@pytest.mark.parametrize(
    "argv", [["--backend", "tokio"], ["--log-level", "loud"], ["--bogus"], ["--port"]]
)
def test_argparse_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        load_config(argv, {})
    assert info.value.code == 2
    assert "error" in capsys.readouterr().err


def test_bad_file_value_fails_even_if_overridden(tmp_path: Path) -> None:
    path = write(tmp_path, "port = 99999\n")
    message = config_error(["--config", str(path), "--port", "1"])
    assert "port" in message


def test_uvloop_backend_requires_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec

    def fake(name: str, package: str | None = None) -> object:
        return None if name == "uvloop" else real(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", fake)
    message = config_error(["--backend", "uvloop"])
    assert "--backend" in message
    assert "uvloop" in message
    # Overridden by a later source: no error.
    assert load_config(["--backend", "asyncio"], {"CHAT_BACKEND": "uvloop"}).backend == "asyncio"


# --------------------------------------------------------------------------- MOTD


def test_motd_lines(tmp_path: Path) -> None:
    motd = tmp_path / "motd.txt"
    motd.write_bytes(
        b"\xef\xbb\xbfWelcome\r\n\r\n  indented\rbad \xff byte\n\x1ditalic\x1d\x00x  \n"
    )
    config = load_config(["--motd", str(motd)], {})
    assert config.motd == str(motd)
    assert config.motd_lines == ("Welcome", "", "  indented", "bad \ufffd byte", "\x1ditalic\x1dx")


def test_motd_long_lines_are_truncated_on_a_character_boundary(tmp_path: Path) -> None:
    motd = tmp_path / "motd.txt"
    motd.write_text("é" * 1000 + "\n" + "a" * 1000 + "\nshort\n", encoding="utf-8")
    lines = read_motd(str(motd))
    assert len(lines) == 3
    assert lines[0] == "é" * (MOTD_LINE_BYTES // 2)
    assert lines[1] == "a" * MOTD_LINE_BYTES
    assert lines[2] == "short"
    for line in lines:
        assert len(line.encode("utf-8")) <= MOTD_LINE_BYTES


def test_empty_motd_file(tmp_path: Path) -> None:
    motd = tmp_path / "motd.txt"
    motd.write_bytes(b"")
    assert load_config(["--motd", str(motd)], {}).motd_lines == ()


def test_no_motd_means_none() -> None:
    config = load_config([], {})
    assert config.motd is None
    assert config.motd_lines is None


def test_motd_relative_to_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf_dir = tmp_path / "etc"
    conf_dir.mkdir()
    (conf_dir / "motd.txt").write_text("from etc\n", encoding="utf-8")
    path = write(conf_dir, 'motd = "motd.txt"\n')
    monkeypatch.chdir(tmp_path)
    config = load_config(["--config", str(path)], {})
    assert config.motd_lines == ("from etc",)


def test_motd_flag_relative_to_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "motd.txt").write_text("from cwd\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert load_config(["--motd", "motd.txt"], {}).motd_lines == ("from cwd",)
    assert load_config([], {"CHAT_MOTD": "motd.txt"}).motd_lines == ("from cwd",)


def test_state_paths_in_the_file_stay_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As documented (README, --help): files the server writes follow the working
    # directory; only the file's own inputs (motd, TLS) follow the file.
    conf_dir = tmp_path / "etc"
    conf_dir.mkdir()
    path = write(conf_dir, 'db = "chat.db"\nban_file = "bans.json"\n')
    monkeypatch.chdir(tmp_path)
    config = load_config(["--config", str(path)], {})
    assert (config.db, config.ban_file) == ("chat.db", "bans.json")


def test_motd_directory_is_an_error(tmp_path: Path) -> None:
    message = config_error(["--motd", str(tmp_path)])
    assert "--motd" in message
    assert "regular file" in message


def test_motd_too_large(tmp_path: Path) -> None:
    motd = tmp_path / "motd.txt"
    motd.write_bytes(b"x\n" * (MOTD_MAX_BYTES // 2 + 1))
    message = config_error(["--motd", str(motd)])
    assert "--motd" in message
    assert "larger" in message


def test_motd_unreadable(tmp_path: Path) -> None:
    import os

    motd = tmp_path / "motd.txt"
    motd.write_text("secret\n", encoding="utf-8")
    motd.chmod(0)
    try:
        if os.access(motd, os.R_OK):
            pytest.skip("running as a user that can read mode-0 files (root)")
        message = config_error(["--motd", str(motd)])
        assert "--motd" in message
        assert "cannot read" in message
    finally:
        motd.chmod(0o644)


def test_empty_db_turns_history_off() -> None:
    assert load_config(["--db", ""], {}).db == ""
    assert load_config([], {"CHAT_DB": ""}).db == ServerConfig().db  # empty env: unset


def test_empty_ban_file_keeps_bans_in_memory_only(tmp_path: Path) -> None:
    assert load_config(["--ban-file", ""], {}).ban_file == ""
    path = tmp_path / "chat.toml"
    path.write_text('ban_file = ""\n')
    assert load_config(["--config", str(path)], {}).ban_file == ""
    assert load_config([], {}).ban_file == "bans.json"


def test_redis_url_errors_do_not_show_the_password() -> None:
    assert "secret" not in config_error(["--redis", "redis://:secret@h:99999/0"])


@pytest.mark.parametrize(
    "url", ["redis://localhost:6379/0", "rediss://:pw@cache.example:6380/2", "unix:///run/r.sock"]
)
def test_redis_urls_redis_py_accepts_are_accepted(url: str) -> None:
    assert load_config(["--redis", url], {}).redis == url
