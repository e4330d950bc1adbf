"""Command line: ``gcxr run | demo | simulate | download``."""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from contextlib import contextmanager
from pathlib import Path
import atexit
import gc

from . import __version__

__all__ = ["main", "version", "run_analysis"]

# Start-up: this module imports only the standard library; every command imports what it needs
# inside its function, after the arguments are parsed, so ``gcxr --help`` and ``gcxr --version``
# stay fast (docs/performance.md, "Start-up and the whole process").


def version() -> str:
    """gcxr's version from the installed package metadata (``gcxr.__version__`` if not installed)."""
    from importlib.metadata import PackageNotFoundError  # deferred: importlib.metadata takes ~38 ms to import
    from importlib.metadata import version as _dist_version  # deferred: importlib.metadata takes ~38 ms to import
    try:
        return _dist_version("gcxr")
    except PackageNotFoundError:
        return __version__


class _VersionAction(argparse.Action):
    """``--version``: like argparse's, but reads the metadata only when asked."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings=option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"gcxr {version()}")
        parser.exit()


def _scheduler(spec: str | None, timeout: float | None = None):
    """(client, cluster, description) for a --scheduler SPEC; None client means in-process threads."""
    from .cluster import DEFAULT_CONNECT_TIMEOUT, make_client  # deferred: keeps gcxr --help light (gcxr.cluster)
    return make_client(spec, DEFAULT_CONNECT_TIMEOUT if timeout is None else timeout)


@contextmanager
def _hidden_modules(*names: str):
    """Make ``import NAME`` fail (ImportError) inside the block, for names not yet imported."""
    hidden = [n for n in names if n not in sys.modules]
    for n in hidden:
        sys.modules[n] = None       # the import system raises ModuleNotFoundError for a None entry
    try:
        yield
    finally:
        for n in hidden:
            if sys.modules.get(n, 0) is None:
                del sys.modules[n]


def import_dask_array_without_scipy():
    """Import ``dask.array`` without the scipy modules it pulls in at import time.

    deferred: heavy import.  ``dask.array`` imports ``scipy.sparse`` (to register sparse matrices
    as chunk types) and ``scipy.fftpack`` (to recognise its FFTs) whenever scipy is installed:
    ~0.3-0.5 s of a ``gcxr run`` that uses neither.  Both imports are optional in dask (guarded by
    ``except ImportError``), so scipy is hidden while dask.array is imported, then made importable
    again: code that needs scipy later imports it as usual.  The only effect is that dask in this
    process does not treat scipy sparse matrices as chunks - gcxr never makes such arrays.  Used
    by the command line only (a process gcxr owns); ``import gcxr`` in a user's session leaves
    dask alone.  Does nothing when dask.array or scipy is already imported.

    jinja2 is hidden too: ``dask.delayed`` imports it (through ``dask.widgets``, which guards the
    import) only to render HTML reprs in notebooks, ~20-40 ms of a ``gcxr run``; dask's widgets
    then stay without templates in this process, and everything else (distributed's dashboard
    included) imports jinja2 as usual afterwards.
    """
    if "dask.array" in sys.modules or "scipy" in sys.modules:
        return
    with _hidden_modules("scipy", "jinja2"):
        import dask.array  # noqa: F401


# --------------------------------------------------------------------------- exit status
#: one exit status per kind of failure (``gcxr run --help``, README "Use", docs/robustness.md)
EXIT_OK = 0
EXIT_BUG = 1            # an unexpected error: a traceback (please report it)
EXIT_USAGE = 2          # command line or analysis configuration (ConfigError), missing files named there
EXIT_DATA = 3           # DL3 data (DataStoreError)
EXIT_MODEL = 4          # models YAML (ModelError)
EXIT_FIT = 5            # the fit did not converge; every output is written and says so
EXIT_OUTPUT = 6         # the outputs cannot be written (OutputError: --out, disk full)
# 128 + N when ended by signal N: 130 SIGINT (Ctrl-C), 143 SIGTERM
EXIT_INTERRUPTED = (128 + signal.SIGINT, 128 + signal.SIGTERM)

EXIT_STATUS_HELP = """exit status:
  0    success
  1    unexpected error (a bug: the traceback is printed; please report it)
  2    usage or configuration error (arguments, config YAML, --models missing)
  3    data error (DL3 files: index, events, GTI, IRFs)
  4    model error (models YAML: unknown type or parameter, bounds min > max, file missing)
  5    the fit did not converge (all outputs are written, with success: false)
  6    output error (--out a file, not writable, disk full)
  130  interrupted by SIGINT (Ctrl-C)  } --out keeps its previous outputs (or, if the
  143  interrupted by SIGTERM          } swap had begun, the complete new ones)
Everything is checked (config, models, --out) before the reduction starts."""


class UsageError(ValueError):
    """A command line that cannot work (e.g. ``gcxr run`` without ``--models`` and without ``--no-fit``)."""


def _exit_status(err: BaseException) -> int | None:
    """The exit status for an error of gcxr's own kinds; None for anything else (a bug)."""
    from .config import ConfigError  # deferred: keeps gcxr --help light (pulls in pydantic, astropy)
    from .datastore import DataStoreError  # deferred: keeps gcxr --help light (pulls in astropy.io.fits)
    from .models import ModelError  # deferred: keeps gcxr --help light (pulls in gcxr.models, numpy)
    from .outputs import OutputError  # deferred: keeps gcxr --help light (gcxr.outputs)
    for kind, status in ((DataStoreError, EXIT_DATA), (ModelError, EXIT_MODEL), (OutputError, EXIT_OUTPUT),
                         (ConfigError, EXIT_USAGE), (FileNotFoundError, EXIT_USAGE), (ValueError, EXIT_USAGE)):
        if isinstance(err, kind):
            return status
    return None


# --------------------------------------------------------------------------- run
def _prepare_run(config, models, out, no_fit, datasets, quiet, outputs):
    """Everything that can be checked before the reduction: the config, the models, ``--out``.

    Returns the :class:`~gcxr.analysis.Analysis` (no client yet) with its models read.
    """
    from .analysis import Analysis  # deferred: keeps gcxr --help light (pulls in xarray, dask, astropy)
    ana = Analysis(config, progress=False if quiet else None)
    if not no_fit:
        if not models and ana.config.general.models_file is None:
            raise UsageError("--models MODELS (or general.models_file in the config) is required unless "
                             "--no-fit is given")
        ana.read_models(models)             # the models and their template files, before reducing anything
    if datasets:
        ana.read_datasets(datasets)         # --datasets: fit these; no run is selected, read or reduced
    outputs.open(_output_dir(out, ana.config))
    return ana


def cmd_run(args) -> int:
    return run_analysis(args.config, models=args.models, out=args.out, no_fit=args.no_fit,
                        datasets=getattr(args, "datasets", None), scheduler=args.scheduler,
                        scheduler_timeout=getattr(args, "scheduler_timeout", None), quiet=args.quiet,
                        point_source_rendering=args.point_source_rendering,
                        fit_placement=getattr(args, "fit_placement", "auto"))


def run_analysis(config, models=None, out=None, no_fit: bool = False, datasets=None, scheduler: str = "threads",
                 scheduler_timeout: float | None = None, quiet: bool = False,
                 point_source_rendering: str = "tent", fit_placement: str = "auto") -> int:
    """What ``gcxr run`` does once its arguments are parsed: reduce, fit, write the outputs as one set.

    Parameters
    ----------
    config : str or Path
        The AnalysisConfig YAML.
    models : str or Path, optional
        The models YAML (default: ``general.models_file`` of the config).
    out : str or Path, optional
        The output folder (default: ``general.outdir`` if set, else ``gcxr-out``).
    no_fit : bool
        Reduce only.
    datasets : str or Path, optional
        Fit the datasets of this file instead of reducing.
    scheduler : str
        ``threads``, ``local:N``, a scheduler address or a scheduler file.
    scheduler_timeout : float, optional
        Seconds to wait for a running scheduler.
    quiet : bool
        No progress or summary output.
    point_source_rendering : {'tent', 'cubic', 'keys'}
        Pixel weights of point sources.
    fit_placement : {'auto', 'cluster'}
        With a cluster, where the fit runs (:meth:`gcxr.analysis.Analysis.run_fit`).

    Returns
    -------
    int
        The exit status (``EXIT_OK`` or ``EXIT_FIT``); errors are raised, as :func:`main` maps them.
    """
    t_start = time.perf_counter()
    import_dask_array_without_scipy()
    from .analysis import Analysis  # noqa: F401  deferred: heavy import (after the arguments are parsed)
    from .outputs import OutputSet, handle_signals  # deferred: keeps gcxr --help light (gcxr.outputs)
    from .progress import set_quiet  # deferred: keeps gcxr --help light (pulls in gcxr.progress)
    _imports_done()
    t_import = time.perf_counter() - t_start
    set_quiet(quiet)
    outputs = OutputSet()                   # its folder is checked and opened by _prepare_run
    with handle_signals(outputs):           # SIGINT/SIGTERM: a clean exit, --out as it was (gcxr.outputs)
        ana = _prepare_run(config, models, out, no_fit, datasets, quiet, outputs)
        client, cluster, sched = _scheduler(scheduler, scheduler_timeout)
        try:
            ana.client = client
            if not datasets:
                ana.get_observations()
                ana.get_datasets()
            if not no_fit:
                ana.run_fit(point_weights=point_source_rendering, placement=fit_placement)
            result = ana.result(t_import=t_import, scheduler=sched)
            # written while the cluster is up: run datasets kept on the workers stream from there
            paths = ana.write(None, outputs, result=result, t_start=t_start)
        finally:
            if client is not None:
                client.close()
            if cluster is not None:
                cluster.close()
    if not quiet:
        _print_summary(ana.manifest, paths, time.perf_counter() - t_start)
    fit = result["fit"]
    if fit is not None and not fit["success"]:
        print(f"gcxr run: the fit did not converge ({fit.get('message', '')}); outputs written with "
              f"success: false", file=sys.stderr)
        return EXIT_FIT
    return EXIT_OK


def _print_summary(result, paths, elapsed):
    for d in result["datasets"]:
        print(f"dataset {d['name']}: counts {d['counts']:.0f}, background {d['background']:.1f}, "
              f"bins {d['n_bins']}, fit bins {d['n_fit_bins']}")
    fit = result["fit"]
    if fit:
        print(f"fit: success={fit['success']} nfev={fit['nfev']} total_stat={fit['total_stat']:.3f}")
        for p in fit["parameters"]:
            if not p["frozen"]:
                print(f"  {p['model']:>16s}.{p['name']:<10s} {p['value']: .5g} +- {p['error']:.3g} {p['unit']}")
    t = result["timings_s"]
    print(f"timings: import {t['import']:.2f} s, reduce {t['reduce']:.2f} s, fit {t['fit']:.2f} s, "
          f"write {t.get('write', 0.0):.2f} s, total {elapsed:.2f} s")
    print("outputs:")
    for p in paths:
        print(f"  {p}")


# --------------------------------------------------------------------------- simulate
def _seconds(text: str) -> float:
    """'1800', '1800 s', '30 min', '0.5 h' -> seconds."""
    import astropy.units as u  # deferred: heavy import (astropy)
    try:
        q = u.Quantity(text)
    except (TypeError, ValueError):
        raise ValueError(f"--livetime: cannot read {text!r} as a duration (e.g. 1800, '30 min', '0.5 h')") from None
    return float(q.value if q.unit == u.dimensionless_unscaled else q.to_value("s"))


def _pointing(text: str) -> tuple[float, float]:
    try:
        lon, lat = (float(x) for x in text.replace(":", ",").split(","))
    except ValueError:
        raise ValueError(f"--pointings: expected LON,LAT in deg (e.g. 0,1 or 359.5,-1), got {text!r}") from None
    return lon, lat


def _refuse_existing_store(out: Path, overwrite: bool) -> None:
    """A UsageError if ``out`` holds a data store (its index files) and ``overwrite`` is not set."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: exists and is not a folder")
    found = sorted(p.name for p in out.glob("*-index.fits*")) if out.is_dir() else []
    if found and not overwrite:
        raise UsageError(f"--out {out}: already holds a data store ({', '.join(found)}); pass --overwrite to "
                         f"replace it, or choose another folder")


def cmd_simulate(args) -> int:
    if args.survey is not None:
        return _simulate_survey(args)
    from .progress import set_quiet  # deferred: keeps gcxr --help light (pulls in gcxr.progress)
    from .simulate import DEFAULT_POINTINGS, ParametricIRF, simulate_datastore  # deferred: gcxr --help stays light
    _imports_done()
    set_quiet(args.quiet)
    _refuse_existing_store(Path(args.out), args.overwrite)
    pointings = [_pointing(p) for p in args.pointings] if args.pointings else list(DEFAULT_POINTINGS)
    livetime = [_seconds(t) for t in args.livetime]
    if len(livetime) not in (1, len(pointings)):
        raise ValueError(f"--livetime: give one value or one per pointing ({len(pointings)}), got {len(livetime)}")
    summary = simulate_datastore(args.out, pointings=pointings, livetime=livetime if len(livetime) > 1 else livetime[0],
                                 models=args.models, irf=args.irf, seed=args.seed, frame=args.frame,
                                 deadc=args.deadc, parametric=ParametricIRF(psf_class=args.psf_class))
    if not args.quiet:
        for r in summary["runs"]:
            parts = ", ".join(f"{k} {v}" for k, v in r["counts"].items())
            print(f"run {r['obs_id']}: RA {r['ra_pnt']:.3f} Dec {r['dec_pnt']:.3f}, livetime {r['livetime']:.0f} s, "
                  f"{r['n_events']} events ({parts})")
        print(f"GADF data store written to {summary['out_dir']} (seed {summary['seed']}, IRF {summary['irf']})")
    return 0


def _simulate_survey(args) -> int:
    """``gcxr simulate --survey N_RUNS``: the Galactic-plane strip of :mod:`gcxr.survey`."""
    from .progress import set_quiet  # deferred: keeps gcxr --help light (pulls in gcxr.progress)
    from .survey import SurveyPlan, simulate_survey  # deferred: keeps gcxr --help light (numpy)
    _imports_done()
    set_quiet(args.quiet)
    bad = [opt for opt, given in (("--pointings", args.pointings), ("--models", args.models),
                                  ("--frame", args.frame != "galactic")) if given]
    if bad:
        raise UsageError(f"--survey sets the pointings and the sources itself; drop {', '.join(bad)}")
    if args.survey < 1:
        raise UsageError(f"--survey: the number of runs must be >= 1, got {args.survey}")
    if len(args.livetime) != 1:
        raise UsageError(f"--livetime: give one value with --survey, got {len(args.livetime)}")
    _refuse_existing_store(Path(args.out), args.overwrite)
    plan = SurveyPlan(livetime=_seconds(args.livetime[0]))
    summary = simulate_survey(args.out, n_runs=args.survey, seed=args.seed, plan=plan, irf=args.irf,
                              deadc=args.deadc, quiet=args.quiet)
    if not args.quiet:
        n_ev = sum(r["n_events"] for r in summary["runs"])
        files = summary["files"]
        print(f"survey store written to {summary['out_dir']}: {summary['n_runs']} runs, {n_ev} events, "
              f"{len(summary['models'])} sources (seed {summary['seed']}, IRF {summary['irf']})\n"
              f"models: {files['models']}; configs: {files['config_stacked']} (stacked), "
              f"{files['config_joint']} (one dataset per run)")
    return 0


# --------------------------------------------------------------------------- download
def cmd_download(args) -> int:
    from .download import DownloadError, download  # deferred: keeps gcxr --help light (pulls in xarray)
    from .progress import set_quiet  # deferred: keeps gcxr --help light (pulls in gcxr.progress)
    _imports_done()
    set_quiet(args.quiet)
    try:
        root = download(args.dataset, args.out, verify=not args.no_verify, timeout=args.timeout)
    except DownloadError as err:
        print(f"gcxr download: error: {err}", file=sys.stderr)
        return 2
    if not args.quiet:
        print(f"{args.dataset} downloaded to {root}\nuse it with: export GCXR_DATA={root.parent}")
    return 0


# --------------------------------------------------------------------------- demo
def cmd_demo(args) -> int:
    """The main job on a fresh machine: real CTA-1DC runs if present, else a simulated store."""
    from .analysis import Analysis  # noqa: F401  deferred: heavy import (after the arguments are parsed)
    from .demo import run_demo  # deferred: keeps gcxr --help light (xarray, astropy)
    _imports_done()
    return run_demo(args.out, simulate=args.simulate, seed=args.seed, no_fit=args.no_fit, scheduler=args.scheduler,
                    scheduler_timeout=args.scheduler_timeout, quiet=args.quiet)


def _output_dir(arg: str | None, config) -> Path:
    """``--out`` if given, else the config's ``general.outdir`` unless it is the default ``.``,
    else ``gcxr-out``."""
    if arg is not None:
        return Path(arg)
    if config.general.outdir not in (".", "./"):
        return config.general.outdir_path
    return Path("gcxr-out")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gcxr", description="3D gamma-ray analysis on labelled arrays")
    p.add_argument("--version", action=_VersionAction, help="print gcxr's version and exit")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="reduce (and fit) as a gammapy-style AnalysisConfig says",
                       description="Reduce the runs that an AnalysisConfig selects and fit the models to them. "
                                   "The outputs (result.json, datasets.nc, fit_result.nc, models_bestfit.yaml) "
                                   "replace the previous ones in --out as one set, or not at all.",
                       epilog=EXIT_STATUS_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("config", help="AnalysisConfig YAML")
    r.add_argument("--models", help="models YAML (gammapy format; default: general.models_file of the config)")
    r.add_argument("--out", default=None,
                   help="output directory (default: general.outdir of the config if set, else gcxr-out)")
    r.add_argument("--no-fit", action="store_true", help="reduce only")
    r.add_argument("--datasets", metavar="FILE",
                   help="fit the datasets of FILE instead of reducing: a datasets.nc written by gcxr run (stacked "
                        "or one per run) or a gammapy MapDataset .fits/.fits.gz; the config's observations and "
                        "datasets sections are then not used, its fit section still is (fit.fit_range applies "
                        "on top of the file's fit mask)")
    r.add_argument("--scheduler", default="threads",
                   help="threads (default), local:N (LocalCluster of N processes, N <= 4 per CPU core), "
                        "tcp://host:port, tls://host:port or a scheduler file (*.json)")
    r.add_argument("--scheduler-timeout", type=float, default=10.0, metavar="SECONDS",
                   help="seconds to wait for a running scheduler to answer (default: 10)")
    r.add_argument("--fit-placement", choices=("auto", "cluster"), default="auto",
                   help="with a cluster: auto (default) fits in this process when a likelihood round would be "
                        "faster here than on the workers (measured; result.json says which), cluster always "
                        "on the workers")
    r.add_argument("--quiet", action="store_true", help="no progress or summary output")
    r.add_argument("--point-source-rendering", choices=("tent", "cubic", "keys"), default="tent",
                   help="pixel weights of point sources: tent (bilinear, as gammapy; default) or cubic "
                        "(B-spline: smooth in position, unbiased position errors)")
    r.set_defaults(func=cmd_run)

    d = sub.add_parser("demo", help="the main job on a fresh machine: CTA-1DC if present, else simulated data")
    d.add_argument("--out", default="gcxr-demo", help="output directory (default: gcxr-demo)")
    d.add_argument("--simulate", action="store_true", help="simulate even if $GCXR_DATA has the CTA-1DC runs")
    d.add_argument("--seed", type=int, default=0, help="seed of the simulation (default: 0)")
    d.add_argument("--no-fit", action="store_true", help="reduce only")
    d.add_argument("--scheduler", default="threads", help="as for gcxr run")
    d.add_argument("--scheduler-timeout", type=float, default=10.0, metavar="SECONDS", help="as for gcxr run")
    d.add_argument("--quiet", action="store_true", help="no progress or summary output")
    d.set_defaults(func=cmd_demo)

    s = sub.add_parser("simulate", help="simulate a GADF data store (events, GTIs, IRFs, index files)")
    s.add_argument("--out", required=True, help="output directory of the data store")
    s.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    s.add_argument("--irf", help="IRF FITS file to use (e.g. CTA-1DC irf_file.fits); default: parametric IRFs")
    s.add_argument("--psf-class", choices=("psf_3gauss", "psf_table"), default="psf_3gauss",
                   help="PSF format of the parametric IRFs (default: psf_3gauss)")
    s.add_argument("--pointings", nargs="+", metavar="LON,LAT",
                   help="pointings in deg (default: 0,1 0,-1 359,0 in galactic coordinates)")
    s.add_argument("--frame", choices=("galactic", "icrs"), default="galactic", help="frame of --pointings")
    s.add_argument("--livetime", nargs="+", default=["30 min"],
                   help="livetime per run, one value or one per pointing (default: '30 min'; plain numbers are s)")
    s.add_argument("--deadc", type=float, default=0.98, help="dead-time fraction DEADC (default: 0.98)")
    s.add_argument("--models", help="models YAML (default: a point source with an ECPL spectrum + a Gaussian)")
    s.add_argument("--survey", type=int, metavar="N_RUNS",
                   help="a Galactic-plane survey store instead: N_RUNS 30-min runs along l = -15..15 deg, "
                        "b = -1, +1 deg, 18 sources, the CTA-1DC IRF (default --irf: $GCXR_DATA/"
                        "cta-1dc/...); writes survey_models.yaml, survey_models_joint.yaml, survey_stacked.yaml, "
                        "survey_joint.yaml beside the runs (gcxr.survey)")
    s.add_argument("--overwrite", action="store_true", help="replace a data store that --out already holds")
    s.add_argument("--quiet", action="store_true", help="no progress or summary output")
    s.set_defaults(func=cmd_simulate)

    g = sub.add_parser("download", help="fetch a public DL3 data set (needs network)")
    g.add_argument("dataset", choices=("cta-1dc", "hess-dl3-dr1"))
    g.add_argument("--out", help="data root (default: $GCXR_DATA, else $GAMMAPY_DATA, else ./gcxr-data)")
    g.add_argument("--no-verify", action="store_true", help="record checksums that differ instead of failing")
    g.add_argument("--timeout", type=float, default=10.0, help="seconds per request (default: 10)")
    g.add_argument("--quiet", action="store_true", help="no progress or summary output")
    g.set_defaults(func=cmd_download)
    return p


# --------------------------------------------------------------------------- the process
# When this process is the gcxr command (``main()`` with argv None: the ``gcxr`` script,
# ``python -m gcxr``), the cyclic garbage collector is kept off the ~140,000 objects that the
# imports create: it is disabled while a command imports its modules (imports make almost no
# cyclic garbage, yet the collector ran ~380 times over them: ~0.1-0.3 s), those objects are then
# moved to the permanent generation (``gc.freeze()``), which later collections skip (a full
# collection during the seed reduction cost ~0.14 s), and at the end everything is frozen so
# that the interpreter's exit does not traverse it all once more (1.1-1.4 s -> ~0.1 s).
# Objects are still freed by reference counting, garbage made by the command itself is still
# collected, atexit handlers still run and streams are still flushed; only unreachable cycles
# left at exit are handed back to the operating system with the process - every output is
# closed and moved into place before.  Called in-process (tests, other programs) with a list,
# ``main`` changes nothing of the collector.
_PROGRAM = False


def _imports_done() -> None:
    """A command's imports are done: freeze what they made and turn the collector back on."""
    if _PROGRAM and not gc.isenabled():
        gc.freeze()
        gc.enable()


def main(argv=None) -> int:
    """The ``gcxr`` command; ``argv`` None means this process is the command (see above).

    Parameters
    ----------
    argv : list of str, optional
        The arguments (without the program name); None: ``sys.argv``.

    Returns
    -------
    int
        The exit status.

    Examples
    --------
    >>> main(['--version'])      # doctest: +SKIP
    gcxr 0.1.0
    """
    global _PROGRAM
    if argv is not None:
        return _main(argv)
    _PROGRAM = True
    gc.disable()
    try:
        status = _main(argv)
    finally:
        gc.enable()         # a command that ended before its imports were done
        gc.freeze()
    if status in EXIT_INTERRUPTED:
        # Interrupted: the outputs are settled and the cluster closed as the command unwound;
        # end now rather than wait for worker threads to finish tasks whose results nobody reads.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    return status


def program() -> None:
    """The ``gcxr`` program (console script and ``python -m gcxr``): :func:`main`, then the end of
    the process.

    Every output is closed and in place and a cluster closed when :func:`main` returns; the
    atexit handlers run (logging's flush among them) and the streams are flushed, then the
    process ends without the interpreter's teardown of its modules (0.05-0.1 s of a 2.5 s seed
    reduction, measured; nothing in it writes or releases anything the operating system does
    not).
    """
    status = main()
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def _main(argv=None) -> int:
    # No global logging or warnings configuration here (no logging.basicConfig: it would route
    # every library's INFO lines, e.g. distributed's, to the terminal; --quiet hides progress and
    # summaries, never warnings).  gcxr's own messages go through the "gcxr" logger only.
    parser = build_parser()
    args = parser.parse_args(argv)
    if _PROGRAM:
        _import_numpy_signal_free()
    _gcxr_log_handler()
    try:
        return args.func(args)
    except KeyboardInterrupt as err:
        code = getattr(err, "exit_code", 128 + signal.SIGINT)
        print(f"gcxr {args.command}: {str(err) or 'interrupted by SIGINT'}", file=sys.stderr)
        return code
    except Exception as err:
        status = _exit_status(err)
        if status is None:
            raise
        print(f"gcxr {args.command}: error: {err}", file=sys.stderr)
        return status


def _import_numpy_signal_free() -> None:
    """Import numpy with SIGINT and SIGTERM blocked, so that the BLAS threads it starts block them.

    A signal sent to the process goes to one of its threads that does not block it; taken by
    an idle BLAS thread it would leave the main thread waiting for dask until the next task
    ends.  With the BLAS threads and dask's pool threads (:func:`gcxr.progress.local_pool`)
    blocking both, Ctrl-C and SIGTERM reach the main thread and end the command at once.
    """
    if "numpy" in sys.modules or not hasattr(signal, "pthread_sigmask"):
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        import numpy  # noqa: F401
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _gcxr_log_handler() -> None:
    """Show the ``gcxr`` logger's warnings on stderr (once; that logger only, nothing global)."""
    log = logging.getLogger("gcxr")
    if not log.handlers:
        h = logging.StreamHandler()
        h.setLevel(logging.WARNING)
        h.setFormatter(logging.Formatter("gcxr: %(levelname)s: %(message)s"))
        log.addHandler(h)


if __name__ == "__main__":
    sys.exit(main())
