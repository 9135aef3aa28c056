"""The registration schedule (docs/method.md, "Schedule presets"): iterations, learning rates, K, loss weights.

Defaults are the paper's values (`Schedule.paper()`); `Schedule.fast()` is the preset that tracks a
60-frame 256² clip on 2 CPU cores in minutes. Choices the paper leaves open are documented here.

λ_Δ (`laplacian_weight`, Eq. 7) = 0.25. The paper gives no value. For a residual that is i.i.d. per pixel
(misalignment of fine texture, noise) the 5-point Laplacian multiplies its L1 norm by about √20 ≈ 4.5,
so λ_Δ = 0.25 makes the two terms weigh high-frequency (alignment) residue about equally, while
low-frequency lighting residue - which the Laplacian removes - is weighed by the plain L1 term alone.
A larger λ_Δ lets edge alignment dominate, a smaller one lets a wrong overall brightness pull the pose.

Parameter units: Adam's step is about `lr` in parameter units whatever the loss scale, so the pose is
optimised in scaled units - rotation in `rotation_unit` = 0.1 rad, translation in `translation_unit` = 1 cm -
so the paper's lr 0.1 moves the head by about 0.6° / 1 mm per iteration: it crosses a typical landmark
initialisation error (~0.1 rad, ~1 cm) in tens of iterations and settles below 0.1° / 0.1 mm once halved.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field


@dataclass
class Step1Schedule:
    """Eq. 6, landmark initialisation: Adam, lr halved every `lr_halving` iterations; early stop when the
    loss improved by less than `tolerance` (relative) over `patience` iterations."""

    iterations: int = 1000
    lr: float = 0.1
    lr_halving: int = 500
    tolerance: float = 1e-5
    patience: int = 50
    # Pull of z to 0, the DAM's latent prior N(0, I), against the squared landmark error in working pixels:
    # 68 noisy points cannot pin the code. At 1e-3 step 1 left |z| ≈ 30 (the code fitted to the true mesh
    # has |z| ≈ 11), a texture far from the true one; at 1 it stays below 1 and the mesh error falls
    # (bench/RESULTS.md, "registration against the ground truth"). Expression then comes from step 3's pixels.
    z_prior_weight: float = 1.0
    # iBUG jaw points 0-16 are silhouette points: where a detector puts them depends on the view, not on a
    # fixed mesh point (MediaPipe's sit 11-16 px from the sample subject's at 256², other groups 2-10 px).
    jaw_weight: float = 0.25
    # Temporal prior (losses.acceleration_penalty) against squared working pixels: per-frame landmark noise
    # moves the head's depth by centimetres from frame to frame (1 % of landmark scale is ~10 mm), while a
    # real head accelerates little between frames. Weights per mm² of translation acceleration and per unit
    # of ‖ΔR‖²_F; 0 turns the prior off (frames fitted independently, as Eq. 6 alone). At 0.3 / 30 the five
    # 24-frame sample clips' tracked jitter fell from 24 to 5.9 mm (bench/RESULTS.md, "registration against
    # the ground truth").
    translation_smoothness: float = 0.3
    rotation_smoothness: float = 30.0


@dataclass
class Step2Schedule:
    """Algorithm 1, lighting adaptation on K key frames: `rounds` x {l: light_iterations at light_lr;
    φ and p_k: model_iterations at model_lr}."""

    key_frames: int = 48
    rounds: int = 4
    light_iterations: int = 250
    light_lr: float = 1e-2
    model_iterations: int = 500
    model_lr: float = 1e-3
    pose_lr_scale: float = 1.0  # p_k step relative to model_lr (scaled pose units); 0 = keep step-1 poses
    batch_size: int = 8  # key frames per optimisation step (memory bound on CPU)
    depth_unit: float = 0.0  # log depth per optimiser unit of p_k's depth leaf (params.py; 0 = none)
    # The prior on the detail φ redraws (fit/detail_prior.py): paid in half-round b of the first `detail_rounds`
    # rounds (0 = never: the paper), weighted against Eq. 7's 8-bit levels. The later rounds leave φ free to add
    # the texture detail the wild lighting needs, from poses the first round has put closer to the truth.
    detail_rounds: int = 0
    detail_weight: float = 1.0
    # Refinement when the lighting is reused from another take (step2.refine_key_poses, issue 27): p_k
    # iterations over all rounds; 0 = rounds x model_iterations, what half-rounds b give p_k.
    reuse_pose_iterations: int = 0
    # Algorithm 1 run this many times, each from a fresh l and φ and from the previous pass's p_k (1 = the
    # paper). Only where p_k move (the network adapted, pose_lr_scale > 0): otherwise a pass repeats the last.
    passes: int = 1


@dataclass
class Step3Schedule:
    """Eq. 7 + Eq. 8 per-frame tracking with G and l fixed; "same schedule as step 1"."""

    iterations: int = 1000
    lr: float = 0.1
    lr_halving: int = 500
    tolerance: float = 1e-5
    patience: int = 50
    flow_weight: float = 3.0  # λ_flow, with Eq. 7 and 8 as means (fit/losses.py)
    batch_size: int = 16
    # Pull of z to 0 against the mean image residual (8-bit levels): 2e-5 keeps the balance the first
    # version had against a pixel *sum* in [0, 1] over a ~4000-pixel face (1e-3 x 255 / 12000).
    z_prior_weight: float = 2e-5
    depth_unit: float = 0.0  # log depth per optimiser unit of each frame's depth leaf (params.py; 0 = none)
    # Temporal prior on the frames of a batch (losses.acceleration_penalty, accelerations per video frame²),
    # against Eq. 7's mean 8-bit residual: per mm² of translation acceleration and per unit of ‖ΔR‖²_F; 0 = off.
    # Not in the paper. At 0.01 / 100 the tracked jitter of three sample clips fell 3.46 / 2.06 / 2.74 ->
    # 1.62 / 1.42 / 2.24 mm with the vertex error 0.03-0.12 mm lower; 5x more cost depth on one of them
    # (bench/RESULTS.md, "a temporal prior in step 3").
    translation_smoothness: float = 0.01
    rotation_smoothness: float = 100.0


@dataclass
class Schedule:
    """Everything the three steps need; `paper()` is the default."""

    step1: Step1Schedule = field(default_factory=Step1Schedule)
    step2: Step2Schedule = field(default_factory=Step2Schedule)
    step3: Step3Schedule = field(default_factory=Step3Schedule)
    laplacian_weight: float = 0.25  # λ_Δ of Eq. 7, see module docstring
    rotation_unit: float = 0.1  # radians per optimiser unit
    translation_unit: float = 0.01  # metres per optimiser unit
    dis_preset: str = "medium"  # OpenCV DIS preset for Eq. 8: ultrafast | fast | medium
    work_size: int | None = None  # longer image side for steps 2-3 (frames and K scaled down); None = full

    @classmethod
    def paper(cls) -> Schedule:
        """The paper's full schedule: 1000 it step 1; 4 x (250 + 500) step 2; K = 48; λ_flow = 3.0."""
        return cls()

    @classmethod
    def fast(cls) -> Schedule:
        """Minutes on 2 CPU cores for 60 frames at 256²: fewer, larger steps, images at 128 px for steps 2-3
        (the CPU rasteriser's cost grows with pixels); same losses, same K. The key-frame poses p_k move
        with φ in step 2 at 20x the model's lr (0.02 scaled units: 0.2 mm / 0.1° per iteration), so that
        the lighting does not absorb step 1's pose error (bench/RESULTS.md, "registration against the ground
        truth"). Steps 2-3 also move each head along its viewing ray through a log-depth leaf (`depth_unit`
        0.15: 0.3 % of the distance per step-2 iteration): step 1 leaves centimetres of depth error that
        0.2 mm steps of t, taken by each key frame once per K / batch_size iterations, cannot undo.
        Half-round b runs 120 iterations: at 80 step 2 had not converged (on nine 24-frame clips 120 gave
        +0.7 dB PSNR, -0.2° rotation and -0.8 mm vertex error on the means, for +37 % of the wall time;
        bench/RESULTS.md, "step 2's iterations"). A reused lighting's refinement keeps its measured 160
        key-pose iterations (issue 27). The first round's φ pays for the fine detail it redraws
        (`detail_rounds` 1, fit/detail_prior.py), so that it cannot paint the key poses' error into the
        texture (bench/RESULTS.md, "a prior on the detail φ redraws"). Algorithm 1 runs twice (`passes` 2), the
        second time from the first's key poses with fresh lighting, since each pass's φ absorbs part of its
        start's pose error (bench/RESULTS.md, "Algorithm 1 restarted from its own key poses")."""
        return cls(
            step1=Step1Schedule(iterations=300, lr=0.1, lr_halving=150, patience=30),
            step2=Step2Schedule(key_frames=48, rounds=2, light_iterations=40, light_lr=3e-2,
                                model_iterations=120, model_lr=1e-3, pose_lr_scale=20.0, batch_size=8,
                                depth_unit=0.15, reuse_pose_iterations=160, detail_rounds=1, passes=2),
            step3=Step3Schedule(iterations=30, lr=0.05, lr_halving=15, patience=10, batch_size=20),
            dis_preset="fast",
            work_size=128,
        )

    @classmethod
    def preset(cls, name: str) -> Schedule:
        if name == "paper":
            return cls.paper()
        if name == "fast":
            return cls.fast()
        raise ValueError(f"unknown quality preset '{name}': expected 'fast' or 'paper'")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
