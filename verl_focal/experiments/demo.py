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
5. ``report.md`` (tables), ``report.png`` (training reward, held-out pass@k and the ``focal/*``
   metrics per step) and ``report.json`` in the output folder, whose path is printed at the end.

"Focal at work" reads the ``focal/*`` metrics that the package trainer (``sync_pass_at_k``) logs through
verl's tracker each step: the mean focal weight g, the success rate, the uniform-group ratios and the
advantage scale, set beside the paper's m_gamma for the recipe's gamma (``verl_focal.theory``).

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

from verl_focal.cpu.launch import TINY_RECIPES, main_ppo_command, run_main_ppo

METHODS = ("grpo", "f_grpo")
LABELS = {"grpo": "GRPO", "f_grpo": "F-GRPO"}

#: The focal/* keys the package trainer logs per step (verl_focal.focal_metrics): the group keys for every
#: estimator, weight_mean and advantage_scale for focal ones only. Report rows: (key, label, methods).
FOCAL_ROWS = (
    ("focal/weight_mean", "mean g", ("f_grpo",)),
    ("focal/success_rate_mean", "success rate", METHODS),
    ("focal/all_correct_ratio", "all-correct groups", METHODS),
    ("focal/all_wrong_ratio", "all-wrong groups", METHODS),
    ("focal/advantage_scale", "advantage scale", ("f_grpo",)),
)
FOCAL_KEYS = tuple(key for key, _, _ in FOCAL_ROWS)
NOT_LOGGED = "not logged by this verl-focal"


@dataclass
class DemoSettings:
    steps: int = 8
    val_every: int = 4
    val_samples: int = 32
    heldout_prompts: int = 20
    warm_up_steps: int = 250
    seed: int = 0
    run_timeout_s: float = 600.0


@dataclass
class RunRecord:
    method: str
    seconds: float
    reward: dict[int, float] = field(default_factory=dict)
    pg_loss: dict[int, float] = field(default_factory=dict)
    pass_at_k: dict[int, dict[int, float]] = field(default_factory=dict)
    #: focal/<key> -> {step: value}, only the keys the run logged
    focal: dict[str, dict[int, float]] = field(default_factory=dict)


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
                focal = "".join(f", {label} {fields[key]:.3f}" for key, label in
                                (("focal/weight_mean", "mean g"), ("focal/advantage_scale", "advantage scale"))
                                if key in fields)
                say(f"{LABELS[method]} step {int(step)}/{s.steps}: reward {reward:.3f}{focal}, "
                    f"step time {seconds:.1f}s")

    result = run_main_ppo(command, run_dir / "main_ppo.log", s.run_timeout_s,
                          env={"VERL_FILE_LOGGER_PATH": str(run_dir / "metrics.jsonl")}, on_line=progress)
    if not result.ok:
        raise RuntimeError(result.explain())
    record = read_metrics(RunRecord(method, result.seconds), run_dir / "metrics.jsonl")
    for problem in focal_problems(record, run_dir / "metrics.jsonl"):
        say(f"{LABELS[method]}: {problem}")
    record.pass_at_k = evaluate(run_dir / "validation", LABELS[method])
    say(f"{LABELS[method]} done in {result.seconds:.0f}s")
    return record


def read_metrics(record: RunRecord, path: Path) -> RunRecord:
    """Fill ``record``'s per-step reward, pg_loss and ``focal/*`` values from verl's file logger output."""
    for row in _read_jsonl(path):
        data = row["data"]
        if "critic/score/mean" in data:
            record.reward[int(row["step"])] = float(data["critic/score/mean"])
            record.pg_loss[int(row["step"])] = float(data["actor/pg_loss"])
        for key in FOCAL_KEYS:
            if key in data:
                record.focal.setdefault(key, {})[int(row["step"])] = float(data[key])
    return record


def focal_problems(record: RunRecord, source: Path | str) -> list[str]:
    """The ``focal/*`` values outside [0, 1] (all of them are means, ratios or, for gamma >= 0, a shrink factor)."""
    return [f"{source}: {key} = {value!r} at step {step} is outside [0, 1]"
            for key, values in record.focal.items() for step, value in sorted(values.items())
            if not 0.0 <= value <= 1.0]


def recipe_gamma(recipe: Path = TINY_RECIPES / "f_grpo.yaml") -> float:
    """``algorithm.focal.gamma`` as ``recipe`` sets it (the demo passes no gamma override)."""
    from omegaconf import OmegaConf

    gamma = OmegaConf.select(OmegaConf.load(recipe), "algorithm.focal.gamma")
    if gamma is None:
        raise RuntimeError(f"{recipe} sets no algorithm.focal.gamma; the report needs it for m_gamma")
    return float(gamma)


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


def focal_at_work(records: list[RunRecord], gamma: float) -> tuple[list[str], dict]:
    """The report's "Focal at work" section (markdown lines) and its numbers for report.json."""
    from verl_focal.theory.closed_form import focal_lr_equivalent

    m_gamma = focal_lr_equivalent(gamma)
    by_method = {r.method: r for r in records}
    steps = sorted(set().union(*(r.reward for r in records)))
    rows, missing = [], []
    for method in ("f_grpo", "grpo"):
        for key, label, methods in FOCAL_ROWS:
            if method not in by_method or method not in methods:
                continue
            values = by_method[method].focal.get(key)
            if values:
                rows.append((f"{LABELS[method]} {label}", values))
            else:
                missing.append(f"`{key}` ({LABELS[method]})")
    summary = {"gamma": gamma, "m_gamma": m_gamma, "not_logged": [m.replace("`", "") for m in missing]}
    lines = [
        "## Focal at work (per training step, from the `focal/*` metrics verl's tracker logged)",
        "",
        "mean g: mean over the step's groups of g = (1 - success rate)^gamma; success rate: mean over groups of "
        "the fraction of correct responses; all-correct / all-wrong groups: fraction of groups where every / no "
        "response is correct (no gradient under any group-relative estimator); advantage scale: "
        "sum |F-GRPO advantage| / sum |GRPO advantage| over the step's response tokens (1 means nothing removed).",
        "",
    ]
    if rows:
        lines += ["| metric | " + " | ".join(str(t) for t in steps) + " | mean |", "|---|" + "---|" * (len(steps) + 1)]
        for label, values in rows:
            cells = " | ".join(f"{values[t]:.3f}" if t in values else "-" for t in steps)
            lines.append(f"| {label} | {cells} | {sum(values.values()) / len(values):.3f} |")
        lines.append("")
    if missing:
        lines += [f"{', '.join(missing)}: {NOT_LOGGED}.", ""]
    focal = by_method.get("f_grpo")
    needed = ("focal/advantage_scale", "focal/weight_mean", "focal/success_rate_mean")
    if focal is None or not all(focal.focal.get(key) for key in needed):
        lines += [f"F-GRPO's `focal/*` metrics were {NOT_LOGGED}, so this report cannot say how much of the "
                  f"update focal weighting removed; the paper's equivalent learning-rate factor for this recipe's "
                  f"gamma = {gamma:g} is m_gamma = {m_gamma:.2f}.", ""]
        return lines, summary
    scale, weight, success = (focal.focal[key] for key in needed)
    mean_scale = sum(scale.values()) / len(scale)
    common = sorted(set(weight) & set(success))
    high, low = max(common, key=success.get), min(common, key=success.get)
    summary.update(mean_advantage_scale=mean_scale, removed_percent=100 * (1 - mean_scale),
                   highest_success_step=high, lowest_success_step=low)
    if weight[high] < weight[low]:
        where = (f"taking most from the high-success groups, whose g = (1 - success rate)^{gamma:g} is smallest "
                 f"(mean g {weight[high]:.2f} on the step where groups succeeded most, step {high} at success rate "
                 f"{success[high]:.2f}, against {weight[low]:.2f} on step {low} at {success[low]:.2f})")
    else:
        where = (f"though across steps mean g did not fall as the success rate rose (mean g {weight[high]:.2f} on "
                 f"step {high} at success rate {success[high]:.2f}, {weight[low]:.2f} on step {low} at "
                 f"{success[low]:.2f}): g = (1 - success rate)^{gamma:g} is set per group, and step means mix groups")
    lines += [
        f"**Focal weighting removed {100 * (1 - mean_scale):.0f}% of F-GRPO's update over its {len(scale)} steps "
        f"(mean advantage scale {mean_scale:.2f}, beside the paper's equivalent learning-rate factor "
        f"m_gamma = {m_gamma:.2f} for this recipe's gamma = {gamma:g}, which assumes success rates spread "
        f"uniformly over [0, 1]), {where}.**",
        "",
    ]
    return lines, summary


def write_report(out: Path, s: DemoSettings, records: list[RunRecord], timings: dict[str, float],
                 gamma: float | None = None) -> Path:
    """report.md, report.png and report.json in ``out``; ``gamma`` defaults to recipes/tiny/f_grpo.yaml's."""
    gamma = recipe_gamma() if gamma is None else gamma
    focal_lines, focal_summary = focal_at_work(records, gamma)
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
    lines += [""] + focal_lines
    lines += [
        "![reward, pass@k and focal at work](report.png)",
        "",
        "What was measured: verl's own trainer ran both recipes end to end on CPU with verl-focal's estimator, "
        "reward and evaluator, from the same warmed-up weights. The two step-0 rows evaluate those same weights, "
        f"so their gap (up to {100 * step0_gap:.1f} points here) is the sampling noise of this evaluation alone. "
        "One seed, a few steps and a toy task: the report does not compare the methods beyond these numbers.",
        "",
    ]
    report = out / "report.md"
    report.write_text("\n".join(lines))
    _plot(out / "report.png", records, ks, focal_summary["m_gamma"])
    (out / "report.json").write_text(json.dumps({
        "settings": s.__dict__, "timings_s": timings, "focal_at_work": focal_summary,
        "runs": {r.method: {"seconds": r.seconds, "reward": r.reward, "pg_loss": r.pg_loss,
                            "pass_at_k": r.pass_at_k, "focal": r.focal} for r in records},
    }, indent=2))
    return report


def _plot(path: Path, records: list[RunRecord], ks: list[int], m_gamma: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_reward, ax_pass, ax_focal) = plt.subplots(1, 3, figsize=(18, 4.5),
                                                       gridspec_kw={"width_ratios": (1, 1, 1.1)})
    for r, color in zip(records, ("tab:blue", "tab:orange")):
        steps = sorted(r.reward)
        ax_reward.plot(steps, [r.reward[t] for t in steps], marker="o", color=color, label=LABELS[r.method])
        val_steps = sorted(r.pass_at_k)
        for k, style in ((ks[0], "-"), (ks[-1], "--")):
            ax_pass.plot(val_steps, [100 * r.pass_at_k[t][k] for t in val_steps], style, marker="o", color=color,
                         label=f"{LABELS[r.method]} pass@{k}")
        for (key, label, _), (style, marker) in zip(FOCAL_ROWS, (("-", "o"), ("--", "."), (":", "^"), (":", "v"),
                                                                  ("-", "s"))):
            values = r.focal.get(key)
            if values:
                steps = sorted(values)
                ax_focal.plot(steps, [values[t] for t in steps], linestyle=style, marker=marker, color=color,
                              linewidth=2 if style == "-" else 1, label=f"{LABELS[r.method]} {label}")
    if any(r.focal for r in records):
        ax_focal.axhline(m_gamma, color="grey", linewidth=0.8, label=f"m_gamma = {m_gamma:.2f}")
    else:
        ax_focal.text(0.5, 0.5, f"focal/* metrics\n{NOT_LOGGED}", ha="center", va="center",
                      transform=ax_focal.transAxes)
    ax_reward.set(title="training reward (mean per step)", xlabel="step", ylabel="reward")
    ax_pass.set(title="held-out pass@k", xlabel="step", ylabel="percent")
    ax_focal.set(title="focal at work (per training step)", xlabel="step", ylim=(-0.05, 1.05))
    for ax in (ax_reward, ax_pass, ax_focal):
        ax.grid(alpha=0.3)
        if ax is not ax_focal:
            ax.legend()
    if ax_focal.get_legend_handles_labels()[0]:
        ax_focal.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1.0))
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
