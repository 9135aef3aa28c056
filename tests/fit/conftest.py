"""Fixtures for the registration tests (helpers live in fit_fixtures.py so tests can import them)."""

from __future__ import annotations

import copy

import pytest
import torch
from fit_fixtures import FRAMES, MICRO, gt_params, make_avatar, write_clip

from dlatrack_engine.avatar.runtime import Avatar
from dlatrack_engine.fit.schedule import Schedule
from dlatrack_engine.fit.track_options import TrackOptions


@pytest.fixture(scope="session")
def avatar() -> Avatar:
    return make_avatar()


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory, avatar):
    root = tmp_path_factory.mktemp("clip")
    return root, write_clip(root, avatar, gt_params(FRAMES))


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread for a module of tiny tensors: as fast on an idle machine, and on a loaded one two
    threads waiting for each other made such a module 20x slower (measured: 7 min of CPU against 13 s)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def micro_schedule(monkeypatch):
    """Every job schedules fit_fixtures.MICRO with its own K: the real pipeline in a fraction of a second, for
    tests of bookkeeping and decisions (test_pipeline.py checks accuracy)."""
    def schedule(self) -> Schedule:
        s = copy.deepcopy(MICRO)
        s.step2.key_frames = self.key_frames
        return s

    monkeypatch.setattr(TrackOptions, "schedule", schedule)
