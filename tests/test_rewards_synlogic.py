"""SynLogic: per task kept, a hand-written right and wrong answer; the harness; references; bad responses."""

from __future__ import annotations

import json
import time

import pytest

from verl_focal.rewards import synlogic
from verl_focal.rewards.synlogic import answer_text, score_response
from verl_focal.rewards.synlogic.rules import RULES

SUDOKU = [
    [5, 3, 4, 6, 7, 8, 9, 1, 2], [6, 7, 2, 1, 9, 5, 3, 4, 8], [1, 9, 8, 3, 4, 2, 5, 6, 7],
    [8, 5, 9, 7, 6, 1, 4, 2, 3], [4, 2, 6, 8, 5, 3, 7, 9, 1], [7, 1, 3, 9, 2, 4, 8, 5, 6],
    [9, 6, 1, 5, 3, 7, 2, 8, 4], [2, 8, 7, 4, 1, 9, 6, 3, 5], [3, 4, 5, 2, 8, 6, 1, 7, 9],
]
SUDOKU_PUZZLE = [["X" if (i + j) % 3 == 0 else v for j, v in enumerate(row)] for i, row in enumerate(SUDOKU)]
SUDOKU_SWAPPED = [row[:] for row in SUDOKU]
SUDOKU_SWAPPED[0][1], SUDOKU_SWAPPED[0][2] = SUDOKU_SWAPPED[0][2], SUDOKU_SWAPPED[0][1]


def fenced(value: object, language: str = "python") -> str:
    return f"Here it is:\n```{language}\n{value}\n```\n"


# task -> (answer, metadata, right response, wrong response)
CASES = {
    "object_counting": ("7", {}, "I count them: \\boxed{7}", "\\boxed{8}"),
    "object_properties": ("12", {}, "so \\boxed{ 12 }.", "\\boxed{twelve}"),
    "space_reasoning": ("Left", {}, "\\boxed{left}", "\\boxed{right}"),
    "space_reasoning_tree": ("A, B,C", {}, "\\boxed{C，B, A}", "\\boxed{A, B}"),
    "word_sorting": ("apple, banana, cherry", {}, "\\boxed{apple,banana , cherry}", "\\boxed{banana, apple, cherry}"),
    "word_sorting_mistake": ("3", {}, "The first mistake is at \\boxed{3}", "\\boxed{No}"),
    "boolean_expressions": ("A, C", {}, "\\boxed{c, a}", "\\boxed{A, B, C}"),
    "dyck_language": ("", {"full_sequence": "([]){}"}, "  ([])\n{}  ", "([]){}}"),
    "dyck_language_errors": ("", {"is_valid": False, "first_error_pos": 5}, " 5 ", "4"),
    "dyck_language_reasoning_errors": ("", {"error_indices": [3, 10]}, "10，3", "3"),
    "cipher": ("[[HELLO]]", {}, fenced([["HELLO"]]), fenced([["HELL0"]])),
    "time_sequence": ("", {"records": {"answers": {"answer_maxLen": 45, "answer_nums": 3}}},
                      "First [1, 2]. Final: [45, 3]", "[45, 2]"),
    "kukurasu": ("", {"n": 2, "m": 2, "row_sums": [1, 2], "col_sums": [1, 2]},
                 'grid: [["1", "X"], ["X", "1"]]', '[["X", "1"], ["1", "X"]]'),
    "numbrix": ("", {"grid": [[1, "X"], ["X", 3]]}, "[[1, 2], [4, 3]]", "[[1, 3], [2, 4]]"),
    "sudoku": ("", {"original_sudoku": SUDOKU_PUZZLE}, fenced(SUDOKU), fenced(SUDOKU_SWAPPED)),
    "skyscraper_puzzle": ("", {"n": 2, "top": [2, 1], "bottom": [1, 2], "left": [2, 1], "right": [1, 2]},
                          fenced([[1, 2], [2, 1]]), fenced([[2, 1], [1, 2]])),
    "star_placement_puzzle": ("", {"n": 4, "k": 1, "region_grid": [["A", "A", "B", "B"], ["A", "A", "B", "B"],
                                                                  ["C", "C", "D", "D"], ["C", "C", "D", "D"]]},
                              fenced("{'A': [(2, 1)], 'B': [(1, 3)], 'C': [(4, 2)], 'D': [(3, 4)]}"),
                              fenced("{'A': [(1, 1)], 'B': [(2, 3)], 'C': [(3, 2)], 'D': [(4, 4)]}")),
    "minesweeper": ("", {"current_mines": [[0, 1], [2, 3]]}, "Mines: [(2, 3), (0, 1)]", "Mines: [(0, 1)]"),
    "survo": ("", {"original_matrix": [[1, 0, 3], [0, 4, 6], [3, 6, 0]], "candidate_numbers": [2, 2, 9], "n": 3},
              fenced([[1, 2, 3], [2, 4, 6], [3, 6, 9]]), fenced([[1, 2, 3], [2, 4, 6], [3, 6, 8]])),
    "cryptarithm": ("123 + 456 = 579", {}, "Trying 1+1=2 first. So, 123+456 = 579.", "123 + 456 = 578"),
    "math_path": ("", {"query_expr": "? + 4 = 7", "ref_expr": "3 + 4 = 7"}, "[[3 + 4 = 7]]", "[[2 + 4 = 7]]"),
    "web_of_lies": ("**yes, no, yes**", {}, "The answer is: **Yes, No, Yes**", "The answer is: **yes, yes, yes**"),
    "zebra_puzzle": ('{"house 1": {"color": "red", "pet": "cat"}}', {},
                     fenced('{"house 1": {"color": "red", "pet": "cat"}}', "json"),
                     fenced('{"house 1": {"color": "blue", "pet": "cat"}}', "json")),
}


def reference(task: str, answer: str, metadata: dict) -> str:
    return json.dumps({"task": task, "answer": answer, "metadata": metadata})


def test_every_kept_task_has_cases_and_no_task_is_both_kept_and_left_out():
    assert set(CASES) == set(RULES)
    assert not set(RULES) & set(synlogic.LEFT_OUT)


@pytest.mark.parametrize("task", sorted(CASES))
def test_right_answer_scores_one_and_wrong_scores_zero(task):
    answer, metadata, right, wrong = CASES[task]
    truth = reference(task, answer, metadata)
    assert score_response(right, truth) == {"score": 1.0, "acc": True, "pred": "", "synlogic_task": task}
    assert score_response(wrong, truth)["score"] == 0.0
    assert score_response(wrong, truth, dapo_scale=True)["score"] == -1.0


def test_thinking_is_removed_and_answer_tags_are_read():
    assert answer_text("<think>\\boxed{1}</think>\nso <answer> ([]) </answer> done") == "([])"
    assert answer_text("plain \\boxed{2}") == "plain \\boxed{2}"
    truth = reference("object_counting", "7", {})
    assert score_response("<think>maybe \\boxed{7}</think> it is \\boxed{8}", truth)["acc"] is False
    assert score_response("<think>maybe \\boxed{8}</think> it is \\boxed{7}", truth)["acc"] is True


def test_quirks_of_the_published_rules_are_kept():
    # dyck_language_errors: any mention of "valid" reads as -1 (valid sequence), even "invalid"
    valid = reference("dyck_language_errors", "", {"is_valid": True, "first_error_pos": None})
    assert score_response("The sequence is invalid", valid)["acc"] is True
    # word_sorting_mistake: a missing answer means "No"
    assert score_response("\\boxed{no}", reference("word_sorting_mistake", None, {}))["acc"] is True
    # math_path: eval() truthiness, so a comparison other than = passes the verifier too
    query = reference("math_path", "", {"query_expr": "? + 4 = ?", "ref_expr": "3 + 4 = 7"})
    assert score_response("[[3 + 4 < 8]]", query)["acc"] is True
    assert score_response("[[3 + 4 = 7]] and [[3 + 4 = 8]]", query)["acc"] is False  # the last one counts
    # zebra: types must match (1 is not "1")
    zebra = reference("zebra_puzzle", '{"a": 1}', {})
    assert score_response('```json\n{"a": "1"}\n```', zebra)["acc"] is False


def test_model_output_is_never_executed():
    cipher = reference("cipher", "[[A]]", {})
    assert score_response(fenced("[[__import__('os').getcwd() and 'A']]"), cipher)["acc"] is False
    query = reference("math_path", "", {"query_expr": "? = 1", "ref_expr": "1 = 1"})
    assert score_response("[[__import__('os').system('true') or 1 = 1]]", query)["acc"] is False


@pytest.mark.parametrize("ground_truth", [None, "", "not json", "[1]", json.dumps({"task": "game_of_24"}),
                                          json.dumps({"task": "no_such_task"}),
                                          json.dumps({"task": "numbrix", "metadata": "x"}),
                                          json.dumps({"task": "numbrix", "metadata": {}})])
def test_unusable_references_score_zero(ground_truth):
    result = score_response("[[1]]", ground_truth)
    assert result["score"] == 0.0 and result["acc"] is False


BAD_RESPONSES = [None, "", 12345, b"bytes", "\ud800\udfff broken", "\x00" * 100, "[[" * 200_000,
                 "\\boxed{" * 100_000, "```python\n" * 50_000, "1+" * 200_000, "(((" * 100_000,
                 "[(1, 2)" + " " * 300_000, '[["1",' + " " * 300_000, "<answer>" * 100_000, "</think>" * 100_000,
                 "x = " * 50_000 + "{", "{" * 100_000]


@pytest.mark.parametrize("position", range(len(BAD_RESPONSES)))
def test_bad_responses_are_bounded_and_never_raise(position):
    response = BAD_RESPONSES[position]
    for task, (answer, metadata, _, _) in CASES.items():
        start = time.monotonic()
        result = score_response(response, reference(task, answer, metadata))
        assert time.monotonic() - start < 2.0, task
        assert result["acc"] is False and result["synlogic_task"] == task
