"""Validation set: analyses gcxr was not tuned on, gammapy 2.1 and gcxr side by side.

Cases (``benchmarks/validation/<case>/config.yaml`` + ``models.yaml``; descriptions in
``docs/performance.md``, section "Validation set"):

* ``hess_msh1552``       - H.E.S.S. DR1 run 20151, MSH 15-52: Gaussian + power law, icrs, Dec -59;
* ``hess_pks2155``       - H.E.S.S. DR1, 15 runs on PKS 2155-304: point + log-parabola, icrs, stacked;
* ``sim_cta_disk_gauss`` - simulated, CTA-1DC IRFs, 8 runs: a disk (PL) and a Gaussian (ECPL), galactic;
* ``sim_hess_south``     - simulated with the IRFs of H.E.S.S. run 23736, 8 runs at Dec -70: a Gaussian, icrs;
* ``sim_template``       - simulated, parametric IRFs, 6 runs: a 2D template map (frozen) + power law.

The simulated stores are made first (``validation/make_stores.py``, fixed seeds, untimed) into
``$GCXR_VALIDATION_STORES`` (default ``benchmarks/validation/_stores``). Then for every case, in
fresh processes under ``measure.py``: gammapy (``../shared/reference/gammapy_run.py CONFIG --models M``)
and gcxr (``python -m gcxr run CONFIG --models M --out DIR``). Recorded per side: stage times
(reduce, fit, total, from the process itself), wall time and CPU time of the process, peak RSS of the
process tree, calls (nfev), statistic, fit success; and for every parameter free in gammapy's fit, both
values and errors, the difference in units of gammapy's error and the error ratio gcxr/gammapy.
A failing side is reported, never raised.

    python benchmarks/bench_validation.py                                   # both sides, all cases
    python benchmarks/bench_validation.py --cases hess_msh1552,sim_template --repeat 3
    python benchmarks/bench_validation.py --sides gcxr --gammapy-from benchmarks/results/validation-DATE.json
    python benchmarks/bench_validation.py --cases sim_cta_disk_gauss \\
        --models-override sim_cta_disk_gauss=benchmarks/validation/sim_cta_disk_gauss/models_shell.yaml
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent / "validation"))
import bench_seed  # noqa: E402
import make_stores  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
GAMMAPY_RUN = SHARED / "reference" / "gammapy_run.py"
VALIDATION = REPO / "benchmarks" / "validation"
CASES = ("hess_msh1552", "hess_pks2155", "sim_cta_disk_gauss", "sim_hess_south", "sim_template")
SIDES = ("gammapy", "gcxr")
STAGES = ("reduce", "fit", "total")


def default_gammapy_python() -> Path:
    """``$GAMMAPY_PYTHON``, else the first gammapy venv found next to the repository."""
    if os.environ.get("GAMMAPY_PYTHON"):
        return Path(os.environ["GAMMAPY_PYTHON"])
    for cand in (REPO / ".venv-gammapy", REPO.parent / "main" / ".venv-gammapy", REPO.parent / "venv-gammapy"):
        if (cand / "bin" / "python").exists():
            return cand / "bin" / "python"
    return REPO / ".venv-gammapy" / "bin" / "python"


def default_gcxr_python() -> Path:
    local = REPO / ".venv" / "bin" / "python"
    return local if local.exists() else Path(sys.executable)


def case_inputs(case: str, models_override: dict[str, Path] | None = None) -> dict:
    """Config and models of one case (the models file may be overridden)."""
    folder = VALIDATION / case
    cfg, models = folder / "config.yaml", folder / "models.yaml"
    if models_override and case in models_override:
        models = Path(models_override[case])
    for p in (cfg, models):
        if not p.is_file():
            raise FileNotFoundError(f"validation case {case!r}: {p} not found")
    return {"config": cfg, "gcxr_config": cfg, "models": models, "joint": False, "no_fit": False,
            "simulated": case in make_stores.SIMULATIONS}


def _summary_of(result: dict | None) -> dict:
    """nfev, statistic, success and the parameters of a result.json-like dict."""
    fit = (result or {}).get("fit") or {}
    return {"success": fit.get("success"), "nfev": fit.get("nfev"), "total_stat": fit.get("total_stat"),
            "parameters": fit.get("parameters") or [], "datasets": (result or {}).get("datasets") or []}


def run_side(side: str, python: Path, inputs: dict, repeat: int, env: dict, tmp: Path, timeout_s: float | None) -> dict:
    """bench_seed's runner (fresh processes, best wall time of ``repeat``), plus the fit summary;
    the bulky stdout JSON is dropped once summarised."""
    best = bench_seed.run_side(side, python, inputs, repeat, env, tmp, timeout_s)
    best.update(_summary_of(best.get("stdout_json") if best["ok"] else None))
    best.pop("stdout_json", None)
    return best


def compare(gp: dict | None, gx: dict | None) -> dict:
    """Parameter-by-parameter comparison, in units of gammapy's error, over gammapy's free parameters."""
    if not (gp and gp.get("ok") and gx and gx.get("ok")):
        return {"parameters": [], "max_abs_delta_sigma": None, "worst": None}
    mine = {(p["model"], p["name"]): p for p in gx["parameters"]}
    rows, worst = [], None
    for p in gp["parameters"]:
        if p.get("frozen"):
            continue
        key = (p["model"], p["name"])
        q = mine.get(key)
        row = {"model": p["model"], "name": p["name"], "unit": p.get("unit", ""),
               "gammapy": p["value"], "gammapy_error": p["error"],
               "gcxr": None if q is None else q["value"], "gcxr_error": None if q is None else q["error"]}
        err = p["error"]
        if q is None:
            row["missing_in_gcxr"] = True
        elif isinstance(err, (int, float)) and math.isfinite(err) and err > 0:
            row["delta_sigma"] = (q["value"] - p["value"]) / err
            row["error_ratio"] = q["error"] / err if q["error"] is not None else None
            if worst is None or abs(row["delta_sigma"]) > abs(worst["delta_sigma"]):
                worst = row
        rows.append(row)
    def _sum(side, key):
        vals = [d.get(key) for d in side.get("datasets", [])]
        return float(sum(vals)) if vals and all(isinstance(v, (int, float)) for v in vals) else None

    return {"parameters": rows,
            "counts": {"gammapy": _sum(gp, "counts"), "gcxr": _sum(gx, "counts")},
            "background": {"gammapy": _sum(gp, "background"), "gcxr": _sum(gx, "background")},
            "max_abs_delta_sigma": None if worst is None else abs(worst["delta_sigma"]),
            "worst": None if worst is None else f"{worst['model']}.{worst['name']}"}


def _ratio(a, b):
    return a / b if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b > 0 else None


def _fmt(x, nd=2):
    if x is None:
        return "-"
    if isinstance(x, float) and not math.isfinite(x):
        return "nan"
    return f"{x:.{nd}f}"


def table(results: dict) -> str:
    """One block per case: stage rows with gammapy/gcxr ratios, then fit agreement."""
    head = (f"{'case':19s} {'stage':6s} {'gammapy':>9s} {'gcxr':>8s} {'ratio':>7s}")
    lines = [head, "-" * len(head)]
    for case, entry in results.items():
        gp, gx = entry.get("gammapy"), entry.get("gcxr")

        def val(side, stage):
            if side is None or not side.get("ok"):
                return None
            if stage == "wall":
                return side["wall_s"]
            if stage == "cpu":
                return side.get("cpu_s")
            if stage == "MB":
                return side["peak_rss_mb"]
            return side["stages_s"].get(stage)

        for stage in (*STAGES, "wall", "cpu", "MB"):
            a, b = val(gp, stage), val(gx, stage)
            nd = 0 if stage == "MB" else 2
            lines.append(f"{case:19s} {stage:6s} {_fmt(a, nd):>9s} {_fmt(b, nd):>8s} {_fmt(_ratio(a, b)):>7s}")
        cmp_ = entry.get("comparison") or {}
        if gp and gp.get("ok") and gx and gx.get("ok"):
            def stat(side):
                return _fmt(side.get("total_stat"), 2)
            c, b = cmp_.get("counts", {}), cmp_.get("background", {})
            lines.append(f"{case:19s} data   counts {_fmt(c.get('gammapy'), 0)} / {_fmt(c.get('gcxr'), 0)}, "
                         f"background {_fmt(b.get('gammapy'), 1)} / {_fmt(b.get('gcxr'), 1)} (in the safe mask)")
            lines.append(f"{case:19s} fit    nfev {gp.get('nfev')} / {gx.get('nfev')}, success "
                         f"{gp.get('success')} / {gx.get('success')}, stat {stat(gp)} / {stat(gx)} "
                         f"(diff {_fmt((gx.get('total_stat') or 0) - (gp.get('total_stat') or 0), 2)}), "
                         f"max |d|/sigma {_fmt(cmp_.get('max_abs_delta_sigma'), 3)} ({cmp_.get('worst')})")
        for name, side in (("gammapy", gp), ("gcxr", gx)):
            if side is not None and not side.get("ok"):
                lines.append(f"{case:19s} {name} FAILED: {str(side.get('failure', ''))[:150]}")
    lines.append("stages from the process (total incl. imports); wall/cpu measured around the process "
                 "(cpu = user+sys); MB = peak RSS of the process tree; ratio = gammapy / gcxr; "
                 "fit line: gammapy / gcxr, d = (gcxr - gammapy) / gammapy's error")
    return "\n".join(lines)


def parameter_table(results: dict) -> str:
    """Every free parameter of every case, both sides."""
    head = f"{'case':19s} {'parameter':22s} {'gammapy':>13s} {'+-':>10s} {'gcxr':>13s} {'+-':>10s} {'d/sigma':>8s} {'err ratio':>9s}"
    lines = [head, "-" * len(head)]
    for case, entry in results.items():
        for row in (entry.get("comparison") or {}).get("parameters", []):
            lines.append(f"{case:19s} {row['model'] + '.' + row['name']:22s} {row['gammapy']:13.6g} "
                         f"{row['gammapy_error']:10.3g} {_fmt_g(row['gcxr']):>13s} {_fmt_g(row['gcxr_error']):>10s} "
                         f"{_fmt(row.get('delta_sigma'), 3):>8s} {_fmt(row.get('error_ratio'), 3):>9s}")
    return "\n".join(lines)


def _fmt_g(x):
    return "-" if x is None else f"{x:.6g}"


def gammapy_version(python: Path) -> str | None:
    try:
        res = subprocess.run([str(python), "-c", "import gammapy; print(gammapy.__version__)"],
                             capture_output=True, text=True, timeout=120)
        return res.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _parse_overrides(items: list[str], ap) -> dict[str, Path]:
    out = {}
    for item in items:
        case, sep, path = item.partition("=")
        if not sep or case not in CASES:
            ap.error(f"--models-override expects CASE=PATH with CASE in {', '.join(CASES)}, got {item!r}")
        out[case] = Path(path).resolve()
    return out


def main(argv=None) -> int:
    today = _dt.date.today().isoformat()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--cases", default=",".join(CASES), help=f"comma list from {','.join(CASES)}")
    ap.add_argument("--sides", default=",".join(SIDES), help="comma list from gammapy,gcxr")
    ap.add_argument("--repeat", type=int, default=1, help="runs per case and side; the best wall time is kept")
    ap.add_argument("--gammapy-from", default=None, metavar="FILE",
                    help="take the gammapy side from a saved validation JSON instead of running it")
    ap.add_argument("--models-override", action="append", default=[], metavar="CASE=PATH",
                    help="fit this models YAML instead of the case's models.yaml")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / f"validation-{today}.json"))
    ap.add_argument("--gammapy-python", default=str(default_gammapy_python()))
    ap.add_argument("--gcxr-python", default=str(default_gcxr_python()))
    ap.add_argument("--stores", default=None, help="folder of the simulated stores "
                    "(default $GCXR_VALIDATION_STORES or benchmarks/validation/_stores)")
    ap.add_argument("--timeout", type=float, default=None, help="kill a run after this many seconds")
    args = ap.parse_args(argv)

    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    sides = [s.strip() for s in args.sides.split(",") if s.strip()]
    for c in cases:
        if c not in CASES:
            ap.error(f"unknown case {c!r}; choose from {', '.join(CASES)}")
    for s in sides:
        if s not in SIDES:
            ap.error(f"unknown side {s!r}; choose from {', '.join(SIDES)}")
    if args.repeat < 1:
        ap.error("--repeat must be >= 1")
    overrides = _parse_overrides(args.models_override, ap)
    saved_gammapy = {}
    if args.gammapy_from:
        path = Path(args.gammapy_from)
        try:
            saved = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            ap.error(f"--gammapy-from {path}: cannot read a validation JSON ({exc})")
        saved_gammapy = {c: e["gammapy"] for c, e in saved.get("cases", {}).items() if e.get("gammapy")}
        missing = [c for c in cases if c not in saved_gammapy]
        if missing:
            ap.error(f"--gammapy-from {path}: no gammapy result for case(s) {', '.join(missing)}")
        sides = [s for s in sides if s != "gammapy"]

    pythons = {"gammapy": Path(args.gammapy_python), "gcxr": Path(args.gcxr_python)}
    data = os.environ.get("GAMMAPY_DATA") or os.environ.get("GCXR_DATA") or str(SHARED / "data")
    stores = Path(args.stores or make_stores.stores_dir()).resolve()
    env = {"GAMMAPY_DATA": data, "GCXR_DATA": os.environ.get("GCXR_DATA", data),
           "GCXR_VALIDATION_STORES": str(stores)}
    os.environ.update(env)             # make_stores reads them

    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="gcxr-validation-") as tmpname:
        tmp = Path(tmpname)
        for case in cases:
            print(f"case {case}", file=sys.stderr, flush=True)
            inputs = case_inputs(case, overrides)
            entry: dict = {"config": str(inputs["config"].relative_to(REPO)),
                           "models": str(inputs["models"].relative_to(REPO)) if inputs["models"].is_relative_to(REPO)
                           else str(inputs["models"])}
            if inputs["simulated"]:
                try:
                    make_stores.make_store(case, stores, python=str(pythons["gcxr"]))
                except Exception as exc:   # noqa: BLE001 - reported as a failure of the case
                    entry["store_error"] = str(exc)
                    print(f"  store FAILED: {exc}", file=sys.stderr, flush=True)
            if case in saved_gammapy:
                entry["gammapy"] = dict(saved_gammapy[case], reused_from=str(args.gammapy_from))
            for side in sides:
                entry[side] = run_side(side, pythons[side], inputs, args.repeat, env, tmp, args.timeout)
            entry["comparison"] = compare(entry.get("gammapy"), entry.get("gcxr"))
            results[case] = entry

    report = {
        "date": _dt.datetime.now().isoformat(timespec="seconds"),
        "host": {"platform": platform.platform(), "cpu_count": os.cpu_count(), "python": platform.python_version(),
                 "load_avg_at_end": list(os.getloadavg())},
        "settings": {"cases": cases, "sides": sides, "repeat": args.repeat, "gammapy_from": args.gammapy_from,
                     "models_override": {k: str(v) for k, v in overrides.items()},
                     "gammapy_run": str(GAMMAPY_RUN), "GAMMAPY_DATA": data, "stores": str(stores),
                     "pythons": {s: str(pythons[s]) for s in SIDES},
                     "gammapy_version": gammapy_version(pythons["gammapy"]) if "gammapy" in sides else None},
        "cases": results,
    }
    text = table(results)
    ptext = parameter_table(results)
    report["table"] = text.splitlines()
    report["parameter_table"] = ptext.splitlines()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(text)
    print()
    print(ptext)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
