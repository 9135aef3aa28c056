"""DIS flow: each preset is OpenCV's own (compared with a direct cv2 call on the same grey images), the
default preset is "medium", refusals name the problem, and sampling outside the image holds the border."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from dlatrack_engine.colour import linear_to_srgb8
from dlatrack_engine.fit.flow import dis_flow, sample_at, vertex_flow


def _pair() -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(4)
    texture = torch.from_numpy(rng.random((1, 12, 12, 1)).repeat(3, -1).astype(np.float32))
    base = torch.nn.functional.interpolate(texture.permute(0, 3, 1, 2), size=(48, 48), mode="bicubic",
                                           align_corners=False).permute(0, 2, 3, 1).clamp(0, 1)
    return base, torch.roll(base, shifts=(1, 2), dims=(1, 2)) * 0.9


def _opencv(source: torch.Tensor, target: torch.Tensor, preset: int) -> torch.Tensor:
    grey = [cv2.cvtColor(linear_to_srgb8(x[0].numpy()), cv2.COLOR_RGB2GRAY) for x in (source, target)]
    return torch.from_numpy(cv2.DISOpticalFlow_create(preset).calc(grey[0], grey[1], None))[None]


def test_each_preset_is_opencvs_and_medium_is_the_default():
    source, target = _pair()
    flows = {}
    for name, preset in (("ultrafast", cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST),
                         ("fast", cv2.DISOPTICAL_FLOW_PRESET_FAST), ("medium", cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)):
        flows[name] = dis_flow(source, target, name)
        assert torch.equal(flows[name], _opencv(source, target, preset)), name
    assert not torch.equal(flows["ultrafast"], flows["medium"]) and not torch.equal(flows["fast"], flows["medium"])
    assert torch.equal(dis_flow(source, target), flows["medium"])
    points = torch.tensor([[[10.5, 30.25], [24.0, 24.0], [40.0, 7.5]]])
    assert torch.equal(vertex_flow(source, target, points), sample_at(flows["medium"], points))
    assert torch.equal(vertex_flow(source, target, points, "ultrafast"), sample_at(flows["ultrafast"], points))


def test_refusals_name_the_preset_and_the_shapes():
    source, target = _pair()
    with pytest.raises(ValueError, match=r"^unknown DIS preset 'slow': expected one of \['fast', 'medium', "
                                         r"'ultrafast'\]$"):
        dis_flow(source, target, "slow")
    with pytest.raises(ValueError, match=r"^DIS flow: source \[1, 48, 48, 3\] and target \[1, 48, 40, 3\] differ$"):
        dis_flow(source, target[:, :, :40])


def test_sample_at_holds_the_border_value_outside_the_image():
    field = torch.arange(12.0).reshape(1, 3, 4, 1)
    outside = torch.tensor([[[-3.0, 0.5], [9.0, 2.5], [1.5, -5.0]]])
    assert sample_at(field, outside)[0, :, 0].tolist() == pytest.approx([0.0, 11.0, 1.0], abs=1e-6)
