"""``verl-focal demo``'s own logic: console parsing and the report. The full demo (about 5 min) is
run by hand and recorded in docs/demo.md; ``test_cpu_main_ppo.py`` covers the training path it uses."""

from __future__ import annotations

from verl_focal.cli import COMMANDS
from verl_focal.experiments.demo import DemoSettings, RunRecord, _metrics_from_console, build_parser, write_report

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
    assert args.steps == 3 and args.out == "x" and args.val_samples == 16
