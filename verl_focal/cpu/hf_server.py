"""``HFGenerateServer``: the rollout server actor of the ``hf_cpu`` backend.

It plays the part vLLM's ``vLLMHttpServer`` plays in verl's server-mode rollout: verl's
``LLMServerClient`` calls ``generate`` on its Ray handle (token ids in, ``TokenOutput`` out), the
replica fans ``sleep``/``wake_up``/cache calls out to it, and the worker-side ``HFServerAdapter``
pushes the actor's weights into it after every update (``update_weights_bucket``).

One Hugging Face model on CPU serves requests one at a time under an ``asyncio.Lock``; the same
lock guards weight updates, so a request never sees a mix of old and new weights.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any, Optional

import torch

from verl_focal.cpu.sampling import plan_generation

logger = logging.getLogger("verl_focal.cpu")

#: Threads each server uses for its forward passes (the trainer's processes share the same cores).
THREADS_ENV = "VERL_FOCAL_CPU_ROLLOUT_THREADS"

_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}


def _torch_dtype(name: str) -> torch.dtype:
    try:
        return _DTYPES[str(name).lower()]
    except KeyError:
        raise ValueError(f"actor_rollout_ref.rollout.dtype={name!r} is not one of {sorted(_DTYPES)}") from None


class HFGenerateServer:
    """Token-in/token-out generation with ``transformers`` ``generate``; run as an async Ray actor.

    Args:
        config: the rollout config (``RolloutConfig`` or its DictConfig).
        model_config: the model config (``HFModelConfig`` or its DictConfig); ``local_path`` is loaded.
        replica_rank: which replica this server belongs to (for log lines).
    """

    def __init__(self, config: Any, model_config: Any, replica_rank: int = 0):
        from transformers import AutoModelForCausalLM, GenerationConfig
        from verl.utils.config import omega_conf_to_dataclass
        from verl.workers.config import HFModelConfig, RolloutConfig

        self.config: RolloutConfig = omega_conf_to_dataclass(config, dataclass_type=RolloutConfig)
        self.model_config: HFModelConfig = omega_conf_to_dataclass(model_config, dataclass_type=HFModelConfig)
        self.replica_rank = replica_rank
        torch.set_num_threads(int(os.environ.get(THREADS_ENV, "1")))
        torch.manual_seed(self.config.seed)

        override = dict(self.model_config.override_config or {})
        path = self.model_config.local_path
        self.model = AutoModelForCausalLM.from_pretrained(
            path,
            dtype=_torch_dtype(self.config.dtype),
            attn_implementation=override.get("attn_implementation", "sdpa"),
            trust_remote_code=self.model_config.trust_remote_code,
        ).eval()
        # Every tensor the actor must send, by the Hugging Face checkpoint name it sends it under.
        self._targets: dict[str, torch.Tensor] = self.model.state_dict(keep_vars=True)
        self._received: set[str] = set()

        gen_cfg = self.model.generation_config or GenerationConfig()
        tokenizer = self.model_config.tokenizer
        self.eos_token_id = gen_cfg.eos_token_id
        if self.eos_token_id is None and tokenizer is not None:
            self.eos_token_id = tokenizer.eos_token_id
        if self.eos_token_id is None:
            raise ValueError(f"model at {path} has no eos_token_id in its generation_config or tokenizer")
        self.pad_token_id = gen_cfg.pad_token_id
        if self.pad_token_id is None:
            self.pad_token_id = self.eos_token_id if isinstance(self.eos_token_id, int) else self.eos_token_id[0]

        self.global_steps: Optional[int] = None
        self._lock = asyncio.Lock()
        self._warned_keys: set[str] = set()
        logger.info("hf_cpu server %d: loaded %s (%s)", replica_rank, path, self.config.dtype)

    async def ready(self) -> bool:
        return True

    # -- generation ---------------------------------------------------------------------------

    async def generate(
        self,
        prompt_ids: Any,
        sampling_params: dict[str, Any],
        request_id: str,
        image_data: Optional[list[Any]] = None,
        video_data: Optional[list[Any]] = None,
        audio_data: Optional[list[Any]] = None,
        mm_processor_kwargs: Optional[dict[str, Any]] = None,
        priority: int = 0,
        **kwargs: Any,
    ):
        """Generate one response; the contract of verl's ``LLMServerClient.generate`` call.

        Returns:
            ``TokenOutput`` with the new token ids (EOS included when emitted), their log-probs under
            the processed sampling distribution when ``sampling_params["logprobs"]`` is set, and
            ``extra_fields["global_steps"]``: the step whose weights produced them.
        """
        from verl.utils.tokenizer import normalize_token_ids
        from verl.workers.rollout.replica import TokenOutput

        if image_data is not None or video_data is not None or audio_data is not None:
            raise ValueError(f"hf_cpu rollout serves text only; request {request_id} carries media")
        prompt = normalize_token_ids(prompt_ids)
        plan = plan_generation(
            sampling_params,
            len(prompt),
            prompt_length=self.config.prompt_length,
            response_length=self.config.response_length,
            max_model_len=self.config.max_model_len,
            default_repetition_penalty=self.config.repetition_penalty,
            ignore_eos=self.config.ignore_eos,
            eos_token_id=self.eos_token_id,
            pad_token_id=self.pad_token_id,
        )
        for key in plan.unknown_keys:
            if key not in self._warned_keys:
                self._warned_keys.add(key)
                logger.warning("hf_cpu rollout ignores sampling parameter %r", key)
        try:
            async with self._lock:
                token_ids, log_probs = await asyncio.to_thread(self._generate_locked, prompt, plan)
                steps = self.global_steps
        except Exception:
            logger.exception("hf_cpu rollout: request %s failed", request_id)
            raise
        return TokenOutput(
            token_ids=token_ids,
            log_probs=log_probs,
            stop_reason="completed",
            extra_fields={"global_steps": steps},
        )

    @torch.no_grad()
    def _generate_locked(self, prompt: list[int], plan) -> tuple[list[int], Optional[list[float]]]:
        if plan.seed is not None:
            torch.manual_seed(int(plan.seed))
        input_ids = torch.tensor([prompt], dtype=torch.long)
        out = self.model.generate(
            input_ids=input_ids,
            attention_mask=torch.ones_like(input_ids),
            return_dict_in_generate=True,
            output_scores=plan.want_log_probs,
            **plan.kwargs,
        )
        new_tokens = out.sequences[0, input_ids.shape[1] :]
        token_ids = [int(t) for t in new_tokens]
        if not plan.want_log_probs:
            return token_ids, None
        # scores[i] are the logits after temperature/top-k/top-p, i.e. vLLM's "processed_logprobs".
        log_probs = [
            float(torch.log_softmax(step_scores[0].float(), dim=-1)[tok])
            for step_scores, tok in zip(out.scores, token_ids)
        ]
        return token_ids, log_probs

    # -- weights ------------------------------------------------------------------------------

    async def update_weights_bucket(
        self, bucket: list[tuple[str, torch.Tensor]], is_last: bool, global_steps: Optional[int] = None
    ) -> dict[str, int]:
        """Copy one bucket of ``(hf_name, full_tensor)`` pairs into the model.

        On the last bucket, checks that every parameter and persistent buffer was received (a tied
        alias counts as received when the tensor it shares storage with was) and records
        ``global_steps``.

        Raises:
            KeyError: a name the model does not have, or (on the last bucket) names never received.
            ValueError: a tensor whose shape differs from the model's.
        """
        async with self._lock:
            for name, tensor in bucket:
                target = self._targets.get(name)
                if target is None:
                    raise KeyError(f"hf_cpu rollout: actor sent weight {name!r}, which the rollout model lacks")
                if target.shape != tensor.shape:
                    raise ValueError(
                        f"hf_cpu rollout: weight {name!r} has shape {tuple(tensor.shape)} from the actor but "
                        f"{tuple(target.shape)} in the rollout model"
                    )
                target.data.copy_(tensor)
                self._received.add(name)
            if not is_last:
                return {"received": len(self._received)}
            received_storage = {self._targets[n].data_ptr() for n in self._received}
            missing = sorted(
                n for n, t in self._targets.items() if n not in self._received and t.data_ptr() not in received_storage
            )
            count = len(self._received)
            self._received = set()
            if missing:
                raise KeyError(f"hf_cpu rollout: weight sync ended without {missing}")
            if global_steps is not None:
                self.global_steps = int(global_steps)
            return {"received": count}

    async def set_global_steps(self, global_steps: int) -> None:
        self.global_steps = int(global_steps)

    async def parameter_checksum(self) -> float:
        """Sum of all parameters in float64; lets tests compare the served weights with the actor's."""
        async with self._lock:
            return float(sum(p.detach().double().sum() for p in self.model.parameters()))

    # -- lifecycle: the HF model keeps nothing on an accelerator and no cache between calls ----

    async def sleep(self) -> None:
        return None

    async def wake_up(self, tags: Optional[list[str]] = None) -> None:
        return None

    async def clear_kv_cache(self) -> None:
        return None

    async def release_kv_cache(self) -> None:
        return None

    async def resume_kv_cache(self) -> None:
        return None

    async def abort_all_requests(self, reset_prefix_cache: bool = True, reject_request: bool = False) -> dict:
        # HF generate cannot be pre-empted; only the async trainers call this.
        return {"aborted_count": 0, "request_ids": []}

    async def resume_generation(self) -> None:
        return None

    async def start_profile(self, **kwargs: Any) -> None:
        return None

    async def stop_profile(self) -> None:
        return None
