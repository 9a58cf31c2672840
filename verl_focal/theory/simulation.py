"""The categorical simulation of F-GRPO (Section 5.1, Appendix J, Figure 2 of arXiv 2602.06717).

BroRL's bandit: a softmax policy over 128,000 actions, 10,000 of them correct. Each step draws a group
of N actions i.i.d. from the policy, scores them +1 (correct) / -1 (incorrect), and turns the scores
into advantages with our registered ``focal_grpo`` estimator (centred, no std normalisation, one group
per run): A_j = (1 - mu_hat)^gamma * (R_j - mean R)  (Eqs. 12-13). The policy then ascends one of

    linear:  L(z) = (1/N) * sum_j A_j * p_{a_j}(z)          the surrogate of the paper's Eq. 5
    logprob: L(z) = (1/N) * sum_j A_j * log p_{a_j}(z)      GRPO's on-policy gradient: the gradient of the
                                                            ratio surrogate sum_j A_j p_{a_j} / sg(p_{a_j})

The sampled multiset is held as counts per action, so a step costs O(K + N): with w_k the summed
advantage of the samples of action k divided by N, grad_z L = p * (w - <w, p>) (linear) or
w - p * sum_k w_k (logprob). Plain SGD on ``logprob`` is the natural-gradient (softmax-Fisher) step
on ``linear``, because sum_k w_k = 0 for centred advantages.

Runs that differ only in (N, gamma, seed) are rows of one logit matrix, updated together; each row is
an independent run (every optimiser here acts elementwise or row-wise).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

#: N in {2, 4, ..., 131072}: the paper's sweep.
PAPER_GROUP_SIZES = tuple(2**k for k in range(1, 18))
#: The curves of Figure 2.
FIGURE2_GROUP_SIZES = (2, 256, 8192, 131072)
OPTIMIZERS = ("adam", "adamw", "sgd")
#: linear: the paper's surrogate, linear in p (Eq. 5). logprob: GRPO's on-policy policy gradient.
OBJECTIVES = ("linear", "logprob")
FOCAL_ESTIMATOR = "focal_grpo"


@dataclass(frozen=True)
class CategoricalSetup:
    """The initial policy and rewards of Appendix J (BroRL's simulator)."""

    num_actions: int = 128_000
    num_correct: int = 10_000
    anchor_logit: float = 5.0
    correct_logit: float = 3.0
    incorrect_logit: float = 0.0
    reward_correct: float = 1.0
    reward_incorrect: float = -1.0

    def __post_init__(self):
        if not 1 <= self.num_correct < self.num_actions:
            raise ValueError(f"need 1 <= num_correct < num_actions, got {self.num_correct} and {self.num_actions}")
        if not self.reward_correct > self.reward_incorrect:
            raise ValueError("reward_correct must exceed reward_incorrect (Eq. 1)")

    def correct_mask(self) -> torch.Tensor:
        """(K,) bool; action 0 is the anchor, actions 0..num_correct-1 are correct."""
        mask = torch.zeros(self.num_actions, dtype=torch.bool)
        mask[: self.num_correct] = True
        return mask

    def initial_logits(self) -> torch.Tensor:
        """(K,) float32 logits z_0."""
        z = torch.full((self.num_actions,), self.incorrect_logit)
        z[: self.num_correct] = self.correct_logit
        z[0] = self.anchor_logit
        return z

    def rewards(self) -> torch.Tensor:
        """(K,) float32 reward of each action."""
        return torch.where(self.correct_mask(), self.reward_correct, self.reward_incorrect).to(torch.float32)


@dataclass(frozen=True)
class SimulationConfig:
    """One sweep. ``lr`` is the paper's 1e-2. The paper leaves the optimiser unspecified; the default
    (Adam on the on-policy ``logprob`` gradient) is the combination that reproduces the three regimes
    of its Figure 2 (docs/theory.md compares the others).

    optimizer:
        adam:  torch Adam on -L, betas (0.9, 0.999), eps ``adam_eps``.
        adamw: torch AdamW, as BroRL describes its simulator, with ``weight_decay``.
        sgd:   plain gradient ascent on the logits (with ``objective="linear"``, the Eq. 5 step).
    objective: ``linear`` (the paper's L, linear in p) or ``logprob`` (GRPO's on-policy gradient).
    """

    group_sizes: tuple[int, ...] = PAPER_GROUP_SIZES
    gammas: tuple[float, ...] = (0.0, 1.0)
    seeds: tuple[int, ...] = (0, 1, 2, 3)
    steps: int = 1000
    lr: float = 1e-2
    optimizer: str = "adam"
    objective: str = "logprob"
    adam_eps: float = 1e-8
    weight_decay: float = 0.01
    log_every: int = 10
    setup: CategoricalSetup = field(default_factory=CategoricalSetup)

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {self.objective!r}")
        if not self.group_sizes or any(int(n) != n or n < 2 for n in self.group_sizes):
            raise ValueError(f"group_sizes must be integers >= 2, got {self.group_sizes!r}")
        if not self.gammas or any(not np.isfinite(g) or g < 0 for g in self.gammas):
            raise ValueError(f"gammas must be finite numbers >= 0, got {self.gammas!r}")
        if not self.seeds:
            raise ValueError("seeds must not be empty")
        if self.steps < 1 or self.log_every < 1:
            raise ValueError(f"steps and log_every must be >= 1, got {self.steps} and {self.log_every}")
        if not (np.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}")
        if not (np.isfinite(self.adam_eps) and self.adam_eps > 0):
            raise ValueError(f"adam_eps must be a positive number, got {self.adam_eps!r}")
        if not (np.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ValueError(f"weight_decay must be a finite number >= 0, got {self.weight_decay!r}")
        if any(int(seed) != seed or seed < 0 for seed in self.seeds):
            raise ValueError(f"seeds must be integers >= 0, got {self.seeds!r}")


def focal_grpo_advantages(
    scores: torch.Tensor, run_index: np.ndarray, gamma: float, success_threshold: float = 0.0
) -> torch.Tensor:
    """Advantages of the paper's simulator from verl's registry entry ``focal_grpo``.

    The config is the paper's: centred rewards, no std normalisation; with its +1/-1 rewards a sample
    is a success when its score is > 0.

    Args:
        scores: (bs,) reward of each sample.
        run_index: (bs,) the group (run) of each sample; one group per run and step.
        gamma: focal exponent.
        success_threshold: a score above it counts as correct for mu_hat.

    Returns:
        (bs,) advantages: (1 - mu_hat)^gamma * (R_j - mean of its group).
    """
    from verl.trainer.ppo import core_algos

    from verl_focal import plugin  # noqa: F401  (registers focal_grpo where verl's plugin loading did not)

    estimator = core_algos.get_adv_estimator_fn(FOCAL_ESTIMATOR)
    config = {
        "norm_adv_by_std_in_grpo": False,
        "focal": {"gamma": float(gamma), "success_threshold": float(success_threshold)},
    }
    token_level_rewards = scores.to(torch.float32).unsqueeze(-1)  # verl's (bs, L) with L = 1
    advantages, _ = estimator(
        token_level_rewards=token_level_rewards,
        response_mask=torch.ones_like(token_level_rewards),
        index=run_index,
        config=config,
    )
    return advantages[:, 0]


def sample_counts(probs: torch.Tensor, group_sizes: np.ndarray, rngs: list[np.random.Generator]) -> np.ndarray:
    """Draw each row's multiset of N_r i.i.d. actions as counts per action (one exact multinomial draw).

    Args:
        probs: (R, K) policy of each run.
        group_sizes: (R,) N of each run.
        rngs: one generator per run.

    Returns:
        (R, K) int64 counts; row r sums to N_r.
    """
    probs64 = probs.double().numpy()
    counts = np.empty(probs64.shape, dtype=np.int64)
    for row, (n, rng) in enumerate(zip(group_sizes, rngs)):
        pvals = probs64[row] / probs64[row].sum()  # numpy checks sum(pvals[:-1]) <= 1 in float64
        counts[row] = rng.multinomial(int(n), pvals)
    return counts


def surrogate_weights(
    counts: np.ndarray, rewards: torch.Tensor, gammas: np.ndarray, group_sizes: np.ndarray
) -> torch.Tensor:
    """w[r, k] = (1/N_r) * sum of the focal_grpo advantages of the samples of action k in run r.

    All runs with the same gamma go through the estimator in one call, each run its own group (uid).

    Returns:
        (R, K) float32.
    """
    num_runs, num_actions = counts.shape
    # Midway between R_w and R_c: 0 for the paper's +1/-1.
    success_threshold = float(rewards.max() + rewards.min()) / 2
    weights = torch.zeros(num_runs * num_actions, dtype=torch.float64)
    for gamma in np.unique(gammas):
        rows = np.flatnonzero(gammas == gamma)
        # The multiset as samples sorted by action: flat ids r*K + k, each repeated count times
        # (only the sampled actions are expanded, so this is O(N) after one O(K) scan).
        row_pos, actions = np.nonzero(counts[rows])
        flat_ids = torch.from_numpy(
            np.repeat(rows[row_pos] * num_actions + actions, counts[rows[row_pos], actions])
        )
        scores = rewards[flat_ids % num_actions]
        advantages = focal_grpo_advantages(scores, (flat_ids // num_actions).numpy(), float(gamma), success_threshold)
        weights += torch.bincount(flat_ids, weights=advantages.double(), minlength=num_runs * num_actions)
    weights = weights.view(num_runs, num_actions) / torch.from_numpy(group_sizes.astype(np.float64))[:, None]
    return weights.to(torch.float32)


def surrogate_gradient(probs: torch.Tensor, weights: torch.Tensor, objective: str = "linear") -> torch.Tensor:
    """grad_z of the surrogate for p = softmax(z), through the softmax Jacobian diag(p) - p p^T.

    linear:  L = sum_k w_k p_k        ->  p * (w - <w, p>)
    logprob: L = sum_k w_k log p_k    ->  w - p * sum_k w_k

    Args:
        probs: (R, K) policy.
        weights: (R, K) per-action surrogate weights from ``surrogate_weights``.
    """
    if objective == "linear":
        return probs * (weights - (weights * probs).sum(-1, keepdim=True))
    if objective == "logprob":
        return weights - probs * weights.sum(-1, keepdim=True)
    raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")


def _metrics(probs, initial_probs, correct) -> dict[str, np.ndarray]:
    correct_probs = probs[:, correct]
    lost = (initial_probs[correct] - correct_probs).clamp_min(0.0).sum(-1)
    return {
        "q_pos": correct_probs.sum(-1).numpy(),  # Eq. 4
        "m_ret": (1.0 - lost / initial_probs[correct].sum()).numpy(),  # Eq. 26
        "p_anchor": probs[:, 0].numpy(),
        "entropy": -(probs * torch.log(probs.clamp_min(1e-30))).sum(-1).numpy(),
    }


def simulate(config: SimulationConfig, progress: bool = True) -> pd.DataFrame:
    """Run every (N, gamma, seed) of ``config`` and return the logged trajectories.

    Returns:
        One row per run and logged step (0, log_every, ..., steps) with columns group_size, gamma, seed,
        step, q_pos, m_ret, p_anchor, entropy, active_fraction (share of steps so far whose group had
        mixed rewards, i.e. a non-zero update).
    """
    from tqdm.auto import tqdm

    setup = config.setup
    runs = [(int(n), float(g), int(s)) for n in config.group_sizes for g in config.gammas for s in config.seeds]
    group_sizes = np.array([r[0] for r in runs])
    gammas = np.array([r[1] for r in runs])
    # Same stream for both gammas of a (seed, N): they share their first group.
    rngs = [np.random.default_rng([seed, n]) for n, _, seed in runs]

    correct = setup.correct_mask()
    rewards = setup.rewards()
    logits = setup.initial_logits().repeat(len(runs), 1).requires_grad_(True)
    initial_probs = torch.softmax(setup.initial_logits(), -1)
    if config.optimizer == "adam":
        optimizer = torch.optim.Adam([logits], lr=config.lr, eps=config.adam_eps)
    elif config.optimizer == "adamw":
        optimizer = torch.optim.AdamW([logits], lr=config.lr, eps=config.adam_eps, weight_decay=config.weight_decay)
    else:
        optimizer = torch.optim.SGD([logits], lr=config.lr)

    records = []
    active_steps = np.zeros(len(runs))

    def log(step, probs):
        metrics = _metrics(probs, initial_probs, correct)
        for i, (n, g, s) in enumerate(runs):
            records.append(
                {"group_size": n, "gamma": g, "seed": s, "step": step}
                | {k: float(v[i]) for k, v in metrics.items()}
                | {"active_fraction": active_steps[i] / max(step, 1)}
            )

    desc = f"simulate ({len(runs)} runs, {config.optimizer}, {config.objective})"
    bar = tqdm(range(config.steps), desc=desc, disable=not progress)
    for step in bar:
        with torch.no_grad():
            probs = torch.softmax(logits, -1)
            if step % config.log_every == 0:
                log(step, probs)
            counts = sample_counts(probs, group_sizes, rngs)
            num_correct = counts[:, : setup.num_correct].sum(-1)
            active_steps += (num_correct > 0) & (num_correct < group_sizes)
            w = surrogate_weights(counts, rewards, gammas, group_sizes)
            logits.grad = -surrogate_gradient(probs, w, config.objective)  # optimisers minimise -L
        optimizer.step()
    with torch.no_grad():
        log(config.steps, torch.softmax(logits, -1))
    return pd.DataFrame.from_records(records)


def final_table(trajectories: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over seeds of Q_pos and M_ret at the last logged step, per (N, gamma)."""
    last = trajectories[trajectories["step"] == trajectories["step"].max()]
    table = last.groupby(["group_size", "gamma"])[["q_pos", "m_ret", "p_anchor", "entropy"]].agg(["mean", "std"])
    table.columns = [f"{metric}_{stat}" for metric, stat in table.columns]
    return table.reset_index()
