"""``verl-focal nll-rare``: ΔNLL_rare (paper, Appendix M.2) of trained checkpoints on a fixed rare-correct set.

Build the set once from base-model rollouts (``--rollouts`` a ``main_generation_server`` parquet), scoring each
response with ``--reward`` on its row's ``reward_model.ground_truth``; the set is written to ``--rare-set``. Later
calls with the same ``--rare-set`` (and no ``--rollouts``) reuse it. Each ``--trained`` checkpoint's ΔNLL_rare is
the mean of ``nll_trained - nll_base`` over the set, both recomputed in this call on the same device and dtype.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from verl_focal.arg_types import integer, real
from verl_focal.evaluation import hf_nll
from verl_focal.evaluation.nll_rare import RARE_FRACTION, delta_nll_rare, rare_correct_set
from verl_focal.evaluation.samples import DEFAULT_REWARD, EvalInputError, _score_response, load_reward_function
from verl_focal.user_files import UserFileError, check_output_file, read_text, replacing


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="verl-focal nll-rare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, help="base model folder (Hugging Face format)")
    parser.add_argument("--tokenizer", help="tokenizer folder (default: --base)")
    parser.add_argument("--rollouts", help="base-model generation parquet (prompt, responses, reward_model)")
    parser.add_argument("--rare-set", required=True, help="the fixed rare-correct set (.json): written with "
                        "--rollouts, read without it")
    parser.add_argument("--trained", nargs="*", default=[], metavar="DIR", help="trained checkpoint folders")
    parser.add_argument("--fraction", type=real(0, 1, low_open=True), default=RARE_FRACTION)
    parser.add_argument("--out", help="table of results (.md or .csv)")
    parser.add_argument("--reward", default="verl_focal.rewards:compute_score", help="module:function scorer")
    parser.add_argument("--threshold", type=real(), default=0.5, help="correct when acc (else score) exceeds it")
    parser.add_argument("--no-eos", action="store_true", help="do not score the end-of-turn token after a response")
    parser.add_argument("--batch-size", type=integer(1), default=8)
    parser.add_argument("--device", default="auto", help="auto (cuda when present), cpu, cuda, ...")
    parser.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"])
    parser.add_argument("--bootstrap", type=integer(1), default=2000, help="bootstrap resamples")
    parser.add_argument("--seed", type=integer(0), default=0)
    return parser


def _correct_rollouts(path: str, reward: str, threshold: float) -> list[dict]:
    import pandas as pd

    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for a bad file
        raise EvalInputError(f"--rollouts {path}: not a readable parquet file: {type(exc).__name__}: {exc}") from None
    for column in ("prompt", "responses", "reward_model"):
        if column not in frame.columns:
            raise EvalInputError(f"--rollouts {path}: no {column!r} column; found {list(frame.columns)}")
    score = load_reward_function(reward)
    kept = []
    for r, row in enumerate(frame.to_dict("records")):
        where = f"--rollouts {path}: row {r}"
        gt = row["reward_model"]
        if not isinstance(gt, dict) or "ground_truth" not in gt:
            raise EvalInputError(f"{where}: 'reward_model' must be a dict with 'ground_truth'")
        prompt = row["prompt"].tolist() if hasattr(row["prompt"], "tolist") else row["prompt"]
        source = row.get("data_source") or "unknown"
        extra = row.get("extra_info") if isinstance(row.get("extra_info"), dict) else {}
        for j, response in enumerate(list(row["responses"])):
            if _score_response(score, reward, f"{where}, response {j}", response, source, gt["ground_truth"],
                               extra, threshold):
                kept.append({"row": r, "sample": j, "data_source": source, "prompt": prompt, "response": response})
    return kept


def _pairs(tokenizer, trajectories: list[dict], eos: bool) -> list[hf_nll.Pair]:
    from verl.utils.tokenizer import normalize_token_ids

    pairs = []
    for t in trajectories:
        prompt = normalize_token_ids(tokenizer.apply_chat_template(
            [dict(m) for m in t["prompt"]], add_generation_prompt=True, tokenize=True))
        response = tokenizer.encode(t["response"], add_special_tokens=False) + ([tokenizer.eos_token_id] if eos else [])
        pairs.append((prompt, response))
    return pairs


def _nll(path: str, pairs, tokenizer, args) -> np.ndarray:
    device = hf_nll.pick_device(args.device)
    model = hf_nll.load_causal_lm(path, device, hf_nll.pick_dtype(args.dtype, device))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return hf_nll.pairs_nll(model, pairs, pad, args.batch_size)


def _build_set(args, tokenizer) -> dict:
    correct = _correct_rollouts(args.rollouts, args.reward, args.threshold)
    if not correct:
        raise EvalInputError(f"--rollouts {args.rollouts}: no correct response; the rare-correct set would be empty")
    nll = _nll(args.base, _pairs(tokenizer, correct, not args.no_eos), tokenizer, args)
    chosen = rare_correct_set(nll, args.fraction)
    trajectories = [{**correct[i], "base_nll": float(nll[i])} for i in chosen]
    return {"base": args.base, "fraction": args.fraction, "correct": len(correct), "eos": not args.no_eos,
            "trajectories": trajectories}


def _table(rows: list[dict], markdown: bool) -> str:
    keys = ["checkpoint", "delta_nll_rare", "low", "high", "rare_set_size"]
    if not markdown:
        return "\n".join([",".join(keys)] + [",".join(str(r[k]) for k in keys) for r in rows]) + "\n"
    lines = ["| checkpoint | ΔNLL_rare | 95% interval | \\|R\\| |", "|---|---|---|---|"]
    lines += [f"| {r['checkpoint']} | {r['delta_nll_rare']:.4f} | [{r['low']:.4f}, {r['high']:.4f}] | "
              f"{r['rare_set_size']} |" for r in rows]
    return "\n".join(lines) + "\n"


def run(args) -> list[dict]:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer or args.base)
    if args.rollouts:
        rare = _build_set(args, tokenizer)
        with replacing(args.rare_set) as tmp:
            tmp.write_text(json.dumps(rare, indent=1, default=str))
    else:
        rare = json.loads(read_text(args.rare_set))
    pairs = _pairs(tokenizer, rare["trajectories"], rare["eos"])
    base = _nll(args.base, pairs, tokenizer, args)
    rows = []
    for path in args.trained:
        d = delta_nll_rare(_nll(path, pairs, tokenizer, args), base, n_bootstrap=args.bootstrap, seed=args.seed)
        rows.append({"checkpoint": path, "delta_nll_rare": d.mean, "low": d.low, "high": d.high, "rare_set_size": d.n})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.rollouts and Path(args.rare_set).exists():
            raise UserFileError(f"--rare-set {args.rare_set}: exists; drop --rollouts to reuse it, or delete it")
        if not args.rollouts and not Path(args.rare_set).is_file():
            raise UserFileError(f"--rare-set {args.rare_set}: no such file; build it with --rollouts")
        check_output_file(args.rare_set, "--rare-set", suffixes={".json": "JSON"})
        if args.out:
            check_output_file(args.out, "--out", suffixes={".md": "markdown", ".csv": "CSV"})
        rows = run(args)
    except (EvalInputError, UserFileError, ValueError) as exc:
        print(f"verl-focal nll-rare: {exc}", file=sys.stderr)
        return 1
    print(_table(rows, markdown=True))
    if args.out:
        with replacing(args.out) as tmp:
            tmp.write_text(_table(rows, markdown=Path(args.out).suffix == ".md"))
    return 0
