"""Perfect mazes (exactly one path between any two cells) by randomized depth-first search, and their tokens.

A maze of ``rows x cols`` cells lives on a ``(2*rows+1, 2*cols+1)`` wall grid: cell ``(i, j)`` is grid square
``(2i+1, 2j+1)``, and the square between two adjacent cells is open iff they are connected. The recursive
backtracker carves a spanning tree of the cell graph, so the maze has ``rows*cols - 1`` passages and the path
between start and goal is unique. Tokens: the prompt is ``<bos>``, the interior ``(2*rows-1) x (2*cols-1)``
of the grid row by row (``#`` wall, ``.`` open, ``S`` start cell, ``G`` goal cell; the border is always wall
and is left out), ``<sep>``; the response is moves ``U D L R`` (one cell each) and ``<eos>``.
"""

from __future__ import annotations

import hashlib
from collections import deque
from dataclasses import dataclass

import numpy as np

VOCAB = ("<pad>", "<bos>", "<sep>", "<eos>", "#", ".", "S", "G", "U", "D", "L", "R")
TOKEN = {name: i for i, name in enumerate(VOCAB)}
PAD, BOS, SEP, EOS = TOKEN["<pad>"], TOKEN["<bos>"], TOKEN["<sep>"], TOKEN["<eos>"]
MOVES = {"U": (-1, 0), "D": (1, 0), "L": (0, -1), "R": (0, 1)}


@dataclass(frozen=True)
class Maze:
    """grid: (2*rows+1, 2*cols+1) bool, True where open; start, goal: (row, col) cells."""

    grid: np.ndarray
    start: tuple[int, int]
    goal: tuple[int, int]

    @property
    def rows(self) -> int:
        return (self.grid.shape[0] - 1) // 2

    @property
    def cols(self) -> int:
        return (self.grid.shape[1] - 1) // 2


def generate(rng: np.random.Generator, rows: int, cols: int) -> Maze:
    """One perfect maze by the iterative recursive backtracker, with distinct random start and goal cells."""
    if rows < 1 or cols < 1 or rows * cols < 2:
        raise ValueError(f"a maze needs at least 2 cells, got rows={rows}, cols={cols}")
    grid = np.zeros((2 * rows + 1, 2 * cols + 1), dtype=bool)
    seen = np.zeros((rows, cols), dtype=bool)
    first = (int(rng.integers(rows)), int(rng.integers(cols)))
    stack, seen[first] = [first], True
    grid[2 * first[0] + 1, 2 * first[1] + 1] = True
    while stack:
        i, j = stack[-1]
        options = [(i + di, j + dj) for di, dj in MOVES.values()
                   if 0 <= i + di < rows and 0 <= j + dj < cols and not seen[i + di, j + dj]]
        if not options:
            stack.pop()
            continue
        ni, nj = options[int(rng.integers(len(options)))]
        seen[ni, nj] = True
        grid[i + ni + 1, j + nj + 1] = True  # the wall square between the two cells
        grid[2 * ni + 1, 2 * nj + 1] = True
        stack.append((ni, nj))
    cells = rng.choice(rows * cols, size=2, replace=False)
    start, goal = (divmod(int(c), cols) for c in cells)
    return Maze(grid, start, goal)


def neighbours(maze: Maze, cell: tuple[int, int]):
    """(move, next cell) for every open passage out of ``cell``."""
    i, j = cell
    for move, (di, dj) in MOVES.items():
        if maze.grid[2 * i + 1 + di, 2 * j + 1 + dj]:
            yield move, (i + di, j + dj)


def solve(maze: Maze) -> list[str]:
    """The moves of the shortest (in a perfect maze, the only) path from start to goal, by BFS."""
    parent = {maze.start: None}
    queue = deque([maze.start])
    while queue:
        cell = queue.popleft()
        if cell == maze.goal:
            break
        for move, nxt in neighbours(maze, cell):
            if nxt not in parent:
                parent[nxt] = (cell, move)
                queue.append(nxt)
    if maze.goal not in parent:
        raise ValueError("goal unreachable from start")
    moves, cell = [], maze.goal
    while parent[cell] is not None:
        cell, move = parent[cell]
        moves.append(move)
    return moves[::-1]


def passages(maze: Maze) -> int:
    """Number of open passages between adjacent cells (a spanning tree has rows*cols - 1)."""
    g = maze.grid
    return int(g[1:-1:2, 2:-1:2].sum() + g[2:-1:2, 1:-1:2].sum())


def prompt_tokens(maze: Maze) -> list[int]:
    """``<bos>`` + interior grid tokens row by row + ``<sep>``; length 2 + (2*rows-1)*(2*cols-1)."""
    inner = np.where(maze.grid, TOKEN["."], TOKEN["#"])
    for cell, name in ((maze.start, "S"), (maze.goal, "G")):
        inner[2 * cell[0] + 1, 2 * cell[1] + 1] = TOKEN[name]
    return [BOS, *inner[1:-1, 1:-1].reshape(-1).tolist(), SEP]


def target_tokens(maze: Maze) -> list[int]:
    """The unique path's move tokens followed by ``<eos>``."""
    return [TOKEN[m] for m in solve(maze)] + [EOS]


def decode_prompt(tokens, rows: int, cols: int) -> Maze:
    """Inverse of ``prompt_tokens``."""
    tokens = list(tokens)
    size = (2 * rows - 1) * (2 * cols - 1)
    if len(tokens) != size + 2 or tokens[0] != BOS or tokens[-1] != SEP:
        raise ValueError(f"not a {rows}x{cols} maze prompt: {len(tokens)} tokens")
    inner = np.asarray(tokens[1:-1]).reshape(2 * rows - 1, 2 * cols - 1)
    grid = np.zeros((2 * rows + 1, 2 * cols + 1), dtype=bool)
    grid[1:-1, 1:-1] = inner != TOKEN["#"]
    cell = {name: tuple(int(x) // 2 for x in np.argwhere(inner == TOKEN[name])[0]) for name in ("S", "G")}
    return Maze(grid, cell["S"], cell["G"])


def maze_hash(maze: Maze) -> str:
    """Identity of a maze as a task: the hash of its prompt tokens."""
    return hashlib.sha1(np.asarray(prompt_tokens(maze), dtype=np.uint8).tobytes()).hexdigest()


def maze_set(seed: int, count: int, rows: int, cols: int, exclude: frozenset = frozenset()) -> list[Maze]:
    """``count`` distinct mazes from ``seed``, none of whose hashes is in ``exclude``."""
    rng = np.random.default_rng(seed)
    out, seen = [], set(exclude)
    for _ in range(count * 100):
        maze = generate(rng, rows, cols)
        key = maze_hash(maze)
        if key not in seen:
            seen.add(key)
            out.append(maze)
            if len(out) == count:
                return out
    raise ValueError(f"could not draw {count} distinct {rows}x{cols} mazes")


def encode(mazes: list[Maze], max_response: int) -> tuple[np.ndarray, np.ndarray]:
    """prompts (M, P) int64 and PAD-padded targets (M, max_response) int64."""
    prompts = np.asarray([prompt_tokens(m) for m in mazes], dtype=np.int64)
    targets = np.full((len(mazes), max_response), PAD, dtype=np.int64)
    for row, maze in enumerate(mazes):
        t = target_tokens(maze)
        targets[row, : len(t)] = t
    return prompts, targets


class TrainingStream:
    """Endless fresh training mazes from ``seed``, never one whose hash is in ``exclude`` (held-out, dev)."""

    def __init__(self, seed: int, rows: int, cols: int, exclude: frozenset):
        self.rng, self.rows, self.cols, self.exclude = np.random.default_rng(seed), rows, cols, exclude

    def draw(self, count: int) -> list[Maze]:
        out = []
        while len(out) < count:
            maze = generate(self.rng, self.rows, self.cols)
            if maze_hash(maze) not in self.exclude:
                out.append(maze)
        return out
