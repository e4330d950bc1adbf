"""Progress reporting for long stages: terminal and Jupyter, throttled, silenceable.

What to use when:

* :func:`progress_bar` - a ``tqdm.auto`` bar over an iterable or a known total
  (runs simulated, files downloaded); a text bar in a terminal, a widget in
  Jupyter.
* :func:`progress_compute` - ``dask.compute`` with a bar: a scheduler callback
  counting finished tasks with the local (threaded/sync) scheduler, or
  ``distributed.progress`` on the futures when a ``Client`` is given.
* :class:`FitProgress` - a callback for a minimiser: likelihood rounds (statistic
  evaluations) made and the current statistic, refreshed at most every ``mininterval``
  seconds.

The reduce and fit bars stay on screen when done, as one summary line each.

Everything is silent when the global quiet flag is set (:func:`set_quiet`,
``gcxr ... --quiet``) or when ``quiet=True`` is passed.  Bars write to stderr
so that stdout stays clean for results.
"""
from __future__ import annotations

import contextlib
import sys
import time
from typing import Any, Callable, Iterable
import functools
import os
import signal

__all__ = ["set_quiet", "is_quiet", "quiet_mode", "progress_bar", "progress_compute", "progress_persist", "FitProgress",
           "DaskProgressCallback", "local_pool"]

_QUIET = False
MININTERVAL = 0.5          # seconds between refreshes


def interactive() -> bool:
    """True in a terminal or a Jupyter kernel: where progress output is wanted by default."""
    try:
        if sys.stderr.isatty():
            return True
    except Exception:
        pass
    return "ipykernel" in sys.modules


def set_quiet(flag: bool = True) -> None:
    """Turn all gcxr progress output off (``True``) or back on.

    Parameters
    ----------
    flag : bool
        True: no progress output.
    """
    global _QUIET
    _QUIET = bool(flag)


def is_quiet(quiet: bool | None = None) -> bool:
    """The effective quiet setting: an explicit ``quiet`` wins over the global flag.

    Parameters
    ----------
    quiet : bool, optional
        An explicit setting (None: the global flag).

    Returns
    -------
    bool
        Whether to be quiet.
    """
    return _QUIET if quiet is None else bool(quiet) or _QUIET


@contextlib.contextmanager
def quiet_mode(flag: bool = True):
    """Temporarily set the global quiet flag.

    Parameters
    ----------
    flag : bool
        The flag inside the ``with`` block.
    """
    old = _QUIET
    set_quiet(flag)
    try:
        yield
    finally:
        set_quiet(old)


def progress_bar(iterable: Iterable | None = None, total: int | None = None, desc: str = "gcxr",
                 unit: str = "it", quiet: bool | None = None, **kwargs):
    """A throttled ``tqdm.auto`` bar (disabled when quiet).

    Parameters
    ----------
    iterable : iterable, optional
        What to iterate over.
    total : int, optional
        The number of steps.
    desc : str
        Label.
    unit : str
        Unit of a step.
    quiet : bool, optional
        Disable the bar.
    **kwargs
        Passed on to tqdm.

    Returns
    -------
    tqdm.tqdm
        The bar.
    """
    if "ipykernel" in sys.modules:          # Jupyter: a widget
        from tqdm.auto import tqdm  # deferred: heavy import (tqdm)
    else:                                   # what tqdm.auto resolves to outside Jupyter, without importing its
        from tqdm.std import tqdm           # notebook and asyncio variants (deferred: heavy import, ~50 ms)
    kwargs.setdefault("mininterval", MININTERVAL)
    kwargs.setdefault("file", sys.stderr)
    kwargs.setdefault("leave", False)
    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=is_quiet(quiet), **kwargs)


# --------------------------------------------------------------------------- dask
#: dask keys of one run's reduction (``gcxr-reduce-<obs_id>...``): what the reduce bar counts
RUN_KEY_PREFIX = "gcxr-reduce-"


def _is_run_key(key) -> bool:
    return isinstance(key, str) and key.startswith(RUN_KEY_PREFIX)


_DASK_CALLBACK: list = []


def _dask_progress_class() -> type:
    """:class:`DaskProgressCallback`, defined on first use: it subclasses ``tqdm.dask.TqdmCallback``,
    whose import loads dask and ``tqdm.auto`` (asyncio among them), which ``import gcxr.progress``
    (every CLI command, for :func:`set_quiet`) should not.  Measured: ``import tqdm.dask`` on top
    of ``tqdm.std`` and ``dask.callbacks`` takes ~24 ms alone (asyncio ~22 ms), ~0.7 ms in a
    ``gcxr run`` process, which has imported asyncio already."""
    if not _DASK_CALLBACK:
        from tqdm.dask import TqdmCallback  # deferred: see above

        class DaskProgressCallback(TqdmCallback):
            """``tqdm.dask.TqdmCallback`` counting runs.

            The bar counts runs - tasks keyed ``gcxr-reduce-<obs_id>...`` - when the graph has
            such tasks, otherwise every finished task (as ``TqdmCallback``); it is a
            :func:`progress_bar` (quiet flag, stderr, throttled) and stays on screen when done,
            as one summary line.  Used as a context manager around ``dask.compute``.

            Parameters
            ----------
            desc : str
                Label.
            quiet : bool, optional
                Disable the bar.
            """

            def __init__(self, desc: str = "compute", quiet: bool | None = None):
                super().__init__()
                self.desc = desc
                self.quiet = quiet
                self.pbar = None
                self._runs = False

            def _start_state(self, dsk, state):
                keys = [k for part in ("ready", "waiting", "running", "finished") if part in state
                        for k in state[part]]
                runs = sum(1 for k in keys if _is_run_key(k))
                self._runs = runs > 0
                total, unit = (runs, "run") if self._runs else (len(keys), "task")
                self.pbar = progress_bar(total=total, desc=self.desc, unit=unit, quiet=self.quiet, leave=True)

            def _posttask(self, key, result, dsk, state, worker_id):
                if self.pbar is not None and (not self._runs or _is_run_key(key)):
                    self.pbar.update(1)

            def __exit__(self, *exc):
                super().__exit__(*exc)
                if self.pbar is not None:       # an interrupted compute: no finish callback came
                    self.pbar.close()
                return False

        DaskProgressCallback.__module__, DaskProgressCallback.__qualname__ = __name__, "DaskProgressCallback"
        _DASK_CALLBACK.append(DaskProgressCallback)
    return _DASK_CALLBACK[0]


def __getattr__(name: str):
    if name == "DaskProgressCallback":
        return _dask_progress_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_POOLS: dict = {}


def _leave_signals_to_main() -> None:
    """Block SIGINT and SIGTERM in the calling (worker) thread.

    The kernel then delivers them to the main thread, whose wait for dask's results they
    interrupt, so that the handler runs at once; a signal taken by a worker thread would
    leave the main thread waiting until the next task ends.
    """
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})


def local_pool(n: int):
    """The thread pool of ``n`` workers for dask's threaded scheduler (one per size, made once).

    Its threads block SIGINT and SIGTERM (:func:`_leave_signals_to_main`): Ctrl-C and a batch
    system's SIGTERM reach the main thread, which ends the command within a moment however
    long a task runs.  Contextvars propagate as with dask's own pool.

    Parameters
    ----------
    n : int
        Number of threads.

    Returns
    -------
    concurrent.futures.ThreadPoolExecutor
    """
    pool = _POOLS.get(n)
    if pool is None:
        import dask.threaded  # deferred: heavy import (dask)
        from concurrent.futures import ThreadPoolExecutor  # deferred: ~11 ms, and every CLI command imports gcxr.progress
        cls = getattr(dask.threaded, "ContextAwareThreadPoolExecutor", ThreadPoolExecutor)
        pool = _POOLS[n] = cls(n, thread_name_prefix="gcxr-dask", initializer=_leave_signals_to_main)
    return pool


def progress_compute(objs, client=None, quiet: bool | None = None, desc: str = "compute",
                     scheduler=None) -> tuple:
    """``dask.compute(*objs)`` with progress; returns the computed objects as a tuple.

    With ``client`` (a ``distributed.Client``) the graph runs on the cluster and
    ``distributed.progress`` shows it (a widget in Jupyter, a text bar in a
    terminal); otherwise the local ``scheduler`` runs it under a
    :class:`DaskProgressCallback`.

    Parameters
    ----------
    objs : sequence
        dask collections (or plain objects).
    client : distributed.Client, optional
        Run on this cluster.
    quiet : bool, optional
        Hide the progress.
    desc : str
        Label of the bar.
    scheduler : str, optional
        The local dask scheduler (default: threads).
    """
    import dask  # deferred: heavy import (dask)
    import dask.threaded  # deferred: heavy import (dask)
    if scheduler is None:                           # a callable: dask does not import distributed
        n = os.cpu_count() or 1
        scheduler = functools.partial(dask.threaded.get, num_workers=n, pool=local_pool(n))
    objs = list(objs) if isinstance(objs, (list, tuple)) else [objs]
    if client is not None:
        run_keys = [k for o in objs if dask.is_dask_collection(o) for k in dict(o.__dask_graph__())
                    if _is_run_key(k)]
        futures = client.compute(objs)
        if not is_quiet(quiet):
            if run_keys:
                _runs_bar(client, futures, run_keys, desc, quiet)
            else:
                from distributed import progress  # deferred: heavy import (distributed)
                try:
                    progress(futures)
                except ImportError:         # Jupyter without ipywidgets: a text bar instead of the widget
                    progress(futures, notebook=False)
        return tuple(client.gather(futures))
    if is_quiet(quiet):
        return dask.compute(*objs, scheduler=scheduler)
    with _dask_progress_class()(desc=desc, quiet=quiet):
        return dask.compute(*objs, scheduler=scheduler)


def _pending_runs(dask_scheduler=None, keys=()) -> int:
    """On the scheduler: how many of ``keys`` are still to compute (a finished run's key is in
    memory, or released and forgotten once its partial sum is combined)."""
    todo = 0
    for k in keys:
        ts = dask_scheduler.tasks.get(k)
        if ts is not None and ts.state not in ("memory", "released", "forgotten", "erred"):
            todo += 1
    return todo


def _runs_bar(client, futures, run_keys: list, desc: str, quiet: bool | None = None) -> None:
    """Wait for ``futures`` with a bar counting the runs whose reduction task has finished
    (asked of the scheduler every ``MININTERVAL`` seconds)."""
    from distributed import wait  # deferred: heavy import (distributed)
    keys = list(dict.fromkeys(run_keys))
    with progress_bar(total=len(keys), desc=desc, unit="run", quiet=quiet, leave=True) as bar:
        while not all(f.done() for f in futures):
            try:
                wait(futures, timeout=MININTERVAL)
            except TimeoutError:
                pass
            todo = 0 if all(f.done() for f in futures) else client.run_on_scheduler(_pending_runs, keys=keys)
            bar.update(len(keys) - todo - bar.n)
        bar.update(len(keys) - bar.n)


def progress_persist(datasets, client, quiet: bool | None = None, desc: str = "reduce") -> list:
    """``client.persist(datasets)`` (one dataset per run) and wait, with a bar that counts runs
    and stays as one summary line; returns the persisted datasets (dask-backed, on the workers).

    Parameters
    ----------
    datasets : list of xarray.Dataset
        Lazy run datasets.
    client : distributed.Client
        The cluster that reduces and keeps them.
    quiet : bool, optional
        No bar (default: the global quiet flag).
    desc : str
        The bar's label.
    """
    from distributed import futures_of, wait  # deferred: heavy import (distributed)
    out = client.persist(list(datasets))
    with progress_bar(total=len(out), desc=desc, unit="run", quiet=quiet, leave=True) as bar:
        for ds in out:
            wait(futures_of(ds))
            bar.update(1)
    return list(out)


# --------------------------------------------------------------------------- fits
class FitProgress:
    """Report calls made and the current statistic of a minimisation, throttled.

    Call it with each statistic value (``fp(stat)``), or wrap the cost function
    (``fcn = fp.wrap(fcn)``; an ``errordef`` attribute is kept).  Silent when quiet.

    >>> with FitProgress(quiet=True) as fp:
    ...     for stat in (10.0, 9.0, 8.5):
    ...         fp(stat)
    >>> fp.n_calls, fp.best
    (3, 8.5)
    """

    def __init__(self, desc: str = "fit", quiet: bool | None = None, mininterval: float = MININTERVAL):
        self.desc = desc
        self.quiet = is_quiet(quiet)
        self.mininterval = float(mininterval)
        self.n_calls = 0
        self.stat = float("nan")
        self.best = float("inf")
        self._last = 0.0
        self._bar = None

    def __call__(self, stat: float, *args: Any) -> None:
        self.n_calls += 1
        if self.n_calls == 1:
            from ._testhook import pause_point  # deferred: keeps import gcxr.progress light (threading)
            pause_point("fit")              # tests only: GCXR_TEST_PAUSE_AT=fit (gcxr._testhook)
        self.stat = float(stat)
        if self.stat < self.best:
            self.best = self.stat
        if self.quiet:
            return
        now = time.monotonic()
        if self._bar is None:
            self._bar = progress_bar(desc=self.desc, unit=" rounds", quiet=self.quiet, mininterval=self.mininterval,
                                     leave=True)
        if now - self._last >= self.mininterval:
            self._bar.update(self.n_calls - self._bar.n)
            self._bar.set_postfix_str(f"stat={self.stat:.6g} best={self.best:.6g}", refresh=False)
            self._last = now

    def wrap(self, fcn: Callable[..., float]) -> Callable[..., float]:
        """``fcn`` reporting its return value to this progress.

        Parameters
        ----------
        fcn : callable
            The function to wrap.

        Returns
        -------
        callable
            The wrapped function.
        """
        def wrapped(*args, **kwargs):
            value = fcn(*args, **kwargs)
            self(value)
            return value
        for attr in ("errordef", "ndata"):
            if hasattr(fcn, attr):
                setattr(wrapped, attr, getattr(fcn, attr))
        return wrapped

    def close(self) -> None:
        """Finish the bar: it stays as one line with the rounds made and the best statistic."""
        if self._bar is not None:
            self._bar.update(self.n_calls - self._bar.n)
            self._bar.set_postfix_str(f"best stat={self.best:.6g}", refresh=False)
            self._bar.close()
            self._bar = None

    def __enter__(self) -> "FitProgress":
        return self

    def __exit__(self, *exc) -> bool:
        self.close()
        return False
