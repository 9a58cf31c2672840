"""``verl-focal`` command line: one sub-command per tool, each implemented in its own module."""

from __future__ import annotations

import importlib
import sys

# sub-command -> (module:function taking argv, one-line help). Modules are imported only when used.
COMMANDS = {
    "data": ("verl_focal.data.cli:main", "write deepscaler, benchmarks or a synthetic set as verl parquet"),
    "demo": ("verl_focal.experiments.demo:main", "GRPO vs F-GRPO through verl's main_ppo on CPU, with a pass@k report"),
    "doctor": ("verl_focal.doctor:main", "check that verl loads the plugin in a fresh worker-like process"),
    "example": ("verl_focal.example:main", "run verl's compute_advantage with focal_grpo on a realistic batch"),
    "eval": ("verl_focal.evaluation.cli:main", "pass@k ladder and paired significance test from verl validation dumps"),
    "maze": ("verl_focal.experiments.maze.cli:main", "the paper's single-solution Maze (Table 4) at CPU scale, with ΔNLL_rare"),
    "nll-rare": ("verl_focal.evaluation.nll_rare_cli:main", "ΔNLL_rare of trained checkpoints on base rollouts' rare-correct set"),
    "simulate": ("verl_focal.theory.cli:simulate_main", "the paper's categorical simulation (Figure 2) with focal_grpo"),
    "theory": ("verl_focal.theory.cli:theory_main", "Lemma 3.1 tail-miss table and argmax over N, and m_gamma"),
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: verl-focal <command> [options]\n\ncommands:")
        for name, (_, help_text) in COMMANDS.items():
            print(f"  {name:<10} {help_text}")
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"verl-focal: unknown command {name!r}; choose from {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    module, func = COMMANDS[name][0].split(":")
    return int(getattr(importlib.import_module(module), func)(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
