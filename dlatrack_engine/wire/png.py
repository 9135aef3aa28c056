"""Minimal PNG encode/decode (8/16-bit gray, RGB, RGBA; non-interlaced) with stdlib zlib + numpy.

The wire package must run inside Blender's Python without OpenCV or imageio, yet the job folder and the
protocol carry textures as PNG; this covers exactly the PNGs dlatrack writes (and most others).
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
_COLOUR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> PNG colour type
_CHANNELS = {0: 1, 4: 2, 2: 3, 6: 4}


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def encode_png(image: np.ndarray, compression: int = 6) -> bytes:
    """Encode `[H, W]` or `[H, W, C]` (C in 1..4) uint8/uint16 as PNG; row 0 is the top of the image."""
    if image.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"encode_png: dtype {image.dtype} not supported (expected uint8 or uint16)")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in _COLOUR_TYPES or image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"encode_png: shape {image.shape} not supported (expected [H, W] or [H, W, 1..4])")
    height, width, channels = image.shape
    bit_depth = 8 if image.dtype == np.uint8 else 16
    rows = np.ascontiguousarray(image, dtype=">u2" if bit_depth == 16 else np.uint8).reshape(height, -1)
    raw = np.zeros((height, rows.view(np.uint8).shape[1] + 1), dtype=np.uint8)  # filter byte 0 per row
    raw[:, 1:] = rows.view(np.uint8)
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, _COLOUR_TYPES[channels], 0, 0, 0)
    return b"".join(
        [
            SIGNATURE,
            _chunk(b"IHDR", ihdr),
            _chunk(b"IDAT", zlib.compress(raw.tobytes(), compression)),
            _chunk(b"IEND", b""),
        ]
    )


def _unfilter(data: np.ndarray, height: int, stride: int, bpp: int) -> np.ndarray:
    out = np.zeros((height, stride), dtype=np.uint8)
    rows = data.reshape(height, stride + 1)
    previous = np.zeros(stride, dtype=np.int32)
    for y in range(height):
        kind, line = rows[y, 0], rows[y, 1:].astype(np.int32)
        if kind == 0:
            cur = line
        elif kind == 2:
            cur = (line + previous) & 0xFF
        elif kind in (1, 3, 4):  # these depend on the left neighbour: sequential per byte
            cur = np.zeros(stride, dtype=np.int32)
            for x in range(stride):
                left = cur[x - bpp] if x >= bpp else 0
                up = previous[x]
                if kind == 1:
                    pred = left
                elif kind == 3:
                    pred = (left + up) // 2
                else:
                    up_left = previous[x - bpp] if x >= bpp else 0
                    p = left + up - up_left
                    pa, pb, pc = abs(p - left), abs(p - up), abs(p - up_left)
                    pred = left if pa <= pb and pa <= pc else (up if pb <= pc else up_left)
                cur[x] = (line[x] + pred) & 0xFF
        else:
            raise ValueError(f"PNG row {y}: unknown filter type {kind}")
        out[y] = cur
        previous = cur
    return out


def decode_png(data: bytes) -> np.ndarray:
    """Decode a non-interlaced, non-palette PNG to `[H, W, C]` uint8 or uint16."""
    if data[:8] != SIGNATURE:
        raise ValueError("not a PNG (bad signature)")
    pos, idat, header = 8, [], None
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        tag = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if len(body) != length:
            raise ValueError(f"PNG chunk {tag!r} truncated ({len(body)} of {length} bytes)")
        if tag == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif tag == b"IDAT":
            idat.append(body)
        elif tag == b"IEND":
            break
        pos += 12 + length
    if header is None:
        raise ValueError("PNG has no IHDR chunk")
    width, height, depth, colour, _, _, interlace = header
    if colour not in _CHANNELS or depth not in (8, 16) or interlace:
        raise ValueError(f"PNG colour type {colour}, depth {depth}, interlace {interlace} not supported")
    channels = _CHANNELS[colour]
    bpp = channels * depth // 8
    stride = width * bpp
    raw = np.frombuffer(zlib.decompress(b"".join(idat)), dtype=np.uint8)
    if raw.size != height * (stride + 1):
        raise ValueError(f"PNG data is {raw.size} bytes, expected {height * (stride + 1)} for {width}x{height}")
    pixels = _unfilter(raw, height, stride, bpp)
    if depth == 16:
        return pixels.view(">u2").astype(np.uint16).reshape(height, width, channels)
    return pixels.reshape(height, width, channels)
