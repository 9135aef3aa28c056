"""Relight for Camera, end to end: Blender computes per-frame view vectors for the active camera, the real
engine re-decodes the view-dependent textures (Eq. 1, 3), they come back over the socket into the job
folder's `textures/view_<camera>/`, and the material switches to them."""

from __future__ import annotations

import sys
from pathlib import Path

import addon_synthetic as synthetic
import numpy as np
import pytest
from blender_data import SCRIPTS
from blender_runner import run_in_blender

from blender_addon.io.client import EngineClient, start_local_engine
from dlatrack_engine.wire.png import decode_png

pytestmark = pytest.mark.blender
FRAMES = 3


def test_relight_for_camera_decodes_the_side_view(tmp_path: Path) -> None:
    from dlatrack_engine.wire.jobfolder import JobFolder

    package, arrays = synthetic.tiny_avatar_package(tmp_path)
    job = tmp_path / "job"
    synthetic.write_track_job(job, arrays, frames=FRAMES, latent=4)
    JobFolder(job).write_light_code(np.linspace(0.0, 1.0, 150, dtype=np.float32))
    state = tmp_path / "state"
    process = start_local_engine(
        sys.executable, state / "connection.json", ("--state-dir", str(state), "--device", "cpu")
    )
    try:
        result = run_in_blender(
            SCRIPTS / "check_relight.py",
            {
                "package": str(package),
                "job": str(job),
                "connection_file": str(state / "connection.json"),
                "engine_python": sys.executable,
            },
            timeout=240,
        )
        assert result["status"] == ["FINISHED"]
        assert result["local"] == {"status": ["FINISHED"], "device": "cpu", "stopped": True}
        view_dir = job / "textures" / "view_Side_Cam"
        assert Path(result["images"]["relit"]).parent == view_dir / "relit"
        assert Path(result["images"]["full"]).parent == view_dir / "full"
        assert sorted(p.name for p in (view_dir / "relit").glob("*.png")) == [f"{i:06d}.png" for i in range(FRAMES)]
        # The engine, asked directly with the view vector computed here from first principles, decodes the same.
        centre_cv = np.array(result["camera_centre"]) @ np.array(
            [[1, 0, 0], [0, 0, 1], [0, -1, 0]]
        )  # Blender -> OpenCV
        client = EngineClient.from_connection_file(state / "connection.json")
        try:
            avatar_id = client.load_avatar(str(package))
            for index in range(FRAMES):
                head_R, head_t, _ = synthetic.frame_pose(index)
                view = head_R.T @ (centre_cv - head_t)
                reply = client.decode_view(avatar_id, folder=str(job), frames=[index], view=view / np.linalg.norm(view))
                written = decode_png((view_dir / "relit" / f"{index:06d}.png").read_bytes()).astype(int)
                assert np.abs(decode_png(reply["relit_textures"][index]).astype(int) - written).max() <= 1
                front = client.decode_view(avatar_id, folder=str(job), frames=[index], view=[0.0, 0.0, 1.0])
                assert np.abs(decode_png(front["relit_textures"][index]).astype(int) - written).max() > 0
        finally:
            client.close()
    finally:
        process.terminate()
        process.wait(20)
