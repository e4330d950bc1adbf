"""Side-by-side benchmark of the reduction stage: gammapy 2.1 vs gcxr, in one run.

Cases (each a stacked 3D reduction, no fit):

* ``seed``     - CTA-1DC Galactic Centre, 3 runs, 500 x 400 x 10 grid (``analysis_config.yaml`` of
  ``../shared/reference/gammapy-2.1-cta1dc-gc``): psf_3gauss, bkg_3d on a DETX/DETY grid;
* ``crab``     - H.E.S.S. DL3 DR1 Crab, 4 runs (``benchmarks/configs/hess_crab_stacked.yaml``);
* ``pks2155``  - H.E.S.S. DL3 DR1 PKS 2155-304, 12 runs (``benchmarks/configs/hess_pks2155_stacked.yaml``);
* ``msh1552``  - H.E.S.S. DL3 DR1 MSH 15-52, run 20151 (``benchmarks/configs/hess_msh1552.yaml``).

The H.E.S.S. cases use psf_table PSFs, bkg_3d models and safe-energy thresholds from the files,
0.02 deg pixels and 8-16 energy bins. Each case runs in a fresh process per side, under
``measure.py`` (wall time, peak RSS of the process tree); with ``--repeat N`` the sides take
turns N times and the best of N is kept for each figure. gammapy runs through
``../shared/reference/gammapy_run.py CONFIG --no-fit``, gcxr through ``gcxr run CONFIG --no-fit``.
The ``reduce`` stage is what each program reports (gammapy: ``get_observations`` +
``get_datasets``; gcxr: ``get_datasets``); ``total`` is the in-process total with imports
(gcxr's includes writing ``datasets.nc``); ``wall`` is measured around the process.

    python benchmarks/bench_reduce.py --gcxr-python .venv/bin/python
    python benchmarks/bench_reduce.py --cases seed,pks2155 --repeat 3
    python benchmarks/bench_reduce.py --baseline-src /tmp/gcxr-before     # also an earlier gcxr

For ``--baseline-src``, export the earlier tree first, e.g.
``git archive 3c12c1f gcxr | tar -x -C /tmp/gcxr-before``.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_seed  # noqa: E402
from bench_seed import (GAMMAPY_RUN, REFERENCE, SHARED, SIDES, _fmt, _ratio, default_gammapy_python,  # noqa: E402
                        default_gcxr_python, gammapy_version, run_side)

HERE = Path(__file__).resolve().parent
CASES = {
    "seed": REFERENCE / "analysis_config.yaml",
    "crab": HERE / "configs" / "hess_crab_stacked.yaml",
    "pks2155": HERE / "configs" / "hess_pks2155_stacked.yaml",
    "msh1552": HERE / "configs" / "hess_msh1552.yaml",
}


def _run_baseline(src: Path, python: Path, inputs: dict, env: dict, tmp: Path, timeout_s) -> dict:
    """One gcxr run of the tree in ``src``: ``python -m gcxr`` puts the working directory first on
    ``sys.path``, so the process runs *in* ``src`` (and with ``PYTHONPATH=src``)."""
    saved = bench_seed.REPO
    bench_seed.REPO = src
    try:
        return run_side("gcxr", python, inputs, 1, dict(env, PYTHONPATH=str(src)), tmp, timeout_s)
    finally:
        bench_seed.REPO = saved


def _best(runs: list[dict]) -> dict:
    """The run with the best wall time; ``stages_s`` are the best of each stage over the good runs."""
    good = [r for r in runs if r.get("ok")]
    if not good:
        return runs[-1]
    best = dict(min(good, key=lambda r: r["wall_s"]))
    best["stages_s"] = {k: min((r["stages_s"][k] for r in good if r["stages_s"].get(k) is not None), default=None)
                        for k in best["stages_s"]}
    best["all_wall_s"] = [r["wall_s"] for r in runs]
    best["all_peak_rss_mb"] = [r["peak_rss_mb"] for r in runs]
    best["all_stages_s"] = [r.get("stages_s") for r in runs]
    return best


def table(results: dict) -> str:
    head = (f"{'case':8s} {'stage':7s} {'gammapy s':>10s} {'baseline s':>10s} {'gcxr s':>9s} {'speedup':>8s} "
            f"{'gammapy MB':>11s} {'baseline MB':>11s} {'gcxr MB':>9s} {'mem ratio':>9s}")
    lines = [head, "-" * len(head)]
    for case, sides in results.items():
        gp, gb, gx = sides.get("gammapy"), sides.get("gcxr-baseline"), sides.get("gcxr")
        for stage in ("reduce", "total", "wall"):
            def val(side):
                if side is None or not side.get("ok"):
                    return None
                return side["wall_s"] if stage == "wall" else side["stages_s"].get(stage)

            def mem(side):
                return side["peak_rss_mb"] if stage == "wall" and side and side.get("ok") else None
            a, c, b = val(gp), val(gb), val(gx)
            lines.append(f"{case:8s} {stage:7s} {_fmt(a):>10s} {_fmt(c):>10s} {_fmt(b):>9s} {_fmt(_ratio(a, b)):>8s} "
                         f"{_fmt(mem(gp), 0):>11s} {_fmt(mem(gb), 0):>11s} {_fmt(mem(gx), 0):>9s} "
                         f"{_fmt(_ratio(mem(gp), mem(gx))):>9s}")
        for name, side in (("gammapy", gp), ("gcxr-baseline", gb), ("gcxr", gx)):
            if side is not None and not side.get("ok"):
                lines.append(f"{case:8s} {name} FAILED: {str(side.get('failure', ''))[:110]}")
    lines.append("reduce = stage time each program reports; total = in-process incl. imports; wall = around the "
                 "process; MB = peak RSS of the process tree; speedup, mem ratio = gammapy / gcxr; baseline = gcxr "
                 "from --baseline-src")
    return "\n".join(lines)


def main(argv=None) -> int:
    today = _dt.date.today().isoformat()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--cases", default=",".join(CASES), help=f"comma list from {','.join(CASES)}")
    ap.add_argument("--sides", default=",".join(SIDES), help="comma list from gammapy,gcxr")
    ap.add_argument("--repeat", type=int, default=1, help="rounds per case (sides take turns); best of N kept")
    ap.add_argument("--out", default=str(HERE / "results" / f"reduce-{today}.json"))
    ap.add_argument("--gammapy-python", default=str(default_gammapy_python()))
    ap.add_argument("--gcxr-python", default=str(default_gcxr_python()))
    ap.add_argument("--timeout", type=float, default=None, help="kill a run after this many seconds")
    ap.add_argument("--baseline-src", default=None,
                    help="a checkout of an earlier gcxr (the folder holding gcxr/): also run it, as side "
                         "'gcxr-baseline', with PYTHONPATH pointing there")
    args = ap.parse_args(argv)
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    sides = [s.strip() for s in args.sides.split(",") if s.strip()]
    for c in cases:
        if c not in CASES:
            ap.error(f"unknown case {c!r}; choose from {', '.join(CASES)}")
    for s in sides:
        if s not in SIDES:
            ap.error(f"unknown side {s!r}; choose from {', '.join(SIDES)}")
    pythons = {"gammapy": Path(args.gammapy_python), "gcxr": Path(args.gcxr_python)}
    data = os.environ.get("GAMMAPY_DATA") or os.environ.get("GCXR_DATA") or str(SHARED / "data")
    env = {"GAMMAPY_DATA": data, "GCXR_DATA": os.environ.get("GCXR_DATA", data)}
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="gcxr-bench-reduce-") as tmpname:
        tmp = Path(tmpname)
        for case in cases:
            print(f"case {case}", file=sys.stderr, flush=True)
            cfg = CASES[case]
            inputs = {"config": cfg, "gcxr_config": cfg, "models": None, "joint": False, "no_fit": True}
            runs: dict = {}
            for rep in range(args.repeat):                  # sides interleaved: load changes hit all alike
                for side in sides:
                    if side == "gcxr" and args.baseline_src:
                        print("  (gcxr-baseline)", file=sys.stderr, flush=True)
                        runs.setdefault("gcxr-baseline", []).append(
                            _run_baseline(Path(args.baseline_src).resolve(), pythons["gcxr"], inputs, env, tmp,
                                          args.timeout))
                    runs.setdefault(side, []).append(run_side(side, pythons[side], inputs, 1, env, tmp, args.timeout))
            results[case] = {side: _best(rs) for side, rs in runs.items()}
    report = {
        "date": _dt.datetime.now().isoformat(timespec="seconds"),
        "host": {"platform": platform.platform(), "cpu_count": os.cpu_count(), "python": platform.python_version(),
                 "loadavg_at_end": os.getloadavg()},
        "settings": {"cases": {c: str(CASES[c]) for c in cases}, "sides": sides, "repeat": args.repeat,
                     "baseline_src": args.baseline_src, "PYTHONPATH": os.environ.get("PYTHONPATH"),
                     "gammapy_run": str(GAMMAPY_RUN), "GAMMAPY_DATA": data,
                     "pythons": {s: str(pythons[s]) for s in sides},
                     "gammapy_version": gammapy_version(pythons["gammapy"]) if "gammapy" in sides else None},
        "cases": results,
    }
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
