"""The sample subject's mesh, landmarks, expression space and textures behave like a face should."""

from __future__ import annotations

import numpy as np
import pytest

from dlatrack_engine.avatar.format import topology_from_arrays
from dlatrack_engine.sample.raster import rasterize

# iBUG-68 left/right mirror pairs (subject's right <-> left).
MIRROR = {**{i: 16 - i for i in range(8)}, **{17 + i: 26 - i for i in range(5)}, 31: 35, 32: 34,
          36: 45, 37: 44, 38: 43, 39: 42, 40: 47, 41: 46, 48: 54, 49: 53, 50: 52, 59: 55, 58: 56,
          60: 64, 61: 63, 67: 65}  # fmt: skip


def _landmarks(vertices, mesh):
    from sample_scenes.generator.face_model import landmark_points

    return landmark_points(vertices, mesh.faces, mesh.landmark_faces, mesh.landmark_barycentrics)


def test_topology_is_a_valid_avatar_topology(face_mesh):
    topo = topology_from_arrays(face_mesh.topology_arrays())
    assert 3000 <= topo.num_vertices <= 8000, "a few thousand vertices"
    assert topo.uvs.min() >= 0.0 and topo.uvs.max() <= 1.0
    extent = topo.neutral.max(0) - topo.neutral.min(0)
    assert 0.12 < extent[0] < 0.2 and 0.15 < extent[1] < 0.25, f"face extent {extent} m is not head-sized"
    every_vertex_used = np.zeros(topo.num_vertices, bool)
    every_vertex_used[topo.faces.ravel()] = True
    assert every_vertex_used.all()


def test_uv_layout_has_no_overlaps(face_mesh):
    size = 256
    xy = np.stack([face_mesh.uvs[:, 0] * size, (1 - face_mesh.uvs[:, 1]) * size], axis=1)
    single = rasterize(xy, np.zeros(len(xy)), face_mesh.faces, size, size)
    covered = single.coverage.sum()
    tri = xy[face_mesh.faces]
    e1, e2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    per_triangle_area = 0.5 * np.abs(e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]).sum()
    assert abs(covered - per_triangle_area) / per_triangle_area < 0.01, "UV triangles overlap or leave gaps"


def test_faces_point_outwards(face_mesh):
    tri = face_mesh.neutral[face_mesh.faces]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    assert (np.einsum("ij,ij->i", normal, tri.mean(1)) > 0).mean() > 0.99


def test_landmarks_are_mirror_symmetric_and_ordered(face_mesh):
    lm = _landmarks(face_mesh.neutral, face_mesh)
    for right, left in MIRROR.items():
        assert lm[right, 0] < 0 < lm[left, 0] or abs(lm[right, 0]) < 0.05, f"landmark {right} not on the right"
        np.testing.assert_allclose(lm[right] * [-1, 1, 1], lm[left], atol=0.25, err_msg=f"pair {right}/{left}")
    assert lm[8, 1] < lm[57, 1] < lm[62, 1] < lm[33, 1] < lm[30, 1] < lm[27, 1] < lm[19, 1], "vertical order"
    assert lm[30, 2] == pytest.approx(lm[:, 2].max(), abs=0.3), "the nose tip is the front-most landmark"


def test_expressions_move_their_regions(face_mesh, expression_model):
    from sample_scenes.generator.expressions import EXPRESSION_NAMES

    neutral = expression_model.evaluate(np.zeros(len(EXPRESSION_NAMES)))
    np.testing.assert_allclose(neutral, face_mesh.neutral * 0.01, atol=1e-6)
    lm0 = _landmarks(neutral, face_mesh)

    def weights(**named):
        w = np.zeros(len(EXPRESSION_NAMES))
        for key, value in named.items():
            w[EXPRESSION_NAMES.index(key)] = value
        return w

    jaw = _landmarks(expression_model.evaluate(weights(jaw_open=1.0)), face_mesh)
    assert lm0[8, 1] - jaw[8, 1] > 0.008 and np.linalg.norm(jaw[8] - lm0[8]) > 0.015, "the chin swings down"
    assert np.linalg.norm(jaw[66] - jaw[62]) > 0.02, "the lips part by over 2 cm"
    assert np.abs(jaw[19] - lm0[19]).max() < 1e-4, "the brows stay"
    blink = _landmarks(expression_model.evaluate(weights(blink_L=1.0)), face_mesh)
    assert np.linalg.norm(lm0[44] - lm0[46]) > 0.004, "eyes are open at rest"
    assert np.linalg.norm(blink[44] - blink[46]) < 0.0015, "blink_L closes the left eye"
    assert np.linalg.norm(blink[37] - blink[41]) == pytest.approx(np.linalg.norm(lm0[37] - lm0[41])), "not the right"
    smile = _landmarks(expression_model.evaluate(weights(smile_R=1.0)), face_mesh)
    assert smile[48, 1] - lm0[48, 1] > 0.003 and abs(smile[54, 1] - lm0[54, 1]) < 0.001, "asymmetric smile"
    brow = _landmarks(expression_model.evaluate(weights(brow_raise_L=1.0)), face_mesh)
    assert brow[24, 1] - lm0[24, 1] > 0.004 and brow[19, 1] - lm0[19, 1] < 0.001
    pucker = _landmarks(expression_model.evaluate(weights(pucker=1.0)), face_mesh)
    assert pucker[54, 0] - pucker[48, 0] < lm0[54, 0] - lm0[48, 0] - 0.005, "pucker narrows the mouth"


def test_expressions_do_not_fold_triangles(face_mesh, expression_model):
    """Every expression at full strength keeps all triangles facing the way they did."""
    from sample_scenes.generator.expressions import EXPRESSION_NAMES

    def normals(v):
        tri = v[face_mesh.faces]
        n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        return n / np.linalg.norm(n, axis=1, keepdims=True)

    rest = normals(expression_model.evaluate(np.zeros(len(EXPRESSION_NAMES))))
    for k, name in enumerate(EXPRESSION_NAMES):
        w = np.zeros(len(EXPRESSION_NAMES))
        w[k] = 1.0
        flipped = (np.einsum("ij,ij->i", normals(expression_model.evaluate(w)), rest) < 0).sum()
        assert flipped <= 2, f"expression {name} flips {flipped} triangles"


def test_textures_are_deterministic_and_detailed():
    from sample_scenes.generator.albedo import make_skin_textures

    a, b, c = make_skin_textures(128, seed=3), make_skin_textures(128, seed=3), make_skin_textures(128, seed=4)
    np.testing.assert_array_equal(a.albedo, b.albedo)
    assert np.abs(a.albedo - c.albedo).mean() > 1e-3, "the seed changes the albedo"
    # Texture for flow/photometric tracking: strong local contrast in the albedo's high frequencies.
    lum = a.albedo.mean(axis=2)
    assert np.abs(np.diff(lum, axis=1)).mean() > 2e-3
    lips = a.albedo[90:100, 55:75]  # below the nose, between the mouth corners
    assert lips[..., 0].mean() / lips[..., 1].mean() > 1.5, "lips are redder than skin"
    assert a.roughness.min() >= 0.05 and a.roughness.max() <= 1.0


def test_committed_subject_matches_the_generator():
    """sample_scenes/subject/topology.npz is derived data: it must equal what the generator builds now."""
    from dlatrack_engine.sample.subject import SUBJECT_DIR, subject_topology

    with np.load(SUBJECT_DIR / "topology.npz") as committed:
        for key, value in subject_topology().items():
            np.testing.assert_allclose(committed[key], value, atol=1e-6, err_msg=f"topology.npz '{key}' is stale; "
                                       "run `dlatrack make-sample --write-subject`")  # fmt: skip
