"""A landmark embedding that follows the view: one ℓ_i per view-yaw bin, blended by the current view.

A detector does not put a landmark on one fixed surface point for every view. On the sample subject
MediaPipe's points drift as the head turns: at 15-45° of yaw its eyes sit 4.3 px from the fixed points (1.4
px frontal), its nose 6.3 px (3.6) and its jaw contour, which follows the silhouette, 12.7 px (7.0), at 256
px. A single calibrated ℓ_i averages over views, so step 1 meets a turned head with a systematic error that
grows with the turn (bench/RESULTS.md, "a landmark embedding per view").

So the calibration stores one embedding per view-yaw centre (the angle of the camera seen from the head,
`view_yaw`), and Eq. 6 uses, for each frame, the piecewise-linear blend of the two bins around the frame's
current view. A departure from the paper, which ties each landmark to one surface point (docs/method.md).
"""

from __future__ import annotations

from typing import NamedTuple

import torch


class ViewBinnedEmbedding(NamedTuple):
    """ℓ_i per view bin: yaw [Bn] radians (increasing), faces [Bn, 68], barycentrics [Bn, 68, 3]."""

    yaw: torch.Tensor
    faces: torch.Tensor
    barycentrics: torch.Tensor


def view_yaw(view: torch.Tensor) -> torch.Tensor:
    """The camera's yaw seen from the head [B] (radians, + = camera to the head's +x side) for head-frame unit
    view vectors [B, 3] (head -> camera, as `FaceScene.view_vector` and `LightStageData.view_vectors`)."""
    return torch.atan2(view[..., 0], view[..., 2])


def bin_weights(yaw: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """Piecewise-linear interpolation weights [B, Bn] of yaw [B] between bin centres [Bn >= 2] (increasing);
    a yaw beyond the last centre takes that bin alone. Rows sum to 1 and are continuous in the yaw."""
    centres = centres.to(yaw)
    y = yaw.clamp(float(centres[0]), float(centres[-1]))
    upper = torch.searchsorted(centres, y.contiguous(), right=True).clamp(1, len(centres) - 1)
    low, high = centres[upper - 1], centres[upper]
    f = ((y - low) / (high - low))[:, None]
    weights = yaw.new_zeros(yaw.shape[0], len(centres))
    weights.scatter_(1, (upper - 1)[:, None], 1.0 - f)
    return weights.scatter_add(1, upper[:, None], f)
