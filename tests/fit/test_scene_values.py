"""fit/scene.py against hand-computed values: G's pose input in the stage frame, the pinhole projection, the
view vector, the mesh without the texture decoder, the view-binned landmark blend, and what `render` returns."""

from __future__ import annotations

import math

import numpy as np
import torch
from fit_fixtures import HEIGHT, WIDTH, gt_params, intrinsics, make_avatar, truth_lighting

from dlatrack_engine.avatar.runtime import Avatar
from dlatrack_engine.fit.params import FrameParams
from dlatrack_engine.fit.scene import CAMERA_TO_STAGE, FaceScene, lighting_rotation
from dlatrack_engine.fit.video_lighting import VideoLighting
from dlatrack_engine.geometry import axis_angle_to_matrix, matrix_to_axis_angle
from dlatrack_engine.models.lighting import relight
from dlatrack_engine.models.sh import identity_sh_coeffs


def _rot(axis_angle) -> torch.Tensor:
    return axis_angle_to_matrix(torch.tensor([axis_angle], dtype=torch.float32))


def test_a_frontal_head_is_the_identity_in_the_stage_frame():
    assert torch.equal(CAMERA_TO_STAGE, torch.diag(torch.tensor([1.0, -1.0, -1.0])))
    assert torch.allclose(lighting_rotation(_rot([math.pi, 0.0, 0.0])), torch.zeros(1, 3), atol=1e-6)
    # a head turned 0.3 rad about its own up axis while facing the camera: R = R(π x̂) R_y(0.3)
    turned = _rot([math.pi, 0.0, 0.0]) @ _rot([0.0, 0.3, 0.0])
    assert torch.allclose(lighting_rotation(turned), torch.tensor([[0.0, 0.3, 0.0]]), atol=1e-6)
    assert lighting_rotation(turned.double()).dtype == torch.float64


def test_camera_projection_and_world_transform(avatar):
    scene = FaceScene(avatar, intrinsics().double(), WIDTH, HEIGHT)
    assert scene.K.dtype == torch.float32 and (scene.width, scene.height) == (96, 96)
    camera = scene.camera(2)
    assert camera.K.shape == (2, 3, 3) and torch.equal(camera.R, torch.eye(3).expand(2, 3, 3))
    assert torch.equal(camera.t, torch.zeros(2, 3)) and (camera.width, camera.height) == (96, 96)
    points = torch.tensor([[[0.01, -0.02, 0.5], [0.0, 0.0, 1.0]]])
    uv = scene.project(points)
    assert uv.shape == (1, 2, 2)
    assert torch.allclose(uv, torch.tensor([[[220 * 0.02 + 48, 220 * -0.04 + 48], [48.0, 48.0]]]), atol=1e-5)
    params = FrameParams(torch.tensor([[0.0, 0.0, math.pi / 2]]), torch.tensor([[0.1, 0.2, 0.3]]), torch.zeros(1, 6))
    world = scene.to_world(torch.tensor([[[1.0, 0.0, 0.0]]]), params)  # x -> y, then + t
    assert torch.allclose(world, torch.tensor([[[0.1, 1.2, 0.3]]]), atol=1e-6)


def test_view_vector_and_head_view():
    avatar = make_avatar()
    scene = FaceScene(avatar, intrinsics(), WIDTH, HEIGHT)
    # frame 0: facing the camera, 0.5 m away to the right: the camera is to the head's left in the head frame;
    # frame 1: straight ahead 0.2 m away, the head turned 0.3 rad about its up axis: the camera at -0.3 rad
    turned = matrix_to_axis_angle(_rot([math.pi, 0.0, 0.0]) @ _rot([0.0, 0.3, 0.0]))
    params = FrameParams(torch.cat([torch.tensor([[math.pi, 0.0, 0.0]]), turned]),
                         torch.tensor([[0.3, 0.0, 0.4], [0.0, 0.0, 0.2]]), torch.zeros(2, 6))
    view = scene.view_vector(params)
    expected = torch.tensor([[-0.6, 0.0, 0.8], [-math.sin(0.3), 0.0, math.cos(0.3)]])
    assert torch.allclose(view, expected, atol=1e-6)
    # any pose: the camera direction -t/|t| taken into the head frame by R's inverse
    tilted = FrameParams(torch.tensor([[0.3, 0.4, 2.8]]), torch.tensor([[0.05, -0.02, 0.5]]), torch.zeros(1, 6))
    direction = -tilted.t[0] / tilted.t[0].norm()
    assert torch.allclose(scene.view_vector(tilted)[0], torch.linalg.inv(tilted.rotation()[0]) @ direction, atol=1e-6)
    assert torch.allclose(scene.head_view(params), torch.cat([lighting_rotation(params.rotation()), view], -1))
    at_origin = FrameParams(torch.zeros(1, 3), torch.zeros(1, 3), torch.zeros(1, 6))
    assert torch.equal(scene.view_vector(at_origin), torch.zeros(1, 3))  # clamped norm: no NaN


def test_geometry_is_the_decoded_mesh_and_surface_points_need_no_linear_tail(avatar):
    scene = FaceScene(avatar, intrinsics(), WIDTH, HEIGHT)
    z = torch.randn(2, 6, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        decoded, _ = avatar.decode(z, torch.tensor([[0.0, 0.0, 1.0]] * 2))
        assert torch.allclose(scene.geometry(z), decoded, atol=1e-6)
        faces = torch.tensor([0, 5, 17])
        bary = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.5, 0.5], [0.2, 0.3, 0.5]])
        expected = (decoded[:, avatar.topology.faces[faces]] * bary[None, :, :, None]).sum(2)
        assert torch.allclose(scene.surface_points(z, faces, bary), expected, atol=1e-6)
        mesh = avatar.dam.decoder.mesh
        avatar.dam.decoder.mesh = torch.nn.Sequential(*mesh, torch.nn.Identity())  # not a Linear at the end
        try:
            assert torch.allclose(scene.surface_points(z, faces, bary), expected, atol=1e-6)
        finally:
            avatar.dam.decoder.mesh = mesh


def _binned_avatar() -> Avatar:
    base = make_avatar()
    topo = base.topology_arrays
    faces = np.stack([topo.landmark_faces, (topo.landmark_faces + 7) % len(topo.faces)])
    bary = np.stack([topo.landmark_barycentrics, topo.landmark_barycentrics[::-1]])
    embedding = {"faces": topo.landmark_faces.tolist(), "barycentrics": topo.landmark_barycentrics.tolist(),
                 "view_bins": {"yaw_deg": [-30.0, 30.0], "faces": faces.tolist(), "barycentrics": bary.tolist()}}
    config = {"name": "binned", "landmarks": {"detector_embeddings": {"det": embedding}}}
    return Avatar(base.dam, base.lighting, topo, config)


def test_landmarks_of_a_view_binned_detector_blend_the_two_bins_by_the_view_yaw():
    avatar = _binned_avatar()
    scene = FaceScene(avatar, intrinsics(), WIDTH, HEIGHT)
    assert scene.use_landmarks_of("other") == "default" and scene.landmark_view_bins is None
    assert scene.use_landmarks_of("det") == "calibrated for det, per view"
    # view yaw +15° (camera to the head's +x side): weights 0.25 / 0.75 for the bins at -30° / +30°; a second
    # frame at -30° (the first bin alone), with another expression
    side = -0.5 * math.tan(math.radians(15)), 0.5 * math.tan(math.radians(30))
    t = torch.tensor([[side[0], 0.0, 0.5], [side[1], 0.0, 0.5]])
    params = FrameParams(torch.tensor([[math.pi, 0.0, 0.0]] * 2), t, torch.tensor([[0.0] * 6, [0.5] * 6]))
    bins = scene.landmark_view_bins
    with torch.no_grad():
        per_bin = [scene.surface_points(params.z, bins.faces[b], bins.barycentrics[b]) for b in (0, 1)]
        blend = torch.stack([0.25 * per_bin[0][0] + 0.75 * per_bin[1][0], per_bin[0][1]])
        expected = scene.project(scene.to_world(blend, params))
        assert torch.allclose(scene.landmarks_2d(params), expected, atol=1e-4)
        plain = FaceScene(avatar, intrinsics(), WIDTH, HEIGHT)
        assert torch.allclose(plain.landmarks_2d(params), scene.project(scene.to_world(
            scene.landmarks_3d(params.z), params)), atol=1e-5)


def test_render_returns_every_stage_and_the_held_maps_are_gs(avatar):
    scene = FaceScene(avatar, intrinsics(), WIDTH, HEIGHT)
    params = gt_params(2)
    lighting = truth_lighting(avatar)
    with torch.no_grad():
        out = scene.render(params, lighting)
        vertices, texture = avatar.decode(params.z, scene.view_vector(params))
        gain, bias = lighting.gain_bias(scene.head_view(params), texture, scene.to_world(vertices, params),
                                        avatar.topology.faces)
        assert torch.equal(out.vertices, vertices) and torch.equal(out.texture, texture)
        assert torch.allclose(out.vertices_world, scene.to_world(vertices, params))
        assert torch.allclose(out.relit_texture, relight(texture, gain, bias))
        held = scene.held_maps(params, lighting)
        assert torch.equal(held.gain, gain) and torch.equal(held.bias, bias)
        lit = scene.render(params, None, vertices=vertices * 0.3, background=torch.ones(2, HEIGHT, WIDTH, 3))
        assert torch.equal(lit.relit_texture, lit.texture) and torch.equal(lit.vertices, vertices * 0.3)
        assert lit.image.shape == (2, HEIGHT, WIDTH, 3) and lit.mask.shape == (2, HEIGHT, WIDTH, 1)
        outside = lit.mask.expand_as(lit.image) == 0
        assert int(outside.sum()) > 1000 and bool((lit.image[outside] == 1.0).all())  # the background there
        sh = VideoLighting("SH", avatar, scene.renderer)
        sh.code.copy_(identity_sh_coeffs(1) + 0.3)
        shaded = scene.render(params, sh)
        gain, bias = sh.gain_bias(scene.head_view(params), texture, scene.to_world(vertices, params),
                                  avatar.topology.faces)
        assert torch.allclose(shaded.relit_texture, relight(texture, gain, bias))  # SH reads the posed mesh
        visible = scene.visible_vertices(out.vertices_world)
        assert visible.dtype == torch.float32 and visible.shape == (2, avatar.dam.cfg.num_vertices)
        assert set(visible.unique().tolist()) == {0.0, 1.0}
