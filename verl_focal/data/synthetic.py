"""Generated arithmetic and algebra problems with exact integer answers, for offline smoke runs and tests.

``generate_problems(n=..., seed=..., max_operand=9, kinds=("add",))`` gives single-digit additions whose answers
a tiny random model can learn; the defaults give a mixed set with two-digit operands.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Callable, Sequence

from verl_focal.data.verl_format import check_output, make_row, write_parquet

DATA_SOURCE = "synthetic"


def _add(rng: random.Random, m: int) -> tuple[str, int]:
    a, b = rng.randint(0, m), rng.randint(0, m)
    return f"What is {a} + {b}?", a + b


def _sub(rng: random.Random, m: int) -> tuple[str, int]:
    a, b = rng.randint(0, m), rng.randint(0, m)
    return f"What is {a} - {b}?", a - b


def _mul(rng: random.Random, m: int) -> tuple[str, int]:
    a, b = rng.randint(0, m), rng.randint(0, m)
    return f"What is {a} * {b}?", a * b


def _div(rng: random.Random, m: int) -> tuple[str, int]:
    quotient, divisor = rng.randint(0, m), rng.randint(1, max(1, m))
    return f"What is {quotient * divisor} / {divisor}?", quotient


def _linear(rng: random.Random, m: int) -> tuple[str, int]:
    # a*x + b = c with an integer root x; a != 0 so the equation has exactly one solution
    a, x, b = rng.randint(1, max(1, m)), rng.randint(-m, m), rng.randint(0, m)
    return f"Solve for x: {a}x + {b} = {a * x + b}.", x


def _square(rng: random.Random, m: int) -> tuple[str, int]:
    a = rng.randint(0, m)
    return f"What is {a}^2?", a * a


GENERATORS: dict[str, Callable[[random.Random, int], tuple[str, int]]] = {
    "add": _add,
    "sub": _sub,
    "mul": _mul,
    "div": _div,
    "linear": _linear,
    "square": _square,
}
DEFAULT_KINDS = tuple(GENERATORS)


def generate_problems(
    n: int, seed: int, max_operand: int = 99, kinds: Sequence[str] = DEFAULT_KINDS
) -> list[dict[str, str]]:
    """``n`` problems, each ``{"question", "answer", "kind"}`` with ``answer`` the exact integer as text.

    Operands are drawn from ``[0, max_operand]`` (the unknown of ``linear`` from ``[-max_operand, max_operand]``);
    kinds cycle in the given order so every kind is equally represented. The same arguments give the same list.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if max_operand < 1:
        raise ValueError(f"max_operand must be >= 1, got {max_operand}")
    kinds = tuple(kinds)
    unknown = [k for k in kinds if k not in GENERATORS]
    if not kinds or unknown:
        raise ValueError(f"unknown problem kinds {unknown or '(none given)'}; choose from {', '.join(GENERATORS)}")
    rng = random.Random(seed)
    problems = []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        question, answer = GENERATORS[kind](rng, max_operand)
        problems.append({"question": question, "answer": str(answer), "kind": kind})
    return problems


def problems_to_rows(problems: list[dict[str, str]], split: str = "train") -> list[dict]:
    """verl rows (``data_source="synthetic"``) for problems from :func:`generate_problems`."""
    return [
        make_row(DATA_SOURCE, p["question"], p["answer"], split, i, f"{p.get('kind', 'synthetic')}-{i}")
        for i, p in enumerate(problems)
    ]


def write_synthetic(
    output: str | Path,
    n: int,
    seed: int,
    max_operand: int = 99,
    kinds: Sequence[str] = DEFAULT_KINDS,
    split: str = "train",
) -> Path:
    """Generate and write a synthetic set in verl's parquet format; returns the path written."""
    check_output(output)
    return write_parquet(problems_to_rows(generate_problems(n, seed, max_operand, kinds), split), output)
