"""Issue 19, classes 2, 3 and 6: a resumed or served job folder trusts only what the engine wrote there,
and removes only its own temporary files. Real engine subprocesses, killed with SIGKILL like a crash."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from conftest import Engine
from test_server import wait_until
from test_track_job import _seeded_out_dir

from dlatrack_engine.server.work import dominant_eigenpair
from dlatrack_engine.wire.jobfolder import JobFolder

SELFTEST_SIZE = 16


def _killed_midway(engine: Engine, client_mod: ModuleType, out: Path, frames: int = 8) -> str:
    """A paced selftest into `out`, SIGKILLed once three frames are final -> job id."""
    with engine.client(client_mod) as client:
        job_id = client.selftest(frames=frames, size=SELFTEST_SIZE, frame_seconds=0.3, out_dir=str(out))
        wait_until(lambda: client.job_status(job_id)["frames_done"] >= 3, what="three finished frames")
    engine.kill()
    return job_id


def _resume(start_engine: Callable[..., Engine], engine: Engine, client_mod: ModuleType, job_id: str):
    again = start_engine(engine.state_dir)
    client = again.client(client_mod)
    final = client.wait(job_id, timeout=120, poll_s=0.1)
    assert final["state"] == "completed", final
    return client


def test_a_truncated_finished_frame_is_recomputed_after_a_restart(
    start_engine: Callable[..., Engine], client_mod: ModuleType, tmp_path: Path
) -> None:
    """Before: a 0-byte frame counted as done and `job_frames` answered internal_error (BadZipFile)."""
    engine, out = start_engine(), tmp_path / "job"
    job_id = _killed_midway(engine, client_mod, out)
    kept = (out / "frames" / "000001.npz").read_bytes()
    (out / "frames" / "000000.npz").write_bytes(b"")
    with _resume(start_engine, engine, client_mod, job_id) as client:
        frames = client.job_frames(job_id)
        assert frames["frames"] == list(range(8))
        expected = dominant_eigenpair(0, SELFTEST_SIZE)[1]
        assert float(np.ravel(frames["arrays"][0]["eigenvalue"])[0]) == pytest.approx(expected, rel=1e-5)
        assert (out / "frames" / "000001.npz").read_bytes() == kept  # a good frame is not recomputed
        assert client.status()["pid"] == client.hello()["pid"]


def test_a_frame_changed_behind_the_jobs_back_is_recomputed(
    start_engine: Callable[..., Engine], client_mod: ModuleType, tmp_path: Path
) -> None:
    """Same size, other bytes: only the checksum tells; resume checks it."""
    engine, out = start_engine(), tmp_path / "job"
    job_id = _killed_midway(engine, client_mod, out)
    path = out / "frames" / "000000.npz"
    data = bytearray(path.read_bytes())
    data[-30] ^= 0xFF
    path.write_bytes(bytes(data))
    with _resume(start_engine, engine, client_mod, job_id) as client:
        frames = client.job_frames(job_id, [0])
        expected = dominant_eigenpair(0, SELFTEST_SIZE)[1]
        assert float(np.ravel(frames["arrays"][0]["eigenvalue"])[0]) == pytest.approx(expected, rel=1e-5)


def _user_files(root: Path) -> dict[str, bytes]:
    files = {
        "frames/000000.npz": b"user data, not a frame",
        "overlay/000000.png": b"the user's own picture",
        "textures/full/000000.png": b"the user's texture",
    }
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return files


def test_a_folder_holding_user_files_is_refused(
    shared_engine: Engine, client_mod: ModuleType, tiny_avatar: Path, tiny_video: Path, tmp_path: Path
) -> None:
    """Before: user files named like outputs were counted as done, overwritten, or loaded."""
    out = tmp_path / "mine"
    files = _user_files(out)
    landmarks = tmp_path / "marks"
    landmarks.mkdir()
    (landmarks / "landmarks.npz").write_bytes(b"PK not landmarks")
    with shared_engine.client(client_mod) as client:
        with pytest.raises(client_mod.EngineError) as info:
            client.selftest(frames=2, out_dir=str(out))
        assert info.value.code == "bad_output_folder" and "not empty" in info.value.message
        avatar_id = client.load_avatar(tiny_avatar)
        with pytest.raises(client_mod.EngineError) as info:
            client.track(str(tiny_video), avatar_id, {"key_frames": 2}, out_dir=str(landmarks))
        assert info.value.code == "bad_output_folder" and "landmarks.npz" in info.value.message
        assert client.status()["pid"] == shared_engine.process.pid
    assert {name: (out / name).read_bytes() for name in files} == files
    assert not (out / "manifest.json").exists()


def test_resume_removes_only_the_engines_own_temporary_files(
    start_engine: Callable[..., Engine], client_mod: ModuleType, tmp_path: Path
) -> None:
    """Before: every `.*.tmp` under out_dir went, the user's included."""
    engine, out = start_engine(), tmp_path / "job"
    job_id = _killed_midway(engine, client_mod, out)
    mine = [out / ".notes.tmp", out / "frames" / ".draft.tmp", out / "extra" / ".000001.npz.abcdefgh.tmp"]
    for path in mine:
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"keep me")
    partial = out / "frames" / ".000007.npz.k2j4x9_q.tmp"  # what a write killed mid-way leaves
    partial.write_bytes(b"half a frame")
    with _resume(start_engine, engine, client_mod, job_id):
        pass
    assert all(path.read_bytes() == b"keep me" for path in mine)
    assert not partial.exists()


def test_job_frames_never_follows_a_link(
    shared_engine: Engine, client_mod: ModuleType, tiny_avatar: Path, tiny_video: Path, tmp_path: Path
) -> None:
    """Before: a texture replaced by a link to another file was served with that file's contents."""
    out = _seeded_out_dir(tmp_path / "job", 4)
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"not for the client")
    preview = {"key_frames": 2, "steps": "landmarks", "lighting": "none"}
    with shared_engine.client(client_mod) as client:
        avatar_id = client.load_avatar(tiny_avatar)
        job_id = client.track(str(tiny_video), avatar_id, preview, out_dir=str(out))
        assert client.wait(job_id, timeout=300, poll_s=0.2)["state"] == "completed"
        texture = out / "textures" / "full" / "000000.png"
        assert texture.is_file()
        texture.unlink()
        os.symlink(secret, texture)
        with pytest.raises(client_mod.EngineError) as info:
            client.job_frames(job_id, [0], textures=True)
        assert info.value.code == "bad_job_folder" and "link" in info.value.message
        assert b"not for the client" not in info.value.message.encode()
        served = client.job_frames(job_id, [1], textures=True)  # the untouched frames are still served
        assert set(served["textures"][1]) == {"full", "relit"}
    assert JobFolder(out).frames_done() == [0, 1, 2, 3]
    assert np.asarray(served["arrays"][1]["vertices"]).shape[1] == 3
