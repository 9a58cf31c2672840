"""Length-normalised NLL of (prompt, response) token pairs under a Hugging Face causal LM, batched.

Works with any ``AutoModelForCausalLM`` folder, including verl's merged checkpoints (plain HF folders). Rows are
sorted by length and right-padded, so a batch carries little padding; the result comes back in input order.
For a pair with prompt ids ``p`` (length P >= 1) and response ids ``r`` (length L >= 1), the sequence is
``x = p + r`` and

    nll = -(1/L) * sum_{t=P}^{P+L-1} log softmax(logits[t-1])[x_t]

(the logits at position t-1 predict token t). Log-softmax is taken in float32 whatever the model's dtype.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from verl_focal.evaluation.nll_rare import length_normalised_nll

Pair = tuple[Sequence[int], Sequence[int]]  # (prompt ids, response ids)


def pick_device(name: str = "auto") -> torch.device:
    """``cuda`` when available and ``name`` is ``auto``, else the named device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def pick_dtype(name: str, device: torch.device) -> torch.dtype:
    """``auto``: bfloat16 on a GPU, float32 on CPU; else ``float32``, ``bfloat16`` or ``float16``."""
    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def load_causal_lm(path: str, device: torch.device, dtype: torch.dtype):
    """The model in ``path`` on ``device``, in eval mode."""
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(device).eval()


def _padded(pairs: Sequence[Pair], pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(B, T) input ids and attention mask, and (B, T-1) response mask on the shifted positions."""
    width = max(len(p) + len(r) for p, r in pairs)
    ids = torch.full((len(pairs), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(pairs), width), dtype=torch.long)
    response = torch.zeros((len(pairs), width - 1), dtype=torch.float32)
    for i, (p, r) in enumerate(pairs):
        ids[i, : len(p) + len(r)] = torch.tensor([*p, *r])
        attention[i, : len(p) + len(r)] = 1
        response[i, len(p) - 1 : len(p) + len(r) - 1] = 1
    return ids, attention, response


@torch.no_grad()
def _batch_logprobs(model, ids: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
    """(B, T-1) ``log pi(x_{t+1} | x_<=t)`` in float32; one row at a time through log-softmax to bound memory."""
    logits = model(input_ids=ids, attention_mask=attention).logits[:, :-1]
    targets = ids[:, 1:]
    rows = [logits[i].float().log_softmax(-1).gather(-1, targets[i, :, None])[:, 0] for i in range(ids.shape[0])]
    return torch.stack(rows)


def pairs_nll(model, pairs: Sequence[Pair], pad_id: int, batch_size: int = 8) -> np.ndarray:
    """(N,) length-normalised response NLL of each pair, in input order."""
    for i, (p, r) in enumerate(pairs):
        if len(p) == 0 or len(r) == 0:
            raise ValueError(f"pair {i} has an empty {'prompt' if len(p) == 0 else 'response'}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    device = next(model.parameters()).device
    order = sorted(range(len(pairs)), key=lambda i: len(pairs[i][0]) + len(pairs[i][1]))
    out = np.empty(len(pairs), dtype=np.float64)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        ids, attention, response = _padded([pairs[i] for i in chunk], pad_id)
        logp = _batch_logprobs(model, ids.to(device), attention.to(device)).cpu().numpy()
        out[chunk] = length_normalised_nll(logp, response.numpy())
    return out


@torch.no_grad()
def sample_responses(model, prompts: Sequence[Sequence[int]], n: int, eos_id: int, pad_id: int, *,
                     max_new_tokens: int, temperature: float = 1.0, top_p: float = 1.0,
                     batch_size: int = 8, seed: int = 0) -> list[list[tuple[list[int], bool]]]:
    """``n`` sampled responses per prompt with HF ``generate`` (prompts left-padded, ``batch_size`` prompts a call).

    Returns:
        per prompt, ``n`` pairs ``(response ids without the end token, whether the end token was produced)``.
    """
    torch.manual_seed(seed)
    device = next(model.parameters()).device
    results = []
    for start in range(0, len(prompts), batch_size):
        chunk = prompts[start : start + batch_size]
        width = max(len(p) for p in chunk)
        ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
        attention = torch.zeros_like(ids)
        for i, p in enumerate(chunk):
            ids[i, width - len(p) :] = torch.tensor(list(p))
            attention[i, width - len(p) :] = 1
        generated = model.generate(
            input_ids=ids.to(device), attention_mask=attention.to(device), do_sample=True,
            temperature=temperature, top_p=top_p, top_k=0, max_new_tokens=max_new_tokens,
            num_return_sequences=n, eos_token_id=eos_id, pad_token_id=pad_id,
        )[:, width:].cpu().tolist()
        for i in range(len(chunk)):
            results.append([_cut_at_eos(row, eos_id) for row in generated[i * n : (i + 1) * n]])
    return results


def _cut_at_eos(row: list[int], eos_id: int) -> tuple[list[int], bool]:
    return (row[: row.index(eos_id)], True) if eos_id in row else (row, False)
