"""A tiny Qwen2-architecture model and character-level tokenizer, built locally for CPU runs.

Nothing is downloaded. ``build_tiny_model(out_dir)`` writes a Hugging Face model directory with:

- in ``tokenizer/``, a character-level tokenizer over printable ASCII plus ``\\n``, the ChatML
  special tokens and one multi-character token, ``\\boxed{``, so an answer like ``\\boxed{7}`` is
  four tokens including the end of turn. It sits in its own directory (pass it as
  ``actor_rollout_ref.model.tokenizer_path``) because next to a ``config.json`` with
  ``model_type=qwen2``, transformers 5 loads it as ``Qwen2Tokenizer``, which drops whitespace, and
  verl's Qwen chat-token builder requires ``"\\n"`` to be exactly one token;
- a Qwen2 chat template (ChatML), so verl renders prompts exactly as for a real Qwen2 model;
- a randomly initialised ``Qwen2ForCausalLM`` of about 0.1M parameters.

A randomly initialised model never writes ``\\boxed{N}``, so GRPO would see only all-wrong groups
and learn nothing. ``warm_up`` therefore runs a short supervised phase on the training prompts
(teacher forcing on ``\\boxed{answer}<|im_end|>``) and stops at a target accuracy, so that the RL
phase starts from groups that are partly right.
"""

from __future__ import annotations

import os
import random
import string
from dataclasses import dataclass
from typing import Sequence

import torch

BOXED = "\\boxed{"
SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")

# ChatML, as Qwen2 models ship it (system turn only when the conversation has one).
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


@dataclass(frozen=True)
class TinyModelSpec:
    hidden_size: int = 64
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    intermediate_size: int = 128
    max_position_embeddings: int = 512
    seed: int = 0


def _vocabulary() -> list[str]:
    chars = sorted(set(string.printable) - set("\t\r\x0b\x0c"))  # printable ASCII, space and \n
    return [*SPECIAL_TOKENS, "<unk>", *chars, BOXED]


def build_tokenizer(out_dir: str):
    """Write and return a character-level ``PreTrainedTokenizerFast`` with a ChatML template."""
    from tokenizers import Tokenizer, decoders, models
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(_vocabulary())}
    # BPE without merges splits text into single characters; "\boxed{" and the specials are matched
    # whole as added tokens before that.
    core = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    core.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        unk_token="<unk>",
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>"],
        chat_template=CHAT_TEMPLATE,
        clean_up_tokenization_spaces=False,
    )
    tokenizer.add_tokens([BOXED])
    os.makedirs(out_dir, exist_ok=True)
    tokenizer.save_pretrained(out_dir)
    return tokenizer


def tokenizer_dir(model_dir: str) -> str:
    """Where ``build_tiny_model`` puts the tokenizer of the model in ``model_dir``."""
    return os.path.join(model_dir, "tokenizer")


def build_tiny_model(out_dir: str, spec: TinyModelSpec = TinyModelSpec()) -> str:
    """Write a random ``Qwen2ForCausalLM`` to ``out_dir`` and its tokenizer to ``out_dir/tokenizer``."""
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    tokenizer = build_tokenizer(tokenizer_dir(out_dir))
    torch.manual_seed(spec.seed)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=spec.hidden_size,
        num_hidden_layers=spec.num_hidden_layers,
        num_attention_heads=spec.num_attention_heads,
        num_key_value_heads=spec.num_key_value_heads,
        intermediate_size=spec.intermediate_size,
        max_position_embeddings=spec.max_position_embeddings,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = Qwen2ForCausalLM(config)
    model.generation_config = GenerationConfig(
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, do_sample=True
    )
    model.save_pretrained(out_dir)
    return out_dir


def _render(tokenizer, messages: Sequence[dict[str, str]]) -> list[int]:
    from verl.utils.tokenizer import normalize_token_ids

    return normalize_token_ids(tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=True))


@torch.no_grad()
def sampled_accuracy(model, tokenizer, examples: Sequence[tuple[Sequence[dict], str]], samples: int = 4) -> float:
    """Fraction of ``samples`` temperature-1 completions per prompt that are exactly ``\\boxed{answer}``."""
    model.eval()
    hits = total = 0
    for messages, answer in examples:
        prompt = torch.tensor([_render(tokenizer, messages)])
        out = model.generate(
            input_ids=prompt.repeat(samples, 1),
            attention_mask=torch.ones(samples, prompt.shape[1], dtype=torch.long),
            do_sample=True, temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=6,
            eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        )
        for row in out[:, prompt.shape[1]:]:
            hits += tokenizer.decode(row, skip_special_tokens=True) == f"{BOXED}{answer}}}"
            total += 1
    return hits / max(total, 1)


def warm_up(
    model_dir: str,
    examples: Sequence[tuple[Sequence[dict], str]],
    steps: int,
    batch_size: int = 64,
    lr: float = 3e-3,
    seed: int = 0,
    log_every: int = 0,
    threads: int = 1,
) -> list[float]:
    """Supervised warm-up: teach ``\\boxed{answer}<|im_end|>`` after each prompt; saves in place.

    Args:
        model_dir: a directory written by ``build_tiny_model`` (overwritten with the trained weights).
        examples: ``(chat messages, answer string)`` pairs, rendered with the model's chat template.
        steps: optimizer steps (AdamW, constant ``lr``).
        threads: torch threads; one is fastest for a model this small, above all on a busy machine.

    Returns:
        The training loss (mean token cross-entropy over the answer) of every step.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(threads)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir(model_dir))
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    rows = []
    for messages, answer in examples:
        prompt = _render(tokenizer, messages)
        target = tokenizer.encode(f"{BOXED}{answer}}}", add_special_tokens=False) + [tokenizer.eos_token_id]
        rows.append((prompt, target))
    rng = random.Random(seed)
    torch.manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    losses = []
    model.train()
    for step in range(steps):
        batch = [rows[rng.randrange(len(rows))] for _ in range(batch_size)]
        width = max(len(p) + len(t) for p, t in batch)
        ids = torch.full((batch_size, width), tokenizer.pad_token_id, dtype=torch.long)
        labels = torch.full((batch_size, width), -100, dtype=torch.long)
        mask = torch.zeros((batch_size, width), dtype=torch.long)
        for i, (p, t) in enumerate(batch):
            seq = p + t
            ids[i, : len(seq)] = torch.tensor(seq)
            labels[i, len(p) : len(seq)] = torch.tensor(t)
            mask[i, : len(seq)] = 1
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if log_every and (step + 1) % log_every == 0:
            print(f"warm-up step {step + 1}/{steps}: loss {losses[-1]:.3f}", flush=True)
    model.save_pretrained(model_dir)
    return losses


def addition_problems(seed: int, heldout: int) -> tuple[list[dict], list[dict]]:
    """The tiny model's task: the distinct single-digit additions of ``verl_focal.data.synthetic``, shuffled.

    Returns:
        (training problems, held-out problems); the first ``heldout`` after shuffling are held out.
    """
    from verl_focal.data.synthetic import generate_problems

    distinct = {p["question"]: p for p in generate_problems(2000, seed, max_operand=9, kinds=("add",))}
    problems = sorted(distinct.values(), key=lambda p: p["question"])
    random.Random(seed).shuffle(problems)
    if len(problems) <= heldout:
        raise ValueError(f"only {len(problems)} distinct problems; cannot hold out {heldout}")
    return problems[heldout:], problems[:heldout]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m verl_focal.cpu.tiny_model OUT [--warm-up-steps N] [--seed S]``: build (and warm up) a model."""
    import argparse

    from verl_focal.data.synthetic import problems_to_rows

    parser = argparse.ArgumentParser(prog="python -m verl_focal.cpu.tiny_model", description=main.__doc__)
    parser.add_argument("out", help="model directory to write")
    parser.add_argument("--warm-up-steps", type=int, default=0, help="supervised steps on the training additions")
    parser.add_argument("--heldout", type=int, default=20, help="additions kept out of the warm-up")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    build_tiny_model(args.out, TinyModelSpec(seed=args.seed))
    if args.warm_up_steps:
        train, _ = addition_problems(args.seed, args.heldout)
        examples = [(r["prompt"], r["reward_model"]["ground_truth"]) for r in problems_to_rows(train)]
        losses = warm_up(args.out, examples, steps=args.warm_up_steps, seed=args.seed, log_every=50)
        print(f"warm-up: {args.warm_up_steps} steps, last loss {losses[-1]:.3f}")
    print(f"wrote {args.out} (tokenizer in {tokenizer_dir(args.out)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
