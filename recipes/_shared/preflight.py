"""Checks ``recipes/run.sh`` makes before it launches: ``python preflight.py CONFIG_DIR CONFIG_NAME [overrides]``.

- the interpreter has verl and verl_focal (and Hydra), else exit 3 with a hint at ``PYTHON=``, and a verl
  the recipes run on (``verl_focal.versions``: 0.9.x, the v1 trainer), else exit 3 naming both versions;
- the recipe composes with the given overrides, else exit 2 with Hydra's message;
- every local file the composed recipe reads (``data.train_files``, ``data.val_files``, a local
  ``actor_rollout_ref.model.path``) exists, else exit 1 and print, for each missing data file, the
  ``verl-focal data`` command that makes it.

It composes the recipe with Hydra alone, pointing the recipe's ``pkg://verl.trainer.config`` search path at
verl's config directory on disk, so verl (and torch) are never imported: it takes a few seconds, where
``main_ppo`` would start Ray and fail on the first missing file minutes later.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import sys
from pathlib import Path

NEEDED = ("verl", "verl_focal", "hydra", "omegaconf")
FLAGS_WITH_VALUE = {"--package", "-p", "--config-dir", "-cd"}
# Flags with which main_ppo only prints (config, help) or sweeps; the data files are then not checked.
NOT_A_RUN = {"--cfg": "it only prints the config", "-c": "it only prints the config",
             "--info": "it only prints", "-i": "it only prints", "--help": "it only prints", "-h": "it only prints",
             "--hydra-help": "it only prints", "-m": "a multirun sweep", "--multirun": "a multirun sweep"}
DATA_KEYS = ("data.train_files", "data.val_files")
ENV_HINT = {"data.train_files": "TRAIN_FILES", "data.val_files": "VAL_FILES"}


def fail(code: int, *lines: str) -> None:
    print(*(f"recipes/run.sh: {line}" for line in lines), sep="\n", file=sys.stderr)
    sys.exit(code)


def check_interpreter() -> Path:
    missing = [name for name in NEEDED if importlib.util.find_spec(name) is None]
    if missing:
        fail(
            3,
            f"{sys.executable} cannot import {', '.join(missing)}.",
            "Install verl-focal there (it brings verl 0.9.1), or point PYTHON= at the interpreter that has both, "
            "the one every node's Ray workers use: PYTHON=/path/to/python recipes/run.sh ...",
        )
    from verl_focal import versions  # imports no verl

    reason = versions.refusal("recipes", importlib.metadata.version("verl"))
    if reason:
        fail(3, reason)
    return Path(importlib.util.find_spec("verl").submodule_search_locations[0]) / "trainer" / "config"


def hydra_overrides(args: list[str]) -> list[str]:
    """The key=value overrides among run.sh's arguments (Hydra's own flags dropped)."""
    overrides, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg in FLAGS_WITH_VALUE:
            skip = True
        elif not arg.startswith("-"):
            overrides.append(arg)
    return overrides


def compose_recipe(config_dir: str, name: str, overrides: list[str], verl_config: Path):
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    search = f"hydra.searchpath=[file://{verl_config}]"
    try:
        with initialize_config_dir(config_dir=config_dir, version_base=None):
            return compose(config_name=name, overrides=[*overrides, search])
    except (HydraException, OmegaConfBaseException) as error:
        fail(2, f"the recipe {config_dir}/{name}.yaml does not compose with these overrides:", str(error))


def paths(cfg, key: str) -> list[str]:
    from omegaconf import OmegaConf

    value = OmegaConf.select(cfg, key, throw_on_missing=False)
    if value is None or OmegaConf.is_missing(cfg, key):
        return []
    return [str(item) for item in value] if OmegaConf.is_list(value) else [str(value)]


def is_local(path: str) -> bool:
    return "://" not in path


def data_hint(path: str, model_path: str) -> str:
    from verl_focal.data.prepare import SPECS

    spec = SPECS.get(Path(path).name.removesuffix(".parquet"))
    if spec is None:
        return (f"no `verl-focal data` dataset is named {Path(path).stem!r}: write the file with "
                f"`verl-focal data {{{','.join(SPECS)},synthetic}} ... --output {path}`, or name an existing file")
    command = f"verl-focal data {spec.name} --input <local copy of {spec.notes}>"
    if spec.length_filter:
        tokenizer = model_path if os.path.isdir(os.path.expanduser(model_path)) else f"<local copy of {model_path}>"
        command += f" --tokenizer {tokenizer}"
    return f"make it with: {command} --output {path}"


def missing_files(cfg) -> list[str]:
    model_path = str(cfg.actor_rollout_ref.model.path)
    report = []
    for key in DATA_KEYS:
        for path in paths(cfg, key):
            if is_local(path) and not os.path.exists(os.path.expanduser(path)):
                report += [f"missing {key}: {path}", f"  {data_hint(path, model_path)}",
                           f"  or point {ENV_HINT[key]}= / VERL_FOCAL_DATA= (or {key}=...) at the file"]
    looks_local = model_path.startswith(("/", "./", "../", "~"))
    if looks_local and not os.path.exists(os.path.expanduser(model_path)):
        report += [f"missing actor_rollout_ref.model.path: {model_path} (MODEL_PATH=)"]
    return report


def main(argv: list[str]) -> int:
    config_dir, name, *args = argv
    verl_config = check_interpreter()
    reasons = [NOT_A_RUN[arg] for arg in args if arg in NOT_A_RUN]
    if reasons:
        print(f"recipes/run.sh: data files not checked: {reasons[0]}", file=sys.stderr)
        return 0
    report = missing_files(compose_recipe(config_dir, name, hydra_overrides(args), verl_config))
    if report:
        fail(1, *report, "Nothing was launched (SKIP_CHECKS=1 skips these checks, e.g. for files only the "
                         "cluster's nodes can see).")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
