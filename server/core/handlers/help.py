"""HELP [subject] (and HELPOP): the server's own help, in RPL_HELPSTART/HELPTXT/ENDOFHELP
(704-706) as Modern IRC specifies; ERR_HELPNOTFOUND (524) for an unknown subject.
Operator commands are listed to operators only."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chat import numerics as N
from server.history.store import SEARCH_CONVERSATIONS

if TYPE_CHECKING:
    from chat.message import Message

    from ..core import ServerCore
    from ..state import Client

WRAP = 300  # characters of names per line: a notice or numeric around them fits 512 bytes

# Subject -> lines; the first is the syntax (or a title), shown in RPL_HELPSTART.
TOPICS: dict[str, tuple[str, ...]] = {
    "ACCEPT": ("ACCEPT <nick>[,<nick>...] | ACCEPT -<nick>[,...] | ACCEPT *",
               "With user mode +g only users on your accept list reach you in private: "
               "adds them (-<nick> removes; * lists). An entry follows nick changes and "
               "goes when the user quits."),
    "ADMIN": ("ADMIN", "Who runs this server, and how to reach them."),
    "AUTHENTICATE": ("AUTHENTICATE PLAIN, then AUTHENTICATE <base64>",
                     "SASL PLAIN login (request the sasl capability first); see also NICKSERV."),
    "AWAY": ("AWAY [:<message>]",
             "Marks you away with <message> (shown in WHOIS and to those messaging you); "
             "without one, back."),
    "BATCH": ("BATCH +<ref> draft/multiline <target> ... BATCH -<ref>",
              "Sends the PRIVMSG lines tagged batch=<ref> between them as one multi-line "
              "message (IRCv3 draft/multiline; limits in CAP LS)."),
    "CAP": ("CAP LS [302] | REQ :<caps> | LIST | END",
            "IRCv3 capability negotiation: CAP LS lists what this server offers."),
    "CHANSERV": ("CHANSERV <command> ... (also CS, or /msg ChanServ)",
                 "Registered channels keep their topic, modes and lists and op only their "
                 "founder and access list: REGISTER, INFO, OP, DEOP, ACCESS, SET, DROP. "
                 "CHANSERV HELP for more."),
    "CHATHISTORY": ("CHATHISTORY LATEST|BEFORE|AFTER|AROUND|BETWEEN <target> ... | TARGETS ...",
                    "IRCv3 chathistory: earlier messages of a channel (or of a conversation "
                    "between two logged-in users); request draft/chathistory first."),
    "CMODES": ("Channel modes",
               "+b/+q/+e/+I <mask>: ban, quiet, ban exception, invite exception (EXTBANS "
               "for $a masks); +k <key>; +l <limit>; +i invite only; +m moderated; +n no "
               "outside messages; +s secret; +t only ops set the topic; +r only users "
               "logged in may join; +C no CTCPs but ACTION (/me); +c colours and "
               "formatting stripped; +o/+v <nick>: operator, voice."),
    "EXTBANS": ("Account extbans in +b, +q, +e and +I",
                "$a: anyone logged in; $a:<account glob>: those accounts; $~a: anyone not "
                "logged in (MODE #chan +b $~a keeps them out)."),
    "HELP": ("HELP [<subject>] (also HELPOP)", "HELP alone lists the subjects."),
    "INFO": ("INFO", "About this server's software."),
    "INVITE": ("INVITE [<nick> <#channel>]",
               "Invites <nick> (needed on +i channels; ops only there). Alone: the "
               "channels you are invited to."),
    "ISON": ("ISON <nick> ...", "Which of these nicks are online (MONITOR is better)."),
    "JOIN": ("JOIN <#channel>[,<#channel>...] [<key>[,<key>...]] | JOIN 0",
             "Joins channels, making those that do not exist (you are their operator "
             "unless ChanServ has them registered); JOIN 0 leaves all."),
    "KICK": ("KICK <#channel> <nick>[,<nick>...] [:<reason>]", "Removes users (ops only)."),
    "KNOCK": ("KNOCK <#channel> [:<message>]",
              "Asks the ops of an invite-only, keyed or full channel for an invite."),
    "LINKS": ("LINKS [[<server>] <mask>]", "The servers of this network."),
    "LIST": ("LIST [<filter>[,<filter>...]]",
             "Channels, their sizes and topics. Filters: #names, masks (*chat*), !mask, "
             ">n/<n users, C<m/C>m created within/before m minutes, T<m/T>m topic set."),
    "LUSERS": ("LUSERS", "How many users, operators and channels there are."),
    "MARKREAD": ("MARKREAD <target> [timestamp=<time>]",
                 "IRCv3 read markers: where you read up to, shared by your sessions "
                 "(logged in)."),
    "MEMOSERV": ("MEMOSERV <command> ... (also MS, or /msg MemoServ)",
                 "Messages for accounts not online, found on logging in: SEND, LIST, READ, "
                 "DEL. MEMOSERV HELP for more."),
    "MODE": ("MODE <#channel> [<modes> [<args>...]] | MODE <nick> [<modes>]",
             "Shows or changes channel modes (CMODES) or your user modes (UMODES)."),
    "MONITOR": ("MONITOR +<nick>[,...] | -<nick>[,...] | C | L | S",
                "Be told when nicks come online and go offline."),
    "MOTD": ("MOTD", "The message of the day."),
    "NAMES": ("NAMES <#channel>[,...]", "Who is in a channel."),
    "NICK": ("NICK <nick>", "Changes your nick (an account's name is reserved for it)."),
    "NICKSERV": ("NICKSERV <command> ... (also NS, or /msg NickServ)",
                 "Accounts: REGISTER, IDENTIFY, GHOST, REGAIN, SET PASSWORD, LOGOUT, DROP. "
                 "NICKSERV HELP for more."),
    "NOTICE": ("NOTICE <target>[,...] :<text>", "Like PRIVMSG, but never answered "
               "automatically."),
    "OPER": ("OPER <name> <password>", "Become an IRC operator."),
    "PART": ("PART <#channel>[,...] [:<reason>]", "Leaves channels."),
    "PASS": ("PASS <password>", "The server's password, before NICK and USER."),
    "PING": ("PING <token>", "The server answers PONG <token>."),
    "PONG": ("PONG <token>", "The answer to the server's PING."),
    "PRIVMSG": ("PRIVMSG <target>[,...] :<text>",
                "A message to a channel (also @#channel for its ops) or a nick."),
    "QUIT": ("QUIT [:<reason>]", "Disconnects."),
    "REDACT": ("REDACT <target> <msgid> [:<reason>]",
               "Deletes a message from history: your own; a channel operator, any in the "
               "channel. Others with draft/message-redaction are told."),
    "REGISTER": ("REGISTER <account|*> <email|*> <password>",
                 "IRCv3 account registration (* names it after your nick); logs you in."),
    "SEARCH": ("SEARCH text=<words>[;in=<#channel|nick>][;from=<nick>][;limit=<n>]",
               "Finds messages in history you may read (soju.im/search): the newest "
               "matches, oldest first; without in=, your channels and your "
               f"{SEARCH_CONVERSATIONS} latest private conversations."),
    "SETNAME": ("SETNAME :<realname>", "Changes your realname."),
    "STATS": ("STATS <letter>", "u: uptime; m: commands used; k, d: bans (operators)."),
    "TAGMSG": ("TAGMSG <target>", "A message with only client tags (typing, reactions)."),
    "TIME": ("TIME", "The server's time."),
    "TOPIC": ("TOPIC <#channel> [:<topic>]", "Shows or sets a channel's topic."),
    "UMODES": ("User modes",
               "+i invisible; +w receive WALLOPS; +B a bot; +R private messages only from "
               "logged-in users; +g private messages only from your ACCEPT list (caller "
               "ID); +o operator (OPER), +s server notices (operators)."),
    "USER": ("USER <username> 0 * :<realname>", "Registration, with NICK."),
    "USERHOST": ("USERHOST <nick> ...", "Hostmasks of up to five nicks."),
    "VERIFY": ("VERIFY <account> <code>", "Account verification (nothing needs it here)."),
    "VERSION": ("VERSION", "The server's version and features (ISUPPORT)."),
    "WHO": ("WHO <mask|#channel> [%<fields>[,<token>]]", "Users matching a mask, or a "
            "channel's members (WHOX fields)."),
    "WHOIS": ("WHOIS <nick>", "About a user: host, channels, account, idle time."),
    "WHOWAS": ("WHOWAS <nick> [<count>]", "About users who had a nick."),
}

OPER_TOPICS: dict[str, tuple[str, ...]] = {
    "DLINE": ("DLINE [MYSELF] [<duration>] <address|cidr|nick> [:<reason>]",
              "Bans addresses; a duration in minutes or as 30m, 2h, 7d; MYSELF when it "
              "matches your own address (operators)."),
    "KILL": ("KILL <nick> [:<reason>]", "Disconnects a user (operators)."),
    "KLINE": ("KLINE [MYSELF] [<duration>] <user@host|nick> [:<reason>]",
              "Bans user@host masks; a duration in minutes or as 30m, 2h, 7d; MYSELF when "
              "it matches you (operators)."),
    "REHASH": ("REHASH", "Reloads the configuration (operators)."),
    "SAMODE": ("SAMODE <#channel> <modes> [<args>]",
               "Changes a channel's modes as its operators could, member or not "
               "(operators)."),
    "UNDLINE": ("UNDLINE <address|cidr>", "Lifts a D-line (operators)."),
    "UNKLINE": ("UNKLINE <user@host>", "Lifts a K-line (operators)."),
    "WALLOPS": ("WALLOPS :<text>", "A notice to everyone with +w (operators)."),
}

ALIASES = {"CS": "CHANSERV", "NS": "NICKSERV", "MS": "MEMOSERV", "HELPOP": "HELP"}


def handle_help(core: ServerCore, client: Client, msg: Message) -> None:
    oper = "o" in client.modes
    subject = msg.params[0] if msg.params and msg.params[0] else ""
    if not subject:
        names = sorted(TOPICS) + (sorted(OPER_TOPICS) if oper else [])
        lines = ["Help topics (HELP <topic>):", *wrap_words(names)]
        _send(core, client, "*", (*lines, "End of /HELP"))
        return
    key = subject.upper()
    key = ALIASES.get(key, key)
    topic = TOPICS.get(key) or (OPER_TOPICS.get(key) if oper else None)
    if topic is None:
        core.reply(client, N.ERR_HELPNOTFOUND, subject, "No help available on this topic")
        return
    _send(core, client, key.lower(), (*topic, "End of /HELP"))


def _send(core: ServerCore, client: Client, subject: str, lines: tuple[str, ...]) -> None:
    core.reply(client, N.RPL_HELPSTART, subject, lines[0])
    for line in lines[1:-1]:
        core.reply(client, N.RPL_HELPTXT, subject, line)
    core.reply(client, N.RPL_ENDOFHELP, subject, lines[-1])


def counted(n: int, noun: str) -> str:
    """``n`` and ``noun``, plural unless one: "1 memo", "2 memos", "0 accounts"."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def wrap_words(names: list[str]) -> list[str]:
    """``names`` joined by spaces into lines of at most WRAP characters (one line
    each for names longer than that)."""
    lines: list[str] = []
    line = ""
    for name in names:
        if line and len(line) + 1 + len(name) > WRAP:
            lines.append(line)
            line = ""
        line = f"{line} {name}" if line else name
    return [*lines, line] if line else lines
