"""The categorical simulation: its advantages are focal_grpo's from verl's registry, its gradient is exact,
its runs are independent rows, and its CLI writes the paper's figures."""

import numpy as np
import pytest
import torch
from verl.trainer.ppo import core_algos

from verl_focal.theory.cli import simulate_main, theory_main
from verl_focal.theory.simulation import (
    CategoricalSetup,
    SimulationConfig,
    final_table,
    simulate,
    surrogate_gradient,
    surrogate_weights,
)

SMALL = CategoricalSetup(num_actions=3000, num_correct=300)


def _random_counts(rng, probs, group_sizes):
    return np.stack([rng.multinomial(n, probs) for n in group_sizes])


def test_paper_setup_matches_appendix_j():
    probs = torch.softmax(CategoricalSetup().initial_logits().double(), -1)
    assert probs[:10_000].sum().item() == pytest.approx(0.6301, abs=1e-4)
    assert probs[0].item() == pytest.approx(4.65e-4, rel=1e-3)
    assert probs[1].item() == pytest.approx(6.297e-5, rel=1e-3)


@pytest.mark.parametrize("gammas", [(0.0, 0.0, 0.0), (1.0, 1.0, 0.5), (0.0, 1.0, 2.0)])
def test_simulation_advantages_equal_focal_grpo_called_through_verls_registry(gammas):
    rng = np.random.default_rng(0)
    probs = torch.softmax(SMALL.initial_logits().double(), -1).numpy()
    group_sizes = np.array([8, 64, 5])
    counts = _random_counts(rng, probs, group_sizes)
    rewards = SMALL.rewards()
    weights = surrogate_weights(counts, rewards, np.array(gammas), group_sizes)

    estimator = core_algos.get_adv_estimator_fn("focal_grpo")
    for run, (n, gamma) in enumerate(zip(group_sizes, gammas)):
        # The group as an LLM batch would hold it: shuffled samples, one string uid, the outcome reward
        # on the last of 3 tokens, and the paper's config (+1/-1 rewards, centred, no std normalisation).
        actions = rng.permutation(np.repeat(np.arange(SMALL.num_actions), counts[run]))
        token_rewards = torch.zeros(n, 3)
        token_rewards[:, -1] = rewards[actions]
        config = {"norm_adv_by_std_in_grpo": False, "focal": {"gamma": gamma, "success_threshold": 0.0}}
        advantages, _ = estimator(
            token_level_rewards=token_rewards, response_mask=torch.ones(n, 3),
            index=np.array([f"prompt-{run}"] * n, dtype=object), config=config,
        )
        expected = np.bincount(actions, weights=advantages[:, 0].double().numpy(), minlength=SMALL.num_actions) / n
        np.testing.assert_allclose(weights[run].numpy(), expected, rtol=1e-6, atol=1e-7)
        # ... which is the paper's simulator objective: (1 - mu_hat)^gamma (R_j - mean R).
        scores = rewards[actions].double().numpy()
        paper = (1 - (scores > 0).mean()) ** gamma * (scores - scores.mean())
        np.testing.assert_allclose(advantages[:, 0].numpy(), paper, rtol=1e-6, atol=1e-6)


def test_gamma_zero_is_verls_grpo_without_std_normalisation():
    rng = np.random.default_rng(1)
    probs = torch.softmax(SMALL.initial_logits().double(), -1).numpy()
    counts = _random_counts(rng, probs, [16])
    actions = np.repeat(np.arange(SMALL.num_actions), counts[0])
    scores = SMALL.rewards()[actions].unsqueeze(-1)
    grpo, _ = core_algos.compute_grpo_outcome_advantage(
        token_level_rewards=scores.clone(), response_mask=torch.ones_like(scores), index=np.zeros(16, dtype=int),
        norm_adv_by_std_in_grpo=False,
    )
    expected = np.bincount(actions, weights=grpo[:, 0].double().numpy(), minlength=SMALL.num_actions) / 16
    weights = surrogate_weights(counts, SMALL.rewards(), np.array([0.0]), np.array([16]))
    np.testing.assert_allclose(weights[0].numpy(), expected, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("objective, surrogate", [("linear", torch.softmax), ("logprob", torch.log_softmax)])
def test_surrogate_gradient_equals_autograd(objective, surrogate):
    rng = np.random.default_rng(2)
    logits = torch.tensor(rng.normal(size=(3, 50)), requires_grad=True)
    weights = torch.tensor(rng.normal(size=(3, 50)))
    (weights * surrogate(logits, -1)).sum().backward()
    got = surrogate_gradient(torch.softmax(logits, -1).detach(), weights, objective)
    np.testing.assert_allclose(got, logits.grad, rtol=1e-10, atol=1e-14)


def test_sgd_on_logprob_is_the_natural_gradient_of_the_linear_surrogate():
    # Fisher of the softmax F = diag(p) - p p^T; F @ (logprob gradient) = linear gradient when sum(w) = 0.
    rng = np.random.default_rng(3)
    probs = torch.softmax(torch.tensor(rng.normal(size=(1, 40))), -1)
    weights = torch.tensor(rng.normal(size=(1, 40)))
    weights -= weights.mean()  # centred advantages
    fisher = torch.diag(probs[0]) - probs[0, :, None] * probs[0, None, :]
    natural_step = surrogate_gradient(probs, weights, "logprob")[0]
    np.testing.assert_allclose(fisher @ natural_step, surrogate_gradient(probs, weights, "linear")[0], atol=1e-14)


def _small_config(**overrides):
    base = dict(group_sizes=(4, 64), gammas=(0.0, 1.0), seeds=(0, 1), steps=30, log_every=10, setup=SMALL)
    return SimulationConfig(**{**base, **overrides})


@pytest.mark.parametrize(
    "optimizer, objective, lr",
    [("adam", "linear", 1e-2), ("adamw", "linear", 1e-2), ("sgd", "linear", 100.0), ("adam", "logprob", 1e-2),
     ("sgd", "logprob", 1.0)],
)
def test_simulate_logs_valid_trajectories(optimizer, objective, lr):
    df = simulate(_small_config(optimizer=optimizer, objective=objective, lr=lr), progress=False)
    assert len(df) == 2 * 2 * 2 * 4  # runs x logged steps (0, 10, 20, 30)
    start = df[df["step"] == 0]
    q0 = torch.softmax(SMALL.initial_logits().double(), -1)[:300].sum().item()
    # The simulation runs in float32: its softmax over 3,000 actions is 1.07e-5 off the float64 value on an
    # AMD EPYC here (the kernel's reduction order differs between CPUs), so 1e-5 is too tight.
    np.testing.assert_allclose(start["q_pos"], q0, rtol=5e-5)
    np.testing.assert_allclose(start["m_ret"], 1.0, atol=1e-6)
    assert df["q_pos"].between(0, 1).all() and (df["m_ret"] <= 1 + 1e-6).all() and (df["m_ret"] >= -1e-6).all()
    end = df[df["step"] == 30]
    assert not np.allclose(end["q_pos"], q0, rtol=1e-4)  # the policy moved
    table = final_table(df)
    keys = list(table[["group_size", "gamma"]].itertuples(index=False, name=None))
    assert keys == [(4, 0.0), (4, 1.0), (64, 0.0), (64, 1.0)]


def test_runs_are_independent_rows_and_reproducible():
    together = simulate(_small_config(), progress=False)
    alone = simulate(_small_config(group_sizes=(64,), gammas=(1.0,), seeds=(1,)), progress=False)
    same = together[(together["group_size"] == 64) & (together["gamma"] == 1.0) & (together["seed"] == 1)]
    np.testing.assert_allclose(same[["q_pos", "m_ret"]].to_numpy(), alone[["q_pos", "m_ret"]].to_numpy(), rtol=1e-6)
    again = simulate(_small_config(), progress=False)
    np.testing.assert_array_equal(together.to_numpy(), again.to_numpy())


@pytest.mark.parametrize(
    "overrides, match",
    [({"optimizer": "rmsprop"}, "optimizer"), ({"objective": "ratio"}, "objective"),
     ({"group_sizes": (1,)}, "group_sizes"), ({"gammas": (-1.0,)}, "gammas"),
     ({"lr": 0.0}, "lr"), ({"steps": 0}, "steps"), ({"adam_eps": 0.0}, "adam_eps"),
     ({"adam_eps": -1e-8}, "adam_eps"), ({"weight_decay": -1.0}, "weight_decay"), ({"seeds": (-1,)}, "seeds")],
)
def test_bad_config_is_named(overrides, match):
    with pytest.raises(ValueError, match=match):
        _small_config(**overrides)


def test_theory_cli_prints_table_and_argmax(capsys):
    assert theory_main(["--mu", "0.5", "--rho", "0.1", "--n", "2", "4", "8", "--gamma", "0.5"]) == 0
    out = capsys.readouterr().out
    assert "0.450" in out and "0.711" in out and "0.658" in out and "5 (0.724)" in out and "0.6791" in out
    with pytest.raises(SystemExit):
        theory_main(["--mu", "1.5"])
    assert "mu" in capsys.readouterr().err


def test_simulate_cli_writes_csv_and_figures(tmp_path, capsys):
    out = tmp_path / "sim"
    argv = ["--n", "4", "256", "--seeds", "0", "--steps", "4", "--log-every", "2", "--no-progress", "--out", str(out)]
    assert simulate_main(argv) == 0
    for name in ("trajectories.csv", "final.csv", "dynamics.png", "final_vs_n.png"):
        assert (out / name).stat().st_size > 0
    assert "final Q_pos and M_ret" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        simulate_main(["--n", "1", "--out", str(out)])


def test_success_is_counted_midway_between_the_two_rewards():
    # Rewards 1 / 0.5 (a wrong answer with a format bonus): mu_hat must still be the fraction of correct
    # samples, so the success threshold sits between R_w and R_c, not at 0.
    setup = CategoricalSetup(num_actions=3000, num_correct=300, reward_correct=1.0, reward_incorrect=0.5)
    counts = np.zeros((1, setup.num_actions), dtype=np.int64)
    counts[0, [0, 1, 2500]] = (2, 1, 5)  # 3 correct of 8
    weights = surrogate_weights(counts, setup.rewards(), np.array([2.0]), np.array([8]))
    g = (1 - 3 / 8) ** 2
    centred = (0.5 * 5 / 8, 0.5 * -3 / 8)  # R - mean R for a correct and an incorrect sample
    expected = [2 * g * centred[0] / 8, g * centred[0] / 8, 5 * g * centred[1] / 8]  # count * A / N
    np.testing.assert_allclose(weights[0, [0, 1, 2500]].numpy(), expected, rtol=1e-6)
    assert torch.count_nonzero(weights) == 3
