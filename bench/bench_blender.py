"""Writing N frames x V vertices into Blender: per-frame shape keys vs a PC2 file + Mesh Cache modifier.

    python -m bench.bench_blender            # from the engine venv; the bpy part runs in Blender's Python

Measures, inside Blender (bpy wheel or binary): the time to write the non-rigid motion each way and the
time to change frame and evaluate the mesh afterwards (playback), which is where thousands of shape keys
hurt. The results choose `blender_addon.blender.scene.MESH_CACHE_ABOVE_FRAMES`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIZES = [(100, 5000), (100, 7000), (300, 7000), (500, 7000), (1000, 5000), (1000, 7000)]
PLAYBACK_FRAMES = 20


def _bpy_measure(frames: int, vertices: int, workdir: Path) -> dict[str, float]:
    """Inside Blender: write `frames` x `vertices` both ways into fresh objects and time it."""
    import bpy
    import numpy as np

    from blender_addon.blender import meshcache, shapekeys
    from blender_addon.blender.mesh import object_vertices
    from blender_addon.io import pc2

    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    rng = np.random.default_rng(0)
    data = rng.normal(size=(frames, vertices, 3)).astype(np.float32)

    def new_object(name: str) -> bpy.types.Object:
        mesh = bpy.data.meshes.new(name)
        mesh.vertices.add(vertices)
        mesh.vertices.foreach_set("co", data[0].ravel())
        obj = bpy.data.objects.new(name, mesh)
        scene.collection.objects.link(obj)
        return obj

    def playback(obj: bpy.types.Object) -> float:
        picks = np.linspace(1, frames, PLAYBACK_FRAMES).astype(int)
        start = time.perf_counter()
        for frame in picks:
            scene.frame_set(int(frame))
            object_vertices(obj, bpy.context.evaluated_depsgraph_get())
        return (time.perf_counter() - start) / len(picks)

    scene_frames = np.arange(1, frames + 1)
    keyed = new_object("keys")
    start = time.perf_counter()
    shapekeys.write_shape_keys(keyed, [f"frame_{f:04d}" for f in scene_frames], scene_frames, data)
    write_keys = time.perf_counter() - start
    play_keys = playback(keyed)
    bpy.data.objects.remove(keyed)

    cached = new_object("cache")
    start = time.perf_counter()
    path = pc2.write_pc2(workdir / f"bench_{frames}_{vertices}.pc2", data, start_frame=1)
    meshcache.attach_mesh_cache(cached, path, 1)
    write_cache = time.perf_counter() - start
    play_cache = playback(cached)
    return {
        "write_keys_s": write_keys, "play_keys_ms": play_keys * 1e3,
        "write_pc2_s": write_cache, "play_pc2_ms": play_cache * 1e3,
        "pc2_mb": path.stat().st_size / 2**20,
    }  # fmt: skip


def _inner(argv: list[str]) -> None:
    """Entry point inside Blender: `bench_blender.py --inner OUT.json`."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import bpy

    out_path = Path(argv[argv.index("--inner") + 1])
    report: dict = {"blender": bpy.app.version_string, "rows": []}
    with tempfile.TemporaryDirectory() as tmp:
        for frames, vertices in SIZES:
            row = _bpy_measure(frames, vertices, Path(tmp))
            report["rows"].append({"frames": frames, "vertices": vertices, **row})
            out_path.write_text(json.dumps(report))


def main() -> int:
    from bench.harness import machine_description, markdown_table, write_section
    from dlatrack_engine.paths import blender_command

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.json"
        command = blender_command(Path(__file__).resolve(), ["--inner", str(out)])
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0 or not out.is_file():
            sys.stderr.write(done.stdout[-3000:] + done.stderr[-3000:])
            return 1
        report = json.loads(out.read_text())
    rows = [
        [r["frames"], r["vertices"], f"{r['write_keys_s']:.2f}", f"{r['play_keys_ms']:.1f}",
         f"{r['write_pc2_s']:.3f}", f"{r['play_pc2_ms']:.1f}", f"{r['pc2_mb']:.0f}"]
        for r in report["rows"]
    ]  # fmt: skip
    table = markdown_table(
        ["frames", "vertices", "shape keys: write s", "shape keys: frame change ms", "PC2: write s",
         "PC2: frame change ms", "PC2 MB"], rows,
    )  # fmt: skip
    body = (
        f"Blender {report['blender']} (bpy wheel, background). Non-rigid motion only (head pose keys are the "
        "same either way). 'frame change' = `scene.frame_set` + evaluating the mesh, mean over "
        f"{PLAYBACK_FRAMES} frames spread over the clip.\n\n{table}\n"
    )
    path = write_section("Blender add-on: writing N frames x V vertices", "python -m bench.bench_blender", body,
                         machine=machine_description())  # fmt: skip
    print(f"wrote {path}")  # CLI output
    return 0


if __name__ == "__main__":
    if "--inner" in sys.argv:
        _inner(sys.argv)
    else:
        sys.exit(main())
