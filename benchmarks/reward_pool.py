"""What pebble's ProcessPool does on the properties the verifier pool needs, per start method, and what a
replacement worker costs: the measurements behind the choices in verl_focal/rewards/sandbox.py.

    python benchmarks/reward_pool.py [--methods spawn forkserver fork] 2>/dev/null

A. the per-task timeout counts from task start: 3 tasks of 0.6 s, timeout 1 s each, queued on 1 worker;
B. a task stuck in one long C call (a big-integer power) with timeout 0.5 s: when its TimeoutError comes, and when
   the task queued behind it finishes;
C. an idle worker SIGKILLed from outside (as an OOM kill would): does the pool still serve;
D. the pool started from a short-lived thread (as verl's executor calls a scorer), workers asking for
   PR_SET_PDEATHSIG: does it still serve after that thread ends; then the owner is SIGKILLed while a task runs:
   how many of its processes are alive 3 s later;
E. 2000 trivial tasks from 8 threads on 2 workers: tasks per second (pebble's own overhead);
F. replacing a worker: a fresh interpreter importing math-verify (what a subprocess-per-worker pool pays) against
   verl_focal's pool, from a timed-out check until the pool is full again.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeoutError
from pathlib import Path

import pebble

HERE = Path(__file__).resolve().parent


def sleeper(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


def stuck_in_c() -> int:
    return pow(7, 5 * 10**6).bit_length()


def identity(x):
    return x


def init_worker() -> None:
    import ctypes
    import resource

    ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))


def measure(method: str) -> None:
    context = multiprocessing.get_context(method)
    pool = pebble.ProcessPool(max_workers=1, initializer=init_worker, context=context)
    pool.schedule(identity, (0,)).result()
    start = time.monotonic()
    futures = [pool.schedule(sleeper, (0.6,), timeout=1.0) for _ in range(3)]
    done = sum(1 for f in futures if _succeeds(f))
    print(f"[{method}] A: {done}/3 queued 0.6 s tasks (timeout 1 s) succeeded, in {time.monotonic() - start:.1f} s")

    start = time.monotonic()
    stuck, after = pool.schedule(stuck_in_c, timeout=0.5), pool.schedule(identity, (1,))
    _succeeds(stuck)
    stuck_s = time.monotonic() - start
    after.result()
    print(f"[{method}] B: TimeoutError after {stuck_s:.1f} s; "
          f"the next task done after {time.monotonic() - start:.1f} s")

    pid = pool.schedule(sleeper, (0,)).result()
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.5)
    try:
        pool.schedule(identity, (2,)).result(timeout=30)
        print(f"[{method}] C: idle worker killed: the pool still serves")
    except Exception as error:
        print(f"[{method}] C: idle worker killed: the pool is broken ({type(error).__name__}: {error})")
    pool.stop()
    pool.join()

    pool = pebble.ProcessPool(max_workers=2, initializer=init_worker, context=context)
    pool.schedule(identity, (0,)).result()
    start = time.monotonic()
    with ThreadPoolExecutor(8) as executor:
        list(executor.map(lambda i: pool.schedule(identity, (i,), timeout=10).result(), range(2000)))
    print(f"[{method}] E: {2000 / (time.monotonic() - start):.0f} trivial tasks/s")
    pool.stop()
    pool.join()


def _succeeds(future) -> bool:
    try:
        future.result()
        return True
    except FuturesTimeoutError:
        return False


OWNER = """
import multiprocessing, os, sys, threading, time
import pebble
sys.path[:0] = [{here!r}, {root!r}]
import reward_pool
from verl_focal.rewards.sandbox import descendants

if __name__ == "__main__":
    box = {{}}
    def start():
        box["pool"] = pebble.ProcessPool(max_workers=2, initializer=reward_pool.init_worker,
                                         context=multiprocessing.get_context({method!r}))
        box["pool"].schedule(reward_pool.identity, (0,)).result()
    thread = threading.Thread(target=start)
    thread.start()
    thread.join()
    time.sleep(1.0)
    try:
        box["pool"].schedule(reward_pool.identity, (5,)).result(timeout=20)
        print("serves", flush=True)
    except Exception as error:
        print("broken:", type(error).__name__, flush=True)
    try:
        box["pool"].schedule(reward_pool.sleeper, (60,))
    except Exception:
        pass
    time.sleep(1.0)
    print(" ".join(map(str, descendants(os.getpid()))), flush=True)
    os.kill(os.getpid(), 9)
"""


def owner_dies(method: str) -> None:
    script = HERE / f".reward_pool_owner_{method}.py"
    script.write_text(textwrap.dedent(OWNER.format(here=str(HERE), root=str(HERE.parent), method=method)))
    try:
        owner = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                 text=True)
        state, pids = owner.stdout.readline().strip(), [int(p) for p in owner.stdout.readline().split()]
        owner.wait(timeout=60)
        owner.stdout.close()
    finally:
        script.unlink()
    time.sleep(3)
    alive = [pid for pid in pids if _alive(pid)]
    print(f"[{method}] D: after the first calling thread ended the pool {state}; owner SIGKILLed: "
          f"{len(alive)} of its {len(pids)} processes alive 3 s later")
    for pid in alive:
        os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def replacement() -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(HERE.parent), os.environ.get("PYTHONPATH")])))
    runs = []
    for _ in range(3):
        start = time.monotonic()
        subprocess.run([sys.executable, "-c", "import verl_focal.rewards._worker"], env=env, check=True)
        runs.append(time.monotonic() - start)
    print(f"F: fresh interpreter importing math-verify and warming up: {min(runs):.2f}-{max(runs):.2f} s")

    from verl_focal.rewards.math import VERIFY
    from verl_focal.rewards.sandbox import VerifierPool

    pool = VerifierPool(workers=2)
    pool.run(VERIFY, ("1", "\\boxed{1}"), timeout=60, total_timeout=300)
    while len(pool.pids()) < 2:
        time.sleep(0.01)
    waits = []
    for _ in range(3):
        pool.run(VERIFY, ("x^{3000}+1", "\\boxed{(x+1)^{3000}}"), timeout=0.5, total_timeout=60)
        start = time.monotonic()
        while len(pool.pids()) < 2:
            time.sleep(0.005)
        waits.append(time.monotonic() - start)
    pool.close()
    print(f"F: verl_focal pool, from the timed-out check until 2 live workers again: "
          f"{min(waits) * 1000:.0f}-{max(waits) * 1000:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", nargs="+", default=["spawn", "forkserver", "fork"])
    args = parser.parse_args()
    print(f"pebble {pebble.__version__}, python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}")
    for method in args.methods:
        measure(method)
        owner_dies(method)
    replacement()


if __name__ == "__main__":
    main()
