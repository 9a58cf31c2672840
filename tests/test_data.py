"""verl-focal data: every source format, the paper's filters, errors naming file and column, and verl loading it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from verl_focal.cli import main as verl_focal
from verl_focal.data.prepare import prepare
from verl_focal.data.readers import DataError
from verl_focal.data.synthetic import GENERATORS, generate_problems, write_synthetic
from verl_focal.data.verl_format import SYSTEM_PROMPT

FIXTURES = Path(__file__).parent / "fixtures" / "data"


def read_rows(path: Path) -> list[dict]:
    return pq.read_table(path).to_pylist()


def build_tokenizer(directory: Path, with_chat_template: bool = True) -> Path:
    """A word-level tokenizer over whitespace-split words, built offline and saved like a Hub tokenizer."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = set(SYSTEM_PROMPT.split())
    for line in (FIXTURES / "deepscaler.jsonl").read_text(encoding="utf-8").splitlines():
        words.update(json.loads(line)["problem"].split())
    vocab = {"[UNK]": 0, "[PAD]": 1, "<|im_end|>": 2}
    for word in sorted(words):
        vocab.setdefault(word, len(vocab))
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]",
                                        eos_token="<|im_end|>")
    if with_chat_template:
        tokenizer.chat_template = "{% for m in messages %}{{ m['role'] }} {{ m['content'] }} <|im_end|> {% endfor %}"
    tokenizer.save_pretrained(directory)
    return directory


def assert_verl_rows(rows: list[dict], data_source: str, split: str) -> None:
    for index, row in enumerate(rows):
        assert set(row) == {"data_source", "prompt", "ability", "reward_model", "extra_info"}
        assert row["data_source"] == data_source
        assert row["prompt"][0] == {"role": "system", "content": SYSTEM_PROMPT}
        assert row["prompt"][1]["role"] == "user" and row["prompt"][1]["content"]
        assert row["reward_model"]["style"] == "rule" and row["reward_model"]["ground_truth"]
        assert row["extra_info"]["split"] == split and row["extra_info"]["index"] == index


@pytest.mark.parametrize(
    "dataset,fixture,answers",
    [
        ("math500", "math500.jsonl", ["5\\sqrt{2}", "3", "[0,1)"]),
        ("aime24", "aime24_repeated.parquet", ["24", "9", "210"]),  # verl-format copy, each problem 4 times
        ("aime25", "aime25.json", ["1001", "20"]),
        ("amc23", "amc23.parquet", ["27", "3.5"]),  # float answers: 27.0 is the integer 27
        ("minerva", "minerva.jsonl", ["20", "\\pi"]),
        ("olympiadbench", "olympiadbench_hf", ["-2, 2", "\\frac{5}{6}"]),  # HF DatasetDict directory, list answers
    ],
)
def test_benchmarks_in_each_format(tmp_path, capsys, dataset, fixture, answers):
    output = tmp_path / f"{dataset}.parquet"
    assert verl_focal(["data", dataset, "--input", str(FIXTURES / fixture), "--output", str(output)]) == 0
    rows = read_rows(output)
    assert_verl_rows(rows, dataset, "test")
    assert [r["reward_model"]["ground_truth"] for r in rows] == answers
    printed = capsys.readouterr().out
    assert f"kept {len(answers)}" in printed and "read" in printed


def test_aime_copies_are_deduplicated_and_reported(tmp_path):
    report = prepare("aime24", FIXTURES / "aime24_repeated.parquet", tmp_path / "a.parquet")
    assert (report.read, report.duplicates, report.kept) == (12, 9, 3)


def test_gpqa_options_are_shuffled_reproducibly_and_the_letter_names_the_correct_one(tmp_path):
    first = read_rows(prepare_to(tmp_path / "g0.parquet", "gpqa_diamond", "gpqa_diamond.csv", seed=0))
    again = read_rows(prepare_to(tmp_path / "g1.parquet", "gpqa_diamond", "gpqa_diamond.csv", seed=0))
    assert first == again
    correct = {"rec1": "neutron", "rec2": "7"}
    for row in first:
        letter = row["reward_model"]["ground_truth"]
        options = dict(re.findall(r"^\(([A-D])\) (.*)$", row["prompt"][1]["content"], re.MULTILINE))
        assert sorted(options) == ["A", "B", "C", "D"]
        assert options[letter] == correct[row["extra_info"]["id"]]
        assert row["data_source"] == "gpqa_diamond"
    orders = set()
    for seed in range(8):
        question = read_rows(prepare_to(tmp_path / f"s{seed}.parquet", "gpqa_diamond", "gpqa_diamond.csv", seed=seed))
        orders.add(tuple(re.findall(r"^\([A-D]\) (.*)$", question[0]["prompt"][1]["content"], re.MULTILINE)))
    assert len(orders) > 1  # the seed moves the options


def prepare_to(output: Path, dataset: str, fixture: str, **kwargs) -> Path:
    prepare(dataset, FIXTURES / fixture, output, **kwargs)
    return output


def test_deepscaler_without_tokenizer_says_the_length_filter_was_skipped(tmp_path, capsys):
    output = tmp_path / "train.parquet"
    argv = ["data", "deepscaler", "--input", str(FIXTURES / "deepscaler.jsonl"), "--output", str(output)]
    assert verl_focal(argv) == 0
    printed = capsys.readouterr().out
    assert "length filter NOT applied" in printed and "--tokenizer" in printed
    assert "dropped 1 repeated rows" in printed and "dropped 2 rows of 1 problems" in printed
    rows = read_rows(output)
    assert_verl_rows(rows, "deepscaler", "train")
    # the exact repeat collapses; both copies of the conflicting problem (they differ in spacing only) go
    assert [r["reward_model"]["ground_truth"] for r in rows] == ["5", "\\frac{3}{2}", "3", "4"]


@pytest.mark.parametrize("with_chat_template", [True, False])
def test_deepscaler_length_filter_uses_the_given_tokenizer(tmp_path, capsys, with_chat_template):
    tokenizer = build_tokenizer(tmp_path / "tok", with_chat_template)
    output = tmp_path / "train.parquet"
    argv = ["data", "deepscaler", "--input", str(FIXTURES / "deepscaler.jsonl"), "--output", str(output),
            "--tokenizer", str(tokenizer)]
    assert verl_focal(argv) == 0
    assert "dropped 1 prompts longer than 1024 tokens" in capsys.readouterr().out
    assert [r["reward_model"]["ground_truth"] for r in read_rows(output)] == ["5", "\\frac{3}{2}", "4"]
    # 12 words of system prompt + 3 of "What is $2+3$?" (+ 4 template words: roles and end markers) is the
    # shortest prompt; every other one is longer, so this cap keeps exactly one row.
    cap = 15 + (4 if with_chat_template else 0)
    source = FIXTURES / "deepscaler.jsonl"
    tight = prepare("deepscaler", source, tmp_path / "t.parquet", tokenizer, max_prompt_tokens=cap)
    assert (tight.too_long, tight.kept) == (3, 1)
    with pytest.raises(ValueError, match="no rows left"):
        prepare("deepscaler", source, tmp_path / "u.parquet", tokenizer, max_prompt_tokens=cap - 1)


def test_verl_rlhf_dataset_loads_the_output_and_agrees_on_prompt_length(tmp_path):
    """verl's own RLHFDataset reads the parquet; its overlong filter drops exactly what ours drops."""
    from omegaconf import OmegaConf
    from transformers import AutoTokenizer
    from verl.utils.dataset.rl_dataset import RLHFDataset

    tokenizer = AutoTokenizer.from_pretrained(str(build_tokenizer(tmp_path / "tok")), local_files_only=True)
    unfiltered, filtered = tmp_path / "all.parquet", tmp_path / "short.parquet"
    prepare("deepscaler", FIXTURES / "deepscaler.jsonl", unfiltered)
    prepare("deepscaler", FIXTURES / "deepscaler.jsonl", filtered, tmp_path / "tok")
    config = OmegaConf.create({"max_prompt_length": 1024, "filter_overlong_prompts": True,
                               "cache_dir": str(tmp_path / "cache")})
    verl_all = RLHFDataset([str(unfiltered)], tokenizer, config)
    verl_short = RLHFDataset([str(filtered)], tokenizer, config)
    assert len(verl_all) == len(verl_short) == len(read_rows(filtered)) == 3
    item = verl_short[0]
    assert item["raw_prompt"][0]["content"] == SYSTEM_PROMPT
    assert item["reward_model"]["ground_truth"] == "5" and item["data_source"] == "deepscaler"


@pytest.mark.parametrize(
    "content,needle",
    [
        ('{"prompt_text": "q", "solution": "2"}\n', "no question column"),
        ('{"problem": "q", "solution": "2"}\n', "no answer column"),
        ('{"problem": "q", "answer": "2"}\n{"problem": "r"}\n', "row 1: column 'answer' missing"),
        ('{"problem": "q", "answer": ""}\n', "answer is empty"),
        ('{"problem": "q", "answer": "2"}\n{"problem": \n', ":2: invalid JSON"),
        ('{"problem": "", "answer": "2"}\n', "column 'problem' is empty"),
    ],
)
def test_bad_input_names_file_and_column(tmp_path, capsys, content, needle):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(content, encoding="utf-8")
    assert verl_focal(["data", "math500", "--input", str(bad), "--output", str(tmp_path / "o.parquet")]) == 2
    error = capsys.readouterr().err
    assert str(bad) in error and needle in error, error
    assert not (tmp_path / "o.parquet").exists()


def test_committed_bad_fixture_and_missing_inputs(tmp_path, capsys):
    bad = FIXTURES / "bad_columns.jsonl"
    assert verl_focal(["data", "aime25", "--input", str(bad), "--output", str(tmp_path / "o.parquet")]) == 2
    error = capsys.readouterr().err
    assert "bad_columns.jsonl" in error and "['prompt_text', 'solution']" in error
    with pytest.raises(DataError, match="no such file"):
        prepare("math500", tmp_path / "missing.parquet", tmp_path / "o.parquet")
    with pytest.raises(DataError, match="no split 'validation'"):
        prepare("olympiadbench", FIXTURES / "olympiadbench_hf", tmp_path / "o.parquet", split="validation")
    with pytest.raises(DataError, match="cannot load a tokenizer"):
        prepare("deepscaler", FIXTURES / "deepscaler.jsonl", tmp_path / "o.parquet", tokenizer_path=tmp_path)
    gpqa_without_options = tmp_path / "gpqa.csv"
    gpqa_without_options.write_text("Question,Correct Answer,Incorrect Answer 1\nq,a,b\n", encoding="utf-8")
    with pytest.raises(DataError, match="gpqa.csv row 0: column 'Incorrect Answer 2' missing"):
        prepare("gpqa_diamond", gpqa_without_options, tmp_path / "o.parquet")


def test_directory_of_files_and_json_layouts(tmp_path):
    folder = tmp_path / "snapshot" / "data"
    folder.mkdir(parents=True)
    (folder / "part-0.jsonl").write_text('{"problem": "a", "answer": 1}\n', encoding="utf-8")
    (folder / "part-1.json").write_text(json.dumps({"problem": ["b"], "answer": [2]}), encoding="utf-8")
    (folder / "part-2.json").write_text(json.dumps({"data": [{"problem": "c", "answer": 3}]}), encoding="utf-8")
    report = prepare("minerva", tmp_path / "snapshot", tmp_path / "o.parquet")
    assert report.read == 3 and len(report.sources) == 3
    assert [r["reward_model"]["ground_truth"] for r in read_rows(tmp_path / "o.parquet")] == ["1", "2", "3"]


def _solve(question: str) -> int:
    """Independent check of a synthetic answer from its question text."""
    if match := re.fullmatch(r"Solve for x: (\d+)x \+ (\d+) = (-?\d+)\.", question):
        a, b, c = map(int, match.groups())
        assert (c - b) % a == 0
        return (c - b) // a
    if match := re.fullmatch(r"What is (\d+)\^2\?", question):
        return int(match.group(1)) ** 2
    a, op, b = re.fullmatch(r"What is (\d+) ([-+*/]) (\d+)\?", question).groups()
    a, b = int(a), int(b)
    if op == "/":
        assert a % b == 0
        return a // b
    return {"+": a + b, "-": a - b, "*": a * b}[op]


def test_synthetic_problems_are_exact_deterministic_and_parameterised():
    problems = generate_problems(600, seed=3)
    assert problems == generate_problems(600, seed=3)
    assert problems != generate_problems(600, seed=4)
    assert {p["kind"] for p in problems} == set(GENERATORS)
    for problem in problems:
        assert int(problem["answer"]) == _solve(problem["question"])
    tiny = generate_problems(200, seed=0, max_operand=9, kinds=("add",))
    assert all(re.fullmatch(r"What is \d \+ \d\?", p["question"]) for p in tiny)
    assert all(0 <= int(p["answer"]) <= 18 for p in tiny)
    with pytest.raises(ValueError, match="unknown problem kinds"):
        generate_problems(1, seed=0, kinds=("cube",))


def test_synthetic_cli_writes_verl_rows_that_the_reward_scores(tmp_path, capsys):
    from verl_focal.rewards.math import compute_score

    output = tmp_path / "syn.parquet"
    assert verl_focal(["data", "synthetic", "--n", "50", "--seed", "0", "--output", str(output)]) == 0
    assert "wrote 50 problems" in capsys.readouterr().out
    rows = read_rows(output)
    assert len(rows) == 50
    assert_verl_rows(rows, "synthetic", "train")
    assert write_synthetic(tmp_path / "again.parquet", 50, 0) and read_rows(tmp_path / "again.parquet") == rows
    for row in rows[:12]:
        truth = row["reward_model"]["ground_truth"]
        assert compute_score("synthetic", f"so \\boxed{{{truth}}}", truth, row["extra_info"])["acc"] is True
