"""What the HTTP-level fakes share: a loopback server's lifecycle."""

from __future__ import annotations

from typing import Any, Self

from gnnrl.testing.loopback import LoopbackServer


class LoopbackFake:
    """Base of the fakes: ``start()`` (subclass) / ``stop()`` / context manager / port."""

    _server: LoopbackServer | None = None

    def start(self) -> Self:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return int(self._server.server_address[1])
