"""Figures of datasets, IRFs, residuals and spectra: matplotlib (WCSAxes) and hvplot.

Every function takes xarray objects (a dataset, a (lat, lon) image, the
estimators' outputs) and draws them; none computes a science product: the
numbers come from :mod:`gcxr.estimators` and :mod:`gcxr.npred`.  The matplotlib
functions take ``ax=None`` (a new figure is made) and return what they drew on.

What to use when (the module that holds each in brackets):

* :func:`plot_image` - any (lat, lon) DataArray on the sky (summed over
  ``energy``/``energy_true``/``band`` first); :func:`plot_residual_grid` - one
  panel per band; :func:`plot_counts_background_excess` - the usual three
  panels; :func:`plot_residuals`; :func:`plot_significance_distribution` -
  histogram of a significance map with a fitted normal (:mod:`gcxr.plot.sky`).
* :func:`plot_psf_containment`, :func:`plot_edisp` - the IRFs of a dataset at a
  sky position (:mod:`gcxr.plot.irf`).
* :func:`plot_spectrum`, :func:`plot_spectra`, :func:`plot_flux_points` - SEDs
  (:mod:`gcxr.plot.spectra`).
* :func:`interactive_cube`, :func:`interactive_map` - hvplot/bokeh objects for
  notebooks; :func:`save_html` writes them as standalone HTML
  (:mod:`gcxr.plot.interactive`).
* :func:`demo_plots` - the PNGs of ``gcxr demo`` (defined in :mod:`gcxr.demo`).

Sky orientation: images are drawn with ``imshow(origin="lower")`` on astropy
WCSAxes built from the DataArray's own ``lon``/``lat`` coordinates
(:meth:`gcxr.geom.SkyGeom.from_coords`), after ordering them as on the sky:
longitude decreasing with the column (so it grows to the left) and latitude
increasing with the row.  This holds whatever order the input coordinates have.

matplotlib, astropy.visualization, hvplot, holoviews and bokeh are imported
inside the functions that use them, so importing this package stays light.
"""
from __future__ import annotations

from .interactive import interactive_cube, interactive_map, save_html
from .irf import plot_edisp, plot_psf_containment
from .sky import (masked, plot_counts_background_excess, plot_image, plot_residual_grid, plot_residuals,
                  plot_significance_distribution)
from .spectra import plot_flux_points, plot_spectra, plot_spectrum

__all__ = [
    "plot_image",
    "plot_residual_grid",
    "plot_counts_background_excess",
    "plot_residuals",
    "plot_psf_containment",
    "plot_edisp",
    "plot_significance_distribution",
    "plot_spectrum",
    "plot_spectra",
    "plot_flux_points",
    "interactive_cube",
    "interactive_map",
    "save_html",
    "masked",
    "demo_plots",
]


def __getattr__(name: str):
    """``demo_plots`` lives in :mod:`gcxr.demo` (which imports this package): resolved on first use."""
    if name == "demo_plots":
        from ..demo import demo_plots  # deferred: import cycle (gcxr.plot <-> gcxr.demo)
        return demo_plots
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
