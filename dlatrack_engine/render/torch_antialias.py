"""Analytic silhouette antialiasing in plain PyTorch, after nvdiffrast's `antialias`.

For every horizontally or vertically adjacent pixel pair whose triangle ids differ, the nearer triangle
(the one covering the nearer pixel, or the only covered one) is tested for a *silhouette* edge crossing the
segment between the two pixel centres (a mesh-boundary edge, or one whose neighbour faces the other way in
screen space). If the edge crosses at fraction t from the front pixel's centre, the pixel whose half holds
the crossing is blended towards the other pixel's colour by its uncovered share (|t - 1/2|). t depends on
the edge's screen-space endpoints, so the result is differentiable w.r.t. vertex positions at silhouettes:
the gradient signal that plain rasterisation lacks.
"""

from __future__ import annotations

import torch

from dlatrack_engine.render.torch_raster import screen_coordinates

_ADJACENCY_CACHE: list[tuple[torch.Tensor, torch.Tensor]] = []
_CACHE_SIZE = 8


def edge_adjacency(tri: torch.Tensor) -> torch.Tensor:
    """[F, 3] faces -> [F, 3] index of the face across edge k = (tri[f, k], tri[f, k+1 mod 3]), -1 on the
    boundary. Cached per topology (compared by value), since meshes are reused every frame."""
    for cached_tri, adjacency in _ADJACENCY_CACHE:
        if cached_tri.shape == tri.shape and cached_tri.device == tri.device and torch.equal(cached_tri, tri):
            return adjacency
    t = tri.long()
    a, b = t, t.roll(-1, dims=1)
    n_vertices = int(t.max()) + 1 if t.numel() else 1
    key = (torch.minimum(a, b) * n_vertices + torch.maximum(a, b)).reshape(-1)
    order = torch.argsort(key)
    sorted_key = key[order]
    same = torch.nonzero(sorted_key[1:] == sorted_key[:-1]).squeeze(1)
    first, second = order[same], order[same + 1]
    neighbour = torch.full_like(key, -1)
    neighbour[first] = torch.div(second, 3, rounding_mode="floor")
    neighbour[second] = torch.div(first, 3, rounding_mode="floor")
    adjacency = neighbour.reshape(-1, 3)
    _ADJACENCY_CACHE.insert(0, (tri.detach().clone(), adjacency))
    del _ADJACENCY_CACHE[_CACHE_SIZE:]
    return adjacency


def antialias(color: torch.Tensor, rast: torch.Tensor, pos: torch.Tensor, tri: torch.Tensor) -> torch.Tensor:
    """color [B, H, W, C], rast [B, H, W, 4] from `rasterize(pos, tri)`, pos [B, V, 4], tri [F, 3]
    -> antialiased color [B, H, W, C], differentiable w.r.t. color and pos."""
    B, H, W, C = color.shape
    tri_l = tri.long().to(pos.device)
    adjacency = edge_adjacency(tri_l)
    sx, sy, _, _ = screen_coordinates(pos, (H, W))
    with torch.no_grad():
        v = tri_l
        x0, x1, x2 = sx[:, v[:, 0]], sx[:, v[:, 1]], sx[:, v[:, 2]]
        y0, y1, y2 = sy[:, v[:, 0]], sy[:, v[:, 1]], sy[:, v[:, 2]]
        facing = torch.sign((x1 - x0) * (y2 - y0) - (y1 - y0) * (x2 - x0))  # [B, F]
        # Faces with a silhouette edge (boundary, or a neighbour facing the other way): only pairs whose front
        # face is one of them can blend, and at the working sizes they are a few percent of all differing pairs.
        neighbour_facing = facing[:, adjacency.clamp_min(0)]  # [B, F, 3]
        on_silhouette = ((adjacency < 0)[None] | (neighbour_facing != facing[..., None])).any(-1)  # [B, F]
    ids = rast[..., 3].detach().long() - 1
    depth = rast[..., 2].detach()
    flat_color = color.reshape(B * H * W, C)
    updates_index, updates_value = [], []
    for dj, di in ((0, 1), (1, 0)):
        a_ids, b_ids = ids[:, : H - dj, : W - di], ids[:, dj:, di:]
        pairs = torch.nonzero(a_ids != b_ids)
        if pairs.numel() == 0:
            continue
        pb, pj, pi = pairs.unbind(1)
        pix_a = pb * (H * W) + pj * W + pi
        pix_b = pix_a + dj * W + di
        id_a, id_b = ids.reshape(-1)[pix_a], ids.reshape(-1)[pix_b]
        z_a, z_b = depth.reshape(-1)[pix_a], depth.reshape(-1)[pix_b]
        a_front = (id_a >= 0) & ((id_b < 0) | (z_a < z_b))
        front = torch.where(a_front, id_a, id_b)
        pix_f = torch.where(a_front, pix_a, pix_b)
        pix_o = torch.where(a_front, pix_b, pix_a)
        candidate = torch.nonzero(on_silhouette[pb, front]).squeeze(1)
        pb, front, pix_f, pix_o = pb[candidate], front[candidate], pix_f[candidate], pix_o[candidate]
        sel = _silhouette_crossing(front, pb, pix_f, pix_o, tri_l, adjacency, facing, sx, sy, H, W,
                                   horizontal=di == 1)
        if sel is None:
            continue
        keep, edge_k = sel
        pb, front, pix_f, pix_o = pb[keep], front[keep], pix_f[keep], pix_o[keep]
        i0 = tri_l[front, edge_k]
        i1 = tri_l[front, (edge_k + 1) % 3]
        e_f = _edge_at(sx, sy, pb, i0, i1, pix_f, H, W)
        e_o = _edge_at(sx, sy, pb, i0, i1, pix_o, H, W)
        t = e_f / (e_f - e_o)  # crossing, as a fraction of the way from the front pixel's centre
        c_f, c_o = flat_color[pix_f], flat_color[pix_o]
        in_front_half = (t < 0.5).detach()
        weight = torch.where(in_front_half, 0.5 - t, t - 0.5)[:, None]
        target = torch.where(in_front_half, pix_f, pix_o)
        delta = torch.where(in_front_half[:, None], c_o - c_f, c_f - c_o) * weight
        updates_index.append(target)
        updates_value.append(delta.to(color.dtype))
    if not updates_index:
        return color
    out = flat_color.index_add(0, torch.cat(updates_index), torch.cat(updates_value))
    return out.reshape(B, H, W, C)


def _pixel_xy(pix: torch.Tensor, H: int, W: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Screen position of the centre of batch-flattened pixel index `pix`."""
    local = pix % (H * W)
    return (local % W).to(dtype) + 0.5, torch.div(local, W, rounding_mode="floor").to(dtype) + 0.5


def _edge_at(sx: torch.Tensor, sy: torch.Tensor, b: torch.Tensor, i0: torch.Tensor, i1: torch.Tensor,
             pix: torch.Tensor, H: int, W: int) -> torch.Tensor:
    """Edge function of screen-space edge (i0, i1) of batch `b` at the centre of pixel `pix`."""
    px, py = _pixel_xy(pix, H, W, sx.dtype)
    ax, ay, bx, by = sx[b, i0], sy[b, i0], sx[b, i1], sy[b, i1]
    return (bx - ax) * (py - ay) - (by - ay) * (px - ax)


@torch.no_grad()
def _silhouette_crossing(front: torch.Tensor, b: torch.Tensor, pix_f: torch.Tensor, pix_o: torch.Tensor,
                         tri: torch.Tensor, adjacency: torch.Tensor, facing: torch.Tensor, sx: torch.Tensor,
                         sy: torch.Tensor, H: int, W: int, horizontal: bool
                         ) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Pairs (mask) where a silhouette edge of `front` crosses the centre-to-centre segment, and which edge
    (0..2, the first such one) it is. As in nvdiffrast, horizontal pairs only handle mostly-vertical edges
    and vertical pairs mostly-horizontal ones, so no edge is blended twice."""
    px_f, py_f = _pixel_xy(pix_f, H, W, sx.dtype)
    px_o, py_o = _pixel_xy(pix_o, H, W, sx.dtype)
    valid = []
    for k in range(3):
        i0, i1 = tri[front, k], tri[front, (k + 1) % 3]
        ax, ay, bx, by = sx[b, i0], sy[b, i0], sx[b, i1], sy[b, i1]
        e_f = (bx - ax) * (py_f - ay) - (by - ay) * (px_f - ax)
        e_o = (bx - ax) * (py_o - ay) - (by - ay) * (px_o - ax)
        crosses = e_f * e_o < 0
        t = e_f / torch.where(crosses, e_f - e_o, torch.ones_like(e_f))
        # Crossing point must lie on the edge segment itself, not just its line.
        cx, cy = px_f + t * (px_o - px_f), py_f + t * (py_o - py_f)
        ex, ey = bx - ax, by - ay
        s = ((cx - ax) * ex + (cy - ay) * ey) / (ex * ex + ey * ey).clamp_min(1e-20)
        on_edge = (s >= 0) & (s <= 1)
        steep = ey.abs() >= ex.abs() if horizontal else ex.abs() >= ey.abs()
        neighbour = adjacency[front, k]
        neighbour_facing = facing[b, neighbour.clamp_min(0)]
        silhouette = (neighbour < 0) | (neighbour_facing != facing[b, front])
        valid.append(crosses & on_edge & steep & silhouette)
    valid_k = torch.stack(valid, 1)
    keep = valid_k.any(1)
    if not bool(keep.any()):
        return None
    edge_k = valid_k[keep].float().argmax(1)
    return keep, edge_k
