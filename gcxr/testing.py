"""Helpers for tests and docs: assertions about laziness, small toy data."""
from __future__ import annotations

import contextlib

import dask

__all__ = ["raise_if_dask_computes"]


class DaskComputeError(AssertionError):
    pass


@contextlib.contextmanager
def raise_if_dask_computes(max_computes: int = 0):
    """Fail if dask computes more than ``max_computes`` times inside the block.

    Parameters
    ----------
    max_computes : int
        The number of computes allowed.

    Examples
    --------
    >>> with raise_if_dask_computes():     # doctest: +SKIP
    ...     ds = stack_runs(runs, spec)   # builds the graph only
    """
    count = 0

    def scheduler(dsk, keys, **kwargs):
        nonlocal count
        count += 1
        if count > max_computes:
            raise DaskComputeError(f"dask computed {count} time(s); at most {max_computes} allowed")
        return dask.get(dsk, keys, **kwargs)

    with dask.config.set(scheduler=scheduler):
        yield
