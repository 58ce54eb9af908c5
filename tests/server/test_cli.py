from __future__ import annotations

import getpass
import io
import logging
import os
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from server import cli
from server.config import ServerConfig
from server.passwords import verify_password
from server.settings import OPTIONS

ROOT = Path(__file__).resolve().parents[2]


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAT_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def run_module(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=clean_env(),
        timeout=60,
    )


@pytest.fixture(autouse=True)
def no_chat_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("CHAT_"):
            monkeypatch.delenv(key)


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


@pytest.fixture
def fake_transport(monkeypatch: pytest.MonkeyPatch) -> list[ServerConfig]:
    """Replace server.transport with a stub whose run() records its config."""
    seen: list[ServerConfig] = []
    module = types.ModuleType("server.transport")

    def run(config: ServerConfig, reloader: object = None) -> int:
        assert callable(reloader)  # SIGHUP/REHASH re-read the same sources
        seen.append(config)
        logging.getLogger("server.transport").info("pretend to serve")
        return 7

    module.run = run  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "server.transport", module)
    return seen


# --------------------------------------------------------------------------- --help


def test_help_lists_every_option() -> None:
    result = run_module("--help")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("usage: chat-server")
    required = [
        "--host",
        "--port",
        "--name",
        "--network",
        "--motd",
        "--password",
        "--backend",
        "--log-level",
        "--config",
        "--sendq",
        "--hash-password",
        "--help",
    ]
    for flag in required + [opt.flag for opt in OPTIONS]:
        assert flag in out, flag
    for opt in OPTIONS:
        assert opt.env in out, opt.env
    assert "{auto,asyncio,uvloop,select}" in out
    assert "127.0.0.1" in out
    assert "6667" in out


def test_console_script_entry_point_is_main() -> None:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert 'chat-server = "server.cli:main"' in text


# --------------------------------------------------------------------------- --hash-password


def test_hash_password_from_piped_stdin() -> None:
    result = run_module("--hash-password", stdin="s3cret pass\n")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    stored = lines[0]
    assert stored.startswith("scrypt$16384$8$1$")
    assert verify_password("s3cret pass", stored)
    assert not verify_password("s3cret pass\n", stored)
    assert not verify_password("s3cret", stored)


def test_hash_password_strips_crlf_only() -> None:
    result = run_module("--hash-password", stdin=" spaced \r\nsecond line\n")
    assert result.returncode == 0, result.stderr
    assert verify_password(" spaced ", result.stdout.strip())


def test_hash_password_ignores_a_broken_config() -> None:
    result = run_module("--hash-password", "--config", "/nonexistent.toml", stdin="pw\n")
    assert result.returncode == 0, result.stderr
    assert verify_password("pw", result.stdout.strip())


@pytest.mark.parametrize("stdin", ["", "\n"])
def test_hash_password_empty_input(stdin: str) -> None:
    result = run_module("--hash-password", stdin=stdin)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("chat-server: error: ")


class _TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_hash_password_prompts_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    prompts: list[str] = []

    def fake_getpass(prompt: str = "Password: ") -> str:
        prompts.append(prompt)
        return "tty secret"

    monkeypatch.setattr(sys, "stdin", _TTY())
    monkeypatch.setattr(getpass, "getpass", fake_getpass)
    assert cli.main(["--hash-password"]) == 0
    assert len(prompts) == 2
    assert verify_password("tty secret", capsys.readouterr().out.strip())


def test_hash_password_terminal_mismatch(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    answers = iter(["one", "two"])
    monkeypatch.setattr(sys, "stdin", _TTY())
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": next(answers))
    assert cli.main(["--hash-password"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "chat-server: error: passwords do not match\n"


# --------------------------------------------------------------------------- errors


def test_config_error_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_transport: list[ServerConfig]
) -> None:
    path = tmp_path / "chat.toml"
    path.write_text("prot = 1\n", encoding="utf-8")
    assert cli.main(["--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("chat-server: error: ")
    assert err.count("\n") == 1
    assert "'prot'" in err
    assert fake_transport == []  # the server was not started


@pytest.mark.parametrize(
    ("argv", "env", "needle"),
    [
        (["--port", "70000"], {}, "--port"),
        ([], {"CHAT_PORT": "nope"}, "CHAT_PORT"),
        ([], {"CHAT_LOG_LEVEL": "chatty"}, "CHAT_LOG_LEVEL"),
        (["--motd", "/nonexistent/motd"], {}, "--motd"),
        (["--config", "/nonexistent/chat.toml"], {}, "--config"),
    ],
)
def test_validation_errors_exit_2(
    argv: list[str],
    env: dict[str, str],
    needle: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    fake_transport: list[ServerConfig],
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("chat-server: error: ")
    assert needle in err
    assert fake_transport == []


def test_plaintext_oper_password_is_rejected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_transport: list[ServerConfig]
) -> None:
    path = tmp_path / "chat.toml"
    path.write_text('[opers]\nadmin = "letmein"\n', encoding="utf-8")
    assert cli.main(["--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "opers.admin" in err
    assert "chat-server --hash-password" in err


def test_argparse_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["--backend", "tokio"])
    assert info.value.code == 2
    assert "--backend" in capsys.readouterr().err


def test_module_reports_errors_like_the_console_script() -> None:
    result = run_module("--port", "99999")
    assert result.returncode == 2
    assert result.stderr.startswith("chat-server: error: --port")
    assert "Traceback" not in result.stderr


# --------------------------------------------------------------------------- running


@pytest.mark.usefixtures("restore_logging")
def test_main_runs_transport_with_merged_config(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    fake_transport: list[ServerConfig],
) -> None:
    path = tmp_path / "chat.toml"
    path.write_text('port = 1000\nname = "file.example"\npassword = "hunter2"\n', encoding="utf-8")
    monkeypatch.setenv("CHAT_PORT", "2000")
    monkeypatch.setenv("CHAT_NETWORK", "EnvNet")
    assert cli.main(["--config", str(path), "--port", "3000", "--log-level", "debug"]) == 7
    [config] = fake_transport
    assert (config.port, config.name, config.network) == (3000, "file.example", "EnvNet")
    assert config.log_level == "debug"
    assert logging.getLogger().level == logging.DEBUG
    err = capsys.readouterr().err
    assert "DEBUG" in err and "configuration:" in err
    assert "INFO" in err and "server.transport: pretend to serve" in err
    assert "hunter2" not in err  # the password is not logged


@pytest.mark.usefixtures("restore_logging")
def test_logging_is_configured_once(fake_transport: list[ServerConfig]) -> None:
    root = logging.getLogger()
    before = len(root.handlers)
    assert cli.main(["--log-level", "warning"]) == 7
    assert cli.main(["--log-level", "error"]) == 7
    assert len(root.handlers) == before + 1
    assert root.level == logging.ERROR


@pytest.mark.usefixtures("restore_logging")
def test_keyboard_interrupt_exits_130(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("server.transport")

    def run(config: ServerConfig, reloader: object = None) -> int:
        raise KeyboardInterrupt

    module.run = run  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "server.transport", module)
    assert cli.main([]) == 130
