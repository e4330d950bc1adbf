"""Laziness: building run datasets and the stack reads and computes nothing."""
import numpy as np
import pytest
import xarray as xr
from gcxr.testing import raise_if_dask_computes

from conftest import needs_data

pytestmark = [needs_data]


def test_building_is_lazy(seed_runs, seed_spec, monkeypatch):
    import gcxr.datastore as dstore
    from gcxr.datasets import stack
    from gcxr.reduce import reduce_run_lazy

    def forbidden(*a, **k):
        raise AssertionError("a DL3 file was opened while building the graph")
    monkeypatch.setattr(dstore, "read_events", forbidden)
    with raise_if_dask_computes():
        runs = [reduce_run_lazy(r, seed_spec) for r in seed_runs]
        st = stack(runs, seed_spec)
    assert all(isinstance(ds["counts"].data, __import__("dask").array.Array) for ds in runs)
    assert st["counts"].shape == (10, 400, 500)
    names = {k[0] if isinstance(k, tuple) else k for k in st["counts"].data.__dask_graph__().keys()}
    assert any(str(n).startswith("gcxr-reduce-110380") for n in names)
    assert any(str(n).startswith("gcxr-stack") for n in names)


def test_lazy_equals_eager(seed_runs, seed_spec):
    from gcxr.reduce import reduce_run, reduce_run_lazy
    lazy = reduce_run_lazy(seed_runs[1], seed_spec).compute(scheduler="sync")
    eager = reduce_run(seed_runs[1], seed_spec)
    for v in ("counts", "exposure", "background", "mask_safe", "psf", "edisp"):
        np.testing.assert_array_equal(lazy[v].values, eager[v].values)
    assert lazy.attrs["obs_id"] == 111140


def test_stack_tree_equals_flat(seed_runs, seed_spec):
    """Any tree shape of the stacking reduction gives the same sums."""
    from gcxr.datasets import stack
    from gcxr.reduce import reduce_run
    runs = [reduce_run(r, seed_spec) for r in seed_runs]
    a = stack(runs, seed_spec, split_every=2)
    b = stack(runs, seed_spec, split_every=8)
    for v in ("counts", "background", "exposure", "psf", "edisp"):
        np.testing.assert_allclose(a[v].values, b[v].values, rtol=1e-12, atol=0)


def test_run_graph_keys_name_the_settings(seed_runs, seed_spec):
    """A run's graph key tokenizes the run, the settings and the layout: the same reduction built
    twice has the same keys (dask may reuse it), a different safe mask has others (a cluster
    holding the first analysis's cubes must not hand them to the second)."""
    import dataclasses
    from gcxr.reduce import reduce_run_lazy

    def key(spec):
        return reduce_run_lazy(seed_runs[0], spec)["mask_safe"].data.name
    other = dataclasses.replace(seed_spec, offset_max=2.5)
    assert key(seed_spec) == key(seed_spec)
    assert key(other) != key(seed_spec)
    assert key(seed_spec).startswith("gcxr-reduce-110380-")
