"""recipes/run.sh: the command it builds, the names it refuses, and the checks it makes before launching.

The checks (recipes/_shared/preflight.py) must stop a run with a missing data file before verl or Ray
starts: each test that exercises them points Ray's temp directory at an empty folder and requires it to
stay empty, and never sees run.sh print the main_ppo command it would exec.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RECIPES = REPO / "recipes"
RUN_SH = RECIPES / "run.sh"


def run(args, timeout=120, **env):
    full = {**os.environ, "PYTHON": sys.executable, **env}
    for key in ("TRAIN_FILES", "VAL_FILES", "GPUS_PER_NODE", "NNODES", "MODEL_PATH", "CKPT_DIR", "DRY_RUN",
                "SKIP_CHECKS"):  # fmt: skip
        if key not in env:
            full.pop(key, None)
    return subprocess.run(["bash", str(RUN_SH), *args], env=full, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def ray_tmp(tmp_path):
    path = tmp_path / "ray"
    path.mkdir()
    yield path
    assert not list(path.iterdir()), "Ray was started"


def test_dry_run_prints_the_command():
    dry = run(["qwen2_5_7b/megatron", "f_dapo", "trainer.nnodes=1"], DRY_RUN="1", VERL_FOCAL_DATA="/d",
              NNODES="4", MODEL_PATH="/m", PYTHON="py")  # fmt: skip
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.split() == [
        "py", "-m", "verl.trainer.main_ppo",
        f"--config-path={RECIPES}/qwen2_5_7b/megatron", "--config-name=f_dapo",
        "data.train_files=/d/deepscaler.parquet", "data.val_files=/d/aime25.parquet",
        "trainer.nnodes=4", "trainer.n_gpus_per_node=8", "actor_rollout_ref.model.path=/m",
        "trainer.nnodes=1",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "args, message",
    [
        (["qwen2_5_7b", "ppo"], "no recipe qwen2_5_7b/ppo.yaml"),
        (["_shared", "paper"], "names starting with _ are not recipes"),
        (["_shared/engine", "megatron"], "names starting with _ are not recipes"),
        (["tiny", "_cpu"], "names starting with _ are not recipes"),
        (["tiny", "grpo"], "verl-focal demo"),
    ],
)
def test_names_that_are_not_recipes(args, message):
    refused = run(args, DRY_RUN="1")
    assert refused.returncode == 2
    assert message in refused.stderr and not refused.stdout


def test_usage_lists_recipes_only():
    usage = run(["qwen2_5_7b", "ppo"]).stderr
    listed = [line.strip() for line in usage.splitlines() if line.startswith("  ")]
    assert "qwen3_4b_base/megatron/f_cispo" in listed and "qwen2_5_7b/grpo_n32" in listed
    assert not [name for name in listed if "_shared" in name or name.startswith("tiny/")]


def test_missing_data_prints_the_command_that_makes_it(tmp_path, ray_tmp):
    data = tmp_path / "data"
    proc = run(["qwen2_5_7b", "f_grpo"], VERL_FOCAL_DATA=str(data), RAY_TMPDIR=str(ray_tmp))
    assert proc.returncode == 1
    assert "main_ppo" not in proc.stdout  # the launch command is printed only right before exec
    err = proc.stderr
    assert f"missing data.train_files: {data}/deepscaler.parquet" in err
    assert (f"make it with: verl-focal data deepscaler --input <local copy of agentica-org/DeepScaleR-Preview-"
            f"Dataset> --tokenizer <local copy of Qwen/Qwen2.5-7B> --output {data}/deepscaler.parquet") in err
    assert f"missing data.val_files: {data}/aime25.parquet" in err
    assert "verl-focal data aime25 --input <local copy of" in err and f"--output {data}/aime25.parquet" in err


def test_the_check_reads_the_composed_config(tmp_path, ray_tmp):
    """Overrides count: a Hydra list of validation files, a local tokenizer, a file with no dataset name."""
    (tmp_path / "deepscaler.parquet").touch()
    (tmp_path / "aime25.parquet").touch()
    model = tmp_path / "Qwen2.5-7B"
    model.mkdir()
    proc = run(
        ["qwen2_5_7b", "grpo_n32", f"data.val_files=[{tmp_path}/aime25.parquet,{tmp_path}/math500.parquet]",
         f"data.train_files={tmp_path}/train.parquet"],
        VERL_FOCAL_DATA=str(tmp_path), MODEL_PATH=str(model), RAY_TMPDIR=str(ray_tmp),
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    err = proc.stderr
    assert "aime25.parquet" not in err  # it exists
    assert f"verl-focal data math500 --input <local copy of HuggingFaceH4/MATH-500> --output {tmp_path}/math500" in err
    assert f"missing data.train_files: {tmp_path}/train.parquet" in err
    assert "no `verl-focal data` dataset is named 'train'" in err


def test_checks_pass_when_the_files_exist(tmp_path):
    for name in ("deepscaler.parquet", "aime25.parquet"):
        (tmp_path / name).touch()
    env = dict(os.environ, VERL_FOCAL_DATA=str(tmp_path))
    proc = subprocess.run(
        [sys.executable, str(RECIPES / "_shared" / "preflight.py"), str(RECIPES / "llama3_2_3b_instruct/megatron"),
         "f_dapo_full", "trainer.nnodes=1"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr


def test_the_check_imports_neither_verl_nor_torch(tmp_path):
    """It composes the recipe (and finds the data missing: exit 1) with Hydra alone."""
    script = (
        "import runpy, sys\n"
        f"sys.argv = ['preflight.py', {str(RECIPES / 'qwen2_5_7b')!r}, 'grpo']\n"
        "try:\n"
        f"    runpy.run_path({str(RECIPES / '_shared' / 'preflight.py')!r}, run_name='__main__')\n"
        "except SystemExit as stop:\n"
        "    print('exit', stop.code)\n"
        "print('verl' in sys.modules, 'torch' in sys.modules)\n"
    )
    env = dict(os.environ, VERL_FOCAL_DATA=str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert proc.stdout.split() == ["exit", "1", "False", "False"], proc.stderr


def test_an_interpreter_without_verl_gets_the_python_hint(tmp_path, ray_tmp):
    bare = tmp_path / "python"  # this interpreter without its site-packages, so without verl
    bare.write_text(f'#!/bin/sh\nexec {sys.executable} -S "$@"\n')
    bare.chmod(0o755)
    proc = run(["qwen2_5_7b", "grpo"], PYTHON=str(bare), VERL_FOCAL_DATA=str(tmp_path), RAY_TMPDIR=str(ray_tmp))
    assert proc.returncode == 3
    assert "cannot import verl" in proc.stderr and "PYTHON=" in proc.stderr
    missing = run(["qwen2_5_7b", "grpo"], PYTHON=str(tmp_path / "nowhere"))
    assert missing.returncode == 3 and "PYTHON=" in missing.stderr


def test_a_bad_override_fails_in_seconds_with_hydras_message(tmp_path, ray_tmp):
    proc = run(["qwen2_5_7b", "grpo", "actor_rollout_ref.actor.entropy_coef=0.001"],
               VERL_FOCAL_DATA=str(tmp_path), RAY_TMPDIR=str(ray_tmp))  # fmt: skip
    assert proc.returncode == 2
    assert "does not compose" in proc.stderr and "entropy_coef" in proc.stderr
