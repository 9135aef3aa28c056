"""Avatar package: round trips, and every kind of damage gives a message naming file and field."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from grid_topology import grid_topology

from dlatrack_engine.avatar.format import (
    AVATAR_JSON,
    TOPOLOGY_FILE,
    WEIGHTS_FILE,
    AvatarFormatError,
    load_avatar_package,
    save_avatar_package,
)


def _config() -> dict:
    return {
        "name": "test-subject",
        "units": "m",
        "camera_convention": "opencv",
        "head_frame": "x-left,y-up,z-forward",
        "texture_size": 32,
        "latent_size": 4,
        "dam": {"latent_size": 4},
        "lighting": {"code_size": 150},
        "landmarks": {"scheme": "ibug68", "count": 68},
        "provenance": {"command": "pytest"},
    }


def _tensors() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return {
        "dam.decoder.weight": torch.randn(8, 4, generator=generator),
        "lighting.fc.weight": torch.randn(3, 5, generator=generator),
        "lighting.fc.bias": torch.zeros(3),
    }


@pytest.fixture
def package(tmp_path: Path) -> Path:
    return save_avatar_package(tmp_path / "avatar", _config(), _tensors(), grid_topology())


def test_folder_round_trip_keeps_every_array_and_tensor(package: Path) -> None:
    loaded = load_avatar_package(package)
    original = grid_topology()
    for name, array in original.arrays().items():
        np.testing.assert_array_equal(getattr(loaded.topology, name), array)
    for key, tensor in _tensors().items():
        assert torch.equal(loaded.tensors[key], tensor)
    assert loaded.config["topology"] == {"num_vertices": 36, "num_faces": 50, "num_uvs": 36}
    assert loaded.config["format_version"] == 1


def test_zip_round_trip_with_and_without_folder_prefix(tmp_path: Path, package: Path) -> None:
    direct = save_avatar_package(tmp_path / "direct.zip", _config(), _tensors(), grid_topology())
    assert load_avatar_package(direct).topology.num_faces == 50
    prefixed = tmp_path / "prefixed.zip"
    with zipfile.ZipFile(prefixed, "w") as archive:
        for name in (AVATAR_JSON, WEIGHTS_FILE, TOPOLOGY_FILE):
            archive.write(package / name, f"my_avatar/{name}")
    assert torch.equal(load_avatar_package(prefixed).tensors["lighting.fc.bias"], torch.zeros(3))


@pytest.mark.parametrize("missing", [AVATAR_JSON, WEIGHTS_FILE, TOPOLOGY_FILE])
def test_missing_file_is_named(package: Path, missing: str) -> None:
    (package / missing).unlink()
    with pytest.raises(AvatarFormatError, match=f"{missing}: missing"):
        load_avatar_package(package)


def test_missing_package_and_non_zip_file(tmp_path: Path) -> None:
    with pytest.raises(AvatarFormatError, match="does not exist"):
        load_avatar_package(tmp_path / "nowhere")
    bogus = tmp_path / "avatar.zip"
    bogus.write_bytes(b"not a zip")
    with pytest.raises(AvatarFormatError, match="not a zip"):
        load_avatar_package(bogus)


def _edit_config(package: Path, **changes) -> None:
    config = json.loads((package / AVATAR_JSON).read_text())
    for key, value in changes.items():
        if value is None:
            del config[key]
        else:
            config[key] = value
    (package / AVATAR_JSON).write_text(json.dumps(config))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"format_version": 2}, "'format_version' is 2, expected 1"),
        ({"format": "something-else"}, "'format' is 'something-else'"),
        ({"units": "cm"}, "'units' is 'cm', expected 'm'"),
        ({"latent_size": None}, "'latent_size' is missing"),
        ({"texture_size": "256"}, "'texture_size' is str '256', expected an integer"),
        ({"texture_size": True}, "'texture_size' is bool"),
        ({"topology": {"num_vertices": 99, "num_faces": 50, "num_uvs": 36}}, "'topology.num_vertices' is 99"),
        ({"landmarks": {"scheme": "mediapipe", "count": 468}}, "'landmarks'"),
    ],
)
def test_wrong_config_fields_are_named(package: Path, changes: dict, message: str) -> None:
    _edit_config(package, **changes)
    with pytest.raises(AvatarFormatError) as error:
        load_avatar_package(package)
    assert AVATAR_JSON in str(error.value)
    assert message in str(error.value)


def test_invalid_json(package: Path) -> None:
    (package / AVATAR_JSON).write_text("{ not json")
    with pytest.raises(AvatarFormatError, match="not valid JSON"):
        load_avatar_package(package)


def test_truncated_weights(package: Path) -> None:
    data = (package / WEIGHTS_FILE).read_bytes()
    (package / WEIGHTS_FILE).write_bytes(data[: len(data) // 2])
    with pytest.raises(AvatarFormatError, match=r"weights.safetensors: not a readable safetensors file"):
        load_avatar_package(package)


def test_weights_without_lighting_network_and_with_nan(tmp_path: Path) -> None:
    tensors = {"dam.decoder.weight": torch.zeros(2, 2)}
    with pytest.raises(AvatarFormatError, match=r"no tensors under 'lighting\.'"):
        save_avatar_package(tmp_path / "a", _config(), tensors, grid_topology())
    tensors = {**_tensors(), "lighting.fc.bias": torch.tensor([0.0, float("nan"), 0.0])}
    with pytest.raises(AvatarFormatError, match=r"'lighting\.fc\.bias' contains NaN"):
        save_avatar_package(tmp_path / "b", _config(), tensors, grid_topology())


def _rewrite_topology(package: Path, **changes: np.ndarray | None) -> None:
    with np.load(package / TOPOLOGY_FILE) as npz:
        arrays = {key: npz[key] for key in npz.files}
    for key, value in changes.items():
        if value is None:
            del arrays[key]
        else:
            arrays[key] = value
    np.savez(package / TOPOLOGY_FILE, **arrays)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"uvs": None}, "array 'uvs' is missing"),
        ({"faces": np.zeros((50, 4), np.int32)}, "'faces' has shape [50, 4], expected [F, 3] int"),
        ({"neutral": np.zeros((36, 3), np.int32)}, "'neutral' has dtype int32"),
        ({"uv_faces": np.zeros((49, 3), np.int32)}, "'uv_faces' has shape [49, 3]"),
        ({"faces": np.full((50, 3), 36, np.int32)}, "'faces' holds vertex indices in [36, 36] but there are only 36"),
        ({"landmark_barycentrics": np.full((68, 3), 0.5, np.float32)}, "sum to 1"),
        ({"neutral": np.full((36, 3), np.nan, np.float32)}, "must be finite"),
    ],
)
def test_wrong_topology_arrays_are_named(package: Path, changes: dict, message: str) -> None:
    _rewrite_topology(package, **changes)
    with pytest.raises(AvatarFormatError) as error:
        load_avatar_package(package)
    assert TOPOLOGY_FILE in str(error.value)
    assert message in str(error.value)


def test_corrupt_topology_file(package: Path) -> None:
    (package / TOPOLOGY_FILE).write_bytes(b"garbage")
    with pytest.raises(AvatarFormatError, match=r"topology\.npz: not a readable \.npz"):
        load_avatar_package(package)
