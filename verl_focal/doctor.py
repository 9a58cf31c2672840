"""``verl-focal doctor``: does a fresh, worker-like interpreter get our algorithms from ``import verl``?

It starts a new interpreter with this environment (as Ray starts its workers), imports only verl, and
reports the verl version, how verl loads the plugin there (the ``verl.plugins`` entry point on verl 0.9+,
``VERL_USE_EXTERNAL_MODULES`` on any verl), which of our names are in verl's registries, and the real
exception when the plugin failed to load (verl itself logs that at DEBUG only). Where the plugin does not
load by itself it prints the lines to add, and checks them in a second fresh interpreter that has the
environment ``main_ppo`` gives its Ray workers under those lines.
Exit status 0 when everything expected is registered, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys

from verl_focal import arg_types, versions

PLUGIN_MODULE = "verl_focal.plugin"
MODULES_VAR = "VERL_USE_EXTERNAL_MODULES"
HYDRA_ENV_PREFIX = "+ray_kwargs.ray_init.runtime_env.env_vars."
_MARK = "VERL_FOCAL_DOCTOR "

# Runs in the child interpreter: import verl exactly as a worker does, then look at what happened.
# argv[1]: seconds before faulthandler dumps the stacks and ends it; argv[2]: a Hydra override whose effect on
# the Ray workers' environment to compute, or "". The findings are one JSON line after _MARK.
_PROBE = r"""
import faulthandler, importlib, json, sys, traceback
from importlib.metadata import entry_points
faulthandler.dump_traceback_later(float(sys.argv[1]), exit=True)
out = {"python": sys.executable}
def report():
    print("VERL_FOCAL_DOCTOR " + json.dumps(out)); sys.stdout.flush()
try:
    import verl
    from verl.trainer.ppo import core_algos
except SystemExit as exc:
    frame = traceback.extract_tb(exc.__traceback__)[-1]
    out["sys_exit"] = {"code": repr(exc.code), "file": frame.filename, "line": frame.lineno, "function": frame.name}
    report(); sys.exit(0)
except Exception:
    out["verl_error"] = traceback.format_exc()
    report(); sys.exit(0)
out["verl_version"] = verl.__version__
out["entry_points"] = [f"{ep.name} = {ep.value}" for ep in entry_points(group="verl.plugins")]
out["loaded_by_verl"] = "verl_focal.plugin" in sys.modules
try:
    plugin = importlib.import_module("verl_focal.plugin")
    out["report"] = plugin.LOAD_REPORT
    out["expected"] = {"adv_estimator": list(plugin.EXPECTED_ESTIMATORS), "policy_loss": list(plugin.EXPECTED_LOSSES)}
except Exception:
    out["plugin_error"] = traceback.format_exc()
from verl_focal import registry
out["present"], out["ours"] = {}, {}
for kind, (attr, _, _) in registry.KINDS.items():
    reg = getattr(core_algos, attr)
    reg = reg if isinstance(reg, dict) else {}  # something replaced verl's registry: the load report says what
    out["present"][kind] = {name: registry.owner(fn) for name, fn in reg.items()}
    out["ours"][kind] = [name for name, fn in reg.items() if registry.is_ours(fn)]
if sys.argv[2]:
    # What main_ppo's run_ppo hands ray.init: verl's default runtime_env merged with ray_kwargs.ray_init.runtime_env.
    try:
        import inspect
        from hydra import compose, initialize_config_module
        from omegaconf import OmegaConf
        from verl.trainer.constants_ppo import get_ppo_ray_runtime_env
        with initialize_config_module(config_module="verl.trainer.config", version_base=None):
            cfg = compose(config_name="ppo_trainer", overrides=[sys.argv[2]])
        default = get_ppo_ray_runtime_env(*([cfg] if inspect.signature(get_ppo_ray_runtime_env).parameters else []))
        runtime_env = OmegaConf.merge(default, cfg.ray_kwargs.get("ray_init", {}).get("runtime_env", {}))
        out["worker_env_vars"] = {k: str(v) for k, v in (runtime_env.get("env_vars") or {}).items()}
    except Exception:
        out["override_error"] = traceback.format_exc()
report()
"""


def probe(env: dict | None = None, timeout: float = 120.0, override: str = "") -> dict:
    """Run the probe in a fresh interpreter and return its findings (``hang``/``probe_error`` on failure)."""
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _PROBE, str(timeout), override],
            env=dict(os.environ if env is None else env),
            capture_output=True,
            text=True,
            timeout=timeout + 30,  # faulthandler ends a hung child after `timeout`; this is the backstop
        )
    except subprocess.TimeoutExpired:
        return {"hang": {"timeout": timeout, "where": None, "dump": ""}}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(_MARK):
            return json.loads(line[len(_MARK):])
    if "Timeout (" in proc.stderr:
        return {"hang": {"timeout": timeout, "where": _hang_location(proc.stderr), "dump": proc.stderr}}
    tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
    return {"probe_error": f"the probe interpreter exited with status {proc.returncode} before reporting: {tail}"}


def _hang_location(dump: str) -> str | None:
    """The innermost frame of the main thread in a faulthandler dump, outside importlib's frozen frames.

    faulthandler lists threads newest first, so the main thread is the last block; deep stacks are cut at
    their outer end, which keeps the innermost frames.
    """
    blocks = [b for b in re.split(r"\n(?=(?:Current thread|Thread) 0x)", dump) if "File " in b]
    for file, line, function in re.findall(r'File "([^"]+)", line (\d+) in (\S+)', blocks[-1] if blocks else ""):
        if not file.startswith("<frozen"):
            return f"{file}:{line} in {function}"
    return None


def loading_lines() -> dict[str, str]:
    """The environment line and the Hydra override that load the plugin on verl without entry points."""
    current = [m for m in os.environ.get(MODULES_VAR, "").split(",") if m and m != PLUGIN_MODULE]
    value = ",".join(current + [PLUGIN_MODULE])
    return {"env": f"export {MODULES_VAR}={value}", "hydra": f"{HYDRA_ENV_PREFIX}{MODULES_VAR}={value}"}


def _failure(found: dict) -> str | None:
    """A one-line reason why the probe could not report on the registries, or None."""
    if "hang" in found:
        hang = found["hang"]
        where = f"; it was at {hang['where']}" if hang["where"] else ""
        return (f"`import verl` in a fresh interpreter did not finish within {hang['timeout']:g} s "
                f"(--timeout){where}")
    if "probe_error" in found:
        return found["probe_error"]
    if "sys_exit" in found:
        ex = found["sys_exit"]
        return f"`import verl` called sys.exit({ex['code']}) at {ex['file']}:{ex['line']} in {ex['function']}"
    if "verl_error" in found:
        return f"`import verl` failed:\n{found['verl_error']}"
    return None


def diagnose(found: dict) -> tuple[list[str], list[str]]:
    """(report lines, problems) from the probe's findings."""
    lines, problems = [], []
    failure = _failure(found)
    if failure:
        return ([f"python: {found['python']}"] if "python" in found else []), [failure]
    lines.append(f"python: {found['python']}")
    version = found["verl_version"]
    tested = f"tested: {versions.OLDEST_TESTED} and {versions.NEWEST_TESTED}; supported: verl{versions.SUPPORTED}"
    lines.append(f"verl: {version} ({tested})")
    if not versions.supports("core", version):
        problems.append(f"verl-focal supports verl{versions.SUPPORTED}; this is verl {version}")
    entry_points = versions.has_entry_points(version)
    unread = "" if entry_points else f" (verl {version} does not read them)"
    lines.append(f"verl.plugins entry points: {', '.join(found['entry_points']) or 'none'}{unread}")
    if entry_points and not any(ep.startswith("verl_focal ") for ep in found["entry_points"]):
        problems.append("verl_focal's entry point is not installed in this interpreter (pip install verl-focal)")
    if not found["loaded_by_verl"]:
        if entry_points:
            policy = os.environ.get("VERL_USE_EXTERNAL_PLUGINS", "auto")
            problems.append(
                f"`import verl` did not load {PLUGIN_MODULE} (VERL_USE_EXTERNAL_PLUGINS={policy!r}; "
                "it must be 'auto' or list 'verl_focal'), nor does VERL_USE_EXTERNAL_MODULES name it"
            )
        else:
            problems.append(
                f"verl {version} loads no entry points and {MODULES_VAR} does not name {PLUGIN_MODULE} in this "
                "environment: add the two lines above"
            )
    if "plugin_error" in found:
        problems.append(f"importing {PLUGIN_MODULE} raised:\n{found['plugin_error']}")
        return lines, problems
    report = found["report"]
    problems += [f"plugin load error: {error}" for error in report["errors"]]
    for kind, name, reason in report["skipped"]:
        problems.append(f"{kind} {name!r} skipped: {reason} (owner: {found['present'][kind].get(name)})")
    for kind, expected in found["expected"].items():
        for name in expected:
            owner = found["present"][kind].get(name)
            ok = name in found["ours"][kind]
            status = "MISSING" if not ok else "registered" if found["loaded_by_verl"] else "registered only on direct import"
            lines.append(f"{kind:<14} {name:<12} {status}  {owner or ''}")
            if not ok and not any(s[1] == name for s in report["skipped"]):
                problems.append(f"{kind} {name!r} is not registered by verl_focal")
    for kind, name, reason in report.get("unavailable", []):
        lines.append(f"{kind:<14} {name:<12} unavailable: {reason}")
    return lines, problems


def check_loading_lines(found: dict, timeout: float) -> tuple[list[str], list[str]]:
    """Print the lines a user adds on verl without entry points, then check them in a fresh interpreter."""
    add = loading_lines()
    lines = [
        "",
        f"verl {found['verl_version']} has no verl.plugins entry points; it loads verl-focal from {MODULES_VAR}.",
        "Add, in the shell that starts the driver (a local Ray cluster inherits it):",
        f"    {add['env']}",
        "and to the main_ppo command line (the TaskRunner and every Ray worker, on every node):",
        f"    {add['hydra']}",
    ]
    env = {k: v for k, v in os.environ.items() if k != MODULES_VAR}
    composed = probe(env, timeout, override=add["hydra"])
    failure = _failure(composed) or composed.get("override_error")
    if failure:
        return lines, [f"composing verl's config with {add['hydra']} failed: {failure}"]
    env.update(composed["worker_env_vars"])
    worker = probe(env, timeout)
    failure = _failure(worker)
    if failure:
        return lines, [f"with the override, a worker's `import verl`: {failure}"]
    missing = [
        name
        for kind, names in worker.get("expected", {}).items()
        for name in names
        if name not in worker["ours"][kind]
    ]
    ok = worker.get("loaded_by_verl") and not missing
    verdict = "registers every expected name" if ok else f"does not register {missing or 'the plugin'}"
    lines.append(f"checked: a fresh interpreter with the environment main_ppo gives its Ray workers {verdict}")
    return lines, ([] if ok else [f"with the override, a worker {verdict}"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="verl-focal doctor", description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print the raw findings as JSON")
    parser.add_argument(
        "--timeout", type=arg_types.real(0, low_open=True), default=120.0, metavar="SECONDS",
        help="how long one fresh interpreter may take to import verl and the plugin (default 120)",
    )
    args = parser.parse_args(argv)
    found = probe(timeout=args.timeout)
    if args.json:
        print(json.dumps(found, indent=2))
    lines, problems = diagnose(found)
    if "verl_version" in found and not versions.has_entry_points(found["verl_version"]):
        more_lines, more_problems = check_loading_lines(found, args.timeout)
        lines += more_lines
        problems += more_problems
    print("\n".join(lines))
    if problems:
        print("\nPROBLEMS:")
        for problem in problems:
            print(f"- {problem}")
        return 1
    print("\nok: verl loads verl-focal and every expected name is registered")
    return 0
