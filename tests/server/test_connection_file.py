"""Connection file rules: 0600, staleness by pid (same machine only) and by port, claiming."""

from __future__ import annotations

import socket
import stat
from pathlib import Path

import pytest

from dlatrack_engine.server.connection_file import (
    ConnectionFileError,
    claim_connection_file,
    is_stale,
    read_connection_file,
    write_connection_file,
)

DEAD_PID = 2**22 + 12345  # above Linux's default pid_max: never a live process


@pytest.fixture
def listening_port():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        yield listener.getsockname()[1]


def test_written_with_mode_0600_and_validated(tmp_path: Path) -> None:
    path = tmp_path / "engine.json"
    write_connection_file(path, {"host": "127.0.0.1", "port": 1, "token": "t", "pid": 1})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.write_text('{"host": "127.0.0.1", "port": "80", "token": "t", "pid": 1}')
    with pytest.raises(ConnectionFileError, match="field 'port' must be a int"):
        read_connection_file(path)


def test_pid_counts_only_on_the_same_machine(listening_port: int) -> None:
    here = socket.gethostname()
    info = {"host": "127.0.0.1", "port": listening_port, "token": "t", "pid": DEAD_PID}
    assert is_stale({**info, "hostname": here})  # our machine, process gone
    assert not is_stale({**info, "hostname": "gpu-box-over-an-ssh-tunnel"})  # remote pid: the port decides


def test_claim_removes_stale_or_broken_files_and_refuses_live_ones(tmp_path: Path, listening_port: int) -> None:
    import os

    path = tmp_path / "engine.json"
    path.write_text("{ not json")
    claim_connection_file(path)
    assert not path.exists()
    write_connection_file(path, {"host": "127.0.0.1", "port": listening_port, "token": "t", "pid": DEAD_PID})
    claim_connection_file(path)
    assert not path.exists()
    write_connection_file(path, {"host": "127.0.0.1", "port": listening_port, "token": "t", "pid": os.getpid()})
    with pytest.raises(ConnectionFileError, match="already running"):
        claim_connection_file(path)
    assert path.exists()
