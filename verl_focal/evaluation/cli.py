"""``verl-focal eval``: the pass@k ladder of verl validation dumps or generation outputs, with paired tests."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from verl_focal.arg_types import integer, integer_list, real
from verl_focal.evaluation import report
from verl_focal.evaluation.samples import DEFAULT_REWARD, EvalInputError, is_step_dump, load_run, resolve_run_path
from verl_focal.user_files import UserFileError, check_distinct, check_output_file

EPILOG = """\
runs:
  a verl validation dump (<trainer.validation_data_dir>/<step>.jsonl), that directory (its last step,
  or --step), or a verl.trainer.main_generation_server parquet (scored with --reward).
  Write LABEL=PATH to name a run in the report. A RUN that exists as a path is read as that path even
  when it holds '=' (Hydra-style folders such as lr=1e-6); otherwise the text before the first '=' is
  the label.

missing sessions:
  verl dumps no line for a session that failed; eval counts it as an incorrect sample, as verl and the
  training logs (sync_pass_at_k) do: pass@k uses n = the samples expected per prompt and c = the correct
  ones present. The expected count is --n, else the most samples of any prompt of the same data source
  in the same file. The report gives the missing sessions per run and per data source.

outputs:
  --csv, --json and --plot are checked before any input is read: each must be a file (not a folder)
  in a folder that exists and is writable or can be created, must not be an input, and must not be a
  <step>.jsonl in an input run's folder; --plot takes a format matplotlib writes (.png, .pdf, .svg, ...).
  A file is replaced only once its new content is complete.

examples:
  verl-focal eval base=runs/grpo/val focal=runs/fgrpo/val --csv ladder.csv --json report.json --plot passk.png
  verl-focal eval --compare focal=runs/fgrpo/val/150.jsonl base=runs/grpo/val/150.jsonl
"""

# options of the paired test, refused without --compare (they would do nothing)
TEST_OPTIONS = {"subsample_size": "--subsample-size", "compare_k": "--compare-k", "iterations": "--iterations",
                "alpha": "--alpha", "seed": "--seed"}


@dataclass
class RunSpec:
    label: str
    path: str  # as given
    file: Path  # the dump or parquet it names


def parse_run(spec: str) -> tuple[str | None, str]:
    """``(label, path)`` of a RUN: an existing path wins over reading ``LABEL=PATH``."""
    if os.path.lexists(spec):
        return None, spec
    label, sep, path = spec.partition("=")
    return (label, path) if sep and label and path else (None, spec)


def _resolve(spec: str, step: int | None) -> RunSpec:
    label, path = parse_run(spec)
    if label is not None and not os.path.lexists(path):
        raise EvalInputError(f"{spec}: no such file or directory, nor is {path!r} (reading {label!r} as its label)")
    return RunSpec(label or path, path, resolve_run_path(path, step))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="verl-focal eval",
        description="Unbiased pass@k ladders of verl runs, per benchmark and macro-averaged, with the paper's paired test.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("runs", nargs="*", metavar="RUN", help="[LABEL=]PATH of a run (see below)")
    parser.add_argument("--compare", nargs=2, metavar=("A", "B"),
                        help="paired subsampling test of A minus B (labels or [LABEL=]PATH; added to the runs)")
    parser.add_argument("--k", type=integer_list(1), help="k values of the ladder (default 1,2,4,... up to n)")
    parser.add_argument("--csv", help="write the ladder (long format); with --compare also <stem>_compare.csv")
    parser.add_argument("--json", help="write the full report")
    parser.add_argument("--plot", help="write pass@k curves (.png, .pdf, .svg, ...), one line per run")
    parser.add_argument("--step", type=integer(0), help="for directory runs: the <step>.jsonl to read (default: last)")
    parser.add_argument("--threshold", type=real(), default=0.5,
                        help="a sample is correct when acc (or, without acc, score) exceeds it (default 0.5)")
    parser.add_argument("--n", type=integer(1), metavar="N",
                        help="samples expected per prompt (val_kwargs.n) in every run; a missing session counts as "
                             "incorrect (default: the most samples of any prompt of the same data source)")
    parser.add_argument("--reward", default=None,
                        help=f"scorer for generation parquets, module:function or file.py:function (default {DEFAULT_REWARD})")
    parser.add_argument("--subsample-size", type=integer(1), help="m of the test (default 256, or n/4 when smaller)")
    parser.add_argument("--compare-k", type=integer_list(1), help="k values tested (default 1 and m)")
    parser.add_argument("--iterations", type=integer(1), help="paired subsamples (default 50000)")
    parser.add_argument("--alpha", type=real(0, 1, low_open=True, high_open=True),
                        help="two-sided level (default 0.05)")
    parser.add_argument("--seed", type=integer(0), help="seed of the test's draws (default 0)")
    return parser


def _collect_runs(args, parser) -> tuple[dict[str, RunSpec], list[str]]:
    """The runs by label, and the labels of the compared pair; paths are resolved, nothing is read yet."""
    runs: dict[str, RunSpec] = {}
    for spec in args.runs:
        run = _resolve(spec, args.step)
        if run.label in runs:
            parser.error(f"two runs are labelled {run.label!r}; name them with LABEL=PATH")
        runs[run.label] = run
    compared = []
    for spec in args.compare or []:
        if spec in runs:
            compared.append(spec)
            continue
        run = _resolve(spec, args.step)
        if run.label in runs and runs[run.label].file.resolve() != run.file.resolve():
            parser.error(f"--compare: {run.label!r} already labels {runs[run.label].file}, not {run.file}")
        runs.setdefault(run.label, run)
        compared.append(run.label)
    return runs, compared


def _check_options(args, parser, runs: dict[str, RunSpec]) -> None:
    """Refuse options that would silently do nothing with these runs."""
    if not args.compare:
        for key, flag in TEST_OPTIONS.items():
            if getattr(args, key) is not None:
                parser.error(f"{flag} sets the paired test, which runs only with --compare A B")
    if args.reward is not None and not any(r.file.suffix == ".parquet" for r in runs.values()):
        parser.error("--reward scores generation parquets; validation dumps carry their own acc and score")
    if args.step is not None:
        for run in runs.values():
            if not Path(run.path).is_dir() and run.file.stem != str(args.step):
                parser.error(f"--step {args.step} picks the dump of a directory run; {run.path} is a file")


def _input_rule(runs: dict[str, RunSpec]):
    """Outputs must not be an input file, nor a <step>.jsonl where a directory run (now or next time) looks."""
    files = {run.file.resolve(): label for label, run in runs.items()}
    folders = {}
    for label, run in runs.items():
        if Path(run.path).is_dir() or is_step_dump(run.file):
            folders.setdefault(run.file.resolve().parent, label)

    def rule(path: Path) -> str | None:
        if path in files:
            return f"is the input of run {files[path]!r}"
        if is_step_dump(path) and path.parent in folders:
            return f"is a <step>.jsonl in the validation folder of run {folders[path.parent]!r}, read as a dump"
        return None

    return rule


def _output_paths(args) -> dict[str, Path]:
    outputs = {}
    if args.csv:
        outputs["--csv"] = Path(args.csv)
        if args.compare:
            outputs["--csv (its _compare.csv)"] = report.comparison_csv_path(args.csv)
    if args.json:
        outputs["--json"] = Path(args.json)
    if args.plot:
        outputs["--plot"] = Path(args.plot)
    return outputs


def _check_outputs(outputs: dict[str, Path], runs: dict[str, RunSpec]) -> None:
    rule = _input_rule(runs)
    for flag, path in outputs.items():
        formats = report.plot_formats() if flag == "--plot" else None
        check_output_file(path, flag, suffixes=formats, is_input=rule)
    check_distinct(outputs)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.runs and not args.compare:
        parser.error("give at least one run, or --compare A B")
    try:
        specs, compared_labels = _collect_runs(args, parser)
    except EvalInputError as exc:
        print(f"verl-focal eval: {exc}", file=sys.stderr)
        return 1
    _check_options(args, parser, specs)
    outputs = _output_paths(args)
    try:
        _check_outputs(outputs, specs)
    except UserFileError as exc:
        parser.error(str(exc))

    reward = args.reward or DEFAULT_REWARD
    try:
        runs = {label: load_run(str(s.file), label, threshold=args.threshold, reward=reward, n=args.n)
                for label, s in specs.items()}
    except (EvalInputError, UserFileError) as exc:
        print(f"verl-focal eval: {exc}", file=sys.stderr)
        return 1
    compared = [runs[label] for label in compared_labels]

    runs = list(runs.values())
    ks = args.k or report.default_ks(runs)
    tables = [report.ladder(run, ks) for run in runs]
    print("\n\n".join(report.format_table(run, table, ks) for run, table in zip(runs, tables)))

    comparison = None
    if compared:
        try:
            comparison = report.compare(
                compared[0], compared[1], m=args.subsample_size, ks=args.compare_k,
                iterations=args.iterations or 50_000, alpha=args.alpha or 0.05, seed=args.seed or 0,
            )
        except ValueError as exc:
            print(f"verl-focal eval --compare: {exc}", file=sys.stderr)
            return 1
        print("\n" + report.format_comparison(comparison))

    if "--csv" in outputs:
        report.write_csv(outputs["--csv"], runs, tables)
        if comparison is not None:
            report.write_comparison_csv(outputs["--csv (its _compare.csv)"], comparison)
    if "--json" in outputs:
        report.write_json(outputs["--json"], report.report_dict(runs, tables, ks, comparison))
    if "--plot" in outputs:
        report.plot(outputs["--plot"], runs, tables, ks)
    return 0
