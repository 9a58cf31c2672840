"""``verl-focal data <dataset> --input ... --output ...`` and ``verl-focal data synthetic --n ... --output ...``."""

from __future__ import annotations

import argparse
import sys

from verl_focal.arg_types import integer
from verl_focal.data.ood import MODELS, SYNLOGIC_CONFIGS, prepare_ifeval, prepare_synlogic
from verl_focal.data.prepare import MAX_PROMPT_TOKENS, SPECS, prepare
from verl_focal.data.readers import DataError
from verl_focal.data.synthetic import DEFAULT_KINDS, GENERATORS, write_synthetic


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="verl-focal data",
        description="Write a dataset in verl's parquet format with the paper's system prompt.",
    )
    sub = parser.add_subparsers(dest="dataset", required=True, metavar="dataset")
    for name, spec in SPECS.items():
        p = sub.add_parser(name, help=f"{name} ({spec.notes})")
        p.add_argument("--input", required=True, help="parquet/JSON/JSONL/CSV file, or a directory of them, "
                       "or a Hugging Face save_to_disk directory")
        p.add_argument("--output", required=True, help="parquet file to write (not inside --input; checked before "
                       "reading, replaced only once complete)")
        p.add_argument("--split", default=None, help="split to read: of a DatasetDict directory, or the files of a "
                       "directory with it as a folder or name part (test.jsonl, data/test-0000.parquet)")
        if spec.length_filter:
            p.add_argument("--tokenizer", default=None,
                           help="local tokenizer directory or tokenizer.json for the prompt-length filter")
            p.add_argument("--max-prompt-tokens", type=integer(1), default=MAX_PROMPT_TOKENS)
        if spec.multiple_choice:
            p.add_argument("--seed", type=integer(), default=0, help="seed of the option order")
    for name, source in (("ifeval", "google/IFEval records: prompt, instruction_id_list, kwargs"),
                         ("synlogic", "a local copy of MiniMaxAI/SynLogic")):
        p = sub.add_parser(name, help=f"{name} ({source}), out of domain")
        p.add_argument("--input", required=True, help="JSONL/parquet file or directory" if name == "ifeval" else
                       "the dataset's folder (with synlogic_easy/ and synlogic_hard/), one of them, or a parquet file")
        p.add_argument("--output", required=True, help="parquet file to write (not inside --input)")
        p.add_argument("--model", required=True, choices=MODELS, help="the policy: Table 9's prompt per model")
        if name == "synlogic":
            p.add_argument("--config", choices=sorted(SYNLOGIC_CONFIGS), default=None,
                           help="easy or hard, when --input is the dataset's folder")
            p.add_argument("--split", default="validation", help="split to read (default: validation)")
        else:
            p.add_argument("--split", default=None, help="split to read, as for the other datasets")
    p = sub.add_parser("synthetic", help="generated arithmetic/algebra problems with exact answers (offline)")
    p.add_argument("--n", type=integer(1), required=True)
    p.add_argument("--seed", type=integer(), default=0)
    p.add_argument("--output", required=True, help="parquet file to write")
    p.add_argument("--max-operand", type=integer(1), default=99)
    p.add_argument("--kinds", default=",".join(DEFAULT_KINDS), help=f"comma-separated from {', '.join(GENERATORS)}")
    p.add_argument("--split", default="train")
    return parser


def main(argv: list[str]) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.dataset == "synthetic":
        kinds = tuple(k.strip() for k in args.kinds.split(",") if k.strip())
        unknown = [k for k in kinds if k not in GENERATORS]
        if not kinds or unknown:
            parser.error(
                f"argument --kinds: unknown kinds {unknown or '(none given)'}; choose from {', '.join(GENERATORS)}"
            )
    try:
        if args.dataset == "synthetic":
            path = write_synthetic(args.output, args.n, args.seed, args.max_operand, kinds, args.split)
            print(f"synthetic: wrote {args.n} problems (seed {args.seed}, kinds {','.join(kinds)}, "
                  f"operands <= {args.max_operand}) -> {path}")
            return 0
        if args.dataset in ("ifeval", "synlogic"):
            if args.dataset == "ifeval":
                ood_report = prepare_ifeval(args.input, args.output, args.model, args.split)
            else:
                ood_report = prepare_synlogic(args.input, args.output, args.model, args.config, args.split)
            print("\n".join(ood_report.lines(args.output)))
            return 0
        report = prepare(
            args.dataset,
            args.input,
            args.output,
            tokenizer_path=getattr(args, "tokenizer", None),
            split=args.split,
            max_prompt_tokens=getattr(args, "max_prompt_tokens", MAX_PROMPT_TOKENS),
            seed=getattr(args, "seed", 0),
        )
    except (DataError, ValueError, ImportError) as error:  # UserFileError (paths, UTF-8) is a ValueError too
        print(f"verl-focal data: error: {error}", file=sys.stderr)
        return 2
    for warning in report.warnings:
        print(f"verl-focal data: warning: {warning}", file=sys.stderr)
    print("\n".join(report.lines(args.output)))
    return 0
