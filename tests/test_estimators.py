"""focal_grpo / focal_rloo against verl's own estimators, dispatched through verl's compute_advantage.

These tests import verl's registries for real. They never clear verl's registries, so they may share a
process with the other tests of this suite (but not with verl's own registry tests, which do).
"""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

import verl  # noqa: F401  - loads verl_focal through the verl.plugins entry point
from verl import DataProto
from verl.trainer.ppo import core_algos
from verl.trainer.ppo.ray_trainer import compute_advantage

import verl_focal
from verl_focal import focal


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
    with pytest.raises(ValueError, match="not group-relative"):
        verl_focal.register_focal_estimator("gae")
    assert core_algos.ADV_ESTIMATOR_REGISTRY["grpo_vectorized"] is core_algos.compute_grpo_vectorized_outcome_advantage


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
    [("gamma", -0.5), ("gamma", "abc"), ("gamma", True), ("gamma", float("nan")), ("success_threshold", -1.0),
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
