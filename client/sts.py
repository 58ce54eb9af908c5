"""IRCv3 STS policies the client keeps: host -> TLS port, until the policy expires.

A server that says ``sts=duration=D`` over a verified TLS connection asks to be reached
only over TLS for D seconds; the client then never connects to it in plaintext.
Stored as JSON in ``$XDG_STATE_HOME/chat-client/sts.json`` (``~/.local/state/...``).

A policy is kept MAX_DURATION at most, as browsers cap HSTS: a server compromised once,
or a test server on localhost, must not pin its host to TLS for centuries. It is kept
per host name, as the spec has it (the whole domain); ``chat-client --forget-sts``
drops the one of the host it connects to (``forget``).

The spec counts the duration from the last time the policy held: a secure connection
to the host pushes its expiry to duration from when that connection closes
(``reschedule``), so a connection longer than the duration does not see it lapse.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from chat.digits import is_digits

log = logging.getLogger("chat.client.sts")

MAX_POLICIES = 1000
MAX_DURATION = 365 * 24 * 3600  # seconds a policy is kept at most (a year, as HSTS in browsers)


@dataclass(frozen=True, slots=True)
class Policy:
    port: int
    expires: float  # epoch seconds
    duration: int = 0  # as the server last said it (0: unknown, a file from before)


def parse_sts(value: str) -> dict[str, str]:
    """``port=6697,duration=300`` -> {"port": "6697", "duration": "300"}."""
    out: dict[str, str] = {}
    for item in value.split(","):
        key, _, val = item.partition("=")
        if key:
            out[key] = val
    return out


def valid_port(text: str) -> int | None:
    return int(text) if is_digits(text) and 0 < int(text) < 65536 else None


def valid_duration(text: str) -> int | None:
    return int(text) if is_digits(text) and len(text) <= 10 else None


def default_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    base = env.get("XDG_STATE_HOME") or ""
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".local" / "state"
    return root / "chat-client" / "sts.json"


class StsStore:
    """The policies, read at start and written when one changes."""

    def __init__(self, path: Path | None, now: float | None = None) -> None:
        self.path = path
        self._policies: dict[str, Policy] = {}
        if path is not None:
            self._load(path, time.time() if now is None else now)

    def get(self, host: str, now: float) -> Policy | None:
        policy = self._policies.get(host.lower())
        return policy if policy is not None and policy.expires > now else None

    def set(self, host: str, port: int, duration: int, now: float) -> None:
        """Record (or, with duration 0, drop) the policy for ``host``."""
        key = host.lower()
        if duration <= 0:
            if self._policies.pop(key, None) is None:
                return
        else:
            duration = min(duration, MAX_DURATION)
            self._policies[key] = Policy(port, now + duration, duration)
            expired = [h for h, p in self._policies.items() if p.expires <= now]
            for h in expired:
                del self._policies[h]
            while len(self._policies) > MAX_POLICIES:
                del self._policies[next(iter(self._policies))]
        self._save()

    def reschedule(self, host: str, now: float) -> None:
        """A secure connection to ``host`` closed: its policy (if any, and of a known
        duration) expires that duration from ``now``, as the spec asks."""
        policy = self._policies.get(host.lower())
        if policy is not None and policy.duration > 0:
            self.set(host, policy.port, policy.duration, now)

    def forget(self, host: str) -> bool:
        """Drop the policy for ``host`` (the user asked to); whether there was one."""
        if self._policies.get(host.lower()) is None:
            return False
        self.set(host, 0, 0, 0.0)
        return True

    def _load(self, path: Path, now: float) -> None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            log.warning("ignoring the STS policy file %s: %s", path, exc)
            return
        if not isinstance(data, dict):
            return
        for host, entry in list(data.items())[:MAX_POLICIES]:
            if isinstance(entry, dict):
                port, expires = entry.get("port"), entry.get("expires")
                if isinstance(port, int) and 0 < port < 65536 and isinstance(
                    expires, int | float
                ):
                    # (A file from before the cap, or edited: no longer than a new one.)
                    expires = min(float(expires), now + MAX_DURATION)
                    duration = entry.get("duration")
                    if not isinstance(duration, int) or not 0 < duration <= MAX_DURATION:
                        duration = 0  # (unknown: kept until it expires, never pushed on)
                    self._policies[str(host).lower()] = Policy(port, expires, duration)

    def _save(self) -> None:
        if self.path is None:
            return
        data = {
            h: {"port": p.port, "expires": p.expires, "duration": p.duration}
            for h, p in self._policies.items()
        }
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".sts.", dir=self.path.parent)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f)
            os.replace(tmp, self.path)
        except OSError as exc:
            log.warning("cannot save STS policies to %s: %s", self.path, exc)
