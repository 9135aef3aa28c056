"""A byte budget shared by every connection's receive buffers.

Frames are buffered as their bytes arrive, never up front, and every buffered byte is charged here until
the request it belongs to has been handled. A peer that would push the total past the limit gets
`server_busy` and is disconnected, instead of the engine committing memory for data that may never come.
"""

from __future__ import annotations

import threading

from dlatrack_engine.wire.protocol import ProtocolError

DEFAULT_LIMIT_BYTES = 1 << 30


class ByteBudget:
    """Thread-safe counter of buffered bytes with a hard limit."""

    def __init__(self, limit: int = DEFAULT_LIMIT_BYTES) -> None:
        self.limit = limit
        self.used = 0
        self._lock = threading.Lock()

    def reservation(self) -> Reservation:
        return Reservation(self)

    def _take(self, count: int) -> None:
        with self._lock:
            if self.used + count > self.limit:
                raise ProtocolError(
                    "server_busy",
                    f"the engine is already buffering {self.used >> 20} MiB of requests (limit "
                    f"{self.limit >> 20} MiB across connections); send the frame again later",
                    fatal=True,
                )
            self.used += count

    def _give(self, count: int) -> None:
        with self._lock:
            self.used -= count


class Reservation:
    """The bytes one connection holds for the frame it is reading; `release()` once the frame is handled."""

    def __init__(self, budget: ByteBudget) -> None:
        self.budget = budget
        self.held = 0

    def __call__(self, count: int) -> None:
        self.budget._take(count)
        self.held += count

    def release(self) -> None:
        if self.held:
            self.budget._give(self.held)
            self.held = 0
