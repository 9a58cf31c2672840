"""Run ``python -m verl.trainer.main_ppo`` on the CPU backend as a child process, under a deadline.

Used by ``verl-focal demo`` and the CPU end-to-end test. A rollout that breaks inside verl's agent
loop shows up as a stall, not a crash (verl marks the group failed and keeps polling), so every run
has a wall-clock limit; on expiry the whole process group (driver, Ray and its workers) is killed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

from verl_focal.cpu import cpu_env

#: recipes/tiny in a source checkout (the recipes are not part of the installed package).
TINY_RECIPES = Path(__file__).resolve().parents[2] / "recipes" / "tiny"

#: Lines verl prints when a rollout request failed; the run would then stall, so they fail it early.
ROLLOUT_FAILURE_MARKERS = ("Error in _run_prompt", "hf_cpu rollout: request")


@dataclass
class MainPPOResult:
    returncode: int
    seconds: float
    log_path: Path
    timed_out: bool
    failure_line: Optional[str]

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out and self.failure_line is None

    def explain(self) -> str:
        if self.timed_out:
            why = "ran past its time limit (a stalled rollout?)"
        elif self.failure_line:
            why = f"a rollout request failed: {self.failure_line.strip()[:300]}"
        else:
            why = f"exited with code {self.returncode}"
        tail = self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""
        return f"main_ppo {why} after {self.seconds:.0f}s; log {self.log_path}; last lines:\n{tail}"


def main_ppo_command(
    recipe: str,
    model_dir: str,
    train_file: str,
    val_file: str,
    overrides: Sequence[str] = (),
    recipes_dir: Path = TINY_RECIPES,
) -> list[str]:
    """The ``main_ppo`` command line for ``recipes/tiny/<recipe>.yaml`` with the given model and data."""
    if not (recipes_dir / f"{recipe}.yaml").is_file():
        raise FileNotFoundError(f"no recipe {recipes_dir / recipe}.yaml (recipes/tiny ships with the source checkout)")
    return [
        sys.executable, "-m", "verl.trainer.main_ppo",
        f"--config-path={recipes_dir}", f"--config-name={recipe}",
        f"actor_rollout_ref.model.path={model_dir}",
        f"data.train_files={train_file}",
        f"data.val_files={val_file}",
        *overrides,
    ]


def run_main_ppo(
    command: Sequence[str],
    log_path: Path,
    timeout_s: float,
    env: Optional[dict[str, str]] = None,
    on_line: Optional[Callable[[str], None]] = None,
) -> MainPPOResult:
    """Run ``command`` with the CPU backend switched on; stream its output to ``log_path``.

    Args:
        command: from ``main_ppo_command``.
        log_path: the combined stdout/stderr goes here.
        timeout_s: wall-clock limit; past it the process group is killed.
        env: extra environment variables (``VERL_FILE_LOGGER_PATH``, ...), on top of ``cpu_env()``.
        on_line: called with every output line (progress printing).
    """
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    full_env = cpu_env()
    full_env.update(env or {})
    start = time.monotonic()
    failure: list[str] = []
    timed_out = threading.Event()
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.Popen(
            list(command), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=full_env,
            start_new_session=True, errors="replace",
        )

        def kill(reason_event: Optional[threading.Event] = None) -> None:
            if reason_event is not None:
                reason_event.set()
            _kill_group(proc)

        timer = threading.Timer(timeout_s, kill, args=(timed_out,))
        timer.daemon = True
        timer.start()
        try:
            for line in proc.stdout:
                log.write(line)
                if on_line is not None:
                    on_line(line)
                if not failure and any(marker in line for marker in ROLLOUT_FAILURE_MARKERS):
                    failure.append(line)
                    log.flush()
                    kill()
            proc.wait()
        finally:
            timer.cancel()
            if proc.poll() is None:
                kill()
            # Ray's daemons outlive a killed driver unless the group goes too.
            _kill_group(proc)
    return MainPPOResult(proc.returncode, time.monotonic() - start, log_path, timed_out.is_set(),
                         failure[0] if failure else None)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        pgid = os.getpgid(proc.pid)
    except ProcessLookupError:
        pgid = proc.pid
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            proc.poll()  # reap the leader, or its zombie keeps the group "alive"
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)
