"""``verl-focal demo``: GRPO and F-GRPO through verl's own ``main_ppo`` on CPU, evaluated with pass@k.

Steps (each prints progress):

1. data: single-digit additions from ``verl_focal.data.synthetic``; the distinct problems are split
   into a training set and held-out prompts that neither training phase sees;
2. model: a tiny Qwen2-architecture model with random weights and a character-level tokenizer,
   then a short supervised warm-up so that it solves some prompts (GRPO learns only from groups
   with both right and wrong answers);
3. ``python -m verl.trainer.main_ppo`` with ``recipes/tiny/grpo.yaml`` and ``recipes/tiny/f_grpo.yaml``
   (the CPU backend of ``verl_focal.cpu``), from the same warmed-up model, validating on the
   held-out prompts before training and every few steps;
4. pass@k on every validation dump with ``verl_focal.evaluation``;
5. ``report.md`` (tables), ``report.png`` (training reward and held-out pass@k per step) and
   ``report.json`` in the output folder, whose path is printed at the end.

The report states what was measured on this run; a few CPU steps on a toy task say nothing about
F-GRPO at scale.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

from verl_focal.cpu.launch import main_ppo_command, run_main_ppo

METHODS = ("grpo", "f_grpo")
LABELS = {"grpo": "GRPO", "f_grpo": "F-GRPO"}


@dataclass
class DemoSettings:
    steps: int = 8
    val_every: int = 4
    val_samples: int = 16
    heldout_prompts: int = 20
    warm_up_steps: int = 250
    seed: int = 0
    run_timeout_s: float = 240.0


@dataclass
class RunRecord:
    method: str
    seconds: float
    reward: dict[int, float] = field(default_factory=dict)
    pg_loss: dict[int, float] = field(default_factory=dict)
    pass_at_k: dict[int, dict[int, float]] = field(default_factory=dict)


def say(message: str) -> None:
    print(f"[demo {time.strftime('%H:%M:%S')}] {message}", flush=True)


def prepare(out: Path, s: DemoSettings) -> tuple[Path, Path, Path]:
    from verl_focal.cpu.tiny_model import addition_problems, build_tiny_model, warm_up
    from verl_focal.data.synthetic import problems_to_rows
    from verl_focal.data.verl_format import write_parquet

    train, heldout = addition_problems(s.seed, s.heldout_prompts)
    train_rows, heldout_rows = problems_to_rows(train, "train"), problems_to_rows(heldout, "test")
    train_file = write_parquet(train_rows, out / "data" / "train.parquet")
    heldout_file = write_parquet(heldout_rows, out / "data" / "heldout.parquet")
    say(f"data: {len(train_rows)} training and {len(heldout_rows)} held-out single-digit additions -> {out / 'data'}")

    model_dir = out / "model"
    build_tiny_model(str(model_dir))
    say(f"model: random tiny Qwen2 at {model_dir}; supervised warm-up for {s.warm_up_steps} steps")
    if s.warm_up_steps:
        examples = [(row["prompt"], row["reward_model"]["ground_truth"]) for row in train_rows]
        losses = warm_up(str(model_dir), examples, steps=s.warm_up_steps, seed=s.seed, log_every=50)
        say(f"warm-up done: last loss {losses[-1]:.3f}")
    return model_dir, train_file, heldout_file


def run_method(method: str, out: Path, model_dir: Path, train_file: Path, heldout_file: Path,
               s: DemoSettings) -> RunRecord:
    run_dir = out / method
    overrides = [
        f"trainer.total_training_steps={s.steps}",
        "trainer.val_before_train=true",
        f"trainer.test_freq={s.val_every}",
        f"trainer.validation_data_dir={run_dir / 'validation'}",
        "trainer.logger=[console,file]",
        f"trainer.default_local_dir={run_dir / 'checkpoints'}",
        f"actor_rollout_ref.rollout.val_kwargs.n={s.val_samples}",
        f"data.seed={s.seed}",
    ]
    command = main_ppo_command(method, str(model_dir), str(train_file), str(heldout_file), overrides)
    (run_dir).mkdir(parents=True, exist_ok=True)
    (run_dir / "command.txt").write_text(" ".join(command) + "\n")
    say(f"{LABELS[method]}: python -m verl.trainer.main_ppo --config-name {method} ({s.steps} steps); "
        f"log {run_dir / 'main_ppo.log'}")

    def progress(line: str) -> None:
        if "Initial validation metrics" in line:
            say(f"{LABELS[method]} validation before training done")
        elif "step:" in line and " - " in line:
            fields = _metrics_from_console(line)
            step = fields.get("training/global_step")
            if step is not None:
                reward = fields.get("critic/score/mean", math.nan)
                seconds = fields.get("timing_s/step", math.nan)
                say(f"{LABELS[method]} step {int(step)}/{s.steps}: reward {reward:.3f}, step time {seconds:.1f}s")

    result = run_main_ppo(command, run_dir / "main_ppo.log", s.run_timeout_s,
                          env={"VERL_FILE_LOGGER_PATH": str(run_dir / "metrics.jsonl")}, on_line=progress)
    if not result.ok:
        raise RuntimeError(result.explain())
    record = RunRecord(method, result.seconds)
    for row in _read_jsonl(run_dir / "metrics.jsonl"):
        data = row["data"]
        if "critic/score/mean" in data:
            record.reward[int(row["step"])] = float(data["critic/score/mean"])
            record.pg_loss[int(row["step"])] = float(data["actor/pg_loss"])
    record.pass_at_k = evaluate(run_dir / "validation", LABELS[method])
    say(f"{LABELS[method]} done in {result.seconds:.0f}s")
    return record


def evaluate(validation_dir: Path, label: str) -> dict[int, dict[int, float]]:
    """``{step: {k: pass@k}}`` over the held-out prompts, from verl's validation dumps."""
    from verl_focal.evaluation import MACRO
    from verl_focal.evaluation.report import ladder
    from verl_focal.evaluation.samples import load_run

    dumps = sorted((int(f.stem), f) for f in validation_dir.glob("*.jsonl") if f.stem.isdigit())
    if not dumps:
        raise RuntimeError(f"no validation dumps in {validation_dir}; did validation run?")
    by_step = {}
    for step, file in dumps:
        run = load_run(str(file), label)
        samples = min(p.num_samples for p in run.problems)
        ks = [k for k in (1, 2, 4, 8, 16, 32, 64) if k <= samples]
        table = ladder(run, ks)
        by_step[step] = {k: table[MACRO][k].value for k in ks}
    return by_step


def _metrics_from_console(line: str) -> dict[str, float]:
    # verl's console logger prints "step:N - key:value - key:value ..."
    fields = {}
    for part in line.split(" - "):
        key, sep, value = part.rpartition(":")
        if not sep:
            continue
        key = key.strip().split(" ")[-1]
        try:
            fields[key] = float(value)
        except ValueError:
            continue
    return fields


def _read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        raise RuntimeError(f"{path} missing: verl's file logger wrote no metrics")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def write_report(out: Path, s: DemoSettings, records: list[RunRecord], timings: dict[str, float]) -> Path:
    final_steps = {r.method: max(r.pass_at_k) for r in records}
    ks = sorted(set.intersection(*(set(r.pass_at_k[final_steps[r.method]]) for r in records)))
    lines = [
        "# verl-focal demo report",
        "",
        f"Date (UTC): {time.strftime('%Y-%m-%d %H:%M', time.gmtime())}. Wall time: {timings['total']:.0f} s "
        f"(data and warm-up {timings['prepare']:.0f} s, "
        + ", ".join(f"{LABELS[r.method]} {r.seconds:.0f} s" for r in records) + ").",
        "",
        f"Task: single-digit addition; {s.heldout_prompts} held-out prompts never used in training. Model: tiny "
        f"Qwen2-architecture, random init, then {s.warm_up_steps} supervised warm-up steps. Each method: "
        f"`python -m verl.trainer.main_ppo` with `recipes/tiny/<method>.yaml` for {s.steps} steps on CPU, "
        f"validated with {s.val_samples} samples per held-out prompt at steps "
        f"{sorted(records[0].pass_at_k)}.",
        "",
        f"## Held-out pass@k (percent) at step 0 and at the last step ({max(final_steps.values())})",
        "",
        "| method | step | " + " | ".join(f"pass@{k}" for k in ks) + " |",
        "|---|---|" + "---|" * len(ks),
    ]
    for r in records:
        for step in (min(r.pass_at_k), final_steps[r.method]):
            cells = " | ".join(f"{100 * r.pass_at_k[step][k]:.1f}" for k in ks)
            lines.append(f"| {LABELS[r.method]} | {step} | {cells} |")
    lines += [
        "",
        "## Training reward per step (mean over the step's rollouts)",
        "",
        "| method | " + " | ".join(str(step) for step in sorted(records[0].reward)) + " |",
        "|---|" + "---|" * len(records[0].reward),
    ]
    for r in records:
        lines.append(f"| {LABELS[r.method]} | " + " | ".join(f"{r.reward[k]:.3f}" for k in sorted(r.reward)) + " |")
    first = [r.pass_at_k[min(r.pass_at_k)] for r in records]
    step0_gap = max(abs(first[0][k] - first[1][k]) for k in ks)
    lines += [
        "",
        "![reward and pass@k](report.png)",
        "",
        "What was measured: verl's own trainer ran both recipes end to end on CPU with verl-focal's estimator, "
        "reward and evaluator, from the same warmed-up weights. The two step-0 rows evaluate those same weights, "
        f"so their gap (up to {100 * step0_gap:.1f} points here) is the sampling noise of this evaluation alone. "
        "One seed, a few steps and a toy task: the report does not compare the methods beyond these numbers.",
        "",
    ]
    report = out / "report.md"
    report.write_text("\n".join(lines))
    _plot(out / "report.png", records, ks)
    (out / "report.json").write_text(json.dumps({
        "settings": s.__dict__, "timings_s": timings,
        "runs": {r.method: {"seconds": r.seconds, "reward": r.reward, "pg_loss": r.pg_loss,
                            "pass_at_k": r.pass_at_k} for r in records},
    }, indent=2))
    return report


def _plot(path: Path, records: list[RunRecord], ks: list[int]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_reward, ax_pass) = plt.subplots(1, 2, figsize=(11, 4))
    for r, color in zip(records, ("tab:blue", "tab:orange")):
        steps = sorted(r.reward)
        ax_reward.plot(steps, [r.reward[t] for t in steps], marker="o", color=color, label=LABELS[r.method])
        val_steps = sorted(r.pass_at_k)
        for k, style in ((ks[0], "-"), (ks[-1], "--")):
            ax_pass.plot(val_steps, [100 * r.pass_at_k[t][k] for t in val_steps], style, marker="o", color=color,
                         label=f"{LABELS[r.method]} pass@{k}")
    ax_reward.set(title="training reward (mean per step)", xlabel="step", ylabel="reward")
    ax_pass.set(title="held-out pass@k", xlabel="step", ylabel="percent")
    for ax in (ax_reward, ax_pass):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def build_parser() -> argparse.ArgumentParser:
    d = DemoSettings()
    p = argparse.ArgumentParser(prog="verl-focal demo", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", help="output folder (default: ./verl-focal-demo-<UTC time>)")
    p.add_argument("--steps", type=int, default=d.steps, help="training steps per method")
    p.add_argument("--val-every", type=int, default=d.val_every, help="validate every N steps (and at step 0)")
    p.add_argument("--val-samples", type=int, default=d.val_samples, help="samples per held-out prompt")
    p.add_argument("--heldout", type=int, default=d.heldout_prompts, help="held-out prompts")
    p.add_argument("--warm-up-steps", type=int, default=d.warm_up_steps, help="supervised warm-up steps")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--run-timeout", type=float, default=d.run_timeout_s, help="seconds allowed per main_ppo run")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    s = DemoSettings(args.steps, args.val_every, args.val_samples, args.heldout, args.warm_up_steps, args.seed,
                     args.run_timeout)
    if min(s.steps, s.val_every, s.val_samples, s.heldout_prompts) < 1 or s.warm_up_steps < 0:
        raise SystemExit("verl-focal demo: --steps, --val-every, --val-samples and --heldout must be >= 1")
    out = Path(args.out or f"verl-focal-demo-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}").resolve()
    out.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    say(f"output folder: {out}")
    model_dir, train_file, heldout_file = prepare(out, s)
    timings = {"prepare": time.monotonic() - start}
    records = []
    for method in METHODS:
        try:
            records.append(run_method(method, out, model_dir, train_file, heldout_file, s))
        except RuntimeError as exc:
            say(f"{LABELS[method]} failed: {exc}")
            return 1
        timings[method] = records[-1].seconds
    timings["total"] = time.monotonic() - start
    report = write_report(out, s, records, timings)
    say(f"finished in {timings['total']:.0f}s")
    print(f"\nReport: {report}\nPlot:   {out / 'report.png'}\nFolder: {out}")
    return 0
