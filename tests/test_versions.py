"""The supported verl range, and the core on whichever verl of it is installed.

``scripts/test.sh`` runs this file on verl 0.9.1, ``scripts/test_oldest_verl.sh`` on the oldest supported verl
(loaded there the documented way, VERL_USE_EXTERNAL_MODULES=verl_focal.plugin).
"""

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

import verl
from verl import DataProto
from verl.trainer.ppo import core_algos
from verl.trainer.ppo.ray_trainer import compute_advantage

from verl_focal import versions

ROOT = Path(__file__).resolve().parents[1]


def test_pyproject_accepts_the_supported_range_and_the_installed_verl_is_in_it():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    verl_deps = [d for d in deps if re.match(r"verl\b", d)]
    assert verl_deps == [f"verl[verl-core]{versions.SUPPORTED}"]
    assert versions.supports("core")
    assert versions.SUPPORTED.startswith(f">={versions.OLDEST_TESTED},")  # the lower bound is tested
    assert versions.has_entry_points() == (tuple(map(int, verl.__version__.split(".")[:2])) >= (0, 9))


@pytest.mark.parametrize("version,core,v09", [("0.7.1", True, False), ("0.8.0", True, False), ("0.9.1", True, True),
                                              ("0.7.0", False, False), ("0.10.0", False, False), ("junk", False, False)])
def test_supports(version, core, v09):
    assert versions.supports("core", version) is core
    assert all(versions.supports(part, version) is v09 for part in versions.NEEDS)


def test_0_9_only_parts_name_the_installed_and_the_needed_verl(monkeypatch):
    monkeypatch.setattr(verl, "__version__", "0.8.0")
    for part, (what, minimum) in versions.NEEDS.items():
        with pytest.raises(versions.UnsupportedVerlVersion) as info:
            versions.require(part)
        assert str(info.value).startswith(f"{what} needs verl>={minimum},<0.10; verl 0.8.0 is installed")
    monkeypatch.setattr(verl, "__version__", "0.9.1")
    assert versions.require("cpu") == "0.9.1"


def test_version_check_command_is_one_line():
    proc = subprocess.run([sys.executable, "-m", "verl_focal.versions", "recipes"], capture_output=True, text=True,
                          timeout=120)
    if versions.supports("recipes"):
        assert proc.returncode == 0 and proc.stderr == ""
    else:
        assert proc.returncode == 1
        assert proc.stderr.count("\n") == 1 and f"verl {verl.__version__} is installed" in proc.stderr


@pytest.mark.skipif(versions.supports("recipes"), reason="this verl runs the recipes (tests/test_run_sh.py)")
def test_recipes_refuse_this_verl_before_anything_starts():
    proc = subprocess.run(["bash", str(ROOT / "recipes" / "run.sh"), "qwen2_5_7b", "f_grpo"], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHON": sys.executable})
    assert proc.returncode == 3
    assert proc.stderr.strip() == (f"recipes/run.sh: {versions.NEEDS['recipes'][0]} needs verl>=0.9.0,<0.10; "
                                   f"verl {verl.__version__} is installed (pip install 'verl[verl-core]>=0.9.0,<0.10')")


# --- the core on this verl ----------------------------------------------------------------------------


def _dispatch(estimator, tlr, mask, uids, config):
    data = DataProto.from_dict(tensors={"token_level_rewards": tlr, "response_mask": mask},
                               non_tensors={"uid": uids})
    return compute_advantage(data, adv_estimator=estimator, config=config).batch["advantages"]


@pytest.mark.parametrize("gamma", [0.5, 1.0, 2.0])
def test_focal_grpo_is_g_times_grpo_through_verls_compute_advantage(gamma):
    rng = np.random.default_rng(int(gamma * 10))
    groups, size, length = 40, 8, 12
    uids = np.array([f"q{i}" for i in rng.permutation(np.repeat(np.arange(groups), size))], dtype=object)
    rewards = torch.from_numpy(rng.integers(0, 2, len(uids))).float()
    lengths = torch.from_numpy(rng.integers(1, length + 1, len(uids)))
    mask = (torch.arange(length)[None] < lengths[:, None]).float()
    tlr = torch.zeros(len(uids), length)
    tlr[torch.arange(len(uids)), lengths - 1] = rewards
    config = OmegaConf.create({"norm_adv_by_std_in_grpo": True, "focal": {"gamma": gamma}})

    focal = _dispatch("focal_grpo", tlr, mask, uids, config)
    grpo = _dispatch("grpo", tlr, mask, uids, config)
    # g = (1 - mu)^gamma, mu the group's success rate (reward 1 > the default threshold 0.5)
    mu = {u: float(rewards[uids == u].mean()) for u in set(uids)}
    g = torch.tensor([(1 - mu[u]) ** gamma for u in uids]).unsqueeze(-1)
    torch.testing.assert_close(focal, g * grpo, rtol=1e-6, atol=1e-6)
    rates = np.array(list(mu.values()))
    assert ((0 < rates) & (rates < 1)).sum() > groups // 2  # most groups are mixed: g and A are not trivial
    assert core_algos.get_adv_estimator_fn("focal_grpo").__module__ == "verl_focal.estimators"


def _write_validation_dump(directory, inputs, acc, sources):
    """A validation dump through the installed verl's own writer (v1 trainer on 0.9, legacy trainer before)."""
    scores = [float(a) for a in acc]
    extra = {"acc": acc, "data_source": sources}
    if versions.supports("trainer_mode"):
        from verl.trainer.ppo.v1.trainer_base import PPOTrainer

        uids = [f"{text}_{i % 8}_0" for i, text in enumerate(inputs)]
        PPOTrainer._write_generations(inputs=inputs, outputs=["x"] * len(inputs), gts=["1"] * len(inputs),
                                      scores=scores, reward_extra_infos_dict={**extra, "uid": uids},
                                      dump_path=str(directory), global_steps=3)
    else:
        from verl.trainer.ppo.ray_trainer import RayPPOTrainer

        RayPPOTrainer._dump_generations(SimpleNamespace(global_steps=3), inputs, ["x"] * len(inputs),
                                        ["1"] * len(inputs), scores, extra, str(directory))


def test_pass_at_k_from_this_verls_validation_dump(tmp_path):
    from verl_focal.evaluation import pass_at_k
    from verl_focal.evaluation.report import ladder
    from verl_focal.evaluation.samples import load_run

    counts = {"math500": [8, 3, 1, 0], "aime24": [2, 0]}  # correct answers out of 8 samples per prompt
    inputs, acc, sources = [], [], []
    for source, per_prompt in counts.items():
        for i, c in enumerate(per_prompt):
            for j in range(8):
                inputs.append(f"{source} problem {i}")
                acc.append(j < c)
                sources.append(source)
    _write_validation_dump(tmp_path, inputs, acc, sources)
    table = ladder(load_run(str(tmp_path)), [1, 4, 8])
    for source, per_prompt in counts.items():
        for k in (1, 4, 8):
            assert table[source][k].value == pytest.approx(np.mean([pass_at_k(8, c, k) for c in per_prompt]))
