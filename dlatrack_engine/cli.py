"""The `dlatrack` command line: one sub-command per job; each lives in its own module.

Sub-command modules expose `register(subparsers)` which adds a parser whose `func(args) -> int` runs it.
The CLI and the server call the same library functions.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

# name -> module implementing it (imported lazily so `dlatrack --help` stays fast).
SUBCOMMANDS: dict[str, str] = {
    "serve": "dlatrack_engine.server.cli",
    "train": "dlatrack_engine.train.cli",
    "make-sample": "dlatrack_engine.sample.make_sample",
    "track": "dlatrack_engine.fit.cli",
    "batch": "dlatrack_engine.batch.cli",
    "adapt": "dlatrack_engine.fit.adapt_cli",
    "eval": "dlatrack_engine.metrics.cli",
    "demo": "dlatrack_engine.demo",
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; with `only`, just that sub-command's module is imported (a command never pays for the
    others' imports), otherwise all of them (for `--help` and error messages)."""
    parser = argparse.ArgumentParser(prog="dlatrack", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = parser.add_subparsers(dest="command", required=True)
    names = [only] if only in SUBCOMMANDS else list(SUBCOMMANDS)
    for name in names:
        importlib.import_module(SUBCOMMANDS[name]).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    chosen = next((arg for arg in argv if not arg.startswith("-")), None)
    parser = build_parser(chosen)
    args = parser.parse_args(argv)
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
