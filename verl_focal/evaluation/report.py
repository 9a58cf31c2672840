"""pass@k ladders per benchmark and run, paired comparisons, and their table, CSV, JSON and plot forms."""

from __future__ import annotations

import csv
import json
import math
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from verl_focal.evaluation.passk import k_ladder, pass_at_k_per_problem
from verl_focal.evaluation.samples import MISSING_RULE, Problem, Run
from verl_focal.evaluation.significance import MACRO, PairedDifference, paired_subsampling_test_by_group
from verl_focal.user_files import replacing


# The paper's averages (Tables 1-3): "Avg. Math" over the six in-domain benchmarks, "Avg. OOD" over the three
# out-of-domain ones, unweighted, under the data_source names `verl-focal data` writes.
MATH_BENCHMARKS = ("math500", "aime24", "aime25", "amc23", "minerva", "olympiadbench")
OOD_BENCHMARKS = ("gpqa_diamond", "ifeval", "synlogic")
AVERAGES = {"avg math": MATH_BENCHMARKS, "avg OOD": OOD_BENCHMARKS}


@dataclass(frozen=True)
class LadderCell:
    value: float  # mean pass@k over the problems with at least k samples; NaN when there are none
    problems: int  # problems averaged into value
    short: int  # problems with fewer than k samples, left out of value


def default_ks(runs: Sequence[Run]) -> list[int]:
    """1, 2, 4, ... up to the largest sample count of any prompt in any run."""
    return k_ladder(max(p.num_samples for run in runs for p in run.problems))


def ladder(run: Run, ks: Sequence[int]) -> dict[str, dict[int, LadderCell]]:
    """``{data_source: {k: cell}}``, then ``avg math`` and ``avg OOD`` (:data:`AVERAGES`) over those of their
    benchmarks the run has, then ``MACRO``: the unweighted mean over all data sources (NaN if one is NaN)."""
    table: dict[str, dict[int, LadderCell]] = {}
    for source in run.data_sources:
        members = [p for p in run.problems if p.data_source == source]
        values = pass_at_k_per_problem(
            [p.num_samples for p in members], [int(p.correct.sum()) for p in members], ks
        )  # (K, P), NaN where a problem is short of k samples
        table[source] = {}
        for j, k in enumerate(ks):
            usable = ~np.isnan(values[j])
            value = float(values[j][usable].mean()) if usable.any() else math.nan
            table[source][k] = LadderCell(value, int(usable.sum()), int((~usable).sum()))
    for name, members in averaged_benchmarks(run).items():
        table[name] = _mean_cells(table, members, ks)
    table[MACRO] = _mean_cells(table, run.data_sources, ks)
    return table


def averaged_benchmarks(run: Run) -> dict[str, list[str]]:
    """``{"avg math": [...], "avg OOD": [...]}``: each average's benchmarks present in ``run`` (absent if none)."""
    present = {name: [b for b in benchmarks if b in run.data_sources] for name, benchmarks in AVERAGES.items()}
    return {name: members for name, members in present.items() if members}


def _mean_cells(table: dict[str, dict[int, LadderCell]], members: Sequence[str], ks: Sequence[int]):
    return {
        k: LadderCell(
            float(np.mean([table[s][k].value for s in members])),
            sum(table[s][k].problems for s in members),
            sum(table[s][k].short for s in members),
        )
        for k in ks
    }


def average_notes(run: Run) -> list[str]:
    """One line per average that lacks some of its benchmarks: it is then not the paper's number."""
    notes = []
    for name, members in averaged_benchmarks(run).items():
        missing = [b for b in AVERAGES[name] if b not in members]
        if missing:
            notes.append(f"{name} averages {len(members)} of {len(AVERAGES[name])} benchmarks "
                         f"({', '.join(members)}); missing {', '.join(missing)}")
    return notes


def missing_sessions(run: Run, table: dict[str, dict[int, LadderCell]]) -> dict[str, int]:
    """Missing sessions (counted as incorrect, :data:`MISSING_RULE`) of each row of ``table``: a benchmark's
    own, an average's the sum over its benchmarks, ``MACRO`` the run's total."""
    by_source = run.missing_by_source()
    averages = averaged_benchmarks(run)
    return {name: run.missing_sessions if name == MACRO
            else sum(by_source[b] for b in averages[name]) if name in averages else by_source[name]
            for name in table}


def missing_rule_line(run: Run) -> str:
    """The run's missing-session count and the rule that counted them (:data:`MISSING_RULE`), in one line."""
    counts = set(run.expected.values())
    n = str(counts.pop()) if len(counts) == 1 else ", ".join(f"{s} {n}" for s, n in sorted(run.expected.items()))
    return (f"  missing sessions: {run.missing_sessions}, counted as incorrect as in the training logs: pass@k uses "
            f"n = {n} expected per prompt ({run.expected_from}), c = the correct samples present")


def short_prompts(run: Run, k_max: int) -> list[dict]:
    """Prompts with fewer than ``k_max`` samples: the report lists them instead of dropping them quietly."""
    return [
        {"data_source": p.data_source, "uid": p.uid, "samples": p.num_samples, "prompt": p.prompt[:120]}
        for p in run.problems
        if p.num_samples < k_max
    ]


def _keyed(problems: Sequence[Problem]) -> dict[tuple, Problem]:
    # The same prompt twice in one benchmark (two uids) is two problems; number the repeats so
    # that each pairs with a repeat in the other run.
    seen: Counter = Counter()
    keyed = {}
    for p in sorted(problems, key=lambda p: (p.data_source, p.prompt, p.uid or "")):
        base = (p.data_source, p.prompt)
        keyed[base + (seen[base],)] = p
        seen[base] += 1
    return keyed


@dataclass
class Comparison:
    run_a: str
    run_b: str
    m: int
    ks: list[int]
    iterations: int
    alpha: float
    seed: int
    problems: int
    results: dict[str, dict[int, PairedDifference]]  # benchmark, average, MACRO -> k -> verdict
    notes: list[str]


def compare(run_a: Run, run_b: Run, *, m: int | None = None, ks: Sequence[int] | None = None,
            iterations: int = 50_000, alpha: float = 0.05, seed: int = 0) -> Comparison:
    """Pair the problems of two runs (same benchmark and prompt) and run the subsampling test for each
    benchmark, ``avg math`` and ``avg OOD`` (over those of their benchmarks both runs have) and the macro average.

    Problems found in only one run, and samples beyond the smaller run's count for a problem,
    are left out and counted in ``notes``. ``m`` defaults to the paper's 256, or a quarter of the
    smallest per-problem sample count when that is less (the paper's m/n = 256/1024).
    """
    keyed_a, keyed_b = _keyed(run_a.problems), _keyed(run_b.problems)
    shared = sorted(set(keyed_a) & set(keyed_b))
    notes = []
    only_a, only_b = len(keyed_a) - len(shared), len(keyed_b) - len(shared)
    if not shared:
        raise ValueError(
            f"runs {run_a.label!r} and {run_b.label!r} share no problem (matched on data_source and prompt "
            "text): compare runs evaluated on the same benchmarks with the same prompt template"
        )
    if only_a or only_b:
        notes.append(f"{only_a} problems only in {run_a.label!r} and {only_b} only in {run_b.label!r} are left out")
    pairs = [(keyed_a[key], keyed_b[key]) for key in shared]
    n_common = [min(a.num_samples, b.num_samples) for a, b in pairs]
    truncated = sum(a.num_samples != b.num_samples for a, b in pairs)
    if truncated:
        notes.append(f"{truncated} problems have different sample counts in the two runs; both cut to the smaller")
    if m is None:
        m = min(256, max(1, min(n_common) // 4))
    kept = [i for i, n in enumerate(n_common) if n >= m]
    if len(kept) < len(pairs):
        notes.append(f"{len(pairs) - len(kept)} problems have fewer than m={m} samples and are left out")
    if not kept:
        raise ValueError(f"no shared problem has m={m} samples in both runs; lower --subsample-size")
    ks = sorted(set(ks if ks is not None else (1, m)))
    if alpha / 2 * iterations < 50:
        notes.append(f"only {int(alpha / 2 * iterations)} draws fall in each tail of the interval; raise --iterations")
    groups = [pairs[i][0].data_source for i in kept]
    averages = {name: [b for b in benchmarks if b in groups] for name, benchmarks in AVERAGES.items()}
    averages = {name: members for name, members in averages.items() if members}
    notes += [f"{name} compares {len(members)} of {len(AVERAGES[name])} benchmarks ({', '.join(members)})"
              for name, members in averages.items() if len(members) < len(AVERAGES[name])]
    results = paired_subsampling_test_by_group(
        [pairs[i][0].correct[: n_common[i]] for i in kept],
        [pairs[i][1].correct[: n_common[i]] for i in kept],
        groups, ks=ks, m=m, iterations=iterations, alpha=alpha, seed=seed, averages=averages,
    )
    return Comparison(run_a.label, run_b.label, m, list(ks), iterations, alpha, seed, len(kept), dict(results), notes)


# ----------------------------------------------------------------------------- rendering


def _pct(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{100 * value:.1f}"


def format_table(run: Run, table: dict[str, dict[int, LadderCell]], ks: Sequence[int]) -> str:
    counts = [p.num_samples for p in run.problems]
    samples = str(counts[0]) if min(counts) == max(counts) else f"{min(counts)}-{max(counts)}"
    lines = [
        f"run {run.label}  ({run.path}; {run.kind}; correct = {run.correctness}; "
        f"{len(run.problems)} prompts, {samples} samples each)"
    ]
    lines += [f"  note: {note}" for note in run.notes + average_notes(run)]
    lines.append(missing_rule_line(run))
    width = max(len(name) for name in table) + 2
    lines.append("  " + "benchmark".ljust(width) + "prompts missing "
                 + "".join(f"{'pass@' + str(k):>10}" for k in ks))
    flagged = False
    missing = missing_sessions(run, table)
    for name, cells in table.items():
        prompts = len(run.problems) if name == MACRO else cells[ks[0]].problems + cells[ks[0]].short
        row = "  " + name.ljust(width) + f"{prompts:>7} {missing[name]:>7} "
        for k in ks:
            mark = "*" if cells[k].short else " "
            flagged |= bool(cells[k].short)
            row += f"{_pct(cells[k].value) + mark:>10}"
        lines.append(row)
    lines.append("  (percent)")
    if flagged:
        short = short_prompts(run, max(ks))
        lines.append(
            f"  * leaves out prompts with fewer than k samples: {len(short)} prompts have fewer than "
            f"{max(ks)} (fewest: {min(s['samples'] for s in short)}); they are listed in the JSON report"
        )
    return "\n".join(lines)


def format_comparison(c: Comparison) -> str:
    lines = [
        f"paired m-out-of-n subsampling test: A = {c.run_a}, B = {c.run_b}; {c.problems} shared prompts, m = {c.m}, "
        f"{c.iterations} iterations, two-sided alpha = {c.alpha}"
    ]
    lines += [f"  note: {note}" for note in c.notes]
    width = max(len(name) for name in c.results) + 2
    interval = f"{100 * (1 - c.alpha):g}% interval"
    lines.append(
        "  " + "benchmark".ljust(width) + f"{'metric':>10}{'A':>8}{'B':>8}{'A-B':>8}  {interval:<18}verdict"
    )
    for name, by_k in c.results.items():
        for k, r in by_k.items():
            verdict = "significant" if r.significant else "not significant"
            span = f"[{100 * r.ci_low:+.1f}, {100 * r.ci_high:+.1f}]"
            lines.append(
                "  " + name.ljust(width) + f"{'pass@' + str(k):>10}{_pct(r.pass_a):>8}{_pct(r.pass_b):>8}"
                f"{100 * r.difference:>+8.1f}  {span:<18}{verdict}"
            )
    lines.append("  (percent points)")
    return "\n".join(lines)


def _json_number(value: float):
    return None if math.isnan(value) else value


def report_dict(runs, tables, ks, comparison: Comparison | None) -> dict:
    out = {
        "ks": list(ks),
        "missing_sessions_rule": MISSING_RULE,
        "runs": [
            {
                "label": run.label,
                "path": run.path,
                "kind": run.kind,
                "correctness": run.correctness,
                "prompts": len(run.problems),
                "samples_min": min(p.num_samples for p in run.problems),
                "samples_max": max(p.num_samples for p in run.problems),
                "notes": run.notes,
                "expected_samples": run.expected,
                "expected_samples_from": run.expected_from,
                "missing_sessions": run.missing_sessions,
                "missing_sessions_by_source": run.missing_by_source(),
                "pass_at_k": {
                    source: {
                        str(k): {"value": _json_number(cell.value), "prompts": cell.problems, "short": cell.short}
                        for k, cell in cells.items()
                    }
                    for source, cells in table.items()
                },
                "short_prompts": short_prompts(run, max(ks)),
                "averages": {name: {"benchmarks": members, "missing": [b for b in AVERAGES[name] if b not in members]}
                             for name, members in averaged_benchmarks(run).items()},
            }
            for run, table in zip(runs, tables)
        ],
    }
    if comparison is not None:
        out["comparison"] = {
            key: value for key, value in asdict(comparison).items() if key != "results"
        } | {
            "results": {
                name: {str(k): asdict(r) for k, r in by_k.items()} for name, by_k in comparison.results.items()
            }
        }
    return out


# Each writer fills a temporary file next to its target and moves it over the target when complete
# (user_files.replacing): a failure mid-write leaves an earlier report whole.


def comparison_csv_path(csv_path: str | Path) -> Path:
    """``<stem>_compare.csv`` next to the ladder CSV: where ``--csv`` puts the comparison table."""
    path = Path(csv_path)
    return path.with_name(path.stem + "_compare.csv")


def plot_formats() -> dict[str, str]:
    """``{".png": "Portable Network Graphics", ...}``: the file formats matplotlib can write."""
    from matplotlib.backend_bases import FigureCanvasBase

    return {f".{ext}": name for ext, name in sorted(FigureCanvasBase.get_supported_filetypes().items())}


def write_json(path: str | Path, report: dict) -> None:
    with replacing(path) as temporary:
        temporary.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


def write_csv(path: str | Path, runs, tables) -> None:
    """Long format: one row per run, benchmark and k; ``missing_sessions`` is the row's, the same for every k."""
    with replacing(path) as temporary, open(temporary, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["run", "data_source", "k", "pass_at_k", "prompts", "prompts_short", "missing_sessions"])
        for run, table in zip(runs, tables):
            missing = missing_sessions(run, table)
            for source, cells in table.items():
                for k, cell in cells.items():
                    writer.writerow([run.label, source, k, "" if math.isnan(cell.value) else repr(cell.value),
                                     cell.problems, cell.short, missing[source]])


def write_comparison_csv(path: str | Path, c: Comparison) -> None:
    fields = ["run_a", "run_b", "data_source", "k", "pass_a", "pass_b", "difference", "ci_low", "ci_high",
              "significant", "alpha", "m", "iterations"]
    with replacing(path) as temporary, open(temporary, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        for name, by_k in c.results.items():
            for k, r in by_k.items():
                row = {key: value for key, value in asdict(r).items() if key in fields}
                writer.writerow(row | {"run_a": c.run_a, "run_b": c.run_b, "data_source": name})


def plot(path: str | Path, runs, tables, ks) -> None:
    """pass@k against k (log2 axis), one panel per benchmark plus the macro average, one line per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    panels = list(dict.fromkeys(name for table in tables for name in table if name != MACRO))
    if len(panels) > 1:
        panels.append(MACRO)
    columns = min(3, len(panels))
    rows = math.ceil(len(panels) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.4 * rows), squeeze=False)
    for ax, name in zip(axes.flat, panels):
        for run, table in zip(runs, tables):
            if name in table:
                ax.plot(ks, [100 * table[name][k].value for k in ks], marker="o", markersize=3, label=run.label)
        ax.set_xscale("log", base=2)
        ax.set_xticks(ks if len(ks) <= 11 else ks[:: math.ceil(len(ks) / 11)])
        ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_title(name)
        ax.set_xlabel("k")
        ax.set_ylabel("pass@k (%)")
        ax.grid(True, alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize="small")
    fig.tight_layout()
    try:
        with replacing(path) as temporary:
            fig.savefig(temporary, dpi=120)
    finally:
        plt.close(fig)
