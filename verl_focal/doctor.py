"""``verl-focal doctor``: does a fresh, worker-like interpreter get our algorithms from ``import verl``?

It starts a new interpreter with this environment (as Ray starts its workers), imports only verl, and
reports the verl version, the plugin entry point, which of our names are in verl's registries, and the
real exception when the plugin failed to load (verl itself logs that at DEBUG only).
Exit status 0 when everything expected is registered, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

# Runs in the child interpreter: import verl exactly as a worker does, then look at what happened.
_PROBE = r"""
import importlib, json, sys, traceback
from importlib.metadata import entry_points
out = {"python": sys.executable}
try:
    import verl
    from verl.trainer.ppo import core_algos
except Exception:
    out["verl_error"] = traceback.format_exc()
    print(json.dumps(out)); sys.exit(0)
out["verl_version"] = verl.__version__
out["entry_points"] = [f"{ep.name} = {ep.value}" for ep in entry_points(group="verl.plugins")]
out["loaded_by_verl"] = "verl_focal.plugin" in sys.modules
try:
    plugin = importlib.import_module("verl_focal.plugin")
    out["report"] = plugin.LOAD_REPORT
    out["expected"] = {
        "adv_estimator": list(getattr(plugin, "EXPECTED_ESTIMATORS", ())),
        "policy_loss": list(getattr(plugin, "EXPECTED_LOSSES", ())),
    }
except Exception:
    out["plugin_error"] = traceback.format_exc()
registries = {"adv_estimator": core_algos.ADV_ESTIMATOR_REGISTRY, "policy_loss": core_algos.POLICY_LOSS_REGISTRY}
out["present"] = {
    kind: {name: f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', '?')}" for name, fn in reg.items()}
    for kind, reg in registries.items()
}
print(json.dumps(out))
"""


def probe(env: dict | None = None) -> dict:
    """Run the probe in a fresh interpreter and return its findings."""
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE],
        env=dict(os.environ if env is None else env),
        capture_output=True,
        text=True,
        timeout=300,
    )
    last = proc.stdout.strip().splitlines()[-1:] or [""]
    try:
        return json.loads(last[0])
    except json.JSONDecodeError:
        return {"probe_error": f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"}


def diagnose(found: dict) -> tuple[list[str], list[str]]:
    """(report lines, problems) from the probe's findings."""
    lines, problems = [], []
    if "probe_error" in found:
        return lines, [f"the probe interpreter failed: {found['probe_error']}"]
    lines.append(f"python: {found['python']}")
    if "verl_error" in found:
        return lines, [f"`import verl` failed:\n{found['verl_error']}"]
    lines.append(f"verl: {found['verl_version']}")
    if not found["verl_version"].startswith("0.9."):
        problems.append(f"verl-focal is tested against verl 0.9.1; this is verl {found['verl_version']}")
    ours = [ep for ep in found["entry_points"] if ep.startswith("verl_focal ")]
    lines.append(f"verl.plugins entry points: {', '.join(found['entry_points']) or 'none'}")
    if not ours:
        problems.append("verl_focal's entry point is not installed in this interpreter (pip install verl-focal)")
    policy = os.environ.get("VERL_USE_EXTERNAL_PLUGINS", "auto")
    if not found["loaded_by_verl"]:
        problems.append(
            f"`import verl` did not load verl_focal.plugin (VERL_USE_EXTERNAL_PLUGINS={policy!r}; "
            "it must be 'auto' or list 'verl_focal')"
        )
    if "plugin_error" in found:
        problems.append(f"importing verl_focal.plugin raised:\n{found['plugin_error']}")
        return lines, problems
    report = found["report"]
    for error in report["errors"]:
        problems.append(f"plugin load error: {error}")
    for kind, name, reason in report["skipped"]:
        problems.append(f"{kind} {name!r} skipped: {reason} (owner: {found['present'][kind].get(name)})")
    for kind, expected in found["expected"].items():
        for name in expected:
            owner = found["present"][kind].get(name)
            ok = owner is not None and owner.startswith("verl_focal.")
            status = "MISSING" if not ok else "registered" if found["loaded_by_verl"] else "registered only on direct import"
            lines.append(f"{kind:<14} {name:<12} {status}  {owner or ''}")
            if not ok and not any(s[1] == name for s in report["skipped"]):
                problems.append(f"{kind} {name!r} is not registered by verl_focal")
    return lines, problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="verl-focal doctor", description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print the raw findings as JSON")
    args = parser.parse_args(argv)
    found = probe()
    if args.json:
        print(json.dumps(found, indent=2))
    lines, problems = diagnose(found)
    print("\n".join(lines))
    if problems:
        print("\nPROBLEMS:")
        for problem in problems:
            print(f"- {problem}")
        return 1
    print("\nok: verl loads verl-focal and every expected name is registered")
    return 0
