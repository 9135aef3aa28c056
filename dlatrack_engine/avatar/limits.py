"""How large an avatar package may be, checked before anything is read or allocated.

A 2 MB zip can hold a 2 GiB `avatar.json`; a small `topology.npz` can declare arrays of gigabytes; a
config with `texture_size` 65536 or `mesh_hidden` 10M makes building the networks allocate tens or hundreds
of gigabytes. So: each file's size comes from the zip directory or the file system before it is read, each
array's size from its .npy header before it is decompressed, each config value is range-checked and the
networks' parameter count is computed on the `meta` device (no memory) before they are built. The limits
are generous: an avatar of the paper's size (`train --preset real`, 1024² textures, 36 M parameters) is
far inside them.
"""

from __future__ import annotations

import io
import math
import zipfile
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

MAX_MEMBER_BYTES = {
    "avatar.json": 4 << 20,
    "topology.npz": 256 << 20,
    "weights.safetensors": 1 << 30,
}
MAX_TOPOLOGY_ARRAY_BYTES = 256 << 20
MAX_TOPOLOGY_TOTAL_BYTES = 512 << 20
MAX_PARAMETERS = 100_000_000  # DAM + G, 400 MB as float32; the `real` preset at 2048² textures has 72 M

# Upper bounds of the config's integer sizes (lower bound 1); `texture_size` 2048 is twice the paper's.
MAX_CONFIG_VALUES: dict[str, int] = {
    "texture_size": 2048,
    "latent_size": 1024,
    "dam.num_vertices": 1_000_000,
    "dam.texture_size": 2048,
    "dam.latent_size": 1024,
    "dam.mesh_hidden": 8192,
    "dam.view_features": 256,
    "dam.base_grid": 256,
    "dam.max_channels": 1024,
    "dam.min_channels": 1024,
    "lighting.texture_size": 2048,
    "lighting.code_size": 3000,
    "lighting.pose_size": 64,
    "lighting.input_texture_size": 2048,
    "lighting.mlp_width": 8192,
    "lighting.light_channels": 1024,
    "lighting.texture_channels": 1024,
    "lighting.branch_channels": 1024,
}


class LimitError(ValueError):
    """A package past a limit; the message names the file, the field and the limit."""


def check_member_size(name: str, where: str, size: int) -> None:
    """LimitError when the file `name` of a package is larger than its limit."""
    limit = MAX_MEMBER_BYTES[name]
    if size > limit:
        raise LimitError(f"{where}: {size} bytes, more than the {limit >> 20} MiB an avatar package's {name} may hold")


def _config_value(config: Mapping[str, Any], dotted: str) -> Any:
    value: Any = config
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def check_config_values(config: Mapping[str, Any], where: str) -> None:
    """Every integer size in avatar.json is in [1, its limit] (each element, for lists of widths); a
    missing field or one of another type is left to the format's own checks, which name the type."""
    for dotted, limit in MAX_CONFIG_VALUES.items():
        value = _config_value(config, dotted)
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, int) and not isinstance(item, bool) and not 1 <= item <= limit:
                raise LimitError(f"{where}: field '{dotted}' is {item!r}, expected an integer in [1, {limit}]")


def _count_parameters(build: Callable[[], Any]) -> int:
    import torch

    with torch.device("meta"):  # shapes only: nothing is allocated
        module = build()
    return sum(math.prod(p.shape) for p in module.parameters()) + sum(math.prod(b.shape) for b in module.buffers())


def check_model_size(config: Mapping[str, Any], where: str) -> None:
    """The DAM and G this config describes must stay under MAX_PARAMETERS (counted without allocating)."""
    from dlatrack_engine.models.dam import DAM, DAMConfig
    from dlatrack_engine.models.lighting import LightingConfig, LightingModel

    try:
        dam_config = DAMConfig.from_dict(dict(config["dam"]))
        light_config = LightingConfig.from_dict(dict(config["lighting"]))
    except (ValueError, TypeError, KeyError):
        return  # not a buildable config: avatar.runtime refuses it, naming the field, before building anything
    count = _count_parameters(lambda: DAM(dam_config)) + _count_parameters(lambda: LightingModel(light_config))
    if count > MAX_PARAMETERS:
        raise LimitError(
            f"{where}: fields 'dam'/'lighting' describe networks of {count:,} parameters, more than the "
            f"{MAX_PARAMETERS:,} an avatar may have"
        )


def _npy_header(handle: Any) -> tuple[tuple[int, ...], np.dtype]:
    version = np.lib.format.read_magic(handle)
    if version == (1, 0):
        shape, _fortran, dtype = np.lib.format.read_array_header_1_0(handle)
    else:
        shape, _fortran, dtype = np.lib.format.read_array_header_2_0(handle)
    return shape, dtype


def check_npz_arrays(data: bytes, where: str) -> None:
    """Read each array's .npy header (not its data) and refuse object arrays or sizes past the limits."""
    total = 0
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for info in archive.infolist():
                with archive.open(info) as handle:
                    shape, dtype = _npy_header(handle)
                name = info.filename.removesuffix(".npy")
                if dtype.hasobject:
                    raise LimitError(f"{where}: array '{name}' holds Python objects (dtype {dtype})")
                nbytes = math.prod(shape) * dtype.itemsize
                if nbytes > MAX_TOPOLOGY_ARRAY_BYTES:
                    raise LimitError(
                        f"{where}: array '{name}' declares shape {list(shape)} of {dtype} ({nbytes:,} bytes), more "
                        f"than the {MAX_TOPOLOGY_ARRAY_BYTES >> 20} MiB a topology array may hold"
                    )
                total += nbytes
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as error:
        if isinstance(error, LimitError):
            raise
        raise LimitError(f"{where}: not a readable .npz ({type(error).__name__}: {error})") from error
    if total > MAX_TOPOLOGY_TOTAL_BYTES:
        raise LimitError(f"{where}: arrays total {total:,} bytes, more than {MAX_TOPOLOGY_TOTAL_BYTES >> 20} MiB")
