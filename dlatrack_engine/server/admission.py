"""Connection slots: authenticated clients and peers still owing a `hello` are counted apart.

A peer that never authenticates must not be able to keep a real client out (slowloris): unauthenticated
connections get their own, smaller pool, each has a hard deadline for its `hello`, and when the pool is
full the oldest waiting peer is dropped to make room. Only authenticated connections count against the
client limit, and they can only be opened by someone holding the token.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Generic, TypeVar

T = TypeVar("T")

MAX_CONNECTIONS = 64  # authenticated clients
MAX_PENDING = 32  # connections that have not said `hello` yet


class Admission(Generic[T]):
    """Thread-safe bookkeeping of pending and authenticated connections (no I/O: callers act on results)."""

    def __init__(self, max_clients: int = MAX_CONNECTIONS, max_pending: int = MAX_PENDING) -> None:
        self.max_clients, self.max_pending = max_clients, max_pending
        self._pending: OrderedDict[T, None] = OrderedDict()  # oldest first
        self._clients: set[T] = set()
        self._lock = threading.Lock()

    def admit(self, connection: T) -> tuple[bool, T | None]:
        """A new connection: (accepted, pending connection to evict to make room or None).

        Refused only when the authenticated clients fill every slot: a waiting peer cannot cause that."""
        with self._lock:
            if len(self._clients) >= self.max_clients:
                return False, None
            evicted = None
            if len(self._pending) >= self.max_pending:
                evicted, _ = self._pending.popitem(last=False)
            self._pending[connection] = None
            return True, evicted

    def authenticate(self, connection: T) -> bool:
        """Move a connection from pending to clients; False when every client slot is taken (or it was evicted)."""
        with self._lock:
            if connection not in self._pending or len(self._clients) >= self.max_clients:
                self._pending.pop(connection, None)
                return False
            del self._pending[connection]
            self._clients.add(connection)
            return True

    def release(self, connection: T) -> None:
        with self._lock:
            self._pending.pop(connection, None)
            self._clients.discard(connection)

    def counts(self) -> tuple[int, int]:
        """(authenticated, pending)."""
        with self._lock:
            return len(self._clients), len(self._pending)

    def all(self) -> list[T]:
        with self._lock:
            return [*self._clients, *self._pending]
