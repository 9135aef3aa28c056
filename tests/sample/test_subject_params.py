"""A subject seed makes another person (issue 17.4); subject seed 0 stays the committed reference face."""

from __future__ import annotations

import argparse
from dataclasses import asdict, fields

import numpy as np
import pytest

from dlatrack_engine.sample.subject import SUBJECT_DIR
from dlatrack_engine.wire.png import decode_png
from sample_scenes.generator import albedo as al
from sample_scenes.generator import face_model as fm
from sample_scenes.generator.subject_params import NOSE_GAP, RANGES, SubjectParams

MIRROR = {**{i: 16 - i for i in range(8)}, **{17 + i: 26 - i for i in range(5)}, 31: 35, 32: 34,
          36: 45, 37: 44, 38: 43, 39: 42, 40: 47, 41: 46, 48: 54, 49: 53, 50: 52, 59: 55, 58: 56,
          60: 64, 61: 63, 67: 65}  # fmt: skip
GRID = fm.GRID_ROWS * fm.GRID_COLUMNS  # the grid vertices come first in every subject's mesh


def _landmarks(mesh: fm.FaceMesh) -> np.ndarray:
    return fm.landmark_points(mesh.neutral, mesh.faces, mesh.landmark_faces, mesh.landmark_barycentrics)


@pytest.fixture(scope="module")
def subject1():
    params = SubjectParams.from_seed(1)
    return params, fm.build_face_mesh(params)


def test_subject_seed_zero_reproduces_the_committed_subject_exactly(face_mesh):
    params = SubjectParams.from_seed(0)
    assert params == SubjectParams()
    mesh = fm.build_face_mesh(params)
    with np.load(SUBJECT_DIR / "topology.npz") as committed:
        for key, value in mesh.topology_arrays().items():
            np.testing.assert_array_equal(committed[key], value, err_msg=key)
    np.testing.assert_array_equal(mesh.neutral, face_mesh.neutral)
    textures = al.make_skin_textures(512, 0, params)
    srgb = (al.linear_to_srgb(textures.albedo) * 255 + 0.5).astype(np.uint8)
    np.testing.assert_array_equal(decode_png((SUBJECT_DIR / "albedo.png").read_bytes()), srgb)
    roughness = (textures.roughness * 255 + 0.5).astype(np.uint8)
    np.testing.assert_array_equal(decode_png((SUBJECT_DIR / "roughness.png").read_bytes()).squeeze(), roughness)


def test_subject_seed_one_is_another_face(face_mesh, subject1):
    params, mesh = subject1
    moved = np.linalg.norm(mesh.neutral[:GRID] - face_mesh.neutral[:GRID], axis=1)
    assert moved.mean() > 0.2 and moved.max() > 0.8, f"shape barely changed: {moved.mean():.3f} / {moved.max():.2f} cm"
    lm_moved = np.linalg.norm(_landmarks(mesh) - _landmarks(face_mesh), axis=1)
    assert lm_moved.mean() > 0.3, f"landmarks moved {lm_moved.mean():.3f} cm on average"
    a0, a1 = al.make_skin_textures(128, 0), al.make_skin_textures(128, 0, params)
    assert np.abs(a1.albedo - a0.albedo).mean() > 0.05, "the albedo barely changed"
    assert np.abs(np.array(params.skin_srgb) - np.array(SubjectParams().skin_srgb)).max() > 0.05


def test_parameters_stay_in_plausible_ranges():
    drawn = [SubjectParams.from_seed(seed) for seed in range(300)]
    for p in drawn:
        seed = p.subject_seed
        for name, (lo, hi) in RANGES.items():
            assert lo <= getattr(p, name) <= hi, f"seed {seed}: {name} = {getattr(p, name)} outside [{lo}, {hi}]"
        for colour in (p.skin_srgb, p.lip_srgb, p.hair_srgb):
            assert all(0.0 <= c <= 1.0 for c in colour), f"seed {seed}"
        assert p.skin_srgb[0] > p.skin_srgb[1] > p.skin_srgb[2], f"seed {seed}: skin is warm, R > G > B"
        assert p.mouth_y + p.upper_lip_height <= p.nose_bottom_y - NOSE_GAP + 1e-9, f"seed {seed}: lip runs into nose"
        assert p.lower_face_y(-9.7) < p.lip_y(-7.85), f"seed {seed}: the chin is above the lower lip"
    spread = {name: np.ptp([getattr(p, name) for p in drawn]) / (hi - lo) for name, (lo, hi) in RANGES.items()}
    assert min(spread.values()) > 0.7, f"the seeds do not cover the ranges: {spread}"


@pytest.mark.parametrize("seed", [1, 2, 5, 11])
def test_every_subject_mesh_is_a_valid_face(seed):
    params = SubjectParams.from_seed(seed)
    mesh = fm.build_face_mesh(params)
    radius = np.linalg.norm(mesh.neutral, axis=1)
    assert radius.min() > 5.0, "the surface stays outside a 5 cm core (radii positive, no collapse)"
    tri = mesh.neutral[mesh.faces]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    assert (np.einsum("ij,ij->i", normal, tri.mean(1)) > 0).mean() > 0.995, "triangles fold inwards"
    lm = _landmarks(mesh)
    assert (lm[:, 2] > 0).all(), "every landmark is on the front of the face"
    for right, left in MIRROR.items():
        np.testing.assert_allclose(lm[right] * [-1, 1, 1], lm[left], atol=0.25, err_msg=f"seed {seed} {right}/{left}")
    assert lm[8, 1] < lm[57, 1] < lm[62, 1] < lm[33, 1] < lm[30, 1] < lm[27, 1] < lm[19, 1], "vertical order"
    assert lm[30, 2] == pytest.approx(lm[:, 2].max(), abs=0.3), "the nose tip is the front-most landmark"


def test_landmarks_follow_the_new_features(face_mesh, subject1):
    params, mesh = subject1
    lm, lm0 = _landmarks(mesh), _landmarks(face_mesh)
    assert lm[42:48, 0].mean() == pytest.approx(params.eye_x, abs=0.05), "left eye points around this eye"
    assert lm[42, 0] < params.eye_x < lm[45, 0], "the left eye's corners straddle its centre"
    assert lm[33, 1] == pytest.approx(-4.85 * params.nose_length, abs=0.05), "nose base at this nose's length"
    assert lm[62, 1] == pytest.approx(params.mouth_y, abs=0.05), "inner lip on this subject's mouth line"
    assert params.mouth_width > 1.1 and lm[54, 0] > lm0[54, 0] + 0.2, "the wider mouth's corner moved out"


def test_a_subject_is_deterministic_per_seed():
    a, b = SubjectParams.from_seed(7), SubjectParams.from_seed(7)
    assert a == b and a != SubjectParams.from_seed(8)
    mesh_a, mesh_b = fm.build_face_mesh(a), fm.build_face_mesh(b)
    np.testing.assert_array_equal(mesh_a.neutral, mesh_b.neutral)
    np.testing.assert_array_equal(mesh_a.landmark_faces, mesh_b.landmark_faces)
    np.testing.assert_array_equal(al.make_skin_textures(64, 3, a).albedo, al.make_skin_textures(64, 3, b).albedo)


def test_make_sample_records_the_subject_seed():
    from dlatrack_engine.sample import make_sample

    parser = argparse.ArgumentParser()
    make_sample.register(parser.add_subparsers())
    config = make_sample._config_from_args(parser.parse_args(["make-sample", "--subject-seed", "3"]))
    assert config.subject_seed == 3 and asdict(config)["subject_seed"] == 3
    assert make_sample._config_from_args(parser.parse_args(["make-sample"])).subject_seed == 0
    assert {f.name for f in fields(SubjectParams)} >= set(RANGES), "every drawn range is a parameter"


def test_shipped_subject1_files_match_the_generator():
    """avatar_subject1/ and clips_subject1/ were made from subject seed 1: their topology is that face's."""
    from dlatrack_engine import paths

    topology = fm.build_face_mesh(SubjectParams.from_seed(1)).topology_arrays()
    for path in ("avatar_subject1/topology.npz", "clips_subject1/warm_key_cool_fill/topology.npz"):
        with np.load(paths.SAMPLE_SCENES / path) as shipped:
            for key, value in topology.items():
                np.testing.assert_array_equal(shipped[key], value, err_msg=f"{path} '{key}'")
