"""Read Blender's multi-layer OpenEXR render output (uncompressed, scanline) with numpy and the stdlib.

Cycles writes every render pass (combined, one per light group, object index, depth) into one multi-part
EXR when the output's media type is MULTI_LAYER_IMAGE. Blender's Python has no EXR reader that exposes
the passes and OpenCV reads only single-part files, so this reads exactly what the sample generator asks
Blender to write: codec NONE, scanline parts, HALF/FLOAT/UINT channels. Anything else is refused with a
message that says what was found.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

MAGIC = 20000630
_PIXEL_TYPES = {0: np.dtype("<u4"), 1: np.dtype("<f2"), 2: np.dtype("<f4")}
_MULTIPART_FLAG = 0x1000
_TILED_FLAG = 0x200


class ExrError(ValueError):
    """The file is not an EXR this reader handles; the message names the file and the reason."""


def _read_cstr(data: bytes, pos: int) -> tuple[str, int]:
    end = data.index(b"\x00", pos)
    return data[pos:end].decode("latin-1"), end + 1


def _parse_channels(raw: bytes) -> list[tuple[str, int]]:
    channels, pos = [], 0
    while raw[pos] != 0:
        name, pos = _read_cstr(raw, pos)
        pixel_type = struct.unpack_from("<i", raw, pos)[0]
        x_sampling, y_sampling = struct.unpack_from("<ii", raw, pos + 8)
        if (x_sampling, y_sampling) != (1, 1):
            raise ValueError(f"channel '{name}' is subsampled ({x_sampling}x{y_sampling})")
        channels.append((name, pixel_type))
        pos += 16
    return channels


def _parse_header(data: bytes, pos: int, where: str) -> tuple[dict, int]:
    header: dict = {}
    while data[pos] != 0:
        name, pos = _read_cstr(data, pos)
        kind, pos = _read_cstr(data, pos)
        size = struct.unpack_from("<i", data, pos)[0]
        raw = data[pos + 4 : pos + 4 + size]
        pos += 4 + size
        if kind == "chlist":
            header[name] = _parse_channels(raw)
        elif kind == "box2i":
            header[name] = struct.unpack("<4i", raw)
        elif kind == "compression":
            header[name] = raw[0]
        elif kind == "int":
            header[name] = struct.unpack("<i", raw)[0]
        elif kind == "string":
            header[name] = raw.decode("latin-1")
        else:
            header[name] = raw
    if "channels" not in header or "dataWindow" not in header:
        raise ExrError(f"{where}: a part header has no 'channels' or 'dataWindow'")
    return header, pos + 1


def read_multilayer_exr(path: str | Path) -> dict[str, np.ndarray]:
    """All channels of an uncompressed scanline (multi-part) EXR as `{"Layer.Pass.C": [H, W] float32}`.

    Row 0 is the top of the image, as in the file.
    """
    where = str(path)
    data = Path(path).read_bytes()
    if len(data) < 8 or struct.unpack_from("<i", data, 0)[0] != MAGIC:
        raise ExrError(f"{where}: not an OpenEXR file (bad magic number)")
    flags = struct.unpack_from("<I", data, 4)[0]
    if flags & _TILED_FLAG:
        raise ExrError(f"{where}: tiled EXR is not supported (expected scanline parts)")
    multipart = bool(flags & _MULTIPART_FLAG)
    pos, headers = 8, []
    while True:
        header, pos = _parse_header(data, pos, where)
        headers.append(header)
        if not multipart or data[pos] == 0:
            break
    if multipart:
        pos += 1  # the empty header that ends the list
    out: dict[str, np.ndarray] = {}
    for part, header in enumerate(headers):
        if header.get("compression", 0) != 0:
            raise ExrError(
                f"{where}: part {part} uses compression {header.get('compression')} (expected 0 = NONE; "
                "set image_settings.exr_codec = 'NONE')"
            )
        x0, y0, x1, y1 = header["dataWindow"]
        width, height = x1 - x0 + 1, y1 - y0 + 1
        count = header.get("chunkCount", height)
        offsets = np.frombuffer(data, "<u8", count, pos)
        pos += 8 * count
        channels = sorted(header["channels"])
        try:
            dtypes = [_PIXEL_TYPES[t] for _, t in channels]
        except KeyError as error:
            raise ExrError(f"{where}: unknown pixel type {error} in part {part}") from error
        planes = {name: np.empty((height, width), np.float32) for name, _ in channels}
        for offset in offsets:
            at = int(offset) + (4 if multipart else 0)
            y, size = struct.unpack_from("<ii", data, at)
            at += 8
            lines = size // (width * sum(dt.itemsize for dt in dtypes))
            for line in range(lines):
                for (name, _), dt in zip(channels, dtypes, strict=True):
                    planes[name][y - y0 + line] = np.frombuffer(data, dt, width, at)
                    at += width * dt.itemsize
        prefix = header.get("name", "")
        for name, plane in planes.items():
            out[f"{prefix}.{name}" if prefix and not name.startswith(prefix) else name] = plane
    return out


def pass_rgb(channels: dict[str, np.ndarray], pass_name: str, where: str = "EXR") -> np.ndarray:
    """`[H, W, 3]` from the R, G, B channels of one pass, e.g. 'ViewLayer.Combined'."""
    try:
        return np.stack([channels[f"{pass_name}.{c}"] for c in "RGB"], axis=-1)
    except KeyError as error:
        known = sorted({k.rsplit(".", 1)[0] for k in channels})
        raise ExrError(f"{where}: pass '{pass_name}' missing channel {error}; passes present: {known}") from error
