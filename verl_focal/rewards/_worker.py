"""What runs inside a verifier worker process: math-verify, exactly as the paper's grader calls it.

Imported by the fork server that starts the workers (see :mod:`verl_focal.rewards.sandbox`), which runs the
warm-up below once, so every worker starts with math-verify and sympy loaded and warm. math-verify's own
``signal.alarm`` timeouts are off: the pool kills a worker that overruns its deadline.
"""

from __future__ import annotations

import logging

from math_verify import LatexExtractionConfig, parse, verify

# The paper's grader: math_verify.verify(parse(gold), parse(response)) with math-verify's defaults, the reference
# wrapped in \boxed{} as verl's math_verify scorer does (a bare reference such as "2\sqrt{2}" is otherwise read as
# its leading number).
GOLD_TARGETS = (LatexExtractionConfig(),)


def verify_response(reference: str, response: str) -> tuple[bool, str]:
    """``(math-verify's verdict, the answer string it extracted from the response)``."""
    gold = parse("\\boxed{" + reference + "}", GOLD_TARGETS, parsing_timeout=None)
    pred = parse(response, parsing_timeout=None)
    extracted = next((item for item in reversed(pred) if isinstance(item, str)), "")
    if not gold or not pred:
        return False, extracted
    return bool(verify(gold, pred, timeout_seconds=None)), extracted


# Cold, sympy spends a second or more on the first polynomial, radical or interval it meets (measured 1.1 s for
# (x+1)^2 against x^2+2x+1 on the loaded 2-core reference machine, 15 ms warm).
_WARM_UP = [("\\frac{1}{2}", "so the answer is $\\boxed{0.5}$"), ("(x+1)^2", "\\boxed{x^2+2x+1}"),
            ("2\\sqrt{2}", "$\\sqrt{8}$"), ("[1,2)", "\\boxed{[1, 2)}"), ("\\{1,2\\}", "\\boxed{\\{2,1\\}}"),
            ("\\frac{\\pi}{3}", "Answer: \\pi/3"), ("x=5", "\\boxed{5}"), ("10", "\\boxed{10\\text{ cm}}")]


def _warm_up() -> None:
    logging.disable(logging.WARNING)  # math-verify warns that its own timeouts are off: intended
    for reference, response in _WARM_UP:
        verify_response(reference, response)


# Importing this module is what brings a process to steady state: the fork server imports it once (PRELOAD in
# sandbox.py) and every worker forked from it starts warm.
_warm_up()
