"""One adapted lighting reused across takes (issue 27): `adapt` on take A, `track` take B with it, and the
refusals of a lighting that is corrupt or belongs to another avatar, lighting model or kind."""

from __future__ import annotations

import copy
import json
import shutil
import threading

import numpy as np
import pytest
import torch
from fit_fixtures import (
    FRAMES,
    HEIGHT,
    TINY,
    WIDTH,
    ReplayDetector,
    gt_params,
    intrinsics,
    make_avatar,
    render_clip,
    truth_lighting,
    write_clip,
)

from dlatrack_engine.fit import lighting_store
from dlatrack_engine.fit.image_term import image_term
from dlatrack_engine.fit.params import FrameParams
from dlatrack_engine.fit.pipeline import Runtime, TrackOptions, adapt_video_lighting, track_video
from dlatrack_engine.fit.scene import FaceScene
from dlatrack_engine.fit.step2 import refine_key_poses
from dlatrack_engine.metrics.evaluate import evaluate, evaluate_job
from dlatrack_engine.report.write import write_report
from dlatrack_engine.wire.jobfolder import JobFolder
from dlatrack_engine.wire.lighting_folder import LightingFolderError, lighting_root


@pytest.fixture(autouse=True)
def tiny_schedule(monkeypatch):
    monkeypatch.setattr(TrackOptions, "schedule", lambda self: TINY)


@pytest.fixture(scope="module")
def takes(tmp_path_factory, avatar):
    """Two takes of the same avatar under the same lighting, different performances; A's lighting adapted."""
    root = tmp_path_factory.mktemp("takes")
    marks = {name: write_clip(root / name, avatar, gt_params(FRAMES, seed)) for name, seed in (("a", 1), ("b", 2))}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(TrackOptions, "schedule", lambda self: TINY)
        summary = adapt_video_lighting(root / "a", avatar, root / "adapt_a", _options(), runtime=_replay(marks["a"]))
    return root, marks, summary


def _options(**extra) -> TrackOptions:
    return TrackOptions(key_frames=3, **extra)


def _replay(marks) -> Runtime:
    return Runtime(landmark_detector=ReplayDetector(marks))


def _pose_schedule(iterations: int):
    """TINY with `fast`'s p_k rate and log-depth leaf, and `iterations` of the p_k-only refinement."""
    schedule = copy.deepcopy(TINY)
    schedule.step2.pose_lr_scale, schedule.step2.depth_unit = 20.0, 0.15
    schedule.step2.reuse_pose_iterations = iterations
    return schedule


def test_adapt_writes_a_lighting_folder_with_identities_and_preview(takes, avatar):
    root, _, summary = takes
    stored = lighting_store.read(lighting_root(root / "adapt_a"))
    assert stored.info.model == "G" and stored.info.variation == "static" and len(stored.info.key_frames) == 3
    assert stored.info.avatar == lighting_store.avatar_identity(avatar)
    assert set(stored.info.files) == {"light_code.npy", "G.safetensors", "preview.png"}
    assert stored.light_code.shape == (150,) and "track" not in summary.stages_done
    lighting_store.check_reusable(stored.root, stored.info, avatar, "G")


def test_reused_lighting_matches_own_adaptation_and_skips_step_2(takes, avatar, tmp_path):
    root, marks, _ = takes
    own = track_video(root / "b", avatar, tmp_path / "own", _options(), runtime=_replay(marks["b"]))
    reused = track_video(root / "b", avatar, tmp_path / "reused",
                         _options(lighting_from=str(root / "adapt_a")), runtime=_replay(marks["b"]))  # fmt: skip
    # Step 2 skipped: φ is take A's, byte for byte; l and the key poses of B's own key frames refitted.
    assert own.key_frames and reused.key_frames == own.key_frames and "adapt" in reused.stages_done
    assert reused.seconds["adapt"] > 0.0
    folder = JobFolder(tmp_path / "reused")
    copied = lighting_store.read_job(folder)
    source = lighting_store.read(lighting_root(root / "adapt_a"))
    assert copied.info.files["G.safetensors"] == source.info.files["G.safetensors"]
    assert copied.light_code.shape == source.light_code.shape
    assert not np.array_equal(copied.light_code, source.light_code)
    assert copied.info.reused_from == str(lighting_root(root / "adapt_a").resolve())
    assert folder.read_manifest().lighting_source["path"] == copied.info.reused_from
    m_own = evaluate_job(tmp_path / "own", avatar, csim=False)
    evaluation = evaluate(tmp_path / "reused", avatar, csim=False)
    m_reused = evaluation.means
    assert abs(m_reused["psnr"] - m_own["psnr"]) < 0.5, (m_own, m_reused)
    assert abs(m_reused["vertex_mm"] - m_own["vertex_mm"]) < 0.5, (m_own, m_reused)
    # Issue 21 on a reused lighting: the preview and the report read the copied lighting through lighting_store.
    assert (tmp_path / "reused" / "preview.mp4").is_file()
    report = write_report(tmp_path / "reused", evaluation)
    document = json.loads((report.parent / "metrics.json").read_text())
    assert document["lighting_reused_from"] == copied.info.reused_from and document["losses"]["step2"]
    assert "step 2 skipped" in report.read_text()


def test_refine_key_poses_moves_the_poses_and_leaves_phi_alone(avatar):
    """Algorithm 1 with φ frozen: key poses 20 mm too far along their viewing rays, lit by the lighting the
    frames were rendered with, come back to the truth; φ is not modified."""
    truth = gt_params(FRAMES, seed=2)
    frames, _ = render_clip(avatar, truth)
    scene = FaceScene(avatar, intrinsics(), WIDTH, HEIGHT)
    lighting = truth_lighting(avatar)
    phi = [p.detach().clone() for p in lighting.network_parameters()]
    ray = truth.t / truth.t.norm(dim=-1, keepdim=True)
    start = FrameParams(truth.r.clone(), truth.t + 0.02 * ray, truth.z.clone())
    refined, curve = refine_key_poses(scene, frames, start, lighting, _pose_schedule(16))
    depth_mm = ((refined.t - truth.t) * ray).sum(-1).abs() * 1e3
    # Measured: 20 mm -> 1.8 mm mean |depth error| (16 iterations), 0.9 mm (32), 0.3 mm (64).
    assert float(depth_mm.max()) < 5.0, depth_mm
    assert len(curve) == TINY.step2.light_iterations + 16 and curve[-1] < 0.5 * curve[0], curve
    assert all(torch.equal(a, b) for a, b in zip(phi, lighting.network_parameters(), strict=True))


def test_refine_key_poses_refits_this_takes_l(avatar):
    """Another exposure of the same room (l* + 0.5, φ* as rendered): half-round a refits l, so Eq. 7 at the true
    poses comes back near its value under the true lighting (issue 27; with l frozen, as before, the poses were
    all that could move, and they cannot explain an exposure)."""
    truth = gt_params(FRAMES, seed=2)
    frames, _ = render_clip(avatar, truth)
    scene = FaceScene(avatar, intrinsics(), WIDTH, HEIGHT)

    def eq7_at_truth(lighting) -> float:
        with torch.no_grad():
            return float(image_term(scene, frames, truth, lighting, TINY.laplacian_weight)[0].sum())

    floor = eq7_at_truth(truth_lighting(avatar))
    lighting = truth_lighting(avatar)
    with torch.no_grad():
        lighting.code.add_(0.5)
    schedule = _pose_schedule(8)
    schedule.step2.light_iterations = 24
    excess = eq7_at_truth(lighting) - floor
    refined, _ = refine_key_poses(scene, frames, truth, lighting, schedule)
    # Measured: the excess over the true lighting's loss falls from 9.8e-4 to 0.8e-4.
    assert eq7_at_truth(lighting) - floor < 0.3 * excess, (floor, excess, eq7_at_truth(lighting))
    assert float((refined.t - truth.t).norm(dim=-1).max()) < 3e-3  # 1.9 mm with the true lighting too


def test_a_reuse_job_refines_key_poses_and_a_resumed_one_starts_step_3_from_them(takes, avatar, tmp_path,
                                                                                  monkeypatch):
    """The reused job saves its refined p_k (key_poses.npz, rows = step 2's key frames); cancelled after the
    adapt stage and rerun, it reads them back and tracks every frame as the uninterrupted job did."""
    root, marks, _ = takes
    monkeypatch.setattr(TrackOptions, "schedule", lambda self: _pose_schedule(8))
    options = _options(lighting_from=str(root / "adapt_a"), write_preview=False, write_overlays=False)
    whole = track_video(root / "b", avatar, tmp_path / "whole", options, runtime=_replay(marks["b"]))
    poses = np.load(tmp_path / "whole" / "key_poses.npz")
    init = np.load(tmp_path / "whole" / "init.npz")
    assert poses["rows"].tolist() == whole.key_frames and len(whole.key_frames) == 3
    assert np.abs(poses["t"] - init["t"][poses["rows"]]).max() > 5e-4  # moved (1.0 mm here), not kept

    cancel = threading.Event()

    def stop_at_step_3(event) -> None:
        if event.stage == "track":
            cancel.set()

    first = track_video(root / "b", avatar, tmp_path / "resumed", options, progress=stop_at_step_3, cancel=cancel,
                        runtime=_replay(marks["b"]))  # fmt: skip
    assert first.cancelled and "adapt" in first.stages_done and first.computed_frames == 0
    resumed = track_video(root / "b", avatar, tmp_path / "resumed", options, runtime=_replay(marks["b"]))
    assert resumed.key_frames == whole.key_frames and resumed.computed_frames == FRAMES
    a, b = JobFolder(tmp_path / "whole").read_track(), JobFolder(tmp_path / "resumed").read_track()
    for key in ("head_R", "head_t", "vertices"):
        assert np.allclose(a[key], b[key], atol=1e-6), key


def _other_g(avatar):
    other = copy.copy(avatar)
    other.lighting = copy.deepcopy(avatar.lighting)
    with torch.no_grad():
        next(other.lighting.parameters()).add_(0.01)
    return other


@pytest.mark.parametrize("case, field", [("other_avatar", "avatar"), ("other_g", "lighting_model"),
                                         ("sh_request", "model")])  # fmt: skip
def test_a_lighting_is_refused_for_another_avatar_model_or_kind(takes, avatar, case, field):
    root = takes[0]
    user = {"other_avatar": make_avatar(seed=1), "other_g": _other_g(avatar), "sh_request": avatar}[case]
    kind = "SH" if case == "sh_request" else "G"
    with pytest.raises(LightingFolderError, match=rf"lighting\.json: field '{field}'"):
        lighting_store.read_reusable(root / "adapt_a", user, kind)



@pytest.mark.parametrize("name, change, message", [
    ("light_code.npy", lambda b: b[:-4] + b"\0\0\0\1", r"light_code\.npy: its checksum differs"),
    ("G.safetensors", lambda b: b[:100], r"G\.safetensors: its checksum differs"),
    ("lighting.json", lambda b: b[:40], r"lighting\.json: unreadable JSON"),
    ("lighting.json", lambda b: b.replace(b'"static"', b'"flickering"'), r"lighting\.json: field 'variation'"),
    ("lighting.json", lambda b: b.replace(b'"static"', b'"sequence"'), r"lighting\.json: field 'frame_count'"),
    ("lighting.json", lambda b: b.replace(b'"format_version": 2', b'"format_version": 9'),
     r"lighting\.json: field 'format_version'"),
])  # fmt: skip
def test_a_corrupt_lighting_is_refused_naming_the_file_and_field(takes, avatar, tmp_path, name, change, message):
    copy_dir = tmp_path / "lighting"
    shutil.copytree(lighting_root(takes[0] / "adapt_a"), copy_dir)
    path = copy_dir / name
    path.write_bytes(change(path.read_bytes()))
    with pytest.raises(LightingFolderError, match=message):
        lighting_store.read_reusable(copy_dir, avatar, "G")


def test_track_refuses_a_foreign_lighting_before_any_work(takes, tmp_path):
    root, marks, _ = takes
    with pytest.raises(LightingFolderError, match="field 'avatar'"):
        track_video(root / "b", make_avatar(seed=1), tmp_path / "job",
                    _options(lighting_from=str(root / "adapt_a")), runtime=_replay(marks["b"]))  # fmt: skip
    assert not (tmp_path / "job").exists()
    with pytest.raises(LightingFolderError, match="neither a lighting folder"):
        lighting_root(tmp_path)


def test_legacy_job_lighting_loads_but_is_not_reusable(takes, avatar, tmp_path):
    legacy = tmp_path / "legacy"
    shutil.copytree(lighting_root(takes[0] / "adapt_a"), legacy)
    info = json.loads((legacy / "lighting.json").read_text())
    (legacy / "lighting.json").write_text(json.dumps({"kind": "G", "key_frames": info["key_frames"]}))
    stored = lighting_store.read(legacy)
    assert stored.info.legacy and stored.light_code.shape == (150,)
    with pytest.raises(LightingFolderError, match="no field 'avatar'"):
        lighting_store.check_reusable(stored.root, stored.info, avatar, "G")
