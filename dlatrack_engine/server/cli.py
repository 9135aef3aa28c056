"""`dlatrack serve`: run the engine as a long-lived server (what the Blender add-on talks to)."""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dlatrack_engine.paths import cache_dir
from dlatrack_engine.wire import protocol

log = logging.getLogger(__name__)

LOOPBACK = ("127.0.0.1", "localhost", "::1")


DESCRIPTION = "Start the engine: bind a local port, write a connection file (mode 0600), serve requests."


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve", help="run the engine server (Blender add-on back end)", description=DESCRIPTION
    )
    add_arguments(parser)


def main(argv: list[str] | None = None) -> int:
    """`python -m dlatrack_engine.server`: the same as `dlatrack serve`, without importing the other
    sub-commands (some import torch at once), so an engine started from Blender is up in a second."""
    parser = argparse.ArgumentParser(prog="python -m dlatrack_engine.server", description=DESCRIPTION)
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    add_arguments(parser)
    args = parser.parse_args(argv)
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    return run(args)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_network_arguments(parser)
    add_process_arguments(parser)
    parser.set_defaults(func=run)


def add_network_arguments(parser: argparse.ArgumentParser) -> None:
    """What the engine binds and what it accepts from clients: address, TLS, uploads, request sizes."""
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; anything else needs --allow-remote)"
    )
    parser.add_argument(
        "--allow-remote",
        action="store_true",
        help="permit binding a non-loopback address; implies --remote (TLS, no client paths)",
    )
    parser.add_argument(
        "--remote",
        action="store_true",
        help="serve clients on other machines (e.g. through an SSH tunnel): TLS with a self-signed certificate "
        "pinned by the connection file's tls_fingerprint, inputs uploaded, no client paths (docs/security.md)",
    )
    parser.add_argument("--max-upload-gb", type=float, default=16.0, help="largest uploaded file, GiB (default 16)")
    parser.add_argument(
        "--upload-store-gb", type=float, default=64.0, help="all uploads together (finished and in progress), GiB"
    )
    parser.add_argument(
        "--upload-idle-s", type=float, default=3600.0, help="an unfinished upload idle this long is deleted"
    )
    parser.add_argument("--port", type=int, default=0, help="port to bind (default 0: a free port)")
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="where job records and default job folders live (default <cache>/server)",
    )
    parser.add_argument(
        "--connection-file",
        type=Path,
        default=None,
        help="where to write host/port/token (default <state-dir>/connection.json)",
    )
    parser.add_argument(
        "--max-frame-mb",
        type=int,
        default=protocol.DEFAULT_MAX_BLOB_BYTES >> 20,
        help="largest accepted frame payload in MiB (uploaded videos)",
    )
    parser.add_argument(
        "--max-buffered-mb",
        type=int,
        default=None,
        help="bytes buffered for incoming requests across all connections, in MiB (default: the larger of "
        "1024 and --max-frame-mb); a request past it gets 'server_busy'",
    )
    parser.add_argument(
        "--auth-timeout",
        type=float,
        default=10.0,
        help="seconds a new connection has to send its complete 'hello' (a hard deadline, default 10)",
    )


def add_process_arguments(parser: argparse.ArgumentParser) -> None:
    """How the engine process runs: torch device and threads, and whose lifetime it follows."""
    parser.add_argument("--device", default=None, help="torch device: cpu, cuda, cuda:N (default: auto)")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads for torch (default: torch's choice). Use fewer when Blender or other work shares the "
        "cores: oversubscribed OpenMP threads spin and can make small ops 100x slower",
    )
    parser.add_argument(
        "--exit-with-parent",
        type=int,
        default=None,
        metavar="PID",
        help="stop when process PID ends (the add-on passes Blender's pid, so that closing or crashing Blender "
        "does not leave an orphan engine; running jobs keep their finished frames and resume on the next start)",
    )


def run(args: argparse.Namespace) -> int:
    from dlatrack_engine.server.certificate import CertificateError
    from dlatrack_engine.server.connection_file import ConnectionFileError

    error = check_arguments(args)
    if error:
        print(error, file=sys.stderr)
        return 2
    if args.host not in LOOPBACK:
        log.warning(
            "binding %s: the engine is reachable from the network (TLS; clients pin its certificate through the "
            "connection file, which holds the token: copy it only over a trusted channel, e.g. scp)",
            args.host,
        )
    if args.threads is not None:
        # torch is imported lazily (first avatar/job), so the OpenMP/MKL pools pick these up.
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(args.threads)
        if "torch" in sys.modules:  # `dlatrack serve` after another sub-command imported torch
            sys.modules["torch"].set_num_threads(args.threads)
    try:
        server = build_server(args)
    except CertificateError as exc:
        print(str(exc), file=sys.stderr)
        return 2

    def stop(signum: int, _frame: Any) -> None:
        log.info("signal %d: stopping", signum)
        server.request_stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.exit_with_parent is not None:
        if os.name == "nt":  # os.kill(pid, 0) sends CTRL_C_EVENT there
            log.warning("--exit-with-parent is not supported on Windows; the engine keeps running on its own")
        else:
            watch_parent(args.exit_with_parent, server.request_stop)
    try:
        server.serve_forever()
    except ConnectionFileError as exc:
        print(str(exc), file=sys.stderr)
        return 3
    except OSError as exc:
        print(f"cannot serve on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 4
    return 0


def buffered_mb(args: argparse.Namespace) -> int:
    return args.max_buffered_mb if args.max_buffered_mb is not None else max(1024, args.max_frame_mb)


def check_arguments(args: argparse.Namespace) -> str | None:
    """The first bad argument's message, or None: checked before anything binds or writes."""
    if args.host not in LOOPBACK and not args.allow_remote:
        return (
            f"refusing to bind {args.host}: only loopback is allowed without --allow-remote "
            "(the token travels unencrypted; use an SSH tunnel instead)"
        )
    if args.threads is not None and args.threads < 1:
        return f"--threads must be >= 1, got {args.threads}"
    if not 0 < args.auth_timeout <= 3600 or args.max_frame_mb < 1:
        return "--auth-timeout must be in (0, 3600] s and --max-frame-mb >= 1"
    if buffered_mb(args) < 1:
        return f"--max-buffered-mb must be >= 1, got {buffered_mb(args)}"
    if min(args.max_upload_gb, args.upload_store_gb, args.upload_idle_s) <= 0:
        return "--max-upload-gb, --upload-store-gb and --upload-idle-s must be > 0"
    return None


def build_server(args: argparse.Namespace) -> Any:
    """The EngineServer for checked arguments; a remote one gets its TLS certificate (CertificateError)."""
    from dlatrack_engine.server.certificate import ensure_certificate
    from dlatrack_engine.server.server import EngineServer
    from dlatrack_engine.server.uploads import UploadLimits

    state_dir = (args.state_dir or cache_dir() / "server").resolve()
    connection_file = (args.connection_file or state_dir / "connection.json").resolve()
    certificate = None
    if args.remote or args.host not in LOOPBACK:  # plain TCP is for loopback only
        certificate = ensure_certificate(state_dir / "tls")
        keep_library_caches_in(state_dir / "cache")
    limits = UploadLimits(
        max_file_bytes=int(args.max_upload_gb * (1 << 30)),
        max_store_bytes=int(args.upload_store_gb * (1 << 30)),
        idle_s=args.upload_idle_s,
    )
    return EngineServer(
        args.host,
        args.port,
        secrets.token_urlsafe(32),
        state_dir,
        connection_file,
        device=args.device,
        max_frame_bytes=args.max_frame_mb << 20,
        auth_timeout_s=args.auth_timeout,
        max_buffered_bytes=buffered_mb(args) << 20,
        certificate=certificate,
        upload_limits=limits,
    )


def keep_library_caches_in(folder: Path) -> None:
    """Point the caches that libraries write on their own (matplotlib's font list, imported by MediaPipe;
    torch's compiled kernels) into the state folder, so that an engine serving remote clients writes
    nothing outside it (a variable the user set wins). Model caches (torch hub) are left alone: the
    user's face-alignment weights live there."""
    os.environ.setdefault("MPLCONFIGDIR", str(folder / "matplotlib"))
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(folder / "torchinductor"))


def watch_parent(pid: int, stop: Callable[[], None], poll_s: float = 1.0) -> threading.Thread:
    """Call `stop` once process `pid` has ended (polled: no portable parent-death signal exists)."""
    from dlatrack_engine.server.connection_file import pid_alive

    def watch() -> None:
        while pid_alive(pid):
            time.sleep(poll_s)
        log.warning("process %d (the engine's owner) has ended: stopping", pid)
        stop()

    thread = threading.Thread(target=watch, name="parent-watch", daemon=True)
    thread.start()
    return thread
