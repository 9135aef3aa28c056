"""Issue 19, class 5 through the engine: a package past the limits is `invalid_avatar` naming the field,
where before the engine tried to allocate it (`internal_error`), and the engine keeps serving."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import ModuleType

import pytest
from conftest import Engine


@pytest.mark.parametrize(
    ("section", "field", "value"), [("dam", "mesh_hidden", 10_000_000), ("lighting", "mlp_width", 1 << 30)]
)
def test_a_package_past_the_limits_is_refused_by_the_engine(
    shared_engine: Engine,
    client_mod: ModuleType,
    tiny_avatar: Path,
    tmp_path: Path,
    section: str,
    field: str,
    value: int,
) -> None:
    package = tmp_path / "big"
    shutil.copytree(tiny_avatar, package)
    config = json.loads((package / "avatar.json").read_text())
    config[section][field] = value
    (package / "avatar.json").write_text(json.dumps(config))
    with shared_engine.client(client_mod) as client:
        with pytest.raises(client_mod.EngineError) as info:
            client.load_avatar(package)
        assert info.value.code == "invalid_avatar" and f"'{section}.{field}' is {value}" in info.value.message
        assert client.status()["pid"] == shared_engine.process.pid
