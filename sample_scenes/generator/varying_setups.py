"""Time-varying lighting set-ups (issue 18): the lights of a wild set-up as a function of the frame.

Data only (numpy, no bpy), so the per-frame light parameters can be unit-tested and stored as ground truth
in gt.npz. Each set-up starts from a static room of `wild_setups` (same world, backdrop and performance
seed, so a clip under static light of the same length is the same take) and changes its lights over the
clip's time s = k / (n - 1) in [0, 1]:

    varying_moving_key   the warm key sweeps across the face (left -> right) and turns blue halfway
    varying_switch       the key light is switched off for the middle third of the clip
    varying_colour       the key's colour drifts smoothly from warm to cool
    varying_fade         the key fades to 35 % power with a slow flicker on top

They are opt-in (`dlatrack make-sample --clips varying_...`) and are rendered into `<out>/varying/`, apart
from the static clips of Table 1.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from sample_scenes.generator.wild_setups import LightSpec, WildSetup, setup_by_name

WARM = (1.0, 0.72, 0.45)
COOL = (0.45, 0.65, 1.0)


@dataclass(frozen=True)
class VaryingSetup:
    name: str
    description: str
    base: str  # the static set-up whose room (and performance) it reuses
    animate: Callable[[LightSpec, int, float], LightSpec]  # (light at rest, light index, s) -> light at s


def _mix(a: tuple[float, ...], b: tuple[float, ...], w: float) -> tuple[float, float, float]:
    return tuple(float((1.0 - w) * x + w * y) for x, y in zip(a, b, strict=True))  # type: ignore[return-value]


def _moving_key(light: LightSpec, index: int, s: float) -> LightSpec:
    if index != 0:
        return light
    angle = math.radians(-60.0 + 120.0 * s)  # around the head at 1.1 m, from its left to its right
    position = (1.1 * math.sin(angle), 0.45, 1.1 * math.cos(angle))
    return replace(light, position=position, colour=WARM if s < 0.5 else COOL)


def _switch(light: LightSpec, index: int, s: float) -> LightSpec:
    off = index == 0 and 1.0 / 3.0 <= s < 2.0 / 3.0
    return replace(light, power=0.0 if off else light.power)


def _colour(light: LightSpec, index: int, s: float) -> LightSpec:
    return replace(light, colour=_mix(WARM, COOL, s)) if index == 0 else light


def _fade(light: LightSpec, index: int, s: float) -> LightSpec:
    if index != 0:
        return light
    gain = (1.0 - 0.65 * s) * (1.0 + 0.15 * math.sin(2.0 * math.pi * 3.0 * s))
    return replace(light, power=light.power * gain)


VARYING_SETUPS: tuple[VaryingSetup, ...] = (
    VaryingSetup("varying_moving_key", "warm key sweeping across the face left to right, turning blue halfway",
                 "warm_key_cool_fill", _moving_key),
    VaryingSetup("varying_switch", "warm key switched off for the middle third, cool fill stays on",
                 "warm_key_cool_fill", _switch),
    VaryingSetup("varying_colour", "key colour drifting smoothly from warm to cool", "warm_key_cool_fill", _colour),
    VaryingSetup("varying_fade", "key fading to 35 % power with a slow 3-cycle flicker", "warm_key_cool_fill", _fade),
)
VARYING_NAMES = tuple(v.name for v in VARYING_SETUPS)


def varying_by_name(name: str) -> VaryingSetup:
    for setup in VARYING_SETUPS:
        if setup.name == name:
            return setup
    raise KeyError(f"unknown time-varying lighting setup {name!r}; known: {list(VARYING_NAMES)}")


def base_setup(name: str) -> WildSetup:
    """The static room of a static or varying set-up name."""
    return setup_by_name(varying_by_name(name).base if name in VARYING_NAMES else name)


def lights_per_frame(name: str, frames: int) -> list[list[LightSpec]]:
    """The lights of every frame (a static set-up's are the same at every frame)."""
    room = base_setup(name)
    if name not in VARYING_NAMES:
        return [list(room.lights) for _ in range(frames)]
    animate = varying_by_name(name).animate
    times = np.linspace(0.0, 1.0, frames) if frames > 1 else np.zeros(1)
    return [[animate(light, i, float(s)) for i, light in enumerate(room.lights)] for s in times]


def light_ground_truth(lights: list[list[LightSpec]]) -> dict[str, np.ndarray]:
    """gt.npz fields: light_position [N, L, 3] (scene frame, m), light_power [N, L] (W), light_colour [N, L, 3]."""
    return {
        "light_position": np.array([[light.position for light in frame] for frame in lights], np.float32),
        "light_power": np.array([[light.power for light in frame] for frame in lights], np.float32),
        "light_colour": np.array([[light.colour for light in frame] for frame in lights], np.float32),
        "light_kind": np.array([light.kind for light in lights[0]]),
    }
