"""`preview.mp4`: the tracked job side by side with its input, at the clip's resolution and frame rate.

Panels (each at the clip's size, three to a row): the input frame; the tracked mesh, shaded, over the frame
with the detected (green) and the mesh's (red) landmarks; the avatar relit with the video's adapted lighting
composited over the frame (Eq. 7's Î); the same avatar from a fixed novel viewpoint (the camera turned
`NOVEL_YAW_DEG` about the head's mean position); on clips with ground truth, the camera-frame vertex error as
a heat map on the tracked mesh; and the frame's numbers. The per-frame PSNR drawn there is the evaluation's
(same renders, same face masks); the mean and the lost frames go into the manifest for the add-on.
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dlatrack_engine.colour import linear_to_srgb8
from dlatrack_engine.fit.video_lighting import lighting_at
from dlatrack_engine.metrics import image
from dlatrack_engine.metrics.geometry import rotation_angle_deg, to_camera
from dlatrack_engine.report import panels
from dlatrack_engine.report.job import LoadedJob, load_job
from dlatrack_engine.report.video import encode_mp4

log = logging.getLogger(__name__)
PREVIEW_FILE = "preview.mp4"
NOVEL_YAW_DEG = 40.0
COLUMNS = 3
MAX_WIDTH = 3840  # what browsers and Blender decode; clips wider than 1280 px get smaller panels
MESH_TINT = np.array([0.55, 0.75, 1.0], np.float32)  # linear RGB: a blue-grey clay, apart from any skin


@dataclass
class PreviewResult:
    path: Path
    frames: int
    size: tuple[int, int]  # (width, height) of the video
    fps: float
    psnr: list[float]  # per frame, dB
    lost_frames: list[int]
    seconds: float


def _yaw(degrees: float, device: torch.device) -> torch.Tensor:
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    return torch.tensor([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]], device=device)


def _vertex_shading(faces: torch.Tensor, world: torch.Tensor) -> torch.Tensor:
    """[B, V, 1] diffuse shading |n · l| in [0, 1] for a light above-left of the camera (camera frame: y down,
    z forward), so the mesh's relief shows; the mesh's winding does not matter."""
    f = faces.long()
    normals = torch.cross(world[:, f[:, 1]] - world[:, f[:, 0]], world[:, f[:, 2]] - world[:, f[:, 0]], dim=-1)
    vertex_normals = torch.zeros_like(world)
    for corner in range(3):
        vertex_normals.index_add_(1, f[:, corner], normals)
    light = torch.nn.functional.normalize(torch.tensor([-0.5, -0.6, -1.0], device=world.device), dim=0)
    return (torch.nn.functional.normalize(vertex_normals, dim=-1) @ light)[..., None].abs()


def _on_mesh(job: LoadedJob, world: torch.Tensor, attribute: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Per-vertex `attribute` [B, V, C] seen by the video camera -> ([B, H, W, C], coverage [B, H, W, 1])."""
    renderer = job.scene.renderer
    _, rast = renderer.depth_map(world, job.scene.camera(len(world)))
    values = renderer.backend.interpolate(attribute.to(world.dtype), rast, renderer.faces)
    return values.cpu().numpy(), (rast[..., 3:] > 0).float().cpu().numpy()


class _Painter:
    """Draws the panels of one job, batch by batch."""

    def __init__(self, job: LoadedJob) -> None:
        self.job = job
        device = job.scene.device
        self.centre = job.params.t.mean(dim=0)  # fixed for the clip: the novel camera does not follow the head
        self.turn = _yaw(NOVEL_YAW_DEG, device)
        self.error_mm = None
        if job.gt is not None and job.gt["vertices"].shape[1:] == job.track["vertices"].shape[1:]:
            cam = to_camera(job.track["vertices"].astype(np.float64), job.track["head_R"], job.track["head_t"])
            cam_gt = to_camera(job.gt["vertices"].astype(np.float64), job.gt["head_R"], job.gt["head_t"])
            self.error_mm = (np.linalg.norm(cam - cam_gt, axis=-1) * 1000.0).astype(np.float32)  # [N, V]
            # One colour scale for the whole clip (so colours compare across frames), 5 mm at least.
            self.heat_max = float(max(5.0, np.ceil(np.percentile(self.error_mm, 95))))
            self.rotation_deg = rotation_angle_deg(job.track["head_R"], job.gt["head_R"])
        with torch.no_grad():
            self.mesh_marks = job.scene.landmarks_2d(job.params).cpu().numpy()

    def batch(self, rows: list[int]) -> list[tuple[list[np.ndarray], float]]:
        """The labelled panels and the PSNR of each frame in `rows`."""
        job = self.job
        params = job.params.select(rows)
        frames = torch.as_tensor(job.frames[rows], device=job.scene.device)
        with torch.no_grad():
            out = job.scene.render(params, lighting_at(job.lighting, rows))  # on black, as the evaluation scores it
            moved = (out.vertices_world - self.centre) @ self.turn.T + self.centre
            grey = torch.full_like(frames, 0.18)
            novel = job.scene.renderer.render(moved, job.scene.camera(len(rows)), out.relit_texture, grey).image
            shading, covered = _on_mesh(job, out.vertices_world,
                                        _vertex_shading(job.scene.renderer.faces, out.vertices_world))
            heat = None
            if self.error_mm is not None:
                error = torch.as_tensor(self.error_mm[rows], device=job.scene.device)[..., None]
                heat, _ = _on_mesh(job, out.vertices_world, error)
        result = []
        for j, k in enumerate(rows):
            frame = job.frames[k]
            render = out.image[j].cpu().numpy()
            psnr = image.psnr(render, frame, job.masks[k])
            composite = render + frame * (1 - out.mask[j].cpu().numpy())  # antialiased edges: premultiplied
            shaded = frame * (1 - 0.8 * covered[j]) + (0.05 + 0.9 * shading[j]) * MESH_TINT * 0.8 * covered[j]
            detected = job.marks.points[k] if job.marks.detected[k] else None
            tiles = [
                panels.label(linear_to_srgb8(frame), "input"),
                panels.label(panels.draw_landmarks(linear_to_srgb8(shaded), detected, self.mesh_marks[k]),
                             "tracked mesh, landmarks" if detected is not None else "tracked mesh (no detection)"),
                panels.label(linear_to_srgb8(composite), "avatar, adapted lighting"),
                panels.label(linear_to_srgb8(novel[j].cpu().numpy()), f"novel view ({NOVEL_YAW_DEG:.0f} deg)"),
            ]
            lines = [f"frame {job.indices[k]}", f"PSNR {psnr:.1f} dB"]
            if heat is not None:
                colours = panels.heat_colours(heat[j][..., 0], self.heat_max).astype(np.float32)
                dimmed = linear_to_srgb8(frame).astype(np.float32) * 0.4
                blend = dimmed * (1 - covered[j]) + colours * covered[j]
                tiles.append(panels.label(blend.astype(np.uint8), f"vertex error 0-{self.heat_max:.0f} mm"))
                lines += [f"vertex {float(self.error_mm[k].mean()):.1f} mm",
                          f"rotation {float(self.rotation_deg[k]):.1f} deg"]
            lines += ["", "green: detected", "red: mesh landmarks"]
            height, width = frame.shape[:2]
            tiles.append(panels.text_lines(width, height, lines))
            result.append((tiles, psnr))
        return result


def write_preview(job_dir: str | Path, avatar, batch: int = 8,
                  on_frame: Callable[[int, int], None] | None = None) -> PreviewResult:
    """Render and encode `preview.mp4` in the job folder; records its mean PSNR and lost frames in the
    manifest's `metrics.preview` (what the add-on's sidebar shows). `on_frame(done, total)` follows the
    progress (and may raise to stop: nothing is written then)."""
    start = time.monotonic()
    job = load_job(job_dir, avatar)
    painter = _Painter(job)
    psnr: list[float] = []
    size: list[int] = []

    def frames():
        for first in range(0, len(job.indices), batch):
            for tiles, value in painter.batch(list(range(first, min(first + batch, len(job.indices))))):
                psnr.append(value)
                if on_frame is not None:
                    on_frame(len(psnr), len(job.indices))
                mosaic = panels.fit_width(panels.mosaic(tiles, COLUMNS), MAX_WIDTH)
                size[:] = [mosaic.shape[1], mosaic.shape[0]]
                yield mosaic

    path = job.folder.root / PREVIEW_FILE
    with tempfile.TemporaryDirectory(prefix="dlatrack-preview-") as tmp:  # nothing half-written in the job
        partial = Path(tmp) / PREVIEW_FILE
        count = encode_mp4(frames(), partial, job.fps)
        job.folder.write_file(path, partial.read_bytes())  # the job folder's atomic write and ledger
    seconds = time.monotonic() - start
    result = PreviewResult(path, count, (size[0], size[1]), job.fps, psnr, job.lost_frames, seconds)
    summary = {"file": PREVIEW_FILE, "psnr": float(np.mean(psnr)), "lost_frames": result.lost_frames,
               "frames": count, "seconds": seconds}
    metrics = job.folder.read_manifest().metrics
    job.folder.update_manifest(metrics={**metrics, "preview": summary})
    log.info("preview: %d frames %dx%d at %.3g fps in %.1f s -> %s", count, *result.size, job.fps, seconds, path)
    return result
