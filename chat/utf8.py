"""Byte lengths of text: IRC limits (TOPICLEN, KICKLEN, AWAYLEN...) count UTF-8 bytes."""

from __future__ import annotations


def utf8_size(text: str) -> int:
    """``text``'s length in UTF-8 bytes (a surrogate, from text decoded with
    surrogateescape, counted as 3: never an error)."""
    return len(text.encode("utf-8", "surrogatepass"))


def truncate_utf8(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes, never inside a character."""
    limit = max(limit, 0)
    if len(text) <= limit // 4:  # fits whatever its characters are: no encoding
        return text
    if text.isascii():
        return text[:limit]
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= limit:
        return text
    cut = limit
    while cut and data[cut] & 0xC0 == 0x80:  # a continuation byte: back to the lead byte
        cut -= 1
    return data[:cut].decode("utf-8", "surrogatepass")
