"""The grid puzzles among the SynLogic tasks: one rule per task, as in :mod:`verl_focal.rewards.synlogic.rules`.

Each follows its verifier in MiniMax-AI/SynLogic (``games/tasks/<task>/scripts/<task>_verifier.py``): the same
extraction, the same checks, in linear time, with Python literals read by
:func:`verl_focal.rewards.synlogic.literals.python_value` where the verifier calls ``eval``. A rule returns
``False`` wherever the verifier's own code would raise (the harness scores any exception as wrong).
"""

from __future__ import annotations

import ast
import json
import re
from collections import Counter
from typing import Any

from verl_focal.rewards.synlogic import text as tx
from verl_focal.rewards.synlogic.literals import EvalFailed, python_value
from verl_focal.rewards.synlogic.rules import Reference, rule

# --- arrow_maze ------------------------------------------------------------------------------------------------

ARROWS = {"↑": (-1, 0), "↓": (1, 0), "←": (0, -1), "→": (0, 1), "↖": (-1, -1), "↗": (-1, 1), "↘": (1, 1),
          "↙": (1, -1)}
# What the verifier's eval could resolve besides builtins: its module's globals, and its function's variables.
_ARROW_MAZE_GLOBALS = frozenset({"json", "re", "List", "Dict", "Tuple", "Verifier", "Data", "ArrowMazeVerifier"})
_ARROW_MAZE_LOCALS = frozenset({"self", "test_solution", "code_block_patterns", "pattern", "matches", "code_block",
                                "grid", "list_pattern", "e"})


def _arrow_grid(source: str) -> list | None:
    """The verifier's reading of one candidate: ``eval``, a list of lists, passed on as JSON."""
    try:
        value = python_value(source, _ARROW_MAZE_GLOBALS, _ARROW_MAZE_LOCALS)
    except EvalFailed:
        return None
    if not isinstance(value, list) or not all(isinstance(row, list) for row in value):
        return None
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError, RecursionError):  # not JSON (a set, bytes, a builtin): the next pattern
        return None


def arrow_maze_answer(answer: str) -> list | None:
    """The last ```` ```python ```` block holding ``[...]``, else the last such bare fenced block, else the last
    such inline one, each read only if it is a list of lists; else the last ``[[...]]`` span."""
    for blocks in (tx.fenced_with_brackets(answer, "```python", True), tx.fenced_with_brackets(answer, "```", True),
                   tx.fenced_with_brackets(answer, "```", False)):
        if blocks:
            grid = _arrow_grid(blocks[-1].strip())
            if grid is not None:
                return grid
    span = tx.last_span(answer, tx.GRID_OPEN, tx.GRID_CLOSE)
    return None if span is None else _arrow_grid(span)


def _rays(grid: list, i: int, j: int) -> list[tuple[int, int]]:
    """The cells of the arrow rays leaving the number at (i, j): in each direction, the run of that direction's
    arrow (the verifier bounds every row by the first row's width)."""
    n, m = len(grid), len(grid[0])
    cells = []
    for arrow, (di, dj) in ARROWS.items():
        r, c = i + di, j + dj
        while 0 <= r < n and 0 <= c < m and grid[r][c] == arrow:
            cells.append((r, c))
            r, c = r + di, c + dj
    return cells


@rule("arrow_maze")
def arrow_maze(answer: str, ref: Reference) -> bool:
    """The grid keeps ``metadata.maze``'s numbers and arrows, fills every ``X`` with one of the eight arrows (or a
    number), every arrow lies on a ray of a number, and each number counts the arrows of its rays."""
    grid, maze = arrow_maze_answer(answer), ref.metadata["maze"]
    if grid is None or len(grid) != len(maze) or any(len(grid[i]) != len(row) for i, row in enumerate(maze)):
        return False
    for i, row in enumerate(maze):
        for j, cell in enumerate(row):
            given = grid[i][j]
            if (cell == "X" and given == "X") or (cell != "X" and given != cell):
                return False
    if not all(cell.isdigit() or cell == "X" or cell in ARROWS for row in grid for cell in row):
        return False
    numbers = [(i, j) for i in range(len(grid)) for j in range(len(grid[0])) if grid[i][j].isdigit()]
    rays = {where: _rays(grid, *where) for where in numbers}
    covered = {cell for cells in rays.values() for cell in cells}
    if any(grid[i][j] in ARROWS and (i, j) not in covered for i in range(len(grid)) for j in range(len(grid[0]))):
        return False
    return all(len(rays[(i, j)]) == int(grid[i][j]) for i, j in numbers)


# --- calcudoko -------------------------------------------------------------------------------------------------

_TUPLES_START, _TUPLES_END = re.compile(r"\(\s*\(\s*\d+\s*,"), re.compile(r"\)\s*\)")
_ROW_PHRASES = tuple(re.compile(p) for p in (
    r"第\s*\d+\s*行\s*[:：]\s*([\d\s]+)", r"行\s*\d+\s*[:：]\s*([\d\s]+)", r"Row\s*\d+\s*[:：]\s*([\d\s]+)",
    r"- 第\d+行[:：]?\s*([\d\s]+)", r"- 行\d+[:：]?\s*([\d\s]+)", r"- Row\d+[:：]?\s*([\d\s]+)"))


def _fit(numbers: list[int], size: int) -> list[int]:
    """The verifier's repair of a row: padded with 1s, or cut, to ``size``."""
    return numbers[:size] + [1] * (size - len(numbers))


def _integers(text: str) -> list[int]:
    return [int(token) for token in text.split()]


def _calcudoko_text(answer: str) -> str:
    """The verifier's candidate text: the last ```` ```python ```` block, else the last ``((d, ...))`` span,
    else the whole answer; then the first ``[[...]]`` on one line of the answer overrides it."""
    bracketed = tx.first_in_line(answer, "[[", "]]")
    if bracketed is not None:
        return bracketed[2:-2]
    blocks = tx.fenced_blocks(answer)
    if blocks:
        return blocks[-1]
    tuples = tx.last_span(answer, _TUPLES_START, _TUPLES_END)
    return answer if tuples is None else tuples.strip()


def _calcudoko_rows(answer: str, size: int) -> list[list[int]]:
    """The verifier's grid reading, before its fallback: digits, brackets, commas and spaces kept, rows split at
    commas, short rows replaced by "Row k: ..." phrases when there are exactly ``size`` of them, rows padded."""
    kept = "".join(c for c in _calcudoko_text(answer) if c.isdigit() or c in "[]," or c.isspace()).strip("[]")
    grid: list[list[int]] = []
    phrases = None  # the same for every short row: found once (the verifier searches again for each row)
    for row in (part.strip() for part in kept.split(",")):
        numbers = _integers(row)
        if len(numbers) < size:
            if phrases is None:
                phrases = [found for pattern in _ROW_PHRASES for found in pattern.findall(answer)]
            if len(phrases) == size:
                grid = [_fit(_integers(phrase), size) for phrase in phrases]
                break
        grid.append(_fit(numbers, size))
    return (grid + [[1] * size] * size)[:size]


def calcudoko_grid(answer: str, size: int) -> list[list[int]]:
    """The grid the verifier checks; where its reading raises (a digit ``int`` rejects, such as ``²``), the first
    ``[[...]]`` split at commas and spaces, else its default grid (every row ``1..size``, never a solution)."""
    try:
        return _calcudoko_rows(answer, size)
    except ValueError:
        pass
    bracketed = tx.first_in_line(answer, "[[", "]]")
    try:
        if bracketed is not None:
            rows = [_fit(_integers(row), size) for row in bracketed[2:-2].split(",")]
            return (rows + [[1] * size] * size)[:size]
    except ValueError:
        pass
    return [list(range(1, size + 1)) for _ in range(size)]


def _int64(value: int) -> int:
    """numpy's int64 product, which wraps around (the verifier multiplies with ``np.prod``)."""
    return (value + 2**63) % 2**64 - 2**63


def _cage_holds(numbers: list[int], operator: Any, target: Any) -> bool:
    if operator == "+":
        return sum(numbers) == target
    if operator == "*":
        product = 1
        for number in numbers:
            product = _int64(product * number)
        return product == target
    if len(numbers) != 2:
        return False
    a, b = numbers
    if operator == "-":
        return a - b == target or b - a == target
    return a != 0 and b != 0 and (abs(a / b - target) < 0.001 or abs(b / a - target) < 0.001)  # any other: ÷


_CELL = re.compile(r"\((\d+)\s*,\s*(\d+)\)")


@rule("calcudoko")
def calcudoko(answer: str, ref: Reference) -> bool:
    """Every row and column holds 1..n once; in every cage the numbers differ and give its target with its
    operator (``+``, ``*``, ``-`` and ÷ either way round for two cells)."""
    size = ref.metadata.get("grid_size", 4)
    grid = calcudoko_grid(answer, size)
    lines = grid + [list(column) for column in zip(*grid)]
    if any(len(set(line)) != size or not all(1 <= n <= size for n in line) for line in lines):
        return False
    r = c = None  # the verifier keeps the last parsed cell for a cell it cannot parse
    for region in ref.metadata.get("regions", []):
        numbers = []
        for cell in region["cells"]:
            found = _CELL.search(cell) if isinstance(cell, str) else None
            if found:
                r, c = int(found.group(1)), int(found.group(2))
            if r is None:
                return False
            r, c = r - 1, c - 1
            if not (0 <= r < size and 0 <= c < size):
                return False
            numbers.append(grid[r][c])
        if len(set(numbers)) != len(numbers) or not _cage_holds(numbers, region["operator"], region["target"]):
            return False
    return True


# --- campsite --------------------------------------------------------------------------------------------------


def campsite_answer(answer: str) -> Any:
    """The first ``[[...]]`` span read as a Python literal (as the verifier's ``ast.literal_eval``), else ``""``."""
    found = tx.spans(answer, tx.GRID_OPEN, tx.GRID_CLOSE)
    if not found:
        return ""
    try:
        return ast.literal_eval(found[0])
    except Exception:  # noqa: BLE001 - the verifier's bare except
        return ""


def _tents_have_their_trees(tents: list[tuple[int, int]], trees: set[tuple[int, int]]) -> bool:
    """A matching that gives each tent its own orthogonally adjacent tree (augmenting paths, as the verifier's)."""
    options = {t: [(t[0] + a, t[1] + b) for a, b in ((0, 1), (1, 0), (0, -1), (-1, 0)) if (t[0] + a, t[1] + b) in trees]
               for t in tents}
    owner: dict[tuple[int, int], tuple[int, int]] = {}

    def place(tent, visited) -> bool:
        for tree in options[tent]:
            if tree not in visited:
                visited.add(tree)
                if tree not in owner or place(owner[tree], visited):
                    owner[tree] = tent
                    return True
        return False

    return all(options[tent] and place(tent, set()) for tent in tents)


@rule("campsite")
def campsite(answer: str, ref: Reference) -> bool:
    """An n x m grid with the trees (``T``) where ``metadata.grid`` has them, ``C`` tents counted per row and
    column as the constraints say, no two tents touching (diagonals too), and each tent paired with its own
    orthogonally adjacent tree, as many tents as trees."""
    grid, meta = campsite_answer(answer), ref.metadata
    if not grid or len(grid) != meta["n"] or any(len(row) != meta["m"] for row in grid):
        return False
    original = meta["grid"]
    if any((original[i][j] == "T") != (grid[i][j] == "T")
           for i in range(len(original)) for j in range(len(original[0]))):
        return False
    n, m = len(grid), len(grid[0])
    if any(sum(1 for cell in grid[i] if cell == "C") != meta["row_constraints"][i] for i in range(n)):
        return False
    if any(sum(1 for i in range(n) if grid[i][j] == "C") != meta["col_constraints"][j] for j in range(m)):
        return False
    tents = [(i, j) for i in range(n) for j in range(m) if grid[i][j] == "C"]
    trees = {(i, j) for i in range(n) for j in range(m) if grid[i][j] == "T"}
    placed = set(tents)
    if any((i + a, j + b) in placed for i, j in tents for a in (-1, 0, 1) for b in (-1, 0, 1) if a or b):
        return False
    return len(tents) == len(trees) and _tents_have_their_trees(tents, trees)


# --- futoshiki -------------------------------------------------------------------------------------------------

_INT64_MAX = 2**63 - 1


def futoshiki_answer(answer: str) -> list[list[int]] | None:
    """The last ``[[...]]`` (no ``]`` inside) with rows at commas and numbers as digit runs, if square; else the
    whole answer when it is ``[[...]]``, rows at commas and numbers at spaces."""
    text = answer.strip()
    groups = tx.double_bracket_groups(text)
    try:
        if groups:
            grid = [[int(number) for number in re.findall(r"\d+", row)] for row in groups[-1].split(",")]
            if grid and all(len(row) == len(grid) for row in grid):
                return grid
        if text.startswith("[[") and text.endswith("]]"):
            grid = [_integers(row) for row in text[2:-2].split(",")]
            return grid if len({len(row) for row in grid}) == 1 else None  # numpy refuses a ragged grid
    except ValueError:
        return None
    return None


def futoshiki_givens(question: str, coords: list) -> list[int | None]:
    """The value the question's grid shows at each prefilled coordinate (the verifier reads the lines with an
    ``X`` after "Current puzzle:"), ``None`` where it shows none."""
    lines, reading = [], False
    for line in question.split("\n"):
        if "Current puzzle:" in line:
            reading = True
        elif reading and line.strip() and "X" in line:
            lines.append(line.strip())
        elif reading and lines and line.strip():
            reading = False
    values = []
    for row, col in coords:
        tokens = lines[row].split() if row < len(lines) else None
        if tokens is None or col >= len(tokens) or tokens[col] == "X":
            values.append(None)
            continue
        try:
            values.append(int(tokens[col]))
        except ValueError:
            values.append(None)
    return values


@rule("futoshiki")
def futoshiki(answer: str, ref: Reference) -> bool:
    """An n x n grid whose rows and columns each hold 1..n, keeping the numbers the question's grid shows at
    ``metadata.prefilled_coords``, and satisfying every ``>``/``<`` of ``metadata.constraints``."""
    grid, meta = futoshiki_answer(answer), ref.metadata
    size = meta["grid_size"]
    if grid is None or len(grid) != size or any(len(row) != size for row in grid):
        return False
    if any(value > _INT64_MAX for row in grid for value in row):  # numpy would not make it an int64 array
        return False
    wanted = set(range(1, size + 1))
    if any(set(row) != wanted for row in grid) or any(set(column) != wanted for column in zip(*grid)):
        return False
    coords = meta["prefilled_coords"]
    for (row, col), value in zip(coords, futoshiki_givens(ref.question, coords)):
        if value is not None and grid[row][col] != value:
            return False
    for (row1, col1), (row2, col2), sign in meta["constraints"]:
        first, second = grid[row1][col1], grid[row2][col2]
        if (sign == ">" and first <= second) or (sign == "<" and first >= second):
            return False
    return True


# --- norinori --------------------------------------------------------------------------------------------------

_DOMINO_LISTED = re.compile(r"\[\((\d+),\s*(\d+)\),\s*\((\d+),\s*(\d+)\)\]")
_DOMINO_PAIRED = re.compile(r"\(\s*(\d+)\s*,\s*(\d+)\s*\)\s*,\s*\(\s*(\d+)\s*,\s*(\d+)\s*\)")


def norinori_dominoes(answer: str) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Every ``[(r, c), (r, c)]`` in the answer (no space inside the parentheses), else every ``(r, c), (r, c)``;
    raises ``ValueError`` for a number ``int`` rejects, as the verifier fails there."""
    found = _DOMINO_LISTED.findall(answer) or _DOMINO_PAIRED.findall(answer)
    return [((int(a), int(b)), (int(c), int(d))) for a, b, c, d in found]


@rule("norinori")
def norinori(answer: str, ref: Reference) -> bool:
    """1 x 2 dominoes (1-based cells) inside the n x n grid, none overlapping or sharing an edge with another, every
    shaded ``X`` cell covered, and every region that a domino touches covered in exactly two cells.

    As in the verifier, a region no domino touches is not checked."""
    regions = ref.metadata["region_grid"]
    n = len(regions)
    dominoes = norinori_dominoes(answer)
    if any(abs(a[0] - b[0]) + abs(a[1] - b[1]) != 1 for a, b in dominoes):
        return False
    owner: dict[tuple[int, int], int] = {}
    for index, domino in enumerate(dominoes):
        for i, j in domino:
            if not (1 <= i <= n and 1 <= j <= n) or (i, j) in owner:
                return False
            owner[(i, j)] = index
    if any(owner.get((i + a, j + b), index) != index
           for (i, j), index in owner.items() for a, b in ((0, 1), (1, 0), (0, -1), (-1, 0))):
        return False
    counts = Counter(regions[i - 1][j - 1] for i, j in owner if regions[i - 1][j - 1] != "X")
    if any(count != 2 for count in counts.values()):
        return False
    return all((i + 1, j + 1) in owner for i in range(n) for j in range(n) if regions[i][j] == "X")


# --- number_wall -----------------------------------------------------------------------------------------------

_WALL_ITEM = r"""(?:"[XA]"|'[XA]'|[0-9]+|"[0-9]+"|'[0-9]+')"""
# The verifier's row is (?:\s*ITEM\s*,\s*)*\s*ITEM\s*: the same strings, without two \s* side by side (which
# made it quadratic in a run of spaces after a comma).
_WALL_ROW = r"\[\s*" + _WALL_ITEM + r"(?:\s*,\s*" + _WALL_ITEM + r")*\s*\]"
_WALL_GRID = re.compile(r"\[\s*" + _WALL_ROW + r"\s*(?:,\s*" + _WALL_ROW + r"\s*)*\]")


def number_wall_answer(answer: str) -> list | None:
    """The last grid of ``"X"``/``"A"``/numbers (quoted or not), read as JSON (else as a Python literal), quoted
    numbers made ``int``."""
    grids = _WALL_GRID.findall(answer)
    if not grids:
        return None
    source = grids[-1].replace("\n", "").replace("\r", "").strip()
    try:
        grid = json.loads(source)
    except json.JSONDecodeError:
        try:
            grid = ast.literal_eval(source)
        except Exception:  # noqa: BLE001 - the verifier gives up on any failure here
            return None
    return [[int(cell) if isinstance(cell, str) and cell.isdigit() else cell for cell in row] for row in grid]


def _islands(grid: list) -> list[list[tuple[int, int]]]:
    """The orthogonally connected groups of cells that are not wall (``A``)."""
    n, seen, groups = len(grid), set(), []
    for start in ((i, j) for i in range(n) for j in range(n)):
        if start in seen or grid[start[0]][start[1]] == "A":
            continue
        seen.add(start)
        group, todo = [], [start]
        while todo:
            r, c = todo.pop()
            group.append((r, c))
            for cell in ((r, c + 1), (r + 1, c), (r, c - 1), (r - 1, c)):
                if 0 <= cell[0] < n and 0 <= cell[1] < n and cell not in seen and grid[cell[0]][cell[1]] != "A":
                    seen.add(cell)
                    todo.append(cell)
        groups.append(group)
    return groups


def _numbered_islands(grid: list) -> dict[tuple[int, int], int] | None:
    """Each non-wall cell's island, if every island holds exactly one number and that number is its size."""
    island_of = {}
    for index, island in enumerate(_islands(grid)):
        numbers = [grid[r][c] for r, c in island if isinstance(grid[r][c], int)]
        if len(numbers) != 1 or len(island) != numbers[0]:
            return None
        island_of.update(dict.fromkeys(island, index))
    return island_of


def _touch_at_a_corner(grid: list, island_of: dict[tuple[int, int], int]) -> bool:
    """Two islands meet only diagonally somewhere: a 2 x 2 square with walls on one diagonal, islands on the
    other, and those two islands different."""
    for i in range(len(grid) - 1):
        for j in range(len(grid) - 1):
            square = grid[i][j], grid[i][j + 1], grid[i + 1][j], grid[i + 1][j + 1]
            if square[1] == "A" == square[2] and "A" not in (square[0], square[3]):
                if island_of[(i, j)] != island_of[(i + 1, j + 1)]:
                    return True
            if square[0] == "A" == square[3] and "A" not in (square[1], square[2]):
                if island_of[(i, j + 1)] != island_of[(i + 1, j)]:
                    return True
    return False


@rule("number_wall")
def number_wall(answer: str, ref: Reference) -> bool:
    """An n x n grid of numbers, ``X`` (island) and ``A`` (wall) keeping every number of ``metadata.grid``, with
    no 2 x 2 wall, each island holding exactly one number equal to its size, and no two islands touching only
    at a corner."""
    grid, meta = number_wall_answer(answer), ref.metadata
    n = meta["n"]
    if not grid or len(grid) != n or any(len(row) != n for row in grid):
        return False
    if not all(isinstance(cell, int) or cell in ("X", "A") for row in grid for cell in row):
        return False
    if any(isinstance(cell, int) and cell != grid[i][j]
           for i, row in enumerate(meta["grid"]) for j, cell in enumerate(row)):
        return False
    if any(grid[i][j] == grid[i][j + 1] == grid[i + 1][j] == grid[i + 1][j + 1] == "A"
           for i in range(n - 1) for j in range(n - 1)):
        return False
    island_of = _numbered_islands(grid)
    return island_of is not None and not _touch_at_a_corner(grid, island_of)


# --- wordscapes ------------------------------------------------------------------------------------------------

_WORDSCAPES_OPEN = re.compile(r"\[\s*\[")
_WORDSCAPES_CELL = re.compile(r"\"([^\"]*)\"|\'([^\']*)\'|([^,\s]+)")


def _wordscapes_grid_text(answer: str) -> str | None:
    """The group of the verifier's ``\\[\\s*\\[(?:\\s*\\[)?(.+?)(?:\\]\\s*)?\\]\\s*\\]`` (DOTALL), found with one
    search for its end: the content from after ``[[`` (or ``[[[``) up to the first ``]]`` at least one character
    later; a third ``[`` is skipped only where a ``]]`` follows it."""
    opening = _WORDSCAPES_OPEN.search(answer)
    if opening is None:
        return None
    third = re.compile(r"\s*\[").match(answer, opening.end())
    starts = ([third.end()] if third else []) + [opening.end()]
    for start in starts:
        end = tx.GRID_CLOSE.search(answer, start + 1)
        if end is not None:
            return answer[start:end.start()]
    return None


def wordscapes_answer(answer: str) -> list[list[str]] | None:
    """The verifier's rows: the grid text split at ``],[``, each row's cells quoted or bare (``0`` and empty
    cells as a space); ``None`` if a row has no cells."""
    if "<think>" in answer and "</think>" in answer:
        answer = answer[answer.rfind("</think>") + len("</think>"):]
    grid_text = _wordscapes_grid_text(answer)
    if grid_text is None:
        return None
    rows = []
    for row_text in re.split(r"\],\s*\[", grid_text):
        cells = [next((group for group in match if group), "")
                 for match in _WORDSCAPES_CELL.findall(row_text.strip().strip("[],"))]
        if cells:
            rows.append([" " if cell in ("0", "") else cell for cell in cells])
    return rows or None


def _holds_word(lines: list[str], word: str) -> bool:
    needle = word.lower()  # a word that is not text raises here, as in the verifier
    return any(needle in line for line in lines) or not word


@rule("wordscapes")
def wordscapes(answer: str, ref: Reference) -> bool:
    """The grid has ``metadata.grid``'s shape, letters where it has ``X`` and blanks where it has ``0``, and every
    across word appears in a row, every down word in a column (blanks removed, ignoring case)."""
    grid, meta = wordscapes_answer(answer), ref.metadata
    layout = meta["grid"]
    if grid is None or len(grid) != len(layout) or any(len(grid[i]) != len(row) for i, row in enumerate(layout)):
        return False
    for i, row in enumerate(layout):
        for j, cell in enumerate(row):
            if (cell == "0" and grid[i][j].strip()) or (cell == "X" and not grid[i][j].strip()):
                return False
    rows = ["".join(row).replace(" ", "").lower() for row in grid]
    columns = ["".join(row[j] for row in grid if j < len(row)).replace(" ", "").lower() for j in range(len(grid[0]))]
    return all(_holds_word(rows, word) for word in meta["across_words"]) and \
        all(_holds_word(columns, word) for word in meta["down_words"])
