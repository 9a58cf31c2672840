"""Verifier worker process: ``python -m verl_focal.rewards._worker <parent pid> <memory MiB>``.

Reads ``{"gold", "pred"}`` JSON lines on stdin, answers ``{"equal": bool}`` (or ``{"equal": false, "error"}``)
on stdout. It has no timeout of its own: the parent kills it when a check overruns (see ``sandbox.py``).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time


def _die_with_parent(parent_pid: int) -> None:
    try:  # Linux: the kernel SIGKILLs us when the spawning thread of the parent exits, however it exits
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except Exception:
        pass
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(0)

    def watch() -> None:  # portable fallback; it only runs when the main thread releases the GIL
        while True:
            time.sleep(1.0)
            if os.getppid() != parent_pid:
                os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


def _cap_memory(memory_mb: int) -> None:
    try:
        import resource

        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except Exception:  # not available on this platform or not permitted: the parent's timeout still applies
        pass


def main() -> None:
    parent_pid, memory_mb = int(sys.argv[1]), int(sys.argv[2])
    _die_with_parent(parent_pid)
    # Keep the reply channel clean: anything sympy or a logger prints goes to stderr (the parent discards it).
    replies = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)

    import logging

    logging.disable(logging.WARNING)  # math-verify warns once that its own timeouts are off; that is intended
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    _cap_memory(memory_mb)
    gold_targets = [LatexExtractionConfig()]
    pred_targets = [LatexExtractionConfig(), ExprExtractionConfig()]

    def equal(gold: str, pred: str) -> bool:
        gold_parsed = parse("\\boxed{" + gold + "}", gold_targets, parsing_timeout=None)
        pred_parsed = parse("\\boxed{" + pred + "}", pred_targets, parsing_timeout=None)
        if not gold_parsed or not pred_parsed:
            return False
        return bool(verify(gold_parsed, pred_parsed, timeout_seconds=None))

    equal("\\frac{1}{2}", "0.5")  # warm the lazy imports and caches before reporting ready
    replies.write(b'{"ready": true}\n')
    for line in sys.stdin.buffer:
        try:
            request = json.loads(line)
            reply = {"equal": equal(request["gold"], request["pred"])}
        except BaseException as error:  # MemoryError, RecursionError, sympy internals: a wrong answer, not a crash
            if isinstance(error, (KeyboardInterrupt, SystemExit)):
                raise
            reply = {"equal": False, "error": f"{type(error).__name__}: {error}"[:300]}
        replies.write(json.dumps(reply).encode() + b"\n")


if __name__ == "__main__":
    main()
