"""TrackOptions without a job (issue 26): each refusal's message at its bound, the schedule it builds from the
preset and its overrides, and what the fingerprint does and does not depend on."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from dlatrack_engine.fit.pipeline import TrackOptions
from dlatrack_engine.fit.schedule import Schedule
from dlatrack_engine.wire.digest import request_digest


@pytest.mark.parametrize(("field", "value", "message"), [
    ("quality", "slow", "quality must be 'fast' or 'paper', got 'slow'"),
    ("lighting", "sh", "lighting must be one of ('G', 'SH', 'none'), got 'sh'"),
    ("steps", "step1", "steps must be 'full' or 'landmarks', got 'step1'"),
    ("stride", 0, "frame range: start 0 must be >= 0 and stride 0 >= 1"),
    ("start", -1, "frame range: start -1 must be >= 0 and stride 1 >= 1"),
])  # fmt: skip
def test_each_refusal_names_its_value(field, value, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        TrackOptions(**{field: value})


def test_the_bounds_and_every_choice_are_accepted():
    for quality in ("fast", "paper"):
        for lighting in ("G", "SH", "none"):
            for steps in ("full", "landmarks"):
                options = TrackOptions(quality=quality, lighting=lighting, steps=steps, start=0, stride=1)
                assert (options.quality, options.lighting, options.steps) == (quality, lighting, steps)


@pytest.mark.parametrize("quality", ["fast", "paper"])
def test_the_schedule_is_the_preset_with_k_and_the_overrides(quality):
    preset = Schedule.preset(quality)
    plain = TrackOptions(quality=quality, key_frames=7).schedule()
    assert plain.step2.key_frames == 7
    assert plain.step3.flow_weight == preset.step3.flow_weight and plain.step3.batch_size == preset.step3.batch_size
    plain.step2.key_frames = preset.step2.key_frames
    assert plain.to_dict() == preset.to_dict()  # nothing else changed
    changed = TrackOptions(quality=quality, key_frames=5, flow_weight=0.25, batch_size=3).schedule()
    assert (changed.step2.key_frames, changed.step3.flow_weight, changed.step3.batch_size) == (5, 0.25, 3)
    zero = TrackOptions(quality=quality, flow_weight=0.0, batch_size=None).schedule()
    assert zero.step3.flow_weight == 0.0 and zero.step3.batch_size == preset.step3.batch_size


def test_to_dict_has_every_field_with_its_value():
    options = TrackOptions(key_frames=9, focal=300.0, lighting_from="x")
    assert options.to_dict() == {f.name: getattr(options, f.name) for f in dataclasses.fields(TrackOptions)}
    assert options.to_dict()["key_frames"] == 9 and options.to_dict()["lighting_from"] == "x"
    assert len(options.to_dict()) == len(dataclasses.fields(TrackOptions))


def test_the_fingerprint_is_the_digest_of_video_avatar_and_result_options(tmp_path, monkeypatch):
    video = tmp_path / "clip"
    options = TrackOptions()
    keys = {k: v for k, v in options.to_dict().items()
            if k not in ("write_textures", "write_overlays", "write_preview")}
    expected = request_digest({"video": str(video.resolve()), "avatar": "a", **keys})
    assert options.fingerprint(video, "a") == expected
    monkeypatch.chdir(tmp_path)
    assert options.fingerprint(Path("clip"), "a") == expected  # a relative path names the same video
    assert options.fingerprint(str(video), "a") == expected
    assert options.fingerprint(video, "b") != expected
    assert options.fingerprint(tmp_path / "other", "a") != expected


def test_output_switches_do_not_change_the_fingerprint_and_every_other_field_does(tmp_path):
    base = TrackOptions()
    reference = base.fingerprint(tmp_path, "a")
    for switch in ("write_textures", "write_overlays", "write_preview"):
        assert dataclasses.replace(base, **{switch: False}).fingerprint(tmp_path, "a") == reference, switch
    changes = {"key_frames": 3, "quality": "paper", "start": 1, "stop": 5, "stride": 2, "lighting": "SH",
               "adapt": False, "pretrained_lighting": False, "steps": "landmarks", "detector": "x",
               "landmark_weights_dir": "w", "calibrated_landmarks": False, "focal": 100.0, "flow_weight": 1.0,
               "batch_size": 4, "lighting_from": "l", "time_varying_lighting": False}
    assert set(changes) | {"write_textures", "write_overlays", "write_preview"} == {
        f.name for f in dataclasses.fields(TrackOptions)}
    for name, value in changes.items():
        assert dataclasses.replace(base, **{name: value}).fingerprint(tmp_path, "a") != reference, name
