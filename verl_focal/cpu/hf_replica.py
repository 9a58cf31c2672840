"""``HFCPUReplica``: the driver-side replica of the ``hf_cpu`` rollout (lives in verl's TaskRunner).

verl's ``LLMServerManager`` builds one replica per ``tp * dp * pp`` trainer ranks and calls
``init_hybrid``, which calls ``launch_servers``. Here that starts one named ``HFGenerateServer``
actor; the worker-side ``HFServerAdapter`` finds it by the same name to push weights.
"""

from __future__ import annotations

import ray

from verl.workers.rollout.replica import RolloutReplica

from verl_focal.cpu.hf_server import HFGenerateServer


def server_actor_name(replica_rank: int) -> str:
    """Ray actor name of a replica's server; shared by the replica (creates it) and the adapter (finds it)."""
    return f"hf_cpu_server_{replica_rank}"


class HFCPUReplica(RolloutReplica):
    """One ``HFGenerateServer`` per replica; the base class fans sleep/wake/cache calls out to it."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.world_size != 1:
            raise ValueError(
                "the hf_cpu rollout runs one process per replica: set actor_rollout_ref.rollout."
                "tensor_model_parallel_size=1 (and data/pipeline_model_parallel_size=1); got "
                f"tp={self.config.tensor_model_parallel_size} dp={self.config.data_parallel_size} "
                f"pp={self.config.pipeline_model_parallel_size}"
            )

    async def launch_servers(self) -> None:
        # The server asks for no GPU: on CPU the trainer's WorkerDict holds the logical Ray GPUs.
        server_cls = ray.remote(HFGenerateServer)
        handle = server_cls.options(
            name=server_actor_name(self.replica_rank) + self.name_suffix,
            max_concurrency=self.max_concurrency,
            num_cpus=0,
            num_gpus=0,
        ).remote(self.config, self.model_config, self.replica_rank)
        # Surfaces model-loading errors here instead of as a stalled first rollout.
        await handle.ready.remote()
        self.servers = [handle]
        self._server_handle = handle
        self._server_address = f"hf-cpu-{self.replica_rank}{self.name_suffix}"
