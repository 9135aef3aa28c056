"""Load: 8 concurrent clients issuing status / decode_view for a few seconds, no errors (bench: 30 s)."""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from types import ModuleType

from conftest import Engine

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench.bench_server import run_load


def test_eight_clients_status_and_decode_view_without_errors(
    shared_engine: Engine, client_mod: ModuleType, tiny_avatar: Path
) -> None:
    with shared_engine.client(client_mod) as client:
        avatar_id = client.load_avatar(tiny_avatar)
    result = run_load(shared_engine.connection_file, avatar_id, latent_size=4, clients=8, seconds=3.0)
    assert result.errors == []
    assert result.count("status") > 8 and result.count("decode_view") > 8
    assert math.isfinite(result.percentile_ms("decode_view", 99))
    with shared_engine.client(client_mod) as client:  # all eight load clients are cleaned up (asynchronously)
        deadline = time.monotonic() + 10
        while client.status()["connections"] > 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.status()["connections"] == 1
