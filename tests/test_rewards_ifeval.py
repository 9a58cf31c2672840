"""IFEval: each of the 25 instruction types followed and broken; loose vs strict; references; bad responses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

from verl_focal.rewards import ifeval
from verl_focal.rewards.ifeval import score_response

# instruction id -> (kwargs, a response that follows it, one that breaks it)
CASES = {
    "keywords:existence": ({"keywords": ["apple", "tree"]}, "An Apple grows on a tree.", "An apple."),
    "keywords:frequency": ({"keyword": "sun", "frequency": 2, "relation": "at least"}, "Sun, sun!", "The sun."),
    "keywords:forbidden_words": ({"forbidden_words": ["bad"]}, "A good day.", "A Bad day."),
    "keywords:letter_frequency": ({"letter": "z", "let_frequency": 2, "let_relation": "less than"}, "A zoo.",
                                  "Zizzle."),
    "language:response_language": ({"language": "en"},
                                   "The weather is lovely today and we are going to the park together.",
                                   "Le temps est magnifique aujourd'hui et nous allons au parc ensemble."),
    "length_constraints:number_sentences": ({"num_sentences": 2, "relation": "less than"}, "Just one sentence.",
                                            "One. Two. Three."),
    "length_constraints:number_paragraphs": ({"num_paragraphs": 2}, "First part.\n***\nSecond part.",
                                             "Only one part."),
    "length_constraints:number_words": ({"num_words": 5, "relation": "at least"}, "one two three four five",
                                        "one two"),
    "length_constraints:nth_paragraph_first_word": (
        {"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "then"},
        "First paragraph.\n\nThen the second.", "First paragraph.\n\nNow the second."),
    "detectable_content:number_placeholders": ({"num_placeholders": 2}, "Dear [name], at [address].",
                                               "Dear [name]."),
    "detectable_content:postscript": ({"postscript_marker": "P.S."}, "Hello.\nP.S. See you.", "Hello."),
    "detectable_format:number_bullet_lists": ({"num_bullets": 2}, "* one\n* two", "* one"),
    "detectable_format:constrained_response": ({}, "My answer is yes.", "Sure thing."),
    "detectable_format:number_highlighted_sections": ({"num_highlights": 2}, "*one* and *two*", "*one* only"),
    "detectable_format:multiple_sections": ({"section_spliter": "Section", "num_sections": 2},
                                            "Section 1\nalpha\nSection 2\nbeta", "Section 1\nalpha"),
    "detectable_format:json_format": ({}, '{"a": 1}', "a: 1"),
    "detectable_format:title": ({}, "<<A Poem>>\nRoses.", "A Poem\nRoses."),
    "combination:two_responses": ({}, "First answer.\n******\nSecond answer.", "First answer."),
    "combination:repeat_prompt": ({"prompt_to_repeat": "Say hi."}, "Say hi. Hi!", "Hi!"),
    "startend:end_checker": ({"end_phrase": "Any other questions?"}, "Done. Any other questions?",
                             "Any other questions? Done."),
    "change_case:capital_word_frequency": ({"capital_frequency": 2, "capital_relation": "at least"},
                                           "THE BIG dog.", "The BIG dog."),
    "change_case:english_capital": ({}, "THIS RESPONSE IS WRITTEN IN CAPITAL LETTERS AND IN ENGLISH.",
                                    "This response is written in English with some capital letters."),
    "change_case:english_lowercase": ({}, "this response is written in lowercase letters and in english.",
                                      "This response is written in English with some capital letters."),
    "punctuation:no_comma": ({}, "No commas here.", "Well, a comma."),
    "startend:quotation": ({}, '"A quoted answer."', "An unquoted answer."),
}


def record(*ids: str, **kwargs_by_id) -> dict:
    return {"instruction_id_list": list(ids), "kwargs": [kwargs_by_id.get(i, CASES[i][0]) for i in ids]}


def test_all_25_instruction_types_are_known_and_covered():
    assert len(ifeval.instruction_types()) == 25
    assert set(CASES) == ifeval.instruction_types()


@pytest.mark.parametrize("instruction_id", sorted(CASES))
def test_followed_scores_one_and_broken_scores_zero(instruction_id):
    kwargs, followed, broken = CASES[instruction_id]
    truth = record(instruction_id)
    good, bad = score_response(followed, truth), score_response(broken, truth)
    assert (good["score"], good["acc"], good["ifeval_strict_followed"]) == (1.0, True, 1)
    assert (bad["score"], bad["acc"], bad["ifeval_strict_followed"]) == (0.0, False, 0)


def test_prompt_level_needs_every_instruction_and_counts_go_to_extra_keys():
    truth = json.dumps(record("punctuation:no_comma", "keywords:existence", "startend:quotation"))
    result = score_response("An apple, on a tree.", truth)
    assert (result["score"], result["ifeval_instructions"], result["ifeval_strict_followed"]) == (0.0, 3, 1)
    assert score_response("An apple, on a tree.", truth, dapo_scale=True)["score"] == -1.0


def test_loose_forgives_a_first_line_and_markdown_strict_does_not():
    truth = record("detectable_format:json_format", "startend:end_checker",
                   **{"startend:end_checker": {"end_phrase": "Any other questions?"}})
    result = score_response('Here you are:\n{"a": 1}\nAny other questions?', record("detectable_format:json_format"))
    assert (result["acc"], result["ifeval_loose"], result["ifeval_loose_followed"]) == (False, 1, 1)
    starred = score_response("Done. **Any other questions?**", truth)
    assert (starred["ifeval_strict_followed"], starred["ifeval_loose_followed"]) == (0, 1)


def test_published_parquet_record_with_null_kwargs_and_numpy_values():
    np = pytest.importorskip("numpy")
    nulls = {"num_highlights": None, "relation": None, "num_words": None, "keywords": None, "language": None}
    truth = {"instruction_id_list": np.array(["length_constraints:number_words", "keywords:existence"]),
             "kwargs": np.array([{**nulls, "relation": "at least", "num_words": np.int64(3)},
                                 {**nulls, "keywords": np.array(["cat"])}], dtype=object),
             "prompt": "Write about a cat in three words or more."}
    assert score_response("The cat sleeps.", truth)["acc"] is True
    assert score_response("The dog sleeps.", truth)["acc"] is False


@pytest.mark.parametrize("ground_truth", [
    None, "", "not json", "[]", json.dumps({"instruction_id_list": [], "kwargs": []}),
    json.dumps({"instruction_id_list": ["no:such_instruction"], "kwargs": [{}]}),
    json.dumps({"instruction_id_list": ["punctuation:no_comma"], "kwargs": []}),
    json.dumps({"instruction_id_list": ["length_constraints:number_words"], "kwargs": [{"relation": "at least"}]}),
    json.dumps({"instruction_id_list": ["length_constraints:number_words"],
                "kwargs": [{"relation": "roughly", "num_words": 3}]}),
])
def test_unusable_references_score_zero_instead_of_random_checks(ground_truth):
    result = score_response("Any response at all.", ground_truth)
    assert (result["score"], result["acc"], result["ifeval_instructions"]) == (0.0, False, 0)


@pytest.mark.parametrize("response", [None, "", "   \n ", 12345, "\ud800 lone surrogate", "\x00" * 50,
                                      "[" * 2000 + "{" * 2000, "x" * (ifeval.MAX_RESPONSE_CHARS + 1)])
def test_bad_responses_never_raise_and_score_zero(response):
    truth = record("punctuation:no_comma", "detectable_format:json_format", "detectable_content:number_placeholders")
    result = score_response(response, truth)
    assert result["acc"] is False and result["score"] == 0.0
    assert result["ifeval_oversize"] == int(isinstance(response, str) and len(response) > ifeval.MAX_RESPONSE_CHARS)


def test_oversize_responses_are_not_checked():
    ifeval.instruction_types()  # lm-eval loaded before the clock starts
    start = time.monotonic()
    result = score_response("[" * 10_000_000, record("detectable_content:number_placeholders"))
    assert time.monotonic() - start < 1.0 and result["ifeval_oversize"] == 1


PROSE = "Rivers carry water from the hills to the sea. They shape valleys over many years.\n\n"


def test_long_responses_are_checked_in_workers_with_the_in_process_verdict():
    # Longer than the in-process limit: each instruction in a worker. 20,000 characters used to score 0 unchecked.
    long = PROSE * (20_000 // len(PROSE))
    assert len(long) > ifeval.INLINE_MAX_CHARS
    ids = ["punctuation:no_comma", "language:response_language", "length_constraints:number_sentences",
           "keywords:existence", "detectable_format:title"]
    truth = record(*ids)
    reference = ifeval.parse_reference(truth)
    result = score_response(long, truth)
    in_process = ifeval.check(long, reference)
    assert (result["ifeval_strict_followed"], result["ifeval_loose_followed"]) == \
        (sum(in_process.strict), sum(in_process.loose)) == (2, 2)  # no commas, English; the rest broken
    assert (result["timed_out"], result["unverified"], result["ifeval_oversize"]) == (0, 0, 0)
    assert score_response(long, record("punctuation:no_comma"))["acc"] is True


def test_a_check_that_overruns_its_timeout_is_not_followed_and_counted():
    start = time.monotonic()
    result = score_response("[" * 60_000, record("detectable_content:number_placeholders"), timeout=0.5)
    assert (result["acc"], result["timed_out"], result["unverified"]) == (False, 1, 0)
    assert time.monotonic() - start < 10


def test_math_never_loads_lm_eval_and_ifeval_loads_it_into_running_workers(tmp_path):
    # A math pool (fork server started without lm-eval), then the first long IFEval response: its workers are
    # replaced by workers that import lm-eval before their first check.
    script = textwrap.dedent("""
        import sys
        from verl_focal.rewards import compute_score
        from verl_focal.rewards.sandbox import get_pool

        def loaded(name):
            return name in sys.modules

        def in_worker(name):
            return get_pool().run(loaded, (name,), timeout=30, total_timeout=120).value

        if __name__ == "__main__":
            synlogic = '{"task": "operation", "answer": "12", "metadata": {}}'
            assert compute_score("math500", "\\\\boxed{(x+1)^2}", "x^2+2x+1")["acc"]
            assert compute_score("gpqa_diamond", "\\\\boxed{A}", "A")["acc"]
            assert compute_score("synlogic", "\\\\boxed{12}", synlogic)["acc"]
            print(loaded("lm_eval"), in_worker("lm_eval"), in_worker("math_verify"))
            ifeval = '{"instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]}'
            print(compute_score("ifeval", "No commas here. " * 400, ifeval)["acc"], in_worker("lm_eval"))
    """)
    path = tmp_path / "scorer.py"  # a file: workers import the functions of its __main__
    path.write_text(script)
    env = {**os.environ, "VERL_FOCAL_REWARD_WORKERS": "1"}
    run = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split("\n")[:2] == ["False False True", "True True"]


def test_missing_library_names_the_extra():
    script = ("import sys; sys.modules['lm_eval'] = None\n"
              "from verl_focal.rewards.ifeval import score_response\n"
              "score_response('x', {'instruction_id_list': ['punctuation:no_comma'], 'kwargs': [{}]})\n")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert run.returncode != 0 and "pip install 'verl-focal[ood]'" in run.stderr


def test_a_replaced_pool_finishes_the_checks_it_has():
    # What sandbox.preload does to a running pool: the check in flight ends normally, the next one runs anew.
    from concurrent.futures import ThreadPoolExecutor

    from verl_focal.rewards.sandbox import OK, VerifierPool

    pool = VerifierPool(workers=1)
    try:
        assert pool.run("time:sleep", (0.0,), timeout=30, total_timeout=120).status == OK  # started
        [old_worker] = pool.pids()
        with ThreadPoolExecutor(1) as executor:  # the shell's parent is the worker that ran the check
            running = executor.submit(pool.run, "subprocess:getoutput", ("sleep 1.5; echo $PPID",), timeout=30,
                                      total_timeout=120)
            time.sleep(0.5)
            pool.restart()
            assert pool.run("time:sleep", (0.0,), timeout=30, total_timeout=120).status == OK
            assert old_worker not in pool.pids()
            finished = running.result()
            assert (finished.status, finished.value) == (OK, str(old_worker))  # not run again on the new pool
    finally:
        pool.close()
