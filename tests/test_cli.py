"""The `dlatrack` command line: every sub-command is reachable, and a command imports only its own module."""

from __future__ import annotations

import subprocess
import sys

from dlatrack_engine.cli import SUBCOMMANDS


def test_help_lists_every_subcommand() -> None:
    result = subprocess.run([sys.executable, "-m", "dlatrack_engine", "--help"], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stderr
    for name in SUBCOMMANDS:
        assert name in result.stdout


def test_serve_does_not_pay_for_torch() -> None:
    """The engine server starts light; torch loads when an avatar or a job needs it."""
    probe = ("import sys\nfrom dlatrack_engine.cli import main\ntry:\n    main(['serve', '--help'])\n"
             "except SystemExit:\n    pass\nprint('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "False"


def test_unknown_subcommand_is_an_error_naming_the_choices() -> None:
    result = subprocess.run([sys.executable, "-m", "dlatrack_engine", "nosuch"], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 2
    assert "invalid choice: 'nosuch'" in result.stderr and "track" in result.stderr


def test_adapt_and_track_share_the_request_arguments_and_track_reuses_a_lighting(tmp_path) -> None:
    from dlatrack_engine.cli import build_parser
    from dlatrack_engine.fit.cli import track_options

    adapt = build_parser("adapt").parse_args(["adapt", "take1.mp4", "--avatar", "a", "--out", "room", "-K", "12"])
    options = track_options(adapt)
    assert options.key_frames == 12 and options.lighting_from is None and options.steps == "full"
    track = build_parser("track").parse_args(
        ["track", "take2.mp4", "--avatar", "a", "--out", "t2", "--lighting-from", str(tmp_path / "room")]
    )
    assert track_options(track).lighting_from == str(tmp_path / "room")
