"""Cheap, linear string work on untrusted model output: sanitizing, the last box, screens, the exact fast path.

Everything here is safe to run in-process on any thread. Reading the final answer out of a whole response and
judging it is math-verify's job and runs in a worker process (:mod:`verl_focal.rewards._worker`); the fast path
below decides in-process only where math-verify's verdict is certain (see :func:`fast_verdict`).
"""

from __future__ import annotations

import re
from fractions import Fraction

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

_SPACING = re.compile(r"\\[,;:!]|\\q?quad|\s+")
_EXPONENT_DIGITS = re.compile(r"(?:\^|\*\*)\s*\{?\s*[+-]?(\d+)")
_FACTORIAL_ARG = re.compile(r"(\d+)\s*\)?\s*!")
# a^b^c and a**b**c with bare operands: the exponent is itself a power
_CHAINED_POWER = re.compile(r"(?:\^|\*\*)(?:\{[^{}]*\}|\d+(?:\.\d+)?|[A-Za-z])(?:\^|\*\*)")
_PERCENT = re.compile(r"\\text\{\s*\\?%\s*\}|\\?%")


def sanitize(text: object, limit: int) -> str:
    """Coerce ``text`` to a valid-UTF-8 ``str`` of at most ``limit`` characters, keeping the tail.

    Lone surrogates (invalid unicode from a broken detokenizer) are replaced, so the text can cross a pipe.
    """
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    if len(text) > limit:
        text = text[-limit:]
    return text.encode("utf-8", "replace").decode("utf-8")


def _closing_brace(text: str, open_index: int, escapes: bool) -> int | None:
    """Index of the ``}`` closing the ``{`` at ``open_index``; ``None`` if it never closes.

    With ``escapes``, ``\\{`` and ``\\}`` are literal characters (LaTeX); without, every brace counts, as
    latex2sympy2_extended counts them when it takes a box apart.
    """
    depth = 0
    i, n = open_index, len(text)
    while i < n:
        ch = text[i]
        if escapes and ch == "\\":
            i += 2
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return None


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` (or ``\\fbox{...}``), nested braces included; ``None`` if unclosed.

    ``\\boxed 5`` (argument without braces) is accepted. Used for multiple-choice letters.
    """
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return None
    i = start + (6 if text.startswith("\\boxed", start) else 5)
    j = i
    while j < len(text) and text[j] in " \t":
        j += 1
    if j < len(text) and text[j] == "{":
        end = _closing_brace(text, j, escapes=True)
        return None if end is None else text[j + 1 : end]
    if j > i:  # "\boxed 5": the argument runs to the next space or math delimiter
        match = re.match(r"[^\s$]+", text[j:])
        return match.group(0) if match else None
    return None


def strip_percent(text: str) -> str:
    """``50\\%`` -> ``50`` (also ``\\text{\\%}`` and a bare ``%``)."""
    return _PERCENT.sub("", text)


def normalize(answer: str) -> str:
    """Spacing- and delimiter-insensitive form of an answer (screened answers and data de-duplication)."""
    answer = answer.strip().strip("$").strip()
    for command, replacement in (("\\left", ""), ("\\right", ""), ("\\dfrac", "\\frac"), ("\\tfrac", "\\frac")):
        answer = answer.replace(command, replacement)
    answer = _SPACING.sub("", answer)
    return answer.rstrip(".")


# ---------------------------------------------------------------------------------------------------------------
# The fast path: math-verify's verdict, decided without math-verify where it is certain.
#
# math-verify (0.9) reads a response like this: its patterns come in priority groups (0: "final answer is X. I
# hope"; 50: "final answer ... is X" and the boxed patterns; 100/200: "answer"; 300: any maths); in the first
# group with a match it tries the matches rightmost end first (longest first on a tie) and keeps the first that
# parses, plus the normalized string of the first match tried, which is compared as a string too. The boxed
# patterns are `\boxed{.+}` (from the first box to the last `}` of the text, of which latex2sympy2_extended then
# keeps the last box, joined with earlier boxes closer than 70 characters) and a math environment ($..$, $$..$$,
# \[..\], \(..\)) holding a box, optionally chained to more by "and", "or", ",".
#
# So when the text holds no "I hope", the last `\boxed{c}` is followed by nothing but spacing and a full stop
# (shape A) or by the closer of a math environment whose opener stands right before the box (shape B), no other
# box ends within 70 characters before it, and the environment is not chained to an earlier one, the first match
# math-verify tries is that box or that environment, and the string it extracts is normalize_latex(c). Then:
# - c and the reference both integers or fractions of integers (\frac{a}{b}, \dfrac, \tfrac, a/b): latex2sympy
#   gives sympy Integers and Rationals, which math-verify compares exactly (it rounds only when a side is a
#   Float; the strings agree only if the numbers do), so the verdict is equality of the two rationals;
# - c identical to the reference (no environment, box or answer phrase inside either): both sides normalize to
#   the same string, and math-verify's string comparison makes the verdict true.
# tests/test_rewards_parity.py checks this against math-verify on generated responses of every shape.
# ---------------------------------------------------------------------------------------------------------------

_RATIONAL = re.compile(r"(-?)(?:\\[dt]?frac\{(\d{1,50})\}\{(\d{1,50})\}|(\d{1,50})/(\d{1,50})|(\d{1,100}))")
_SHAPE_A = re.compile(r"[\s.]*")
_SHAPE_B = re.compile(r"\s*(\$\$|\$|\\\]|\\\))[\s.]*")
_OPENERS = {"$$": "$$", "$": "$", "\\]": "\\[", "\\)": "\\("}
# Inside an answer these could start a pattern of their own when math-verify reads the reference or the response.
_UNSAFE_IN_IDENTICAL = re.compile(r"\$|\\[\[\]()]|\]\s|box|answer|I hope|%", re.IGNORECASE)
_JOIN_DISTANCE = 70


def fast_verdict(reference: str, tail: str) -> tuple[bool, str] | None:
    """``(math-verify's verdict, the boxed answer)`` when it is certain without math-verify, else ``None``.

    ``reference`` is the ground truth as math-verify receives it inside ``\\boxed{}``; ``tail`` the response text
    as math-verify receives it. See the comment above for why each condition makes the verdict certain.
    """
    if "I hope" in tail:
        return None
    start = tail.rfind("\\boxed{")
    if start < 0:
        return None
    end = _closing_brace(tail, start + 6, escapes=False)
    if end is None or not _settled_box(tail, start, end):
        return None
    answer, gold = tail[start + 7 : end].strip(), reference.strip()
    gold_value, answer_value = _rational(gold), _rational(answer)
    if gold_value is not None and answer_value is not None:
        return gold_value == answer_value, answer
    if answer == gold and re.search(r"\w", gold) and not _UNSAFE_IN_IDENTICAL.search(gold):
        return True, answer
    return None


def _rational(text: str) -> Fraction | None:
    match = _RATIONAL.fullmatch(text)
    if match is None:
        return None
    sign, numerator, denominator, slash_numerator, slash_denominator, integer = match.groups()
    if integer is not None:
        value = Fraction(int(integer))
    else:
        top, bottom = (numerator, denominator) if numerator is not None else (slash_numerator, slash_denominator)
        if int(bottom) == 0:
            return None  # sympy's zoo: leave it to math-verify
        value = Fraction(int(top), int(bottom))
    return -value if sign else value


def _settled_box(tail: str, start: int, end: int) -> bool:
    """True if the box ``tail[start:end + 1]`` is certainly the first match math-verify tries (shapes A, B)."""
    if not _alone(tail, start):
        return False
    after = tail[end + 1 :]
    if _SHAPE_A.fullmatch(after):
        return True
    shape_b = _SHAPE_B.fullmatch(after)
    if shape_b is None:
        return False
    closer = shape_b.group(1)
    opener = _OPENERS[closer]
    before = tail[:start].rstrip()
    if not before.endswith(opener) or (opener == "$" and before.endswith("$$")):
        return False
    opened = len(before) - len(opener)
    preceding = tail[opened - 1] if opened > 0 else ""
    if preceding == "\\" or (opener == "$" and preceding.isdigit()):  # an escaped or non-opening delimiter
        return False
    if opener in ("$", "\\(") and "\n" in tail[opened:start]:  # inline environments do not span lines
        return False
    # The environment is the first of its match: not chained to an earlier one, not nested in an earlier opener.
    if before[:opened].rstrip().endswith(("and", "or", ",")):
        return False
    if opener in ("\\[", "\\("):
        previous_close = tail.rfind(closer, 0, opened)
        if tail.find(opener, previous_close + 1, opened) >= 0:
            return False
    return True


def _alone(tail: str, start: int) -> bool:
    """True if no earlier box (``\\boxed`` or ``\\fbox``) ends within the distance at which boxes are joined."""
    previous = max(tail.rfind("\\boxed", 0, start), tail.rfind("\\fbox", 0, start))
    if previous < 0:
        return True
    brace = previous + (6 if tail.startswith("\\boxed", previous) else 5)
    while brace < start and tail[brace].isspace():
        brace += 1
    if brace >= start or tail[brace] != "{":
        return True  # an argument without braces ends latex2sympy2_extended's walk back through the boxes
    closed = _closing_brace(tail[:start], brace, escapes=False)
    return closed is not None and start - closed - 1 >= _JOIN_DISTANCE


# ---------------------------------------------------------------------------------------------------------------
# Screens: answer shapes that make latex2sympy/sympy run for minutes or exhaust memory.
# ---------------------------------------------------------------------------------------------------------------


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
    """Why ``answer`` must not reach a symbolic parser, or ``None`` when it is safe to try."""
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
                if compact[j] == "{":
                    close = _closing_brace(compact, j, escapes=True)
                    exponent = None if close is None else compact[j + 1 : close]
                else:
                    exponent = _parenthesised(compact, j)
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
