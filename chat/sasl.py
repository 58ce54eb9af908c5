"""How a SASL message travels in AUTHENTICATE lines (IRCv3 sasl-3.1), both ways:
base64 in lines of at most 400 bytes; a line of exactly 400 means more follows, so a
message whose base64 fills its last line exactly is ended by ``+`` (as is an empty one).
"""

from __future__ import annotations

import base64

CHUNK = 400  # bytes of base64 per AUTHENTICATE line
MECHANISMS = ("PLAIN", "SCRAM-SHA-256")  # what this project speaks, both ends


def to_lines(message: bytes) -> list[str]:
    """The AUTHENTICATE parameters that carry ``message``."""
    data = base64.b64encode(message).decode("ascii")
    lines = [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)]
    if not lines or len(lines[-1]) == CHUNK:
        lines.append("+")
    return lines


def add_line(so_far: str, param: str) -> tuple[str, bool]:
    """One AUTHENTICATE parameter added to the base64 gathered so far: (the base64,
    whether the message is complete). The caller bounds the length."""
    gathered = so_far if param == "+" else so_far + param
    return gathered, len(param) != CHUNK
