"""The five in-the-wild lighting setups, none of which is a light-stage pattern (numpy only, data not bpy).

Positions are in the scene frame (metres, +Y up, subject at the origin facing +Z). Powers are Blender
watts (sun: W/m^2), tuned so the face is exposed like a phone would expose it.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class LightSpec:
    kind: str  # POINT | AREA | SUN | SPOT
    position: tuple[float, float, float]
    power: float
    colour: tuple[float, float, float] = (1.0, 1.0, 1.0)
    radius: float = 0.05
    size: float = 0.3
    angle: float = 0.01


@dataclass
class WildSetup:
    name: str
    description: str
    lights: list[LightSpec]
    world_colour: tuple[float, float, float]
    world_strength: float
    backdrop_colour: tuple[float, float, float]  # linear RGB the camera sees behind the subject
    shirt_colour: tuple[float, float, float] = (0.05, 0.08, 0.15)
    extra: dict = field(default_factory=dict)


SETUPS: tuple[WildSetup, ...] = (
    WildSetup(
        "sun_sky",
        "outdoors: low sun from the upper right with hard cast shadows, blue sky fill",
        [LightSpec("SUN", (1.6, 1.8, 1.1), 7.0, (1.0, 0.93, 0.82), angle=0.01)],
        world_colour=(0.35, 0.55, 0.95),
        world_strength=0.12,
        backdrop_colour=(0.30, 0.38, 0.22),
    ),
    WildSetup(
        "warm_key_cool_fill",
        "indoors: warm soft key from the front left, cool fill from the right",
        [
            LightSpec("AREA", (-0.8, 0.45, 0.9), 45.0, (1.0, 0.72, 0.45), size=0.5),
            LightSpec("AREA", (1.0, 0.05, 0.7), 22.0, (0.55, 0.7, 1.0), size=0.8),
        ],
        world_colour=(0.5, 0.5, 0.5),
        world_strength=0.02,
        backdrop_colour=(0.22, 0.18, 0.13),
    ),
    WildSetup(
        "coloured",
        "party: saturated red from the left, blue from the right, green from below",
        [
            LightSpec("POINT", (-0.9, 0.25, 0.5), 60.0, (1.0, 0.05, 0.08), radius=0.08),
            LightSpec("POINT", (0.9, 0.1, 0.5), 60.0, (0.1, 0.2, 1.0), radius=0.08),
            LightSpec("POINT", (0.0, -0.8, 0.7), 30.0, (0.1, 1.0, 0.2), radius=0.08),
        ],
        world_colour=(0.2, 0.1, 0.3),
        world_strength=0.02,
        backdrop_colour=(0.03, 0.02, 0.05),
    ),
    WildSetup(
        "dim_side_lamp",
        "evening: one dim lamp far to the subject's left, almost nothing else",
        [LightSpec("POINT", (1.1, 0.35, 0.15), 30.0, (1.0, 0.8, 0.55), radius=0.06)],
        world_colour=(0.3, 0.3, 0.35),
        world_strength=0.004,
        backdrop_colour=(0.035, 0.03, 0.025),
    ),
    WildSetup(
        "screen_dark_room",
        "night: a face lit by a laptop screen below the camera, dark room",
        [LightSpec("AREA", (0.0, -0.18, 0.45), 3.0, (0.75, 0.85, 1.0), size=0.33)],
        world_colour=(0.2, 0.2, 0.3),
        world_strength=0.002,
        backdrop_colour=(0.008, 0.008, 0.012),
    ),
)


def setup_by_name(name: str) -> WildSetup:
    for setup in SETUPS:
        if setup.name == name:
            return setup
    raise KeyError(f"unknown wild lighting setup {name!r}; known: {[s.name for s in SETUPS]}")
