"""mIRC formatting codes in message text, and how to strip them (channel mode +c).

The codes (https://modern.ircdocs.horse/formatting): ``\\x02`` bold, ``\\x03`` colour
followed by up to two digits and, when the foreground is there, a comma and one or two
more for the background, ``\\x04`` hex colour followed by six hex digits and optionally a
comma and six more, ``\\x0f`` reset, ``\\x11`` monospace, ``\\x16`` reverse, ``\\x1d``
italic, ``\\x1e`` strikethrough, ``\\x1f`` underline. CTCP's ``\\x01`` markers are not
formatting. Pure, no I/O.
"""

from __future__ import annotations

import re

FORMATTING_CODES = "\x02\x03\x04\x0f\x11\x16\x1d\x1e\x1f"

# [0-9], not \d: str patterns' \d also takes other scripts' digits ("٣").
_CODE = re.compile(
    "\x03(?:[0-9]{1,2}(?:,[0-9]{1,2})?)?"
    "|\x04(?:[0-9A-Fa-f]{6}(?:,[0-9A-Fa-f]{6})?)?"
    "|[\x02\x0f\x11\x16\x1d\x1e\x1f]"
)
_ANY = re.compile(f"[{FORMATTING_CODES}]")


def strip_formatting(text: str) -> str:
    """``text`` without formatting codes (nor the colour numbers that follow ``\\x03`` or
    ``\\x04``); every other character stays, spaces, ``\\x01`` and non-ASCII included.
    Text without any code is returned as it is."""
    if _ANY.search(text) is None:
        return text
    return _CODE.sub("", text)
