"""focal_grpo / focal_rloo against verl's own estimators, dispatched through verl's compute_advantage.

These tests import verl's registries for real. They never clear verl's registries, so they may share a
process with the other tests of this suite (but not with verl's own registry tests, which do).
"""

import math
import re
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

import verl  # noqa: F401  - loads verl_focal through the verl.plugins entry point
from verl import DataProto
from verl.trainer.ppo import core_algos
from verl.trainer.ppo.ray_trainer import compute_advantage

import verl_focal
from verl_focal import estimators, focal, registry


def algo(gamma=0.5, threshold=None, norm=True):
    focal_node = {"gamma": gamma}
    if threshold is not None:
        focal_node["success_threshold"] = threshold
    return OmegaConf.create({"norm_adv_by_std_in_grpo": norm, "focal": focal_node})


def outcome_batch(rewards, uids, lengths=None, max_len=6, seed=0):
    """token_level_rewards with each reward on the last valid token, as verl's reward managers place it."""
    rewards = torch.as_tensor(rewards, dtype=torch.float32)
    bs = rewards.shape[0]
    if lengths is None:
        lengths = torch.from_numpy(np.random.default_rng(seed).integers(1, max_len + 1, size=bs))
    lengths = torch.as_tensor(lengths)
    mask = (torch.arange(max_len)[None, :] < lengths[:, None]).float()
    tlr = torch.zeros(bs, max_len)
    rows = torch.nonzero(lengths > 0).squeeze(-1)
    tlr[rows, lengths[rows] - 1] = rewards[rows]
    return tlr, mask, np.asarray(uids, dtype=object)


def dispatch(estimator, tlr, mask, uids, config):
    data = DataProto.from_dict(
        tensors={"token_level_rewards": tlr.clone(), "response_mask": mask.clone()},
        non_tensors={"uid": np.asarray(uids, dtype=object)},
    )
    out = compute_advantage(
        data,
        adv_estimator=estimator,
        norm_adv_by_std_in_grpo=config.get("norm_adv_by_std_in_grpo", True),
        config=config,
    )
    return out.batch["advantages"], out.batch["returns"]


def random_batch(num_groups, group_size, max_len, seed, ragged=False):
    """Binary and continuous rewards, shuffled uids, optionally groups of unequal size."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 2 * group_size, size=num_groups) if ragged else np.full(num_groups, group_size)
    uids = np.repeat([f"uid-{g}" for g in range(num_groups)], sizes)
    rng.shuffle(uids)
    rewards = np.where(rng.random(len(uids)) < 0.5, rng.integers(0, 2, size=len(uids)), rng.random(len(uids)))
    return outcome_batch(rewards, uids, max_len=max_len, seed=seed)


# --- gamma = 0 is the base estimator, through verl's dispatcher -------------------------------------

@pytest.mark.parametrize("num_groups,group_size,max_len,seed", [(64, 5, 128, 0), (128, 8, 256, 1), (512, 10, 64, 2)])
@pytest.mark.parametrize("norm", [True, False])
def test_focal_grpo_gamma0_equals_verl_grpo(num_groups, group_size, max_len, seed, norm):
    tlr, mask, uids = random_batch(num_groups, group_size, max_len, seed)
    expected, _ = dispatch("grpo", tlr, mask, uids, algo(0.0, norm=norm))
    got, returns = dispatch("focal_grpo", tlr, mask, uids, algo(0.0, norm=norm))
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)
    assert returns is got or torch.equal(returns, got)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_focal_rloo_gamma0_equals_verl_rloo(seed):
    tlr, mask, uids = random_batch(100, 6, 64, seed, ragged=True)  # ragged: includes singletons
    expected, _ = dispatch("rloo", tlr, mask, uids, algo(0.0))
    got, _ = dispatch("focal_rloo", tlr, mask, uids, algo(0.0))
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)


def test_gamma0_low_variance_and_singletons_match_verl_grpo():
    # verl's own low-variance case plus singleton groups (mean 0, std 1 in verl).
    tlr, mask, uids = outcome_batch([1.0, 1.00001, 2.0, 2.00001, 0.7, 1.0], ["a", "a", "b", "b", "c", "d"])
    expected, _ = dispatch("grpo", tlr, mask, uids, algo(0.0))
    got, _ = dispatch("focal_grpo", tlr, mask, uids, algo(0.0))
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)


def test_gamma0_ragged_groups_match_verl_grpo():
    tlr, mask, uids = random_batch(200, 8, 32, 3, ragged=True)
    expected, _ = dispatch("grpo", tlr, mask, uids, algo(0.0))
    got, _ = dispatch("focal_grpo", tlr, mask, uids, algo(0.0))
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)


# --- hand-computed groups and the paper's table --------------------------------------------------------

# g = (1 - X/8)^gamma for N = 8 (method.md §3.4, the paper's Eqs. 11-12).
PAPER_G_TABLE = {
    0.5: [1, 0.9354, 0.8660, 0.7906, 0.7071, 0.6124, 0.5, 0.3536, 0],
    1.0: [1, 0.875, 0.75, 0.625, 0.5, 0.375, 0.25, 0.125, 0],
    2.0: [1, 0.7656, 0.5625, 0.3906, 0.25, 0.1406, 0.0625, 0.0156, 0],
}
# GRPO advantage of a correct / incorrect rollout with verl's unbiased std, eps 1e-6 (method.md §3.4).
PAPER_A_PLUS = [0, 2.4749, 1.6202, 1.2076, 0.9354, 0.7246, 0.5401, 0.3536, 0]
PAPER_A_MINUS = [0, -0.3536, -0.5401, -0.7246, -0.9354, -1.2076, -1.6202, -2.4749, 0]


@pytest.mark.parametrize("gamma", [0.5, 1.0, 2.0])
def test_paper_table_n8(gamma):
    n = 8
    rewards, uids = [], []
    for x in range(n + 1):
        rewards += [1.0] * x + [0.0] * (n - x)
        uids += [f"x={x}"] * n
    tlr, mask, uid_arr = outcome_batch(rewards, uids, lengths=[3] * len(rewards))
    adv, _ = dispatch("focal_grpo", tlr, mask, uid_arr, algo(gamma))
    scalar = adv[:, 0]
    for x in range(n + 1):
        rows = slice(x * n, (x + 1) * n)
        group_rewards = torch.tensor(rewards[rows])
        g = PAPER_G_TABLE[gamma][x]
        if 0 < x < n:
            plus = scalar[rows][group_rewards == 1][0].item()
            minus = scalar[rows][group_rewards == 0][0].item()
            assert plus == pytest.approx(g * PAPER_A_PLUS[x], abs=2e-4)
            assert minus == pytest.approx(g * PAPER_A_MINUS[x], abs=2e-4)
            assert plus / (PAPER_A_PLUS[x]) == pytest.approx(g, abs=1e-4)
        else:
            assert torch.all(scalar[rows] == 0)


def test_hand_computed_groups():
    # a: [1, 0, 0, 0] -> mean .25, std .5 (unbiased), g = .75^.5;  b: [1, 1] -> zero advantage;
    # c: singleton 0.7 > threshold .5 counts as correct, so mu = 1 and g = 0 (verl's GRPO would give 0.7).
    tlr, mask, uids = outcome_batch([1, 0, 0, 0, 1, 1, 0.7], list("aaaabbc"), lengths=[2] * 7)
    adv, _ = dispatch("focal_grpo", tlr, mask, uids, algo(0.5))
    g_a = math.sqrt(0.75)
    expected = [0.75 / (0.5 + 1e-6) * g_a] + [-0.25 / (0.5 + 1e-6) * g_a] * 3 + [0, 0, 0]
    torch.testing.assert_close(adv[:, 0], torch.tensor(expected), rtol=1e-6, atol=1e-6)
    # Dr.GRPO form: no std division.
    adv, _ = dispatch("focal_grpo", tlr, mask, uids, algo(1.0, norm=False))
    expected = [0.75 * 0.75] + [-0.25 * 0.75] * 3 + [0, 0, 0]
    torch.testing.assert_close(adv[:, 0], torch.tensor(expected), rtol=1e-6, atol=1e-6)


def test_rloo_hand_computed():
    # group [1, 0, 0, 1]: RLOO a_i = r_i - mean(others) -> [2/3, -2/3, -2/3, 2/3]; g = (1 - .5)^1 = .5
    tlr, mask, uids = outcome_batch([1, 0, 0, 1], list("aaaa"), lengths=[1] * 4)
    adv, _ = dispatch("focal_rloo", tlr, mask, uids, algo(1.0))
    torch.testing.assert_close(adv[:, 0], torch.tensor([1 / 3, -1 / 3, -1 / 3, 1 / 3]), rtol=1e-6, atol=1e-6)


def test_success_threshold_for_plus_minus_one_rewards():
    # DAPO's math_dapo scores +1 / -1; with threshold 0.0 one correct of four gives mu = .25.
    tlr, mask, uids = outcome_batch([1, -1, -1, -1], list("aaaa"), lengths=[1] * 4)
    base, _ = dispatch("focal_grpo", tlr, mask, uids, algo(0.0))
    adv, _ = dispatch("focal_grpo", tlr, mask, uids, algo(1.0, threshold=0.0))
    torch.testing.assert_close(adv, base * 0.75)
    # With the default threshold 0.5 the same rewards would also read as 1 correct of 4.
    # An overlong penalty that pushes a correct +1 to 0.4 makes it count as wrong under the default 0.5:
    tlr, mask, uids = outcome_batch([0.4, -1, -1, -1], list("aaaa"), lengths=[1] * 4)
    base, _ = dispatch("focal_grpo", tlr, mask, uids, algo(0.0))
    adv, _ = dispatch("focal_grpo", tlr, mask, uids, algo(1.0))
    torch.testing.assert_close(adv, base * 1.0)  # mu = 0: g = 1
    adv, _ = dispatch("focal_grpo", tlr, mask, uids, algo(1.0, threshold=0.0))
    torch.testing.assert_close(adv, base * 0.75)


def test_zero_length_responses_and_any_hashable_uid():
    uids = [7, 7, (1, "x"), (1, "x"), None, None, 2.5, 2.5]
    tlr, mask, uid_arr = outcome_batch([1, 0, 1, 1, 0, 1, 1, 0], uids, lengths=[0, 3, 2, 0, 1, 4, 2, 2])
    adv, _ = dispatch("focal_grpo", tlr, mask, uid_arr, algo(1.0))
    assert torch.isfinite(adv).all()
    assert torch.all(adv[mask == 0] == 0)
    # the zero-length response of uid 7 has reward 0 (nothing was placed): group 7 is [0, 0] -> zero advantage
    assert torch.all(adv[0:2] == 0)
    # group None: [0, 1] -> mu = .5, g = .5; GRPO: -/+ 0.5 / (0.7071 + 1e-6)
    expected = 0.5 / (math.sqrt(0.5) + 1e-6) * 0.5
    assert adv[4, 0].item() == pytest.approx(-expected, rel=1e-5)
    assert adv[5, 0].item() == pytest.approx(expected, rel=1e-5)


def test_index_as_list_and_integer_array():
    tlr, mask, uids = random_batch(20, 4, 8, 5)
    codes = np.unique(uids, return_inverse=True)[1]
    est = core_algos.get_adv_estimator_fn("focal_grpo")
    a, _ = est(token_level_rewards=tlr, response_mask=mask, index=uids, config=algo(1.0))
    b, _ = est(token_level_rewards=tlr, response_mask=mask, index=list(uids), config=algo(1.0))
    c, _ = est(token_level_rewards=tlr, response_mask=mask, index=codes, config=algo(1.0))
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a, c)


def test_config_none_uses_defaults():
    tlr, mask, uids = outcome_batch([1, 0, 0, 0], list("aaaa"), lengths=[1] * 4)
    est = core_algos.get_adv_estimator_fn("focal_grpo")
    default, _ = est(token_level_rewards=tlr, response_mask=mask, index=uids, config=None)
    explicit, _ = est(token_level_rewards=tlr, response_mask=mask, index=uids, config=algo(0.5, threshold=0.5))
    torch.testing.assert_close(default, explicit)


# --- register_focal_estimator ----------------------------------------------------------------------------

def test_register_focal_estimator_for_builtin_and_user_estimators():
    name = verl_focal.register_focal_estimator("rloo_vectorized")
    assert name == "focal_rloo_vectorized"
    assert verl_focal.register_focal_estimator("rloo_vectorized") == name  # idempotent
    tlr, mask, uids = random_batch(50, 4, 16, 7)
    base, _ = dispatch("rloo_vectorized", tlr, mask, uids, algo(0.0))
    got0, _ = dispatch(name, tlr, mask, uids, algo(0.0))
    torch.testing.assert_close(got0, base)
    got, _ = dispatch(name, tlr, mask, uids, algo(2.0))
    gid, uniques = focal.group_ids(uids, len(uids))
    scores = tlr.sum(-1)
    g = focal.focal_weight(focal.success_rate(scores, gid, len(uniques), 0.5), 2.0)
    torch.testing.assert_close(got, base * g[gid].unsqueeze(-1))

    # A user's own estimator, registered the verl way, made focal under a custom name.
    @core_algos.register_adv_est("test_user_mean_baseline")
    def user_estimator(token_level_rewards, response_mask, index, config=None, **kwargs):
        scores = token_level_rewards.sum(-1)
        gid, uniques = focal.group_ids(index, len(scores))
        mean = torch.zeros(len(uniques)).index_add(0, gid, scores) / torch.bincount(gid).float()
        adv = (scores - mean[gid]).unsqueeze(-1) * response_mask
        return adv, adv

    assert verl_focal.register_focal_estimator("test_user_mean_baseline", "my_focal") == "my_focal"
    user, _ = dispatch("test_user_mean_baseline", tlr, mask, uids, algo(1.0))
    got, returns = dispatch("my_focal", tlr, mask, uids, algo(1.0))
    g1 = focal.focal_weight(focal.success_rate(scores, gid, len(uniques), 0.5), 1.0)
    torch.testing.assert_close(got, user * g1[gid].unsqueeze(-1))
    assert returns is got


def test_register_focal_estimator_refuses_unknown_base_and_taken_names():
    with pytest.raises(ValueError, match="not in verl's advantage-estimator registry"):
        verl_focal.register_focal_estimator("no_such_estimator")
    with pytest.raises(ValueError, match="already registered"):
        verl_focal.register_focal_estimator("rloo", name="grpo_vectorized")
    with pytest.raises(ValueError, match="already registered"):
        verl_focal.register_focal_estimator("rloo", name="focal_grpo")  # ours, but a different estimator
    assert core_algos.ADV_ESTIMATOR_REGISTRY["grpo_vectorized"] is core_algos.compute_grpo_vectorized_outcome_advantage


@pytest.mark.parametrize(
    "base,reason",
    [
        ("gae", "its own branch of compute_advantage"),
        ("gdpo", "only to the name 'gdpo'"),
        ("optimal_token_baseline", "`sum_pi_squared`"),
        ("tir_optimal_token_baseline", "`sum_pi_squared`"),
        ("remax", "`reward_baselines` only when algorithm.adv_estimator is 'remax'"),
        ("reinforce_plus_plus", "not group-relative: it takes no `index`"),
        ("focal_grpo", "a verl-focal estimator already"),
        ("focal_rloo", "a verl-focal estimator already"),
    ],
)
def test_register_focal_estimator_says_why_it_refuses(base, reason):
    with pytest.raises(ValueError, match=f"cannot make a focal estimator from '{base}': .*{re.escape(reason)}"):
        verl_focal.register_focal_estimator(base, name=f"test_refused_{base}")
    assert f"test_refused_{base}" not in core_algos.ADV_ESTIMATOR_REGISTRY


# --- every estimator verl registers: refused, or equal to its base at gamma = 0 ----------------------------

@lru_cache(maxsize=None)
def verl_algorithm(gamma, norm):
    """verl's own ``algorithm`` node, composed from ``ppo_trainer`` as ``main_ppo`` composes it."""
    with initialize_config_module(config_module="verl.trainer.config", version_base=None):
        cfg = compose(
            config_name="ppo_trainer",
            overrides=[f"algorithm.norm_adv_by_std_in_grpo={norm}", f"+algorithm.focal.gamma={gamma}"],
        )
    return cfg.algorithm


def trainer_batch(estimator, seed, ragged):
    """The batch the legacy trainer holds when it calls compute_advantage (the v1 trainer holds a subset).

    Fields that the trainer adds for every estimator are always here; the two it adds by name are added
    the same way: ``values`` when a critic runs (``gae``), ``reward_baselines`` for ``remax``
    (ray_trainer.py:1493-1526). ``sum_pi_squared`` is there as with actor.calculate_sum_pi_squared=True.
    """
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 7, size=12) if ragged else np.full(12, 4)
    uids = np.repeat([f"uid-{g}" for g in range(len(sizes))], sizes).astype(object)
    bs, prompt_len, max_len = len(uids), 3, 6
    lengths = torch.from_numpy(rng.integers(1, max_len + 1, size=bs))
    response_mask = (torch.arange(max_len)[None, :] < lengths[:, None]).to(torch.int64)
    rewards = np.where(rng.random(bs) < 0.5, rng.integers(0, 2, size=bs), rng.normal(size=bs))
    scores = torch.zeros(bs, max_len)
    scores[torch.arange(bs), lengths - 1] = torch.as_tensor(rewards, dtype=torch.float32)
    log_probs = -torch.from_numpy(rng.exponential(size=(bs, max_len))).float() * response_mask
    tensors = {
        "prompts": torch.ones(bs, prompt_len, dtype=torch.int64),
        "responses": torch.ones(bs, max_len, dtype=torch.int64),
        "attention_mask": torch.cat([torch.ones(bs, prompt_len, dtype=torch.int64), response_mask], dim=1),
        "response_mask": response_mask,
        "token_level_scores": scores,
        "token_level_rewards": scores.clone(),
        "old_log_probs": log_probs,
        "ref_log_prob": log_probs * 0.9,
        "rollout_log_probs": log_probs * 1.1,
        "sum_pi_squared": torch.from_numpy(rng.uniform(0.05, 1.0, size=(bs, max_len))).float(),
    }
    if estimator == core_algos.AdvantageEstimator.GAE:
        tensors["values"] = torch.from_numpy(rng.normal(size=(bs, max_len))).float()
    if estimator == core_algos.AdvantageEstimator.REMAX:
        tensors["reward_baselines"] = torch.from_numpy(rng.normal(size=bs)).float()
    return DataProto.from_dict(tensors=tensors, non_tensors={"uid": uids})


def trainer_dispatch(estimator, seed, ragged, algorithm):
    """verl's compute_advantage, called with the arguments the trainer passes (ray_trainer.py:1667-1675)."""
    out = compute_advantage(
        trainer_batch(estimator, seed, ragged),
        adv_estimator=estimator,
        gamma=algorithm.gamma,
        lam=algorithm.lam,
        num_repeat=4,
        norm_adv_by_std_in_grpo=algorithm.get("norm_adv_by_std_in_grpo", True),
        config=algorithm,
    )
    return out.batch["advantages"], out.batch["returns"]


@pytest.fixture
def test_registrations():
    names = []
    yield names
    for name in names:  # only what this test added; verl's own entries are never touched
        core_algos.ADV_ESTIMATOR_REGISTRY.pop(name, None)
        registry.OURS["adv_estimator"].discard(name)


def test_every_registered_estimator_is_refused_or_equals_its_base_at_gamma0(test_registrations):
    refused, equal = {}, []
    for base in sorted(core_algos.ADV_ESTIMATOR_REGISTRY):  # a snapshot: verl's names, ours, other tests'
        name = f"test_focal__{base}"
        try:
            verl_focal.register_focal_estimator(base, name=name)
        except ValueError as err:
            refused[base] = str(err)
            continue
        test_registrations.append(name)
        for norm, seed, ragged in [(True, 0, False), (False, 1, False), (True, 2, True)]:
            try:
                base_adv, base_ret = trainer_dispatch(base, seed, ragged, verl_algorithm(0.0, norm))
            except Exception:  # noqa: BLE001 - the base fails on this batch: the focal version must too
                with pytest.raises(Exception):
                    trainer_dispatch(name, seed, ragged, verl_algorithm(0.0, norm))
                continue
            adv, ret = trainer_dispatch(name, seed, ragged, verl_algorithm(0.0, norm))
            assert torch.equal(adv, base_adv) and torch.equal(ret, base_ret), (base, norm, ragged)
            # gamma = 1: the base's advantages times the group's g, row by row
            adv, ret = trainer_dispatch(name, seed, ragged, verl_algorithm(1.0, norm))
            batch = trainer_batch(name, seed, ragged)
            groups = estimators.focal_groups(batch.batch["token_level_rewards"], batch.non_tensor_batch["uid"],
                                             verl_algorithm(1.0, norm))
            row_g = groups.per_response(groups.weight).unsqueeze(-1)
            torch.testing.assert_close(adv, base_adv * row_g, rtol=1e-6, atol=1e-7)
            torch.testing.assert_close(ret, adv if torch.equal(base_ret, base_adv) else base_ret)
        equal.append(base)
    # what verl 0.9.1 registers, sorted into the two outcomes (a new verl name lands in one of them above)
    verl_names = {e.value for e in core_algos.AdvantageEstimator}
    assert verl_names - set(refused) - set(equal) == set()
    assert {"gae", "gdpo", "optimal_token_baseline", "tir_optimal_token_baseline", "remax",
            "reinforce_plus_plus"} <= set(refused)
    assert {"grpo", "grpo_vectorized", "grpo_passk", "rloo", "rloo_vectorized", "opo", "gpg",
            "reinforce_plus_plus_baseline"} <= set(equal)
    assert {"focal_grpo", "focal_rloo"} <= set(refused)


def test_gdpo_under_another_name_loses_its_reward_components(test_registrations):
    # Why gdpo is refused: verl's dispatcher hands the batch's reward components to the name "gdpo" only.
    # The very same function registered under another name falls back to whitened GRPO of the summed reward.
    core_algos.register_adv_est("test_gdpo_alias")(core_algos.get_adv_estimator_fn("gdpo"))
    test_registrations.append("test_gdpo_alias")
    algorithm = OmegaConf.create(
        {**OmegaConf.to_container(verl_algorithm(0.0, True)), "gdpo_reward_keys": ["acc", "fmt"]}
    )

    def run(estimator):
        batch = trainer_batch(estimator, 3, False)
        rng = np.random.default_rng(3)
        batch.non_tensor_batch["acc"] = rng.integers(0, 2, size=len(batch)).astype(np.float32)
        batch.non_tensor_batch["fmt"] = rng.random(len(batch)).astype(np.float32)
        out = compute_advantage(batch, adv_estimator=estimator, num_repeat=4, config=algorithm)
        return out.batch["advantages"]

    assert not torch.allclose(run("gdpo"), run("test_gdpo_alias"), atol=1e-3)


# --- bad input -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("estimator", ["focal_grpo", "focal_rloo"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_reward_names_the_uid(estimator, bad):
    tlr, mask, uids = outcome_batch([1, 0, bad, 1, 0, 0], ["ok", "ok", "broken-7", "broken-7", "x", "x"], [2] * 6)
    with pytest.raises(ValueError, match="broken-7") as err:
        dispatch(estimator, tlr, mask, uids, algo(0.5))
    assert "'ok'" not in str(err.value) and "'x'" not in str(err.value)


@pytest.mark.parametrize(
    "key,value",
    [("gamma", -0.5), ("gamma", "abc"), ("gamma", True), ("gamma", float("nan")), ("success_threshold", float("nan")),
     ("success_threshold", "high"), ("success_threshold", [0.5])],
)
def test_bad_config_names_the_key(key, value):
    config = OmegaConf.create({"focal": {key: value}})
    tlr, mask, uids = outcome_batch([1, 0], ["a", "a"], [1, 1])
    with pytest.raises(ValueError, match=f"algorithm.focal.{key}"):
        dispatch("focal_grpo", tlr, mask, uids, config)


def test_index_length_mismatch():
    tlr, mask, _ = outcome_batch([1, 0, 1], ["a", "a", "b"], [1, 1, 1])
    est = core_algos.get_adv_estimator_fn("focal_grpo")
    with pytest.raises(ValueError, match="index has 2 uids but the batch has 3"):
        est(token_level_rewards=tlr, response_mask=mask, index=np.array(["a", "a"], dtype=object), config=None)
    with pytest.raises(ValueError, match="index"):
        est(token_level_rewards=tlr, response_mask=mask, index=None, config=None)


# --- properties ------------------------------------------------------------------------------------------

groups = st.lists(
    st.lists(st.sampled_from([0.0, 1.0]), min_size=1, max_size=9), min_size=1, max_size=12
)


def _flatten(group_rewards):
    rewards, uids = [], []
    for g, rs in enumerate(group_rewards):
        rewards += rs
        uids += [f"g{g}"] * len(rs)
    return rewards, uids


@settings(max_examples=60, deadline=None)
@given(groups, st.sampled_from([0.0, 0.5, 1.0, 2.0]), st.randoms(use_true_random=False))
def test_property_permutation_invariance(group_rewards, gamma, rnd):
    rewards, uids = _flatten(group_rewards)
    tlr, mask, uid_arr = outcome_batch(rewards, uids, lengths=[1] * len(rewards), max_len=1)
    perm = list(range(len(rewards)))
    rnd.shuffle(perm)
    adv, _ = dispatch("focal_grpo", tlr, mask, uid_arr, algo(gamma))
    adv_perm, _ = dispatch("focal_grpo", tlr[perm], mask[perm], uid_arr[perm], algo(gamma))
    torch.testing.assert_close(adv_perm, adv[perm], rtol=1e-6, atol=1e-6)


@settings(max_examples=60, deadline=None)
@given(groups, st.floats(0.0, 4.0))
def test_property_weight_bounds_and_uniform_groups(group_rewards, gamma):
    rewards, uids = _flatten(group_rewards)
    tlr, mask, uid_arr = outcome_batch(rewards, uids, lengths=[1] * len(rewards), max_len=1)
    base, _ = dispatch("focal_grpo", tlr, mask, uid_arr, algo(0.0))
    got, _ = dispatch("focal_grpo", tlr, mask, uid_arr, algo(gamma))
    gid, uniques = focal.group_ids(uid_arr, len(rewards))
    g = focal.focal_weight(focal.success_rate(tlr.sum(-1), gid, len(uniques), 0.5), gamma)
    assert torch.all((g >= 0) & (g <= 1))
    # |focal| <= |base| everywhere, and the ratio is the group's g wherever GRPO is non-zero
    assert torch.all(got.abs() <= base.abs() + 1e-6)
    torch.testing.assert_close(got, base * g[gid].unsqueeze(-1), rtol=1e-5, atol=1e-6)
    for gi, rs in enumerate(group_rewards):
        rows = torch.from_numpy(uid_arr == f"g{gi}")
        if len(rs) > 1 and len(set(rs)) == 1:  # all-correct or all-wrong: no signal either way
            assert torch.all(got[rows] == 0) and torch.all(base[rows] == 0)


# --- the two success-rate forms -------------------------------------------------------------------------

def mean_reward_config(gamma, r_correct, r_wrong):
    return OmegaConf.create(
        {"focal": {"gamma": gamma, "success_rate": "mean_reward", "reward_correct": r_correct, "reward_wrong": r_wrong}}
    )


@pytest.mark.parametrize("r_correct,r_wrong", [(1.0, 0.0), (1.0, -1.0), (0.0, 1.0), (2.5, -0.5)])
def test_mean_reward_success_rate_is_the_linear_map_of_the_group_mean(r_correct, r_wrong):
    rng = np.random.default_rng(11)
    span = r_correct - r_wrong
    groups_of = [rng.normal(0.3, 1.2, size=n) for n in (1, 2, 5, 8, 8, 16)]
    groups_of += [np.array([r_correct + span, r_correct]), np.array([r_wrong - span])]  # clamped to 1 and 0
    rewards, uids = [], []
    for g, rs in enumerate(groups_of):
        rewards += rs.tolist()
        uids += [f"g{g}"] * len(rs)
    tlr, mask, uid_arr = outcome_batch(rewards, uids, max_len=4, seed=1)
    groups = estimators.focal_groups(tlr, uid_arr, mean_reward_config(0.5, r_correct, r_wrong))
    # written out: mu = clamp((mean - R_w) / (R_c - R_w), 0, 1), per group, in float64
    means = [float(np.asarray(rs, dtype=np.float32).astype(np.float64).mean()) for rs in groups_of]
    expected = [min(max((mean - r_wrong) / (r_correct - r_wrong), 0.0), 1.0) for mean in means]
    assert groups.uids.tolist() == [f"g{g}" for g in range(len(groups_of))]
    np.testing.assert_allclose(groups.success_rate.numpy(), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(groups.weight.numpy(), (1 - np.array(expected)) ** 0.5, rtol=1e-5, atol=1e-6)
    assert expected[-2:] == [1.0, 0.0] and any(0 < mu < 1 for mu in expected)


def test_mean_reward_form_through_focal_grpo_and_the_wrappers(test_registrations):
    # +1/-1 rewards with shaping: the mean form moves with the penalty, the count form does not.
    rewards = [1.0, 0.5, -1.0, -1.5, 1.0, 1.0, 1.0, 0.0]
    tlr, mask, uids = outcome_batch(rewards, list("aaaabbbb"), lengths=[2] * 8)
    base, _ = dispatch("grpo", tlr, mask, uids, algo(0.0))
    mu_a = (np.mean(rewards[:4]) + 1) / 2  # 0.25
    mu_b = (np.mean(rewards[4:]) + 1) / 2  # 0.875
    g = torch.tensor([1 - mu_a] * 4 + [1 - mu_b] * 4, dtype=torch.float32).unsqueeze(-1)
    got, _ = dispatch("focal_grpo", tlr, mask, uids, mean_reward_config(1.0, 1, -1))
    torch.testing.assert_close(got, base * g)
    name = verl_focal.register_focal_estimator("grpo_vectorized", name="test_focal_mean_grpo_vectorized")
    test_registrations.append(name)
    base_v, _ = dispatch("grpo_vectorized", tlr, mask, uids, algo(0.0))
    got, _ = dispatch(name, tlr, mask, uids, mean_reward_config(1.0, 1, -1))
    torch.testing.assert_close(got, base_v * g)
    # the count form at threshold 0: a: 2 of 4 correct; b: 3 of 4 (the fully penalised 0.0 is not > 0)
    got, _ = dispatch("focal_grpo", tlr, mask, uids, algo(1.0, threshold=0.0))
    torch.testing.assert_close(got, base * torch.tensor([0.5] * 4 + [0.25] * 4).unsqueeze(-1))


# docs/estimators.md, "The two success-rate forms": DAPO-shaped rewards, N = 8, gamma = 0.5.
DOCS_DAPO_TABLE = [
    # rewards, count mu (threshold 0), mean_reward mu (R_c = 1, R_w = -1)
    ([1, 1, 1, -1, -1, -1, -1, -1], 0.375, 0.375),
    ([1, 0.75, 0.5, -1, -1, -1, -1, -1], 0.375, 0.328125),
    ([1, 1, 1, -1, -1, -1, -1.5, -2], 0.375, 0.28125),
    ([1, 1, 1, 1, 1, 1, 0, 0], 0.75, 0.875),
    ([1, 1, 1, 1, 1, 1, 1, 1], 1.0, 1.0),
    ([-1, -1, -1, -1, -1, -1.25, -1.5, -2], 0.0, 0.0),
]


@pytest.mark.parametrize("rewards,count_mu,mean_mu", DOCS_DAPO_TABLE)
def test_docs_table_of_the_two_forms(rewards, count_mu, mean_mu):
    index = np.array(["x"] * len(rewards), dtype=object)
    scores = torch.tensor(rewards, dtype=torch.float32)
    count = estimators.focal_groups(scores, index, {"focal": {"success_threshold": 0.0}})
    mean = estimators.focal_groups(scores, index, mean_reward_config(0.5, 1, -1))
    assert count.success_rate.item() == pytest.approx(count_mu)
    assert mean.success_rate.item() == pytest.approx(mean_mu)
    assert count.weight.item() == pytest.approx((1 - count_mu) ** 0.5)
    assert mean.weight.item() == pytest.approx((1 - mean_mu) ** 0.5)
    docs = (Path(__file__).resolve().parents[1] / "docs" / "estimators.md").read_text()
    row = "| " + ", ".join(f"{r:g}" for r in rewards) + " |"
    assert row in docs, f"docs/estimators.md lacks the row {row}"


# --- focal_groups: the one function behind every estimator and metric --------------------------------------

def test_focal_groups_fields_and_shapes():
    tlr, mask, uids = outcome_batch([1, 0, 0, 0, 1, 1, 0.7], list("aaaabbc"), lengths=[2] * 7)
    groups = estimators.focal_groups(tlr, uids, algo(1.0))
    assert groups.uids.tolist() == ["a", "b", "c"] and groups.num_groups == 3
    assert groups.gid.tolist() == [0, 0, 0, 0, 1, 1, 2] and groups.gid.dtype == torch.int64
    assert groups.count.tolist() == [4, 2, 1]
    assert groups.success_rate.tolist() == [0.25, 1.0, 1.0]
    assert groups.weight.tolist() == [0.75, 0.0, 0.0]
    assert groups.per_response(groups.weight).tolist() == [0.75] * 4 + [0.0] * 3
    assert groups.config.gamma == 1.0
    # scores (bs,) give the same groups as token-level rewards (bs, L)
    again = estimators.focal_groups(tlr.sum(-1), uids, groups.config)
    assert torch.equal(again.weight, groups.weight) and torch.equal(again.scores, groups.scores)
    with pytest.raises(ValueError, match=r"shape \(bs, L\) or \(bs,\)"):
        estimators.focal_groups(tlr[None], uids, None)


@pytest.mark.parametrize("rewards_dtype", [torch.float32, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("mask_dtype", [torch.float32, torch.int64, torch.bool])
def test_output_dtype_and_device_follow_verl(rewards_dtype, mask_dtype):
    tlr, mask, uids = random_batch(10, 4, 8, 9)
    tlr, mask = tlr.to(rewards_dtype), mask.to(mask_dtype)
    for name in ("focal_grpo", "focal_rloo"):
        adv, ret = core_algos.get_adv_estimator_fn(name)(
            token_level_rewards=tlr, response_mask=mask, index=uids, config=algo(1.0)
        )
        assert adv.dtype == torch.float32 and adv.device == tlr.device and ret is adv
    groups = estimators.focal_groups(tlr, uids, None)
    for t in (groups.scores, groups.count, groups.success_rate, groups.weight):
        assert t.dtype == torch.float32


def test_group_math_stays_on_the_scores_device():
    """focal_grpo on a GPU: every tensor it combines must be on the scores' device.

    No GPU here, so the math runs on fake CUDA tensors (torch's FakeTensorMode, which checks devices
    as CUDA does and computes nothing). The uid factorization runs on the host; the group ids then
    live on the scores' device. The last case is the old bug: CPU group ids against CUDA scores.
    """
    from torch._subclasses.fake_tensor import FakeTensorMode

    uids = np.array(["a", "a", "b", "b", "c"], dtype=object)
    with FakeTensorMode():
        scores = torch.zeros(5, device="cuda")
        gid, uniques = focal.group_ids(uids, 5, device=scores.device)
        assert gid.device == scores.device and gid.dtype == torch.int64
        mu = focal.success_rate(scores, gid, len(uniques), 0.5)
        mean_mu = focal.mean_reward_success_rate(scores, gid, len(uniques), 1.0, -1.0)
        g = focal.focal_weight(mu, 0.5)
        _, mean, std = focal.group_stats(scores, gid, len(uniques))
        grpo = focal.grpo_scalar_advantage(scores, gid, len(uniques))
        rloo = focal.rloo_scalar_advantage(scores, gid, len(uniques))
        row_g = g.index_select(0, gid)
        mask = torch.ones(5, 3, device="cuda")
        advantages = (grpo * row_g).unsqueeze(-1) * mask
        for t in (mu, mean_mu, g, mean, std, grpo, rloo, advantages):
            assert t.device == scores.device
        assert (mu.shape, advantages.shape) == ((3,), (5, 3))
        cpu_gid, _ = focal.group_ids(uids, 5)
        with pytest.raises(RuntimeError, match="same device"):
            focal.grpo_scalar_advantage(scores, cpu_gid, len(uniques))
