"""Caller ID, as on charybdis and solanum: user mode +g (ISUPPORT ``CALLERID=g``) drops
private messages from users not on the target's ACCEPT list (``ACCEPT=<limit>``).

A PRIVMSG that +g drops gets ``716`` (the target ignores you) and, when the target was
told of it, ``717``; the target is told (``718``) at most once a minute, whoever the
sender (charybdis's ``caller_id_wait``). A NOTICE or TAGMSG is dropped without a word to
either side: Modern IRC forbids automatic replies to NOTICE, and a TAGMSG (typing, a
reaction) is no reason to disturb anyone. Operators, messages to oneself and accepted
users get through. An INVITE is held back as a PRIVMSG is (716/717/718), as on solanum.
As on solanum, a +g user's PRIVMSG puts its target on its own list
(unless the target is an operator, who gets through anyway), so that it can be answered;
with the list full, ``494`` says that it cannot.

Clustered, the sender's node decides (it alone can refuse before the message is stored
and relayed), from its copy of the target's list: every ACCEPT change publishes the whole
list as uids (``accept``), and snapshots carry it. The 718 is sent by the target's node,
which keeps the once-a-minute clock: the sender's node publishes ``callerid``, and the
target's node answers ``informed`` when it told the target, for the 717.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chat import numerics as N

from ..callerid import accepts

if TYPE_CHECKING:
    from chat.message import Message

    from ..core import ServerCore
    from ..state import Client

LIST_BUDGET = 400  # bytes of nicks per 281 line, well inside 512 with the prefix
LIST_MAX = 14  # nicks per 281 line: with the client's nick, Modern IRC's 15 parameters
IGNORING = "is in +g mode (server-side ignore.)"
INFORMED = "has been informed that you messaged them."


def handle_accept(core: ServerCore, client: Client, msg: Message) -> None:
    """``ACCEPT nick,-nick,...`` changes the list (removals first, then additions, as
    on solanum); ``ACCEPT *`` shows it."""
    arg = msg.params[0]
    if arg.startswith("*"):
        _list(core, client)
        return
    adds: list[Client] = []
    removes: list[Client] = []
    for name in arg.split(","):
        removing = name.startswith("-")
        if removing:
            name = name[1:]
        if not name:
            continue
        user = core.nicks.get(core.fold(name))
        if user is None or not user.registered:
            core.reply(client, N.ERR_NOSUCHNICK, name, "No such nick/channel")
            continue
        (removes if removing else adds).append(user)
    changed = False
    for user in removes:
        if core.accept.remove(client, user):
            changed = True
        else:
            core.reply(client, N.ERR_ACCEPTNOT, user.nick, "is not on your accept list")
    limit = core.config.accept_limit
    for user in adds:
        if accepts(client, user):
            core.reply(client, N.ERR_ACCEPTEXIST, user.nick, "is already on your accept list")
        elif len(client.accepting or ()) >= limit:
            core.reply(client, N.ERR_ACCEPTFULL, "Accept list is full")
            break
        else:
            core.accept.add(client, user)
            changed = True
    if changed:
        _publish(core, client)


def _publish(core: ServerCore, client: Client) -> None:
    """Clustered: ``client``'s whole list, as uids, for the other nodes' copies."""
    if core.cluster:
        core.publish("accept", (), core.uid(client),
                     a=[core.uid(user) for user in client.accepting or ()])  # fmt: skip


def let_answer(core: ServerCore, client: Client, target: Client) -> None:
    """``client`` (+g) sent ``target`` a PRIVMSG: ``target`` may answer it."""
    if target is client or "o" in target.modes or accepts(client, target):
        return
    if len(client.accepting or ()) >= core.config.accept_limit:
        core.reply(client, N.ERR_OWNMODE, target.nick,
                   "is not on your accept list, which is full: they cannot answer you (+g)")
        return
    core.accept.add(client, target)
    _publish(core, client)


def _list(core: ServerCore, client: Client) -> None:
    line: list[str] = []
    size = 0
    for user in client.accepting or ():
        if line and (len(line) == LIST_MAX or size + len(user.nick.encode()) + 1 > LIST_BUDGET):
            core.reply(client, N.RPL_ACCEPTLIST, *line)
            line, size = [], 0
        line.append(user.nick)
        size += len(user.nick.encode()) + 1
    if line:
        core.reply(client, N.RPL_ACCEPTLIST, *line)
    core.reply(client, N.RPL_ENDOFACCEPT, "End of /ACCEPT list.")


def blocks(core: ServerCore, client: Client, target: Client, command: str) -> bool:
    """Whether ``target``'s +g keeps ``client``'s private message or INVITE (``command``)
    from it; if so, who is told what (see the module's text). ``target`` has +g."""
    if target is client or "o" in client.modes or accepts(target, client):
        return False
    if command in ("NOTICE", "TAGMSG"):
        return True
    core.reply(client, N.ERR_TARGUMODEG, target.nick, IGNORING)
    userhost = f"{client.user}@{client.host}"
    if target.remote is not None:
        core.publish("callerid", (), core.uid(client), to=target.remote, s=client.nick,
                     h=userhost)  # fmt: skip
    elif notify(core, target, client.nick, userhost):
        core.reply(client, N.RPL_TARGNOTIFY, target.nick, INFORMED)
    return True


def notify(core: ServerCore, target: Client, nick: str, userhost: str) -> bool:
    """718 to ``target`` (local, +g) that ``nick`` messaged it, unless it was sent one
    less than a minute ago; whether it was sent."""
    if not core.accept.may_notify(target, core.clock()):
        return False
    core.reply(target, N.RPL_UMODEGMSG, nick, userhost, "is messaging you, and you have umode +g.")
    return True


def informed(core: ServerCore, sender: Client, target_nick: str) -> None:
    """Cluster: the target's node told its +g user of ``sender``'s message: 717."""
    core.reply(sender, N.RPL_TARGNOTIFY, target_nick, INFORMED)
