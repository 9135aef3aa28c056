"""`python -m dlatrack_engine` is the same as the `dlatrack` console script."""

from dlatrack_engine.cli import main

raise SystemExit(main())
