"""verl's rollout sampling parameters -> Hugging Face ``generate`` keyword arguments.

verl's agent loop sends vLLM-style ``sampling_params`` (``temperature``, ``top_p``, ``top_k`` with
``-1`` meaning "off", ``repetition_penalty``, ``logprobs``, optionally ``max_tokens``). Every knob is
passed to HF explicitly so that no ``generation_config`` default (a model's ``top_k=50``, say)
changes the sampling distribution behind verl's back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

#: Keys verl's agent loops send that have no HF ``generate`` meaning here.
IGNORED_KEYS = frozenset({"logprobs", "seed", "n", "stop", "stop_token_ids", "skip_special_tokens", "detokenize"})


@dataclass(frozen=True)
class GenerationPlan:
    """Everything one ``model.generate`` call needs besides the prompt."""

    kwargs: dict[str, Any]
    want_log_probs: bool
    seed: Optional[int]
    unknown_keys: tuple[str, ...]


def plan_generation(
    sampling_params: dict[str, Any],
    prompt_len: int,
    *,
    prompt_length: int,
    response_length: int,
    max_model_len: Optional[int],
    default_repetition_penalty: float,
    ignore_eos: bool,
    eos_token_id: Any,
    pad_token_id: Optional[int],
) -> GenerationPlan:
    """Map one request's ``sampling_params`` onto ``generate`` kwargs, as vLLM would interpret them.

    Args:
        sampling_params: the dict verl passes to the server's ``generate``.
        prompt_len: number of prompt tokens of this request.
        prompt_length, response_length, max_model_len, default_repetition_penalty, ignore_eos:
            the rollout config's values of the same names.
        eos_token_id, pad_token_id: the model's stop and pad ids.

    Returns:
        A ``GenerationPlan``; ``kwargs["max_new_tokens"]`` is at least 1.

    Raises:
        ValueError: if the prompt alone fills the model's context (``max_model_len``).
    """
    params = dict(sampling_params)
    context = max_model_len or (prompt_length + response_length)
    if prompt_len >= context:
        raise ValueError(
            f"prompt of {prompt_len} tokens leaves no room to generate within max_model_len={context} "
            "(actor_rollout_ref.rollout.max_model_len / data.max_prompt_length + data.max_response_length)"
        )
    max_new = params.pop("max_tokens", None) or params.pop("max_new_tokens", None)
    if max_new is None:
        max_new = min(response_length, context - prompt_len)
    max_new = max(1, min(int(max_new), context - prompt_len))

    temperature = float(params.pop("temperature", 1.0))
    top_p = float(params.pop("top_p", 1.0))
    top_k = int(params.pop("top_k", -1))
    repetition_penalty = float(params.pop("repetition_penalty", default_repetition_penalty))
    want_log_probs = bool(params.get("logprobs"))
    seed = params.get("seed")

    kwargs: dict[str, Any] = {
        "max_new_tokens": max_new,
        "repetition_penalty": repetition_penalty,
        "pad_token_id": pad_token_id,
        "eos_token_id": None if ignore_eos else eos_token_id,
        "num_beams": 1,
    }
    if ignore_eos:
        kwargs["min_new_tokens"] = max_new
    if temperature <= 0.0:
        # vLLM treats temperature 0 as greedy decoding.
        kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
    else:
        # vLLM's top_k=-1 means "no top-k filter"; HF's spelling of that is top_k=0.
        kwargs.update(do_sample=True, temperature=temperature, top_p=top_p, top_k=max(top_k, 0))

    unknown = tuple(sorted(k for k in params if k not in IGNORED_KEYS))
    return GenerationPlan(kwargs=kwargs, want_log_probs=want_log_probs, seed=seed, unknown_keys=unknown)
