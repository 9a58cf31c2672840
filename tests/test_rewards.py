"""verl_focal.rewards.math: equivalence, extraction, bounded time on hostile input, threads, process hygiene, verl."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from verl_focal.rewards.extract import last_boxed, symbolic_risk
from verl_focal.rewards.math import VERIFY, compute_score, compute_score_multiple_choice, extract_choice
from verl_focal.rewards.sandbox import OK, get_pool

KEYS = {"score", "acc", "pred", "timed_out", "screened", "unverified", "data_source"}
# A symbolic check that takes seconds (sympy expands a 4-variable polynomial) yet passes every cheap screen.
SLOW_PRED, SLOW_GOLD = "(x+y+z+1)^{90}", "x^{90}+1"
# Bound for a screened or fast-path sample; generous because CI shares 2 cores with other jobs.
FAST_S = 2.0


def score(pred: str, gold: str, **kwargs) -> dict:
    return compute_score("math500", f"Thus the result is \\boxed{{{pred}}}.", gold, **kwargs)


EQUIVALENT = [
    ("\\frac{1}{2}", "0.5"),
    ("0.5", "\\frac12"),
    ("1000", "1,000"),
    ("1000", "1{,}000"),
    ("1000000", "1,000,000"),
    ("2\\sqrt{2}", "\\sqrt{8}"),
    ("\\frac{\\sqrt{3}}{2}", "\\frac{1}{2}\\sqrt{3}"),
    ("[1,2)", "[1, 2)"),
    ("(-\\infty, 0]", "(-\\infty,0]"),
    ("(1,2)\\cup(3,4)", "(3,4)\\cup(1,2)"),
    ("\\{1,2\\}", "\\{2,1\\}"),
    ("(x+1)^2", "x^2+2x+1"),
    ("10", "10\\text{ cm}"),
    ("90^\\circ", "90"),
    ("50\\%", "50"),
    ("50\\%", "50\\%"),
    ("\\frac{\\pi}{2}", "\\pi/2"),
    ("3", "3.0"),
    ("-\\frac{1}{3}", "-1/3"),
    ("\\dfrac{3}{4}", "\\frac34"),
    ("x=2", "2"),
    ("2, 3", "3, 2"),
    ("\\$18.90", "18.90"),
]

NOT_EQUIVALENT = [
    ("\\frac12", "0.51"),
    ("1000", "100"),
    ("[1,2)", "(1,2)"),
    ("\\{1,2\\}", "\\{1,2,3\\}"),
    ("2\\sqrt{2}", "\\sqrt{2}"),
    ("x^2+1", "x^2-1"),
    ("3", "4"),
    ("\\frac{\\pi}{2}", "\\pi"),
    ("(1,2)", "(2,1)"),
    ("10", "100\\text{ cm}"),
    ("0.5", "50\\%"),
]


@pytest.mark.parametrize("gold,pred", EQUIVALENT)
def test_equivalent_answers_score_one(gold, pred):
    result = score(pred, gold)
    assert result["acc"] is True and result["score"] == 1.0, result
    assert result["pred"] == pred


@pytest.mark.parametrize("gold,pred", NOT_EQUIVALENT)
def test_non_equivalent_answers_score_zero(gold, pred):
    result = score(pred, gold)
    assert result["acc"] is False and result["score"] == 0.0, result


@pytest.mark.parametrize(
    "key,value",
    [("timeout", "abc"), ("timeout", float("nan")), ("timeout", float("inf")), ("timeout", 0), ("timeout", -1.0),
     ("timeout", True), ("timeout", None), ("total_timeout", "300"), ("total_timeout", float("nan")),
     ("dapo_scale", "false"), ("dapo_scale", 1), ("dapo_scale", None), ("lenient_percent", "true")],
)
def test_bad_reward_kwargs_raise_naming_the_key(key, value):
    with pytest.raises(ValueError, match=f"reward_kwargs.{key} "):
        compute_score("math500", "\\boxed{7}", "7", **{key: value})


def test_total_timeout_must_cover_the_timeout():
    with pytest.raises(ValueError, match="reward_kwargs.total_timeout"):
        compute_score("math500", "\\boxed{7}", "7", timeout=30, total_timeout=10)


def test_dapo_scale_is_plus_minus_one():
    assert score("7", "7", dapo_scale=True)["score"] == 1.0
    assert score("8", "7", dapo_scale=True)["score"] == -1.0
    assert compute_score("math500", "no answer at all", "7", dapo_scale=True)["score"] == -1.0


@pytest.mark.parametrize(
    "response,gold,correct",
    [
        ("\\boxed{\\frac{1}{\\sqrt{2}}}", "\\frac{\\sqrt{2}}{2}", True),  # nested braces
        ("first \\boxed{1}. " + "Wait, let me check that once more. " * 3 + "\\boxed{2}", "2", True),  # the last box
        ("\\boxed{\\{1,2\\}}", "\\{1,2\\}", True),  # escaped braces do not close the box
        ("The answer is $7$.", "7", True),  # unboxed answers are read as math-verify reads them
        ("so we get $\\frac34$", "\\frac{3}{4}", True),
        ("work...\nAnswer: $\\frac{3}{4}$.", "0.75", True),
        ("The final answer is $x+1$. I hope it is correct.", "1+x", True),
        ("\\boxed{1234}", "1, 234", False),  # a list reference is not a thousands separator
        ("\\boxed{1,234}", "1234", True),  # but a single number with one is
        ("\\boxed{1} and then \\boxed{2", "1", True),  # a truncated last box: math-verify reads the earlier one
        ("\\boxed{1} and then \\boxed{2", "2", False),
        ("I give up", "7", False),
    ],
)
def test_answers_are_read_as_math_verify_reads_them(response, gold, correct):
    assert compute_score("math500", response, gold)["acc"] is correct


def test_last_boxed_requires_a_closing_brace():
    assert last_boxed("\\boxed{\\frac{1}{2}") is None


@pytest.mark.parametrize(
    "response,gold,correct",
    [
        ("... so the answer is (C).", "C", True),
        ("\\boxed{C}", "C", True),
        ("\\boxed{\\text{(B)}}", "B", True),
        ("Answer: D", "D", True),
        ("\\boxed{A}", "C", False),
        ("I cannot decide", "A", False),
    ],
)
def test_multiple_choice(response, gold, correct):
    result = compute_score("gpqa_diamond", response, gold)
    assert result["acc"] is correct
    forced = compute_score_multiple_choice("my_mcq", response, gold)
    assert forced["acc"] is correct and forced["data_source"] == "my_mcq"


def test_extract_choice_ignores_non_letter_boxes():
    assert extract_choice("\\boxed{42}") is None


PATHOLOGICAL = {
    "power tower": "\\boxed{9^{9^{9}}}",
    "bare power tower": "\\boxed{2^3^4^5^6}",
    "python power tower": "\\boxed{9**9**9}",
    "huge exponent": "\\boxed{10^{100000000}}",
    "huge factorial": "\\boxed{1000000!}",
    "factorial of a power": "\\boxed{(10^{100})!}",
    "deep braces": "\\boxed{" + "{" * 5000 + "1" + "}" * 5000 + "}",
    "deep parentheses": "\\boxed{" + "(" * 200 + "1" + ")" * 200 + "}",
    "deep fractions": "\\boxed{" + "\\frac{1}{" * 300 + "2" + "}" * 300 + "}",
    "megabyte string": "x" * 3_000_000 + " \\boxed{7}",
    "megabyte box": "\\boxed{" + "1+" * 1_000_000 + "1}",
    "megabyte without answer": "\\" * 2_000_000,
    "unbalanced braces": "\\boxed{" * 10_000 + "7",
    "closing braces only": "}" * 100_000 + "\\boxed{7}}}}",
    "lone surrogate": "\\boxed{\ud800\udfff7}",
    "nul bytes": "\\boxed{\x00\x00}\x00",
    "mixed scripts": "\\boxed{٧}\u202e\u200b",
    "many boxes": "\\boxed{1}" * 200_000,
}


@pytest.mark.parametrize("name", list(PATHOLOGICAL))
def test_pathological_input_is_bounded_and_never_raises(name):
    start = time.monotonic()
    result = compute_score("math500", PATHOLOGICAL[name], "7", timeout=2.0)
    elapsed = time.monotonic() - start
    assert set(result) == KEYS
    assert elapsed < 2.0 + FAST_S, f"{name} took {elapsed:.1f}s"
    assert result["score"] in (0.0, 1.0)


@pytest.mark.parametrize("solution,gold", [(None, "7"), (b"\\boxed{7}", "7"), ("\\boxed{7}", None), ("\\boxed{7}", 7)])
def test_non_string_arguments_never_raise(solution, gold):
    assert set(compute_score("math500", solution, gold)) == KEYS


def test_list_ground_truth_reads_as_a_tuple():
    assert compute_score("olympiadbench", "\\boxed{2, 3}", ["2", "3"])["acc"] is True


def test_screens_flag_explosive_answers_only():
    assert symbolic_risk("9^{9^{9}}") and symbolic_risk("2^3^4") and symbolic_risk("(3!)!")
    for benign in ("x^2y^3", "2**3+4**5", "e^{i\\pi}", "\\frac{\\sqrt{3}}{2}", "5!", "2^{100}"):
        assert symbolic_risk(benign) is None, benign


def _warm_pool():
    assert get_pool().run(VERIFY, ("1", "\\boxed{1}"), timeout=60, total_timeout=180).status == OK


def test_timeout_scores_zero_counts_and_does_not_slow_the_next_sample():
    _warm_pool()  # the pool is warm: start-up is not what this test measures
    start = time.monotonic()
    slow = score(SLOW_PRED, SLOW_GOLD, timeout=1.0)
    elapsed = time.monotonic() - start
    assert slow["timed_out"] == 1 and slow["score"] == 0.0 and slow["screened"] == 0
    assert elapsed < 1.0 + FAST_S
    start = time.monotonic()
    after = score("\\frac{2}{4}", "0.5", timeout=10.0)  # needs a worker: not decided by the fast path
    assert after["acc"] is True and after["timed_out"] == 0
    assert time.monotonic() - start < FAST_S


def test_key_set_is_identical_for_every_outcome():
    results = [
        score("7", "7"),
        score("8", "7"),
        score(SLOW_PRED, SLOW_GOLD, timeout=0.5),
        compute_score("math500", PATHOLOGICAL["power tower"], "7"),
        compute_score("math500", "", "7"),
        compute_score("gpqa_diamond", "(B)", "B"),
    ]
    assert all(set(r) == KEYS for r in results)
    assert [type(r[k]) for r in results for k in sorted(KEYS)] == [
        type(results[0][k]) for _ in results for k in sorted(KEYS)
    ]


def test_works_off_the_main_thread_as_verl_calls_it():
    golds = ["\\frac{1}{2}", "2\\sqrt{2}", "[1,2)", "7"]
    preds = ["0.5", "\\sqrt{8}", "[1, 2)", "7"]
    with ThreadPoolExecutor(max_workers=8) as executor:
        results = list(executor.map(lambda i: score(preds[i % 4], golds[i % 4]), range(24)))
    assert all(r["acc"] for r in results)

    async def like_naive_reward_manager() -> dict:
        # verl's NaiveRewardManager.run_single: a sync scorer runs in the event loop's default executor
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, lambda: score("x^2+2x+1", "(x+1)^2"))

    assert asyncio.run(like_naive_reward_manager())["acc"] is True
    assert threading.current_thread() is threading.main_thread()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purposes
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def _wait_gone(pids: list[int], within: float) -> list[int]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.1)
    return [p for p in pids if _alive(p)]


def test_timed_out_worker_is_killed_and_replaced():
    pool = get_pool()
    _warm_pool()
    before = set(pool.pids())
    assert score(SLOW_PRED, SLOW_GOLD, timeout=0.5)["timed_out"] == 1
    gone = before - set(pool.pids())
    assert len(gone) == 1 and _wait_gone(list(gone), within=5.0) == []
    deadline = time.monotonic() + 60
    while len(pool.pids()) < pool.size and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(pool.pids()) == pool.size


def test_a_memory_bomb_ends_as_a_memory_error_inside_its_worker():
    from verl_focal.rewards.sandbox import ERROR

    outcome = get_pool().run("builtins:bytearray", (3 * 1024**3,), timeout=30, total_timeout=180)  # 3 GiB > the cap
    assert outcome.status == ERROR and outcome.error.startswith("MemoryError"), outcome
    assert score("\\frac{2}{4}", "0.5")["acc"] is True  # the pool carries on


def test_an_idle_worker_killed_from_outside_does_not_cost_a_score():
    """pebble gives up its whole pool when a worker dies outside a task (an OOM kill, say); ours replaces it."""
    pool = get_pool()
    _warm_pool()
    while len(pool.pids()) < pool.size:
        time.sleep(0.1)
    os.kill(pool.pids()[0], 9)
    time.sleep(0.5)  # pebble notices within its 0.1 s status loop
    result = score("\\frac{2}{4}", "0.5")  # needs a worker
    assert result["acc"] is True and result["unverified"] == 0, result
    assert len(pool.pids()) >= 1


@pytest.mark.parametrize("how", ["SIGKILL", "exit"])
def test_workers_die_with_their_parent(how):
    # The parent starts the pool from a short-lived thread (as verl's executor does), reports every process it
    # has started (workers, fork server, multiprocessing's helpers), then dies hard (SIGKILL: no atexit, no
    # cleanup) or exits while a check is still running.
    script = textwrap.dedent(
        f"""
        import os, threading, time
        from verl_focal.rewards.math import compute_score
        from verl_focal.rewards.sandbox import descendants, get_pool

        if __name__ == "__main__":
            t = threading.Thread(target=lambda: compute_score("m", "\\\\boxed{{x^2+1}}", "1+x^2")); t.start(); t.join()
            threading.Thread(target=lambda: compute_score("m", "\\\\boxed{{{SLOW_PRED}}}", "{SLOW_GOLD}", timeout=60),
                             daemon=True).start()
            pool = get_pool()
            while len(pool.pids()) < pool.size:
                time.sleep(0.1)
            time.sleep(0.5)
            print(len(pool.pids()), " ".join(map(str, descendants(os.getpid()))), flush=True)
            if "{how}" == "SIGKILL":
                os.kill(os.getpid(), 9)
            os._exit(0)
        """
    )
    path = Path(tempfile.mkdtemp()) / "parent.py"
    path.write_text(script)
    parent = subprocess.Popen([sys.executable, str(path)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        fields = parent.stdout.readline().split()
        parent.wait(timeout=120)  # reaped, as a Ray actor is by its raylet
    finally:
        parent.kill()
        parent.stdout.close()
    assert fields and int(fields[0]) == get_pool().size
    pids = [int(p) for p in fields[1:]]
    assert len(pids) > get_pool().size  # the workers and the fork server at least
    left = _wait_gone(pids, within=10.0)
    for pid in left:
        os.kill(pid, 9)
    assert left == [], "verifier processes outlived their parent"


def test_loaded_by_verl_from_its_own_config():
    """verl 0.9.1 resolves pkg:// paths and merges reward_kwargs; the dict flows through its naive manager."""
    from hydra import compose, initialize_config_dir
    import verl
    from verl.trainer.ppo.reward import get_custom_reward_fn

    config_dir = str(Path(verl.__file__).parent / "trainer" / "config")
    with initialize_config_dir(config_dir=config_dir, version_base=None):
        config = compose(
            config_name="ppo_trainer",
            overrides=[
                "reward.custom_reward_function.path=pkg://verl_focal.rewards.math",
                "+reward.custom_reward_function.reward_kwargs.dapo_scale=true",
                "+reward.custom_reward_function.reward_kwargs.timeout=5",
            ],
        )
    assert config.reward.custom_reward_function.name == "compute_score"
    reward_fn = get_custom_reward_fn(config)
    right = reward_fn(data_source="aime24", solution_str="\\boxed{033}", ground_truth="33", extra_info={"index": 0})
    wrong = reward_fn(data_source="aime24", solution_str="\\boxed{34}", ground_truth="33", extra_info={"index": 1})
    assert (right["score"], wrong["score"]) == (1.0, -1.0)
    assert right["data_source"] == "aime24" and set(right) == KEYS


@pytest.mark.parametrize("override,key", [("dapo_scale='false'", "dapo_scale"), ("timeout=abc", "timeout"),
                                          ("timeout=nan", "timeout")])
def test_verl_config_with_a_bad_reward_kwarg_raises_at_the_first_call(override, key):
    """On verl's command line `dapo_scale=false` is a bool but a quoted 'false' a string; `nan` is a float."""
    from hydra import compose, initialize_config_dir
    import verl
    from verl.trainer.ppo.reward import get_custom_reward_fn

    config_dir = str(Path(verl.__file__).parent / "trainer" / "config")
    with initialize_config_dir(config_dir=config_dir, version_base=None):
        config = compose(
            config_name="ppo_trainer",
            overrides=["reward.custom_reward_function.path=pkg://verl_focal.rewards.math",
                       f"+reward.custom_reward_function.reward_kwargs.{override}"],
        )
    reward_fn = get_custom_reward_fn(config)
    with pytest.raises(ValueError, match=f"reward_kwargs.{key} "):
        reward_fn(data_source="aime24", solution_str="\\boxed{33}", ground_truth="33", extra_info={})


LATEX_PIECES = ["\\boxed{", "\\fbox{", "{", "}", "^", "^{", "\\frac{", "\\sqrt{", "(", ")", "[", "]", "!", "1", "9",
                "0", ".", ",", "x", "-", "+", "\\%", "$", " ", "\\", "Answer: ", "\n", "\ud800", "\\infty", "\\cup"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pieces=st.lists(st.sampled_from(LATEX_PIECES), max_size=60),
    gold=st.sampled_from(["7", "\\frac{1}{2}", "[1,2)", "x^2+1", "50\\%", "C"]),
    source=st.sampled_from(["math500", "gpqa_diamond"]),
)
def test_fuzzed_latex_never_raises_and_keeps_the_contract(pieces, gold, source):
    start = time.monotonic()
    result = compute_score(source, "".join(pieces), gold, timeout=2.0)
    assert time.monotonic() - start < 2.0 + FAST_S
    assert set(result) == KEYS and result["score"] in (0.0, 1.0) and isinstance(result["pred"], str)
    assert result["acc"] == (result["score"] == 1.0)
