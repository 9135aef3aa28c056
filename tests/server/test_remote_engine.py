"""An engine serving clients on other machines (`dlatrack serve --remote`), over real sockets: TLS pinned
by the connection file's fingerprint (a relay sees no token; a wrong pin or a plain client gets nothing),
uploads through the add-on's own code (an interrupted one resumes; an avatar the engine has is not sent
again), the calibration travels with the video (its absence is a warning in the job log), and no client
path is ever used by the engine."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
from addon_io import load

REMOTE = ("--remote",)
pytestmark = pytest.mark.skipif(
    shutil.which("openssl") is None,
    reason="an engine serving remote clients makes its TLS certificate with `openssl` (apt-get install openssl)",
)


class Relay:
    """A TCP relay between a client and the engine that records every byte the client sends (a tunnel,
    a Wi-Fi access point, anything on the path)."""

    def __init__(self, port: int) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.target = port
        self.seen = bytearray()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        client, _ = self.listener.accept()
        engine = socket.create_connection(("127.0.0.1", self.target))
        threading.Thread(target=self._pipe, args=(client, engine, True), daemon=True).start()
        threading.Thread(target=self._pipe, args=(engine, client, False), daemon=True).start()

    def _pipe(self, source: socket.socket, target: socket.socket, record: bool) -> None:
        try:
            while data := source.recv(65536):
                if record:
                    self.seen += data
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


def _info(engine) -> dict:
    return json.loads(engine.connection_file.read_text())


def test_tls_is_pinned_and_a_relay_sees_no_token(start_engine: Callable, client_mod: ModuleType) -> None:
    engine = start_engine(extra=REMOTE)
    info = _info(engine)
    assert info["remote"] is True and info["tls_fingerprint"].startswith("sha256:")
    relay = Relay(info["port"])
    client = client_mod.EngineClient("127.0.0.1", relay.port, info["token"], fingerprint=info["tls_fingerprint"])
    try:
        assert client.status()["connections"] >= 1
    finally:
        client.close()
    assert len(relay.seen) > 100 and info["token"].encode() not in bytes(relay.seen) and b"hello" not in relay.seen

    wrong = "sha256:" + "0" * 64
    with pytest.raises(client_mod.EngineConnectionError, match="nothing was sent"):
        client_mod.EngineClient("127.0.0.1", info["port"], info["token"], fingerprint=wrong)
    with pytest.raises(client_mod.EngineConnectionError):  # a plain-TCP client gets no session at all
        client_mod.EngineClient("127.0.0.1", info["port"], info["token"])
    with pytest.raises(client_mod.EngineConnectionError, match="plain TCP is only used on this machine"):
        client_mod.EngineClient("192.0.2.1", info["port"], info["token"])  # refused before connecting
    engine.process.terminate()
    engine.process.wait(10)
    restarted = start_engine(engine.state_dir, extra=REMOTE)
    assert _info(restarted)["tls_fingerprint"] == info["tls_fingerprint"]  # a copied connection file stays valid


class DroppingClient:
    """The real client, whose link drops after `chunks` upload chunks (counts every chunk sent)."""

    def __init__(self, client, chunks: int | None = None) -> None:
        self.client, self.left, self.sent = client, chunks, 0

    def __getattr__(self, name: str):
        return getattr(self.client, name)

    def upload_chunk(self, upload_id: str, offset: int, data: bytes) -> dict:
        if self.left is not None and self.left == 0:
            self.client.close()
            raise ConnectionError("link dropped")
        self.sent += 1
        if self.left is not None:
            self.left -= 1
        return self.client.upload_chunk(upload_id, offset, data)


def test_uploads_resume_and_an_avatar_is_sent_once(start_engine: Callable, client_mod: ModuleType, tiny_avatar: Path,
                                                   tmp_path: Path) -> None:  # fmt: skip
    upload, remote = load("upload"), load("remote")
    engine = start_engine(extra=REMOTE)
    video = tmp_path / "laptop" / "take.mp4"
    video.parent.mkdir()
    video.write_bytes(bytes(range(256)) * 4000)  # 1 MB, sent in 64 KiB chunks
    first = DroppingClient(engine.client(client_mod), chunks=5)
    with pytest.raises(ConnectionError):
        upload.upload_file(first, "video", video, chunk_bytes=64 << 10)
    second = DroppingClient(engine.client(client_mod))
    upload_id = upload.upload_file(second, "video", video, chunk_bytes=64 << 10)
    assert (first.sent, second.sent) == (5, 16 - 5)  # the second link sent only what the engine lacked
    assert (engine.state_dir / "uploads" / "files" / upload_id).read_bytes() == video.read_bytes()

    avatar_id = remote.ensure_avatar(second, tiny_avatar)
    sent = second.sent
    assert remote.ensure_avatar(second, tiny_avatar) == avatar_id and second.sent == sent  # known by its hash
    second.close()


def test_client_paths_are_refused(start_engine: Callable, client_mod: ModuleType, tiny_avatar: Path,
                                  tmp_path: Path) -> None:  # fmt: skip
    engine = start_engine(extra=REMOTE)
    laptop = tmp_path / "laptop"
    with engine.client(client_mod) as client:
        avatar_id = load("remote").ensure_avatar(client, tiny_avatar)
        refusals = [
            lambda: client.track(None, avatar_id, {}, video_bytes=b"x", out_dir=str(laptop / "job")),
            lambda: client.track(str(laptop / "take.mp4"), avatar_id, {}),
            lambda: client.load_avatar(str(tiny_avatar)),
            lambda: client.selftest(frames=1, out_dir=str(laptop / "selftest")),
            lambda: client.track(None, avatar_id, {"lighting_from": str(laptop)}, video_bytes=b"x"),
            lambda: client.decode_view(avatar_id, folder=str(laptop), frames=[0], view=[0, 0, 1]),
        ]
        for refused in refusals:
            with pytest.raises(client_mod.EngineError) as caught:
                refused()
            assert caught.value.code == "path_not_allowed", caught.value
    assert not laptop.exists()  # the engine created nothing at the client's paths


def _events_until_done(client, job_id: str, timeout: float = 120.0) -> list[dict]:
    events, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        event = client.events().get(timeout=deadline - time.monotonic())
        if event.job_id == job_id:
            events.append(event.header)
            if event.kind == "done":
                return events
    raise TimeoutError(f"job {job_id}: no 'done' within {timeout} s")


def test_calibration_travels_with_the_video_and_its_absence_is_logged(
    start_engine: Callable, client_mod: ModuleType, tiny_avatar: Path, tmp_path: Path
) -> None:
    import cv2
    import numpy as np

    remote = load("remote")
    video = tmp_path / "laptop" / "take.mp4"
    video.parent.mkdir()
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 24, (32, 32))
    for i in range(4):
        writer.write(np.full((32, 32, 3), 40 * i, np.uint8))
    writer.release()
    options = {"steps": "landmarks", "lighting": "none", "key_frames": 1}  # the job stops at landmarks: no face
    engine = start_engine(extra=REMOTE)
    with engine.client(client_mod) as client:
        avatar_id = remote.ensure_avatar(client, tiny_avatar)
        record, calibration = remote.submit_track(client, video, avatar_id, options)
        job_id = record["job_id"]
        assert calibration.assumed and record["kind"] == "track"
        assert record["folder"] == client.job_status(job_id)["folder"]  # the reply names the folder: no round trip
        logged = [e for e in _events_until_done(client, job_id) if e["kind"] == "log" and e["level"] == "warning"]
        assert any("no camera calibration" in e["message"] for e in logged), logged  # the job log says it
        assert client.job_frames(job_id, [])["manifest"]["K_source"] == "default"

        K = [[40.0, 0.0, 16.0], [0.0, 40.0, 15.0], [0.0, 0.0, 1.0]]
        (video.parent / "clip.json").write_text(json.dumps({"name": "take", "K": K}))
        record, calibration = remote.submit_track(client, video, avatar_id, options)
        assert calibration.K == K and not calibration.assumed
        job_id = record["job_id"]
        _events_until_done(client, job_id)
        manifest = client.job_frames(job_id, [])["manifest"]
    assert manifest["K"] == K and manifest["K_source"].endswith("clip.json")  # the copy beside the job's video
