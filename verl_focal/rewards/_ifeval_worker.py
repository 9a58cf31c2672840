"""What runs inside a verifier worker for IFEval: lm-eval's instruction checks, loaded once.

Importing this module loads lm-eval's registry (and the offline Punkt model) in the importing process: listed in
``sandbox.PRELOAD`` it makes the fork server, or a worker before its first task, pay lm-eval's import (seconds)
outside every check's timeout. :func:`verl_focal.rewards.ifeval.check` is what the workers run.
"""

from __future__ import annotations

from verl_focal.rewards import ifeval

ifeval.instruction_types()
