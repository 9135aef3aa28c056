"""The engine server: a TCP listener, one reader and one writer thread per connection (`connection.py`),
token auth.

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
import logging
import os
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

import dlatrack_engine
from dlatrack_engine.server.admission import MAX_CONNECTIONS, Admission
from dlatrack_engine.server.avatars import AvatarStore
from dlatrack_engine.server.budget import DEFAULT_LIMIT_BYTES, ByteBudget
from dlatrack_engine.server.certificate import EngineCertificate
from dlatrack_engine.server.connection import AUTH_TIMEOUT_S, Connection
from dlatrack_engine.server.connection_file import (
    claim_connection_file,
    remove_connection_file,
    write_connection_file,
)
from dlatrack_engine.server.jobqueue import JobManager
from dlatrack_engine.server.uploads import UploadLimits, UploadStore
from dlatrack_engine.server.work import build_runners
from dlatrack_engine.wire import protocol
from dlatrack_engine.wire.protocol import encode_frame, error_header
from dlatrack_engine.wire.tls_channel import server_context

log = logging.getLogger(__name__)

__all__ = ["MAX_CONNECTIONS", "Connection", "EngineServer"]


def _torch_threads() -> int | None:
    """torch's CPU thread count once torch is loaded (it is imported lazily), else what it will use."""
    torch = sys.modules.get("torch")
    if torch is not None:
        return int(torch.get_num_threads())
    value = os.environ.get("OMP_NUM_THREADS", "")
    return int(value) if value.isdigit() else None


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
            "buffered_bytes": self.buffers.used,  # frame bytes held for all connections (--max-buffered-mb)
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
