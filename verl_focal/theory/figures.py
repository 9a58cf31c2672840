"""Figures of the categorical simulation in the layout of the paper's Figure 2 (matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from verl_focal.theory.simulation import FIGURE2_GROUP_SIZES


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path, title: str) -> Path:
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    _pyplot().close(fig)
    return path


def plot_dynamics(trajectories: pd.DataFrame, path: Path, group_sizes=FIGURE2_GROUP_SIZES, title: str = "") -> Path:
    """Q_pos(t) and M_ret(t), mean over seeds; one colour per N, solid gamma = 0, dashed gamma > 0."""
    plt = _pyplot()
    mean = trajectories.groupby(["group_size", "gamma", "step"])[["q_pos", "m_ret"]].mean().reset_index()
    shown = [n for n in group_sizes if n in set(mean["group_size"])]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), dpi=90)
    colours = plt.get_cmap("viridis")
    for i, n in enumerate(shown):
        colour = colours(i / max(len(shown) - 1, 1))
        for gamma, runs in mean[mean["group_size"] == n].groupby("gamma"):
            style = "-" if gamma == 0 else "--"
            label = f"N={n}, γ={gamma:g}"
            axes[0].plot(runs["step"], runs["q_pos"], style, color=colour, label=label, lw=1.4)
            axes[1].plot(runs["step"], runs["m_ret"], style, color=colour, label=label, lw=1.4)
    axes[0].set(xlabel="step", ylabel="$Q_{pos}$ (correct mass)")
    axes[1].set(xlabel="step", ylabel="$M_{ret}$ (retained positive mass)", ylim=(-0.02, 1.02))
    axes[1].legend(fontsize=7, ncol=2, loc="lower left")
    for ax in axes:
        ax.grid(alpha=0.3)
    return _save(fig, path, title)


def plot_final(final: pd.DataFrame, path: Path, title: str = "") -> Path:
    """Final Q_pos and M_ret against N (log2 axis), one line per gamma, seed std as error bars."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), dpi=90)
    for gamma, rows in final.groupby("gamma"):
        style = "o-" if gamma == 0 else "s--"
        for ax, metric in zip(axes, ("q_pos", "m_ret")):
            ax.errorbar(
                rows["group_size"], rows[f"{metric}_mean"], yerr=rows[f"{metric}_std"].fillna(0.0),
                fmt=style, ms=4, capsize=2, lw=1.2, label=f"γ={gamma:g}",
            )
    axes[0].set(xscale="log", xlabel="group size N", ylabel="final $Q_{pos}$")
    axes[1].set(xscale="log", xlabel="group size N", ylabel="final $M_{ret}$", ylim=(-0.02, 1.02))
    for ax in axes:
        ax.set_xscale("log", base=2)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _save(fig, path, title)
