"""Issue 19, classes 1 and 7: peers that hold connections or announce data they never send, against a
real engine subprocess. The engine must keep serving its real client and must not commit memory early."""

from __future__ import annotations

import json
import select
import socket
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from conftest import Engine
from test_server import raw_connect, raw_hello

from dlatrack_engine.server.admission import MAX_PENDING
from dlatrack_engine.server.server import MAX_CONNECTIONS
from dlatrack_engine.wire import protocol


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) << 10
    raise AssertionError("no VmRSS")


def test_unauthenticated_peers_cannot_lock_out_the_client(engine: Engine, client_mod: ModuleType) -> None:
    """Slowloris: more silent peers than there are slots, each one byte into its hello. Before the fix they
    held every slot and the real client got `too_many_connections`."""
    peers: list[socket.socket] = []
    try:
        for _ in range(MAX_CONNECTIONS + 16):
            sock = raw_connect(engine)
            sock.sendall(b"D")  # the first byte of a prefix, then nothing
            peers.append(sock)
        with engine.client(client_mod) as client:
            status = client.status()
            assert status["connections"] == 1
            assert status["unauthenticated_connections"] <= MAX_PENDING
        # The oldest waiting peers were dropped, with a reason, to make room.
        readable, _, _ = select.select(peers[:8], [], [], 10.0)
        assert readable
        assert protocol.recv_message(readable[0]).header["error"]["code"] == "auth_timeout"
    finally:
        for sock in peers:
            sock.close()


def test_login_deadline_holds_however_slowly_bytes_arrive(
    start_engine: Callable[..., Engine], client_mod: ModuleType
) -> None:
    """The hello must be complete within the deadline; a byte now and then no longer resets the clock."""
    engine = start_engine(extra=("--auth-timeout", "1"))
    token = json.loads(engine.connection_file.read_text())["token"]
    frame = protocol.encode_frame({"op": "hello", "id": 1, "args": {"token": token}})
    sock = raw_connect(engine)
    try:
        for byte in frame[:-1]:  # about 0.25 s a byte: the whole frame would take ~25 s
            readable, _, _ = select.select([sock], [], [], 0.25)
            if readable:
                break
            sock.sendall(bytes([byte]))
        else:
            raise AssertionError("the engine waited for the whole trickled hello")
        assert protocol.recv_message(sock).header["error"]["code"] == "auth_timeout"
    finally:
        sock.close()
    with engine.client(client_mod) as client:
        assert client.status()["connections"] == 1


def _announce(sock: socket.socket, blob_bytes: int, status_id: int = 2) -> None:
    """A `status` request whose prefix and header announce one bytes blob of `blob_bytes`; no blob sent."""
    header = json.dumps(
        {"op": "status", "id": status_id, "blobs": [{"name": "pad", "kind": "bytes", "nbytes": blob_bytes}]}
    ).encode()
    sock.sendall(protocol.PREFIX.pack(protocol.MAGIC, 1, 0, len(header), blob_bytes) + header)


def test_announced_blobs_commit_no_memory(start_engine: Callable[..., Engine], client_mod: ModuleType) -> None:
    """Three clients announce 256 MiB each and send nothing: the engine buffered ~0.8 GB up front before."""
    engine = start_engine(extra=("--max-frame-mb", "256"))
    with engine.client(client_mod) as client:
        client.status()
        before = _rss_bytes(engine.process.pid)
        sockets = [raw_hello(engine) for _ in range(3)]
        try:
            for sock in sockets:
                _announce(sock, 256 << 20)
            grown = 0
            for _ in range(20):  # the readers have long seen the announcement by the last sample
                select.select([], [], [], 0.05)
                grown = max(grown, _rss_bytes(engine.process.pid) - before)
                assert client.status()["connections"] == 4
            assert grown < 64 << 20, f"engine RSS grew by {grown >> 20} MiB"
        finally:
            for sock in sockets:
                sock.close()


def test_buffered_bytes_are_bounded_across_connections(
    start_engine: Callable[..., Engine], client_mod: ModuleType
) -> None:
    """Two clients each send most of a 16 MiB frame; with 20 MiB for all connections, the second is told
    `server_busy` and dropped, the first still gets its reply, and the engine answers `status`."""
    engine = start_engine(extra=("--max-frame-mb", "16", "--max-buffered-mb", "20"))
    first, second = raw_hello(engine), raw_hello(engine)
    try:
        _announce(first, 16 << 20)
        first.sendall(bytes(14 << 20))
        # sendall returns once the kernel holds the bytes; on a loaded machine the engine may not have read
        # them yet, and the second client's bytes would then fit. Wait until the engine holds the first's.
        with engine.client(client_mod) as client:
            deadline = time.monotonic() + 60
            while client.status()["buffered_bytes"] < 14 << 20 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert client.status()["buffered_bytes"] >= 14 << 20
        _announce(second, 16 << 20)
        outcome = "still reading"
        try:
            second.sendall(bytes(12 << 20))
            second.settimeout(20)
            outcome = protocol.recv_message(second).header["error"]["code"]
        except (ConnectionError, protocol.ConnectionClosed):
            outcome = "closed"  # the error reply can be lost to the reset of a socket with unread data
        assert outcome in ("server_busy", "closed")
        first.sendall(bytes(2 << 20))
        first.settimeout(30)
        reply = protocol.recv_message(first).header
        assert reply["ok"] is True and reply["reply_to"] == 2
    finally:
        first.close()
        second.close()
    with engine.client(client_mod) as client:
        assert client.status()["connections"] == 1
