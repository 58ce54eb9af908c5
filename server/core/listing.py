"""LIST's filters (ISUPPORT ``ELIST=CMNTU``), parsed from its parameters.

As on solanum/charybdis: ``>n``/``<n`` member counts; ``C<m`` channels created within the
last m minutes, ``C>m`` created more than m minutes ago; ``T<m``/``T>m`` the same for the
topic's last change (a channel without a topic has none within any period); a glob
(``*chat*``) names channels by mask and ``!glob`` leaves them out; a plain channel name
(or a list of them) asks about those channels only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from chat.digits import is_digits
from chat.masks import Glob, compile_mask, glob_pieces
from chat.names import is_channel_name

from .state import Channel

ELIST = "CMNTU"
# Globs a LIST may filter by, each way (the rest are ignored): every one is matched
# against every channel on the loop, and 125 of them fit a line (solanum keeps one).
MAX_LIST_MASKS = 4
# Scan-budget matches a piece of a glob costs to compile (one re.compile, ~5 µs, as ten
# matches): a LIST or WHO of long unique masks cost more than its matches over a few
# channels (8 masks of 20 pieces, 2 ms a line), charged before it is compiled.
PIECE_COMPILE_COST = 10


def compile_cost(mask: str) -> int:
    """What compiling ``mask`` is charged to the scan budget."""
    return PIECE_COMPILE_COST * glob_pieces(mask)


@dataclass(slots=True)
class ListQuery:
    # Folded channel names asked for, in the order asked (a dict as an ordered set);
    # None: any.
    names: dict[str, None] | None = None
    min_users: int = 0
    max_users: int | None = None
    created_after: float | None = None  # epoch seconds
    created_before: float | None = None
    topic_after: float | None = None
    topic_before: float | None = None
    masks: list[str] = field(default_factory=list)  # folded; any of them must match
    not_masks: list[str] = field(default_factory=list)  # folded; none of them may match
    # Compiled at the first ``wants``, after the budget paid for it (``cost``).
    _globs: tuple[list[Glob], list[Glob]] | None = None

    def wants(self, channel: Channel) -> bool:
        if self.names is not None and channel.folded not in self.names:
            return False
        count = len(channel.members)
        if count < self.min_users or (self.max_users is not None and count > self.max_users):
            return False
        if not _within(channel.created, self.created_after, self.created_before):
            return False
        if (self.topic_after is not None or self.topic_before is not None) and (
            not channel.topic_time
            or not _within(channel.topic_time, self.topic_after, self.topic_before)
        ):
            return False
        folded = channel.folded
        masks, not_masks = self._compiled()
        if masks and not any(m.matches(folded) for m in masks):
            return False
        return not any(m.matches(folded) for m in not_masks)

    def _compiled(self) -> tuple[list[Glob], list[Glob]]:
        if self._globs is None:
            same = str  # folded already
            self._globs = (
                [compile_mask(m, same) for m in self.masks],
                [compile_mask(m, same) for m in self.not_masks],
            )
        return self._globs

    def cost(self, channels: int) -> int:
        """What the query costs the scan budget (``ServerCore.may_scan``) over
        ``channels``: a match per channel and mask, and compiling the masks. A list of
        channel names is looked up, not walked: a match per name and mask instead; one
        name alone is one lookup and at most one line, free as a WHO of a nick."""
        compiling = sum(compile_cost(m) for m in (*self.masks, *self.not_masks))
        if self.names is not None:
            channels = len(self.names) if len(self.names) > 1 else 0
        return channels * (1 + len(self.masks) + len(self.not_masks)) + compiling


def _within(when: float, after: float | None, before: float | None) -> bool:
    return (after is None or when > after) and (before is None or when < before)


def parse_list(params: list[str], now: float, fold: Callable[[str], str]) -> ListQuery:
    """The query LIST's first parameter asks for (the second, a server name, is ignored
    when it is not a filter: this server is the whole network as LIST sees it)."""
    query = ListQuery()
    for param in params[:2]:
        for item in param.split(","):
            _parse_item(query, item, now, fold)
    return query


def _parse_item(query: ListQuery, item: str, now: float, fold: Callable[[str], str]) -> None:
    head, rest = item[:1], item[1:]
    if head in "<>" and is_digits(rest):
        if head == ">":
            query.min_users = max(query.min_users, int(rest) + 1)
        else:
            query.max_users = int(rest) - 1
    elif head in ("C", "c", "T", "t") and rest[:1] in ("<", ">") and is_digits(rest[1:]):
        minutes_ago = now - 60 * int(rest[1:])
        topic = head in ("T", "t")
        if rest[0] == "<":  # within the last n minutes
            if topic:
                query.topic_after = minutes_ago
            else:
                query.created_after = minutes_ago
        elif topic:
            query.topic_before = minutes_ago
        else:
            query.created_before = minutes_ago
    elif head == "!" and rest:
        if len(query.not_masks) < MAX_LIST_MASKS:
            query.not_masks.append(fold(rest))
    elif "*" in item or "?" in item:
        if len(query.masks) < MAX_LIST_MASKS:
            query.masks.append(fold(item))
    elif is_channel_name(item):
        if query.names is None:
            query.names = {}
        query.names[fold(item)] = None
