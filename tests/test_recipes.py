"""Every recipe under recipes/ composed with verl's own Hydra config and checked against the paper.

Each recipe is composed the way ``python -m verl.trainer.main_ppo --config-path=... --config-name=...``
composes it (the recipe's directory as the primary config path, verl's config directory on the search
path through the recipe's ``hydra.searchpath``), resolved, and its actor, rollout and algorithm sections
are converted with verl's ``omega_conf_to_dataclass``. The expected values are the paper's (arXiv
2602.06717, Tables 2, 3 and 5, Appendix L, Table 7), written out below independently of the YAML and of the
generator's table (recipes/_shared/generate.py). ``run.sh`` has its own tests (test_run_sh.py).
"""

import importlib.util
import os
import re
import shlex
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf, open_dict
from verl import DataProto
from verl.experimental.reward_loop.reward_manager.dapo import DAPORewardManager
from verl.trainer.config import AlgoConfig
from verl.trainer.ppo import core_algos
from verl.trainer.ppo.utils import need_critic, need_reference_policy
from verl.utils.config import omega_conf_to_dataclass, validate_config
from verl.workers.config import FSDPActorConfig, McoreActorConfig, RolloutConfig

from verl_focal import focal, losses
from verl_focal.config import read_focal_config

REPO = Path(__file__).resolve().parents[1]
RECIPES = REPO / "recipes"
DATA_DIR = "/data/for/the/test"  # VERL_FOCAL_DATA while composing; never read

# ---- The paper's values ----------------------------------------------------------------------------

MODELS = {
    # model: (Hugging Face id, max response length, Qwen3 thinking mode)
    "qwen2_5_7b": ("Qwen/Qwen2.5-7B", 8192, None),
    "qwen3_4b_base": ("Qwen/Qwen3-4B-Base", 4096, True),
    "llama3_2_3b_instruct": ("meta-llama/Llama-3.2-3B-Instruct", 8192, None),
}
ARCHITECTURE = {  # from each model's public config.json: (attention heads, KV heads, layers)
    "qwen2_5_7b": (28, 4, 28),
    "qwen3_4b_base": (32, 8, 36),
    "llama3_2_3b_instruct": (24, 8, 28),
}
LOSSES = {  # base method: (loss_mode, clip_ratio_low, clip_ratio_high)
    "grpo": ("vanilla", 0.2, 0.2),
    "dapo": ("dapo", 0.2, 0.28),
    "cispo": ("cispo", 1.0, 5.0),
}
TABLE_7_GAMMA = {
    "qwen2_5_7b": {"grpo": 0.5, "dapo": 0.5, "cispo": 1.0},
    "qwen3_4b_base": {"grpo": 0.5, "dapo": 0.5, "cispo": 0.5},
    "llama3_2_3b_instruct": {"grpo": 0.5, "dapo": 1.0, "cispo": 0.5},
}
METHODS = ["grpo", "f_grpo", "dapo", "f_dapo", "cispo", "f_cispo", "dapo_full", "f_dapo_full"]
TABLE_2_N = {"grpo_n2": 2, "grpo_n4": 4, "grpo_n16": 16, "grpo_n32": 32}  # Qwen2.5-7B GRPO; N=8 is grpo
# Table 3 (Qwen2.5-7B, N = 8): the actor settings that make each control, by dotted key under actor_rollout_ref.actor.
TABLE_3 = {
    "grpo_low_lr": {"optim.lr": 6.8e-7},
    "grpo_entropy": {"entropy_coeff": 0.001},
    "grpo_kl": {"use_kl_loss": True, "kl_loss_coef": 0.001, "kl_loss_type": "low_var_kl"},
}

GRID = [f"{model}/{method}" for model in MODELS for method in METHODS]
MEGATRON = [f"{model}/megatron/{method}" for model in MODELS for method in METHODS]
CONTROLS = [f"qwen2_5_7b/{name}" for name in [*TABLE_2_N, *TABLE_3]]
EXPECTED_RECIPES = sorted(GRID + MEGATRON + CONTROLS)
# Keys that carry the run name (experiment_name and what verl derives from it).
RUN_NAME_KEYS = {
    "trainer.experiment_name", "trainer.default_local_dir", "trainer.validation_data_dir",
    "actor_rollout_ref.rollout.trace.experiment_name",
}  # fmt: skip


def found_recipes():
    # recipes/tiny/ holds the CPU smoke-test configs (their own tests); _shared/ holds the pieces.
    return sorted(
        str(path.relative_to(RECIPES).with_suffix(""))
        for path in RECIPES.rglob("*.yaml")
        if path.relative_to(RECIPES).parts[0] not in ("_shared", "tiny")
    )


def describe(recipe):
    parts = recipe.split("/")
    method = parts[-1]
    is_focal = method.startswith("f_")
    base = method.removeprefix("f_")
    return {
        "model": parts[0],
        "engine": "megatron" if "megatron" in parts else "fsdp2",
        "method": method,
        "focal": is_focal,
        "loss": base.removesuffix("_full"),
        "full": base.endswith("_full"),
    }


@lru_cache(maxsize=None)
def composed(recipe, overrides=()):
    """The recipe as main_ppo sees it, resolved."""
    config_dir = RECIPES / Path(recipe).parent
    old = os.environ.get("VERL_FOCAL_DATA")
    os.environ["VERL_FOCAL_DATA"] = DATA_DIR
    try:
        with initialize_config_dir(config_dir=str(config_dir), version_base=None):
            cfg = compose(config_name=Path(recipe).name, overrides=list(overrides))
        OmegaConf.resolve(cfg)
    finally:
        if old is None:
            del os.environ["VERL_FOCAL_DATA"]
        else:
            os.environ["VERL_FOCAL_DATA"] = old
    return cfg


def flat(cfg):
    """{dotted key: value} of a resolved config."""

    def walk(node, prefix):
        if isinstance(node, dict):
            for key, value in node.items():
                yield from walk(value, f"{prefix}{key}.")
        else:
            yield prefix[:-1], node

    return dict(walk(OmegaConf.to_container(cfg), ""))


def algorithm_dataclass(algorithm_node):
    """verl's AlgoConfig from the algorithm node; ``focal`` is ours, so it is checked separately.

    verl 0.9.1 never converts ``config.algorithm`` itself; this conversion checks every verl key.
    """
    plain = OmegaConf.to_container(algorithm_node)
    plain.pop("focal")
    return omega_conf_to_dataclass(OmegaConf.create(plain))


def load_generator():
    spec = importlib.util.spec_from_file_location("recipes_generate", RECIPES / "_shared" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


# ---- The files -------------------------------------------------------------------------------------


def test_every_recipe_is_expected():
    assert found_recipes() == EXPECTED_RECIPES


def test_leaves_are_what_the_generator_writes():
    generate = load_generator()
    leaves = generate.all_leaves()
    assert sorted(f"{leaf.directory}/{leaf.method}" for leaf in leaves) == EXPECTED_RECIPES
    stale = [str(leaf.path.relative_to(REPO)) for leaf in leaves if leaf.path.read_text() != generate.render(leaf)]
    assert not stale, f"run `python recipes/_shared/generate.py`: out of date: {stale}"


def test_every_leaf_opens_with_its_command():
    for recipe in EXPECTED_RECIPES:
        directory, name = recipe.rsplit("/", 1)
        assert (RECIPES / f"{recipe}.yaml").read_text().splitlines()[0] == f"# recipes/run.sh {directory} {name}"


# ---- Table 1 grid, both engines ------------------------------------------------------------------------


@pytest.mark.parametrize("recipe", GRID + MEGATRON)
def test_recipe_matches_the_paper(recipe):
    want = describe(recipe)
    cfg = composed(recipe)
    hf_id, max_response, thinking = MODELS[want["model"]]
    loss_mode, clip_low, clip_high = LOSSES[want["loss"]]

    # main_ppo's own validation of the composed config (it runs before any Ray actor starts).
    assert not need_reference_policy(cfg), "the paper uses no KL: no reference model"
    assert not need_critic(cfg)
    validate_config(cfg, use_reference_policy=False, use_critic=False)

    actor = omega_conf_to_dataclass(cfg.actor_rollout_ref.actor)
    assert type(actor) is (McoreActorConfig if want["engine"] == "megatron" else FSDPActorConfig)
    assert actor.policy_loss.loss_mode == loss_mode
    assert (actor.clip_ratio_low, actor.clip_ratio_high) == (clip_low, clip_high)
    assert actor.clip_ratio_c == 3.0
    assert actor.loss_agg_mode == "token-mean"
    assert actor.ppo_mini_batch_size == 64 and actor.ppo_epochs == 1
    assert actor.entropy_coeff == 0 and actor.use_kl_loss is False
    assert actor.rollout_n == 8
    optim = actor.optim
    assert optim.lr == 1e-6 and optim.lr_warmup_steps == 15 and optim.lr_warmup_steps_ratio == 0.0
    assert optim.weight_decay == 0.01 and list(optim.betas) == [0.9, 0.999] and optim.clip_grad == 1.0
    if want["engine"] == "megatron":
        assert cfg.model_engine == "megatron" and actor.strategy == "megatron"
        assert optim.optimizer == "adam" and optim.lr_decay_style == "constant"
        heads, kv_heads, layers = ARCHITECTURE[want["model"]]
        engine = actor.megatron
        tp, pp = engine.tensor_model_parallel_size, engine.pipeline_model_parallel_size
        assert heads % tp == 0 and kv_heads % tp == 0 and layers % pp == 0
        assert (cfg.trainer.nnodes * cfg.trainer.n_gpus_per_node) % (tp * pp * engine.context_parallel_size) == 0
        assert engine.override_transformer_config["recompute_granularity"] == "full"
    else:
        assert cfg.model_engine == "dp" and actor.strategy == "fsdp2"
        assert optim.optimizer == "AdamW" and optim.lr_scheduler_type == "constant"
    # The loss must exist in the registry the workers use, and accept these bounds.
    assert core_algos.get_policy_loss_fn(loss_mode)
    if loss_mode == "dapo":
        assert losses.dapo_clip_settings(actor) == (0.2, 0.28, 3.0)

    rollout = omega_conf_to_dataclass(cfg.actor_rollout_ref.rollout)
    assert isinstance(rollout, RolloutConfig)
    assert rollout.name == "vllm"
    assert (rollout.n, rollout.temperature, rollout.top_p, rollout.top_k) == (8, 1.0, 1.0, -1)
    assert (rollout.prompt_length, rollout.response_length) == (1024, max_response)
    val = rollout.val_kwargs
    assert val.do_sample and val.temperature == 1.0 and val.top_p == 1.0 and val.top_k == -1
    assert val.n >= 2, "pass@k needs several samples per validation prompt"

    algorithm = algorithm_dataclass(cfg.algorithm)
    assert isinstance(algorithm, AlgoConfig)
    assert algorithm.adv_estimator == ("focal_grpo" if want["focal"] else "grpo")
    assert algorithm.norm_adv_by_std_in_grpo is True and algorithm.use_kl_in_reward is False
    assert core_algos.get_adv_estimator_fn(algorithm.adv_estimator)
    assert algorithm.filter_groups.enable is want["full"]
    if want["full"]:
        assert algorithm.filter_groups.metric == "acc"
    focal_cfg = read_focal_config(cfg.algorithm)
    assert focal_cfg.gamma == (TABLE_7_GAMMA[want["model"]][want["loss"]] if want["focal"] else 0.0)
    assert focal_cfg.success_threshold == (0.0 if want["full"] else 0.5)

    data = cfg.data
    assert data.train_batch_size == 256
    assert (data.max_prompt_length, data.max_response_length) == (1024, max_response)
    assert data.train_files == f"{DATA_DIR}/deepscaler.parquet"
    assert data.val_files == f"{DATA_DIR}/aime25.parquet"
    assert data.apply_chat_template_kwargs.get("enable_thinking") == thinking
    assert cfg.actor_rollout_ref.model.path == hf_id

    reward = cfg.reward
    assert reward.custom_reward_function.path == "pkg://verl_focal.rewards.math"
    assert reward.custom_reward_function.name == "compute_score"
    assert reward.reward_manager.name == ("dapo" if want["full"] else "naive")
    if want["full"]:
        overlong = reward.reward_kwargs.overlong_buffer_cfg
        assert overlong.enable and overlong.penalty_factor == 1.0
        assert reward.reward_kwargs.max_resp_len == max_response
        assert overlong.len == max_response // 4

    trainer = cfg.trainer
    assert trainer.total_epochs == 10
    assert trainer.nnodes * trainer.n_gpus_per_node == 16, "paper: 16 x H100"
    assert trainer.use_v1 is True and trainer.v1.trainer_mode == "sync_pass_at_k"
    assert trainer.validation_data_dir.endswith(f"/{trainer.experiment_name}/validation")
    assert trainer.experiment_name == recipe.replace("/", "_")


# Engine-owned keys: present, or different, only because the engine differs.
ENGINE_PREFIXES = (
    "model_engine", "critic.", "actor_rollout_ref.ref.", "actor_rollout_ref.actor.fsdp_config.",
    "actor_rollout_ref.actor.megatron.", "actor_rollout_ref.actor.checkpoint.", "actor_rollout_ref.rollout.qat.",
)  # fmt: skip
ENGINE_KEYS = {  # the actor's engine fields, and the optimizer's class and schedule fields (checked above)
    "actor_rollout_ref.actor._target_", "actor_rollout_ref.actor.strategy", "actor_rollout_ref.actor.optim._target_",
    "actor_rollout_ref.actor.optim.optimizer", "actor_rollout_ref.actor.entropy_checkpointing",
    "actor_rollout_ref.actor.grad_clip", "actor_rollout_ref.actor.pad_to_length",
    "actor_rollout_ref.actor.ulysses_sequence_parallel_size", "actor_rollout_ref.actor.use_remove_padding",
}  # fmt: skip


def without_engine_and_name(settings):
    return {
        key: value
        for key, value in settings.items()
        if key not in RUN_NAME_KEYS and key not in ENGINE_KEYS and not key.startswith(ENGINE_PREFIXES)
    }


@pytest.mark.parametrize("recipe", MEGATRON)
def test_megatron_recipe_equals_its_fsdp_twin(recipe):
    megatron, fsdp = flat(composed(recipe)), flat(composed(recipe.replace("/megatron", "")))
    assert composed(recipe).model_engine == "megatron" and megatron["actor_rollout_ref.actor.strategy"] == "megatron"
    mine, twin = without_engine_and_name(megatron), without_engine_and_name(fsdp)
    optim = "actor_rollout_ref.actor.optim."
    # The two optimizer configs have different fields (Megatron's lr_decay_style, FSDP's lr_scheduler_type,
    # Muon options, ...); the fields they share must agree.
    only_one_side = {key for key in mine.keys() ^ twin.keys() if not key.startswith(optim)}
    assert not only_one_side
    differing = {key: (mine[key], twin[key]) for key in mine.keys() & twin.keys() if mine[key] != twin[key]}
    assert not differing
    assert {key for key in mine.keys() & twin.keys() if key.startswith(optim)} >= {
        f"{optim}{field}" for field in ("lr", "betas", "weight_decay", "clip_grad", "lr_warmup_steps")
    }


# ---- Tables 2 and 3: controls against qwen2_5_7b/grpo -------------------------------------------------


def control_settings(name):
    """The resolved keys a control sets, as the paper gives them (verl copies rollout.n into rollout_n)."""
    if name in TABLE_2_N:
        n = TABLE_2_N[name]
        return {
            "actor_rollout_ref.rollout.n": n, "actor_rollout_ref.actor.rollout_n": n,
            "actor_rollout_ref.ref.rollout_n": n, "critic.rollout_n": n,
        }  # fmt: skip
    return {f"actor_rollout_ref.actor.{key}": value for key, value in TABLE_3[name].items()}


@pytest.mark.parametrize("recipe", CONTROLS)
def test_control_is_grpo_with_the_papers_setting(recipe):
    name = recipe.split("/")[1]
    cfg = composed(recipe)
    control, grpo = flat(cfg), flat(composed("qwen2_5_7b/grpo"))
    own = control_settings(name)
    assert {key: control[key] for key in own} == own
    assert control.keys() == grpo.keys()
    differing = {key for key in control if control[key] != grpo[key]} - RUN_NAME_KEYS
    assert differing <= own.keys()
    assert control["trainer.experiment_name"] == recipe.replace("/", "_")

    use_ref = name == "grpo_kl"
    assert need_reference_policy(cfg) is use_ref
    validate_config(cfg, use_reference_policy=use_ref, use_critic=False)
    actor = omega_conf_to_dataclass(cfg.actor_rollout_ref.actor)
    assert actor.rollout_n == TABLE_2_N.get(name, 8)
    assert actor.optim.lr == TABLE_3.get(name, {}).get("optim.lr", 1e-6)
    assert actor.entropy_coeff == TABLE_3.get(name, {}).get("entropy_coeff", 0)
    assert (actor.use_kl_loss, actor.kl_loss_coef, actor.kl_loss_type) == (
        (True, 0.001, "low_var_kl") if use_ref else (False, 0.001, "low_var_kl")
    )
    if use_ref:  # the KL form the loss will apply exists in verl
        assert core_algos.kl_penalty(torch.zeros(1), torch.zeros(1), actor.kl_loss_type).item() == 0.0
        ref = cfg.actor_rollout_ref.ref  # the frozen base model, on the actor's engine
        assert ref.strategy == "fsdp2" and cfg.actor_rollout_ref.model.path == "Qwen/Qwen2.5-7B"


# ---- docs/recipes.md: one command per paper cell --------------------------------------------------------

COMMAND = re.compile(r"`(recipes/run\.sh [^`]+)`")


def documented_commands(section_start, section_end):
    text = (REPO / "docs" / "recipes.md").read_text()
    body = text[text.index(section_start) : text.index(section_end)]
    return [shlex.split(command)[1:] for command in COMMAND.findall(body)]


def test_docs_give_a_command_for_every_paper_cell():
    commands = documented_commands("## One command per paper cell", "## Table 2: group size")
    cells, names = set(), []
    for directory, name, *overrides in commands:
        recipe = f"{directory}/{name}"
        assert recipe in EXPECTED_RECIPES, recipe
        cfg = composed(recipe)
        settings = dict(override.split("=", 1) for override in overrides)
        for key in settings:  # plain overrides: the recipe declares every key
            assert OmegaConf.select(cfg, key, default="<absent>") != "<absent>", (recipe, key)
        names.append(settings.get("trainer.experiment_name", cfg.trainer.experiment_name))
        gamma = float(settings.get("algorithm.focal.gamma", read_focal_config(cfg.algorithm).gamma))
        cells.add((directory, name.removeprefix("f_"), gamma, cfg.actor_rollout_ref.rollout.n))
    # Table 1 and Table 6: every model x base method x gamma in {0, 0.5, 1, 2}, at N = 8.
    for model in MODELS:
        for base in LOSSES:
            for gamma in (0.0, 0.5, 1.0, 2.0):
                assert (model, base, gamma, 8) in cells, (model, base, gamma)
    # Tables 2 and 3: every control.
    assert {f"{d}/{n}" for d, n, *_ in commands} >= set(CONTROLS)
    # Distinct runs need distinct names: verl resumes from the latest checkpoint under the run's name.
    distinct_runs = {(d, n, *sorted(o)) for d, n, *o in commands}
    assert len(set(names)) == len(distinct_runs)


def test_plain_overrides_reach_the_focal_node_and_the_engine():
    cfg = composed(
        "qwen2_5_7b/grpo",
        ("algorithm.adv_estimator=focal_grpo", "algorithm.focal.gamma=2.0", "actor_rollout_ref.rollout.name=sglang"),
    )
    assert read_focal_config(cfg.algorithm).gamma == 2.0
    assert omega_conf_to_dataclass(cfg.actor_rollout_ref.rollout).name == "sglang"


@pytest.mark.parametrize("recipe", [r for r in GRID if r.endswith("_full")])
def test_full_recipes_success_threshold_separates_verls_dapo_rewards(recipe):
    """verl's DAPO reward manager, configured by the recipe, adds the overlong penalty to 1/0 scores;
    the recipe's threshold must still tell correct from wrong for every response that was not cut off."""
    cfg = composed(recipe)
    max_len = cfg.reward.reward_kwargs.max_resp_len
    buffer = cfg.reward.reward_kwargs.overlong_buffer_cfg.len

    class Detokenizer:  # the scorer below decides from the ground truth; the text is irrelevant
        def decode(self, ids, skip_special_tokens=True):
            return ""

    def score(data_source, solution_str, ground_truth, extra_info=None, **kwargs):
        return {"score": float(ground_truth), "acc": ground_truth == "1", "pred": ""}

    manager = DAPORewardManager(cfg, Detokenizer(), score)
    lengths = [1, max_len - buffer, max_len - buffer + 1, max_len - buffer // 2, max_len - 1, max_len]
    rewards, correct = [], []
    for length in lengths:
        for truth in ("1", "0"):
            attention = torch.zeros(2 + max_len, dtype=torch.int64)
            attention[: 2 + length] = 1
            item = DataProto.from_dict(
                tensors={"responses": torch.zeros(1, max_len, dtype=torch.int64), "attention_mask": attention[None]},
                non_tensors={
                    "data_source": np.array(["math"], dtype=object),
                    "reward_model": np.array([{"ground_truth": truth}], dtype=object),
                    "extra_info": np.array([{}], dtype=object),
                },
            )
            rewards.append(manager.loop.run_until_complete(manager.run_single(item))["reward_score"])
            correct.append(truth == "1" and length < max_len)
    scores = torch.tensor(rewards)
    assert min(rewards) == -1.0 and max(rewards) == 1.0  # the penalty is active at both ends
    threshold = read_focal_config(cfg.algorithm).success_threshold
    mu_hat = focal.success_rate(scores, torch.arange(len(rewards)), len(rewards), threshold)  # one group each
    assert mu_hat.tolist() == [float(c) for c in correct]


def test_reward_function_loads_through_verls_loader():
    # The reward worker resolves reward.custom_reward_function exactly like this.
    from verl.trainer.ppo.reward import get_custom_reward_fn

    score = get_custom_reward_fn(composed("qwen2_5_7b/f_grpo"))
    right = score(data_source="aime25", solution_str=r"so the answer is \boxed{\frac{1}{2}}", ground_truth="0.5")
    wrong = score(data_source="aime25", solution_str=r"so the answer is \boxed{3}", ground_truth="0.5")
    assert (right["score"], right["acc"], wrong["score"], wrong["acc"]) == (1.0, True, 0.0, False)


def test_trainer_mode_is_registered():
    # The TaskRunner looks the mode up by name; an unregistered name fails only on the cluster.
    from verl.trainer.ppo.v1.trainer_base import get_trainer_cls

    modes = {composed(recipe).trainer.v1.trainer_mode for recipe in EXPECTED_RECIPES}
    for mode in modes:
        assert get_trainer_cls(mode)


# ---- The CLI, in subprocesses (each imports verl and Hydra for seconds): one Megatron recipe per model ----

CLI_RUNS = {
    # recipe: (launcher, extra overrides, expected values by dotted key)
    "qwen2_5_7b/megatron/f_cispo": (
        "main_ppo",
        [],
        {
            "model_engine": "megatron",
            "actor_rollout_ref.actor.strategy": "megatron",
            "actor_rollout_ref.actor.megatron.tensor_model_parallel_size": 2,
            "algorithm.adv_estimator": "focal_grpo",
            "algorithm.focal.gamma": 1.0,
            "actor_rollout_ref.actor.policy_loss.loss_mode": "cispo",
            "actor_rollout_ref.actor.clip_ratio_high": 5.0,
            "data.max_response_length": 8192,
        },
    ),
    "qwen3_4b_base/megatron/f_dapo": (
        "main_ppo",
        ["algorithm.focal.gamma=2.0", "actor_rollout_ref.rollout.name=sglang"],
        {
            "model_engine": "megatron",
            "actor_rollout_ref.actor.megatron.tensor_model_parallel_size": 1,
            "algorithm.focal.gamma": 2.0,
            "actor_rollout_ref.rollout.name": "sglang",
            "actor_rollout_ref.actor.policy_loss.loss_mode": "dapo",
            "actor_rollout_ref.actor.clip_ratio_high": 0.28,
            "data.apply_chat_template_kwargs.enable_thinking": True,
            "data.max_response_length": 4096,
        },
    ),
    "llama3_2_3b_instruct/megatron/f_dapo_full": (
        "run.sh",
        [],
        {
            "model_engine": "megatron",
            "actor_rollout_ref.actor.optim.lr_decay_style": "constant",
            "algorithm.focal.gamma": 1.0,
            "algorithm.filter_groups.metric": "acc",
            "reward.reward_manager.name": "dapo",
            "reward.reward_kwargs.max_resp_len": 8192,
            "trainer.nnodes": 1,
            "trainer.n_gpus_per_node": 4,
            "data.train_files": "/srv/train.parquet",
            "data.val_files": f"{DATA_DIR}/aime25.parquet",
        },
    ),
}


@pytest.fixture(scope="module")
def cli_processes():
    """All three start together and run in parallel; each test then waits for its own."""
    env = dict(os.environ, VERL_FOCAL_DATA=DATA_DIR, PYTHON=sys.executable)
    env.pop("VERL_USE_EXTERNAL_PLUGINS", None)
    procs = {}
    for recipe, (launcher, overrides, _) in CLI_RUNS.items():
        model_dir, method = recipe.rsplit("/", 1)
        if launcher == "run.sh":  # --cfg only prints, so run.sh launches it without the data checks
            run_env = dict(env, NNODES="1", GPUS_PER_NODE="4", TRAIN_FILES="/srv/train.parquet")
            cmd = ["bash", str(RECIPES / "run.sh"), model_dir, method, *overrides, "--cfg", "job", "--resolve"]
        else:
            run_env = env
            cmd = [
                sys.executable, "-m", "verl.trainer.main_ppo",
                f"--config-path={RECIPES / model_dir}", f"--config-name={method}",
                *overrides, "--cfg", "job", "--resolve",
            ]  # fmt: skip
        procs[recipe] = subprocess.Popen(
            cmd, env=run_env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
    yield procs
    for proc in procs.values():
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("recipe", list(CLI_RUNS))
def test_main_ppo_cli_prints_the_recipe(cli_processes, recipe):
    launcher, _, expected = CLI_RUNS[recipe]
    stdout, stderr = cli_processes[recipe].communicate(timeout=240)
    assert cli_processes[recipe].returncode == 0, stderr[-3000:]
    if launcher == "run.sh":  # run.sh prints the command it runs first
        command, stdout = stdout.split("\n", 1)
        assert command.startswith(f"{sys.executable} -m verl.trainer.main_ppo --config-path={RECIPES}/")
    printed = OmegaConf.create(stdout)
    for key, value in expected.items():
        assert OmegaConf.select(printed, key) == value, key
    with open_dict(printed):  # the printed job config converts like the composed one
        actor = omega_conf_to_dataclass(printed.actor_rollout_ref.actor)
    assert type(actor) is McoreActorConfig and actor.optim.lr == 1e-6
