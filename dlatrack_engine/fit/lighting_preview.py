"""The preview an artist judges an adapted lighting by, before tracking with it: a key frame of the video
beside the avatar rendered there (step 1's pose and expression) with that lighting, on neutral grey."""

from __future__ import annotations

import numpy as np
import torch

from dlatrack_engine.colour import linear_to_srgb8
from dlatrack_engine.fit.params import FrameParams
from dlatrack_engine.fit.scene import FaceScene
from dlatrack_engine.fit.video_lighting import VideoLighting
from dlatrack_engine.wire.png import encode_png

GREY = 0.18  # linear mid-grey behind the render


@torch.no_grad()
def preview_png(scene: FaceScene, frame: torch.Tensor, params: FrameParams, lighting: VideoLighting | None) -> bytes:
    """frame [H, W, 3] linear, params of that one frame -> PNG bytes [H, 2W, 3] sRGB: frame | relit avatar."""
    background = torch.full((1, scene.height, scene.width, 3), GREY, device=params.z.device)
    render = scene.render(params, lighting, background=background).image[0].cpu().numpy()
    side_by_side = np.concatenate([frame.cpu().numpy(), render], axis=1)
    return encode_png(linear_to_srgb8(side_by_side))
