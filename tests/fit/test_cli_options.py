"""fit/cli.py and fit/adapt_cli.py without running a job: what each command-line argument of `track` and `adapt`
becomes in TrackOptions, the defaults (the fast preset, K = 48, time-varying lighting on), and the choices that
argparse refuses."""

from __future__ import annotations

import argparse

import pytest

from dlatrack_engine.fit import adapt_cli, cli
from dlatrack_engine.fit.pipeline import TrackOptions


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dlatrack")
    commands = parser.add_subparsers(dest="command")
    cli.register(commands)
    adapt_cli.register(commands)
    return parser


def test_defaults_of_track_and_adapt_are_the_options_defaults():
    for command in ("track", "adapt"):
        args = _parser().parse_args([command, "clip.mp4", "--avatar", "A", "--out", "J"])
        assert (args.video, args.avatar, args.out, args.device) == ("clip.mp4", "A", "J", None)
        assert cli.track_options(args) == TrackOptions()
    assert _parser().parse_args(["track", "v", "--avatar", "A", "--out", "J"]).func is cli.run
    assert _parser().parse_args(["adapt", "v", "--avatar", "A", "--out", "J"]).func is adapt_cli.run


def test_every_track_argument_reaches_its_option(tmp_path):
    args = _parser().parse_args([
        "track", "clip", "--avatar", "A", "--out", "J", "--quality", "paper", "-K", "7", "--start", "3",
        "--stop", "40", "--stride", "2", "--lighting", "SH", "--no-adapt", "--scratch-lighting", "--device", "cpu",
        "--detector", "mediapipe", "--landmark-weights", "W", "--default-landmarks", "--focal", "321.5",
        "--static-lighting", "--landmarks-only", "--flow-weight", "1.5", "--no-textures", "--no-overlays",
        "--no-preview", "--lighting-from", str(tmp_path / "room" / ".." / "room"),
    ])
    assert cli.track_options(args) == TrackOptions(
        key_frames=7, quality="paper", start=3, stop=40, stride=2, lighting="SH", adapt=False,
        pretrained_lighting=False, steps="landmarks", detector="mediapipe", landmark_weights_dir="W",
        calibrated_landmarks=False, focal=321.5, flow_weight=1.5, write_textures=False, write_overlays=False,
        write_preview=False, lighting_from=str((tmp_path / "room").resolve()), time_varying_lighting=False)
    assert args.device == "cpu"


def test_adapt_has_no_step_3_arguments_and_takes_the_shared_ones():
    parser = _parser()
    args = parser.parse_args(["adapt", "clip", "--avatar", "A", "--out", "J", "--key-frames", "0", "--detector",
                              "face-alignment", "--lighting", "none"])
    options = cli.track_options(args)
    assert (options.key_frames, options.detector, options.lighting) == (0, "face-alignment", "none")
    assert (options.steps, options.flow_weight, options.write_textures, options.lighting_from) == (
        "full", None, True, None)
    for step3_only in ("--no-preview", "--landmarks-only", "--flow-weight=2"):
        with pytest.raises(SystemExit):
            parser.parse_args(["adapt", "clip", "--avatar", "A", "--out", "J", step3_only])


REQUIRED = ["--avatar", "A", "--out", "J"]


@pytest.mark.parametrize("argv", [
    [*REQUIRED, "--quality", "slow"], [*REQUIRED, "--lighting", "g"], [*REQUIRED, "--detector", "dlib"],
    [*REQUIRED, "-K", "x"], ["--out", "J"], ["--avatar", "A"],
], ids=["quality", "lighting", "detector", "K", "no avatar", "no out"])
def test_refused_arguments(argv):
    with pytest.raises(SystemExit):
        _parser().parse_args(["track", "clip", *argv])


def test_every_choice_is_accepted_as_spelt():
    parser = _parser()
    for flag, values in (("--quality", ("fast", "paper")), ("--lighting", ("G", "SH", "none")),
                         ("--detector", ("auto", "face-alignment", "mediapipe"))):
        for value in values:
            args = parser.parse_args(["track", "clip", "--avatar", "A", "--out", "J", flag, value])
            assert getattr(args, flag[2:]) == value


def test_the_help_names_the_papers_steps():
    parser = _parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert commands.choices["track"].description == cli.__doc__
    assert commands.choices["adapt"].description == adapt_cli.__doc__
    helps = {a.dest: a.help for a in commands._choices_actions}
    assert helps == {"track": "track a video with an avatar (steps 1-3 of the paper)",
                     "adapt": "adapt the lighting to a video once (steps 1-2), to reuse on other takes"}
