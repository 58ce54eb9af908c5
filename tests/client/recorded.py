# ruff: noqa: E501
"""Server lines recorded from real servers (our chat server and ngIRCd 26.1)."""

from __future__ import annotations

# Our server: CAP LS 302 ... CAP END, then JOIN #t and NAMES.
CHAT_BURST = r"""
:test.server CAP * LS :away-notify batch cap-notify draft/chathistory echo-message labeled-response message-tags multi-prefix server-time setname userhost-in-names
:test.server CAP alice ACK :server-time message-tags echo-message batch labeled-response draft/chathistory multi-prefix away-notify userhost-in-names
:test.server 001 alice :Welcome to the TestNet IRC Network alice!~a@127.0.0.1
:test.server 002 alice :Your host is test.server, running version chat-0.1.0
:test.server 003 alice :This server was created 2026-11-21T06:58:41.176Z
:test.server 004 alice test.server chat-0.1.0 io bklimnostv bklov
:test.server 005 alice AWAYLEN=390 CASEMAPPING=rfc1459 CHANLIMIT=#&:50 CHANMODES=b,k,l,imnst CHANNELLEN=50 CHANTYPES=#& ELIST=U KICKLEN=390 MAXLIST=b:100 MODES=4 NETWORK=TestNet NICKLEN=30 :are supported by this server
:test.server 005 alice PREFIX=(ov)@+ STATUSMSG=@+ TARGMAX=PRIVMSG:4,NOTICE:4,TAGMSG:4,JOIN:,PART:,KICK:4,NAMES:1,WHOIS:1,ISON:,USERHOST:5 TOPICLEN=390 USERLEN=10 UTF8ONLY CHATHISTORY=100 MSGREFTYPES=timestamp,msgid :are supported by this server
:test.server 251 alice :There are 1 users and 0 invisible on 1 servers
:test.server 252 alice 0 :operator(s) online
:test.server 253 alice 0 :unknown connection(s)
:test.server 254 alice 0 :channels formed
:test.server 255 alice :I have 1 clients and 0 servers
:test.server 265 alice 1 1 :Current local users 1, max 1
:test.server 266 alice 1 1 :Current global users 1, max 1
:test.server 422 alice :MOTD File is missing
""".strip().splitlines()

CHAT_JOIN = r"""
@time=2026-11-21T06:58:42.076Z;msgid=06GZSSKD3G0012WN :alice!~a@127.0.0.1 JOIN #t
:test.server 353 alice = #t @alice!~a@127.0.0.1
:test.server 366 alice #t :End of /NAMES list
""".strip().splitlines()

# ngIRCd: no IRCv3 beyond multi-prefix; CAP NAK for what it lacks.
NGIRCD_BURST = r"""
:test.local CAP * LS :multi-prefix
:test.local CAP alice ACK :multi-prefix
:test.local 001 alice :Welcome to the Internet Relay Network alice!~a@127.0.0.1
:test.local 002 alice :Your host is test.local, running version ngircd-26.1 (x86_64/pc/linux-gnu)
:test.local 003 alice :This server has been started Sat Nov 21 2026 at 06:58:44 (UTC)
:test.local 004 alice test.local ngircd-26.1 abBcCFiIoqrRswx abehiIklmMnoOPqQrRstvVz
:test.local 005 alice RFC2812 IRCD=ngIRCd CHARSET=UTF-8 CASEMAPPING=ascii PREFIX=(qaohv)~&@%+ CHANTYPES=#&+ CHANMODES=beI,k,l,imMnOPQRstVz CHANLIMIT=#&+:10 :are supported on this server
:test.local 005 alice CHANNELLEN=50 NICKLEN=9 TOPICLEN=490 AWAYLEN=127 KICKLEN=400 MODES=5 MAXLIST=beI:50 EXCEPTS=e INVEX=I PENALTY FNC :are supported on this server
:test.local 251 alice :There are 1 users and 0 services on 1 servers
:test.local 254 alice 1 :channels formed
:test.local 255 alice :I have 1 users, 0 services and 0 servers
:test.local 265 alice 1 1 :Current local users: 1, Max: 1
:test.local 266 alice 1 1 :Current global users: 1, Max: 1
:test.local 250 alice :Highest connection count: 1 (2 connections received)
:test.local 375 alice :- test.local message of the day
:test.local 372 alice :- interop test server
:test.local 376 alice :End of MOTD command
""".strip().splitlines()

NGIRCD_JOIN = r"""
:alice!~a@127.0.0.1 JOIN :#t
:test.local 353 alice = #t :@alice
:test.local 366 alice #t :End of NAMES list
""".strip().splitlines()

# A server without any CAP support at all (pre-IRCv3): CAP is an unknown command.
NO_CAP_BURST = r"""
:old.server 421 * CAP :Unknown command
:old.server 001 alice :Welcome alice
:old.server 005 alice PREFIX=(ov)@+ CHANTYPES=# :are supported
:old.server 376 alice :End of MOTD
""".strip().splitlines()
