"""The add-on inside Blender (bpy wheel): registration, Import Avatar, 100 frames by shape keys and PC2."""

from __future__ import annotations

import pytest
from blender_data import FRAMES, SCRIPTS
from blender_runner import run_in_blender

pytestmark = pytest.mark.blender


@pytest.fixture(scope="module")
def addon_checks(synthetic_job: dict[str, str]) -> dict:
    return run_in_blender(SCRIPTS / "check_addon.py", synthetic_job, timeout=240)


def test_register_unregister_twice_and_preferences(addon_checks: dict) -> None:
    assert addon_checks["register_cycles_ok"] == [True, True, True, True]
    assert addon_checks["prefs_mesh_cache_above"] > 0


def test_import_avatar_builds_mesh_uvs_and_material(addon_checks: dict) -> None:
    imported = addon_checks["import"]
    assert imported["vertices"] == 144
    assert imported["neutral_error"] < 1e-6
    assert imported["uv_error"] < 1e-6
    assert imported["material"].startswith("DLATrack")


def test_shape_keys_reproduce_every_frame(addon_checks: dict) -> None:
    keys = addon_checks["shape_keys"]
    assert keys["mode"] == "SHAPE_KEYS" and keys["count"] == FRAMES + 1  # + Basis
    assert keys["frame_0050_keys"] == [[49.0, 0.0], [50.0, 1.0], [51.0, 0.0]]
    assert keys["interpolation"] == ["LINEAR"]
    assert keys["local_error"] < 1e-5, "evaluated mesh differs from the engine's vertices"
    assert keys["world_error"] < 1e-5, "head pose keyframes put the avatar elsewhere"
    assert keys["fps"] == [24, 1.0] and keys["range"] == [1, FRAMES]


def test_mesh_cache_reproduces_every_frame(addon_checks: dict) -> None:
    cache = addon_checks["mesh_cache"]
    assert cache["mode"] == "MESH_CACHE" and cache["pc2"].endswith(".pc2")
    assert not cache["shape_keys"]
    assert cache["local_error"] < 1e-5 and cache["world_error"] < 1e-5


def test_camera_projects_like_opencv(addon_checks: dict) -> None:
    assert addon_checks["camera_pixel_error"] < 1e-3


def test_texture_sequences_follow_the_frame(addon_checks: dict) -> None:
    for kind in ("full", "relit"):
        sequence = addon_checks["sequences"][kind]
        assert sequence["source"] == "SEQUENCE" and sequence["auto_refresh"]
        assert sequence["shown"] == [0, 1, 49], f"{kind}: scene frames 1, 2, 50 must show PNGs 0, 1, 49"


@pytest.mark.parametrize("mode", ["SHAPE_KEYS", "MESH_CACHE"])
def test_frames_arriving_in_batches_and_out_of_order(addon_checks: dict, mode: str) -> None:
    incremental = addon_checks["incremental"][mode]
    assert incremental["counts"] == [50, 30, 20]
    assert incremental["local_error"] < 1e-5 and incremental["world_error"] < 1e-5
