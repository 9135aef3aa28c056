"""Model rows of bench/RESULTS.md: CPU inference time of D and G, and the sample avatar's held-out quality.

    python -m bench.bench_models                              # D / G inference time, sample + real sizes
    python -m bench.bench_models --quality --data D --avatar A  # held-out DAM / G / SH / none metrics
    python -m bench.bench_models --quality --avatar A --title T  # ... into section T (an experiment)

Timing uses batch 1 (one view, as registration decodes per frame), `torch.no_grad`, median of N runs.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from pathlib import Path

import torch

from bench.harness import machine_description, markdown_table, time_fn, write_section
from dlatrack_engine.models.dam import DAM, DAMConfig
from dlatrack_engine.models.lighting import LightingConfig, LightingModel
from dlatrack_engine.train import pipeline

log = logging.getLogger(__name__)

SIZES = {
    # name: (num_vertices, texture_size, DAM sizes, G sizes)
    "sample": (None, 128, pipeline.SAMPLE_DAM, pipeline.SAMPLE_LIGHTING),
    "real (paper)": (7306, 1024, pipeline.REAL_DAM, pipeline.REAL_LIGHTING),
}


def _params_mb(module: torch.nn.Module) -> tuple[float, float]:
    count = sum(p.numel() for p in module.parameters()) + sum(b.numel() for b in module.buffers())
    return count / 1e6, count * 4 / 2**20


def sample_vertex_count() -> int:
    """Vertices of the shipped sample avatar if present, else of the sample light stage, else 2000."""
    from dlatrack_engine.paths import SAMPLE_SCENES

    package = SAMPLE_SCENES / "avatar" / "avatar.json"
    if package.exists():
        import json

        return int(json.loads(package.read_text())["topology"]["num_vertices"])
    return 2000


def _time_models(dam: DAM, lighting: LightingModel, repeats: int):
    """Median times of D(z, v) and G(l, h_v, T̂) for batch 1 on the CPU."""
    texture = dam.cfg.texture_size
    z = torch.randn(1, dam.cfg.latent_size)
    view = torch.tensor([[0.0, 0.0, 1.0]])
    tex = torch.rand(1, 3, texture, texture)
    code, head_view = torch.rand(1, 150), torch.zeros(1, 6)
    with torch.no_grad():
        t_d = time_fn(lambda: dam.decode(z, view), "cpu", repeats=repeats, warmup=1)
        t_g = time_fn(lambda: lighting(code, head_view, tex), "cpu", repeats=repeats, warmup=1)
    return t_d, t_g


def timing_rows(repeats: int) -> list[list[str]]:
    rows = []
    for name, (vertices, texture, dam_sizes, g_sizes) in SIZES.items():
        vertices = vertices or sample_vertex_count()
        dam = DAM(DAMConfig(num_vertices=vertices, texture_size=texture, **dam_sizes)).eval()
        g_cfg = LightingConfig(texture_size=texture, **pipeline._fit_input_size(g_sizes, texture))
        lighting = LightingModel(g_cfg).eval()
        t_d, t_g = _time_models(dam, lighting, repeats)
        dec_params, dec_mb = _params_mb(dam.decoder)
        g_params, g_mb = _params_mb(lighting)
        rows.append([f"D (decoder) {name}", f"V={vertices}, T={texture}, z={dam.cfg.latent_size}",
                     f"{dec_params:.2f} M / {dec_mb:.1f} MiB", f"{t_d.median_ms:.1f}"])  # fmt: skip
        rows.append([f"G {name}", f"input {g_cfg.input_texture_size}², T={texture}",
                     f"{g_params:.2f} M / {g_mb:.1f} MiB", f"{t_g.median_ms:.1f}"])  # fmt: skip
    return rows


def _lighting_data(light: dict, dam_data: dict) -> str:
    """The suffix ' (trained on N frames, M fully lit)' when G's stage used other data than the DAM's."""
    data = light.get("data")
    if not isinstance(data, dict) or data.get("frame_ids") == dam_data.get("frame_ids"):
        return ""
    return f" (trained on {data['frames']} frames, {data['full_frames']} fully lit)"


def write_quality(args: argparse.Namespace, command: str) -> None:
    """The held-out quality section, from the evaluation stored in the package by `dlatrack train eval`
    (or, when absent, from a fresh evaluation on `--data`)."""
    from dlatrack_engine.avatar.format import load_avatar_package
    from dlatrack_engine.train.heldout_eval import results_markdown

    config = load_avatar_package(args.avatar).config
    provenance = config["provenance"]
    evaluation = provenance.get("evaluation")
    if evaluation is None:
        if not args.data:
            raise SystemExit(f"{args.avatar}: no stored evaluation; pass --data to evaluate now")
        pipeline.run_evaluation(args.data, args.avatar, args.image_size, torch.device("cpu"), command,
                                max_frames=args.max_frames)  # fmt: skip
        provenance = load_avatar_package(args.avatar).config["provenance"]
        evaluation = provenance["evaluation"]
    data = provenance["data"]
    stages = provenance["stages"]
    light = stages.get("lighting", {}) if isinstance(stages.get("lighting"), dict) else {}
    notes = (
        f"Avatar `{pipeline._relative(args.avatar)}` trained on light stage `{data['path']}` "
        f"({data['frames']} frames, {data['full_frames']} fully lit, cameras {', '.join(data['cameras'])}; "
        f"training images {data['training_image_size'][0]} px). Held out: cameras "
        f"{provenance['split']['holdout_cameras']}, frames {provenance['split']['holdout_frame_ids']}. "
        f"DAM: {stages['dam']['epochs']} epochs in {stages['dam']['seconds'] / 60:.1f} min; "
        f"G{_lighting_data(light, data)}: {(light.get('texture_warmup') or {}).get('epochs', 0)} texture-space "
        "warm-up epochs + "
        f"{light.get('epochs', 0)} render-loss (Eq. 4-5) epochs of {light.get('config', {}).get('samples_per_epoch')} "
        f"samples, {light.get('seconds', 0) / 60:.1f} min in all; "
        f"{'energy-normalised' if config['lighting'].get('energy_normalised') else 'plain (not energy-normalised)'}"
        f", {config['lighting'].get('gain_activation', 'softplus')} gain. "
        f"Evaluation command: `{evaluation['command']}` (images at {evaluation['image_size'][0]} px)."
    )
    adaptation = evaluation.get("adaptation")
    if adaptation:
        notes += (
            f" G adapted: registration's `{adaptation['quality']}` step-2 schedule, {adaptation['rounds']} rounds of "
            f"l ({adaptation['light_iterations']} it, lr {adaptation['light_lr']:g}) then φ "
            f"({adaptation['model_iterations']} it, lr {adaptation['model_lr']:g}) on the fitting cameras."
        )
    write_section(args.title, command, results_markdown(evaluation["results"], notes), args.results)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quality", action="store_true", help="evaluate an avatar on held-out light-stage data")
    parser.add_argument("--data", type=Path)
    parser.add_argument("--avatar", type=Path)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--max-frames", type=int, default=12)
    parser.add_argument("--results", type=Path, default=None, help="RESULTS.md to update (default bench's)")
    parser.add_argument(
        "--title",
        default="Avatar models: held-out light-stage quality",
        help="RESULTS.md section for --quality (another title keeps an experiment beside the shipped avatar's)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    command = "python -m bench.bench_models " + shlex.join(sys.argv[1:] if argv is None else argv)
    if args.quality:
        if not args.avatar:
            parser.error("--quality needs --avatar (and --data unless the avatar already holds an evaluation)")
        write_quality(args, command)
        return 0
    body = markdown_table(
        ["model", "size", "parameters / fp32 size", "CPU median ms (batch 1)"], timing_rows(args.repeats)
    )
    write_section("Avatar models: CPU inference time", command, body, args.results,
                  machine_description(torch.device("cpu")))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
