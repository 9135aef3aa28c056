"""The engine server: a TCP listener, one reader and one writer thread per connection, token auth.

Each connection's first frame must be `hello` with the token (compared in constant time); until then the
blob cap is tiny so an unauthenticated peer cannot make the engine buffer much. Replies and events leave
through a per-connection queue drained by a writer thread, so a slow or vanished client never blocks the
job worker that produces events — it is dropped instead, and its job carries on.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import os
import queue
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import dlatrack_engine
from dlatrack_engine.server.avatars import AvatarStore
from dlatrack_engine.server.connection_file import (
    claim_connection_file,
    remove_connection_file,
    write_connection_file,
)
from dlatrack_engine.server.handlers import HANDLERS
from dlatrack_engine.server.jobqueue import JobError, JobManager
from dlatrack_engine.server.work import build_runners
from dlatrack_engine.wire import protocol
from dlatrack_engine.wire.protocol import ProtocolError, encode_frame, error_header

log = logging.getLogger(__name__)

AUTH_TIMEOUT_S = 10.0
PRE_AUTH_MAX_BLOB = 64 << 10
MAX_PENDING_FRAMES = 4096
MAX_PENDING_BYTES = 512 << 20  # a client this far behind (e.g. streamed textures) is dropped, not buffered
MAX_CONNECTIONS = 64


def _torch_threads() -> int | None:
    """torch's CPU thread count once torch is loaded (it is imported lazily), else what it will use."""
    torch = sys.modules.get("torch")
    if torch is not None:
        return int(torch.get_num_threads())
    value = os.environ.get("OMP_NUM_THREADS", "")
    return int(value) if value.isdigit() else None


class Connection:
    """One client. `send_event` is called from any thread; frames are written by this connection's writer."""

    def __init__(self, server: EngineServer, sock: socket.socket, peer: Any) -> None:
        self.server = server
        self.sock = sock
        self.peer = peer
        self.client_version: str | None = None
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

    def _fail(self, error: ProtocolError, reply_to: Any = None) -> None:
        self._enqueue(error_header(error.code, error.message, reply_to))

    def _authenticate(self) -> bool:
        self.sock.settimeout(AUTH_TIMEOUT_S)
        try:
            message = protocol.recv_message(self.sock, PRE_AUTH_MAX_BLOB)
        except TimeoutError:
            self._fail(ProtocolError("auth_timeout", f"no hello within {AUTH_TIMEOUT_S:.0f} s"))
            return False
        except ProtocolError as exc:
            if not isinstance(exc, protocol.ConnectionClosed):
                self._fail(exc)
            return False
        except OSError:
            return False
        header = message.header
        request_id = header.get("id")
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
        if not isinstance(token, str) or not hmac.compare_digest(token.encode(), self.server.token.encode()):
            log.warning("client %s: rejected (wrong or missing token)", self.peer)
            self._fail(
                ProtocolError("auth_failed", "wrong or missing token (see the engine's connection file)"), request_id
            )
            return False
        self.client_version = str(args.get("client_version", ""))[:64]
        self.sock.settimeout(None)
        self._enqueue({"type": "reply", "reply_to": request_id, "ok": True, **self.server.hello_info()})
        return True

    def _loop(self) -> None:
        while not self.closed.is_set():
            try:
                message = protocol.recv_message(self.sock, self.server.max_frame_bytes)
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

    def _dispatch(self, message: protocol.Message) -> None:
        header = message.header
        request_id = header.get("id")
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


class EngineServer:
    """The engine process's server object: avatars, jobs, connections and the listening socket."""

    def __init__(
        self,
        host: str,
        port: int,
        token: str,
        state_dir: Path,
        connection_file: Path,
        device: str | None = None,
        max_frame_bytes: int = protocol.DEFAULT_MAX_BLOB_BYTES,
    ) -> None:
        self.host, self.port, self.token = host, port, token
        self.state_dir, self.connection_file = state_dir, connection_file
        self.device_name = device
        self.max_frame_bytes = max_frame_bytes
        self.avatars = AvatarStore(device)
        self.jobs = JobManager(state_dir, build_runners(self.avatars.load), dlatrack_engine.__version__)
        self._connections: set[Connection] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._device_label: str | None = None
        self.started = time.time()
        self.listener: socket.socket | None = None

    def device_label(self) -> str:
        if self._device_label is None and self.device_name == "cpu":
            self._device_label = "cpu"  # known without importing torch: start-up stays fast
        if self._device_label is None:
            from dlatrack_engine.device import pick_device

            self._device_label = str(pick_device(self.device_name))
        return self._device_label

    def hello_info(self) -> dict[str, Any]:
        return {
            "engine_version": dlatrack_engine.__version__,
            "protocol_version": protocol.PROTOCOL_VERSION,
            "device": self.device_label(),
            "pid": os.getpid(),
        }

    def status(self) -> dict[str, Any]:
        with self._lock:
            connections = len(self._connections)
        return {
            **self.hello_info(),
            "uptime_s": time.time() - self.started,
            "connections": connections,
            "avatars": self.avatars.list(),
            "jobs": self.jobs.jobs(),
            "current_job": self.jobs.current,
            "threads": _torch_threads(),
        }

    def bind(self) -> tuple[str, int]:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(16)
        listener.settimeout(0.5)  # wake up to notice a stop request
        self.listener = listener
        self.port = listener.getsockname()[1]
        return self.host, self.port

    def connection_info(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "port": self.port,
            "token": self.token,
            **self.hello_info(),
            "state_dir": str(self.state_dir),
            "hostname": socket.gethostname(),  # the pid only means something on this machine
        }

    def serve_forever(self) -> None:
        """Bind, publish the connection file, resume interrupted jobs, accept until stopped; clean up."""
        claim_connection_file(self.connection_file)
        self.bind()
        resumed = self.jobs.resume_interrupted()
        if resumed:
            log.info("resuming %d interrupted job(s): %s", len(resumed), ", ".join(resumed))
        self.jobs.start()
        write_connection_file(self.connection_file, self.connection_info())
        log.info(
            "dlatrack engine %s listening on %s:%d (connection file %s)",
            dlatrack_engine.__version__,
            self.host,
            self.port,
            self.connection_file,
        )
        try:
            self._accept_loop()
        finally:
            self.shutdown()

    def _accept_loop(self) -> None:
        assert self.listener is not None
        while not self._stop.is_set():
            try:
                sock, peer = self.listener.accept()
            except TimeoutError:
                continue
            except OSError as exc:
                if self._stop.is_set():
                    break
                log.warning("accept failed: %s", exc)
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            connection = Connection(self, sock, f"{peer[0]}:{peer[1]}")
            with self._lock:
                if len(self._connections) >= MAX_CONNECTIONS:
                    with contextlib.suppress(OSError):
                        sock.settimeout(1.0)
                        sock.sendall(encode_frame(error_header("too_many_connections", f"limit is {MAX_CONNECTIONS}")))
                    sock.close()
                    continue
                self._connections.add(connection)
            threading.Thread(target=connection.serve, name=f"dlatrack-conn-{peer[1]}", daemon=True).start()

    def forget(self, connection: Connection) -> None:
        with self._lock:
            self._connections.discard(connection)

    def request_stop(self) -> None:
        self._stop.set()

    def shutdown(self) -> None:
        self._stop.set()
        remove_connection_file(self.connection_file, self.token)
        if self.listener is not None:
            self.listener.close()
        self.jobs.stop()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            connection.close()
        deadline = time.monotonic() + 2.0  # let writers flush the last replies (e.g. to `shutdown`)
        while time.monotonic() < deadline:
            with self._lock:
                if not self._connections:
                    break
            time.sleep(0.02)
        log.info("dlatrack engine stopped")
