"""Issue 19, class 8: requests that used to get no reply, a dropped reply or `internal_error`. Each now gets
a reply naming the problem (`malformed_header` / `bad_argument`), and the engine keeps serving."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from types import ModuleType

import pytest
from conftest import Engine
from test_server import raw_connect, raw_hello

from dlatrack_engine.wire import protocol


def _send_raw_header(sock: socket.socket, text: str) -> dict:
    data = text.encode("utf-8")
    sock.sendall(protocol.PREFIX.pack(protocol.MAGIC, 1, 0, len(data), 0) + data)
    return protocol.recv_message(sock).header


RAW_HEADERS = {
    "deep nesting": '{"op": "status", "id": 3, "args": ' + "[" * 100_000 + "]" * 100_000 + "}",
    "moderate nesting": '{"op": "status", "id": 3, "args": {"a": ' + "[" * 200 + "]" * 200 + "}}",
    "5000-digit integer": '{"op": "status", "id": ' + "9" * 5000 + "}",
    "NaN id": '{"op": "status", "id": NaN}',
    "Infinity id": '{"op": "status", "id": Infinity}',
    "-Infinity in args": '{"op": "status", "id": 4, "args": {"x": -Infinity}}',
    "object id": '{"op": "status", "id": {"a": 1}}',
    "lone surrogate": '{"op": "status", "id": 5, "args": {"x": "\\ud800"}}',
}


@pytest.mark.parametrize("name", sorted(RAW_HEADERS))
def test_malformed_headers_get_a_reply_and_the_connection_continues(shared_engine: Engine, name: str) -> None:
    sock = raw_hello(shared_engine)
    try:
        reply = _send_raw_header(sock, RAW_HEADERS[name])
        assert reply["ok"] is False and reply["error"]["code"] == "malformed_header", reply
        protocol.send_message(sock, {"op": "status", "id": 9})
        assert protocol.recv_message(sock).header["ok"] is True
    finally:
        sock.close()


@pytest.mark.parametrize("token", ["\ud800", "x\udfff"])
def test_a_token_with_a_lone_surrogate_is_answered(shared_engine: Engine, token: str) -> None:
    sock = raw_connect(shared_engine)
    try:
        reply = _send_raw_header(sock, json.dumps({"op": "hello", "id": 1, "args": {"token": token}}))
        assert reply["ok"] is False and reply["error"]["code"] in ("malformed_header", "auth_failed")
    finally:
        sock.close()


def test_infinite_focal_from_an_overflowing_literal_is_refused(
    shared_engine: Engine, client_mod: ModuleType, tiny_avatar: Path, tiny_video: Path
) -> None:
    """JSON has no Infinity, but 1e400 parses to it."""
    with shared_engine.client(client_mod) as client:
        avatar_id = client.load_avatar(tiny_avatar)
    sock = raw_hello(shared_engine)
    try:
        args = json.dumps({"avatar_id": avatar_id, "video": str(tiny_video), "options": {"focal": 1}})
        reply = _send_raw_header(
            sock, '{"op": "track", "id": 2, "args": ' + args.replace('"focal": 1', '"focal": 1e400') + "}"
        )
        assert reply["error"]["code"] == "bad_argument" and "'focal'" in reply["error"]["message"]
    finally:
        sock.close()


def test_video_name_with_a_trailing_newline_is_refused(
    shared_engine: Engine, client_mod: ModuleType, tiny_avatar: Path
) -> None:
    with shared_engine.client(client_mod) as client:
        avatar_id = client.load_avatar(tiny_avatar)
        with pytest.raises(client_mod.EngineError) as info:
            client.track(None, avatar_id, {}, video_bytes=b"\x00" * 64, video_name="ok.mp4\n")
        assert info.value.code == "bad_argument" and "plain file name" in info.value.message


def test_relative_decode_view_folder_is_refused(
    shared_engine: Engine, client_mod: ModuleType, tiny_avatar: Path
) -> None:
    with shared_engine.client(client_mod) as client:
        avatar_id = client.load_avatar(tiny_avatar)
        with pytest.raises(client_mod.EngineError) as info:
            client._request(
                "decode_view", {"avatar_id": avatar_id, "folder": "out/job", "frames": [0], "view": [0, 0, 1]}
            )
        assert info.value.code == "bad_argument" and "absolute" in info.value.message
        assert client.status()["pid"] == shared_engine.process.pid


def test_a_lighting_from_another_avatar_is_refused_at_submission(
    shared_engine: Engine, client_mod: ModuleType, tiny_avatar: Path, tiny_video: Path, tmp_path: Path
) -> None:
    from dlatrack_engine.wire.jobfolder import atomic_write_bytes
    from dlatrack_engine.wire.lighting_folder import LightingInfo, write_folder

    other = LightingInfo(model="G", avatar={"name": "someone", "sha256": "0" * 64}, lighting_model={"sha256": "1"})
    write_folder(tmp_path / "lighting", other, {"light_code.npy": b"x"}, atomic_write_bytes)
    with shared_engine.client(client_mod) as client:
        avatar_id = client.load_avatar(tiny_avatar)
        for op, path, code, words in (
            ("track", str(tmp_path / "lighting"), "bad_lighting", "lighting.json: field 'avatar' is 'someone'"),
            ("track", "out/room", "bad_argument", "absolute path"),
            ("adapt", str(tmp_path / "lighting"), "bad_argument", "only 'track' takes it"),
        ):
            with pytest.raises(client_mod.EngineError) as info:
                getattr(client, op)(str(tiny_video), avatar_id, {"lighting_from": path})
            assert info.value.code == code and words in info.value.message, info.value.message
