"""Side-by-side benchmark of the seed workflow: gammapy 2.1 vs gcxr, in one run.

Cases (CTA-1DC Galactic Centre reference in ``../shared/reference/gammapy-2.1-cta1dc-gc``):

* ``reduce``  - stacked data reduction only (``analysis_config.yaml``, no fit);
* ``stacked`` - reduction + stacked fit (``analysis_config_stacked_fit.yaml`` + ``seed_models_stacked.yaml``);
* ``joint``   - per-run reduction + joint fit (``analysis_config.yaml`` with ``stack: false``
  + ``seed_models_source.yaml``);
* ``diffuse`` - reduction + stacked fit of the tutorial's exercise "add a diffuse component"
  (``analysis_config_stacked_fit.yaml`` + ``exercise_diffuse_models.yaml``: the GC source,
  G0.9+0.1, the Fermi-LAT diffuse template x a norm, the background norm).

gammapy side: ``<gammapy python> ../shared/reference/gammapy_run.py CONFIG [--models M] [--joint] [--no-fit]``
(prints JSON with ``timings_s``). gcxr side: ``<gcxr python> -m gcxr run CONFIG [--models M] [--no-fit]
--out DIR`` (writes ``DIR/result.json`` with ``timings_s: {reduce, fit, total}``); for ``joint`` gcxr
gets a copy of the config with ``datasets.stack: false``. Each command runs in a fresh process
under ``measure.py`` (wall time, peak RSS of the process tree). With ``--repeat N`` the run with the
best wall time of N is kept. A failing side is reported, never raised.

    python benchmarks/bench_seed.py                                  # both sides, all cases
    python benchmarks/bench_seed.py --sides gammapy --out benchmarks/results/gammapy-seed-DATE.json
    python benchmarks/bench_seed.py --cases stacked --repeat 3 --gcxr-python .venv/bin/python
"""

from __future__ import annotations

import argparse
import datetime as _dt
import itertools
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import measure  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
GAMMAPY_RUN = SHARED / "reference" / "gammapy_run.py"
REFERENCE = SHARED / "reference" / "gammapy-2.1-cta1dc-gc"
CASES = ("reduce", "stacked", "joint", "diffuse")
SIDES = ("gammapy", "gcxr")
STAGES = ("reduce", "fit", "total")
_RUN_IDS = itertools.count()


def default_gammapy_python() -> Path:
    local = REPO / ".venv-gammapy" / "bin" / "python"
    return local if local.exists() else Path("/work/venv-gammapy/bin/python")


def default_gcxr_python() -> Path:
    local = REPO / ".venv" / "bin" / "python"
    return local if local.exists() else Path(sys.executable)


def case_inputs(case: str, reference: Path, tmp: Path) -> dict:
    """Config/models for one case; for ``joint`` also writes gcxr's ``stack: false`` config copy."""
    if case == "reduce":
        cfg = reference / "analysis_config.yaml"
        return {"config": cfg, "gcxr_config": cfg, "models": None, "joint": False, "no_fit": True}
    if case == "stacked":
        cfg = reference / "analysis_config_stacked_fit.yaml"
        return {"config": cfg, "gcxr_config": cfg, "models": reference / "seed_models_stacked.yaml",
                "joint": False, "no_fit": False}
    if case == "joint":
        cfg = reference / "analysis_config.yaml"
        data = yaml.safe_load(cfg.read_text())
        data.setdefault("datasets", {})["stack"] = False
        joint_cfg = tmp / "analysis_config_joint.yaml"
        joint_cfg.write_text(yaml.safe_dump(data, sort_keys=False))
        return {"config": cfg, "gcxr_config": joint_cfg, "models": reference / "seed_models_source.yaml",
                "joint": True, "no_fit": False}
    if case == "diffuse":          # the tutorial's exercise "add a diffuse component"
        cfg = reference / "analysis_config_stacked_fit.yaml"
        return {"config": cfg, "gcxr_config": cfg, "models": reference / "exercise_diffuse_models.yaml",
                "joint": False, "no_fit": False}
    raise ValueError(f"unknown case {case!r}; choose from {', '.join(CASES)}")


def gammapy_cmd(python: Path, inputs: dict) -> list[str]:
    cmd = [str(python), str(GAMMAPY_RUN), str(inputs["config"])]
    if inputs["models"] is not None:
        cmd += ["--models", str(inputs["models"])]
    if inputs["joint"]:
        cmd.append("--joint")
    if inputs["no_fit"]:
        cmd.append("--no-fit")
    return cmd


def gcxr_cmd(python: Path, inputs: dict, out_dir: Path) -> list[str]:
    cmd = [str(python), "-m", "gcxr", "run", str(inputs["gcxr_config"])]
    if inputs["models"] is not None:
        cmd += ["--models", str(inputs["models"])]
    if inputs["no_fit"]:
        cmd.append("--no-fit")
    return cmd + ["--out", str(out_dir)]


def run_side(side: str, python: Path, inputs: dict, repeat: int, env: dict, tmp: Path, timeout_s: float | None) -> dict:
    """Run one side ``repeat`` times; keep the best wall time, record all."""
    runs = []
    for i in range(repeat):
        if side == "gammapy":
            r = measure(gammapy_cmd(python, inputs), env=env, cwd=REPO, timeout_s=timeout_s)
        else:
            out_dir = tmp / f"gcxr-out-{next(_RUN_IDS)}"
            r = measure(gcxr_cmd(python, inputs, out_dir), env=env, cwd=REPO,
                        result_file=out_dir / "result.json", timeout_s=timeout_s)
        r["ok"] = r["rc"] == 0 and isinstance(r.get("stdout_json"), dict) and "error" not in r
        runs.append(r)
        status = "ok" if r["ok"] else f"FAILED (rc {r['rc']})"
        print(f"  {side:8s} run {i + 1}/{repeat}: {r['wall_s']:.2f} s wall, {r.get('cpu_s') or 0:.2f} s CPU, "
              f"{r['peak_rss_mb']:.0f} MB, {status}", file=sys.stderr, flush=True)
    good = [r for r in runs if r["ok"]]
    best = dict(min(good, key=lambda r: r["wall_s"]) if good else runs[-1])
    timings = (best.get("stdout_json") or {}).get("timings_s", {}) if best["ok"] else {}
    best["stages_s"] = {k: timings.get(k) for k in STAGES}
    if "import" in timings:
        best["stages_s"]["import"] = timings["import"]
    best["all_wall_s"] = [r["wall_s"] for r in runs]
    best["all_cpu_s"] = [r.get("cpu_s") for r in runs]
    best["all_peak_rss_mb"] = [r["peak_rss_mb"] for r in runs]
    if not best["ok"]:
        tail = (best.get("stderr_tail") or "").strip()
        last = tail.splitlines()[-1] if tail else ""
        if best["rc"] != 0 and last:
            summary = f"rc {best['rc']}: {last}"
        else:
            summary = best.get("error") or f"rc {best['rc']}: no JSON result"
        best["failure"] = summary
    return best


def _ratio(a, b):
    return a / b if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b > 0 else None


def _fmt(x, nd=2):
    return "-" if x is None else f"{x:.{nd}f}"


def table(results: dict) -> str:
    """Rows: each case x (reduce, fit, total in-process, wall); ratios are gammapy / gcxr."""
    head = f"{'case':8s} {'stage':7s} {'gammapy s':>10s} {'gcxr s':>9s} {'speedup':>8s} {'gammapy MB':>11s} {'gcxr MB':>9s} {'mem ratio':>9s}"
    lines = [head, "-" * len(head)]
    for case, sides in results.items():
        gp, gx = sides.get("gammapy"), sides.get("gcxr")
        rows = [*STAGES, "wall"]
        for stage in rows:
            def val(side):
                if side is None or not side.get("ok"):
                    return None
                return side["wall_s"] if stage == "wall" else side["stages_s"].get(stage)
            a, b = val(gp), val(gx)
            if stage == "fit" and a is None and b is None:
                continue
            mem = stage == "wall"
            ma = gp["peak_rss_mb"] if mem and gp and gp.get("ok") else None
            mb = gx["peak_rss_mb"] if mem and gx and gx.get("ok") else None
            lines.append(f"{case:8s} {stage:7s} {_fmt(a):>10s} {_fmt(b):>9s} {_fmt(_ratio(a, b)):>8s} "
                         f"{_fmt(ma, 0):>11s} {_fmt(mb, 0):>9s} {_fmt(_ratio(ma, mb)):>9s}")
        for name, side in (("gammapy", gp), ("gcxr", gx)):
            if side is not None and not side.get("ok"):
                lines.append(f"{case:8s} {name} FAILED: {str(side.get('failure', ''))[:110]}")
    lines.append("stage total = in-process total incl. imports; wall = measured around the process; "
                 "MB = peak RSS of the process tree; speedup and mem ratio = gammapy / gcxr")
    return "\n".join(lines)


def gammapy_version(python: Path) -> str | None:
    try:
        res = subprocess.run([str(python), "-c", "import gammapy; print(gammapy.__version__)"],
                             capture_output=True, text=True, timeout=120)
        return res.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def main(argv=None) -> int:
    today = _dt.date.today().isoformat()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--cases", default=",".join(CASES), help=f"comma list from {','.join(CASES)}")
    ap.add_argument("--sides", default=",".join(SIDES), help="comma list from gammapy,gcxr")
    ap.add_argument("--repeat", type=int, default=1, help="runs per case and side; the best wall time is kept")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / f"seed-{today}.json"))
    ap.add_argument("--gammapy-python", default=str(default_gammapy_python()))
    ap.add_argument("--gcxr-python", default=str(default_gcxr_python()))
    ap.add_argument("--reference", default=str(REFERENCE), help="folder with the seed configs and models")
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

    pythons = {"gammapy": Path(args.gammapy_python), "gcxr": Path(args.gcxr_python)}
    data = os.environ.get("GAMMAPY_DATA") or os.environ.get("GCXR_DATA") or str(SHARED / "data")
    env = {"GAMMAPY_DATA": data, "GCXR_DATA": os.environ.get("GCXR_DATA", data)}
    reference = Path(args.reference)

    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="gcxr-bench-") as tmpname:
        tmp = Path(tmpname)
        for case in cases:
            print(f"case {case}", file=sys.stderr, flush=True)
            inputs = case_inputs(case, reference, tmp)
            results[case] = {}
            for side in sides:
                results[case][side] = run_side(side, pythons[side], inputs, args.repeat, env, tmp, args.timeout)

    report = {
        "date": _dt.datetime.now().isoformat(timespec="seconds"),
        "host": {"platform": platform.platform(), "cpu_count": os.cpu_count(), "python": platform.python_version()},
        "settings": {"cases": cases, "sides": sides, "repeat": args.repeat, "reference": str(reference),
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
