"""verl-focal: F-GRPO (focal-weighted group-relative RL, arXiv 2602.06717) as a verl plugin.

``import verl`` registers the estimators (``focal_grpo``, ``focal_rloo``) through the ``verl.plugins``
entry point (module ``verl_focal.plugin``); user code never needs to import this package for that.
This top-level module stays light so that the reward, evaluation and theory tools do not pay for
importing verl.
"""

__version__ = "0.1.0"

__all__ = ["__version__", "register_focal_estimator"]


def register_focal_estimator(base_name: str, name: str | None = None) -> str:
    """Register a focal version of the estimator ``base_name``; see ``verl_focal.estimators``."""
    from verl_focal.estimators import register_focal_estimator as _register

    return _register(base_name, name)
