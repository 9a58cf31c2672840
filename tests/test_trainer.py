"""The package trainer (``sync_pass_at_k``): pass@k in verl's validation metrics (the metric function and
``_val_metrics_update`` through verl's own config), the lazy registration in a fresh interpreter, and the
advantage step: per-session groups for every group-relative estimator and the ``focal/*`` metrics."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid

import numpy as np
import pytest
import torch

from verl_focal.evaluation import pass_at_k
from verl_focal.evaluation.validation import validation_pass_at_k_metrics
from verl_focal.trainer import PASS_AT_K_TRAINER_MODE, register_pass_at_k_trainer


def fabricated_validation(n: int, counts: dict[str, list[int]], drop: dict[tuple[str, int], int] | None = None):
    """What ``PPOTrainer._validate`` hands to ``_val_metrics_update``: per-sample data sources,
    prompt uids and reward extras, plus ``expected_acc_counts``; ``drop[(ds, i)]`` failed sessions."""
    drop = drop or {}
    data_sources, uids, acc, expected = [], [], [], {}
    for source, per_prompt in counts.items():
        for i, c in enumerate(per_prompt):
            uid = str(uuid.uuid4())
            expected[(source, uid)] = n
            materialised = n - drop.get((source, i), 0)
            for j in range(materialised):
                data_sources.append(source)
                uids.append(uid)
                acc.append(j < c)
    infos = {"reward": [float(a) for a in acc], "acc": acc}
    return data_sources, uids, infos, expected


def test_metrics_match_exact_pass_at_k_and_verl_naming():
    counts = {"aime24": [1, 0, 3], "math500": [4, 2]}
    data_sources, uids, infos, expected = fabricated_validation(4, counts, drop={("aime24", 2): 1})
    metrics = validation_pass_at_k_metrics(data_sources, uids, infos, expected_acc_counts=expected)
    # the dropped session is a failure: aime24 prompt 2 has 3 correct of 4, not 3 of 3
    aime = {k: np.mean(pass_at_k(4, [1, 0, 3], k)) for k in (1, 2, 4)}
    math = {k: np.mean(pass_at_k(4, [4, 2], k)) for k in (1, 2, 4)}
    assert metrics == pytest.approx(
        {
            "val-core/aime24/acc/pass@1": aime[1],
            "val-aux/aime24/acc/pass@2": aime[2],
            "val-core/aime24/acc/pass@4": aime[4],
            "val-core/math500/acc/pass@1": math[1],
            "val-aux/math500/acc/pass@2": math[2],
            "val-core/math500/acc/pass@4": math[4],
            "val-core/macro_avg/acc/pass@1": (aime[1] + math[1]) / 2,
            "val-aux/macro_avg/acc/pass@2": (aime[2] + math[2]) / 2,
            "val-core/macro_avg/acc/pass@4": (aime[4] + math[4]) / 2,
            "val-aux/aime24/missing_sessions": 1.0,
            "val-aux/math500/missing_sessions": 0.0,
        }
    )


def test_without_acc_the_reward_is_thresholded():
    data_sources, uids, infos, _ = fabricated_validation(2, {"gsm8k": [1, 2]})
    infos = {"reward": [1.0 if a else -1.0 for a in infos["acc"]]}  # +1/-1 rewards, no acc
    metrics = validation_pass_at_k_metrics(data_sources, uids, infos, success_threshold=0.0)
    assert metrics == pytest.approx({"val-core/gsm8k/reward/pass@1": 0.75, "val-core/gsm8k/reward/pass@2": 1.0})


def test_single_sample_validation_logs_nothing_extra():
    data_sources, uids, infos, expected = fabricated_validation(1, {"gsm8k": [1, 0]})
    assert validation_pass_at_k_metrics(data_sources, uids, infos, expected_acc_counts=expected) == {}


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError, match="need 3 values of 'acc'"):
        validation_pass_at_k_metrics(["a"] * 3, ["u"] * 3, {"acc": [True, False]})


@pytest.fixture(scope="module")
def trainer():
    from hydra import compose, initialize_config_module

    register_pass_at_k_trainer(lazy=False)
    from verl.trainer.ppo.v1 import get_trainer_cls

    with initialize_config_module("verl.trainer.config", version_base=None):
        config = compose(
            "ppo_trainer",
            overrides=[f"trainer.v1.trainer_mode={PASS_AT_K_TRAINER_MODE}", "+algorithm.focal.success_threshold=0.5"],
        )
    return get_trainer_cls(config.trainer.v1.trainer_mode)(config)


def test_registered_trainer_runs_verls_sync_paths(trainer):
    from verl.trainer.ppo.v1.replay_buffer import ReplayBuffer
    from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync

    assert isinstance(trainer, PPOTrainerSync)
    # the mode name selected the class; from then on verl must see "sync" (not its async paths)
    assert trainer.trainer_mode == "sync" and trainer.config.trainer.v1.trainer_mode == "sync"
    assert type(trainer.replay_buffer) is ReplayBuffer


def test_validation_metrics_gain_unbiased_pass_at_k(trainer):
    # The example: 1 correct of 4. verl's bootstrap best@4 reports ~0.69; pass@4 is 1.
    data_sources, uids, infos, expected = fabricated_validation(4, {"aime24": [1, 1], "math500": [2, 0]})
    metrics = trainer._val_metrics_update(data_sources, uids, infos, [], expected_acc_counts=expected)
    assert metrics["val-core/aime24/acc/mean@4"] == pytest.approx(0.25)  # verl's own metrics are kept
    assert metrics["val-core/aime24/acc/best@4/mean"] < 0.75
    assert metrics["val-core/aime24/acc/pass@4"] == 1.0
    assert metrics["val-aux/aime24/acc/pass@2"] == pytest.approx(0.5)
    assert metrics["val-aux/math500/acc/pass@2"] == pytest.approx(np.mean(pass_at_k(4, [2, 0], 2)))
    assert metrics["val-core/macro_avg/acc/pass@1"] == pytest.approx((0.25 + 0.25) / 2)


def test_lazy_registration_costs_nothing_until_verl_imports_its_v1_trainer():
    script = textwrap.dedent(
        """
        import sys
        from verl_focal.trainer import register_pass_at_k_trainer
        assert register_pass_at_k_trainer() == "sync_pass_at_k"
        register_pass_at_k_trainer()  # idempotent
        import verl, verl.trainer.ppo.core_algos
        assert "verl.trainer.ppo.v1" not in sys.modules, "the v1 stack must not load in workers"
        assert "PassAtKTrainer" not in vars(sys.modules["verl_focal.trainer"]), "defined before verl's v1 import"
        from verl.trainer.ppo.v1 import get_trainer_cls  # what TaskRunnerV1.run does
        cls = get_trainer_cls("sync_pass_at_k")
        assert cls.__name__ == "PassAtKTrainer", cls
        v1 = sys.modules["verl.trainer.ppo.v1"]
        assert type(v1.__loader__).__name__ == "SourceFileLoader", v1.__loader__  # real loader handed back
        assert not any(type(f).__name__ == "_V1ImportWatcher" for f in sys.meta_path)
        print("ok")
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-3000:]


# ---- The advantage step: verl's session rule for every group-relative estimator, and focal/* metrics ----


def _multi_output_batch(rewards_per_session: list[float], outputs_per_session: int = 2, length: int = 3):
    """One prompt (uid "p"), one session per reward, each session ``outputs_per_session`` outputs that all
    carry the session's reward on their last token; keys in verl's ``{uid}_{session}_{output}`` format."""
    from verl.protocol import DataProto

    keys, scores = [], []
    for session, reward in enumerate(rewards_per_session):
        for output in range(outputs_per_session):
            keys.append(f"p_{session}_{output}")
            scores.append(reward)
    rewards = torch.zeros(len(keys), length)
    rewards[:, -1] = torch.tensor(scores)
    data = DataProto.from_dict(
        tensors={"token_level_rewards": rewards, "response_mask": torch.ones(len(keys), length)},
        non_tensors={"uid": np.array(["p"] * len(keys), dtype=object)},
    )
    return data, keys


def _advantage(function, estimator: str, gamma: float = 0.0, **extra):
    from omegaconf import OmegaConf

    data, keys = _multi_output_batch([1.0, 1.0, 0.0, 0.0])
    config = OmegaConf.create({"adv_estimator": estimator, "gamma": 1.0, "lam": 1.0,
                               "norm_adv_by_std_in_grpo": True, "focal": {"gamma": gamma}})
    out = function(data, keys, estimator, gamma=1.0, lam=1.0, num_repeat=1, norm_adv_by_std_in_grpo=True,
                   config=config, **extra)
    return out.batch["advantages"][:, 0].numpy()


def test_multi_output_sessions_focal_at_gamma_0_is_grpo():
    import verl_focal.plugin  # noqa: F401 - registers focal_grpo
    from verl.trainer.ppo.v1.utils import compute_advantage_for_multi_trajectories

    from verl_focal.session_advantage import compute_advantage_by_session

    verl_grpo = _advantage(compute_advantage_for_multi_trajectories, "grpo")
    assert verl_grpo == pytest.approx([0.866] * 4 + [-0.866] * 4, abs=1e-3)  # 4 sessions, std over sessions
    # verl's own function treats focal_grpo's 8 outputs as 8 group members: not GRPO at gamma 0
    assert _advantage(compute_advantage_for_multi_trajectories, "focal_grpo")[0] == pytest.approx(0.935, abs=1e-3)
    metrics: dict = {}
    ours = _advantage(compute_advantage_by_session, "focal_grpo", metrics=metrics)
    np.testing.assert_allclose(ours, verl_grpo, rtol=1e-6)
    np.testing.assert_allclose(_advantage(compute_advantage_by_session, "grpo", metrics={}), verl_grpo, rtol=1e-6)
    # the metrics count sessions, not outputs: one group with 2 of 4 sessions correct
    assert metrics["focal/success_rate_mean"] == 0.5 and metrics["focal/advantage_scale"] == pytest.approx(1.0)
    # at gamma 1 the session advantage is scaled by g = 0.5
    np.testing.assert_allclose(
        _advantage(compute_advantage_by_session, "focal_grpo", gamma=1.0, metrics={}), 0.5 * verl_grpo, rtol=1e-6
    )


def test_final_outputs_pick_the_highest_output_index_of_each_session():
    from verl_focal.session_advantage import final_outputs

    rows, to_final = final_outputs(["a_0_1", "a_0_0", "a_1_0", "b_x_y_0", "b_x_y_2"])
    assert rows == [0, 2, 4] and to_final == [0, 0, 1, 2, 2]  # uids may contain "_"
    with pytest.raises(ValueError, match="batch key 'oops'"):
        final_outputs(["oops"])


def _grpo_by_hand(rewards: list[float]) -> list[float]:
    mean = sum(rewards) / len(rewards)
    std = (sum((r - mean) ** 2 for r in rewards) / (len(rewards) - 1)) ** 0.5
    return [(r - mean) / (std + 1e-6) for r in rewards]


def _uneven_batch():
    """Four groups of 4 (all right, all wrong, 1 right, 2 right); response lengths 1-4 tokens in each group."""
    groups = {"all_right": [1, 1, 1, 1], "all_wrong": [0, 0, 0, 0], "one": [1, 0, 0, 0], "two": [1, 1, 0, 0]}
    lengths = [1, 2, 3, 4]
    index = np.array([uid for uid in groups for _ in range(4)], dtype=object)
    scores = torch.tensor([float(r) for g in groups.values() for r in g])
    mask = torch.tensor([[1.0] * n + [0.0] * (4 - n) for _ in groups for n in lengths])
    rewards = torch.zeros_like(mask)
    rewards[torch.arange(16), mask.sum(1).long() - 1] = scores
    return groups, lengths, index, rewards, mask


def _expected_metrics(groups, lengths, gamma):
    mu = {uid: sum(g) / 4 for uid, g in groups.items()}
    g = {uid: (1 - m) ** gamma for uid, m in mu.items()}
    base = {uid: sum(abs(a) * n for a, n in zip(_grpo_by_hand(r), lengths)) for uid, r in groups.items() if 0 < mu[uid] < 1}
    return {
        "focal/weight_mean": np.mean(list(g.values())),
        "focal/success_rate_mean": np.mean(list(mu.values())),
        "focal/all_correct_ratio": 0.25,
        "focal/all_wrong_ratio": 0.25,
        "focal/advantage_scale": sum(g[u] * b for u, b in base.items()) / sum(base.values()),
    }


@pytest.mark.parametrize("estimator", ["focal_grpo", "focal_grpo_vectorized"])
def test_focal_estimators_record_what_the_metrics_need(estimator):
    import verl_focal.plugin  # noqa: F401
    from verl.trainer.ppo import core_algos

    from verl_focal import focal_metrics
    from verl_focal.estimators import register_focal_estimator

    if estimator not in core_algos.ADV_ESTIMATOR_REGISTRY:
        register_focal_estimator("grpo_vectorized")  # the generic wrapper's record
    groups, lengths, index, rewards, mask = _uneven_batch()
    call = dict(token_level_rewards=rewards, response_mask=mask, index=index,
                config={"focal": {"gamma": 0.5}, "norm_adv_by_std_in_grpo": True})
    fn = core_algos.get_adv_estimator_fn(estimator)
    fn(**call)
    assert not focal_metrics.is_recording()  # outside a recording, nothing is kept
    with focal_metrics.recording() as records:
        fn(**call)
    assert len(records) == 1
    assert focal_metrics.record_metrics(records[0]) == pytest.approx(_expected_metrics(groups, lengths, 0.5), rel=1e-5)


def test_a_plain_estimator_gets_the_group_statistics_through_the_advantage_step():
    import verl_focal.plugin  # noqa: F401
    from omegaconf import OmegaConf
    from verl.protocol import DataProto

    from verl_focal.session_advantage import compute_advantage_by_session

    groups, lengths, index, rewards, mask = _uneven_batch()
    data = DataProto.from_dict(tensors={"token_level_rewards": rewards, "response_mask": mask},
                               non_tensors={"uid": index})
    keys = [f"{uid}_{i}_0" for i, uid in enumerate(index)]
    config = OmegaConf.create({"norm_adv_by_std_in_grpo": True})
    metrics: dict = {}
    compute_advantage_by_session(data, keys, "grpo", metrics, gamma=1.0, lam=1.0, num_repeat=1,
                                 norm_adv_by_std_in_grpo=True, config=config)
    expected = _expected_metrics(groups, lengths, 0.5)
    assert metrics == pytest.approx({k: expected[k] for k in
                                     ("focal/success_rate_mean", "focal/all_correct_ratio", "focal/all_wrong_ratio")})


def test_a_step_with_only_uniform_groups_has_scale_1():
    from verl_focal.focal_metrics import advantage_scale

    assert advantage_scale(torch.zeros(4), torch.zeros(4)) == 1.0
