"""wire/protocol.py's refusals name the offence exactly (code and message), and blob kinds are detected from
the bytes; written against the mutants mutmut left alive (bench/RESULTS.md, "Mutation score")."""

from __future__ import annotations

import numpy as np
import pytest

from dlatrack_engine.wire import protocol
from dlatrack_engine.wire.protocol import ProtocolError

PNG = b"\x89PNG\r\n\x1a\n"
WHERE = "header.blobs[2]"


@pytest.mark.parametrize(("desc", "message"), [
    ([1], f"{WHERE} must be an object, got list"),
    ({"name": "", "kind": "bytes", "nbytes": 1}, f"{WHERE}.name must be a non-empty string"),
    ({"name": 5, "kind": "bytes", "nbytes": 1}, f"{WHERE}.name must be a non-empty string"),
    ({"name": "a", "kind": "bytes", "nbytes": -1}, f"{WHERE} ('a').nbytes must be a non-negative integer"),
    ({"name": "a", "kind": "bytes", "nbytes": True}, f"{WHERE} ('a').nbytes must be a non-negative integer"),
    ({"name": "a", "kind": "bytes", "nbytes": 1.0}, f"{WHERE} ('a').nbytes must be a non-negative integer"),
    ({"name": "a", "kind": "jpeg", "nbytes": 1}, f"{WHERE} ('a').kind 'jpeg' is not one of array, png, bytes"),
    ({"name": "a", "kind": "array", "nbytes": 0, "dtype": "uint8", "shape": [1] * 9},
     f"{WHERE} ('a').shape must be a list of <= 8 sizes >= 0"),
    ({"name": "a", "kind": "array", "nbytes": 2**31, "dtype": "uint8", "shape": [2**31]},
     f"{WHERE} ('a').shape must be a list of <= 8 sizes >= 0"),
    ({"name": "a", "kind": "array", "nbytes": 0, "dtype": "uint8", "shape": (0,)},
     f"{WHERE} ('a').shape must be a list of <= 8 sizes >= 0"),
])
def test_bad_descriptors_are_refused_by_name(desc, message):
    with pytest.raises(ProtocolError) as caught:
        protocol._check_descriptor(desc, 2)
    assert (caught.value.code, caught.value.message) == ("malformed_header", message)


def test_descriptor_limits_are_inclusive_where_documented():
    eight = {"name": "a", "kind": "array", "nbytes": 1, "dtype": "uint8", "shape": [1] * 8}
    assert protocol._check_descriptor(eight, 0) == ("a", "array", 1, "uint8", (1,) * 8)
    big = {"name": "b", "kind": "array", "nbytes": 2**31 - 1, "dtype": "uint8", "shape": [2**31 - 1]}
    assert protocol._check_descriptor(big, 0)[4] == (2**31 - 1,)
    assert protocol._check_descriptor({"name": "c", "kind": "bytes", "nbytes": 0}, 0) == ("c", "bytes", 0, None, ())


@pytest.mark.parametrize(("name", "value", "message"), [
    ("", b"x", "blob name '' must be a non-empty string"),
    (3, b"x", "blob name 3 must be a non-empty string"),
    ("a", np.zeros(2, np.complex64), "blob 'a': dtype complex64 is not sendable (allowed: "
     "['float32', 'float64', 'int32', 'int64', 'uint16', 'uint8'])"),
    ("a", [1, 2], "blob 'a': expected numpy array or bytes, got list"),
])
def test_unsendable_blobs_are_refused_by_name(name, value, message):
    with pytest.raises(ProtocolError) as caught:
        protocol._describe_blob(name, value)
    assert (caught.value.code, caught.value.message) == ("bad_blob", message)


def test_blob_kind_comes_from_the_png_signature():
    assert protocol._describe_blob("p", PNG + b"rest")[0]["kind"] == "png"
    assert protocol._describe_blob("b", b"\x89png\r\n\x1a\nrest")[0]["kind"] == "bytes"
    assert protocol._describe_blob("b", b"plain")[0] == {"name": "b", "kind": "bytes", "nbytes": 5}
    big_endian = np.arange(3, dtype=">f4")  # sent little-endian, whatever the caller's byte order
    desc, data = protocol._describe_blob("x", big_endian)
    assert data == np.arange(3, dtype="<f4").tobytes() and desc["dtype"] == "float32"
