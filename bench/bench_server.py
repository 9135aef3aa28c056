"""Engine server load test: N concurrent clients issue status / decode_view for a bounded time.

Run: `python -m bench.bench_server [--seconds 30] [--clients 8] [--avatar PATH]`. It starts a real engine
(`dlatrack serve`, loopback, CPU unless --device) and drives it with the add-on's real client; every
request's latency is recorded per op, errors are counted, and the p50/p99 go to bench/RESULTS.md.
Without --avatar it builds a randomly initialised avatar of sample-subject size (weights don't change
the cost of a decode, sizes do).
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from blender_addon.io import client as addon_client  # the client Blender uses (stdlib + numpy)

REPO = Path(__file__).resolve().parent.parent
log = logging.getLogger(__name__)


@dataclass
class LoadResult:
    clients: int
    seconds: float
    latencies_s: dict[str, list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def count(self, op: str) -> int:
        return len(self.latencies_s.get(op, []))

    def percentile_ms(self, op: str, q: float) -> float:
        values = self.latencies_s.get(op, [])
        return float(np.percentile(values, q) * 1e3) if values else float("nan")


def run_load(
    connection_file: Path,
    avatar_id: str,
    latent_size: int,
    clients: int = 8,
    seconds: float = 30.0,
    decode_fraction: float = 0.5,
    seed: int = 0,
) -> LoadResult:
    """Each client (own connection, own thread) loops until the deadline: status, or decode_view of one
    random code (PNG textures back). Returns every latency per op and every error's text."""
    result = LoadResult(clients, seconds)
    lock = threading.Lock()
    start = threading.Barrier(clients)

    def worker(index: int) -> None:
        rng = random.Random(seed + index)
        light_code = np.asarray([rng.random() for _ in range(150)], np.float32)
        local: dict[str, list[float]] = {"status": [], "decode_view": []}
        errors: list[str] = []
        try:
            client = addon_client.EngineClient.from_connection_file(connection_file, timeout=120.0)
        except Exception as exc:
            errors.append(f"client {index}: connect: {exc}")
            start.abort()
            return
        try:
            start.wait()
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                op = "decode_view" if rng.random() < decode_fraction else "status"
                began = time.perf_counter()
                try:
                    if op == "status":
                        client.status()
                    else:
                        z = np.asarray([[rng.gauss(0, 1) for _ in range(latent_size)]], np.float32)
                        view = [rng.uniform(-0.5, 0.5), rng.uniform(-0.3, 0.3), 1.0]
                        codes = {"z": z, "light_code": light_code}
                        out = client.decode_view(avatar_id, view=view, codes=codes)
                        if 0 not in out["full"] or 0 not in out["relit_textures"]:
                            raise RuntimeError("decode_view returned no full/relit texture for frame 0")
                except Exception as exc:
                    errors.append(f"client {index}: {op}: {exc}")
                    continue
                local[op].append(time.perf_counter() - began)
        except threading.BrokenBarrierError:
            errors.append(f"client {index}: another client failed to connect")
        finally:
            client.close()
            with lock:
                for op, values in local.items():
                    result.latencies_s.setdefault(op, []).extend(values)
                result.errors.extend(errors)

    threads = [threading.Thread(target=worker, args=(i,), name=f"load-{i}") for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 300)
    return result


def make_avatar(path: Path, num_vertices: int, texture_size: int, latent_size: int) -> Path:
    """A randomly initialised avatar package of the given sizes (for timing only)."""
    import torch

    from dlatrack_engine.avatar.format import Topology
    from dlatrack_engine.avatar.runtime import Avatar
    from dlatrack_engine.models.dam import DAM, DAMConfig
    from dlatrack_engine.models.lighting import LightingConfig, LightingModel

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    faces = rng.integers(0, num_vertices, (2 * num_vertices, 3)).astype(np.int32)
    topology = Topology(
        faces=faces,
        uv_faces=faces.copy(),
        uvs=rng.random((num_vertices, 2)).astype(np.float32),
        neutral=(0.1 * rng.standard_normal((num_vertices, 3))).astype(np.float32),
        landmark_faces=np.arange(68, dtype=np.int32),
        landmark_barycentrics=np.full((68, 3), 1 / 3, np.float32),
    )
    dam = DAM(DAMConfig(num_vertices=num_vertices, texture_size=texture_size, latent_size=latent_size))
    lighting = LightingModel(LightingConfig(texture_size=texture_size, input_texture_size=min(256, texture_size)))
    return Avatar(dam, lighting, topology, {"name": "bench"}).to_package(path, provenance={"command": "bench_server"})


def measure(
    avatar: Path, state: Path, device: str, threads: str, clients: int, seconds: float
) -> tuple[dict, LoadResult, LoadResult]:
    """Start an engine with `threads` ("auto" = torch's default), run the load and the one-client reference."""
    connection = state / "connection.json"
    extra = ["--state-dir", str(state), "--device", device] + ([] if threads == "auto" else ["--threads", threads])
    process = addon_client.start_local_engine(sys.executable, connection, extra)
    try:
        with addon_client.EngineClient.from_connection_file(connection) as client:
            avatar_id = client.load_avatar(avatar)
            info = client.avatar_topology(avatar_id)
            info["threads"] = client.status()["threads"]
        latent = int(info["latent_size"])
        result = run_load(connection, avatar_id, latent, clients, seconds)
        alone = run_load(connection, avatar_id, latent, 1, max(3.0, seconds / 3), decode_fraction=1.0)
        addon_client.stop_local_engine(connection, process)
    finally:
        if process.poll() is None:
            process.kill()
    return info, result, alone


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--avatar", type=Path, default=None, help="avatar package (default: random, sample size)")
    parser.add_argument("--vertices", type=int, default=5000)
    parser.add_argument("--texture-size", type=int, default=256)
    parser.add_argument("--latent-size", type=int, default=128)
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--engine-threads",
        default="auto,1",
        help="comma-separated engine --threads settings to compare ('auto' = torch's default)",
    )
    parser.add_argument("--no-write", action="store_true", help="print, do not update bench/RESULTS.md")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from bench.harness import machine_description, markdown_table, write_section

    rows: list[list[object]] = []
    errors: list[str] = []
    with tempfile.TemporaryDirectory(prefix="dlatrack-bench-server-") as tmp:
        tmp_path = Path(tmp)
        avatar = args.avatar or make_avatar(tmp_path / "avatar", args.vertices, args.texture_size, args.latent_size)
        for threads in args.engine_threads.split(","):
            info, result, alone = measure(
                avatar,
                tmp_path / f"state-{threads}",
                args.device,
                threads.strip(),
                args.clients,
                args.seconds,
            )
            for run, op in ((result, "status"), (result, "decode_view"), (alone, "decode_view")):
                rows.append(
                    [
                        f"{threads} ({info['threads']})",
                        op,
                        run.clients,
                        f"{run.seconds:.0f}",
                        run.count(op),
                        f"{run.count(op) / run.seconds:.1f}",
                        f"{run.percentile_ms(op, 50):.1f}",
                        f"{run.percentile_ms(op, 99):.1f}",
                        len(run.errors),
                    ]
                )
            errors += result.errors + alone.errors
    body = (
        f"Avatar: {info['num_vertices']} vertices, {info['texture_size']}² texture, z of {info['latent_size']} "
        f"({'given' if args.avatar else 'random weights'}); each decode_view decodes one frame (DAM + G) and "
        "returns its fully-lit and relit textures as PNGs. Decodes are serialised by the engine (one at a time), "
        f"so with {args.clients} clients decode_view latency includes queueing behind the others; the 1-client rows "
        "decode alone (no queue). `engine threads`: the engine's `--threads` (torch's resulting thread count). On "
        "an oversubscribed CPU (see the load average above) torch's default pool and 1 thread trade places between "
        "continuous load and a lone client, so both are measured.\n\n"
        + markdown_table(
            ["engine threads", "op", "clients", "seconds", "requests", "req/s", "p50 ms", "p99 ms", "errors"], rows
        )
    )
    print(body)
    for error in errors[:10]:
        print("error:", error)
    if not args.no_write:
        command = "python -m bench.bench_server " + " ".join(argv if argv is not None else sys.argv[1:])
        write_section("Engine server load test", command.strip(), body, machine=machine_description(args.device))
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
