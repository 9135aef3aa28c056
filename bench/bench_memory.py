"""Peak resident memory of the engine's work on large inputs (issue 19: memory follows the work, not the video).

Run: `python -m bench.bench_memory [--frames 30 60 120] [--skip-job] [--before-tree DIR]`. Each measurement
runs in a fresh child process and reports that child's peak RSS (`wait4`'s ru_maxrss), so nothing of the
parent counts:

- 1080p clips of N frames, written with cv2.VideoWriter into a temp folder (the sample subject's rendered
  face, scaled 3x, in the middle of a 1920x1080 frame, so the landmark detector finds it):
  - `decode, before the fix` (with `--before-tree`, a checkout of the older code, e.g. `git worktree add
    /tmp/before f205a18`): that code's reader and the pipeline's old order, every frame decoded at full
    size, then scaled to the working size, then the full-size frames converted for landmark detection;
  - `decode (streamed)`: `read_clip(work_size=...)` plus one streamed pass over the full-size frames, what
    the pipeline does now before step 1;
  - `preview job`: the real registration job (`track_video`, `steps=landmarks`, fast schedule, MediaPipe
    landmarks, textures and overlays written) with the shipped sample avatar.
- The largest avatar the limits allow (`avatar/limits.py`): randomly initialised networks just under
  MAX_PARAMETERS (the `real` preset's widths at 2048² textures, mesh decoder widened to fill the budget),
  loaded with `Avatar.load`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from bench.harness import machine_description, markdown_table, write_section

REPO = Path(__file__).resolve().parent.parent
SAMPLE_FRAMES = REPO / "sample_scenes" / "clips" / "warm_key_cool_fill" / "frames"
SAMPLE_AVATAR = REPO / "sample_scenes" / "avatar"
log = logging.getLogger(__name__)


def make_clip(path: Path, frames: int, width: int = 1920, height: int = 1080) -> Path:
    """An mp4 of `frames` 1080p frames with a face in the middle (the sample clip, cycled)."""
    faces = sorted(SAMPLE_FRAMES.glob("*.png"))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30, (width, height))
    for i in range(frames):
        face = cv2.resize(cv2.imread(str(faces[i % len(faces)])), (768, 768), interpolation=cv2.INTER_CUBIC)
        image = np.full((height, width, 3), 90, np.uint8)
        top, left = (height - 768) // 2, (width - 768) // 2 + (i % 7) * 4
        image[top : top + 768, left : left + 768] = face
        writer.write(image)
    writer.release()
    return path


# -- children ---------------------------------------------------------------------------------------------
# The pipeline's video handling before the fix (fit/pipeline.py at f205a18), run against the older tree.
BEFORE = """
import json, sys
import cv2, numpy as np
from dlatrack_engine.colour import linear_to_srgb8
from dlatrack_engine.fit.schedule import Schedule
from dlatrack_engine.video import read_clip
clip = read_clip(sys.argv[1])
work = Schedule.fast().work_size
width, height = clip.size
scale = min(1.0, work / max(width, height))
size = (round(width * scale), round(height * scale))
frames = np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in clip.frames])
for frame in clip.frames:
    linear_to_srgb8(frame)
print(json.dumps({"frames": len(clip.indices), "shape": list(frames.shape)}))
"""


def child_decode(video: str) -> dict:
    from dlatrack_engine.colour import linear_to_srgb8
    from dlatrack_engine.fit.schedule import Schedule
    from dlatrack_engine.video import read_clip

    clip = read_clip(video, work_size=Schedule.fast().work_size)
    for frame in clip.source_frames():  # what landmark detection reads
        linear_to_srgb8(frame)
    return {"frames": len(clip.indices), "shape": list(clip.frames.shape)}


def child_job(video: str, out: str) -> dict:
    import torch

    from dlatrack_engine.avatar.runtime import Avatar
    from dlatrack_engine.fit.pipeline import TrackOptions, track_video

    torch.set_num_threads(2)
    avatar = Avatar.load(SAMPLE_AVATAR, "cpu")
    options = TrackOptions(quality="fast", steps="landmarks", lighting="none", detector="mediapipe", key_frames=8)
    summary = track_video(video, avatar, Path(out), options)
    return {"frames": summary.frames, "computed": summary.computed_frames}


def child_avatar(path: str) -> dict:
    from dlatrack_engine.avatar.runtime import Avatar

    avatar = Avatar.load(path, "cpu")
    count = sum(p.numel() for p in avatar.dam.parameters()) + sum(p.numel() for p in avatar.lighting.parameters())
    return {"parameters": count}


def run_child(*args: str, before_tree: Path | None = None) -> tuple[float, dict]:
    """-> (peak RSS in MB of a fresh `python -m bench.bench_memory --child ...`, what it printed); with
    `before_tree`, the BEFORE script on that tree's code instead."""
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    command = [sys.executable, "-m", "bench.bench_memory", "--child", *args]
    if before_tree is not None:
        env["PYTHONPATH"] = str(before_tree)
        command = [sys.executable, "-c", BEFORE, *args]
    process = subprocess.Popen(command, cwd=before_tree or REPO, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _pid, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    out, err = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"child {args} failed ({process.returncode}): {err[-3000:]}")
    return usage.ru_maxrss / 1024, json.loads(out.strip().splitlines()[-1])


# -- the largest avatar -----------------------------------------------------------------------------------
def largest_avatar(folder: Path) -> tuple[Path, int]:
    """A package just under MAX_PARAMETERS: the `real` preset at 2048² textures, mesh decoder widened."""
    import torch

    from dlatrack_engine.avatar.format import load_avatar_package
    from dlatrack_engine.avatar.limits import MAX_PARAMETERS, _count_parameters
    from dlatrack_engine.avatar.runtime import Avatar
    from dlatrack_engine.models.dam import DAM, DAMConfig
    from dlatrack_engine.models.lighting import LightingConfig, LightingModel
    from dlatrack_engine.train.pipeline import REAL_DAM, REAL_LIGHTING

    topology = load_avatar_package(SAMPLE_AVATAR).topology
    light = LightingConfig(texture_size=2048, **REAL_LIGHTING)

    def dam_config(hidden: int) -> DAMConfig:
        sizes = {**REAL_DAM, "mesh_hidden": hidden}
        return DAMConfig(num_vertices=topology.num_vertices, texture_size=2048, **sizes)

    def total(hidden: int) -> int:
        return _count_parameters(lambda: DAM(dam_config(hidden))) + _count_parameters(lambda: LightingModel(light))

    hidden = REAL_DAM["mesh_hidden"]
    while total(hidden + 64) < 0.99 * MAX_PARAMETERS:
        hidden += 64
    count = total(hidden)
    torch.manual_seed(0)
    avatar = Avatar(DAM(dam_config(hidden)), LightingModel(light), topology, {"name": "largest"})
    path = avatar.to_package(folder / "largest", provenance={"command": "bench/bench_memory.py"})
    return path, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, nargs="+", default=[30, 60, 120])
    parser.add_argument("--skip-job", action="store_true", help="only the decode rows and the avatar")
    parser.add_argument("--before-tree", type=Path, help="a checkout of the code before the fix, for comparison")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        result = {"decode": lambda: child_decode(rest[0]), "job": lambda: child_job(*rest),
                  "avatar": lambda: child_avatar(rest[0])}[kind]()
        print(json.dumps(result))
        return
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    rows = []
    with tempfile.TemporaryDirectory(prefix="dlatrack-bench-memory-") as tmp:
        for frames in args.frames:
            video = make_clip(Path(tmp) / f"clip{frames}.mp4", frames)
            size_mb = video.stat().st_size / 1e6
            clip = f"1080p, {frames} frames ({size_mb:.1f} MB mp4)"
            if args.before_tree is not None:
                commit = subprocess.run(["git", "-C", str(args.before_tree), "rev-parse", "--short", "HEAD"],
                                        capture_output=True, text=True, check=True).stdout.strip()
                peak, _ = run_child(str(video), before_tree=args.before_tree)
                rows.append([clip, f"decode, before the fix ({commit}: full size, then scaled)", f"{peak:.0f}"])
                log.info("%s", rows[-1])
            peak, _ = run_child("decode", str(video))
            rows.append([clip, "decode (streamed, scaled per frame)", f"{peak:.0f}"])
            log.info("%s", rows[-1])
            if not args.skip_job:
                peak, result = run_child("job", str(video), str(Path(tmp) / f"job{frames}"))
                rows.append([clip, f"preview job ({result['computed']} frames tracked)", f"{peak:.0f}"])
                log.info("%s", rows[-1])
        package, count = largest_avatar(Path(tmp))
        weights_mb = (package / "weights.safetensors").stat().st_size / 1e6
        peak, _ = run_child("avatar", str(package))
        rows.append([f"largest avatar: {count / 1e6:.1f} M parameters, 2048² textures ({weights_mb:.0f} MB weights)",
                     "Avatar.load", f"{peak:.0f}"])
        log.info("%s", rows[-1])
    body = (
        "Peak RSS of a fresh child process per row (`wait4` ru_maxrss), so the numbers are the work's own. "
        "Working size: the fast schedule's 128 px (the paper schedule works at full size and holds its frames at "
        "full size: 25 MB a 1080p frame). The clip: the sample subject's face (scaled 3x) in a 1920x1080 frame.\n\n"
        + markdown_table(["input", "what runs", "peak RSS MB"], rows)
    )
    command = "python -m bench.bench_memory" + (" --before-tree <checkout of f205a18>" if args.before_tree else "")
    write_section("Engine memory: peak RSS on large inputs", command, body, machine=machine_description("cpu"))


if __name__ == "__main__":
    main()
