"""Fixtures for the registration tests (helpers live in fit_fixtures.py so tests can import them)."""

from __future__ import annotations

import pytest
from fit_fixtures import FRAMES, gt_params, make_avatar, write_clip

from dlatrack_engine.avatar.runtime import Avatar


@pytest.fixture(scope="session")
def avatar() -> Avatar:
    return make_avatar()


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory, avatar):
    root = tmp_path_factory.mktemp("clip")
    return root, write_clip(root, avatar, gt_params(FRAMES))
