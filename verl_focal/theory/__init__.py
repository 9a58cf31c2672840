"""The theory of F-GRPO (arXiv 2602.06717) as tools: closed forms, one-step categorical dynamics, simulation.

``closed_form`` and ``categorical`` are pure numpy; ``simulation`` drives the paper's categorical
bandit with the ``focal_grpo`` estimator from verl's registry (imported lazily, so the closed forms
load without verl).
"""

from verl_focal.theory.categorical import (
    SampledSets,
    batch_baseline,
    categorical_update,
    correct_mass_change,
    exact_mass_change,
    sampled_sets,
    subset_mass_change,
    unsampled_correct_mass_change,
)
from verl_focal.theory.closed_form import (
    active_probability,
    focal_lr_equivalent,
    tail_miss_argmax,
    tail_miss_probability,
)

__all__ = [
    "SampledSets",
    "active_probability",
    "batch_baseline",
    "categorical_update",
    "correct_mass_change",
    "exact_mass_change",
    "focal_lr_equivalent",
    "sampled_sets",
    "subset_mass_change",
    "tail_miss_argmax",
    "tail_miss_probability",
    "unsampled_correct_mass_change",
]
