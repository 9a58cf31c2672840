"""The advantage step of the package trainer: one group member per agent session, and the ``focal/*`` metrics.

verl 0.9.1's v1 trainer computes advantages with ``compute_advantage_for_multi_trajectories``
(``verl/trainer/ppo/v1/utils.py``). For ``grpo`` only, it reduces a multi-output session (an agent loop
that returned several outputs) to its final output, computes the group-relative advantage over those,
and gives every output of the session its session's advantage. Any other name, ``focal_grpo``
included, falls through to per-output ``compute_advantage``, where every output of a session counts as
a group member: at gamma = 0 ``focal_grpo`` would then not be ``grpo`` (4 sessions x 2 outputs, rewards
1, 1, 0, 0: +-0.935 instead of +-0.866).

``compute_advantage_by_session`` gives every group-relative estimator (``estimators.is_group_relative``:
focal ones and any base that takes ``index``) verl's session rule, computing the advantage with verl's
own ``compute_advantage`` on the final outputs; other estimators (GAE, ...) go to verl's function
unchanged. The session reduction is ours only because verl's gates on the literal name (its
``adv_estimator != GRPO`` test); the rule and the key format ``{uid}_{session_id}_{index}`` are verl's,
and ``tests/test_session_advantage.py`` checks the two agree on ``grpo``.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from verl.protocol import DataProto
from verl.trainer.ppo.ray_trainer import compute_advantage
from verl.trainer.ppo.v1 import utils as v1_utils

from verl_focal import estimators
from verl_focal.estimators import focal_groups
from verl_focal.focal_metrics import FocalRecord, group_metrics, record_metrics, recording

logger = logging.getLogger("verl_focal")


def final_outputs(batch_keys: list[str]) -> tuple[list[int], list[int]]:
    """Rows of each session's final output, and for each row the position of its session's final output.

    Args:
        batch_keys: (bs,) verl's TransferQueue keys, ``{uid}_{session_id}_{output_index}``.

    Returns:
        final_rows: (S,) row of the highest output index of each session, in order of first appearance.
        row_to_final: (bs,) for each row, the position in ``final_rows`` of its session.
    """
    best: dict[str, tuple[int, int]] = {}  # session -> (output index, row)
    sessions = []
    for row, key in enumerate(batch_keys):
        parts = key.rsplit("_", 2)
        if len(parts) != 3 or not parts[2].isdigit():
            raise ValueError(f"batch key {key!r}: expected verl's '{{uid}}_{{session_id}}_{{output_index}}'")
        session, output = f"{parts[0]}_{parts[1]}", int(parts[2])
        sessions.append(session)
        if session not in best or best[session][0] < output:
            best[session] = (output, row)
    position = {session: i for i, session in enumerate(best)}
    return [row for _, row in best.values()], [position[session] for session in sessions]


def _estimator_name(adv_estimator: Any) -> str:
    return str(getattr(adv_estimator, "value", adv_estimator))


def _metrics(final: DataProto, config: Any, records: list[FocalRecord]) -> dict[str, float]:
    """The focal estimator's own record; for another group-relative estimator, the group statistics only."""
    if records:
        return record_metrics(records[-1])
    try:
        groups = focal_groups(final.batch["token_level_rewards"], final.non_tensor_batch["uid"], config)
    except ValueError as exc:  # a non-finite reward that a non-focal estimator accepted: a metric never stops a run
        logger.warning("verl-focal: no focal/* metrics this step: %s", exc)
        return {}
    return group_metrics(groups.success_rate)


def compute_advantage_by_session(
    data: DataProto, batch_keys: list[str], adv_estimator: Any, metrics: dict, **kwargs: Any
) -> DataProto:
    """``compute_advantage_for_multi_trajectories`` for every group-relative estimator, logging ``focal/*``.

    Args:
        data: the batch verl's ``_compute_advantage`` built (``token_level_rewards``, ``response_mask``,
            ``uid``).
        batch_keys: (bs,) its TransferQueue keys.
        adv_estimator: ``algorithm.adv_estimator``.
        metrics: the step's metrics; the ``focal/*`` keys (``verl_focal.focal_metrics``) are added.
        **kwargs: verl's ``gamma``, ``lam``, ``num_repeat``, ``norm_adv_by_std_in_grpo``, ``config``.

    Returns:
        ``data`` with ``advantages`` and ``returns``, shape (bs, L).
    """
    name = _estimator_name(adv_estimator)
    if not estimators.is_group_relative(name):
        return v1_utils.compute_advantage_for_multi_trajectories(data, batch_keys, adv_estimator, **kwargs)
    final_rows, row_to_final = final_outputs(batch_keys)
    single = len(final_rows) == len(batch_keys)
    with recording() as records:
        final = compute_advantage(
            data if single else data.select_idxs(final_rows), adv_estimator=adv_estimator, **kwargs
        )
    metrics.update(_metrics(final, kwargs.get("config"), records))
    if single:
        return final
    # As verl: the session's outcome advantage (its final output's first response token) on every output.
    first_token = final.batch["response_mask"].argmax(dim=1)
    session_advantage = final.batch["advantages"][torch.arange(len(final_rows)), first_token]
    scores = session_advantage[row_to_final].unsqueeze(-1) * data.batch["response_mask"]
    data.batch["advantages"] = scores
    data.batch["returns"] = scores
    return data
