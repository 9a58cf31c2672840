"""``verl-focal simulate`` and ``verl-focal theory``."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from verl_focal.theory.closed_form import (
    FIGURE3_MAX_N,
    active_probability,
    focal_lr_equivalent,
    tail_miss_argmax,
    tail_miss_probability,
)

# --quick: the four curves of Figure 2, plus N = 16 (regime I) and 32768 (where gamma = 1 helps most), one seed.
QUICK_GROUP_SIZES = (2, 16, 256, 8192, 32768, 131072)


def simulate_main(argv: list[str]) -> int:
    from verl_focal.theory.simulation import OBJECTIVES, OPTIMIZERS, PAPER_GROUP_SIZES, SimulationConfig

    parser = argparse.ArgumentParser(
        prog="verl-focal simulate",
        description="The paper's categorical simulation (Section 5.1, Figure 2) with focal_grpo from verl's registry. "
        "Writes trajectories.csv, final.csv, dynamics.png and final_vs_n.png.",
    )
    parser.add_argument("--quick", action="store_true",
                        help=f"reduced sweep: N in {QUICK_GROUP_SIZES}, one seed, 1000 steps (about a minute)")
    parser.add_argument("--n", type=int, nargs="+", default=None, help="group sizes (default: 2, 4, ..., 131072)")
    parser.add_argument("--gamma", type=float, nargs="+", default=[0.0, 1.0], help="focal exponents (default: 0 1)")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="seeds (default: 0 1 2 3; --quick: 0)")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--lr", type=float, default=1e-2, help="learning rate (default: the paper's 1e-2)")
    parser.add_argument("--optimizer", choices=OPTIMIZERS, default="adam")
    parser.add_argument("--objective", choices=OBJECTIVES, default="logprob",
                        help="logprob (default): GRPO's on-policy gradient A * grad log p, i.e. the ratio "
                        "surrogate at ratio 1; linear: the surrogate sum A p of the paper's Eq. 5")
    parser.add_argument("--adam-eps", type=float, default=1e-8, help="Adam/AdamW eps (default 1e-8)")
    parser.add_argument("--weight-decay", type=float, default=0.01, help="AdamW weight decay (default 0.01)")
    parser.add_argument("--log-every", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("outputs/simulate"), help="output folder")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: the per-step tensors are too small to gain from more)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    import torch

    from verl_focal.theory.figures import plot_dynamics, plot_final
    from verl_focal.theory.simulation import final_table, simulate

    group_sizes = args.n or (QUICK_GROUP_SIZES if args.quick else PAPER_GROUP_SIZES)
    seeds = args.seeds or ((0,) if args.quick else (0, 1, 2, 3))
    try:
        config = SimulationConfig(
            group_sizes=tuple(group_sizes), gammas=tuple(args.gamma), seeds=tuple(seeds), steps=args.steps,
            lr=args.lr, optimizer=args.optimizer, objective=args.objective, adam_eps=args.adam_eps,
            weight_decay=args.weight_decay,
            log_every=args.log_every,
        )
    except ValueError as err:
        parser.error(str(err))
    args.out.mkdir(parents=True, exist_ok=True)

    previous_threads = torch.get_num_threads()
    torch.set_num_threads(max(1, args.threads))
    try:
        start = time.perf_counter()
        trajectories = simulate(config, progress=not args.no_progress)
        elapsed = time.perf_counter() - start
    finally:
        torch.set_num_threads(previous_threads)  # callers in the same process (tests) keep their setting
    final = final_table(trajectories)
    trajectories.to_csv(args.out / "trajectories.csv", index=False)
    final.to_csv(args.out / "final.csv", index=False)
    title = (
        f"{config.optimizer}, {config.objective} objective, lr={config.lr:g}, "
        f"{config.steps} steps, seeds={len(config.seeds)}"
    )
    plot_dynamics(trajectories, args.out / "dynamics.png", title=title)
    plot_final(final, args.out / "final_vs_n.png", title=title)

    print(f"\nfinal Q_pos and M_ret at step {config.steps} ({title}); {elapsed:.1f} s")
    print(final[["group_size", "gamma", "q_pos_mean", "m_ret_mean", "p_anchor_mean"]].to_string(index=False))
    written = ("trajectories.csv", "final.csv", "dynamics.png", "final_vs_n.png")
    print(f"\nwrote {', '.join(str(args.out / name) for name in written)}")
    return 0


def theory_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="verl-focal theory",
        description="Lemma 3.1's tail-miss probability Pr(B) = (1-tau)^N - (mu-tau)^N - (1-mu)^N with tau = rho*mu, "
        "its integer argmax over N, and the m_gamma step-size factor (Appendix N).",
    )
    parser.add_argument("--mu", type=float, nargs="+", default=[0.8, 0.5, 0.3, 0.2], help="success probabilities")
    parser.add_argument("--rho", type=float, nargs="+", default=[0.01, 0.05, 0.1, 0.2],
                        help="rare-subset shares rho = tau/mu")
    parser.add_argument("--n", type=int, nargs="+", default=[2, 4, 8, 16, 32, 64, 128, 256], help="group sizes")
    parser.add_argument("--max-n", type=int, default=FIGURE3_MAX_N, help="argmax search range 1..max_n")
    parser.add_argument("--gamma", type=float, nargs="+", default=[0.5, 1.0, 2.0], help="focal exponents for m_gamma")
    args = parser.parse_args(argv)

    try:
        mu = np.asarray(args.mu)[:, None]
        rho = np.asarray(args.rho)[None, :]
        if np.any(rho < 0) or np.any(rho > 1):
            raise ValueError(f"rho must be in [0, 1], got {args.rho}")
        tau = rho * mu
        n = np.asarray(args.n)
        probs = tail_miss_probability(mu[..., None], tau[..., None], n)
        active = active_probability(np.asarray(args.mu)[:, None], n)
        n_star, p_star = tail_miss_argmax(mu, tau, max_n=args.max_n)
        m_gamma = [focal_lr_equivalent(g) for g in args.gamma]
    except ValueError as err:
        parser.error(str(err))

    header = "  ".join(f"{f'N={k}':>7}" for k in args.n)
    print("Lemma 3.1: Pr(B) = (1-tau)^N - (mu-tau)^N - (1-mu)^N, tau = rho*mu\n")
    print(f"{'mu':>5} {'rho':>5}  {header}  {f'argmax N<={args.max_n}':>16}")
    for i, m in enumerate(args.mu):
        print(f"{m:>5g} {'Pr(A)':>5}  " + "  ".join(f"{v:7.3f}" for v in active[i]))
        for j, r in enumerate(args.rho):
            cells = "  ".join(f"{v:7.3f}" for v in probs[i, j])
            print(f"{m:>5g} {r:>5g}  {cells}  {f'{n_star[i, j]} ({p_star[i, j]:.3f})':>16}")
    print("\nm_gamma = (4/sqrt(pi)) Gamma(gamma+3/2) / Gamma(gamma+3): equivalent learning-rate factor (Appendix N)")
    print("  ".join(f"gamma={g:g}: {m:.4f}" for g, m in zip(args.gamma, m_gamma)))
    return 0


if __name__ == "__main__":
    sys.exit(simulate_main(sys.argv[1:]))
