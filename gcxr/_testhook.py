"""A test hook: make gcxr wait at a named point so that a test can signal it there.

Set ``GCXR_TEST_PAUSE_AT=<stage>`` in the environment of a ``gcxr`` process and it writes
``gcxr: test pause at <stage>`` to stderr when it reaches that point, then sleeps (at most
``GCXR_TEST_PAUSE_S`` seconds, default 30) until :func:`release` is called - which the
command's signal handler does - or the time is up.  Unset (always, outside tests), a pause
point costs one dictionary lookup.  Stages: ``reduce`` (inside the first run's reduction
task, on a dask worker thread), ``fit`` (at the first statistic evaluation), ``write:<name>``
(with ``<name>`` open and half-written in the staging folder) and ``commit`` (between two
moves of the swap).  Used by ``tests/test_interrupt.py``; standard library only, so that any
module may call it.
"""
from __future__ import annotations

import os
import sys
import threading
import time

__all__ = ["pause_point", "release"]

_released = threading.Event()


def pause_point(stage: str) -> None:
    """Wait here if ``$GCXR_TEST_PAUSE_AT`` names ``stage`` (a no-op otherwise)."""
    if os.environ.get("GCXR_TEST_PAUSE_AT") != stage:
        return
    print(f"gcxr: test pause at {stage}", file=sys.stderr, flush=True)
    deadline = time.monotonic() + float(os.environ.get("GCXR_TEST_PAUSE_S", "30"))
    while not _released.is_set() and time.monotonic() < deadline:
        time.sleep(0.02)


def release() -> None:
    """End every pause, now and later in this process (called when the process is interrupted)."""
    _released.set()
