"""``verl-focal nll-rare`` against a direct per-sample forward pass on a hand-made tiny Qwen2 model."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from verl_focal.cli import main as cli_main
from verl_focal.cpu.tiny_model import TinyModelSpec, build_tiny_model, tokenizer_dir
from verl_focal.evaluation import hf_nll


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("nllrare")
    base = str(root / "base")
    build_tiny_model(base, TinyModelSpec(hidden_size=32, intermediate_size=64, seed=1))
    trained = str(root / "trained")
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    torch.manual_seed(5)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    model.save_pretrained(trained)
    return root, base, trained


def _rollouts(path):
    rows = [
        {"data_source": "synthetic", "prompt": [{"role": "user", "content": "What is 2+3?"}],
         "reward_model": {"ground_truth": "5"}, "responses": ["\\boxed{5}", "\\boxed{6}", "so \\boxed{5}", "x"]},
        {"data_source": "synthetic", "prompt": [{"role": "user", "content": "1+1?"}],
         "reward_model": {"ground_truth": "2"}, "responses": ["\\boxed{2}", "it is \\boxed{2}", "\\boxed{3}", "2? \\boxed{2}"]},
    ]
    pd.DataFrame(rows).to_parquet(path)
    return rows


def _direct_nll(model, tokenizer, messages, response):
    """One unpadded forward pass of prompt + response + end token; mean NLL of the response tokens."""
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    prompt = list(prompt["input_ids"] if hasattr(prompt, "keys") else prompt)
    target = tokenizer.encode(response, add_special_tokens=False) + [tokenizer.eos_token_id]
    ids = torch.tensor([prompt + target])
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=ids).logits[0].double(), -1)
    return -float(sum(logp[len(prompt) + t - 1, tok] for t, tok in enumerate(target)) / len(target))


def test_cli_matches_direct_computation(models):
    root, base, trained = models
    rows = _rollouts(root / "gen.parquet")
    rare, out = root / "rare.json", root / "table.csv"
    code = cli_main(["nll-rare", "--base", base, "--tokenizer", tokenizer_dir(base), "--rollouts",
                     str(root / "gen.parquet"), "--rare-set", str(rare), "--trained", trained, "--fraction", "0.5",
                     "--out", str(out), "--batch-size", "2", "--device", "cpu"])
    assert code == 0

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir(base))
    base_model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    trained_model = AutoModelForCausalLM.from_pretrained(trained, dtype=torch.float32)
    correct = [(r["prompt"], resp) for r in rows for resp in r["responses"]
               if resp.endswith("{" + r["reward_model"]["ground_truth"] + "}")]
    assert len(correct) == 5
    base_nll = np.array([_direct_nll(base_model, tokenizer, p, s) for p, s in correct])
    chosen = np.lexsort((np.arange(5), -base_nll))[:3]  # ceil(0.5 * 5) = 3, highest NLL first
    saved = json.loads(rare.read_text())
    assert [t["response"] for t in saved["trajectories"]] == [correct[i][1] for i in chosen]
    np.testing.assert_allclose([t["base_nll"] for t in saved["trajectories"]], base_nll[chosen], rtol=1e-5)

    trained_nll = np.array([_direct_nll(trained_model, tokenizer, *correct[i]) for i in chosen])
    expected = float(np.mean(trained_nll - base_nll[chosen]))
    table = pd.read_csv(out)
    assert table["checkpoint"].tolist() == [trained]
    assert table["delta_nll_rare"][0] == pytest.approx(expected, rel=1e-5)
    assert table["rare_set_size"][0] == 3
    assert table["low"][0] <= table["delta_nll_rare"][0] <= table["high"][0]
    assert abs(expected) > 1e-3  # the perturbation moved the NLL: the comparison can fail

    # a second call reuses the saved set and gives the same answer
    out2 = root / "table.md"
    assert cli_main(["nll-rare", "--base", base, "--tokenizer", tokenizer_dir(base), "--rare-set", str(rare),
                     "--trained", trained, "--out", str(out2), "--device", "cpu"]) == 0
    assert f"{expected:.4f}" in out2.read_text()


def test_rebuilding_an_existing_set_is_refused(models, capsys):
    root, base, _ = models
    rare = root / "exists.json"
    rare.write_text("{}")
    _rollouts(root / "gen2.parquet")
    assert cli_main(["nll-rare", "--base", base, "--rollouts", str(root / "gen2.parquet"),
                     "--rare-set", str(rare)]) == 1
    assert "--rare-set" in capsys.readouterr().err and rare.read_text() == "{}"


def test_missing_column_is_named(models, capsys):
    root, base, _ = models
    pd.DataFrame({"prompt": [[{"role": "user", "content": "a"}]], "responses": [["b"]]}).to_parquet(root / "bad.parquet")
    assert cli_main(["nll-rare", "--base", base, "--tokenizer", tokenizer_dir(base), "--rollouts",
                     str(root / "bad.parquet"), "--rare-set", str(root / "bad.json")]) == 1
    assert "no 'reward_model' column" in capsys.readouterr().err


def test_batched_nll_equals_one_by_one(models):
    _, base, _ = models
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    pairs = [([5, 6, 7], [8, 9]), ([5], [10, 11, 12, 13]), ([7, 7], [9])]
    batched = hf_nll.pairs_nll(model, pairs, pad_id=0, batch_size=3)
    single = [hf_nll.pairs_nll(model, [p], pad_id=0, batch_size=1)[0] for p in pairs]
    np.testing.assert_allclose(batched, single, rtol=1e-5)
    with pytest.raises(ValueError, match="pair 1 has an empty response"):
        hf_nll.pairs_nll(model, [([1], [2]), ([1], [])], pad_id=0)
