"""``verl-focal data ifeval|synlogic``: fixtures in each source format, Table 9 prompts, refusals, scoring."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from verl_focal.cli import main as verl_focal
from verl_focal.rewards import compute_score

FIXTURES = Path(__file__).parent / "fixtures" / "data"


def rows(path: Path) -> list[dict]:
    return pq.read_table(path).to_pylist()


@pytest.mark.parametrize("source", ["ifeval_input_data.jsonl", "ifeval_hf"])
@pytest.mark.parametrize("model,system", [("qwen2_5_7b", "You are a helpful assistant."), ("qwen3_4b_base", None),
                                          ("llama3_2_3b_instruct", None)])
def test_ifeval_rows_carry_the_record_and_table_9_prompt(tmp_path, capsys, source, model, system):
    out = tmp_path / "ifeval.parquet"
    assert verl_focal(["data", "ifeval", "--input", str(FIXTURES / source), "--output", str(out),
                       "--model", model]) == 0
    written = rows(out)
    assert len(written) == 3 and {row["data_source"] for row in written} == {"ifeval"}
    first = written[0]
    question = "Write two sentences about rivers without using any commas."
    assert first["prompt"][-1] == {"role": "user", "content": question}
    assert (first["prompt"][0]["content"] if len(first["prompt"]) == 2 else None) == system
    truth = json.loads(first["reward_model"]["ground_truth"])
    assert truth["instruction_id_list"] == ["punctuation:no_comma", "length_constraints:number_sentences"]
    assert truth["kwargs"] == [{}, {"num_sentences": 3, "relation": "less than"}]  # nulls of the Hub copy gone
    assert ("enable_thinking=false" in capsys.readouterr().out) == (model == "qwen3_4b_base")
    assert compute_score("ifeval", "Rivers run. They sing.", first["reward_model"]["ground_truth"])["acc"] is True
    assert compute_score("ifeval", "Rivers run, and sing.", first["reward_model"]["ground_truth"])["acc"] is False


def test_synlogic_keeps_scored_tasks_and_names_the_dropped(tmp_path, capsys):
    out = tmp_path / "synlogic.parquet"
    assert verl_focal(["data", "synlogic", "--input", str(FIXTURES / "synlogic"), "--config", "easy",
                       "--output", str(out), "--model", "qwen3_4b_base"]) == 0
    printed = capsys.readouterr().out
    assert "dropped 1 rows of task game_of_24" in printed and "enable_thinking=true" in printed
    written = rows(out)
    assert [json.loads(r["reward_model"]["ground_truth"])["task"] for r in written] == \
        ["object_counting", "dyck_language", "word_sorting"]
    assert all(r["data_source"] == "synlogic" and len(r["prompt"]) == 1 for r in written)
    counting, dyck, _ = (r["reward_model"]["ground_truth"] for r in written)
    assert compute_score("synlogic", "<think>2+1</think>\\boxed{3}", counting)["acc"] is True
    assert compute_score("synlogic", "([])", dyck)["acc"] is True
    assert compute_score("synlogic", "([]", dyck)["acc"] is False


def test_synlogic_hard_and_a_single_file(tmp_path):
    out = tmp_path / "hard.parquet"
    assert verl_focal(["data", "synlogic", "--input", str(FIXTURES / "synlogic"), "--config", "hard",
                       "--output", str(out), "--model", "qwen2_5_7b"]) == 0
    written = rows(out)
    assert written[0]["prompt"][0] == {"role": "system", "content": "You are a helpful assistant."}
    futoshiki = written[1]["reward_model"]["ground_truth"]  # its verifier reads the givens from the question
    assert "Current puzzle:\nX 2" in json.loads(futoshiki)["question"]
    assert compute_score("synlogic", "[[1 2,2 1]]", futoshiki)["acc"] is True
    assert compute_score("synlogic", "[[2 1,1 2]]", futoshiki)["acc"] is False
    single = FIXTURES / "synlogic" / "synlogic_hard" / "validation.parquet"
    assert verl_focal(["data", "synlogic", "--input", str(single), "--output", str(out), "--model", "qwen2_5_7b"]) == 0


def test_verl_rlhf_dataset_reads_math_and_ood_files_together(tmp_path):
    from omegaconf import OmegaConf
    from test_data import build_tokenizer
    from transformers import AutoTokenizer
    from verl.utils.dataset.rl_dataset import RLHFDataset

    from verl_focal.data.prepare import prepare

    files = [tmp_path / "math.parquet", tmp_path / "ifeval.parquet", tmp_path / "synlogic.parquet"]
    prepare("math500", FIXTURES / "math500.jsonl", files[0])
    verl_focal(["data", "ifeval", "--input", str(FIXTURES / "ifeval_hf"), "--output", str(files[1]),
                "--model", "qwen2_5_7b"])
    verl_focal(["data", "synlogic", "--input", str(FIXTURES / "synlogic"), "--config", "easy", "--output",
                str(files[2]), "--model", "qwen2_5_7b"])
    tokenizer = AutoTokenizer.from_pretrained(str(build_tokenizer(tmp_path / "tok")), local_files_only=True)
    config = OmegaConf.create({"max_prompt_length": 4096, "cache_dir": str(tmp_path / "cache")})
    dataset = RLHFDataset([str(f) for f in files], tokenizer, config)
    sources = [dataset[i]["data_source"] for i in range(len(dataset))]
    assert sources.count("ifeval") == 3 and sources.count("synlogic") == 3


def _digest(folder: Path) -> str:
    return hashlib.sha256(b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())).hexdigest()


@pytest.mark.parametrize("argv,needle", [
    (["synlogic", "--input", "{syn}", "--output", "{out}", "--model", "qwen2_5_7b"], "choose one with --config"),
    (["synlogic", "--input", "{syn}/synlogic_easy", "--output", "{out}", "--model", "qwen2_5_7b", "--config", "easy"],
     "has no folder synlogic_easy/"),
    (["synlogic", "--input", "{syn}", "--config", "easy", "--output", "{syn}/out.parquet", "--model", "qwen2_5_7b"],
     "inside the --input directory"),
    (["synlogic", "--input", "{syn}", "--config", "easy", "--split", "test", "--output", "{out}",
      "--model", "qwen2_5_7b"], "no file for --split test"),
    (["ifeval", "--input", "{bad}", "--output", "{out}", "--model", "qwen2_5_7b"], "row 1: instruction_id_list[0]"),
])
def test_refusals_name_the_file_row_or_flag_and_touch_nothing(tmp_path, capsys, argv, needle):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"prompt": "p", "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]}) + "\n"
                   + json.dumps({"prompt": "q", "instruction_id_list": ["no:such"], "kwargs": [{}]}) + "\n")
    before = _digest(FIXTURES / "synlogic")
    out = tmp_path / "out.parquet"
    argv = [a.format(syn=FIXTURES / "synlogic", out=out, bad=bad) for a in argv]
    assert verl_focal(["data", *argv]) == 2
    assert needle in capsys.readouterr().err
    assert not out.exists() and _digest(FIXTURES / "synlogic") == before


def test_synlogic_row_without_its_record_is_named(tmp_path, capsys):
    import pyarrow as pa

    bad = tmp_path / "validation.parquet"
    pq.write_table(pa.Table.from_pylist([{"data_source": "sudoku", "extra_info": {"index": 0}}]), bad)
    assert verl_focal(["data", "synlogic", "--input", str(bad), "--output", str(tmp_path / "o.parquet"),
                       "--model", "qwen2_5_7b"]) == 2
    assert f"{bad} row 0: no extra_info.game_data_str" in capsys.readouterr().err


def test_model_is_required_and_checked(capsys):
    with pytest.raises(SystemExit):
        verl_focal(["data", "ifeval", "--input", "x", "--output", "y.parquet"])
    with pytest.raises(SystemExit):
        verl_focal(["data", "ifeval", "--input", "x", "--output", "y.parquet", "--model", "gpt"])
