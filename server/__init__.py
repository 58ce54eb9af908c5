"""The chat IRC server: sans-IO core, transports, history, CLI."""

VERSION = "chat-0.1.0"
