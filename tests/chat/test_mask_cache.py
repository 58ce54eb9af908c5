"""The cache of compiled masks is bounded by their size, not their number: 4,096 masks
of 250 pieces held 76 MB (hostile round 4, item 7)."""

from __future__ import annotations

import re
import tracemalloc

from chat.masks import compile_mask, mask_matches


def _same(text: str) -> str:
    return text


def _retained(masks: list[str], use: object) -> int:
    """Bytes still allocated after each of ``masks`` went through ``use``."""
    re.purge()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for mask in masks:
            use(mask)  # type: ignore[operator]
        re.purge()  # re's own cache is not ours
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def test_many_long_masks_leave_a_few_megabytes_at_most() -> None:
    # 2,500 unique masks of 62 pieces: ~4.3 KB each compiled, 10.7 MB if all were kept.
    masks = [f"{n}*" + "ab*" * 60 + "z" for n in range(2_500)]
    kept = _retained(masks, lambda m: mask_matches(m, "nothing", _same))
    assert kept < 6_000_000, f"{kept:,} bytes kept"


def test_one_request_masks_are_not_kept() -> None:
    masks = [f"w{n}*" + "ab*" * 60 + "z" for n in range(500)]  # not in the cache yet
    kept = _retained(masks, lambda m: compile_mask(m, _same).matches("nothing"))
    assert kept < 200_000, f"{kept:,} bytes kept"
