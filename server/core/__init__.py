"""Sans-IO server core: (connection id, bytes) in, queued output and effects out."""

from .core import ServerCore

__all__ = ["ServerCore"]
