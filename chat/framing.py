"""Split a byte stream into IRC lines with a hard bound on buffered bytes."""

from __future__ import annotations

from .message import MAX_LINE_BODY, MAX_TAGS

# A line may carry up to MAX_TAGS bytes of tags before its 512-byte body.
MAX_LINE = MAX_LINE_BODY + MAX_TAGS


class LineTooLong(Exception):
    """A line (or an unterminated partial line) exceeded the byte bound.

    ``lines`` holds the complete lines that came before it in the same ``feed``, so a
    caller can still act on them; whether they arrive depends on how the stream was
    chunked otherwise.
    """

    def __init__(self, lines: list[bytes] | None = None) -> None:
        super().__init__("line too long")
        self.lines: list[bytes] = lines if lines is not None else []


class LineBuffer:
    """Accepts CRLF and bare LF; holds at most ``limit`` bytes (+ a CR) of a partial line."""

    __slots__ = ("_buf", "_skipping", "limit")

    def __init__(self, limit: int = MAX_LINE) -> None:
        self._buf = b""
        self._skipping = False  # feed_skipping: the rest of a line too long is dropped
        self.limit = limit

    def feed(self, data: bytes) -> list[bytes]:
        """Return the complete lines (without endings, CR stripped) in ``data``."""
        buf = self._buf + data if self._buf else data
        if b"\n" not in buf:
            if self._too_long(buf):
                self._buf = b""
                raise LineTooLong
            self._buf = buf
            return []
        # CRLF to LF before the split: one pass in C rather than a test and a slice
        # per line (every "\r\n" ends a line, so it strips exactly one CR per line).
        lines = buf.replace(b"\r\n", b"\n").split(b"\n")
        tail = lines.pop()
        if len(buf) > self.limit:  # a shorter read cannot hold a line too long
            self._check(lines, tail)
        self._buf = tail
        return lines

    def feed_skipping(self, data: bytes) -> tuple[list[bytes], int]:
        """As ``feed``, for a reader that goes on past a line too long (the client: the
        server closes the connection instead): the complete lines in ``data`` and how
        many lines too long were dropped. The lines around one are kept, and the rest of
        one that comes in several reads is dropped up to its end, never framed as a line
        of its own (it could be made to look like another user's)."""
        dropped = 0
        if self._skipping:
            end = data.find(b"\n")
            if end < 0:
                return [], 0
            data = data[end + 1:]
            self._skipping = False
        buf = self._buf + data if self._buf else data
        lines = buf.replace(b"\r\n", b"\n").split(b"\n")
        tail = lines.pop()
        if len(buf) > self.limit:
            kept = [line for line in lines if len(line) <= self.limit]
            dropped = len(lines) - len(kept)
            lines = kept
            if self._too_long(tail):
                tail, self._skipping = b"", True
                dropped += 1
        self._buf = tail
        return lines, dropped

    def _check(self, lines: list[bytes], tail: bytes) -> None:
        """Raise LineTooLong, with the lines before it, at the first line too long."""
        for i, line in enumerate(lines):
            if len(line) > self.limit:
                self._buf = b""
                raise LineTooLong(lines[:i])
        if self._too_long(tail):
            self._buf = b""
            raise LineTooLong(lines)

    def _too_long(self, partial: bytes) -> bool:
        # A trailing CR may be the first half of a CRLF split across two reads: it is
        # not counted, so the verdict does not depend on how the stream was chunked.
        return len(partial) - partial.endswith(b"\r") > self.limit

    @property
    def pending(self) -> int:
        return len(self._buf)
