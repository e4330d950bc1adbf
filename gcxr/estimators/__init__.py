"""Estimators on reduced datasets: excess and significance maps, residuals, flux points, model bands.

Pure functions of xarray datasets (and fitted models) returning xarray objects
with named dims and units in ``attrs``:

* :func:`excess_map`: correlated counts, predicted counts, excess and Cash
  significance per energy band (the reference's ``ExcessMapEstimator``);
* :func:`residual_maps` and :func:`spectral_residuals`: counts minus
  prediction on the sky (per bin or band, optionally smoothed) or in a sky
  region (per energy bin);
* :func:`flux_points`: the normalisation of a source's fitted spectrum in
  energy bins, with errors, TS and upper limits;
* :func:`spectrum_band`: dN/dE of a spectral model with its 1-sigma band from
  the parameter covariance;
* :func:`compare_models`: likelihood-ratio test (TS, Wilks p-value and
  significance) and AIC of two fitted models;
* :func:`psf_containment` and :func:`edisp_matrix`: the IRFs of a dataset at a
  sky position;
* :func:`smooth_map`: NaN-aware Gaussian smoothing of a map with a width in
  degrees (the ``smooth=`` of :mod:`gcxr.plot`).
"""
from .compare import ModelComparison, compare_models, fit_statistic
from .excess import excess_map
from .flux_points import flux_points
from .irf import edisp_matrix, psf_containment
from .residuals import RESIDUAL_METHODS, region_mask, residual_maps, spectral_residuals
from .smoothing import smooth_map
from .spectrum import spectrum_band

__all__ = ["excess_map", "residual_maps", "spectral_residuals", "region_mask", "flux_points", "spectrum_band",
           "RESIDUAL_METHODS", "compare_models", "ModelComparison", "fit_statistic", "psf_containment", "edisp_matrix",
           "smooth_map"]
