"""Overhead of the ``hf_cpu`` rollout server against plain Hugging Face calls, on the tiny model.

    .venv/bin/python benchmarks/cpu_rollout.py [--requests 64] [--repeats 5]

[1] ``HFGenerateServer.generate``, called the way verl calls it (sampling-parameter mapping, the
    lock, the thread hop, per-token log-probs, ``TokenOutput``), against ``model.generate`` with the
    same keyword arguments and no log-probs. Ray is left out: its round trip is the same for any
    backend.
[2] One full weight sync through ``update_weights_bucket`` (name lookup, shape checks, the coverage
    check of the last bucket) against ``model.load_state_dict`` of the same tensors.

Both sides run in the same process on one torch thread, alternated; the figures to compare across
machines are the ratios (median of ``--repeats``).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time

import torch
from omegaconf import OmegaConf
from verl.workers.config import RolloutConfig

from verl_focal.cpu.hf_server import HFGenerateServer
from verl_focal.cpu.tiny_model import TinyModelSpec, build_tiny_model, tokenizer_dir

SAMPLING = {"temperature": 1.0, "top_p": 1.0, "top_k": -1, "repetition_penalty": 1.0, "logprobs": True}


def time_once(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=64, help="requests per timing (one training step's worth)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = build_tiny_model(f"{tmp}/model", TinyModelSpec(seed=0))
        other = build_tiny_model(f"{tmp}/other", TinyModelSpec(seed=1))
        config = RolloutConfig(name="hf_cpu", prompt_length=128, response_length=8, dtype="float32",
                               tensor_model_parallel_size=1)
        model_config = OmegaConf.create({"path": model_dir, "tokenizer_path": tokenizer_dir(model_dir)})
        server = HFGenerateServer(config, model_config)
        tokenizer = server.model_config.tokenizer
        prompt = tokenizer.apply_chat_template(
            [{"role": "system", "content": "Please reason step by step, and put your final answer within \\boxed{}."},
             {"role": "user", "content": "What is 3 + 4?"}],
            add_generation_prompt=True, tokenize=True, return_dict=False,
        )
        prompt = list(prompt)
        model = server.model
        input_ids = torch.tensor([prompt])

        def via_server() -> None:
            async def run() -> None:
                for i in range(args.requests):
                    await server.generate(request_id=str(i), prompt_ids=prompt, sampling_params=dict(SAMPLING),
                                          image_data=None, video_data=None)
            asyncio.run(run())

        def plain_hf() -> None:
            with torch.no_grad():
                for _ in range(args.requests):
                    model.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), do_sample=True,
                                   temperature=1.0, top_p=1.0, top_k=0, max_new_tokens=8,
                                   eos_token_id=server.eos_token_id, pad_token_id=server.pad_token_id)

        from transformers import AutoModelForCausalLM

        weights = list(AutoModelForCausalLM.from_pretrained(other).state_dict().items())

        def via_buckets() -> None:
            asyncio.run(server.update_weights_bucket(weights, is_last=True, global_steps=1))

        def plain_load() -> None:
            model.load_state_dict(dict(weights))

        rows = []
        for name, ours, baseline in (
            (f"[1] generate, {args.requests} requests x up to 8 tokens", via_server, plain_hf),
            ("[2] weight sync, full state dict", via_buckets, plain_load),
        ):
            ours_t, base_t = [], []
            for _ in range(args.repeats):
                ours_t.append(time_once(ours))
                base_t.append(time_once(baseline))
            o, b = statistics.median(ours_t), statistics.median(base_t)
            rows.append((name, o, b))
        print(f"{'case':<48} {'ours':>10} {'baseline':>10} {'ratio':>7}")
        for name, o, b in rows:
            print(f"{name:<48} {o:>9.4f}s {b:>9.4f}s {o / b:>6.2f}x")


if __name__ == "__main__":
    main()
