"""The time-varying lighting set-ups (issue 18): per-frame light parameters as designed, and their ground truth."""

from __future__ import annotations

import numpy as np
import pytest

from dlatrack_engine.sample.make_sample import VARYING_SETUPS, clip_folder
from sample_scenes.generator.varying_setups import (
    COOL,
    VARYING_NAMES,
    WARM,
    light_ground_truth,
    lights_per_frame,
)
from sample_scenes.generator.wild_setups import setup_by_name

N = 24


def _gt(name: str) -> dict[str, np.ndarray]:
    return light_ground_truth(lights_per_frame(name, N))


def test_engine_list_matches_the_generator() -> None:
    assert VARYING_SETUPS == VARYING_NAMES


def test_static_setup_is_constant() -> None:
    gt = _gt("warm_key_cool_fill")
    room = setup_by_name("warm_key_cool_fill")
    assert gt["light_position"].shape == (N, 2, 3)
    assert np.allclose(gt["light_power"], [[light.power for light in room.lights]])
    assert np.ptp(gt["light_position"], axis=0).max() == 0.0


def test_moving_key_sweeps_and_turns_blue_halfway() -> None:
    gt = _gt("varying_moving_key")
    x = gt["light_position"][:, 0, 0]
    assert x[0] < -0.9 and x[-1] > 0.9 and np.all(np.diff(x) > 0)  # left to right, monotonic
    assert np.allclose(np.linalg.norm(gt["light_position"][:, 0, [0, 2]], axis=1), 1.1, atol=1e-5)
    half = N // 2
    assert np.allclose(gt["light_colour"][:half, 0], WARM) and np.allclose(gt["light_colour"][half:, 0], COOL)
    assert np.ptp(gt["light_position"][:, 1], axis=0).max() == 0.0  # the fill does not move
    assert np.ptp(gt["light_power"], axis=0).max() == 0.0


def test_switch_turns_the_key_off_for_the_middle_third() -> None:
    power = _gt("varying_switch")["light_power"]
    off = np.flatnonzero(power[:, 0] == 0.0)
    s = off / (N - 1)
    assert len(off) == 8 and s.min() >= 1 / 3 and s.max() < 2 / 3 and np.all(np.diff(off) == 1)
    assert np.all(power[:, 1] == power[0, 1]) and power[0, 0] == power[-1, 0] > 0


def test_colour_drifts_from_warm_to_cool() -> None:
    colour = _gt("varying_colour")["light_colour"][:, 0]
    assert np.allclose(colour[0], WARM) and np.allclose(colour[-1], COOL)
    assert np.all(np.diff(colour[:, 2]) > 0) and np.all(np.diff(colour[:, 0]) < 0)


def test_fade_ends_dimmer_with_a_flicker() -> None:
    power = _gt("varying_fade")["light_power"][:, 0]
    assert power[-1] == pytest.approx(0.35 * power[0], rel=1e-3)
    assert np.any(np.diff(power) > 0) and np.any(np.diff(power) < 0)  # not a plain ramp: it flickers


def test_varying_clips_go_apart_from_table_1(tmp_path) -> None:
    assert clip_folder(tmp_path, "varying_switch") == tmp_path / "varying" / "varying_switch"
    assert clip_folder(tmp_path, "sun_sky") == tmp_path / "clips" / "sun_sky"


def test_unknown_setup_is_named() -> None:
    with pytest.raises(KeyError, match="varying_nope"):
        lights_per_frame("varying_nope", 3)
