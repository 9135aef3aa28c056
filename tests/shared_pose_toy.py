"""A tiny light stage in which two pattern frames and one fully-lit frame share a pose (as every pose of the
sample light stage does): the set-up of pattern mixing, the oracle and the shading-ratio tests."""

from __future__ import annotations

from toy_lightstage import toy_lightstage

from dlatrack_engine.train.data import LightStageData


def shared_pose_toy() -> LightStageData:
    """Frames [full, group, group, full, group, group, full]; patterns 1, 2 and fully-lit 3 in one pose."""
    data = toy_lightstage(grid=7, num_frames=7, num_cameras=2, image_size=24, texture_size=16, full_every=3)
    assert data.kinds == ["full", "group", "group", "full", "group", "group", "full"]
    for f in (2, 3):
        for tensor in (data.vertices, data.head_R, data.head_t):
            tensor[f] = tensor[1]
    return data
