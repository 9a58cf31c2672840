"""Answer extraction and cheap screens for untrusted model output.

Everything here is pure string work, linear in the capped input, and safe to run in-process on any thread:
the expensive and possibly non-terminating part (symbolic equivalence) lives in :mod:`verl_focal.rewards.sandbox`.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

# A final answer sits at the end of a response; scanning only the tail bounds the work on megabyte outputs.
MAX_RESPONSE_TAIL_CHARS = 16_384
# Longer "answers" are not final answers; they are also where parsers go quadratic.
MAX_ANSWER_CHARS = 1_000
# Measured with math-verify 0.9 / latex2sympy2_extended 1.11: parsing 20 nested braces takes > 15 s and
# 8 nested parentheses 0.5 s, while real final answers rarely nest deeper than 4.
MAX_BRACKET_DEPTH = 8
# 10^{1000000} (7 digits) verified in 0.5 s, so 6 digits is safe; 9^{9^{9}} did not finish in 120 s.
MAX_EXPONENT_DIGITS = 6
MAX_FACTORIAL_DIGITS = 3

_BOX_COMMANDS = ("\\boxed", "\\fbox")
_ANSWER_LINE = re.compile(r"(?:^|\n)[ \t*#]*(?:final\s+)?answer\s*[:：]\s*([^\n]+)", re.IGNORECASE)
_ANSWER_IS = re.compile(r"final answer is[:\s]*\$([^$\n]{1,1000})\$", re.IGNORECASE)
_SPACING = re.compile(r"\\[,;:!]|\\q?quad|\s+")
_INTEGER = re.compile(r"[+-]?\d{1,100}")
_THOUSANDS = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+")
_DECIMAL = re.compile(r"[+-]?\d{0,100}\.\d{1,100}")
_EXPONENT_DIGITS = re.compile(r"(?:\^|\*\*)\s*\{?\s*[+-]?(\d+)")
_FACTORIAL_ARG = re.compile(r"(\d+)\s*\)?\s*!")
# a^b^c and a**b**c with bare operands: the exponent is itself a power
_CHAINED_POWER = re.compile(r"(?:\^|\*\*)(?:\{[^{}]*\}|\d+(?:\.\d+)?|[A-Za-z])(?:\^|\*\*)")


def sanitize(text: object, limit: int) -> str:
    """Coerce ``text`` to a valid-UTF-8 ``str`` of at most ``limit`` characters, keeping the tail.

    Lone surrogates (invalid unicode from a broken detokenizer) are replaced, so the text can cross a pipe.
    """
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    if len(text) > limit:
        text = text[-limit:]
    return text.encode("utf-8", "replace").decode("utf-8")


def _braced_group(text: str, open_index: int) -> str | None:
    """Content of the ``{...}`` group whose ``{`` is at ``open_index``; ``None`` if it never closes.

    Escaped braces (``\\{``, ``\\}``) are literal characters in LaTeX and do not open or close groups.
    """
    depth = 0
    i = open_index
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[open_index + 1 : i]
        i += 1
    return None


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` (or ``\\fbox{...}``) in ``text``, nested braces included.

    ``\\boxed 5`` (argument without braces) is accepted. An unclosed last box (a truncated response) yields
    ``None`` rather than an earlier box: the model's final word was not an answer.
    """
    start = max(text.rfind(command) for command in _BOX_COMMANDS)
    if start < 0:
        return None
    command = next(c for c in _BOX_COMMANDS if text.startswith(c, start))
    i = start + len(command)
    while i < len(text) and text[i] in " \t":
        i += 1
    if i < len(text) and text[i] == "{":
        return _braced_group(text, i)
    if i > start + len(command):  # "\boxed 5": the argument runs to the next space or math delimiter
        match = re.match(r"[^\s$]+", text[i:])
        return match.group(0) if match else None
    return None


def extract_answer(response: str) -> str | None:
    """The final answer of a response: the last box, else the last ``Answer:`` line, else "final answer is $x$"."""
    boxed = last_boxed(response)
    if boxed is not None:
        return boxed.strip()
    if "\\boxed" in response or "\\fbox" in response:
        return None  # an unclosed box is a truncated answer, not an invitation to guess
    lines = _ANSWER_LINE.findall(response)
    if lines:
        answer = lines[-1].strip()
        inner = last_boxed(answer)
        if inner is not None:
            return inner.strip()
        return answer.strip("$* ").rstrip(".").strip("$* ") or None
    phrases = _ANSWER_IS.findall(response)
    return phrases[-1].strip() if phrases else None


def has_percent(answer: str) -> bool:
    return "%" in answer


def strip_percent(answer: str) -> str:
    """``50\\%`` -> ``50``: graders accept a bare number for a percentage answer and vice versa."""
    return re.sub(r"\\text\{\s*\\?%\s*\}|\\?%", "", answer).strip()


def normalize(answer: str) -> str:
    """Spacing- and delimiter-insensitive form used for the exact-match fast path."""
    answer = answer.strip().strip("$").strip()
    for command, replacement in (("\\left", ""), ("\\right", ""), ("\\dfrac", "\\frac"), ("\\tfrac", "\\frac")):
        answer = answer.replace(command, replacement)
    answer = _SPACING.sub("", answer)
    return answer.rstrip(".")


def fast_verdict(gold: str, pred: str) -> bool | None:
    """Decide equivalence without symbolic maths when it is certain, else ``None``.

    Identical normalized strings are equivalent; two integers (thousands separators allowed) or two decimals
    compare exactly. Unequal decimals are left to math-verify, which rounds to 6 places.
    """
    gold_n, pred_n = normalize(gold), normalize(pred)
    if gold_n == pred_n:
        return True
    gold_i, pred_i = _as_integer(gold_n), _as_integer(pred_n)
    if gold_i is not None and pred_i is not None:
        return gold_i == pred_i
    if _DECIMAL.fullmatch(gold_n) or _DECIMAL.fullmatch(pred_n):
        try:
            if Decimal(gold_n.replace(",", "")) == Decimal(pred_n.replace(",", "")):
                return True
        except InvalidOperation:
            pass
    return None


def _as_integer(text: str) -> int | None:
    if _INTEGER.fullmatch(text):
        return int(text)
    if _THOUSANDS.fullmatch(text):
        return int(text.replace(",", ""))
    return None


def bracket_depth(text: str) -> int:
    """Deepest nesting of ``()[]{}`` in ``text`` (unbalanced closers are ignored)."""
    depth = deepest = 0
    for ch in text:
        if ch in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in ")]}" and depth:
            depth -= 1
    return deepest


def symbolic_risk(answer: str) -> str | None:
    """Why ``answer`` must not reach a symbolic parser, or ``None`` when it is safe to try.

    The checks are the input shapes that make latex2sympy/sympy run for minutes or exhaust memory.
    """
    if len(answer) > MAX_ANSWER_CHARS:
        return f"answer longer than {MAX_ANSWER_CHARS} characters"
    if bracket_depth(answer) > MAX_BRACKET_DEPTH:
        return f"brackets nested deeper than {MAX_BRACKET_DEPTH}"
    for match in _EXPONENT_DIGITS.finditer(answer):
        if len(match.group(1).lstrip("0")) > MAX_EXPONENT_DIGITS:
            return "exponent too large"
    if _has_power_tower(answer):
        return "power tower"
    for match in _FACTORIAL_ARG.finditer(answer):
        if len(match.group(1).lstrip("0")) > MAX_FACTORIAL_DIGITS:
            return "factorial too large"
    if _has_compound_factorial(answer):
        return "factorial of a power or factorial"
    return None


def _has_compound_factorial(answer: str) -> bool:
    """True for ``(...)!`` / ``{...}!`` whose group holds a power, a factorial or a 4+ digit number."""
    closers = {")": "(", "}": "{", "]": "["}
    for bang in (i for i, ch in enumerate(answer) if ch == "!"):
        end = bang - 1
        while end >= 0 and answer[end] == " ":
            end -= 1
        if end < 0 or answer[end] not in closers:
            continue
        depth = 0
        for start in range(end, -1, -1):
            if answer[start] == answer[end]:
                depth += 1
            elif answer[start] == closers[answer[end]]:
                depth -= 1
                if depth == 0:
                    group = answer[start:end]
                    if "^" in group or "!" in group or re.search(r"\d{%d}" % (MAX_FACTORIAL_DIGITS + 1), group):
                        return True
                    break
    return False


def _has_power_tower(answer: str) -> bool:
    """True if some exponent itself contains an exponent (``a^{b^{c}}``, ``a^b^c``, ``a**b**c``)."""
    compact = re.sub(r"\s+", "", answer)
    if _CHAINED_POWER.search(compact):
        return True
    for operator in ("^", "**"):
        i = compact.find(operator)
        while i >= 0:
            j = i + len(operator)
            if j < len(compact) and compact[j] in "{(":
                exponent = _braced_group(compact, j) if compact[j] == "{" else _parenthesised(compact, j)
                if exponent is None or "^" in exponent or "**" in exponent:
                    return True
            i = compact.find(operator, j)
    return False


def _parenthesised(text: str, open_index: int) -> str | None:
    depth = 0
    for i in range(open_index, len(text)):
        if text[i] == "(":
            depth += 1
        elif text[i] == ")":
            depth -= 1
            if depth == 0:
                return text[open_index + 1 : i]
    return None
