"""results.csv, summary.md and the figures from a sweep's output folder (reads only finished runs).

Pairing in the significance test: a "problem" is one (seed, held-out maze); the two methods compared share the
seed's SFT model and the maze, and sample j of one is paired with sample j of the other (the package's paired
m-out-of-n subsampling test). Problems of all seeds present in both methods are pooled, so the statistic is
the mean pass@k over seeds and mazes.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from verl_focal.evaluation.nll_rare import delta_nll_rare
from verl_focal.evaluation.passk import pass_at_k
from verl_focal.evaluation.significance import paired_subsampling_test

COLUMNS = ("method", "gamma", "group_size", "seed", "step", "k", "pass_at_k")
TABLE_KS = (1, 128, 256)
MAX_K = 256


def load_runs(out: Path) -> list[dict]:
    """Every finished run: its spec, {step: (M, n) bool}, train (steps, 2), rare NLL (trained, base)."""
    runs = []
    for d in sorted((out / "runs").glob("*/result.json")):
        spec = json.loads(d.read_text())
        with np.load(d.parent / "evals.npz") as z:
            evals = {int(k[4:]): z[k] for k in z.files}
        train = np.loadtxt(d.parent / "train.csv", delimiter=",", skiprows=1, ndmin=2)
        rare_path = out / "sft" / f"seed{spec['seed']}" / "rare_set.pt"
        base = _base_nll(rare_path)
        runs.append({**spec, "evals": evals, "train": train, "rare": (np.load(d.parent / "rare_nll.npy"), base)})
    return runs


def _base_nll(path: Path) -> np.ndarray:
    import torch

    return torch.load(path)["base_nll"].numpy()


def key(run: dict) -> tuple[str, float]:
    return run["estimator"], float(run["gamma"])


def label(method: tuple[str, float]) -> str:
    return method[0] if method[1] == 0 else f"{method[0]} γ={method[1]:g}"


def mean_pass(correct: np.ndarray, k: int) -> np.ndarray:
    """(M,) pass@k per maze from an (M, n) bool matrix."""
    return pass_at_k(correct.shape[1], correct.sum(axis=1), k)


def write_results_csv(runs: list[dict], path: Path) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for r in runs:
            for step, correct in sorted(r["evals"].items()):
                n, counts = correct.shape[1], correct.sum(axis=1)
                for k in range(1, min(MAX_K, n) + 1):
                    w.writerow((r["estimator"], r["gamma"], r["group_size"], r["seed"], step, k,
                                f"{pass_at_k(n, counts, k).mean():.6f}"))


def final(run: dict) -> np.ndarray:
    return run["evals"][max(run["evals"])]


def cell(runs: list[dict], k: int, rng: np.random.Generator) -> tuple[float, float, float]:
    """Mean pass@k over seeds and mazes, and a 95% bootstrap interval resampling mazes (seed-averaged)."""
    per_maze = np.mean([mean_pass(final(r), min(k, final(r).shape[1])) for r in runs], axis=0)
    boots = per_maze[rng.integers(0, per_maze.size, size=(2000, per_maze.size))].mean(axis=1)
    return float(per_maze.mean()), *np.quantile(boots, [0.025, 0.975]).tolist()


def grouped(runs: list[dict]) -> dict:
    out: dict = {}
    for r in runs:
        out.setdefault((key(r), r["group_size"]), []).append(r)
    return out


def table4(runs: list[dict]) -> list[str]:
    groups, rng = grouped(runs), np.random.default_rng(0)
    methods = sorted({m for m, _ in groups}, key=lambda m: (m[1], m[0]))
    sizes = sorted({n for _, n in groups})
    head = "| N | " + " | ".join(f"p@{k} {label(m)}" for k in TABLE_KS for m in methods) + " |"
    lines = [head, "|" + "---|" * (1 + len(TABLE_KS) * len(methods))]
    for n in sizes:
        cells = []
        for k in TABLE_KS:
            for m in methods:
                rs = groups.get((m, n))
                if rs:
                    mean, lo, hi = cell(rs, k, rng)
                    cells.append(f"{100 * mean:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]")
                else:
                    cells.append("–")
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    return lines


def _paired(a_runs: list[dict], b_runs: list[dict], iterations: int):
    seeds = sorted({r["seed"] for r in a_runs} & {r["seed"] for r in b_runs})
    if not seeds:
        return None, seeds
    pick = lambda rs, s: final(next(r for r in rs if r["seed"] == s))  # noqa: E731
    a = np.concatenate([pick(a_runs, s) for s in seeds])
    b = np.concatenate([pick(b_runs, s) for s in seeds])
    n = min(a.shape[1], b.shape[1])
    m = min(MAX_K, n // 2) if n >= 2 else 1
    ks = sorted({1, m})
    return paired_subsampling_test(a[:, :n], b[:, :n], ks=ks, m=m, iterations=iterations), seeds


def significance(runs: list[dict], baseline: str, iterations: int) -> list[str]:
    """Focal methods vs ``baseline`` at equal N, and focal at N vs baseline at 4N."""
    groups = grouped(runs)
    base = (baseline, 0.0)
    lines = ["| comparison | seeds | k | A | B | A − B | 95% interval | significant |", "|---|---|---|---|---|---|---|---|"]
    pairs = []
    for (m, n) in sorted(groups, key=lambda x: (x[1], x[0])):
        if m == base:
            continue
        for n_b in (n, 4 * n):
            if (base, n_b) in groups:
                pairs.append((f"{label(m)} N={n} vs {baseline} N={n_b}", groups[(m, n)], groups[(base, n_b)]))
    for name, a_runs, b_runs in pairs:
        res, seeds = _paired(a_runs, b_runs, iterations)
        for k, d in (res or {}).items():
            lines.append(f"| {name} | {','.join(map(str, seeds))} | {k} | {100 * d.pass_a:.1f} | {100 * d.pass_b:.1f} | "
                         f"{100 * d.difference:+.1f} | [{100 * d.ci_low:+.1f}, {100 * d.ci_high:+.1f}] | "
                         f"{'yes' if d.significant else 'no'} |")
    return lines


def nll_table(runs: list[dict]) -> list[str]:
    lines = ["| method | N | ΔNLL_rare | 95% bootstrap interval | rare set size (all seeds) |", "|---|---|---|---|---|"]
    for (m, n), rs in sorted(grouped(runs).items(), key=lambda x: (x[0][1], x[0][0])):
        trained = np.concatenate([r["rare"][0] for r in rs])
        base = np.concatenate([r["rare"][1] for r in rs])
        if trained.size == 0:
            lines.append(f"| {label(m)} | {n} | – | no correct base sample | 0 |")
            continue
        d = delta_nll_rare(trained, base)
        lines.append(f"| {label(m)} | {n} | {d.mean:+.4f} | [{d.low:+.4f}, {d.high:+.4f}] | {d.n} |")
    return lines


def write_summary(runs: list[dict], path: Path, baseline: str, iterations: int, header: list[str]) -> None:
    steps = sorted({max(r["evals"]) for r in runs})
    body = [*header, "", f"Held-out pass@k (%) at the final step ({', '.join(map(str, steps))}); mean over seeds "
            "and mazes, [95% bootstrap interval over mazes].", "", *table4(runs), "",
            f"Paired subsampling test (seed x maze problems pooled; sample j paired; {iterations} draws).", "",
            *significance(runs, baseline, iterations), "",
            "ΔNLL_rare at the final step (rare set: top 1% by base NLL of the SFT model's distinct correct samples "
            "on a fixed set of training mazes, per seed; pooled over seeds).", "", *nll_table(runs), ""]
    path.write_text("\n".join(body))


def _method_colors(methods):
    import matplotlib.pyplot as plt

    cmap = plt.get_cmap("tab10")
    return {m: cmap(i % 10) for i, m in enumerate(methods)}


def figure6(runs: list[dict], path: Path) -> None:
    """-log pass@K against N at the final step, one panel per K (the paper's Figure 6)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = grouped(runs)
    methods = sorted({m for m, _ in groups}, key=lambda m: (m[1], m[0]))
    colors = _method_colors(methods)
    fig, axes = plt.subplots(1, len(TABLE_KS), figsize=(4 * len(TABLE_KS), 3.2))
    for ax, k in zip(np.atleast_1d(axes), TABLE_KS):
        for m in methods:
            sizes = sorted(n for mm, n in groups if mm == m)
            vals = [np.mean([mean_pass(final(r), min(k, final(r).shape[1])).mean() for r in groups[(m, n)]]) for n in sizes]
            ax.plot(sizes, -np.log(np.clip(vals, 1e-6, None)), "o-", color=colors[m], label=label(m))
        ax.set_xscale("log", base=2)
        ax.set_xlabel("group size N")
        ax.set_title(f"−log pass@{k}")
    np.atleast_1d(axes)[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def figure7(runs: list[dict], path: Path, window: int = 10) -> None:
    """Training reward (moving average), held-out pass@1 and pass@256 against step, one column per N."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = grouped(runs)
    methods = sorted({m for m, _ in groups}, key=lambda m: (m[1], m[0]))
    sizes = sorted({n for _, n in groups})
    colors = _method_colors(methods)
    fig, axes = plt.subplots(3, len(sizes), figsize=(3.6 * len(sizes), 8), squeeze=False)
    for col, n in enumerate(sizes):
        for m in methods:
            rs = groups.get((m, n))
            if not rs:
                continue
            reward = np.mean([r["train"][:, 1] for r in rs], axis=0)
            w = max(1, min(window, reward.size))
            axes[0, col].plot(np.convolve(reward, np.ones(w) / w, mode="valid"), color=colors[m], label=label(m))
            steps = sorted(rs[0]["evals"])
            for row, k in ((1, 1), (2, MAX_K)):
                vals = [np.mean([mean_pass(r["evals"][s], min(k, r["evals"][s].shape[1])).mean() for r in rs]) for s in steps]
                axes[row, col].plot(steps, vals, "o-", color=colors[m])
        axes[0, col].set_title(f"N = {n}")
        axes[2, col].set_xlabel("RL step")
    for row, name in enumerate(("train reward", "held-out pass@1", f"held-out pass@{MAX_K}")):
        axes[row, 0].set_ylabel(name)
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(out: Path, baseline: str, iterations: int, header: list[str]) -> list[dict]:
    """All outputs from the finished runs in ``out``; returns the runs."""
    runs = load_runs(out)
    if not runs:
        raise ValueError(f"{out}: no finished run to report")
    write_results_csv(runs, out / "results.csv")
    write_summary(runs, out / "summary.md", baseline, iterations, header)
    figure6(runs, out / "maze_figure6.png")
    figure7(runs, out / "maze_figure7.png")
    return runs
