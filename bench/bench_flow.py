"""How much of the true vertex motion does Eq. 8's DIS flow see? Measured on tracked sample clips.

    python -m bench.bench_flow --jobs cache/tables/run1 [--variant full] [--avatar sample_scenes/avatar]

For every `<jobs>/<clip>/<variant>` job folder of a synthetic clip (one with gt.npz), the flow target d of
Eq. 8 is recomputed exactly as step 3 does (render at the step-1 parameters composited over the frame ->
OpenCV DIS -> sampled at the projected vertices, at the job's working size) and compared with the motion
step 3 should find: the ground-truth projection of each vertex minus its step-1 projection. Reported per
clip over visible vertices: mean ‖ideal‖, mean ‖d‖, mean ‖d − ideal‖ (‖ideal‖ is the error of d = 0), and
the mean cosine between d and ideal. A flow that saw the motion would give ‖d − ideal‖ << ‖ideal‖.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import cv2
import numpy as np
import torch

from bench.harness import machine_description, markdown_table, write_section

log = logging.getLogger("bench_flow")


def measure(job: Path, avatar, preset: str | None) -> dict[str, float]:
    from dlatrack_engine.fit.flow import vertex_flow
    from dlatrack_engine.fit.params import FrameParams
    from dlatrack_engine.fit.scene import FaceScene
    from dlatrack_engine.report.job import load_job_lighting
    from dlatrack_engine.video import read_clip
    from dlatrack_engine.wire.jobfolder import JobFolder

    manifest = json.loads((job / "manifest.json").read_text())
    video = Path(manifest["video"])
    root = video.parent if video.name == "frames" else video
    gt = np.load(root / "gt.npz")
    opts = manifest["options"]
    clip = read_clip(video, opts.get("start", 0), opts.get("stop"), opts.get("stride", 1))
    width, height = manifest["work_size"]
    scale = width / clip.size[0]
    K = torch.diag(torch.tensor([scale, scale, 1.0])) @ torch.as_tensor(manifest["K"], dtype=torch.float32)
    scene = FaceScene(avatar, K, width, height)
    lighting = load_job_lighting(JobFolder(job), avatar, scene)
    init = np.load(job / "init.npz")
    frames = torch.as_tensor(np.stack([cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA)
                                       for f in clip.frames]))
    params = FrameParams(torch.as_tensor(init["r"]), torch.as_tensor(init["t"]), torch.as_tensor(init["z"]))
    rows = clip.indices
    truth = np.einsum("nij,nvj->nvi", gt["head_R"][rows], gt["vertices"][rows]) + gt["head_t"][rows][:, None]
    preset = preset or manifest["schedule"]["dis_preset"]
    with torch.no_grad():
        out = scene.render(params, lighting, background=frames)
        projected = scene.project(out.vertices_world)
        visible = scene.visible_vertices(out.vertices_world) > 0
        flow = vertex_flow(out.image, frames, projected, preset)
        ideal = scene.project(torch.as_tensor(truth, dtype=torch.float32)) - projected
    norm = 256.0 / max(width, height)  # report in pixels at a 256-px side, the unit of Eq. 8 (fit/losses.py)
    cosine = torch.nn.functional.cosine_similarity(flow, ideal, dim=-1)
    return {
        "ideal_px": float(ideal.norm(dim=-1)[visible].mean() * norm),
        "flow_px": float(flow.norm(dim=-1)[visible].mean() * norm),
        "error_px": float((flow - ideal).norm(dim=-1)[visible].mean() * norm),
        "cosine": float(cosine[visible].mean()),
        "preset": preset,
        "work": f"{width}x{height}",
    }


def main() -> None:
    from dlatrack_engine.avatar.runtime import Avatar

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jobs", required=True, help="a bench_registration --out folder: <clip>/<variant>/")
    p.add_argument("--variant", default="full")
    p.add_argument("--avatar", default=str(Path(__file__).resolve().parents[1] / "sample_scenes" / "avatar"))
    p.add_argument("--preset", default=None, help="DIS preset (default: the job's)")
    p.add_argument("--results", default=None)
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    avatar = Avatar.load(args.avatar, torch.device("cpu"))
    rows = []
    for job in sorted(Path(args.jobs).glob(f"*/{args.variant}")):
        if not (job / "init.npz").exists() or not (job / "lighting").is_dir():
            continue
        m = measure(job, avatar, args.preset)
        log.info("%s: %s", job.parent.name, m)
        rows.append([job.parent.name, m["work"], m["preset"], f"{m['ideal_px']:.2f}", f"{m['flow_px']:.2f}",
                     f"{m['error_px']:.2f}", f"{m['cosine']:.2f}"])
    if not rows:
        raise SystemExit(f"{args.jobs}: no '{args.variant}' job folders with init.npz and lighting/")
    flags = f"--jobs {args.jobs} --variant {args.variant}" + (f" --preset {args.preset}" if args.preset else "")
    body = ("Pixels at a 256-px image side (Eq. 8's unit), means over visible vertices and frames. *ideal* = GT "
            "projection − step-1 projection (what step 3 should move each vertex by); *d* = DIS flow from the render "
            "at the step-1 parameters to the frame; ‖d − ideal‖ equal to ‖ideal‖ means d carries no information "
            "about the motion.\n\n"
            + markdown_table(["clip", "working size", "DIS preset", "‖ideal‖ px", "‖d‖ px", "‖d − ideal‖ px",
                              "cos(d, ideal)"], rows))
    write_section("Registration: what Eq. 8's DIS flow sees", f"python -m bench.bench_flow {flags}", body,
                  path=args.results, machine=machine_description("cpu"))


if __name__ == "__main__":
    main()
