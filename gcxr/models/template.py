r"""Flux of a sky model on a pixel grid, split into spatial planes and spectral weights.

For a source on a pixel grid (pixel-centre ``lon``, ``lat`` in the model's
frame, pixel solid angles ``omega``) and true-energy bin edges, the flux in
cm-2 s-1 per true-energy bin ``t`` and pixel ``p`` is

.. math::

    F[t, p] = \sum_k a[t, k](\theta_\mathrm{spectral})\, P[k, p]

where the planes :math:`P` depend only on the spatial model (the template and
its position) and the grid, and the weights :math:`a` only on the spectral
parameters and the energy bins.  :func:`flux_parts` computes :math:`P` once;
:meth:`FluxParts.coefficients` and :meth:`FluxParts.flux` are cheap to call for
every set of spectral parameters.

gammapy 2.1's rule (docs/conventions.md, "Energy-dependent templates") is a
product of the spectral bin integral and the spatial model at the *log centre*
of the bin, so ``a`` is diagonal:

* energy-independent model (2D template, Gaussian, disk): one plane,
  :math:`P[0, p] = S(p)\,\omega_p` and :math:`a[t, 0] = \int_t N\,dE`;
* 3D template: one plane per true-energy bin,
  :math:`P[t, p] = T(\sqrt{E_{t,lo} E_{t,hi}}, p)\,\omega_p` and
  :math:`a[t, t] = \int_t N\,dE`, zero elsewhere.

Units: with a template in sr-1 (a 2D image, or any normalised template) the
spectral model carries the flux (``amplitude`` in cm-2 s-1 TeV-1) and ``P`` is
dimensionless.  A template in cm-2 s-1 TeV-1 sr-1 (e.g. the Fermi-LAT diffuse
cube, ``normalize: false``) carries it itself; the spectral model must then be
a dimensionless multiplier (``PowerLawNormSpectralModel``), whose integral is
in TeV.  Either way ``F`` is in cm-2 s-1.

The functions here are pure numpy over arrays; the planes depend on the
spatial parameter values (``lon_0``/``lat_0`` of a template, frozen by default):
recompute them when those change.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from .parameters import ModelError

__all__ = ["FluxParts", "flux_parts", "sky_model_flux", "interp_log_multilinear"]


# --------------------------------------------------------------------------
# gammapy's map interpolation: multilinear in pixel coordinates on log values,
# linearly extrapolated over the outer half pixel, zero beyond it
# --------------------------------------------------------------------------
def interp_log_multilinear(log_values: np.ndarray, pix: list[np.ndarray]) -> np.ndarray:
    """Multilinear interpolation of ``log_values`` at pixel coordinates ``pix``.

    Parameters
    ----------
    log_values : ndarray
        Logarithm of the map values, one axis per entry of ``pix``; node ``i``
        of an axis sits at pixel coordinate ``i``.
    pix : list of ndarray
        Pixel coordinates, one (broadcastable) array per axis of ``log_values``.
        Axes of length one are ignored (their coordinate is not used).

    Returns
    -------
    ndarray
        The interpolated log values, broadcast shape of ``pix``.  Outside the
        node range the end intervals are extrapolated linearly (as
        ``scipy.interpolate.RegularGridInterpolator(fill_value=None)``);
        masking points beyond the outer half pixel is the caller's job.
    """
    from ..irf._interp import interp_scattered  # deferred: gcxr.irf loads the data store and astropy.io.fits
    if len(pix) != log_values.ndim:
        raise ValueError(f"{len(pix)} pixel coordinate arrays for a {log_values.ndim}-D map")
    return interp_scattered(log_values, [np.arange(n, dtype=float) for n in log_values.shape], pix)


def lin_interp_extrap(x, xp, fp):
    """Piecewise-linear interpolation with linear extrapolation at both ends.

    Parameters
    ----------
    x : array_like
        Where to interpolate.
    xp : numpy.ndarray
        Increasing nodes.
    fp : numpy.ndarray
        Values at the nodes.

    Returns
    -------
    numpy.ndarray
        The values at ``x``.
    """
    from ..irf._interp import interp_axis  # deferred: gcxr.irf loads the data store and astropy.io.fits
    x = np.asarray(x, dtype=float)
    return interp_axis(np.asarray(fp, dtype=float), xp, x.ravel()).reshape(x.shape)


# --------------------------------------------------------------------------
# flux decomposition
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class FluxParts:
    """Flux of one source on a grid as ``F[t] = a[t, k(t)] P[k(t)]``.

    Parameters
    ----------
    planes : ndarray, shape (n_k,) + grid shape
        Spatial planes :math:`P`: spatial model times pixel solid angle (sr-1
        templates: dimensionless; differential templates: cm-2 s-1 TeV-1).
    plane_index : ndarray of int, shape (n_t,)
        Plane used by each true-energy bin (all 0 for an energy-independent
        model, ``t`` for a 3D template).
    energy_true_edges : ndarray, shape (n_t + 1,)
        True-energy bin edges, TeV.
    spectral_cls : type
        The spectral model class; its pure ``_integral(emin, emax, **values)``
        gives the weights.
    spectral_values : dict
        Spectral parameter values when the parts were made (the default of
        :meth:`coefficients` and :meth:`flux`).
    """

    planes: np.ndarray
    plane_index: np.ndarray
    energy_true_edges: np.ndarray
    spectral_cls: type
    spectral_values: Mapping[str, float]

    @property
    def n_true(self) -> int:
        """Number of true-energy bins."""
        return len(self.plane_index)

    def spectral_integral(self, spectral_values: Mapping[str, float] | None = None) -> np.ndarray:
        """Bin integrals of the spectral model, shape (n_t,).

        Parameters
        ----------
        spectral_values : mapping, optional
            Spectral parameter values by name; default :attr:`spectral_values`.
        """
        values = self.spectral_values if spectral_values is None else spectral_values
        e = self.energy_true_edges
        return np.asarray(self.spectral_cls._integral(e[:-1], e[1:], **values), dtype=float)

    def coefficients(self, spectral_values: Mapping[str, float] | None = None) -> np.ndarray:
        """The weights ``a[t, k]``, shape (n_t, n_k): the bin integral where ``k = k(t)``, else 0.

        Parameters
        ----------
        spectral_values : mapping, optional
            Spectral parameter values by name (default: the model's).

        Returns
        -------
        numpy.ndarray
            ``a[t, k]``.
        """
        a = np.zeros((self.n_true, self.planes.shape[0]))
        a[np.arange(self.n_true), self.plane_index] = self.spectral_integral(spectral_values)
        return a

    def flux(self, spectral_values: Mapping[str, float] | None = None) -> np.ndarray:
        """Flux per true-energy bin and pixel (cm-2 s-1), shape (n_t,) + grid shape.

        Parameters
        ----------
        spectral_values : mapping, optional
            Spectral parameter values by name (default: the model's).

        Returns
        -------
        numpy.ndarray
            The flux.
        """
        integral = self.spectral_integral(spectral_values)
        grid_ndim = self.planes.ndim - 1
        return integral.reshape((-1,) + (1,) * grid_ndim) * self.planes[self.plane_index]


def _energy_true_edges(edges: Any) -> np.ndarray:
    if hasattr(edges, "edges_array"):  # gcxr.geom.EnergyAxis
        edges = edges.edges_array
    e = np.asarray(edges, dtype=float)
    if e.ndim != 1 or e.size < 2 or not np.all(np.diff(e) > 0) or e[0] <= 0:
        raise ValueError(f"energy_true_edges must be positive, increasing and at least two, got {e}")
    return e


def flux_parts(model, lon, lat, omega, energy_true_edges) -> FluxParts:
    """Split the flux of ``model`` on a pixel grid into spatial planes and spectral weights.

    Parameters
    ----------
    model : SkyModel
        A sky model whose spatial model has a surface brightness (template,
        Gaussian, disk; not a point source).
    lon, lat : array_like
        Pixel-centre coordinates in the spatial model's frame (deg); any
        shape (the grid shape).
    omega : array_like
        Pixel solid angles (sr), broadcastable to the grid shape.
    energy_true_edges : array_like or EnergyAxis
        True-energy bin edges (TeV).

    Returns
    -------
    FluxParts
        ``parts.flux(values)`` is the flux (cm-2 s-1) per true-energy bin and
        pixel at spectral parameter values ``values``; ``parts.planes`` and
        ``parts.coefficients(values)`` are its factors.

    Notes
    -----
    The spatial model is evaluated at pixel centres, without oversampling
    (gammapy's rule for templates; gammapy oversamples Gaussians and disks
    smaller than the pixels).  A 3D template is evaluated at the log centre
    of each true-energy bin.
    """
    spatial = model.spatial_model
    spectral = model.spectral_model
    name = getattr(model, "name", "?")
    if spatial is None:
        raise ModelError(f"model {name!r}: flux_parts needs a spatial model")
    if spatial.tag == "PointSpatialModel":
        raise ModelError(f"model {name!r}: a point source has no surface brightness; "
                         "its flux goes to the pixels around its position")
    edges = _energy_true_edges(energy_true_edges)
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    grid = np.broadcast_shapes(lon.shape, lat.shape)
    omega = np.broadcast_to(np.asarray(omega, dtype=float), grid)
    n_t = edges.size - 1
    differential = bool(getattr(spatial, "is_differential", False))
    is_norm = bool(getattr(type(spectral), "is_norm", False))
    if differential and not is_norm:
        raise ModelError(
            f"model {name!r}: the template {getattr(spatial, 'filename', '')!r} is in "
            f"{spatial.unit}, so the spectral model must be a dimensionless norm "
            f"(PowerLawNormSpectralModel), got {spectral.tag}")
    if not differential and is_norm:
        raise ModelError(
            f"model {name!r}: {spectral.tag} is dimensionless, but the spatial model is in sr-1; "
            "use a spectral model with an amplitude, or a template in cm-2 s-1 TeV-1 sr-1")
    if getattr(spatial, "is_energy_dependent", False):
        centres = np.sqrt(edges[:-1] * edges[1:])
        if hasattr(spatial, "evaluate_planes"):
            planes = spatial.evaluate_planes(lon, lat, centres) * omega
        else:
            planes = np.stack([spatial.evaluate(lon, lat, e) * omega for e in centres])
        index = np.arange(n_t)
    else:
        planes = (np.asarray(spatial.evaluate(lon, lat), dtype=float) * omega)[np.newaxis]
        index = np.zeros(n_t, dtype=np.intp)
    return FluxParts(planes=np.asarray(planes, dtype=float), plane_index=index, energy_true_edges=edges,
                     spectral_cls=type(spectral), spectral_values=dict(spectral.values))


def sky_model_flux(model, lon, lat, omega, energy_true_edges) -> np.ndarray:
    """Flux (cm-2 s-1) of ``model`` per true-energy bin and pixel at its current parameters.

    ``flux_parts(model, lon, lat, omega, energy_true_edges).flux()``; see :func:`flux_parts`.

    Parameters
    ----------
    model : SkyModel
        A sky model with a surface brightness.
    lon, lat : array_like
        Pixel centres in the model's frame (deg).
    omega : array_like
        Pixel solid angles (sr).
    energy_true_edges : array_like or EnergyAxis
        True-energy bin edges (TeV).

    Returns
    -------
    numpy.ndarray
        Flux (cm-2 s-1), shape ``(n_true, *grid)``.
    """
    return flux_parts(model, lon, lat, omega, energy_true_edges).flux()
