"""Experiments on G's training: measured on the sample light stage, not part of the shipped training.

The shipped avatar is trained by the texture-space warm-up and Eq. 4-5 alone (train/texture_warmup.py,
train/lighting_trainer.py). Each experiment here is switched on by one `--experiment NAME=VALUE` of
`dlatrack train lighting` (registry.py); the trainers see only the `LossTerm` hook (hook.py), so none of
them is wired into the shipped path. What each one measured, and why it is not shipped, is in
bench/RESULTS.md ("what makes G generalise").
"""
