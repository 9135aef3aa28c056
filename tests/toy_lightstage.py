"""A tiny synthetic "face" for the tests: a bumpy dome facing +Z with planar UVs, and a light stage of it.

Not a subject anyone tracks: it exists so the model, training and packaging code can be exercised in seconds
without the rendered sample subject.
"""

from __future__ import annotations

import numpy as np

from dlatrack_engine.avatar.format import NUM_LANDMARKS, Topology


def dome_topology(grid: int = 8, radius: float = 0.1, seed: int = 0) -> Topology:
    """A grid x grid vertex dome (head frame, metres, facing +Z) with UVs = the planar (x, y) layout."""
    if grid < 3:
        raise ValueError(f"dome_topology: grid must be >= 3, got {grid}")
    lin = np.linspace(-1.0, 1.0, grid)
    gx, gy = np.meshgrid(lin, -lin)  # row 0 = top of the face (+Y)
    gz = np.sqrt(np.clip(1.5 - 0.5 * (gx**2 + gy**2), 0.0, None)) - 0.5
    neutral = np.stack([gx, gy, gz], axis=-1).reshape(-1, 3) * radius
    uvs = np.stack([(gx + 1) / 2, (gy + 1) / 2], axis=-1).reshape(-1, 2)
    faces = []
    for r in range(grid - 1):
        for c in range(grid - 1):
            i = r * grid + c
            # Counter-clockwise seen from +Z (the camera side).
            faces.append([i, i + grid, i + 1])
            faces.append([i + 1, i + grid, i + grid + 1])
    faces_arr = np.asarray(faces, dtype=np.int32)
    rng = np.random.default_rng(seed)
    lm_faces = rng.integers(0, len(faces_arr), NUM_LANDMARKS).astype(np.int32)
    bary = rng.random((NUM_LANDMARKS, 3)) + 0.1
    bary /= bary.sum(axis=1, keepdims=True)
    return Topology(
        faces=faces_arr,
        uv_faces=faces_arr.copy(),
        uvs=uvs.astype(np.float32),
        neutral=neutral.astype(np.float32),
        landmark_faces=lm_faces,
        landmark_barycentrics=bary.astype(np.float32),
    )


def toy_lightstage(
    grid: int = 9,
    num_frames: int = 12,
    num_cameras: int = 4,
    image_size: int = 48,
    texture_size: int = 32,
    full_every: int = 3,
    seed: int = 0,
):
    """A miniature light stage rendered with the project's renderer, as in-memory `LightStageData`.

    The dome deforms with two smooth "expression" modes; each group frame lights one of 50 directional
    light groups (Lambertian, so the gain the lighting model must learn really depends on normals and code);
    every `full_every`-th frame is fully lit. Ground truth is exact, so tests can check learning.
    """
    from pathlib import Path

    import torch

    from dlatrack_engine.geometry import axis_angle_to_matrix, vertex_normals
    from dlatrack_engine.models.uv_space import UVAtlas
    from dlatrack_engine.render.camera import Camera, look_at
    from dlatrack_engine.render.mesh_renderer import MeshRenderer
    from dlatrack_engine.train.data import LightStageData

    gen = torch.Generator().manual_seed(seed)
    topo = dome_topology(grid, seed=seed)
    neutral = torch.as_tensor(topo.neutral)
    xy = neutral[:, :2] / 0.1
    modes = (
        torch.stack(
            [
                torch.stack([torch.zeros_like(xy[:, 0]), torch.zeros_like(xy[:, 0]), torch.cos(2 * xy[:, 0])], -1),
                torch.stack([0.3 * xy[:, 1], torch.zeros_like(xy[:, 0]), torch.sin(3 * xy[:, 1])], -1),
            ]
        )
        * 0.01
    )
    weights = torch.rand(num_frames, 2, generator=gen) * 2 - 1
    vertices = neutral + torch.einsum("nk,kvc->nvc", weights, modes)
    head_r = (torch.rand(num_frames, 3, generator=gen) - 0.5) * 0.3
    head_R = axis_angle_to_matrix(head_r)
    head_t = torch.zeros(num_frames, 3)

    angles = torch.linspace(-0.6, 0.6, num_cameras)
    eyes = torch.stack([0.5 * torch.sin(angles), 0.05 * torch.cos(3 * angles), 0.5 * torch.cos(angles)], -1)
    R, t = look_at(eyes, torch.zeros(num_cameras, 3), torch.tensor([0.0, 1.0, 0.0]))
    f = image_size * 2.2
    K = torch.tensor([[f, 0, image_size / 2], [0, f, image_size / 2], [0, 0, 1.0]]).expand(num_cameras, 3, 3)

    directions = torch.nn.functional.normalize(torch.randn(50, 3, generator=gen), dim=1)
    directions[:, 2] = directions[:, 2].abs()  # lights in front of the face
    codes = torch.zeros(num_frames, 50, 3)
    kinds = []
    for i in range(num_frames):
        if i % full_every == 0:
            codes[i] = 1.0
            kinds.append("full")
        else:
            codes[i, torch.randint(0, 50, (1,), generator=gen)] = torch.rand(3, generator=gen) * 0.5 + 0.5
            kinds.append("group")

    renderer = MeshRenderer(topo.faces, topo.uv_faces, topo.uvs, "cpu")
    atlas = UVAtlas(renderer, texture_size)
    s = torch.linspace(0, 1, texture_size)
    yy, xx = torch.meshgrid(s, s, indexing="ij")
    albedo = torch.stack([0.5 + 0.3 * torch.sin(6 * xx), 0.4 + 0.2 * torch.cos(5 * yy), 0.3 + 0.2 * xx * yy])
    images, masks = [], []
    full_norm = None
    for i in range(num_frames):
        world = vertices[i] @ head_R[i].T + head_t[i]
        n = vertex_normals(world[None], torch.as_tensor(topo.faces))
        shade = torch.einsum("bvc,gc->bvg", n, directions).clamp_min(0)  # [1,V,50]
        if full_norm is None:
            full_norm = shade.sum(-1).mean()
        light = torch.einsum("bvg,gc->bvc", shade, codes[i]) / full_norm  # [1,V,3]
        texture = albedo[None] * (0.1 + atlas.to_texture(light))
        cams = Camera(K, R, t, image_size, image_size)
        out = renderer.render(world[None].expand(num_cameras, -1, -1), cams, texture.expand(num_cameras, -1, -1, -1))
        images.append(out.image.to(torch.float16))
        masks.append(out.mask > 0.5)
    return LightStageData(
        root=Path("<toy>"),
        camera_names=[f"cam{c:02d}" for c in range(num_cameras)],
        K=K.clone(),
        R=R,
        t=t,
        width=image_size,
        height=image_size,
        frame_ids=list(range(num_frames)),
        kinds=kinds,
        light_codes=codes.reshape(num_frames, 150),
        head_R=head_R,
        head_t=head_t,
        vertices=vertices,
        images=torch.stack(images),
        masks=torch.stack(masks),
        topology=topo,
        provenance={"generator": "tests/toy_lightstage.py", "seed": seed},
    )


def write_lightstage(data, root) -> None:
    """Write in-memory `LightStageData` (e.g. `toy_lightstage()`) in the dataset format with the project's
    writer, so loaders and the CLI can be tested on real files."""
    from dlatrack_engine.lightstage.writer import LightStageWriter

    cameras = [
        {"name": n, "K": data.K[i].numpy(), "R": data.R[i].numpy(), "t": data.t[i].numpy(),
         "width": data.width, "height": data.height}
        for i, n in enumerate(data.camera_names)
    ]  # fmt: skip
    writer = LightStageWriter(root, cameras, data.topology.arrays(), provenance=dict(data.provenance))
    for i, fid in enumerate(data.frame_ids):
        writer.add_frame(
            fid,
            data.kinds[i],
            data.light_codes[i].numpy(),
            data.head_R[i].numpy(),
            data.head_t[i].numpy(),
            data.vertices[i].numpy(),
            {n: data.images[i, c].float().numpy() for c, n in enumerate(data.camera_names)},
            {n: data.masks[i, c, ..., 0].float().numpy() for c, n in enumerate(data.camera_names)},
        )
    writer.close()
