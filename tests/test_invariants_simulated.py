"""The invariants that need no real data, on a small store the suite simulates itself.

Laziness, lazy = eager, any stacking tree = the flat sum, everything shipped to workers pickles,
spatial tiles add up to the whole statistic (chunk invariance), and the likelihood on a dask
cluster equals the in-process one.  The same invariants are tested on the CTA-1DC runs where the
shared data are present (test_lazy.py, test_distributed.py); these run in every clone.
"""
from __future__ import annotations

import pickle

import dask
import numpy as np
import pytest

from gcxr.testing import raise_if_dask_computes

from conftest import SMALL_STORE_CONFIG

POINTINGS = [(2.0, 0.5), (-2.0, 0.3), (0.2, -0.6)]
# 8 x 3 deg: wide enough for the two sources below to have separate cutouts (two tiles)
CONFIG = SMALL_STORE_CONFIG.replace("width: 3 deg, height: 3 deg", "width: 8 deg, height: 3 deg")
MODELS = """
components:
-   name: a
    type: SkyModel
    spectral: {type: PowerLawSpectralModel, parameters: [{name: index, value: 2.4}]}
    spatial: {type: PointSpatialModel, frame: galactic,
              parameters: [{name: lon_0, value: -2.5, unit: deg}, {name: lat_0, value: 0.0, unit: deg}]}
-   name: b
    type: SkyModel
    spectral: {type: PowerLawSpectralModel, parameters: [{name: index, value: 2.2}]}
    spatial: {type: GaussianSpatialModel, frame: galactic,
              parameters: [{name: lon_0, value: 2.5, unit: deg}, {name: lat_0, value: 0.5, unit: deg},
                           {name: sigma, value: 0.2, unit: deg}]}
"""


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    """(analysis with runs, spec, runs): three 1-minute runs of a simulated store, not yet reduced."""
    from gcxr.analysis import Analysis
    from gcxr.config import AnalysisConfig
    from gcxr.simulate import simulate_datastore
    store = tmp_path_factory.mktemp("invariants") / "store"
    simulate_datastore(store, pointings=POINTINGS, livetime=60.0, seed=11, quiet=True)
    ana = Analysis(AnalysisConfig.from_yaml(CONFIG.format(store=store)), progress=False)
    ana.get_observations()
    return ana, ana.spec, ana.runs


@pytest.fixture(scope="module")
def reduced(sim):
    from gcxr.reduce import reduce_run
    _, spec, runs = sim
    return [reduce_run(r, spec) for r in runs]


@pytest.fixture(scope="module")
def stacked_and_models(sim, reduced):
    from gcxr.datasets import stack
    from gcxr.models import Models
    _, spec, _ = sim
    ds = stack(reduced, spec)
    ds.attrs["name"] = "stacked"
    models = Models.from_yaml(MODELS)
    models.add_fov_background(["stacked"])
    return ds, models


def test_building_is_lazy(sim, monkeypatch):
    import gcxr.datastore as dstore
    from gcxr.datasets import stack
    from gcxr.reduce import reduce_run_lazy
    _, spec, runs = sim

    def forbidden(*a, **k):
        raise AssertionError("a DL3 file was opened while building the graph")
    monkeypatch.setattr(dstore, "read_events", forbidden)
    monkeypatch.setattr(dstore, "read_gti", forbidden)
    with raise_if_dask_computes():
        lazy = [reduce_run_lazy(r, spec) for r in runs]
        st = stack(lazy, spec)
    assert all(isinstance(ds["counts"].data, dask.array.Array) for ds in lazy)
    assert st["counts"].shape == (4, 30, 80)
    names = {k[0] if isinstance(k, tuple) else k for k in st["counts"].data.__dask_graph__().keys()}
    assert any(str(n).startswith("gcxr-reduce-1") for n in names)
    assert any(str(n).startswith("gcxr-stack") for n in names)


def test_lazy_equals_eager(sim, reduced):
    from gcxr.reduce import reduce_run_lazy
    _, spec, runs = sim
    lazy = reduce_run_lazy(runs[1], spec).compute(scheduler="sync")
    for v in ("counts", "exposure", "background", "mask_safe", "psf", "edisp"):
        np.testing.assert_array_equal(lazy[v].values, reduced[1][v].values)


def test_stack_tree_equals_flat_and_the_run_sum(sim, reduced):
    """Any tree shape of the stacking reduction gives the same sums; stacked counts = sum of run counts."""
    from gcxr.datasets import stack
    _, spec, _ = sim
    a = stack(reduced, spec, split_every=2)
    b = stack(reduced, spec, split_every=8)
    for v in ("counts", "background", "exposure", "psf", "edisp"):
        np.testing.assert_allclose(a[v].values, b[v].values, rtol=1e-12, atol=0)
    assert float(a["counts"].sum()) == sum(float(r["counts"].sum()) for r in reduced) > 0


def test_everything_shipped_to_workers_pickles(sim, stacked_and_models):
    from gcxr.likelihood import ParameterSpace, build_terms
    _, spec, runs = sim
    ds, models = stacked_and_models
    term = build_terms([ds], models)[0]
    space = ParameterSpace.from_models(models)
    for obj in (runs[0], spec, space, term, models):
        assert type(pickle.loads(pickle.dumps(obj))) is type(obj)
    vals = space.values_by_model(space.start)
    assert pickle.loads(pickle.dumps(term)).stat(vals) == term.stat(vals)


def test_spatial_tiles_add_up(stacked_and_models):
    """Chunk invariance: two well-separated sources make two tiles whose statistics add up to the whole."""
    from gcxr.likelihood import ParameterSpace, build_terms
    ds, models = stacked_and_models
    term = build_terms([ds], models)[0]
    tiles = term.split()
    assert len(tiles) == 2
    space = ParameterSpace.from_models(models)
    for shift in (0.0, 0.2):
        vals = space.values_by_model(space.to_values(space.to_factors(space.start) + shift))
        assert sum(t.stat(vals) for t in tiles) == pytest.approx(term.stat(vals), rel=1e-12)


def test_distributed_equals_in_process(stacked_and_models):
    """The likelihood on a two-process LocalCluster equals the in-process one, call by call."""
    from distributed import Client, LocalCluster
    from gcxr.distributed import DistributedLikelihood
    from gcxr.likelihood import JointLikelihood, ParameterSpace, build_terms
    ds, models = stacked_and_models
    space = ParameterSpace.from_models(models)
    terms = build_terms([ds], models)
    local = JointLikelihood(terms, space)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        dist = DistributedLikelihood(terms, space, client)
        try:
            assert len(dist.actors) == 2 and len(set(dist.placement)) == 2
            for shift in (0.0, 0.3, -1.0):
                f = space.to_factors(space.start) + shift
                assert dist(f) == pytest.approx(local(f), rel=1e-12)
        finally:
            dist.close()
