"""pass@k in verl's validation metrics: the metric function, the registered trainer run through
verl's own config and ``_val_metrics_update``, and the lazy registration in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid

import numpy as np
import pytest

from verl_focal.evaluation import pass_at_k
from verl_focal.evaluation.training import (
    PASS_AT_K_TRAINER_MODE,
    register_pass_at_k_trainer,
    validation_pass_at_k_metrics,
)


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
        from verl_focal.evaluation.training import register_pass_at_k_trainer
        assert register_pass_at_k_trainer() == "sync_pass_at_k"
        register_pass_at_k_trainer()  # idempotent
        import verl, verl.trainer.ppo.core_algos
        assert "verl.trainer.ppo.v1" not in sys.modules, "the v1 stack must not load in workers"
        assert "verl_focal.evaluation.trainer" not in sys.modules
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
