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
    assert re.search(r"^\s+avg OOD\s+4\s+54\.2\s+83\.3\s*$", table, re.MULTILINE), table
    assert re.search(r"^\s+avg math\s+8\s+37\.5\s+75\.0\s*$", table, re.MULTILINE), table


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
