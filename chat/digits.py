"""Numbers as typed on the wire."""

from __future__ import annotations


def is_digits(text: str) -> bool:
    """Whether ``text`` is one or more ASCII digits. ``str.isdigit()`` alone admits "²"
    or "٣": ``int()`` rejects the first and reads the second, neither what a client
    meant, so every number from a peer is checked with this before ``int()``."""
    return text.isascii() and text.isdigit()
