"""SynLogic: per task kept, a hand-written right and wrong answer; the harness; references; bad responses."""

from __future__ import annotations

import json
import random
import re
import time

import pytest

from verl_focal.rewards import synlogic
from verl_focal.rewards.synlogic import answer_text, score_response
from verl_focal.rewards.synlogic import text as tx
from verl_focal.rewards.synlogic.literals import OPAQUE, EvalFailed, NotEvaluated, python_value

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


def brackets(grid: list) -> str:
    """``[[1 2 3,3 1 2,...]]``: rows at commas, numbers at spaces (calcudoko's and futoshiki's answer format)."""
    return "[[" + ",".join(" ".join(map(str, row)) for row in grid) + "]]"


LATIN = [[1, 2, 3], [2, 3, 1], [3, 1, 2]]
CAGES = [{"cells": ["(1,1)", "(2,1)"], "target": 1, "operator": "-"},
         {"cells": ["(1,2)", "(1,3)"], "target": 6, "operator": "*"},
         {"cells": ["(2,2)", "(3,2)"], "target": 3, "operator": "÷"},
         {"cells": ["(2,3)", "(3,3)"], "target": 3, "operator": "+"},
         {"cells": ["(3,1)"], "target": 3, "operator": "+"}]
FUTOSHIKI_QUESTION = ("This is a 3x3 Futoshiki puzzle.\n\nCurrent puzzle:\nX 2 X\nX X X\nX X 1\n\n"
                      "Inequality constraints:\n(1,1) < (1,3)\n\nPlease output [[A B C,D E F,G H I]].")
FUTOSHIKI = {"grid_size": 3, "prefilled_coords": [[0, 1], [2, 2]], "constraints": [[[0, 0], [0, 2], "<"]]}
NORINORI = {"region_grid": [["A", "X", "B", "B"], ["A", "A", "B", "B"], ["A", "C", "C", "B"], ["C", "C", "C", "X"]]}
NUMBER_WALL = {"n": 4, "grid": [["X", "X", "X", 2], [2, "X", "X", "X"], ["X", "X", "X", "X"], [1, "X", 3, "X"]]}
WALLS = [["X", "A", "X", 2], [2, "A", "A", "A"], ["A", "A", "X", "X"], [1, "A", 3, "A"]]
WORDSCAPES = {"grid": [["X", "X", "X"], ["X", "0", "0"], ["X", "0", "0"]], "across_words": ["CAT"],
              "down_words": ["COW"]}
OWNS = "(('Alice','red book'),('Bob','blue pen'))"


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
    # a 1 points along rays of arrows: (0,0) sees the → to its right, (1,1) the ← to its left
    "arrow_maze": ("", {"maze": [["1", "X"], ["X", "1"]]}, fenced('[["1", "→"], ["←", "1"]]'),
                   fenced('[["1", "→"], ["↓", "1"]]')),
    "buggy_tables": ("12.34", {}, "The absolute difference is 12.34.", "About 12.3, so 12.30."),
    "calcudoko": ("", {"grid_size": 3, "regions": CAGES}, "Solved: " + brackets(LATIN),
                  brackets([LATIN[0], LATIN[2], LATIN[1]])),
    "campsite": ("", {"grid": [["T", "X", "X"], ["X", "X", "T"]], "n": 2, "m": 3, "row_constraints": [1, 1],
                      "col_constraints": [1, 0, 1]},
                 '[["T", "X", "C"], ["C", "X", "T"]]', '[["T", "C", "X"], ["X", "C", "T"]]'),
    "futoshiki": ("", FUTOSHIKI, "[[1 2 3,3 1 2,2 3 1]]", "[[1 3 2,2 1 3,3 2 1]]"),  # the wrong one moves the 2
    "goods_exchange": ("", {"owns_after": OWNS}, fenced("(('alice', 'Red Book'), ('Bob', 'blue pen'))"),
                       fenced("(('Alice', 'blue pen'), ('Bob', 'red book'))")),
    "norinori": ("", NORINORI, "[[(1,1), (1,2)], [(1,4), (2,4)], [(3,1), (3,2)], [(4,3), (4,4)]]",
                 "[[(1,1), (1,2)], [(1,4), (2,4)], [(3,2), (3,3)], [(4,3), (4,4)]]"),
    "number_wall": ("", NUMBER_WALL, json.dumps(WALLS), json.dumps([WALLS[0], WALLS[1], ["A", "A", "X", "A"],
                                                                    WALLS[3]])),
    "operation": ("12", {}, "Applying the rules, \\boxed{12}", "\\boxed{13}"),
    "wordscapes": ("", WORDSCAPES, '[["C", "A", "T"], ["O", " ", " "], ["W", " ", " "]]',
                   '[["C", "A", "T"], ["O", " ", " "], ["X", " ", " "]]'),
}
QUESTIONS = {"futoshiki": FUTOSHIKI_QUESTION}


def reference(task: str, answer: object, metadata: dict) -> str:
    return json.dumps({"task": task, "answer": answer, "metadata": metadata, "question": QUESTIONS.get(task)})


def test_every_kept_task_has_cases_and_no_task_is_both_kept_and_left_out():
    assert set(CASES) == synlogic.supported_tasks() and len(CASES) == 33
    assert not synlogic.supported_tasks() & set(synlogic.LEFT_OUT)


@pytest.mark.parametrize("task", sorted(CASES))
def test_right_answer_scores_one_and_wrong_scores_zero(task):
    answer, metadata, right, wrong = CASES[task]
    truth = reference(task, answer, metadata)
    assert score_response(right, truth) == {"score": 1.0, "acc": True, "pred": "", "synlogic_task": task,
                                            "timed_out": 0, "unverified": 0}
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


def test_quirks_of_the_grid_and_value_rules_are_kept():
    # norinori: a region no domino touches is not checked, so on a grid without shaded cells no domino passes
    four = [["A", "A", "B", "B"], ["A", "A", "B", "B"], ["C", "C", "D", "D"], ["C", "C", "D", "D"]]
    untouched = reference("norinori", "", {"region_grid": four})
    assert score_response("[[(1,1), (1,2)], [(4,3), (4,4)]]", untouched)["acc"] is True
    assert score_response("No dominoes.", untouched)["acc"] is True
    # calcudoko: a cage's numbers must differ even where they share no row or column
    cage = reference("calcudoko", "", {"grid_size": 3, "regions": [{"cells": ["(1,1)", "(2,3)"], "target": 2,
                                                                      "operator": "+"}]})
    assert score_response(brackets(LATIN), cage)["acc"] is False
    # goods_exchange: one pair without a trailing comma is a pair of strings, not a tuple of pairs: nothing read;
    # bare words make eval raise, and the verifier's hand parser reads them
    alone = reference("goods_exchange", "", {"owns_after": "(('Alice','red book'),)"})
    assert score_response(fenced("(('Alice','red book'))"), alone)["acc"] is False
    assert score_response(fenced("(('Alice','red book'),)"), alone)["acc"] is True
    both = reference("goods_exchange", "", {"owns_after": OWNS})
    assert score_response(fenced("((Alice, red book), (Bob, blue pen))"), both)["acc"] is True
    # futoshiki: the givens are read from an English question's "Current puzzle:" lines only
    chinese = json.dumps({"task": "futoshiki", "answer": "", "metadata": FUTOSHIKI,
                          "question": FUTOSHIKI_QUESTION.replace("Current puzzle:", "当前题目：")})
    assert score_response(CASES["futoshiki"][3], chinese)["acc"] is True
    # wordscapes: a row's letters are joined without its blanks before the word is looked for
    gap = reference("wordscapes", "", {"grid": [["X", "0", "X"]], "across_words": ["CT"], "down_words": []})
    assert score_response('[["C", " ", "T"]]', gap)["acc"] is True
    # buggy_tables: only a number with exactly two decimals is read; an empty answer matches an empty reference
    table = reference("buggy_tables", "12.30", {})
    assert score_response("12.3", table)["acc"] is False and score_response("So 12.300 or 12.30", table)["acc"]
    assert score_response("", reference("buggy_tables", "", {}))["acc"] is True
    # arrow_maze: a block the verifier cannot read as a grid gives way to the last [[...]] of the answer
    maze = reference("arrow_maze", "", {"maze": [["1", "X"], ["X", "1"]]})
    assert score_response('```python[["1", "→"], ["←", "1"]]```', maze)["acc"] is True  # python[...]: NameError


def test_model_output_is_never_executed():
    cipher = reference("cipher", "[[A]]", {})
    assert score_response(fenced("[[__import__('os').getcwd() and 'A']]"), cipher)["acc"] is False
    query = reference("math_path", "", {"query_expr": "? = 1", "ref_expr": "1 = 1"})
    assert score_response("[[__import__('os').system('true') or 1 = 1]]", query)["acc"] is False
    maze = reference("arrow_maze", "", {"maze": [["1", "X"], ["X", "1"]]})
    assert score_response(fenced('[["1", "→"], ["←", str(1)]]'), maze)["acc"] is False
    owners = reference("goods_exchange", "", {"owns_after": "(('Alice','x'),)"})
    assert score_response(fenced("(('Alice', __import__('os').getcwd()),)"), owners)["acc"] is False


def test_python_values_follow_eval_without_running_it():
    assert python_value("  (('a', 'b'), [1, -2.5], {3: None}, ...)") == (("a", "b"), [1, -2.5], {3: None}, ...)
    assert python_value("'a' + 'b'") == "ab" and python_value("{1, 2} - {2}") == {1}
    assert python_value("(max, list)") == (OPAQUE, OPAQUE)
    for raising in ("((Alice, book),)", "python[[1]]", "('a', 'b')('c', 'd')", "{[1]}", "1 + 'a'", "[1] + (2,)",
                    "(", "-max", "1" * 5000):
        with pytest.raises(EvalFailed):
            python_value(raising)
    for running in ("max(1, 2)", "2 * 3", "'a'.upper()", "[x for x in 'ab']", "__name__", "f'{1}'", "(answer_str,)"):
        with pytest.raises(NotEvaluated):
            python_value(running, local_names=frozenset({"answer_str"}))


def test_operation_is_bounded_by_the_pool_timeout():
    slow = reference("operation", "12", {})
    result = score_response("\\boxed{\\binom{999999}{500000}}", slow, timeout=1.0)  # minutes in sympy
    assert (result["acc"], result["timed_out"], result["unverified"]) == (False, 1, 0)


# Each linear scan of synlogic.text against the regular expression of the verifier it stands for, on random text.
_SCANS = {
    "fenced_on_lines": (["```", "```python", "\n", " ", "[", "]", "x"], lambda t: tx.fenced_on_lines(t, "```python"),
                        r"```python\s*\n(.*?)\n```"),
    "python_block_with_list": (["```", "```python", "\n", " ", "[", "]", "x"],
                               lambda t: tx.fenced_with_brackets(t, "```python", True),
                               r"```python\s*\n(.*?\[.*?\].*?)\n```"),
    "block_with_list": (["```", "\n", " ", "[", "]", "x"], lambda t: tx.fenced_with_brackets(t, "```", True),
                        r"```\s*\n(.*?\[.*?\].*?)\n```"),
    "inline_block_with_list": (["```", "\n", "[", "]", "x"], lambda t: tx.fenced_with_brackets(t, "```", False),
                               r"```(.*?\[.*?\].*?)```"),
    "double_bracket_groups": (list("[]1 ,\n"), tx.double_bracket_groups, r"\[\[([^\]]+)\]\]"),
    "grid_spans": (list("[] 1\n"), lambda t: tx.spans(t, tx.GRID_OPEN, tx.GRID_CLOSE), r"\[\s*\[.*?\]\s*\]"),
}


@pytest.mark.parametrize("name", sorted(_SCANS))
def test_linear_scans_find_what_the_verifiers_regular_expressions_find(name):
    alphabet, scan, pattern = _SCANS[name]
    rng = random.Random(name)
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14)))
        assert scan(text) == re.findall(pattern, text, re.DOTALL), text
    for _ in range(3000):
        text = "".join(rng.choice("12.-a ٣") for _ in range(rng.randint(0, 12)))
        assert tx.last_two_decimal_number(text) == (re.findall(r"-?\d+\.\d{2}\b", text) or [None])[-1], text


@pytest.mark.parametrize("ground_truth", [None, "", "not json", "[1]", json.dumps({"task": "game_of_24"}),
                                          json.dumps({"task": "no_such_task"}),
                                          json.dumps({"task": "numbrix", "metadata": "x"}),
                                          json.dumps({"task": "numbrix", "metadata": {}}),
                                          json.dumps({"task": "futoshiki", "metadata": FUTOSHIKI})])
def test_unusable_references_score_zero(ground_truth):
    result = score_response("[[1]]", ground_truth)
    assert result["score"] == 0.0 and result["acc"] is False


BAD_RESPONSES = [None, "", 12345, b"bytes", "\ud800\udfff broken", "\x00" * 100, "[[" * 200_000,
                 "\\boxed{" * 100_000, "```python\n" * 50_000, "1+" * 200_000, "(((" * 100_000,
                 "[(1, 2)" + " " * 300_000, '[["1",' + " " * 300_000, "<answer>" * 100_000, "</think>" * 100_000,
                 "x = " * 50_000 + "{", "{" * 100_000, "```python\nx```" * 20_000, "[1" * 200_000,
                 "Row 1: " + "1 " * 100_000, "-" + "1" * 300_000, '"' * 200_000, "[[1, " + " " * 300_000,
                 "((a, b), " * 40_000, "(1," + " " * 300_000, "```\n[" * 50_000]


@pytest.mark.parametrize("position", range(len(BAD_RESPONSES)))
def test_bad_responses_are_bounded_and_never_raise(position):
    response = BAD_RESPONSES[position]
    score_response("", reference("operation", "1", {}))  # the pool's first start is not the check's time
    for task, (answer, metadata, _, _) in CASES.items():
        start = time.monotonic()
        result = score_response(response, reference(task, answer, metadata), timeout=1.0)  # operation's pool check
        assert time.monotonic() - start < 2.0, task
        assert result["acc"] is False and result["synlogic_task"] == task
