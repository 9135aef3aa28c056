"""A Cycles render of the written scene shows the relit texture sequence, frame by frame."""

from __future__ import annotations

from pathlib import Path

import addon_synthetic as synthetic
import numpy as np
import pytest
from blender_data import SCRIPTS
from blender_runner import run_in_blender

from dlatrack_engine.wire.png import decode_png

pytestmark = pytest.mark.blender


def near(image: np.ndarray, colour: np.ndarray, tolerance: int = 3) -> np.ndarray:
    return np.all(np.abs(image[..., :3].astype(int) - colour.astype(int)) <= tolerance, axis=-1) & (
        image[..., 3] == 255
    )


def test_cycles_render_follows_texture_sequence_and_relit_switch(synthetic_job: dict[str, str]) -> None:
    paths = run_in_blender(SCRIPTS / "check_render.py", synthetic_job, timeout=240)
    relit_1, relit_2, full_1 = (decode_png(Path(paths[k]).read_bytes()) for k in ("relit_1", "relit_2", "full_1"))
    assert relit_1.shape == (64, 48, 4)
    # Frames 1 and 2 share geometry (synthetic.frame_pose), so the silhouettes match exactly.
    np.testing.assert_array_equal(relit_1[..., 3] > 0, relit_2[..., 3] > 0)
    grey = near(relit_1, synthetic.GREY)
    right = near(relit_1, synthetic.texture_colour(0, relit=True))
    assert grey.sum() > 30 and right.sum() > 30, "the avatar must show both texture halves"
    # Where the texture is the same (left half, grey) the frames agree; where it differs they differ.
    assert near(relit_2, synthetic.GREY)[grey].all()
    assert near(relit_2, synthetic.texture_colour(1, relit=True))[right].all()
    # The switch shows the fully-lit texture of the same frame.
    assert near(full_1, synthetic.texture_colour(0, relit=False))[right].all()
    assert near(full_1, synthetic.GREY)[grey].all()
