"""chat terminal client: sans-IO session, asyncio connection, config and CLI (see README.md)."""
