"""The paper's single-solution Maze (Section 5.2, Appendix K, Table 4) at CPU scale: ``verl-focal maze``.

Modules: ``generator`` (perfect mazes and their tokens), ``model`` (a small decoder-only transformer with a
KV cache), ``rl_step`` (one on-policy update through verl's registries), ``training`` (SFT warm-up, RL loop,
held-out evaluation), ``sweep`` (the grid in worker processes, resumable), ``report`` (results.csv,
summary.md, figures), ``cli`` (the command).
"""
