"""The add-on's remote-engine helpers without an engine: the calibration that travels with a video (and
the loud warning when there is none), the reproducible avatar archive, and the mirrored manifest that
names the laptop's video instead of the engine's paths."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest

from blender_addon.io.calibration import find_calibration
from blender_addon.io.mirror import RemoteMirror
from blender_addon.io.upload import UploadCancelled, package_archive, sha256_file, upload_file
from blender_addon.io.wire.manifest import Manifest

K = [[725.9, 0.0, 128.0], [0.0, 725.9, 120.0], [0.0, 0.0, 1.0]]


def test_calibration_comes_from_clip_json_then_gt_npz_and_focal_wins(tmp_path: Path) -> None:
    video = tmp_path / "video.mp4"
    video.write_bytes(b"")
    np.savez(tmp_path / "gt.npz", K=np.array(K))
    found = find_calibration(video, {})
    assert found.K == K and "gt.npz" in found.source and not found.assumed
    (tmp_path / "clip.json").write_text(json.dumps({"name": "take", "K": np.diag([500.0, 500.0, 1.0]).tolist()}))
    assert find_calibration(video, {}).K[0][0] == 500.0
    assert find_calibration(video, {"focal": 600.0}).K is None  # the engine applies the option
    (tmp_path / "clip.json").write_text(json.dumps({"K": [[0, 0, 0]] * 3}))
    with pytest.raises(ValueError, match=r"clip\.json.*'K'"):
        find_calibration(video, {})


def test_no_calibration_is_said_loudly(tmp_path: Path) -> None:
    found = find_calibration(tmp_path / "phone.mp4", {})
    assert found.assumed and found.K is None
    assert "no camera calibration for" in found.warning("phone.mp4") and "focal" in found.warning("phone.mp4")


def test_a_package_folder_zips_to_the_same_bytes_every_time(tmp_path: Path) -> None:
    package = tmp_path / "avatar"
    package.mkdir()
    for name in ("avatar.json", "topology.npz", "weights.safetensors"):
        (package / name).write_bytes(name.encode() * 100)
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    archive = sha256_file(package_archive(package, first))
    (package / "weights.safetensors").touch()  # a new modification time changes nothing
    assert sha256_file(package_archive(package, second)) == archive
    (package / "topology.npz").unlink()
    with pytest.raises(FileNotFoundError, match=r"topology\.npz"):
        package_archive(package, first)


def test_the_mirrored_manifest_names_the_laptop_video(tmp_path: Path) -> None:
    engine_manifest = Manifest("ab12", "track", video="/srv/state/uploads/ab12/video.mp4",
                               summary={"out_dir": "/srv/state/jobs/ab12"})  # fmt: skip
    mirror = RemoteMirror(None, "ab12", tmp_path / "mirror", local_video="/home/me/take.mp4")
    laptop = mirror._laptop_manifest(engine_manifest)
    assert laptop.video == "/home/me/take.mp4" and laptop.summary["out_dir"] == str(mirror.root)
    assert laptop.engine_paths == {"video": engine_manifest.video, "out_dir": "/srv/state/jobs/ab12"}


class FakeEngine:
    """upload_begin/upload_chunk as the engine answers them, holding `have` bytes already."""

    def __init__(self, have: int) -> None:
        self.have, self.chunks = have, []

    def upload_begin(self, kind: str, name: str, size: int, sha256: str) -> dict:
        self.size = size
        return {"upload_id": f"{kind}-{sha256}.mp4", "offset": self.have, "size": size, "complete": self.have == size}

    def upload_chunk(self, upload_id: str, offset: int, data: bytes) -> dict:
        assert offset == self.have
        self.chunks.append(len(data))
        self.have += len(data)
        return {"upload_id": upload_id, "offset": self.have, "size": self.size, "complete": self.have == self.size}


def test_an_upload_sends_only_what_the_engine_lacks_and_stops_when_asked(tmp_path: Path) -> None:
    video = tmp_path / "take.mp4"
    video.write_bytes(bytes(1000))
    engine, progress = FakeEngine(have=300), []
    upload_file(engine, "video", video, chunk_bytes=256, on_progress=lambda sent, size: progress.append(sent))
    assert engine.chunks == [256, 256, 188] and progress == [556, 812, 1000]
    stop = threading.Event()
    stop.set()
    with pytest.raises(UploadCancelled, match="stopped at 0 of 1000 bytes"):
        upload_file(FakeEngine(have=0), "video", video, cancel=stop)
