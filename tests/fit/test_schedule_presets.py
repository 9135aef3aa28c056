"""fit/schedule.py: the presets hold the values docs/method.md ("Schedule presets") and the paper give, the
choices the module docstring documents (λ_Δ, the optimiser units), and a name outside the two is refused."""

from __future__ import annotations

import json

import pytest

from dlatrack_engine.fit.schedule import Schedule, Step1Schedule, Step2Schedule, Step3Schedule


def test_the_paper_schedule_is_the_default_with_the_papers_values():
    paper = Schedule.paper()
    assert paper == Schedule()
    s1, s2, s3 = paper.step1, paper.step2, paper.step3
    # step 1: 1000 iterations, Adam lr 0.1 halved every 500; step 3: "same schedule as step 1"
    assert (s1.iterations, s1.lr, s1.lr_halving) == (1000, 0.1, 500)
    assert (s3.iterations, s3.lr, s3.lr_halving, s3.tolerance, s3.patience) == (
        s1.iterations, s1.lr, s1.lr_halving, s1.tolerance, s1.patience) == (1000, 0.1, 500, 1e-5, 50)
    # Algorithm 1: K = 48, 4 rounds of l (250 it at 1e-2) and φ (500 it at 1e-3); λ_flow = 3.0
    assert (s2.key_frames, s2.rounds, s2.light_iterations, s2.light_lr, s2.model_iterations, s2.model_lr) == (
        48, 4, 250, 1e-2, 500, 1e-3)
    assert s3.flow_weight == 3.0
    # the module docstring's choices: λ_Δ = 0.25, rotation in 0.1 rad and translation in 1 cm units, DIS medium
    assert (paper.laplacian_weight, paper.rotation_unit, paper.translation_unit) == (0.25, 0.1, 0.01)
    assert (paper.dis_preset, paper.work_size) == ("medium", None)
    # the paper optimises p_k with φ in half-round b at the model's lr, with no depth leaf
    assert (s2.pose_lr_scale, s2.depth_unit, s3.depth_unit, s2.reuse_pose_iterations) == (1.0, 0.0, 0.0, 0)
    assert s2.detail_rounds == 0  # and φ is free in every round (no prior on the detail it redraws)
    assert s2.passes == 1  # Algorithm 1 once


def test_the_commented_weights_of_the_priors():
    s1, s3 = Step1Schedule(), Step3Schedule()
    assert (s1.z_prior_weight, s1.jaw_weight) == (1.0, 0.25)
    assert (s1.translation_smoothness, s1.rotation_smoothness) == (0.3, 30.0)
    assert (s3.z_prior_weight, s3.translation_smoothness, s3.rotation_smoothness) == (2e-5, 0.01, 100.0)
    assert (s3.batch_size, Step2Schedule().batch_size) == (16, 8)


def test_the_fast_preset_is_the_documented_one():
    fast = Schedule.preset("fast")
    assert fast == Schedule.fast()
    s1, s2, s3 = fast.step1, fast.step2, fast.step3
    assert (s1.iterations, s1.lr, s1.lr_halving, s1.patience) == (300, 0.1, 150, 30)
    assert (s1.tolerance, s1.z_prior_weight) == (Step1Schedule().tolerance, Step1Schedule().z_prior_weight)
    assert (s2.key_frames, s2.rounds, s2.light_iterations, s2.light_lr) == (48, 2, 40, 3e-2)
    assert (s2.model_iterations, s2.model_lr, s2.batch_size, s2.reuse_pose_iterations) == (120, 1e-3, 8, 160)
    assert s2.model_lr * s2.pose_lr_scale == pytest.approx(2e-2)  # key-frame poses at 20x the model's lr
    assert (s2.depth_unit, fast.dis_preset, fast.work_size) == (0.15, "fast", 128)
    assert (s2.detail_rounds, s2.detail_weight) == (1, 1.0)  # the first of the two rounds pays for φ's detail
    assert s2.passes == 2  # Algorithm 1 restarted once from its own key poses
    assert (s3.iterations, s3.lr, s3.lr_halving, s3.patience, s3.batch_size) == (30, 0.05, 15, 10, 20)
    assert (s3.flow_weight, fast.laplacian_weight) == (3.0, 0.25)  # same losses
    assert Schedule.preset("paper") == Schedule.paper()


def test_an_unknown_preset_is_refused_and_a_schedule_is_plain_data():
    with pytest.raises(ValueError, match=r"^unknown quality preset 'Fast': expected 'fast' or 'paper'$"):
        Schedule.preset("Fast")
    data = Schedule.fast().to_dict()
    assert data["step2"]["depth_unit"] == 0.15 and data["work_size"] == 128
    assert json.loads(json.dumps(data)) == data
    assert Schedule.paper().step1 is not Schedule.paper().step1  # no shared mutable default
