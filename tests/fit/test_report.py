"""What a user looks at after a job: preview.mp4 from `track`, report/ from `eval` (issue 21), on the tiny
synthetic clip with ground truth."""

from __future__ import annotations

import argparse
import json
import re
from types import SimpleNamespace

import imageio_ffmpeg
import numpy as np
import pytest
from fit_fixtures import FRAMES, HEIGHT, TINY, WIDTH, ReplayDetector

from dlatrack_engine.fit.pipeline import Runtime, TrackOptions, track_video
from dlatrack_engine.metrics import cli
from dlatrack_engine.wire.jobfolder import JobFolder


@pytest.fixture(scope="module")
def job(tmp_path_factory, avatar, clip_dir):
    """One tracked job (preview written by default) and its `dlatrack eval` (report + --json)."""
    root, marks = clip_dir
    base = tmp_path_factory.mktemp("report")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(TrackOptions, "schedule", lambda self: TINY)
        events = []
        track_video(root, avatar, base / "job", TrackOptions(key_frames=3), progress=events.append,
                    runtime=Runtime(landmark_detector=ReplayDetector(marks)))
    preview_events = [(e.frame, e.total) for e in events if e.stage == "preview"]
    package = avatar.to_package(base / "avatar")
    args = argparse.Namespace(jobs=[str(base / "job")], avatar=str(package), device="cpu", no_csim=True,
                              results=None, section="s", json=str(base / "metrics.json"), no_report=False)
    assert cli.run(args) == 0
    return SimpleNamespace(root=base, preview_events=preview_events)


def _decode(path):
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = reader.__next__()
    width, height = meta["size"]
    frames = [np.frombuffer(f, np.uint8).reshape(height, width, 3) for f in reader]
    return meta, frames


def test_preview_decodes_at_the_clips_size_rate_and_length_with_distinct_panels(job):
    meta, frames = _decode(job.root / "job" / "preview.mp4")
    assert len(frames) == FRAMES and meta["fps"] == pytest.approx(24.0)
    assert meta["size"] == (3 * WIDTH, 2 * HEIGHT)  # panels at the clip's size, three to a row
    tiles = [frames[2][r * HEIGHT:(r + 1) * HEIGHT, c * WIDTH:(c + 1) * WIDTH].astype(float)
             for r in range(2) for c in range(3)]
    body = slice(HEIGHT // 4, None)  # below the labels
    for a in range(5):  # input, mesh, relit avatar, novel view, heat map: each shows something else
        for b in range(a + 1, 5):
            assert np.abs(tiles[a][body] - tiles[b][body]).mean() > 3.0, (a, b)
    # The relit avatar composited over the frame looks like the frame (a good track), the novel view does not.
    assert np.abs(tiles[2][body] - tiles[0][body]).mean() < np.abs(tiles[3][body] - tiles[0][body]).mean()
    # The preview reports its progress (the add-on shows 'preview k/N' while it renders).
    assert job.preview_events[-1] == (FRAMES, FRAMES)
    preview = JobFolder(job.root / "job").read_manifest().metrics["preview"]
    assert preview["frames"] == FRAMES and preview["lost_frames"] == [3] and preview["psnr"] > 20


def test_report_is_self_contained_and_matches_eval(job):
    report = job.root / "job" / "report"
    page = (report / "report.html").read_text()
    outside_data = re.sub(r"data:[a-z/0-9]+;base64,[A-Za-z0-9+/=]+", "DATA", page)
    assert not re.search(r"(https?:)?//", outside_data) and "<script" not in page.lower()
    assert set(re.findall(r"(?:src|href)='([^']*)'", outside_data)) == {"DATA"}
    assert page.count("src='data:image/png;base64,") == 5  # image, landmarks, ground truth, losses, lighting
    assert "src='data:video/mp4;base64," in page
    document = json.loads((report / "metrics.json").read_text())
    from_json_flag = json.loads((job.root / "metrics.json").read_text())["jobs"][0]["metrics"]
    assert document["metrics"] == from_json_flag
    assert document["lost_frames"] == [3] and document["frames"] == list(range(FRAMES))
    # The sidebar's PSNR (written with the preview) is the evaluation's: same renders, same face masks.
    preview_psnr = JobFolder(job.root / "job").read_manifest().metrics["preview"]["psnr"]
    assert preview_psnr == pytest.approx(document["metrics"]["psnr"], abs=1e-6)
    per_frame = document["per_frame"]
    assert np.mean(per_frame["psnr"]) == pytest.approx(document["metrics"]["psnr"])
    assert np.mean(per_frame["vertex_mm"]) == pytest.approx(document["metrics"]["vertex_mm"])
    assert per_frame["landmark_residual_px"][3] is None  # no detection on frame 3
    assert {"step1_landmark", "step2", "step3_pixel", "step3_flow"} <= set(document["losses"])
    step2 = TINY.step2
    assert len(document["losses"]["step2"]) == step2.rounds * (step2.light_iterations + step2.model_iterations)
    for name in document["plots"]:
        assert (report / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_1080p_clip_gets_an_even_mosaic_no_wider_than_players_decode():
    from dlatrack_engine.report import panels
    from dlatrack_engine.report.preview import MAX_WIDTH

    mosaic = panels.mosaic([np.full((1081, 1921, 3), 9, np.uint8)] * 5, 3)
    assert mosaic.shape == (2162, 5764, 3)  # odd width padded: H.264 4:2:0 needs even sides
    fitted = panels.fit_width(mosaic, MAX_WIDTH)
    assert fitted.shape[1] == MAX_WIDTH and fitted.shape[0] % 2 == 0 and abs(fitted.shape[0] - 1440) <= 2
