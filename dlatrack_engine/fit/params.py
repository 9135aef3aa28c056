"""Per-frame registration parameters p = [r, t, z] in the optimiser's scaled units (schedule.py).

Keeping the scaling in one place means every step optimises the same leaf tensors and converts to metres
/ radians through `pose()`, and the job folder always receives physical units.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dlatrack_engine.geometry import axis_angle_to_matrix


@dataclass
class FrameParams:
    """r [B, 3] radians (axis-angle, head -> camera), t [B, 3] metres, z [B, Z] expression code."""

    r: torch.Tensor
    t: torch.Tensor
    z: torch.Tensor

    def __len__(self) -> int:
        return int(self.r.shape[0])

    def detach(self) -> FrameParams:
        return FrameParams(self.r.detach().clone(), self.t.detach().clone(), self.z.detach().clone())

    def select(self, index: torch.Tensor | list[int]) -> FrameParams:
        index = torch.as_tensor(index, dtype=torch.long, device=self.r.device)
        return FrameParams(self.r[index], self.t[index], self.z[index])

    def assign(self, index: torch.Tensor | list[int], other: FrameParams) -> None:
        """Write `other`'s values into rows `index` (no grad)."""
        index = torch.as_tensor(index, dtype=torch.long, device=self.r.device)
        with torch.no_grad():
            self.r[index] = other.r.detach()
            self.t[index] = other.t.detach()
            self.z[index] = other.z.detach()

    def rotation(self) -> torch.Tensor:
        return axis_angle_to_matrix(self.r)


class ScaledParams(torch.nn.Module):
    """Leaf tensors in optimiser units: r / rotation_unit, t / translation_unit, z as is.

    With `depth_unit` > 0 each frame also gets a log-depth leaf d: t = t_leaf exp(d · depth_unit) moves the
    head along its own viewing ray, the direction a monocular image constrains least and step 1's landmarks
    get most wrong, at a step proportional to the distance instead of the lateral millimetres of t.
    """

    def __init__(self, params: FrameParams, rotation_unit: float, translation_unit: float,
                 optimise_z: bool = True, depth_unit: float = 0.0) -> None:
        super().__init__()
        self.rotation_unit, self.translation_unit, self.depth_unit = rotation_unit, translation_unit, depth_unit
        self.r = torch.nn.Parameter(params.r.detach() / rotation_unit)
        self.t = torch.nn.Parameter(params.t.detach() / translation_unit)
        self.z = torch.nn.Parameter(params.z.detach().clone(), requires_grad=optimise_z)
        self.depth = torch.nn.Parameter(params.t.new_zeros(len(params), 1)) if depth_unit > 0 else None

    def params(self) -> FrameParams:
        t = self.t * self.translation_unit
        if self.depth is not None:
            t = t * torch.exp(self.depth * self.depth_unit)
        return FrameParams(self.r * self.rotation_unit, t, self.z)
