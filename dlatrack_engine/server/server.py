"""The engine server: a TCP listener, one reader and one writer thread per connection, token auth.

Each connection's first frame must be `hello` with the token (compared in constant time), within a hard
deadline; until then the header and blob caps are tiny, and such peers have their own pool of slots
(`admission.py`), so an unauthenticated peer can neither make the engine buffer much nor keep a real client
out. After `hello`, frames are buffered as their bytes arrive, charged to a budget shared by all
connections (`budget.py`). Replies and events leave
through a per-connection queue drained by a writer thread, so a slow or vanished client never blocks the
job worker that produces events — it is dropped instead, and its job carries on.

An engine serving remote clients (`remote=True`) speaks TLS only (`wire.tls_channel`, its certificate's
fingerprint in the connection file), within the same `hello` deadline, and takes no client paths
(`remote_inputs.py`).
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
from dlatrack_engine.server.admission import MAX_CONNECTIONS, Admission
from dlatrack_engine.server.avatars import AvatarStore
from dlatrack_engine.server.budget import DEFAULT_LIMIT_BYTES, ByteBudget
from dlatrack_engine.server.certificate import EngineCertificate
from dlatrack_engine.server.connection_file import (
    claim_connection_file,
    remove_connection_file,
    write_connection_file,
)
from dlatrack_engine.server.handlers import HANDLERS
from dlatrack_engine.server.jobqueue import JobError, JobManager
from dlatrack_engine.server.uploads import UploadLimits, UploadStore
from dlatrack_engine.server.work import build_runners
from dlatrack_engine.wire import protocol
from dlatrack_engine.wire.protocol import ProtocolError, encode_frame, error_header
from dlatrack_engine.wire.tls_channel import TLSSocket, server_context

log = logging.getLogger(__name__)

AUTH_TIMEOUT_S = 10.0  # a hard deadline for the whole `hello` frame, however slowly its bytes arrive
PRE_AUTH_MAX_BLOB = 64 << 10
PRE_AUTH_MAX_HEADER = 64 << 10
MAX_PENDING_FRAMES = 4096
MAX_PENDING_BYTES = 512 << 20  # a client this far behind (e.g. streamed textures) is dropped, not buffered
MAX_REQUEST_ID_CHARS = 128
__all__ = ["MAX_CONNECTIONS", "Connection", "EngineServer"]


def reply_id(header: Mapping[str, Any]) -> Any:
    """The request's `id`, echoed as `reply_to`: an integer (or a short string), never NaN or an object."""
    value = header.get("id")
    if value is None or (isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**63):
        return value
    if isinstance(value, str) and len(value) <= MAX_REQUEST_ID_CHARS:
        return value
    raise ProtocolError("malformed_header", f"request 'id' must be an integer, got {type(value).__name__}")


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
        auth_timeout_s: float = AUTH_TIMEOUT_S,
        max_buffered_bytes: int = DEFAULT_LIMIT_BYTES,
        certificate: EngineCertificate | None = None,
        upload_limits: UploadLimits | None = None,
    ) -> None:
        """`certificate`: serve TLS with it, and serve remote clients (no client paths, uploads only)."""
        self.host, self.port, self.token = host, port, token
        self.certificate = certificate
        self.remote = certificate is not None
        self.tls_context = (
            server_context(str(certificate.cert_file), str(certificate.key_file)) if certificate else None
        )
        self.uploads = UploadStore(state_dir / "uploads", upload_limits)
        self.state_dir, self.connection_file = state_dir, connection_file
        self.device_name = device
        self.max_frame_bytes = max_frame_bytes
        self.auth_timeout_s = auth_timeout_s
        self.buffers = ByteBudget(max_buffered_bytes)
        self.avatars = AvatarStore(device)
        self.jobs = JobManager(state_dir, build_runners(self.avatars.load), dlatrack_engine.__version__)
        self.admission: Admission[Connection] = Admission()
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
        connections, pending = self.admission.counts()
        return {
            **self.hello_info(),
            "uptime_s": time.time() - self.started,
            "connections": connections,
            "unauthenticated_connections": pending,
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
            "remote": self.remote,
            "tls_fingerprint": self.certificate.fingerprint if self.certificate else None,
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
            accepted, evicted = self.admission.admit(connection)
            if not accepted:
                limit = self.admission.max_clients
                with contextlib.suppress(OSError):
                    sock.setblocking(False)  # a small frame into an empty buffer: never blocks the accept loop
                    sock.send(encode_frame(error_header("too_many_connections", f"all {limit} client slots in use")))
                sock.close()
                continue
            if evicted is not None:
                log.warning("too many connections waiting to authenticate: dropping %s", evicted.peer)
                evicted.evict()
            threading.Thread(target=connection.serve, name=f"dlatrack-conn-{peer[1]}", daemon=True).start()

    def forget(self, connection: Connection) -> None:
        self.admission.release(connection)

    def request_stop(self) -> None:
        self._stop.set()

    def shutdown(self) -> None:
        self._stop.set()
        remove_connection_file(self.connection_file, self.token)
        if self.listener is not None:
            self.listener.close()
        self.jobs.stop()
        for connection in self.admission.all():
            connection.close()
        deadline = time.monotonic() + 2.0  # let writers flush the last replies (e.g. to `shutdown`)
        while time.monotonic() < deadline:
            if self.admission.counts() == (0, 0):
                break
            time.sleep(0.02)
        log.info("dlatrack engine stopped")
