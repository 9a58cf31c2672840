"""End to end: validation dumps written by verl's own writer -> ``verl-focal eval`` -> table, CSV, JSON, PNG."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest

from verl_focal.cli import main as verl_focal_main
from verl_focal.evaluation import pass_at_k

N = 8
# correct counts per prompt, out of N samples; run A's aime24 prompt 3 has only 5 of its N sessions in the dump
# (1 correct): the 3 missing sessions count as incorrect, so its pass@k is that of 1 correct out of N
COUNTS = {
    "A": {"math500": [8, 6, 4, 2, 1, 0], "aime24": [1, 0, 0, 1]},
    "B": {"math500": [8, 8, 6, 4, 3, 1], "aime24": [3, 1, 2, 2]},
}
MISSING = ("A", "aime24", 3, 5)


def prompt_text(source: str, i: int) -> str:
    return f"system: reason step by step\nuser: {source} question {i}\nassistant:"


def expected_pass(run: str, source: str, k: int) -> float:
    return float(np.mean([pass_at_k(N, c, k) for c in COUNTS[run][source]]))


def write_dump(directory: Path, run: str, step: int, seed: int) -> None:
    """A v1 validation dump through verl's own writer (``PPOTrainer._write_generations``)."""
    from verl.trainer.ppo.v1.trainer_base import PPOTrainer

    rng = np.random.default_rng(seed)
    rows = []
    for source, counts in COUNTS[run].items():
        for i, c in enumerate(counts):
            uid = str(uuid.UUID(int=int(rng.integers(2**62))))  # verl draws uuid4s: never equal across runs
            n = MISSING[3] if (run, source, i) == MISSING[:3] else N
            correct = rng.permutation([True] * c + [False] * (n - c))
            for session, ok in enumerate(correct):
                # one multi-output session, in run A only: pairing must still find the problem in B
                outputs = 2 if (run, source, i, session) == ("A", "math500", 0, 0) else 1
                for index in range(outputs):
                    # a later output of a multi-turn session carries the earlier turns in its input
                    text = prompt_text(source, i) + " ...\nuser: go on\nassistant:" * index
                    rows.append((f"{uid}_{session}_{index}", text, bool(ok), source))
    rows = [rows[j] for j in rng.permutation(len(rows))]
    keys, inputs, acc, sources = (list(column) for column in zip(*rows))
    scores = [float(a) for a in acc]
    PPOTrainer._write_generations(
        inputs=inputs,
        outputs=["... \\boxed{42}"] * len(rows),
        gts=["42"] * len(rows),
        scores=scores,
        reward_extra_infos_dict={"reward": scores, "acc": acc, "data_source": sources, "uid": keys},
        dump_path=str(directory),
        global_steps=step,
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("validation")
    write_dump(root / "A", "A", step=10, seed=1)
    write_dump(root / "A", "B", step=5, seed=9)  # an earlier step: the directory must resolve to step 10
    write_dump(root / "B", "B", step=10, seed=2)
    return {"A": root / "A", "B": root / "B"}


def run_eval(capsys, *argv) -> tuple[int, str, str]:
    code = verl_focal_main(["eval", *map(str, argv)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_dump_is_verls_format(runs):
    row = json.loads((runs["A"] / "10.jsonl").read_text().splitlines()[0])
    assert {"input", "output", "gts", "score", "step", "reward", "acc", "data_source", "uid"} <= set(row)


def test_ladder_table_csv_json_and_plot(runs, tmp_path, capsys):
    out_csv, out_json, out_png = tmp_path / "ladder.csv", tmp_path / "report.json", tmp_path / "passk.png"
    code, out, err = run_eval(
        capsys, f"base={runs['A']}", f"focal={runs['B']}", "--csv", out_csv, "--json", out_json, "--plot", out_png
    )
    assert code == 0, err
    ks = [1, 2, 4, 8]

    # terminal table: one block per run, a row per benchmark and the macro average, percent values
    base_block, focal_block = out.split("\n\n")
    assert "10.jsonl" in base_block and "correct = acc" in base_block and "10 prompts, 8 samples each" in base_block
    assert "  missing sessions: 3, counted as incorrect" in base_block and "n = 8 expected per prompt" in base_block
    assert "prompts missing     pass@1    pass@2    pass@4    pass@8" in base_block
    math_row = next(line for line in base_block.splitlines() if line.strip().startswith("math500"))
    assert math_row.split()[1:] == ["6", "0"] + [f"{100 * expected_pass('A', 'math500', k):.1f}" for k in ks]
    aime_row = next(line for line in base_block.splitlines() if line.strip().startswith("aime24"))
    # the prompt with 3 missing sessions counts with n = 8: no prompt is short of any k
    assert aime_row.split()[1:] == ["4", "3"] + [f"{100 * expected_pass('A', 'aime24', k):.1f}" for k in ks]
    macro_row = next(line for line in base_block.splitlines() if line.strip().startswith("macro avg"))
    assert macro_row.split()[2:4] == ["10", "3"]
    assert "*" not in base_block.split("(percent)")[0] and "fewer than" not in base_block
    assert "macro avg" in focal_block and "missing sessions: 0," in focal_block

    # CSV: long format, full precision
    with open(out_csv, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 * 4 * len(ks)  # runs x (2 benchmarks + avg math + macro) x ks
    for row in rows:
        run = {"base": "A", "focal": "B"}[row["run"]]
        k = int(row["k"])
        if row["data_source"] in ("macro avg", "avg math"):  # both average aime24 and math500 here
            expected = np.mean([expected_pass(run, s, k) for s in ("aime24", "math500")])
        else:
            expected = expected_pass(run, row["data_source"], k)
        assert float(row["pass_at_k"]) == pytest.approx(expected, rel=1e-12)
    cell = next(r for r in rows if (r["run"], r["data_source"], r["k"]) == ("base", "aime24", "8"))
    assert (cell["prompts"], cell["prompts_short"], cell["missing_sessions"]) == ("4", "0", "3")
    assert {r["missing_sessions"] for r in rows if r["run"] == "base" and r["data_source"] == "math500"} == {"0"}
    assert {r["missing_sessions"] for r in rows if r["run"] == "base" and r["data_source"] == "macro avg"} == {"3"}

    # JSON: per-run ladders and the missing sessions, never silently dropped
    report = json.loads(out_json.read_text())
    assert report["ks"] == ks and "counts as incorrect" in report["missing_sessions_rule"]
    base = report["runs"][0]
    assert base["label"] == "base" and base["samples_min"] == 8 and base["samples_max"] == 8
    assert base["pass_at_k"]["math500"]["4"]["value"] == pytest.approx(expected_pass("A", "math500", 4))
    assert base["pass_at_k"]["aime24"]["8"]["value"] == pytest.approx(expected_pass("A", "aime24", 8))
    assert base["missing_sessions"] == 3 and base["missing_sessions_by_source"] == {"aime24": 3, "math500": 0}
    assert base["expected_samples"] == {"aime24": 8, "math500": 8} and base["short_prompts"] == []
    assert report["runs"][1]["missing_sessions"] == 0
    assert "comparison" not in report

    # PNG: a real image
    import matplotlib.image

    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(out_png)
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 600


def test_compare_adds_significance_verdicts(runs, tmp_path, capsys):
    out_csv, out_json = tmp_path / "ladder.csv", tmp_path / "report.json"
    code, out, err = run_eval(
        capsys, "--compare", f"focal={runs['B']}", f"base={runs['A'] / '10.jsonl'}",
        "--iterations", "2000", "--csv", out_csv, "--json", out_json,
    )
    assert code == 0, err
    # default m: n/4 of the 8 samples, the prompt with missing sessions included
    assert "A = focal, B = base; 10 shared prompts, m = 2" in out
    assert "different sample counts" not in out  # the missing sessions are incorrect samples, not a shorter prompt
    assert "only in" not in out  # every problem paired, the multi-output one included
    verdicts = [line.split() for line in out.splitlines() if line.rstrip().endswith("significant")]
    assert [(v[0], v[2] if v[0] in ("avg", "macro") else v[1]) for v in verdicts] == [
        (name, metric) for name in ("aime24", "math500", "avg", "macro") for metric in ("pass@1", "pass@2")
    ]
    compare_rows = list(csv.DictReader(open(tmp_path / "ladder_compare.csv", newline="")))
    assert [r["data_source"] for r in compare_rows] == [
        name for name in ("aime24", "math500", "avg math", "macro avg") for _ in (1, 2)
    ]
    report = json.loads(out_json.read_text())
    result = report["comparison"]["results"]["math500"]["1"]
    assert result["difference"] == pytest.approx(expected_pass("B", "math500", 1) - expected_pass("A", "math500", 1))
    aime = report["comparison"]["results"]["aime24"]["2"]  # run A's missing sessions are its failures here too
    assert aime["pass_b"] == pytest.approx(expected_pass("A", "aime24", 2))
    assert result["ci_low"] <= result["ci_high"] and report["comparison"]["m"] == 2


def test_compare_with_larger_subsample_and_k(runs, capsys):
    code, out, err = run_eval(
        capsys, f"base={runs['A']}", f"focal={runs['B']}", "--compare", "focal", "base",
        "--subsample-size", "4", "--compare-k", "1,4", "--iterations", "2000",
    )
    assert code == 0, err
    lines = [line.split() for line in out.splitlines() if line.rstrip().endswith("significant")]
    assert [(v[0], v[1]) for v in lines][:2] == [("aime24", "pass@1"), ("aime24", "pass@4")]
    math_1 = next(v for v in lines if v[:2] == ["math500", "pass@1"])
    # printed to 0.1 percent point
    assert float(math_1[2]) == pytest.approx(100 * expected_pass("B", "math500", 1), abs=0.051)
    assert float(math_1[3]) == pytest.approx(100 * expected_pass("A", "math500", 1), abs=0.051)


def test_a_label_names_one_run(runs, capsys):
    with pytest.raises(SystemExit):
        run_eval(capsys, f"x={runs['A']}", f"x={runs['B']}")
    assert "two runs are labelled 'x'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run_eval(capsys, f"x={runs['A']}", "--compare", f"x={runs['B']}", "x")
    assert "--compare: 'x' already labels" in capsys.readouterr().err


def test_console_script_lists_eval():
    script = Path(sys.executable).with_name("verl-focal")
    result = subprocess.run([str(script), "eval", "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "--compare A B" in result.stdout and "validation_data_dir" in result.stdout


# ----------------------------------------------------------------------------- bad input


def write_lines(path: Path, rows: list, trailing_newline: bool = True) -> Path:
    text = "\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows)
    path.write_text(text + ("\n" if trailing_newline else ""))
    return path


def row(uid="p1_0_0", acc=True, **extra):
    return {"input": "q", "output": "a", "gts": "1", "score": 1.0 if acc is True else 0.0, "step": 1, "acc": acc, "uid": uid} | extra


@pytest.mark.parametrize(
    "lines, trailing, message",
    [
        ([row(), '{"input": "q", "output": "a", "gts'], False, r"bad\.jsonl:2: not valid JSON.*looks truncated"),
        ([row(), "not json"], True, r"bad\.jsonl:2: not valid JSON"),
        ([row(), row("p1_1_0") | {"acc": None}], True, r"bad\.jsonl:2: missing 'acc'"),
        ([row(), {k: v for k, v in row("p1_1_0").items() if k != "uid"}], True, r"bad\.jsonl:2: missing 'uid'"),
        ([row(), row("p1-no-session")], True, r"bad\.jsonl:2: uid 'p1-no-session' is not of verl v1's form"),
        ([row(), row("p1_1_0", acc="yes")], True, r"bad\.jsonl:2: 'acc' must be a boolean or a finite number"),
        ([row(), [1, 2]], True, r"bad\.jsonl:2: expected a JSON object"),
        ([row(data_source="a"), row("p1_1_0", data_source="b")], True, "prompt uid 'p1' has samples from several"),
        ([], True, r"bad\.jsonl: empty validation dump"),
    ],
)
def test_malformed_dumps_name_file_and_line(tmp_path, capsys, lines, trailing, message):
    path = write_lines(tmp_path / "bad.jsonl", lines, trailing) if lines else tmp_path / "bad.jsonl"
    if not lines:
        path.write_text("")
    code, out, err = run_eval(capsys, path)
    assert code == 1 and out == ""
    assert re.search(message, err), err


def test_missing_paths(tmp_path, capsys):
    code, _, err = run_eval(capsys, tmp_path / "nope.jsonl")
    assert code == 1 and "nope.jsonl: no such file or directory" in err
    code, _, err = run_eval(capsys, tmp_path)
    assert code == 1 and "holds no <step>.jsonl validation dumps" in err
    write_lines(tmp_path / "3.jsonl", [row()])
    code, _, err = run_eval(capsys, tmp_path, "--step", "4")
    assert code == 1 and "no 4.jsonl; steps present: [3]" in err


def test_legacy_dump_without_uid_or_data_source_and_score_threshold(tmp_path, capsys):
    # verl's legacy trainer dumps no uid: prompts are grouped by input. Without acc, score > threshold
    # decides (+1/-1 rewards here), and a missing data_source is reported as 'unknown'.
    rows = [
        {"input": f"q{i}", "output": "a", "gts": "1", "score": s, "step": 1}
        for i, scores in enumerate([[1.0, -1.0, -1.0, -1.0], [-1.0, -1.0, -1.0, -1.0]])
        for s in scores
    ]
    path = write_lines(tmp_path / "legacy.jsonl", rows)
    code, out, err = run_eval(capsys, path, "--json", tmp_path / "r.json", "--threshold", "0")
    assert code == 0, err
    assert "correct = score > 0.0" in out and "reported as 'unknown'" in out
    ladder = json.loads((tmp_path / "r.json").read_text())["runs"][0]["pass_at_k"]["unknown"]
    assert [ladder[k]["value"] for k in ("1", "2", "4")] == pytest.approx([0.125, 0.25, 0.5])


def test_runs_sharing_no_problem_cannot_be_compared(tmp_path, capsys):
    a = write_lines(tmp_path / "a.jsonl", [row(f"p_{s}_0") for s in range(4)])
    b = write_lines(tmp_path / "b.jsonl", [row(f"p_{s}_0") | {"input": "other"} for s in range(4)])
    code, _, err = run_eval(capsys, "--compare", a, b, "--iterations", "10")
    assert code == 1 and "share no problem" in err


def test_generation_parquet_is_scored_with_the_reward_function(tmp_path, capsys):
    pd = pytest.importorskip("pandas")
    scorer = tmp_path / "scorer.py"
    scorer.write_text(
        "def compute_score(data_source, solution_str, ground_truth, extra_info=None, **kwargs):\n"
        "    ok = solution_str.endswith('\\\\boxed{' + ground_truth + '}')\n"
        "    return {'score': 1.0 if ok else 0.0, 'acc': ok, 'data_source': data_source}\n"
    )
    frame = pd.DataFrame(
        {
            "data_source": ["gsm8k", "gsm8k", "math"],
            "prompt": [[{"role": "user", "content": f"q{i}"}] for i in range(3)],
            "ability": ["math"] * 3,
            "reward_model": [{"style": "rule", "ground_truth": gt} for gt in ("1", "2", "3")],
            "extra_info": [{"index": i} for i in range(3)],
            "responses": [
                ["\\boxed{1}", "\\boxed{7}", "no", "\\boxed{1}"],
                ["\\boxed{3}", "x", "y", "z"],
                ["\\boxed{3}"] * 4,
            ],
        }
    )
    path = tmp_path / "generations.parquet"
    frame.to_parquet(path)
    code, out, err = run_eval(capsys, path, "--reward", f"{scorer}:compute_score", "--json", tmp_path / "r.json")
    assert code == 0, err
    assert "generation parquet" in out
    ladder = json.loads((tmp_path / "r.json").read_text())["runs"][0]["pass_at_k"]
    assert ladder["gsm8k"]["1"]["value"] == pytest.approx((0.5 + 0.0) / 2)
    assert ladder["gsm8k"]["4"]["value"] == pytest.approx(0.5)
    assert ladder["math"]["2"]["value"] == 1.0

    code, _, err = run_eval(capsys, path, "--reward", "no_such_module_xyz:compute_score")
    assert code == 1 and "could not be loaded" in err
    frame.drop(columns=["responses"]).to_parquet(tmp_path / "plain.parquet")
    code, _, err = run_eval(capsys, tmp_path / "plain.parquet", "--reward", f"{scorer}:compute_score")
    assert code == 1 and "no 'responses' column" in err
