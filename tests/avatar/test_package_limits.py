"""Issue 19, class 5: avatar packages past the size limits are refused, naming the file and field, before
the big part is read or allocated (tracemalloc sees numpy's and Python's allocations)."""

from __future__ import annotations

import json
import struct
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from grid_topology import grid_topology
from test_format import _config, _tensors

from dlatrack_engine.avatar.format import AvatarFormatError, load_avatar_package, save_avatar_package
from dlatrack_engine.avatar.limits import MAX_PARAMETERS


def _peak_bytes(call: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        with pytest.raises(AvatarFormatError):
            call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.fixture
def package(tmp_path: Path) -> Path:
    return save_avatar_package(tmp_path / "avatar", _config(), _tensors(), grid_topology())


def test_a_huge_avatar_json_in_a_small_zip_is_not_read(tmp_path: Path, package: Path) -> None:
    """Before: a zip of 64 KiB holding 64 MiB of JSON was read whole (2 GiB took 4.8 GB)."""
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open("avatar.json", "w") as handle:
            for _ in range(64):
                handle.write(b" " * (1 << 20))
        for name in ("weights.safetensors", "topology.npz"):
            archive.write(package / name, name)
    assert path.stat().st_size < 1 << 20
    peak = _peak_bytes(lambda: load_avatar_package(path))
    assert peak < 8 << 20, f"{peak >> 20} MiB allocated"
    with pytest.raises(AvatarFormatError, match=r"bomb\.zip:avatar\.json: 67108864 bytes, more than the 4 MiB"):
        load_avatar_package(path)


def _npy_header(shape: tuple[int, ...], dtype: str) -> bytes:
    text = repr({"descr": np.dtype(dtype).str, "fortran_order": False, "shape": shape}).encode()
    text += b" " * (-(len(text) + 11) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text


def test_a_topology_array_declaring_gigabytes_is_not_allocated(package: Path) -> None:
    """Before: the declared shape was allocated, then filled (a small npz expanded to 3.6 GB)."""
    with zipfile.ZipFile(package / "topology.npz", "w") as archive:  # the header alone: the data never comes
        archive.writestr("faces.npy", _npy_header((30_000_000, 3), "<i4") + bytes(64))
    peak = _peak_bytes(lambda: load_avatar_package(package))
    assert peak < 64 << 20, f"{peak >> 20} MiB allocated"
    with pytest.raises(AvatarFormatError, match=r"topology\.npz: array 'faces' declares shape \[30000000, 3\]"):
        load_avatar_package(package)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"texture_size": 65536}, "'texture_size' is 65536"),
        ({"dam": {"latent_size": 4, "mesh_hidden": 10_000_000}}, "'dam.mesh_hidden' is 10000000"),
        ({"lighting": {"code_size": 150, "light_channels": [8, 8, 1 << 20, 8, 8]}}, "'lighting.light_channels'"),
        ({"latent_size": 0}, "'latent_size' is 0"),
    ],
)
def test_config_values_past_the_limits_are_named(package: Path, change: dict, field: str) -> None:
    """Before: texture_size 65536 or mesh_hidden 10M reached the network constructors (17 GB, 593 GB)."""
    config = json.loads((package / "avatar.json").read_text())
    config.update(change)
    (package / "avatar.json").write_text(json.dumps(config))
    with pytest.raises(AvatarFormatError, match=rf"avatar\.json: field {field}"):
        load_avatar_package(package)


def test_networks_past_the_parameter_limit_are_refused_before_they_are_built(package: Path) -> None:
    """Each size within its limit, together too large: counted on the meta device."""
    config = json.loads((package / "avatar.json").read_text())
    config["dam"] = {"num_vertices": 1_000_000, "texture_size": 32, "latent_size": 4, "mesh_hidden": 8192}
    config["lighting"] = {"texture_size": 32, "input_texture_size": 32}
    (package / "avatar.json").write_text(json.dumps(config))
    peak = _peak_bytes(lambda: load_avatar_package(package))
    assert peak < 64 << 20, f"{peak >> 20} MiB allocated"
    with pytest.raises(AvatarFormatError, match=f"more than the {MAX_PARAMETERS:,}"):
        load_avatar_package(package)


def test_an_oversized_weights_file_is_refused_by_its_size(package: Path) -> None:
    with open(package / "weights.safetensors", "r+b") as handle:
        handle.truncate((1 << 30) + 1)  # sparse: costs no disk
    peak = _peak_bytes(lambda: load_avatar_package(package))
    assert peak < 64 << 20
