"""chat.casemap: rfc1459, strict-rfc1459 and ascii folding."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chat.casemap import Casemapping, casefold, folder, is_casemapping

MAPPINGS: tuple[Casemapping, ...] = ("ascii", "rfc1459", "strict-rfc1459")

# Upper -> lower pairs that each mapping folds, beyond A-Z.
_EXTRA = {"ascii": "", "rfc1459": "[]\\~", "strict-rfc1459": "[]\\"}
_EXTRA_LOWER = {"ascii": "", "rfc1459": "{}|^", "strict-rfc1459": "{}|"}

irc_names = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789[]\\~{}|^-_`#&é",
    max_size=20,
)


def _irc_upper(name: str, mapping: Casemapping) -> str:
    table = str.maketrans(
        "abcdefghijklmnopqrstuvwxyz" + _EXTRA_LOWER[mapping],
        "ABCDEFGHIJKLMNOPQRSTUVWXYZ" + _EXTRA[mapping],
    )
    return name.translate(table)


def test_default_is_rfc1459() -> None:
    assert casefold("Nick[]\\~") == "nick{}|^"


@pytest.mark.parametrize(
    ("mapping", "folded"),
    [
        ("rfc1459", "abc{}|^{}|^"),
        ("strict-rfc1459", "abc{}|~{}|^"),
        ("ascii", "abc[]\\~{}|^"),
    ],
)
def test_special_characters_per_mapping(mapping: Casemapping, folded: str) -> None:
    assert casefold("ABC[]\\~{}|^", mapping) == folded


def test_rfc1459_equates_brackets_and_braces() -> None:
    assert casefold("[Bot]", "rfc1459") == casefold("{bot}", "rfc1459")
    assert casefold("a~b", "rfc1459") == casefold("A^B", "rfc1459")
    assert casefold("x\\y", "rfc1459") == casefold("X|Y", "rfc1459")


def test_ascii_keeps_brackets_and_braces_distinct() -> None:
    assert casefold("[Bot]", "ascii") != casefold("{bot}", "ascii")
    assert casefold("[Bot]", "ascii") == "[bot]"
    assert casefold("a~b", "ascii") != casefold("a^b", "ascii")


def test_strict_rfc1459_keeps_tilde_and_caret_distinct() -> None:
    assert casefold("a~", "strict-rfc1459") != casefold("a^", "strict-rfc1459")
    assert casefold("[a]", "strict-rfc1459") == "{a}"


@pytest.mark.parametrize("mapping", MAPPINGS)
def test_non_ascii_letters_are_not_folded(mapping: Casemapping) -> None:
    # No mapping here folds beyond ASCII: 'É' and 'é' stay different names.
    assert casefold("É", mapping) == "É"
    assert casefold("ÉA", mapping) == "Éa"


@pytest.mark.parametrize("mapping", MAPPINGS)
def test_channel_prefix_is_untouched(mapping: Casemapping) -> None:
    assert casefold("#Chat-Room_1", mapping) == "#chat-room_1"


def test_is_casemapping() -> None:
    for mapping in MAPPINGS:
        assert is_casemapping(mapping)
    assert not is_casemapping("rfc7613")
    assert not is_casemapping("ASCII")
    assert not is_casemapping("")


def test_unknown_mapping_is_an_error() -> None:
    with pytest.raises(KeyError):
        casefold("x", "unicode")  # type: ignore[arg-type]
    with pytest.raises(KeyError):
        folder("unicode")  # type: ignore[arg-type]


@settings(deadline=None)
@given(irc_names, st.sampled_from(MAPPINGS))
def test_folder_matches_casefold(name: str, mapping: Casemapping) -> None:
    assert folder(mapping)(name) == casefold(name, mapping)


@settings(deadline=None)
@given(irc_names, st.sampled_from(MAPPINGS))
def test_fold_is_idempotent_and_length_preserving(name: str, mapping: Casemapping) -> None:
    once = casefold(name, mapping)
    assert casefold(once, mapping) == once
    assert len(once) == len(name)


@settings(deadline=None)
@given(irc_names, st.sampled_from(MAPPINGS))
def test_upper_and_lower_forms_fold_equal(name: str, mapping: Casemapping) -> None:
    upper = _irc_upper(name, mapping)
    assert casefold(upper, mapping) == casefold(name, mapping)
    assert not any(ch in casefold(upper, mapping) for ch in _EXTRA[mapping])


@settings(deadline=None)
@given(irc_names, irc_names)
def test_rfc1459_is_coarser_than_strict_which_is_coarser_than_ascii(a: str, b: str) -> None:
    if casefold(a, "ascii") == casefold(b, "ascii"):
        assert casefold(a, "strict-rfc1459") == casefold(b, "strict-rfc1459")
    if casefold(a, "strict-rfc1459") == casefold(b, "strict-rfc1459"):
        assert casefold(a, "rfc1459") == casefold(b, "rfc1459")
