"""`--experiment NAME=VALUE`: the experiments of G's training, by name, and what each one changes.

Three kinds, all measured on the sample light stage and none used by the shipped avatar (bench/RESULTS.md):
extra loss terms (through the `LossTerm` hook), settings of G that differ from the preset, and a training
setting turned away from the shipped value. The parsed settings are stored in the package's provenance and
in the checkpoint's configuration, so a run is reproducible and never resumes another run's checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from dlatrack_engine.models.lighting import GAIN_ACTIVATIONS
from dlatrack_engine.train.experiments.hook import LossTerm


def _terms() -> dict[str, Callable[[float], LossTerm]]:
    # Imported on use: the loss terms pull in the trainer, which the CLI's parser does not need.
    from dlatrack_engine.train.experiments.bias_penalty import BiasPenaltyTerm
    from dlatrack_engine.train.experiments.shading_ratio import ShadingRatioTerm
    from dlatrack_engine.train.experiments.superposition import SuperpositionTerm

    return {"superposition": SuperpositionTerm, "shading_ratio": ShadingRatioTerm, "bias_penalty": BiasPenaltyTerm}


def _boolean(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def _activation(text: str) -> str:
    if text not in GAIN_ACTIVATIONS:
        raise ValueError(f"expected one of {', '.join(GAIN_ACTIVATIONS)}")
    return text


# name -> (where it goes, value parser, help). "term": a loss term weighted by the value; "lighting": a field
# of LightingConfig (G is then built from the preset's sizes); "train": a field of LightingTrainConfig.
EXPERIMENTS: dict[str, tuple[str, Callable[[str], Any], str]] = {
    "superposition": ("term", float, "weight of G's linearity in l (experiments/superposition.py)"),
    "shading_ratio": ("term", float, "warm-up: gain vs the same-pose shading ratio (experiments/shading_ratio.py)"),
    "bias_penalty": ("term", float, "L1 penalty on G's bias map (experiments/bias_penalty.py)"),
    "gain_activation": ("lighting", _activation, "G's gain activation: softplus (shipped) or abs"),
    "energy_normalised": ("lighting", _boolean, "false: a G that sees raw light codes (models/lighting.py)"),
    "pattern_mix": ("train", float, "chance of mixing in each same-pose pattern (shipped 0.5; 0 = off)"),
}


@dataclass
class Experiments:
    """The parsed `--experiment` values; empty for the shipped training."""

    settings: dict[str, Any] = field(default_factory=dict)

    def _of(self, kind: str) -> dict[str, Any]:
        return {name: value for name, value in self.settings.items() if EXPERIMENTS[name][0] == kind}

    @property
    def terms(self) -> list[LossTerm]:
        makers = _terms()
        return [makers[name](weight) for name, weight in self._of("term").items() if weight != 0]

    @property
    def lighting_overrides(self) -> dict[str, Any]:
        return self._of("lighting")

    @property
    def train_overrides(self) -> dict[str, Any]:
        return self._of("train")


def parse_experiments(values: Sequence[str] | None) -> Experiments:
    """`["superposition=0.2", ...]` -> Experiments; a wrong name or value raises naming it and what is expected."""
    settings: dict[str, Any] = {}
    for value in values or ():
        name, sep, text = value.partition("=")
        if not sep or name not in EXPERIMENTS:
            raise ValueError(f"--experiment {value!r}: expected NAME=VALUE with NAME one of {', '.join(EXPERIMENTS)}")
        try:
            settings[name] = EXPERIMENTS[name][1](text)
        except ValueError as error:
            raise ValueError(f"--experiment {value!r}: {error}") from None
    return Experiments(settings)


def experiments_help() -> str:
    return "; ".join(f"{name}: {help_text}" for name, (_, _, help_text) in EXPERIMENTS.items())
