"""Every recipe under recipes/ composed with verl's own Hydra config and checked against the paper.

Each recipe is composed the way ``python -m verl.trainer.main_ppo --config-path=... --config-name=...``
composes it (the recipe's directory as the primary config path, verl's config directory on the search
path through the recipe's ``hydra.searchpath``), resolved, and its actor, rollout and algorithm sections
are converted with verl's ``omega_conf_to_dataclass``. The expected values are the paper's (arXiv
2602.06717, Table 5 / Appendix L / Table 7), written out below independently of the YAML.
"""

import os
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

EXPECTED_RECIPES = sorted(
    [f"{model}/{method}" for model in MODELS for method in METHODS]
    + [f"qwen2_5_7b/megatron/{method}" for method in METHODS]
)


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


def algorithm_dataclass(algorithm_node):
    """verl's AlgoConfig from the algorithm node; ``focal`` is ours, so it is checked separately.

    verl 0.9.1 never converts ``config.algorithm`` itself; this conversion checks every verl key.
    """
    plain = OmegaConf.to_container(algorithm_node)
    plain.pop("focal")
    return omega_conf_to_dataclass(OmegaConf.create(plain))


# ---- Tests -----------------------------------------------------------------------------------------


def test_every_model_and_method_has_a_recipe():
    assert found_recipes() == EXPECTED_RECIPES


@pytest.mark.parametrize("recipe", EXPECTED_RECIPES)
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
        assert optim.optimizer == "adam" and optim.lr_decay_style == "constant"
    else:
        assert actor.strategy == "fsdp2"
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
    assert trainer.use_v1 is True
    assert trainer.validation_data_dir.endswith(f"/{trainer.experiment_name}/validation")
    assert trainer.experiment_name == recipe.replace("/", "_")


def test_recipe_header_gives_the_command_and_the_data():
    for recipe in EXPECTED_RECIPES:
        header = (RECIPES / f"{recipe}.yaml").read_text().split("\nhydra:")[0]
        model_dir, method = recipe.rsplit("/", 1)
        assert "python -m verl.trainer.main_ppo" in header, recipe
        assert f"--config-path=<absolute path>/recipes/{model_dir} --config-name={method}" in header, recipe
        assert "deepscaler.parquet" in header and "aime25.parquet" in header, recipe
        assert f"recipes/run.sh {model_dir} {method}" in header, recipe


def test_plain_overrides_reach_the_focal_node_and_the_engine():
    cfg = composed(
        "qwen2_5_7b/grpo",
        ("algorithm.adv_estimator=focal_grpo", "algorithm.focal.gamma=2.0", "actor_rollout_ref.rollout.name=sglang"),
    )
    assert read_focal_config(cfg.algorithm).gamma == 2.0
    assert omega_conf_to_dataclass(cfg.actor_rollout_ref.rollout).name == "sglang"


@pytest.mark.parametrize("recipe", [r for r in EXPECTED_RECIPES if r.endswith("_full") and "megatron" not in r])
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


def test_run_sh_dry_run_and_unknown_recipe():
    env = dict(os.environ, DRY_RUN="1", VERL_FOCAL_DATA="/d", NNODES="4", MODEL_PATH="/m", PYTHON="py")
    env.pop("TRAIN_FILES", None), env.pop("VAL_FILES", None), env.pop("GPUS_PER_NODE", None)
    dry = subprocess.run(
        ["bash", str(RECIPES / "run.sh"), "qwen2_5_7b/megatron", "f_dapo", "trainer.nnodes=1"],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.split() == [
        "py", "-m", "verl.trainer.main_ppo",
        f"--config-path={RECIPES}/qwen2_5_7b/megatron", "--config-name=f_dapo",
        "data.train_files=/d/deepscaler.parquet", "data.val_files=/d/aime25.parquet",
        "trainer.nnodes=4", "trainer.n_gpus_per_node=8", "actor_rollout_ref.model.path=/m",
        "trainer.nnodes=1",
    ]  # fmt: skip
    unknown = subprocess.run(["bash", str(RECIPES / "run.sh"), "qwen2_5_7b", "ppo"], env=env, capture_output=True,
                             text=True, timeout=60)  # fmt: skip
    assert unknown.returncode == 2
    assert "no recipe qwen2_5_7b/ppo.yaml" in unknown.stderr and "qwen3_4b_base/f_cispo" in unknown.stderr


# ---- The CLI, in subprocesses (each imports verl and Hydra for seconds) ------------------------------

CLI_RUNS = {
    # recipe: (launcher, extra overrides, expected values by dotted key)
    "qwen2_5_7b/f_cispo": (
        "main_ppo",
        [],
        {
            "algorithm.adv_estimator": "focal_grpo",
            "algorithm.focal.gamma": 1.0,
            "actor_rollout_ref.actor.policy_loss.loss_mode": "cispo",
            "actor_rollout_ref.actor.clip_ratio_high": 5.0,
            "data.max_response_length": 8192,
        },
    ),
    "qwen3_4b_base/f_dapo": (
        "main_ppo",
        ["algorithm.focal.gamma=2.0", "actor_rollout_ref.rollout.name=sglang"],
        {
            "algorithm.focal.gamma": 2.0,
            "actor_rollout_ref.rollout.name": "sglang",
            "actor_rollout_ref.actor.policy_loss.loss_mode": "dapo",
            "actor_rollout_ref.actor.clip_ratio_high": 0.28,
            "data.apply_chat_template_kwargs.enable_thinking": True,
            "data.max_response_length": 4096,
        },
    ),
    "llama3_2_3b_instruct/f_dapo_full": (
        "run.sh",
        [],
        {
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
        if launcher == "run.sh":
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
    assert actor.optim.lr == 1e-6
