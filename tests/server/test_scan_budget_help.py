"""The --scan-burst and --scan-rate help names everything that pays from the host's scan
budget: each command the core charges (``may_scan``), SEARCH, CHATHISTORY and join
playback (which ask ``scan_allowed``). An operator sizing the budget from the help alone
would not know that NAMES and playback spend it too."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import server
from server.settings import OPTIONS

# A command charged by name: core.may_scan(client, "LIST", ...), over lines or not.
CHARGED = re.compile(r'may_scan\(\s*client,\s*"([A-Z]+)"')


def charged_commands() -> set[str]:
    source = Path(server.__file__).parent
    return {name for path in source.rglob("*.py") for name in CHARGED.findall(path.read_text())}


def test_the_charged_commands_are_found() -> None:
    # Else the test below would pass over nothing.
    assert charged_commands() >= {"LIST", "WHO", "NAMES"}


@pytest.mark.parametrize("option", ["scan_burst", "scan_rate"])
def test_the_help_names_everything_that_pays(option: str) -> None:
    [help_text] = [opt.help for opt in OPTIONS if opt.name == option]
    for payer in [*sorted(charged_commands()), "SEARCH", "CHATHISTORY", "join playback"]:
        assert payer in help_text, payer
