"""`report/` in a job folder: the plots, `metrics.json` (the evaluation's numbers, per frame too) and
`report.html`, written by `dlatrack eval` from its `Evaluation`."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np

from dlatrack_engine.fit import lighting_store
from dlatrack_engine.metrics.cli import COLUMNS
from dlatrack_engine.metrics.evaluate import Evaluation
from dlatrack_engine.report import html, plots
from dlatrack_engine.report.preview import PREVIEW_FILE
from dlatrack_engine.wire.jobfolder import JobFolder

REPORT_DIR = "report"
EMBED_VIDEO_BYTES = 8 << 20  # a larger preview is linked (../preview.mp4), not inlined


def _json_values(values: np.ndarray) -> list[float | None]:
    return [None if math.isnan(v) else float(v) for v in np.asarray(values, np.float64)]


def loss_curves(folder: JobFolder, frames: list[int], stored: lighting_store.StoredLighting | None) -> dict:
    """Steps 1-3's losses as stored in the job folder: step 1 per frame (init.npz), step 2 per iteration
    (lighting.json; jobs from before it kept one value per stage), step 3's terms per frame (the frame files)."""
    curves: dict = {}
    init = folder.root / "init.npz"
    if folder.trusted(init):
        with np.load(io.BytesIO(folder.read_file(init))) as data:
            rows = {i: r for r, i in enumerate(folder.read_manifest().frames)}
            curves["step1_landmark"] = data["loss"][[rows[i] for i in frames]].astype(np.float64)
    info = None if stored is None else stored.info
    if info is not None and (info.iteration_losses or info.losses):
        curves["step2"] = np.asarray(info.iteration_losses or info.losses, np.float64)
    stored = [folder.read_frame(i) for i in frames]
    for term in ("pixel", "flow"):
        if all(f"loss_{term}" in f for f in stored):
            curves[f"step3_{term}"] = np.asarray([float(f[f"loss_{term}"]) for f in stored])
    return curves


def write_report(job_dir: str | Path, evaluation: Evaluation) -> Path:
    """Write `report/` into the job folder; returns the path of report.html."""
    folder = JobFolder(job_dir)
    manifest = folder.read_manifest()
    out = folder.root / REPORT_DIR
    frames, series, lost = evaluation.frames, evaluation.per_frame, evaluation.lost_frames
    stored = lighting_store.read_job(folder)  # the lighting the job used (adapted or reused: lighting.json)
    losses = loss_curves(folder, frames, stored)
    figures = [("Image match: PSNR and SSIM per frame", "image.png", plots.series(frames, [
        ("PSNR (face region)", "dB", series["psnr"]), ("SSIM (face region)", "", series["ssim"])], lost)),
        ("Landmark residual: detected vs tracked mesh", "landmarks.png", plots.series(frames, [
            ("mean distance, detected to mesh landmarks", "px", series["landmark_residual_px"])], lost))]
    if "vertex_mm" in series:
        figures.append(("Errors against the ground truth", "ground_truth.png", plots.series(frames, [
            ("vertex error, camera frame", "mm", series["vertex_mm"]),
            ("head rotation error", "deg", series["rotation_deg"]),
            ("depth error of the mesh centroid (+ = too far)", "mm", series["depth_mm"])], lost)))
    step3 = {k.removeprefix("step3_"): (frames, v) for k, v in losses.items() if k.startswith("step3_")}
    figures.append(("Loss curves of steps 1-3", "losses.png", plots.losses(
        (frames, losses["step1_landmark"]) if "step1_landmark" in losses else None, losses.get("step2"), step3)))
    code = None if stored is None else stored.light_code
    gains = np.stack([series[f"lighting_gain_{c}"] for c in "rgb"], axis=1)
    figures.append(("Lighting", "lighting.png", plots.lighting(code, frames, gains)))
    for _, name, png in figures:
        folder.write_file(out / name, png)

    document = {"job": str(folder.root.resolve()), "video": manifest.video, "frames": frames,
                "metrics": evaluation.means, "lost_frames": lost,
                "per_frame": {k: _json_values(v) for k, v in series.items()},
                "losses": {k: _json_values(v) for k, v in losses.items()},
                "preview": f"../{PREVIEW_FILE}" if (folder.root / PREVIEW_FILE).exists() else None,
                "lighting_reused_from": None if stored is None else stored.info.reused_from,
                "plots": [name for _, name, _ in figures]}
    folder.write_file(out / "metrics.json", (json.dumps(document, indent=1) + "\n").encode())

    video_src = None
    preview = folder.root / PREVIEW_FILE
    if preview.exists():
        size = preview.stat().st_size
        video_src = html.data_uri("video/mp4", preview.read_bytes()) if size <= EMBED_VIDEO_BYTES \
            else f"../{PREVIEW_FILE}"
    table = [(label, fmt.format(evaluation.means[key])) for key, label, fmt in COLUMNS if key in evaluation.means]
    facts = [("video", str(manifest.video)), ("avatar", str(manifest.avatar)),
             ("frames", f"{len(frames)} ({frames[0]}-{frames[-1]})"),
             ("method", f"lighting {manifest.options.get('lighting', '?')}, "
                        f"steps {manifest.options.get('steps', '?')}")]
    if stored is not None and stored.info.reused_from:  # step 2's curve above is that lighting's own take's
        facts.append(("lighting", f"reused from {stored.info.reused_from} (step 2 skipped)"))
    page = html.render(f"dlatrack report: {folder.root.name}", facts, table, video_src,
                       [(caption, png) for caption, _, png in figures], lost)
    return folder.write_file(out / "report.html", page.encode())
