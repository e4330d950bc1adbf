"""Progress reporting: bars on stderr, silent when quiet, the same results with and without."""
from __future__ import annotations

import dask
import dask.array as dsa
import numpy as np
import pytest

from gcxr import progress
from gcxr.progress import FitProgress, progress_bar, progress_compute, quiet_mode


@pytest.fixture(autouse=True)
def _not_quiet():
    with quiet_mode(False):
        yield


def test_progress_compute_local_scheduler_reports_every_task(capsys):
    x = dsa.ones((100, 100), chunks=10).sum()
    (value,) = progress_compute([x], desc="sum")
    assert value == 10000
    err = capsys.readouterr().err
    assert "sum" in err and "task" in err


def test_progress_compute_quiet_is_silent(capsys):
    x = dsa.arange(10, chunks=2)
    a, b = progress_compute([x, x.sum()], quiet=True)
    np.testing.assert_array_equal(a, np.arange(10))
    assert b == 45
    with quiet_mode():
        progress_compute(x.sum())
        with progress_bar(range(3)) as bar:
            list(bar)
    assert capsys.readouterr().err == ""


def test_progress_compute_with_a_distributed_client():
    distributed = pytest.importorskip("distributed")
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None) as c:
        (value,) = progress_compute([dsa.ones(10, chunks=5).sum()], client=c, quiet=True)
    assert value == 10


def test_dask_callback_leaves_no_global_state():
    before = set(dask.callbacks.Callback.active)
    progress_compute(dsa.ones(4, chunks=2).sum())
    assert set(dask.callbacks.Callback.active) == before


def test_fit_progress_counts_and_throttles(capsys):
    with FitProgress(desc="fit", mininterval=3600.0) as fp:
        fcn = fp.wrap(lambda x: (x - 1.0) ** 2)
        fcn.errordef = 1.0
        for x in np.linspace(0, 2, 50):
            fcn(x)
    assert fp.n_calls == 50 and fp.best == pytest.approx(0.0, abs=1e-3)
    err = capsys.readouterr().err
    assert "fit" in err and err.count("stat=") <= 2                 # first refresh + close only


def test_fit_progress_quiet(capsys):
    progress.set_quiet(True)
    try:
        fp = FitProgress()
        for s in (3.0, 2.0):
            fp(s)
        fp.close()
    finally:
        progress.set_quiet(False)
    assert fp.n_calls == 2 and capsys.readouterr().err == ""


def test_wrap_keeps_errordef():
    def cost(x):
        return x * x
    cost.errordef = 0.5
    assert FitProgress(quiet=True).wrap(cost).errordef == 0.5


def test_reduce_bar_counts_runs_and_stays_as_one_line(capsys):
    """Tasks keyed ``gcxr-reduce-<obs>`` are what the bar counts (not the ~10 tasks around them)."""
    runs = [dask.delayed(lambda i: np.full(3, i), pure=True)(i, dask_key_name=f"gcxr-reduce-{i}") for i in (1, 2, 3)]
    parts = [dask.delayed(np.sum)(r) for r in runs] + [dask.delayed(np.max)(r) for r in runs]
    (value,) = progress_compute([dask.delayed(sum)(parts)], desc="reduce")     # 10 tasks, 3 of them runs
    assert value == 3 * (1 + 2 + 3) + (1 + 2 + 3)
    err = capsys.readouterr().err
    final = err.replace("\r", "\n").strip().splitlines()[-1]
    assert final.startswith("reduce") and "3/3" in final and "run" in final
    assert err.endswith("\n")                                      # left on screen (leave=True)


def test_fit_bar_counts_rounds_and_stays_as_one_line(capsys):
    with FitProgress(desc="fit", mininterval=0.0) as fp:
        for s in (3.0, 2.0, 2.5):
            fp(s)
    final = capsys.readouterr().err.replace("\r", "\n").strip().splitlines()[-1]
    assert final.startswith("fit") and "3 rounds" in final and "best stat=2" in final
