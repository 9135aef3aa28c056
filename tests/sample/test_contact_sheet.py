"""The contact sheet of a make-sample folder that holds only time-varying clips (`--skip-lightstage --clips
varying_...`): those clips are drawn, where the sheet used to fail after every clip had been rendered."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from dlatrack_engine.sample.contact_sheet import TILE, make_contact_sheet


def _clip(folder, name: str, level: int) -> None:
    (folder / "frames").mkdir(parents=True)
    for i in range(3):
        cv2.imwrite(str(folder / "frames" / f"{i:06d}.png"), np.full((32, 32, 3), level + 40 * i, np.uint8))
    (folder / "clip.json").write_text(json.dumps({"name": name}))


def test_time_varying_clips_are_drawn(tmp_path):
    _clip(tmp_path / "varying" / "varying_switch", "varying_switch", 20)
    _clip(tmp_path / "clips" / "sun_sky", "sun_sky", 100)
    sheet = cv2.imread(str(make_contact_sheet(tmp_path, tmp_path / "sheet.png")))
    assert sheet.shape == (TILE, 2 * TILE, 3)  # one row: the static clip, then the varying one
    # each tile is its clip's middle frame (level + 40), the label aside
    assert np.median(sheet[:, :TILE]) == 140 and np.median(sheet[:, TILE:]) == 60


def test_an_empty_folder_is_refused_naming_what_was_looked_for(tmp_path):
    with pytest.raises(FileNotFoundError, match="varying/\\*/frames"):
        make_contact_sheet(tmp_path, tmp_path / "sheet.png")
