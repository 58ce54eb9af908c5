"""SEARCH (the ``soju.im/search`` extension, as soju, senpai, gamja and goguma use it).

``SEARCH <attrs>``: one parameter in message-tag syntax, with ``text=`` (a substring,
case-insensitive), ``in=`` (a channel, or a nick for the private conversation with its
account), ``from=`` (a nick), ``after=``/``before=`` (timestamps) and ``limit=``. The
answer is a ``soju.im/search`` batch of the newest matches, oldest first, formatted as
CHATHISTORY formats rows. Only what CHATHISTORY would let the user read is searched;
without ``in=``, the channels the user is in and its newest SEARCH_CONVERSATIONS
private conversations (older ones by ``in=<nick>``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chat import numerics as N
from chat.digits import is_digits
from chat.message import Message, parse_tags
from chat.names import CHANTYPES
from chat.servertime import parse_time
from server.history.model import Search
from server.history.store import SEARCH_CONVERSATIONS

from ..history import HistoryRequest, conversation_of, may_read_history

if TYPE_CHECKING:
    from ..core import ServerCore
    from ..state import Client

SEARCH_CAP = "soju.im/search"
TEXT_MAX = 200  # characters of a search text: a LIKE pattern, scanned row by row
SCAN_ROWS = 10_000  # rows a target is counted as for the budget when history keeps all


def handle_search(core: ServerCore, client: Client, msg: Message) -> None:
    if not core.history_enabled:  # nothing is stored, so there is nothing to find
        core.reply(client, N.ERR_UNKNOWNCOMMAND, "SEARCH", "Unknown command")
        return
    attrs = parse_tags(msg.params[0])
    text, sender = attrs.get("text", ""), attrs.get("from", "")
    if not text and not sender:
        _invalid(core, client, "Give text= or from= to search for")
        return
    if len(text) > TEXT_MAX:
        _invalid(core, client, f"The text to search for is longer than {TEXT_MAX} characters")
        return
    limit = core.config.chathistory_limit
    given = attrs.get("limit")
    if given is not None:
        if not is_digits(given):
            _invalid(core, client, "Invalid limit")
            return
        limit = min(int(given), limit)
    bounds: dict[str, int] = {}
    for key in ("after", "before"):
        if key in attrs:
            try:
                bounds[key] = round(parse_time(attrs[key]) * 1000)
            except ValueError:
                _invalid(core, client, f"Invalid {key}= timestamp")
                return
    where = attrs.get("in")
    account = ""
    conversations = 0  # how many the store may add: each one more target to pay for
    if where is None:  # the user's channels and, logged in, its newest conversations
        targets = tuple(client.channels)
        if client.account is not None:
            account, conversations = core.fold(client.account), SEARCH_CONVERSATIONS
    else:
        readable = _readable(core, client, where)
        if readable is None:
            core.fail(client, "SEARCH", "INVALID_TARGET", where, "Messages could not be searched")
            return
        targets = (readable,)
    # A text that matches nothing reads every row of every target (a LIKE scan, on the
    # one search thread): paid for from the host's budget of LIST and WHO, in rows.
    rows = (len(targets) + conversations) * (core.config.history_max_rows or SCAN_ROWS)
    if not core.scan_allowed(client, rows):
        core.fail(client, "SEARCH", "TEMPORARILY_UNAVAILABLE", where or "*",
                  "Too many searches from your host; try again in a few seconds")
        return
    search = Search(targets, text, sender, bounds.get("after", 0), bounds.get("before", 0), limit,
                    account)
    rid = core.new_history_request(client, "search", where or "")
    core.emit(HistoryRequest(rid, None, search=search))


def _readable(core: ServerCore, client: Client, target: str) -> str | None:
    """The history key of ``target`` if ``client`` may read it (as CHATHISTORY decides)."""
    if target[:1] in CHANTYPES:
        channel = core.channels.get(core.fold(target))
        if channel is None or not may_read_history(core, channel, client):
            return None
        return channel.folded
    return conversation_of(core, client, target)


def _invalid(core: ServerCore, client: Client, text: str) -> None:
    core.fail(client, "SEARCH", "INVALID_PARAMS", text)
