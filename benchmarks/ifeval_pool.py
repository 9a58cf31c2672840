"""Where an IFEval check should run: in the calling process or in the reward's worker pool. The measurements behind
``INLINE_MAX_CHARS`` in verl_focal/rewards/ifeval.py (docs/rewards.md, IFEval "Bounds").

    python benchmarks/ifeval_pool.py 2>/dev/null

A. each of the 25 instruction types on 2,000 characters of prose, warm: median seconds in process and through the
   pool (``get_pool().run(ifeval.CHECK_INSTRUCTION, ...)``), and a trivial pool round trip;
B. the slowest responses found for the library's checks (quadratic regular expressions, nltk on dense sentences),
   in process, at 2,048 to 16,384 characters;
C. ordinary prose of 40,000 characters (about an 8,192-token generation), each instruction type in a worker:
   the slowest, against the default 5 s timeout.
"""

from __future__ import annotations

import statistics
import time

from verl_focal.rewards import ifeval, sandbox

SENTENCES = ["The river runs quietly past the old mill, where children play in summer.",
             "Many people believe that reading every day improves both memory and focus.",
             "In the afternoon we walked to the market and bought apples, bread and cheese.",
             "Scientists have long studied how birds find their way across whole continents.",
             "She wrote three letters before breakfast and sent them all by noon."]
# instruction id -> arguments (one of each type, as google/IFEval writes them)
ARGUMENTS = {
    "keywords:existence": {"keywords": ["river", "market"]},
    "keywords:frequency": {"keyword": "river", "frequency": 3, "relation": "at least"},
    "keywords:forbidden_words": {"forbidden_words": ["ocean"]},
    "keywords:letter_frequency": {"letter": "z", "let_frequency": 2, "let_relation": "less than"},
    "language:response_language": {"language": "en"},
    "length_constraints:number_sentences": {"num_sentences": 10, "relation": "at least"},
    "length_constraints:number_paragraphs": {"num_paragraphs": 3},
    "length_constraints:number_words": {"num_words": 300, "relation": "at least"},
    "length_constraints:nth_paragraph_first_word": {"num_paragraphs": 3, "nth_paragraph": 2, "first_word": "many"},
    "detectable_content:number_placeholders": {"num_placeholders": 2},
    "detectable_content:postscript": {"postscript_marker": "P.S."},
    "detectable_format:number_bullet_lists": {"num_bullets": 3},
    "detectable_format:constrained_response": {},
    "detectable_format:number_highlighted_sections": {"num_highlights": 2},
    "detectable_format:multiple_sections": {"section_spliter": "Section", "num_sections": 2},
    "detectable_format:json_format": {},
    "detectable_format:title": {},
    "combination:two_responses": {},
    "combination:repeat_prompt": {"prompt_to_repeat": "Write about a river."},
    "startend:end_checker": {"end_phrase": "Any other questions?"},
    "change_case:capital_word_frequency": {"capital_frequency": 3, "capital_relation": "less than"},
    "change_case:english_capital": {},
    "change_case:english_lowercase": {},
    "punctuation:no_comma": {},
    "startend:quotation": {},
}
SLOW = [  # (what, instruction, arguments, response of n characters)
    ("'[' repeated", "detectable_content:number_placeholders", {"num_placeholders": 2}, lambda n: "[" * n),
    ("'A. ' repeated", "change_case:capital_word_frequency", {"capital_frequency": 2, "capital_relation": "at least"},
     lambda n: ("A. " * n)[:n]),
    ("a, newlines, a", "detectable_format:number_bullet_lists", {"num_bullets": 2},
     lambda n: "a" + "\n" * (n - 2) + "a"),
    ("'a. ' repeated", "length_constraints:number_sentences", {"num_sentences": 2, "relation": "at least"},
     lambda n: ("a. " * n)[:n]),
    ("a, spaces, a", "detectable_content:postscript", {"postscript_marker": "P.S."},
     lambda n: "a" + " " * (n - 2) + "a"),
    ("'<<' repeated", "detectable_format:title", {}, lambda n: ("<<" * n)[:n]),
]


def prose(chars: int) -> str:
    parts, i = [], 0
    while sum(len(p) + 1 for p in parts) < chars:
        parts.append(SENTENCES[i % len(SENTENCES)])
        i += 1
        if i % 4 == 0:
            parts.append("\n\n")
    return " ".join(parts)[:chars]


def reference(instruction_id: str, arguments: dict) -> ifeval.Reference:
    return ifeval.parse_reference({"instruction_id_list": [instruction_id], "kwargs": [arguments]})


def median_seconds(call, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def in_pool(text: str, instruction_id: str, arguments: dict, timeout: float = 30.0):
    return sandbox.get_pool().run(ifeval.CHECK_INSTRUCTION, (text, instruction_id, arguments, ""), timeout=timeout,
                                  total_timeout=timeout + 60)


def main() -> None:
    sandbox.preload(ifeval.WORKER_PRELOAD)
    in_pool("warm", "punctuation:no_comma", {})
    text = prose(2000)
    print("A. 2,000 characters of prose, warm (median of 9)")
    inline, pooled = [], []
    for instruction_id, arguments in ARGUMENTS.items():
        ref = reference(instruction_id, arguments)
        for _ in range(3):
            ifeval.check(text, ref), in_pool(text, instruction_id, arguments)
        inline.append(median_seconds(lambda: ifeval.check(text, ref), 9))
        pooled.append(median_seconds(lambda: in_pool(text, instruction_id, arguments), 9))
        print(f"   {instruction_id:46s} in process {1e3 * inline[-1]:8.2f} ms   pool {1e3 * pooled[-1]:8.2f} ms")
    trivial = median_seconds(lambda: in_pool("", "punctuation:no_comma", {}), 51)
    print(f"   median over the types: in process {1e3 * statistics.median(inline):.2f} ms, pool "
          f"{1e3 * statistics.median(pooled):.2f} ms; mean in process {1e3 * statistics.mean(inline):.2f} ms; "
          f"pool round trip of an empty response {1e3 * trivial:.2f} ms")
    print("B. slowest responses found, in process, strict and loose (seconds)")
    for size in (2048, 4096, 8192, 16384):
        row = []
        for _, instruction_id, arguments, make in SLOW:
            start = time.perf_counter()
            ifeval.check(make(size), reference(instruction_id, arguments))
            row.append(time.perf_counter() - start)
        print(f"   {size:6d} chars: " + "  ".join(f"{what} {seconds:.2f}" for (what, *_), seconds in zip(SLOW, row)))
    print("C. 40,000 characters of prose, each instruction in a worker (seconds, from the caller)")
    long_text, worst = prose(40_000), (0.0, "")
    for instruction_id, arguments in ARGUMENTS.items():
        start = time.perf_counter()
        outcome = in_pool(long_text, instruction_id, arguments, timeout=5.0)
        worst = max(worst, (time.perf_counter() - start, f"{instruction_id} ({outcome.status})"))
    print(f"   slowest: {worst[0]:.2f} s, {worst[1]}")


if __name__ == "__main__":
    main()
