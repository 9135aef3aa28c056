"""Time-varying lighting (issue 18): cut detection, key frames per segment, the offsets' temporal prior, the
per-frame lighting views, and the versioned lighting folder that stores l_t."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from dlatrack_engine.fit import lighting_store
from dlatrack_engine.fit.lighting_segments import (
    detect_cuts,
    face_colour_stats,
    keys_per_segment,
    segments_of,
)
from dlatrack_engine.fit.video_lighting import VideoLighting, lighting_at
from dlatrack_engine.wire.lighting_folder import LightingFolderError


def _smooth_stats(n: int, seed: int = 0) -> np.ndarray:
    """Face colour of a head turning under fixed light: slow drift plus a little noise."""
    rng = np.random.default_rng(seed)
    s = np.linspace(0, 1, n)[:, None]
    return np.log(0.4) + 0.15 * np.sin(3 * s) * np.array([1.0, 0.8, 0.6]) + rng.normal(0, 0.005, (n, 3))


def test_a_switch_is_a_cut_and_a_turning_head_is_not() -> None:
    stats = _smooth_stats(30)
    assert detect_cuts(stats) == []
    switched = stats.copy()
    switched[12:] += np.log(0.5)  # the key light goes off at frame 12
    assert detect_cuts(switched) == [12]
    faded = stats + np.linspace(0, np.log(0.35), 30)[:, None]  # a slow fade is no cut
    assert detect_cuts(faded) == []


def test_face_colour_stats_read_the_landmark_hull() -> None:
    frames = np.full((2, 40, 40, 3), 0.1, np.float32)
    frames[1, 10:31, 10:31] = [0.5, 0.25, 0.125]  # the hull of corners 10 and 30 holds pixels 10-30
    square = np.array([[10, 10], [30, 10], [30, 30], [10, 30]], np.float32)
    points = np.repeat(np.tile(square, (17, 1))[None], 2, axis=0)
    stats = face_colour_stats(frames, points)
    assert np.allclose(stats[0], np.log(0.1), atol=1e-5)
    assert np.allclose(stats[1], np.log([0.5, 0.25, 0.125]), atol=1e-5)


def test_keys_cover_every_segment() -> None:
    segments = segments_of(20, [8])
    assert segments == [(0, 8), (8, 20)]
    rotations = np.random.default_rng(1).normal(0, 0.2, (20, 3))
    keys = keys_per_segment(rotations, segments, 6)
    assert sum(k < 8 for k in keys) >= 2 and sum(k >= 8 for k in keys) >= 2 and len(keys) >= 6


def test_views_light_each_frame_with_its_own_code(avatar) -> None:
    sequence = VideoLighting("G", avatar, frames=3)
    with torch.no_grad():
        sequence.code.normal_()
        sequence.offsets.normal_()
    texture = torch.rand(2, 3, 32, 32)
    head_view = torch.randn(2, 6)
    gain, bias = sequence.at([2, 0]).gain_bias(head_view, texture, None, None)
    for j, row in enumerate([2, 0]):
        static = VideoLighting("G", avatar)
        static.network = sequence.network
        with torch.no_grad():
            static.code.copy_(sequence.frame_codes()[row : row + 1])
        g, b = static.gain_bias(head_view[j : j + 1], texture[j : j + 1], None, None)
        assert torch.allclose(gain[j], g[0], atol=1e-6) and torch.allclose(bias[j], b[0], atol=1e-6)
    gain.sum().backward()
    assert sequence.offsets.grad[[0, 2]].abs().sum() > 0 and sequence.offsets.grad[1].abs().sum() == 0
    plain = VideoLighting("G", avatar)
    assert plain.at([0, 1]) is plain and lighting_at(None, [0]) is None and not plain.is_sequence


def test_set_frame_codes_round_trip(avatar) -> None:
    lighting = VideoLighting("G", avatar)
    codes = torch.randn(4, 150)
    lighting.set_frame_codes(codes)
    assert lighting.is_sequence and torch.allclose(lighting.frame_codes(), codes, atol=1e-6)


def _write(root, lighting, avatar, **meta):
    return lighting_store.write(root, lighting, avatar, lambda path, data: (path.parent.mkdir(
        parents=True, exist_ok=True), path.write_bytes(data)), {"key_frames": [0], "key_source_frames": [0], **meta})


def test_a_sequence_lighting_is_stored_per_frame_and_refused_on_another_length(avatar, tmp_path) -> None:
    lighting = VideoLighting("G", avatar)
    codes = torch.randn(5, 150)
    lighting.set_frame_codes(codes)
    _write(tmp_path, lighting, avatar, variation="sequence", frame_count=5, source_frames=[10, 11, 12, 13, 14],
           segments=[[0, 2], [2, 5]])
    stored = lighting_store.read(tmp_path)
    assert stored.info.variation == "sequence" and stored.light_code.shape == (5, 150)
    assert torch.allclose(stored.video_lighting(avatar, None).frame_codes(), codes, atol=1e-5)
    assert lighting_store.read_reusable(tmp_path, avatar, "G", frame_count=5).info.frame_count == 5
    with pytest.raises(LightingFolderError, match=r"lighting\.json: field 'frame_count' is 5.*this take has 7 frames"):
        lighting_store.read_reusable(tmp_path, avatar, "G", frame_count=7)


def test_a_static_lighting_of_format_version_1_still_reads_and_reuses_anywhere(avatar, tmp_path) -> None:
    lighting = VideoLighting("G", avatar)
    with torch.no_grad():
        lighting.code.normal_()
    _write(tmp_path, lighting, avatar)
    info_path = tmp_path / "lighting.json"
    data = json.loads(info_path.read_text())
    for field in ("frame_count", "source_frames", "segments"):
        data.pop(field)
    data["format_version"] = 1
    info_path.write_text(json.dumps(data))
    stored = lighting_store.read_reusable(tmp_path, avatar, "G", frame_count=99)
    assert stored.info.variation == "static" and not stored.video_lighting(avatar, None).is_sequence
    assert torch.allclose(stored.video_lighting(avatar, None).code, lighting.code, atol=1e-6)


def test_frames_of_one_segment_share_its_offset(avatar) -> None:
    lighting = VideoLighting("G", avatar, frames=2)  # two segments
    with torch.no_grad():
        lighting.offsets.normal_()
    lighting.row_map = torch.tensor([0, 0, 1])  # key frames 0 and 1 in segment 0, key frame 2 in segment 1
    code = lighting.at([2, 1, 0]).code
    assert torch.equal(code[0], (lighting.code + lighting.offsets[1])[0])
    assert torch.equal(code[1], code[2]) and not torch.equal(code[0], code[1])
    assert lighting.code_parameters() == [lighting.code, lighting.offsets]
    lighting.fit_shared = False  # independent codes per segment: only the offsets are fitted
    assert len(lighting.code_parameters()) == 1 and lighting.code_parameters()[0] is lighting.offsets
