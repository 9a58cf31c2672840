"""verl-focal maze: generator, KV-cache sampling, the RL step's advantages through verl's registry, and a
CI-sized sweep through the command line (outputs, resume)."""

import csv
import json

import numpy as np
import pytest
import torch

import verl  # noqa: F401  - loads verl_focal's estimators
from verl.trainer.ppo import core_algos

from verl_focal.experiments.maze import generator as gen
from verl_focal.experiments.maze import rl_step, training
from verl_focal.experiments.maze.cli import main as maze_main
from verl_focal.experiments.maze.model import ModelConfig, full_logprobs, initial_model, response_logprobs, sample


def count_simple_paths(maze, cell, goal, seen):
    if cell == goal:
        return 1
    total = 0
    for _, nxt in gen.neighbours(maze, cell):
        if nxt not in seen:
            total += count_simple_paths(maze, nxt, goal, seen | {nxt})
    return total


@pytest.mark.parametrize("rows,cols", [(3, 3), (4, 4), (2, 5)])
def test_mazes_are_perfect_and_the_path_is_the_only_one(rows, cols):
    rng = np.random.default_rng(rows * 10 + cols)
    for _ in range(30):
        maze = gen.generate(rng, rows, cols)
        assert gen.passages(maze) == rows * cols - 1  # a spanning tree: connected + acyclic
        assert count_simple_paths(maze, maze.start, maze.goal, {maze.start}) == 1
        cell = maze.start
        for move in gen.solve(maze):  # the BFS path walks through open passages only, to the goal
            assert move in dict(gen.neighbours(maze, cell))
            cell = dict(gen.neighbours(maze, cell))[move]
        assert cell == maze.goal != maze.start


def test_tokenisation_round_trip():
    rng = np.random.default_rng(1)
    for _ in range(20):
        maze = gen.generate(rng, 4, 5)
        back = gen.decode_prompt(gen.prompt_tokens(maze), 4, 5)
        assert np.array_equal(back.grid, maze.grid) and back.start == maze.start and back.goal == maze.goal
        assert gen.target_tokens(maze)[-1] == gen.EOS
        assert len(gen.target_tokens(maze)) == len(gen.solve(maze)) + 1


def test_held_out_dev_and_training_mazes_are_disjoint():
    s = training.Settings(eval_mazes=128, dev_mazes=64)
    held, dev, exclude = training.maze_sets(s)
    held_h, dev_h = {gen.maze_hash(m) for m in held}, {gen.maze_hash(m) for m in dev}
    assert len(held_h) == 128 and len(dev_h) == 64 and not held_h & dev_h
    train = gen.TrainingStream(0, 4, 4, exclude).draw(3000)
    assert not {gen.maze_hash(m) for m in train} & (held_h | dev_h)


def test_kv_cache_sampling_matches_a_full_forward_pass():
    model = initial_model(ModelConfig(d_model=32, n_layers=2, n_heads=2), 0)
    prompts, _ = gen.encode(gen.maze_set(3, 5, 3, 3), 9)
    prompts = torch.from_numpy(prompts)
    responses, logps, mask = sample(model, prompts, 6, 9, torch.Generator().manual_seed(0))
    assert responses.shape == (30, 9)
    full = full_logprobs(model, prompts.repeat_interleave(6, dim=0), responses)
    cached = response_logprobs(model, prompts, responses, 6)
    assert torch.allclose(logps * mask, full * mask, atol=1e-5)
    assert torch.allclose(cached * mask, full * mask, atol=1e-5)


def test_rewards_need_the_exact_path_then_eos():
    targets = torch.tensor([[8, 11, 3, 0], [9, 3, 0, 0]])
    responses = torch.tensor([[8, 11, 3, 0], [9, 9, 3, 0]])
    assert rl_step.rewards_of(responses, targets).tolist() == [1.0, 0.0]


@pytest.mark.parametrize("gamma", [0.5, 1.0, 2.0])
def test_rl_step_advantages_are_focal_grpo_and_gamma_zero_is_grpo(gamma):
    rng = np.random.default_rng(0)
    n, groups = 8, 6
    rewards = torch.from_numpy((rng.random(n * groups) < rng.random(n * groups)).astype(np.float32))
    lengths = torch.from_numpy(rng.integers(1, 7, size=n * groups))
    mask = (torch.arange(7)[None] < lengths[:, None]).float()
    adv = rl_step.advantages("focal_grpo", rewards, mask, n, rl_step.algorithm_config(gamma))
    # by hand: GRPO z-score per group (unbiased std, verl's eps 1e-6) times (1 - success rate)^gamma
    r = rewards.view(groups, n)
    mu = r.mean(1, keepdim=True)
    z = (r - mu) / (r.std(1, keepdim=True) + 1e-6)
    expected = (z * (1 - mu) ** gamma).reshape(-1, 1) * mask
    assert torch.allclose(adv, expected, atol=1e-5)
    index = np.repeat(np.arange(groups).astype(str), n).astype(object)
    grpo, _ = core_algos.get_adv_estimator_fn("grpo")(
        token_level_rewards=rl_step.token_level(rewards, mask), response_mask=mask, index=index,
        config=rl_step.algorithm_config(0.0))
    assert torch.allclose(rl_step.advantages("focal_grpo", rewards, mask, n, rl_step.algorithm_config(0.0)), grpo, atol=1e-6)
    assert torch.allclose(rl_step.advantages("grpo", rewards, mask, n, rl_step.algorithm_config(0.0)), grpo)


TINY = ["--steps", "3", "--sft-steps", "30", "--group-sizes", "2", "4", "--seeds", "0", "--gamma", "0", "0.5",
        "--eval-mazes", "6", "--eval-samples", "8", "--final-samples", "8", "--rare-mazes", "4",
        "--rare-samples", "16", "--prompts", "4", "--iterations", "100", "--workers", "1"]


def test_ci_sized_sweep_writes_every_output_and_resumes(tmp_path, capsys):
    out = tmp_path / "maze"
    assert maze_main(["--out", str(out), *TINY]) == 0
    with (out / "results.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["method", "gamma", "group_size", "seed", "step", "k", "pass_at_k"]
    assert {(r["method"], r["gamma"], r["group_size"]) for r in rows} == {
        ("grpo", "0.0", "2"), ("grpo", "0.0", "4"), ("focal_grpo", "0.5", "2"), ("focal_grpo", "0.5", "4")}
    assert {int(r["k"]) for r in rows} == set(range(1, 9))
    summary = (out / "summary.md").read_text()
    assert "focal_grpo γ=0.5 N=2 vs grpo N=2" in summary and "ΔNLL_rare" in summary
    for png in ("maze_figure6.png", "maze_figure7.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("runs/*/result.json")}
    assert len(stamps) == 4
    capsys.readouterr()
    assert maze_main(["--out", str(out), *TINY]) == 0
    assert capsys.readouterr().err.count("cached") == 5  # one SFT, four runs
    assert stamps == {p: p.stat().st_mtime_ns for p in out.glob("runs/*/result.json")}
    config = json.loads((out / "config.json").read_text())
    assert len(config["runs"]) == 4


@pytest.mark.parametrize("flags,named", [
    (["--estimator", "no_such_estimator"], "--estimator"),
    (["--group-sizes", "1"], "--group-sizes"),
    (["--gamma", "-1"], "--gamma"),
    (["--workers", "0"], "--workers"),
    (["--steps", "0"], "--steps"),
])
def test_bad_flags_name_the_flag(tmp_path, capsys, flags, named):
    with pytest.raises(SystemExit):
        maze_main(["--out", str(tmp_path / "x"), *flags])
    assert named in capsys.readouterr().err
