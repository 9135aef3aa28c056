"""Light-stage dataset writer/reader round trip, field validation, and the EXR reader on hand-built files."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from dlatrack_engine.lightstage import format as fmt
from dlatrack_engine.lightstage.exr import ExrError, pass_rgb, read_multilayer_exr
from dlatrack_engine.lightstage.reader import LightStageDataset
from dlatrack_engine.lightstage.writer import LightStageWriter


def _attr(name: str, kind: str, value: bytes) -> bytes:
    return name.encode() + b"\0" + kind.encode() + b"\0" + struct.pack("<i", len(value)) + value


def _exr_bytes(parts: list[tuple[str, dict[str, np.ndarray]]], multipart: bool) -> bytes:
    """A minimal uncompressed scanline EXR, written per the OpenEXR file layout spec."""
    headers, chunks = [], []
    for name, channels in parts:
        height, width = next(iter(channels.values())).shape
        chlist = b"".join(
            c.encode() + b"\0" + struct.pack("<iB3xii", 1 if a.dtype == np.float16 else 2, 0, 1, 1)
            for c, a in sorted(channels.items())
        ) + b"\0"
        header = _attr("channels", "chlist", chlist) + _attr("compression", "compression", b"\0")
        header += _attr("dataWindow", "box2i", struct.pack("<4i", 0, 0, width - 1, height - 1))
        header += _attr("displayWindow", "box2i", struct.pack("<4i", 0, 0, width - 1, height - 1))
        header += _attr("lineOrder", "lineOrder", b"\0")
        if multipart:
            header += _attr("name", "string", name.encode()) + _attr("type", "string", b"scanlineimage")
            header += _attr("chunkCount", "int", struct.pack("<i", height))
        headers.append(header + b"\0")
        part_chunks = []
        for y in range(height):
            data = b"".join(a[y].tobytes() for _, a in sorted(channels.items()))
            prefix = struct.pack("<i", len(headers) - 1) if multipart else b""
            part_chunks.append(prefix + struct.pack("<ii", y, len(data)) + data)
        chunks.append(part_chunks)
    head = struct.pack("<iI", 20000630, 2 | (0x1000 if multipart else 0)) + b"".join(headers)
    head += b"\0" if multipart else b""
    table_size = 8 * sum(len(c) for c in chunks)
    offset = len(head) + table_size
    table, body = b"", b""
    for part_chunks in chunks:
        for chunk in part_chunks:
            table += struct.pack("<Q", offset + len(body))
            body += chunk
    return head + table + body


def test_exr_reader_multipart_and_single_part(tmp_path):
    rng = np.random.default_rng(0)
    rgb = {f"View.Combined.{c}": rng.random((5, 7)).astype(np.float32) for c in "RGB"}
    index = {"View.Object Index.X": np.arange(35, dtype=np.float16).reshape(5, 7)}
    path = tmp_path / "multi.exr"
    path.write_bytes(_exr_bytes([("View.Combined", rgb), ("View.Object Index", index)], multipart=True))
    channels = read_multilayer_exr(path)
    np.testing.assert_array_equal(pass_rgb(channels, "View.Combined")[..., 1], rgb["View.Combined.G"])
    np.testing.assert_array_equal(channels["View.Object Index.X"], index["View.Object Index.X"].astype(np.float32))
    single = tmp_path / "single.exr"
    single.write_bytes(_exr_bytes([("", {"R": rgb["View.Combined.R"]})], multipart=False))
    np.testing.assert_array_equal(read_multilayer_exr(single)["R"], rgb["View.Combined.R"])
    with pytest.raises(ExrError, match="missing channel"):
        pass_rgb(channels, "View.Nope", "multi.exr")
    (tmp_path / "bad.exr").write_bytes(b"not an exr at all")
    with pytest.raises(ExrError, match="bad magic"):
        read_multilayer_exr(tmp_path / "bad.exr")


def _camera(name: str) -> dict:
    return {"name": name, "K": np.diag([100.0, 100.0, 1.0]), "R": np.eye(3), "t": [0, 0, 1.0], "width": 6, "height": 4}


def _topology(num_vertices: int = 5) -> dict[str, np.ndarray]:
    return {"neutral": np.zeros((num_vertices, 3), np.float32), "faces": np.array([[0, 1, 2]], np.int32)}


def test_writer_reader_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    writer = LightStageWriter(tmp_path, [_camera("a"), _camera("b")], _topology(), exposure_scale=2.0)
    images = {n: rng.uniform(0, 1.9, (4, 6, 3)) for n in "ab"}
    masks = {n: rng.uniform(size=(4, 6)) > 0.5 for n in "ab"}
    vertices = rng.normal(size=(5, 3))
    writer.add_frame(0, "full", fmt.full_light_code(), np.eye(3), [0, 0, 0.1], vertices, images, masks)
    writer.add_frame(1, "group", fmt.group_light_code([3, 7]), np.eye(3), [0, 0, 0.1], vertices, images, masks,
                     extra_meta={"expression": np.ones(4)}, extra_fields={"groups": [3, 7]})  # fmt: skip
    writer.close(timing={"total_s": 1.0})
    data = LightStageDataset(tmp_path)
    assert data.frame_ids() == [0, 1] and data.frame_ids("group") == [1]
    assert data.frame_info(1)["groups"] == [3, 7] and data.config["timing"]["total_s"] == 1.0
    np.testing.assert_allclose(data.image(0, "b"), images["b"], atol=2.0 / 65535)  # 16-bit quantisation
    np.testing.assert_array_equal(data.mask(1, "a"), masks["a"])
    meta = data.meta(1)
    code = meta["light_code"].reshape(50, 3)
    assert code.sum() == 6 and code[3].tolist() == [1, 1, 1] and code[7].tolist() == [1, 1, 1]
    np.testing.assert_allclose(meta["vertices"], vertices, atol=1e-6)
    assert meta["expression"].shape == (4,)


def test_format_errors_name_the_file_and_field(tmp_path):
    writer = LightStageWriter(tmp_path, [_camera("a")], _topology())
    with pytest.raises(fmt.LightStageFormatError, match="kind 'partial'"):
        writer.add_frame(0, "partial", fmt.full_light_code(), np.eye(3), np.zeros(3), np.zeros((5, 3)),
                         {"a": np.zeros((4, 6, 3))}, {"a": np.zeros((4, 6))})  # fmt: skip
    with pytest.raises(fmt.LightStageFormatError, match=r"array 'vertices' has shape \[4, 3\], expected \[5, 3\]"):
        writer.add_frame(0, "full", fmt.full_light_code(), np.eye(3), np.zeros(3), np.zeros((4, 3)),
                         {"a": np.zeros((4, 6, 3))}, {"a": np.zeros((4, 6))})  # fmt: skip
    with pytest.raises(fmt.LightStageFormatError, match="camera 'a' image"):
        writer.add_frame(0, "full", fmt.full_light_code(), np.eye(3), np.zeros(3), np.zeros((5, 3)),
                         {"a": np.zeros((4, 5, 3))}, {"a": np.zeros((4, 6))})  # fmt: skip
    config = json.loads((tmp_path / "dataset.json").read_text())
    config["cameras"][0]["R"] = [[2, 0, 0], [0, 1, 0], [0, 0, 1]]
    (tmp_path / "dataset.json").write_text(json.dumps(config))
    with pytest.raises(fmt.LightStageFormatError, match=r"cameras\[0\]\.R: not a rotation"):
        LightStageDataset(tmp_path)
    del config["exposure_scale"]
    (tmp_path / "dataset.json").write_text(json.dumps(config))
    with pytest.raises(fmt.LightStageFormatError, match="field 'exposure_scale' is missing"):
        LightStageDataset(tmp_path)
    with pytest.raises(fmt.LightStageFormatError, match="out of range"):
        fmt.group_light_code([50])


def test_merge_datasets_appends_frames_and_refuses_mismatches(tmp_path):
    from dlatrack_engine.lightstage.merge import merge_datasets

    def capture(root, ids, camera="a"):
        writer = LightStageWriter(root, [_camera(camera)], _topology())
        for i in ids:
            writer.add_frame(i, "full", fmt.full_light_code(), np.eye(3), np.zeros(3), np.full((5, 3), float(i)),
                             {camera: np.full((4, 6, 3), 0.1 * i)}, {camera: np.ones((4, 6))})  # fmt: skip
        writer.close(timing={"total_s": 10.0})

    capture(tmp_path / "first", [0, 1])
    capture(tmp_path / "later", [2, 3])
    assert merge_datasets(tmp_path / "first", tmp_path / "later") == 2
    merged = LightStageDataset(tmp_path / "first")
    assert merged.frame_ids() == [0, 1, 2, 3] and merged.config["timing"]["total_s"] == 20.0
    np.testing.assert_allclose(merged.meta(3)["vertices"], 3.0)
    np.testing.assert_allclose(merged.image(2, "a"), 0.2, atol=1e-4)
    with pytest.raises(fmt.LightStageFormatError, match=r"frame ids \[2, 3\] already exist"):
        merge_datasets(tmp_path / "first", tmp_path / "later")
    capture(tmp_path / "other_rig", [9], camera="b")
    with pytest.raises(fmt.LightStageFormatError, match="field 'cameras' differs"):
        merge_datasets(tmp_path / "first", tmp_path / "other_rig")
