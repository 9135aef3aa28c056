"""wire.protocol's socket loop over a real socketpair: frames split at every size, frames larger than one
read, byte accounting, the limits passed through, where a closed connection is reported, and deadlines
that bound the whole frame. Every blocking read has a short deadline or a peer that closes, so a broken
loop fails in seconds instead of hanging."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest

from dlatrack_engine.wire import protocol
from dlatrack_engine.wire.protocol import ConnectionClosed, ProtocolError, encode_frame, recv_message, send_message


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair()
    yield a, b
    a.close()
    b.close()


def _trickle(sock: socket.socket, data: bytes, piece: int, pause: float, close: bool = False) -> threading.Thread:
    def run() -> None:
        try:
            for start in range(0, len(data), piece):
                sock.sendall(data[start:start + piece])
                time.sleep(pause)
            if close:
                sock.shutdown(socket.SHUT_WR)
        except OSError:  # the reader gave up and the test closed the pair
            return

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_send_and_receive_a_frame_larger_than_one_read(pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    big = np.arange(protocol.RECV_CHUNK // 4 * 3 + 5, dtype=np.float32)  # 3 MiB and 20 bytes
    header = {"op": "frame", "id": 7}
    frame = encode_frame(header, {"big": big, "raw": b"tail"})
    sender = threading.Thread(target=send_message, args=(a, header, {"big": big, "raw": b"tail"}), daemon=True)
    sender.start()
    counts: list[int] = []
    message = recv_message(b, deadline=time.monotonic() + 20.0, reserve=counts.append)
    sender.join(5.0)
    assert message.header == header
    np.testing.assert_array_equal(message.blobs["big"], big)
    assert message.blobs["raw"] == b"tail"
    assert sum(counts) == len(frame) - protocol.PREFIX_SIZE  # the prefix is not buffered memory
    assert max(counts) <= protocol.RECV_CHUNK
    send_message(a, {"op": "ping"})  # no blobs: the header alone
    assert recv_message(b, deadline=time.monotonic() + 5.0).header == {"op": "ping"}


def test_a_frame_split_into_single_bytes_arrives_whole(pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    frame = encode_frame({"op": "slow"}, {"v": np.array([1.5, -2.0], np.float32)})
    _trickle(a, frame, 1, 0.0)
    message = recv_message(b, deadline=time.monotonic() + 10.0)
    assert message.header == {"op": "slow"}
    np.testing.assert_array_equal(message.blobs["v"], [1.5, -2.0])


def test_a_read_never_takes_bytes_of_the_next_frame(pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    first = encode_frame({"op": "first"}, {"raw": bytes(range(40))})
    second = encode_frame({"op": "second"})
    a.sendall(first[:-3])  # the blobs arrive in two parts, the second one (later) glued to the next frame
    rest = threading.Timer(0.2, a.sendall, args=(first[-3:] + second,))
    rest.start()
    assert recv_message(b, deadline=time.monotonic() + 5.0).blobs["raw"] == bytes(range(40))
    assert recv_message(b, deadline=time.monotonic() + 5.0).header == {"op": "second"}
    rest.join()


def test_a_prompt_frame_is_read_within_a_short_deadline(pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    send_message(a, {"op": "quick"})
    assert recv_message(b, deadline=time.monotonic() + 0.5).header == {"op": "quick"}


def test_the_limits_reach_the_prefix_check() -> None:
    for frame, limits, refusal in (
        (encode_frame({"op": "x"}, {"raw": b"12345678"}), {"max_blob_bytes": 7}, "blobs length 8 exceeds the cap of 7"),
        (encode_frame({"op": "x"}), {"max_header_bytes": 4}, r"header length \d+ outside 1\.\.4 bytes"),
    ):
        a, b = socket.socketpair()  # a refused prefix leaves the stream unusable: one pair per frame
        with a, b:
            a.sendall(frame)
            with pytest.raises(ProtocolError, match=refusal):
                recv_message(b, deadline=time.monotonic() + 5.0, **limits)


@pytest.mark.parametrize(("cut", "where"), [(0, None), (5, "prefix (5 of 16 bytes)"), (19, "header (3 of ")])
def test_a_closed_connection_says_where_the_frame_stopped(pair: tuple[socket.socket, socket.socket], cut: int,
                                                          where: str | None) -> None:
    a, b = pair
    a.sendall(encode_frame({"op": "cut short"})[:cut])
    a.shutdown(socket.SHUT_WR)
    with pytest.raises(ConnectionClosed) as info:
        recv_message(b, deadline=time.monotonic() + 5.0)
    assert info.value.code == "connection_closed" and info.value.fatal
    if where is None:  # between frames: the clean end of a session
        assert info.value.message == "connection closed by peer"
    else:
        assert info.value.message.startswith(f"connection closed inside the frame {where}")


def test_a_closed_connection_inside_the_blobs(pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    frame = encode_frame({"op": "x"}, {"raw": b"0123456789"})
    a.sendall(frame[:-4])
    a.shutdown(socket.SHUT_WR)
    with pytest.raises(ConnectionClosed, match=r"^connection closed inside the frame blobs \(6 of 10 bytes\)$"):
        recv_message(b, deadline=time.monotonic() + 5.0)


def test_a_refusing_reserve_stops_the_read(pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    a.sendall(encode_frame({"op": "x"}, {"raw": b"0123456789"}))

    def refuse(count: int) -> None:
        raise MemoryError(f"no room for {count} bytes")

    with pytest.raises(MemoryError, match="no room"):
        recv_message(b, deadline=time.monotonic() + 5.0, reserve=refuse)


@pytest.mark.parametrize("stall", ["prefix", "header", "blobs"])
def test_the_deadline_bounds_the_whole_frame_not_each_read(pair: tuple[socket.socket, socket.socket],
                                                           stall: str) -> None:
    a, b = pair
    header = {"op": "drip", "pad": "x" * 200}
    frame = encode_frame(header, {"raw": bytes(200)})
    prompt = {"prefix": 0, "header": protocol.PREFIX_SIZE, "blobs": len(frame) - 200}[stall]
    a.sendall(frame[:prompt])
    # From `stall` on, one byte every 20 ms: every single read is quick, the rest takes ~5 s. The peer then
    # closes, so a loop that ignored the deadline would end with the whole frame or ConnectionClosed.
    _trickle(a, frame[prompt:], 1, 0.02, close=True)
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        recv_message(b, deadline=start + 0.4)
    assert 0.35 < time.monotonic() - start < 2.0


def test_a_silent_peer_times_out_at_the_deadline(pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    closer = threading.Timer(3.0, a.shutdown, args=(socket.SHUT_WR,))  # a broken deadline ends in 3 s
    closer.start()
    start = time.monotonic()
    try:
        with pytest.raises(TimeoutError):
            recv_message(b, deadline=start + 0.3)
    finally:
        closer.cancel()
    assert 0.25 < time.monotonic() - start < 2.0
    with pytest.raises(TimeoutError, match=r"^deadline passed while reading the frame prefix$"):
        recv_message(b, deadline=time.monotonic() - 1.0)  # already past: refused before any read
