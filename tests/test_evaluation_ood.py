"""``verl-focal eval`` on one validation dump of all nine benchmarks: each benchmark, Avg math and Avg OOD."""

from __future__ import annotations

import json
import re
from fractions import Fraction
from pathlib import Path

import pytest

from verl_focal.cli import main as verl_focal_main
from verl_focal.rewards import compute_score

N = 4  # samples per prompt
# correct samples per prompt, out of N
COUNTS = {"math500": [4, 0], "aime24": [1], "aime25": [0], "amc23": [2], "minerva": [3], "olympiadbench": [1, 1],
          "gpqa_diamond": [2], "ifeval": [1, 0], "synlogic": [4]}
IFEVAL = json.dumps({"instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]})
SYNLOGIC = json.dumps({"task": "word_sorting", "answer": "a, b", "metadata": {}})
# benchmark -> (ground truth, right response, wrong response), scored for real by the dispatcher
RESPONSES = {"gpqa_diamond": ("B", "The answer is (B)", "The answer is (C)"),
             "ifeval": (IFEVAL, "No commas here.", "Commas, here."),
             "synlogic": (SYNLOGIC, "\\boxed{a, b}", "\\boxed{b, a}")}
MATH = ("12", "so \\boxed{12}", "so \\boxed{13}")

# By hand, pass@1 = c/N and pass@4 = [c > 0] per prompt, averaged over prompts, then over benchmarks:
#   math  pass@1: (1/2, 1/4, 0, 1/2, 3/4, 1/4) -> 9/24       pass@4: (1/2, 1, 0, 1, 1, 1) -> 3/4
#   OOD   pass@1: (1/2, 1/8, 1) -> 13/24                     pass@4: (1, 1/2, 1) -> 5/6
#   macro pass@1: (9/4 + 13/8) / 9 = 31/72                   pass@4: (9/2 + 5/2) / 9 = 7/9
HAND = {"avg math": {1: Fraction(9, 24), 4: Fraction(3, 4)}, "avg OOD": {1: Fraction(13, 24), 4: Fraction(5, 6)},
        "macro avg": {1: Fraction(31, 72), 4: Fraction(7, 9)}, "ifeval": {1: Fraction(1, 8), 4: Fraction(1, 2)}}


@pytest.fixture(scope="module")
def dump(tmp_path_factory) -> Path:
    """One validation step as verl's writer dumps it, every sample scored by ``verl_focal.rewards``."""
    from verl.trainer.ppo.v1.trainer_base import PPOTrainer

    scored = {}
    for source in COUNTS:
        truth, right, wrong = RESPONSES.get(source, MATH)
        scored[source] = {ok: (response, truth, compute_score(source, response, truth))
                          for ok, response in ((True, right), (False, wrong))}
    inputs, outputs, gts, extras = [], [], [], []
    for source, counts in COUNTS.items():
        for prompt, correct in enumerate(counts):
            for session in range(N):
                response, truth, result = scored[source][session < correct]
                inputs.append(f"user: {source} question {prompt}\nassistant:")
                outputs.append(response)
                gts.append(truth)
                extras.append({**result, "uid": f"{source}-{prompt}_{session}_0"})
    infos = {key: [extra[key] for extra in extras] for key in extras[0]}
    directory = tmp_path_factory.mktemp("validation")
    PPOTrainer._write_generations(inputs=inputs, outputs=outputs, gts=gts, scores=infos["score"],
                                  reward_extra_infos_dict={"reward": infos["score"], **infos},
                                  dump_path=str(directory), global_steps=3)
    return directory


def test_report_has_every_benchmark_and_both_averages_as_computed_by_hand(dump, tmp_path, capsys):
    report = tmp_path / "report.json"
    assert verl_focal_main(["eval", f"focal={dump}", "--k", "1,4", "--json", str(report)]) == 0
    table = capsys.readouterr().out
    for name in [*COUNTS, "avg math", "avg OOD", "macro avg"]:
        assert re.search(rf"^\s+{re.escape(name)}\s+\d+\s", table, re.MULTILINE), name
    values = json.loads(report.read_text())["runs"][0]["pass_at_k"]
    assert set(values) == {*COUNTS, "avg math", "avg OOD", "macro avg"}
    for name, by_k in HAND.items():
        for k, expected in by_k.items():
            assert values[name][str(k)]["value"] == pytest.approx(float(expected), abs=1e-12), (name, k)
    assert values["avg OOD"]["1"]["prompts"] == 4 and values["avg math"]["1"]["prompts"] == 8
    assert re.search(r"^\s+avg OOD\s+4\s+0\s+54\.2\s+83\.3\s*$", table, re.MULTILINE), table  # prompts, missing, pass@1, pass@4
    assert re.search(r"^\s+avg math\s+8\s+0\s+37\.5\s+75\.0\s*$", table, re.MULTILINE), table


def test_an_incomplete_average_says_what_it_lacks(dump, tmp_path, capsys):
    only = tmp_path / "some"
    only.mkdir()
    lines = [line for line in (dump / "3.jsonl").read_text().splitlines()
             if json.loads(line)["data_source"] in ("ifeval", "aime24")]
    (only / "3.jsonl").write_text("\n".join(lines) + "\n")
    assert verl_focal_main(["eval", str(only), "--k", "1"]) == 0
    out = capsys.readouterr().out
    assert "avg OOD averages 1 of 3 benchmarks (ifeval); missing gpqa_diamond, synlogic" in out
    assert "avg math averages 1 of 6 benchmarks (aime24)" in out


def test_named_averages_are_tested_from_the_same_draws():
    import numpy as np

    from verl_focal.evaluation import MACRO, paired_subsampling_test_by_group

    rng = np.random.default_rng(5)
    groups = ["aime"] * 6 + ["math"] * 12 + ["gpqa"] * 8
    a, b = rng.random((26, 32)) < 0.5, rng.random((26, 32)) < 0.4
    results = paired_subsampling_test_by_group(
        a, b, groups, ks=(1, 8), m=8, iterations=2000,
        averages={"two": ["aime", "math"], "one": ["gpqa"], "all": ["aime", "math", "gpqa"]})
    assert list(results) == ["aime", "math", "gpqa", "two", "one", "all", MACRO]
    for k in (1, 8):
        two = results["two"][k]
        assert two.difference == pytest.approx((results["aime"][k].difference + results["math"][k].difference) / 2)
        assert two.pass_a == pytest.approx((results["aime"][k].pass_a + results["math"][k].pass_a) / 2)
        # the same statistic on the same draws gives the same interval
        assert results["one"][k] == results["gpqa"][k] and results["all"][k] == results[MACRO][k]
    with pytest.raises(ValueError, match="'bad'"):
        paired_subsampling_test_by_group(a, b, groups, ks=(1,), m=8, iterations=10, averages={"bad": ["amc"]})


def test_compare_gives_avg_math_and_avg_ood_a_verdict(dump, tmp_path, capsys):
    # Run B: every GPQA sample right, and IFEval's second prompt right in 2 of 4. With m = n = 4 every paired
    # subsample is the whole sample, so each interval is the single difference, computed here by hand:
    #   avg OOD pass@1: (1/2 + 1/4 + 0) / 3 = 1/4; pass@4: (0 + 1/2 + 0) / 3 = 1/6; avg math: 0 (not significant).
    other = tmp_path / "other"
    other.mkdir()
    lines = []
    for line in (dump / "3.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["data_source"] == "gpqa_diamond" or row["uid"] in ("ifeval-1_0_0", "ifeval-1_1_0"):
            row.update(acc=True, score=1.0)
        lines.append(json.dumps(row))
    (other / "3.jsonl").write_text("\n".join(lines) + "\n")
    report = tmp_path / "report.json"
    assert verl_focal_main(["eval", f"a={dump}", f"b={other}", "--compare", "b", "a", "--k", "1,4",
                            "--compare-k", "1,4", "--subsample-size", "4", "--iterations", "200",
                            "--json", str(report)]) == 0
    out = capsys.readouterr().out
    results = json.loads(report.read_text())["comparison"]["results"]
    assert list(results)[-3:] == ["avg math", "avg OOD", "macro avg"]
    for k, expected in ((1, Fraction(1, 4)), (4, Fraction(1, 6))):
        verdict = results["avg OOD"][str(k)]
        assert verdict["difference"] == pytest.approx(float(expected), abs=1e-12)
        assert verdict["ci_low"] == pytest.approx(float(expected)) == verdict["ci_high"]
        assert verdict["significant"] is True
        assert results["avg math"][str(k)]["difference"] == 0 and results["avg math"][str(k)]["significant"] is False
    assert re.search(r"^\s+avg OOD\s+pass@1\s+79\.2\s+54\.2\s+\+25\.0\s+\[\+25\.0, \+25\.0\]\s+significant$", out,
                     re.MULTILINE), out
