"""``python -m client``: the same as ``chat-client`` (``client.cli:main``)."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
