"""``HFServerAdapter``: the trainer-side end of the ``hf_cpu`` rollout (lives in the FSDP worker).

verl's ``ActorRolloutRefWorker.update_weights`` (naive sync, the sync trainer's only mode) hands
the rollout object a generator of ``(hf_name, full_tensor)`` pairs after every actor update. This
adapter ships them in buckets through Ray's object store to its replica's ``HFGenerateServer`` and
returns once the server has copied all of them, so the next rollout always sees the new weights.
"""

from __future__ import annotations

import os
from typing import Any, Optional

import ray
import torch

from verl.workers.rollout.base import BaseRollout
from verl.workers.rollout.utils import ensure_async_iterator

from verl_focal.cpu.hf_replica import server_actor_name

#: Upper bound on one bucket, whatever checkpoint_engine.update_weights_bucket_megabytes says.
MAX_BUCKET_BYTES = 256 << 20


class HFServerAdapter(BaseRollout):
    """Pushes the actor's weights to the ``hf_cpu`` server; sleep/wake are no-ops on CPU."""

    def __init__(self, config: Any, model_config: Any, device_mesh: Any, replica_rank: int = -1, **kwargs):
        super().__init__(config, model_config, device_mesh)
        replica_world = (
            self.config.tensor_model_parallel_size
            * self.config.data_parallel_size
            * self.config.pipeline_model_parallel_size
        )
        rank = int(os.environ.get("RANK", "0"))
        self.replica_rank = rank // replica_world if replica_rank < 0 else replica_rank
        self.is_leader_rank = rank % replica_world == 0
        megabytes = self.config.checkpoint_engine.update_weights_bucket_megabytes
        self.bucket_bytes = min(int(megabytes) << 20, MAX_BUCKET_BYTES)
        self._server = None

    def _server_handle(self):
        # Looked up lazily: verl creates the worker's rollout object before the replica starts its server.
        if self._server is None:
            self._server = ray.get_actor(server_actor_name(self.replica_rank))
        return self._server

    async def resume(self, tags: list[str]) -> None:
        return None

    async def release(self) -> None:
        return None

    async def update_weights(
        self,
        weights,
        wire_format: str = "named_tensors",
        global_steps: Optional[int] = None,
        peft_config: Any = None,
        base_sync_done: bool = True,
        **kwargs: Any,
    ) -> None:
        """Send every ``(name, tensor)`` of ``weights`` to the server; return when it has loaded them all.

        Every rank drains the generator in order (with several actor ranks each ``full_tensor()`` is a
        collective); only the replica's leader sends.
        """
        if wire_format != "named_tensors":
            raise ValueError(f"hf_cpu rollout receives full named tensors only, not {wire_format!r}")
        if peft_config is not None:
            raise ValueError(
                "hf_cpu rollout does not load LoRA adapters; set actor_rollout_ref.model.lora.merge=True"
            )
        bucket: list[tuple[str, torch.Tensor]] = []
        bucket_size = 0
        async for name, tensor in ensure_async_iterator(weights):
            if not self.is_leader_rank:
                continue
            # A clone owns its storage: pickling a view would ship the whole buffer it views, and a
            # later optimizer step could otherwise change a tensor still waiting in the bucket.
            owned = tensor.detach().to("cpu").contiguous().clone()
            bucket.append((name, owned))
            bucket_size += owned.numel() * owned.element_size()
            if bucket_size >= self.bucket_bytes:
                await self._server_handle().update_weights_bucket.remote(bucket, False)
                bucket, bucket_size = [], 0
        if self.is_leader_rank:
            await self._server_handle().update_weights_bucket.remote(bucket, True, global_steps)
