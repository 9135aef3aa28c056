"""The add-on's connection to the engine: socket (plain on this machine, pinned TLS otherwise), `hello`,
and a background reader thread that owns the socket's input (stdlib + numpy, no bpy, no torch).

Replies wake the request that is waiting for them; events (progress, frame, log, error, done) go to
`events()`, a `queue.Queue` that Blender's modal/timer pump drains on the main thread without ever blocking
on the network. Requests may be sent from any thread. Frames are built by `wire.protocol`.
"""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import logging
import queue
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from .wire import protocol
from .wire.tls_channel import TLSSocket, pinning_client_context

log = logging.getLogger(__name__)

CLIENT_VERSION = "dlatrack-addon/0.1.0"
EVENT_KINDS = ("progress", "frame", "log", "error", "done", "connection_lost")
_Self = TypeVar("_Self", bound="EngineChannel")


class EngineError(RuntimeError):
    """The engine answered a request with an error: `code` (machine-readable) and a message naming it."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"[{code}] {message}")
        self.code = code
        self.message = message


class EngineConnectionError(ConnectionError):
    """No engine at that address, the connection dropped, or a reply did not come in time."""


@dataclass
class Event:
    """One streamed event. `kind` is one of EVENT_KINDS; `header` is the full JSON header;
    `blobs` maps names to numpy arrays (float32/int32) or PNG bytes (e.g. a frame's `vertices [V,3]`)."""

    kind: str
    job_id: str | None
    header: dict[str, Any]
    blobs: dict[str, np.ndarray | bytes] = field(default_factory=dict)


class _Pending:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.message: protocol.Message | None = None
        self.error: BaseException | None = None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _connect(host: str, port: int, fingerprint: str | None, timeout: float) -> socket.socket | TLSSocket:
    """TCP, then TLS pinned to `fingerprint` when given; plain TCP only to this machine (the token is sent
    in the clear on it), so a remote host without a fingerprint is refused before anything is sent."""
    if not fingerprint and not is_loopback(host):
        raise EngineConnectionError(
            f"engine at {host}:{port}: no TLS fingerprint (connection file field 'tls_fingerprint'), and plain "
            "TCP is only used on this machine; start the engine with `dlatrack serve --remote` and use its file"
        )
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        raise EngineConnectionError(f"cannot connect to the engine at {host}:{port}: {exc}") from exc
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if not fingerprint:
        sock.settimeout(None)
        return sock
    try:
        channel = TLSSocket(sock, pinning_client_context(), server_side=False, deadline=time.monotonic() + timeout)
        channel.check_pin(fingerprint)
    except (OSError, TimeoutError) as exc:
        sock.close()
        raise EngineConnectionError(f"engine at {host}:{port}: {exc}") from exc
    channel.settimeout(None)
    return channel


class EngineChannel:
    """A connection to one engine: authenticates (`hello`) on construction; `close()` when done. With
    `fingerprint` (`sha256:<hex>`) the link is TLS and the engine's certificate must have it. The requests
    themselves are `client.EngineClient`'s."""

    def __init__(self, host: str, port: int, token: str, timeout: float = 60.0, connect_timeout: float = 5.0,
                 fingerprint: str | None = None) -> None:  # fmt: skip
        self.host, self.port, self.timeout = host, int(port), timeout
        self._sock = _connect(host, self.port, fingerprint, connect_timeout)
        self._send_lock = threading.Lock()
        self._pending: dict[int, _Pending] = {}
        self._pending_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._events: queue.Queue[Event] = queue.Queue()
        self._closed = threading.Event()
        self._reader = threading.Thread(target=self._read_loop, name="dlatrack-client-reader", daemon=True)
        self._reader.start()
        self.engine_info = self._request("hello", {"token": token, "client_version": CLIENT_VERSION})[0]

    # -- plumbing --------------------------------------------------------------------------------------
    def _read_loop(self) -> None:
        reason = "engine closed the connection"
        try:
            while True:
                message = protocol.recv_message(self._sock, 0xFFFFFFFF)
                header = message.header
                if header.get("type") == "reply":
                    self._deliver(header.get("reply_to"), message)
                elif header.get("type") == "event":
                    kind = str(header.get("kind"))
                    self._events.put(Event(kind, header.get("job_id"), header, message.blobs))
                else:
                    log.warning("engine sent a frame of unknown type %r; ignored", header.get("type"))
        except protocol.ProtocolError as exc:
            if not isinstance(exc, protocol.ConnectionClosed):
                reason = f"protocol error from the engine: {exc.message}"
        except OSError as exc:
            if not self._closed.is_set():
                reason = f"connection to the engine lost: {exc}"
        finally:
            self._shutdown(reason)

    def _deliver(self, reply_to: Any, message: protocol.Message) -> None:
        with self._pending_lock:
            pending = self._pending.pop(reply_to, None) if isinstance(reply_to, int) else None
        if pending is None:
            # An error the engine could not attribute to a request (e.g. an undecodable frame).
            error = message.header.get("error") or {}
            self._events.put(Event("error", None, {"kind": "error", "error": error}, {}))
            return
        pending.message = message
        pending.done.set()

    def _shutdown(self, reason: str) -> None:
        first = not self._closed.is_set()
        self._closed.set()
        with self._pending_lock:
            pending, self._pending = list(self._pending.values()), {}
        for item in pending:
            item.error = EngineConnectionError(reason)
            item.done.set()
        if first or pending:
            self._events.put(Event("connection_lost", None, {"kind": "connection_lost", "message": reason}))

    def _request(
        self,
        op: str,
        args: Mapping[str, Any] | None = None,
        blobs: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Send one request and wait for its reply -> (reply header, reply blobs); raises EngineError."""
        if self._closed.is_set():
            raise EngineConnectionError(f"{op}: the connection to the engine is closed")
        request_id = next(self._ids)
        pending = _Pending()
        with self._pending_lock:
            self._pending[request_id] = pending
        frame = protocol.encode_frame({"op": op, "id": request_id, "args": dict(args or {})}, blobs)
        try:
            with self._send_lock:
                self._sock.sendall(frame)
        except OSError as exc:
            with self._pending_lock:
                self._pending.pop(request_id, None)
            raise EngineConnectionError(f"{op}: sending to the engine failed: {exc}") from exc
        if not pending.done.wait(self.timeout if timeout is None else timeout):
            with self._pending_lock:
                self._pending.pop(request_id, None)
            raise EngineConnectionError(f"{op}: no reply from the engine within {self.timeout:.0f} s")
        if pending.error is not None:
            raise pending.error
        assert pending.message is not None
        header = pending.message.header
        if not header.get("ok", False):
            error = header.get("error") or {}
            raise EngineError(str(error.get("code", "unknown")), str(error.get("message", "")))
        for key in ("type", "reply_to", "ok"):
            header.pop(key, None)
        return header, pending.message.blobs

    @property
    def connected(self) -> bool:
        return not self._closed.is_set()

    def events(self) -> queue.Queue[Event]:
        """Events of jobs this connection submitted or attached to, plus `connection_lost` at the end."""
        return self._events

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        self._reader.join(2.0)

    def __enter__(self: _Self) -> _Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
