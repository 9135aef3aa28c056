"""TrackSession (the add-on's job pump) against a real engine process: completion, cancel, engine death.

The engine's `selftest` job does real per-frame work and writes frames atomically like a track job, so
the pump's behaviour is checked end to end over the socket without a trained avatar.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from blender_addon.io.client import EngineClient, start_local_engine
from blender_addon.io.session import TrackSession
from blender_addon.io.wire.jobfolder import JobFolder
from blender_addon.io.wire.jobs import JobState


def _start(state: Path) -> Iterator[tuple[subprocess.Popen, EngineClient]]:
    process = start_local_engine(
        sys.executable, state / "connection.json", ("--state-dir", str(state), "--device", "cpu"), wait_s=60.0
    )
    client = EngineClient.from_connection_file(state / "connection.json")
    yield process, client
    client.close()
    if process.poll() is None:
        process.terminate()
        process.wait(10)


@pytest.fixture(scope="module")
def shared_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[subprocess.Popen, EngineClient]]:
    """One engine for the tests that leave it alive (an engine start costs seconds: torch import)."""
    yield from _start(tmp_path_factory.mktemp("engine") / "state")


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[tuple[subprocess.Popen, EngineClient]]:
    yield from _start(tmp_path / "state")


class FolderCounter:
    """The session's write callback: counts frames that appeared in the job folder (what a writer does)."""

    def __init__(self) -> None:
        self.seen: set[int] = set()
        self.folder: JobFolder | None = None

    def __call__(self) -> int:
        new = set(self.folder.frames_done()) - self.seen if self.folder else set()
        self.seen |= new
        return len(new)


def open_session(
    client: EngineClient, frames: int, frame_seconds: float, out: Path
) -> tuple[TrackSession, FolderCounter]:
    job_id = client.selftest(frames=frames, size=8, frame_seconds=frame_seconds, out_dir=str(out))
    counter = FolderCounter()
    session = TrackSession(client, client.job_status(job_id), counter, status_interval_s=0.5)
    counter.folder = JobFolder(session.folder)
    return session, counter


def pump_until(session: TrackSession, condition, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        report = session.pump()
        if condition(report):
            return report
        time.sleep(0.05)
    raise AssertionError(f"job {session.job_id} did not reach the condition within {timeout} s")


def test_session_completes_and_writes_every_frame(shared_engine, tmp_path: Path) -> None:
    _, client = shared_engine
    session, counter = open_session(client, frames=6, frame_seconds=0.0, out=tmp_path / "job")
    report = session.run_blocking(poll_s=0.05, timeout_s=60)
    assert report.state is JobState.COMPLETED and report.error is None
    assert session.frames_written == 6 and counter.seen == set(range(6))


def test_cancel_stops_the_job_and_keeps_written_frames(shared_engine, tmp_path: Path) -> None:
    _, client = shared_engine
    session, counter = open_session(client, frames=200, frame_seconds=0.1, out=tmp_path / "job")
    pump_until(session, lambda r: session.frames_written >= 2)
    session.cancel()
    report = pump_until(session, lambda r: r.finished)
    assert report.state is JobState.CANCELLED
    assert 2 <= session.frames_written < 200
    assert counter.seen == set(JobFolder(session.folder).frames_done())


def test_pump_and_cancel_never_wait_for_a_frozen_engine(engine, tmp_path: Path) -> None:
    """SIGSTOP freezes the engine mid-job (a busy or stuck engine): status polls and the cancel request stay
    unanswered, yet every pump and the cancel return at once; once it resumes, the job ends cancelled."""
    process, client = engine
    session, _ = open_session(client, frames=200, frame_seconds=0.1, out=tmp_path / "job")
    pump_until(session, lambda r: session.frames_written >= 1)
    process.send_signal(signal.SIGSTOP)
    try:
        slowest = 0.0
        deadline = time.monotonic() + 2.0  # four status intervals
        while time.monotonic() < deadline:
            start = time.monotonic()
            session.pump()
            if time.monotonic() - deadline > -1.0 and session.job.state is not JobState.CANCELLING:
                session.cancel()
            slowest = max(slowest, time.monotonic() - start)
            time.sleep(0.05)
        assert slowest < 0.2, f"a pump or cancel waited {slowest:.2f} s for the frozen engine"
        assert session.report().text.startswith("cancelling"), session.report().text
    finally:
        process.send_signal(signal.SIGCONT)
    report = pump_until(session, lambda r: r.finished, timeout=30)
    assert report.state is JobState.CANCELLED and report.error is None
    assert 1 <= session.frames_written < 200


def test_engine_death_ends_the_session_cleanly(engine, tmp_path: Path) -> None:
    process, client = engine
    session, _ = open_session(client, frames=200, frame_seconds=0.1, out=tmp_path / "job")
    pump_until(session, lambda r: session.frames_written >= 2)
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    report = pump_until(session, lambda r: r.finished, timeout=20)
    assert report.state is JobState.FAILED
    assert report.error and ("connection" in report.error or "engine" in report.error)
    assert session.frames_written >= 2  # what was written stays


def test_remote_mirror_copies_the_job_folder_over_the_socket(shared_engine, tmp_path: Path) -> None:
    """A Blender without the engine's disk: frames announced by events are fetched with job_frames."""
    from blender_addon.io.mirror import RemoteMirror

    _, client = shared_engine
    job_id = client.selftest(frames=5, size=8, out_dir=str(tmp_path / "engine_side"))
    mirror = RemoteMirror(client, job_id, tmp_path / "blender_side", batch=2)
    session = TrackSession(client, client.job_status(job_id), lambda: 0, status_interval_s=0.2)
    report = session.run_blocking(poll_s=0.05, timeout_s=60)
    assert report.state is JobState.COMPLETED
    assert session.announced == set(range(5)), "every finished frame is announced by a frame event"
    mirror.want(sorted(session.announced)[:3])
    assert mirror.sync() == 3
    assert mirror.sync(everything=True) == 2  # the rest, e.g. after a reconnect
    engine_side, blender_side = JobFolder(tmp_path / "engine_side"), JobFolder(tmp_path / "blender_side")
    assert blender_side.frames_done() == engine_side.frames_done() == list(range(5))
    assert blender_side.read_manifest().job_id == job_id
    for index in range(5):
        ours, theirs = blender_side.read_frame(index, track=False), engine_side.read_frame(index, track=False)
        assert ours.keys() == theirs.keys()
        assert all((ours[k] == theirs[k]).all() for k in ours)


def test_the_mirror_brings_the_jobs_preview_and_never_a_link(shared_engine, tmp_path: Path) -> None:
    """A remote engine's preview.mp4 (in the job folder it chose) comes back with the last sync, so the
    Result box's Show Comparison works on the laptop; a preview.mp4 the job did not write is never served."""
    import os

    from blender_addon.io.client import EngineError
    from blender_addon.io.job_summary import JobSummary
    from blender_addon.io.mirror import RemoteMirror

    _, client = shared_engine
    engine_side = tmp_path / "engine_side"
    job_id = client.selftest(frames=2, size=8, out_dir=str(engine_side))
    assert client.wait(job_id, timeout=60, poll_s=0.05)["state"] == "completed"
    assert client.job_frames(job_id, [])["preview"] is None  # not asked for, not sent
    mirror = RemoteMirror(client, job_id, tmp_path / "blender_side")
    mirror.sync(everything=True)
    assert not (tmp_path / "blender_side" / "preview.mp4").exists()  # none written yet: nothing to copy
    video = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8
    JobFolder(engine_side).write_file(engine_side / "preview.mp4", video)  # as report/preview.py writes it
    mirror.sync(everything=True)
    assert (tmp_path / "blender_side" / "preview.mp4").read_bytes() == video
    summary = JobSummary.from_folder(tmp_path / "blender_side")
    assert summary is not None and summary.preview == tmp_path / "blender_side" / "preview.mp4"
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"not for the client")
    (engine_side / "preview.mp4").unlink()
    os.symlink(secret, engine_side / "preview.mp4")
    with pytest.raises(EngineError) as info:
        client.job_frames(job_id, [], preview=True)
    assert info.value.code == "bad_job_folder" and b"not for the client" not in info.value.message.encode()


def test_avatar_mesh_from_the_engine_matches_the_package(shared_engine, tmp_path: Path) -> None:
    """Import Avatar for an engine elsewhere: the `avatar_topology` reply gives the same mesh as the files."""
    import addon_synthetic as synthetic

    from blender_addon.io.avatar import avatar_mesh_from_arrays, read_avatar_mesh

    _, client = shared_engine
    package, _ = synthetic.tiny_avatar_package(tmp_path)
    reply = client.avatar_topology(client.load_avatar(str(package)))
    remote = avatar_mesh_from_arrays(reply, str(reply.get("name")), reply.get("texture_size"), "engine")
    local = read_avatar_mesh(package)
    assert remote.name == local.name == "tiny" and remote.texture_size == local.texture_size == 16
    for field in ("faces", "uv_faces", "uvs", "neutral"):
        assert (getattr(remote, field) == getattr(local, field)).all(), field
