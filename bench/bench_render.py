"""Renderer benchmark: rasterize + interpolate + texture, forward and forward+backward, on a ~5k-vertex mesh.

Run: `.venv/bin/python -m bench.bench_render` (writes the "Renderer" section of bench/RESULTS.md). Rows: the
torch backend on the CPU; torch-on-CUDA and nvdiffrast when a GPU (and nvdiffrast) is present.
"""

from __future__ import annotations

import argparse
import logging
import sys

import torch

from bench.harness import Timing, machine_description, markdown_table, time_fn, write_section
from dlatrack_engine.render import Camera, MeshRenderer, get_backend, look_at, nvdiffrast_available
from dlatrack_engine.render.backend import RasterBackend
from dlatrack_engine.render.primitives import uv_sphere

log = logging.getLogger("bench.bench_render")

SECTION = "Renderer: rasterize + interpolate + texture (5k-vertex mesh)"


def _scene(size: int, device: torch.device) -> tuple[torch.Tensor, MeshRenderer, Camera, torch.Tensor]:
    """A 4,902-vertex / 9,800-triangle sphere filling ~60 % of a size² image, and a 512² texture."""
    v, f, uv, uf = uv_sphere(50, 100)
    focal = size * 1.1
    K = torch.tensor([[focal, 0.0, size / 2], [0.0, focal, size / 2], [0.0, 0.0, 1.0]])
    R, t = look_at(torch.tensor([0.3, 0.4, 2.6]), torch.zeros(3), torch.tensor([0.0, 1.0, 0.0]))
    cam = Camera(K, R, t, size, size).to(device)
    texture = torch.rand(1, 3, 512, 512, generator=torch.Generator().manual_seed(0)).to(device)
    return v[None].to(device), MeshRenderer(f, uf, uv, device), cam, texture


def _ops(backend: RasterBackend, renderer: MeshRenderer, verts: torch.Tensor, cam: Camera,
         texture: torch.Tensor) -> torch.Tensor:
    """The three core ops as a model uses them (no antialias), returning the image."""
    pos = renderer.clip(verts, cam)
    rast = backend.rasterize(pos, renderer.faces, (cam.height, cam.width))
    uv = backend.interpolate(renderer.uvs_tex[None], rast, renderer.uv_faces)
    return backend.texture(texture.permute(0, 2, 3, 1), uv)


def bench_one(backend_name: str, device: torch.device, size: int, repeats: int) -> list[str]:
    backend = get_backend(device, backend_name)
    verts, renderer, cam, texture = _scene(size, device)
    renderer.backend = backend
    verts_g = verts.clone().requires_grad_(True)
    tex_g = texture.clone().requires_grad_(True)

    def forward() -> None:
        with torch.no_grad():
            _ops(backend, renderer, verts, cam, texture)

    def forward_backward() -> None:
        _ops(backend, renderer, verts_g, cam, tex_g).sum().backward()

    def full_render() -> None:
        out = renderer.render(verts_g, cam, tex_g)
        (out.image.sum() + out.mask.sum()).backward()

    with torch.no_grad():
        rast = backend.rasterize(renderer.clip(verts, cam), renderer.faces, (cam.height, cam.width))
        covered = float((rast[..., 3] > 0).float().mean())
    t_bwd = time_fn(forward_backward, device, repeats=repeats, warmup=2)  # first: its peak memory counts
    t_fwd = time_fn(forward, device, repeats=repeats, warmup=2)
    t_full = time_fn(full_render, device, repeats=repeats, warmup=2)
    mem = t_bwd.peak_memory_mib
    log.info("%s/%s %d²: fwd %.1f ms, fwd+bwd %.1f ms", backend_name, device, size, t_fwd.median_ms,
             t_bwd.median_ms)
    def cell(t: Timing) -> str:
        return f"{t.median_ms:.1f}" if device.type == "cuda" else f"{t.median_ms:.1f} / {t.median_cpu_ms:.1f}"

    return [backend_name, str(device), f"{size}²", f"{100 * covered:.0f} %", cell(t_fwd), cell(t_bwd),
            cell(t_full), "n/a" if mem is None else f"{mem:.0f}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256, 512])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's choice); 1 is steadier on an oversubscribed machine")
    parser.add_argument("--no-write", action="store_true", help="print the table instead of writing RESULTS.md")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    configs = [("torch", torch.device("cpu"))]
    if torch.cuda.is_available():
        configs.append(("torch", torch.device("cuda")))
        if nvdiffrast_available():
            configs.append(("nvdiffrast", torch.device("cuda")))
    rows = [bench_one(name, device, size, args.repeats) for name, device in configs for size in args.sizes]
    v, f, _, _ = uv_sphere(50, 100)
    headers = ["backend", "device", "image", "covered", "forward ms", "forward+backward ms",
               "render() incl. antialias, fwd+bwd ms", "peak MiB (fwd+bwd)"]
    body = (
        f"Mesh: UV sphere, {v.shape[0]} vertices, {f.shape[0]} triangles; texture 512², batch 1, float32. "
        f"Median of {args.repeats} runs after 2 warm-ups. *forward* = rasterize + interpolate(uv) + "
        "texture under no_grad; *forward+backward* = the same with gradients to vertices and texture; "
        "the last timing is `MeshRenderer.render` (adds antialias of image and mask, depth). CPU rows give "
        "wall ms / process CPU ms (all threads): on a shared machine the CPU time is the steadier number. "
        "Peak memory: CUDA allocator peak on GPU rows; growth of the process's peak RSS on CPU rows (a lower bound: "
        "sizes run in increasing order).\n\n"
        + markdown_table(headers, rows)
    )
    if args.no_write:
        sys.stdout.write(body + "\n")
    else:
        path = write_section(SECTION, "python -m bench.bench_render " + " ".join(argv or sys.argv[1:]),
                             body, machine=machine_description())
        log.info("wrote %s", path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
