"""Survey scale: `gcxr run` on the first N runs of the simulated Galactic-plane store, on
``--scheduler local:2`` and in process (threads), stacked and joint, in one run.

The store is ``gcxr simulate --survey 200 --out STORE`` (gcxr.survey: 200 30-min runs along
l = -15..15 deg at b = -1, +1 deg, 18 sources, the CTA-1DC IRF; ``survey_stacked.yaml``,
``survey_joint.yaml`` and ``survey_models.yaml`` beside the runs). ``--make-store`` simulates it
first (under ``measure.py`` too: time and memory of the simulation are recorded) when
``STORE/obs-index.fits.gz`` is missing.

Per N (``--n``, default 100 200) and case (``stacked``: ``survey_stacked.yaml``, one stacked
dataset; ``joint``: ``survey_joint.yaml``, one dataset per run, each with its own FoV background
norm, which ``Analysis.set_models`` adds per dataset), a copy of the config selects obs_ids = the
first N runs of the store, and a copy of the models keeps the sources that those runs cover (a
source whose centre is within ``offset_max`` of a selected pointing; all 18 for N >= 100, since
each pass of 100 runs covers the whole strip); for the joint case each source is restricted to
the runs that reach it (``datasets_names``, ``gcxr.survey.joint_models``). ``--free spectral``
freezes the spatial parameters (positions, sizes) at their true values; the default ``auto``
frees them in the stacked fit only: in a joint fit every free position or size is refolded on
every run that sees the source (~30 runs per source at N = 200), and a smoke run on the first 10
runs (3 sources, in process, loaded 2-core machine) took 240 s to fit with them free against
1.3 s with them frozen (stacked: 23 s). Then, for each scheduler (``--schedulers``, default
``threads,local:2``), in a fresh process under ``measure.py``::

    python -m gcxr run CONFIG_N --models MODELS_N --out DIR --scheduler SCHED --quiet

Recorded per run: wall and CPU time, the stages from result.json (import, reduce, fit, total,
write), the ``compute`` block of result.json as it is (scheduler, workers, likelihood calls and
tasks; rounds and bytes per round where gcxr writes them), peak RSS of the process tree and of
each process (the root holds the client, scheduler and nannies; the workers are its children),
the fit's success, nfev, statistic and parameters. Compared per N and case: local:2 against
threads, statistic to 1e-9 relative and every free parameter to 1e-3 of its error (the joint fit
is the issue's criterion; the stacked fit is reported the same way), and the time ratios.

    python benchmarks/bench_survey.py --store /tmp/survey --make-store                    # the full run
    python benchmarks/bench_survey.py --store /tmp/survey-20 --n 10 20 --out /tmp/s.json  # a smoke run
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(REPO))                 # this checkout's gcxr (gcxr.survey.joint_models)
from measure import measure  # noqa: E402

SHARED = REPO.parent / "shared"
CASES = {"stacked": "survey_stacked.yaml", "joint": "survey_joint.yaml"}
STAGES = ("import", "reduce", "fit", "write", "total")
STAT_RTOL = 1e-9
PAR_SIGMA = 1e-3


def default_python() -> Path:
    local = REPO / ".venv" / "bin" / "python"
    return local if local.exists() else Path(sys.executable)


def _env() -> dict:
    data = os.environ.get("GCXR_DATA") or os.environ.get("GAMMAPY_DATA") or str(SHARED / "data")
    # the gcxr of this checkout, in the driver and (through multiprocessing's sys.path) in the workers
    path = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return {"GCXR_DATA": data, "PYTHONPATH": path}


def make_store(python: Path, store: Path, n_runs: int, seed: int, timeout_s: float | None) -> dict:
    cmd = [str(python), "-W", "ignore", "-m", "gcxr", "simulate", "--survey", str(n_runs), "--seed", str(seed),
           "--out", str(store), "--quiet"]
    print(f"simulating the survey store: {' '.join(cmd)}", file=sys.stderr, flush=True)
    r = measure(cmd, env=_env(), cwd=REPO, timeout_s=timeout_s)
    if r["rc"] != 0:
        raise SystemExit(f"gcxr simulate --survey failed (rc {r['rc']}): {r.get('stderr_tail', '')[-2000:]}")
    r.pop("stdout_json", None)
    print(f"  {n_runs} runs in {r['wall_s']:.1f} s ({r['wall_s'] / n_runs:.2f} s/run), peak RSS "
          f"{r['peak_rss_mb']:.0f} MB", file=sys.stderr, flush=True)
    return r


def store_runs(store: Path) -> list[dict]:
    """obs_id, galactic pointing of every run, in obs_id order."""
    from astropy.io import fits
    with fits.open(store / "obs-index.fits.gz") as h:
        d = h[1].data
        rows = [{"obs_id": int(i), "glon": float(lo), "glat": float(la)}
                for i, lo, la in zip(d["OBS_ID"], d["GLON_PNT"], d["GLAT_PNT"])]
    return sorted(rows, key=lambda r: r["obs_id"])


def _sep(lon1, lat1, lon2, lat2):
    lon1, lat1, lon2, lat2 = map(np.radians, (lon1, lat1, lon2, lat2))
    c = np.sin(lat1) * np.sin(lat2) + np.cos(lat1) * np.cos(lat2) * np.cos(lon1 - lon2)
    return np.degrees(np.arccos(np.clip(c, -1, 1)))


def inputs_for(store: Path, case: str, n: int, tmp: Path, free: str = "all") -> dict:
    """Config and models copies for the first ``n`` runs; the sources those runs cover (with
    ``free="spectral"`` their spatial parameters frozen at the true values)."""
    runs = store_runs(store)[:n]
    if len(runs) < n:
        raise SystemExit(f"{store} has {len(store_runs(store))} runs, fewer than N = {n}")
    cfg = yaml.safe_load((store / CASES[case]).read_text())
    cfg["observations"]["obs_ids"] = [r["obs_id"] for r in runs]
    offset_max = float(str(cfg["datasets"]["geom"]["selection"]["offset_max"]).split()[0])
    cfg_path = tmp / f"{case}-{n}.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    models = yaml.safe_load((store / "survey_models.yaml").read_text())
    lon = np.array([r["glon"] for r in runs])
    lat = np.array([r["glat"] for r in runs])
    kept = []
    for comp in models["components"]:
        p = {q["name"]: q["value"] for q in comp["spatial"]["parameters"]}
        if np.min(_sep(lon, lat, p["lon_0"], p["lat_0"])) < offset_max:
            if free == "spectral":
                for q in comp["spatial"]["parameters"]:
                    q["frozen"] = True
            kept.append(comp)
    if not kept:
        raise SystemExit(f"the first {n} runs cover none of the survey's sources")
    models["components"] = kept
    models_path = tmp / f"models-{case}-{n}-{free}.yaml"
    models_path.write_text(yaml.safe_dump(models, sort_keys=False))
    if case == "joint":          # each source on the runs that reach it (gcxr.survey.joint_models)
        from gcxr.models import Models
        from gcxr.survey import joint_models
        pointings = {r["obs_id"]: (r["glon"], r["glat"]) for r in runs}
        joint_models(Models.read(models_path), pointings, offset_max).write(models_path, overwrite=True)
    return {"config": cfg_path, "models": models_path, "n_sources": len(kept), "obs_ids": [r["obs_id"] for r in runs]}


def run_one(python: Path, inputs: dict, scheduler: str, out_dir: Path, timeout_s: float | None) -> dict:
    cmd = [str(python), "-W", "ignore", "-m", "gcxr", "run", str(inputs["config"]), "--models", str(inputs["models"]),
           "--out", str(out_dir), "--scheduler", scheduler, "--quiet"]
    r = measure(cmd, env=_env(), cwd=REPO, result_file=out_dir / "result.json", timeout_s=timeout_s)
    res = r.pop("stdout_json", None) or {}
    # exit status 5: the fit did not converge, every output written (result.json says so)
    r["ok"] = r["rc"] in (0, 5) and bool(res) and "error" not in r
    t = res.get("timings_s", {})
    r["stages_s"] = {k: t.get(k) for k in STAGES}
    r["compute"] = res.get("compute")
    r["datasets"] = res.get("datasets")
    fit = res.get("fit") or {}
    r["fit"] = {k: fit.get(k) for k in ("success", "nfev", "total_stat", "message") if k in fit}
    r["fit"]["parameters"] = [{k: p.get(k) for k in ("model", "name", "value", "error", "unit", "frozen")}
                              for p in fit.get("parameters", [])]
    r["fit"]["n_free"] = sum(1 for p in fit.get("parameters", []) if not p.get("frozen"))
    if not r["ok"]:
        tail = (r.get("stderr_tail") or "").strip().splitlines()
        r["failure"] = r.get("error") or (f"rc {r['rc']}: {tail[-1]}" if tail else f"rc {r['rc']}")
    return r


def compare(a: dict, b: dict) -> dict:
    """``b`` (a cluster run) against ``a`` (in process): statistic and free parameters."""
    if not (a.get("ok") and b.get("ok")):
        return {"ok": False, "reason": "a run failed"}
    sa, sb = a["fit"].get("total_stat"), b["fit"].get("total_stat")
    rel = abs(sb - sa) / max(abs(sa), 1e-300) if sa is not None and sb is not None else None
    pa = {(p["model"], p["name"]): p for p in a["fit"]["parameters"] if not p["frozen"]}
    pb = {(p["model"], p["name"]): p for p in b["fit"]["parameters"] if not p["frozen"]}
    worst, worst_name = 0.0, None
    for k, p in pa.items():
        if k not in pb:
            return {"ok": False, "reason": f"parameter {k} missing in one run"}
        err = p["error"] or float("nan")
        d = abs(pb[k]["value"] - p["value"]) / err if err and np.isfinite(err) and err > 0 else float("inf")
        if not d <= worst:
            worst, worst_name = d, ".".join(k)
    ok = rel is not None and rel <= STAT_RTOL and worst <= PAR_SIGMA
    stage = {s: (b["stages_s"][s] / a["stages_s"][s] if a["stages_s"].get(s) and b["stages_s"].get(s) else None)
             for s in ("reduce", "fit", "total")}
    return {"ok": bool(ok), "stat_rel_diff": rel, "max_param_diff_sigma": worst, "worst_param": worst_name,
            "n_free": len(pa), "time_ratio_cluster_over_threads": stage,
            "wall_ratio_cluster_over_threads": b["wall_s"] / a["wall_s"] if a["wall_s"] else None}


def _f(x, nd=1):
    return "-" if x is None else f"{x:.{nd}f}"


def table(results: dict) -> str:
    head = (f"{'N':>4s} {'case':8s} {'scheduler':10s} {'wall s':>7s} {'reduce':>7s} {'fit':>7s} {'tree MB':>8s} "
            f"{'root MB':>8s} {'worker MB':>10s} {'calls':>6s} {'rounds':>6s} {'B/round':>8s} {'nfev':>5s} {'free':>4s} "
            f"{'stat':>14s}")
    lines = [head, "-" * len(head)]
    for n, cases in results.items():
        for case, rec in cases.items():
            for sched, r in rec["runs"].items():
                if not r.get("ok"):
                    lines.append(f"{n:>4s} {case:8s} {sched:10s} FAILED: {str(r.get('failure'))[:90]}")
                    continue
                procs = r.get("processes", [])
                root = max((p["peak_rss_mb"] for p in procs if p["role"] == "root"), default=None)
                work = max((p["peak_rss_mb"] for p in procs if p["role"] == "worker"), default=None)
                c = r.get("compute") or {}
                rounds = c.get("rounds", c.get("likelihood_rounds"))
                per_round = None
                if c.get("bytes_sent_per_round") is not None:
                    per_round = c["bytes_sent_per_round"] + (c.get("bytes_received_per_round") or 0)
                lines.append(f"{n:>4s} {case:8s} {sched:10s} {_f(r['wall_s']):>7s} {_f(r['stages_s']['reduce']):>7s} "
                             f"{_f(r['stages_s']['fit']):>7s} {_f(r['peak_rss_mb'], 0):>8s} {_f(root, 0):>8s} "
                             f"{_f(work, 0):>10s} {str(c.get('likelihood_calls', '-')):>6s} {str(rounds or '-'):>6s} "
                             f"{_f(per_round, 0):>8s} "
                             f"{str(r['fit'].get('nfev', '-')):>5s} {r['fit']['n_free']:>4d} "
                             f"{_f(r['fit'].get('total_stat'), 3):>14s}")
            for sched, cmp in rec.get("compare", {}).items():
                if cmp.get("reason"):
                    lines.append(f"{n:>4s} {case:8s} {sched} vs threads: not compared ({cmp['reason']})")
                    continue
                t = cmp["time_ratio_cluster_over_threads"]
                lines.append(f"{n:>4s} {case:8s} {sched} vs threads: stat rel diff {cmp['stat_rel_diff']:.1e} "
                             f"(<= {STAT_RTOL:g}), max param diff {cmp['max_param_diff_sigma']:.1e} sigma "
                             f"(<= {PAR_SIGMA:g}) -> {'OK' if cmp['ok'] else 'DIFFERENT'}; time ratio "
                             f"reduce {_f(t['reduce'], 2)}, fit {_f(t['fit'], 2)}, wall "
                             f"{_f(cmp['wall_ratio_cluster_over_threads'], 2)}")
    lines.append("tree MB = peak RSS of the process tree (sum); root MB = gcxr process (client, scheduler, nannies); "
                 "worker MB = the largest worker's peak; calls, rounds, B/round (bytes sent + received per round) from "
                 "result.json's compute block")
    return "\n".join(lines)


def main(argv=None) -> int:
    today = _dt.date.today().isoformat()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--store", required=True, help="survey store (gcxr simulate --survey N --out STORE)")
    ap.add_argument("--make-store", action="store_true", help="simulate the store first if it is missing")
    ap.add_argument("--store-runs", type=int, default=200, help="runs to simulate with --make-store (default 200)")
    ap.add_argument("--seed", type=int, default=0, help="seed for --make-store (default 0)")
    ap.add_argument("--n", type=int, nargs="+", default=[100, 200], help="numbers of runs (default: 100 200)")
    ap.add_argument("--cases", default="stacked,joint", help="comma list from stacked,joint")
    ap.add_argument("--free", choices=("auto", "all", "spectral"), default="auto",
                    help="free parameters: all (positions and sizes too), spectral (spatial frozen at the truth), "
                         "auto (default: all for stacked, spectral for joint; see the module docstring)")
    ap.add_argument("--schedulers", default="threads,local:2",
                    help="comma list of --scheduler values; the first is the reference (default threads,local:2)")
    ap.add_argument("--python", default=str(default_python()), help="python with gcxr's dependencies")
    ap.add_argument("--timeout", type=float, default=None, help="kill a run after this many seconds")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / f"survey-{today}.json"))
    args = ap.parse_args(argv)
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    scheds = [s.strip() for s in args.schedulers.split(",") if s.strip()]
    for c in cases:
        if c not in CASES:
            ap.error(f"unknown case {c!r}; choose from {', '.join(CASES)}")
    python, store = Path(args.python), Path(args.store).expanduser().resolve()

    report: dict = {"date": _dt.datetime.now().isoformat(timespec="seconds"),
                    "host": {"platform": platform.platform(), "cpu_count": os.cpu_count(),
                             "python": platform.python_version(), "loadavg_start": os.getloadavg()},
                    "settings": {"store": str(store), "n": args.n, "cases": cases, "schedulers": scheds,
                                 "free": args.free,
                                 "python": str(python), "stat_rtol": STAT_RTOL, "param_sigma": PAR_SIGMA}}
    if not (store / "obs-index.fits.gz").exists():
        if not args.make_store:
            ap.error(f"{store} is not a survey store; make it with gcxr simulate --survey 200 --out {store} "
                     "or pass --make-store")
        report["simulate"] = make_store(python, store, args.store_runs, args.seed, args.timeout)
    sim = json.loads((store / "simulation.json").read_text()) if (store / "simulation.json").exists() else {}
    report["store"] = {k: sim.get(k) for k in ("seed", "n_runs", "plan", "irf", "models")}

    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="gcxr-bench-survey-") as tmpname:
        tmp = Path(tmpname)
        for n in args.n:
            results[str(n)] = {}
            for case in cases:
                free = args.free if args.free != "auto" else ("all" if case == "stacked" else "spectral")
                inputs = inputs_for(store, case, n, tmp, free)
                rec = {"n_sources": inputs["n_sources"], "free": free, "runs": {}, "compare": {}}
                for sched in scheds:
                    print(f"N = {n} {case} {sched} ({inputs['n_sources']} sources) ...", file=sys.stderr, flush=True)
                    out_dir = tmp / f"out-{n}-{case}-{sched.replace(':', '')}"
                    r = run_one(python, inputs, sched, out_dir, args.timeout)
                    rec["runs"][sched] = r
                    print(f"  {'ok' if r['ok'] else 'FAILED ' + str(r.get('failure'))}: wall {r['wall_s']:.1f} s, "
                          f"reduce {_f(r['stages_s']['reduce'])} s, fit {_f(r['stages_s']['fit'])} s, "
                          f"peak tree {r['peak_rss_mb']:.0f} MB, largest process {r['peak_rss_max_process_mb']:.0f} MB",
                          file=sys.stderr, flush=True)
                ref = rec["runs"][scheds[0]]
                for sched in scheds[1:]:
                    rec["compare"][sched] = compare(ref, rec["runs"][sched])
                results[str(n)][case] = rec
    report["results"] = results
    text = table(results)
    report["table"] = text.splitlines()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(text)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
