"""Evaluation for F-GRPO: unbiased pass@k, the paper's paired subsampling test, and ``verl-focal eval``.

Importing this package loads numpy only (no verl, pandas or matplotlib), so reward workers and
scripts can use ``pass_at_k`` cheaply.
"""

from verl_focal.evaluation.passk import k_ladder, pass_at_k, pass_at_k_per_problem
from verl_focal.evaluation.significance import (
    MACRO,
    PairedDifference,
    paired_subsampling_test,
    paired_subsampling_test_by_group,
)

__all__ = [
    "MACRO",
    "PairedDifference",
    "k_ladder",
    "paired_subsampling_test",
    "paired_subsampling_test_by_group",
    "pass_at_k",
    "pass_at_k_per_problem",
]
