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
