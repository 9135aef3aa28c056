"""fit/propagation.py in numbers: the runs of undetected frames at every position, the rows a gap is bridged
from, the Hermite curve's two tangents one at a time, a gap at each end of the clip carried on at the end's
velocity, and which z and translation a bridged frame keeps. Each case runs in milliseconds."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dlatrack_engine.fit.params import FrameParams
from dlatrack_engine.fit.propagation import bridge_gaps, end_rows, gap_rotations, gaps
from dlatrack_engine.geometry import axis_angle_to_matrix, matrix_to_axis_angle


def _yaw(degrees) -> torch.Tensor:
    angles = torch.deg2rad(torch.as_tensor(degrees, dtype=torch.float32))
    zero = torch.zeros_like(angles)
    return axis_angle_to_matrix(torch.stack([zero, angles, zero], -1))


def _yaw_of(rotations: torch.Tensor) -> np.ndarray:
    return np.rad2deg(matrix_to_axis_angle(rotations)[:, 1].double().numpy())


def _mask(pattern: str) -> np.ndarray:
    return np.asarray([c == "x" for c in pattern])


def test_gaps_at_the_start_the_end_and_next_to_each_other():
    assert gaps(_mask("..xx.x...")) == [(0, 1), (4, 4), (6, 8)]
    assert gaps([1, 0, 0, 1]) == [(1, 2)]  # any truthy array
    assert gaps(_mask("....")) == [(0, 3)]
    detected = _mask("xx.xx")
    assert end_rows((2, 2), detected) == [0, 1, 3, 4]  # both ends and both frames past them, in this order
    assert end_rows((0, 1), _mask("..xxx")) == [2, 3]
    assert end_rows((3, 4), _mask("xxx..")) == [1, 2]  # no row past the clip's end


def test_each_tangent_is_the_rotation_from_the_frame_past_the_end():
    """Ends at 0° (rows 1 and 5, span 4); only one end's outer frame known at a time: the other tangent is the
    gap's mean rate (0 here). At s = 1/4: h10 = 9/64, h11 = -3/64, so yaw = 4 x (9/64 x 8°) = 4.5° for a start
    rate of +8°/frame and 4 x (-3/64 x -8°) = 1.5° for an end rate of -8°/frame (turning back to 0)."""
    start_only = {0: _yaw([-8.0])[0], 1: _yaw([0.0])[0], 5: _yaw([0.0])[0]}
    end_only = {1: _yaw([0.0])[0], 5: _yaw([0.0])[0], 6: _yaw([-8.0])[0]}
    s = np.array([1, 2, 3]) / 4
    h10, h11 = s**3 - 2 * s**2 + s, s**3 - s**2
    assert np.allclose(_yaw_of(gap_rotations((2, 4), start_only)), 4 * h10 * 8.0, atol=1e-3)
    assert np.allclose(_yaw_of(gap_rotations((2, 4), end_only)), 4 * h11 * -8.0, atol=1e-3)
    assert _yaw_of(gap_rotations((2, 4), start_only))[0] == pytest.approx(4.5, abs=1e-3)
    assert _yaw_of(gap_rotations((2, 4), end_only))[0] == pytest.approx(1.5, abs=1e-3)


def test_the_ends_rotation_is_kept_in_a_curve_about_another_axis():
    """A roll end (axis x) and a yaw path: the result is curve(s) composed with the first end's rotation."""
    roll = axis_angle_to_matrix(torch.tensor([[0.3, 0.0, 0.0]]))[0]
    known = {1: roll, 4: _yaw([12.0])[0] @ roll}
    bridged = gap_rotations((2, 3), known)
    relative = bridged @ roll.T
    assert np.allclose(_yaw_of(relative), [4.0, 8.0], atol=1e-3)  # the mean rate: linear in time
    assert bridged.dtype == roll.dtype


@pytest.mark.parametrize("where", ["start", "end"])
def test_a_gap_at_the_clip_edge_carries_the_velocity_on(where):
    """5°/frame over the two detected frames at the edge: the gap's frames go on at 5°/frame, not one frame
    early or late; without the second frame the head stays at the end's rotation."""
    truth = 5.0 * np.arange(8)
    if where == "end":
        gap, ends = (5, 7), [3, 4]
    else:
        gap, ends = (0, 2), [4, 3]
    known = {r: _yaw([truth[r]])[0] for r in ends}
    assert np.allclose(_yaw_of(gap_rotations(gap, known)), truth[gap[0]:gap[1] + 1], atol=1e-3)
    still = {ends[1]: known[ends[1]]}
    assert np.allclose(_yaw_of(gap_rotations(gap, still)), truth[ends[1]], atol=1e-3)


def test_bridging_a_gap_at_each_end_keeps_translation_and_takes_the_nearer_z():
    n = 7
    yaw = 3.0 * np.arange(n)
    starts = FrameParams(matrix_to_axis_angle(_yaw(yaw)), torch.randn(n, 3), torch.arange(n * 2.0).view(n, 2))
    starts.r[[0, 5, 6]] = 0.0  # what step 1 left there is replaced
    bridged = bridge_gaps(starts, _mask(".xxxx.."))
    assert np.allclose(_yaw_of(bridged.rotation()), yaw, atol=1e-3)
    assert torch.equal(bridged.t, starts.t)
    assert torch.equal(bridged.z, starts.z[[1, 1, 2, 3, 4, 4, 4]])
    assert not bridged.r.requires_grad and bridged.r.data_ptr() != starts.r.data_ptr()
    assert torch.equal(starts.r[0], torch.zeros(3))  # the input is not modified


def test_without_a_gap_the_starts_are_returned_and_the_refusal_names_it():
    starts = FrameParams(torch.zeros(3, 3), torch.zeros(3, 3), torch.zeros(3, 2))
    assert bridge_gaps(starts, [1, 1, 1]) is starts
    with pytest.raises(ValueError, match=r"^propagation: no detected frame to start from$"):
        bridge_gaps(starts, [0, 0, 0])
    with pytest.raises(ValueError, match=r"^propagation: the gap 2-3 has no known end$"):
        gap_rotations((2, 3), {0: torch.eye(3), 5: torch.eye(3)})
