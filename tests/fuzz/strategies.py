"""Hypothesis strategies for IRC input: well-formed commands, near misses and raw junk."""

from __future__ import annotations

from hypothesis import strategies as st

from chat.message import escape_tag_value

# Small pools so that names collide: the interesting cases are two clients wanting the same
# nick or channel, under the casemapping ([]\~ fold to {}|^ in rfc1459).
NICKS = ["alice", "Alice", "bob", "d[a]n", "D{A}n", "e\\ve", "E|VE", "x^", "X~", "z" * 30]
BAD_NICKS = ["", "1abc", "-x", "a b", ":colon", "#chan", "a,b", "é", "z" * 31, "*", "a!b", "a@b"]
CHANNELS = ["#a", "#A", "#chan", "&loc", "#[x]", "#{X}", "#\\~", "#|^", "#" + "c" * 49]
BAD_CHANNELS = ["", "#", "chan", "#a b", "#a,#b", "#\x07", "#" + "c" * 50, ":#a", "##"]
CAPS = [
    "away-notify",
    "batch",
    "cap-notify",
    "echo-message",
    "labeled-response",
    "message-tags",
    "multi-prefix",
    "server-time",
    "setname",
    "userhost-in-names",
    "draft/chathistory",
    "extended-monitor",
    "invite-notify",
    "sasl",
    "account-notify",
    "account-tag",
    "extended-join",
    "draft/read-marker",
    "draft/multiline",
    "no-implicit-names",
    "draft/pre-away",
    "bogus",
    "-batch",
    "-message-tags",
]
TAG_KEYS = ["label", "+typing", "+draft/reply", "+a", "msgid", "time", "batch", "+x/y.z", "k",
            "draft/multiline-concat"]
# draft/multiline: the batch references clients use (few, so that lines meet their batch).
BATCH_REFS = ["1", "2"]

# Text with the characters that matter on the wire: separators, escapes, formatting,
# multi-byte UTF-8 (byte limits vs character limits), and a leading ':'.
_WIRE_CHARS = st.sampled_from(
    [*" :;,\\@!*?+#&=~^|[]{}\x01\x02\x03\x04\x0f\x1d\x7f\t", "é", "☃", "𝄞"]
)
_TEXT_CHARS = st.one_of(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E),
    _WIRE_CHARS,
    st.characters(exclude_categories=["Cs"], exclude_characters="\x00\r\n"),
)
text = st.text(_TEXT_CHARS, max_size=40)
# Very long text, to press every length limit (in bytes and in characters).
long_text = st.builds(
    lambda ch, size, tail: ch * (size // len(ch.encode())) + tail,
    st.sampled_from(["x", "é", "☃", "𝄞", " ", ":", "a b"]),
    st.integers(min_value=100, max_value=520),  # bytes: around the 512-byte line
    st.text(_TEXT_CHARS, max_size=3),
)
any_text = st.one_of(text, text, text, long_text)
middle = st.text(_TEXT_CHARS, min_size=1, max_size=20).filter(
    lambda s: " " not in s and not s.startswith(":")
)
# A name far beyond any limit: replies that echo it must still fit 512 bytes.
long_middle = st.builds(
    lambda ch, size: ch * (size // len(ch.encode())),
    st.sampled_from(["q", "é", "☃", "𝄞", "*"]),
    st.integers(min_value=60, max_value=480),
)
nick = st.one_of(st.sampled_from(NICKS), st.sampled_from(BAD_NICKS), middle, long_middle)
good_nick = st.sampled_from(NICKS)
unique_nick = st.integers(min_value=0, max_value=10**6).map(lambda n: f"u{n}")
channel = st.one_of(
    st.sampled_from(CHANNELS),
    st.sampled_from(BAD_CHANNELS),
    middle,
    long_middle.map(lambda s: "#" + s),
)
# "#chan" is where the machine's clients meet: most lines should land somewhere real.
good_channel = st.one_of(st.just("#chan"), st.just("#Chan"), st.sampled_from(CHANNELS))
channel_list = st.lists(st.one_of(good_channel, channel), min_size=1, max_size=5).map(",".join)
target = st.one_of(
    good_channel,
    good_nick,
    st.builds(lambda p, c: p + c, st.sampled_from(["@", "+", "@+", "+@", "@@", "+"]), good_channel),
    channel_list,
    st.lists(good_nick, min_size=1, max_size=5).map(",".join),
    nick,
    st.sampled_from(["NickServ", "nickserv", "ChanServ", "MemoServ"]),
)
modestring = st.text(alphabet="+-beklovimnrstwqaxOIRgCc", min_size=0, max_size=8)
mode_arg = st.one_of(
    good_nick,
    st.sampled_from(["*!*@*", "ali*", "*!~bob@*", "key", "3", "0", "-1", "٣", "a,b", "",
                     "$a", "$~a", "$a:ali*", "$a:", "$x:y", "$"]),
    middle,
    long_middle,
)
ref = st.one_of(
    st.just("*"),
    st.sampled_from(["timestamp=2023-11-14T22:13:20.000Z", "timestamp=2099-01-01T00:00:00Z"]),
    st.builds(
        lambda s: "msgid=" + s,
        st.text(alphabet="0123456789ABCDEFGHJKMNPQRSTVWXYZ", min_size=16, max_size=16),
    ),
    st.builds(lambda s: "timestamp=" + s, text),
    st.sampled_from(["msgid=", "timestamp=", "bogus=1", "x"]),
)
# KLINE/DLINE masks: fitting ones (the harness's clients come from 192.0.2.x), ones that
# must be refused, nicks, and junk.
ban_mask = st.one_of(
    st.sampled_from([
        "*@192.0.2.1", "~u*@192.0.2.0/24", "x@198.51.100.0/24", "192.0.2.2", "192.0.2.0/25",
        "2001:db8::/48", "*@*", "*@*.*", "u@0.0.0.0/0", "10.0.0.0/4", "a!b@c", "@", "u@",
        "::ffff:192.0.2.3", "*@*.ip", "host.example",
    ]),
    good_nick,
    middle,
    long_middle,
)
whox_options = st.builds(
    lambda flags, fields, token: f"{flags}%{fields}" + (f",{token}" if token else ""),
    st.sampled_from(["", "o"]),
    st.text(alphabet="tcuihsnfdlaorxyz%", max_size=16),
    st.one_of(st.just(""), st.sampled_from(["1", "42", "999", "1000", "x", "٣"]), middle),
)
limit = st.one_of(
    st.integers(min_value=0, max_value=200).map(str), st.sampled_from(["²", "-1", ""])
)


def _tag_value(draw: st.DrawFn) -> str:
    return draw(st.one_of(st.just(""), text, st.text(alphabet="; \\\r\nabs:", max_size=12)))


@st.composite
def tag_prefix(draw: st.DrawFn) -> str:
    """'' or '@k=v;... ' with escaped values (a raw value may also carry bad escapes)."""
    if draw(st.integers(min_value=0, max_value=3)) != 0:
        return ""
    keys = draw(st.lists(st.one_of(st.sampled_from(TAG_KEYS), middle), max_size=4))
    items = []
    if draw(st.integers(min_value=0, max_value=2)) == 0:  # a line of a multiline batch
        items.append("batch=" + draw(st.sampled_from(BATCH_REFS)))
    for key in keys:
        key = key.replace(";", "").replace("=", "").replace(" ", "")
        if not key:
            continue
        if draw(st.booleans()):
            items.append(f"{key}={escape_tag_value(_tag_value(draw))}")
        else:
            items.append(key)
    if draw(st.integers(min_value=0, max_value=9)) == 0:
        items.append("+big=" + "v" * draw(st.integers(min_value=1000, max_value=5000)))
    return ("@" + ";".join(items) + " ") if items else ""


def _trailing(value: str) -> str:
    return ":" + value


@st.composite
def command_line(draw: st.DrawFn) -> str:
    """One IRC command, mostly well-formed, sometimes missing or mangling parameters."""
    kind = draw(
        st.sampled_from(
            [
                "NICK",
                "USER",
                "CAP",
                "PASS",
                "JOIN",
                "PART",
                "MODE",
                "KICK",
                "TOPIC",
                "PRIVMSG",
                "NOTICE",
                "TAGMSG",
                "WHO",
                "WHOIS",
                "NAMES",
                "LIST",
                "CHATHISTORY",
                "QUIT",
                "PING",
                "PONG",
                "INVITE",
                "AWAY",
                "SETNAME",
                "ISON",
                "USERHOST",
                "OPER",
                "KILL",
                "MOTD",
                "LUSERS",
                "VERSION",
                "TIME",
                "ADMIN",
                "INFO",
                "STATS",
                "WALLOPS",
                "LINKS",
                "KNOCK",
                "KLINE",
                "SAMODE",
                "DLINE",
                "UNKLINE",
                "UNDLINE",
                "AUTHENTICATE",
                "REGISTER",
                "VERIFY",
                "NS",
                "CS",
                "MS",
                "HELP",
                "MARKREAD",
                "REDACT",
                "ACCEPT",
                "SEARCH",
                "BATCH",
                "BOGUS",
            ]
        )
    )
    t = draw(any_text)
    params: list[str]
    if kind == "NICK":
        params = [draw(nick)]
    elif kind == "USER":
        params = [draw(middle), "0", "*", _trailing(t)]
    elif kind == "CAP":
        sub = draw(st.sampled_from(["LS", "LS 302", "LIST", "REQ", "END", "ls", "BOGUS"]))
        params = [sub]
        if sub == "REQ":
            params.append(_trailing(" ".join(draw(st.lists(st.sampled_from(CAPS), max_size=4)))))
    elif kind == "PASS":
        params = [draw(st.sampled_from(["secret", "wrong", ":"]))]
    elif kind == "JOIN":
        params = [draw(st.one_of(channel_list, st.just("0")))]
        if draw(st.booleans()):
            params.append(draw(st.sampled_from(["key", "key,other", "x", ""])) or ":")
    elif kind == "PART":
        params = [draw(channel_list)]
        if draw(st.booleans()):
            params.append(_trailing(t))
    elif kind in ("MODE", "SAMODE"):
        params = [draw(st.one_of(good_channel, good_nick, channel))]
        if draw(st.integers(min_value=0, max_value=4)):
            params.append(draw(modestring) or "+")
            params.extend(draw(st.lists(mode_arg, max_size=5)))
    elif kind == "KICK":
        params = [draw(good_channel), ",".join(draw(st.lists(good_nick, min_size=1, max_size=4)))]
        if draw(st.booleans()):
            params.append(_trailing(t))
    elif kind == "TOPIC":
        params = [draw(good_channel)]
        if draw(st.booleans()):
            params.append(_trailing(t))
    elif kind in ("PRIVMSG", "NOTICE"):
        params = [draw(target), _trailing(t)]
        if draw(st.integers(min_value=0, max_value=9)) == 0:
            params = params[:1]
    elif kind == "TAGMSG":
        params = [draw(target)]
    elif kind == "WHO":
        params = [draw(st.one_of(good_channel, good_nick, st.sampled_from(["*", "0", "a*", ""])))]
        if draw(st.booleans()):
            params.append(draw(st.one_of(st.just("o"), whox_options)))
    elif kind == "WHOIS":
        params = [draw(st.one_of(good_nick, nick))]
        if draw(st.booleans()):
            params = ["fuzz.server", *params]
    elif kind in ("NAMES", "LIST"):
        params = [draw(st.one_of(channel_list, st.sampled_from([">0", "<5", ">x"])))]
    elif kind == "CHATHISTORY":
        sub = draw(
            st.sampled_from(
                ["LATEST", "BEFORE", "AFTER", "AROUND", "BETWEEN", "TARGETS", "latest", "NOPE"]
            )
        )
        params = [sub, draw(st.one_of(good_channel, good_nick, channel)), draw(ref)]
        if sub in ("BETWEEN", "TARGETS") or draw(st.integers(min_value=0, max_value=5)) == 0:
            params.append(draw(ref))
        params.append(draw(limit))
        if sub == "TARGETS":
            params = [sub, draw(ref), draw(ref), draw(limit)]
    elif kind == "SEARCH":
        # soju.im/search: message-tag syntax, with good, bad and escaped values.
        keys = draw(st.lists(st.sampled_from(["text", "in", "from", "after", "before", "limit",
                                              "x"]), min_size=0, max_size=5))
        values = st.one_of(good_channel, good_nick, text, limit,
                           st.sampled_from(["2023-11-14T22:13:20.000Z", "nope", "a\\sb", ""]))
        params = [";".join(f"{k}={draw(values)}" for k in keys) or ":"]
    elif kind == "REDACT":
        # %MSGID% is a stored message's id, filled in by the harness when it is sent.
        params = [
            draw(st.one_of(good_channel, good_nick, channel)),
            draw(st.one_of(st.just("%MSGID%"), ref.map(lambda r: r.partition("=")[2]), middle)),
        ]
        if draw(st.booleans()):
            params.append(_trailing(t))
    elif kind in ("QUIT", "AWAY", "SETNAME"):
        params = [_trailing(t)]
    elif kind in ("PING", "PONG"):
        params = [draw(middle)]
    elif kind == "INVITE":
        params = [draw(good_nick), draw(good_channel)]
    elif kind in ("ISON", "USERHOST"):
        params = draw(st.lists(good_nick, min_size=1, max_size=6))
    elif kind == "OPER":
        params = ["root", draw(st.sampled_from(["hunter2", "wrong"]))]
    elif kind == "KILL":
        params = [draw(good_nick), _trailing(t)]
    elif kind == "STATS":
        params = [draw(st.sampled_from(["u", "m", "x", "k", "K", "d", ""])) or ":"]
    elif kind in ("KLINE", "DLINE", "UNKLINE", "UNDLINE"):
        params = [draw(ban_mask)]
        if kind in ("KLINE", "DLINE") and draw(st.booleans()):
            params.insert(0, draw(st.sampled_from(["0", "1", "30", "90s", "2h", "7d", "1w",
                                                   "99999999", "-5", "1y"])))
        if kind in ("KLINE", "DLINE") and draw(st.booleans()):
            # Bans matching the fuzzing operator itself are refused without it.
            params.insert(0, draw(st.sampled_from(["MYSELF", "myself"])))
        if draw(st.booleans()):
            params.append(_trailing(t))
    elif kind == "AUTHENTICATE":
        # The mechanism, PLAIN credentials (the harness's accounts use PASSWORD), SCRAM's
        # client-first (n,,n=alice,r=abc) and a client-final of the wrong nonce, or junk.
        params = [draw(st.sampled_from(["PLAIN", "plain", "EXTERNAL", "*", "+", "=", "A" * 400,
                                        "AGFsaWNlAHBhc3N3b3JkMQ==", "AGJvYgB3cm9uZ3Bhc3M=",
                                        "YWxpY2UAYWxpY2UAcGFzc3dvcmQx", "not base64",
                                        "SCRAM-SHA-256", "biwsbj1hbGljZSxyPWFiYw==",
                                        "Yz1iaXdzLHI9YWJjLHA9QUFBQQ=="]))]
    elif kind == "REGISTER":
        params = [draw(st.one_of(st.just("*"), good_nick, nick)),
                  draw(st.sampled_from(["*", "a@b.c"])),
                  draw(st.sampled_from(["password1", "short", "x" * 301, ":"]))]
    elif kind == "NS":  # NickServ, also reached as PRIVMSG NickServ (see target)
        params = [draw(st.sampled_from(["HELP", "REGISTER password1", "IDENTIFY password1",
                                        "IDENTIFY alice password1", "LOGIN bob x", "REGISTER",
                                        "identify", "DROP", "SET PASSWORD password2",
                                        "SET PASSWORD x", "set", "DROP alice", "DROP", "LOGOUT",
                                        "GHOST alice", "GHOST bob", "GHOST", "REGAIN",
                                        "REGAIN alice", "RECOVER bob", "INFO", "INFO bob",
                                        "info nobody"]))]
    elif kind == "CS":  # ChanServ, also reached as PRIVMSG ChanServ (see target)
        command = draw(st.sampled_from(["REGISTER", "INFO", "OP", "DEOP", "ACCESS", "DROP",
                                        "SET", "HELP", "register", "FROB", ""]))
        rest = draw(st.sampled_from(["", " alice", " bob", " ADD alice", " ADD bob",
                                     " DEL bob", " LIST", " add", " ADD nobody",
                                     " FOUNDER bob", " founder alice", " FOUNDER"]))
        params = [f"{command} {draw(st.one_of(good_channel, channel, good_nick))}{rest}"]
    elif kind == "MARKREAD":
        params = [draw(st.one_of(good_channel, good_nick, channel))]
        if draw(st.booleans()):
            params.append(draw(st.sampled_from([
                "timestamp=2023-11-14T22:13:20.000Z", "timestamp=2001-01-01T00:00:00.000Z",
                "timestamp=2999-01-01T00:00:00.000Z", "timestamp=bogus", "*", "2023-11-14"])))
    elif kind == "VERIFY":
        params = [draw(st.one_of(st.just("*"), good_nick)), draw(middle)]
    elif kind == "WALLOPS":
        params = [_trailing(t)]
    elif kind == "LINKS":
        masks = st.sampled_from(["*", "fuzz.*", "*.other", "FUZZ.SERVER", "f?zz.server"])
        params = draw(st.lists(masks, max_size=2))
        if params and draw(st.booleans()):
            params[-1] = _trailing(draw(st.sampled_from(["", "a b", params[-1]])))
    elif kind == "MS":  # MemoServ, also reached as PRIVMSG MemoServ (see target)
        params = [draw(st.sampled_from(["SEND alice hello", "SEND bob hi there", "SEND nobody x",
                                        "SEND alice", "LIST", "READ NEW", "READ 1", "READ 9",
                                        "READ x", "DEL 1", "DEL ALL", "DEL", "help", "FROB",
                                        "SEND bob " + "x" * 301]))]
    elif kind == "HELP":
        params = [draw(st.one_of(st.sampled_from(["join", "KILL", "cs", "*", "cmodes"]), middle))]
    elif kind == "BATCH":
        bref = draw(st.sampled_from(BATCH_REFS))
        params = draw(st.sampled_from([
            ["+" + bref, "draft/multiline", draw(target)], ["-" + bref],
            ["+" + bref, "other/type", "#a"], ["+", "draft/multiline", "#a"], [bref],
        ]))
    elif kind == "ACCEPT":
        # Adds, removals (-nick) and lists (*), mixed in one comma list as clients may.
        entry = st.one_of(good_nick, good_nick.map(lambda n: "-" + n), nick,
                          st.sampled_from(["*", "-", "", "-*", "--alice"]))
        params = [",".join(draw(st.lists(entry, min_size=1, max_size=5)))]
    elif kind == "KNOCK":
        params = [draw(st.one_of(good_channel, channel_list, good_nick))]
        if draw(st.booleans()):
            params.append(_trailing(t))
    else:
        params = draw(st.lists(middle, max_size=3))
    # Sometimes drop trailing parameters: every handler must cope with too few.
    if params and draw(st.integers(min_value=0, max_value=7)) == 0:
        params = params[: draw(st.integers(min_value=0, max_value=len(params) - 1))]
    verb = kind if draw(st.integers(min_value=0, max_value=5)) else kind.lower()
    if kind == "BOGUS" and draw(st.booleans()):
        verb = draw(long_middle)
    return draw(tag_prefix()) + " ".join([verb, *params])


junk_line = st.one_of(
    st.text(st.characters(exclude_characters="\r\n"), max_size=60),
    st.sampled_from(
        [
            "",
            " ",
            ":",
            "@",
            "@ ",
            "@a",
            ":src",
            ":src ",
            "@k=v :src",
            "@;;; PING x",
            ":a :b PING",
            "PRIVMSG",
            "PRIVMSG :",
            "PRIVMSG #a",
            "JOIN ,,,",
            "MODE #a +",
            "KICK #a :",
            "TOPIC :",
            "NICK :",
            "USER a",
            "CAP",
            "CAP REQ",
            "\x00",
            "PING \x00",
            "PRIVMSG #a :a\rb",
            "\t",
            "\x7f",
        ]
    ),
)
junk_bytes = st.one_of(
    st.binary(max_size=80),
    st.sampled_from(
        [
            b"\xff\xfe PRIVMSG #a :x",
            b"PRIVMSG #a :\xc3",
            b"NICK \xe9",
            b"\xc0\xaf",
            b"\xed\xa0\x80",
            b"\r",
            b"\n",
            b"\r\r\n",
            b"\x00\n",
        ]
    ),
)


def long_line(size: int, tags: int = 0) -> bytes:
    """A PRIVMSG whose body (and optional tag section) has exactly the given byte sizes."""
    prefix = b""
    if tags:
        prefix = b"@+t=" + b"v" * max(tags - 6, 0) + b" "
    head = b"PRIVMSG #a :"
    return prefix + head + b"x" * max(size - len(head), 0)


boundary_line = st.builds(
    long_line,
    st.sampled_from([509, 510, 511, 512, 513, 600, 8703, 8704, 9000]),
    st.sampled_from([0, 0, 4094, 4095, 4100, 8191, 8192]),
)


@st.composite
def input_line(draw: st.DrawFn) -> bytes:
    """A line's bytes without the line ending: mostly commands, some junk."""
    choice = draw(st.integers(min_value=0, max_value=19))
    if choice < 15:
        return draw(command_line()).encode()
    if choice < 17:
        return draw(junk_line).encode("utf-8", "surrogatepass")
    if choice < 19:
        return draw(junk_bytes)
    return draw(boundary_line)


ending = st.sampled_from([b"\r\n", b"\r\n", b"\n", b"\r\n\r\n", b"", b"\r"])


@st.composite
def op_command(draw: st.DrawFn, channel_name: str) -> str:
    """What a channel operator does to ``channel_name``: modes, kicks, topics, invites."""
    kind = draw(st.sampled_from(["MODE", "MODE", "MODE", "KICK", "TOPIC", "INVITE"]))
    if kind == "MODE":
        args = draw(st.lists(mode_arg, max_size=5))
        words = ["MODE", channel_name, draw(modestring) or "+b", *args]
    elif kind == "KICK":
        words = ["KICK", channel_name, draw(good_nick), _trailing(draw(any_text))]
    elif kind == "TOPIC":
        words = ["TOPIC", channel_name, _trailing(draw(any_text))]
    else:
        words = ["INVITE", draw(st.one_of(good_nick, unique_nick)), channel_name]
    return draw(tag_prefix()) + " ".join(words)
