"""Shared fixtures: the generator's numpy modules are imported from the repository root, as Blender does."""

from __future__ import annotations

import sys

import pytest

from dlatrack_engine import paths

if str(paths.REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(paths.REPO_ROOT))


@pytest.fixture(scope="session")
def face_mesh():
    from sample_scenes.generator.face_model import build_face_mesh

    return build_face_mesh()


@pytest.fixture(scope="session")
def expression_model(face_mesh):
    from sample_scenes.generator.expressions import build_expression_model

    return build_expression_model(face_mesh)
