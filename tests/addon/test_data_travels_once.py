"""Each piece of a job's results reaches Blender once (issue 22): the remote mirror fetches every frame, the
light code and the preview once over a real engine's socket, and the scene writer's reader opens every
frame file once however the frames arrive."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import addon_synthetic as synthetic
import numpy as np
import pytest

from blender_addon.io.client import EngineClient, start_local_engine
from blender_addon.io.mirror import RemoteMirror
from blender_addon.io.result import TrackResult
from blender_addon.io.session import TrackSession
from blender_addon.io.wire.jobfolder import JobFolder
from blender_addon.io.wire.jobs import JobState


class CountingClient(EngineClient):
    """The add-on's real client, recording what each `job_frames` reply brought over the socket."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.frames: Counter[int] = Counter()  # frame index -> replies that carried its arrays
        self.light_codes = self.previews = self.requests = 0

    def job_frames(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        reply = super().job_frames(*args, **kwargs)
        self.requests += 1
        self.frames.update(reply["arrays"].keys())
        self.light_codes += reply["light_code"] is not None
        self.previews += reply["preview"] is not None
        return reply


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CountingClient]:
    state = tmp_path_factory.mktemp("engine") / "state"
    process = start_local_engine(
        sys.executable, state / "connection.json", ("--state-dir", str(state), "--device", "cpu"), wait_s=60.0
    )
    client = CountingClient.from_connection_file(state / "connection.json")
    yield client
    client.close()
    process.terminate()
    process.wait(10)


def test_the_mirror_fetches_each_frame_the_light_code_and_the_preview_once(client, tmp_path: Path) -> None:
    """As TrackRun does: frame events queue frames, syncs fetch them in batches, the job's end syncs
    everything (twice here: a reconnect). Before issue 22 the last sync fetched every frame again and each
    reply carried the light code."""
    engine_side = tmp_path / "engine_side"
    job_id = client.selftest(frames=7, size=8, out_dir=str(engine_side))
    session = TrackSession(client, client.job_status(job_id), lambda: 0, status_interval_s=0.2)
    assert session.run_blocking(poll_s=0.05, timeout_s=60).state is JobState.COMPLETED
    code = np.linspace(0.0, 1.0, 150, dtype=np.float32)
    JobFolder(engine_side).write_light_code(code)  # as step 2 writes it, before any frame is fetched
    preview = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4
    JobFolder(engine_side).write_file(engine_side / "preview.mp4", preview)
    mirror = RemoteMirror(client, job_id, tmp_path / "blender_side", batch=2)
    mirror.want(sorted(session.announced)[:5])
    assert mirror.sync() == 5  # three requests of at most two frames
    assert mirror.sync(everything=True) == 2
    assert mirror.sync(everything=True) == 0
    assert client.frames == Counter(range(7)), "every frame crossed the socket exactly once"
    assert client.light_codes == 1 and client.previews == 1
    blender_side = JobFolder(tmp_path / "blender_side")
    assert blender_side.frames_done() == list(range(7))
    np.testing.assert_array_equal(blender_side.read_light_code(), code)
    assert (tmp_path / "blender_side" / "preview.mp4").read_bytes() == preview


def test_frame_events_name_frames_without_their_arrays(client, tmp_path: Path) -> None:
    """The add-on reads each frame from the job folder (or its mirror), so it asks the engine not to read
    the frames back into the events; a client that asks still gets them (the protocol's default)."""
    for stream, expected in ((False, set()), (True, {"eigenvector", "eigenvalue", "relative_error"})):
        job_id = client._request("selftest", {"frames": 2, "size": 4, "stream_results": stream})[0]["job_id"]
        seen: dict[int, set[str]] = {}
        while len(seen) < 2:
            event = client.events().get(timeout=30)
            if event.job_id == job_id and event.kind == "frame":
                seen[event.header["frame"]] = set(event.blobs)
        assert seen == {0: expected, 1: expected}, stream
        client.wait(job_id, timeout=30, poll_s=0.05)


def _write_frames(folder: JobFolder, indices: range, neutral: np.ndarray) -> None:
    for i in indices:
        head_R, head_t, r = synthetic.frame_pose(i)
        folder.write_frame(i, {"vertices": synthetic.frame_vertices(neutral, i), "head_R": head_R,
                               "head_t": head_t, "r": r, "z": np.zeros(4, np.float32)})  # fmt: skip


def test_the_scene_writers_reader_opens_each_frame_file_once(tmp_path: Path, monkeypatch) -> None:
    """`SceneWriter.write_new` reads through `TrackResult.read_new`: frames arriving over several pumps
    are each read from disk once (the engine's events no longer carry a second copy)."""
    reads: Counter[str] = Counter()
    real_read = JobFolder.read_file

    def counting_read(self: JobFolder, path: Path) -> bytes:
        reads[Path(path).name] += 1
        return real_read(self, path)

    monkeypatch.setattr(JobFolder, "read_file", counting_read)
    neutral = synthetic.grid_topology(3)["neutral"]
    folder = JobFolder.create(tmp_path / "job", "job", "track", frames=list(range(6)), fps=24.0, size=[48, 64],
                              K=np.diag([70.0, 70.0, 1.0]))  # fmt: skip
    result, seen = TrackResult(folder.root), set()
    for batch in (range(0, 2), range(2, 3), range(3, 3), range(3, 6)):
        _write_frames(folder, batch, neutral)
        frames = result.read_new(seen)
        assert list(frames.video_indices) == list(batch)
        seen.update(int(i) for i in frames.video_indices)
    assert reads == Counter({f"{i:06d}.npz": 1 for i in range(6)})
