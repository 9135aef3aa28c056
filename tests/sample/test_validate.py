"""The validator passes a consistent synthetic dataset and catches each kind of broken one."""

from __future__ import annotations

import numpy as np
import pytest

from dlatrack_engine.lightstage import format as fmt
from dlatrack_engine.lightstage.writer import LightStageWriter, encode_linear_png16
from dlatrack_engine.sample.raster import project, rasterize
from dlatrack_engine.sample.unwrap import unwrap_dataset
from dlatrack_engine.sample.validate import ValidationReport, validate_lightstage, validate_sample


def _look_at_face(azimuth_deg: float, size: int) -> dict:
    a = np.radians(azimuth_deg)
    centre = np.array([np.sin(a), 0.0, np.cos(a)]) * 0.8
    z = -centre / np.linalg.norm(centre)
    x = np.cross(z, [0.0, 1.0, 0.0])
    x /= np.linalg.norm(x)
    rot = np.stack([x, np.cross(z, x), z])
    K = np.array([[size * 2.2, 0, size / 2], [0, size * 2.2, size / 2], [0, 0, 1.0]])
    return {"name": f"az{int(azimuth_deg):+d}", "K": K, "R": rot, "t": -rot @ centre, "width": size, "height": size}


def _write_dataset(root, topology, shift_mask: int = 0, group_sum_gain: float = 1.0):
    """Images and masks drawn with the rasteriser itself: a dataset that is right by construction."""
    size = 64
    cameras = [_look_at_face(-30, size), _look_at_face(20, size)]
    writer = LightStageWriter(root, cameras, topology)
    vertices = topology["neutral"].astype(np.float64)
    images, masks = {}, {}
    for cam in cameras:
        xy, depth = project(vertices, cam["K"], cam["R"], cam["t"])
        coverage = rasterize(xy, depth, topology["faces"], size, size).coverage
        shade = 0.3 + 0.4 * np.linspace(0, 1, size)[None, :, None] * np.ones((size, 1, 3))
        images[cam["name"]] = np.where(coverage[..., None], shade, 0.0)
        masks[cam["name"]] = np.roll(coverage, shift_mask, axis=1)
        path = root / "checks" / f"{cam['name']}_group_sum.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(encode_linear_png16(images[cam["name"]] * group_sum_gain, writer.exposure_scale))
    writer.add_frame(0, "full", fmt.full_light_code(), np.eye(3), np.zeros(3), vertices, images, masks)
    group = {k: v / 50.0 for k, v in images.items()}
    writer.add_frame(1, "group", fmt.group_light_code([4]), np.eye(3), np.zeros(3), vertices, group, masks)
    writer.close()
    unwrap_dataset(root, 32)


@pytest.fixture(scope="module")
def topology(face_mesh):
    return face_mesh.topology_arrays()


def _checks(root) -> dict:
    report = ValidationReport()
    validate_lightstage(root, report)
    return {c.name: c for c in report.checks}


def test_consistent_dataset_passes(tmp_path, topology):
    _write_dataset(tmp_path, topology)
    checks = _checks(tmp_path)
    assert all(c.passed for c in checks.values()), {n: c.detail for n, c in checks.items() if not c.passed}
    assert checks["lightstage.mask_iou"].values["min"] > 0.999


def test_shifted_mask_fails_the_iou_check(tmp_path, topology):
    _write_dataset(tmp_path, topology, shift_mask=4)
    checks = _checks(tmp_path)
    assert not checks["lightstage.mask_iou"].passed and checks["lightstage.mask_iou"].values["min"] < 0.95


def test_group_sum_that_does_not_add_up_fails(tmp_path, topology):
    _write_dataset(tmp_path, topology, group_sum_gain=1.2)
    checks = _checks(tmp_path)
    assert not checks["lightstage.group_sum"].passed
    assert checks["lightstage.group_sum"].values["max_mean_error"] == pytest.approx(0.2, abs=0.01)


def test_a_sample_folder_without_its_light_stage_fails_only_when_one_was_expected(tmp_path):
    """`make-sample --skip-lightstage` renders clips only: its folder validates (it used to report FAILED and
    exit 1); a folder that should hold a light stage still fails, naming it. Time-varying clips (`varying/`)
    are validated like the static ones (an unreadable one fails, named)."""
    (tmp_path / "varying" / "varying_switch").mkdir(parents=True)
    expected = {c.name: c for c in validate_sample(tmp_path).checks}
    assert not expected["lightstage"].passed and "no dataset.json" in expected["lightstage"].detail
    skipped = {c.name: c for c in validate_sample(tmp_path, lightstage_expected=False).checks}
    assert "lightstage" not in skipped
    varying = skipped["clip.varying_switch"]
    assert not varying.passed and "cannot read clip.json" in varying.detail
    (tmp_path / "varying" / "varying_switch").rmdir()
    assert validate_sample(tmp_path, lightstage_expected=False).passed
