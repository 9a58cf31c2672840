"""``pkg://verl_focal.rewards``: dispatch on data_source through verl's own loader; mixed batches stack."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from verl_focal import rewards
from verl_focal.rewards import compute_score, result_keys, scorer_family

IFEVAL_TRUTH = json.dumps({"instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]})
SYNLOGIC_TRUTH = json.dumps({"task": "object_counting", "answer": "7", "metadata": {}})
# (data_source, right response, wrong response, ground truth)
SAMPLES = [
    ("math500", "so \\boxed{\\frac{1}{2}}", "\\boxed{2}", "\\frac12"),
    ("gpqa_diamond", "The answer is (C)", "\\boxed{B}", "C"),
    ("ifeval", "No commas at all.", "Commas, here.", IFEVAL_TRUTH),
    ("synlogic", "\\boxed{7}", "\\boxed{6}", SYNLOGIC_TRUTH),
]


def test_families():
    assert [scorer_family(s) for s in ("ifeval", "IFEval", "synlogic", "synlogic_easy", "gpqa_diamond", "aime24")] \
        == ["ifeval", "ifeval", "synlogic", "synlogic", "math", "math"]


@pytest.fixture(scope="module")
def verl_reward_fn():
    """The function verl 0.9.1's RewardLoopWorker gets for ``reward.custom_reward_function.path=pkg://...``."""
    from hydra import compose, initialize_config_dir
    import verl
    from verl.trainer.ppo.reward import get_custom_reward_fn

    with initialize_config_dir(config_dir=str(Path(verl.__file__).parent / "trainer" / "config"), version_base=None):
        config = compose(config_name="ppo_trainer", overrides=[
            "reward.custom_reward_function.path=pkg://verl_focal.rewards",
            "+reward.custom_reward_function.reward_kwargs.timeout=5",
        ])
    return get_custom_reward_fn(config)


def test_verl_loader_dispatches_on_data_source(verl_reward_fn):
    for source, right, wrong, truth in SAMPLES:
        good = verl_reward_fn(data_source=source, solution_str=right, ground_truth=truth, extra_info={"index": 0})
        bad = verl_reward_fn(data_source=source, solution_str=wrong, ground_truth=truth, extra_info={"index": 1})
        assert (good["score"], good["acc"], bad["score"], bad["acc"]) == (1.0, True, 0.0, False), source
        assert good["data_source"] == source


def test_mixed_batch_has_one_key_set_and_stacks_as_verl_stacks_it(verl_reward_fn):
    results = [verl_reward_fn(data_source=s, solution_str=r, ground_truth=t) for s, r, _, t in SAMPLES]
    results += [verl_reward_fn(data_source=s, solution_str=None, ground_truth=t) for s, _, _, t in SAMPLES]
    assert all(set(result) == result_keys() for result in results)
    # verl's agent loop: the first sample's keys, np.array per key (a missing key there is a KeyError)
    stacked = {key: np.array([result[key] for result in results]) for key in results[0]}
    assert all(array.dtype != object for array in stacked.values())
    for key, neutral in rewards.neutral_result().items():
        assert {type(result[key]) for result in results} == {type(neutral)}, key
    from verl.trainer.ppo.metric_utils import process_validation_metrics

    metrics = process_validation_metrics([s for s, *_ in SAMPLES] * 2, [str(i % 4) for i in range(8)],
                                         {key: list(array) for key, array in stacked.items()})
    assert metrics["ifeval"]["acc"]["mean@2"] == 0.5 and metrics["synlogic"]["acc"]["mean@2"] == 0.5


def test_math_module_still_scores_alone():
    from verl_focal.rewards import math

    assert math.compute_score("math500", "\\boxed{3}", "3")["score"] == 1.0
    assert compute_score("gpqa_diamond", "\\boxed{A}", "A", dapo_scale=True)["score"] == 1.0
    assert compute_score("ifeval", "a, b", IFEVAL_TRUTH, dapo_scale=True)["score"] == -1.0
    with pytest.raises(ValueError, match="dapo_scale"):
        compute_score("synlogic", "x", SYNLOGIC_TRUTH, dapo_scale="yes")
