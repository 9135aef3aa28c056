"""Remote-engine costs (issue 24): TLS against plain TCP on loopback, and chunked uploads.

Run: `python -m bench.bench_upload [--mib 256] [--connects 20]`. It starts real engines (`dlatrack serve`,
CPU): one plain on loopback, one `--remote` (TLS, pinned), each in a fresh state folder, and drives them
with the add-on's real client and upload code. Measured: engine start (the first `--remote` start makes
the certificate), connect + TLS handshake + `hello`, a random file's upload (client hash, 4 MiB chunks, the
engine's hash check), the same upload interrupted half-way and resumed on a new connection, and sending
already-stored content again. Prints a Markdown table for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from blender_addon.io import client as addon_client  # the client Blender uses
from blender_addon.io import upload as addon_upload


def start(state: Path, remote: bool) -> tuple[object, Path, float]:
    connection = state / "connection.json"
    args = ("--state-dir", str(state), "--device", "cpu", "--threads", "1", *(("--remote",) if remote else ()))
    began = time.perf_counter()
    process = addon_client.start_local_engine(sys.executable, connection, args, wait_s=120.0)
    return process, connection, time.perf_counter() - began


class Interrupting:
    """The real client whose link drops once `stop_at` bytes are on the engine."""

    def __init__(self, client: object, stop_at: int) -> None:
        self.client, self.stop_at = client, stop_at

    def __getattr__(self, name: str) -> object:
        return getattr(self.client, name)

    def upload_chunk(self, upload_id: str, offset: int, data: bytes) -> dict:
        if offset >= self.stop_at:
            raise ConnectionError("link dropped")
        return self.client.upload_chunk(upload_id, offset, data)


def measure(remote: bool, data_file: Path, connects: int, work: Path) -> dict[str, float]:
    label = "tls" if remote else "plain"
    state = work / label
    process, connection, first_start = start(state, remote)
    timings: dict[str, float] = {"start_s": first_start}
    try:
        handshakes = []
        for _ in range(connects):
            began = time.perf_counter()
            addon_client.EngineClient.from_connection_file(connection).close()
            handshakes.append(time.perf_counter() - began)
        timings["connect_ms"] = statistics.median(handshakes) * 1e3
        size = data_file.stat().st_size
        with addon_client.EngineClient.from_connection_file(connection) as client:
            began = time.perf_counter()
            addon_upload.upload_file(client, "video", data_file)
            timings["upload_s"] = time.perf_counter() - began
            timings["upload_mib_s"] = size / (1 << 20) / timings["upload_s"]
            began = time.perf_counter()
            addon_upload.upload_file(client, "video", data_file)  # stored already: hash, ask, nothing sent
            timings["again_s"] = time.perf_counter() - began
        resumed = data_file.with_name("resume.bin")
        resumed.write_bytes(os.urandom(size))
        with addon_client.EngineClient.from_connection_file(connection) as client, contextlib.suppress(
            ConnectionError
        ):
            addon_upload.upload_file(Interrupting(client, size // 2), "video", resumed)
        with addon_client.EngineClient.from_connection_file(connection) as client:
            began = time.perf_counter()
            addon_upload.upload_file(client, "video", resumed)
            timings["resume_half_s"] = time.perf_counter() - began
        addon_client.stop_local_engine(connection, process)
        if remote:  # the certificate is reused: a second start makes none
            process, connection, timings["restart_s"] = start(state, remote)
            addon_client.stop_local_engine(connection, process)
    finally:
        if process.poll() is None:
            process.terminate()
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mib", type=int, default=256, help="size of the uploaded file")
    parser.add_argument("--connects", type=int, default=20, help="connections timed (median reported)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dlatrack-bench-upload-") as tmp:
        work = Path(tmp)
        data_file = work / "video.mp4"
        data_file.write_bytes(os.urandom(args.mib << 20))
        rows = {label: measure(label == "tls", data_file, args.connects, work) for label in ("plain", "tls")}
    print(f"load average at end {os.getloadavg()[0]:.1f}; {args.mib} MiB file, {args.connects} connects")
    print("| link | engine start s | connect+hello ms (median) | upload s | MiB/s | same content again s "
          "| resume from 50 % s | restart (cert reused) s |")
    print("|---|---|---|---|---|---|---|---|")
    for label, t in rows.items():
        restart = f"{t['restart_s']:.2f}" if "restart_s" in t else "-"
        print(f"| {label} | {t['start_s']:.2f} | {t['connect_ms']:.1f} | {t['upload_s']:.2f} | "
              f"{t['upload_mib_s']:.0f} | {t['again_s']:.2f} | {t['resume_half_s']:.2f} | {restart} |")  # fmt: skip


if __name__ == "__main__":
    main()
