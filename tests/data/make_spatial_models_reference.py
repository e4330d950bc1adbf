"""Reference numbers for tests/test_spatial_models.py, computed with gammapy 2.1.

Run in gammapy's venv (not gcxr's)::

    /work/main/.venv-gammapy/bin/python tests/data/make_spatial_models_reference.py

It writes ``tests/data/spatial_models_gammapy.json`` with

* ``values``: for each case (model class, frame, parameters) a list of
  (lon, lat) points in the model frame (deg) and gammapy's ``model(lon, lat)``
  in sr^-1, together with gammapy's ``evaluation_radius`` and
  ``evaluation_bin_size_min`` (deg);
* ``oversampling``: the factor gammapy's ``SpatialModel.integrate_geom`` picks
  for a map of a given pixel size (recorded by spying on ``WcsGeom.upsample``:
  1 when it does not upsample);
* ``yaml``: a gammapy-written model YAML with the new spatial models.
"""
from __future__ import annotations

import json
from pathlib import Path

import astropy.units as u
import gammapy
import numpy as np
from astropy.coordinates import SkyCoord
from gammapy.maps import WcsGeom
from gammapy.modeling.models import (
    DiskSpatialModel,
    GaussianSpatialModel,
    GeneralizedGaussianSpatialModel,
    Models,
    PointSpatialModel,
    PowerLawSpectralModel,
    Shell2SpatialModel,
    ShellSpatialModel,
    SkyModel,
)

OUT = Path(__file__).with_name("spatial_models_gammapy.json")
CLASSES = {c.__name__: c for c in (
    DiskSpatialModel, GaussianSpatialModel, GeneralizedGaussianSpatialModel,
    PointSpatialModel, Shell2SpatialModel, ShellSpatialModel,
)}

# (class, frame, parameters) -- centres at ordinary places, near lat -60 and
# next to lon 0/360 so that the points straddle the wrap.
CASES = [
    ("ShellSpatialModel", "icrs", dict(lon_0=83.63, lat_0=22.01, radius=0.5, width=0.2)),
    ("ShellSpatialModel", "galactic", dict(lon_0=359.9, lat_0=-0.1, radius=0.3, width=0.1)),
    ("ShellSpatialModel", "icrs", dict(lon_0=120.0, lat_0=-60.3, radius=1.0, width=0.5)),
    ("ShellSpatialModel", "galactic", dict(lon_0=0.05, lat_0=1.0, radius=0.0, width=0.4)),
    ("Shell2SpatialModel", "icrs", dict(lon_0=83.63, lat_0=22.01, r_0=0.7, eta=0.3)),
    ("Shell2SpatialModel", "galactic", dict(lon_0=359.95, lat_0=0.2, r_0=0.4, eta=0.07)),
    ("Shell2SpatialModel", "icrs", dict(lon_0=300.0, lat_0=-59.8, r_0=2.0, eta=1.0)),
    ("GeneralizedGaussianSpatialModel", "icrs", dict(lon_0=83.63, lat_0=22.01, r_0=0.3, eta=0.5, e=0.0, phi=0.0)),
    ("GeneralizedGaussianSpatialModel", "galactic", dict(lon_0=359.9, lat_0=-0.05, r_0=0.2, eta=0.1, e=0.0, phi=0.0)),
    ("GeneralizedGaussianSpatialModel", "galactic", dict(lon_0=0.1, lat_0=0.3, r_0=0.5, eta=1.0, e=0.7, phi=45.0)),
    ("GeneralizedGaussianSpatialModel", "icrs", dict(lon_0=10.0, lat_0=-60.0, r_0=0.4, eta=0.3, e=0.9, phi=-120.0)),
    ("GeneralizedGaussianSpatialModel", "icrs", dict(lon_0=359.8, lat_0=-20.0, r_0=1.5, eta=0.75, e=0.4, phi=170.0)),
]

OVERSAMPLING = [
    ("GaussianSpatialModel", dict(sigma=0.1), [0.02, 0.05, 0.1, 0.2]),
    ("GaussianSpatialModel", dict(sigma=0.01, e=0.5), [0.02, 0.1]),
    ("GaussianSpatialModel", dict(sigma=0.3), [0.1, 0.2, 0.3, 0.7]),  # ratios on integers
    ("GaussianSpatialModel", dict(sigma=0.0), [0.1]),
    ("DiskSpatialModel", dict(r_0=0.3, edge_width=0.1), [0.01, 0.02, 0.1]),
    ("DiskSpatialModel", dict(r_0=0.005, edge_width=0.01), [0.2]),
    ("ShellSpatialModel", dict(radius=0.5, width=0.07), [0.02, 0.05, 0.2]),
    ("Shell2SpatialModel", dict(r_0=0.6, eta=0.1), [0.02, 0.05, 0.1]),
    ("GeneralizedGaussianSpatialModel", dict(r_0=0.4, eta=0.5, e=0.3), [0.01, 0.02, 0.05, 0.1]),
    ("GeneralizedGaussianSpatialModel", dict(r_0=0.1, eta=1.0, e=0.0), [0.02, 0.1]),
    ("PointSpatialModel", dict(), [0.02, 0.1]),
]


ANGLES = {"lon_0", "lat_0", "radius", "width", "r_0", "sigma", "phi"}


def build(name, frame="icrs", **pars):
    """The gammapy model, angles given in deg."""
    kw = {k: (v * u.deg if k in ANGLES else v) for k, v in pars.items()}
    return CLASSES[name](frame=frame, **kw)


def points(lon_0, lat_0, frame, extent):
    """Points around the centre: rings at fractions of ``extent`` and several
    position angles, plus the centre and a few far away."""
    c = SkyCoord(lon_0 * u.deg, lat_0 * u.deg, frame=frame)
    out = [(lon_0, lat_0)]
    for frac in (0.05, 0.3, 0.55, 0.8, 0.95, 1.02, 1.3, 2.0, 4.0):
        for pa in (0.0, 37.0, 90.0, 160.0, 250.0, 315.0):
            p = c.directional_offset_by(pa * u.deg, frac * extent * u.deg)
            sph = p.spherical
            out.append((float(sph.lon.wrap_at(360 * u.deg).deg), float(sph.lat.deg)))
    return out


def main() -> None:
    values = []
    for name, frame, pars in CASES:
        m = build(name, frame, **pars)
        extent = m.evaluation_radius.to_value("deg")
        pts = points(pars["lon_0"], pars["lat_0"], frame, extent)
        lon = np.array([p[0] for p in pts])
        lat = np.array([p[1] for p in pts])
        if frame == "galactic" or pars["lon_0"] > 359 or pars["lon_0"] < 1:
            # the same points written with lon in (-180, 180] too
            lon = np.concatenate([lon, np.where(lon > 180, lon - 360, lon)])
            lat = np.concatenate([lat, lat])
        val = m(lon * u.deg, lat * u.deg).to_value("sr-1")
        values.append({
            "model": name, "frame": frame, "parameters": pars,
            "lon": lon.tolist(), "lat": lat.tolist(), "value_sr-1": val.tolist(),
            "evaluation_radius_deg": float(extent),
            "evaluation_bin_size_min_deg": float(m.evaluation_bin_size_min.to_value("deg")),
        })

    seen: list[int] = []
    orig = WcsGeom.upsample

    def spy(self, factor, *args, **kwargs):
        seen.append(int(factor))
        return orig(self, factor, *args, **kwargs)

    WcsGeom.upsample = spy
    overs = []
    for name, pars, binszs in OVERSAMPLING:
        m = build(name, lon_0=10.0, lat_0=-30.0, **pars)
        bsm = m.evaluation_bin_size_min
        for binsz in binszs:
            geom = WcsGeom.create(skydir=(10.0, -30.0), binsz=binsz, width=(1.0, 1.0), frame="icrs")
            seen.clear()
            m.integrate_geom(geom)
            factor = seen[0] if seen else 1
            overs.append({"model": name, "parameters": pars, "binsz_deg": binsz, "factor": factor,
                          "evaluation_bin_size_min_deg": None if bsm is None else float(bsm.to_value("deg"))})
    WcsGeom.upsample = orig

    sky = [
        SkyModel(PowerLawSpectralModel(),
                 build("ShellSpatialModel", "galactic", lon_0=359.9, lat_0=-0.1, radius=0.3, width=0.1),
                 name="shell-src"),
        SkyModel(PowerLawSpectralModel(), build("Shell2SpatialModel", lon_0=83.63, lat_0=22.01, r_0=0.7, eta=0.3),
                 name="shell2-src"),
        SkyModel(PowerLawSpectralModel(), build("GeneralizedGaussianSpatialModel", "galactic", lon_0=0.1, lat_0=0.3,
                                         r_0=0.5, eta=1.0, e=0.7, phi=45.0), name="gg-src"),
    ]
    sky[0].spatial_model.width.frozen = True
    sky[2].spatial_model.e.frozen = False
    yaml_text = Models(sky).to_yaml()

    OUT.write_text(json.dumps({
        "gammapy_version": gammapy.__version__,
        "generator": "tests/data/make_spatial_models_reference.py",
        "values": values, "oversampling": overs, "yaml": yaml_text,
    }, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
