"""The IRFs of a reduced dataset at a sky position: PSF containment radii and the EDISP matrix.

Both read the dataset's IRF grid (``lon_irf``/``lat_irf``) as the forward
folding does: the PSF is interpolated bilinearly between IRF-grid pixels
(:func:`gcxr.npred.psf_profile_at`), the energy dispersion is taken from the
nearest IRF-grid pixel.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import xarray as xr

from ..contract import geom_of
from ..npred import RAD_SR_TO_DEG2, containment_radius, psf_profile_at

__all__ = ["psf_containment", "edisp_matrix"]


def _require(ds: xr.Dataset, names: Sequence[str], var: str, dims: Sequence[str], where: str) -> None:
    missing = [n for n in names if n not in ds.variables]
    if missing:
        raise KeyError(f"{where}: the dataset has no {', '.join(map(repr, missing))}; "
                       f"it has {sorted(map(str, ds.variables))}")
    lacking = [d for d in dims if d not in ds[var].dims]
    if lacking:
        raise ValueError(f"{where}: variable {var!r} has no dim {', '.join(map(repr, lacking))}; "
                         f"its dims are {tuple(map(str, ds[var].dims))}")
    if "obs" in ds.dims:
        raise ValueError(f"{where}: the dataset has an 'obs' dim ({ds.sizes['obs']} runs); "
                         f"select one run with ds.isel(obs=i)")


def _position(geom, position) -> tuple[float, float]:
    """(lon, lat) in the dataset frame from None (map centre), a (lon, lat) pair or a SkyCoord."""
    if position is None:
        lon, lat = geom.center
        return float(lon), float(lat)
    if hasattr(position, "transform_to"):
        sph = position.transform_to(geom.frame).spherical
        return float(sph.lon.deg), float(sph.lat.deg)
    try:
        lon, lat = (float(v) for v in position)
    except (TypeError, ValueError):
        raise TypeError(f"position must be (lon, lat) in deg in the dataset frame ({geom.frame}) or a SkyCoord, "
                        f"got {position!r}") from None
    return lon, lat


def _irf_pixel(ds: xr.Dataset, position, where: str):
    geom, irf = geom_of(ds)
    lon, lat = _position(geom, position)
    px, py = irf.world_to_pix(lon, lat)
    if not (-0.5 <= px <= irf.nx - 0.5 and -0.5 <= py <= irf.ny - 0.5):
        raise ValueError(f"{where}: position ({lon:.3f}, {lat:.3f}) deg ({geom.frame}) is outside the IRF grid "
                         f"of the dataset")
    return geom, irf, lon, lat


def _edges(ds: xr.Dataset, name: str) -> dict:
    b = np.asarray(ds[f"{name}_bounds"].values, float)
    return {f"{name}_min": (name, b[:, 0], {"units": "TeV"}), f"{name}_max": (name, b[:, 1], {"units": "TeV"})}


def psf_containment(ds: xr.Dataset, position=None, fractions: Sequence[float] = (0.68, 0.95)) -> xr.DataArray:
    """PSF containment radii (deg) vs true energy at a sky position.

    Parameters
    ----------
    ds : xarray.Dataset
        One run's (or a stacked) reduced dataset with ``psf`` on (energy_true, rad, lat_irf, lon_irf)
        and ``rad_bounds``.
    position : tuple of float or SkyCoord, optional
        (lon, lat) in the dataset's frame (deg), or a SkyCoord in any frame (default: the map centre).
    fractions : sequence of float
        Containment fractions, each in (0, 1).

    Returns
    -------
    xarray.DataArray
        Radii (deg) on (fraction, energy_true); NaN at true energies where the PSF is zero (no
        exposure).  ``attrs``: ``lon``, ``lat`` (the position, deg) and ``frame``.
    """
    where = "psf_containment"
    _require(ds, ["psf", "rad_bounds", "energy_true"], "psf", ("energy_true", "rad", "lat_irf", "lon_irf"), where)
    for f in fractions:
        if not 0 < f < 1:
            raise ValueError(f"{where}: containment fractions must be in (0, 1), got {f}")
    geom, irf, lon, lat = _irf_pixel(ds, position, where)
    psf = np.asarray(ds["psf"].transpose("energy_true", "rad", "lat_irf", "lon_irf").values, float)
    prof = psf_profile_at(psf, irf, lon, lat) * RAD_SR_TO_DEG2
    rb = np.asarray(ds["rad_bounds"].values, float)
    rad_edges = np.append(rb[:, 0], rb[-1, 1])
    valid = prof.sum(axis=1) > 0
    radii = np.array([np.where(valid, containment_radius(prof, rad_edges, float(f)), np.nan) for f in fractions])
    return xr.DataArray(radii.reshape(len(fractions), -1), dims=("fraction", "energy_true"),
                        coords={"fraction": np.asarray(fractions, float), "energy_true": ds["energy_true"].values},
                        name="containment_radius",
                        attrs={"units": "deg", "long_name": "PSF containment radius", "lon": lon, "lat": lat,
                               "frame": geom.frame})


def edisp_matrix(ds: xr.Dataset, position=None) -> xr.DataArray:
    """The energy-dispersion matrix (true x reconstructed energy) at a sky position.

    Parameters
    ----------
    ds : xarray.Dataset
        One run's (or a stacked) reduced dataset with ``edisp`` on (energy_true, energy, lat_irf,
        lon_irf), ``energy_true_bounds`` and ``energy_bounds``.
    position : tuple of float or SkyCoord, optional
        (lon, lat) in the dataset's frame (deg), or a SkyCoord in any frame (default: the map centre).

    Returns
    -------
    xarray.DataArray
        Probabilities per reconstructed bin on (energy_true, energy), from the nearest IRF-grid
        pixel, with the bin edges as ``energy_true_min/max`` and ``energy_min/max`` coordinates.
        ``attrs``: ``lon``, ``lat`` (the position, deg) and ``frame``.
    """
    where = "edisp_matrix"
    _require(ds, ["edisp", "energy_true_bounds", "energy_bounds"], "edisp",
             ("energy_true", "energy", "lat_irf", "lon_irf"), where)
    geom, irf, lon, lat = _irf_pixel(ds, position, where)
    ix, iy, _ = irf.world_to_index(np.array([lon]), np.array([lat]))
    ix, iy = int(np.clip(ix[0], 0, irf.nx - 1)), int(np.clip(iy[0], 0, irf.ny - 1))
    mat = ds["edisp"].transpose("energy_true", "energy", "lat_irf", "lon_irf").isel(lat_irf=iy, lon_irf=ix, drop=True)
    coords = {"energy_true": ds["energy_true"].values, "energy": ds["energy"].values}
    coords |= _edges(ds, "energy_true") | _edges(ds, "energy")
    return xr.DataArray(np.asarray(mat.values, float), dims=("energy_true", "energy"), coords=coords, name="edisp",
                        attrs={"long_name": "Probability per reconstructed bin", "lon": lon, "lat": lat,
                               "frame": geom.frame})
