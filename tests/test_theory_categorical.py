"""Eq. 5, Eq. 17, the subset-mass identity (Eqs. 18-19) and Proposition 3.2 against exact softmax updates."""

import numpy as np
import pytest
import torch

from verl_focal.theory import (
    categorical_update,
    correct_mass_change,
    exact_mass_change,
    sampled_sets,
    subset_mass_change,
    unsampled_correct_mass_change,
)


def _case(seed: int, num_actions: int = 40, group_size: int = 8, rewards=(1.0, -1.0)):
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.full(num_actions, 0.5))
    correct = rng.random(num_actions) < 0.5
    correct[:2] = (True, False)  # both reward levels present
    reward = np.where(correct, *rewards)
    samples = rng.choice(num_actions, size=group_size, p=p)
    return p, reward, samples


CASES = [dict(seed=s) for s in range(4)] + [
    dict(seed=7, rewards=(1.0, 0.0)),
    dict(seed=8, group_size=64, num_actions=200),
]


@pytest.mark.parametrize("case", CASES)
def test_eq5_is_the_gradient_of_the_distinct_sample_surrogate(case):
    p, reward, samples = _case(**case)
    lr = 0.3
    z = torch.tensor(np.log(p), requires_grad=True)
    distinct = torch.tensor(np.unique(samples))
    surrogate = (torch.tensor(reward)[distinct] * torch.softmax(z, -1)[distinct]).sum() / len(samples)
    surrogate.backward()
    np.testing.assert_allclose(categorical_update(p, reward, samples, lr), lr * z.grad.numpy(), rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize("case", CASES)
def test_eq17_and_prop32_are_the_subset_identity(case):
    # Exact algebra: Eq. 17 is Eqs. 18-19 with S = P, Prop. 3.2 with S = U n P.
    p, reward, samples = _case(**case)
    lr = 0.5
    sets = sampled_sets(p, reward, samples)
    dz = categorical_update(p, reward, samples, lr)
    assert correct_mass_change(p, reward, samples, lr) == pytest.approx(
        subset_mass_change(p, dz, sets.correct), rel=1e-10
    )
    assert unsampled_correct_mass_change(p, reward, samples, lr) == pytest.approx(
        subset_mass_change(p, dz, sets.unsampled & sets.correct), rel=1e-10
    )


@pytest.mark.parametrize("case", CASES)
def test_first_order_agreement_with_exact_softmax_update(case):
    # The formulas linearise softmax(log p + dz); the gap must vanish like eta^2, i.e. relative error ~ eta.
    p, reward, samples = _case(**case)
    sets = sampled_sets(p, reward, samples)
    checks = ((sets.correct, correct_mass_change), (sets.unsampled & sets.correct, unsampled_correct_mass_change))
    for subset, formula in checks:
        rel_errors = []
        for lr in (10.0, 1.0, 0.1, 0.01, 0.001):
            exact = exact_mass_change(p, categorical_update(p, reward, samples, lr), subset)
            predicted = formula(p, reward, samples, lr)
            rel_errors.append(abs(exact - predicted) / abs(predicted))
        rel_errors = np.array(rel_errors)
        assert rel_errors[-1] < 1e-3, rel_errors
        # Each 10x smaller step shrinks the relative error about 10x (first order; allow 5x).
        assert np.all(rel_errors[1:] < rel_errors[:-1] / 5 + 1e-12), rel_errors


def test_high_success_batch_grows_total_correct_mass_but_drains_unsampled_correct_mass():
    # Section 3.2's consequence, on an exact step: many correct modes, most of the mass on a few of them.
    num_actions = 30
    logits = np.zeros(num_actions)
    logits[:20] = 1.0  # correct actions 0..19
    logits[:3] = 3.0  # three dominant correct modes
    p = np.exp(logits) / np.exp(logits).sum()
    reward = np.where(np.arange(num_actions) < 20, 1.0, -1.0)
    samples = np.array([0, 1, 2, 0, 1, 5, 25, 2])  # 7 of 8 correct: a reward-positive batch
    lr = 0.05
    sets = sampled_sets(p, reward, samples)
    dz = categorical_update(p, reward, samples, lr)
    assert correct_mass_change(p, reward, samples, lr) > 0
    assert unsampled_correct_mass_change(p, reward, samples, lr) < 0
    assert exact_mass_change(p, dz, sets.correct) > 0
    assert exact_mass_change(p, dz, sets.unsampled & sets.correct) < 0
    # Every unsampled logit, correct or not, is pushed down on a batch with S_R > 0 (Eq. 5).
    assert np.all(dz[sets.unsampled] < 0)


@pytest.mark.parametrize(
    "args, match",
    [
        ((np.array([0.5, 0.6]), np.array([1.0, -1.0]), np.array([0])), "sum to 1"),
        ((np.array([0.5, 0.5]), np.array([1.0, 1.0]), np.array([0])), "two finite values"),
        ((np.array([0.4, 0.3, 0.3]), np.array([1.0, 0.0, -1.0]), np.array([0])), "two finite values"),
        ((np.array([0.5, 0.5]), np.array([1.0, -1.0, 0.0]), np.array([0])), "shape"),
        ((np.array([0.5, 0.5]), np.array([1.0, -1.0]), np.array([2])), "samples"),
        ((np.array([0.5, 0.5]), np.array([1.0, -1.0]), np.array([], dtype=int)), "samples"),
        ((np.array([0.5, 0.5]), np.array([1.0, -1.0]), np.array([0.0])), "samples"),
    ],
)
def test_malformed_inputs_are_named(args, match):
    with pytest.raises(ValueError, match=match):
        categorical_update(*args, lr=0.1)
