"""DLATRACK_REQUIRE_GPU=1 (tests/conftest.py) turns a skipped `gpu` test into a failure, and nothing else.

Checked in a pytest subprocess, once on a synthetic module run under the same hook (a skipif-marked GPU test,
a GPU test that skips in its body, a GPU test that passes, a skipped non-GPU test) and once on the real GPU
test files, which must skip cleanly without the variable. Skipped on a machine with CUDA, where the real GPU
tests run instead of skipping.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import torch

TESTS = Path(__file__).resolve().parents[1]
REAL_GPU_TESTS = ["tests/render/test_gpu_parity.py", "tests/fit/test_gpu.py"]

CONFTEST = f'''
import importlib.util

spec = importlib.util.spec_from_file_location("dlatrack_tests_conftest", {str(TESTS / "conftest.py")!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
pytest_runtest_makereport = module.pytest_runtest_makereport


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs CUDA")
'''

SYNTHETIC = '''
import pytest


@pytest.mark.gpu
@pytest.mark.skipif(True, reason="no CUDA here")
def test_gpu_marked_skipif():
    pass


@pytest.mark.gpu
def test_gpu_skips_in_its_body():
    pytest.skip("nvdiffrast did not import")


@pytest.mark.gpu
def test_gpu_that_runs():
    pass


@pytest.mark.skipif(True, reason="not a GPU test")
def test_plain_skip():
    pass
'''

pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA present: the GPU tests run for real")


def _outcomes(args: list[str], cwd: Path, junit: Path, require: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DLATRACK_REQUIRE_GPU"}
    if require:
        env["DLATRACK_REQUIRE_GPU"] = "1"
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}",
                          *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    outcomes = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        kinds = [child.tag for child in case if child.tag in ("skipped", "failure", "error")]
        message = "".join(child.get("message", "") + (child.text or "") for child in case)
        outcomes[case.get("name")] = (kinds[0] if kinds else "passed", message)
    assert run.returncode == (1 if any(kind in ("failure", "error") for kind, _ in outcomes.values()) else 0), \
        run.stdout + run.stderr
    return outcomes


def test_require_gpu_fails_skipped_gpu_tests_only(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_synthetic.py").write_text(SYNTHETIC)
    args = ["test_synthetic.py", "--rootdir", str(tmp_path)]
    plain = _outcomes(args, tmp_path, tmp_path / "plain.xml", require=False)
    assert {name: kind for name, (kind, _) in plain.items()} == {
        "test_gpu_marked_skipif": "skipped", "test_gpu_skips_in_its_body": "skipped",
        "test_gpu_that_runs": "passed", "test_plain_skip": "skipped"}
    required = _outcomes(args, tmp_path, tmp_path / "required.xml", require=True)
    kinds = {name: kind for name, (kind, _) in required.items()}
    assert kinds["test_gpu_marked_skipif"] in ("failure", "error")  # a skipif fails at set-up: an error
    assert kinds["test_gpu_skips_in_its_body"] == "failure"
    assert kinds["test_gpu_that_runs"] == "passed" and kinds["test_plain_skip"] == "skipped"
    for name in ("test_gpu_marked_skipif", "test_gpu_skips_in_its_body"):
        message = required[name][1]
        assert "DLATRACK_REQUIRE_GPU=1" in message and "torch.cuda.is_available() = False" in message
        assert "import nvdiffrast.torch" in message  # the import error nvdiffrast_available() hides


def test_the_real_gpu_tests_skip_cleanly_and_fail_when_required(tmp_path: Path) -> None:
    repo = TESTS.parent
    plain = _outcomes(REAL_GPU_TESTS, repo, tmp_path / "plain.xml", require=False)
    required = _outcomes(REAL_GPU_TESTS, repo, tmp_path / "required.xml", require=True)
    assert len(plain) >= 4 and set(plain) == set(required)  # parity x 3 (gradients plain / antialiased), pipeline
    assert all(kind == "skipped" for kind, _ in plain.values()), plain
    assert all(kind in ("failure", "error") for kind, _ in required.values()), required
