"""The SynLogic tasks whose answer is a value rather than a grid: ``buggy_tables`` (a number with two decimals),
``goods_exchange`` (who owns what) and ``operation`` (maths, judged by math-verify in the reward's worker pool).

Each follows its verifier in MiniMax-AI/SynLogic, as :mod:`verl_focal.rewards.synlogic.rules` does.
"""

from __future__ import annotations

from typing import Any

from verl_focal.rewards.synlogic import text as tx
from verl_focal.rewards.synlogic.literals import EvalFailed, python_value
from verl_focal.rewards.synlogic.rules import Reference, pooled_rule, rule

# --- buggy_tables ----------------------------------------------------------------------------------------------


def _two_decimals(value: Any) -> str:
    """The verifier's normal form: the last number written with exactly two decimals, else the text stripped."""
    text = "" if value is None else str(value).strip()
    found = tx.last_two_decimal_number(text)
    return text if found is None else found


@rule("buggy_tables")
def buggy_tables(answer: str, ref: Reference) -> bool:
    """The last ``-?d.dd`` number of the answer equals the reference's (each the whole text where it has none);
    an empty answer is right only for an empty reference."""
    if not ref.answer and not answer:
        return True
    return _two_decimals(answer) == _two_decimals(ref.answer)


# --- goods_exchange --------------------------------------------------------------------------------------------

_EXCHANGE_GLOBALS = frozenset({"re", "Data", "Verifier", "GoodsExchangeVerifier"})
_EXCHANGE_LOCALS = frozenset({"self", "answer_str", "result"})


def exchange_answer(answer: str) -> str:
    """The last ```` ```python ```` block whose content sits between newlines, if it is ``(...)``; else ``""``."""
    blocks = tx.fenced_on_lines(answer, "```python")
    last = blocks[-1].strip() if blocks else ""
    return last if last.startswith("(") and last.endswith(")") else ""


def _pairs_by_hand(text: str) -> list[str]:
    """The verifier's fallback split: the top-level ``(...)`` groups of the text without its outer parentheses."""
    if text.startswith("("):
        text = text[1:]
    if text.endswith(")"):
        text = text[:-1]
    pairs, current, depth = [], [], 0
    for char in text:
        if char == "," and depth == 0:
            continue
        current.append(char)
        if char in "()":
            depth += 1 if char == "(" else -1
            if char == ")" and depth == 0:
                pairs.append("".join(current))
                current = []
    return pairs


def _split_pair(pair: str) -> list[str]:
    """The parts of one ``(person, item)`` at commas outside quotes (a quote after a backslash does not count)."""
    parts, current, quoted = [], "", False
    for char in pair:
        if char in "\"'" and (not current or current[-1] != "\\"):
            quoted = not quoted
        if char == "," and not quoted:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    return parts + [current.strip()] if current else parts


def _owners_by_hand(text: str, owners: dict[str, str]) -> dict[str, str]:
    for pair in _pairs_by_hand(text):
        pair = pair.strip()
        pair = pair[1:] if pair.startswith("(") else pair
        pair = pair[:-1] if pair.endswith(")") else pair
        parts = _split_pair(pair)
        if len(parts) >= 2:
            owners[parts[0].strip().strip("'\"")] = parts[1].strip().strip("'\"")
    return owners


def owners(text: Any) -> dict[str, str]:
    """``{person: item}`` as the verifier reads ``(('person', 'item'), ...)``: a tuple of 2-tuples, each side
    stripped; where that reading raises (a name that is not a string, bare words, a syntax error), its hand
    parser, adding to the pairs read before the failure."""
    if not text:
        return {}
    text = text.strip()
    result: dict[str, str] = {}
    try:
        pairs = python_value(text, _EXCHANGE_GLOBALS, _EXCHANGE_LOCALS)
        if isinstance(pairs, tuple):
            for pair in pairs:
                if isinstance(pair, tuple) and len(pair) == 2:
                    person, item = pair
                    value = item.strip()
                    result[person.strip()] = value
        return result
    except (EvalFailed, AttributeError, TypeError):
        return _owners_by_hand(text, result)


@rule("goods_exchange")
def goods_exchange(answer: str, ref: Reference) -> bool:
    """The same people as ``metadata.owns_after``, each with the same item, names and items ignoring case."""
    given, expected = owners(exchange_answer(answer)), owners(ref.metadata["owns_after"])
    if len(given) != len(expected):
        return False
    by_lower = {person.lower(): person for person in given}
    return all(person.lower() in by_lower and given[by_lower[person.lower()]].lower() == item.lower()
               for person, item in expected.items())


# --- operation -------------------------------------------------------------------------------------------------

VERIFY_OPERATION = "verl_focal.rewards.synlogic.answers:verify_operation"


@pooled_rule("operation")
def operation(answer: str, ref: Reference) -> tuple[str, tuple] | None:
    """math-verify's verdict on the whole answer against the reference answer (:func:`verify_operation`), in a
    worker; a reference that is not text makes the verifier's ``parse`` raise: wrong."""
    return (VERIFY_OPERATION, (ref.answer, answer)) if isinstance(ref.answer, str) else None


def verify_operation(reference: str, answer: str) -> bool:
    """Runs in a verifier worker: the verifier's ``math_verify.verify(parse(answer), parse(reference))``, with
    math-verify's defaults and the response first; math-verify's own timeouts are off (the pool bounds it)."""
    from math_verify import parse, verify

    gold = parse(reference, parsing_timeout=None)
    given = parse(answer, parsing_timeout=None)
    return bool(verify(given, gold, timeout_seconds=None))
