"""Lemma 3.1 (tail-miss and activity probabilities) and the m_gamma factor of Appendix N."""

import math

import numpy as np
import pytest

from verl_focal.theory import active_probability, focal_lr_equivalent, tail_miss_argmax, tail_miss_probability

# method.md section 2.1, derived from the closed form (the paper prints only the curves).
REFERENCE_TABLE = {  # (mu, rho): Pr(B) at N = 2, 4, 8, 16, 32
    (0.5, 0.1): [0.450, 0.711, 0.658, 0.440, 0.194],
    (0.8, 0.05): [0.304, 0.514, 0.610, 0.508, 0.271],
    (0.3, 0.2): [0.336, 0.537, 0.552, 0.368, 0.138],
    (0.2, 0.01): [0.317, 0.581, 0.816, 0.940, 0.937],
}

# Figure 3's grid: integer argmax over N = 1..512 and the maximum, per (mu, rho).
FIGURE3_ARGMAX = {
    0.8: [(15, 0.856), (8, 0.610), (6, 0.467), (4, 0.328)],
    0.5: [(8, 0.953), (6, 0.832), (5, 0.724), (4, 0.568)],
    0.3: [(14, 0.952), (9, 0.832), (8, 0.726), (6, 0.572)],
    0.2: [(21, 0.950), (15, 0.825), (12, 0.716), (9, 0.558)],
}
FIGURE3_RHOS = [0.01, 0.05, 0.1, 0.2]


@pytest.mark.parametrize("mu_rho", list(REFERENCE_TABLE))
def test_tail_miss_matches_reference_table(mu_rho):
    mu, rho = mu_rho
    got = tail_miss_probability(mu, rho * mu, [2, 4, 8, 16, 32])
    np.testing.assert_allclose(got, REFERENCE_TABLE[mu_rho], atol=6e-4)


def test_tail_miss_argmax_reproduces_figure3_grid():
    mu = np.array(list(FIGURE3_ARGMAX))[:, None]
    tau = mu * np.array(FIGURE3_RHOS)[None, :]
    n_star, prob = tail_miss_argmax(mu, tau, max_n=512)
    expected = np.array([[n for n, _ in row] for row in FIGURE3_ARGMAX.values()])
    expected_prob = np.array([[p for _, p in row] for row in FIGURE3_ARGMAX.values()])
    np.testing.assert_array_equal(n_star, expected)
    np.testing.assert_allclose(prob, expected_prob, atol=6e-4)
    # The paper's reading of Figure 3: rarer subsets peak later and higher.
    assert np.all(np.diff(n_star, axis=1) <= 0) and np.all(np.diff(prob, axis=1) < 0)


@pytest.mark.parametrize("mu, tau, n", [(0.5, 0.05, 4), (0.8, 0.04, 8), (0.3, 0.003, 16), (0.9, 0.2, 3), (0.2, 0.2, 5)])
def test_lemma_matches_monte_carlo(mu, tau, n):
    # Each rollout lands in E (tau), in C minus E (mu - tau) or outside C (1 - mu): the lemma's own model.
    rng = np.random.default_rng(1234)
    draws = 200_000
    counts = rng.multinomial(n, [tau, mu - tau, 1.0 - mu], size=draws)
    num_correct = counts[:, 0] + counts[:, 1]
    active = (num_correct > 0) & (num_correct < n)
    tail_miss = active & (counts[:, 0] == 0)
    checks = ((tail_miss.mean(), tail_miss_probability(mu, tau, n)), (active.mean(), active_probability(mu, n)))
    for estimate, exact in checks:
        sigma = math.sqrt(max(exact * (1 - exact), 1e-12) / draws)
        assert abs(estimate - exact) < 5 * sigma + 1e-9, (estimate, exact)


def test_boundary_values():
    assert tail_miss_probability(0.7, 0.1, 1) == 0.0 and active_probability(0.7, 1) == 0.0  # N = 1 is never active
    assert tail_miss_probability(0.7, 0.0, 10) == pytest.approx(active_probability(0.7, 10))  # empty E: always missed
    assert tail_miss_probability(0.7, 0.7, 10) == pytest.approx(0.0)  # E = C: an active group hits E
    assert tail_miss_probability(1.0, 0.1, 10) == pytest.approx(0.0)  # always correct: never active


def test_broadcasting_shapes():
    out = tail_miss_probability(np.array([0.5, 0.8])[:, None, None], 0.05, np.array([2, 4, 8]))
    assert out.shape == (2, 1, 3)
    n_star, prob = tail_miss_argmax([0.5, 0.8], [0.05, 0.04], max_n=64)
    assert n_star.shape == prob.shape == (2,) and n_star.dtype == np.int64
    assert tail_miss_argmax(0.5, 0.05) == (5, pytest.approx(0.72408, abs=1e-5))  # scalars in, scalars out


def test_simulation_initialisation_row():
    # Appendix J: mu = Q_pos(0), tau = one non-anchor correct action; method.md's derived row.
    from verl_focal.theory.simulation import CategoricalSetup

    import torch

    probs = torch.softmax(CategoricalSetup().initial_logits().double(), -1).numpy()
    mu, tau = probs[:10_000].sum(), probs[1]
    n = [2, 16, 8192, 32768, 131072]
    expected = [0.466, 0.998, 0.597, 0.127, 0.00026]
    np.testing.assert_allclose(tail_miss_probability(mu, tau, n), expected, atol=6e-4, rtol=2e-2)
    assert tail_miss_probability(mu, tau, 2**17) < 1e-3  # the paper's "below 1e-3 at N = 2^17"


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: tail_miss_probability(0.5, 0.6, 4), "tau"),
        (lambda: tail_miss_probability(1.2, 0.1, 4), "mu"),
        (lambda: tail_miss_probability(0.5, -0.1, 4), "tau"),
        (lambda: tail_miss_probability(0.5, 0.1, 0), "n"),
        (lambda: tail_miss_probability(0.5, 0.1, 2.5), "n"),
        (lambda: tail_miss_probability(0.5, 0.1, True), "n"),
        (lambda: active_probability(float("nan"), 4), "mu"),
        (lambda: tail_miss_argmax(0.5, 0.1, max_n=0), "max_n"),
    ],
)
def test_domain_errors_name_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def _m_gamma_by_quadrature(gamma: float) -> float:
    # mu = sin^2(t) removes the square-root endpoint singularities: dmu sqrt(mu(1-mu)) = 2 sin^2 cos^2 dt.
    t = np.linspace(0.0, np.pi / 2, 200_001)
    base = 2 * np.sin(t) ** 2 * np.cos(t) ** 2
    trapezoid = getattr(np, "trapezoid", None) or np.trapz  # numpy < 2 (verl 0.7/0.8 environments) has trapz only
    return trapezoid(base * np.cos(t) ** (2 * gamma), t) / trapezoid(base, t)


@pytest.mark.parametrize("gamma", [0.0, 0.25, 0.5, 1.0, 2.0, 3.7])
def test_m_gamma_matches_numerical_integration(gamma):
    assert focal_lr_equivalent(gamma) == pytest.approx(_m_gamma_by_quadrature(gamma), rel=1e-8)


def test_m_gamma_paper_values():
    assert focal_lr_equivalent(0.0) == pytest.approx(1.0)
    assert round(focal_lr_equivalent(0.5), 3) == 0.679  # the paper's low-LR control: 1e-6 * m_0.5 = 6.8e-7
    assert focal_lr_equivalent(1.0) == pytest.approx(0.5)
    assert focal_lr_equivalent(2.0) == pytest.approx(0.3125)


@pytest.mark.parametrize("gamma", [-0.5, float("inf"), float("nan"), True, "1"])
def test_m_gamma_rejects_bad_gamma(gamma):
    with pytest.raises(ValueError, match="gamma"):
        focal_lr_equivalent(gamma)
