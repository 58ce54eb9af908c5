"""`chat-server --check`: is a server answering on its IRC port? (Docker HEALTHCHECK)."""

from __future__ import annotations

import socket
import time

from server.config import ServerConfig

CHECK_TOKEN = "chat-health"


def check(config: ServerConfig, timeout: float = 3.0) -> tuple[bool, str]:
    """Connect, send PING (allowed before registration), expect the PONG."""
    host = "127.0.0.1" if config.host in ("0.0.0.0", "", "::") else config.host
    deadline = time.monotonic() + timeout
    try:
        with socket.create_connection((host, config.port), timeout=timeout) as sock:
            sock.sendall(f"PING :{CHECK_TOKEN}\r\n".encode())
            data = b""
            while b"\n" not in data or CHECK_TOKEN.encode() not in data:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False, "no PONG in time"
                sock.settimeout(left)
                chunk = sock.recv(4096)
                if not chunk:
                    return False, "connection closed before PONG"
                data += chunk
                if len(data) > 65536:
                    return False, "unexpected reply"
            sock.sendall(b"QUIT :health check\r\n")
    except OSError as exc:
        return False, f"{host}:{config.port}: {exc.strerror or exc}"
    if b"PONG" not in data:
        return False, "unexpected reply"
    return True, f"{host}:{config.port} answered"
