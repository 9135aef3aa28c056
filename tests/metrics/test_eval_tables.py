"""The evaluation's small pure parts (issue 26): the table `dlatrack eval` prints, the CSIM face box, the
oracle's columns, the schedule a manifest describes and the ceiling's cache file."""

from __future__ import annotations

import dataclasses
import json
import logging
import re

import numpy as np
import pytest

from dlatrack_engine.fit.schedule import Schedule
from dlatrack_engine.metrics.cli import COLUMNS, format_table
from dlatrack_engine.metrics.identity import landmark_box
from dlatrack_engine.metrics.oracle import (
    ORACLE_FILE,
    Oracle,
    _lighting_options,
    _read_cache,
    job_schedule,
    oracle_columns,
    schedule_from_dict,
)
from dlatrack_engine.wire.jobfolder import JobFolder
from dlatrack_engine.wire.manifest import Manifest


def test_the_table_has_the_columns_some_row_has_in_the_papers_order():
    rows = [("ours", {"psnr": 29.456, "l2": 1.234, "depth_bias_mm": -0.5, "ignored": 7.0}),
            ("base", {"l2": 2.0, "csim": 0.91234})]
    assert format_table(rows).split("\n") == [
        "| method | L2 ↓ | PSNR ↑ | CSIM ↑ | depth bias mm |",
        "|---|---|---|---|---|",
        "| ours | 1.23 | 29.46 | - | -0.50 |",
        "| base | 2.00 | - | 0.912 | - |",
    ]
    assert format_table([("x", {"depth_bias_mm": 0.25})]).split("\n")[2] == "| x | +0.25 |"


def _cells(line: str) -> list[str]:
    """A Markdown table row's cells (a `\\|` is part of a cell, a bare `|` separates)."""
    return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line)[1:-1]]


def test_every_column_has_a_header_and_a_format():
    everything = {key: 1.0 for key, _, _ in COLUMNS}
    header, rule, row = format_table([("all", everything)]).split("\n")
    assert len(_cells(header)) == len(_cells(rule)) == len(_cells(row)) == len(COLUMNS) + 1  # Markdown reads it
    assert "|depth| mm ↓" in _cells(header) and rule == "|---" * (len(COLUMNS) + 1) + "|"
    assert row == "| all | " + " | ".join(fmt.format(1.0) for _, _, fmt in COLUMNS) + " |"


def test_the_face_box_adds_its_margin_and_stays_in_the_image():
    points = np.array([[20.0, 30.0], [60.0, 50.0], [40.0, 40.0]])
    assert landmark_box(points, 100, 80) == (16, 28, 64, 52)  # 10 % of 40 x 20 on each side
    assert landmark_box(points, 100, 80, margin=0.5) == (0, 20, 80, 60)
    assert landmark_box(points, 62, 51, margin=0.0) == (20, 30, 60, 50)
    assert landmark_box(points, 50, 45) == (16, 28, 49, 44)  # right and bottom at width - 1, height - 1
    assert landmark_box(points - 25.0, 100, 80) == (0, 3, 39, 27)  # left clipped at 0
    assert landmark_box(points + 0.9, 100, 80, margin=0.0) == (20, 30, 60, 50)  # truncated to pixels
    assert all(type(v) is int for v in landmark_box(points, 100, 80))


def test_the_oracle_columns_are_the_ceiling_and_what_tracking_loses():
    oracle = Oracle({"psnr": 30.0, "ssim": 0.95, "l2": 1.5}, {}, [], 0.0, False, "k")
    assert oracle_columns(oracle, {"psnr": 27.5, "ssim": 0.9, "l2": 3.0}) == pytest.approx(
        {"oracle_psnr": 30.0, "oracle_ssim": 0.95, "oracle_l2": 1.5, "psnr_loss": 2.5, "ssim_loss": 0.05})


@pytest.mark.parametrize("quality", ["fast", "paper"])
def test_a_stored_schedule_is_read_back_field_for_field(quality):
    schedule = Schedule.preset(quality)
    schedule.step1.iterations, schedule.step2.key_frames, schedule.step3.flow_weight = 7, 5, 0.5
    schedule.laplacian_weight = 0.125
    back = schedule_from_dict(json.loads(json.dumps(schedule.to_dict())))
    assert back == schedule and type(back.step1) is type(schedule.step1)


def _manifest(**fields) -> Manifest:
    return Manifest.new("job", "track", "ledger", "manifest.json", **fields)


def test_a_manifest_without_a_schedule_gets_its_preset_and_k():
    stored = Schedule.fast()
    stored.step2.key_frames = 3
    assert job_schedule(_manifest(schedule=stored.to_dict(), options={"quality": "paper"})) == stored
    paper = job_schedule(_manifest(options={"quality": "paper", "key_frames": 12}))
    expected = Schedule.paper()
    expected.step2.key_frames = 12
    assert paper == expected
    assert job_schedule(_manifest(options={})) == Schedule.fast()  # fast with its own K


def test_the_lighting_options_with_their_defaults():
    assert _lighting_options(_manifest(options={})) == {"kind": "G", "adapt": True, "pretrained": True}
    options = {"lighting": "SH", "adapt": False, "pretrained_lighting": False}
    assert _lighting_options(_manifest(options=options)) == {"kind": "SH", "adapt": False, "pretrained": False}
    assert _lighting_options(_manifest(options={"adapt": 0}))["adapt"] is False


def test_the_cache_is_used_only_under_its_own_key(tmp_path, caplog):
    folder = JobFolder.create(tmp_path / "job", "j", "track")
    assert _read_cache(folder, "k") is None  # no file
    stored = Oracle({"psnr": 30.0}, {"psnr": [30.0]}, [1], 2.5, False, "k")
    folder.write_file(folder.root / ORACLE_FILE, json.dumps(stored.to_json()).encode())
    assert _read_cache(folder, "k") == dataclasses.replace(stored, cached=True)
    with caplog.at_level(logging.INFO, logger="dlatrack_engine.metrics.oracle"):
        assert _read_cache(folder, "other") is None
    assert f"{folder.root / ORACLE_FILE}: made for other inputs; recomputing the ceiling" in caplog.messages
    folder.write_file(folder.root / ORACLE_FILE, b"{not json")
    with caplog.at_level(logging.WARNING, logger="dlatrack_engine.metrics.oracle"):
        assert _read_cache(folder, "k") is None
    with pytest.raises(ValueError) as reason:
        json.loads(b"{not json")
    # the path and the reason
    assert f"{folder.root / ORACLE_FILE}: unusable ({reason.value}); recomputing the ceiling" in caplog.messages
