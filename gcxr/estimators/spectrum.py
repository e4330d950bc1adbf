r"""A spectral model's dN/dE with its 1-sigma band from the parameter covariance.

Linear error propagation:

.. math:: \sigma^2(E) = J(E)^T C J(E), \qquad J_i(E) = \partial\,\mathrm{dN/dE}(E) / \partial p_i

over the spectral parameters with a non-zero variance; ``J`` is a central
difference with a step of 1e-3 of each parameter's error
(:func:`gcxr.models.spectral.propagate_errors`, the rule of
:meth:`~gcxr.models.SpectralModel.integral_error` too).  (The reference
samples the parameters instead; the two agree where dN/dE is close to linear
over the errors, see the tests.)
"""
from __future__ import annotations

import warnings

import numpy as np
import xarray as xr

from ..fit import FitResult
from ..models import Models, SkyModel
from ..models.spectral import SpectralModel, propagate_errors
from ._core import as_tev

__all__ = ["spectrum_band"]


def _resolve(model, source):
    """(spectral model, source name) of a SpectralModel, SkyModel or Models (+ ``source``)."""
    if isinstance(model, Models):
        if source is None:
            sky = model.sky_models
            if len(sky) != 1:
                raise ValueError(f"spectrum_band: name the source; the models hold {[m.name for m in sky]}")
            source = sky[0].name
        return model[source].spectral_model, source, model
    if isinstance(model, SkyModel):
        return model.spectral_model, model.name, None
    if isinstance(model, SpectralModel):
        return model, source, None
    raise TypeError(f"spectrum_band: expected a SpectralModel, SkyModel or Models, got {type(model).__name__}")


def _finite(cov: np.ndarray, name) -> np.ndarray:
    if not np.all(np.isfinite(cov)):
        raise ValueError(f"spectrum_band: the covariance of {name or 'the model'!r} is not finite (HESSE failed?)")
    return cov


def _covariance(spectral, name, models, covariance) -> tuple[dict, np.ndarray]:
    """Parameter values and covariance over ``spectral.parameters`` (all, in order).

    From a :class:`~gcxr.fit.FitResult`, an explicit matrix, or the covariance of ``models``
    (set by :meth:`FitResult.apply <gcxr.fit.FitResult.apply>`); else the parameter errors
    without correlations, with a warning."""
    pars = spectral.parameters
    values = {p.name: p.value for p in pars}
    n = len(pars)
    if isinstance(covariance, FitResult):
        if name is None:
            raise ValueError("spectrum_band: give source= to pick the parameters out of a FitResult")
        full = np.asarray(covariance.covariance, float)
        index = {k: i for i, k in enumerate(covariance.names)}
        cov = np.zeros((n, n))
        pos = []
        for j, p in enumerate(pars):
            key = f"{name}.{p.name}"
            if key in index:
                pos.append((j, index[key]))
                try:                               # the fit's value, where the result lists it
                    values[p.name] = covariance.parameter(name, p.name)["value"]
                except KeyError:
                    pass
        if not pos:
            raise ValueError(f"spectrum_band: the fit result has no free parameter of {name!r}; "
                             f"its free parameters are {covariance.names}")
        js, ks = zip(*pos)
        cov[np.ix_(js, js)] = full[np.ix_(ks, ks)]
        return values, _finite(cov, name)
    if covariance is not None:
        cov = np.asarray(covariance, float)
        if cov.shape != (n, n):
            raise ValueError(f"spectrum_band: covariance must have shape {(n, n)} over {pars.names}, "
                             f"got {cov.shape}; for a fit's covariance (over its free parameters) pass "
                             f"the FitResult itself: covariance=result, source=<name>")
        return values, _finite(cov, name)
    if models is not None and models.covariance is not None:
        allp = models.parameters
        idx = [allp.index(f"{name}.spectral.{p.name}") for p in pars]
        return values, np.asarray(models.covariance, float)[np.ix_(idx, idx)]
    errors = pars.errors
    if not np.any(errors > 0):
        raise ValueError("spectrum_band: the model has no covariance and no parameter errors; fit it first "
                         "or pass covariance=")
    warnings.warn("spectrum_band: no covariance available, using the parameter errors without correlations",
                  RuntimeWarning, stacklevel=3)
    return values, np.diag(errors ** 2)


def spectrum_band(model, energies, covariance=None, source: str | None = None) -> xr.Dataset:
    """dN/dE and E^2 dN/dE of a spectral model with 1-sigma errors from the covariance.

    Parameters
    ----------
    model : SpectralModel, SkyModel or Models
        The (fitted) model; with :class:`~gcxr.models.Models`, ``source`` names
        the sky model (optional when there is only one).
    energies : array of float (TeV) or astropy Quantity
        Where to evaluate.
    covariance : array or FitResult, optional
        Covariance over all the spectral model's parameters (in order), or a
        :class:`~gcxr.fit.FitResult`, whose values and covariance block of the
        source's free spectral parameters are used.  Default: the covariance
        of ``Models`` (set by :meth:`FitResult.apply <gcxr.fit.FitResult.apply>`),
        else the parameter errors without correlations (with a warning).
    source : str, optional
        The source's name (needed with a FitResult and a bare SpectralModel).

    Returns
    -------
    xarray.Dataset on ``energy`` with ``dnde``, ``dnde_err`` (cm-2 s-1 TeV-1),
    ``e2dnde`` and ``e2dnde_err`` (TeV cm-2 s-1).
    """
    spectral, name, models = _resolve(model, source)
    values, cov = _covariance(spectral, name, models, covariance)
    e = as_tev(energies)
    f = type(spectral)._evaluate
    dnde = np.asarray(f(e, **values), float)

    def func(**v):
        return f(e, **v)

    err = propagate_errors(func, values, spectral.parameters.names, cov)
    unit = "cm-2 s-1 TeV-1"
    eunit = "TeV cm-2 s-1"
    coords = {"energy": ("energy", e, {"units": "TeV", "long_name": "Energy"})}
    out = xr.Dataset({
        "dnde": ("energy", dnde, {"units": unit, "long_name": "dN/dE"}),
        "dnde_err": ("energy", err, {"units": unit, "long_name": "1-sigma error of dN/dE"}),
        "e2dnde": ("energy", e ** 2 * dnde, {"units": eunit, "long_name": "E^2 dN/dE"}),
        "e2dnde_err": ("energy", e ** 2 * err, {"units": eunit, "long_name": "1-sigma error of E^2 dN/dE"}),
    }, coords=coords)
    out.attrs = {"model": type(spectral).tag, "source": name or "",
                 "parameters": [p.name for i, p in enumerate(spectral.parameters) if cov[i, i] > 0]}
    return out
