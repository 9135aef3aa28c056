"""The engine's upload store on its own: chunked, resumable (across a restart), content-addressed, and
bounded against a client that sends too much, the wrong bytes, hostile names or nothing at all."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from dlatrack_engine.server.jobqueue import JobError
from dlatrack_engine.server.uploads import UploadLimits, UploadStore

DATA = bytes(range(256)) * 40  # 10240 bytes
SHA = hashlib.sha256(DATA).hexdigest()
CHUNK = 4096


def _code(call, *args) -> str:
    with pytest.raises(JobError) as caught:
        call(*args)
    return caught.value.code


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_a_chunked_upload_resumes_after_an_interruption_and_a_restart(tmp_path: Path) -> None:
    store = UploadStore(tmp_path / "uploads")
    begun = store.begin("video", "take 1.MP4", len(DATA), SHA)
    assert begun["offset"] == 0 and not begun["complete"] and begun["upload_id"] == f"video-{SHA}.mp4"
    upload_id = begun["upload_id"]
    assert store.chunk(upload_id, 0, DATA[:CHUNK])["offset"] == CHUNK  # then the link drops
    restarted = UploadStore(tmp_path / "uploads")  # a new engine process on the same state folder
    resumed = restarted.begin("video", "other-name.mp4", len(DATA), SHA)
    assert resumed["upload_id"] == upload_id and resumed["offset"] == CHUNK
    assert _code(restarted.chunk, upload_id, 0, DATA[:CHUNK]) == "bad_offset"  # not where the copy ends
    offset = CHUNK
    while True:
        reply = restarted.chunk(upload_id, offset, DATA[offset : offset + CHUNK])
        offset = reply["offset"]
        if reply["complete"]:
            break
    stored = restarted.finished(upload_id, "test")
    assert stored.read_bytes() == DATA and _files(tmp_path) == [f"uploads/files/{upload_id}"]
    again = restarted.begin("video", "copy.mp4", len(DATA), SHA)  # the same content: nothing to send
    assert again["complete"] and again["offset"] == len(DATA)


def test_bytes_that_do_not_match_the_announced_hash_are_deleted(tmp_path: Path) -> None:
    store = UploadStore(tmp_path / "uploads")
    upload_id = store.begin("avatar", "avatar.zip", len(DATA), SHA)["upload_id"]
    assert _code(store.chunk, upload_id, 0, b"x" * len(DATA)) == "upload_corrupt"
    assert _files(tmp_path) == [] and _code(store.finished, upload_id, "load_avatar") == "upload_not_found"


@pytest.mark.parametrize(
    ("kind", "name", "size", "sha", "code"),
    [
        ("video", "../../etc/cron.d/x.mp4", 10, SHA, "bad_argument"),
        ("video", "a\\b.mp4", 10, SHA, "bad_argument"),
        ("video", "clip.m p4", 10, SHA, "bad_argument"),
        ("avatar", "avatar.tar", 10, SHA, "bad_argument"),  # an avatar travels as a zip
        ("script", "x.py", 10, SHA, "bad_argument"),
        ("video", "a.mp4", 10, "../" + SHA[3:], "bad_argument"),
        ("video", "a.mp4", 10, SHA.upper(), "bad_argument"),
        ("video", "a.mp4", 0, SHA, "bad_argument"),
        ("video", "a.mp4", True, SHA, "bad_argument"),
        ("video", "a.mp4", 2001, SHA, "upload_too_large"),
    ],
)
def test_begin_refuses_bad_names_kinds_hashes_and_sizes(tmp_path: Path, kind, name, size, sha, code) -> None:
    store = UploadStore(tmp_path / "uploads", UploadLimits(max_file_bytes=2000))
    assert _code(store.begin, kind, name, size, sha) == code
    assert _files(tmp_path) == []


def test_chunks_are_bounded_and_must_belong_to_a_begun_upload(tmp_path: Path) -> None:
    store = UploadStore(tmp_path / "uploads", UploadLimits(max_chunk_bytes=1000))
    upload_id = store.begin("video", "a.mp4", len(DATA), SHA)["upload_id"]
    assert _code(store.chunk, upload_id, 0, DATA[:1001]) == "chunk_too_large"
    assert _code(store.chunk, upload_id, 0, b"") == "bad_argument"
    assert _code(store.chunk, upload_id, True, DATA[:10]) == "bad_offset"
    assert _code(store.chunk, "video-../../x", 0, DATA[:10]) == "bad_argument"
    assert _code(store.chunk, f"video-{'0' * 64}.mp4", 0, DATA[:10]) == "upload_not_found"
    small = hashlib.sha256(b"abc").hexdigest()
    short_id = store.begin("video", "b.mp4", 3, small)["upload_id"]
    assert _code(store.chunk, short_id, 0, b"abcd") == "bad_argument"  # past the announced size


def test_idle_uploads_expire_and_the_store_is_bounded(tmp_path: Path) -> None:
    store = UploadStore(tmp_path / "uploads", UploadLimits(idle_s=60, max_in_progress=2, max_store_bytes=25000))
    first = store.begin("video", "a.mp4", len(DATA), SHA)["upload_id"]
    store.chunk(first, 0, DATA[:CHUNK])
    old = time.time() - 120
    for path in (tmp_path / "uploads" / "partial").iterdir():
        os.utime(path, (old, old))
    other = [hashlib.sha256(bytes([i])).hexdigest() for i in range(3)]
    store.begin("video", "b.mp4", 1, other[0])  # begin deletes the idle upload
    assert _code(store.chunk, first, CHUNK, DATA[CHUNK:]) == "upload_not_found"
    store.begin("video", "c.mp4", 1, other[1])
    assert _code(store.begin, "video", "d.mp4", 1, other[2]) == "too_many_uploads"
    roomy = UploadStore(tmp_path / "uploads", UploadLimits(max_store_bytes=25000))
    assert _code(roomy.begin, "video", "e.mp4", 24999, SHA) == "storage_full"
