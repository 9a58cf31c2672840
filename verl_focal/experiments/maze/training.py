"""SFT warm-up on target paths, held-out evaluation, and the RL loop (``rl_step`` once per step).

All randomness comes from the run's seed: mazes from ``TrainingStream(seed)``, sampling from a
``torch.Generator``. Evaluation draws ``n`` samples per maze and returns the (M, n) correctness matrix.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from verl_focal.experiments.maze import generator as gen
from verl_focal.experiments.maze.model import ModelConfig, initial_model, response_logprobs, response_mask, sample
from verl_focal.experiments.maze.rl_step import actor_config, algorithm_config, rewards_of, rl_step


@dataclass(frozen=True)
class Settings:
    """Everything a run depends on besides (estimator, gamma, N, seed)."""

    rows: int = 4
    cols: int = 4
    model: ModelConfig = field(default_factory=ModelConfig)
    sft_steps: int = 1000
    sft_batch: int = 64
    sft_lr: float = 1e-3
    rl_steps: int = 150
    rl_prompts: int = 32
    rl_lr: float = 1e-3
    eval_steps: tuple = (0, 25, 50, 100)
    eval_mazes: int = 128
    eval_samples: int = 256
    final_samples: int = 512
    rare_mazes: int = 1024
    rare_samples: int = 256
    dev_mazes: int = 128
    chunk_rows: int = 4096

    @property
    def max_response(self) -> int:
        return self.rows * self.cols  # the longest simple path has rows*cols - 1 moves, plus <eos>


HELDOUT_SEED, DEV_SEED = 10_000_019, 20_000_003


def maze_sets(s: Settings) -> tuple[list, list, frozenset]:
    """(held-out, dev, excluded hashes): dev mazes are disjoint from held-out ones; training excludes both."""
    held = gen.maze_set(HELDOUT_SEED, s.eval_mazes, s.rows, s.cols)
    held_hashes = frozenset(gen.maze_hash(m) for m in held)
    dev = gen.maze_set(DEV_SEED, s.dev_mazes, s.rows, s.cols, exclude=held_hashes)
    return held, dev, held_hashes | {gen.maze_hash(m) for m in dev}


def tensors(mazes, s: Settings) -> tuple[torch.Tensor, torch.Tensor]:
    prompts, targets = gen.encode(mazes, s.max_response)
    return torch.from_numpy(prompts), torch.from_numpy(targets)


def sft(s: Settings, seed: int, exclude: frozenset):
    """A fresh model trained by teacher forcing on fresh mazes' target paths; returns (model, losses)."""
    model = initial_model(s.model, seed)
    stream = gen.TrainingStream(seed, s.rows, s.cols, exclude)
    opt = torch.optim.AdamW(model.parameters(), lr=s.sft_lr)
    losses = []
    model.train()
    for _ in range(s.sft_steps):
        prompts, targets = tensors(stream.draw(s.sft_batch), s)
        mask = response_mask(targets)
        loss = -(response_logprobs(model, prompts, targets, 1) * mask).sum() / mask.sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return model, losses


def evaluate(model, prompts: torch.Tensor, targets: torch.Tensor, n: int, generator, chunk_rows: int) -> np.ndarray:
    """(M, n) bool correctness of n temperature-1 samples per maze."""
    model.eval()
    per = max(1, chunk_rows // n)
    out = []
    for i in range(0, prompts.shape[0], per):
        responses, _, _ = sample(model, prompts[i : i + per], n, targets.shape[1], generator)
        ok = rewards_of(responses, targets[i : i + per].repeat_interleave(n, dim=0))
        out.append(ok.view(-1, n).bool().numpy())
    return np.concatenate(out)


def run_rl(model, s: Settings, estimator: str, gamma: float, n: int, seed: int, exclude: frozenset,
           held: tuple, progress=None) -> dict:
    """RL from the SFT model; returns {"train": [(step, reward)], "evals": {step: (M, n') bool}}."""
    stream = gen.TrainingStream(seed + 1_000, s.rows, s.cols, exclude)
    generator = torch.Generator().manual_seed(seed * 7919 + n)
    eval_gen = torch.Generator().manual_seed(seed * 104729)
    opt = torch.optim.AdamW(model.parameters(), lr=s.rl_lr)
    algo, actor = algorithm_config(gamma), actor_config()
    train, evals = [], {}
    for step in range(s.rl_steps + 1):
        if step in s.eval_steps or step == s.rl_steps:
            samples = s.final_samples if step == s.rl_steps else s.eval_samples
            evals[step] = evaluate(model, *held, samples, eval_gen, s.chunk_rows)
        if step == s.rl_steps:
            break
        prompts, targets = tensors(stream.draw(s.rl_prompts), s)
        metrics = rl_step(model, opt, prompts, targets, n, estimator, algo, actor, generator)
        train.append((step, metrics["reward"]))
        if progress is not None:
            progress(step)
    return {"train": train, "evals": evals}


def rare_candidates(model, s: Settings, seed: int, exclude: frozenset):
    """Distinct correct base-model samples on a fixed set of training mazes: (prompts, responses).

    A maze has one correct response, so its correct samples are copies of one trajectory; they are counted
    once (otherwise the top 1% is a few mazes' paths repeated, and ΔNLL_rare measures two or three mazes).
    """
    mazes = gen.TrainingStream(seed + 2_000, s.rows, s.cols, exclude).draw(s.rare_mazes)
    prompts, targets = tensors(mazes, s)
    model.eval()
    generator = torch.Generator().manual_seed(seed + 3)
    keep_p, keep_r = [], []
    per = max(1, s.chunk_rows // s.rare_samples)
    for i in range(0, len(mazes), per):
        p = prompts[i : i + per]
        responses, _, _ = sample(model, p, s.rare_samples, s.max_response, generator)
        ok = rewards_of(responses, targets[i : i + per].repeat_interleave(s.rare_samples, dim=0)).bool()
        keep_p.append(p.repeat_interleave(s.rare_samples, dim=0)[ok])
        keep_r.append(responses[ok])
    pairs = torch.unique(torch.cat([torch.cat(keep_p), torch.cat(keep_r)], dim=1), dim=0)
    return pairs[:, : prompts.shape[1]], pairs[:, prompts.shape[1] :]


@torch.no_grad()
def sequence_nll(model, prompts: torch.Tensor, responses: torch.Tensor, batch: int = 4096) -> np.ndarray:
    """Length-normalised NLL of each response (tokens up to and including <eos>) under ``model``; (B,)."""
    from verl_focal.evaluation.nll_rare import length_normalised_nll

    model.eval()
    out = []
    for i in range(0, prompts.shape[0], batch):
        r = responses[i : i + batch]
        logp = response_logprobs(model, prompts[i : i + batch], r, 1)
        out.append(length_normalised_nll(logp.numpy(), response_mask(r).numpy()))
    return np.concatenate(out) if out else np.zeros(0)
