"""``gcxr demo``: a whole analysis on a fresh machine, and the figures it writes.

:func:`run_demo` picks the data (the CTA-1DC Galactic Centre runs when
``$GCXR_DATA`` or ``$GAMMAPY_DATA`` holds them, else a simulated store), writes
the config and models into the output folder, runs the analysis as ``gcxr run``
does (:func:`gcxr.cli.run_analysis`) and draws :func:`demo_plots`.  The figures
are :mod:`gcxr.plot`'s; the maps in them come from :mod:`gcxr.estimators` and
:mod:`gcxr.npred`.
"""
from __future__ import annotations

import time
import warnings
from pathlib import Path
import os

import numpy as np
import xarray as xr

from .cli import run_analysis
from .config import AnalysisConfig
from .contract import frame_of, geom_of
from .coords import transform_lonlat
from .estimators import excess_map, spectrum_band
from .io import atomic_path, read_datasets
from .models import Models
from .npred import npred_cubes
from .plot import (masked, plot_edisp, plot_image, plot_psf_containment, plot_significance_distribution,
                   plot_spectra)
from .plot._common import plt, require_vars
from .progress import set_quiet
from .simulate import simulate_datastore

__all__ = ["run_demo", "demo_plots"]


def _cta_1dc_root() -> Path | None:
    """The data root ($GCXR_DATA, else $GAMMAPY_DATA) if it holds the CTA-1DC GC index."""
    for var in ("GCXR_DATA", "GAMMAPY_DATA"):
        root = os.environ.get(var)
        if root and (Path(root).expanduser() / "cta-1dc" / "index" / "gps" / "hdu-index.fits.gz").exists():
            return Path(root).expanduser().resolve()
    return None


def run_demo(out: str | Path = "gcxr-demo", simulate: bool = False, seed: int = 0, no_fit: bool = False,
             scheduler: str = "threads", scheduler_timeout: float | None = 10.0, quiet: bool = False) -> int:
    """The main job on a fresh machine: real CTA-1DC runs if present, else a simulated store.

    Writes ``config.yaml`` and ``models.yaml`` in ``out``, the outputs of
    ``gcxr run`` there, then the PNGs of :func:`demo_plots`.

    Parameters
    ----------
    out : str or Path
        The output folder.
    simulate : bool
        Simulate even if the CTA-1DC runs are there.
    seed : int
        Seed of the simulation.
    no_fit : bool
        Reduce only.
    scheduler : str
        As for ``gcxr run``: threads, local:N, a scheduler address or file.
    scheduler_timeout : float, optional
        Seconds to wait for a running scheduler.
    quiet : bool
        No progress or summary output.

    Returns
    -------
    int
        The exit status of the run (0 when the figures are written too).
    """
    import shutil  # deferred: ~3 ms, only the demo copy needs it
    from importlib.resources import files  # deferred: ~14 ms to import

    t0 = time.perf_counter()
    set_quiet(quiet)
    out = Path(out).expanduser().resolve()
    data = files("gcxr") / "data"
    root = None if simulate else _cta_1dc_root()
    if root is not None:
        config = AnalysisConfig.read(data / "demo_cta1dc.yaml")
        store = root / "cta-1dc" / "index" / "gps"
        models_src, what = data / "demo_cta1dc_models.yaml", f"CTA-1DC Galactic Centre runs in {store}"
    else:
        store = out / "simulated-data"
        simulate_datastore(store, seed=seed)
        config = AnalysisConfig.read(data / "demo_simulated.yaml")
        models_src, what = data / "demo_simulated_models.yaml", f"a simulated Galactic-Centre-like store in {store}"
    if not quiet:
        print(f"gcxr demo: {what}")
    config = config.update({"observations": {"datastore": str(store)}})
    config.write(out / "config.yaml", overwrite=True)
    with atomic_path(out / "models.yaml") as tmp:
        shutil.copyfile(models_src, tmp)
    rc = run_analysis(str(out / "config.yaml"), models=str(out / "models.yaml"), out=str(out), no_fit=no_fit,
                      scheduler=scheduler,
                      scheduler_timeout=scheduler_timeout, quiet=quiet, point_source_rendering="tent")
    if rc:
        return rc
    pngs = demo_plots(out)
    if not quiet:
        print(f"plots: {', '.join(p.name for p in pngs)}; demo done in {time.perf_counter() - t0:.1f} s -> {out}")
    return 0


def _savefig(fig, path: Path, dpi: int) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png", bbox_inches="tight")
    plt().close(fig)
    return path


def _stacked_view(ds: xr.Dataset) -> xr.Dataset:
    """counts/background/masks of a dataset; runs along ``obs`` summed inside their safe masks."""
    keep = [v for v in ("counts", "background", "mask_safe", "mask_fit") if v in ds]
    require_vars(ds, ["counts", "background", "energy_bounds"], "demo_plots")
    if "obs" not in ds.dims:
        return ds[keep].assign_coords(energy_bounds=ds["energy_bounds"])
    ms = ds["mask_safe"].astype(bool) if "mask_safe" in ds else xr.ones_like(ds["counts"], dtype=bool)
    view = xr.Dataset({v: ds[v].where(ms, 0.0).sum("obs", keep_attrs=True) for v in ("counts", "background")},
                      attrs={"name": "runs", "frame": ds.attrs.get("frame", "galactic")})
    view["mask_safe"] = ms.any("obs")
    if "mask_fit" in ds:
        view["mask_fit"] = ds["mask_fit"].astype(bool).any("obs") if "obs" in ds["mask_fit"].dims else ds["mask_fit"]
    return view.assign_coords(energy_bounds=ds["energy_bounds"])


def _significance_image(view: xr.Dataset, npred: xr.DataArray | None, radius: float, name: str) -> xr.DataArray:
    """(lat, lon) sqrt(TS) of the counts against npred (else the background) over the whole energy
    range, correlated in a disk of ``radius`` deg (:func:`gcxr.estimators.excess_map`)."""
    sig = excess_map(view, npred=npred, correlation_radius=radius)["sqrt_ts"].isel(band=0, drop=True)
    return sig.assign_attrs(long_name=name, units="", frame=frame_of(view))


def _irf_run(ds: xr.Dataset, position) -> tuple[xr.Dataset, tuple[float, float] | None, str]:
    """One run's dataset for the IRF plots and a position where it has exposure."""
    run, tag = ds, ""
    if "obs" in ds.dims:
        run = ds.isel(obs=0)
        tag = f" (run {int(ds['obs'].values[0])})" if "obs" in ds.coords else " (first run)"
    if "exposure_irf" in run:
        geom, irf = geom_of(run)
        lon, lat = position if position is not None else geom.center
        ix, iy, ok = irf.world_to_index(np.array([lon]), np.array([lat]))
        ex = np.asarray(run["exposure_irf"].transpose("energy_true", "lat_irf", "lon_irf").values, float).sum(0)
        if not ok[0] or ex[int(iy[0]), int(ix[0])] <= 0:
            j, i = np.unravel_index(int(np.argmax(ex)), ex.shape)
            position = (float(irf.lon[i]), float(irf.lat[j]))
    return run, position, tag


def _npred(ds: xr.Dataset, models) -> xr.DataArray:
    """Full npred of the models, summed over the runs of a multi-run file."""
    if "obs" not in ds.dims:
        return npred_cubes(ds, models)["npred"]
    ids = ds["obs"].values
    ms = ds["mask_safe"].astype(bool)
    return sum(npred_cubes(ds.isel(obs=i), models, name=f"obs-{int(ids[i])}")["npred"].where(ms.isel(obs=i), 0.0)
               for i in range(ds.sizes["obs"]))


def demo_plots(out: str | Path, ds: xr.Dataset | None = None, models=None, fit_result=None, dpi: int = 100,
               smooth: float = 0.05, correlation_radius: float = 0.1) -> list[Path]:
    """The PNGs of ``gcxr demo`` in ``out``; returns their paths.

    Reads ``out/datasets.nc`` (unless ``ds`` is given; runs along ``obs`` are
    summed for the images) and ``out/models_bestfit.yaml`` when it exists
    (unless ``models`` is given).  Writes counts, background, the excess
    significance (counts vs background over the whole energy range, correlated
    within ``correlation_radius`` deg), and with models the residual significance
    (counts vs npred); the distribution of the last significance map; the source
    spectra, with 1-sigma bands when ``fit_result`` (or a covariance read with
    the models) is there; the PSF containment and the energy dispersion at the
    first source (else the map centre).  Each file is written to a temporary
    name and renamed.

    Parameters
    ----------
    out : str or Path
        The output folder of ``gcxr run``/``gcxr demo``.
    ds : xarray.Dataset, optional
        The dataset (default: ``out/datasets.nc``).
    models : Models, optional
        The models (default: ``out/models_bestfit.yaml``).
    fit_result : FitResult, optional
        For the spectrum's error band.
    dpi : int
        Resolution of the PNGs.
    smooth : float
        Smoothing of the images (deg).
    correlation_radius : float
        Of the significance map (deg).
    """
    out = Path(out)
    if ds is None:
        path = out / "datasets.nc"
        if not path.exists():
            raise FileNotFoundError(f"demo_plots: {path} not found (run `gcxr run` first or pass ds=)")
        ds = read_datasets(path)
    if models is None and (out / "models_bestfit.yaml").exists():
        models = Models.read(out / "models_bestfit.yaml")
    frame = frame_of(ds)
    view = _stacked_view(ds)
    written: list[Path] = []

    counts = masked(view, "counts").assign_attrs(long_name="counts", frame=frame)
    ax = plot_image(counts, smooth=smooth, stretch="sqrt", cmap="afmhot", title="Counts (safe mask)")
    written.append(_savefig(ax.figure, out / "counts.png", dpi))
    bkg = masked(view, "background").assign_attrs(long_name="background", frame=frame)
    ax = plot_image(bkg, smooth=smooth, title="Background (safe mask)")
    written.append(_savefig(ax.figure, out / "background.png", dpi))

    sig = _significance_image(view, None, correlation_radius, "sqrt(TS) vs background")
    ax = plot_image(sig, cmap="RdBu_r", symmetric=True,
                    title=f"Excess significance ({correlation_radius:g} deg correlation)")
    written.append(_savefig(ax.figure, out / "excess.png", dpi))

    dist_label = "counts vs background"
    sky = list(getattr(models, "sky_models", None) or [])
    if sky:
        sig = _significance_image(view, _npred(ds, models), correlation_radius, "sqrt(TS) vs npred")
        ax = plot_image(sig, cmap="RdBu_r", symmetric=True,
                        title=f"Residual significance ({correlation_radius:g} deg correlation)")
        written.append(_savefig(ax.figure, out / "residual_significance.png", dpi))
        dist_label = "counts vs npred"
    ax = plot_significance_distribution(sig, label=dist_label)
    ax.set_title(f"Significance distribution ({dist_label})", fontsize="medium")
    written.append(_savefig(ax.figure, out / "significance_distribution.png", dpi))

    if sky:
        e = np.asarray(ds["energy_bounds"].values, float)
        energies = np.geomspace(float(e[0, 0]), float(e[-1, 1]), 100)
        covs = {}                            # the 1-sigma band of each source, or None
        for m in sky:
            covs[m.name] = None
            if fit_result is None and getattr(models, "covariance", None) is None:
                continue
            try:
                covs[m.name] = spectrum_band(models, energies, covariance=fit_result, source=m.name)
            except ValueError as exc:        # e.g. HESSE failed: draw the line, say why there is no band
                warnings.warn(f"demo_plots: no error band for {m.name!r}: {exc}", RuntimeWarning, stacklevel=2)
        ax = plot_spectra({m.name: m for m in sky}, energy_bounds=(float(e[0, 0]), float(e[-1, 1])),
                          bands=covs)
        banded = any(v is not None for v in covs.values())
        ax.set_title("Best-fit spectra" + (" (1 sigma bands)" if banded else " (no covariance: no bands)"),
                     fontsize="medium")
        written.append(_savefig(ax.figure, out / "spectrum.png", dpi))

    pos = None
    sp = getattr(sky[0], "spatial_model", None) if sky else None
    if sp is not None and hasattr(sp, "position"):
        lo, la = transform_lonlat(np.array([sp.position[0]]), np.array([sp.position[1]]), sp.frame, frame)
        pos = (float(lo[0]), float(la[0]))
    run, pos, tag = _irf_run(ds, pos)
    ax = plot_psf_containment(run, position=pos)
    ax.set_title(ax.get_title() + tag, fontsize="medium")
    written.append(_savefig(ax.figure, out / "psf_containment.png", dpi))
    ax = plot_edisp(run, position=pos)
    ax.set_title(ax.get_title() + tag, fontsize="medium")
    written.append(_savefig(ax.figure, out / "edisp.png", dpi))
    return written


