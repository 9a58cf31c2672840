"""Symbolic answer checking in killable worker processes.

math-verify bounds its own work with ``signal.alarm``, which only works on the main thread of the main
interpreter; verl calls reward functions from executor threads inside Ray actors (verl #5635, Math-Verify #55).
A thread cannot be interrupted in pure Python, and a process pool whose timed-out future keeps running leaves the
pool poisoned for the samples after it (verl #5839, AReaL #1426). So each check runs in a persistent worker
process with math-verify's own timeouts disabled; a check that overruns its deadline gets its worker SIGKILLed and
replaced in the background while the other workers keep serving.

Workers die with their owner: they ask the kernel for SIGKILL when the thread that spawned them exits
(``PR_SET_PDEATHSIG``; spawning happens on one long-lived daemon thread), exit on EOF of their request pipe,
and poll their parent pid as a fallback where prctl is unavailable. Their address space is capped
(``RLIMIT_AS``), so a memory bomb ends in a ``MemoryError`` inside the worker, not in the node's OOM killer.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import queue
import select
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

# As many as verl's own math_verify pool (4), but no more than there are cores to run them.
DEFAULT_WORKERS = int(os.environ.get("VERL_FOCAL_REWARD_WORKERS", str(min(4, os.cpu_count() or 1))))
DEFAULT_MEMORY_MB = int(os.environ.get("VERL_FOCAL_REWARD_MEMORY_MB", "2048"))
# Starting a worker imports sympy; on a loaded node that can take seconds, and it must not count as a timeout.
STARTUP_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Verdict:
    equal: bool
    timed_out: bool = False
    error: str | None = None


class _Worker:
    """One ``python -m verl_focal.rewards._worker`` process speaking one JSON line per request and reply."""

    def __init__(self, memory_mb: int):
        # The worker must import this package even where it is on sys.path only by the caller's doing.
        package_root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "verl_focal.rewards._worker", str(os.getpid()), str(memory_mb)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            close_fds=True,
        )
        self._buffer = b""

    def wait_ready(self, timeout: float) -> bool:
        reply = self._read_line(time.monotonic() + timeout)
        return reply is not None and json.loads(reply).get("ready") is True

    def check(self, gold: str, pred: str, deadline: float) -> dict | None:
        """Send one request; the reply as a dict, or ``None`` if the deadline passed or the worker died."""
        try:
            self.process.stdin.write(json.dumps({"gold": gold, "pred": pred}).encode() + b"\n")
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            return None
        reply = self._read_line(deadline)
        return None if reply is None else json.loads(reply)

    def _read_line(self, deadline: float) -> bytes | None:
        fd = self.process.stdout.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not poller.poll(remaining * 1000):
                return None
            chunk = os.read(fd, 65536)
            if not chunk:  # EOF: the worker died
                return None
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    def kill(self) -> None:
        try:
            self.process.kill()
            self.process.wait(timeout=5)
        except Exception:  # already gone, or a zombie the OS will reap with us
            pass
        for stream in (self.process.stdin, self.process.stdout):
            try:
                stream.close()
            except Exception:
                pass


class VerifierPool:
    """A fixed number of verifier processes shared by every thread of this process.

    ``check(gold, pred, timeout)`` waits at most ``timeout`` for a free worker and at most ``timeout`` for its
    answer (plus the one-off worker start-up of the first call in a process).
    """

    def __init__(self, workers: int = DEFAULT_WORKERS, memory_mb: int = DEFAULT_MEMORY_MB):
        if workers < 1:
            raise ValueError(f"VerifierPool needs at least one worker, got workers={workers}")
        self.size = workers
        self.memory_mb = memory_mb
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._to_spawn: queue.Queue[int | None] = queue.Queue()
        self._live: set[_Worker] = set()
        self._lock = threading.Lock()
        self._ever_ready = threading.Event()
        self._closed = False
        self._start_failures = 0
        self._spawner = threading.Thread(target=self._spawn_loop, name="verl-focal-verifier-spawner", daemon=True)
        self._spawner.start()
        for _ in range(workers):
            self._to_spawn.put(1)

    def _spawn_loop(self) -> None:
        # Every worker is forked from this thread, which lives as long as the process: PR_SET_PDEATHSIG fires
        # when the *spawning thread* exits, so forking from short-lived executor threads would kill workers.
        while self._to_spawn.get() is not None:
            if self._closed:
                return
            try:
                worker = _Worker(self.memory_mb)
            except Exception as error:
                self._spawn_failed(error)
                continue
            # Waiting for the import of sympy happens elsewhere, so several workers start in parallel.
            threading.Thread(target=self._admit, args=(worker,), name="verl-focal-verifier-start", daemon=True).start()

    def _admit(self, worker: _Worker) -> None:
        try:
            ready = worker.wait_ready(STARTUP_TIMEOUT_S)
        except Exception:  # garbage instead of the ready line
            ready = False
        if not ready:
            worker.kill()
            if self._closed:  # the pool was shut down (process exit) while this worker started: no failure
                return
            self._spawn_failed(RuntimeError(f"worker exited with code {worker.process.returncode} before ready"))
            return
        with self._lock:
            if self._closed:
                worker.kill()
                return
            self._live.add(worker)
            self._start_failures = 0
        self._ever_ready.set()
        self._idle.put(worker)

    def _spawn_failed(self, error: Exception) -> None:
        with self._lock:
            self._start_failures += 1
            failures = self._start_failures
        logger.error("verl-focal reward verifier failed to start (%s); retry %d", error, failures)
        # Back off so a broken environment does not fork in a tight loop; callers meanwhile time out.
        retry = threading.Timer(min(30.0, 0.5 * 2**failures), self._to_spawn.put, args=(1,))
        retry.daemon = True
        retry.start()

    def check(self, gold: str, pred: str, timeout: float) -> Verdict:
        acquire_timeout = timeout if self._ever_ready.is_set() else STARTUP_TIMEOUT_S + timeout
        try:
            worker = self._idle.get(timeout=acquire_timeout)
        except queue.Empty:
            return Verdict(False, timed_out=True, error="no free verifier worker")
        deadline = time.monotonic() + timeout
        try:
            reply = worker.check(gold, pred, deadline)
        except BaseException as error:  # a garbled reply, or the caller interrupted: the worker's state is unknown
            self._retire(worker)
            if isinstance(error, Exception):
                return Verdict(False, error=f"verifier protocol error: {error}")
            raise
        if reply is None:
            overran = time.monotonic() >= deadline
            self._retire(worker)
            if overran:
                return Verdict(False, timed_out=True)
            return Verdict(False, error=f"verifier worker exited with code {worker.process.returncode}")
        self._idle.put(worker)
        return Verdict(bool(reply.get("equal")), error=reply.get("error"))

    def _retire(self, worker: _Worker) -> None:
        worker.kill()
        with self._lock:
            self._live.discard(worker)
            if self._closed:
                return
        self._to_spawn.put(1)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            live, self._live = list(self._live), set()
        self._to_spawn.put(None)
        for worker in live:
            worker.kill()

    def pids(self) -> list[int]:
        with self._lock:
            return [w.process.pid for w in self._live]


_pool: VerifierPool | None = None
_pool_lock = threading.Lock()


def get_pool() -> VerifierPool:
    """The process-wide pool, started on first use."""
    global _pool
    if _pool is None:
        with _pool_lock:
            if _pool is None:
                _pool = VerifierPool()
    return _pool


def shutdown_pool() -> None:
    global _pool
    with _pool_lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.close()


def _forget_pool_in_child() -> None:
    # A forked child inherits the parent's pipes but not its threads: it must start its own pool.
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


atexit.register(shutdown_pool)
os.register_at_fork(after_in_child=_forget_pool_in_child)
