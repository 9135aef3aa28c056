"""The dlatrack wire protocol: length-prefixed frames of a JSON header plus optional binary blobs.

Shared by the engine server and the Blender add-on (through the `blender_addon/io/wire` symlink), so this
module is stdlib + numpy only. The byte layout is specified in `docs/protocol.md`; in short, one frame is

    prefix (16 bytes, big-endian): magic b"DLTK" | version u16 | reserved u16 (0) | header_len u32 | blobs_len u32
    header: `header_len` bytes of UTF-8 JSON (an object)
    blobs:  `blobs_len` bytes, the concatenation of the blobs described in header["blobs"]

Each blob descriptor is `{"name": str, "kind": "array", "dtype": "float32"|..., "shape": [...], "nbytes": n}`
(little-endian, C order) or `{"name": str, "kind": "png"|"bytes", "nbytes": n}`. Sizes are capped before
anything is allocated, so a hostile or broken peer cannot make the reader allocate gigabytes.
"""

from __future__ import annotations

import json
import math
import re
import socket
import struct
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

MAGIC = b"DLTK"
PROTOCOL_VERSION = 1
PREFIX = struct.Struct(">4sHHII")
PREFIX_SIZE = PREFIX.size  # 16

MAX_HEADER_BYTES = 1 << 20  # 1 MiB of JSON is far more than any request needs.
DEFAULT_MAX_BLOB_BYTES = 512 << 20  # Uploaded videos; raise with the server's --max-frame-mb.
MAX_BLOBS = 4096
MAX_NDIM = 8
MAX_JSON_DEPTH = 32  # requests nest 3-4 levels; deeper is an attack on the parser, not a request
RECV_CHUNK = 1 << 20  # a frame's buffer grows by at most this much per read: memory follows the data
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")

# Array dtypes allowed on the wire (little-endian). float32 for geometry/images, int32 for topology indices,
# uint8/uint16 for raw images; anything else is refused rather than guessed.
ARRAY_DTYPES = {"float32": "<f4", "int32": "<i4", "uint8": "|u1", "uint16": "<u2", "float64": "<f8", "int64": "<i8"}
BYTES_KINDS = ("png", "bytes")


class ProtocolError(Exception):
    """A frame that cannot be accepted; `code` is machine-readable, the message names the problem.

    `fatal` means the byte stream can no longer be trusted (bad magic, oversized, truncated) and the
    connection must be closed after reporting; non-fatal errors consumed exactly one frame.
    """

    def __init__(self, code: str, message: str, fatal: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.fatal = fatal

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


class ConnectionClosed(ProtocolError):
    """The peer closed the connection (cleanly between frames, or mid-frame)."""

    def __init__(self, message: str = "connection closed by peer") -> None:
        super().__init__("connection_closed", message, fatal=True)


Blob = np.ndarray | bytes


@dataclass
class Message:
    """One decoded frame: the JSON header (without the "blobs" descriptor list) and its named blobs."""

    header: dict[str, Any]
    blobs: dict[str, Blob] = field(default_factory=dict)

    @property
    def type(self) -> str | None:
        value = self.header.get("type")
        return value if isinstance(value, str) else None


def _describe_blob(name: str, value: Any) -> tuple[dict[str, Any], bytes]:
    if not isinstance(name, str) or not name:
        raise ProtocolError("bad_blob", f"blob name {name!r} must be a non-empty string")
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        kind = "png" if data[:8] == b"\x89PNG\r\n\x1a\n" else "bytes"
        return {"name": name, "kind": kind, "nbytes": len(data)}, data
    if isinstance(value, np.ndarray):
        dtype_name = value.dtype.name
        if dtype_name not in ARRAY_DTYPES:
            raise ProtocolError(
                "bad_blob", f"blob '{name}': dtype {dtype_name} is not sendable (allowed: {sorted(ARRAY_DTYPES)})"
            )
        data = np.ascontiguousarray(value, dtype=np.dtype(ARRAY_DTYPES[dtype_name])).tobytes()
        desc = {"name": name, "kind": "array", "dtype": dtype_name, "shape": list(value.shape), "nbytes": len(data)}
        return desc, data
    raise ProtocolError("bad_blob", f"blob '{name}': expected numpy array or bytes, got {type(value).__name__}")


def encode_frame(header: Mapping[str, Any], blobs: Mapping[str, Any] | None = None) -> bytes:
    """Serialise one frame. `header` must be JSON-serialisable; a "blobs" key in it is overwritten."""
    descriptors: list[dict[str, Any]] = []
    chunks: list[bytes] = []
    for name, value in (blobs or {}).items():
        desc, data = _describe_blob(name, value)
        descriptors.append(desc)
        chunks.append(data)
    full_header = dict(header)
    if descriptors:
        full_header["blobs"] = descriptors
    else:
        full_header.pop("blobs", None)
    try:
        header_bytes = json.dumps(full_header, separators=(",", ":"), allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise ProtocolError("bad_header", f"header is not JSON-serialisable: {exc}") from exc
    body = b"".join(chunks)
    if len(header_bytes) > MAX_HEADER_BYTES:
        raise ProtocolError("frame_too_large", f"header is {len(header_bytes)} bytes (max {MAX_HEADER_BYTES})")
    if len(body) > 0xFFFFFFFF:
        raise ProtocolError("frame_too_large", f"blobs total {len(body)} bytes (max 4 GiB per frame)")
    return PREFIX.pack(MAGIC, PROTOCOL_VERSION, 0, len(header_bytes), len(body)) + header_bytes + body


def parse_prefix(
    prefix: bytes, max_blob_bytes: int = DEFAULT_MAX_BLOB_BYTES, max_header_bytes: int = MAX_HEADER_BYTES
) -> tuple[int, int]:
    """Validate the 16-byte prefix and return (header_len, blobs_len); errors here are fatal."""
    if len(prefix) != PREFIX_SIZE:
        raise ProtocolError("truncated_frame", f"frame prefix is {len(prefix)} bytes, expected {PREFIX_SIZE}", True)
    magic, version, _reserved, header_len, blobs_len = PREFIX.unpack(prefix)
    if magic != MAGIC:
        raise ProtocolError(
            "bad_magic", f"frame starts with {magic!r}, expected {MAGIC!r} (not a dlatrack peer?)", True
        )
    if version != PROTOCOL_VERSION:
        raise ProtocolError(
            "unsupported_version",
            f"protocol version {version} is not supported (this side speaks {PROTOCOL_VERSION})",
            True,
        )
    if header_len == 0 or header_len > max_header_bytes:
        raise ProtocolError("frame_too_large", f"header length {header_len} outside 1..{max_header_bytes} bytes", True)
    if blobs_len > max_blob_bytes:
        raise ProtocolError(
            "frame_too_large", f"blobs length {blobs_len} exceeds the cap of {max_blob_bytes} bytes", True
        )
    return header_len, blobs_len


def _check_descriptor(desc: Any, index: int) -> tuple[str, str, int, str | None, tuple[int, ...]]:
    where = f"header.blobs[{index}]"
    if not isinstance(desc, dict):
        raise ProtocolError("malformed_header", f"{where} must be an object, got {type(desc).__name__}")
    name, kind, nbytes = desc.get("name"), desc.get("kind"), desc.get("nbytes")
    if not isinstance(name, str) or not name:
        raise ProtocolError("malformed_header", f"{where}.name must be a non-empty string")
    if not isinstance(nbytes, int) or isinstance(nbytes, bool) or nbytes < 0:
        raise ProtocolError("malformed_header", f"{where} ('{name}').nbytes must be a non-negative integer")
    if kind in BYTES_KINDS:
        return name, kind, nbytes, None, ()
    if kind != "array":
        raise ProtocolError("malformed_header", f"{where} ('{name}').kind {kind!r} is not one of array, png, bytes")
    dtype, shape = desc.get("dtype"), desc.get("shape")
    if dtype not in ARRAY_DTYPES:
        raise ProtocolError("malformed_header", f"{where} ('{name}').dtype {dtype!r} not in {sorted(ARRAY_DTYPES)}")
    if (
        not isinstance(shape, list)
        or len(shape) > MAX_NDIM
        or not all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s < 2**31 for s in shape)
    ):
        raise ProtocolError("malformed_header", f"{where} ('{name}').shape must be a list of <= {MAX_NDIM} sizes >= 0")
    expected = math.prod(shape) * np.dtype(ARRAY_DTYPES[dtype]).itemsize
    if expected != nbytes:
        raise ProtocolError(
            "malformed_header",
            f"{where} ('{name}'): shape {shape} of {dtype} needs {expected} bytes, nbytes says {nbytes}",
        )
    return name, kind, nbytes, dtype, tuple(shape)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number (NaN and Infinity are not allowed)")


def _json_depth(value: Any) -> int:
    """Nesting depth of parsed JSON, without recursion (the input is untrusted)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth)
            if deepest > MAX_JSON_DEPTH:
                return deepest
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def parse_header(header_bytes: bytes | bytearray) -> dict[str, Any]:
    """Parse a header, refusing what JSON permits but a request must not hold: NaN/Infinity, integers of
    thousands of digits, nesting deeper than MAX_JSON_DEPTH and lone UTF-16 surrogates (which no string
    operation downstream can encode). Every refusal is a non-fatal `malformed_header`."""
    try:
        text = header_bytes.decode("utf-8")
        header = json.loads(text, parse_constant=_reject_constant)
    except RecursionError as exc:
        raise ProtocolError("malformed_header", "header JSON is nested too deeply") from exc
    except ValueError as exc:  # UnicodeDecodeError, JSONDecodeError, NaN, over-long integers
        raise ProtocolError("malformed_header", f"header is not valid UTF-8 JSON: {exc}") from exc
    if not isinstance(header, dict):
        raise ProtocolError("malformed_header", f"header must be a JSON object, got {type(header).__name__}")
    if _json_depth(header) > MAX_JSON_DEPTH:
        raise ProtocolError("malformed_header", f"header JSON nests deeper than {MAX_JSON_DEPTH} levels")
    if _SURROGATE_ESCAPE.search(text):
        try:
            json.dumps(header, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ProtocolError("malformed_header", f"header holds a lone UTF-16 surrogate ({exc.reason})") from exc
    return header


def decode_body(header_bytes: bytes | bytearray, body: bytes | bytearray) -> Message:
    """Decode header JSON and split the blobs; raises a non-fatal ProtocolError on any inconsistency."""
    header = parse_header(header_bytes)
    descriptors = header.pop("blobs", [])
    if not isinstance(descriptors, list) or len(descriptors) > MAX_BLOBS:
        raise ProtocolError("malformed_header", f"header.blobs must be a list of at most {MAX_BLOBS} descriptors")
    blobs: dict[str, Blob] = {}
    offset = 0
    for index, desc in enumerate(descriptors):
        name, kind, nbytes, dtype, shape = _check_descriptor(desc, index)
        if name in blobs:
            raise ProtocolError("malformed_header", f"blob name '{name}' appears twice")
        if offset + nbytes > len(body):
            raise ProtocolError(
                "malformed_header", f"blob '{name}' ends at byte {offset + nbytes} but the frame carries {len(body)}"
            )
        chunk = memoryview(body)[offset : offset + nbytes]  # no copy until the blob's own
        offset += nbytes
        if kind == "array":
            blobs[name] = np.frombuffer(chunk, dtype=np.dtype(ARRAY_DTYPES[dtype])).reshape(shape).astype(dtype)
        else:
            blobs[name] = bytes(chunk)
    if offset != len(body):
        raise ProtocolError(
            "malformed_header", f"blob descriptors cover {offset} bytes but the frame carries {len(body)}"
        )
    return Message(header, blobs)


Reserve = Callable[[int], None]


def _recv_exactly(
    sock: socket.socket, size: int, what: str, deadline: float | None = None, reserve: Reserve | None = None
) -> bytearray:
    """Read `size` bytes. The buffer grows as data arrives (a peer that announces 500 MB and sends nothing
    costs nothing); `reserve(n)` is told of each growth and may refuse it by raising; past `deadline`
    (time.monotonic()) the read raises TimeoutError however slowly the bytes trickle in."""
    buffer = bytearray()
    scratch = bytearray(min(size, RECV_CHUNK))
    while len(buffer) < size:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"deadline passed while reading the frame {what}")
            sock.settimeout(remaining)
        count = sock.recv_into(scratch, min(size - len(buffer), len(scratch)))
        if count == 0:
            if not buffer and what == "prefix":
                raise ConnectionClosed()
            raise ConnectionClosed(f"connection closed inside the frame {what} ({len(buffer)} of {size} bytes)")
        if reserve is not None:
            reserve(count)
        buffer += memoryview(scratch)[:count]
    return buffer


def recv_message(
    sock: socket.socket,
    max_blob_bytes: int = DEFAULT_MAX_BLOB_BYTES,
    *,
    max_header_bytes: int = MAX_HEADER_BYTES,
    deadline: float | None = None,
    reserve: Reserve | None = None,
) -> Message:
    """Read one frame from a blocking socket. Fatal errors mean: report (if possible) and close.

    `deadline` (time.monotonic()) bounds the whole frame, not each read; `reserve(n)` accounts for every
    buffered byte (the server's budget across connections)."""
    prefix = _recv_exactly(sock, PREFIX_SIZE, "prefix", deadline)
    header_len, blobs_len = parse_prefix(bytes(prefix), max_blob_bytes, max_header_bytes)
    header_bytes = _recv_exactly(sock, header_len, "header", deadline, reserve)
    body = _recv_exactly(sock, blobs_len, "blobs", deadline, reserve) if blobs_len else b""
    return decode_body(header_bytes, body)


def send_message(sock: socket.socket, header: Mapping[str, Any], blobs: Mapping[str, Any] | None = None) -> None:
    """Write one frame to a blocking socket (callers sharing a socket between threads must hold a lock)."""
    sock.sendall(encode_frame(header, blobs))


def error_header(code: str, message: str, reply_to: Any = None) -> dict[str, Any]:
    """The reply to a request that failed: `{"type": "reply", "ok": false, "error": {code, message}}`."""
    header: dict[str, Any] = {"type": "reply", "ok": False, "error": {"code": code, "message": message}}
    if reply_to is not None:
        header["reply_to"] = reply_to
    return header
