"""Plugin loading, checked in fresh interpreters that import only verl (as Ray workers do)."""

import json
import subprocess
import sys
import textwrap

import pytest


def run_python(code, tmp_path=None, env_extra=None):
    import os

    env = dict(os.environ)
    env.pop("VERL_USE_EXTERNAL_PLUGINS", None)
    if tmp_path is not None:
        env["PYTHONPATH"] = f"{tmp_path}{os.pathsep}{env.get('PYTHONPATH', '')}"
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env, timeout=300
    )


def test_import_verl_alone_registers_estimators():
    proc = run_python(
        """
        import json, sys
        import verl
        from verl.trainer.ppo import core_algos
        reg = core_algos.ADV_ESTIMATOR_REGISTRY
        print(json.dumps({
            "names": {n: reg[n].__module__ for n in ("focal_grpo", "focal_rloo") if n in reg},
            "user_imported": [m for m in sys.modules if m == "verl_focal.estimators"],
            "builtins_intact": reg["grpo_vectorized"] is core_algos.compute_grpo_vectorized_outcome_advantage,
            "losses": {n: core_algos.POLICY_LOSS_REGISTRY[n].__module__ for n in ("dapo", "cispo", "vanilla")},
            "v1_imported_by_plugin": "verl.trainer.ppo.v1" in sys.modules,
        }))
        from verl.trainer.ppo.v1 import get_trainer_cls
        print(get_trainer_cls("sync_pass_at_k").__name__)
        """
    )
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout.strip().splitlines()[-2])
    assert found["names"] == {"focal_grpo": "verl_focal.estimators", "focal_rloo": "verl_focal.estimators"}
    assert found["builtins_intact"]
    # our dapo is added; verl's own cispo and vanilla are kept
    assert found["losses"] == {"dapo": "verl_focal.losses", "cispo": "verl.trainer.ppo.core_algos",
                               "vanilla": "verl.trainer.ppo.core_algos"}
    # the pass@k trainer registers lazily: workers that never import the v1 trainer do not pay for it
    assert not found["v1_imported_by_plugin"]
    assert proc.stdout.strip().splitlines()[-1] == "PassAtKTrainer"
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
        {"VERL_USE_EXTERNAL_MODULES": "squatter"},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["squatter", "verl_focal.estimators"]
    # verl configures logging at WARNING: our warning is visible there.
    assert "WARNING" in proc.stderr and "'focal_grpo' not registered" in proc.stderr

    doctor = run_python("from verl_focal.doctor import main; raise SystemExit(main([]))", tmp_path,
                        {"VERL_USE_EXTERNAL_MODULES": "squatter"})
    assert doctor.returncode == 1
    assert "focal_grpo" in doctor.stdout and "skipped" in doctor.stdout and "squatter" in doctor.stdout


def test_load_failure_does_not_break_verl_and_doctor_shows_the_exception(tmp_path):
    # Sabotage verl's registry before our plugin runs: registration raises inside the plugin.
    (tmp_path / "saboteur.py").write_text(
        "from verl.trainer.ppo import core_algos\ncore_algos.ADV_ESTIMATOR_REGISTRY = None\n"
    )
    env = {"VERL_USE_EXTERNAL_MODULES": "saboteur"}
    proc = run_python("import verl; print('verl imported')", tmp_path, env)
    assert proc.returncode == 0, proc.stderr
    assert "verl imported" in proc.stdout
    assert "verl-focal failed to register its advantage estimators" in proc.stderr

    doctor = run_python("from verl_focal.doctor import main; raise SystemExit(main([]))", tmp_path, env)
    assert doctor.returncode == 1
    assert "AttributeError" in doctor.stdout and "Traceback" in doctor.stdout


def test_doctor_ok_and_plugins_disabled():
    ok = run_python("from verl_focal.doctor import main; raise SystemExit(main([]))")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "verl: 0.9.1" in ok.stdout and "focal_grpo" in ok.stdout and "registered" in ok.stdout
    off = run_python(
        "from verl_focal.doctor import main; raise SystemExit(main([]))",
        env_extra={"VERL_USE_EXTERNAL_PLUGINS": "none"},
    )
    assert off.returncode == 1
    assert "VERL_USE_EXTERNAL_PLUGINS='none'" in off.stdout


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
