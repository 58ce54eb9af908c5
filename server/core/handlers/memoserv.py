"""MemoServ: messages left for an account, kept in the account store until its owner
deletes them, so that someone not online finds them on logging in. ``/msg MemoServ
...`` or the MEMOSERV and MS commands; nobody can take the MemoServ nick.

A memo is stored before the sender is told it was sent. Unread counts are kept in
memory (``core.unread_memos``, loaded at start) so that a login is told at once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from chat.digits import is_digits
from chat.servertime import format_time
from server.accounts.model import Memo

from .accounts import service_notice
from .help import counted

if TYPE_CHECKING:
    from ..core import ServerCore
    from ..state import Client

NICK = "MemoServ"
MAX_MEMOS = 30  # per account, read or not
MAX_TEXT = 300  # bytes of one memo: READ's line (with sender and time) stays whole
PREVIEW = 60  # characters of a memo LIST shows

HELP = [
    "MemoServ keeps messages for accounts: their owner finds them on logging in.",
    "SEND <account|nick> <text>  leaves a memo (log in first)",
    "LIST  lists your memos (* marks unread ones)",
    "READ <number|NEW>  shows a memo, or every unread one, and marks it read",
    "DEL <number|ALL>  deletes a memo, or all of them",
]


@dataclass(frozen=True, slots=True)
class SendMemo:
    """Effect: store a memo off the loop; answer with ``core.answered(check_id, result)``:
    the new memo's id, "full" or "unavailable"."""

    check_id: int
    recipient: str  # folded account name
    sender: str
    sent_ms: int
    text: str


@dataclass(frozen=True, slots=True)
class ListMemos:
    """Effect: read an account's memos off the loop; answer with ``core.answered(check_id,
    memos)``, a list of Memo, or None when the store failed."""

    check_id: int
    recipient: str


@dataclass(frozen=True, slots=True)
class MarkMemoRead:
    """Effect: mark a memo read, written behind."""

    recipient: str
    memo_id: int


@dataclass(frozen=True, slots=True)
class DeleteMemos:
    """Effect: delete memos, written behind."""

    recipient: str
    memo_ids: tuple[int, ...]


def tell(core: ServerCore, client: Client, text: str) -> None:
    service_notice(core, client, NICK, text)


def memoserv(core: ServerCore, client: Client, text: str) -> None:
    command, _, rest = text.strip().partition(" ")
    command = command.upper() or "HELP"
    if command == "HELP":
        for line in HELP:
            tell(core, client, line)
        return
    if command not in ("SEND", "LIST", "READ", "DEL", "DELETE"):
        tell(core, client, f"Unknown command {command}: /msg {NICK} HELP")
        return
    if client.account is None:
        tell(core, client, "You must be logged in to an account to use memos")
        return
    if command == "SEND":
        _send(core, client, rest.strip())
        return
    args = rest.split()
    if command != "LIST" and not args:
        tell(core, client, f"Syntax: {command} <number|{'NEW' if command == 'READ' else 'ALL'}>")
        return
    recipient = core.fold(client.account)

    def answer(client: Client, found: object) -> None:
        if not isinstance(found, list):
            tell(core, client, "Your memos cannot be read now; try again later")
        elif command == "LIST":
            _list(core, client, found)
        elif command == "READ":
            _read(core, client, recipient, found, args[0])
        else:
            _delete(core, client, recipient, found, args[0])

    core.emit(ListMemos(core.await_answer(client, answer), recipient))


def _send(core: ServerCore, client: Client, rest: str) -> None:
    target, _, text = rest.partition(" ")
    text = text.strip()
    if not target or not text:
        tell(core, client, "Syntax: SEND <account|nick> <text>")
        return
    if len(text.encode("utf-8", "surrogateescape")) > MAX_TEXT:
        tell(core, client, f"A memo holds at most {MAX_TEXT} bytes")
        return
    recipient = _account_of(core, target)
    if recipient is None:
        tell(core, client, f"{target} is not a registered account")
        return
    sender = client.account or ""
    if not core.memo_rate.take(core.fold(sender), core.clock()):
        tell(core, client, "You are sending memos too fast; wait a minute")
        return

    def stored(result: object) -> None:  # whether or not the sender is still here
        if isinstance(result, int) and not isinstance(result, bool):
            unread = core.unread_memos.get(recipient, 0) + 1
            unread_changed(core, recipient, unread, sender, skip=client)

    def answer(client: Client, result: object) -> None:
        stored(result)
        if result == "full":
            tell(core, client, f"{target}'s memo box is full ({MAX_MEMOS})")
        elif not isinstance(result, int):
            tell(core, client, "The memo could not be stored now; try again later")
        else:
            tell(core, client, f"Memo sent to {target}")

    sent_ms = int(core.clock() * 1000)
    check = core.await_answer(client, answer, stored)
    core.emit(SendMemo(check, recipient, sender, sent_ms, text))


def _account_of(core: ServerCore, target: str) -> str | None:
    """The folded account a memo to ``target`` goes to: an account's name, or the
    account a user with that nick is logged in to."""
    folded = core.fold(target)
    if folded in core.account_names:
        return folded
    holder = core.nicks.get(folded)
    if holder is not None and holder.account is not None:
        return core.fold(holder.account)
    return None


def _list(core: ServerCore, client: Client, memos: list[Memo]) -> None:
    if not memos:
        tell(core, client, "You have no memos")
        return
    unread = sum(1 for m in memos if not m.read)
    tell(core, client, f"You have {counted(len(memos), 'memo')} ({unread} unread):")
    for number, memo in enumerate(memos, 1):
        preview = memo.text if len(memo.text) <= PREVIEW else memo.text[: PREVIEW - 1] + "…"
        mark = " " if memo.read else "*"
        tell(core, client, f"{mark} {number}: from {memo.sender}, "
                           f"{format_time(memo.sent_ms / 1000)}: {preview}")


def _picked(core: ServerCore, client: Client, memos: list[Memo], which: str,
            every: str) -> list[tuple[int, Memo]] | None:
    numbered = list(enumerate(memos, 1))
    if which.upper() == every:
        return [(n, m) for n, m in numbered if every == "ALL" or not m.read]
    if is_digits(which) and 1 <= int(which) <= len(memos):
        return [numbered[int(which) - 1]]
    tell(core, client, f"No memo {which}: you have {len(memos)} (LIST shows them)")
    return None


def _read(core: ServerCore, client: Client, recipient: str, memos: list[Memo],
          which: str) -> None:
    picked = _picked(core, client, memos, which, "NEW")
    if picked is None:
        return
    if not picked:
        tell(core, client, "You have no unread memos")
        return
    newly_read = 0
    for number, memo in picked:
        tell(core, client, f"Memo {number} from {memo.sender} "
                           f"({format_time(memo.sent_ms / 1000)}): {memo.text}")
        if not memo.read:
            newly_read += 1
            core.emit(MarkMemoRead(recipient, memo.memo_id))
    if newly_read:
        unread = sum(1 for m in memos if not m.read) - newly_read
        unread_changed(core, recipient, unread)


def _delete(core: ServerCore, client: Client, recipient: str, memos: list[Memo],
            which: str) -> None:
    picked = _picked(core, client, memos, which, "ALL")
    if picked is None:
        return
    if not picked:
        tell(core, client, "You have no memos")
        return
    gone = {memo.memo_id for _, memo in picked}
    core.emit(DeleteMemos(recipient, tuple(sorted(gone))))
    unread_changed(core, recipient, sum(1 for m in memos if not m.read and m.memo_id not in gone))
    tell(core, client, "All your memos are deleted" if len(picked) > 1 or which.upper() == "ALL"
         else f"Memo {picked[0][0]} deleted")


def unread_changed(
    core: ServerCore, recipient: str, unread: int, sender: str = "", skip: Client | None = None
) -> None:
    """A new memo from ``sender`` (when given), or memos read or deleted, here: keep the
    count, tell the account's sessions of a new memo (but ``skip``, who sent it to
    itself), and the other nodes."""
    memo_count(core, recipient, unread, sender, skip)
    if core.cluster:
        core.publish("memo", (), f"{core.node_id}:0", t=recipient, unread=unread, f=sender)


def memo_count(
    core: ServerCore, recipient: str, unread: int, sender: str = "", skip: Client | None = None
) -> None:
    """The account's unread count (here or on another node); a new memo is announced
    to its sessions on this node."""
    if unread > 0:
        core.unread_memos[recipient] = unread
    else:
        core.unread_memos.pop(recipient, None)
    if sender:
        for session in core.account_sessions.get(recipient, ()):
            if session.registered and session.remote is None and session is not skip:
                tell(core, session, f"You have a new memo from {sender}: "
                                    f"/msg {NICK} READ NEW")


def offline_hint(core: ServerCore, client: Client, account: str) -> None:
    """A PRIVMSG to an account's nick while nobody uses it got 401: say how to leave
    it a memo instead."""
    tell(core, client, f"{account} is not online; /msg {NICK} SEND {account} <text> "
                       "leaves a memo")


def logged_in(core: ServerCore, client: Client) -> None:
    """On logging in: how many memos wait."""
    unread = core.unread_memos.get(core.fold(client.account or ""), 0)
    if unread:
        tell(core, client, f"You have {counted(unread, 'unread memo')}: "
                           f"/msg {NICK} READ NEW")
