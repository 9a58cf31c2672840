"""The one way verl-focal puts functions into verl's registries, and the one rule for "this name is ours".

verl has two registries this package writes to, with different manners: ``register_adv_est`` raises
on a name held by another function, ``register_policy_loss`` silently overwrites (even ``vanilla``).
``register`` treats both alike: a free name is registered through verl's own function, a name
already holding our function is left as it is, and a name held by anyone else is never touched.

"Ours" means defined in a ``verl_focal`` module; the same function is the same object, or the same
module and qualified name (a second import of a module makes new objects for the same functions).
"""

from __future__ import annotations

from typing import Any, Callable

#: registry kind -> (verl's dict in core_algos, verl's register decorator, the config key that selects a name)
KINDS: dict[str, tuple[str, str, str]] = {
    "adv_estimator": ("ADV_ESTIMATOR_REGISTRY", "register_adv_est", "algorithm.adv_estimator"),
    "policy_loss": ("POLICY_LOSS_REGISTRY", "register_policy_loss", "actor_rollout_ref.actor.policy_loss.loss_mode"),
}

#: Names the plugin registers (``verl_focal.plugin`` maps them to functions).
PLUGIN_NAMES: dict[str, tuple[str, ...]] = {"adv_estimator": ("focal_grpo", "focal_rloo"), "policy_loss": ("dapo",)}

#: Names that are verl-focal's: the plugin's, and those ``register`` has registered in this process
#: (``register_focal_estimator``).
OURS: dict[str, set[str]] = {kind: set(names) for kind, names in PLUGIN_NAMES.items()}


def owner(fn: Any) -> str:
    """``module.qualname`` of a registered function, as doctor and error messages print it."""
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


def is_ours(fn: Any) -> bool:
    module = str(getattr(fn, "__module__", ""))
    return module == "verl_focal" or module.startswith("verl_focal.")


def same_function(a: Any, b: Any) -> bool:
    return a is b or (is_ours(a) and owner(a) == owner(b))


def registry(kind: str) -> dict:
    from verl.trainer.ppo import core_algos

    return getattr(core_algos, KINDS[kind][0])


def register(kind: str, name: str, fn: Callable) -> bool:
    """Register ``fn`` as ``name`` in verl's ``kind`` registry unless another function holds the name.

    Returns True when ``name`` maps to ``fn`` afterwards (newly, or already from an earlier import of
    our module), False when it belongs to a different function, which is never overwritten.
    """
    from verl.trainer.ppo import core_algos

    current = registry(kind).get(name)
    if current is None:
        getattr(core_algos, KINDS[kind][1])(name)(fn)
    elif not same_function(current, fn):
        return False
    OURS[kind].add(name)
    return True


def check_run(config: Any) -> None:
    """Stop a run whose config selects one of our names while verl's registry holds another package's
    function under it (or nothing: the plugin did not load in this process).

    ``config`` is the run's full config (``algorithm.adv_estimator``,
    ``actor_rollout_ref.actor.policy_loss.loss_mode``). Raises RuntimeError naming the key and the owner.
    """
    selected = {
        "adv_estimator": config.algorithm.get("adv_estimator"),
        "policy_loss": config.actor_rollout_ref.actor.get("policy_loss", {}).get("loss_mode"),
    }
    for kind, name in selected.items():
        if name not in OURS[kind]:
            continue
        key, current = KINDS[kind][2], registry(kind).get(name)
        if current is None:
            raise RuntimeError(
                f"{key}={name}: not in verl's registry in this process, so verl-focal's plugin did not load "
                "here; run `verl-focal doctor`"
            )
        if not is_ours(current):
            raise RuntimeError(
                f"{key}={name} is registered by {owner(current)}, not by verl-focal; this run would train with "
                f"that {kind.replace('_', ' ')}. verl-focal never overwrites it: uninstall or rename the other one"
            )
