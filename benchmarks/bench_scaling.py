"""Joint-fit scaling with the number of runs: gammapy 2.1 vs gcxr (in-process and on ``local:2``), in one run.

What is measured: the **joint-fit stage** of N runs, N = 3, 12, 48 (``--n``). The N runs are
re-pointed copies of the 3 CTA-1DC seed runs (110380, 111140, 111159; ``analysis_config.yaml`` with
``datasets.stack: false``): each side reduces the 3 runs once (``prep`` children), writes the per-run
datasets, and every fit child reads them back and replicates them N/3 times under new names
(``obs-<id>-rKK``), each copy with its own FoVBackgroundModel (free norm), so the fit has
5 + N free parameters. Reduction is not part of the timings.

Children, each in a fresh process under ``measure.py`` (wall time, peak RSS of the process tree):

* ``fit-gammapy``: ``Datasets([d.copy(name=...) ...])``, models = ``seed_models_source.yaml`` + one
  ``FoVBackgroundModel`` per dataset, ``Fit().run`` (MIGRAD + HESSE). ``Datasets.stat_sum`` is
  wrapped to count the likelihood calls; with ``--gammapy-limit S`` a fit still running after S
  seconds is stopped from inside that wrapper, and the calls done and the time per call are reported.
* ``gcxr-threads``: :func:`gcxr.fit.fit` with the in-process ``JointLikelihood`` (gcxr's default
  derivatives: Minuit's up to 12 free parameters, structured above);
* ``gcxr-threads-minuit``: the same with ``derivatives="minuit"`` (the algorithm gammapy runs: its
  call count is the basis of the gammapy estimate where gammapy is stopped);
* ``gcxr-local2``: the same with ``DistributedLikelihood.factory(client)`` on
  ``LocalCluster(n_workers=2, threads_per_worker=1, processes=True)`` (what ``--scheduler local:2``
  starts). A wrapper around the factory keeps each likelihood's chunk plan (``chunk_nbytes``,
  ``who_has``). ``client.run`` reads each worker's RSS and peak RSS (VmHWM, reset just before the
  fit) on a bare worker, after importing what a chunk needs, and after the fit;
* ``gcxr-local2-auto``: as ``gcxr-local2`` with ``placement="auto"`` (what ``gcxr run --scheduler
  local:2`` does by default): the terms stay in process when a round would be faster there;
* ``gcxr-local2-mmap`` (diagnostic): as ``gcxr-local2`` with ``MALLOC_MMAP_THRESHOLD_`` set for the
  workers (dask's nanny sets ``MALLOC_TRIM_THRESHOLD_``, which fixes glibc's mmap threshold);
* at ``--check-n`` (12): ``gcxr-local2-ordered`` (diagnostic), a DistributedLikelihood whose
  statistic, gradient and Hessian parts are added in term order, as in process.

After the fit each gcxr child times single statistic (and gradient) calls at the best fit
(``--micro-calls``): in process (all terms, and per chunk), on the cluster, and an empty round
trip (one trivial task per chunk). The summary compares local:2 with in-process fits (statistic,
parameters) and gammapy's and gcxr's source parameters. Results: ``benchmarks/results/scaling.json``,
plot ``docs/img/scaling.png``.

    GCXR_DATA=../shared/data .venv/bin/python benchmarks/bench_scaling.py
    .venv/bin/python benchmarks/bench_scaling.py --n 3,12 --sides gcxr-threads,gcxr-local2   # quick
    .venv/bin/python benchmarks/bench_scaling.py --from-json      # summary, table and plot from the JSON
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SHARED = REPO.parent / "shared"
REFERENCE = SHARED / "reference" / "gammapy-2.1-cta1dc-gc"
SIDES = ("gammapy", "gcxr-threads", "gcxr-local2", "gcxr-local2-auto", "gcxr-local2-mmap", "gcxr-threads-minuit")
MMAP_THRESHOLD = 32 * 2 ** 20      # the diagnostic variant's MALLOC_MMAP_THRESHOLD_ for the dask workers
MB = 1024 ** 2


def _load() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def _names(obs_id, k: int) -> str:
    return f"obs-{obs_id}-r{k:02d}"


# =========================================================================== children: data
def child_prep_gcxr(work: Path) -> dict:
    from gcxr.analysis import Analysis
    from gcxr.config import AnalysisConfig
    from gcxr.io import write_datasets
    cfg = AnalysisConfig.read(REFERENCE / "analysis_config.yaml")
    cfg.datasets.stack = False
    ana = Analysis(cfg, progress=False)
    ana.get_observations()
    t0 = time.perf_counter()
    datasets = ana.get_datasets()
    t_reduce = time.perf_counter() - t0
    out = work / "gcxr"
    out.mkdir(parents=True, exist_ok=True)
    for ds, run in zip(datasets, ana.runs):
        write_datasets(ds, out / f"obs-{run.obs_id}.nc", spec=ana.spec)
    return {"reduce_s": t_reduce, "runs": [int(r.obs_id) for r in ana.runs]}


def child_prep_gammapy(work: Path) -> dict:
    from gammapy.analysis import Analysis, AnalysisConfig
    c = AnalysisConfig.read(REFERENCE / "analysis_config.yaml")
    c.datasets.stack = False
    c.general.log = {"level": "error"}
    a = Analysis(c)
    a.get_observations()
    t0 = time.perf_counter()
    a.get_datasets()
    t_reduce = time.perf_counter() - t0
    out = work / "gammapy"
    out.mkdir(parents=True, exist_ok=True)
    ids = [int(o.obs_id) for o in a.observations]
    for ds, obs_id in zip(a.datasets, ids):
        ds.write(out / f"obs-{obs_id}.fits", overwrite=True)
    return {"reduce_s": t_reduce, "runs": ids}


# =========================================================================== children: gammapy fit
class _TimeLimit(Exception):
    pass


def child_fit_gammapy(work: Path, n: int, limit_s: float | None) -> dict:
    from gammapy.datasets import Datasets, MapDataset
    from gammapy.modeling import Fit
    from gammapy.modeling.models import FoVBackgroundModel, Models

    load0 = _load()
    t0 = time.perf_counter()
    paths = sorted((work / "gammapy").glob("obs-*.fits"))
    base = [(int(p.stem.split("-")[1]), MapDataset.read(p, name=p.stem)) for p in paths]
    datasets = Datasets([d.copy(name=_names(obs_id, k)) for k in range(n // len(base)) for obs_id, d in base])
    models = Models.read(REFERENCE / "seed_models_source.yaml")
    for d in datasets:
        models.append(FoVBackgroundModel(dataset_name=d.name))
    datasets.models = models
    t_setup = time.perf_counter() - t0

    calls = {"n": 0, "t_first": None, "stamps": []}
    orig = Datasets.stat_sum
    t_fit0 = [None]

    def counted(self):
        calls["n"] += 1
        now = time.perf_counter()
        if calls["n"] % 10 == 0:
            calls["stamps"].append(now - t_fit0[0])
        if limit_s is not None and now - t_fit0[0] > limit_s:
            raise _TimeLimit
        return orig(self)

    Datasets.stat_sum = counted
    res: dict = {"side": "gammapy", "n_runs": n, "n_free": len(models.parameters.free_parameters),
                 "setup_s": t_setup, "load_before": load0}
    try:
        import psutil
        res["rss_before_fit_mb"] = psutil.Process().memory_info().rss / MB
    except ImportError:
        pass
    t_fit0[0] = time.perf_counter()
    try:
        r = Fit().run(datasets=datasets)
        t_fit = time.perf_counter() - t_fit0[0]
        res.update(completed=True, fit_s=t_fit, success=bool(r.success), nfev_migrad=int(r.optimize_result.nfev),
                   total_stat=float(r.total_stat))
    except _TimeLimit:
        t_fit = time.perf_counter() - t_fit0[0]
        res.update(completed=False, fit_s=None, stopped_after_s=t_fit, success=None)
    Datasets.stat_sum = orig
    res["likelihood_calls"] = calls["n"]
    # time per call from the steady part (after the first 10 calls, which fill gammapy's caches)
    st = calls["stamps"]
    if len(st) >= 3:
        res["s_per_call"] = (st[-1] - st[0]) / (10 * (len(st) - 1))
    else:
        res["s_per_call"] = t_fit / max(calls["n"], 1)
    res["call_stamps_s"] = [round(x, 3) for x in st[:: max(1, len(st) // 50)]]
    src = models[0]
    res["source"] = {p.name: [float(p.value), float(p.error)] for p in src.parameters if not p.frozen}
    res["bkg_norms"] = [float(m.spectral_model.norm.value) for m in models[1:]][:6]
    res["load_after"] = _load()
    return res


# =========================================================================== children: gcxr fit
def _proc_status() -> dict:
    out = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(("VmHWM:", "VmRSS:")):
                    out[line.split(":")[0]] = int(line.split()[1]) * 1024
    except OSError:
        pass
    return out


def _worker_mem() -> dict:
    """RSS now, the peak RSS of this process's address space (VmHWM) and getrusage's ru_maxrss.

    ru_maxrss survives execve on Linux, so a dask worker spawned from a big client process starts
    with the client's RSS as its ru_maxrss; VmHWM belongs to the worker's own address space and can
    be reset (``_reset_peak``), so it is the figure used for the worker peak.
    """
    import resource
    import psutil
    st = _proc_status()
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1024 if sys.platform.startswith("linux") else 1)
    return {"rss": int(psutil.Process().memory_info().rss), "vmhwm": st.get("VmHWM"), "ru_maxrss": int(maxrss),
            "pid": os.getpid()}


def _warm_imports() -> bool:
    """Import on a worker what unpickling a chunk imports (numpy, scipy, xarray, astropy, gcxr)."""
    import gcxr.distributed  # noqa: F401
    import gcxr.likelihood  # noqa: F401
    import gcxr.npred  # noqa: F401
    return True


def _reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0: write 5 to /proc/self/clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _noop(*_args) -> float:
    return 0.0


def _ordered_factory(client):
    """Diagnostic kept for the result files' ``gcxr-local2-ordered`` rows: per-term results added on
    the client in term order.  gcxr's DistributedLikelihood does that itself now (its chunks
    return per-term statistic, gradient, curvature and Hessian parts), so this is its factory."""
    from gcxr.distributed import DistributedLikelihood
    return DistributedLikelihood.factory(client)


def _replicate(base, n: int):
    out = []
    for k in range(n // len(base)):
        for ds in base:
            c = ds.copy(deep=False)           # arrays shared with the base run; only the name differs
            c.attrs = dict(ds.attrs, name=_names(int(ds.attrs["obs_id"]), k))
            out.append(c)
    return out


def _time_calls(fn, factors, k: int) -> float:
    import numpy as np
    eps = np.zeros_like(factors)
    eps[0] = 1e-7
    fn(factors)                           # warm-up
    t0 = time.perf_counter()
    for i in range(k):
        fn(factors + eps * (i % 2))
    return (time.perf_counter() - t0) / k


def child_fit_gcxr(work: Path, n: int, scheduler: str, micro_calls: int, malloc_fix: bool = False,
                   ordered: bool = False, derivatives: str = "auto", placement: str = "cluster") -> dict:
    import numpy as np
    from gcxr.distributed import DistributedLikelihood
    from gcxr.fit import fit
    from gcxr.io import read_datasets
    from gcxr.likelihood import JointLikelihood, ParameterSpace, build_terms
    from gcxr.models import Models

    load0 = _load()
    t0 = time.perf_counter()
    base = [read_datasets(p) for p in sorted((work / "gcxr").glob("obs-*.nc"))]
    datasets = _replicate(base, n)
    models = Models.read(REFERENCE / "seed_models_source.yaml")
    models.add_fov_background([d.attrs["name"] for d in datasets])
    t_setup = time.perf_counter() - t0
    res: dict = {"side": f"gcxr-{scheduler.replace(':', '')}" + ("-mmap" if malloc_fix else "") + ("-ordered" if ordered else "")
                 + ("" if derivatives == "auto" else f"-{derivatives}") + ("-auto" if placement == "auto" else ""),
                 "derivatives": derivatives, "placement": placement,
                 "scheduler": scheduler, "n_runs": n, "setup_s": t_setup, "load_before": load0}

    client = cluster = None
    factory = None
    instances: list[dict] = []
    if scheduler.startswith("local"):
        # the workers gcxr starts for --scheduler local:N (gcxr.cluster.make_client: its allocator
        # settings and dask config, the reduction and likelihood modules preloaded)
        from gcxr.cluster import make_client
        client, cluster, _ = make_client(scheduler)
        res["worker_malloc_env"] = client.run(lambda: {k: v for k, v in os.environ.items() if k.startswith("MALLOC")})
        res["worker_mem_bare"] = client.run(_worker_mem)         # a fresh dask worker
        client.run(_warm_imports)
        res["worker_mem_before"] = client.run(_worker_mem)       # + numpy/scipy/xarray/astropy/gcxr imported
        res["worker_peak_reset"] = client.run(_reset_peak)
        base_factory = (_ordered_factory(client) if ordered
                        else DistributedLikelihood.factory(client, placement=placement))

        def factory(terms, space):
            like = base_factory(terms, space)
            if hasattr(like, "chunk_nbytes"):             # on the cluster (auto placement may keep it here)
                instances.append({"chunk_nbytes": list(like.chunk_nbytes), "plan": [list(c) for c in like.plan],
                                  "workers": [[w] for w in like.placement], "like": like})
            if hasattr(like, "placement_info"):
                res["placement_info"] = like.placement_info
            return like
    t_fit0 = time.perf_counter()
    kw = {} if derivatives == "auto" else {"derivatives": derivatives}
    result = fit(datasets, models, likelihood_factory=factory, **kw)
    t_fit = time.perf_counter() - t_fit0
    result.apply(models)                                  # the fit leaves the models as they were
    lk = result.timings.get("likelihood", {})
    space = ParameterSpace.from_models(models)
    res.update(fit_s=t_fit, fit_internal_s=result.timings.get("fit"), success=bool(result.success),
               nfev=int(result.nfev), likelihood_calls=int(lk.get("likelihood_calls", 0)),
               likelihood_tasks=int(lk.get("likelihood_tasks", 0)), n_refresh=int(result.n_refresh),
               total_stat=float(result.total_stat), n_free=len(space.keys),
               hessian_method=result.timings.get("hessian"), migrad_s=result.timings.get("migrad"),
               parameters={f"{p['model']}.{p['name']}": [p["value"], p["error"]] for p in result.parameters
                           if not p["frozen"]})
    src = [m for m in models if getattr(m, "spatial_model", None) is not None][0]
    res["source"] = {p.name: [float(p.value), float(p.error)] for sub in (src.spectral_model, src.spatial_model)
                     for p in sub.parameters if not p.frozen}

    if client is not None:
        res["worker_mem_after_fit"] = client.run(_worker_mem)
        per_worker: dict = {}
        for inst in instances:
            held: dict = {}
            for nb, ws in zip(inst["chunk_nbytes"], inst["workers"]):
                for w in ws:
                    held[w] = held.get(w, 0) + nb
            for w, nb in held.items():
                per_worker[w] = max(per_worker.get(w, 0), nb)
        res["chunks"] = [{k: v for k, v in inst.items() if k != "like"} for inst in instances]
        res["chunk_bytes_per_worker"] = per_worker

    # ---- micro-measure of one statistic call at the best fit
    terms = build_terms(datasets, models)
    factors = space.to_factors(space.start)
    inproc = JointLikelihood(terms, space)
    micro = {"calls": micro_calls, "inprocess_ms": 1e3 * _time_calls(inproc, factors, micro_calls),
             "terms_nbytes_total": int(sum(t.nbytes for t in terms))}
    k_grad = max(3, micro_calls // 20)
    if hasattr(inproc, "gradient"):
        micro["gradient_calls"] = k_grad
        micro["gradient_inprocess_ms"] = 1e3 * _time_calls(inproc.gradient, factors, k_grad)
    if client is not None:
        dl = DistributedLikelihood(terms, space, client)
        micro["worker_mem_with_chunks"] = client.run(_worker_mem)
        micro["chunk_workers"] = [[w] for w in dl.placement]
        micro["chunk_nbytes"] = list(dl.chunk_nbytes)
        values = space.values_by_model(space.start)

        def chunk_fn(idx):        # the same work as an actor's stat(f): values from f, then the terms
            return lambda f: sum(terms[i].stat(space.values_by_model(space.to_values(f))) for i in idx)
        micro["inprocess_chunk_ms"] = [1e3 * _time_calls(chunk_fn(idx), factors, micro_calls) for idx in dl.plan]
        micro["cluster_ms"] = 1e3 * _time_calls(dl, factors, micro_calls)
        # the same chunks timed on their workers (worker speed against in-process)
        micro["worker_chunk_ms"] = [1e3 * f.result() for f in [a.time_stat(factors, micro_calls) for a in dl.actors]]
        micro["worker_over_inprocess"] = [w / i for w, i in zip(micro["worker_chunk_ms"], micro["inprocess_chunk_ms"])]
        if hasattr(dl, "gradient"):
            micro["gradient_cluster_ms"] = 1e3 * _time_calls(dl.gradient, factors, k_grad)
            g_in, g_cl = inproc.gradient(factors), dl.gradient(factors)
            micro["gradient_max_abs_diff"] = float(np.max(np.abs(g_in - g_cl)))
        s_in, s_cl = inproc(factors), dl(factors)
        micro["stat_inprocess"], micro["stat_cluster"] = s_in, s_cl
        micro["stat_rel_diff"] = abs(s_cl - s_in) / abs(s_in)

        def roundtrip(_f):                       # one trivial actor call per chunk
            return sum(dl._round("nbytes"))
        micro["empty_roundtrip_ms"] = 1e3 * _time_calls(roundtrip, factors, micro_calls)
        micro["overhead_ms"] = micro["cluster_ms"] - max(micro["inprocess_chunk_ms"])
        micro["overhead_over_worker_ms"] = micro["cluster_ms"] - max(micro["worker_chunk_ms"])
        dl.close()
        client.close()
        cluster.close()
    res["micro"] = micro
    res["load_after"] = _load()
    return res


# =========================================================================== orchestration
def _child_cmd(python: str, mode: str, work: Path, *extra) -> list[str]:
    return [python, str(Path(__file__).resolve()), "--child", mode, "--work", str(work), *map(str, extra)]


def _run_child(cmd, env, timeout_s, label) -> dict:
    from measure import measure
    t = time.strftime("%H:%M:%S")
    print(f"[{t}] {label}: {' '.join(cmd[2:])}", file=sys.stderr, flush=True)
    r = measure(cmd, env=env, cwd=REPO, timeout_s=timeout_s)
    ok = r["rc"] == 0 and isinstance(r.get("stdout_json"), dict)
    out = {"ok": ok, "wall_s": r["wall_s"], "peak_rss_tree_mb": r["peak_rss_mb"], "ru_maxrss_mb": r["ru_maxrss_mb"],
           "rc": r["rc"], "timed_out": r.get("timed_out")}
    if ok:
        out["result"] = r["stdout_json"]
    else:
        out["stderr_tail"] = (r.get("stderr_tail") or "")[-2000:]
    print(f"    -> rc {r['rc']}, {r['wall_s']:.1f} s, tree peak {r['peak_rss_mb']:.0f} MB", file=sys.stderr, flush=True)
    return out


def _summarise(runs: dict, ns: list[int]) -> dict:
    """Per N: times, ratio, calls, overheads, memory; gammapy extrapolated where not measured."""
    rows = {}
    gp_measured = {}
    for n in ns:
        g = runs.get(f"gammapy-{n}", {}).get("result")
        if g and g.get("completed"):
            gp_measured[n] = g
    for n in ns:
        row: dict = {"n_runs": n}
        g = runs.get(f"gammapy-{n}", {}).get("result")
        th = runs.get(f"gcxr-threads-{n}", {}).get("result")
        lo = runs.get(f"gcxr-local2-{n}", {}).get("result")
        lm = runs.get(f"gcxr-local2-mmap-{n}", {}).get("result")
        if g:
            row["gammapy_calls"] = g["likelihood_calls"]
            row["gammapy_s_per_call"] = g.get("s_per_call")
            row["gammapy_peak_rss_tree_mb"] = runs[f"gammapy-{n}"]["peak_rss_tree_mb"]
            if g.get("completed"):
                row["gammapy_fit_s"] = g["fit_s"]
                row["gammapy_fit_kind"] = "measured"
            else:
                row["gammapy_stopped_after_s"] = g.get("stopped_after_s")
                row["gammapy_calls_before_stop"] = g["likelihood_calls"]
        if "gammapy_fit_s" not in row:
            # not measured to the end: three figures, none of them a measurement of the whole fit
            lower = sorted(k for k in gp_measured if k < n)
            est: dict = {}
            if g and g.get("stopped_after_s"):
                est["lower_bound_s"] = g["stopped_after_s"]          # measured: not finished after this
            if len(lower) >= 2:
                a, b = lower[-2], lower[-1]
                ta, tb = gp_measured[a]["fit_s"], gp_measured[b]["fit_s"]
                est["linear_in_n_s"] = tb + (tb - ta) * (n - b) / (b - a)
                est["linear_from"] = [a, b]
            # gammapy's measured time per call at this N x an estimated number of calls: gcxr with
            # derivatives="minuit" runs the same algorithm (MIGRAD strategy 1 + HESSE on the joint
            # statistic); its calls at this N x the mean gammapy/gcxr-minuit call ratio where both ran
            mn = runs.get(f"gcxr-threads-minuit-{n}", {}).get("result")
            ratios = []
            for k in gp_measured:
                mk = runs.get(f"gcxr-threads-minuit-{k}", {}).get("result")
                if mk:
                    ratios.append(gp_measured[k]["likelihood_calls"] / mk["likelihood_calls"])
            if g and g.get("s_per_call") and mn and ratios:
                est["call_ratio_gammapy_over_gcxr_minuit"] = ratios
                est["calls_estimate"] = mn["likelihood_calls"] * float(sum(ratios) / len(ratios))
                est["per_call_estimate_s"] = g["s_per_call"] * est["calls_estimate"]
            row["gammapy_estimates"] = est
            best = est.get("per_call_estimate_s")
            floor = max(est.get("lower_bound_s", 0.0), est.get("linear_in_n_s", 0.0)) or None
            if best is not None:
                row["gammapy_fit_s"] = max(best, floor or 0.0)
                row["gammapy_fit_kind"] = "estimated: measured s per call x estimated calls"
            elif floor is not None:
                row["gammapy_fit_s"] = floor
                row["gammapy_fit_kind"] = "lower bound"
            if floor is not None:
                row["gammapy_fit_s_lower_bound"] = floor
        if th:
            row["gcxr_threads_fit_s"] = th["fit_s"]
            row["gcxr_threads_calls"] = th["likelihood_calls"]
            row["gcxr_hessian_method"] = th.get("hessian_method")
            row["gcxr_threads_ms_per_call_micro"] = th["micro"]["inprocess_ms"]
        for key, lo_ in (("local2", lo), ("local2_mmap", lm)):
            if not lo_:
                continue
            pre = f"gcxr_{key}"
            row[f"{pre}_fit_s"] = lo_["fit_s"]
            row[f"{pre}_calls"] = lo_["likelihood_calls"]
            row[f"{pre}_tasks"] = lo_["likelihood_tasks"]
            m = lo_["micro"]
            row[f"{pre}_micro"] = {"inprocess_ms": m["inprocess_ms"],
                                   "inprocess_max_chunk_ms": max(m["inprocess_chunk_ms"]),
                                   "cluster_ms": m["cluster_ms"], "empty_roundtrip_ms": m["empty_roundtrip_ms"],
                                   "overhead_ms": m["overhead_ms"],
                                   "gradient_inprocess_ms": m.get("gradient_inprocess_ms"),
                                   "gradient_cluster_ms": m.get("gradient_cluster_ms"),
                                   "gradient_max_abs_diff": m.get("gradient_max_abs_diff")}
            if th:
                row[f"{pre}_fit_overhead_ms_per_call"] = 1e3 * (lo_["fit_s"] - th["fit_s"]) / lo_["likelihood_calls"]
            workers = []
            before = lo_.get("worker_mem_before", {})
            after = lo_.get("worker_mem_after_fit", {})
            held = lo_.get("chunk_bytes_per_worker", {})
            for w in sorted(after):
                chunk = held.get(w, 0)
                base_rss = before.get(w, {}).get("rss", 0)
                peak = after[w]["vmhwm"] or after[w]["rss"]      # since the reset just before the fit
                workers.append({"worker": w,
                                "bare_worker_rss_mb": lo_.get("worker_mem_bare", {}).get(w, {}).get("rss", 0) / MB,
                                "baseline_rss_mb": base_rss / MB, "peak_mb": peak / MB,
                                "rss_after_fit_mb": after[w]["rss"] / MB,
                                "rss_with_micro_chunks_mb":
                                    m.get("worker_mem_with_chunks", {}).get(w, {}).get("rss", 0) / MB,
                                "peak_minus_baseline_mb": (peak - base_rss) / MB, "chunk_mb": chunk / MB,
                                "raw_within_2x": bool(peak <= 2 * chunk),
                                "above_baseline_within_2x": bool(peak - base_rss <= 2 * chunk)})
            row[f"{pre}_workers"] = workers
            if th:
                ps = set(th["parameters"]) & set(lo_["parameters"])
                rel = [abs(th["parameters"][k][0] - lo_["parameters"][k][0]) /
                       max(abs(th["parameters"][k][0]), 1e-300) for k in ps]
                row[f"{key}_vs_threads"] = {
                    "stat_rel_diff": abs(th["total_stat"] - lo_["total_stat"]) / abs(th["total_stat"]),
                    "max_param_rel_diff": max(rel) if rel else None,
                    "same_calls": th["likelihood_calls"] == lo_["likelihood_calls"],
                    "micro_stat_rel_diff": m.get("stat_rel_diff")}
        if row.get("gammapy_fit_s") and row.get("gcxr_local2_fit_s"):
            row["ratio_gammapy_over_local2"] = row["gammapy_fit_s"] / row["gcxr_local2_fit_s"]
            if row.get("gammapy_fit_s_lower_bound"):
                row["ratio_lower_bound_gammapy_over_local2"] = row["gammapy_fit_s_lower_bound"] / row["gcxr_local2_fit_s"]
        mn = runs.get(f"gcxr-threads-minuit-{n}", {}).get("result")
        if mn:
            row["gcxr_threads_minuit_fit_s"] = mn["fit_s"]
            row["gcxr_threads_minuit_calls"] = mn["likelihood_calls"]
        lord = runs.get(f"gcxr-local2-ordered-{n}", {}).get("result")
        if th and lord:
            rel = [abs(th["parameters"][k][0] - lord["parameters"][k][0]) / max(abs(th["parameters"][k][0]), 1e-300)
                   for k in th["parameters"]]
            row["local2_ordered_sum_vs_threads"] = {
                "stat_rel_diff": abs(th["total_stat"] - lord["total_stat"]) / abs(th["total_stat"]),
                "max_param_rel_diff": max(rel), "same_calls": th["likelihood_calls"] == lord["likelihood_calls"],
                "fit_s": lord["fit_s"]}
        for key in ("threads", "local2_mmap"):
            if row.get("gammapy_fit_s") and row.get(f"gcxr_{key}_fit_s"):
                row[f"ratio_gammapy_over_{key}"] = row["gammapy_fit_s"] / row[f"gcxr_{key}_fit_s"]
        if g and th and g.get("completed"):
            row["gammapy_vs_gcxr_source"] = {k: [g["source"][k][0], th["source"].get(k, [None])[0]]
                                             for k in g["source"]}
            row["gammapy_total_stat"] = g["total_stat"]
            row["gcxr_total_stat"] = th["total_stat"]
        rows[n] = row
    return rows


def table(rows: dict) -> str:
    def f(x, nd=2):
        return "-" if x is None else f"{x:.{nd}f}"
    lines = ["gammapy 2.1 (Fit().run: MIGRAD + HESSE)",
             f"{'N':>3s} {'fit s':>9s} {'kind':<52s} {'calls':>7s} {'s/call':>7s} {'lower bd s':>10s} "
             f"{'linear s':>9s} {'tree MB':>8s}"]
    for n, r in rows.items():
        e = r.get("gammapy_estimates", {})
        calls = f(r.get("gammapy_calls"), 0) if "gammapy_calls_before_stop" not in r else (
            f"~{e['calls_estimate']:.0f}" if e.get("calls_estimate") else f">{r['gammapy_calls_before_stop']}")
        lines.append(f"{n:>3d} {f(r.get('gammapy_fit_s'), 1):>9s} {str(r.get('gammapy_fit_kind', '-'))[:52]:<52s} "
                     f"{calls:>7s} {f(r.get('gammapy_s_per_call'), 3):>7s} "
                     f"{f(e.get('lower_bound_s'), 1):>10s} {f(e.get('linear_in_n_s'), 1):>9s} "
                     f"{f(r.get('gammapy_peak_rss_tree_mb'), 0):>8s}")
    lines.append("")
    for key, label in (("local2", "gcxr --scheduler local:2 (dask defaults)"),
                       ("local2_mmap", "gcxr local:2 with MALLOC_MMAP_THRESHOLD_ set in the workers (diagnostic)")):
        if not any(r.get(f"gcxr_{key}_fit_s") for r in rows.values()):
            continue
        head = (f"{'N':>3s} {'gammapy s':>10s} {'gcxr s':>8s} {'ratio':>6s} {'(lower)':>7s} {'threads s':>9s} "
                f"{'rounds':>6s} {'ovh/call ms':>11s} {'micro ovh ms':>12s} {'empty rt ms':>11s} "
                f"{'worker peak MB (above base)':>28s} {'chunk MB':>10s}")
        lines += [label, head, "-" * len(head)]
        for n, r in rows.items():
            gp = r.get("gammapy_fit_s")
            star = "" if r.get("gammapy_fit_kind") == "measured" or gp is None else "*"
            ws = r.get(f"gcxr_{key}_workers", [])
            peak = ", ".join(f"{w['peak_mb']:.0f} ({w['peak_minus_baseline_mb']:.1f})" for w in ws)
            chunk = ", ".join(f"{w['chunk_mb']:.1f}" for w in ws)
            mi = r.get(f"gcxr_{key}_micro", {})
            t = r.get(f"gcxr_{key}_fit_s")
            lb = r.get("gammapy_fit_s_lower_bound")
            lines.append(f"{n:>3d} {f(gp, 1) + star:>10s} {f(t):>8s} "
                         f"{f(gp / t if gp and t else None, 1):>6s} {f(lb / t if lb and t else None, 1):>7s} "
                         f"{f(r.get('gcxr_threads_fit_s')):>9s} "
                         f"{r.get(f'gcxr_{key}_calls', '-'):>6} {f(r.get(f'gcxr_{key}_fit_overhead_ms_per_call')):>11s} "
                         f"{f(mi.get('overhead_ms')):>12s} {f(mi.get('empty_roundtrip_ms')):>11s} {peak:>28s} {chunk:>10s}")
        lines.append("")
    lines.append("* gammapy not measured to the end (see the gammapy table: estimate and measured lower bound); "
                 "ratio = gammapy / gcxr, (lower) = gammapy's lower bound / gcxr; rounds = likelihood calls "
                 "(statistic or gradient); ovh/call = (t_local2 - t_threads) / rounds; micro ovh = one cluster "
                 "statistic call - slowest chunk's time in process; empty rt = one trivial task per chunk; "
                 "worker peak = VmHWM during the fit (above the RSS with imports, before the chunks were placed)")
    return "\n".join(lines)


def plot(report: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = {int(k): v for k, v in report["summary"].items()}
    ns = sorted(rows)
    fig, ax = plt.subplots(figsize=(6.6, 4.8))
    meas = [n for n in ns if rows[n].get("gammapy_fit_kind") == "measured"]
    ax.plot(meas, [rows[n]["gammapy_fit_s"] for n in meas], "o-", color="C3", label="gammapy 2.1 (measured)")
    for n in ns:
        e = rows[n].get("gammapy_estimates")
        if not e:
            continue
        if e.get("per_call_estimate_s") and meas:
            ax.plot([meas[-1], n], [rows[meas[-1]]["gammapy_fit_s"], e["per_call_estimate_s"]], "o--", color="C3",
                    mfc="none", label="gammapy 2.1 (estimate: measured s/call x estimated calls)")
        if e.get("lower_bound_s"):
            ax.errorbar([n], [e["lower_bound_s"]], yerr=[[0], [e["lower_bound_s"] * 0.6]], lolims=True,
                        fmt="^", color="C3", ms=7, label=f"gammapy: unfinished after {e['lower_bound_s']:.0f} s")
        if e.get("linear_in_n_s"):
            ax.plot([n], [e["linear_in_n_s"]], "_", color="C3", ms=14, mew=2,
                    label="gammapy: linear-in-N extrapolation (below the measured bound)")
    for key, lab, c, st in (("gcxr_threads_fit_s", "gcxr in process", "C0", "s-"),
                            ("gcxr_local2_fit_s", "gcxr --scheduler local:2", "C2", "s-"),
                            ("gcxr_local2_mmap_fit_s", "gcxr local:2, workers with MALLOC_MMAP_THRESHOLD_", "C1", "s:"),
                            ("gcxr_threads_minuit_fit_s", "gcxr in process, Minuit derivatives", "C0", "d:")):
        xs = [n for n in ns if rows[n].get(key)]
        if xs:
            ax.plot(xs, [rows[n][key] for n in xs], st, color=c, label=lab, mfc="none" if st == "d:" else None)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(ns)
    ax.set_xticklabels([str(n) for n in ns])
    ax.minorticks_off()
    ax.set_xlabel("number of runs N in the joint fit")
    ax.set_ylabel("joint-fit wall time (s)")
    ax.set_title("Joint fit of N CTA-1DC runs (5 + N free parameters), 2-core machine", fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _git_info() -> dict:
    import subprocess
    def git(*a):
        try:
            return subprocess.run(["git", *a], cwd=REPO, capture_output=True, text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None
    return {"head": git("rev-parse", "HEAD"), "gcxr_changes": git("status", "--short", "--", "gcxr")}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--n", default="3,12,48", help="comma list of run counts (multiples of 3)")
    ap.add_argument("--sides", default="gammapy,gcxr-threads,gcxr-local2,gcxr-threads-minuit",
                    help=f"comma list from {','.join(SIDES)}")
    ap.add_argument("--out", default=str(HERE / "results" / "scaling.json"))
    ap.add_argument("--plot", default=str(REPO / "docs" / "img" / "scaling.png"))
    ap.add_argument("--from-json", action="store_true",
                    help="recompute the summary, table and plot from the runs stored in --out (no fits)")
    ap.add_argument("--gammapy-python", default="/work/venv-gammapy/bin/python")
    ap.add_argument("--gcxr-python", default=str(REPO / ".venv" / "bin" / "python"))
    ap.add_argument("--gammapy-limit", type=float, default=900.0,
                    help="stop a gammapy fit still running after this many seconds (0: no limit)")
    ap.add_argument("--micro-calls", type=int, default=200)
    ap.add_argument("--work", default=None, help="folder for the per-run datasets (default: a temporary one)")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--scheduler", default="threads", help=argparse.SUPPRESS)
    ap.add_argument("--n-child", type=int, default=3, help=argparse.SUPPRESS)
    ap.add_argument("--malloc-fix", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--ordered-sum", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--derivatives", default="auto", help=argparse.SUPPRESS)
    ap.add_argument("--placement", default="cluster", help=argparse.SUPPRESS)
    ap.add_argument("--check-n", type=int, default=0,
                    help="N at which a local:2 fit with per-term sums in term order is also run (0: none)")
    args = ap.parse_args(argv)

    if args.child:
        import warnings
        warnings.simplefilter("ignore")
        work = Path(args.work)
        if args.child == "prep-gcxr":
            res = child_prep_gcxr(work)
        elif args.child == "prep-gammapy":
            res = child_prep_gammapy(work)
        elif args.child == "fit-gammapy":
            res = child_fit_gammapy(work, args.n_child, args.gammapy_limit or None)
        elif args.child == "fit-gcxr":
            res = child_fit_gcxr(work, args.n_child, args.scheduler, args.micro_calls, args.malloc_fix,
                                 args.ordered_sum, args.derivatives, args.placement)
        else:
            raise SystemExit(f"unknown child {args.child}")
        print(json.dumps(res, default=float))
        return 0

    out = Path(args.out)
    if args.from_json:
        report = json.loads(out.read_text())
        summary = _summarise(report["runs"], report["settings"]["n"])
        report["summary"] = {str(k): v for k, v in summary.items()}
        text = table(summary)
        report["table"] = text.splitlines()
        out.write_text(json.dumps(report, indent=1, default=float) + "\n")
        print(text)
        plot(report, Path(args.plot))
        print(f"wrote {out} and {args.plot}")
        return 0

    sys.path.insert(0, str(HERE))
    ns = [int(x) for x in args.n.split(",") if x.strip()]
    if any(n % 3 for n in ns):
        ap.error("--n: each N must be a multiple of 3 (copies of the 3 seed runs)")
    sides = [s.strip() for s in args.sides.split(",") if s.strip()]
    data = os.environ.get("GCXR_DATA") or str(SHARED / "data")
    env = {"GAMMAPY_DATA": os.environ.get("GAMMAPY_DATA", data), "GCXR_DATA": data, "MPLBACKEND": "Agg",
           "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    py = {"gammapy": args.gammapy_python, "gcxr": args.gcxr_python}
    runs: dict = {}
    t_start = time.perf_counter()
    load_start = _load()
    git_start = _git_info()
    with tempfile.TemporaryDirectory(prefix="gcxr-scaling-") as tmpname:
        work = Path(args.work) if args.work else Path(tmpname)
        if "gammapy" in sides:
            runs["prep-gammapy"] = _run_child(_child_cmd(py["gammapy"], "prep-gammapy", work), env, 1800, "prep")
        if any(s.startswith("gcxr") for s in sides):
            runs["prep-gcxr"] = _run_child(_child_cmd(py["gcxr"], "prep-gcxr", work), env, 600, "prep")
        for n in ns:
            for side in sides:
                if side == "gammapy":
                    cmd = _child_cmd(py["gammapy"], "fit-gammapy", work, "--n-child", n,
                                     "--gammapy-limit", args.gammapy_limit)
                    timeout = (args.gammapy_limit or 36000) + 600
                else:
                    sched = "threads" if side.startswith("gcxr-threads") else "local:2"
                    cmd = _child_cmd(py["gcxr"], "fit-gcxr", work, "--n-child", n, "--scheduler", sched,
                                     "--micro-calls", args.micro_calls,
                                     *(["--malloc-fix"] if side == "gcxr-local2-mmap" else []),
                                     *(["--placement", "auto"] if side == "gcxr-local2-auto" else []),
                                     *(["--derivatives", "minuit"] if side == "gcxr-threads-minuit" else []))
                    timeout = 3600
                runs[f"{side}-{n}"] = _run_child(cmd, env, timeout, f"N={n} {side}")
            if n == args.check_n and "gcxr-local2" in sides:
                cmd = _child_cmd(py["gcxr"], "fit-gcxr", work, "--n-child", n, "--scheduler", "local:2",
                                 "--micro-calls", 20, "--ordered-sum")
                runs[f"gcxr-local2-ordered-{n}"] = _run_child(cmd, env, 3600, f"N={n} gcxr-local2-ordered")
    summary = _summarise(runs, ns)
    report = {
        "date": _dt.datetime.now().isoformat(timespec="seconds"),
        "what": "joint-fit stage of N re-pointed copies of the 3 CTA-1DC seed runs (reduction excluded)",
        "host": {"platform": platform.platform(), "cpu_count": os.cpu_count(), "python": platform.python_version(),
                 "load_avg_start": load_start, "load_avg_end": _load(),
                 "note": "2-core machine shared with other engineers; load averages per child are in runs.*.result"},
        "settings": {"n": ns, "sides": sides, "gammapy_limit_s": args.gammapy_limit, "micro_calls": args.micro_calls,
                     "reference": str(REFERENCE), "pythons": py, "env": env},
        "git": {"at_start": git_start, "at_end": _git_info(),
                "note": "each child imports gcxr when it starts; gcxr_changes lists uncommitted edits under gcxr/"},
        "total_wall_s": time.perf_counter() - t_start,
        "summary": {str(k): v for k, v in summary.items()},
        "runs": runs,
    }
    text = table(summary)
    report["table"] = text.splitlines()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1, default=float) + "\n")
    print(text)
    print(f"wrote {out}")
    if args.plot:
        plot(report, Path(args.plot))
        print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
