"""Plugin loading, checked in fresh interpreters that import only verl (as Ray workers do).

On verl 0.9+ ``import verl`` loads the plugin through the ``verl.plugins`` entry point; before 0.9 it is loaded
the documented way, ``VERL_USE_EXTERNAL_MODULES=verl_focal.plugin`` (docs/install.md), which ``run_python``
sets there, after any module a test puts first.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from verl_focal import versions

ENTRY_POINTS = versions.has_entry_points()


def external_modules(*modules):
    """VERL_USE_EXTERNAL_MODULES for a process that must load ``modules`` and, by the documented way, us."""
    return ",".join(modules + (() if ENTRY_POINTS else ("verl_focal.plugin",)))


def run_python(code, tmp_path=None, env_extra=None, args=(), timeout=300):
    env = dict(os.environ)
    env.pop("VERL_USE_EXTERNAL_PLUGINS", None)
    env.pop("VERL_USE_EXTERNAL_MODULES", None)
    if external_modules():
        env["VERL_USE_EXTERNAL_MODULES"] = external_modules()
    if tmp_path is not None:
        env["PYTHONPATH"] = f"{tmp_path}{os.pathsep}{env.get('PYTHONPATH', '')}"
    env.update(env_extra or {})
    env = {k: v for k, v in env.items() if v is not None}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args], capture_output=True, text=True, env=env, timeout=timeout
    )


DOCTOR = "from verl_focal.doctor import main; import sys; raise SystemExit(main(sys.argv[1:]))"


def test_import_verl_alone_registers_estimators():
    proc = run_python(
        """
        import json, sys
        import verl
        from verl.trainer.ppo import core_algos
        import verl_focal.plugin as plugin
        reg = core_algos.ADV_ESTIMATOR_REGISTRY
        print(json.dumps({
            "names": {n: reg[n].__module__ for n in ("focal_grpo", "focal_rloo") if n in reg},
            "user_imported": [m for m in sys.modules if m == "verl_focal.estimators"],
            "builtins_intact": reg["grpo_vectorized"] is core_algos.compute_grpo_vectorized_outcome_advantage,
            "losses": {n: core_algos.POLICY_LOSS_REGISTRY[n].__module__ for n in ("dapo", "cispo", "vanilla")},
            "v1_imported_by_plugin": "verl.trainer.ppo.v1" in sys.modules,
            "unavailable": plugin.LOAD_REPORT["unavailable"],
        }))
        if plugin.versions.supports("trainer_mode"):
            from verl.trainer.ppo.v1 import get_trainer_cls
            print(get_trainer_cls("sync_pass_at_k").__name__)
        """
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    found = json.loads(lines[-2] if ENTRY_POINTS else lines[-1])
    assert found["names"] == {"focal_grpo": "verl_focal.estimators", "focal_rloo": "verl_focal.estimators"}
    assert found["builtins_intact"]
    # our dapo is added; verl's own cispo and vanilla are kept
    assert found["losses"] == {"dapo": "verl_focal.losses", "cispo": "verl.trainer.ppo.core_algos",
                               "vanilla": "verl.trainer.ppo.core_algos"}
    # the pass@k trainer registers lazily: workers that never import the v1 trainer do not pay for it
    assert not found["v1_imported_by_plugin"]
    if ENTRY_POINTS:
        assert lines[-1] == "PassAtKTrainer" and found["unavailable"] == []
    else:  # verl < 0.9 has no v1 trainer: said so, not an error
        [(kind, name, reason)] = found["unavailable"]
        assert (kind, name) == ("trainer_mode", "sync_pass_at_k")
        assert f"needs verl>=0.9.0,<0.10; verl {versions.installed()} is installed" in reason
    # The plugin loaded without any error worth a warning.
    assert "verl-focal" not in proc.stderr


def test_registration_is_idempotent():
    proc = run_python(
        """
        import importlib
        import verl
        import verl_focal.plugin as plugin
        from verl.trainer.ppo import core_algos
        before = dict(core_algos.ADV_ESTIMATOR_REGISTRY)
        importlib.reload(plugin)          # a second load, with fresh function objects
        import verl_focal.plugin
        assert plugin.LOAD_REPORT["errors"] == [], plugin.LOAD_REPORT
        assert plugin.LOAD_REPORT["skipped"] == [], plugin.LOAD_REPORT
        after = core_algos.ADV_ESTIMATOR_REGISTRY
        assert set(after) == set(before)
        assert all(after[k] is before[k] for k in before if not k.startswith("focal_"))
        print("ok")
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("ok")


def test_taken_name_is_never_overwritten_and_warns(tmp_path):
    # Another package registers `focal_grpo` first (VERL_USE_EXTERNAL_MODULES runs before entry points).
    (tmp_path / "squatter.py").write_text(
        textwrap.dedent(
            """
            from verl.trainer.ppo.core_algos import register_adv_est

            @register_adv_est("focal_grpo")
            def someone_elses_estimator(token_level_rewards, response_mask, index=None, config=None, **kw):
                return token_level_rewards, token_level_rewards
            """
        )
    )
    proc = run_python(
        """
        import verl
        from verl.trainer.ppo import core_algos
        print(core_algos.ADV_ESTIMATOR_REGISTRY["focal_grpo"].__module__,
              core_algos.ADV_ESTIMATOR_REGISTRY["focal_rloo"].__module__)
        """,
        tmp_path,
        {"VERL_USE_EXTERNAL_MODULES": external_modules("squatter")},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["squatter", "verl_focal.estimators"]
    # verl configures logging at WARNING: our warning is visible there.
    assert "WARNING" in proc.stderr and "'focal_grpo' not registered" in proc.stderr

    doctor = run_python(DOCTOR, tmp_path, {"VERL_USE_EXTERNAL_MODULES": external_modules("squatter")})
    assert doctor.returncode == 1
    assert "focal_grpo" in doctor.stdout and "skipped" in doctor.stdout and "squatter" in doctor.stdout


def test_load_failure_does_not_break_verl_and_doctor_shows_the_exception(tmp_path):
    # Sabotage verl's registry before our plugin runs: registration raises inside the plugin.
    (tmp_path / "saboteur.py").write_text(
        "from verl.trainer.ppo import core_algos\ncore_algos.ADV_ESTIMATOR_REGISTRY = None\n"
    )
    env = {"VERL_USE_EXTERNAL_MODULES": external_modules("saboteur")}
    proc = run_python("import verl; print('verl imported')", tmp_path, env)
    assert proc.returncode == 0, proc.stderr
    assert "verl imported" in proc.stdout
    assert "verl-focal failed to register its advantage estimators" in proc.stderr

    doctor = run_python(DOCTOR, tmp_path, env)
    assert doctor.returncode == 1
    assert "AttributeError" in doctor.stdout and "Traceback" in doctor.stdout


def test_doctor_ok_and_plugins_disabled():
    ok = run_python(DOCTOR)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert f"verl: {versions.installed()} " in ok.stdout and "focal_grpo" in ok.stdout and "registered" in ok.stdout
    if ENTRY_POINTS:
        off = run_python(DOCTOR, env_extra={"VERL_USE_EXTERNAL_PLUGINS": "none"})
        assert off.returncode == 1
        assert "VERL_USE_EXTERNAL_PLUGINS='none'" in off.stdout
    else:
        off = run_python(DOCTOR, env_extra={"VERL_USE_EXTERNAL_MODULES": None})
        assert off.returncode == 1
        assert "does not name verl_focal.plugin in this environment: add the two lines above" in off.stdout


def test_doctor_prints_the_loading_lines_and_checks_them_in_a_fresh_process():
    # No entry points (verl < 0.9, or 0.9 with them switched off) and nothing in the environment: the lines
    # doctor prints must be exactly what loads us in a worker that has main_ppo's Ray environment.
    env = {"VERL_USE_EXTERNAL_MODULES": None, "VERL_USE_EXTERNAL_PLUGINS": "none"}
    proc = run_python(
        """
        from verl_focal import doctor
        found = doctor.probe()
        lines, problems = doctor.check_loading_lines(found, 120)
        print("\\n".join(lines)); print("PROBLEMS", problems)
        """,
        env_extra=env,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "    export VERL_USE_EXTERNAL_MODULES=verl_focal.plugin\n" in out
    assert "    +ray_kwargs.ray_init.runtime_env.env_vars.VERL_USE_EXTERNAL_MODULES=verl_focal.plugin\n" in out
    assert "checked: a fresh interpreter with the environment main_ppo gives its Ray workers registers every" in out
    assert out.strip().endswith("PROBLEMS []")


def test_doctor_gives_up_on_a_hanging_plugin_with_one_line_naming_where(tmp_path):
    (tmp_path / "hangs.py").write_text("import time\n\nwhile True:\n    time.sleep(0.1)\n")
    proc = run_python(DOCTOR, tmp_path, {"VERL_USE_EXTERNAL_MODULES": "hangs"}, args=["--timeout", "30"], timeout=120)
    assert proc.returncode == 1
    [problem] = [line for line in proc.stdout.splitlines() if line.startswith("- ")]
    assert problem.startswith("- `import verl` in a fresh interpreter did not finish within 30 s (--timeout); it was at ")
    assert f"{tmp_path / 'hangs.py'}:4 in <module>" in problem
    assert "Traceback" not in proc.stdout + proc.stderr


def test_doctor_reports_where_a_plugin_called_sys_exit(tmp_path):
    (tmp_path / "quits.py").write_text("import sys\n\n\ndef leave():\n    sys.exit(3)\n\n\nleave()\n")
    proc = run_python(DOCTOR, tmp_path, {"VERL_USE_EXTERNAL_MODULES": "quits"})
    assert proc.returncode == 1
    assert f"- `import verl` called sys.exit(3) at {tmp_path / 'quits.py'}:5 in leave" in proc.stdout


def test_doctor_refuses_a_bad_timeout():
    proc = run_python(DOCTOR, args=["--timeout", "0"])
    assert proc.returncode == 2 and "argument --timeout: expected a finite number > 0, got '0'" in proc.stderr


def test_the_hydra_override_reaches_the_task_runner_and_its_workers_through_main_ppo(tmp_path):
    # verl's own run_ppo starts Ray with the runtime_env it builds from the config; the driver has neither
    # the variable nor entry points, so only the override can load us in the TaskRunner and in a worker
    # created the way verl's RayWorkerGroup creates them (an actor with env_vars of its own).
    out = tmp_path / "found.json"
    proc = run_python(
        """
        import json, os, sys
        import ray
        from hydra import compose, initialize_config_module
        from verl.trainer.main_ppo import run_ppo

        OUT = sys.argv[1]

        def registered():
            from verl.trainer.ppo import core_algos
            return {"var": os.environ.get("VERL_USE_EXTERNAL_MODULES"),
                    "focal_grpo": getattr(core_algos.ADV_ESTIMATOR_REGISTRY.get("focal_grpo"), "__module__", None),
                    "dapo": getattr(core_algos.POLICY_LOSS_REGISTRY.get("dapo"), "__module__", None)}

        @ray.remote(num_cpus=0)
        class Worker:
            def report(self):
                return registered()

        class ProbeTaskRunner:
            def run(self, config):
                worker = Worker.options(runtime_env={"env_vars": {"WG_BACKEND": "ray"}}).remote()
                found = {"task_runner": registered(), "worker": ray.get(worker.report.remote())}
                with open(OUT, "w") as f:
                    json.dump(found, f)

        with initialize_config_module(config_module="verl.trainer.config", version_base=None):
            cfg = compose(config_name="ppo_trainer", overrides=[
                "+ray_kwargs.ray_init.runtime_env.env_vars.VERL_USE_EXTERNAL_MODULES=verl_focal.plugin",
                "ray_kwargs.ray_init.num_cpus=2"])
        run_ppo(cfg, task_runner_class=ray.remote(num_cpus=1)(ProbeTaskRunner))
        print("driver loaded the plugin:", "verl_focal.plugin" in sys.modules)
        """,
        env_extra={"VERL_USE_EXTERNAL_MODULES": None, "VERL_USE_EXTERNAL_PLUGINS": "none", "RAY_USAGE_STATS_ENABLED": "0"},
        args=[str(out)],
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "driver loaded the plugin: False" in proc.stdout
    ours = {"var": "verl_focal.plugin", "focal_grpo": "verl_focal.estimators", "dapo": "verl_focal.losses"}
    assert json.loads(out.read_text()) == {"task_runner": ours, "worker": ours}


@pytest.mark.parametrize("override", ["+algorithm.focal.gamma=1", "+algorithm.focal.gamma=1.0"])
def test_command_line_override_reaches_the_estimator(override):
    # Compose verl's own ppo_trainer config as main_ppo does, then run the estimator with that node.
    proc = run_python(
        f"""
        import numpy as np, torch
        from hydra import compose, initialize_config_module
        from verl.trainer.ppo.ray_trainer import compute_advantage
        from verl import DataProto
        with initialize_config_module(config_module="verl.trainer.config", version_base=None):
            cfg = compose(config_name="ppo_trainer", overrides=["algorithm.adv_estimator=focal_grpo",
                          "{override}", "+algorithm.focal.success_threshold=0.0"])
        tlr = torch.tensor([[1.0], [-1.0], [-1.0], [-1.0]])
        data = DataProto.from_dict(tensors={{"token_level_rewards": tlr, "response_mask": torch.ones(4, 1)}},
                                   non_tensors={{"uid": np.array(["a"] * 4, dtype=object)}})
        adv = compute_advantage(data, adv_estimator=cfg.algorithm.adv_estimator, config=cfg.algorithm)
        print(float(adv.batch["advantages"][0, 0]))
        """
    )
    assert proc.returncode == 0, proc.stderr
    # +1/-1 rewards, threshold 0: mu = .25, g = .75 (gamma 1); GRPO A+ = 1.5 / (std 1 + 1e-6)
    assert float(proc.stdout.split()[-1]) == pytest.approx(0.75 * 1.5 / (1 + 1e-6), rel=1e-6)
