"""render.backend: which backend a device gets, that instances are shared per (backend, device), what is
logged, and the errors for unknown or impossible choices. Runs on a fresh registry, so nothing another test
created earlier can answer in place of the code under test."""

from __future__ import annotations

import logging

import pytest
import torch

from dlatrack_engine.render import backend
from dlatrack_engine.render.backend import ENV_VAR, get_backend, nvdiffrast_available
from dlatrack_engine.render.torch_backend import TorchBackend

pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU choices; tests/render/test_gpu_parity.py "
                                                                    "covers CUDA")


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> dict:
    fresh: dict = {}
    monkeypatch.setattr(backend, "_BACKENDS", fresh)
    monkeypatch.delenv(ENV_VAR, raising=False)
    return fresh


def test_cpu_gets_one_shared_torch_backend(registry: dict, monkeypatch: pytest.MonkeyPatch,
                                           caplog: pytest.LogCaptureFixture) -> None:
    assert not nvdiffrast_available()  # no CUDA: nvdiffrast cannot run
    with caplog.at_level(logging.INFO, logger=backend.__name__):
        auto = get_backend("cpu")
    assert isinstance(auto, TorchBackend) and auto.device == torch.device("cpu")
    assert caplog.messages == ["render backend: torch on cpu"]
    assert get_backend(torch.device("cpu"), "torch") is auto  # "auto" resolved to the same instance
    monkeypatch.setenv(ENV_VAR, "torch")
    assert get_backend("cpu") is auto
    meta = get_backend("meta")  # another device gets its own instance
    assert isinstance(meta, TorchBackend) and meta.device == torch.device("meta") and meta is not auto
    assert list(registry) == [("torch", "cpu"), ("torch", "meta")]


def test_unknown_or_impossible_backends_say_where_the_choice_came_from(registry: dict,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    expected = "expected one of torch, nvdiffrast or 'auto'"
    with pytest.raises(ValueError, match=rf"^render backend 'opengl' \(from argument\) is unknown; {expected}$"):
        get_backend("cpu", "opengl")
    monkeypatch.setenv(ENV_VAR, "vulkan")
    with pytest.raises(ValueError, match=rf"^render backend 'vulkan' \(from {ENV_VAR}\) is unknown; {expected}$"):
        get_backend("cpu")
    with pytest.raises(RuntimeError, match=r"^render backend 'nvdiffrast' needs a CUDA device, but device is 'cpu'$"):
        get_backend("cpu", "nvdiffrast")
    assert registry == {}


def test_torch_backend_defaults_to_the_cpu() -> None:
    plain = TorchBackend()
    assert plain.device == torch.device("cpu") and plain.chunk_pairs == 1 << 18
    assert repr(plain) == "TorchBackend(device=cpu)"
