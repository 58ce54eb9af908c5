"""Process resource limits: every connection is a file descriptor.

Most systems start a process with a soft ``RLIMIT_NOFILE`` of 1024 and a much larger
hard limit; an unprivileged process may raise its own soft limit up to the hard one.
``raise_nofile_limit()`` does that at start-up, so the server is not refused at the
1021st connection while the system would allow far more. It never fails: where the
limit cannot be raised (no ``resource`` module, a sandbox that forbids it) it logs
and the server runs with what it has.
"""

from __future__ import annotations

import logging

__all__ = ["raise_nofile_limit"]

log = logging.getLogger("chat.server.limits")

_NR_OPEN = "/proc/sys/fs/nr_open"  # Linux: the ceiling when the hard limit is unlimited
_FALLBACK_CEILING = 10240  # macOS OPEN_MAX: the most an "unlimited" hard limit allows


def _unlimited_ceiling() -> int:
    try:
        with open(_NR_OPEN) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return _FALLBACK_CEILING


def raise_nofile_limit() -> tuple[int, int] | None:
    """Raise the soft RLIMIT_NOFILE to the hard limit; return (old, new) soft limits.

    Returns None when the limit cannot be read or changed.
    """
    try:
        import resource
    except ImportError:  # pragma: no cover - not on POSIX
        log.debug("no resource module: leaving the descriptor limit alone")
        return None
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (OSError, ValueError) as e:
        log.warning("cannot read RLIMIT_NOFILE: %s", e)
        return None
    infinity = resource.RLIM_INFINITY
    if soft == hard:
        log.info("open file limit: %s (already the hard limit)", _show(soft, infinity))
        return soft, soft
    candidates = [hard]
    if hard == infinity:
        # Linux refuses a soft limit above fs.nr_open, macOS above OPEN_MAX.
        candidates = [infinity, _unlimited_ceiling(), _FALLBACK_CEILING]
    for target in candidates:
        if target != infinity and soft != infinity and target <= soft:
            break
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (OSError, ValueError) as e:
            log.debug("cannot set RLIMIT_NOFILE soft limit to %s: %s", _show(target, infinity), e)
            continue
        log.info(
            "open file limit raised from %s to %s", _show(soft, infinity), _show(target, infinity)
        )
        return soft, target
    log.warning(
        "cannot raise the open file limit above %s (hard limit %s)",
        _show(soft, infinity),
        _show(hard, infinity),
    )
    return None


def _show(value: int, infinity: int) -> str:
    return "unlimited" if value == infinity else str(value)
