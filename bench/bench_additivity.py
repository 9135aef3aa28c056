"""How additive in the light is each avatar's G on a light stage's pattern frames (issue 4 experiments).

    python -m bench.bench_additivity --data cache/sample/lightstage --avatar A [--avatar B ...]

Prints, per package, the relative non-additivity mean |T(l) − T(l_A) − T(l_B)| / mean |T(l)| of the relit
texture (train/experiments/superposition.py) on the first `--frames` pattern frames seen from every camera, at
the DAM's mean expression (z = 0), with the same seeded random splits for every package. Light transport is
additive, so a G that learnt it scores 0.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from dlatrack_engine.avatar.runtime import Avatar
from dlatrack_engine.models.lighting import head_view_vector
from dlatrack_engine.train.data import load_lightstage
from dlatrack_engine.train.experiments.superposition import non_additivity


def package_non_additivity(avatar: Avatar, data, frames: list[int], seed: int) -> float:
    """Mean over the frames' cameras of `non_additivity` (frames x cameras in one batch per frame)."""
    generator = torch.Generator().manual_seed(seed)
    cams = torch.arange(data.num_cameras)
    values = []
    for frame in frames:
        ids = torch.full_like(cams, frame)
        view = data.view_vectors(ids, cams)
        with torch.no_grad():
            _, texture = avatar.dam.decode(torch.zeros(len(cams), avatar.dam.cfg.latent_size), view)
        head_view = head_view_vector(data.head_r[ids], view)
        values.append(non_additivity(avatar.lighting, data.light_codes[ids], head_view, texture, generator))
    return sum(values) / len(values)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="light-stage dataset folder")
    parser.add_argument("--avatar", type=Path, action="append", required=True, help="avatar package (repeatable)")
    parser.add_argument("--frames", type=int, default=40, help="pattern frames to use (the first N)")
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    data = load_lightstage(args.data, max_image_size=args.image_size)
    frames = [f for f in range(data.num_frames) if data.kinds[f] == "group"][: args.frames]
    if not frames:
        parser.error(f"{args.data}: no pattern (group-lit) frames")
    print("| avatar | pattern frames x cameras | relative non-additivity (%) |")
    print("|---|---|---|")
    for path in args.avatar:
        value = package_non_additivity(Avatar.load(path), data, frames, args.seed)
        print(f"| `{path}` | {len(frames)} x {data.num_cameras} | {100 * value:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
