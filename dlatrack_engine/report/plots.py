"""The report's figures (matplotlib, Agg): each function takes plain arrays and returns PNG bytes."""

from __future__ import annotations

import io

import numpy as np

DPI = 100


def _figure(rows: int, height: float = 2.2):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, axes = plt.subplots(rows, 1, figsize=(8, height * rows), sharex=False, squeeze=False)
    return plt, fig, axes[:, 0]


def _png(plt, fig) -> bytes:
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    plt.close(fig)
    return buffer.getvalue()


def _mark_lost(ax, lost: list[int]) -> None:
    for i, frame in enumerate(lost):
        ax.axvline(frame, color="tab:red", alpha=0.3, lw=2, label="no detection" if i == 0 else None)


def series(frames: list[int], curves: list[tuple[str, str, np.ndarray]], lost: list[int]) -> bytes:
    """One panel per (title, unit, values [N]) over source frame indices, frames without a detection shaded."""
    plt, fig, axes = _figure(len(curves))
    for ax, (title, unit, values) in zip(axes, curves, strict=True):
        ax.plot(frames, values, marker=".", lw=1)
        _mark_lost(ax, lost)
        ax.set_title(title, fontsize=10, loc="left")
        ax.set_ylabel(unit)
        ax.grid(alpha=0.3)
        if lost:
            ax.legend(fontsize=8, loc="upper right")
    axes[-1].set_xlabel("video frame")
    return _png(plt, fig)


def losses(step1: tuple[list[int], np.ndarray] | None, step2: np.ndarray | None,
           step3: dict[str, tuple[list[int], np.ndarray]]) -> bytes:
    """Step 1's landmark loss per frame (Eq. 6), step 2's loss per iteration (Algorithm 1, Eq. 7) and step 3's
    pixel and flow terms per frame (Eq. 7 + 8); absent steps are left out."""
    panels = [p for p in (step1 is not None, step2 is not None and len(step2), bool(step3)) if p]
    plt, fig, axes = _figure(max(1, len(panels)))
    axes = list(axes)
    if step1 is not None:
        ax = axes.pop(0)
        ax.plot(step1[0], step1[1], marker=".", lw=1)
        ax.set_title("step 1: landmark loss per frame (Eq. 6)", fontsize=10, loc="left")
        ax.set_xlabel("video frame")
    if step2 is not None and len(step2):
        ax = axes.pop(0)
        ax.plot(np.arange(len(step2)), step2, lw=1)
        ax.set_yscale("log")
        ax.set_title("step 2: lighting adaptation loss (Algorithm 1: l, then φ and p, each round)", fontsize=10,
                     loc="left")
        ax.set_xlabel("iteration")
    if step3:
        ax = axes.pop(0)
        for name, (frames, values) in step3.items():
            ax.plot(frames, values, marker=".", lw=1, label=name)
        ax.set_title("step 3: tracking loss per frame (Eq. 7 + 8)", fontsize=10, loc="left")
        ax.set_xlabel("video frame")
        ax.legend(fontsize=8)
    for ax in fig.axes:
        ax.grid(alpha=0.3)
    return _png(plt, fig)


def lighting(code: np.ndarray | None, frames: list[int], gains: np.ndarray) -> bytes:
    """The video's light code l (one per video, as in the paper) and what the adapted lighting does frame by
    frame: the relit / fully-lit texture ratio per colour channel [N, 3], which moves with the head pose."""
    plt, fig, axes = _figure(2 if code is not None else 1)
    ax = axes[0]
    for channel, colour in enumerate(("tab:red", "tab:green", "tab:blue")):
        ax.plot(frames, gains[:, channel], color=colour, marker=".", lw=1, label="RGB"[channel])
    ax.set_title("adapted lighting over time: relit / fully-lit texture", fontsize=10, loc="left")
    ax.set_xlabel("video frame")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    if code is not None:
        ax = axes[1]
        varying = code.ndim == 2  # a time-varying lighting: l_t per frame, shown as its mean and spread
        ax.bar(np.arange(code.shape[-1]), code.mean(0) if varying else code, width=1.0, color="tab:orange",
               yerr=code.std(0) if varying else None, ecolor="tab:grey")
        ax.set_title("light code l_t of the video: mean and spread over frames" if varying
                     else "light code l of the video", fontsize=10, loc="left")
        ax.set_xlabel("light group")
        ax.grid(alpha=0.3)
    return _png(plt, fig)
