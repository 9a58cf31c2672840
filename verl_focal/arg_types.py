"""argparse ``type=`` values of the command-line tools: numbers with their allowed range, checked at parse time.

A value out of range stops the tool before any work with argparse's usage line, ``argument --flag: ...`` and exit
code 2. ``nan`` and ``inf``, which ``float()`` accepts, are refused by every real-valued type.
"""

from __future__ import annotations

import argparse
import math
from typing import Callable


def _bounds(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f"{'<' if high_open else '<='} {high:g}"
    return ""


def _in_range(value: float, low, high, low_open: bool, high_open: bool) -> bool:
    if low is not None and (value <= low if low_open else value < low):
        return False
    return high is None or not (value >= high if high_open else value > high)


def integer(low: int | None = None, high: int | None = None) -> Callable[[str], int]:
    """An integer in ``[low, high]`` (either bound may be None)."""
    expected = f"an integer {_bounds(low, high, False, False)}".strip()

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not _in_range(value, low, high, False, False):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    parse.__name__ = "integer"
    return parse


def real(low: float | None = None, high: float | None = None, *, low_open: bool = False,
         high_open: bool = False) -> Callable[[str], float]:
    """A finite float in the given range; ``low_open``/``high_open`` exclude the bound itself."""
    expected = f"a finite number {_bounds(low, high, low_open, high_open)}".strip()

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not math.isfinite(value) or not _in_range(value, low, high, low_open, high_open):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    parse.__name__ = "real"
    return parse


def integer_list(low: int = 1) -> Callable[[str], list[int]]:
    """Comma-separated integers >= ``low``, sorted, each once (``4,1,2,2`` is ``[1, 2, 4]``)."""

    def parse(text: str) -> list[int]:
        try:
            values = [int(v) for v in text.split(",") if v.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
        if not values or min(values) < low:
            raise argparse.ArgumentTypeError(f"expected integers >= {low}, got {text!r}")
        return sorted(set(values))

    parse.__name__ = "integer list"
    return parse
