"""Ban/WHO glob matching: same answers as a plain regex, without its backtracking."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from chat.casemap import folder
from chat.masks import mask_matches, normalize_mask


def _reference(mask: str, target: str) -> bool:
    pattern = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in mask)
    return re.fullmatch(pattern, target, re.DOTALL) is not None


def _same(text: str) -> str:
    return text


@settings(max_examples=2000, deadline=None)
@given(mask=st.text("ab*?!@", max_size=12), target=st.text("ab!@", max_size=14))
def test_agrees_with_the_regex_reference(mask: str, target: str) -> None:
    assert mask_matches(mask, target, _same) == _reference(mask, target)


def test_examples() -> None:
    assert mask_matches("*!*@*", "nick!user@host", _same)
    assert mask_matches("NICK!*@*", "nick!u@h", folder("rfc1459"))
    assert mask_matches("n[ck!*@*", "N{CK!u@h", folder("rfc1459"))
    assert mask_matches("*!?ser@*.example", "n!user@a.b.example", _same)
    assert not mask_matches("*!?ser@*.example", "n!ser@a.example", _same)
    assert mask_matches("a*b*a", "aba", _same)
    assert not mask_matches("ab*ba", "aba", _same)  # head and tail may not overlap
    assert mask_matches("", "", _same)
    assert not mask_matches("", "x", _same)


def test_many_stars_on_a_near_miss_return_at_once() -> None:
    # Was: ".*a.*a...b" backtracked exponentially; the fuzzer hung the core on a ban like it.
    mask = "*a" * 40 + "*b"
    target = "a" * 400 + "c"
    assert not mask_matches(mask, target, _same)
    assert mask_matches(mask, "a" * 400 + "b", _same)


def test_normalize_mask() -> None:
    assert normalize_mask("nick") == "nick!*@*"
    assert normalize_mask("u@h") == "*!u@h"
    assert normalize_mask("n!u") == "n!u@*"
    assert normalize_mask("n!u@h") == "n!u@h"
