"""Fuzz: thousands of random and mutated frames; the engine must answer every one it can and stay up."""

from __future__ import annotations

import json
import random
import socket
import struct
from pathlib import Path
from types import ModuleType

import numpy as np
from conftest import Engine

from dlatrack_engine.wire import protocol
from dlatrack_engine.wire.jobfolder import JobFolder

OPS = [
    "status",
    "load_avatar",
    "avatar_topology",
    "track",
    "adapt",
    "decode_view",
    "job_status",
    "jobs",
    "job_frames",
    "cancel",
    "attach",
    "nonsense",
    "",
    None,
    3,
]  # no shutdown, no selftest
KEYS = [
    "path",
    "avatar_id",
    "job_id",
    "video",
    "options",
    "frames",
    "view",
    "camera",
    "name",
    "return",
    "out_dir",
    "video_name",
    "folder",
    "textures",
    "token",
]


KNOWN = ["/", "/etc/passwd", "..", "av_0", "000000000000", "png", "array", [0, 0, 1], [0, 1]]  # + real ids


def random_value(rng: random.Random, depth: int = 0):
    choice = rng.randrange(9 if depth < 2 else 6)
    if choice == 0:
        return rng.randint(-(2**40), 2**40)
    if choice == 1:
        return rng.random() * 10 ** rng.randint(-5, 5)
    if choice == 2:
        return "".join(rng.choice("ab/._-\x00é😀 ") for _ in range(rng.randrange(12)))
    if choice == 3:
        return rng.choice([True, False, None])
    if choice == 4:
        return rng.choice(KNOWN)
    if choice == 5:
        return []
    if choice == 6:
        return [random_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(KEYS): random_value(rng, depth + 1) for _ in range(rng.randrange(4))}


TEMPLATES: list[tuple[str, dict]] = []  # valid requests (filled in by the test), mutated to reach deep code


def near_valid_args(rng: random.Random) -> tuple[str, dict]:
    """A valid request with one or two arguments replaced, dropped or added at random."""
    op, args = rng.choice(TEMPLATES)
    args = dict(args)
    for _ in range(rng.randint(1, 2)):
        action = rng.random()
        if action < 0.5 and args:
            args[rng.choice(list(args))] = random_value(rng)
        elif action < 0.7 and args:
            del args[rng.choice(list(args))]
        else:
            args[rng.choice(KEYS)] = random_value(rng)
    return op, args


def random_request(rng: random.Random, request_id: int) -> bytes:
    if TEMPLATES and rng.random() < 0.5:
        op, args = near_valid_args(rng)
    else:
        op, args = rng.choice(OPS), {rng.choice(KEYS): random_value(rng) for _ in range(rng.randrange(5))}
    header = {"op": op, "id": request_id, "args": args if rng.random() < 0.95 else random_value(rng)}
    blobs = {}
    if rng.random() < 0.3:
        blobs[rng.choice(["z", "video", "view", "r", "light_code"])] = rng.choice(
            [b"\x00" * rng.randrange(64), struct.pack("<4f", 1, 2, 3, 4)]
        )
    return protocol.encode_frame(header, blobs)


def mutate_body(rng: random.Random, frame: bytes) -> bytes:
    """Flip bytes after the prefix: framing stays intact, so the engine must answer and continue."""
    data = bytearray(frame)
    for _ in range(rng.randint(1, 6)):
        position = rng.randrange(16, len(data))
        data[position] = rng.randrange(256)
    return bytes(data)


class Session:
    def __init__(self, engine: Engine) -> None:
        info = json.loads(engine.connection_file.read_text())
        self.address, self.token = (info["host"], info["port"]), info["token"]
        self.sock: socket.socket | None = None
        self.reconnects = 0

    def connect(self) -> socket.socket:
        if self.sock is None:
            self.sock = socket.create_connection(self.address, timeout=10)
            protocol.send_message(self.sock, {"op": "hello", "id": 0, "args": {"token": self.token}})
            assert protocol.recv_message(self.sock).header["ok"] is True
            self.reconnects += 1
        return self.sock

    def drop(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def reply(self) -> dict:
        """Read until a reply (events of jobs a fuzz frame may have started are skipped)."""
        while True:
            header = protocol.recv_message(self.connect(), 1 << 30).header
            if header.get("type") == "reply":
                return header


def test_fuzzed_frames_never_take_the_engine_down(
    shared_engine: Engine, client_mod: ModuleType, tiny_avatar: Path, tmp_path: Path
) -> None:
    track = JobFolder.create(tmp_path / "track", "fuzz-track", "track", state="completed")  # for decode_view
    for i in range(2):
        track.write_frame(
            i,
            {
                "vertices": np.zeros((36, 3)),
                "head_R": np.eye(3),
                "head_t": [0, 0, 0.5],
                "r": np.zeros(3),
                "z": np.full(4, 0.1 * i),
            },
        )
    track.write_light_code(np.ones(150))
    with shared_engine.client(client_mod) as client:  # real ids, so random requests reach the handlers' insides
        job_id = client.selftest(frames=2, size=4)
        KNOWN.extend(
            [
                client.load_avatar(tiny_avatar),
                job_id,
                str(tiny_avatar),
                str(track.root),
                [0, 1],
                [1],
                {"R": [[1, 0, 0]] * 3, "t": [0, 0, 1]},
                {"R": np.eye(3).tolist(), "t": [0.1, 0, 0]},
            ]
        )
        client.wait(job_id, timeout=30, poll_s=0.05)
    avatar_id, folder = KNOWN[-8], str(track.root)
    decode = {"avatar_id": avatar_id, "folder": folder, "frames": [0, 1], "view": [0, 0, 1], "return": "array"}
    TEMPLATES.extend(
        [
            ("decode_view", decode),
            (
                "decode_view",
                {**decode, "view": None, "camera": {"R": np.eye(3).tolist(), "t": [0.1, 0, 0]}},
            ),
            ("job_frames", {"job_id": job_id, "frames": [0, 1], "textures": True}),
            ("avatar_topology", {"avatar_id": avatar_id}),
            ("job_status", {"job_id": job_id}),
            ("attach", {"job_id": job_id}),
            ("load_avatar", {"path": str(tiny_avatar)}),
            ("track", {"avatar_id": avatar_id, "video": str(tmp_path / "absent.mp4"), "options": {"key_frames": 2}}),
        ]
    )
    rng = random.Random(1234)
    session = Session(shared_engine)
    answered = errors = 0
    codes: dict[str, int] = {}
    for index in range(3000):
        kind = rng.random()
        sock = session.connect()
        if kind < 0.55:  # well-framed random request: must be answered on a live connection
            sock.sendall(random_request(rng, index))
            reply = session.reply()
            answered += 1
            if not reply["ok"]:
                errors += 1
                assert set(reply["error"]) == {"code", "message"} and reply["error"]["message"]
                codes[reply["error"]["code"]] = codes.get(reply["error"]["code"], 0) + 1
        elif kind < 0.9:  # mutated body: answered (error or not); a corrupted frame may be fatal
            sock.sendall(mutate_body(rng, random_request(rng, index)))
            try:
                session.reply()
                answered += 1
            except (protocol.ProtocolError, OSError):
                session.drop()
        elif kind < 0.97:  # garbage or a damaged prefix: the engine reports and hangs up
            frame = random_request(rng, index)
            if rng.random() < 0.5:
                frame = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))
            else:
                frame = bytes(rng.randrange(256) for _ in range(4)) + frame[4:]
            sock.sendall(frame)
            session.drop()
        else:  # a frame cut off mid-way, then the client vanishes
            frame = random_request(rng, index)
            sock.sendall(frame[: rng.randrange(1, len(frame))])
            session.drop()
    session.drop()
    assert answered > 2000 and errors > 1000, (answered, errors)
    assert "internal_error" not in codes, codes  # every bad input is caught by validation, not by accident
    with shared_engine.client(client_mod) as client:
        status = client.status()
        assert status["pid"] == shared_engine.process.pid
    assert shared_engine.process.poll() is None
