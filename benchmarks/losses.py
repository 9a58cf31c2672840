"""Cost of verl-focal's ``dapo`` against verl's ``vanilla``, on one actor micro-batch (forward + backward).

    .venv/bin/python benchmarks/losses.py [--sequences 8] [--length 8192] [--repeats 20]

``dapo`` checks its clip bounds and calls ``vanilla``; both are timed through ``get_policy_loss_fn`` with
the same bounds on the same inputs in the same run, so the ratio is the cost of the check. The figures
to compare across machines are the ratios.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from verl.trainer.ppo import core_algos
from verl.workers.config import FSDPActorConfig, PolicyLossConfig

from verl_focal import losses


def actor_config(loss_mode: str, low: float, high: float) -> FSDPActorConfig:
    return FSDPActorConfig(
        strategy="fsdp2",
        ppo_micro_batch_size_per_gpu=1,
        rollout_n=8,
        clip_ratio_low=low,
        clip_ratio_high=high,
        policy_loss=PolicyLossConfig(loss_mode=loss_mode),
        use_torch_compile=False,
    )


def call_once(fn, config, inputs) -> float:
    """Seconds for one forward + backward."""
    old, log_prob, advantages, mask = inputs
    leaf = log_prob.detach().requires_grad_(True)
    start = time.perf_counter()
    loss, _ = fn(
        old_log_prob=old,
        log_prob=leaf,
        advantages=advantages,
        response_mask=mask,
        loss_agg_mode="token-mean",
        config=config,
        rollout_is_weights=None,
    )
    loss.backward()
    return time.perf_counter() - start


def time_pair(ours, verls, config, inputs, repeats: int) -> tuple[float, float]:
    """Median seconds of ours and verl's, called alternately so that load changes hit both alike."""
    for _ in range(5):  # warm-up: allocator and autograd caches
        call_once(ours, config, inputs), call_once(verls, config, inputs)
    ours_times, verl_times = [], []
    for _ in range(repeats):
        ours_times.append(call_once(ours, config, inputs))
        verl_times.append(call_once(verls, config, inputs))
    return statistics.median(ours_times), statistics.median(verl_times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sequences", type=int, default=8, help="responses in the micro-batch")
    parser.add_argument("--length", type=int, default=8192, help="response length (the paper's maximum)")
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: steadier on a shared machine)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    shape = (args.sequences, args.length)
    old = -torch.rand(shape) * 3
    inputs = (
        old,
        old + torch.randn(shape) * 0.3,
        torch.randn(args.sequences, 1).expand(shape).contiguous(),
        torch.rand(shape) < 0.8,
    )
    print(f"micro-batch {args.sequences} x {args.length} tokens, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, median of {args.repeats}")
    pairs = [
        ("dapo vs verl vanilla (0.2 / 0.28)", losses.compute_policy_loss_dapo,
         core_algos.get_policy_loss_fn("vanilla"), actor_config("dapo", 0.2, 0.28)),
    ]  # fmt: skip
    for label, ours, verls, config in pairs:
        ours_s, verl_s = time_pair(ours, verls, config, inputs, args.repeats)
        print(f"{label:<38} ours {ours_s * 1e3:7.2f} ms   verl {verl_s * 1e3:7.2f} ms   ratio {ours_s / verl_s:5.2f}")


if __name__ == "__main__":
    main()
