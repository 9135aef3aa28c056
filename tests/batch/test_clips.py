"""Clip arguments -> clips and job names (no Ray): files, clip folders, folders of clips, globs, clashes."""

from __future__ import annotations

from pathlib import Path

import pytest

from dlatrack_engine.batch.clips import ClipListError, expand, name_jobs


def _clip_folder(path: Path, inner: str = "") -> Path:
    (path / inner).mkdir(parents=True)
    (path / inner / "000000.png").write_bytes(b"")
    return path


def test_files_folders_and_globs(tmp_path):
    takes = tmp_path / "takes"
    takes.mkdir()
    for name in ("b.mp4", "a.MOV", "notes.txt"):
        (takes / name).write_bytes(b"")
    _clip_folder(takes / "frames_take", "frames")
    single = _clip_folder(tmp_path / "single")
    assert expand([str(takes)]) == [takes / "a.MOV", takes / "b.mp4", takes / "frames_take"]
    assert expand([str(single)]) == [single]  # a folder of frames is one clip, not a folder of clips
    assert expand([str(tmp_path / "takes" / "*.mp4"), str(takes / "b.mp4")]) == [takes / "b.mp4"]  # each once


def test_bad_arguments_name_the_argument(tmp_path):
    with pytest.raises(ClipListError, match=r"'.*missing.mp4': no such clip"):
        expand([str(tmp_path / "missing.mp4")])
    with pytest.raises(ClipListError, match=r"'.*\*.avi': no file or folder matches"):
        expand([str(tmp_path / "*.avi")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ClipListError, match=r"'.*empty': folder holds no clip"):
        expand([str(tmp_path / "empty")])


def test_job_names_are_stable_and_unique(tmp_path):
    paths = [tmp_path / "day1" / "take 1.mp4", tmp_path / "day2" / "take 1.mp4", tmp_path / "day2" / "other.mov"]
    for path in paths:
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"")
    names = [c.job for c in name_jobs(paths)]
    assert names[2] == "other" and names[0] != names[1]
    assert all(n.startswith("take_1-") and len(n) == len("take_1-") + 6 for n in names[:2])
    assert [c.job for c in name_jobs(list(reversed(paths)))] == list(reversed(names))  # order does not matter
