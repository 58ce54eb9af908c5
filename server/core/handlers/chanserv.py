"""ChanServ: channels registered by logged-in users. A registered channel keeps its
topic, modes and lists when it empties and across restarts (in the account store),
and only its founder and the accounts on its access list get +o, from ChanServ, when
they join. ``/msg ChanServ ...`` or the CHANSERV and CS commands; nobody can take the
ChanServ nick."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from chat.names import is_channel_name
from chat.servertime import format_time
from server.accounts.model import RegisteredChannel

from ..relay import relay_wire
from .accounts import service_notice, with_account_names
from .channels import channel_record, set_channel_record
from .help import counted, wrap_words
from .modes import publish_mode, set_prefix

if TYPE_CHECKING:
    from ..core import ServerCore
    from ..state import Channel, Client

NICK = "ChanServ"
MAX_PER_ACCOUNT = 20  # channels one account may register
MAX_ACCESS = 50  # accounts on one channel's access list

HELP = [
    "ChanServ keeps registered channels: their topic, modes and lists stay when they "
    "empty and across restarts, and only their operators get +o.",
    "REGISTER <#channel>  registers a channel you are an operator of (log in first)",
    "INFO <#channel>  shows who registered a channel, and when",
    "OP <#channel> [nick]  gives +o (founder and access list only); DEOP takes it",
    "ACCESS <#channel> LIST | ADD <account> | DEL <account>  the accounts ChanServ ops "
    "on join (the founder changes it)",
    "SET <#channel> FOUNDER <account>  gives the channel to another account (you stay "
    "on its access list)",
    "DROP <#channel>  unregisters a channel (its founder, or an IRC operator)",
]


@dataclass(frozen=True, slots=True)
class RegisterChannel:
    """Effect: store the registration off the loop; answer with ``core.answered(check_id,
    result)``: "ok", "exists" or "unavailable"."""

    check_id: int
    folded: str
    channel: RegisteredChannel


@dataclass(frozen=True, slots=True)
class SaveChannel:
    """Effect: write a registration's founder, access list and state behind."""

    folded: str
    channel: RegisteredChannel


@dataclass(frozen=True, slots=True)
class DropChannel:
    """Effect: delete a registration, written behind."""

    folded: str


def tell(core: ServerCore, client: Client, text: str) -> None:
    service_notice(core, client, NICK, text)


def chanserv(core: ServerCore, client: Client, text: str) -> None:
    words = text.split()
    command = words[0].upper() if words else "HELP"
    args = words[1:]
    if command == "HELP":
        for line in HELP:
            tell(core, client, line)
        return
    handler = _COMMANDS.get(command)
    if handler is None:
        tell(core, client, f"Unknown command {command}: /msg {NICK} HELP")
        return
    syntax, run = handler
    if not args or not is_channel_name(args[0]):
        tell(core, client, f"Syntax: {command} {syntax}")
        return
    run(core, client, args)


# ---------------------------------------------------------------------- state


def state_of(channel: Channel) -> str:
    """The part of a channel a registration keeps, as JSON."""
    record = channel_record(channel)
    for transient in ("name", "created", "origin"):
        del record[transient]
    return json.dumps(record, sort_keys=True, separators=(",", ":"))


def restore(channel: Channel, registered: RegisteredChannel) -> None:
    """A registered channel made anew gets its kept topic, modes and lists."""
    try:
        record = json.loads(registered.state)
    except ValueError:
        return
    if isinstance(record, dict):
        set_channel_record(channel, record)


def channel_changed(core: ServerCore, channel: Channel, *, here: bool = True) -> None:
    """Topic, modes or lists changed: keep them (written behind when changed ``here``;
    clustered, the node where it changed writes it, the others update their copy)."""
    registered = core.registered_channels.get(channel.folded)
    if registered is None:
        return
    state = state_of(channel)
    if state == registered.state:
        return  # +o/+v, or a change back and forth
    registered = replace(registered, state=state)
    core.registered_channels[channel.folded] = registered
    if here:
        core.emit(SaveChannel(channel.folded, registered))


def is_trusted(core: ServerCore, registered: RegisteredChannel, client: Client) -> bool:
    """The founder, or an account on the access list."""
    if client.account is None:
        return False
    account = core.fold(client.account)
    return account == registered.founder or account in registered.ops


def give_op(core: ServerCore, channel: Channel, target: Client, adding: bool = True) -> bool:
    """``:ChanServ MODE #channel +o nick`` (or -o), on every node; False when the
    target had (or lacked) +o already."""
    if not set_prefix(channel, target, "o", adding):
        return False
    source = f"{NICK}!{NICK}@{core.config.name}"
    change = ["+o" if adding else "-o", target.nick]
    relay = core.new_relay(source, "MODE", [channel.name, *change])
    core.fan_out(channel.members, relay)
    core.on_channel_event((channel,), source, relay, " ".join(change))
    if core.cluster:
        publish_mode(core, channel, core.uid(target), [relay_wire(source, relay)])
    return True


def op_trusted(core: ServerCore, client: Client) -> None:
    """+o in the registered channels the client is in and whose access list has it."""
    for folded, channel in list(client.channels.items()):
        registered = core.registered_channels.get(folded)
        if registered is not None and is_trusted(core, registered, client):
            give_op(core, channel, client)


def has_most_channels(core: ServerCore, account: str) -> bool:
    """Whether the folded ``account`` founded as many channels as one may."""
    owned = sum(1 for r in core.registered_channels.values() if r.founder == account)
    return owned >= MAX_PER_ACCOUNT


def registered_here(core: ServerCore, folded: str, registered: RegisteredChannel) -> None:
    """A registration (or its access list) changed here: keep it, and tell the other nodes."""
    core.registered_channels[folded] = registered
    if core.cluster:
        core.publish("chanreg", (), f"{core.node_id}:0", t=folded, reg=to_record(registered))


def to_record(registered: RegisteredChannel) -> dict[str, object]:
    return {"name": registered.name, "founder": registered.founder,
            "created": registered.created_ms, "ops": list(registered.ops),
            "state": registered.state}


def from_record(record: dict[str, object]) -> RegisteredChannel:
    ops = record.get("ops", ())
    return RegisteredChannel(
        str(record["name"]), str(record["founder"]), int(str(record["created"])),
        tuple(str(o) for o in ops) if isinstance(ops, list) else (), str(record["state"]),
    )


def account_gone(core: ServerCore, folded: str, *, here: bool) -> None:
    """An account was dropped: the store dropped the channels it founded; it leaves
    every access list too (so that whoever registers the name next inherits nothing)."""
    for name, registered in list(core.registered_channels.items()):
        if registered.founder == folded:
            del core.registered_channels[name]
        elif folded in registered.ops:
            registered = replace(registered, ops=tuple(o for o in registered.ops if o != folded))
            core.registered_channels[name] = registered
            if here:
                core.emit(SaveChannel(name, registered))


# ---------------------------------------------------------------------- commands


def _register(core: ServerCore, client: Client, args: list[str]) -> None:
    if client.account is None:
        tell(core, client, "You must be logged in to an account to register a channel")
        return
    folded = core.fold(args[0])
    channel = core.channels.get(folded)
    if channel is None or not channel.is_op(client):
        tell(core, client, f"You must be an operator of {args[0]} to register it")
        return
    if folded in core.registered_channels:
        tell(core, client, f"{channel.name} is registered already")
        return
    founder = core.fold(client.account)
    if has_most_channels(core, founder):
        tell(core, client, f"An account may register {MAX_PER_ACCOUNT} channels; "
                           f"{client.account} has")
        return
    registered = RegisteredChannel(
        channel.name, founder, int(core.clock() * 1000), (), state_of(channel)
    )
    core.registered_channels[folded] = registered  # nobody registers it meanwhile

    def stored(result: object) -> None:  # whether or not the founder is still here
        if result == "ok":
            current = core.registered_channels.get(folded, registered)
            if current is not registered:  # changed while the store was asked: keep that
                core.emit(SaveChannel(folded, current))
            registered_here(core, folded, current)
        elif core.registered_channels.get(folded) is registered:
            del core.registered_channels[folded]

    def answer(client: Client, result: object) -> None:
        stored(result)
        if result == "ok":
            tell(core, client, f"{channel.name} is registered to {client.account or founder}")
        else:
            tell(core, client, f"{channel.name} is registered already" if result == "exists"
                 else "The channel could not be registered now; try again later")

    check = core.await_answer(client, answer, stored)
    core.emit(RegisterChannel(check, folded, registered))


def _registered(core: ServerCore, client: Client, name: str) -> RegisteredChannel | None:
    registered = core.registered_channels.get(core.fold(name))
    if registered is None:
        tell(core, client, f"{name} is not registered")
    return registered


def _info(core: ServerCore, client: Client, args: list[str]) -> None:
    registered = _registered(core, client, args[0])
    if registered is None:
        return
    when = format_time(registered.created_ms / 1000)

    def show(client: Client, names: dict[str, str]) -> None:
        tell(core, client, f"{registered.name} is registered to {names[registered.founder]} "
                           f"since {when}; {counted(len(registered.ops), 'more account')} on "
                           "its access list")

    with_account_names(core, client, [registered.founder], show)


def _op(core: ServerCore, client: Client, args: list[str], adding: bool) -> None:
    registered = _registered(core, client, args[0])
    if registered is None:
        return
    if not is_trusted(core, registered, client):
        tell(core, client, f"You are not on the access list of {registered.name}")
        return
    channel = core.channels.get(core.fold(args[0]))
    target = core.nicks.get(core.fold(args[1])) if len(args) > 1 else client
    if channel is None or target is None or target not in channel.members:
        tell(core, client, f"{args[1] if len(args) > 1 else client.nick} is not on {args[0]}")
        return
    if not give_op(core, channel, target, adding):
        state = "already" if adding else "not"
        tell(core, client, f"{target.nick} is {state} an operator of {channel.name}")


def _access(core: ServerCore, client: Client, args: list[str]) -> None:
    registered = _registered(core, client, args[0])
    if registered is None:
        return
    folded = core.fold(args[0])
    action = args[1].upper() if len(args) > 1 else "LIST"
    if action == "LIST":
        if not is_trusted(core, registered, client):
            tell(core, client, f"You are not on the access list of {registered.name}")
            return
        shown = registered

        def show(client: Client, names: dict[str, str]) -> None:
            tell(core, client, f"{shown.name}: founder {names[shown.founder]}; operators: "
                               f"{'' if shown.ops else '(none)'}".rstrip())
            # up to 50 names of 30 characters
            for line in wrap_words([names[o] for o in shown.ops]):
                tell(core, client, line)

        with_account_names(core, client, [shown.founder, *shown.ops], show)
        return
    if client.account is None or core.fold(client.account) != registered.founder:
        tell(core, client, f"Only the founder of {registered.name} changes its access list")
        return
    if action not in ("ADD", "DEL") or len(args) < 3:
        tell(core, client, "Syntax: ACCESS <#channel> LIST | ADD <account> | DEL <account>")
        return
    account = core.fold(args[2])
    ops = registered.ops
    if action == "ADD":
        if account not in core.account_names:
            tell(core, client, f"{args[2]} is not a registered account")
            return
        if account in ops or account == registered.founder:
            tell(core, client, f"{args[2]} is on the access list of {registered.name} already")
            return
        if len(ops) >= MAX_ACCESS:
            tell(core, client, f"The access list of {registered.name} is full ({MAX_ACCESS})")
            return
        ops = (*ops, account)
        done = f"{args[2]} added to the access list of {registered.name}"
    else:
        if account not in ops:
            tell(core, client, f"{args[2]} is not on the access list of {registered.name}")
            return
        ops = tuple(o for o in ops if o != account)
        done = f"{args[2]} removed from the access list of {registered.name}"
    registered = replace(registered, ops=ops)
    registered_here(core, folded, registered)
    core.emit(SaveChannel(folded, registered))
    tell(core, client, done)


def _set(core: ServerCore, client: Client, args: list[str]) -> None:
    registered = _registered(core, client, args[0])
    if registered is None:
        return
    if len(args) < 3 or args[1].upper() != "FOUNDER":
        tell(core, client, "Syntax: SET <#channel> FOUNDER <account>")
        return
    if client.account is None or core.fold(client.account) != registered.founder:
        tell(core, client, f"Only the founder of {registered.name} gives it away")
        return
    heir = core.fold(args[2])
    if heir not in core.account_names:
        tell(core, client, f"{args[2]} is not a registered account")
        return
    if heir == registered.founder:
        tell(core, client, f"{args[2]} is the founder of {registered.name} already")
        return
    if has_most_channels(core, heir):
        tell(core, client, f"{args[2]} has {MAX_PER_ACCOUNT} channels, the most an account may")
        return
    # The old founder stays an operator (on the access list), the new one leaves it.
    ops = tuple(o for o in (*registered.ops, registered.founder) if o != heir)[-MAX_ACCESS:]
    registered = replace(registered, founder=heir, ops=ops)
    folded = core.fold(args[0])
    registered_here(core, folded, registered)
    core.emit(SaveChannel(folded, registered))
    tell(core, client, f"{registered.name} now belongs to {args[2]}")


def _drop(core: ServerCore, client: Client, args: list[str]) -> None:
    registered = _registered(core, client, args[0])
    if registered is None:
        return
    founder = client.account is not None and core.fold(client.account) == registered.founder
    if not founder and "o" not in client.modes:
        tell(core, client, f"Only the founder of {registered.name} (or an IRC operator) "
                           "may drop it")
        return
    folded = core.fold(args[0])
    del core.registered_channels[folded]
    core.emit(DropChannel(folded))
    if core.cluster:
        core.publish("chandrop", (), f"{core.node_id}:0", t=folded)
    tell(core, client, f"{registered.name} is no longer registered")


_COMMANDS = {
    "REGISTER": ("<#channel>", _register),
    "INFO": ("<#channel>", _info),
    "OP": ("<#channel> [nick]", lambda core, client, args: _op(core, client, args, True)),
    "DEOP": ("<#channel> [nick]", lambda core, client, args: _op(core, client, args, False)),
    "ACCESS": ("<#channel> LIST | ADD <account> | DEL <account>", _access),
    "SET": ("<#channel> FOUNDER <account>", _set),
    "DROP": ("<#channel>", _drop),
}
