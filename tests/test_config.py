"""Strict ``algorithm.focal``: a misspelled, misplaced or malformed focal key never trains silently.

verl's ``+key=value`` overrides bypass Hydra's struct check, so ``verl_focal.config`` checks the keys
itself. The end-to-end cases compose verl's own ``ppo_trainer`` config with the override a user would
type and dispatch ``focal_grpo`` through verl's ``compute_advantage``, as the trainer does.
"""

import math

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf
from verl import DataProto
from verl.trainer.config import AlgoConfig
from verl.trainer.ppo.ray_trainer import compute_advantage

from verl_focal.config import FocalConfig, read_estimator_config, read_focal_config


def focal_node(**keys):
    return OmegaConf.create({"focal": keys})


# --- unknown, misplaced and malformed keys --------------------------------------------------------------

@pytest.mark.parametrize(
    "key,suggestion",
    [("gama", "gamma"), ("succes_threshold", "success_threshold"), ("threshold", "success_threshold"),
     ("reward_corect", "reward_correct"), ("succes_rate", "success_rate"), ("enable", None)],
)
def test_unknown_focal_key_names_the_key(key, suggestion):
    with pytest.raises(ValueError, match=rf"algorithm\.focal\.{key} is not a verl-focal key") as err:
        read_focal_config(focal_node(**{key: 1}))
    if suggestion:
        assert f"did you mean algorithm.focal.{suggestion}?" in str(err.value)
    else:
        assert "did you mean" not in str(err.value)


@pytest.mark.parametrize(
    "key,suggestion",
    [
        ("focal_gamma", "algorithm.focal.gamma"),
        ("gamma_focal", None),
        ("focal_loss_gamma", "algorithm.focal.gamma"),
        ("focal_success_threshold", "algorithm.focal.success_threshold"),
        ("f_grpo_gamma", "algorithm.focal.gamma"),  # verl PR #5334's keys
        ("f_grpo_reward_correct", "algorithm.focal.reward_correct"),
        ("f_grpo_reward_wrong", "algorithm.focal.reward_wrong"),
        ("fgrpo", "algorithm.focal"),
        ("Focal", "algorithm.focal"),
        ("focals", "algorithm.focal"),
        ("success_threshold", "algorithm.focal.success_threshold"),
        ("reward_correct", "algorithm.focal.reward_correct"),
    ],
)
def test_focal_lookalike_beside_the_node_names_the_key(key, suggestion):
    config = OmegaConf.create({"gamma": 1.0, key: 1.0})
    with pytest.raises(ValueError, match=rf"algorithm\.{key} is not a verl or verl-focal key") as err:
        read_focal_config(config)
    if suggestion:
        assert f"did you mean {suggestion}?" in str(err.value)


@pytest.mark.parametrize("node", [1, 0.5, "gamma=1", [0.5], True])
def test_focal_node_that_is_not_a_mapping(node):
    with pytest.raises(ValueError, match=r"algorithm\.focal must be a mapping"):
        read_focal_config(OmegaConf.create({"focal": node}))


def test_verls_own_keys_and_a_null_node_pass():
    config = OmegaConf.create({"gamma": 1.0, "lam": 0.95, "norm_adv_by_std_in_grpo": False, "focal": None})
    assert read_focal_config(config) == FocalConfig()
    assert read_focal_config(AlgoConfig()) == FocalConfig()  # verl's dataclass has no focal node
    assert read_focal_config(None) == FocalConfig()
    assert read_focal_config({"focal": {"gamma": 2, "success_threshold": None}}) == FocalConfig(gamma=2.0)


# --- values ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("threshold", [-0.5, 0.0, 0.5, 3, -7.25])
def test_success_threshold_accepts_any_finite_number(threshold):
    assert read_focal_config(focal_node(success_threshold=threshold)).success_threshold == threshold


@pytest.mark.parametrize(
    "key,value",
    [("gamma", -0.5), ("gamma", "abc"), ("gamma", True), ("gamma", float("nan")), ("gamma", float("inf")),
     ("success_threshold", float("nan")), ("success_threshold", -float("inf")), ("success_threshold", "high"),
     ("success_threshold", [0.5]), ("success_threshold", False)],
)
def test_bad_value_names_the_key(key, value):
    with pytest.raises(ValueError, match=rf"algorithm\.focal\.{key}"):
        read_focal_config(focal_node(**{key: value}))


def test_mean_reward_form():
    cfg = read_focal_config(focal_node(success_rate="mean_reward", reward_correct=1, reward_wrong=-1))
    assert (cfg.success_rate, cfg.reward_correct, cfg.reward_wrong) == ("mean_reward", 1.0, -1.0)
    assert cfg.success_threshold == 0.0  # the midpoint, where pass@k needs a correctness threshold
    cfg = read_focal_config(
        focal_node(success_rate="mean_reward", reward_correct=0, reward_wrong=1, success_threshold=0.25)
    )
    assert (cfg.reward_correct, cfg.reward_wrong, cfg.success_threshold) == (0.0, 1.0, 0.25)


@pytest.mark.parametrize(
    "keys,message",
    [
        ({"success_rate": "mean"}, r"focal\.success_rate must be one of count, mean_reward, got 'mean'"),
        ({"success_rate": "mean_rewards"}, r"did you mean mean_reward\?"),
        ({"success_rate": "mean_reward"}, r"needs algorithm\.focal\.reward_correct"),
        ({"success_rate": "mean_reward", "reward_correct": 1}, r"needs algorithm\.focal\.reward_wrong"),
        ({"success_rate": "mean_reward", "reward_correct": 1, "reward_wrong": 1}, r"must differ"),
        ({"success_rate": "mean_reward", "reward_correct": float("inf"), "reward_wrong": 0},
         r"algorithm\.focal\.reward_correct must be a finite number"),
        ({"success_rate": "mean_reward", "reward_correct": 1, "reward_wrong": "zero"},
         r"algorithm\.focal\.reward_wrong must be a number"),
        ({"reward_correct": 1, "reward_wrong": -1}, r"algorithm\.focal\.reward_correct is used only with"),
        ({"success_rate": "count", "reward_wrong": -1}, r"algorithm\.focal\.reward_wrong is used only with"),
    ],
)
def test_success_rate_keys_are_checked_together(keys, message):
    with pytest.raises(ValueError, match=message):
        read_focal_config(focal_node(**keys))


@pytest.mark.parametrize("discount", [0.99, 2, "1"])
def test_estimators_refuse_a_discount_they_would_ignore(discount):
    config = OmegaConf.create({"gamma": discount, "focal": {"gamma": 1.0}})
    read_focal_config(config)  # not a focal-config error in itself (GAE runs use it)
    with pytest.raises(ValueError, match=r"algorithm\.gamma=.* is verl's GAE discount"):
        read_estimator_config(config)
    assert read_estimator_config(OmegaConf.create({"gamma": 1, "focal": {"gamma": 1.0}})).gamma == 1.0


# --- through verl's Hydra config and compute_advantage --------------------------------------------------

def verl_algorithm(overrides):
    with initialize_config_module(config_module="verl.trainer.config", version_base=None):
        cfg = compose(config_name="ppo_trainer", overrides=["algorithm.adv_estimator=focal_grpo", *overrides])
    return cfg.algorithm


def dispatch_focal_grpo(algorithm):
    rewards = torch.tensor([1.0, 0.0, 0.0, 0.0])
    tlr = torch.zeros(4, 3)
    tlr[:, -1] = rewards
    data = DataProto.from_dict(
        tensors={"token_level_rewards": tlr, "response_mask": torch.ones(4, 3)},
        non_tensors={"uid": np.array(["a"] * 4, dtype=object)},
    )
    out = compute_advantage(
        data, adv_estimator=algorithm.adv_estimator, gamma=algorithm.gamma, lam=algorithm.lam,
        num_repeat=4, norm_adv_by_std_in_grpo=algorithm.get("norm_adv_by_std_in_grpo", True), config=algorithm,
    )
    return out.batch["advantages"]


@pytest.mark.parametrize(
    "override,message",
    [
        ("+algorithm.focal.gama=1", r"algorithm\.focal\.gama is not a verl-focal key.*did you mean .*focal\.gamma"),
        ("+algorithm.focal.succes_threshold=0", r"algorithm\.focal\.succes_threshold .*did you mean"),
        ("+algorithm.focal_gamma=1", r"algorithm\.focal_gamma is not a verl or verl-focal key"),
        ("+algorithm.f_grpo_gamma=1", r"algorithm\.f_grpo_gamma .*did you mean algorithm\.focal\.gamma"),
        ("+algorithm.focal=1", r"algorithm\.focal must be a mapping"),
        ("algorithm.gamma=2", r"algorithm\.gamma=2 is verl's GAE discount"),
    ],
)
def test_typo_on_verls_command_line_fails_the_first_advantage_computation(override, message):
    algorithm = verl_algorithm([override])
    with pytest.raises(ValueError, match=message):
        dispatch_focal_grpo(algorithm)


def test_correct_keys_on_verls_command_line_take_effect():
    base = dispatch_focal_grpo(verl_algorithm(["+algorithm.focal.gamma=0"]))
    got = dispatch_focal_grpo(
        verl_algorithm(["+algorithm.focal.gamma=1", "+algorithm.focal.success_threshold=-0.5"])
    )
    # rewards 1, 0, 0, 0 with threshold -0.5: every response counts as correct, so g = 0
    assert torch.all(got == 0) and torch.any(base != 0)
    got = dispatch_focal_grpo(verl_algorithm(
        ["+algorithm.focal.gamma=1", "+algorithm.focal.success_rate=mean_reward",
         "+algorithm.focal.reward_correct=1", "+algorithm.focal.reward_wrong=0"]
    ))
    torch.testing.assert_close(got, base * (1 - 0.25))
    assert math.isclose(read_focal_config(verl_algorithm(["+algorithm.focal.gamma=2"])).gamma, 2.0)
