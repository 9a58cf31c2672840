"""Bounded checks of untrusted input in killable worker processes, shared by every thread of a process.

math-verify bounds its own work with ``signal.alarm``, which only works on the main thread of the main
interpreter; verl calls reward functions from executor threads inside Ray actors (verl #5635, Math-Verify #55).
A thread cannot be interrupted in pure Python, and a pool whose timed-out task keeps running leaves the pool
poisoned for the samples after it (verl #5839, AReaL #1426). So each check runs in a worker process with
math-verify's own timeouts off, and a check that overruns its deadline gets its worker killed and replaced.

The pool is pebble's ``ProcessPool``: its per-task timeout starts when a worker takes the task (time spent
queued behind other samples is back-pressure, never a timeout) and it kills and replaces the worker of a task
that overruns. What this module adds (measurements in docs/rewards.md):

- Workers fork from multiprocessing's fork server, a single-threaded process that has imported the modules in
  ``PRELOAD`` (math-verify): a replacement starts in milliseconds, forking never happens from a multi-threaded
  Ray actor, and ``PR_SET_PDEATHSIG`` (which fires when the *thread* that forked the child exits) is tied to the
  fork server, which exits with its owner. Forking from verl's short-lived executor threads killed the workers
  as soon as the first calling thread ended, and broke the pebble pool.
- Each worker asks the kernel for SIGKILL when the fork server dies, polls its owner's pid as a fallback, and
  caps its own address space (``RLIMIT_AS``), so a memory bomb ends in a ``MemoryError`` inside the worker.
- pebble declares its whole pool broken when a worker dies outside a task (an OOM kill of an idle worker, for
  one); a broken pool is replaced here and the checks it dropped run again on the new one.
- ``total_timeout`` caps waiting plus checking; a sample that hits it is reported as unverified, not wrong.

Any scorer can run its own bounded function here: ``get_pool().run(function, args, timeout=..., total_timeout=...)``
with a picklable module-level function, or its name ``"package.module:function"`` (then the calling process need
not import the module: only workers do); :func:`preload` its module to have workers start with it imported (and
warm, if importing it warms it), outside every check's timeout.
"""

from __future__ import annotations

import importlib
import logging
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import CancelledError
from concurrent.futures import TimeoutError as FuturesTimeoutError
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pebble

logger = logging.getLogger(__name__)

# As many as verl's own math_verify pool, whatever the number of cores: each answer that keeps math-verify busy
# holds a worker for its whole timeout, so on a 2-core machine 2 workers halved the throughput of a batch with 5%
# of them (benchmarks/rewards.py, load row), while forked workers share their pages and cost little memory.
DEFAULT_WORKERS = int(os.environ.get("VERL_FOCAL_REWARD_WORKERS", "4"))
# How much a worker may grow beyond its size when it starts.
DEFAULT_MEMORY_MB = int(os.environ.get("VERL_FOCAL_REWARD_MEMORY_MB", "2048"))
# Modules every worker imports before its first task: the fork server imports them once, and workers fork from
# it. Importing one should bring a process to steady state (caches filled), since the fork server does no more.
PRELOAD: list[str] = ["verl_focal.rewards._worker"]

OK, TIMED_OUT, ERROR, UNVERIFIED = "ok", "timed_out", "error", "unverified"
# How often a waiting caller checks that the pool it waits on is still alive.
_POLL_S = 1.0
# A pool that breaks this often in a row for one call is a broken environment, not bad luck.
_ATTEMPTS = 3
# How long a replaced pool may take to finish the checks it had (each is bounded by its own timeout).
_RETIRE_S = 600.0


class ImportingMainError(RuntimeError):
    """The pool was asked for while multiprocessing re-imported an unguarded main module."""


@dataclass(frozen=True)
class Outcome:
    """How one bounded call ended: ``status`` is ``ok`` (``value`` is the function's result), ``timed_out`` (it ran
    past ``timeout`` and its worker was killed), ``error`` (it raised, or its worker died) or ``unverified``
    (``total_timeout`` passed before it could finish)."""

    status: str
    value: Any = None
    error: str | None = None


def _init_worker(owner_pid: int, memory_mb: int, preload: tuple[str, ...]) -> None:
    """pebble worker initializer: die with the owner, cap memory, import the scorers' modules."""
    forker = os.getppid()  # the fork server
    try:  # Linux: the kernel SIGKILLs us when the fork server exits, however it exits
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass
    if os.getppid() != forker or not _alive(owner_pid):
        os._exit(0)
    threading.Thread(target=_watch_owner, args=(owner_pid, forker), daemon=True).start()
    _cap_memory(memory_mb)
    for name in preload:  # already imported in the fork server, unless someone else had started it
        importlib.import_module(name)


def _watch_owner(owner_pid: int, forker: int) -> None:
    # Needed besides PR_SET_PDEATHSIG: every worker holds the fork server's "clients alive" pipe (so that it could
    # start processes of its own), so the fork server outlives its owner as long as a busy worker does. Python
    # switches to this thread every few milliseconds even while the main thread runs a long check.
    while os.getppid() == forker and _alive(owner_pid):
        time.sleep(1.0)
    os._exit(0)


def _alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie (dead, not yet reaped by its parent) counts as dead."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return True


def _cap_memory(memory_mb: int) -> None:
    try:
        import resource

        with open("/proc/self/statm") as statm:  # the fork server's imports are already mapped
            start = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except Exception:
        start = 0
    try:
        limit = start + memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except Exception:  # not available on this platform or not permitted: the deadline still applies
        pass


def _fork_server_context() -> multiprocessing.context.BaseContext:
    context = multiprocessing.get_context("forkserver")
    # "__main__" is the default preload: the server imports the main module once instead of every worker
    # re-running it (in a Ray actor that is Ray's worker script, which imports ray). A server already started
    # by someone else keeps its own preload; workers then import PRELOAD in the initializer.
    context.set_forkserver_preload(["__main__", *PRELOAD])
    return context


class VerifierPool:
    """A fixed number of worker processes shared by every thread of this process (see the module docstring)."""

    def __init__(self, workers: int = DEFAULT_WORKERS, memory_mb: int = DEFAULT_MEMORY_MB):
        if workers < 1:
            raise ValueError(f"VerifierPool needs at least one worker, got workers={workers}")
        self.size = workers
        self.memory_mb = memory_mb
        self._lock = threading.Lock()
        self._pool: pebble.ProcessPool | None = None
        self._closed = False

    def run(self, function: Callable | str, args: tuple = (), *, timeout: float, total_timeout: float) -> Outcome:
        """Run ``function(*args)`` in a worker: at most ``timeout`` seconds from the moment a worker takes it, and
        at most ``total_timeout`` seconds in all (waiting for a worker, starting the pool, then running).

        ``function`` is a picklable module-level function or its name, ``"package.module:function"``. A function
        that raises ``TimeoutError`` itself reads as timed out.
        """
        if isinstance(function, str):
            function, args = _call_by_name, (function, tuple(args))
        give_up = time.monotonic() + total_timeout
        for _ in range(_ATTEMPTS):
            pool = self._current()
            try:
                future = pool.schedule(function, args=args, timeout=timeout)
            except RuntimeError:  # pebble: "Unexpected error within the Pool" (broken) or not running
                self._discard(pool)
                continue
            outcome = self._wait(pool, future, give_up)
            if outcome is not None:
                return outcome
            self._discard(pool)  # the pool broke before this call ran: run it again on a fresh one
        return Outcome(UNVERIFIED, error=f"the verifier pool broke {_ATTEMPTS} times in a row")

    def _wait(self, pool: pebble.ProcessPool, future, give_up: float) -> Outcome | None:
        """The call's outcome, or ``None`` if the pool broke under it (so it never ran to an end)."""
        while True:
            remaining = give_up - time.monotonic()
            try:
                future.exception(timeout=max(0.0, min(_POLL_S, remaining)))
            except FuturesTimeoutError:  # still queued or running
                if remaining <= _POLL_S:
                    future.cancel()  # pebble kills the worker of a running task that is cancelled
                    return Outcome(UNVERIFIED, error="total_timeout passed before the check finished")
                if not pool.active:
                    future.cancel()
                    return None
                continue
            except CancelledError:
                return None
            return _settled(future)

    def _current(self) -> pebble.ProcessPool:
        if getattr(multiprocessing.current_process(), "_inheriting", False):
            raise ImportingMainError(
                "verl-focal's verifier pool was used while multiprocessing was importing the main module in a new "
                "process (the fork server or a worker): put the script's top-level code under "
                "`if __name__ == \"__main__\":`, as every multiprocessing program must"
            )
        with self._lock:
            if self._closed:
                raise RuntimeError("the verifier pool is closed")
            if self._pool is None:
                self._pool = pebble.ProcessPool(
                    max_workers=self.size,
                    initializer=_init_worker,
                    initargs=(os.getpid(), self.memory_mb, tuple(PRELOAD)),
                    context=_fork_server_context(),
                )
            return self._pool

    def _discard(self, pool: pebble.ProcessPool) -> None:
        with self._lock:
            if self._pool is not pool:
                return  # another caller replaced it already
            self._pool = None
        logger.warning("verl-focal verifier pool broke (a worker died outside a task); starting a new one")
        _stop_in_background(pool)

    def restart(self) -> None:
        """Start the next calls on a new pebble pool (whose workers import the ``PRELOAD`` of now); the current one
        takes no more checks, finishes those it has, and its workers exit."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            _finish_in_background(pool)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.stop()
            pool.join()

    def pids(self) -> list[int]:
        """Live worker pids (for tests and diagnostics)."""
        with self._lock:
            pool = self._pool
        if pool is None:
            return []
        workers = dict(pool._pool_manager.worker_manager.workers)  # pebble keeps no public list
        return [pid for pid, process in workers.items() if process.is_alive()]


def _call_by_name(target: str, args: tuple) -> Any:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)(*args)


def descendants(pid: int) -> list[int]:
    """Every live process started below ``pid`` (Linux ``/proc``): what must be gone once ``pid`` is."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _settled(future) -> Outcome | None:
    error = future.exception()
    if error is None:
        return Outcome(OK, future.result())
    if isinstance(error, FuturesTimeoutError):  # pebble's per-task deadline; the worker was killed
        return Outcome(TIMED_OUT, error="check overran its timeout")
    if isinstance(error, BrokenProcessPool):
        return None
    if isinstance(error, pebble.ProcessExpired):
        return Outcome(ERROR, error=f"worker died with exit code {error.exitcode}")
    return Outcome(ERROR, error=f"{type(error).__name__}: {error}"[:300])


def _finish_in_background(pool: pebble.ProcessPool) -> None:
    def finish() -> None:
        try:
            pool.close()  # pebble keeps a closed pool active until its tasks are done: their callers keep waiting
            pool.join(timeout=_RETIRE_S)
            pool.stop()
            pool.join(timeout=30)
        except Exception:
            logger.debug("finishing a replaced verifier pool failed", exc_info=True)

    threading.Thread(target=finish, name="verl-focal-verifier-finish", daemon=True).start()


def _stop_in_background(pool: pebble.ProcessPool) -> None:
    def stop() -> None:
        try:
            pool.stop()
            pool.join(timeout=30)
        except Exception:
            logger.debug("stopping a broken verifier pool failed", exc_info=True)

    threading.Thread(target=stop, name="verl-focal-verifier-stop", daemon=True).start()


_pool: VerifierPool | None = None
_pool_lock = threading.Lock()


def get_pool() -> VerifierPool:
    """The process-wide pool; its workers start on its first call."""
    global _pool
    if _pool is None:
        with _pool_lock:
            if _pool is None:
                _pool = VerifierPool()
    return _pool


def preload(module: str) -> None:
    """Have every worker of this process import ``module`` before its first check, from now on.

    Called before the process's first check, the fork server imports it and workers fork with it loaded. A pool
    already running was started without it: it is replaced (:meth:`VerifierPool.restart`), and the new workers
    import ``module`` as they start, outside any check's timeout. A module already listed costs nothing.
    """
    with _pool_lock:
        if module in PRELOAD:
            return
        PRELOAD.append(module)
        pool = _pool
    if pool is not None:
        pool.restart()


def shutdown_pool() -> None:
    global _pool
    with _pool_lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.close()


def _forget_pool_in_child() -> None:
    # A forked child inherits the parent's pool object but not its threads: it must start its own pool.
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_pool_in_child)
