"""Answer extraction shared by the SynLogic rules, in linear time.

Each function reproduces what one extraction idiom of SynLogic's verifiers returns (docs/rewards.md names which
task uses which); they scan with ``str.find`` instead of the lazy regular expressions the verifiers use, whose
failed attempts rescan the rest of the text from every start and go quadratic on inputs such as many unclosed
``[[``.
"""

from __future__ import annotations

import re

BOX = "\\boxed{"
FENCE = "```"


def box_to_first_brace(text: str) -> str | None:
    """Content of the last ``\\boxed{`` up to the next ``}`` (braces inside are not counted), stripped."""
    start = text.rfind(BOX)
    if start == -1:
        return None
    start += len(BOX)
    end = text.find("}", start)
    return None if end == -1 else text[start:end].strip()


def box_balanced(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` with nested braces counted, stripped; ``None`` if it never closes."""
    start = text.rfind(BOX)
    if start == -1:
        return None
    depth, i = 1, start + len(BOX)
    while i < len(text) and depth:
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        i += 1
    return None if depth else text[start + len(BOX):i - 1].strip()


def lazy_matches(text: str, opening: str, closing: str) -> list[str]:
    """Non-overlapping ``opening ... closing`` spans, each closed at the first ``closing`` after its opening
    (what ``re.findall`` of ``opening.*?closing`` with DOTALL returns)."""
    found, position = [], 0
    while True:
        start = text.find(opening, position)
        if start == -1:
            return found
        end = text.find(closing, start + len(opening))
        if end == -1:
            return found
        found.append(text[start:end + len(closing)])
        position = end + len(closing)


def lazy_matches_in_line(text: str, opening: str, closing: str) -> list[str]:
    """As :func:`lazy_matches`, without DOTALL: an opening closes only on its own line."""
    return [match for line in text.split("\n") for match in lazy_matches(line, opening, closing)]


def fenced_blocks(text: str, language: str = "python") -> list[str]:
    """Stripped contents of ``"```" + language`` blocks, each ending at the next fence (``findall`` of
    ``"```python\\s*([\\s\\S]*?)\\s*```"``)."""
    return [block[len(FENCE) + len(language):-len(FENCE)].strip()
            for block in lazy_matches(text, FENCE + language, FENCE)]


_WHITESPACE_RUN = re.compile(r"\s*")


def first_fenced_block_on_lines(text: str) -> str | None:
    """The first ``"```python" whitespace NEWLINE content NEWLINE whitespace "```"`` block's content
    (``re.search`` of ``"```python\\s*\\n(.*?)\\n\\s*```"`` with DOTALL), unstripped."""
    opening = FENCE + "python"
    position = 0
    while True:
        start = text.find(opening, position)
        if start == -1:
            return None
        run_end = _WHITESPACE_RUN.match(text, start + len(opening)).end()
        newline = text.rfind("\n", start + len(opening), run_end)
        if newline != -1:
            content_start = newline + 1
            end = _closing_on_own_line(text, content_start)
            return None if end is None else text[content_start:end]
        position = start + 1


def _closing_on_own_line(text: str, start: int) -> int | None:
    """The first index ``e >= start`` with ``text[e] == "\\n"`` followed by whitespace and a fence."""
    fence = text.find(FENCE, start)
    while fence != -1:
        run_start = fence
        while run_start > start and text[run_start - 1].isspace():
            run_start -= 1
        newline = text.find("\n", run_start, fence)
        if newline != -1:
            return newline
        fence = text.find(FENCE, fence + 1)
    return None


def last_line(text: str) -> str:
    lines = text.strip().split("\n")
    return lines[-1].strip() if lines else ""


def first_in_line(text: str, opening: str, closing: str) -> str | None:
    """The first ``opening ... closing`` span closed on its own line (``re.search`` of ``opening.*?closing``
    without DOTALL), or ``None``."""
    position = 0
    while position <= len(text):
        newline = text.find("\n", position)
        line_end = len(text) if newline == -1 else newline
        start = text.find(opening, position, line_end)
        if start != -1:
            end = text.find(closing, start + len(opening), line_end)
            if end != -1:
                return text[start:end + len(closing)]
        position = line_end + 1
    return None


class _Positions:
    """Sorted start positions of ``needle`` in ``text``, for "the first one at or after i" in log time."""

    def __init__(self, text: str, needle: str):
        self.found, start = [], text.find(needle)
        while start != -1:
            self.found.append(start)
            start = text.find(needle, start + 1)

    def first_from(self, index: int) -> int:
        import bisect

        at = bisect.bisect_left(self.found, index)
        return self.found[at] if at < len(self.found) else -1


def _newlines_in_whitespace_after(text: str, start: int) -> tuple[list[int], int]:
    """The positions of ``\\n`` in the whitespace run from ``start``, and the run's end."""
    end = _WHITESPACE_RUN.match(text, start).end()
    return [i for i in range(start, end) if text[i] == "\n"], end


def fenced_on_lines(text: str, opening: str) -> list[str]:
    """Groups of ``re.findall(opening + r"\\s*\\n(.*?)\\n```", text, re.DOTALL)``: after the opening, whitespace
    with a newline, then the content up to the first ``"\\n```"``."""
    closings = _Positions(text, "\n" + FENCE)
    found, position = [], 0
    while True:
        start = text.find(opening, position)
        if start == -1:
            return found
        newlines, run_end = _newlines_in_whitespace_after(text, start + len(opening))
        if not newlines:
            position = start + 1
            continue
        # \s* is greedy: the content starts after the run's last newline unless no closing follows it; a closing
        # that starts at that newline itself (``\n```"`` right after the run) is reached from the one before.
        content = newlines[-1] + 1
        end = closings.first_from(content)
        if end == -1 and len(newlines) > 1 and newlines[-1] == run_end - 1 and text.startswith(FENCE, run_end):
            content, end = newlines[-2] + 1, newlines[-1]
        if end == -1:
            return found  # no closing at or after this content start: none after any later opening either
        found.append(text[content:end])
        position = end + 1 + len(FENCE)


def fenced_with_brackets(text: str, opening: str, on_lines: bool) -> list[str]:
    """Groups of ``re.findall`` of ``opening + r"\\s*\\n(.*?\\[.*?\\].*?)\\n```"`` (``on_lines``) or of
    ``opening + r"(.*?\\[.*?\\].*?)```"`` with DOTALL: content holding a ``[`` and a later ``]``, up to the first
    closing fence after that ``]``."""
    closing = "\n" + FENCE if on_lines else FENCE
    found, position = [], 0
    while True:
        start = text.find(opening, position)
        if start == -1:
            return found
        content = start + len(opening)
        if on_lines:
            newlines, _ = _newlines_in_whitespace_after(text, content)
            if not newlines:
                position = start + 1
                continue
            content = newlines[-1] + 1  # the whitespace between holds no bracket: any newline reads the same
        bracket = text.find("[", content)
        close_bracket = -1 if bracket == -1 else text.find("]", bracket + 1)
        end = -1 if close_bracket == -1 else text.find(closing, close_bracket + 1)
        if end == -1:
            return found  # every later opening fails the same way
        found.append(text[content:end])
        position = end + len(closing)


_DIGITS = re.compile(r"\d+")
_TWO_DECIMALS = re.compile(r"\.\d{2}\b")


def last_two_decimal_number(text: str) -> str | None:
    """The last of ``re.findall(r"-?\\d+\\.\\d{2}\\b", text)``.

    A match is a whole run of digits (a match inside a run fails where the run's own start fails: both need the
    same ``.dd`` after the run), so each run is tried once and the scan is linear."""
    found, taken_to = None, 0
    for run in _DIGITS.finditer(text):
        start, end = run.span()
        if start < taken_to or not _TWO_DECIMALS.match(text, end):
            continue
        if start > taken_to and text[start - 1] == "-":
            start -= 1
        taken_to = end + 3
        found = text[start:taken_to]
    return found


def double_bracket_groups(text: str) -> list[str]:
    """``re.findall(r"\\[\\[([^\\]]+)\\]\\]", text)``: from a ``[[``, one or more characters other than ``]``, then
    ``]]``."""
    found, position = [], 0
    while True:
        start = text.find("[[", position)
        if start == -1:
            return found
        close = text.find("]", start + 2)
        if close == -1:
            return found
        if close > start + 2 and text.startswith("]]", close):
            found.append(text[start + 2:close])
            position = close + 2
        else:
            position = close + 1  # every opening before this ``]`` meets the same ``]``


GRID_OPEN, GRID_CLOSE = re.compile(r"\[\s*\["), re.compile(r"\]\s*\]")


def spans(text: str, start_pattern: re.Pattern, end_pattern: re.Pattern) -> list[str]:
    """``re.findall`` of ``start_pattern.*?end_pattern`` (DOTALL), with the lazy middle found by one search for
    the end instead of a retry from every start (a start without an end means no later start has one)."""
    found, position = [], 0
    while True:
        start = start_pattern.search(text, position)
        if start is None:
            return found
        end = end_pattern.search(text, start.end())
        if end is None:
            return found
        found.append(text[start.start():end.end()])
        position = end.end()


def last_span(text: str, start_pattern: re.Pattern, end_pattern: re.Pattern) -> str | None:
    """The last of :func:`spans`, or ``None``."""
    found = spans(text, start_pattern, end_pattern)
    return found[-1] if found else None
