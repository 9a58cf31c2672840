"""The sweep: one SFT model per seed (cached, shared by every method of that seed), then one RL run per
(estimator, gamma, N, seed) in worker processes (one torch thread each). Resumable: every finished SFT and
run writes its own files under ``OUT/sft/seed<S>/`` (model, rare set) and ``OUT/runs/<run>/`` (evaluations,
training log, final model, rare-set NLL) and is skipped when they exist.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from verl_focal.evaluation.nll_rare import rare_correct_set
from verl_focal.experiments.maze import training
from verl_focal.experiments.maze.model import initial_model
from verl_focal.experiments.maze.training import Settings


@dataclass(frozen=True)
class Run:
    estimator: str
    gamma: float
    group_size: int
    seed: int

    @property
    def name(self) -> str:
        return f"{self.estimator}_g{self.gamma:g}_N{self.group_size}_s{self.seed}"


def is_focal(estimator: str) -> bool:
    """Estimators that read ``algorithm.focal.gamma``: verl-focal's ``focal_*`` names."""
    return estimator.startswith("focal_")


def grid(estimators, gammas, group_sizes, seeds) -> list[Run]:
    """focal_* estimators run at every gamma > 0 of the list; any other estimator once, recorded as gamma 0."""
    runs = []
    for est in estimators:
        for g in ([g for g in gammas if g > 0] if is_focal(est) else [0.0]):
            runs += [Run(est, float(g), int(n), int(s)) for n in group_sizes for s in seeds]
    # longest first (cost grows with N), so the pool's last runs are short
    return sorted(runs, key=lambda r: (-r.group_size, r.seed, r.estimator, r.gamma))


def _worker_init() -> None:
    torch.set_num_threads(1)


def sft_dir(out: Path, seed: int) -> Path:
    return out / "sft" / f"seed{seed}"


def run_sft(out: Path, s: Settings, seed: int) -> str:
    """Train and cache the seed's SFT model and its rare-correct set (ΔNLL_rare's fixed base trajectories)."""
    d = sft_dir(out, seed)
    _, _, exclude = training.maze_sets(s)
    t0 = time.time()
    if (d / "done.json").exists():
        message = f"sft seed {seed}: cached"
        model = initial_model(s.model, seed)
        model.load_state_dict(torch.load(d / "model.pt"))
    else:
        d.mkdir(parents=True, exist_ok=True)
        model, losses = training.sft(s, seed, exclude)
        torch.save(model.state_dict(), d / "model.pt")
        (d / "done.json").write_text(json.dumps({"seconds": time.time() - t0, "final_loss": losses[-1]}))
        message = f"sft seed {seed}: {time.time() - t0:.0f}s, loss {losses[-1]:.3f}"
    if (d / "rare_set.pt").exists():
        return message
    prompts, responses = training.rare_candidates(model, s, seed, exclude)
    base = training.sequence_nll(model, prompts, responses)
    rare = rare_correct_set(base) if base.size else np.zeros(0, dtype=np.int64)
    torch.save({"prompts": prompts[rare], "responses": responses[rare], "base_nll": torch.from_numpy(base[rare]),
                "num_distinct_correct": int(base.size)}, d / "rare_set.pt")
    return f"{message}; rare set {rare.size} of {base.size} distinct correct base trajectories"


def run_dir(out: Path, run: Run) -> Path:
    return out / "runs" / run.name


def run_one(out: Path, s: Settings, run: Run) -> str:
    """One RL run from its seed's SFT model; writes evals.npz, train.csv, model.pt, rare_nll.npy, result.json last."""
    d = run_dir(out, run)
    if (d / "result.json").exists():
        return f"{run.name}: cached"
    d.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    held, _, exclude = training.maze_sets(s)
    model = initial_model(s.model, run.seed)
    model.load_state_dict(torch.load(sft_dir(out, run.seed) / "model.pt"))
    result = training.run_rl(model, s, run.estimator, run.gamma, run.group_size, run.seed, exclude,
                             training.tensors(held, s))
    np.savez_compressed(d / "evals.npz", **{f"step{k}": v for k, v in result["evals"].items()})
    np.savetxt(d / "train.csv", np.asarray(result["train"]), delimiter=",", header="step,reward", comments="")
    torch.save(model.state_dict(), d / "model.pt")
    rare = torch.load(sft_dir(out, run.seed) / "rare_set.pt")
    np.save(d / "rare_nll.npy", training.sequence_nll(model, rare["prompts"], rare["responses"]))
    (d / "result.json").write_text(json.dumps({**asdict(run), "seconds": time.time() - t0}))
    return f"{run.name}: {time.time() - t0:.0f}s"


def _pool(workers: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"), initializer=_worker_init)


def _drain(futures, say, bar) -> None:
    for future in as_completed(futures):
        say(future.result())
        if bar is not None:
            bar.update(1)


def execute(out: Path, s: Settings, runs: list[Run], workers: int, say=print, bar_factory=None) -> None:
    """SFT for every seed of ``runs``, then every run; ``workers`` processes (1 = in this process)."""
    seeds = sorted({r.seed for r in runs})
    jobs = [("sft", seed) for seed in seeds], [("rl", r) for r in runs]
    for label, batch in zip(("sft", "rl"), jobs):
        bar = bar_factory(len(batch), label) if bar_factory else None
        fn = run_sft if label == "sft" else run_one
        if workers == 1:
            for _, arg in batch:
                _worker_init()
                say(fn(out, s, arg))
                if bar is not None:
                    bar.update(1)
        else:
            with _pool(workers) as pool:
                _drain([pool.submit(fn, out, s, arg) for _, arg in batch], say, bar)
        if bar is not None:
            bar.close()
