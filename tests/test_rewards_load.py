"""Rewards under load: a correct answer scores 1 whatever else is queued (a real pool, real math-verify)."""

from __future__ import annotations

import random
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from verl_focal.rewards import sandbox
from verl_focal.rewards.extract import symbolic_risk
from verl_focal.rewards.math import VERIFY, compute_score
from verl_focal.rewards.sandbox import OK, VerifierPool

# Answers that pass every screen yet keep math-verify busy for minutes (measured in docs/rewards.md: parsing the
# binomial took 231 s, comparing the power did not finish in 60 s).
SLOW = [("\\binom{999999}{500000}", "7"), ("(x+1)^{3000}", "x^{3000}+1")]
# Correct answers that need math-verify (not decided in-process).
CORRECT = [("0.5", "\\frac{2}{4}"), ("2\\sqrt{2}", "\\sqrt{8}"), ("(x+1)^2", "x^2+2x+1"), ("[1,2)", "[1, 2)"),
           ("\\frac{\\pi}{3}", "\\pi/3"), ("x=5", "5")]
TIMEOUT = 3.0


def response(answer: str) -> str:
    return f"Putting it together, the answer is $\\boxed{{{answer}}}$."


@pytest.fixture
def two_workers(monkeypatch):
    pool = VerifierPool(workers=2)
    monkeypatch.setattr(sandbox, "_pool", pool)
    assert pool.run(VERIFY, ("1", "\\boxed{1}"), timeout=60, total_timeout=180).status == OK  # started
    yield pool
    pool.close()


def test_slow_answers_pass_the_screens_and_overrun(two_workers):
    for answer, gold in SLOW:
        assert symbolic_risk(answer) is None and symbolic_risk(gold) is None
        start = time.monotonic()
        result = compute_score("math500", response(answer), gold, timeout=1.0)
        assert result["timed_out"] == 1 and result["screened"] == 0, (answer, result)
        assert time.monotonic() - start < 1.0 + 3.0


def test_correct_answers_score_one_whatever_is_queued(two_workers):
    """16 caller threads, 2 workers, 6 answers that each hold a worker for their whole timeout."""
    rng = random.Random(0)
    slow = [SLOW[i % 2] for i in range(6)]
    correct = [CORRECT[i % len(CORRECT)] for i in range(42)]
    jobs = [("slow", *pair) for pair in slow] + [("correct", gold, answer) for gold, answer in correct]
    rng.shuffle(jobs)
    jobs.sort(key=lambda job: job[0] != "slow" or rng.random() < 0.3)  # most slow ones first, in front of the rest

    def call(job):
        kind, first, second = job
        answer, gold = (first, second) if kind == "slow" else (second, first)
        start = time.monotonic()
        return kind, compute_score("math500", response(answer), gold, timeout=TIMEOUT), time.monotonic() - start

    with ThreadPoolExecutor(max_workers=16) as executor:
        results = list(executor.map(call, jobs))
    scored_zero = [r for kind, r, _ in results if kind == "correct" and r["score"] != 1.0]
    assert scored_zero == [], f"{len(scored_zero)} correct answers scored 0 under load: {scored_zero[:3]}"
    assert all(r["timed_out"] == 1 for kind, r, _ in results if kind == "slow")
    # The test means something: correct answers waited longer than their own timeout behind the slow ones
    # (the old pool scored every such answer 0).
    assert max(seconds for kind, _, seconds in results if kind == "correct") > TIMEOUT
