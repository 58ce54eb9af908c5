"""`chat-client` entry point: a placeholder until the terminal client lands."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="chat-client",
        description="Terminal client for chat (not ready yet: use irssi or WeeChat meanwhile).",
    )
    parser.add_argument("host", help="server to connect to")
    parser.add_argument("--port", type=int, default=6667, help="server port (default 6667)")
    parser.parse_args(argv)
    print(
        "chat-client is not ready yet. Meanwhile connect with irssi "
        "(/connect HOST PORT) or WeeChat (/server add chat HOST/PORT).",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
