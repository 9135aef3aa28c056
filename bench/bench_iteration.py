"""One optimiser iteration (forward + backward) of each registration step on the shipped clip (issue 20).

Where a job's time goes, per iteration rather than per stage, so a speed-up can be aimed and checked: step 3
with G's maps held (as shipped) and with G run every iteration, step 2's half-round a (l only, fixed geometry)
and half-round b (φ and the key-frame poses, full render), and G's own forward + backward. The lighting is the
avatar's G at l = 0, the parameters the clip's ground truth: the cost does not depend on either.

    python -m bench.bench_iteration [--frames 20] [--batch 8] [--threads 2] [--record]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from bench.harness import markdown_table, time_fn, write_section
from dlatrack_engine.avatar.runtime import Avatar
from dlatrack_engine.fit.ground_truth import load_ground_truth_clip
from dlatrack_engine.fit.image_term import image_term
from dlatrack_engine.fit.params import ScaledParams
from dlatrack_engine.fit.schedule import Schedule
from dlatrack_engine.fit.step2 import _FixedGeometry
from dlatrack_engine.fit.video_lighting import VideoLighting

REPO = Path(__file__).resolve().parents[1]


def measure(frames: int, batch: int, repeats: int) -> list[list[str]]:
    avatar = Avatar.load(REPO / "sample_scenes" / "avatar", "cpu")
    clip = load_ground_truth_clip(REPO / "sample_scenes" / "clips" / "warm_key_cool_fill", avatar,
                                  Schedule.fast().work_size, list(range(frames)))
    scene, images, truth = clip.scene, clip.frames, clip.truth
    lighting = VideoLighting("G", avatar, scene.renderer)
    network = lighting.network_parameters()
    held = scene.held_maps(truth, lighting)
    leaves = ScaledParams(truth, 0.1, 0.01)
    keys = list(range(batch))
    fixed = _FixedGeometry(scene, truth.select(keys), [keys])

    def step3(shading) -> None:
        loss, _ = image_term(scene, images, leaves.params(), shading, 0.25)
        loss.sum().backward()

    def half_round_a() -> None:
        lighting.code.requires_grad_(True)
        fixed.loss(0, images[keys], lighting, 0.25, None).sum().backward()

    def half_round_b() -> None:
        for p in network:
            p.requires_grad_(True)
        loss, _ = image_term(scene, images[keys], leaves.params().select(keys), lighting, 0.25)
        loss.sum().backward()
        for p in network:
            p.requires_grad_(False)

    def g_alone() -> None:
        for p in network:
            p.requires_grad_(True)
        gain, bias = lighting.gain_bias(scene.head_view(truth.select(keys)), fixed.entries[0][0], None, None)
        (gain.sum() + bias.sum()).backward()
        for p in network:
            p.requires_grad_(False)

    cases = [(f"step 3, {frames} frames, G's maps held (shipped)", lambda: step3(held)),
             (f"step 3, {frames} frames, G every iteration", lambda: step3(lighting)),
             (f"step 2 half-round a (l), {batch} frames", half_round_a),
             (f"step 2 half-round b (φ, p_k), {batch} frames", half_round_b),
             (f"G forward + backward with weight gradients, {batch} frames", g_alone)]
    rows = []
    for name, fn in cases:
        timing = time_fn(fn, repeats=repeats, warmup=1)
        rows.append([name, f"{timing.median_ms:.1f}", f"{timing.median_cpu_ms:.1f}"])
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--frames", type=int, default=20, help="frames of a step-3 batch (the preset's batch_size)")
    p.add_argument("--batch", type=int, default=8, help="key frames of a step-2 iteration (the preset's)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--record", action="store_true", help="write the table into bench/RESULTS.md")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    table = markdown_table(["iteration (forward + backward)", "median wall ms", "median CPU ms"],
                           measure(args.frames, args.batch, args.repeats))
    print(table)
    if args.record:
        write_section("Speed: one iteration of each registration step (issue 20)",
                      "python -m bench.bench_iteration " + " ".join(sys.argv[1:]), table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
