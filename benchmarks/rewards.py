"""Reward throughput: verl_focal.rewards.math against verl's built-in math_verify scorer, in the same run.

    python benchmarks/rewards.py [--samples 400] [--threads 8] [--repeats 3] [--workers N] [--seed 0]
                                 [--load-samples 200] [--load-threads 32] 2>/dev/null

Corpus: model-like responses (about 1.5k characters of reasoning, inline maths, a final ``\\boxed{}``) whose
answers mix integers, fractions, radicals, intervals, sets, polynomials, units, percentages and thousands
separators, written equivalently or wrongly, plus responses without any answer. The pathological run replaces 5%
of the samples with the hostile inputs of tests/test_rewards.py (power towers, huge exponents and factorials, deep
nesting, megabyte strings, unbalanced braces, invalid unicode).

Both process pools are started in full and brought to the same steady state (math-verify caches parses per
process) on an unmeasured corpus of the same distribution; then every measurement uses fresh corpora, verl and
ours alternate, and the median of ``--repeats`` runs is reported, since the reference machine is shared. Both are
run "sequential" (one caller) and "threaded" (``--threads`` callers, as verl's reward loop calls a sync scorer from its
executor). verl's worker processes log every hostile input in full on stderr: run with ``2>/dev/null``.

The load row: ``--load-threads`` callers score a corpus of the same distribution in which 5% of the answers are
slow to verify yet pass every screen (``\\binom{999999}{500000}``, ``(x+1)^{3000}``: math-verify needs minutes
for each), each scorer with its default timeout (ours 5 s per check, verl's 30 s per call). It reports how many
answers that math-verify accepts each scorer scored 0, the throughput, and the slowest call on a correct answer.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

# (reference answer, equivalent written forms, wrong forms)
ANSWERS = [
    ("\\frac{1}{2}", ["0.5", "\\frac12", "\\dfrac{1}{2}", "1/2"], ["\\frac{1}{3}", "0.25"]),
    ("2\\sqrt{2}", ["\\sqrt{8}", "2\\sqrt2"], ["\\sqrt{2}", "4"]),
    ("[1,2)", ["[1, 2)"], ["(1,2)", "[1,2]"]),
    ("\\{1,2,3\\}", ["\\{3,2,1\\}"], ["\\{1,2\\}"]),
    ("(x+1)^2", ["x^2+2x+1"], ["x^2+1"]),
    ("10", ["10\\text{ cm}", "10.0"], ["100"]),
    ("25\\%", ["25", "25\\%"], ["0.025"]),
    ("1000000", ["1,000,000", "10^6"], ["100000"]),
    ("\\frac{\\pi}{3}", ["\\pi/3", "\\frac{1}{3}\\pi"], ["\\frac{\\pi}{6}"]),
    ("(-\\infty, 3]", ["(-\\infty,3]"], ["(-\\infty, 3)"]),
    ("\\frac{3\\sqrt{3}}{4}", ["\\frac{3}{4}\\sqrt{3}"], ["\\frac{\\sqrt{3}}{4}"]),
    ("x=5", ["5"], ["x=-5"]),
]
FILLER = (
    "We first rewrite the condition. Let $a_n$ denote the $n$-th term, so that $a_{n+1} = a_n + 2n + 1$. "
    "Summing from $1$ to $k$ gives $a_k = k^2$, which we verify for $k = 1, 2, 3$. Next, substituting "
    "$x = \\frac{t}{2}$ into $f(x) = x^2 - 3x + 2$ we obtain $\\frac{t^2}{4} - \\frac{3t}{2} + 2$. "
)


def pathological_inputs() -> list[str]:
    return [
        "\\boxed{9^{9^{9}}}",
        "\\boxed{2^3^4^5^6}",
        "\\boxed{10^{100000000}}",
        "\\boxed{1000000!}",
        "\\boxed{" + "{" * 5000 + "1" + "}" * 5000 + "}",
        "\\boxed{" + "(" * 200 + "1" + ")" * 200 + "}",
        "x" * 3_000_000 + " \\boxed{7}",
        "\\boxed{" * 10_000 + "7",
        "\\boxed{\ud800\udfff7}",
        "\\boxed{1}" * 200_000,
    ]


def build_corpus(samples: int, seed: int, pathological_fraction: float) -> list[tuple[str, str]]:
    """(response, ground truth) pairs; deterministic for a seed."""
    rng = random.Random(seed)
    hostile = pathological_inputs()
    corpus = []
    for i in range(samples):
        if rng.random() < pathological_fraction:
            corpus.append((hostile[i % len(hostile)], "7"))
            continue
        body = FILLER * rng.randint(3, 8)
        kind = rng.random()
        if kind < 0.45:  # integer answers (AIME, AMC, GSM-style), right or wrong
            truth = str(rng.randint(0, 999))
            pred = truth if rng.random() < 0.5 else str(rng.randint(0, 999))
            response = f"{body}Therefore the answer is $\\boxed{{{pred}}}$."
        elif kind < 0.6:  # random fractions, reduced or not
            a, b, k = rng.randint(1, 60), rng.randint(2, 60), rng.randint(2, 9)
            truth = f"\\frac{{{a}}}{{{b}}}"
            pred = rng.choice([f"\\frac{{{k * a}}}{{{k * b}}}", f"{a}/{b}", f"\\dfrac{{{a}}}{{{b}}}",
                               f"\\frac{{{a + 1}}}{{{b}}}"])
            response = f"{body}So we get $\\boxed{{{pred}}}$."
        elif kind < 0.75:  # random radicals
            k, m = rng.randint(2, 12), rng.choice([2, 3, 5, 6, 7, 10, 11])
            truth = f"{k}\\sqrt{{{m}}}"
            pred = rng.choice([f"\\sqrt{{{k * k * m}}}", f"{k}\\sqrt{{{m}}}", f"\\sqrt{{{k * k * m + 1}}}"])
            response = f"{body}The length is $\\boxed{{{pred}}}$."
        elif kind < 0.95:  # LaTeX answers, equivalent or wrong
            truth, same, different = ANSWERS[rng.randrange(len(ANSWERS))]
            pred = rng.choice(same if rng.random() < 0.6 else different)
            response = f"{body}Hence the final answer is $\\boxed{{{pred}}}$."
        else:  # ran out of tokens
            truth, response = "42", body
        corpus.append((response, truth))
    return corpus


def ours(response: str, truth: str) -> float:
    from verl_focal.rewards.math import compute_score

    return compute_score("bench", response, truth)["score"]


def make_verl(timeout: float) -> Callable[[str, str], float]:
    from verl.utils.reward_score.math_verify import compute_score

    # verl prints (and scores 0) on errors other than timeouts; no such line should appear in the output
    def verl(response: str, truth: str) -> float:
        return compute_score(response, truth, timeout=timeout)

    return verl


WARM_UP = [("\\boxed{\\frac12}", "0.5")] * 64


def restart_verl(verl: Callable[[str, str], float]) -> None:
    """Fresh verl pool (math-verify caches parses per process), fully started: it spawns a process only when no
    idle one is left, and each new process imports verl (seconds), so call concurrently until all 4 exist."""
    from verl.utils.reward_score import math_verify as verl_module

    if verl_module._pool is not None:
        verl_module._pool.shutdown(wait=True)
        verl_module._pool = None
    while verl_module._pool is None or len(verl_module._pool._processes) < 4:
        run(verl, WARM_UP, 8)
    run(verl, WARM_UP, 8)


def restart_ours() -> None:
    from verl_focal.rewards.math import VERIFY
    from verl_focal.rewards.sandbox import get_pool, shutdown_pool

    shutdown_pool()
    pool = get_pool()
    pool.run(VERIFY, ("1", "\\boxed{1}"), timeout=120, total_timeout=300)
    while len(pool.pids()) < pool.size:
        time.sleep(0.05)
    run(ours, WARM_UP, 8)


def run(scorer: Callable[[str, str], float], corpus, threads: int) -> tuple[float, float, list[float]]:
    """(samples/s, worst single-call seconds, scores)."""
    if threads == 0:
        raise ValueError("threads must be >= 1")

    def timed(pair):
        start = time.perf_counter()
        value = scorer(*pair)
        return value, time.perf_counter() - start

    start = time.perf_counter()
    if threads == 1:
        results = [timed(pair) for pair in corpus]
    else:
        with ThreadPoolExecutor(max_workers=threads) as executor:
            results = list(executor.map(timed, corpus))
    elapsed = time.perf_counter() - start
    return len(corpus) / elapsed, max(r[1] for r in results), [r[0] for r in results]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=400)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=4, help="our verifier processes (our default 4, as verl's)")
    parser.add_argument("--load-samples", type=int, default=200)
    parser.add_argument("--load-threads", type=int, default=32)
    args = parser.parse_args()
    os.environ["VERL_FOCAL_REWARD_WORKERS"] = str(args.workers)  # read when verl_focal.rewards is first imported

    verl = make_verl(timeout=30.0)  # verl's default
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start; "
          f"{args.workers} verifier processes for ours, 4 for verl")
    # Start both pools in full, then bring both to the same steady state (math-verify caches parses per process,
    # as it does over a training run) on a corpus of the same distribution that is not measured.
    restart_verl(verl)
    restart_ours()
    warm = build_corpus(args.samples // 2, args.seed + 10_000, 0.0)
    run(verl, warm, args.threads)
    run(ours, warm, args.threads)

    hostile_set = set(pathological_inputs())
    rates: dict[tuple, list[float]] = {}
    worst: dict[tuple, float] = {}
    agree: list[float] = []
    for repeat in range(args.repeats):
        for threads in (1, args.threads):
            # fresh corpora each time; verl and ours score the same ones, in alternating order
            seed = args.seed + 2 * (repeat * 2 + (threads > 1))
            corpora = {
                "clean": build_corpus(args.samples, seed, 0.0),
                "hostile": build_corpus(args.samples, seed + 1, 0.05),
            }
            scorers = [("verl", verl), ("ours", ours)][:: 1 if repeat % 2 == 0 else -1]
            scores = {}
            for name, scorer in scorers:
                for corpus_name, corpus in corpora.items():
                    rate, slowest, scores[name, corpus_name] = run(scorer, corpus, threads)
                    rates.setdefault((threads, name, corpus_name), []).append(rate)
                    key = (threads, name, corpus_name)
                    worst[key] = max(worst.get(key, 0.0), slowest)
            pairs = zip(scores["verl", "clean"], scores["ours", "clean"])
            agree.append(statistics.mean(float(a == b) for a, b in pairs))
            hostile_count = sum(1 for response, _ in corpora["hostile"] if response in hostile_set)
            print(f"repeat {repeat + 1}, {threads} caller(s): {hostile_count} hostile samples in the 5% mix; "
                  + ", ".join(f"{n} {c} {rates[threads, n, c][-1]:.1f}/s" for n, _ in scorers for c in corpora))

    print(f"\nmedian of {args.repeats} runs of {args.samples} samples; load average {os.getloadavg()[0]:.1f} at end")
    print("callers | samples/s: verl clean, verl 5% hostile, ours clean, ours 5% hostile | ours/verl clean, "
          "ours/verl hostile | hostile slowdown verl, ours | worst call s: verl clean/hostile, ours clean/hostile")
    for threads in (1, args.threads):
        r = {(n, c): statistics.median(rates[threads, n, c]) for n in ("verl", "ours") for c in ("clean", "hostile")}
        w = {(n, c): worst[threads, n, c] for n in ("verl", "ours") for c in ("clean", "hostile")}
        print(
            f"{threads:>7} | {r['verl', 'clean']:7.1f} {r['verl', 'hostile']:7.1f} {r['ours', 'clean']:7.1f} "
            f"{r['ours', 'hostile']:7.1f} | {r['ours', 'clean'] / r['verl', 'clean']:5.2f}x "
            f"{r['ours', 'hostile'] / r['verl', 'hostile']:5.2f}x | "
            f"{r['verl', 'clean'] / r['verl', 'hostile']:5.2f}x {r['ours', 'clean'] / r['ours', 'hostile']:5.2f}x | "
            f"{w['verl', 'clean']:5.2f}/{w['verl', 'hostile']:5.2f} "
            f"{w['ours', 'clean']:5.2f}/{w['ours', 'hostile']:5.2f}"
        )
    print(f"same score as verl on the clean corpora: {statistics.mean(agree):.1%}")
    load_row(verl, args)


SLOW_TO_VERIFY = [("\\binom{999999}{500000}", "7"), ("(x+1)^{3000}", "x^{3000}+1")]


def load_corpus(samples: int, seed: int) -> tuple[list[tuple[str, str]], list[bool]]:
    """The usual corpus with 5% slow-to-verify answers; whether math-verify accepts each of the others."""
    from verl_focal.rewards._worker import verify_response  # in this process: math-verify's verdict, as a label

    rng = random.Random(seed)
    corpus, correct = [], []
    for response, truth in build_corpus(samples, seed, 0.0):
        if rng.random() < 0.05:
            answer, truth = SLOW_TO_VERIFY[len(corpus) % 2]
            corpus.append((FILLER * 3 + f"Hence the final answer is $\\boxed{{{answer}}}$.", truth))
            correct.append(False)
        else:
            corpus.append((response, truth))
            correct.append(verify_response(truth, response)[0])
    return corpus, correct


def load_row(verl: Callable[[str, str], float], args) -> None:
    from verl_focal.rewards.extract import symbolic_risk

    assert all(symbolic_risk(answer) is None for answer, _ in SLOW_TO_VERIFY)
    corpus, correct = load_corpus(args.load_samples, args.seed + 777)
    slow = sum(1 for response, _ in corpus if any(answer in response for answer, _ in SLOW_TO_VERIFY))
    print(f"\nload: {args.load_threads} callers, {len(corpus)} samples, {slow} slow to verify, "
          f"{sum(correct)} correct; load average {os.getloadavg()[0]:.1f} at start")
    print("scorer | correct scored 0 | samples/s | slowest call on a correct answer")
    rates = {}
    for name, scorer in (("verl", verl), ("ours", ours)):
        def timed(pair):
            start = time.perf_counter()
            value = scorer(*pair)
            return value, time.perf_counter() - start

        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=args.load_threads) as executor:
            results = list(executor.map(timed, corpus))
        rates[name] = len(corpus) / (time.perf_counter() - start)
        zeroed = sum(1 for (value, _), ok in zip(results, correct) if ok and value != 1.0)
        worst = max(seconds for (_, seconds), ok in zip(results, correct) if ok)
        print(f"{name:>6} | {zeroed:>3} of {sum(correct)} | {rates[name]:7.2f} | {worst:6.2f} s")
    print(f"ours / verl under load: {rates['ours'] / rates['verl']:.2f}x; load average {os.getloadavg()[0]:.1f} at end")


if __name__ == "__main__":
    main()
