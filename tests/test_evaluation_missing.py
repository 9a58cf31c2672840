"""Missing sessions in ``verl-focal eval``: a session verl did not dump is an incorrect sample, as online.

The dumps are written by verl's own writer (``PPOTrainer._write_generations``) with the sessions of some
prompts left out, as verl leaves out a session that failed.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from verl_focal.cli import main as verl_focal_main
from verl_focal.evaluation import pass_at_k
from verl_focal.evaluation.samples import load_run
from verl_focal.evaluation.validation import validation_pass_at_k_metrics

# data source -> prompt uid -> the correctness of each session that is in the dump (None: not dumped).
# "p2" expects 4 samples like its neighbour, has 3 (session 2 failed), 2 of them correct: pass@1 = 2/4, not 2/3.
SESSIONS = {
    "math500": {"p1": [True, False, True, False], "p2": [True, False, None, True]},
}


def write_dump(directory: Path, sessions: dict, step: int = 0) -> Path:
    from verl.trainer.ppo.v1.trainer_base import PPOTrainer

    keys, inputs, acc, sources = [], [], [], []
    for source, prompts in sessions.items():
        for prompt, results in prompts.items():
            for session, ok in enumerate(results):
                if ok is not None:
                    keys.append(f"{prompt}_{session}_0")
                    inputs.append(f"user: {source} {prompt}\nassistant:")
                    acc.append(ok)
                    sources.append(source)
    scores = [float(a) for a in acc]
    PPOTrainer._write_generations(
        inputs=inputs, outputs=["\\boxed{1}"] * len(keys), gts=["1"] * len(keys), scores=scores,
        reward_extra_infos_dict={"reward": scores, "acc": acc, "data_source": sources, "uid": keys},
        dump_path=str(directory), global_steps=step,
    )
    return directory / f"{step}.jsonl"


def run_eval(capsys, *argv) -> tuple[int, str, str]:
    code = verl_focal_main(["eval", *map(str, argv)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def table_row(out: str, name: str) -> list[str]:
    return next(line for line in out.splitlines() if line.strip().startswith(name)).split()


def test_a_missing_session_counts_as_incorrect(tmp_path, capsys):
    dump = write_dump(tmp_path, SESSIONS)
    code, out, err = run_eval(capsys, dump, "--json", tmp_path / "r.json", "--csv", tmp_path / "r.csv")
    assert code == 0, err

    run = json.loads((tmp_path / "r.json").read_text())["runs"][0]
    ladder = run["pass_at_k"]["math500"]
    assert ladder["1"]["value"] == 0.5  # (2/4 + 2/4) / 2; dropping the session gave (2/4 + 2/3) / 2
    assert ladder["2"]["value"] == pytest.approx(pass_at_k(4, 2, 2))
    assert ladder["4"] == {"value": 1.0, "prompts": 2, "short": 0}  # p2 is not short of k = 4
    assert run["missing_sessions"] == 1 and run["missing_sessions_by_source"] == {"math500": 1}
    assert run["expected_samples"] == {"math500": 4} and run["samples_min"] == 4

    assert table_row(out, "math500")[1:3] == ["2", "1"] and table_row(out, "math500")[3] == "50.0"
    assert ("  missing sessions: 1, counted as incorrect as in the training logs: pass@k uses n = 4 expected per "
            "prompt (the most samples of any prompt of the data source), c = the correct samples present") in out
    rows = list(csv.DictReader(open(tmp_path / "r.csv", newline="")))
    assert {(r["data_source"], r["missing_sessions"]) for r in rows} == {("math500", "1"), ("avg math", "1"),
                                                                        ("macro avg", "1")}

    problem = next(p for p in load_run(str(dump)).problems if p.uid == "p2")
    assert problem.correct.tolist() == [True, False, False, True] and problem.missing == 1  # in session order


def test_n_sets_the_expected_count_and_refuses_fewer_than_present(tmp_path, capsys):
    dump = write_dump(tmp_path, SESSIONS)
    code, out, err = run_eval(capsys, dump, "--n", 6, "--json", tmp_path / "r.json")
    assert code == 0, err
    run = json.loads((tmp_path / "r.json").read_text())["runs"][0]
    assert run["missing_sessions"] == 2 + 3 and run["expected_samples"] == {"math500": 6}
    assert run["expected_samples_from"] == "--n 6" and "(--n 6)" in out
    assert run["pass_at_k"]["math500"]["1"]["value"] == pytest.approx(2 / 6)
    code, out, err = run_eval(capsys, dump, "--n", 4)  # the dump's own count: the default's result
    assert code == 0 and table_row(out, "math500")[1:4] == ["2", "1", "50.0"]

    code, out, err = run_eval(capsys, dump, "--n", 3, "--json", tmp_path / "bad.json")
    assert code == 1 and out == "" and not (tmp_path / "bad.json").exists()
    assert err == (f"verl-focal eval: {dump}: prompt uid 'p1' (math500) has 4 samples, more than --n 3; --n is the "
                   "samples expected per prompt (val_kwargs.n), so give at least 4 or leave --n out\n")

    # a failed last session leaves a prompt with fewer rows than --n's count; a session numbered past --n is refused
    late = write_dump(tmp_path / "late", {"math500": {"p1": [None, None, None, True]}})
    code, _, err = run_eval(capsys, late, "--n", 2)
    assert code == 1 and "prompt uid 'p1' (math500) has sessions up to 3, more than --n 2" in err


@pytest.mark.parametrize("argv", [["--n", "0"], ["--n", "two"]])
def test_n_must_be_a_positive_integer(tmp_path, capsys, argv):
    dump = write_dump(tmp_path, SESSIONS)
    with pytest.raises(SystemExit) as exit_info:
        run_eval(capsys, dump, *argv)
    assert exit_info.value.code == 2 and "argument --n: expected an integer >= 1" in capsys.readouterr().err


def test_the_default_count_is_per_data_source_and_a_short_source_is_flagged(tmp_path, capsys):
    # aime24 was sampled 2 times per prompt: its prompts are not short of math500's 4, but of k = 4
    sessions = SESSIONS | {"aime24": {"a1": [True, False], "a2": [False, None]}}
    dump = write_dump(tmp_path, sessions)
    code, out, err = run_eval(capsys, dump, "--json", tmp_path / "r.json")
    assert code == 0, err
    run = json.loads((tmp_path / "r.json").read_text())["runs"][0]
    assert run["expected_samples"] == {"aime24": 2, "math500": 4}
    assert run["missing_sessions"] == 2 and run["missing_sessions_by_source"] == {"aime24": 1, "math500": 1}
    assert run["pass_at_k"]["aime24"]["1"]["value"] == 0.25
    assert run["pass_at_k"]["aime24"]["4"] == {"value": None, "prompts": 0, "short": 2}
    assert "n = aime24 2, math500 4 expected per prompt" in out
    assert table_row(out, "aime24")[1:3] == ["2", "1"] and table_row(out, "macro avg")[2:4] == ["4", "2"]
    assert "2 prompts have fewer than 4 (fewest: 2)" in out


def test_legacy_dump_without_uid_counts_a_prompt_with_fewer_rows(tmp_path, capsys):
    # the legacy trainer dumps no uid: samples are grouped by input, a failed session is one row fewer
    rows = [{"input": prompt, "output": "a", "gts": "1", "score": float(ok), "step": 1, "acc": ok}
            for prompt, results in (("q1", [True, False, False, False]), ("q2", [True, True, False]))
            for ok in results]
    dump = tmp_path / "legacy.jsonl"
    dump.write_text("".join(json.dumps(r) + "\n" for r in rows))
    code, out, err = run_eval(capsys, dump, "--json", tmp_path / "r.json")
    assert code == 0, err
    run = json.loads((tmp_path / "r.json").read_text())["runs"][0]
    assert run["missing_sessions"] == 1 and run["pass_at_k"]["unknown"]["1"]["value"] == (1 / 4 + 2 / 4) / 2
    code, _, err = run_eval(capsys, dump, "--n", 3)
    assert code == 1 and "prompt 'q1' (unknown) has 4 samples, more than --n 3" in err


def test_offline_and_online_agree(tmp_path):
    """The same validation through the training-log metric (verl's expected_acc_counts) and through the dump."""
    rng = np.random.default_rng(0)
    n = 8
    sessions = {
        source: {f"{source}-{i}": [None if rng.random() < 0.15 else bool(rng.random() < 0.4) for _ in range(n)]
                 for i in range(6)}
        for source in ("aime24", "math500")
    }
    for prompts in sessions.values():  # one full prompt per source, so the default expected count is n
        prompts[next(iter(prompts))] = [True] + [False] * (n - 1)
    data_sources, uids, acc, expected = [], [], [], {}
    for source, prompts in sessions.items():
        for prompt, results in prompts.items():
            expected[(source, prompt)] = n
            for ok in results:
                if ok is not None:
                    data_sources.append(source), uids.append(prompt), acc.append(ok)
    online = validation_pass_at_k_metrics(data_sources, uids, {"acc": acc}, expected_acc_counts=expected)

    from verl_focal.evaluation.report import ladder

    run = load_run(str(write_dump(tmp_path, sessions)))
    table = ladder(run, [1, 2, 4, 8])
    offline = {f"{'val-core' if k in (1, n) else 'val-aux'}/{'macro_avg' if s == 'macro avg' else s}/acc/pass@{k}":
               table[s][k].value for s in ("aime24", "math500", "macro avg") for k in (1, 2, 4, 8)}
    assert run.missing_sessions == sum(r is None for p in sessions.values() for rs in p.values() for r in rs) > 0
    online_missing = {key.split("/")[1]: online.pop(key) for key in list(online) if key.endswith("/missing_sessions")}
    assert offline == pytest.approx(online, rel=1e-12)
    assert online_missing == {source: float(m) for source, m in run.missing_by_source().items()}


def test_generation_parquet_with_a_shorter_responses_list(tmp_path, capsys):
    pd = pytest.importorskip("pandas")
    scorer = tmp_path / "scorer.py"
    scorer.write_text("def compute_score(data_source, solution_str, ground_truth, extra_info=None):\n"
                      "    return float(solution_str == ground_truth)\n")
    pd.DataFrame({
        "data_source": ["gsm8k", "gsm8k"],
        "prompt": [[{"role": "user", "content": f"q{i}"}] for i in range(2)],
        "reward_model": [{"style": "rule", "ground_truth": "1"}] * 2,
        "responses": [["1", "2", "1", "2"], ["1", "1", "2"]],
    }).to_parquet(tmp_path / "gen.parquet")
    code, out, err = run_eval(capsys, tmp_path / "gen.parquet", "--reward", f"{scorer}:compute_score",
                              "--json", tmp_path / "r.json")
    assert code == 0, err
    run = json.loads((tmp_path / "r.json").read_text())["runs"][0]
    assert run["missing_sessions"] == 1 and run["pass_at_k"]["gsm8k"]["1"]["value"] == 0.5
