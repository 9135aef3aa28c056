"""fit/lighting_store.py without running a step: what the content hashes cover, a lighting written and read back
(static, sequence, SH, none), the refusals by field with their messages, and a reused lighting copied into a job
with its l replaced."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from fit_fixtures import HEIGHT, WIDTH, intrinsics, make_avatar

from dlatrack_engine.fit import lighting_store
from dlatrack_engine.fit.scene import FaceScene
from dlatrack_engine.fit.video_lighting import VideoLighting
from dlatrack_engine.wire import lighting_folder as fmt
from dlatrack_engine.wire.lighting_folder import LightingFolderError

META = {"key_frames": [0, 2], "key_source_frames": [10, 12]}


def _writer(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _adapted(avatar, seed: int = 0) -> VideoLighting:
    lighting = VideoLighting("G", avatar)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        lighting.code.copy_(torch.randn(1, 150, generator=g))
        for p in lighting.network.parameters():
            p.add_(0.01 * torch.randn(p.shape, generator=g))
    return lighting


def test_the_weights_hash_covers_names_dtypes_shapes_values_and_the_config():
    module = torch.nn.Linear(3, 2)
    by_hand = hashlib.sha256(json.dumps({"b": 1, "a": [2]}, sort_keys=True).encode())
    for name, tensor in sorted(module.state_dict().items()):
        by_hand.update(f"{name}:{tensor.dtype}:{list(tensor.shape)}".encode())
        by_hand.update(tensor.detach().numpy().tobytes())
    assert lighting_store.weights_sha256(module, {"a": [2], "b": 1}) == by_hand.hexdigest()
    plain = lighting_store.weights_sha256(module)
    assert plain == hashlib.sha256(b"null" + b"".join(
        f"{n}:{t.dtype}:{list(t.shape)}".encode() + t.detach().numpy().tobytes()
        for n, t in sorted(module.state_dict().items()))).hexdigest()
    with torch.no_grad():
        module.bias[0] += 1e-6
    assert lighting_store.weights_sha256(module) != plain


def test_identities_of_the_avatar_and_the_lighting_model(avatar):
    assert lighting_store.avatar_identity(avatar) == {
        "name": "test-dome", "sha256": lighting_store.weights_sha256(avatar.dam)}
    unnamed = make_avatar()
    unnamed.config = {}
    assert lighting_store.avatar_identity(unnamed)["name"] == "avatar"
    assert lighting_store.model_identity(avatar, "G") == {
        "name": "G", "sha256": lighting_store.weights_sha256(avatar.lighting, avatar.lighting.cfg.to_dict())}
    assert lighting_store.model_identity(avatar, "SH") == {"name": "SH", "sha256": hashlib.sha256(b"SH").hexdigest()}


def test_a_g_lighting_round_trips_with_its_preview(avatar, tmp_path):
    lighting = _adapted(avatar)
    info = lighting_store.write(tmp_path, lighting, avatar, _writer, dict(META), preview_png=b"\x89PNG fake")
    assert sorted(info.files) == [fmt.WEIGHTS_FILE, fmt.CODE_FILE, fmt.PREVIEW_FILE]
    assert info.model == "G" and info.avatar == lighting_store.avatar_identity(avatar)
    assert info.lighting_model == lighting_store.model_identity(avatar, "G")
    code = np.load(tmp_path / fmt.CODE_FILE)
    assert code.dtype == np.float32 and code.shape == (150,)
    stored = lighting_store.read(tmp_path)
    assert stored.info.key_source_frames == [10, 12] and stored.root == tmp_path
    back = stored.video_lighting(avatar, None)
    assert torch.equal(back.code, lighting.code.detach()) and not back.is_sequence
    for a, b in zip(back.network.state_dict().values(), lighting.network.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert not back.network.training and back.network is not avatar.lighting
    assert lighting_store.read_reusable(tmp_path, avatar, "G").info.files == info.files


def test_sh_and_none_lightings_have_no_network_file(avatar, tmp_path):
    scene = FaceScene(avatar, intrinsics(), WIDTH, HEIGHT)
    sh = VideoLighting("SH", avatar, scene.renderer)
    with torch.no_grad():
        sh.code.add_(0.1)
    info = lighting_store.write(tmp_path / "sh", sh, avatar, _writer, dict(META))
    assert sorted(info.files) == [fmt.CODE_FILE] and info.lighting_model["name"] == "SH"
    stored = lighting_store.read(tmp_path / "sh")
    assert stored.weights is None and stored.network(avatar) is None
    assert torch.equal(stored.video_lighting(avatar, scene.renderer).code, sh.code.detach())
    lighting_store.write(tmp_path / "none", VideoLighting("none", avatar), avatar, _writer, dict(META))
    assert lighting_store.read(tmp_path / "none").light_code.shape == (0,)


def test_a_light_code_of_the_wrong_shape_is_refused(avatar, tmp_path):
    lighting = _adapted(avatar)
    lighting_store.write(tmp_path, lighting, avatar, _writer, dict(META))
    stored = lighting_store.read(tmp_path)
    stored.light_code = np.zeros((1, 150), np.float32)  # [1, C] is read as l too
    assert torch.equal(stored.video_lighting(avatar, None).code, torch.zeros(1, 150))
    stored.light_code = np.zeros((2, 150), np.float32)
    with pytest.raises(LightingFolderError, match=r"light_code\.npy: has shape \[2, 150\], the static 'G' lighting "
                                                  r"needs \[150\]$"):
        stored.video_lighting(avatar, None)
    sequence = VideoLighting("G", avatar)
    sequence.set_frame_codes(torch.randn(3, 150))
    lighting_store.write(tmp_path / "seq", sequence, avatar, _writer,
                         dict(META, variation="sequence", frame_count=3, source_frames=[0, 1, 2]))
    stored = lighting_store.read(tmp_path / "seq")
    assert stored.light_code.shape == (3, 150)
    stored.light_code = np.zeros((150,), np.float32)
    with pytest.raises(LightingFolderError, match=r"has shape \[150\], the sequence 'G' lighting needs \[3, 150\]$"):
        stored.video_lighting(avatar, None)


def test_damaged_files_are_refused_naming_them(avatar, tmp_path):
    lighting_store.write(tmp_path, _adapted(avatar), avatar, _writer, dict(META))
    info = fmt.read_info(tmp_path)
    (tmp_path / fmt.CODE_FILE).write_bytes(b"not numpy")
    info.files[fmt.CODE_FILE] = fmt.sha256(b"not numpy")
    with pytest.raises(LightingFolderError, match=rf"^{tmp_path / fmt.CODE_FILE}: unreadable \("):
        lighting_store._read_files(tmp_path, info, lambda path: path.read_bytes())
    info.files[fmt.WEIGHTS_FILE] = fmt.sha256(b"junk")
    (tmp_path / fmt.WEIGHTS_FILE).write_bytes(b"junk")
    info.files.pop(fmt.CODE_FILE)
    with pytest.raises(LightingFolderError, match=rf"^{tmp_path / fmt.WEIGHTS_FILE}: unreadable \("):
        lighting_store._read_files(tmp_path, info, lambda path: path.read_bytes())


def test_reuse_is_refused_by_field(avatar, tmp_path):
    lighting_store.write(tmp_path, _adapted(avatar), avatar, _writer, dict(META))
    where = tmp_path / fmt.INFO_FILE
    info = fmt.read_info(tmp_path)
    with pytest.raises(LightingFolderError, match=rf"^{where}: field 'model' is 'G' but this track uses the 'SH' "
                                                  r"lighting model$"):
        lighting_store.check_reusable(tmp_path, info, avatar, "SH")
    other = make_avatar(seed=1)
    other.config = {"name": "other"}
    ours, theirs = lighting_store.avatar_identity(avatar), lighting_store.avatar_identity(other)
    with pytest.raises(LightingFolderError) as error:
        lighting_store.check_reusable(tmp_path, info, other, "G")
    assert str(error.value) == (f"{where}: field 'avatar' is 'test-dome' (sha256 {ours['sha256'][:12]}), not this "
                                f"avatar 'other' (sha256 {theirs['sha256'][:12]}); adapt the lighting with this avatar")
    retrained = make_avatar()
    retrained.lighting = make_avatar(seed=2).lighting
    new = lighting_store.model_identity(retrained, "G")["sha256"]
    with pytest.raises(LightingFolderError) as error:
        lighting_store.check_reusable(tmp_path, info, retrained, "G")
    assert str(error.value) == (f"{where}: field 'lighting_model' (sha256 {info.lighting_model['sha256'][:12]}) "
                                f"differs from this avatar's lighting model (sha256 {new[:12]}): G was retrained since")
    info.legacy = True
    with pytest.raises(LightingFolderError, match=r"written before lightings could be reused \(no field 'avatar'\); "
                                                  r"adapt the lighting again with this dlatrack$"):
        lighting_store.check_reusable(tmp_path, info, avatar, "G")


def test_a_sequences_frame_count_must_match_the_take(avatar, tmp_path):
    info = fmt.LightingInfo(model="G", variation="sequence", frame_count=4)
    lighting_store.check_frame_count(tmp_path, info, 4)
    lighting_store.check_frame_count(tmp_path, info, None)
    lighting_store.check_frame_count(tmp_path, fmt.LightingInfo(model="G", frame_count=4), 5)  # static: any take
    with pytest.raises(LightingFolderError) as error:
        lighting_store.check_frame_count(tmp_path, info, 5)
    assert str(error.value) == (
        f"{tmp_path / fmt.INFO_FILE}: field 'frame_count' is 4: this lighting changes during its video (variation "
        "'sequence', one light code per frame), but this take has 5 frames; reuse it only on a take of 4 frames, "
        "or adapt the lighting on this take")


def test_a_copy_into_a_job_keeps_phi_and_can_take_this_takes_l(avatar, tmp_path):
    source = tmp_path / "source"
    lighting_store.write(source, _adapted(avatar), avatar, _writer, dict(META), preview_png=b"png")
    stored = lighting_store.read(source)
    info = lighting_store.copy_into(stored, tmp_path / "job", _writer)
    assert info.reused_from == str(source.resolve()) and stored.info.reused_from is None
    for name in (fmt.CODE_FILE, fmt.WEIGHTS_FILE, fmt.PREVIEW_FILE):
        assert (tmp_path / "job" / name).read_bytes() == (source / name).read_bytes()
    refitted = _adapted(avatar, seed=5)
    info = lighting_store.copy_into(stored, tmp_path / "job2", _writer, refitted)
    code = np.load(io.BytesIO((tmp_path / "job2" / fmt.CODE_FILE).read_bytes()))
    assert np.array_equal(code, refitted.code.detach()[0].numpy())
    assert (tmp_path / "job2" / fmt.WEIGHTS_FILE).read_bytes() == (source / fmt.WEIGHTS_FILE).read_bytes()
    assert lighting_store.read(tmp_path / "job2").info.key_frames == [0, 2]


def test_the_hash_sorts_the_configs_keys_and_writes_other_values_as_text():
    module = torch.nn.Linear(2, 1)
    assert lighting_store.weights_sha256(module, {"b": 1, "a": 2}) == lighting_store.weights_sha256(
        module, {"a": 2, "b": 1})
    with_path = lighting_store.weights_sha256(module, {"where": Path("x")})
    assert with_path == lighting_store.weights_sha256(module, {"where": "x"})


def test_weights_stored_under_the_lighting_prefix_load_and_a_mismatch_names_the_file(avatar, tmp_path):
    lighting = _adapted(avatar)
    prefixed = {f"lighting.{k}": v for k, v in lighting.network.state_dict().items()}
    stored = lighting_store.StoredLighting(tmp_path, fmt.LightingInfo(model="G"), None, prefixed)
    for a, b in zip(stored.network(avatar).state_dict().values(), lighting.network.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    stored.weights = {k: v for k, v in list(lighting.network.state_dict().items())[1:]}
    with pytest.raises(ValueError, match=rf"^{tmp_path / fmt.WEIGHTS_FILE}: tensor '.*' is missing"):
        stored.network(avatar)


def test_the_files_are_read_through_the_given_reader(avatar, tmp_path):
    lighting_store.write(tmp_path / "disk", _adapted(avatar), avatar, _writer, dict(META))
    files = {tmp_path / "memory" / p.name: p.read_bytes() for p in (tmp_path / "disk").iterdir()}
    stored = lighting_store.read(tmp_path / "memory", files.__getitem__)  # nothing on disk there
    assert stored.light_code.shape == (150,) and stored.weights is not None and stored.info.model == "G"


def test_a_jobs_own_lighting_through_its_ledger_or_partial(avatar, tmp_path):
    from dlatrack_engine.wire.jobfolder import JobFolder

    folder = JobFolder.create(tmp_path / "job", "job-1", "track")
    root = lighting_store.job_lighting_root(folder)
    assert root == tmp_path / "job" / fmt.LIGHTING_DIR
    assert lighting_store.read_job(folder) is None and lighting_store.read_job(folder, partial=True) is None
    folder.write_light_code(np.arange(150, dtype=np.float32))  # an old job: the code alone, no lighting.json
    assert lighting_store.read_job(folder) is None
    legacy = lighting_store.read_job(folder, partial=True)
    assert legacy.info.model == "G" and legacy.info.legacy and legacy.root == root
    assert legacy.light_code.tolist() == list(range(150)) and legacy.weights is None
    lighting = _adapted(avatar)
    lighting_store.write(root, lighting, avatar, folder.write_file, dict(META))
    own = lighting_store.read_job(folder)
    assert not own.info.legacy and np.array_equal(own.light_code, lighting.light_code().numpy())
    assert own.weights is not None
    info = root / fmt.INFO_FILE  # changed after the job wrote it (same size): its ledger refuses it
    data = json.loads(info.read_bytes())
    data["key_source_frames"] = [10, 13]
    info.write_bytes(json.dumps(data, indent=1).encode())
    assert lighting_store.read(root).info.key_source_frames == [10, 13]  # a plain read takes it
    with pytest.raises(LightingFolderError, match=r"lighting\.json"):
        lighting_store.read_job(folder)
