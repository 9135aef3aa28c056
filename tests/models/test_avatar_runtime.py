"""Avatar runtime: save -> load gives identical outputs; damaged or mismatched weights fail with names."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file
from toy_lightstage import dome_topology

from dlatrack_engine.avatar.format import AvatarFormatError
from dlatrack_engine.avatar.runtime import Avatar
from dlatrack_engine.models.dam import DAM, DAMConfig
from dlatrack_engine.models.lighting import LightingConfig, LightingModel

SMALL_G = dict(mlp_width=16, light_channels=(16, 16, 8, 8, 8), texture_channels=(8, 8, 8, 8), branch_channels=8)


def make_avatar(seed: int = 0, energy_normalised: bool = False) -> Avatar:
    torch.manual_seed(seed)
    topo = dome_topology(5)
    dam = DAM(DAMConfig(num_vertices=topo.num_vertices, texture_size=16, latent_size=4, base_grid=4))
    dam.set_normalisation(torch.as_tensor(topo.neutral), 0.01, torch.full((3, 16, 16), 0.5), 0.2)
    g_cfg = LightingConfig(texture_size=16, input_texture_size=16, energy_normalised=energy_normalised, **SMALL_G)
    lighting = LightingModel(g_cfg)
    # Perturb G away from the identity start so the round trip compares non-trivial outputs.
    with torch.no_grad():
        for p in lighting.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return Avatar(dam, lighting, topo, {"name": "toy"})


def inputs(batch: int = 2):
    g = torch.Generator().manual_seed(5)
    z = torch.randn(batch, 4, generator=g)
    view = torch.nn.functional.normalize(torch.randn(batch, 3, generator=g), dim=1)
    code = torch.rand(batch, 150, generator=g)
    hv = torch.randn(batch, 6, generator=g)
    return z, view, code, hv


@pytest.mark.parametrize(("suffix", "energy_normalised"), [("", False), (".zip", False), ("", True)])
def test_save_load_gives_identical_outputs(tmp_path, suffix, energy_normalised):
    avatar = make_avatar(energy_normalised=energy_normalised)
    path = avatar.to_package(tmp_path / f"toy{suffix}", provenance={"test": True})
    loaded = Avatar.load(path)
    assert loaded.lighting.cfg.energy_normalised is energy_normalised
    z, view, code, hv = inputs()
    with torch.no_grad():
        v0, t0 = avatar.decode(z, view)
        v1, t1 = loaded.decode(z, view)
        r0 = avatar.relit_texture(z, view, code, hv)
        r1 = loaded.relit_texture(z, view, code, hv)
    assert torch.equal(v0, v1) and torch.equal(t0, t1) and torch.equal(r0, r1)
    assert not torch.allclose(r0, t0)  # G is not the identity here, so relighting was really compared
    assert loaded.config["provenance"] == {"test": True}
    assert loaded.config["dam"]["num_vertices"] == 25


def test_landmarks_are_barycentric_points_of_the_mesh():
    avatar = make_avatar()
    verts = torch.as_tensor(avatar.topology_arrays.neutral)[None].repeat(2, 1, 1)
    lms = avatar.landmarks(verts)
    assert lms.shape == (2, 68, 3)
    f = int(avatar.topology.landmark_faces[3])
    corners = verts[0, avatar.topology.faces[f]]
    expected = (avatar.topology.landmark_barycentrics[3][:, None] * corners).sum(0)
    torch.testing.assert_close(lms[0, 3], expected)


def test_missing_and_wrong_shape_weights_are_named(tmp_path):
    path = make_avatar().to_package(tmp_path / "toy")
    weights = path / "weights.safetensors"
    tensors = load_file(weights)
    key = "lighting.gain_branch.2.weight"
    assert key in tensors
    broken = dict(tensors)
    broken.pop(key)
    save_file(broken, weights)
    with pytest.raises(AvatarFormatError, match=rf"weights.safetensors: tensor '{key}' is missing"):
        Avatar.load(path)
    broken = dict(tensors)
    broken["dam.mean_texture"] = torch.zeros(3, 8, 8)
    save_file(broken, weights)
    with pytest.raises(AvatarFormatError, match=r"'dam.mean_texture' has shape \[3, 8, 8\], expected \[3, 16, 16\]"):
        Avatar.load(path)
    broken = dict(tensors)
    broken["dam.extra.weight"] = torch.zeros(2)
    save_file(broken, weights)
    with pytest.raises(AvatarFormatError, match=r"unexpected tensor 'dam\.extra\.weight'"):
        Avatar.load(path)


def test_corrupted_weights_and_config_mismatch(tmp_path):
    path = make_avatar().to_package(tmp_path / "toy")
    weights = path / "weights.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(AvatarFormatError, match="truncated or corrupt"):
        Avatar.load(path)
    path = make_avatar().to_package(tmp_path / "toy2")
    config = json.loads((path / "avatar.json").read_text())
    config["dam"]["latent_sise"] = 3
    (path / "avatar.json").write_text(json.dumps(config))
    with pytest.raises(AvatarFormatError, match=r"avatar.json: DAM config: unknown field\(s\) \['latent_sise'\]"):
        Avatar.load(path)
    config["dam"].pop("latent_sise")
    config["dam"]["latent_size"] = 5
    (path / "avatar.json").write_text(json.dumps(config))
    with pytest.raises(AvatarFormatError, match=r"'latent_size' is 4 but 'dam\.latent_size' is 5"):
        Avatar.load(path)


def test_a_package_without_the_energy_normalised_key_loads_a_plain_g(tmp_path):
    # Packages written before energy normalisation became LightingConfig's default lack the key.
    assert LightingConfig(texture_size=16).energy_normalised is True
    avatar = make_avatar(energy_normalised=False)
    path = avatar.to_package(tmp_path / "old", provenance={"test": True})
    config = json.loads((path / "avatar.json").read_text())
    del config["lighting"]["energy_normalised"]
    (path / "avatar.json").write_text(json.dumps(config))
    loaded = Avatar.load(path)
    assert loaded.lighting.cfg.energy_normalised is False
    z, view, code, hv = inputs()
    with torch.no_grad():
        assert torch.equal(avatar.relit_texture(z, view, code, hv), loaded.relit_texture(z, view, code, hv))
