"""Import `blender_addon/io` in plain Python (no bpy) as the package `dlatrack_addon_io`.

The add-on's package `__init__` registers Blender classes, so tests load only its bpy-free `io`
sub-package, exactly the code Blender runs (the `wire` symlink included)."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

IO_DIR = Path(__file__).resolve().parents[2] / "blender_addon" / "io"
PACKAGE = "dlatrack_addon_io"


def load(module: str) -> ModuleType:
    """`load("client")` -> the module blender_addon/io/client.py, imported with relative imports working."""
    if PACKAGE not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            PACKAGE, IO_DIR / "__init__.py", submodule_search_locations=[str(IO_DIR)]
        )
        assert spec is not None and spec.loader is not None
        package = importlib.util.module_from_spec(spec)
        sys.modules[PACKAGE] = package
        spec.loader.exec_module(package)
    return importlib.import_module(f"{PACKAGE}.{module}")
