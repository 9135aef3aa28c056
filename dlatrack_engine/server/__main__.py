"""`python -m dlatrack_engine.server [-v] [serve options]`: start the engine (see `dlatrack serve --help`)."""

from dlatrack_engine.server.cli import main

raise SystemExit(main())
