"""``verl-focal eval``: the pass@k ladder of verl validation dumps or generation outputs, with paired tests."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from verl_focal.evaluation.samples import DEFAULT_REWARD, EvalInputError, load_run

EPILOG = """\
runs:
  a verl validation dump (<trainer.validation_data_dir>/<step>.jsonl), that directory (its last step,
  or --step), or a verl.trainer.main_generation_server parquet (scored with --reward).
  Write LABEL=PATH to name a run in the report.

examples:
  verl-focal eval base=runs/grpo/val focal=runs/fgrpo/val --csv ladder.csv --json report.json --plot passk.png
  verl-focal eval --compare focal=runs/fgrpo/val/150.jsonl base=runs/grpo/val/150.jsonl
"""


def _split_label(spec: str) -> tuple[str | None, str]:
    label, sep, path = spec.partition("=")
    return (label, path) if sep and label and path else (None, spec)


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected integers >= 1, got {text!r}")
    return values


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="verl-focal eval",
        description="Unbiased pass@k ladders of verl runs, per benchmark and macro-averaged, with the paper's paired test.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("runs", nargs="*", metavar="RUN", help="[LABEL=]PATH of a run (see below)")
    parser.add_argument("--compare", nargs=2, metavar=("A", "B"),
                        help="paired subsampling test of A minus B (labels or [LABEL=]PATH; added to the runs)")
    parser.add_argument("--k", type=_int_list, help="k values of the ladder (default 1,2,4,... up to n)")
    parser.add_argument("--csv", help="write the ladder (long format); with --compare also <stem>_compare.csv")
    parser.add_argument("--json", help="write the full report")
    parser.add_argument("--plot", help="write pass@k curves (PNG), one line per run")
    parser.add_argument("--step", type=int, help="for directory runs: the <step>.jsonl to read (default: last)")
    parser.add_argument("--threshold", type=float, default=0.5,
                        help="a sample is correct when acc (or, without acc, score) exceeds it (default 0.5)")
    parser.add_argument("--reward", default=DEFAULT_REWARD,
                        help=f"scorer for generation parquets, module:function or file.py:function (default {DEFAULT_REWARD})")
    parser.add_argument("--subsample-size", type=int, help="m of the test (default 256, or n/4 when smaller)")
    parser.add_argument("--compare-k", type=_int_list, help="k values tested (default 1 and m)")
    parser.add_argument("--iterations", type=int, default=50_000, help="paired subsamples (default 50000)")
    parser.add_argument("--alpha", type=float, default=0.05, help="two-sided level (default 0.05)")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    specs = list(args.runs)
    if not specs and not args.compare:
        parser.error("give at least one run, or --compare A B")

    from verl_focal.evaluation import report  # matplotlib and pandas load only when used

    try:
        runs = {}
        for spec in specs:
            label, path = _split_label(spec)
            run = load_run(path, label, step=args.step, threshold=args.threshold, reward=args.reward)
            if run.label in runs:
                parser.error(f"two runs are labelled {run.label!r}; name them with LABEL=PATH")
            runs[run.label] = run
        compared = []
        for spec in args.compare or []:
            label, path = _split_label(spec)
            if label is None and path in runs:
                compared.append(runs[path])
                continue
            run = load_run(path, label, step=args.step, threshold=args.threshold, reward=args.reward)
            if run.label in runs and runs[run.label].path != run.path:
                parser.error(f"--compare: {run.label!r} already labels {runs[run.label].path}, not {run.path}")
            runs.setdefault(run.label, run)
            compared.append(runs[run.label])
    except EvalInputError as exc:
        print(f"verl-focal eval: {exc}", file=sys.stderr)
        return 1

    runs = list(runs.values())
    ks = args.k or report.default_ks(runs)
    tables = [report.ladder(run, ks) for run in runs]
    print("\n\n".join(report.format_table(run, table, ks) for run, table in zip(runs, tables)))

    comparison = None
    if compared:
        try:
            comparison = report.compare(
                compared[0], compared[1], m=args.subsample_size, ks=args.compare_k,
                iterations=args.iterations, alpha=args.alpha, seed=args.seed,
            )
        except ValueError as exc:
            print(f"verl-focal eval --compare: {exc}", file=sys.stderr)
            return 1
        print("\n" + report.format_comparison(comparison))

    if args.csv:
        report.write_csv(args.csv, runs, tables)
        if comparison is not None:
            path = Path(args.csv)
            report.write_comparison_csv(str(path.with_name(path.stem + "_compare.csv")), comparison)
    if args.json:
        report.write_json(args.json, report.report_dict(runs, tables, ks, comparison))
    if args.plot:
        report.plot(args.plot, runs, tables, ks)
    return 0
