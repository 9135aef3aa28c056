"""Fixtures: a real engine server subprocess on loopback, the add-on's real client, a tiny real avatar."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import addon_io
from grid_topology import grid_topology


@pytest.fixture(scope="session")
def client_mod() -> ModuleType:
    return addon_io.load("client")


@dataclass
class Engine:
    process: subprocess.Popen
    connection_file: Path
    state_dir: Path

    def client(self, client_mod: ModuleType, timeout: float = 60.0):
        return client_mod.EngineClient.from_connection_file(self.connection_file, timeout=timeout)

    def kill(self) -> None:
        """SIGKILL: no clean-up at all, as after a crash or the OOM killer."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)


@pytest.fixture
def start_engine(tmp_path: Path, client_mod: ModuleType) -> Iterator[Callable[..., Engine]]:
    """Factory: start `dlatrack serve` (real subprocess) with a state dir under tmp_path.

    `--threads 1`: the suite shares 2 cores with other work, and oversubscribed OpenMP threads spin, making
    the tiny avatar's decode ~100x slower (700 ms instead of 2 ms, measured)."""
    started: list[Engine] = []

    def start(state_dir: Path | None = None, extra: tuple[str, ...] = ()) -> Engine:
        state = state_dir or tmp_path / "state"
        connection = state / "connection.json"
        args = ("--state-dir", str(state), "--device", "cpu", "--threads", "1", *extra)
        process = client_mod.start_local_engine(sys.executable, connection, args, wait_s=60.0)
        engine = Engine(process, connection, state)
        started.append(engine)
        return engine

    yield start
    for engine in started:
        if engine.process.poll() is None:
            engine.process.terminate()
            try:
                engine.process.wait(10)
            except subprocess.TimeoutExpired:
                engine.kill()


@pytest.fixture
def engine(start_engine: Callable[..., Engine]) -> Engine:
    """A fresh engine for tests that stop, kill or count things on it."""
    return start_engine()


@pytest.fixture(scope="session")
def shared_engine(tmp_path_factory: pytest.TempPathFactory, client_mod: ModuleType) -> Iterator[Engine]:
    """One engine for the tests that only send it requests (engine start-up costs seconds on 2 cores).
    Tests using it must leave no job running and must not assume they are its only client."""
    state = tmp_path_factory.mktemp("shared") / "state"
    connection = state / "connection.json"
    args = ("--state-dir", str(state), "--device", "cpu", "--threads", "1")
    process = client_mod.start_local_engine(sys.executable, connection, args, wait_s=60.0)
    engine = Engine(process, connection, state)
    yield engine
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            engine.kill()


@pytest.fixture(scope="session")
def tiny_avatar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real (randomly initialised, untrained) avatar package: 36 vertices, 16x16 texture, z of 4."""
    import torch

    from dlatrack_engine.avatar.runtime import Avatar
    from dlatrack_engine.models.dam import DAM, DAMConfig
    from dlatrack_engine.models.lighting import LightingConfig, LightingModel

    torch.manual_seed(0)
    topology = grid_topology()
    dam = DAM(
        DAMConfig(
            num_vertices=topology.num_vertices,
            texture_size=16,
            latent_size=4,
            base_grid=8,
            max_channels=16,
            min_channels=8,
            mesh_hidden=16,
        )
    )
    lighting = LightingModel(
        LightingConfig(
            texture_size=16,
            input_texture_size=16,
            light_channels=(8, 8, 8, 8, 8),
            texture_channels=(8, 8, 8, 8),
            branch_channels=8,
            mlp_width=16,
            energy_normalised=False,
        )
    )
    with torch.no_grad():  # make G's output depend visibly on the light code
        for parameter in lighting.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    avatar = Avatar(dam, lighting, topology, {"name": "tiny"})
    return avatar.to_package(tmp_path_factory.mktemp("avatar") / "tiny", provenance={"command": "tests/server"})


@pytest.fixture(scope="session")
def tiny_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4-frame image-folder clip (readable by dlatrack_engine.video)."""
    import cv2

    folder = tmp_path_factory.mktemp("clip") / "frames"
    folder.mkdir()
    for i in range(4):
        image = np.full((32, 32, 3), 40 * i, np.uint8)
        cv2.imwrite(str(folder / f"{i:06d}.png"), image)
    return folder


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
