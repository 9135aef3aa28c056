"""The real engine server (subprocess on loopback) driven by the add-on's real client and by raw sockets."""

from __future__ import annotations

import json
import shutil
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from conftest import Engine, pid_alive

from dlatrack_engine.wire import protocol


def raw_connect(engine: Engine) -> socket.socket:
    info = json.loads(engine.connection_file.read_text())
    sock = socket.create_connection((info["host"], info["port"]), timeout=10)
    return sock


def raw_hello(engine: Engine) -> socket.socket:
    sock = raw_connect(engine)
    token = json.loads(engine.connection_file.read_text())["token"]
    protocol.send_message(sock, {"op": "hello", "id": 1, "args": {"token": token}})
    assert protocol.recv_message(sock).header["ok"] is True
    return sock


def expect_closed(sock: socket.socket) -> None:
    sock.settimeout(10)
    with pytest.raises(protocol.ConnectionClosed):
        protocol.recv_message(sock)


def wait_until(predicate, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def test_connection_file_hello_status_and_clean_shutdown(engine: Engine, client_mod: ModuleType) -> None:
    mode = stat.S_IMODE(engine.connection_file.stat().st_mode)
    assert mode == 0o600, oct(mode)
    info = json.loads(engine.connection_file.read_text())
    assert info["host"] == "127.0.0.1" and info["pid"] == engine.process.pid and len(info["token"]) >= 32
    assert {"engine_version", "protocol_version", "device"} <= set(info)
    with engine.client(client_mod) as client:
        hello = client.hello()
        assert hello["protocol_version"] == protocol.PROTOCOL_VERSION and hello["device"] == "cpu"
        status = client.status()
        assert status["connections"] == 1 and status["jobs"] == [] and status["current_job"] is None
        client.shutdown()
    assert engine.process.wait(15) == 0
    assert not engine.connection_file.exists()  # removed on clean exit


def test_token_is_checked_before_anything_else(shared_engine: Engine, client_mod: ModuleType) -> None:
    sock = raw_connect(shared_engine)
    protocol.send_message(sock, {"op": "status", "id": 1})
    reply = protocol.recv_message(sock).header
    assert reply["error"]["code"] == "auth_required" and reply["reply_to"] == 1
    expect_closed(sock)
    for args in ({"token": "wrong"}, {}, {"token": 12}):
        sock = raw_connect(shared_engine)
        protocol.send_message(sock, {"op": "hello", "id": 2, "args": args})
        assert protocol.recv_message(sock).header["error"]["code"] == "auth_failed"
        expect_closed(sock)
    sock = raw_connect(shared_engine)  # unauthenticated peers get a tiny size cap
    sock.sendall(protocol.PREFIX.pack(b"DLTK", 1, 0, 20, 10 << 20))
    assert protocol.recv_message(sock).header["error"]["code"] == "frame_too_large"
    expect_closed(sock)
    with pytest.raises(client_mod.EngineError, match="auth_failed"):
        info = json.loads(shared_engine.connection_file.read_text())
        client_mod.EngineClient(info["host"], info["port"], "not-the-token")


def test_malformed_and_oversized_frames_and_bad_requests(
    shared_engine: Engine, client_mod: ModuleType, tmp_path: Path
) -> None:
    sock = raw_hello(shared_engine)
    header = b"{broken"
    sock.sendall(protocol.PREFIX.pack(b"DLTK", 1, 0, len(header), 0) + header)
    assert protocol.recv_message(sock).header["error"]["code"] == "malformed_header"
    protocol.send_message(sock, {"op": "status", "id": 5})  # the same connection still works
    assert protocol.recv_message(sock).header["ok"] is True
    sock.sendall(protocol.PREFIX.pack(b"DLTK", 1, 0, 10, 600 << 20))  # over the 512 MiB default cap
    error = protocol.recv_message(sock).header["error"]
    assert error["code"] == "frame_too_large" and "exceeds the cap" in error["message"]
    expect_closed(sock)
    sock = raw_hello(shared_engine)
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert protocol.recv_message(sock).header["error"]["code"] == "bad_magic"
    expect_closed(sock)

    broken_avatar = tmp_path / "broken_avatar"
    broken_avatar.mkdir()
    (broken_avatar / "avatar.json").write_text('{"format": "dlatrack-avatar"}')
    garbage_video = tmp_path / "garbage.mp4"
    garbage_video.write_bytes(b"\x00not a video" * 100)
    with shared_engine.client(client_mod) as client:
        cases = [
            ("frobnicate", {}, "unknown_request", "unknown op 'frobnicate'"),
            ("job_status", {"job_id": 7}, "bad_argument", "'job_id' must be str, got int"),
            ("job_status", {}, "bad_argument", "missing argument 'job_id'"),
            ("job_status", {"job_id": "nope"}, "job_not_found", "no job with id 'nope'"),
            ("load_avatar", {"path": str(tmp_path / "missing")}, "not_found", "does not exist"),
            ("load_avatar", {"path": str(broken_avatar)}, "invalid_avatar", "failed validation"),
            ("avatar_topology", {"avatar_id": "av_x"}, "avatar_not_found", "call load_avatar first"),
            ("selftest", {"frames": "many"}, "bad_argument", "'frames' must be an integer"),
            ("selftest", {"frames": 10**9}, "bad_argument", "outside"),
            ("cancel", {"job_id": None}, "bad_argument", "must be str"),
            ("decode_view", {"avatar_id": "av_x"}, "avatar_not_found", "av_x"),
        ]
        for op, args, code, message in cases:
            with pytest.raises(client_mod.EngineError) as info:
                client._request(op, args)
            assert info.value.code == code, (op, args, info.value)
            assert message in info.value.message, (op, info.value.message)
        with pytest.raises(client_mod.EngineError) as info:
            client._request("track", {"avatar_id": "av_x", "video": str(garbage_video)})
        assert info.value.code == "avatar_not_found"
        assert client.status()["connections"] >= 1


def test_unreadable_and_missing_video_on_track(
    shared_engine: Engine, client_mod: ModuleType, tiny_avatar: Path, tmp_path: Path
) -> None:
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00not a video" * 100)
    with shared_engine.client(client_mod) as client:
        avatar_id = client.load_avatar(tiny_avatar)
        with pytest.raises(client_mod.EngineError) as info:
            client.track(str(tmp_path / "absent.mp4"), avatar_id)
        assert info.value.code == "not_found" and "absent.mp4" in info.value.message
        with pytest.raises(client_mod.EngineError) as info:
            client.track(str(garbage), avatar_id)
        assert info.value.code == "unreadable_video" and "garbage.mp4" in info.value.message
        with pytest.raises(client_mod.EngineError) as info:  # remote use: the same check on uploaded bytes
            client.track(None, avatar_id, video_bytes=garbage.read_bytes(), video_name="clip.mp4")
        assert info.value.code == "unreadable_video" and "clip.mp4" in info.value.message
        with pytest.raises(client_mod.EngineError) as info:
            client.track(None, avatar_id, video_bytes=b"x", video_name="../../etc/passwd")
        assert info.value.code == "bad_argument"


def test_two_clients_disconnect_mid_job_attach_and_cancel(engine: Engine, client_mod: ModuleType) -> None:
    first = engine.client(client_mod)
    job_id = first.selftest(frames=12, size=16, frame_seconds=0.05)
    first.close()  # the submitting client vanishes mid-job
    with engine.client(client_mod) as watcher, engine.client(client_mod) as other:
        status = watcher.attach(job_id)
        assert status["state"] in ("queued", "running")
        long_job = other.selftest(frames=500, size=8, frame_seconds=0.05)  # queued behind the first
        assert other.job_status(long_job)["state"] == "queued"
        final = watcher.wait(job_id, timeout=60, poll_s=0.1)
        assert final["state"] == "completed" and final["frames_done"] == 12
        assert final["summary"]["computed"] == 12 and final["summary"]["max_relative_error"] < 1e-6
        kinds, frames = [], []
        deadline = time.monotonic() + 10
        while "done" not in kinds and time.monotonic() < deadline:
            event = watcher.events().get(timeout=10)
            kinds.append(event.kind)
            if event.kind == "frame":
                frames.append(event.header["frame"])
                assert event.blobs["eigenvector"].shape == (16,)
        assert "progress" in kinds and kinds[-1] == "done" and frames == sorted(frames) and frames
        assert "log" in kinds  # the job's own logging is forwarded to attached clients
        wait_until(lambda: other.job_status(long_job)["state"] == "running", what="second job to start")
        cancelled = other.cancel(long_job)
        assert cancelled["state"] in ("cancelling", "cancelled")
        final = other.wait(long_job, timeout=30, poll_s=0.1)
        assert final["state"] == "cancelled" and final["frames_done"] < 500
        manifest = json.loads((Path(final["folder"]) / "manifest.json").read_text())
        assert manifest["state"] == "cancelled"
        done = [e for e in _drain(other) if e.kind == "done"]
        assert done and done[-1].header["state"] == "cancelled"
        remote = other.job_frames(job_id, frames=[0, 3])
        assert sorted(remote["arrays"]) == [0, 3] and remote["arrays"][3]["eigenvector"].shape == (16,)


def _drain(client) -> list:
    out = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            event = client.events().get(timeout=0.5)
        except Exception:
            break
        out.append(event)
        if event.kind == "done":
            break
    return out


def test_sigkill_mid_job_then_restart_resumes_without_recomputing(start_engine, client_mod: ModuleType) -> None:
    engine = start_engine()
    client = engine.client(client_mod)
    job_id = client.selftest(frames=24, size=16, frame_seconds=0.1)
    folder = Path(client.job_status(job_id)["folder"])
    wait_until(lambda: client.job_status(job_id)["frames_done"] >= 5, what="5 frames")
    client.close()
    survivor = engine.client(client_mod)  # a client connected while the engine dies
    engine.kill()
    lost = survivor.events().get(timeout=10)
    assert lost.kind == "connection_lost" and not survivor.connected
    with pytest.raises(client_mod.EngineConnectionError):
        survivor.status()
    done_before = sorted((folder / "frames").glob("*.npz"))
    fingerprints = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in done_before}
    assert 5 <= len(fingerprints) < 24
    assert engine.connection_file.exists()  # a SIGKILLed engine leaves its file behind...
    with pytest.raises(client_mod.EngineConnectionError, match="stale"):
        client_mod.EngineClient.from_connection_file(engine.connection_file)

    partial = folder / "frames" / ".000023.npz.k1ll3d.tmp"  # what a write cut short by SIGKILL leaves
    partial.write_bytes(b"half a frame")
    restarted = start_engine(engine.state_dir)  # ...which the next engine detects as stale and replaces
    with restarted.client(client_mod) as client:
        final = client.wait(job_id, timeout=60, poll_s=0.1)
        assert final["state"] == "completed", final
        assert final["summary"]["skipped"] == len(fingerprints)
        assert final["summary"]["computed"] == 24 - len(fingerprints)
    for path in done_before:
        assert (path.stat().st_ino, path.stat().st_mtime_ns) == fingerprints[path.name], f"{path.name} recomputed"
    assert len(list((folder / "frames").glob("*.npz"))) == 24 and not partial.exists()
    duplicate = subprocess.run(
        [sys.executable, "-m", "dlatrack_engine.server", "--state-dir", str(restarted.state_dir), "--device", "cpu"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert duplicate.returncode == 3 and "already running" in duplicate.stderr
    assert pid_alive(restarted.process.pid)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="off loopback the engine serves TLS: needs `openssl`")
def test_non_loopback_needs_an_explicit_flag(
    start_engine, tmp_path: Path, client_mod: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    from dlatrack_engine.cli import main

    assert main(["serve", "--host", "0.0.0.0", "--state-dir", str(tmp_path / "s")]) == 2  # the `dlatrack serve` path
    assert "--allow-remote" in capsys.readouterr().err
    engine = start_engine(tmp_path / "remote", extra=("--host", "0.0.0.0", "--allow-remote"))
    log_text = engine.connection_file.with_name("connection.json.log").read_text()
    assert "reachable from the network (TLS" in log_text  # never plain TCP off loopback (issue 24)
    assert engine.connection_file.read_text().count('"tls_fingerprint": "sha256:') == 1
    with engine.client(client_mod) as client:
        assert client.status()["device"] == "cpu"
    engine.process.terminate()  # SIGTERM is a clean exit too: status 0, connection file removed
    assert engine.process.wait(30) == 0 and not engine.connection_file.exists()


def test_avatar_topology_matches_the_package(shared_engine: Engine, client_mod: ModuleType, tiny_avatar: Path) -> None:
    from dlatrack_engine.avatar.format import load_avatar_package

    package = load_avatar_package(tiny_avatar)
    with shared_engine.client(client_mod) as client:
        avatar_id = client.load_avatar(tiny_avatar)
        assert client.load_avatar(tiny_avatar) == avatar_id  # same package, same id, loaded once
        topology = client.avatar_topology(avatar_id)
        assert topology["texture_size"] == 16 and topology["num_vertices"] == 36
        for name, array in package.topology.arrays().items():
            np.testing.assert_array_equal(topology[name], array)
        assert topology["faces"].dtype == np.int32 and topology["neutral"].dtype == np.float32
        assert avatar_id in [a["avatar_id"] for a in client.status()["avatars"]]


def test_connection_limit_is_reported_and_recovers(shared_engine: Engine, client_mod: ModuleType) -> None:
    """Only authenticated clients fill the client slots (peers owing a hello have a pool of their own,
    tests/server/test_hardening_connections.py): the client past the limit is told so, then admitted later."""
    from dlatrack_engine.server.server import MAX_CONNECTIONS

    token = json.loads(shared_engine.connection_file.read_text())["token"]
    sockets, refused = [], None
    try:
        for _ in range(MAX_CONNECTIONS + 1):  # a lingering connection of an earlier test may hold a slot
            sock = raw_connect(shared_engine)
            sockets.append(sock)
            protocol.send_message(sock, {"op": "hello", "id": 1, "args": {"token": token}})
            reply = protocol.recv_message(sock).header
            if not reply["ok"]:
                refused = reply["error"]["code"]
                break
        assert refused == "too_many_connections"
    finally:
        for sock in sockets:
            sock.close()

    def admitted():  # the server frees a slot when its thread for that socket reads the close: not at once
        try:
            return shared_engine.client(client_mod)
        except (client_mod.EngineError, client_mod.EngineConnectionError):
            return None

    with wait_until(admitted, timeout=10.0, what="a new client to be admitted") as client:
        wait_until(lambda: client.status()["connections"] == 1, what="idle connections to be released")


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's exit status may wait for a reaper that never comes)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return pid_alive(pid) if not Path("/proc").is_dir() else False
    return state != "Z"


def test_engine_stops_when_the_process_that_started_it_ends(tmp_path: Path) -> None:
    """Blender closed or crashed: the engine it started must not live on as an orphan. A stand-in parent
    (a real Python process using the add-on's client) starts the engine, prints its pid and is SIGKILLed."""
    state = tmp_path / "state"
    script = (
        "import sys, time; from pathlib import Path; sys.path.insert(0, sys.argv[1]); import addon_io; "
        "p = addon_io.load('client').start_local_engine(sys.executable, Path(sys.argv[2]), "
        "('--state-dir', sys.argv[3], '--device', 'cpu', '--threads', '1'), wait_s=60); "
        "print(p.pid, flush=True); time.sleep(600)"
    )
    parent = subprocess.Popen([sys.executable, "-c", script, str(Path(__file__).parent),
                               str(state / "connection.json"), str(state)], stdout=subprocess.PIPE, text=True)
    try:
        engine_pid = int(parent.stdout.readline())
        time.sleep(1.5)
        assert _running(engine_pid), "the engine stopped while its parent was still alive"
        parent.kill()
        parent.wait(10)
        wait_until(lambda: not _running(engine_pid), timeout=30, what="the engine to stop after its parent died")
        assert not (state / "connection.json").exists()  # a clean stop removes the connection file
    finally:
        if parent.poll() is None:
            parent.kill()
