"""verl's real ``python -m verl.trainer.main_ppo`` runs ``recipes/tiny/f_grpo.yaml`` for 2 steps on CPU.

Everything is checked from the run's own output: verl's file logger (metrics per step) and its
rollout dump (``trainer.rollout_data_dir``: every response's reward and group uid). The advantage
check recomputes GRPO's advantage from the dumped rewards with verl's own ``grpo`` estimator and
scales it by F-GRPO's g = (1 - mu_hat)^gamma per group; the advantage extremes the run logged must
equal the focal ones and, on the mixed groups of these steps, differ from GRPO's.

The model is ``tests/fixtures/tiny/model``: the tiny Qwen2 model after a short supervised warm-up
(``python -m verl_focal.cpu.tiny_model tests/fixtures/tiny/model --warm-up-steps 300``), so that
the groups are mixed. The run has a wall-clock limit: a stalled rollout fails the test.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import torch

from verl_focal.cpu.launch import main_ppo_command, run_main_ppo

FIXTURE_MODEL = Path(__file__).parent / "fixtures" / "tiny" / "model"
GAMMA = 0.5  # recipes/tiny/f_grpo.yaml
RUN_LIMIT_S = 270


@pytest.fixture(scope="module")
def f_grpo_run(tmp_path_factory):
    from verl_focal.cpu.tiny_model import addition_problems
    from verl_focal.data.synthetic import problems_to_rows
    from verl_focal.data.verl_format import write_parquet

    tmp = tmp_path_factory.mktemp("main_ppo")
    train, heldout = addition_problems(seed=0, heldout=20)
    train_file = write_parquet(problems_to_rows(train, "train"), tmp / "train.parquet")
    val_file = write_parquet(problems_to_rows(heldout, "test"), tmp / "val.parquet")
    command = main_ppo_command(
        "f_grpo", str(FIXTURE_MODEL), str(train_file), str(val_file),
        [
            "trainer.total_training_steps=2",
            f"trainer.rollout_data_dir={tmp / 'rollouts'}",
            "trainer.logger=[console,file]",
            f"trainer.default_local_dir={tmp / 'checkpoints'}",
        ],
    )
    result = run_main_ppo(command, tmp / "main_ppo.log", RUN_LIMIT_S,
                          env={"VERL_FILE_LOGGER_PATH": str(tmp / "metrics.jsonl")})
    assert result.ok, result.explain()
    metrics = {row["step"]: row["data"] for row in map(json.loads, (tmp / "metrics.jsonl").read_text().splitlines())}
    return tmp, metrics


def test_two_training_steps_complete_with_finite_rewards_and_losses(f_grpo_run):
    _, metrics = f_grpo_run
    assert sorted(metrics) == [1, 2]
    for step, data in metrics.items():
        for key in ("critic/score/mean", "actor/pg_loss", "actor/grad_norm", "critic/advantages/max",
                    "critic/advantages/min"):
            assert math.isfinite(data[key]), f"step {step}: {key}={data[key]}"
        assert 0.0 <= data["critic/score/mean"] <= 1.0
        assert data["response/aborted_ratio"] == 0.0


def test_rollouts_use_the_weights_of_the_previous_update(f_grpo_run):
    # The hf_cpu server reports the global step of the weights it served; verl logs the lag.
    # Lag 0 at step 2 means the weight sync after step 1 reached the rollout server.
    _, metrics = f_grpo_run
    assert metrics[2]["training/off_policy/trajectory_staleness/max"] == 0
    # The actor recomputes the log-probs of the rolled-out tokens after the sync; both sides run in
    # fp32, so they agree to rounding only if the server holds exactly the actor's updated weights.
    assert metrics[2]["training/rollout_probs_diff_max"] < 1e-4


def _groups(dump_file: Path) -> dict[str, list[float]]:
    groups: dict[str, list[float]] = defaultdict(list)
    for line in dump_file.read_text().splitlines():
        row = json.loads(line)
        prompt_uid = row["uid"].rsplit("_", 2)[0]  # "{prompt uid}_{session}_{output}"
        groups[prompt_uid].append(float(row["score"]))
    return groups


def _grpo_and_focal_advantages(groups: dict[str, list[float]]) -> tuple[np.ndarray, np.ndarray]:
    from omegaconf import OmegaConf
    from verl.trainer.ppo import core_algos

    scores = [s for g in groups.values() for s in g]
    index = np.array([uid for uid, g in groups.items() for _ in g], dtype=object)
    rewards = torch.tensor(scores)[:, None]
    config = OmegaConf.create({"norm_adv_by_std_in_grpo": True})
    grpo, _ = core_algos.get_adv_estimator_fn("grpo")(
        token_level_rewards=rewards, response_mask=torch.ones_like(rewards), index=index, config=config
    )
    g = {uid: (1.0 - float(np.mean(np.array(s) > 0.5))) ** GAMMA for uid, s in groups.items()}
    focal = grpo[:, 0].numpy() * np.array([g[uid] for uid in index])
    return grpo[:, 0].numpy(), focal


def test_advantages_came_from_focal_grpo(f_grpo_run):
    tmp, metrics = f_grpo_run
    for step in (1, 2):
        groups = _groups(tmp / "rollouts" / f"{step}.jsonl")
        assert len(groups) == 8 and all(len(g) == 8 for g in groups.values()), {k: len(g) for k, g in groups.items()}
        mixed = [uid for uid, s in groups.items() if 0 < sum(s) < len(s)]
        assert mixed, f"step {step}: no group with both right and wrong answers; the advantage check needs one"
        grpo, focal = _grpo_and_focal_advantages(groups)
        logged = metrics[step]
        assert logged["critic/advantages/max"] == pytest.approx(focal.max(), rel=1e-4, abs=1e-5)
        assert logged["critic/advantages/min"] == pytest.approx(focal.min(), rel=1e-4, abs=1e-5)
        # g < 1 on every mixed group, so GRPO's extremes are strictly larger in magnitude
        assert abs(grpo.max() - focal.max()) > 1e-3 or abs(grpo.min() - focal.min()) > 1e-3


def test_focal_metrics_in_the_runs_own_log_match_its_rewards(f_grpo_run):
    # recipes/tiny uses trainer.v1.trainer_mode=sync_pass_at_k, whose advantage step logs focal/*.
    tmp, metrics = f_grpo_run
    for step in (1, 2):
        groups = _groups(tmp / "rollouts" / f"{step}.jsonl")
        mu = {uid: float(np.mean(np.array(s) > 0.5)) for uid, s in groups.items()}
        g = {uid: (1.0 - m) ** GAMMA for uid, m in mu.items()}
        logged = metrics[step]
        assert logged["focal/weight_mean"] == pytest.approx(np.mean(list(g.values())), rel=1e-5)
        assert logged["focal/success_rate_mean"] == pytest.approx(np.mean(list(mu.values())), rel=1e-5)
        assert logged["focal/all_correct_ratio"] == pytest.approx(np.mean([m == 1.0 for m in mu.values()]))
        assert logged["focal/all_wrong_ratio"] == pytest.approx(np.mean([m == 0.0 for m in mu.values()]))
        # sum_tokens |g A| / sum_tokens |A|: a token-weighted mean of g over the mixed groups (the dump has no
        # token counts, so the exact weights are checked in tests/test_trainer.py)
        mixed = [g[uid] for uid, m in mu.items() if 0.0 < m < 1.0]
        assert min(mixed) - 1e-6 <= logged["focal/advantage_scale"] <= max(mixed) + 1e-6
        assert logged["focal/advantage_scale"] < 1.0
