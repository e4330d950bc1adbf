"""Command line: ``gcxr run | demo | simulate | download``."""
from __future__ import annotations

import argparse
import logging
import sys
import time
import warnings
from pathlib import Path

__all__ = ["main"]


def _scheduler(spec: str | None):
    """(client, cluster, description) for a --scheduler SPEC; None client means in-process threads."""
    from .cluster import make_client
    return make_client(spec)


def cmd_run(args) -> int:
    t_start = time.perf_counter()
    from .analysis import Analysis
    from .io import write_datasets, write_json
    out = Path(args.out)
    client, cluster, sched = _scheduler(args.scheduler)
    try:
        ana = Analysis(args.config, client=client)
        ana.get_observations()
        ana.get_datasets()
        fit = None
        if not args.no_fit:
            if not args.models:
                raise SystemExit("gcxr run: --models MODELS is required unless --no-fit is given")
            ana.read_models(args.models)
            ana.run_fit()
            fit = ana.fit_result.to_dict()
        result = {
            "datasets": ana.dataset_summaries(),
            "fit": fit,
            "timings_s": {"reduce": ana.timings.get("reduce", 0.0), "fit": ana.timings.get("fit", 0.0)},
            "compute": ana.compute_info(sched),
        }
        # outputs: each written to a temporary name and moved into place
        write_datasets(ana.datasets[0] if len(ana.datasets) == 1 and ana.config.datasets.stack else ana.datasets,
                       out / "datasets.nc", spec=ana.spec)
        if fit is not None:
            ana.models.write(out / "models_bestfit.yaml", overwrite=True)
        result["timings_s"]["total"] = time.perf_counter() - t_start
        write_json(result, out / "result.json")
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
    if not args.quiet:
        _print_summary(result, out)
    return 0


def _print_summary(result, out):
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
    print(f"timings: reduce {t['reduce']:.2f} s, fit {t['fit']:.2f} s, total {t['total']:.2f} s -> {out}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gcxr", description="3D gamma-ray analysis on labelled arrays")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="reduce (and fit) as a gammapy-style AnalysisConfig says")
    r.add_argument("config", help="AnalysisConfig YAML")
    r.add_argument("--models", help="models YAML (gammapy format)")
    r.add_argument("--out", default="gcxr-out", help="output directory (default: gcxr-out)")
    r.add_argument("--no-fit", action="store_true", help="reduce only")
    r.add_argument("--scheduler", default="threads",
                   help="threads (default), local:N (LocalCluster of N processes) or tcp://host:port")
    r.add_argument("--quiet", action="store_true", help="no progress or summary output")
    r.set_defaults(func=cmd_run)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if getattr(args, "quiet", False):
        warnings.simplefilter("ignore")
    from .config import ConfigError
    from .datastore import DataStoreError
    try:
        return args.func(args)
    except (ConfigError, DataStoreError, FileNotFoundError, ValueError) as err:
        print(f"gcxr {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
