"""Static checks of the Dockerfile (no Docker engine needed) and its agreement with the repo."""

from __future__ import annotations

import importlib
import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
SERVE = ROOT / "scripts" / "serve"

Instruction = tuple[str, str]  # (INSTRUCTION, raw arguments)


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions with continuation lines joined and comments dropped."""
    instructions: list[Instruction] = []
    current = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not current):
            continue  # comments (and parser directives) and blank lines
        if stripped.endswith("\\"):
            current += stripped[:-1].rstrip() + " "
            continue
        current += stripped
        keyword, _, args = current.strip().partition(" ")
        instructions.append((keyword.upper(), args.strip()))
        current = ""
    assert not current, "Dockerfile ends inside a continuation line"
    return instructions


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), args
    return value


def final_stage(instructions: list[Instruction]) -> list[Instruction]:
    starts = [i for i, (kw, _) in enumerate(instructions) if kw == "FROM"]
    assert starts, "no FROM"
    return instructions[starts[-1] :]


def pip_install_args(text: str) -> list[str]:
    """The arguments of the one `pip install` command in a shell snippet."""
    found = re.findall(r"pip3? install ([^\n;&|]*)", text)
    assert len(found) == 1, f"expected one pip install, found {found}"
    return shlex.split(found[0])


@pytest.fixture(scope="module")
def stage() -> list[Instruction]:
    assert DOCKERFILE.is_file(), "Dockerfile missing at the top level"
    return final_stage(parse_dockerfile(DOCKERFILE.read_text()))


def _one(stage: list[Instruction], keyword: str) -> str:
    values = [args for kw, args in stage if kw == keyword]
    assert len(values) == 1, f"expected one {keyword}, found {values}"
    return values[0]


def test_parser_handles_continuations_and_comments() -> None:
    text = '# c\nFROM a\n\nRUN x \\\n    && y\n# inner\nCMD ["z"]\n'
    assert parse_dockerfile(text) == [("FROM", "a"), ("RUN", "x && y"), ("CMD", '["z"]')]


def test_from_is_a_slim_python_311_or_later(stage: list[Instruction]) -> None:
    image = _one(stage, "FROM").split()[0]
    match = re.fullmatch(
        r"(?:docker\.io/)?(?:library/)?python:(\d+)\.(\d+)(?:\.\d+)?-slim(?:-[a-z]+)?(?:@sha256:[0-9a-f]{64})?",
        image,
    )
    assert match, f"not a slim python image: {image}"
    assert (int(match[1]), int(match[2])) >= (3, 11)


def test_runs_as_a_non_root_user(stage: list[Instruction]) -> None:
    keywords = [kw for kw, _ in stage]
    entry = keywords.index("ENTRYPOINT")
    users = [args for kw, args in stage[:entry] if kw == "USER"]
    assert users, "no USER before ENTRYPOINT"
    user, _, group = users[-1].partition(":")
    assert user not in ("root", "0", ""), users[-1]
    assert group not in ("root", "0"), users[-1]
    assert "USER" not in keywords[entry:], "USER changed after ENTRYPOINT"


def test_entrypoint_is_a_console_script_that_resolves(stage: list[Instruction]) -> None:
    entrypoint = exec_form(_one(stage, "ENTRYPOINT"))
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert entrypoint[0] in scripts, f"{entrypoint[0]} is not in [project.scripts]"
    module_name, _, attr = scripts[entrypoint[0]].partition(":")
    assert attr, "console script target must be module:function"
    sys.path.insert(0, str(ROOT))
    try:
        target: object = importlib.import_module(module_name)
    finally:
        sys.path.remove(str(ROOT))
    for part in attr.split("."):
        target = getattr(target, part)
    assert callable(target)


def test_cmd_listens_on_all_interfaces_port_6667(stage: list[Instruction]) -> None:
    cmd = exec_form(_one(stage, "CMD"))
    options: dict[str, str] = {}
    it = iter(cmd)
    for arg in it:
        if arg.startswith("--"):
            key, eq, value = arg.partition("=")
            options[key] = value if eq else next(it, "")
    assert options.get("--host") == "0.0.0.0"
    assert options.get("--port") == "6667"
    assert "6667" in _one(stage, "EXPOSE").replace("/tcp", "").split()


def test_installs_the_package_like_scripts_serve(stage: list[Instruction]) -> None:
    runs = "\n".join(args for kw, args in stage if kw == "RUN")
    docker_args = pip_install_args(runs)
    serve_args = pip_install_args(SERVE.read_text())
    assert docker_args == serve_args
    # The runtime install: this checkout, without the dev extras.
    targets = [a for a in docker_args if not a.startswith("-")]
    assert targets == ["."]


def test_dockerignore_keeps_local_state_out() -> None:
    patterns = {
        line.strip().rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for needed in (".venv", ".git", "*.db"):
        assert needed in patterns or f"**/{needed}" in patterns, needed
    # The build needs these, so they must not be ignored.
    for kept in ("pyproject.toml", "README.md", "chat", "server", "client"):
        assert kept not in patterns


def _hadolint() -> str | None:
    found = shutil.which("hadolint")
    if found:
        return found
    beside = Path(sys.executable).parent / "hadolint"  # installed into the venv by pip
    return str(beside) if beside.is_file() else None


def test_hadolint_passes() -> None:
    hadolint = _hadolint()
    if hadolint is None:
        pytest.skip("hadolint is not installed")
    result = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
