"""The joint likelihood on a dask.distributed LocalCluster: equality with in-process, faults, pickling."""
import json
import os
import pickle
import threading

import numpy as np
import pytest

from conftest import REF, needs_data

pytestmark = [needs_data]


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
    c = Client(cluster)
    yield c
    c.close()
    cluster.close()


@pytest.fixture(scope="module")
def joint_inprocess(seed_joint_analysis):
    from gcxr.fit import fit
    from gcxr.models import Models
    ana = seed_joint_analysis
    models = Models.read(REF / "seed_models_source.yaml")
    models.add_fov_background([ds.attrs["name"] for ds in ana.datasets])
    return ana, models.copy(), fit(ana.datasets, models)


def test_everything_shipped_to_workers_pickles(joint_inprocess):
    from gcxr.likelihood import ParameterSpace, build_terms
    ana, models0, _ = joint_inprocess
    for obj in (ana.runs[0], ana.spec, ParameterSpace.from_models(models0), build_terms(ana.datasets, models0)[0],
                models0):
        assert type(pickle.loads(pickle.dumps(obj))) is type(obj)
    term = build_terms(ana.datasets[:1], models0)[0]
    v = ParameterSpace.from_models(models0)
    again = pickle.loads(pickle.dumps(term))
    vals = v.values_by_model(v.start)
    assert again.stat(vals) == term.stat(vals)


def test_chunk_plan_balances_bins():
    from types import SimpleNamespace
    from gcxr.distributed import plan_chunks
    terms = [SimpleNamespace(n_bins=n) for n in (5, 4, 3, 3, 3, 2)]
    plan = plan_chunks(terms, 2)
    loads = sorted(sum(terms[i].n_bins for i in c) for c in plan)
    assert loads == [10, 10] and sorted(i for c in plan for i in c) == list(range(6))


def test_distributed_statistic_equals_in_process(client, joint_inprocess):
    from gcxr.distributed import DistributedLikelihood
    from gcxr.likelihood import JointLikelihood, ParameterSpace, build_terms
    ana, models0, _ = joint_inprocess
    space = ParameterSpace.from_models(models0)
    terms = build_terms(ana.datasets, models0)
    local = JointLikelihood(terms, space)
    dist = DistributedLikelihood(terms, space, client)
    try:
        for shift in (0.0, 0.3, -1.0):
            f = space.to_factors(space.start) + shift
            a, b = local(f), dist(f)
            assert b == a            # per-term results added in term order: the same rounding as in process
        assert dist.n_tasks == 3 * len(dist.actors) and len(dist.actors) == 2 and dist.n_rounds == 3
        # a round sends the factor vector, not the data or the parameter space
        assert dist.compute_info()["bytes_sent_per_round"] < 2000
    finally:
        dist.close()


def test_joint_fit_on_cluster_matches(client, joint_inprocess):
    from gcxr.analysis import Analysis
    ana0, models0, ref = joint_inprocess
    ana = Analysis(ana0.config, client=client, progress=False)
    ana.get_observations()
    ana.get_datasets()                       # reduced on the cluster
    ana.set_models(models0.copy())
    r = ana.run_fit(placement="cluster")
    assert r.total_stat == pytest.approx(ref.total_stat, rel=1e-9)
    assert r.total_stat == ref.total_stat and r.nfev == ref.nfev      # in fact identical, call by call
    for p, q in zip(r.parameters, ref.parameters):
        if not q["frozen"]:
            assert abs(p["value"] - q["value"]) < 1e-3 * q["error"], p["name"]
    info = ana.compute_info({"scheduler": client.scheduler.address, "n_workers": 2})
    assert info["n_workers"] == 2 and info["likelihood_tasks"] > info["likelihood_calls"] > 0


def test_worker_death_during_fit_does_not_change_the_result(client, joint_inprocess):
    """Kill one worker process after 5 statistic evaluations (the seed joint fit takes ~15 with the
    analytic gradient).  The calls to its chunk actor fail; the likelihood waits until the worker's
    address has left the scheduler's worker list, rebuilds that chunk on the other worker from the
    inputs it keeps, repeats the round, and the fit ends on the same statistic and parameters."""
    from gcxr.distributed import DistributedLikelihood
    from gcxr.fit import fit
    ana, models0, ref = joint_inprocess
    killed, made = [], []
    base = DistributedLikelihood.factory(client)

    def factory(terms, space):
        made.append(base(terms, space))
        return made[-1]

    def progress(stat):
        progress.n += 1
        if progress.n == 5 and not killed:
            like = made[-1]
            addr = like.placement[0]
            killed.append((addr, list(like.placement)))
            _kill(client, addr)
    progress.n = 0
    r = fit(ana.datasets, models0.copy(), likelihood_factory=factory, progress=progress)
    assert killed
    addr, before = killed[0]
    like = made[-1]
    assert addr not in client.scheduler_info()["workers"]           # really gone
    assert like.n_rebuilt >= 1
    assert addr not in like.placement and like.placement[0] != before[0]   # rebuilt elsewhere
    assert r.success and r.timings["likelihood"]["chunks_rebuilt"] >= 1
    assert r.total_stat == ref.total_stat and r.nfev == ref.nfev    # the same fit, call by call
    for p, q in zip(r.parameters, ref.parameters):
        if not q["frozen"]:
            assert p["value"] == q["value"], p["name"]
    client.wait_for_workers(2, timeout=60)            # the nanny's restart, before the next test


def _kill(client, addr):
    try:
        client.run(os._exit, 1, workers=[addr])
    except Exception:
        pass


def test_stacking_graph_is_a_tree(seed_runs, seed_spec):
    """Memory bounded by the partial sums in flight: each combine task adds at most split_every inputs
    and the tree has ceil(log2 N) levels."""
    import math
    from gcxr.datasets import stack_runs
    from gcxr.reduce import RunLayout, run_layout
    runs = seed_runs * 6                                              # 18 runs (graph only, nothing computed)
    lays = [run_layout(r, seed_spec) for r in runs]
    st = stack_runs(runs, seed_spec, lays, split_every=2)
    graph = dict(st["counts"].data.__dask_graph__())
    combines = [k for k in graph if str(k[0] if isinstance(k, tuple) else k).startswith("gcxr-stack-combine")]
    levels = {str(k).split("-")[3] for k in combines}
    assert len(levels) == math.ceil(math.log2(len(set(str(r.obs_id) for r in runs)) * 6))
    assert len(combines) == len(runs) - 1


def test_spatial_tiles_add_up_and_spread_over_workers(client, seed_stacked):
    """Two well-separated sources on the stacked dataset: two tiles, one per worker; same statistic."""
    from gcxr.distributed import DistributedLikelihood
    from gcxr.likelihood import JointLikelihood, ParameterSpace, build_terms
    from gcxr.models import Models
    ds = seed_stacked.copy()
    ds.attrs["name"] = "stacked"
    models = Models.read(REF / "seed_models_stacked.yaml")
    second = models["gc-source"].copy(name="g09")
    second.spatial_model.parameters["lon_0"].value = 2.0
    second.spatial_model.parameters["lat_0"].value = 0.5
    models.append(second)
    terms = build_terms([ds], models)
    tiles = terms[0].split()
    assert len(terms[0].regions) == 2 and len(tiles) == 2
    space = ParameterSpace.from_models(models)
    vals = space.values_by_model(space.start)
    assert sum(t.stat(vals) for t in tiles) == pytest.approx(terms[0].stat(vals), rel=1e-12)
    dist = DistributedLikelihood(terms, space, client)
    try:
        assert dist.n_tiles == 2 and len(dist.actors) == 2
        assert len(set(dist.placement)) == 2                       # one tile on each worker
        f = space.to_factors(space.start)
        assert dist(f) == pytest.approx(JointLikelihood(terms, space)(f), rel=1e-9)
    finally:
        dist.close()


def test_cli_joint_fit_on_local_2(tmp_path, joint_inprocess, capsys):
    """``gcxr run --scheduler local:2`` on the seed joint fit: same statistic and parameters as
    in-process, and result.json says the likelihood ran in tasks on two workers."""
    import json
    from gcxr.cli import main
    ana0, _, ref = joint_inprocess
    cfg = tmp_path / "joint.yaml"
    ana0.config.write(cfg, overwrite=True)
    rc = main(["run", str(cfg), "--models", str(REF / "seed_models_source.yaml"), "--out", str(tmp_path / "out"),
               "--scheduler", "local:2", "--fit-placement", "cluster", "--quiet"])
    assert rc == 0
    res = json.loads((tmp_path / "out" / "result.json").read_text())
    c = res["compute"]
    assert c["scheduler"] == "local:2" and c["n_workers"] == 2
    assert c["likelihood_tasks"] >= 2 * c["likelihood_calls"] > 0          # two chunks per call
    assert res["fit"]["total_stat"] == pytest.approx(ref.total_stat, rel=1e-9)
    for p, q in zip(res["fit"]["parameters"], ref.parameters):
        if not q["frozen"]:
            assert abs(p["value"] - q["value"]) < 1e-3 * q["error"], p["name"]


def test_auto_placement_brings_a_small_fit_home(tmp_path, client, joint_inprocess):
    """``--fit-placement auto`` (the default) on the seed's 3 runs: a round costs well under a
    millisecond of compute against a round trip of milliseconds, so the terms built on the
    workers are fetched and the fit runs in this process - identical to the in-process fit, and
    result.json says where and why.  Terms built in this process (in-memory datasets) stay here
    by the same rule; with ``placement="cluster"`` they go to the workers."""
    import json
    from gcxr.cli import main
    from gcxr.distributed import DistributedLikelihood, choose_placement
    from gcxr.likelihood import JointLikelihood, ParameterSpace, build_terms
    ana0, models0, ref = joint_inprocess
    cfg = tmp_path / "joint.yaml"
    ana0.config.write(cfg, overwrite=True)
    rc = main(["run", str(cfg), "--models", str(REF / "seed_models_source.yaml"), "--out", str(tmp_path / "out"),
               "--scheduler", "local:2", "--quiet"])
    assert rc == 0
    res = json.loads((tmp_path / "out" / "result.json").read_text())
    fp = res["compute"]["fit_placement"]
    assert fp["placement"] == "process" and fp["round_in_process_s"] < 0.9 * fp["round_on_cluster_s_predicted"]
    assert res["compute"]["likelihood_tasks"] == 0 and res["compute"]["likelihood_calls"] > 0
    assert res["fit"]["total_stat"] == ref.total_stat and res["fit"]["nfev"] == ref.nfev     # call by call
    space = ParameterSpace.from_models(models0)
    terms = build_terms(ana0.datasets, models0)
    choice, like, figures = choose_placement(terms, space, client)
    assert choice == "process" and isinstance(like, JointLikelihood) and figures["workers"] == 2
    forced = DistributedLikelihood.factory(client, placement="cluster")(terms, space)
    try:
        assert isinstance(forced, DistributedLikelihood)
    finally:
        forced.close()
    with pytest.raises(ValueError, match="placement"):
        DistributedLikelihood.factory(client, placement="anywhere")


def test_scheduler_specs(client, tmp_path):
    from gcxr.cluster import make_client
    addr = client.scheduler.address
    c2, cluster, info = make_client(addr)
    try:
        assert cluster is None and info == {"scheduler": addr, "n_workers": 2}
    finally:
        c2.close()
    sf = tmp_path / "scheduler.json"
    # what a scheduler file holds for a client (distributed's write_scheduler_file dumps the whole
    # scheduler_info, which fails once workers report metrics keyed by tuples)
    sf.write_text(json.dumps({"type": "Scheduler", "address": addr}))
    c3, _, info = make_client(str(sf))
    try:
        assert info["scheduler"] == addr and info["n_workers"] == 2
    finally:
        c3.close()
    with pytest.raises(FileNotFoundError, match="missing.json"):
        make_client(str(tmp_path / "missing.json"))
    with pytest.raises(ValueError, match="local:N"):
        make_client("slurm")
    assert make_client("threads")[2] == {"scheduler": "threads", "n_workers": 1}


def test_distributed_structured_derivatives_equal_in_process(client, joint_inprocess):
    from gcxr.distributed import DistributedLikelihood
    from gcxr.likelihood import JointLikelihood, ParameterSpace, build_terms
    ana, models0, _ = joint_inprocess
    space = ParameterSpace.from_models(models0)
    terms = build_terms(ana.datasets, models0)
    local, dist = JointLikelihood(terms, space), DistributedLikelihood(terms, space, client)
    try:
        f = space.to_factors(space.start) + 0.2
        assert np.allclose(dist.gradient(f), local.gradient(f), rtol=1e-9, atol=1e-9)
        steps = np.full(len(f), 0.05)
        assert np.allclose(dist.hessian(f, steps), local.hessian(f, steps), rtol=1e-9, atol=1e-9)
    finally:
        dist.close()


@pytest.mark.parametrize("kind", ["point", "gauss", "disk", "template"])
def test_distributed_gradient_per_parameter_kind(client, seed_stacked, tmp_path, kind):
    """Every free parameter kind (spectral amplitude/index/cutoff, position, extension, background
    norm and tilt): the gradient computed by the chunk actors equals the in-process one exactly
    (same per-term functions, sums in term order) and a Richardson-extrapolated central difference
    of the cluster's statistic to 1e-5 relative; the Hessian's worker-side parts equal the
    in-process Hessian."""
    from test_npred_engine import _all_models
    from gcxr.distributed import DistributedLikelihood
    from gcxr.likelihood import JointLikelihood, ParameterSpace, build_terms
    ds = seed_stacked.isel(lat=slice(80, 200), lon=slice(190, 310))
    ds.attrs = dict(seed_stacked.attrs) | {"name": "stacked"}
    models = _all_models(tmp_path, kind)
    space = ParameterSpace.from_models(models)
    terms = build_terms([ds], models)
    local = JointLikelihood(terms, space)
    dist = DistributedLikelihood(terms, space, client)
    try:
        f0 = space.to_factors(space.start) + 0.15
        s_d, g_d = dist.value_and_grad(f0)
        s_l, g_l = local.value_and_grad(f0)
        assert s_d == s_l and np.array_equal(g_d, g_l)
        for i, name in enumerate(space.names):
            def fd(h):
                e = np.zeros_like(f0)
                e[i] = h
                return (dist(f0 + e) - dist(f0 - e)) / (2 * h)
            ref = (4 * fd(1e-3) - fd(2e-3)) / 3
            assert g_d[i] == pytest.approx(ref, rel=1e-5, abs=1e-6 * np.max(np.abs(g_d))), name
        steps = np.full(len(space.keys), 1e-2)
        np.testing.assert_array_equal(dist.hessian(f0, steps), local.hessian(f0, steps))
    finally:
        dist.close()


def test_reduce_bar_on_a_cluster_counts_runs(client, seed_runs, seed_spec, capsys):
    """A stacked reduction on the cluster shows a bar over runs (finished ``gcxr-reduce-*`` tasks,
    asked of the scheduler), not over dask tasks, that ends as one complete line."""
    from gcxr.datasets import stack_runs
    from gcxr.progress import progress_compute, quiet_mode
    with quiet_mode(False):                      # an earlier `gcxr run --quiet` sets the global flag
        (ds,) = progress_compute([stack_runs(seed_runs, seed_spec)], client=client, quiet=False, desc="reduce")
    err = capsys.readouterr().err
    n = len(seed_runs)
    assert f"{n}/{n}" in err and "run" in err
    assert float(ds["counts"].sum()) > 0


# the test persists in-memory datasets (their arrays travel in the graph once); gcxr itself persists
# runs reduced on the cluster, whose graphs read the DL3 files there
@pytest.mark.filterwarnings("ignore:Sending large graph:UserWarning")
def test_chunks_follow_the_datasets_on_the_cluster(client, joint_inprocess):
    """Run datasets persisted on the workers: each goes to the chunk of the worker that holds it,
    so building the terms moves no dataset; the fit on them equals the in-process one."""
    from distributed import futures_of
    from gcxr.distributed import DistributedLikelihood, _plan_by_holder
    from gcxr.fit import fit
    ana0, models0, ref = joint_inprocess
    workers = sorted(client.scheduler_info()["workers"])
    # opposite to the size-balanced plan (runs 0 and 2 on the first worker): the holders must win
    placed = [client.persist(ds.chunk(), workers=[workers[(i + 1) % 2]]) for i, ds in enumerate(ana0.datasets)]
    plan, homes = _plan_by_holder(client, placed, workers, None)
    assert sorted(i for idx in plan for i in idx) == list(range(len(placed)))
    for idx, w in zip(plan, homes):
        for i in idx:
            count = {x: 0 for x in workers}
            for ws in client.who_has(futures_of(placed[i])).values():
                for x in ws:
                    count[x] += 1
            assert count[w] == max(count.values()) and count[w] > 0     # pieces shared by runs are on both
    r = fit(placed, models0.copy(), likelihood_factory=DistributedLikelihood.factory(client))
    assert r.total_stat == ref.total_stat and r.nfev == ref.nfev


def test_numbers_of_runs_on_the_cluster_are_fetched_once(client, joint_inprocess, monkeypatch):
    """Runs kept on the cluster: the numbers the fit's data checks and result.json's summaries
    need are computed in one round after the reduction (``prefetch_numbers``: numpy where the
    runs live, one task per worker, no dask reductions); the checks and the summaries then ask the cluster for
    nothing, a fresh computation gives the same, and so do the same runs in memory."""
    import dask
    import gcxr.cluster as C
    import gcxr.datasets as D
    from gcxr.analysis import Analysis
    ana0, models0, _ = joint_inprocess
    ana = Analysis(ana0.config, client=client, progress=False)
    ana.get_observations()
    ana.get_datasets()
    calls, graphs = [], []
    real, real_compute = C.map_on_data, dask.compute

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    def counting_compute(*args, **kwargs):
        graphs.append(1)
        return real_compute(*args, **kwargs)
    monkeypatch.setattr(C, "map_on_data", counting)
    monkeypatch.setattr(dask, "compute", counting_compute)
    D.check_fit_data(ana.datasets, ("obs-110380",), counts=True)
    kept = ana.dataset_summaries()
    assert calls == [] and graphs == []
    D._NUMBERS.clear()
    fresh = ana.dataset_summaries()
    assert len(calls) == 1 and graphs == [] and fresh == kept
    assert fresh == ana0.dataset_summaries()          # the in-memory runs (numpy in this process)


def test_persisted_dataset_reaches_a_task_as_its_own_chunks(client):
    """``build_on_workers`` hands a persisted run's chunks to the build task directly
    (``gcxr.cluster.dataset_parts`` / ``assemble_parts``): the dataset put together on the worker
    equals the original, for single- and multi-chunk cubes, 0-d variables and a variable set in
    memory after the reduction alike."""
    import dask.array as da
    import xarray as xr
    from gcxr.cluster import assemble_parts, dataset_parts
    rng = np.random.default_rng(3)
    cube = rng.random((3, 4, 6))
    ds = xr.Dataset({"counts": (("energy", "lat", "lon"), da.from_array(cube, chunks=(3, 2, 3)), {"units": ""}),
                     "exposure": (("energy", "lat", "lon"), da.from_array(cube * 2, chunks=-1)),
                     "livetime": ((), da.from_array(np.float64(5.0)))},
                    coords={"energy": [1.0, 2.0, 3.0]}, attrs={"name": "run-1"})
    ds = client.persist(ds)
    ds["mask_fit"] = xr.DataArray(np.array([True, False, True]), dims="energy")     # in memory
    parts = dataset_parts(ds)
    assert parts is not None
    back = client.submit(assemble_parts, *parts, pure=False).result()
    xr.testing.assert_identical(back, ds.compute())
    assert back["counts"].attrs == {"units": ""} and back.attrs["name"] == "run-1"
    # a chunk that is not persisted: no parts (the build falls back to the graph)
    lazy = ds.assign(background=ds.counts * 2)
    assert dataset_parts(lazy) is None


def test_round_cost_splits_a_round_into_shared_and_per_term_parts(joint_inprocess):
    """``round_cost`` on three terms: both parts are finite and non-negative, the per-term part
    positive (a placement needs it to scale with the number of terms), and with a single term the
    whole round counts as per term."""
    from gcxr.distributed import round_cost
    from gcxr.likelihood import ParameterSpace, build_terms
    ana0, models0, _ = joint_inprocess
    space = ParameterSpace.from_models(models0)
    terms = build_terms(ana0.datasets, models0)
    shared, per_term = round_cost(terms, space)
    assert np.isfinite(shared) and shared >= 0 and per_term > 0
    assert round_cost(terms[:1], space)[0] == 0.0


def _worker_state(dask_worker):
    import os
    import sys
    import dask
    return {"mmap": os.environ.get("MALLOC_MMAP_THRESHOLD_"), "trim": os.environ.get("MALLOC_TRIM_THRESHOLD_"),
            "profile": dask.config.get("distributed.worker.profile.enabled"),
            "profiling_task": "profile" in dask_worker.periodic_callbacks,
            "preloaded": sorted(m for m in ("gcxr.reduce", "gcxr.likelihood") if m in sys.modules)}


def test_workers_gcxr_starts_have_its_settings_and_imports():
    """``--scheduler local:N`` (``cluster.make_client``): every worker starts with the allocator
    settings of ``worker_environ``, without dask's statistical profiler (``WORKER_CONFIG``), and
    has imported the reduction and likelihood modules (``WORKER_PRELOAD``) before its first task."""
    from gcxr.cluster import MMAP_THRESHOLD, TRIM_THRESHOLD, WORKER_PRELOAD, make_client
    client, cluster, desc = make_client("local:1")
    try:
        state = client.run(_worker_state)
    finally:
        client.close()
        cluster.close()
    assert desc["n_workers"] == 1 and len(state) == 1
    (s,) = state.values()
    assert s["mmap"] == str(MMAP_THRESHOLD) and s["trim"] == str(TRIM_THRESHOLD)
    assert s["profile"] is False and not s["profiling_task"]
    assert s["preloaded"] == sorted(WORKER_PRELOAD)


def test_runs_file_from_the_cluster_equals_the_one_from_memory(client, joint_inprocess, tmp_path):
    """``datasets.nc`` of runs kept on the workers (each run's chunks fetched directly, the next
    one while the current one is written) holds exactly what the same runs in memory give."""
    import xarray as xr
    from gcxr.analysis import Analysis
    from gcxr.datasets import is_lazy
    from gcxr.io import read_datasets
    ana0, _, _ = joint_inprocess
    ana = Analysis(ana0.config, client=client, progress=False)
    ana.get_observations()
    ana.get_datasets()
    assert all(is_lazy(ds) for ds in ana.datasets)
    on_cluster = read_datasets(ana.write_datasets(tmp_path / "cluster.nc"))
    in_memory = read_datasets(ana0.write_datasets(tmp_path / "memory.nc"))
    xr.testing.assert_identical(on_cluster, in_memory)


def test_placement_skips_the_measurement_when_the_cluster_cannot_win(client, joint_inprocess, monkeypatch):
    """Terms in this process whose largest chunk would hold too much of the work (one stacked
    term; three terms on two workers: 2 of 3) stay here without timing a round: the cluster's
    round is bounded below by n_largest / n x WORKER_SLOWDOWN of the process's, above the margin.
    With the terms on the workers, moving them home has a cost, so the round is measured."""
    import gcxr.distributed as D
    from gcxr.likelihood import JointLikelihood, ParameterSpace, build_terms
    ana0, models0, _ = joint_inprocess
    space = ParameterSpace.from_models(models0)
    terms = build_terms(ana0.datasets, models0)

    def no_timing(*args, **kwargs):
        raise AssertionError("a round was timed")
    monkeypatch.setattr(D, "round_cost", no_timing)
    for some in (terms[:1], terms):
        choice, like, figures = D.choose_placement(some, space, client)
        assert choice == "process" and isinstance(like, JointLikelihood)
        assert figures["terms_timed"] == 0 and "CLUSTER_MARGIN" in figures["why"]
    with pytest.raises(AssertionError, match="timed"):
        D._placement(client, terms, space, len(terms), 2, 2, terms_are="cluster")


def test_two_reductions_of_one_run_on_a_cluster_keep_their_settings(client, joint_inprocess):
    """Two analyses of the same runs with different safe masks on one cluster, the first one's
    runs still held there: the second gets its own cubes (equal to the same settings reduced in
    process), not the first one's."""
    from gcxr.analysis import Analysis
    from gcxr.config import AnalysisConfig
    ana0, _, _ = joint_inprocess
    first = Analysis(ana0.config, client=client, progress=False)
    first.get_observations()
    first.get_datasets()
    data = ana0.config.model_dump()
    data["datasets"]["safe_mask"]["parameters"] = {"offset_max": "2.5 deg"}
    cfg = AnalysisConfig(**data)
    second = Analysis(cfg, client=client, progress=False)
    second.get_observations()
    second.get_datasets()
    here = Analysis(cfg, progress=False)
    here.get_observations()
    here.get_datasets()
    n_first = int(first.datasets[0]["mask_safe"].sum().compute())
    n_second = int(second.datasets[0]["mask_safe"].sum().compute())
    assert n_second == int(here.datasets[0]["mask_safe"].sum()) and n_second < n_first


def test_chunk_units_are_whole_terms_when_they_balance(joint_inprocess):
    """Whole terms go to the chunks when the largest chunk is within TILE_IMBALANCE of the mean
    (every unit costs a fixed overhead per call); otherwise their spatial tiles do."""
    from gcxr.distributed import TILE_IMBALANCE, chunk_units
    from gcxr.likelihood import build_terms
    ana0, models0, _ = joint_inprocess
    terms = build_terms(ana0.datasets, models0)
    units, plan = chunk_units(terms, 3)                    # one run per chunk: balanced
    assert all(u is t for u, t in zip(units, terms)) and sorted(i for c in plan for i in c) == [0, 1, 2]
    units, plan = chunk_units(terms, 2)                    # 2 + 1 runs: above TILE_IMBALANCE
    load = sorted(sum(terms[i].n_bins for i in c) for c in [[0, 1], [2]])
    assert load[-1] > TILE_IMBALANCE * sum(load) / 2
    assert [u.name for u in units] == [t.name for term in terms for t in term.split()]
    assert sorted(i for c in plan for i in c) == list(range(len(units)))
