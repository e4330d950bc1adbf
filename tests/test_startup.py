"""Start-up cost: what ``import gcxr``, ``gcxr --help`` and a whole ``gcxr run`` import.

Each case runs in a fresh interpreter (this process has imported everything already) and
prints the heavy top-level packages found in ``sys.modules``.  No timings are asserted here:
they are measured in benchmarks/ and recorded in docs/performance.md ("Start-up and the
whole process").
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import gcxr

from conftest import SMALL_STORE_CONFIG

REPO = Path(gcxr.__file__).resolve().parents[1]

#: never needed to import gcxr or to parse its command line
HEAVY_AT_IMPORT = {"scipy", "matplotlib", "holoviews", "hvplot", "bokeh", "datashader", "xarray", "dask", "astropy"}
#: never needed by a reduction or a fit (plots and notebooks only; jinja2: dask's HTML reprs)
HEAVY_IN_RUN = {"scipy", "matplotlib", "holoviews", "hvplot", "bokeh", "datashader", "jinja2"}

_PRINT_HEAVY = ("import json, sys; print(json.dumps(sorted(m for m in sys.modules "
                "if m.split('.')[0] in {names!r})))")


def python(code: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``python -c code args`` in a fresh interpreter that imports this checkout's gcxr."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])])
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env,
                          cwd=cwd or REPO, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def last_json(proc: subprocess.CompletedProcess):
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_import_gcxr_is_light():
    proc = python("import gcxr; " + _PRINT_HEAVY.format(names=HEAVY_AT_IMPORT))
    assert last_json(proc) == []


def test_help_and_version_are_light():
    code = ("import sys; from gcxr.cli import main\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n" + _PRINT_HEAVY.format(names=HEAVY_AT_IMPORT))
    for flag in ("--help", "--version"):
        assert last_json(python(code, flag)) == [], flag


def test_version():
    from importlib.metadata import PackageNotFoundError, version
    try:
        expected = version("gcxr")
    except PackageNotFoundError:
        expected = gcxr.__version__
    proc = subprocess.run([sys.executable, "-m", "gcxr", "--version"], capture_output=True, text=True, cwd=REPO,
                          env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"gcxr {expected}"


def test_collector_left_alone_in_process_and_frozen_as_the_program():
    code = ("import gc, json, sys\nfrom gcxr.cli import main\nout = []\n"
            "for argv in (['--version'], None):\n"
            "    sys.argv = ['gcxr', '--version']\n"
            "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
            "    out.append([gc.isenabled(), gc.get_freeze_count() > 0])\n"
            "print(json.dumps(out))")
    in_process, program = last_json(python(code))
    assert in_process == [True, False]          # main([...]): the caller's collector is untouched
    assert program == [True, True]              # main(): on again at the end, everything frozen


def test_lazy_api_and_accessor():
    """The public names resolve on first use; ``gcxr.fit`` stays the function; ds.gcxr is registered
    as soon as a module that makes datasets is imported."""
    code = ("import gcxr, sys, json\n"
            "missing = [n for n in gcxr.__all__ if n not in dir(gcxr)]\n"
            "from gcxr import Analysis, AnalysisConfig, SkyGeom, fit, plot, estimators\n"
            "import gcxr.fit\n"
            "import xarray as xr\n"
            "print(json.dumps([missing, Analysis.__module__, callable(gcxr.fit), gcxr.fit is fit,\n"
            "                  plot.__name__, hasattr(xr.Dataset(), 'gcxr')]))")
    missing, module, fit_callable, same, plot_name, accessor = last_json(python(code))
    assert missing == [] and module == "gcxr.analysis"
    assert fit_callable and same and plot_name == "gcxr.plot" and accessor
    proc = python("import gcxr\ntry:\n    gcxr.no_such_name\nexcept AttributeError as e:\n    print(e)")
    assert "no_such_name" in proc.stdout


# --------------------------------------------------------------------------- a whole run
CONFIG = SMALL_STORE_CONFIG       # conftest: a 3 x 3 deg stacked analysis of a simulated store
POINT = """
-   name: src
    type: SkyModel
    spectral: {type: PowerLawSpectralModel, parameters: [{name: index, value: 2.3}]}
    spatial:
        type: PointSpatialModel
        frame: galactic
        parameters: [{name: lon_0, value: -0.06, unit: deg}, {name: lat_0, value: -0.04, unit: deg}]
"""
GAUSS = """
-   name: ext
    type: SkyModel
    spectral: {type: PowerLawSpectralModel, parameters: [{name: index, value: 2.5}]}
    spatial:
        type: GaussianSpatialModel
        frame: galactic
        parameters: [{name: lon_0, value: 0.5, unit: deg}, {name: lat_0, value: 0.3, unit: deg},
                     {name: sigma, value: 0.2, unit: deg}]
"""


@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory):
    from gcxr.simulate import simulate_datastore
    out = tmp_path_factory.mktemp("startup") / "store"
    simulate_datastore(out, pointings=[(0.0, 0.0)], livetime=120.0, seed=5, quiet=True)
    return out


@pytest.mark.parametrize("models", [
    pytest.param(POINT, id="point"),
    pytest.param(POINT + GAUSS, id="point+gaussian"),      # extended sources: FFTs through numpy
])
def test_reduction_and_fit_import_no_plotting_or_scipy(tiny_store, tmp_path, models):
    (tmp_path / "config.yaml").write_text(CONFIG.format(store=tiny_store))
    (tmp_path / "models.yaml").write_text("components:" + models)
    out = tmp_path / "out"
    # as the program does it (argv None: the collector is off during the imports, then frozen)
    code = ("import gc, sys; sys.argv[0] = 'gcxr'; from gcxr.cli import main\n"
            "assert main() == 0 and gc.isenabled()\n" + _PRINT_HEAVY.format(names=HEAVY_IN_RUN))
    proc = python(code, "run", str(tmp_path / "config.yaml"), "--models", str(tmp_path / "models.yaml"),
                  "--out", str(out), "--quiet")
    result = json.loads((out / "result.json").read_text())
    assert result["fit"]["success"] and len(result["fit"]["parameters"]) > 2
    assert set(result["timings_s"]) == {"import", "reduce", "fit", "write", "total"}   # the manifest, written last
    assert set(result["outputs"]) == {"datasets.nc", "fit_result.nc", "models_bestfit.yaml",
                                      "models_bestfit_covariance.dat"}
    assert sorted(p.name for p in out.iterdir()) == ["datasets.nc", "fit_result.nc", "models_bestfit.yaml",
                                                     "models_bestfit_covariance.dat", "result.json"]
    assert last_json(proc) == []
