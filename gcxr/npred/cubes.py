"""Full-grid predicted-counts cubes of a dataset (:func:`npred_cubes`): background x its
spectral factor plus every source's npred on its cutout."""
from __future__ import annotations

import numpy as np
import xarray as xr

from ..contract import geom_of
from ..geom import EnergyAxis
from .evaluator import OutsideDataset, SourceEvaluator

__all__ = ["npred_cubes"]


def npred_cubes(ds: xr.Dataset, models, name: str | None = None, point_weights: str = "tent") -> xr.Dataset:
    """Full-grid ``npred``, ``npred_signal`` and ``npred_background`` cubes of a dataset.

    Parameters
    ----------
    ds : xarray.Dataset
        A reduced dataset.
    models : Models
        Sky models and background models.
    name : str, optional
        The dataset's name (default: its ``name`` attribute).
    point_weights : {'tent', 'cubic'}
        Rendering of point sources.

    Returns
    -------
    xarray.Dataset
        ``npred``, ``npred_signal``, ``npred_background`` on (energy, lat, lon).

    Examples
    --------
    >>> npred = npred_cubes(ds, models)['npred']     # doctest: +SKIP
    """
    geom, irf = geom_of(ds)
    name = name or ds.attrs.get("name", "")
    energy = EnergyAxis.from_coord(ds, "energy")
    bkg = np.asarray(ds["background"].values, float)
    bm = models.background_model(name)
    if bm is not None:
        bkg = bkg * bm.evaluate(energy.centers)[:, None, None]     # its norm model at the reco-bin centres
    sig = np.zeros_like(bkg)
    for m in models.sky_models:
        if not m.applies_to(name):
            continue
        try:
            ev = SourceEvaluator.build(m, ds, geom, irf, point_weights=point_weights)
        except OutsideDataset:
            continue                            # no counts from this source here
        spec_v = {p.name: p.value for p in m.spectral_model.parameters}
        spat_v = {p.name: p.value for p in m.spatial_model.parameters}
        sig[(slice(None),) + ev.cut] += ev.npred(spec_v, spat_v)
    coords = {k: ds.coords[k] for k in ("energy", "lat", "lon")}
    attrs = {"units": "1"}
    out = xr.Dataset({"npred": (("energy", "lat", "lon"), np.clip(bkg + sig, 0, None), attrs | {"long_name": "Predicted counts"}),
                      "npred_signal": (("energy", "lat", "lon"), sig, attrs | {"long_name": "Predicted source counts"}),
                      "npred_background": (("energy", "lat", "lon"), bkg, attrs | {"long_name": "Predicted background counts"})},
                     coords=coords)
    return out
