"""The torch-free wire package: frame codec, PNG codec, job state machine."""

from __future__ import annotations

import struct

import cv2
import numpy as np
import pytest

from dlatrack_engine.wire import protocol
from dlatrack_engine.wire.jobs import InvalidTransition, Job, JobState
from dlatrack_engine.wire.png import decode_png, encode_png
from dlatrack_engine.wire.protocol import ProtocolError, decode_body, encode_frame, parse_prefix


def _decode(frame: bytes, cap: int = protocol.DEFAULT_MAX_BLOB_BYTES) -> protocol.Message:
    header_len, blobs_len = parse_prefix(frame[:16], cap)
    assert 16 + header_len + blobs_len == len(frame)
    return decode_body(frame[16 : 16 + header_len], frame[16 + header_len :])


def test_frame_round_trip_keeps_arrays_png_and_bytes() -> None:
    rng = np.random.default_rng(1)
    blobs = {
        "vertices": rng.standard_normal((7, 3)).astype(np.float32),
        "faces": rng.integers(0, 7, (5, 3)).astype(np.int32),
        "empty": np.zeros((0, 3), np.float32),
        "png": encode_png(np.zeros((2, 2, 3), np.uint8)),
        "raw": b"\x00\x01video",
    }
    message = _decode(encode_frame({"op": "x", "id": 3, "args": {"a": [1, 2]}}, blobs))
    assert message.header == {"op": "x", "id": 3, "args": {"a": [1, 2]}}
    np.testing.assert_array_equal(message.blobs["vertices"], blobs["vertices"])
    assert message.blobs["faces"].dtype == np.int32 and message.blobs["faces"].shape == (5, 3)
    assert message.blobs["empty"].shape == (0, 3)
    assert message.blobs["png"] == blobs["png"] and message.blobs["raw"] == blobs["raw"]
    assert message.blobs["vertices"].flags.writeable  # a copy, not a view into the receive buffer


def test_prefix_errors_are_fatal_and_named() -> None:
    good = encode_frame({"op": "status"})
    with pytest.raises(ProtocolError, match="expected b'DLTK'") as info:
        parse_prefix(b"GET / HTTP/1.1\r\n")
    assert info.value.code == "bad_magic" and info.value.fatal
    bumped = good[:4] + struct.pack(">H", 99) + good[6:16]
    with pytest.raises(ProtocolError, match="version 99") as info:
        parse_prefix(bumped)
    assert info.value.code == "unsupported_version"
    huge = protocol.PREFIX.pack(b"DLTK", 1, 0, 10, 2_000_000_000)
    with pytest.raises(ProtocolError, match="exceeds the cap") as info:
        parse_prefix(huge, max_blob_bytes=1 << 20)
    assert info.value.code == "frame_too_large" and info.value.fatal
    with pytest.raises(ProtocolError, match="header length"):
        parse_prefix(protocol.PREFIX.pack(b"DLTK", 1, 0, protocol.MAX_HEADER_BYTES + 1, 0))


@pytest.mark.parametrize(
    ("header", "body", "message"),
    [
        (b"{not json", b"", "not valid UTF-8 JSON"),
        (b"[1, 2]", b"", "must be a JSON object"),
        (b'{"blobs": 5}', b"", "header.blobs must be a list"),
        (
            b'{"blobs": [{"name": "a", "kind": "array", "dtype": "float32", "shape": [2], "nbytes": 4}]}',
            b"\0" * 4,
            "needs 8 bytes",
        ),
        (
            b'{"blobs": [{"name": "a", "kind": "array", "dtype": "complex64", "shape": [1], "nbytes": 8}]}',
            b"\0" * 8,
            "dtype 'complex64'",
        ),
        (b'{"blobs": [{"name": "a", "kind": "png", "nbytes": 9}]}', b"\0" * 4, "ends at byte 9"),
        (b'{"blobs": [{"name": "a", "kind": "png", "nbytes": 2}]}', b"\0" * 4, "cover 2 bytes"),
        (
            b'{"blobs": [{"name": "a", "kind": "png", "nbytes": 1}, {"name": "a", "kind": "png", "nbytes": 1}]}',
            b"\0\0",
            "appears twice",
        ),
        (
            b'{"blobs": [{"name": "a", "kind": "array", "dtype": "uint8", "shape": [-1], "nbytes": 0}]}',
            b"",
            "shape must be",
        ),
    ],
)
def test_malformed_bodies_are_rejected_without_being_fatal(header: bytes, body: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=message) as info:
        decode_body(header, body)
    assert info.value.code == "malformed_header" and not info.value.fatal


def test_encoder_refuses_unsendable_values() -> None:
    with pytest.raises(ProtocolError, match="dtype complex128"):
        encode_frame({}, {"a": np.zeros(2, np.complex128)})
    with pytest.raises(ProtocolError, match="not JSON-serialisable"):
        encode_frame({"x": object()})
    with pytest.raises(ProtocolError, match="not JSON-serialisable"):
        encode_frame({"x": float("nan")})


@pytest.mark.parametrize("shape", [(5, 7), (5, 7, 1), (4, 6, 3), (3, 9, 4)])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_png_round_trip_and_opencv_agrees(shape: tuple[int, ...], dtype: type) -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, np.iinfo(dtype).max, shape, dtype=dtype)
    data = encode_png(image)
    decoded = decode_png(data)
    np.testing.assert_array_equal(decoded.reshape(image.shape), image)
    by_cv2 = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image.ndim == 3 and image.shape[2] >= 3:  # OpenCV is BGR(A)
        by_cv2 = by_cv2[..., [2, 1, 0, 3][: image.shape[2]]]
    np.testing.assert_array_equal(by_cv2.reshape(image.shape), image)


def test_png_decoder_handles_every_filter_opencv_writes() -> None:
    """OpenCV/libpng choose sub/up/average/paeth filters adaptively on a smooth gradient with noise."""
    y, x = np.mgrid[0:37, 0:53]
    rng = np.random.default_rng(3)
    image = np.stack([x * 4, y * 6, (x + y) * 2], -1) + rng.integers(0, 3, (37, 53, 3))
    image = np.clip(image, 0, 255).astype(np.uint8)
    ok, encoded = cv2.imencode(".png", image[..., ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 9])
    assert ok
    np.testing.assert_array_equal(decode_png(encoded.tobytes()), image)
    with pytest.raises(ValueError, match="bad signature"):
        decode_png(b"GIF89a....")


def test_job_state_machine_allows_only_documented_transitions() -> None:
    job = Job(kind="selftest")
    seen: list[tuple[str, str]] = []
    job.add_listener(lambda j, old, new: seen.append((old.value, new.value)))
    with pytest.raises(InvalidTransition, match="from queued to completed"):
        job.complete({})
    job.start()
    assert job.request_cancel() and job.state is JobState.CANCELLING and job.cancel_event.is_set()
    job.mark_cancelled()
    assert job.terminal and not job.request_cancel()
    with pytest.raises(InvalidTransition):
        job.start()
    assert seen == [("queued", "running"), ("running", "cancelling"), ("cancelling", "cancelled")]

    queued = Job(kind="selftest")
    queued.request_cancel()
    assert queued.state is JobState.CANCELLED  # never ran: no cancelling step
    failing = Job(kind="track")
    failing.start()
    failing.fail("unreadable_video", "video 'a.mp4': frame 3 could not be decoded")
    assert failing.to_dict()["error"] == {
        "code": "unreadable_video",
        "message": "video 'a.mp4': frame 3 could not be decoded",
    }


def test_progress_eta_uses_the_current_stage_rate() -> None:
    job = Job(kind="track")
    job.update_progress("track", 0, 100)
    job._stage_start = ("track", job._stage_start[1] - 10.0, 0)  # 10 s ago
    progress = job.update_progress("track", 10, 100)
    assert progress.eta_s == pytest.approx(90.0, rel=0.05)
    assert job.update_progress("adapt", 0, 4).eta_s is None  # a new stage restarts the estimate
    assert progress.fraction == pytest.approx(0.1)


def test_job_mirror_round_trip_and_terminal_mirror_is_sticky() -> None:
    job = Job(kind="track")
    job.start()
    job.update_progress("track", 3, 9, loss=0.5)
    mirror = Job.from_dict(job.to_dict())
    assert mirror.state is JobState.RUNNING and mirror.progress.frame == 3 and mirror.progress.loss == 0.5
    mirror.apply_status({"state": "completed", "summary": {"frames": 9}})
    mirror.apply_status({"state": "running"})
    assert mirror.state is JobState.COMPLETED and mirror.summary == {"frames": 9}
    with pytest.raises(ValueError, match="expected job_id, kind"):
        Job.from_dict({"state": "running"})


def test_wire_package_imports_without_torch() -> None:
    """Blender's Python has no torch: the wire package (shared through the add-on's symlink) must not need it."""
    import subprocess
    import sys

    code = (
        "import sys; import dlatrack_engine.wire.protocol, dlatrack_engine.wire.jobfolder, "
        "dlatrack_engine.wire.jobs, dlatrack_engine.wire.png; "
        "assert 'torch' not in sys.modules and 'cv2' not in sys.modules, sorted(sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
