"""``verl-focal simulate`` and ``verl-focal theory``."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from verl_focal.arg_types import integer, real
from verl_focal.user_files import UserFileError, check_output_dir, replacing
from verl_focal.theory.closed_form import (
    FIGURE3_MAX_N,
    active_probability,
    focal_lr_equivalent,
    tail_miss_argmax,
    tail_miss_probability,
)

# --quick: the four curves of Figure 2, plus N = 16 (regime I) and 32768 (where gamma = 1 helps most), one seed.
QUICK_GROUP_SIZES = (2, 16, 256, 8192, 32768, 131072)
SIMULATE_FILES = ("trajectories.csv", "final.csv", "dynamics.png", "final_vs_n.png")
# The argmax scan holds max_n x len(mu) x len(rho) float64 values, and a few temporaries of that size.
MAX_SCAN_VALUES = 10_000_000
PROBABILITY = real(0, 1, low_open=True, high_open=True)


def _refuse_repeats(parser: argparse.ArgumentParser, args, flags: dict[str, str]) -> None:
    """A value given twice would be run twice and counted twice (a seed twice halves the spread over seeds)."""
    for key, flag in flags.items():
        values = getattr(args, key) or []
        repeated = sorted({v for v in values if values.count(v) > 1})
        if repeated:
            parser.error(f"argument {flag}: {', '.join(map(str, repeated))} given more than once")


def _simulate_parser() -> argparse.ArgumentParser:
    from verl_focal.theory.simulation import OBJECTIVES, OPTIMIZERS

    parser = argparse.ArgumentParser(
        prog="verl-focal simulate",
        description="The paper's categorical simulation (Section 5.1, Figure 2) with focal_grpo from verl's registry. "
        f"Writes {', '.join(SIMULATE_FILES)} into --out. Every option is checked before the run starts.",
    )
    parser.add_argument("--quick", action="store_true",
                        help=f"reduced sweep: N in {QUICK_GROUP_SIZES}, one seed, 1000 steps (about a minute)")
    parser.add_argument("--n", type=integer(2), nargs="+", default=None,
                        help="group sizes, each >= 2 (default: 2, 4, ..., 131072)")
    parser.add_argument("--gamma", type=real(0), nargs="+", default=[0.0, 1.0],
                        help="focal exponents >= 0 (default: 0 1)")
    parser.add_argument("--seeds", type=integer(0), nargs="+", default=None,
                        help="seeds >= 0, each once (default: 0 1 2 3; --quick: 0)")
    parser.add_argument("--steps", type=integer(1), default=1000)
    parser.add_argument("--lr", type=real(0, low_open=True), default=1e-2,
                        help="learning rate (default: the paper's 1e-2)")
    parser.add_argument("--optimizer", choices=OPTIMIZERS, default="adam")
    parser.add_argument("--objective", choices=OBJECTIVES, default="logprob",
                        help="logprob (default): GRPO's on-policy gradient A * grad log p, i.e. the ratio "
                        "surrogate at ratio 1; linear: the surrogate sum A p of the paper's Eq. 5")
    parser.add_argument("--adam-eps", type=real(0, low_open=True), default=None,
                        help="Adam/AdamW eps, > 0 (default 1e-8)")
    parser.add_argument("--weight-decay", type=real(0), default=None, help="AdamW weight decay, >= 0 (default 0.01)")
    parser.add_argument("--log-every", type=integer(1), default=10)
    parser.add_argument("--out", type=Path, default=Path("outputs/simulate"),
                        help="output folder (created; the files in it are replaced)")
    parser.add_argument("--threads", type=integer(1), default=1,
                        help="torch threads (default 1: the per-step tensors are too small to gain from more)")
    parser.add_argument("--no-progress", action="store_true")
    return parser


def _simulate_config(parser: argparse.ArgumentParser, args):
    """The sweep of the parsed options, or a parser error naming the flag; nothing has run yet."""
    from verl_focal.theory.simulation import PAPER_GROUP_SIZES, SimulationConfig

    _refuse_repeats(parser, args, {"n": "--n", "gamma": "--gamma", "seeds": "--seeds"})
    if args.adam_eps is not None and args.optimizer == "sgd":
        parser.error("argument --adam-eps: sets Adam and AdamW, not --optimizer sgd")
    if args.weight_decay is not None and args.optimizer != "adamw":
        parser.error(f"argument --weight-decay: applies to --optimizer adamw, not {args.optimizer}")
    try:
        check_output_dir(args.out, "--out", SIMULATE_FILES)
    except UserFileError as err:
        parser.error(str(err))
    defaults = SimulationConfig()
    try:
        return SimulationConfig(
            group_sizes=tuple(args.n or (QUICK_GROUP_SIZES if args.quick else PAPER_GROUP_SIZES)),
            gammas=tuple(args.gamma), seeds=tuple(args.seeds or ((0,) if args.quick else (0, 1, 2, 3))),
            steps=args.steps, lr=args.lr, optimizer=args.optimizer, objective=args.objective,
            adam_eps=defaults.adam_eps if args.adam_eps is None else args.adam_eps,
            weight_decay=defaults.weight_decay if args.weight_decay is None else args.weight_decay,
            log_every=args.log_every,
        )
    except ValueError as err:
        parser.error(str(err))


def simulate_main(argv: list[str]) -> int:
    parser = _simulate_parser()
    args = parser.parse_args(argv)
    config = _simulate_config(parser, args)

    import torch

    from verl_focal.theory.figures import plot_dynamics, plot_final
    from verl_focal.theory.simulation import final_table, simulate

    args.out.mkdir(parents=True, exist_ok=True)

    previous_threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        start = time.perf_counter()
        trajectories = simulate(config, progress=not args.no_progress)
        elapsed = time.perf_counter() - start
    finally:
        torch.set_num_threads(previous_threads)  # callers in the same process (tests) keep their setting
    final = final_table(trajectories)
    for frame, name in ((trajectories, "trajectories.csv"), (final, "final.csv")):
        with replacing(args.out / name) as temporary:
            frame.to_csv(temporary, index=False)
    title = (
        f"{config.optimizer}, {config.objective} objective, lr={config.lr:g}, "
        f"{config.steps} steps, seeds={len(config.seeds)}"
    )
    with replacing(args.out / "dynamics.png") as temporary:
        plot_dynamics(trajectories, temporary, title=title)
    with replacing(args.out / "final_vs_n.png") as temporary:
        plot_final(final, temporary, title=title)

    print(f"\nfinal Q_pos and M_ret at step {config.steps} ({title}); {elapsed:.1f} s")
    print(final[["group_size", "gamma", "q_pos_mean", "m_ret_mean", "p_anchor_mean"]].to_string(index=False))
    print(f"\nwrote {', '.join(str(args.out / name) for name in SIMULATE_FILES)}")
    return 0


def _theory_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="verl-focal theory",
        description="Lemma 3.1's tail-miss probability Pr(B) = (1-tau)^N - (mu-tau)^N - (1-mu)^N with tau = rho*mu, "
        "its integer argmax over N, and the m_gamma step-size factor (Appendix N). mu and rho lie strictly "
        "between 0 and 1: at either end Pr(B) is 0 for every N and the argmax means nothing.",
    )
    parser.add_argument("--mu", type=PROBABILITY, nargs="+", default=[0.8, 0.5, 0.3, 0.2],
                        help="success probabilities, in (0, 1)")
    parser.add_argument("--rho", type=PROBABILITY, nargs="+", default=[0.01, 0.05, 0.1, 0.2],
                        help="rare-subset shares rho = tau/mu, in (0, 1)")
    parser.add_argument("--n", type=integer(1), nargs="+", default=[2, 4, 8, 16, 32, 64, 128, 256],
                        help="group sizes, >= 1")
    parser.add_argument("--max-n", type=integer(1), default=FIGURE3_MAX_N,
                        help=f"argmax search range 1..max_n (max_n x mu values x rho values <= {MAX_SCAN_VALUES:,})")
    parser.add_argument("--gamma", type=real(0), nargs="+", default=[0.5, 1.0, 2.0],
                        help="focal exponents for m_gamma, >= 0")
    return parser


def theory_main(argv: list[str]) -> int:
    parser = _theory_parser()
    args = parser.parse_args(argv)
    scan = args.max_n * len(args.mu) * len(args.rho)
    if scan > MAX_SCAN_VALUES:
        parser.error(
            f"argument --max-n: scanning N = 1..{args.max_n} for {len(args.mu)} mu x {len(args.rho)} rho values "
            f"holds {scan:,} probabilities, over the limit of {MAX_SCAN_VALUES:,} (about "
            f"{4 * 8 * MAX_SCAN_VALUES / 2**30:.1f} GiB of arrays); lower --max-n or give fewer --mu/--rho"
        )

    mu = np.asarray(args.mu)[:, None]
    tau = np.asarray(args.rho)[None, :] * mu
    n = np.asarray(args.n)
    probs = tail_miss_probability(mu[..., None], tau[..., None], n)
    active = active_probability(np.asarray(args.mu)[:, None], n)
    n_star, p_star = tail_miss_argmax(mu, tau, max_n=args.max_n)
    m_gamma = [focal_lr_equivalent(g) for g in args.gamma]

    header = "  ".join(f"{f'N={k}':>7}" for k in args.n)
    print("Lemma 3.1: Pr(B) = (1-tau)^N - (mu-tau)^N - (1-mu)^N, tau = rho*mu\n")
    print(f"{'mu':>5} {'rho':>5}  {header}  {f'argmax N<={args.max_n}':>16}")
    for i, m in enumerate(args.mu):
        print(f"{m:>5g} {'Pr(A)':>5}  " + "  ".join(f"{v:7.3f}" for v in active[i]))
        for j, r in enumerate(args.rho):
            cells = "  ".join(f"{v:7.3f}" for v in probs[i, j])
            edge = "^" if n_star[i, j] == args.max_n else ""  # the peak may lie beyond the scanned range
            print(f"{m:>5g} {r:>5g}  {cells}  {f'{n_star[i, j]} ({p_star[i, j]:.3f})':>16}{edge}")
    if np.any(n_star == args.max_n):
        print(f"^ at the end of the search range: the argmax may lie beyond N = {args.max_n}; raise --max-n")
    print("\nm_gamma = (4/sqrt(pi)) Gamma(gamma+3/2) / Gamma(gamma+3): equivalent learning-rate factor (Appendix N)")
    print("  ".join(f"gamma={g:g}: {m:.4f}" for g, m in zip(args.gamma, m_gamma)))
    return 0


if __name__ == "__main__":
    sys.exit(simulate_main(sys.argv[1:]))
