"""Training on a tiny rendered light stage: loading, DAM and G losses fall, checkpoints resume, CLI works."""

from __future__ import annotations

import json

import pytest
import torch
from toy_lightstage import toy_lightstage, write_lightstage

from dlatrack_engine.avatar.runtime import Avatar
from dlatrack_engine.models.dam import DAMConfig
from dlatrack_engine.models.lighting import LightingConfig, LightingModel
from dlatrack_engine.render.mesh_renderer import MeshRenderer
from dlatrack_engine.train import loop
from dlatrack_engine.train.dam_trainer import DAMTrainConfig, train_dam
from dlatrack_engine.train.data import load_lightstage, make_split
from dlatrack_engine.train.experiments.bias_penalty import BiasPenaltyTerm
from dlatrack_engine.train.experiments.registry import parse_experiments
from dlatrack_engine.train.experiments.superposition import SuperpositionTerm
from dlatrack_engine.train.lighting_trainer import (
    LightingTrainConfig,
    initial_codes,
    lighting_losses,
    train_lighting,
)
from dlatrack_engine.train.texture_warmup import texture_warmup

CPU = torch.device("cpu")
SMALL_DAM = dict(latent_size=8, mesh_hidden=64, base_grid=4, max_channels=32, min_channels=8)
SMALL_G = dict(
    input_texture_size=16, mlp_width=32, light_channels=(32, 32, 16, 16, 16), texture_channels=(8, 16, 16, 16),
    branch_channels=16,
)  # fmt: skip


@pytest.fixture(scope="module")
def toy():
    return toy_lightstage(grid=7, num_frames=6, num_cameras=3, image_size=32, texture_size=16, full_every=3)


@pytest.fixture(scope="module")
def toy_on_disk(toy, tmp_path_factory):
    root = tmp_path_factory.mktemp("toy_lightstage")
    write_lightstage(toy, root)
    return root


def dam_config(toy) -> DAMConfig:
    return DAMConfig(num_vertices=toy.topology.num_vertices, texture_size=16, **SMALL_DAM)


def test_load_lightstage_round_trip_and_downsampling(toy, toy_on_disk):
    data = load_lightstage(toy_on_disk)
    assert data.kinds == toy.kinds and data.camera_names == toy.camera_names
    torch.testing.assert_close(data.light_codes, toy.light_codes)
    torch.testing.assert_close(data.vertices, toy.vertices)
    # 16-bit PNG storage: values agree to the quantisation step (exposure_scale / 65535).
    assert float((data.images.float() - toy.images.float()).abs().max()) < 1e-3
    half = load_lightstage(toy_on_disk, max_image_size=16, frames=[0, 1])
    assert half.images.shape == (2, 3, 16, 16, 3) and half.masks.shape == (2, 3, 16, 16, 1)
    torch.testing.assert_close(half.K[:, :2], toy.K[:, :2] * 0.5)
    # Downsampling averages: means agree.
    assert abs(float(half.images[0].float().mean() - toy.images[0].float().mean())) < 5e-3


def test_load_lightstage_names_the_broken_file(toy_on_disk, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(toy_on_disk, broken)
    (broken / "frames" / "000001" / "cam01.png").unlink()
    with pytest.raises(ValueError, match=r"000001/cam01\.png: missing or not a readable PNG"):
        load_lightstage(broken)


def test_dam_training_reduces_losses(toy):
    split = make_split(toy, holdout_cameras=[], holdout_every=0)
    _dam, unwrapped, summary = train_dam(
        toy, split, dam_config(toy), DAMTrainConfig(epochs=20, batch_size=3, lr=3e-3), CPU, progress=False
    )
    first, last = summary["first_losses"], summary["final_losses"]
    assert last["vertex"] < 0.5 * first["vertex"]
    assert last["texture"] < 0.8 * first["texture"]
    assert unwrapped.textures.shape == (2, 3, 3, 16, 16)  # 2 fully-lit frames x 3 cameras
    assert float(unwrapped.weights.float().mean()) > 0.3  # most texels seen by some camera


def test_dam_checkpoint_resume_matches_uninterrupted_run(toy, tmp_path, monkeypatch):
    split = make_split(toy, holdout_cameras=[], holdout_every=0)
    cfg = DAMTrainConfig(epochs=4, batch_size=4, checkpoint_every=1)
    reference, _, _ = train_dam(toy, split, dam_config(toy), cfg, CPU, tmp_path / "a", progress=False)

    real_save = loop.save_checkpoint

    def save_then_crash(directory, stage, state):
        real_save(directory, stage, state)
        if state["epoch"] == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(loop, "save_checkpoint", save_then_crash)
    with pytest.raises(KeyboardInterrupt):
        train_dam(toy, split, dam_config(toy), cfg, CPU, tmp_path / "b", progress=False)
    monkeypatch.setattr(loop, "save_checkpoint", real_save)
    resumed, _, summary = train_dam(toy, split, dam_config(toy), cfg, CPU, tmp_path / "b", progress=False)
    assert len(summary["final_losses"]) and summary["epochs"] == 4
    for key, value in reference.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[key], value, msg=f"{key} differs after resume")
    with pytest.raises(ValueError, match="different configuration"):
        train_dam(toy, split, dam_config(toy), DAMTrainConfig(epochs=5), CPU, tmp_path / "b", progress=False)


def test_lighting_training_reduces_render_loss_with_dam_frozen(toy):
    split = make_split(toy, holdout_cameras=[], holdout_every=0)
    dam, unwrapped, _ = train_dam(toy, split, dam_config(toy), DAMTrainConfig(epochs=10), CPU, progress=False)
    before = {k: v.clone() for k, v in dam.state_dict().items()}
    model_cfg = LightingConfig(texture_size=16, energy_normalised=False, **SMALL_G)
    cfg = LightingTrainConfig(epochs=4, batch_size=3, lr=1e-2, lr_decay_every=3)
    lighting, codes, _ = train_lighting(dam, toy, split, unwrapped, model_cfg, cfg, CPU, progress=False)
    assert codes.shape == (toy.num_frames, 8)
    renderer = MeshRenderer(toy.topology.faces, toy.topology.uv_faces, toy.topology.uvs, CPU)
    pairs = torch.tensor([(f, c) for f in range(toy.num_frames) for c in range(toy.num_cameras)])

    def render_loss(model, z):
        with torch.no_grad():
            terms = lighting_losses(dam, model, renderer, toy, z, pairs[:, 0], pairs[:, 1], cfg, augment=False)
        return float(terms["render"])

    identity = render_loss(LightingModel(model_cfg), initial_codes(dam, toy, unwrapped, CPU))
    assert render_loss(lighting, codes) < 0.6 * identity
    for key, value in dam.state_dict().items():
        assert torch.equal(value, before[key]), f"DAM tensor {key} changed: it must stay frozen"


def test_an_experiment_term_enters_eq5_with_its_weight(toy):
    split = make_split(toy, holdout_cameras=[], holdout_every=0)
    dam, unwrapped, _ = train_dam(toy, split, dam_config(toy), DAMTrainConfig(epochs=1), CPU, progress=False)
    # The plain G at its start (g = 1 for every code) is not additive, so the term is > 0.
    lighting = LightingModel(LightingConfig(texture_size=16, energy_normalised=False, **SMALL_G))
    renderer = MeshRenderer(toy.topology.faces, toy.topology.uv_faces, toy.topology.uvs, CPU)
    codes = initial_codes(dam, toy, unwrapped, CPU)
    frames, cams = torch.tensor([1, 2, 4]), torch.tensor([0, 1, 2])

    def terms(*extra) -> dict[str, torch.Tensor]:
        cfg = LightingTrainConfig()
        with torch.no_grad():
            return lighting_losses(dam, lighting, renderer, toy, codes, frames, cams, cfg, augment=False, extra=extra)

    plain, weighted = terms(), terms(SuperpositionTerm(2.0))
    assert "superposition" not in plain
    assert float(weighted["superposition"]) > 0.1
    assert torch.allclose(weighted["total"], plain["total"] + 2.0 * weighted["superposition"])


def test_texture_warmup_decays_its_rate_and_records_experiment_terms(toy):
    split = make_split(toy, holdout_cameras=[], holdout_every=0)
    dam, unwrapped, _ = train_dam(toy, split, dam_config(toy), DAMTrainConfig(epochs=2), CPU, progress=False)
    model_cfg = LightingConfig(texture_size=16, gain_activation="abs", energy_normalised=False, **SMALL_G)
    lighting = LightingModel(model_cfg)
    cfg = LightingTrainConfig(batch_size=3, texture_warmup_epochs=2, texture_warmup_lr=1e-2,
                              texture_warmup_lr_decay_every=1)  # fmt: skip
    renderer = MeshRenderer(toy.topology.faces, toy.topology.uv_faces, toy.topology.uvs, CPU)
    codes = initial_codes(dam, toy, unwrapped, CPU)
    extra = [BiasPenaltyTerm(0.1), SuperpositionTerm(0.5)]
    history = texture_warmup(lighting, dam, toy, split, codes, cfg, CPU, renderer, progress=False, extra=extra)
    assert len(history) == 2
    assert history[0]["lr"] == pytest.approx(1e-2) and history[1]["lr"] == pytest.approx(1e-2 * cfg.lr_decay)
    assert {"texture_render", "bias_penalty", "superposition"} <= set(history[-1])
    assert lighting.bias_branch[-1].weight.abs().sum() > 0
    assert lighting.gain_branch[-1].weight.abs().sum() > 0


def test_experiments_parse_into_terms_and_overrides_and_name_what_is_wrong():
    parsed = parse_experiments(["superposition=0.2", "energy_normalised=false", "pattern_mix=0"])
    assert [term.name for term in parsed.terms] == ["superposition"] and parsed.terms[0].weight == 0.2
    assert parsed.lighting_overrides == {"energy_normalised": False}
    assert parsed.train_overrides == {"pattern_mix": 0.0}
    assert parse_experiments(None).settings == {}
    with pytest.raises(ValueError, match="NAME one of superposition"):
        parse_experiments(["lambda_superposition=1"])
    with pytest.raises(ValueError, match=r"'gain_activation=exp'.*softplus, abs"):
        parse_experiments(["gain_activation=exp"])


def test_train_cli_writes_a_loadable_package_with_provenance(toy_on_disk, tmp_path):
    from dlatrack_engine.cli import main

    out = tmp_path / "avatar"
    common = ["--data", str(toy_on_disk), "--image-size", "32", "--checkpoint-dir", str(tmp_path / "ck")]
    assert main(["train", "dam", *common, "--out", str(out), "--texture-size", "16", "--preset", "tiny",
                 "--epochs", "2", "--holdout-every", "3"]) == 0  # fmt: skip
    assert Avatar.load(out).config["provenance"]["stages"]["lighting"].startswith("untrained")
    assert main(["train", "lighting", *common, "--out", str(out), "--epochs", "1", "--preset", "tiny",
                 "--texture-warmup-epochs", "1", "--input-size", "32", "--bias-scale", "0.25"]) == 0  # fmt: skip
    # An explicit --input-size above the texture size is kept (a finer feature grid), not capped at 16.
    assert Avatar.load(out).lighting.cfg.input_texture_size == 32
    assert Avatar.load(out).lighting.cfg.bias_scale == 0.25  # the preset's sizes, this bias unit
    assert main(["train", "eval", *common, "--avatar", str(out), "--max-frames", "2", "--fit-iterations", "3"]) == 0
    avatar = Avatar.load(out)
    provenance = avatar.config["provenance"]
    assert provenance["split"]["holdout_cameras"] == ["cam02"]
    assert provenance["stages"]["dam"]["epochs"] == 2 and "texture" in provenance["stages"]["dam"]["final_losses"]
    assert "render" in provenance["stages"]["lighting"]["final_losses"]
    assert provenance["stages"]["lighting"]["texture_warmup"]["epochs"] == 1
    assert provenance["stages"]["lighting"]["command"].startswith("dlatrack")
    results = provenance["evaluation"]["results"]
    assert results["dam"] and all(r["dam_texture_psnr"] > 10 for r in results["dam"])
    sets = [r["set"] for r in results["lighting"]]
    assert sets == [
        "seen patterns (training frames), held-out cameras",
        "seen patterns (training frames), training cameras",
        "unseen patterns (held-out frames), held-out cameras",
        "unseen patterns (held-out frames), fitting cameras",
        "unseen patterns (held-out frames), known code, held-out cameras",
    ]
    split_sets = {r["set"] for r in results["gain_bias"]}
    assert split_sets == {"fully-lit frames (known codes)", "group-lit frames (known codes)"}
    assert all(0.0 <= r["bias_share"] <= 1.0 and r["gain_mean"] > 0 for r in results["gain_bias"])
    assert all(r["psnr_G"] > 0 and r["psnr_SH"] > 0 and r["psnr_none"] > 0 for r in results["lighting"])
    for r in results["lighting"]:  # the paired G − SH statistic is the difference of the two means
        low, high = r["psnr_G_minus_SH_ci"]
        assert r["psnr_G_minus_SH"] == pytest.approx(r["psnr_G"] - r["psnr_SH"]) and low <= r["psnr_G_minus_SH"] <= high
    # Algorithm 1 (l and φ, registration's fast step-2 schedule) is scored where the code is fitted: unseen patterns.
    assert provenance["evaluation"]["adaptation"]["quality"] == "fast"
    adapted = [r["set"] for r in results["lighting"] if "psnr_G_adapted" in r]
    assert adapted == sets[2:4]
    for r in results["lighting"][2:4]:
        low, high = r["psnr_G_adapted_minus_SH_ci"]
        assert r["psnr_G_adapted_minus_SH"] == pytest.approx(r["psnr_G_adapted"] - r["psnr_SH"])
        assert low <= r["psnr_G_adapted_minus_SH"] <= high
    json.dumps(avatar.config)  # the whole config stays JSON


def test_split_holds_out_cameras_and_frames_of_each_kind(toy):
    split = make_split(toy, holdout_every=2)
    assert split.holdout_cameras == ("cam02",)
    assert split.train_cameras(toy) == [0, 1] and split.test_cameras(toy) == [2]
    held = split.test_frames(toy)
    assert {toy.kinds[i] for i in held} == {"full", "group"}
    assert not set(held) & set(split.train_frames(toy))
    with pytest.raises(ValueError, match=r"held-out camera\(s\) \['nope'\]"):
        make_split(toy, holdout_cameras=["nope"])


def test_train_sample_runs_each_stage_directly_with_the_command_it_records(monkeypatch, tmp_path):
    import argparse
    import sys

    from dlatrack_engine.train import cli

    ran = []
    for name in ("_run_dam", "_run_lighting", "_run_landmarks", "_run_eval"):
        monkeypatch.setattr(cli, name, lambda args, name=name: ran.append((name, cli._command(args))) or 0)
    monkeypatch.setattr(sys, "argv", ["not-this"])  # the stages must not read the process's arguments
    args = argparse.Namespace(data=tmp_path / "ls", out=tmp_path / "avatar", fresh=False, device=None, first_frames=5,
                              name="sample_subject1")
    assert cli._run_sample(args) == 0
    assert [name for name, _ in ran] == ["_run_dam", "_run_lighting", "_run_landmarks", "_run_eval"]
    assert ran[0][1].endswith("--name sample_subject1")  # the avatar's name reaches `train dam`
    lighting = ran[1][1]
    assert lighting.startswith(f"dlatrack train lighting --data {tmp_path / 'ls'} --image-size 128 --first-frames 5")
    assert "--texture-warmup-epochs 120" in lighting and "--experiment" not in lighting
