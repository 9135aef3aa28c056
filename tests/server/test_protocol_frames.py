"""wire/protocol.py's frames byte for byte (docs/protocol.md: big-endian prefix "DLTK" | version 1 | reserved 0
| header_len | blobs_len, then compact UTF-8 JSON), every prefix and header refusal by code, message and
fatality, and the inclusive limits. Written against the mutants mutmut left alive in a full run over
protocol.py (bench/RESULTS.md, "Mutation score")."""

from __future__ import annotations

import struct

import pytest

from dlatrack_engine.wire import protocol
from dlatrack_engine.wire.protocol import MAX_BLOBS, MAX_HEADER_BYTES, MAX_JSON_DEPTH, ProtocolError


def _prefix(header_len: int, blobs_len: int, version: int = 1) -> bytes:
    return b"DLTK" + struct.pack(">HHII", version, 0, header_len, blobs_len)


def _refusal(call, *args) -> tuple[str, str, bool]:
    with pytest.raises(ProtocolError) as caught:
        call(*args)
    return caught.value.code, caught.value.message, caught.value.fatal


def test_a_frame_is_the_documented_bytes():
    header = {"type": "ping", "id": 7, "a": [1, 2], "blobs": ["stale"]}  # a "blobs" key without blobs is dropped
    json_bytes = b'{"type":"ping","id":7,"a":[1,2]}'
    assert protocol.encode_frame(header) == _prefix(len(json_bytes), 0) + json_bytes
    framed = protocol.encode_frame({"type": "x"}, {"b": b"abc"})
    json_bytes = b'{"type":"x","blobs":[{"name":"b","kind":"bytes","nbytes":3}]}'
    assert framed == _prefix(len(json_bytes), 3) + json_bytes + b"abc"


def test_headers_that_json_cannot_carry_are_refused():
    code, message, fatal = _refusal(protocol.encode_frame, {"focal": float("nan")})
    assert (code, fatal) == ("bad_header", False) and message.startswith("header is not JSON-serialisable: ")
    code, message, _ = _refusal(protocol.encode_frame, {"when": object()})
    assert code == "bad_header" and "object is not JSON serializable" in message


def test_the_header_limit_is_inclusive():
    padding = MAX_HEADER_BYTES - len(b'{"p":""}')
    frame = protocol.encode_frame({"p": "x" * padding})
    assert protocol.parse_prefix(frame[:16]) == (MAX_HEADER_BYTES, 0)
    assert _refusal(protocol.encode_frame, {"p": "x" * (padding + 1)}) == (
        "frame_too_large", f"header is {MAX_HEADER_BYTES + 1} bytes (max {MAX_HEADER_BYTES})", False
    )  # fmt: skip


def test_prefix_refusals_are_fatal_and_named():
    assert _refusal(protocol.parse_prefix, b"DLTK\x00") == (
        "truncated_frame", "frame prefix is 5 bytes, expected 16", True
    )  # fmt: skip
    assert _refusal(protocol.parse_prefix, _prefix(2, 0, version=2)) == (
        "unsupported_version", "protocol version 2 is not supported (this side speaks 1)", True
    )  # fmt: skip
    for header_len in (0, 101):
        assert _refusal(protocol.parse_prefix, _prefix(header_len, 0), 50, 100) == (
            "frame_too_large", f"header length {header_len} outside 1..100 bytes", True
        )  # fmt: skip
    assert _refusal(protocol.parse_prefix, _prefix(1, 51), 50, 100) == (
        "frame_too_large", "blobs length 51 exceeds the cap of 50 bytes", True
    )  # fmt: skip


def test_prefix_limits_are_inclusive():
    assert protocol.parse_prefix(_prefix(1, 0), 50, 100) == (1, 0)
    assert protocol.parse_prefix(_prefix(100, 50), 50, 100) == (100, 50)


def test_json_depth_counts_containers():
    assert protocol._json_depth(5) == 0
    assert protocol._json_depth({}) == 1
    assert protocol._json_depth({"a": [1, {"b": []}]}) == 4
    assert protocol._json_depth([[], [[[]]]]) == 4


def _nested(depth: int) -> bytes:
    """A JSON object nesting `depth` containers: {"a":[[...]]}."""
    return b'{"a":' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"


def test_header_nesting_limit_is_inclusive_and_named():
    assert protocol._json_depth(protocol.parse_header(_nested(MAX_JSON_DEPTH))) == MAX_JSON_DEPTH
    assert _refusal(protocol.parse_header, _nested(MAX_JSON_DEPTH + 1)) == (
        "malformed_header", f"header JSON nests deeper than {MAX_JSON_DEPTH} levels", False
    )  # fmt: skip
    assert _refusal(protocol.parse_header, _nested(200_000)) == (
        "malformed_header", "header JSON is nested too deeply", False
    )  # fmt: skip


def test_header_refusals_name_the_offence():
    assert _refusal(protocol.parse_header, b"[1, 2]") == (
        "malformed_header", "header must be a JSON object, got list", False
    )  # fmt: skip
    assert _refusal(protocol.parse_header, b'{"f": NaN}') == (
        "malformed_header",
        "header is not valid UTF-8 JSON: NaN is not a JSON number (NaN and Infinity are not allowed)",
        False,
    )
    assert _refusal(protocol.parse_header, b'{"a": "\\ud800"}') == (
        "malformed_header", "header holds a lone UTF-16 surrogate (surrogates not allowed)", False
    )  # fmt: skip
    assert protocol.parse_header(b'{"a": "\\ud83d\\ude00"}') == {"a": "\U0001f600"}  # a pair is a character


def test_the_blob_count_limit_is_inclusive_and_refusals_name_the_descriptor():
    many = b'{"blobs":[' + b",".join(b'{"name":"b%d","kind":"bytes","nbytes":0}' % i for i in range(MAX_BLOBS)) + b"]}"
    assert len(protocol.decode_body(many, b"").blobs) == MAX_BLOBS
    too_many = many[:-2] + b',{"name":"x","kind":"bytes","nbytes":0}]}'
    assert _refusal(protocol.decode_body, too_many, b"") == (
        "malformed_header", f"header.blobs must be a list of at most {MAX_BLOBS} descriptors", False
    )  # fmt: skip
    second_bad = b'{"blobs":[{"name":"a","kind":"bytes","nbytes":1},{"name":"b","kind":"gif","nbytes":0}]}'
    assert _refusal(protocol.decode_body, second_bad, b"x")[1].startswith("header.blobs[1] ('b').kind 'gif'")


def test_error_replies_and_error_dicts():
    assert protocol.error_header("busy", "try later") == {
        "type": "reply", "ok": False, "error": {"code": "busy", "message": "try later"}
    }  # fmt: skip
    assert protocol.error_header("busy", "try later", reply_to=0)["reply_to"] == 0  # 0 is an id, not "none"
    assert "reply_to" not in protocol.error_header("busy", "try later", reply_to=None)
    assert ProtocolError("bad_blob", "blob 'a' is odd").to_dict() == {"code": "bad_blob", "message": "blob 'a' is odd"}
