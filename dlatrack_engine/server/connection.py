"""One client connection of the engine server: a reader thread (TLS handshake, `hello` within a hard
deadline, then requests dispatched to `handlers.py`) and a writer thread draining a bounded outbox, so a
slow or vanished client is dropped instead of blocking the job worker that produces its events."""

from __future__ import annotations

import contextlib
import hmac
import logging
import queue
import socket
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from dlatrack_engine.server.handlers import HANDLERS
from dlatrack_engine.server.jobqueue import JobError
from dlatrack_engine.wire import protocol
from dlatrack_engine.wire.protocol import ProtocolError, encode_frame, error_header
from dlatrack_engine.wire.tls_channel import TLSSocket

if TYPE_CHECKING:
    from dlatrack_engine.server.server import EngineServer

log = logging.getLogger(__name__)

AUTH_TIMEOUT_S = 10.0  # a hard deadline for the whole `hello` frame, however slowly its bytes arrive
PRE_AUTH_MAX_BLOB = 64 << 10
PRE_AUTH_MAX_HEADER = 64 << 10
MAX_PENDING_FRAMES = 4096
MAX_PENDING_BYTES = 512 << 20  # a client this far behind (e.g. streamed textures) is dropped, not buffered
MAX_REQUEST_ID_CHARS = 128


def reply_id(header: Mapping[str, Any]) -> Any:
    """The request's `id`, echoed as `reply_to`: an integer (or a short string), never NaN or an object."""
    value = header.get("id")
    if value is None or (isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**63):
        return value
    if isinstance(value, str) and len(value) <= MAX_REQUEST_ID_CHARS:
        return value
    raise ProtocolError("malformed_header", f"request 'id' must be an integer, got {type(value).__name__}")


class Connection:
    """One client. `send_event` is called from any thread; frames are written by this connection's writer."""

    def __init__(self, server: EngineServer, sock: socket.socket, peer: Any) -> None:
        self.server = server
        self.sock: socket.socket | TLSSocket = sock
        self.peer = peer
        self.client_version: str | None = None
        self.auth_deadline = time.monotonic() + server.auth_timeout_s  # TLS handshake and `hello` together
        self._outbox: queue.Queue[bytes | None] = queue.Queue(MAX_PENDING_FRAMES)
        self._pending_bytes = 0
        self._pending_lock = threading.Lock()
        self._after_reply: list[dict[str, Any] | Callable[[], None]] = []
        self.closed = threading.Event()

    # -- output ----------------------------------------------------------------------------------------
    def _enqueue(self, header: Mapping[str, Any], blobs: Mapping[str, Any] | None = None) -> bool:
        if self.closed.is_set():
            return False
        try:
            frame = encode_frame(header, blobs)
        except ProtocolError as exc:
            log.error("could not encode a frame for %s: %s", self.peer, exc)
            return not self.closed.is_set()
        with self._pending_lock:
            # One frame may exceed the byte cap on its own (a large job_frames reply); a backlog may not.
            over = self._pending_bytes > 0 and self._pending_bytes + len(frame) > MAX_PENDING_BYTES
            if not over:
                try:
                    self._outbox.put_nowait(frame)
                    self._pending_bytes += len(frame)
                    return True
                except queue.Full:
                    pass
        log.warning("client %s is not reading its events; dropping the connection (its jobs continue)", self.peer)
        self.close()
        self._shutdown_socket()  # the writer may be blocked in sendall to a peer that no longer reads
        return False

    def send_event(self, header: dict[str, Any], blobs: Mapping[str, Any] | None = None) -> bool:
        return self._enqueue(header, blobs)

    def after_reply(self, item: dict[str, Any] | Callable[[], None]) -> None:
        """An event to send, or an action to run, once the reply being built is queued (`done` on attach,
        stopping the engine on `shutdown`)."""
        self._after_reply.append(item)

    def _writer(self) -> None:
        try:
            while True:
                frame = self._outbox.get()
                if frame is None:
                    break
                self.sock.sendall(frame)
                with self._pending_lock:
                    self._pending_bytes -= len(frame)
        except OSError as exc:
            log.info("client %s: send failed (%s); closing", self.peer, exc)
        finally:
            self.closed.set()
            self._shutdown_socket()  # also wakes the reader blocked in recv

    # -- input -----------------------------------------------------------------------------------------
    def serve(self) -> None:
        if not self._secure():
            self.closed.set()
            self.server.forget(self)
            self.sock.close()
            return
        writer = threading.Thread(target=self._writer, name=f"dlatrack-writer-{self.peer}", daemon=True)
        writer.start()
        try:
            if self._authenticate():
                self._loop()
        finally:
            self.close()
            self.server.jobs.detach(self)
            self.server.forget(self)
            writer.join(5.0)
            self.sock.close()

    def _secure(self) -> bool:
        """The TLS handshake, when the engine serves TLS; it counts against the `hello` deadline."""
        context = self.server.tls_context
        if context is None:
            return True
        try:
            self.sock = TLSSocket(self.sock, context, server_side=True, deadline=self.auth_deadline)
        except (OSError, TimeoutError) as exc:  # TLSError is an OSError (ConnectionError)
            log.warning("client %s: no TLS session (%s); closed", self.peer, exc)
            return False
        return True

    def _fail(self, error: ProtocolError, reply_to: Any = None) -> None:
        self._enqueue(error_header(error.code, error.message, reply_to))

    def evict(self) -> None:
        """Drop a connection that is still waiting to authenticate (its slot is needed by a newer one)."""
        self._fail(ProtocolError("auth_timeout", "dropped before 'hello': too many connections waiting to log in"))
        self.close()  # the writer sends the error, then shuts the socket down, which wakes the reader

    def _authenticate(self) -> bool:
        timeout = self.server.auth_timeout_s
        try:
            message = protocol.recv_message(
                self.sock,
                PRE_AUTH_MAX_BLOB,
                max_header_bytes=PRE_AUTH_MAX_HEADER,
                deadline=self.auth_deadline,
            )
            header = message.header
            request_id = reply_id(header)
        except TimeoutError:
            self._fail(ProtocolError("auth_timeout", f"no complete hello within {timeout:g} s"))
            return False
        except ProtocolError as exc:
            if not isinstance(exc, protocol.ConnectionClosed):
                self._fail(exc)
            return False
        except OSError:
            return False
        if header.get("op") != "hello":
            self._fail(
                ProtocolError(
                    "auth_required",
                    f"the first request must be 'hello' with the token, got {str(header.get('op'))[:40]!r}",
                ),
                request_id,
            )
            return False
        args = header.get("args") if isinstance(header.get("args"), dict) else {}
        token = args.get("token")
        if not isinstance(token, str) or not hmac.compare_digest(
            token.encode("utf-8", "surrogatepass"), self.server.token.encode()
        ):
            log.warning("client %s: rejected (wrong or missing token)", self.peer)
            self._fail(
                ProtocolError("auth_failed", "wrong or missing token (see the engine's connection file)"), request_id
            )
            return False
        self.client_version = str(args.get("client_version", ""))[:64]
        if not self.server.admission.authenticate(self):
            self._fail(
                ProtocolError(
                    "too_many_connections", f"all {self.server.admission.max_clients} client slots are in use"
                ),
                request_id,
            )
            return False
        self.sock.settimeout(None)
        self._enqueue({"type": "reply", "reply_to": request_id, "ok": True, **self.server.hello_info()})
        return True

    def _loop(self) -> None:
        while not self.closed.is_set():
            reservation = self.server.buffers.reservation()
            try:
                try:
                    message = protocol.recv_message(self.sock, self.server.max_frame_bytes, reserve=reservation)
                except ProtocolError as exc:
                    if isinstance(exc, protocol.ConnectionClosed):
                        return
                    self._fail(exc)
                    if exc.fatal:
                        return
                    continue
                except OSError:
                    return
                self._dispatch(message)
            finally:
                reservation.release()

    def _dispatch(self, message: protocol.Message) -> None:
        header = message.header
        try:
            request_id = reply_id(header)
        except ProtocolError as exc:
            self._fail(exc)
            return
        op = header.get("op")
        if not isinstance(op, str) or op not in HANDLERS:
            shown = str(op)[:40] if op is not None else "(missing 'op')"
            self._fail(ProtocolError("unknown_request", f"unknown op {shown!r}; known: {sorted(HANDLERS)}"), request_id)
            return
        args = header.get("args", {})
        if not isinstance(args, dict):
            self._fail(ProtocolError("bad_argument", f"{op}: 'args' must be an object"), request_id)
            return
        self._after_reply = []
        try:
            result, blobs = HANDLERS[op](self.server, self, args, message.blobs)
        except JobError as exc:
            self._fail(ProtocolError(exc.code, exc.message), request_id)
            return
        except Exception as exc:  # a handler bug must cost one request, not the engine
            log.exception("op %s from %s failed", op, self.peer)
            self._fail(ProtocolError("internal_error", f"{op}: {type(exc).__name__}: {exc}"), request_id)
            return
        self._enqueue({"type": "reply", "reply_to": request_id, "ok": True, **result}, blobs)
        for item in self._after_reply:
            if callable(item):
                item()
            else:
                self._enqueue(item)

    def close(self) -> None:
        """Stop accepting output; the writer drains what is queued (an error reply, say), then hangs up."""
        if self.closed.is_set():
            return
        self.closed.set()
        try:
            self._outbox.put_nowait(None)
        except queue.Full:  # the client stopped reading: nothing queued is worth waiting for
            self._shutdown_socket()

    def _shutdown_socket(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
