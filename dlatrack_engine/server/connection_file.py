"""The connection file: how a client finds a running engine (like a Jupyter kernel's connection file).

It holds host, port, token, pid, engine and protocol versions and the device, and is written with mode
0600 because the token is the only thing standing between the socket and anyone else on the machine.
A file whose process is gone or whose port does not answer is stale: it is reported and replaced.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from pathlib import Path
from typing import Any

from dlatrack_engine.wire.atomic import atomic_write_bytes

log = logging.getLogger(__name__)

REQUIRED_FIELDS = {"host": str, "port": int, "token": str, "pid": int}


class ConnectionFileError(RuntimeError):
    """The connection file is missing, malformed, or names an engine that is not running."""


def write_connection_file(path: Path, info: dict[str, Any]) -> None:
    """Atomically write `info` with mode 0600 (created with that mode: never briefly world-readable)."""
    atomic_write_bytes(path, json.dumps(info, indent=1).encode("utf-8"), mode=0o600)


def read_connection_file(path: Path) -> dict[str, Any]:
    """Parse and validate a connection file; the error names the file and the bad field."""
    try:
        info = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConnectionFileError(
            f"connection file {path}: not found (is the engine running? `dlatrack serve`)"
        ) from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConnectionFileError(f"connection file {path}: unreadable ({exc})") from exc
    if not isinstance(info, dict):
        raise ConnectionFileError(f"connection file {path}: expected a JSON object")
    for key, kind in REQUIRED_FIELDS.items():
        if not isinstance(info.get(key), kind) or isinstance(info.get(key), bool):
            raise ConnectionFileError(f"connection file {path}: field '{key}' must be a {kind.__name__}")
    return info


def pid_alive(pid: int) -> bool:
    """True when a process with this pid exists (on this machine)."""
    if pid <= 0:
        return False
    if os.name == "nt":  # os.kill(pid, 0) would send CTRL_C_EVENT there; the port check decides instead
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def port_answers(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def is_stale(info: dict[str, Any]) -> bool:
    """A file is stale when its engine's process is gone or its port no longer accepts connections.

    The pid check only means something for an engine on this machine (the file's `hostname`); a file
    copied from a remote engine, used through an SSH tunnel, is judged by its port alone."""
    local = info.get("hostname", socket.gethostname()) == socket.gethostname()
    if local and not pid_alive(int(info["pid"])):
        return True
    return not port_answers("127.0.0.1" if info["host"] == "0.0.0.0" else info["host"], int(info["port"]))


def claim_connection_file(path: Path) -> None:
    """Before serving: refuse if a live engine owns `path`; remove it (with a warning) if stale or broken."""
    if not path.exists():
        return
    try:
        info = read_connection_file(path)
    except ConnectionFileError as exc:
        log.warning("removing unreadable connection file: %s", exc)
        path.unlink(missing_ok=True)
        return
    if not is_stale(info):
        raise ConnectionFileError(
            f"connection file {path}: an engine (pid {info['pid']}, port {info['port']}) is already running; "
            "connect to it, shut it down, or pass another --connection-file"
        )
    log.warning("removing stale connection file %s (pid %s no longer serves port %s)", path, info["pid"], info["port"])
    path.unlink(missing_ok=True)


def remove_connection_file(path: Path, token: str) -> None:
    """Remove the file on clean exit, but only if it is still ours (another engine may have replaced it)."""
    try:
        if read_connection_file(path).get("token") == token:
            path.unlink(missing_ok=True)
    except ConnectionFileError:
        pass
