"""Our verdicts against the paper's grader, math-verify, on a corpus of varied responses.

The reference is ``math_verify.verify(parse("\\boxed{" + gold + "}", [LatexExtractionConfig()]), parse(response))``
with math-verify's defaults (the reference boxed as verl's math_verify scorer does). Every disagreement must fall
under a documented rule of docs/rewards.md; the test names the others.
"""

from __future__ import annotations

import logging
import random

import pytest
from math_verify import LatexExtractionConfig, parse, verify

from verl_focal.rewards.extract import fast_verdict, last_boxed, symbolic_risk
from verl_focal.rewards.math import compute_score

logging.getLogger("math_verify").setLevel(logging.ERROR)

# (reference, equivalent forms, wrong forms)
ANSWERS = [
    ("7", ["7", "07", "7.0", "\\text{7}"], ["8", "-7", "70"]),
    ("-12", ["-12", "- 12"], ["12"]),
    ("2024", ["2024", "2,024", "2{,}024"], ["2042", "202"]),
    ("1, 234", ["1, 234", "234, 1"], ["1234", "1,234"]),
    ("\\frac{3}{4}", ["\\frac34", "0.75", "3/4", "\\dfrac{3}{4}", "\\tfrac{6}{8}"], ["\\frac{4}{3}", "0.7"]),
    ("0.5", ["\\frac{1}{2}", ".5", "0.50"], ["0.05", "5"]),
    ("2\\sqrt{2}", ["\\sqrt{8}", "2\\sqrt2", "\\sqrt{2}\\cdot 2"], ["\\sqrt{2}", "4"]),
    ("\\frac{\\sqrt{3}}{2}", ["\\frac{1}{2}\\sqrt{3}", "\\sqrt{3}/2"], ["\\sqrt{3}"]),
    ("\\pi", ["\\pi", "3.14159265358979"], ["3.14", "2\\pi"]),
    ("[1,2)", ["[1, 2)", "\\left[1,2\\right)"], ["(1,2)", "[1,2]"]),
    ("(-\\infty, 3]", ["(-\\infty,3]"], ["(-\\infty, 3)"]),
    ("(1,2)\\cup(3,4)", ["(3,4)\\cup(1,2)"], ["(1,4)"]),
    ("\\{1,2,3\\}", ["\\{3,2,1\\}", "\\{1, 2, 3\\}"], ["\\{1,2\\}"]),
    ("(2, 3)", ["(2,3)"], ["(3, 2)"]),
    ("x^2+2x+1", ["(x+1)^2", "1+2x+x^2"], ["x^2+1"]),
    ("x=5", ["5", "x = 5"], ["x=-5", "-5"]),
    ("10", ["10\\text{ cm}", "10 \\text{cm}", "10\\,\\mathrm{cm}"], ["100\\text{ cm}"]),
    ("90^\\circ", ["90", "90^{\\circ}"], ["45^\\circ"]),
    ("\\text{Evelyn}", ["\\text{Evelyn}", "Evelyn"], ["\\text{Bob}"]),
    ("\\$18.90", ["18.90", "\\$18.90"], ["18.09"]),
    ("e^{i\\pi}", ["-1"], ["1"]),
    ("\\binom{5}{2}", ["10", "\\binom{5}{2}"], ["20"]),
    ("3 + 4i", ["4i + 3"], ["3 - 4i"]),
    ("50\\%", ["50\\%", "50"], ["0.5", "5\\%"]),
    ("\\frac{1}{3}", ["0.333333", "\\frac{2}{6}"], ["0.33"]),
]

FILLER = (
    "Let $a_n$ denote the $n$-th term, so that $a_{n+1} = a_n + 2n + 1$. Summing from $1$ to $k$ gives $a_k = k^2$, "
    "which we verify for $k = 1, 2, 3$. Substituting $x = \\frac{t}{2}$ into $f(x) = x^2 - 3x + 2$ we get "
    "$\\frac{t^2}{4} - \\frac{3t}{2} + 2$.\n"
)

# How a response presents its final answer A (and B, an earlier or different answer).
WRAPPERS = [
    "Therefore the answer is $\\boxed{{{A}}}$.",
    "\\boxed{{{A}}}",
    "So the result is \\boxed{{{A}}}.",
    "**Final Answer**\n\\[\n\\boxed{{{A}}}\n\\]",
    "The final answer is $\\boxed{{{A}}}$. I hope it is correct.",
    "The final answer is $\\boxed{{{A}}}$.",
    "The answer is ${A}$.",
    "so we get ${A}$",
    "Answer: ${A}$",
    "Answer: {A}",
    "First I thought \\boxed{{{B}}}. Let me double-check that, since a sign error is easy to make here.\n"
    "Indeed it is \\boxed{{{A}}}.",
    "\\boxed{{{B}}}, \\boxed{{{A}}}",
    "$\\boxed{{{B}}}$ and $\\boxed{{{A}}}$",
    "We get \\boxed{{{A}}} and then, after a second look, \\boxed{{{B}",  # truncated last box
    "\\boxed{{{A}}} is what the first part gives; the second part asks for \\(x\\), which is $ {B} $.",
    "\\fbox{{{A}}}",
    "I could not finish the computation.",
    "\\[ \\boxed{{{A}}} \\]",
    "\\(\\boxed{{{A}}}\\)",
    "$$\\boxed{{{A}}}$$",
    "The value is $x = \\boxed{{{A}}}$.",
]


def reference_verdict(gold: str, response: str) -> bool:
    gold_parsed = parse("\\boxed{" + gold + "}", [LatexExtractionConfig()])
    return bool(verify(gold_parsed, parse(response)))


def corpus() -> list[tuple[str, str]]:
    """(gold, response): every wrapper once with a random answer, then random mixes, then hand-written cases."""
    rng = random.Random(20261202)
    cases = []
    for index, wrapper in enumerate(WRAPPERS * 3):
        gold, same, wrong = ANSWERS[(index * 7) % len(ANSWERS)]
        answer = rng.choice(same + wrong)
        other = rng.choice(ANSWERS)[0]
        cases.append((gold, FILLER * rng.randint(0, 2) + wrapper.format(A=answer, B=other)))
    for _ in range(150):
        gold, same, wrong = rng.choice(ANSWERS)
        answer = rng.choice(same if rng.random() < 0.6 else wrong)
        wrapper = rng.choice(WRAPPERS)
        cases.append((gold, FILLER * rng.randint(0, 3) + wrapper.format(A=answer, B=rng.choice(ANSWERS)[0])))
    for _ in range(40):  # integers, where the in-process fast path decides
        gold = str(rng.randint(-50, 999))
        answer = gold if rng.random() < 0.5 else str(rng.randint(-50, 999))
        cases.append((gold, FILLER + rng.choice(WRAPPERS[:6] + WRAPPERS[17:]).format(A=answer, B=rng.randint(0, 9))))
    cases += [
        ("7", "The answer is $7$."),
        ("\\frac{3}{4}", "so we get $\\frac34$"),
        ("1, 234", "\\boxed{1234}"),
        ("1", "\\boxed{1} and then \\boxed{2"),
        ("2", "\\boxed{1} and then \\boxed{2"),
        ("7", "\\boxed{7}\\boxed{"),
        ("7", "final answer is $x$ and $\\boxed{7}$"),
        ("7", "The final answer is $5$. I hope it is correct. Wait: \\boxed{7}"),
        ("25\\%", "\\boxed{25}"),
        ("0.5", "\\boxed{50\\%}"),
        ("9^{9^{9}}", "\\boxed{9^{9^{9}}}"),
        ("7", "\\boxed{9^{9^{9}}}"),
        ("2", "There are two cases, $x=1$ and $x=2$, and only $x = 2$ works."),
        ("12", "so $n = 12$"),
        ("12", "Hence the total is 12 apples."),
        ("\\frac{1}{2}", "\\boxed{\\dfrac{1}{2}}"),
        ("6", "$\\boxed{6}$\n\n**Note**: the problem could also be read as asking for 5."),
    ]
    return cases


def documented_rule(gold: str, response: str) -> str | None:
    """The docs/rewards.md rule under which our verdict may differ from math-verify's, if any."""
    if "%" in gold or "%" in response:
        return "percent"
    boxed = last_boxed(response)
    if symbolic_risk(gold) or (boxed is not None and symbolic_risk(boxed)):
        return "screened"
    return None


CORPUS = corpus()


def test_corpus_is_large_and_varied():
    assert len(CORPUS) >= 200
    references = [reference_verdict(gold, response) for gold, response in CORPUS[:120]]
    assert 0.25 < sum(references) / len(references) < 0.75  # both verdicts are well represented


def test_same_verdicts_as_math_verify():
    disagreements, by_rule = [], {}
    for gold, response in CORPUS:
        ours = compute_score("math500", response, gold, timeout=30.0)["acc"]
        theirs = reference_verdict(gold, response)
        if ours == theirs:
            continue
        rule = documented_rule(gold, response)
        if rule is None:
            disagreements.append(f"gold={gold!r} response=...{response[-90:]!r}: ours {ours}, math-verify {theirs}")
        else:
            by_rule.setdefault(rule, []).append((gold, response[-60:], ours, theirs))
    assert not disagreements, f"{len(disagreements)} undocumented disagreements:\n" + "\n".join(disagreements)
    # The percent rule accepts a bare number for a percentage; the screen refuses to parse a power tower.
    assert set(by_rule) <= {"percent", "screened"}
    assert all(ours and not theirs for _, _, ours, theirs in by_rule.get("percent", []))


def test_lenient_percent_off_gives_math_verify_verdicts():
    for gold, response in [case for case in CORPUS if "%" in case[0] + case[1]]:
        ours = compute_score("math500", response, gold, lenient_percent=False, timeout=30.0)["acc"]
        assert ours == reference_verdict(gold, response), (gold, response[-80:])


@pytest.mark.parametrize("seed", range(3))
def test_fast_path_decides_only_where_math_verify_agrees(seed):
    """Generated responses of every shape; wherever fast_verdict decides, math-verify must say the same."""
    rng = random.Random(seed)
    pieces = ["\\boxed{7}", "\\boxed{8}", "\\boxed{-3}", "\\boxed{x}", "$", "$$", "\\[", "\\]", "\\(", "\\)", " ",
              "\n", ".", ",", " and ", " or ", "The final answer is ", " is ", "I hope", "Answer: ", "7", "x = ",
              "\\fbox{7}", "\\boxed{07}", "\\boxed{ 7 }", "[", "]", "\\frac{1}{2}", "\\boxed{\\frac{1}{2}}", "{", "}"]
    golds = ["7", "-3", "8", "07", "\\frac{1}{2}", "x", "0.5", "\\tfrac{7}{1}", "-6/2", "3/0"]
    boxes = ["\\boxed{7}", "\\boxed{-3}", "\\boxed{07}", "\\boxed{ 8 }", "\\boxed{\\frac{1}{2}}", "\\boxed{x}",
             "\\boxed{\\dfrac{2}{4}}", "\\boxed{1/2}", "\\boxed{-\\frac{6}{2}}", "\\boxed{\\frac{14}{2}}",
             "\\boxed{3/0}"]
    around = [("", ""), ("$", "$"), ("$$", "$$"), ("\\[", "\\]"), ("\\(", "\\)"), ("$ ", " $"), ("\\[\n", "\n\\]"),
              ("$", ""), ("", "$"), ("$x = ", "$"), ("\\[", "$")]
    endings = ["", ".", " .", "\n", ". I hope it is correct.", " and $5$", ", \\boxed{8}", "}", " is it"]
    decided = 0
    for _ in range(500):
        prefix = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 10)))
        if rng.random() < 0.6:  # mostly prose, as real responses: only the last few pieces are hostile
            prefix = FILLER * rng.randint(1, 2) + prefix[-rng.randint(0, 12):]
        opener, closer = rng.choice(around)
        tail = prefix + opener + rng.choice(boxes) + closer + rng.choice(endings)
        gold = rng.choice(golds)
        verdict = fast_verdict(gold, tail)
        if verdict is None:
            continue
        decided += 1
        assert verdict[0] == reference_verdict(gold, tail), (gold, tail)
    assert decided >= 40  # about 70 of the 500 fall in shape A or B with a decidable pair
