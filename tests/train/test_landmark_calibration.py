"""Landmark embedding calibration (ℓ_i of Eq. 6 per detector): recovery, storage, use in step 1."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from toy_lightstage import toy_lightstage, write_lightstage

from dlatrack_engine.avatar.format import AvatarFormatError
from dlatrack_engine.avatar.runtime import Avatar
from dlatrack_engine.colour import linear_to_srgb8
from dlatrack_engine.fit.scene import FaceScene
from dlatrack_engine.models.dam import DAM, DAMConfig
from dlatrack_engine.models.lighting import LightingConfig, LightingModel
from dlatrack_engine.train import landmark_calibration
from dlatrack_engine.train.data import load_lightstage
from dlatrack_engine.train.landmark_calibration import LandmarkEmbedding, _project_views, calibrate_landmarks
from dlatrack_engine.train.pipeline import run_landmark_calibration

SMALL_DAM = dict(latent_size=8, mesh_hidden=64, base_grid=4, max_channels=32, min_channels=8)
SMALL_G = dict(input_texture_size=16, mlp_width=32, light_channels=(32, 32, 16, 16, 16),
               texture_channels=(8, 16, 16, 16), branch_channels=16)  # fmt: skip


@pytest.fixture(scope="module")
def toy():
    return toy_lightstage(grid=9, num_frames=6, num_cameras=3, image_size=48, texture_size=16, full_every=1)


def shifted_embedding(toy, seed: int = 1) -> LandmarkEmbedding:
    """A detector's 'own' ℓ_i: every landmark moved to another face of the mesh, at random barycentrics."""
    rng = np.random.default_rng(seed)
    faces = rng.choice(len(toy.topology.faces), size=68, replace=True)
    bary = rng.dirichlet(np.ones(3), size=68)
    return LandmarkEmbedding(faces, bary)


class ProjectingDetector:
    """Stands in for a detector whose convention is `embedding`: it returns that embedding projected into
    the view the image came from (images are matched by content), plus pixel noise."""

    name = "projecting-test-detector"

    def __init__(self, toy, embedding: LandmarkEmbedding, noise_px: float, seed: int = 0) -> None:
        self.views: dict[bytes, np.ndarray] = {}
        rng = np.random.default_rng(seed)
        mesh_faces = np.asarray(toy.topology.faces)
        for frame in range(toy.num_frames):
            for cam in range(toy.num_cameras):
                key = linear_to_srgb8(toy.images[frame, cam].float().numpy()).tobytes()
                head = embedding.points(toy.vertices[[frame]].double().numpy(), mesh_faces)
                px = _project_views(toy, [(frame, cam)], head)[0]
                self.views[key] = px + rng.normal(0.0, noise_px, px.shape)

    def detect(self, image: np.ndarray):
        points = self.views.get(image.tobytes())
        return None if points is None else (points.astype(np.float32), np.ones(68, np.float32))


def default_embedding(toy) -> LandmarkEmbedding:
    return LandmarkEmbedding(np.asarray(toy.topology.landmark_faces), np.asarray(toy.topology.landmark_barycentrics))


def test_calibration_recovers_the_detectors_surface_points(toy):
    truth = shifted_embedding(toy)
    detector = ProjectingDetector(toy, truth, noise_px=0.3)
    calibrated = calibrate_landmarks(toy, detector, list(range(toy.num_frames)), [0, 1], [2], default_embedding(toy))
    mesh_faces = np.asarray(toy.topology.faces)
    neutral = np.asarray(toy.topology.neutral)[None]
    found, true = calibrated.points(neutral, mesh_faces), truth.points(neutral, mesh_faces)
    error_mm = 1000 * np.linalg.norm(found - true, axis=-1)
    spacing_mm = 1000 * np.linalg.norm(neutral[0, mesh_faces[:, 0]] - neutral[0, mesh_faces[:, 1]], axis=-1).mean()
    assert np.median(error_mm) < 0.1 * spacing_mm, (np.median(error_mm), spacing_mm)
    report = calibrated.report["mean_error_px"]
    # The held-out camera never entered the fit, yet its error drops to about the noise level.
    assert report["test_cameras"]["calibrated"] < 1.0 < report["test_cameras"]["default"]
    assert report["fit_cameras"]["calibrated"] < report["fit_cameras"]["default"]
    assert calibrated.report["views_detected"] == toy.num_frames * 3


def test_calibration_needs_faces_in_enough_views(toy):
    class Blind:
        name = "blind"

        def detect(self, image):
            return None

    with pytest.raises(ValueError, match="blind found a face in 0 of the fitting views"):
        calibrate_landmarks(toy, Blind(), [0, 1], [0, 1], [2], default_embedding(toy))


def _package(toy, tmp_path) -> Avatar:
    dam = DAM(DAMConfig(num_vertices=toy.topology.num_vertices, texture_size=16, **SMALL_DAM))
    lighting = LightingModel(LightingConfig(texture_size=16, energy_normalised=False, **SMALL_G))
    avatar = Avatar(dam, lighting, toy.topology, {"name": "toy"})
    split = {"holdout_cameras": ["cam02"], "holdout_frame_ids": []}
    avatar.to_package(tmp_path / "avatar", {"split": split})
    return avatar


def test_calibrated_embedding_is_stored_and_used_by_step_1_for_its_detector(toy, tmp_path, monkeypatch):
    root = tmp_path / "stage"
    write_lightstage(toy, root)
    _package(toy, tmp_path)
    truth = shifted_embedding(toy)
    on_disk = load_lightstage(root)  # the detector must see the images as the pipeline loads them
    detector = ProjectingDetector(on_disk, truth, noise_px=0.0)
    monkeypatch.setattr(landmark_calibration, "MIN_VIEWS", 2)
    report = run_landmark_calibration(root, tmp_path / "avatar", None, detector, command="test")
    assert report["detector"] == detector.name and report["frames"] == toy.num_frames
    avatar = Avatar.load(tmp_path / "avatar")
    (faces, bary), source = avatar.landmark_embedding(detector.name)
    assert source == f"calibrated for {detector.name}"
    assert avatar.landmark_view_bins(detector.name) is not None
    (default_faces, _), default_source = avatar.landmark_embedding("another-detector")
    assert default_source == "default" and torch.equal(default_faces, avatar.topology.landmark_faces)

    scene = FaceScene(avatar, torch.tensor([[40.0, 0, 24], [0, 40.0, 24], [0, 0, 1]]), 48, 48)
    z = torch.randn(2, avatar.dam.cfg.latent_size) * 0.1
    before = scene.landmarks_3d(z)
    assert scene.use_landmarks_of(detector.name) == source + ", per view"
    after = scene.landmarks_3d(z)
    with torch.no_grad():
        expected = avatar.landmarks(scene.geometry(z), (faces, bary))
    torch.testing.assert_close(after, expected, rtol=1e-4, atol=1e-6)
    assert (after - before).norm(dim=-1).mean() > 1e-3  # a different ℓ_i really is in use

    # Rewriting the package (as later training stages do) keeps the embedding.
    avatar.to_package(tmp_path / "again")
    assert Avatar.load(tmp_path / "again").landmark_embedding(detector.name)[1] == source


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda e: e.update(faces=e["faces"][:10]), "expected faces \\[68\\]"),
        (lambda e: e.update(faces=[10**6] * 68), "face index out of range"),
        (lambda e: e.update(barycentrics=[[0.5, 0.5, 0.5]] * 68), "non-negative and sum to 1"),
    ],
)
def test_a_broken_embedding_names_the_field(toy, tmp_path, change, message):
    _package(toy, tmp_path)
    entry = default_embedding(toy).to_dict()
    change(entry)
    _write_embedding(tmp_path, entry)
    with pytest.raises(AvatarFormatError, match=f"landmarks.detector_embeddings.some-detector.*{message}"):
        Avatar.load(tmp_path / "avatar")


def _write_embedding(tmp_path, entry: dict) -> None:
    config = json.loads((tmp_path / "avatar" / "avatar.json").read_text())
    config["landmarks"]["detector_embeddings"] = {"some-detector": entry}
    (tmp_path / "avatar" / "avatar.json").write_text(json.dumps(config))
