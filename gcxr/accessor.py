"""``ds.gcxr``: a thin namespace over :mod:`gcxr.plot` and friends for gcxr datasets.

Registered on import (``import gcxr.accessor``).  Every method is a one-line
delegation; xarray builds a new accessor for every Dataset, so it holds no state.

    ds.gcxr.geom                    # SkyGeom of the (lat, lon) grid
    ds.gcxr.info()                  # gcxr.datasets.info
    ds.gcxr.plot_counts()           # counts in the safe mask, summed over energy
    ds.gcxr.plot_residuals(npred)   # smoothed (counts - npred) / sqrt(npred)
    ds.gcxr.plot_psf(); ds.gcxr.plot_edisp()
    ds.gcxr.interactive("counts")   # hvplot cube with an energy slider
"""
from __future__ import annotations

import xarray as xr

__all__ = ["GcxrAccessor"]


@xr.register_dataset_accessor("gcxr")
class GcxrAccessor:
    """Plots and summaries of a gcxr dataset (counts, background, exposure, psf, edisp on named dims)."""

    def __init__(self, ds: xr.Dataset):
        self._ds = ds

    # ---- geometry and summaries
    @property
    def geom(self):
        """The sky grid: exact from ``sky_wcs`` (files written by gcxr), else rebuilt from lon/lat."""
        from .contract import geom_from_dataset, geom_of  # deferred: import cycle (gcxr.accessor <-> gcxr.contract)
        if "sky_wcs" in self._ds.variables:
            return geom_from_dataset(self._ds)
        return geom_of(self._ds)[0]

    @property
    def irf_geom(self):
        """The coarse grid of the PSF and energy dispersion."""
        from .contract import geom_of  # deferred: import cycle (gcxr.accessor <-> gcxr.contract)
        return geom_of(self._ds)[1]

    def info(self, name: str | None = None) -> dict:
        """Summary numbers of the dataset (:func:`gcxr.info`).

        Parameters
        ----------
        name : str, optional
            The name to report (default: the ``name`` attribute).

        Returns
        -------
        dict
            Counts, background, excess, significance, bins, livetime.
        """
        from .datasets import info  # deferred: import cycle (gcxr.accessor <-> gcxr.datasets)
        return info(self._ds, name)

    def masked(self, var: str = "counts"):
        """``ds[var]`` with bins outside ``mask_safe`` set to 0.

        Parameters
        ----------
        var : str
            The variable.

        Returns
        -------
        xarray.DataArray
            The masked variable.
        """
        from .plot import masked  # deferred: import cycle (gcxr.accessor <-> gcxr.plot)
        return masked(self._ds, var)

    # ---- matplotlib
    def plot_counts(self, **kwargs):
        """Counts summed over energy inside the safe mask (:func:`gcxr.plot.plot_image`).

        Parameters
        ----------
        **kwargs
            Passed on to the plotting function.

        Returns
        -------
        matplotlib.axes.Axes
            The axis.
        """
        from .plot import masked, plot_image  # deferred: import cycle (gcxr.accessor <-> gcxr.plot)
        return plot_image(masked(self._ds, "counts"), **kwargs)

    def plot_background(self, **kwargs):
        """Background summed over energy inside the safe mask (:func:`gcxr.plot.plot_image`).

        Parameters
        ----------
        **kwargs
            Passed on to the plotting function.

        Returns
        -------
        matplotlib.axes.Axes
            The axis.
        """
        from .plot import masked, plot_image  # deferred: import cycle (gcxr.accessor <-> gcxr.plot)
        return plot_image(masked(self._ds, "background"), **kwargs)

    def plot_image(self, var: str, **kwargs):
        """Any variable summed over energy inside the safe mask (:func:`gcxr.plot.plot_image`).

        Parameters
        ----------
        var : str
            The variable, e.g. ``'exposure'``.
        **kwargs
            Passed on to the plotting function.

        Returns
        -------
        matplotlib.axes.Axes
            The axis.
        """
        from .plot import masked, plot_image  # deferred: import cycle (gcxr.accessor <-> gcxr.plot)
        return plot_image(masked(self._ds, var), **kwargs)

    def plot_overview(self, npred=None, **kwargs):
        """Counts, prediction and excess side by side (:func:`gcxr.plot.plot_counts_background_excess`).

        Parameters
        ----------
        npred : xarray.DataArray, optional
            Predicted counts (default: the background).
        **kwargs
            Passed on to the plotting function.

        Returns
        -------
        list of matplotlib.axes.Axes
            The three panels.
        """
        from .plot import plot_counts_background_excess  # deferred: import cycle (gcxr.accessor <-> gcxr.plot)
        return plot_counts_background_excess(self._ds, npred, **kwargs)

    def plot_residuals(self, npred=None, **kwargs):
        """Spatial residuals (:func:`gcxr.plot.plot_residuals`).

        Parameters
        ----------
        npred : xarray.DataArray, optional
            Predicted counts (default: the background).
        **kwargs
            Passed on to the plotting function.

        Returns
        -------
        matplotlib.axes.Axes
            The axis.
        """
        from .plot import plot_residuals  # deferred: import cycle (gcxr.accessor <-> gcxr.plot)
        return plot_residuals(self._ds, npred, **kwargs)

    def plot_psf(self, position=None, **kwargs):
        """PSF containment radii vs true energy (:func:`gcxr.plot.plot_psf_containment`).

        Parameters
        ----------
        position : tuple of float, optional
            (lon, lat) in the dataset's frame (deg); default: the map centre.
        **kwargs
            Passed on to the plotting function.

        Returns
        -------
        matplotlib.axes.Axes
            The axis.
        """
        from .plot import plot_psf_containment  # deferred: import cycle (gcxr.accessor <-> gcxr.plot)
        return plot_psf_containment(self._ds, position, **kwargs)

    def plot_edisp(self, position=None, **kwargs):
        """The energy-dispersion matrix (:func:`gcxr.plot.plot_edisp`).

        Parameters
        ----------
        position : tuple of float, optional
            (lon, lat) in the dataset's frame (deg); default: the map centre.
        **kwargs
            Passed on to the plotting function.

        Returns
        -------
        matplotlib.axes.Axes
            The axis.
        """
        from .plot import plot_edisp  # deferred: import cycle (gcxr.accessor <-> gcxr.plot)
        return plot_edisp(self._ds, position, **kwargs)

    # ---- hvplot
    def interactive(self, var: str = "counts", **kwargs):
        """An hvplot cube of ``ds[var]`` (safe mask applied) with a slider over energy.

        Parameters
        ----------
        var : str
            The variable.
        **kwargs
            Passed on to :func:`gcxr.plot.interactive_cube`.
        """
        from .plot import interactive_cube, masked  # deferred: import cycle (gcxr.accessor <-> gcxr.plot)
        return interactive_cube(masked(self._ds, var), **kwargs)
