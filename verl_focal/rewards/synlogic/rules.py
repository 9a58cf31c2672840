"""One function per SynLogic task: ``rule(answer, reference) -> bool``.

Each follows the verification rule of the task's verifier in MiniMax-AI/SynLogic (``games/tasks/<task>/scripts/
<task>_verifier.py``, and ``corpus/misc/tasks/zebra_puzzle``): the same extraction, the same normalisation, the
same checks, written here in linear time and without evaluating model output as Python. ``answer`` is the text the
harness hands over (see :func:`verl_focal.rewards.synlogic.answer_text`); ``reference`` has the dataset row's
``answer`` and ``metadata``. A rule returns ``False`` wherever the verifier's own code would raise.
"""

from __future__ import annotations

import ast
import json
import operator
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from verl_focal.rewards.synlogic import text as tx


@dataclass(frozen=True)
class Reference:
    task: str
    answer: Any
    metadata: dict[str, Any] = field(default_factory=dict)
    question: str = ""  # the record's question, kept only for the tasks whose verifier reads it (futoshiki)


Rule = Callable[[str, Reference], bool]
RULES: dict[str, Rule] = {}
# A rule that needs a library run in the reward's worker pool names the worker function ("module:function") and
# its arguments, or returns None for an answer that is wrong without running it.
PooledRule = Callable[[str, Reference], "tuple[str, tuple] | None"]
POOLED_RULES: dict[str, PooledRule] = {}


def rule(*names: str):
    def register(function: Rule) -> Rule:
        for name in names:
            RULES[name] = function
        return function

    return register


def pooled_rule(name: str):
    def register(function: PooledRule) -> PooledRule:
        POOLED_RULES[name] = function
        return function

    return register


def _literal(source: str) -> Any:
    """``ast.literal_eval`` with every failure (syntax, depth, size) as ``None``-like ``_INVALID``."""
    try:
        return ast.literal_eval(source)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return _INVALID


_INVALID = object()


def _as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        return None


# --- answers in a box --------------------------------------------------------------------------------------------

@rule("object_counting", "object_properties")
def boxed_integer(answer: str, ref: Reference) -> bool:
    """The last ``\\boxed{...}`` (to its first ``}``) read by ``int()`` equals the answer read by ``int()``."""
    boxed = tx.box_to_first_brace(answer)
    gold = _as_int(ref.answer)
    return boxed is not None and gold is not None and _as_int(boxed) == gold


@rule("space_reasoning")
def boxed_text(answer: str, ref: Reference) -> bool:
    """The last balanced ``\\boxed{...}`` equals the answer, ignoring case."""
    boxed = tx.box_balanced(answer)
    return boxed is not None and boxed.lower() == str(ref.answer).lower()


def _comma_items(text: str) -> list[str]:
    return [item.strip() for item in text.replace("，", ",").replace(" ", "").split(",")]


@rule("space_reasoning_tree")
def boxed_set(answer: str, ref: Reference) -> bool:
    """The last balanced box, as a comma-separated set (``，`` is a comma, spaces dropped), equals the answer's."""
    boxed = tx.box_balanced(answer)
    if boxed is None:
        return False
    split = lambda s: set(s.replace("，", ",").replace(" ", "").split(","))  # noqa: E731
    return split(boxed) == split(str(ref.answer))


@rule("word_sorting")
def boxed_word_list(answer: str, ref: Reference) -> bool:
    """The last box (to its first ``}``), as a comma-separated list in order, equals the answer's."""
    boxed = tx.box_to_first_brace(answer)
    return boxed is not None and _comma_items(boxed) == _comma_items(str(ref.answer))


@rule("word_sorting_mistake")
def boxed_mistake(answer: str, ref: Reference) -> bool:
    """The last box (to its first ``}``): a number compared as ``int``, else text ignoring case; a missing answer
    means "No"."""
    boxed = tx.box_to_first_brace(answer)
    gold = "No" if ref.answer is None else str(ref.answer)
    if boxed is None:
        return False
    if boxed.isdigit():
        value = _as_int(boxed)
        return value is not None and value == _as_int(gold)
    return boxed.lower() == gold.lower()


@rule("boolean_expressions")
def boxed_letters(answer: str, ref: Reference) -> bool:
    """The set of letters in the last balanced box equals the set of letters of the answer, ignoring case."""
    boxed = tx.box_balanced(answer)
    letters = lambda s: {c.lower() for c in re.findall(r"[a-zA-Z]", s)}  # noqa: E731
    return boxed is not None and letters(boxed) == letters(str(ref.answer))


# --- bracket sequences ---------------------------------------------------------------------------------------------

@rule("dyck_language")
def dyck_completion(answer: str, ref: Reference) -> bool:
    """The whole answer, whitespace and escaped ``\\n \\t \\r`` removed and one pair of outer quotes dropped,
    equals ``metadata.full_sequence``."""
    cleaned = "".join(answer.split())
    for escaped in ("\\n", "\\t", "\\r"):
        cleaned = cleaned.replace(escaped, "")
    cleaned = cleaned.replace("\\\\", "\\")
    if len(cleaned) >= 2 and cleaned[0] == cleaned[-1] and cleaned[0] in "\"'":
        cleaned = cleaned[1:-1]
    return cleaned == ref.metadata["full_sequence"]


@rule("dyck_language_errors")
def dyck_first_error(answer: str, ref: Reference) -> bool:
    """``-1`` for a valid sequence, else the position of its first error; an answer mentioning "valid",
    "correct" or 合法 (in any case) reads as ``-1``."""
    given = "-1" if any(word in answer.lower() for word in ("合法", "valid", "correct")) else answer
    given = given.strip()
    correct = "-1" if ref.metadata["is_valid"] else str(ref.metadata["first_error_pos"])
    if correct == "-1":
        return given == "-1"
    value = _as_int(given)
    return value is not None and value == _as_int(correct)


_NO_ERRORS = ("无问题", "no", "无错误", "no error", "no errors", "no mistakes", "all correct")


@rule("dyck_language_reasoning_errors")
def dyck_reasoning_errors(answer: str, ref: Reference) -> bool:
    """The set of numbers in the answer (digits and commas kept) equals ``metadata.error_indices``; with no errors,
    an empty answer or a "no errors" phrase; "unclear" (or 不确定, 不知道) is always wrong."""
    if "不确定" in answer or "不知道" in answer or "unclear" in answer.lower():
        return False
    expected = set(ref.metadata["error_indices"])
    if not answer or not answer.strip() or answer.lower() in _NO_ERRORS:
        cleaned = ""
    else:
        cleaned = re.sub(r"[^0-9,]", "", answer.replace("，", ","))
    if not expected and (cleaned == "" or cleaned.lower() in _NO_ERRORS):
        return True
    try:
        given = {int(part) for part in cleaned.split(",") if part and part.strip().isdigit()}
    except ValueError:  # a number past Python's 4300-digit limit: the verifier reads the answer as no indices
        given = set()
    return given == expected


# --- lists and grids -----------------------------------------------------------------------------------------------

@rule("cipher")
def cipher_text(answer: str, ref: Reference) -> bool:
    """The text after the last ```` ```python ```` fence, up to the next fence, read as a Python literal, equals
    ``[[answer[2:-2]]]`` (the answer is written ``[[...]]``)."""
    code = answer.split("```python")[-1].split("```")[0].strip()
    value = _literal(code)
    return value == [[str(ref.answer)[2:-2]]]


@rule("time_sequence")
def time_sequence(answer: str, ref: Reference) -> bool:
    """The last ``[...]`` (DOTALL, to its first ``]``) read as JSON starts with the longest meeting time and the
    number of options."""
    matches = tx.lazy_matches(answer, "[", "]")
    if not matches:
        return False
    try:
        given = json.loads(matches[-1].strip().replace("，", ","))
        expected = ref.metadata["records"]["answers"]
        return given[0] == expected["answer_maxLen"] and given[1] == expected["answer_nums"]
    except (ValueError, TypeError, IndexError, KeyError, RecursionError):
        return False


# The verifier's row pattern is \[(?:\s*"[X1]"\s*,\s*)*\s*"[X1]"\s*\]; this one matches the same strings without
# two \s* side by side, which made the original quadratic in a run of spaces after a comma.
_KUKURASU_ROW = r'\[\s*"[X1]"(?:\s*,\s*"[X1]")*\s*\]'
_KUKURASU_GRID = re.compile(r"\[\s*" + _KUKURASU_ROW + r"\s*(?:,\s*" + _KUKURASU_ROW + r"\s*)*\]")


@rule("kukurasu")
def kukurasu(answer: str, ref: Reference) -> bool:
    """The first list of rows of ``"1"``/``"X"`` strings; a 1 in row i, column j adds j+1 to its row sum and i+1
    to its column sum, which must equal ``metadata.row_sums`` and ``col_sums`` on an ``n`` x ``m`` grid."""
    match = _KUKURASU_GRID.search(answer)
    if not match:
        return False
    try:
        grid = json.loads(match.group(0))
    except ValueError:
        return False
    n, m = ref.metadata["n"], ref.metadata["m"]
    if len(grid) != n or any(len(row) != m for row in grid):
        return False
    rows = [sum(j + 1 for j, cell in enumerate(row) if cell == "1") for row in grid]
    columns = [sum(i + 1 for i in range(n) if grid[i][j] == "1") for j in range(m)]
    return rows == list(ref.metadata["row_sums"]) and columns == list(ref.metadata["col_sums"])


def _last_grid_of_ints(answer: str) -> list[list[int]] | None:
    """Numbrix: the last ``[[<digit>...]]``-shaped span (DOTALL), quotes removed, as a list of lists of ints."""
    spans = _last_double_bracket_digits(answer)
    if spans is None:
        return None
    grid = _literal(spans.replace("'", "").replace('"', ""))
    if not isinstance(grid, list) or not all(isinstance(row, list) for row in grid):
        return None
    if not all(isinstance(cell, int) for row in grid for cell in row):
        return None
    return grid


_GRID_START = re.compile(r"\[\s*\[\s*\d")
_GRID_END = re.compile(r"\]\s*\]")


def _last_double_bracket_digits(answer: str) -> str | None:
    """The last non-overlapping match of ``\\[\\s*\\[\\s*\\d+.*?\\]\\s*\\]`` (DOTALL), found left to right."""
    found, position = None, 0
    while True:
        start = _GRID_START.search(answer, position)
        if start is None:
            return found
        digits_end = start.end()
        while digits_end < len(answer) and answer[digits_end].isdigit():
            digits_end += 1
        end = _GRID_END.search(answer, digits_end)
        if end is None:
            return found
        found = answer[start.start():end.end()]
        position = end.end()


@rule("numbrix")
def numbrix(answer: str, ref: Reference) -> bool:
    """An n x n grid holding 1..n² once each, agreeing with every given cell, where k and k+1 are orthogonal
    neighbours for every k."""
    grid = _last_grid_of_ints(answer)
    original = ref.metadata["grid"]
    n = len(original)
    if not grid or len(grid) != n or any(len(row) != n for row in grid):
        return False
    if sorted(cell for row in grid for cell in row) != list(range(1, n * n + 1)):
        return False
    if any(original[i][j] != "X" and grid[i][j] != original[i][j] for i in range(n) for j in range(n)):
        return False
    where = {grid[i][j]: (i, j) for i in range(n) for j in range(n)}
    return all(abs(where[k][0] - where[k + 1][0]) + abs(where[k][1] - where[k + 1][1]) == 1 for k in range(1, n * n))


_SUDOKU_TUPLES = re.compile(r"\(\s*\(\s*\d+\s*,")


def _sudoku_text(answer: str) -> str:
    blocks = tx.fenced_blocks(answer)
    if blocks:
        return blocks[-1]
    # the last non-overlapping "((<digits>, ... ))" span, DOTALL
    found, position = "", 0
    while True:
        start = _SUDOKU_TUPLES.search(answer, position)
        if start is None:
            return found
        end = re.compile(r"\)\s*\)").search(answer, start.end())
        if end is None:
            return found
        found = answer[start.start():end.end()].strip()
        position = end.end()


@rule("sudoku")
def sudoku(answer: str, ref: Reference) -> bool:
    """The last ```` ```python ```` block (else the last ``((...))`` span) is a 9 x 9 literal of ints 1-9 whose
    rows, columns and boxes each hold 1-9 and which keeps every given of ``metadata.original_sudoku``."""
    source = _sudoku_text(answer)
    if not source:
        return False
    grid = _literal(source)
    if not isinstance(grid, (list, tuple)) or len(grid) != 9:
        return False
    for row in grid:
        if not isinstance(row, (list, tuple)) or len(row) != 9:
            return False
        if not all(isinstance(v, int) and 1 <= v <= 9 for v in row):
            return False
    original = ref.metadata.get("original_sudoku") or []
    if not original:
        return False
    digits = set(range(1, 10))
    units = [list(row) for row in grid] + [[grid[r][c] for r in range(9)] for c in range(9)]
    units += [[grid[r][c] for r in range(br, br + 3) for c in range(bc, bc + 3)]
              for br in (0, 3, 6) for bc in (0, 3, 6)]
    if any(set(unit) != digits for unit in units):
        return False
    try:
        return all(grid[i][j] == int(original[i][j]) for i in range(9) for j in range(9)
                   if original[i][j] not in (0, "X", "x"))
    except (TypeError, ValueError):
        return False


def _skyline(heights: list[int]) -> int:
    seen, tallest = 0, 0
    for height in heights:
        if height > tallest:
            seen, tallest = seen + 1, height
    return seen


@rule("skyscraper_puzzle")
def skyscraper(answer: str, ref: Reference) -> bool:
    """The first ```` ```python ```` block whose fences sit on their own lines, read as a literal (once more with
    ``#`` comments removed), is an n x n Latin square of 1..n seen from each side as the clues say."""
    meta = ref.metadata
    n = meta["n"]
    block = tx.first_fenced_block_on_lines(answer)
    if block is None:
        return False
    grid = None
    for source in (block.strip(), re.sub(r"#.*$", "", block.strip(), flags=re.MULTILINE).strip()):
        value = _literal(source)
        if isinstance(value, list) and len(value) == n and all(isinstance(r, list) and len(r) == n for r in value):
            grid = value
            break
        if value is not _INVALID:
            return False  # it parsed, so the verifier would not have retried without comments
    if grid is None:
        return False
    if not all(isinstance(v, int) and 1 <= v <= n for row in grid for v in row):
        return False
    columns = [[grid[i][j] for i in range(n)] for j in range(n)]
    if any(len(set(row)) != n for row in grid) or any(len(set(col)) != n for col in columns):
        return False
    return (
        [_skyline(col) for col in columns] == list(meta["top"])
        and [_skyline(col[::-1]) for col in columns] == list(meta["bottom"])
        and [_skyline(row) for row in grid] == list(meta["left"])
        and [_skyline(row[::-1]) for row in grid] == list(meta["right"])
    )


_DICT_LITERAL = re.compile(r"\{[^{}]*\}")
_ASSIGNED_DICT = re.compile(r"\s*=\s*(\{[^{}]*\})")
_WORD_RUN = re.compile(r"\w+")


def _star_dict(block: str) -> dict | None:
    """The verifier's reading of the block: the first brace-free ``{...}`` literal, else the first one assigned
    to a name, as a dict of 0-based coordinate lists; ``None`` where it gives up."""
    first = _DICT_LITERAL.search(block)
    candidates = [first.group(0)] if first else []
    for run in _WORD_RUN.finditer(block):  # "(\w+)\s*=\s*(\{[^{}]*\})", scanned from each word once
        assigned = _ASSIGNED_DICT.match(block, run.end())
        if assigned:
            candidates.append(assigned.group(1))
            break
    for source in candidates:
        try:
            value = ast.literal_eval(source)
        except (ValueError, SyntaxError):
            continue
        except Exception:
            return None
        if isinstance(value, dict):
            try:
                return {region: [(row - 1, col - 1) for row, col in coords] for region, coords in value.items()}
            except ValueError:  # a pair that does not unpack: the verifier tries the next candidate
                continue
            except Exception:
                return None
    return None


@rule("star_placement_puzzle")
def star_placement(answer: str, ref: Reference) -> bool:
    """The first ``{...}`` dict literal of the first ```` ```python ```` block maps regions to 1-based (row,
    column) stars; every row, column and region then holds ``k`` stars and no two stars touch."""
    block = tx.first_fenced_block_on_lines(answer)
    stars = _star_dict(block) if block is not None else None
    if not stars:
        return False
    n, k, regions = ref.metadata["n"], ref.metadata["k"], ref.metadata["region_grid"]
    board = [[0] * n for _ in range(n)]
    for coords in stars.values():
        for row, col in coords:
            if row < 0 or row >= n or col < 0 or col >= n:
                return False
            board[row][col] = 1
    if any(sum(r) != k for r in board) or any(sum(board[i][j] for i in range(n)) != k for j in range(n)):
        return False
    count: dict[Any, int] = {}
    for i in range(n):
        for j in range(n):
            count[regions[i][j]] = count.get(regions[i][j], 0) + board[i][j]
    if any(stars_in != k for stars_in in count.values()):
        return False
    return not any(
        board[i][j] and board[i + di][j + dj]
        for i in range(n) for j in range(n) for di in (-1, 0, 1) for dj in (-1, 0, 1)
        if (di or dj) and 0 <= i + di < n and 0 <= j + dj < n
    )


_PAIR_LISTS = (
    re.compile(r"\[\s*\(\s*(\d+)\s*,\s*(\d+)\s*\)(?:\s*,\s*\(\s*\d+\s*,\s*\d+\s*\))*\s*\]"),
    re.compile(r"\[\s*\[\s*(\d+)\s*,\s*(\d+)\s*\](?:\s*,\s*\[\s*\d+\s*,\s*\d+\s*\])*\s*\]"),
    re.compile(r"\(\s*(\d+)\s*,\s*(\d+)\s*\)(?:\s*,\s*\(\s*\d+\s*,\s*\d+\s*\))*"),
)
_PAIR = re.compile(r"[(\[]\s*(\d+)\s*,\s*(\d+)\s*[)\]]")


def _mine_coordinates(answer: str) -> list[tuple[int, int]]:
    for pattern in _PAIR_LISTS:
        coords = []
        for match in pattern.finditer(answer):
            try:  # the verifier skips the rest of a list at a number int() refuses (past 4,300 digits)
                for a, b in _PAIR.findall(match.group(0)):
                    coords.append((int(a), int(b)))
            except ValueError:
                continue
        if coords:
            return coords
    # The verifier's re.findall(r"(\d+)[^\d]+(\d+)") pairs consecutive digit runs; on one long run it retried
    # from every digit (100 s on 65,536 digits). Pairing the runs is the same, in linear time.
    runs = re.findall(r"\d+", answer)
    return [(int(a), int(b)) for a, b in zip(runs[0::2], runs[1::2])]


@rule("minesweeper")
def minesweeper(answer: str, ref: Reference) -> bool:
    """The set of (row, column) pairs of the first list form found (``[(r, c), ...]``, ``[[r, c], ...]``,
    ``(r, c), ...``, else any two numbers) equals ``metadata.current_mines``."""
    return set(_mine_coordinates(answer)) == {tuple(mine) for mine in ref.metadata["current_mines"]}


@rule("survo")
def survo(answer: str, ref: Reference) -> bool:
    """The matrix (last ```` ```python ```` block, else last fenced block, else last ``[[...]]``) keeps the given
    cells, fills the blanks with exactly the candidate numbers, and each of the first n-1 rows and columns sums to
    its last entry."""
    source = next(iter(tx.fenced_blocks(answer)[-1:]), None)
    if source is None:
        source = next(iter(tx.fenced_blocks(answer, "")[-1:]), None)
    if source is None:
        spans = tx.last_span(answer, tx.GRID_OPEN, tx.GRID_CLOSE)
        source = spans.strip() if spans else ""
    try:
        matrix = json.loads(source.replace("'", '"'))
    except (ValueError, RecursionError):
        return False
    original = ref.metadata["original_matrix"]
    n = ref.metadata["n"]
    numeric = (int, float)
    if not _is_matrix(matrix, len(original), len(original[0]) if original else 0, numeric):
        return False
    if any(original[i][j] != 0 and original[i][j] != matrix[i][j] for i in range(n) for j in range(n)):
        return False
    filled = sorted(matrix[i][j] for i in range(n) for j in range(n) if original[i][j] == 0)
    if filled != sorted(ref.metadata["candidate_numbers"]):
        return False
    rows_ok = all(sum(matrix[i][:n - 1]) == matrix[i][n - 1] for i in range(n - 1))
    return rows_ok and all(sum(matrix[i][j] for i in range(n - 1)) == matrix[n - 1][j] for j in range(n - 1))


def _is_matrix(value: Any, rows: int, columns: int, kinds: tuple[type, ...]) -> bool:
    return (isinstance(value, list) and len(value) == rows
            and all(isinstance(r, list) and len(r) == columns and all(isinstance(v, kinds) for v in r)
                    for r in value))


# --- equations -----------------------------------------------------------------------------------------------------

_CHAIN = re.compile(r"\d+(?:\s*[+\-*]\s*\d+)*")
_RESULT = re.compile(r"\s*=\s*-?\d+")


def _last_equation(answer: str) -> str | None:
    r"""The last of the non-overlapping matches of ``\d+(?:\s*[+\-*]\s*\d+)+\s*=\s*-?\d+``, left to right.

    A match is a maximal chain ``a op b op c ...`` followed by ``= result``; when the chain from one number has
    no ``=`` after it, neither has the chain from any later number of it, so the scan goes on after the chain
    (a regular-expression scan retries from every number and is quadratic in the chain's length)."""
    found, position = None, 0
    digits = re.compile(r"\d")
    while True:
        first = digits.search(answer, position)
        if first is None:
            return found
        chain = _CHAIN.match(answer, first.start())
        result = _RESULT.match(answer, chain.end())
        has_operator = chain.group(0).lstrip("0123456789") != ""
        if has_operator and result:
            found, position = answer[first.start():result.end()], result.end()
        else:
            position = chain.end()


@rule("cryptarithm")
def cryptarithm(answer: str, ref: Reference) -> bool:
    """The last equation ``a + b = c`` (``+ - *``) in the answer equals the answer's equation, spaces ignored."""
    equation = _last_equation(answer)
    return equation is not None and equation.strip().replace(" ", "") == str(ref.answer).replace(" ", "")


_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.Mod: operator.mod, ast.FloorDiv: operator.floordiv, ast.BitAnd: operator.and_,
           ast.BitOr: operator.or_, ast.BitXor: operator.xor}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg, ast.Invert: operator.invert}
_COMPARE = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
            ast.Gt: operator.gt, ast.GtE: operator.ge}
MAX_EXPRESSION_CHARS = 2000


def _number(node: ast.AST) -> Any:
    """Python's value of an expression of number literals, arithmetic, bit and comparison operators; ``**`` and
    shifts, names and calls are refused (``ValueError``): they are never run on model output."""
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_number(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        return _BINARY[type(node.op)](_number(node.left), _number(node.right))
    if isinstance(node, ast.Compare) and all(type(op) in _COMPARE for op in node.ops):
        values = [_number(node.left), *(_number(c) for c in node.comparators)]
        return all(_COMPARE[type(op)](a, b) for op, a, b in zip(node.ops, values, values[1:]))
    raise ValueError(f"not evaluated: {type(node).__name__}")


def _holds(expression: str) -> bool:
    """``bool(eval(expression))`` for the expressions :func:`_number` evaluates; ``False`` for the rest and for
    what raises (division by zero)."""
    if len(expression) > MAX_EXPRESSION_CHARS:
        return False
    try:
        return bool(_number(ast.parse(expression, mode="eval").body))
    except (SyntaxError, ValueError, ArithmeticError, TypeError, RecursionError, MemoryError):
        return False


@rule("math_path")
def math_path(answer: str, ref: Reference) -> bool:
    """The last ``[[...]]`` on one line keeps the digits of ``metadata.query_expr`` (``?`` filled by any digit)
    and its operators in order, and is a true equation."""
    matches = tx.lazy_matches_in_line(answer, "[[", "]]")
    if not matches:
        return False
    given = matches[-1][2:-2].strip().replace(" ", "").strip()
    query = str(ref.metadata["query_expr"]).replace(" ", "").strip()
    query_digits = [c for c in query if "0" <= c <= "9" or c == "?"]
    given_digits = [c for c in given if "0" <= c <= "9"]
    if len(query_digits) != len(given_digits):
        return False
    if any(q != "?" and q != g for q, g in zip(query_digits, given_digits)):
        return False
    operators = lambda s: [c for c in s if c in "+-*/%"]  # noqa: E731
    if operators(query) != operators(given):
        return False
    return _holds(given.replace("=", "=="))


# --- truth values and structured answers ---------------------------------------------------------------------------

_TRUTH = re.compile(r"(yes|true|truth|是|真话|真)|(no|false|lie|否|假话|假|谎)")
# "The answer is: **...**" closing the text, tried in the verifier's order: Chinese phrase, then English
_ANSWER_BOLD_AT_END = (re.compile(r"答案是[：:]\s*\*\*([^*]+)\*\*[.。]*$", re.DOTALL),
                       re.compile(r"[Tt]he answer is[：:=]\s*\*\*([^*]+)\*\*[.。]*$", re.DOTALL))
_ANSWER_IN_LINE = re.compile(r"(?:答案是|[Tt]he answer is)[：:=]?\s*(.*?)(?:[.。]|$)")
_YES_NO_RUN = re.compile(r"(?:\b(?:yes|no|是|否)\b[,，\s]*)+")


def _truths(text: str) -> list[bool]:
    return [bool(yes) for yes, _ in _TRUTH.findall(text)]


def _web_of_lies_answer(answer: str) -> str:
    for pattern in _ANSWER_BOLD_AT_END:
        found = pattern.findall(answer)
        if found:
            return found[-1].strip()
    line = tx.last_line(answer)
    bold = re.search(r"\*\*([^*]+)\*\*", line)
    if bold:
        return bold.group(1).strip()
    phrase = _ANSWER_IN_LINE.search(line)
    if phrase:
        return phrase.group(1).strip()
    runs = _YES_NO_RUN.findall(answer.lower())
    return runs[-1].strip() if runs else ""


@rule("web_of_lies")
def web_of_lies(answer: str, ref: Reference) -> bool:
    """The sequence of yes/no words (true/truth/是/真 ... against no/false/lie/否/假/谎 ...) in the answer phrase
    equals the answer's."""
    return _truths(_web_of_lies_answer(answer).lower()) == _truths(str(ref.answer).lower())


def _same_json(expected: Any, given: Any) -> bool:
    """Type-strict deep equality (``1`` is not ``1.0``, ``True`` is not ``1``)."""
    if type(expected) is not type(given):
        return False
    if isinstance(expected, dict):
        return expected.keys() == given.keys() and all(_same_json(expected[k], given[k]) for k in expected)
    if isinstance(expected, list):
        return len(expected) == len(given) and all(_same_json(a, b) for a, b in zip(expected, given))
    return expected == given


@rule("zebra_puzzle")
def zebra_puzzle(answer: str, ref: Reference) -> bool:
    """The text after the last ```` ```json ```` fence (to the next fence): a JSON (or Python literal) object
    deep-equal to the answer's, types included; an answer that is not a JSON object is compared as text."""
    given = answer.split("```json")[-1].split("```")[0].strip()
    if not isinstance(ref.answer, str):
        return False
    try:
        expected = json.loads(ref.answer)
    except json.JSONDecodeError:
        return ref.answer == given
    except RecursionError:
        return False
    if not isinstance(expected, dict):
        return ref.answer == given
    try:
        value = json.loads(given)
    except json.JSONDecodeError:
        value = _literal(given)
    except RecursionError:
        return False
    return isinstance(value, dict) and _same_json(expected, value)
