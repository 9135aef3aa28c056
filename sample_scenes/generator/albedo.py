"""Procedural skin textures in the face mesh's UV layout: albedo, roughness, specular (numpy only).

Photometric tracking and DIS optical flow need texture to hold on to, so the albedo has structure at every
scale: tone variation and redness (low), lips, brows, lid lines and nostrils (mid), freckles and pores
(high). Every texel maps analytically to a surface point (UV = grid coordinates of `face_model`), so the
regions are defined on the face in centimetres and are independent of the texture size.
Deterministic from the seed (noise, freckle and pore layout) and the subject (`SubjectParams`: where the
features are, skin tone, redness, freckle density, lip and hair colour).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import face_model as fm
from . import face_shape as fs
from .subject_params import SubjectParams


@dataclass
class SkinTextures:
    """Texture images, row 0 = top of the image (v = 1); albedo linear RGB, maps in [0, 1]."""

    albedo: np.ndarray  # [T, T, 3] float32 linear
    roughness: np.ndarray  # [T, T] float32
    specular: np.ndarray  # [T, T] float32


def srgb_to_linear(c: np.ndarray) -> np.ndarray:
    c = np.asarray(c, np.float64)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(c: np.ndarray) -> np.ndarray:
    c = np.clip(np.asarray(c, np.float64), 0.0, 1.0)
    return np.where(c <= 0.0031308, 12.92 * c, 1.055 * c ** (1 / 2.4) - 0.055)


def value_noise(size: int, cells: int, rng: np.random.Generator) -> np.ndarray:
    """Smooth random field in [-1, 1] of `size x size` with `cells` features across (smoothstep-bilinear)."""
    grid = rng.uniform(-1.0, 1.0, (cells + 2, cells + 2))
    coords = (np.arange(size) + 0.5) / size * cells
    i = np.floor(coords).astype(int)
    f = coords - i
    f = f * f * (3 - 2 * f)
    g00, g01 = grid[np.ix_(i, i)], grid[np.ix_(i, i + 1)]
    g10, g11 = grid[np.ix_(i + 1, i)], grid[np.ix_(i + 1, i + 1)]
    fy, fx = f[:, None], f[None, :]
    return (g00 * (1 - fx) + g01 * fx) * (1 - fy) + (g10 * (1 - fx) + g11 * fx) * fy


def fractal_noise(size: int, rng: np.random.Generator, octaves: tuple[int, ...]) -> np.ndarray:
    out = np.zeros((size, size))
    for k, cells in enumerate(octaves):
        out += value_noise(size, cells, rng) * 0.6**k
    return out / sum(0.6**k for k in range(len(octaves)))


def _blur(image: np.ndarray, sigma: float) -> np.ndarray:
    radius = max(1, int(3 * sigma))
    x = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (x / sigma) ** 2)
    kernel /= kernel.sum()
    pad = np.pad(image, radius, mode="edge")
    rows = sum(kernel[k] * pad[k : k + image.shape[0], radius : radius + image.shape[1]] for k in range(len(x)))
    pad = np.pad(rows, radius, mode="edge")
    return sum(kernel[k] * pad[radius : radius + image.shape[0], k : k + image.shape[1]] for k in range(len(x)))


def texel_surface_points(size: int, p: SubjectParams) -> np.ndarray:
    """Neutral face point (cm) under each texel centre; `[T, T, 3]`, row 0 = v = 1."""
    u = (np.arange(size) + 0.5) / size
    v = 1.0 - (np.arange(size) + 0.5) / size
    theta = fm.theta_of_u(u)[None, :]
    phi = fm.phi_of_v(v, p)[:, None]
    return fs.face_points(np.broadcast_to(theta, (size, size)), np.broadcast_to(phi, (size, size)), p)


def _lip_mask(x: np.ndarray, y: np.ndarray, p: SubjectParams) -> np.ndarray:
    half = 2.45 * p.mouth_width
    t = np.clip(np.abs(x) / half, 0.0, 1.0)
    bow = 0.12 * np.exp(-(((np.abs(x) - 0.55 * p.mouth_width) / 0.3) ** 2))
    top = p.lip_y(-5.85 - 0.55 * t**2) + bow * p.lip_fullness  # Cupid's bow
    bottom = p.lip_y(-7.85 + 0.95 * t**2.2)
    inside = fs.smoothstep(top + 0.12, top - 0.12, y) * fs.smoothstep(bottom - 0.12, bottom + 0.12, y)
    return inside * fs.smoothstep(half + 0.1, half - 0.2, np.abs(x))


def _brow_mask(x: np.ndarray, y: np.ndarray, rng: np.random.Generator, size: int, p: SubjectParams) -> np.ndarray:
    ax = np.abs(x) / p.eye_spread  # the brows follow the eyes
    xs = [1.0, 1.3, 2.3, 3.3, 4.3, 5.2, 5.6]
    ys = [3.0, 3.1, 3.5, 3.6, 3.3, 2.6, 2.3]
    centre = np.interp(ax, xs, ys) + p.eye_dy
    thick = np.interp(ax, [1.0, 2.0, 5.6], [0.5, 0.45, 0.2])
    band = fs.smoothstep(thick, thick * 0.6, np.abs(y - centre)) * fs.smoothstep(0.9, 1.3, ax)
    band *= fs.smoothstep(5.8, 5.3, ax)
    # Hair strokes: noise stretched along the brow direction breaks the band into strands.
    strands = value_noise(size, size // 3, rng)
    strands = np.repeat(strands[::1, ::4], 4, axis=1)[:, :size]
    return np.clip(band * (0.75 + 0.45 * strands), 0.0, 1.0)


def texture_rng(seed: int, p: SubjectParams) -> np.random.Generator:
    """The textures' noise: `seed` alone for the reference subject (its committed textures), mixed with
    the subject seed otherwise so another person gets other freckles and pores."""
    return np.random.default_rng(seed if p.subject_seed == 0 else [seed, p.subject_seed])


def make_skin_textures(size: int = 512, seed: int = 0, params: SubjectParams | None = None) -> SkinTextures:
    """All three maps for texture size `size` from `seed` and the subject (default: subject seed 0)."""
    sp = params if params is not None else SubjectParams()
    rng = texture_rng(seed, sp)
    p = texel_surface_points(size, sp)
    x, y = p[..., 0], p[..., 1]
    tone = srgb_to_linear(np.array(sp.skin_srgb) + rng.uniform(-0.04, 0.04, 3))
    albedo = np.broadcast_to(tone, (size, size, 3)).copy()

    low = fractal_noise(size, rng, (4, 9, 17))
    albedo *= (1.0 + 0.10 * low)[..., None]
    redness = sum(
        np.exp(-0.5 * (((x - s * 4.0 * sp.width_ratio) / 1.8) ** 2 + ((y + 2.3) / 1.4) ** 2)) for s in (-1, 1)
    )
    redness = redness + 0.8 * np.exp(-0.5 * ((x / 0.9) ** 2 + ((y + 3.4 * sp.nose_length) / 0.9) ** 2))
    redness = redness * (0.7 + 0.3 * fractal_noise(size, rng, (12, 25))) * sp.redness
    albedo *= 1.0 + redness[..., None] * np.array([0.10, -0.12, -0.10])

    lips = _lip_mask(x, y, sp)
    lip_colour = srgb_to_linear(np.array(sp.lip_srgb))
    lip_lines = 1.0 + 0.12 * value_noise(size, size // 5, rng)
    albedo = albedo * (1 - lips[..., None]) + (lip_colour * lip_lines[..., None]) * lips[..., None]

    hair_colour = srgb_to_linear(np.array(sp.hair_srgb))
    brows = _brow_mask(x, y, rng, size, sp)
    albedo = albedo * (1 - 0.9 * brows[..., None]) + 0.9 * brows[..., None] * hair_colour

    es = sp.eye_scale
    for side in (-1.0, 1.0):  # lid shading, lash line along the upper lid margin, nostrils
        ex, ey = side * sp.eye_x, sp.eye_y
        lid = np.exp(-0.5 * (((x - ex) / (1.5 * es)) ** 2 + ((y - ey - 0.3 * es) / (0.9 * es)) ** 2))
        albedo *= 1.0 - 0.18 * lid[..., None] * np.array([0.6, 1.0, 0.9])
        lash = fs.smoothstep(0.18, 0.0, np.abs(y - ey - 0.08)) * (np.abs(x - ex) < fs.EYE_HALF_WIDTH * es)
        albedo = albedo * (1 - 0.85 * lash[..., None]) + 0.85 * lash[..., None] * hair_colour * 0.5
        nostril = np.exp(
            -0.5 * (((x - side * 0.55 * sp.nose_width) / 0.3) ** 2 + ((y + 4.75 * sp.nose_length) / 0.18) ** 2)
        )
        albedo *= 1.0 - 0.75 * nostril[..., None]

    hairline = fs.smoothstep(7.9 * sp.height_ratio, 8.8 * sp.height_ratio, y + 0.3 * fractal_noise(size, rng, (30,)))
    albedo = albedo * (1 - hairline[..., None]) + hairline[..., None] * hair_colour

    freckle_density = np.exp(-0.5 * ((x / 3.5) ** 2 + ((y + 1.5) / 2.2) ** 2)) * (1 - lips)
    spots = (rng.uniform(size=(size, size)) < sp.freckles * freckle_density).astype(np.float64)
    spots = np.clip(_blur(spots, 0.9) * 6.0, 0.0, 1.0) * rng.uniform(0.5, 1.0, (size, size))
    albedo *= 1.0 - spots[..., None] * np.array([0.30, 0.38, 0.42])

    pores = value_noise(size, size // 2, rng) + 0.5 * value_noise(size, size // 3, rng)
    albedo *= (1.0 + 0.05 * pores)[..., None]

    nose_band = np.exp(-0.5 * ((x / 1.2) ** 2 + ((y - 1.0) / 4.0) ** 2))
    tzone = nose_band + np.exp(-0.5 * ((x / 4.0) ** 2 + ((y - 6.0) / 1.5) ** 2))  # nose and forehead
    roughness = 0.55 - 0.15 * np.clip(tzone, 0, 1) - 0.2 * lips + 0.2 * brows + 0.04 * pores + 0.3 * hairline
    specular = 0.5 - 0.3 * brows - 0.3 * hairline + 0.1 * lips
    return SkinTextures(
        albedo=np.clip(albedo, 0.0, 1.0).astype(np.float32),
        roughness=np.clip(roughness, 0.05, 1.0).astype(np.float32),
        specular=np.clip(specular, 0.0, 1.0).astype(np.float32),
    )
