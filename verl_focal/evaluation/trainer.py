"""The synchronous v1 trainer plus unbiased pass@k in the validation metrics.

Selected with ``trainer.v1.trainer_mode=sync_pass_at_k`` once ``register_pass_at_k_trainer()`` has
run (the plugin does it). Importing this module imports verl's v1 trainer stack.
"""

from __future__ import annotations

from omegaconf import DictConfig, open_dict
from verl.trainer.ppo.v1 import register_trainer
from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync

from verl_focal import registry
from verl_focal.config import read_focal_config
from verl_focal.evaluation.training import PASS_AT_K_TRAINER_MODE, validation_pass_at_k_metrics


@register_trainer(PASS_AT_K_TRAINER_MODE)
class PassAtKTrainer(PPOTrainerSync):
    """``PPOTrainerSync`` whose validation also logs ``val-core/<ds>/acc/pass@k`` (unbiased, Chen et al. 2021)."""

    def __init__(self, config: DictConfig):
        registry.check_run(config)  # our names selected, someone else's functions registered: stop here
        # PPOTrainer keys the replay buffer and refill logic on trainer_mode == "sync"; any other
        # name would switch on the asynchronous paths. Our name has done its job (class lookup).
        with open_dict(config):
            config.trainer.v1.trainer_mode = "sync"
        # Read (and validate) algorithm.focal now: a bad focal key fails before any worker starts.
        self._success_threshold = read_focal_config(config.algorithm).success_threshold
        super().__init__(config)

    def _val_metrics_update(
        self, data_sources, sample_uids, reward_extra_infos_dict, sample_turns, expected_acc_counts=None
    ) -> dict[str, float]:
        metrics = super()._val_metrics_update(
            data_sources, sample_uids, reward_extra_infos_dict, sample_turns, expected_acc_counts=expected_acc_counts
        )
        metrics.update(
            validation_pass_at_k_metrics(
                data_sources,
                sample_uids,
                reward_extra_infos_dict,
                expected_acc_counts=expected_acc_counts,
                success_threshold=self._success_threshold,
            )
        )
        return metrics
