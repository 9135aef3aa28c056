"""Held-out evaluation of a trained avatar on its light stage (issue 4, "quality evidence").

Every number is measured on views or frames that training never saw (`Split` stored in the package):

- DAM, fully-lit frames: texture PSNR of D(z, v) against the unwrapped camera image (visible texels) and
  vertex error (mm and % of the head's bounding-box diagonal); z from the encoder.
- Lighting, group-lit frames: PSNR/SSIM of the rendered relit avatar against the real image on the face
  region (foreground covered by the mesh), for G, the SH baseline and "no lighting model" (fully-lit
  texture). The lighting of a frame is *fitted on its training cameras only* and judged on the held-out
  camera(s) (and, separately, on the fitting cameras):
    * SH: the least-squares optimum of the 27 coefficients (the best any SH shading can do there);
    * G, pattern seen in training: the frame's known light code, nothing fitted;
    * G, pattern never seen (held-out frames: the sample light stage never repeats a pattern): the frame's
      known code, nothing fitted — the test of whether G learnt what each light group does, since a
      held-out pattern is a new combination of groups that training lit in other combinations
      (sample_scenes/README.md); and, separately, the code l fitted like step (a) of Algorithm 1 — φ frozen,
      Adam lr 1e-2 from l = 0 — in texture space against the unwrapped training-camera images (as in the
      wild, where l is unknown);
    * G adapted, pattern never seen: the whole of Algorithm 1 — l, then φ, alternated with registration's
      step-2 schedule (train/texture_adaptation.py) — which is how the method meets any new lighting; the
      held-out cameras take no part, so an adaptation that overfits the fitting views loses there;
    * oracle (where the light stage has a fully-lit frame of the same mesh and pose, as every sample pose
      does): the DAM's fully-lit render times the true shading ratio I_pattern / I_fully-lit of each pixel.
      Not a method but a reference: what a perfect lighting model could reach on this DAM texture and
      geometry, so the margin between G (or SH) and it is the lighting model's to win, not the DAM's.

- G's gain/bias split, on the frames' known codes (all cameras, texels of the UV layout): the mean gain, the
  mean gain per unit of light energy (g / s(l), models/lighting.py) and the share of the relit texture
  T̂ ⊙ g + b that the bias carries, Σ|b| / (Σ|T̂ ⊙ g| + Σ|b|). Eq. 2 alone does not fix the split (G sees T̂,
  so b alone can reproduce any relit face); a G whose bias carries the face has collapsed (issue 4).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from dlatrack_engine.avatar.runtime import Avatar
from dlatrack_engine.fit.schedule import Step2Schedule
from dlatrack_engine.metrics.image import psnr, ssim
from dlatrack_engine.metrics.paired import paired_difference
from dlatrack_engine.models.lighting import head_view_vector, light_energy, relight
from dlatrack_engine.models.sh import sh_basis
from dlatrack_engine.models.uv_space import UVAtlas
from dlatrack_engine.render.mesh_renderer import MeshRenderer
from dlatrack_engine.train.data import LightStageData, Split, nearest_full_frame, same_pose_full_frames
from dlatrack_engine.train.texture_adaptation import TextureTarget, adapt_in_texture_space, fit_light_code
from dlatrack_engine.train.unwrap import UnwrappedFrames, unwrap_images

log = logging.getLogger(__name__)

METHODS = ("G", "G_adapted", "SH", "none", "oracle")
# The methods compared with SH on the same (frame, camera) samples (Scores.summary).
CHALLENGERS = ("G", "G_adapted")
# Darkest fully-lit pixel value divided by in the oracle's shading ratio (linear RGB; a pixel that dark
# fully lit is shadowed under every pattern too).
ORACLE_FLOOR = 1e-4


def oracle_shading(fully_lit_render: torch.Tensor, pattern: torch.Tensor, fully_lit: torch.Tensor) -> torch.Tensor:
    """The fully-lit render relit by each pixel's true shading ratio pattern / fully-lit (same pose): exact
    wherever the render matches the fully-lit image, so its remaining error is the DAM's, not the light's."""
    return fully_lit_render * pattern / fully_lit.clamp_min(ORACLE_FLOOR)


@dataclass
class Scores:
    """Metric lists of one evaluation set."""

    name: str
    values: dict[str, list[float]] = field(default_factory=dict)
    frames: dict[str, list[int]] = field(default_factory=dict)  # the frame each value was measured on

    def add(self, key: str, value: float, frame: int = -1) -> None:
        self.values.setdefault(key, []).append(float(value))
        self.frames.setdefault(key, []).append(frame)

    def summary(self) -> dict:
        row: dict = {"set": self.name}
        for key, values in self.values.items():
            row[key] = float(np.mean(values))
            row["samples"] = max(row.get("samples", 0), len(values))
        for metric in ("psnr", "ssim"):  # G (fitted / adapted) against SH on the same (frame, camera) samples
            sh = self.values.get(f"{metric}_SH")
            for method in CHALLENGERS:
                g = self.values.get(f"{metric}_{method}")
                if g and sh and len(g) == len(sh):
                    paired = paired_difference(g, sh, groups=self.frames[f"{metric}_{method}"])  # frames resampled
                    row[f"{metric}_{method}_minus_SH"] = paired.mean
                    row[f"{metric}_{method}_minus_SH_ci"] = [paired.low, paired.high]
                    row[f"{metric}_{method}_wins"] = paired.wins
        return row


class Evaluator:
    """Decodes, relights and renders an avatar on light-stage frames; holds the shared renderer/atlas."""

    def __init__(self, avatar: Avatar, data: LightStageData, split: Split, unwrapped: UnwrappedFrames) -> None:
        self.avatar, self.data, self.split, self.unwrapped = avatar, data, split, unwrapped
        self.device = avatar.device
        topo = data.topology
        self.renderer = MeshRenderer(topo.faces, topo.uv_faces, topo.uvs, self.device)
        self.atlas = UVAtlas(self.renderer, avatar.dam.cfg.texture_size)
        self.train_cams = split.train_cameras(data)
        self.test_cams = split.test_cameras(data)
        self.fully_lit_twins = same_pose_full_frames(data, range(data.num_frames))  # the oracle's references

    @torch.no_grad()
    def decode(self, frame: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """z from the encoder (mesh + nearest fully-lit texture) -> per camera (vertices, texture, view, h_v)."""
        data, dam = self.data, self.avatar.dam
        row = self.unwrapped.row(nearest_full_frame(data, frame))
        z, _ = dam.encode(data.vertices[[frame]].to(self.device), self.unwrapped.average[[row]].to(self.device))
        frames = torch.full((data.num_cameras,), frame)
        view = data.view_vectors(frames, torch.arange(data.num_cameras)).to(self.device)
        vertices, texture = dam.decode(z.expand(data.num_cameras, -1), view)
        head_view = head_view_vector(data.head_r[frames].to(self.device), view)
        return vertices, texture, view, head_view

    def dam_scores(self, frame: int, cams: list[int], scores: Scores) -> None:
        data = self.data
        vertices, texture, _, _ = self.decode(frame)
        row = self.unwrapped.row(frame)
        error_mm = 1000.0 * float((vertices[0] - data.vertices[frame].to(self.device)).norm(dim=-1).mean())
        neutral = data.topology.neutral
        head_size = float(np.linalg.norm(neutral.max(0) - neutral.min(0)))
        for c in cams:
            weight = self.unwrapped.weights[row, c, 0].float().numpy()
            if (weight > 0).sum() < 16:
                continue
            target = self.unwrapped.textures[row, c].float().permute(1, 2, 0).numpy()
            fake = texture[c].permute(1, 2, 0).float().cpu().numpy()
            scores.add("dam_texture_psnr", psnr(np.clip(fake, 0, None), target, weight > 0))
            scores.add("dam_vertex_mm", error_mm)
            scores.add("dam_vertex_percent_head", 100.0 * error_mm / 1000.0 / head_size)

    @torch.no_grad()
    def fitting_target(
        self, frame: int, texture: torch.Tensor, head_view: torch.Tensor, world: torch.Tensor
    ) -> TextureTarget:
        """The frame's training-camera images unwrapped to texture space: what its lighting is fitted to."""
        cams = torch.tensor(self.train_cams)
        target, weight = unwrap_images(
            self.renderer,
            self.atlas,
            self.data.images[frame, cams].float().to(self.device),
            self.data.masks[frame, cams].to(self.device),
            world[cams],
            self.data.camera(cams).to(self.device),
        )
        return TextureTarget(texture[cams], head_view[cams], target, weight)

    def lighting_scores(
        self,
        frame: int,
        seen: bool,
        sets: list[tuple[list[int], Scores]],
        fit_iterations: int = 100,
        adaptation: Step2Schedule | None = None,
    ) -> None:
        """Fit the frame's lighting on the training cameras; score each (cameras, Scores) pair. An unseen
        pattern's code is fitted (Algorithm 1 step a) and, with `adaptation`, G is also scored after the
        whole of Algorithm 1 (l and φ)."""
        data, avatar = self.data, self.avatar
        vertices, texture, _, head_view = self.decode(frame)
        frames = torch.full((data.num_cameras,), frame)
        world = data.world_vertices(vertices, frames)
        camera = data.camera(torch.arange(data.num_cameras)).to(self.device)
        relit = {}
        if seen:
            code = data.light_codes[[frame]].to(self.device)
        else:
            fitting = self.fitting_target(frame, texture, head_view, world)
            code = fit_light_code(avatar.lighting, fitting, fit_iterations)
            if adaptation is not None:
                adapted_code, adapted = adapt_in_texture_space(avatar.lighting, fitting, adaptation)
                with torch.no_grad():
                    gain, bias = adapted(adapted_code.expand(data.num_cameras, -1), head_view, texture)
                    relit["G_adapted"] = relight(texture, gain, bias)
        with torch.no_grad():
            gain, bias = avatar.lighting(code.expand(data.num_cameras, -1), head_view, texture)
            relit["G"] = relight(texture, gain, bias)
            renders = {name: self.renderer.render(world, camera, tex) for name, tex in relit.items()}
            renders["none"] = self.renderer.render(world, camera, texture)
            target = data.images[frame].float().to(self.device)  # [C,H,W,3]
            mask = (data.masks[frame].to(self.device) & (renders["none"].mask > 0.5))[..., 0]
            images = {name: render.image for name, render in renders.items()}
            images["SH"] = self._sh_fit(world, texture, target, mask)
            twin = self.fully_lit_twins.get(frame)
            if twin is not None:  # a perfect lighting model on this DAM: the true shading ratio, per pixel
                fully_lit = data.images[twin].float().to(self.device)
                images["oracle"] = oracle_shading(renders["none"].image, target, fully_lit)
        for cams, scores in sets:
            for c in cams:
                m = mask[c].float().cpu().numpy()
                if m.sum() < 16:
                    continue
                real = target[c].cpu().numpy()
                for method in images:
                    fake = np.clip(images[method][c].cpu().numpy(), 0.0, None)
                    scores.add(f"psnr_{method}", psnr(fake, real, m), frame)
                    scores.add(f"ssim_{method}", ssim(fake, real, m), frame)

    @torch.no_grad()
    def split_scores(self, frame: int, scores: Scores) -> None:
        """G's gain/bias split on `frame` with its known light code (every camera, UV-covered texels)."""
        _, texture, _, head_view = self.decode(frame)
        code = self.data.light_codes[[frame]].to(self.device).expand(texture.shape[0], -1)
        gain, bias = self.avatar.lighting(code, head_view, texture)
        covered = self.atlas.mask.expand_as(gain) > 0
        shaded, offset = (texture * gain)[covered].abs().sum(), bias[covered].abs().sum()
        scores.add("gain_mean", gain[covered].mean())
        scores.add("gain_per_energy", gain[covered].mean() / light_energy(code).mean())
        scores.add("bias_share", offset / (shaded + offset).clamp_min(1e-12))

    @torch.no_grad()
    def _sh_fit(
        self, world: torch.Tensor, texture: torch.Tensor, target: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """Least-squares SH shading fitted on the training cameras' pixels, rendered in every camera.
        Rendering is linear in the texture, so each basis function's shaded texture is rendered once."""
        camera = self.data.camera(torch.arange(self.data.num_cameras)).to(self.device)
        normals = self.atlas.normals(world)  # world-frame normals per texel
        basis = sh_basis(normals.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)  # [C,9,T,T]
        images = torch.stack(
            [self.renderer.render(world, camera, texture * basis[:, k : k + 1]).image for k in range(9)], dim=-1
        )  # [C,H,W,3,9]
        fit = mask.clone()
        fit[self.test_cams] = False
        out = torch.zeros_like(target)
        for ch in range(3):
            design = images[..., ch, :][fit].double()
            rhs = target[..., ch][fit].double()
            coeffs = torch.linalg.lstsq(design, rhs[:, None]).solution[:, 0].float()
            out[..., ch] = images[..., ch, :] @ coeffs
        return out


def _spread(frames: list[int], count: int) -> list[int]:
    if len(frames) <= count:
        return frames
    return [frames[i] for i in np.linspace(0, len(frames) - 1, count).round().astype(int)]


def evaluate_avatar(
    avatar: Avatar,
    data: LightStageData,
    split: Split,
    unwrapped: UnwrappedFrames,
    max_frames: int = 12,
    fit_iterations: int = 100,
    adaptation: Step2Schedule | None = None,
) -> dict[str, list[dict]]:
    """{"dam": rows, "lighting": rows, "gain_bias": rows}; each row is one evaluation set's mean metrics.
    `adaptation` (registration's step-2 schedule) adds "G adapted" on unseen patterns."""
    ev = Evaluator(avatar, data, split, unwrapped)
    train_c, test_c = ev.train_cams, ev.test_cams
    dam_sets = [
        ("held-out frames, training cameras", split.test_frames(data, "full"), train_c),
        ("held-out frames, held-out cameras", split.test_frames(data, "full"), test_c),
        ("training frames, held-out cameras", split.train_frames(data, "full"), test_c),
    ]
    dam_rows = []
    for name, frames, cams in dam_sets:
        if frames and cams:
            scores = Scores(name)
            for frame in _spread(frames, max_frames):
                ev.dam_scores(frame, cams, scores)
            dam_rows.append(scores.summary())
    seen = Scores("seen patterns (training frames), held-out cameras")
    seen_fit = Scores("seen patterns (training frames), training cameras")
    unseen_test = Scores("unseen patterns (held-out frames), held-out cameras")
    unseen_fit = Scores("unseen patterns (held-out frames), fitting cameras")
    unseen_known = Scores("unseen patterns (held-out frames), known code, held-out cameras")
    seen_frames = _spread(split.train_frames(data, "group"), max_frames) if test_c else []
    unseen_frames = _spread(split.test_frames(data, "group"), max_frames)
    bar = tqdm(total=len(seen_frames) + len(unseen_frames), desc="lighting eval", unit="frame", leave=False)
    for frame in seen_frames:
        ev.lighting_scores(frame, True, [(test_c, seen), (train_c, seen_fit)])
        bar.update()
    for frame in unseen_frames:  # the slow part: a code fit (and Algorithm 1) per frame
        ev.lighting_scores(frame, False, [(test_c, unseen_test), (train_c, unseen_fit)], fit_iterations, adaptation)
        if test_c:
            ev.lighting_scores(frame, True, [(test_c, unseen_known)])
        bar.update()
    bar.close()
    light_rows = [s.summary() for s in (seen, seen_fit, unseen_test, unseen_fit, unseen_known) if s.values]
    split_rows = []
    for kind, name in (("full", "fully-lit frames"), ("group", "group-lit frames")):
        scores = Scores(f"{name} (known codes)")
        for frame in _spread([f for f in range(data.num_frames) if data.kinds[f] == kind], max_frames):
            ev.split_scores(frame, scores)
        if scores.values:
            split_rows.append(scores.summary())
    for row in dam_rows + light_rows + split_rows:
        log.info("evaluation: %s", row)
    return {"dam": dam_rows, "lighting": light_rows, "gain_bias": split_rows}


def markdown_table(headers: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])


def results_markdown(results: dict[str, list[dict]], notes: str = "") -> str:
    """The RESULTS.md body: one DAM table and one lighting table."""

    def fmt(row: dict, key: str, digits: int = 2) -> str:
        return f"{row[key]:.{digits}f}" if key in row else "—"

    dam = markdown_table(
        ["set", "samples", "DAM texture PSNR (dB)", "vertex error (mm)", "vertex error (% head size)"],
        [
            [r["set"], r.get("samples", 0), fmt(r, "dam_texture_psnr"), fmt(r, "dam_vertex_mm", 3),
             fmt(r, "dam_vertex_percent_head", 3)]
            for r in results["dam"]
        ],
    )  # fmt: skip

    def paired(row: dict, method: str) -> str:
        key = f"psnr_{method}_minus_SH"
        if key not in row:
            return "—"
        low, high = row[f"{key}_ci"]
        wins = round(row[f"psnr_{method}_wins"] * row["samples"])
        return f"{row[key]:+.2f} [{low:+.2f}, {high:+.2f}], {wins}/{row['samples']}"

    label = {m: m.replace("_", " ") for m in METHODS}
    light = markdown_table(
        ["set", "samples", *(f"PSNR {label[m]}" for m in METHODS), *(f"SSIM {label[m]}" for m in METHODS),
         *(f"{label[m]} − SH PSNR [95% CI], {label[m]} better" for m in CHALLENGERS)],
        [
            [r["set"], r.get("samples", 0), *(fmt(r, f"psnr_{m}") for m in METHODS),
             *(fmt(r, f"ssim_{m}", 3) for m in METHODS), *(paired(r, m) for m in CHALLENGERS)]
            for r in results["lighting"]
        ],
    )  # fmt: skip
    split = _gain_bias_markdown(results.get("gain_bias", []))
    return (
        f"{notes}\n\nDAM (fully-lit frames; texture vs the unwrapped camera image, visible texels):\n\n{dam}\n\n"
        "Lighting (group-lit frames; render vs the real Cycles image on the face region, sRGB PSNR/SSIM). "
        "Each frame's lighting is fitted on the training cameras only: SH = least-squares optimum of its 27 "
        "coefficients; G = the known light code for patterns seen in training, or a code fitted like "
        "Algorithm 1 step (a) for unseen ones; G adapted = all of Algorithm 1 on an unseen pattern (l, then "
        "φ, alternated as registration's step 2 does, train/texture_adaptation.py); none = fully-lit "
        "texture; oracle = the fully-lit render times "
        "each pixel's true shading ratio (a same-pose fully-lit frame; the reach of a perfect lighting model "
        "on this DAM). G − SH (and G adapted − SH): the mean per-sample PSNR "
        "difference on the same (frame, camera) samples, its 95 % bootstrap interval resampling whole frames "
        "(metrics/paired.py) and how many samples G (adapted) wins.\n\n"
        f"{light}\n{split}"
    )


def _gain_bias_markdown(rows: list[dict]) -> str:
    """The gain/bias split table of the RESULTS.md body ("" without rows)."""
    if not rows:
        return ""
    table = markdown_table(
        ["frames", "samples", "mean gain g", "mean g / s(l) (per unit light energy)", "bias share of T (%)"],
        [
            [r["set"], r.get("samples", 0), f"{r['gain_mean']:.3g}", f"{r['gain_per_energy']:.3g}",
             f"{100 * r['bias_share']:.2f}"]
            for r in rows
        ],
    )  # fmt: skip
    return (
        "\nG's gain/bias split (Eq. 2, T = T̂ ⊙ g + b, on the frames' known codes, all cameras, UV-covered "
        "texels; bias share = Σ|b| / (Σ|T̂ ⊙ g| + Σ|b|)):\n\n" + table + "\n"
    )
