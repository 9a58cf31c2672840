"""``verl-focal maze``: the single-solution Maze sweep (GRPO vs F-GRPO or any registered estimator)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

from verl_focal.experiments.maze.training import Settings

FULL = Settings()
QUICK = replace(FULL, rl_steps=60, eval_steps=(0, 20, 40), rare_mazes=512)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="verl-focal maze", description=__doc__)
    p.add_argument("--out", required=True, type=Path, help="output folder (resumable)")
    p.add_argument("--quick", action="store_true", help="one seed, N in {4, 16}, 60 RL steps")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--estimator", nargs="+", default=None, help="names in verl's adv-estimator registry")
    p.add_argument("--baseline", default="grpo", help="estimator the others are tested against")
    p.add_argument("--gamma", nargs="+", type=float, default=None, help="focal exponents for focal_* estimators")
    p.add_argument("--group-sizes", nargs="+", type=int, default=None)
    p.add_argument("--seeds", nargs="+", type=int, default=None)
    p.add_argument("--steps", type=int, default=None, help="RL steps")
    p.add_argument("--eval-every", type=int, default=None, help="held-out evaluation interval in RL steps")
    p.add_argument("--sft-steps", type=int, default=None)
    p.add_argument("--prompts", type=int, default=None, help="mazes per RL step")
    p.add_argument("--eval-mazes", type=int, default=None)
    p.add_argument("--eval-samples", type=int, default=None, help="samples per maze during training")
    p.add_argument("--final-samples", type=int, default=None, help="samples per maze at the final step")
    p.add_argument("--rare-mazes", type=int, default=None)
    p.add_argument("--rare-samples", type=int, default=None)
    p.add_argument("--iterations", type=int, default=20_000, help="paired subsampling test draws")
    return p


def _fail(p: argparse.ArgumentParser, flag: str, why: str):
    p.error(f"{flag}: {why}")


def settings_from(p, args) -> Settings:
    s = QUICK if args.quick else FULL
    for flag, field in (("sft_steps", "sft_steps"), ("prompts", "rl_prompts"), ("eval_mazes", "eval_mazes"),
                        ("eval_samples", "eval_samples"), ("final_samples", "final_samples"),
                        ("rare_mazes", "rare_mazes"), ("rare_samples", "rare_samples"), ("steps", "rl_steps")):
        value = getattr(args, flag)
        if value is not None:
            if value < 1:
                _fail(p, "--" + flag.replace("_", "-"), f"must be >= 1, got {value}")
            s = replace(s, **{field: value})
    if args.eval_every is not None:
        if args.eval_every < 1:
            _fail(p, "--eval-every", f"must be >= 1, got {args.eval_every}")
        s = replace(s, eval_steps=tuple(range(0, s.rl_steps, args.eval_every)))
    elif args.steps is not None:
        s = replace(s, eval_steps=tuple(sorted({0, s.rl_steps // 4, s.rl_steps // 2} - {s.rl_steps})))
    return s


def grid_from(p, args):
    from verl.trainer.ppo import core_algos

    import verl  # noqa: F401  - plugins
    from verl_focal.experiments.maze.sweep import grid

    estimators = args.estimator or ["grpo", "focal_grpo"]
    for name in estimators + [args.baseline]:
        try:
            core_algos.get_adv_estimator_fn(name)
        except ValueError:
            _fail(p, "--estimator" if name in estimators else "--baseline", f"{name!r} is not in verl's adv-estimator registry")
    gammas = args.gamma if args.gamma is not None else [0.0, 0.5, 1.0]
    if any(g < 0 for g in gammas):
        _fail(p, "--gamma", f"focal exponents must be >= 0, got {gammas}")
    sizes = args.group_sizes or ([4, 16] if args.quick else [4, 8, 16, 32])
    if any(n < 2 for n in sizes):
        _fail(p, "--group-sizes", f"group-relative estimators need N >= 2, got {sizes}")
    seeds = args.seeds if args.seeds is not None else ([0] if args.quick else [0, 1, 2])
    if any(s < 0 for s in seeds):
        _fail(p, "--seeds", f"seeds must be >= 0, got {seeds}")
    runs = grid(estimators, gammas, sizes, seeds)
    if not runs:
        _fail(p, "--gamma", "no run: focal_* estimators need a gamma > 0")
    return runs


def _bar_factory():
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return lambda total, desc: tqdm(total=total, desc=desc, file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if args.workers < 1:
        _fail(p, "--workers", f"must be >= 1, got {args.workers}")
    s = settings_from(p, args)
    if s.final_samples < 2:
        _fail(p, "--final-samples", "the paired test needs at least 2 samples per maze")
    runs = grid_from(p, args)
    from verl_focal.experiments.maze import report, sweep

    args.out.mkdir(parents=True, exist_ok=True)
    config = {"settings": asdict(s), "runs": [r.name for r in runs]}
    saved = args.out / "config.json"
    if saved.exists() and json.loads(saved.read_text())["settings"] != json.loads(json.dumps(config["settings"])):
        _fail(p, "--out", f"{args.out} holds a sweep with other settings ({saved}); use a new folder")
    saved.write_text(json.dumps(config, indent=1))
    t0 = time.time()
    bars = _bar_factory()
    say = (lambda m: print(m, file=sys.stderr)) if bars is None else (lambda m: __import__("tqdm").tqdm.write(m, file=sys.stderr))
    sweep.execute(args.out, s, runs, args.workers, say=say, bar_factory=bars)
    header = [f"# Maze sweep: {len(runs)} runs", "", f"Settings: `{json.dumps(asdict(s))}`",
              "", f"Wall time of this invocation: {time.time() - t0:.0f} s with {args.workers} workers."]
    report.write_report(args.out, args.baseline, args.iterations, header)
    print(f"wrote {args.out / 'results.csv'}, {args.out / 'summary.md'}, figures in {args.out}")
    return 0
