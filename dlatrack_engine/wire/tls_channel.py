"""TLS over a connected TCP socket, for one reader thread and one writer thread at a time.

Both ends of the protocol read on one thread and write on another. OpenSSL does not allow one `SSL`
object to be used by two threads at once, and `ssl.SSLSocket` does not lock it, so the record layer runs
on memory BIOs here: the raw socket is read and written outside any lock, and encryption and decryption
take turns under one lock. The object offers what `wire.protocol` and the server use of a socket:
`recv_into`, `sendall`, `settimeout`, `shutdown`, `close`.

The engine's certificate is self-signed; a client pins it by the SHA-256 of its DER bytes, written in the
engine's connection file (`fingerprint`, docs/security.md): no certificate authority, no host names.
Stdlib only (the add-on reaches this module through its `io/wire` symlink).
"""

from __future__ import annotations

import hashlib
import hmac
import socket
import ssl
import threading
import time

FINGERPRINT_PREFIX = "sha256:"
_WRITE_CHUNK = 1 << 20  # plaintext encrypted per turn: the lock is never held for long
_RECV_CHUNK = 1 << 16


class TLSError(ConnectionError):
    """The TLS handshake failed, or the peer's certificate is not the pinned one."""


def fingerprint(der: bytes) -> str:
    """`sha256:<hex>` of a DER certificate: what a connection file pins."""
    return FINGERPRINT_PREFIX + hashlib.sha256(der).hexdigest()


def server_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    return context


def pinning_client_context() -> ssl.SSLContext:
    """No CA and no host name check: the peer is trusted only through the pinned fingerprint."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class TLSSocket:
    """A TLS session over `sock` (already connected); the handshake runs in the constructor."""

    def __init__(
        self, sock: socket.socket, context: ssl.SSLContext, server_side: bool, deadline: float | None = None
    ) -> None:
        self._raw = sock
        self._incoming, self._outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._incoming, self._outgoing, server_side=server_side)
        self._lock = threading.Lock()  # the SSL object and both BIOs
        self._send_lock = threading.Lock()  # the order of records on the wire
        try:
            self._handshake(deadline)
        except ssl.SSLError as exc:
            raise TLSError(f"TLS handshake failed: {exc.reason or exc}") from exc

    def _handshake(self, deadline: float | None) -> None:
        while True:
            try:
                with self._lock:
                    self._tls.do_handshake()
                self._flush()
                return
            except ssl.SSLWantReadError:
                self._flush()
                if deadline is not None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise TimeoutError("TLS handshake did not finish in time") from None
                    self._raw.settimeout(remaining)
                data = self._raw.recv(_RECV_CHUNK)
                if not data:
                    raise TLSError("the peer closed the connection during the TLS handshake") from None
                self._incoming.write(data)

    def peer_fingerprint(self) -> str:
        der = self._tls.getpeercert(binary_form=True)
        if not der:
            raise TLSError("the peer sent no certificate")
        return fingerprint(der)

    def check_pin(self, expected: str) -> None:
        """Raise TLSError unless the peer's certificate has the pinned fingerprint (compared in constant time)."""
        actual = self.peer_fingerprint()
        if not hmac.compare_digest(actual.encode(), expected.strip().lower().encode()):
            raise TLSError(
                f"the engine's TLS certificate is {actual}, but the connection file pins {expected}: "
                "this is not the engine that wrote the file (or something sits in between); nothing was sent"
            )

    def _flush(self) -> None:
        with self._send_lock:
            with self._lock:
                data = self._outgoing.read()
            if data:
                self._raw.sendall(data)

    # -- the socket interface the protocol uses --------------------------------------------------------
    def recv_into(self, buffer: bytearray | memoryview, nbytes: int = 0) -> int:
        nbytes = nbytes or len(buffer)
        while True:
            with self._lock:
                try:
                    data = self._tls.read(nbytes)
                except ssl.SSLWantReadError:
                    data = None
                except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                    return 0
                except ssl.SSLError as exc:
                    raise ConnectionError(f"TLS error: {exc.reason or exc}") from exc
                pending = self._outgoing.pending
            if pending:
                self._flush()
            if data:
                memoryview(buffer)[: len(data)] = data
                return len(data)
            chunk = self._raw.recv(_RECV_CHUNK)
            if not chunk:
                return 0
            self._incoming.write(chunk)

    def sendall(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data)
        with self._send_lock:
            for start in range(0, len(view), _WRITE_CHUNK):
                with self._lock:
                    self._tls.write(view[start : start + _WRITE_CHUNK])
                    records = self._outgoing.read()
                self._raw.sendall(records)

    def settimeout(self, value: float | None) -> None:
        self._raw.settimeout(value)

    def setsockopt(self, *args: int) -> None:
        self._raw.setsockopt(*args)

    def shutdown(self, how: int) -> None:
        self._raw.shutdown(how)

    def close(self) -> None:
        self._raw.close()
