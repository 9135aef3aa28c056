"""The client as Blender runs it: Blender's Python (the bpy venv: numpy 1.26, no torch) against the engine."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from types import ModuleType

import pytest
from conftest import Engine

REPO = Path(__file__).resolve().parents[2]
BLENDER_PYTHON = REPO / ".venv-blender" / "bin" / "python"

SCRIPT = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
import addon_io
client_mod = addon_io.load("client")
assert "torch" not in sys.modules
import numpy
with client_mod.EngineClient.from_connection_file(sys.argv[2]) as client:
    avatar_id = client.load_avatar(sys.argv[3])
    topology = client.avatar_topology(avatar_id)
    views = client.decode_view(avatar_id, view=[0, 0, 1], codes={"z": numpy.zeros((2, 4), numpy.float32)},
                               returns="array")
    print(json.dumps({"numpy": numpy.__version__, "device": client.hello()["device"],
                      "faces": list(topology["faces"].shape), "faces_dtype": str(topology["faces"].dtype),
                      "texture": list(views["full"][1].shape), "torch_loaded": "torch" in sys.modules}))
"""


@pytest.mark.skipif(not BLENDER_PYTHON.exists(), reason="no .venv-blender (run install.py)")
def test_client_runs_in_blenders_python(shared_engine: Engine, client_mod: ModuleType, tiny_avatar: Path) -> None:
    result = subprocess.run(
        [
            str(BLENDER_PYTHON),
            "-c",
            SCRIPT,
            str(Path(__file__).parent),
            str(shared_engine.connection_file),
            str(tiny_avatar),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    facts = json.loads(result.stdout.strip().splitlines()[-1])
    assert facts["numpy"].startswith("1.") and facts["torch_loaded"] is False and facts["device"] == "cpu"
    assert facts["faces"] == [50, 3] and facts["faces_dtype"] == "int32" and facts["texture"] == [16, 16, 3]
