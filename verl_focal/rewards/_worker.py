"""What runs inside a verifier worker process: math-verify, exactly as the paper's grader calls it.

Imported by the fork server that starts the workers (see :mod:`verl_focal.rewards.sandbox`), so every worker
starts with math-verify and sympy loaded. math-verify's own ``signal.alarm`` timeouts are off: the pool kills a
worker that overruns its deadline.
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


def warm_up() -> None:
    """Run once per worker so the first real check does not pay for lazy imports and caches."""
    logging.disable(logging.WARNING)  # math-verify warns that its own timeouts are off: intended
    verify_response("\\frac{1}{2}", "so the answer is $\\boxed{0.5}$")
