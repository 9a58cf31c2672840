"""``verl-focal demo``'s own logic: console parsing, reading verl's metrics file and the report. The full
demo (about 6 min) is run by hand and recorded in docs/demo.md; ``test_cpu_main_ppo.py`` covers the training
path it uses."""

from __future__ import annotations

import json
import re

import pytest

from verl_focal.cli import COMMANDS
from verl_focal.experiments.demo import (
    FOCAL_KEYS,
    NOT_LOGGED,
    DemoSettings,
    RunRecord,
    _metrics_from_console,
    build_parser,
    focal_problems,
    read_metrics,
    recipe_gamma,
    write_report,
)
from verl_focal.theory.closed_form import focal_lr_equivalent

# A line as Ray forwards verl's console logger output (colour codes included), shortened.
CONSOLE_LINE = (
    "\x1b[36m(TaskRunnerV1 pid=27488)\x1b[0m step:3 - global_seqlen/min:7150.0 - actor/pg_loss:-0.0031 - "
    "critic/score/mean:0.4375 - num_turns/min:np.int32(2) - training/global_step:3 - timing_s/step:2.7\n"
)


def test_console_metrics_are_parsed_from_ray_forwarded_lines():
    fields = _metrics_from_console(CONSOLE_LINE)
    assert fields["step"] == 3 and fields["training/global_step"] == 3
    assert fields["critic/score/mean"] == 0.4375 and fields["actor/pg_loss"] == -0.0031
    assert "num_turns/min" not in fields  # not a plain number


def test_report_has_the_tables_the_plot_and_the_measured_step0_gap(tmp_path):
    records = [
        RunRecord("grpo", 100.0, reward={1: 0.25, 2: 0.5}, pg_loss={1: 0.0, 2: 0.0},
                  pass_at_k={0: {1: 0.25, 2: 0.40}, 2: {1: 0.30, 2: 0.50}}),
        RunRecord("f_grpo", 90.0, reward={1: 0.30, 2: 0.6}, pg_loss={1: 0.0, 2: 0.0},
                  pass_at_k={0: {1: 0.24, 2: 0.43}, 2: {1: 0.35, 2: 0.55}}),
    ]
    report = write_report(tmp_path, DemoSettings(steps=2, val_every=2, val_samples=2), records,
                          {"prepare": 10.0, "grpo": 100.0, "f_grpo": 90.0, "total": 200.0})
    text = report.read_text()
    assert "| GRPO | 0 | 25.0 | 40.0 |" in text and "| F-GRPO | 2 | 35.0 | 55.0 |" in text
    assert "| F-GRPO | 0.300 | 0.600 |" in text
    assert "up to 3.0 points" in text  # |0.40 - 0.43| at pass@2, measured from the two step-0 rows
    assert (tmp_path / "report.png").stat().st_size > 10_000
    assert (tmp_path / "report.json").exists()


def test_demo_is_a_cli_command_with_its_documented_options():
    assert COMMANDS["demo"][0] == "verl_focal.experiments.demo:main"
    args = build_parser().parse_args(["--steps", "3", "--out", "x"])
    assert args.steps == 3 and args.out == "x" and args.val_samples == 32


# Two training steps as the package trainer logs them (focal/* keys), plus a validation-only row.
STEP_METRICS = {
    "f_grpo": {
        1: {"focal/weight_mean": 0.62, "focal/success_rate_mean": 0.40, "focal/all_correct_ratio": 0.0,
            "focal/all_wrong_ratio": 0.125, "focal/advantage_scale": 0.70},
        2: {"focal/weight_mean": 0.45, "focal/success_rate_mean": 0.65, "focal/all_correct_ratio": 0.25,
            "focal/all_wrong_ratio": 0.0, "focal/advantage_scale": 0.50},
    },
    "grpo": {
        1: {"focal/success_rate_mean": 0.35, "focal/all_correct_ratio": 0.0, "focal/all_wrong_ratio": 0.25},
        2: {"focal/success_rate_mean": 0.55, "focal/all_correct_ratio": 0.125, "focal/all_wrong_ratio": 0.0},
    },
}


def _logged_run(tmp_path, monkeypatch, method, focal=True):
    """A metrics.jsonl written by verl's own file logger, read back by the demo."""
    from verl.utils.tracking import FileLogger

    path = tmp_path / f"{method}.jsonl"
    monkeypatch.setenv("VERL_FILE_LOGGER_PATH", str(path))
    logger = FileLogger("verl_focal_tiny", method)
    logger.log({"val-core/arith/acc/mean@2": 0.3}, step=0)
    for step, metrics in STEP_METRICS[method].items():
        logger.log({"critic/score/mean": 0.25 * step, "actor/pg_loss": 0.0, "training/global_step": step,
                    **(metrics if focal else {})}, step=step)
    logger.finish()
    record = read_metrics(RunRecord(method, 10.0), path)
    record.pass_at_k = {0: {1: 0.25, 2: 0.40}, 2: {1: 0.30, 2: 0.50}}
    return record


def _table_row(text, label):
    row = next(line for line in text.splitlines() if line.startswith(f"| {label} |"))
    return [float(cell) for cell in row.strip("|").split("|")[1:]]


def test_focal_at_work_reports_the_logged_metrics_and_the_sentence(tmp_path, monkeypatch):
    records = [_logged_run(tmp_path, monkeypatch, "grpo"), _logged_run(tmp_path, monkeypatch, "f_grpo")]
    for r in records:
        assert set(r.focal) == set(STEP_METRICS[r.method][1]) and focal_problems(r, r.method) == []
    gamma = recipe_gamma()
    assert gamma > 0  # the checks below (advantage scale <= 1) hold for gamma > 0 only
    report = write_report(tmp_path, DemoSettings(steps=2, val_every=2, val_samples=2), records,
                          {"prepare": 10.0, "grpo": 10.0, "f_grpo": 10.0, "total": 30.0})
    text = report.read_text()
    assert "## Focal at work" in text and NOT_LOGGED not in text
    rows = {"F-GRPO mean g": ("f_grpo", "focal/weight_mean"),
            "F-GRPO advantage scale": ("f_grpo", "focal/advantage_scale"),
            "F-GRPO success rate": ("f_grpo", "focal/success_rate_mean"),
            "F-GRPO all-correct groups": ("f_grpo", "focal/all_correct_ratio"),
            "GRPO success rate": ("grpo", "focal/success_rate_mean"),
            "GRPO all-wrong groups": ("grpo", "focal/all_wrong_ratio")}
    for label, (method, key) in rows.items():
        *per_step, mean = _table_row(text, label)
        logged = [STEP_METRICS[method][step][key] for step in (1, 2)]
        assert per_step == pytest.approx(logged, abs=5e-4) and mean == pytest.approx(sum(logged) / 2, abs=5e-4)
        assert all(0.0 <= v <= 1.0 for v in per_step)
    assert "GRPO mean g" not in text.replace("F-GRPO mean g", "")  # not a GRPO metric

    sentence = re.search(r"\*\*(Focal weighting removed .*?)\*\*", text).group(1)
    m_gamma = focal_lr_equivalent(gamma)
    assert "removed 40% of F-GRPO's update over its 2 steps (mean advantage scale 0.60" in sentence
    assert f"m_gamma = {m_gamma:.2f} for this recipe's gamma = {gamma:g}" in sentence
    assert "high-success groups" in sentence and "step 2 at success rate 0.65" in sentence

    summary = json.loads((tmp_path / "report.json").read_text())
    assert summary["focal_at_work"]["mean_advantage_scale"] == pytest.approx(0.60)
    assert summary["focal_at_work"]["removed_percent"] == pytest.approx(40.0)
    assert summary["focal_at_work"]["m_gamma"] == pytest.approx(m_gamma) and summary["focal_at_work"]["not_logged"] == []
    assert summary["runs"]["f_grpo"]["focal"]["focal/weight_mean"] == {"1": 0.62, "2": 0.45}
    assert (tmp_path / "report.png").stat().st_size > 10_000


def test_focal_at_work_says_what_was_not_logged(tmp_path, monkeypatch):
    records = [_logged_run(tmp_path, monkeypatch, m, focal=False) for m in ("grpo", "f_grpo")]
    assert all(r.focal == {} for r in records) and all(r.reward == {1: 0.25, 2: 0.5} for r in records)
    text = write_report(tmp_path, DemoSettings(steps=2, val_every=2, val_samples=2), records,
                        {"prepare": 1.0, "grpo": 1.0, "f_grpo": 1.0, "total": 3.0}, gamma=0.5).read_text()
    assert "## Focal at work" in text and "| metric |" not in text
    assert f"`focal/weight_mean` (F-GRPO)" in text and f"`focal/all_wrong_ratio` (GRPO)" in text
    assert f"F-GRPO's `focal/*` metrics were {NOT_LOGGED}" in text and "m_gamma = 0.68" in text
    assert "Focal weighting removed" not in text
    summary = json.loads((tmp_path / "report.json").read_text())["focal_at_work"]
    assert len(summary["not_logged"]) == len(FOCAL_KEYS) + 3 and "mean_advantage_scale" not in summary


def test_out_of_range_focal_values_are_named_with_key_step_and_file():
    record = RunRecord("f_grpo", 1.0, focal={"focal/advantage_scale": {1: 0.5, 2: 1.25}})
    assert focal_problems(record, "run/metrics.jsonl") == [
        "run/metrics.jsonl: focal/advantage_scale = 1.25 at step 2 is outside [0, 1]"]


def test_the_demo_reads_the_keys_the_package_trainer_logs():
    import torch

    from verl_focal.experiments.demo import FOCAL_ROWS
    from verl_focal.focal_metrics import FocalRecord, group_metrics, record_metrics

    mu = torch.tensor([0.0, 0.5, 1.0])
    logged = record_metrics(FocalRecord(mu, (1 - mu).sqrt(), torch.ones(6), torch.ones(6)))
    assert set(logged) == set(FOCAL_KEYS)
    assert set(group_metrics(mu)) == {key for key, _, methods in FOCAL_ROWS if "grpo" in methods}
