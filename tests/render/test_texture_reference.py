"""torch_ops.texture and interpolate against a hand-written reference: bilinear and nearest sampling with
clamp / zero / wrap boundaries, batch broadcasting, dtypes, and the errors that name what is wrong."""

from __future__ import annotations

import pytest
import torch

from dlatrack_engine.render import torch_ops

D = torch.float64


def _reference(tex: torch.Tensor, uv: torch.Tensor, filter_mode: str, boundary: str) -> torch.Tensor:
    """Per-sample loops over nvdiffrast's definition: texel centres at (i + 0.5) / size, row 0 at v = 0."""
    _, Th, Tw, C = tex.shape
    out = torch.zeros(*uv.shape[:3], C, dtype=D)

    def texel(b: int, row: int, col: int) -> torch.Tensor:
        if boundary == "wrap":
            return tex[b, row % Th, col % Tw]
        if boundary == "zero" and not (0 <= row < Th and 0 <= col < Tw):
            return torch.zeros(C, dtype=D)
        return tex[b, min(max(row, 0), Th - 1), min(max(col, 0), Tw - 1)]

    for b, j, i in torch.cartesian_prod(*(torch.arange(n) for n in uv.shape[:3])).tolist():
        u, v = uv[b, j, i].tolist()
        if boundary == "wrap":
            u, v = u % 1.0, v % 1.0
        x, y = u * Tw - 0.5, v * Th - 0.5
        if filter_mode == "nearest":
            out[b, j, i] = texel(b, int(torch.floor(torch.tensor(y + 0.5))), int(torch.floor(torch.tensor(x + 0.5))))
            continue
        x0, y0 = int(torch.floor(torch.tensor(x))), int(torch.floor(torch.tensor(y)))
        fx, fy = x - x0, y - y0
        out[b, j, i] = ((1 - fy) * ((1 - fx) * texel(b, y0, x0) + fx * texel(b, y0, x0 + 1))
                        + fy * ((1 - fx) * texel(b, y0 + 1, x0) + fx * texel(b, y0 + 1, x0 + 1)))
    return out


@pytest.mark.parametrize("boundary", ["clamp", "zero", "wrap"])
@pytest.mark.parametrize("filter_mode", ["linear", "nearest"])
def test_texture_matches_the_reference(filter_mode: str, boundary: str) -> None:
    gen = torch.Generator().manual_seed(21)
    tex = torch.rand(2, 5, 7, 3, dtype=D, generator=gen)
    # Away from texel-centre ties (nearest) but well outside [0, 1] on both sides (boundaries).
    uv = torch.rand(2, 4, 6, 2, dtype=D, generator=gen) * 1.6 - 0.3
    got = torch_ops.texture(tex, uv, filter_mode, boundary)
    torch.testing.assert_close(got, _reference(tex, uv, filter_mode, boundary), atol=1e-12, rtol=0)


def test_texture_defaults_broadcast_and_dtypes() -> None:
    gen = torch.Generator().manual_seed(22)
    tex = torch.rand(1, 4, 6, 2, dtype=D, generator=gen)
    uv = torch.rand(2, 2, 5, 2, dtype=D, generator=gen)
    got = torch_ops.texture(tex, uv)  # defaults: bilinear, clamp; one texture shared by the batch of 2
    torch.testing.assert_close(got, _reference(tex.expand(2, -1, -1, -1), uv, "linear", "clamp"), atol=1e-12, rtol=0)
    # A float32 texture sampled at float64 coordinates: the result has the texture's dtype.
    single = torch_ops.texture(tex.float(), uv)
    assert single.dtype == torch.float32
    torch.testing.assert_close(single.double(), got, atol=1e-6, rtol=0)


def test_texture_errors_name_the_argument() -> None:
    tex, uv = torch.zeros(2, 4, 4, 3), torch.zeros(2, 3, 3, 2)
    with pytest.raises(ValueError, match=r"boundary_mode 'mirror' is not supported; expected 'clamp', 'zero' "
                                         r"or 'wrap'"):
        torch_ops.texture(tex, uv, boundary_mode="mirror")
    with pytest.raises(ValueError, match=r"expected tex \[B, Th, Tw, C\] and uv \[B, H, W, 2\], got "
                                         r"\(2, 4, 4, 3\) and \(2, 3, 3, 3\)"):
        torch_ops.texture(tex, torch.zeros(2, 3, 3, 3))
    with pytest.raises(ValueError, match=r"got \(4, 4, 3\) and \(2, 3, 3, 2\)"):
        torch_ops.texture(tex[0], uv)
    with pytest.raises(ValueError, match="got"):
        torch_ops.texture(tex, uv[0])
    with pytest.raises(ValueError, match="tex batch 2 must be 1 or match uv batch 3"):
        torch_ops.texture(tex, torch.zeros(3, 3, 3, 2))


def test_interpolate_batched_attributes_on_a_non_square_image() -> None:
    # Two images of 3 x 5 pixels; hand-made rasts: pixel (b, j, i) shows face f with weights (u, v).
    H, W = 3, 5
    rast = torch.zeros(2, H, W, 4, dtype=D)
    rast[0, 1, 4] = torch.tensor([0.2, 0.3, 0.0, 1.0], dtype=D)
    rast[1, 2, 0] = torch.tensor([0.5, 0.1, 0.0, 2.0], dtype=D)
    rast[1, 0, 3] = torch.tensor([1.0, 0.0, 0.0, 1.0], dtype=D)
    tri = torch.tensor([[0, 1, 2], [3, 2, 1]], dtype=torch.int32)
    attr = torch.arange(2 * 4 * 2, dtype=D).reshape(2, 4, 2) ** 1.5
    out = torch_ops.interpolate(attr, rast, tri)
    expected = torch.zeros(2, H, W, 2, dtype=D)
    expected[0, 1, 4] = 0.2 * attr[0, 0] + 0.3 * attr[0, 1] + 0.5 * attr[0, 2]
    expected[1, 2, 0] = 0.5 * attr[1, 3] + 0.1 * attr[1, 2] + 0.4 * attr[1, 1]
    expected[1, 0, 3] = attr[1, 0]
    torch.testing.assert_close(out, expected, atol=1e-12, rtol=0)
    # [V, C] attributes are shared by the batch, like [1, V, C].
    torch.testing.assert_close(torch_ops.interpolate(attr[0], rast, tri), torch_ops.interpolate(attr[:1], rast, tri))
    with pytest.raises(ValueError, match="attr batch 3 must be 1 or match rast batch 2"):
        torch_ops.interpolate(torch.zeros(3, 4, 2), rast, tri)
