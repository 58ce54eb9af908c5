"""The ban file: operators' K-/D-lines as JSON, replaced atomically on every change."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from server.core.bans import Removal, ServerBan

log = logging.getLogger("chat.server.bans")

VERSION = 1
T = TypeVar("T")


Saved = tuple[list[ServerBan], list[Removal]]


def load_bans(path: str) -> Saved:
    """The saved bans and removals; none when the file does not exist yet.

    An unreadable file is moved aside (``.corrupt``) rather than overwritten by
    the next ban, so an operator can still recover what it held.
    """
    if not path:
        return [], []
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return [], []
    except OSError as exc:
        log.error("cannot read the ban file %s: %s; starting without bans", path, exc)
        return [], []
    try:
        data = json.loads(text)
        records = data["bans"] if isinstance(data, dict) else None
        removed = data.get("removed", []) if isinstance(data, dict) else None
        if not isinstance(records, list) or not isinstance(removed, list):
            raise ValueError("no list of bans")
    except (ValueError, KeyError) as exc:
        aside = f"{path}.corrupt"
        log.error("ban file %s is not valid (%s); moved to %s, starting without bans",
                  path, exc, aside)
        with contextlib.suppress(OSError):
            os.replace(path, aside)
        return [], []
    bans = _parsed(path, records, ServerBan.from_record)
    return bans, _parsed(path, removed, Removal.from_record)


def _parsed(path: str, records: list[Any], parse: Callable[[Any], T]) -> list[T]:
    """Each record that ``parse`` accepts; the others are logged and skipped."""
    out = []
    for record in records:
        try:
            out.append(parse(record))
        except ValueError as exc:
            log.warning("ban file %s: skipped an entry (%s): %r", path, exc, record)
    return out


def save_bans(path: str, bans: tuple[ServerBan, ...], removed: tuple[Removal, ...] = ()) -> None:
    """Replace the file: write a temporary file, fsync it, rename it."""
    if not path:
        return
    target = Path(path)
    data = json.dumps({
        "version": VERSION,
        "bans": [b.to_record() for b in bans],
        "removed": [r.to_record() for r in removed],
    }, indent=1)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(data + "\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        log.error("cannot save %d bans to %s: %s (they stay in force until restart)",
                  len(bans), path, exc)
