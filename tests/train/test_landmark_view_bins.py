"""A landmark embedding per view-yaw bin: blend weights, calibration against a view-dependent detector, storage,
and its use in Eq. 6."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from test_landmark_calibration import (
    ProjectingDetector,
    _package,
    _write_embedding,
    default_embedding,
    shifted_embedding,
)
from toy_lightstage import toy_lightstage

from dlatrack_engine.avatar.format import AvatarFormatError
from dlatrack_engine.avatar.landmark_views import bin_weights, view_yaw
from dlatrack_engine.avatar.runtime import Avatar
from dlatrack_engine.colour import linear_to_srgb8
from dlatrack_engine.fit.params import FrameParams
from dlatrack_engine.fit.scene import FaceScene
from dlatrack_engine.geometry import axis_angle_to_matrix, matrix_to_axis_angle
from dlatrack_engine.train import landmark_calibration
from dlatrack_engine.train.landmark_calibration import calibrate_landmarks


@pytest.fixture(scope="module")
def toy():
    return toy_lightstage(grid=9, num_frames=6, num_cameras=3, image_size=48, texture_size=16, full_every=1)


def test_bin_weights_interpolate_between_neighbouring_centres():
    centres = torch.tensor([-0.6, -0.2, 0.2, 0.6])
    yaw = torch.tensor([-0.6, -0.2, 0.0, 0.1, 0.6, 2.0, -2.0])
    w = bin_weights(yaw, centres)
    expected = torch.tensor([
        [1.0, 0.0, 0.0, 0.0],
        [0.0, 1.0, 0.0, 0.0],
        [0.0, 0.5, 0.5, 0.0],
        [0.0, 0.25, 0.75, 0.0],
        [0.0, 0.0, 0.0, 1.0],
        [0.0, 0.0, 0.0, 1.0],  # beyond the last centre: that bin alone
        [1.0, 0.0, 0.0, 0.0],
    ])
    torch.testing.assert_close(w, expected)
    # Continuous across a centre: no jump where the pair of bins changes.
    eps = 1e-5
    torch.testing.assert_close(bin_weights(torch.tensor([0.2 - eps]), centres),
                               bin_weights(torch.tensor([0.2 + eps]), centres), atol=1e-4, rtol=0)


def test_view_yaw_is_the_cameras_angle_seen_from_the_head():
    angles = torch.tensor([-1.0, 0.0, 0.4])
    views = torch.stack([torch.sin(angles), torch.zeros(3), torch.cos(angles)], -1)
    torch.testing.assert_close(view_yaw(views), angles)


class ViewDependentDetector(ProjectingDetector):
    """A detector whose convention changes with the view: one embedding for camera 0, another for the rest."""

    name = "view-dependent-detector"

    def __init__(self, toy, left, right) -> None:
        super().__init__(toy, right, noise_px=0.0)
        first = ProjectingDetector(toy, left, noise_px=0.0).views
        for frame in range(toy.num_frames):
            key = linear_to_srgb8(toy.images[frame, 0].float().numpy()).tobytes()
            self.views[key] = first[key]


def test_per_view_calibration_follows_a_detector_that_changes_with_the_view(toy, monkeypatch):
    monkeypatch.setattr(landmark_calibration, "MIN_VIEWS", 2)
    detector = ViewDependentDetector(toy, shifted_embedding(toy, seed=1), shifted_embedding(toy, seed=2))
    cameras = list(range(toy.num_cameras))
    calibrated = calibrate_landmarks(toy, detector, list(range(toy.num_frames)), cameras, [], default_embedding(toy))
    fit = calibrated.report["mean_error_px"]["fit_cameras"]
    # One surface point per landmark must split the difference between the two conventions; the bins need not.
    assert fit["calibrated_per_view"] < 0.5 * fit["calibrated"], fit
    bins = calibrated.view_bins
    assert bins is not None and list(bins.yaw_deg) == list(landmark_calibration.VIEW_BINS_DEG)
    assert not np.array_equal(bins.faces[1], bins.faces[3])  # the -40° and 0° bins hold different points


def test_view_bins_are_stored_and_blended_by_the_current_view_in_eq_6(toy, tmp_path):
    _package(toy, tmp_path)
    left, right = shifted_embedding(toy, seed=1), shifted_embedding(toy, seed=2)
    entry = default_embedding(toy).to_dict()
    entry["view_bins"] = {"yaw_deg": [-30.0, 30.0], "faces": [left.faces.tolist(), right.faces.tolist()],
                          "barycentrics": [left.barycentrics.tolist(), right.barycentrics.tolist()]}
    _write_embedding(tmp_path, entry)
    avatar = Avatar.load(tmp_path / "avatar")
    scene = FaceScene(avatar, torch.tensor([[40.0, 0, 24], [0, 40.0, 24], [0, 0, 1]]), 48, 48)
    assert scene.use_landmarks_of("some-detector").endswith(", per view")
    # Heads facing the camera (head +z toward it), turned so that the camera sits at -30°, 0° and +30°.
    turns = torch.tensor([-30.0, 0.0, 30.0]) * math.pi / 180
    facing = axis_angle_to_matrix(torch.tensor([[0.0, math.pi, 0.0]]))
    R = facing @ axis_angle_to_matrix(torch.stack([torch.zeros(3), -turns, torch.zeros(3)], -1))
    params = FrameParams(matrix_to_axis_angle(R), torch.tensor([[0.0, 0.0, 0.5]]).repeat(3, 1),
                         torch.zeros(3, avatar.dam.cfg.latent_size))
    torch.testing.assert_close(view_yaw(scene.view_vector(params)), turns, atol=1e-5, rtol=0)

    got = scene.landmarks_2d(params)
    mesh = scene.geometry(params.z)
    with torch.no_grad():
        points = [avatar.landmarks(mesh, (torch.as_tensor(e.faces), torch.tensor(e.barycentrics, dtype=torch.float32)))
                  for e in (left, right)]
    expected = torch.stack([points[0][0], 0.5 * (points[0][1] + points[1][1]), points[1][2]])
    torch.testing.assert_close(got, scene.project(scene.to_world(expected, params)), atol=1e-3, rtol=0)


@pytest.mark.parametrize(
    ("bins", "message"),
    [
        ({"yaw_deg": [10.0, -10.0]}, "2 or more increasing angles"),
        ({"yaw_deg": [-10.0, 10.0], "faces_rows": 1}, "expected faces \\[2, 68\\]"),
    ],
)
def test_broken_view_bins_name_the_field(toy, tmp_path, bins, message):
    _package(toy, tmp_path)
    entry = default_embedding(toy).to_dict()
    rows = bins.pop("faces_rows", len(bins["yaw_deg"]))
    entry["view_bins"] = {**bins, "faces": [entry["faces"]] * rows,
                          "barycentrics": [entry["barycentrics"]] * len(bins["yaw_deg"])}
    _write_embedding(tmp_path, entry)
    with pytest.raises(AvatarFormatError, match=f"detector_embeddings.some-detector.*view_bins.*{message}"):
        Avatar.load(tmp_path / "avatar")
