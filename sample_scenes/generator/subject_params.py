"""Who the sample subject is: face proportions and colouring drawn from a subject seed (numpy only).

Subject seed 0 is the reference face the generator was authored on (the committed `sample_scenes/subject/`
files and the shipped avatar); its parameters are the dataclass defaults, and every formula that uses them
reduces exactly to the authored one (ratios of equal numbers are 1.0, differences of equal numbers 0.0), so
seed 0 reproduces those files bit for bit. Any other seed draws a different person from plausible ranges:
another head, eyes, nose, mouth, chin, skin tone, freckles and hair colour. Lengths are centimetres in the
front-projected face coordinates of `face_shape`; colours are sRGB in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np

# Ranges of the drawn shape parameters (seed 0's values lie inside them).
RANGES: dict[str, tuple[float, float]] = {
    "head_a": (7.3, 8.3),  # half width of the head
    "head_b": (10.9, 12.3),  # half height
    "head_c": (9.3, 10.3),  # half depth to the front
    "jaw_narrowing": (0.08, 0.24),
    "eye_x": (2.9, 3.35),  # eye centre's distance from the midline
    "eye_y": (0.2, 0.8),
    "eye_scale": (0.9, 1.1),
    "nose_length": (0.92, 1.1),
    "nose_width": (0.85, 1.3),
    "nose_projection": (0.8, 1.25),
    "mouth_y": (-7.4, -6.3),
    "mouth_width": (0.88, 1.15),
    "lip_fullness": (0.8, 1.3),
    "chin": (0.6, 1.5),
    "cheekbones": (0.5, 1.6),
    "brow": (0.6, 1.6),
    "redness": (0.3, 1.6),
    "freckles": (0.0, 0.012),
}
# Skin tones along a melanin-like axis (sRGB), light to dark, and lip colours that go with them.
SKIN_PALETTE = np.array([[0.89, 0.72, 0.62], [0.80, 0.61, 0.50], [0.66, 0.46, 0.34], [0.45, 0.30, 0.21],
                         [0.30, 0.19, 0.13]])  # fmt: skip
LIP_PALETTE = np.array([[0.76, 0.44, 0.44], [0.70, 0.36, 0.36], [0.58, 0.30, 0.28], [0.42, 0.22, 0.21],
                        [0.30, 0.15, 0.14]])  # fmt: skip
HAIR_COLOURS = np.array(
    [[0.05, 0.04, 0.035], [0.16, 0.10, 0.07], [0.33, 0.21, 0.13], [0.45, 0.20, 0.09], [0.62, 0.50, 0.32]]
)  # fmt: skip  black, dark brown, brown, auburn, blond
NOSE_GAP = 0.6  # cm kept at least between the nose's lowest point and the top of the upper lip


@dataclass(frozen=True)
class SubjectParams:
    """One subject; the defaults are subject seed 0 (the reference face)."""

    subject_seed: int = 0
    head_a: float = 7.8
    head_b: float = 11.6
    head_c: float = 9.8
    jaw_narrowing: float = 0.16  # the lower face is this much narrower than the cranium
    eye_x: float = 3.1
    eye_y: float = 0.5
    eye_scale: float = 1.0  # eye opening, lids and eyeballs
    nose_length: float = 1.0  # vertical scale of the nose profile
    nose_width: float = 1.0
    nose_projection: float = 1.0
    mouth_y: float = -6.8  # where the lips meet
    mouth_width: float = 1.0
    lip_fullness: float = 1.0  # lip height and relief
    chin: float = 1.0  # chin relief
    cheekbones: float = 1.0
    brow: float = 1.0  # brow-ridge relief
    skin_srgb: tuple[float, float, float] = (0.80, 0.61, 0.50)
    lip_srgb: tuple[float, float, float] = (0.70, 0.36, 0.36)
    redness: float = 1.0  # cheek and nose redness, relative to the reference
    freckles: float = 0.004  # freckle seeds per texel at the centre of the face
    hair_srgb: tuple[float, float, float] = (0.16, 0.10, 0.07)  # brows, lashes, hairline and scalp hair

    @classmethod
    def from_seed(cls, subject_seed: int) -> SubjectParams:
        """Subject seed 0: the reference face; any other seed: a face drawn from `RANGES` and the palettes."""
        if subject_seed == 0:
            return cls()
        rng = np.random.default_rng([int(subject_seed), 0x5EED])
        drawn = {name: float(rng.uniform(lo, hi)) for name, (lo, hi) in RANGES.items()}
        melanin = float(rng.uniform(0.0, 1.0))
        skin = _palette(SKIN_PALETTE, melanin) + rng.uniform(-0.02, 0.02, 3)
        lips = _palette(LIP_PALETTE, melanin)
        hair_weights = np.array([0.2 + melanin, 0.3, 0.25, 0.15 * (1 - melanin), 0.2 * (1 - melanin)])
        hair = HAIR_COLOURS[rng.choice(len(HAIR_COLOURS), p=hair_weights / hair_weights.sum())]
        drawn["freckles"] *= (1.0 - melanin) ** 2  # freckles show on light skin
        params = cls(subject_seed=int(subject_seed), skin_srgb=_rgb(skin), lip_srgb=_rgb(lips), hair_srgb=_rgb(hair),
                     **drawn)  # fmt: skip
        # Keep the upper lip below the nose: raise the nose gap by lowering the mouth if needed.
        return replace(params, mouth_y=min(params.mouth_y, params.nose_bottom_y - NOSE_GAP - params.upper_lip_height))

    # Ratios and shifts against the reference: exactly 1.0 / 0.0 for seed 0.
    @property
    def width_ratio(self) -> float:
        return self.head_a / REFERENCE_HEAD[0]

    @property
    def height_ratio(self) -> float:
        return self.head_b / REFERENCE_HEAD[1]

    @property
    def depth_ratio(self) -> float:
        return self.head_c / REFERENCE_HEAD[2]

    @property
    def eye_spread(self) -> float:
        return self.eye_x / REFERENCE_EYE[0]

    @property
    def eye_dy(self) -> float:
        return self.eye_y - REFERENCE_EYE[1]

    @property
    def nose_bottom_y(self) -> float:
        return -4.9 * self.nose_length

    @property
    def upper_lip_height(self) -> float:
        """Height (cm) of the upper lip's top above the mouth line."""
        return (-5.85 - REFERENCE_MOUTH_Y) * self.lip_fullness

    def lip_y(self, y0: float | np.ndarray) -> float | np.ndarray:
        """Where a lip feature authored at height `y0` on the reference face lies on this one."""
        return y0 + (y0 - REFERENCE_MOUTH_Y) * (self.lip_fullness - 1.0) + (self.mouth_y - REFERENCE_MOUTH_Y)

    def lower_face_y(self, y0: float | np.ndarray) -> float | np.ndarray:
        """Where a feature below the lips (sulcus, chin) authored at `y0` lies: it follows the mouth, and the
        distance to the mouth scales with the head height."""
        return y0 + (y0 - REFERENCE_MOUTH_Y) * (self.height_ratio - 1.0) + (self.mouth_y - REFERENCE_MOUTH_Y)

    def describe(self) -> dict:
        """The parameters as plain JSON-able values (for provenance records)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


REFERENCE_HEAD = (7.8, 11.6, 9.8)
REFERENCE_EYE = (3.1, 0.5)
REFERENCE_MOUTH_Y = -6.8


def _palette(palette: np.ndarray, t: float) -> np.ndarray:
    """Piecewise-linear colour along a palette for t in [0, 1]."""
    pos = np.linspace(0.0, 1.0, len(palette))
    return np.array([np.interp(t, pos, palette[:, c]) for c in range(3)])


def _rgb(colour: np.ndarray) -> tuple[float, float, float]:
    c = np.clip(colour, 0.0, 1.0)
    return (float(c[0]), float(c[1]), float(c[2]))
