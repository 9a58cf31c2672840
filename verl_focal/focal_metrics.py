"""What focal weighting did on one training step, as numbers for verl's tracker (``focal/*`` keys).

verl's estimators cannot return metrics, so a focal estimator that runs inside ``recording()`` leaves a
``FocalRecord`` of what it computed anyway (success rates, weights, the base advantage it scaled); the
package trainer's advantage step (``verl_focal.session_advantage``) opens the recording, and turns the
record into metrics in O(G + bs). Outside a recording, estimators record nothing and pay nothing.

Keys (G groups of the step):

- ``focal/weight_mean``: mean over groups of g = (1 - mu_hat)^gamma (focal estimators only);
- ``focal/success_rate_mean``: mean over groups of mu_hat;
- ``focal/all_correct_ratio``, ``focal/all_wrong_ratio``: fraction of groups with mu_hat = 1 and mu_hat = 0,
  the uniform groups that give no gradient under any group-relative estimator;
- ``focal/advantage_scale``: sum over response tokens of |A_focal| / the same sum of |A_base| (focal
  estimators only), focal's effective step-size reduction on this step; 1 at gamma = 0, and 1 on a step
  where every group is uniform (both sums are 0: there is no update to reduce).

This module is pure tensor math and imports nothing of verl or of the estimators.
"""

from __future__ import annotations

import contextlib
import contextvars
from dataclasses import dataclass
from typing import Iterator

import torch

PREFIX = "focal/"


@dataclass(frozen=True)
class FocalRecord:
    """What one focal estimator call computed: G groups, bs responses.

    Attributes:
        success_rate: `(torch.Tensor)` shape (G,), mu_hat.
        weight: `(torch.Tensor)` shape (G,), g.
        response_weight: `(torch.Tensor)` shape (bs,), each response's g.
        base_abs: `(torch.Tensor)` shape (bs,), each response's sum over its tokens of |A_base|.
    """

    success_rate: torch.Tensor
    weight: torch.Tensor
    response_weight: torch.Tensor
    base_abs: torch.Tensor


_RECORDS: contextvars.ContextVar[list | None] = contextvars.ContextVar("verl_focal_records", default=None)


@contextlib.contextmanager
def recording() -> Iterator[list[FocalRecord]]:
    """Collect the ``FocalRecord`` of every focal estimator call inside the block."""
    records: list[FocalRecord] = []
    token = _RECORDS.set(records)
    try:
        yield records
    finally:
        _RECORDS.reset(token)


def is_recording() -> bool:
    return _RECORDS.get() is not None


def record(success_rate, weight, response_weight, base_abs) -> None:
    """Called by focal estimators; a no-op outside ``recording()``. Shapes as in ``FocalRecord``."""
    records = _RECORDS.get()
    if records is not None:
        device = success_rate.device
        tensors = (success_rate, weight, response_weight, base_abs)
        records.append(FocalRecord(*(t.detach().to(device=device, dtype=torch.float32) for t in tensors)))


def group_metrics(success_rate: torch.Tensor) -> dict[str, float]:
    """``focal/success_rate_mean`` and the uniform-group ratios, from mu_hat of shape (G,)."""
    return {
        f"{PREFIX}success_rate_mean": float(success_rate.mean()),
        f"{PREFIX}all_correct_ratio": float((success_rate == 1.0).to(torch.float32).mean()),
        f"{PREFIX}all_wrong_ratio": float((success_rate == 0.0).to(torch.float32).mean()),
    }


def advantage_scale(response_weight: torch.Tensor, base_abs: torch.Tensor) -> float:
    """sum_i g_i B_i / sum_i B_i with B_i = sum over response i's tokens of |A_base|; 1 when all B_i are 0."""
    denominator = float(base_abs.sum())
    return 1.0 if denominator == 0.0 else float((response_weight * base_abs).sum()) / denominator


def record_metrics(rec: FocalRecord) -> dict[str, float]:
    """All five ``focal/*`` metrics of one focal estimator call."""
    metrics = group_metrics(rec.success_rate)
    metrics[f"{PREFIX}weight_mean"] = float(rec.weight.mean())
    metrics[f"{PREFIX}advantage_scale"] = advantage_scale(rec.response_weight, rec.base_abs)
    return metrics
