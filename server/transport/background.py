"""Run any backend on a thread of its own: for tests and embedding."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import replace

from server.config import ServerConfig


class BackgroundServer:
    """start() blocks until listening and returns the port; stop() shuts down gracefully.

    With ``config.tls_port`` set, ``tls_port`` is the bound TLS port after start().
    """

    def __init__(self, config: ServerConfig, backend: str) -> None:
        self.config = config
        self.backend = backend
        self.port = 0
        self.tls_port: int | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stopper: Callable[[], object] | None = None
        self.server: object = None  # the AsyncioServer or SelectServer, once started

    def start(self) -> int:
        target = self._run_select if self.backend == "select" else self._run_asyncio
        self._thread = threading.Thread(target=target, name=f"chat-{self.backend}", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("server did not start")
        if self._error is not None:
            raise self._error
        return self.port

    def _run_asyncio(self) -> None:
        from .asyncio_transport import AsyncioServer, new_loop

        loop = new_loop(self.backend)
        asyncio.set_event_loop(loop)
        server = AsyncioServer(self.config, loop)
        self.server = server
        stop = asyncio.Event()

        async def main() -> None:
            try:
                self.port = await server.start()
                self.tls_port = server.tls_port if self.config.tls_port is not None else None
            except BaseException as exc:
                self._error = exc
                self._ready.set()
                return
            self._stopper = lambda: loop.call_soon_threadsafe(stop.set)
            self._ready.set()
            await stop.wait()
            await server.stop()

        try:
            loop.run_until_complete(main())
        finally:
            loop.close()

    def _run_select(self) -> None:
        from .select_transport import SelectServer

        try:
            server = SelectServer(self.config)
            self.server = server
            self.port = server.listen()
            self.tls_port = server.tls_port if self.config.tls_port is not None else None
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._stopper = server.request_stop
        self._ready.set()
        server.serve_forever()

    def stop(self) -> None:
        if self._stopper is not None:
            self._stopper()
        if self._thread is not None:
            self._thread.join(15)


def ephemeral(config: ServerConfig) -> ServerConfig:
    """The same config on a free loopback port."""
    return replace(config, host="127.0.0.1", port=0)
