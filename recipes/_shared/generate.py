"""Write every recipe leaf under ``recipes/`` from the table below: ``python recipes/_shared/generate.py``.

A leaf is the one-line command that runs it, one line on what it reproduces, the Hydra defaults list of shared
layers and the few keys of its own. The layers and every shared setting are explained once, in
docs/recipes.md. ``tests/test_recipes.py`` fails when a leaf on disk differs from what this script writes, and
checks the composed values against the paper independently of this table.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

RECIPES = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Model:
    title: str
    gamma: dict[str, float]  # paper Table 7: the selected gamma per base method
    megatron_tp: int  # Megatron tensor / pipeline parallel sizes on 16 x H100 (docs/recipes.md, "Megatron")
    megatron_pp: int
    overlong_buffer: int | None = None  # *_dapo_full: when not dapo_full.yaml's 2048 (a quarter of 8192)


MODELS = {
    "qwen2_5_7b": Model("Qwen2.5-7B", {"grpo": 0.5, "dapo": 0.5, "cispo": 1.0}, megatron_tp=2, megatron_pp=1),
    "qwen3_4b_base": Model(
        "Qwen3-4B-Base", {"grpo": 0.5, "dapo": 0.5, "cispo": 0.5}, megatron_tp=1, megatron_pp=1, overlong_buffer=1024
    ),
    "llama3_2_3b_instruct": Model(
        "Llama-3.2-3B-Instruct", {"grpo": 0.5, "dapo": 1.0, "cispo": 0.5}, megatron_tp=1, megatron_pp=1
    ),
}
BASES = {"grpo": "GRPO", "dapo": "DAPO", "cispo": "CISPO"}
METHODS = ["grpo", "f_grpo", "dapo", "f_dapo", "cispo", "f_cispo", "dapo_full", "f_dapo_full"]


@dataclass(frozen=True)
class Control:
    """A Qwen2.5-7B GRPO run that differs from ``qwen2_5_7b/grpo`` in the keys listed (paper Tables 2 and 3)."""

    title: str
    keys: tuple[tuple[str, object, str], ...]  # (dotted key, value, comment)


CONTROLS = {
    **{
        f"grpo_n{n}": Control(
            f"GRPO with N = {n} responses per prompt: paper Table 2, row GRPO N={n}.",
            (("actor_rollout_ref.rollout.n", n, f"paper Table 2: N = {n}; 256 prompts per step as every run"),),
        )
        for n in (2, 4, 16, 32)
    },
    "grpo_low_lr": Control(
        "GRPO at learning rate 6.8e-7: paper Table 3, row GRPO low-LR.",
        (("actor_rollout_ref.actor.optim.lr", 6.8e-7, "1e-6 x m_0.5: focal's average step reduction (Appendix N)"),),
    ),
    "grpo_entropy": Control(
        "GRPO with an entropy bonus of 0.001: paper Table 3, row GRPO-H.",
        (("actor_rollout_ref.actor.entropy_coeff", 0.001, "paper: tuned over {1e-4, 1e-3}; 1e-3 chosen"),),
    ),
    "grpo_kl": Control(
        "GRPO with a KL loss of 0.001 to the base model: paper Table 3, row GRPO-KL.",
        (
            ("actor_rollout_ref.actor.use_kl_loss", True, "loads a frozen reference model (the base model)"),
            ("actor_rollout_ref.actor.kl_loss_coef", 0.001, "paper: tuned over {1e-3, 1e-2}; 1e-3 chosen"),
            ("actor_rollout_ref.actor.kl_loss_type", "low_var_kl", "k3, GRPO's estimator, in the loss"),
        ),
    ),
}


@dataclass(frozen=True)
class Leaf:
    model: str
    method: str
    megatron: bool
    title: str
    layers: tuple[str, ...]
    keys: tuple[tuple[str, object, str], ...]

    @property
    def directory(self) -> str:
        return f"{self.model}/megatron" if self.megatron else self.model

    @property
    def path(self) -> Path:
        return RECIPES / self.directory / f"{self.method}.yaml"

    @property
    def experiment_name(self) -> str:
        return f"{self.directory}/{self.method}".replace("/", "_")


def method_leaf(model: str, method: str, megatron: bool) -> Leaf:
    focal = method.startswith("f_")
    base = method.removeprefix("f_").removesuffix("_full")
    full = method.endswith("_full")
    spec = MODELS[model]
    name = ("F-" if focal else "") + BASES[base]
    if megatron:
        title = (
            f"{name} on {spec.title} with Megatron-Core: {model}/{method} on another engine."
        )
    elif full:
        title = f"{name} on {spec.title} plus DAPO's dynamic sampling and overlong shaping: not a paper run."
    else:
        title = f"{name} on {spec.title}: paper Table 1" + (
            f", gamma {spec.gamma[base]} (Table 7)." if focal else "."
        )
    # focal before dapo_full: focal.yaml declares the default success_threshold, dapo_full.yaml moves it to 0.
    layers = [f"model/{model}", f"method/{base}"] + (["focal"] if focal else []) + (["dapo_full"] if full else [])
    keys = []
    if focal:
        keys.append(("algorithm.focal.gamma", spec.gamma[base], f"paper Table 7: {spec.title} / {name}"))
    if full and spec.overlong_buffer:
        keys.append(("reward.reward_kwargs.overlong_buffer_cfg.len", spec.overlong_buffer,
                     "a quarter of this model's response budget"))
    if megatron:
        keys.append(("actor_rollout_ref.actor.megatron.tensor_model_parallel_size", spec.megatron_tp,
                     "fits 16 x H100 80GB with the rollout alongside: docs/recipes.md, Megatron"))
        keys.append(("actor_rollout_ref.actor.megatron.pipeline_model_parallel_size", spec.megatron_pp, ""))
    return Leaf(model, method, megatron, title, tuple(layers), tuple(keys))


def all_leaves() -> list[Leaf]:
    leaves = [
        method_leaf(model, method, megatron) for model in MODELS for megatron in (False, True) for method in METHODS
    ]
    grpo = ("model/qwen2_5_7b", "method/grpo")
    leaves += [Leaf("qwen2_5_7b", name, False, control.title, grpo, control.keys) for name, control in CONTROLS.items()]
    return leaves


def _scalar(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        mantissa, _, exponent = f"{value:g}".partition("e")
        return f"{mantissa}e{int(exponent)}" if exponent else (mantissa if "." in mantissa else f"{mantissa}.0")
    return str(value)


def _nest(keys) -> dict:
    tree: dict = {}
    for dotted, value, comment in keys:
        *parents, last = dotted.split(".")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = (value, comment)
    return tree


def _emit(tree: dict, indent: int = 0) -> list[str]:
    lines = []
    pad = "  " * indent
    for key, node in tree.items():
        if isinstance(node, dict):
            lines += [f"{pad}{key}:", *_emit(node, indent + 1)]
        else:
            value, comment = node
            lines += ([f"{pad}# {comment}"] if comment else []) + [f"{pad}{key}: {_scalar(value)}"]
        if indent == 0:
            lines.append("")
    return lines


def render(leaf: Leaf) -> str:
    up = "../../" if leaf.megatron else "../"
    engine = "megatron" if leaf.megatron else "fsdp2"
    lines = [
        f"# recipes/run.sh {leaf.directory} {leaf.method}",
        "#",
        f"# {leaf.title}",
        "# Written by recipes/_shared/generate.py; the layers and shared settings: docs/recipes.md.",
        "",
        "hydra:",
        "  searchpath:",
        "    - pkg://verl.trainer.config",
        "",
        "defaults:",
        "  - ppo_trainer",
        f"  - {up}_shared/paper",
        f"  - {up}_shared/engine/{engine}",
        *(f"  - {up}_shared/{layer}" for layer in leaf.layers),
        "  - _self_",
        *(["  - override model_engine: megatron"] if leaf.megatron else []),
        "",
    ]
    lines += _emit(_nest(leaf.keys + (("trainer.experiment_name", leaf.experiment_name, ""),)))
    return "\n".join(lines).rstrip("\n") + "\n"


def main() -> int:
    for leaf in all_leaves():
        leaf.path.parent.mkdir(parents=True, exist_ok=True)
        leaf.path.write_text(render(leaf))
    print(f"wrote {len(all_leaves())} recipes under {RECIPES}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
