"""gammapy 2.1's flux cubes of template sky models, for gcxr's parity tests.

Run in gammapy's own environment (gcxr never imports gammapy)::

    GAMMAPY_DATA=../shared/data .venv-gammapy/bin/python \
        tests/data/templates/make_gammapy_template_flux.py ../shared tests/data/templates

It writes two small synthetic templates in the ICRS frame (``icrs_cube.fits``:
5 energy planes, unit cm-2 s-1 TeV-1 sr-1; ``icrs_image.fits``: a 2D image) and
``gammapy_template_flux.npz``: for each case the sky grid (CAR, CRVAL2 = 0, in
gcxr's SkyGeom parameters), the true-energy edges, the spectral parameters and
gammapy's ``SkyModel.integrate_geom(geom)`` flux (cm-2 s-1 per true-energy bin
and pixel) on all or a subset of the rows.  This is the flux that gammapy's
``MapEvaluator`` multiplies by the exposure (before the PSF); the script checks
that the evaluator of a MapDataset gives the same on the seed grid.
"""
import sys
import warnings
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

warnings.simplefilter("ignore")
from gammapy.datasets import MapDataset  # noqa: E402
from gammapy.maps import Map, MapAxis, WcsGeom  # noqa: E402
from gammapy.modeling.models import (  # noqa: E402
    PowerLawNormSpectralModel,
    PowerLawSpectralModel,
    SkyModel,
    TemplateSpatialModel,
)

shared = Path(sys.argv[1])
out = Path(sys.argv[2])
ref = shared / "reference" / "gammapy-2.1-cta1dc-gc"
fermi = shared / "data" / "fermi-3fhl-gc" / "gll_iem_v06_gc.fits.gz"

# ---------------------------------------------------------------- synthetic ICRS templates
def icrs_wcs(ra0, dec0, binsz, nx, ny):
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---CAR", "DEC--CAR"]
    w.wcs.crval = [ra0, 0.0]
    w.wcs.cdelt = [-binsz, binsz]
    w.wcs.crpix = [(nx + 1) / 2.0, (ny + 1) / 2.0 - dec0 / binsz]
    w.wcs.radesys = "ICRS"
    return w


# a cube around Sgr A* (ra 266.4, dec -28.94), 6 x 5 deg, smooth with a few bumps, E^-2.4 with a
# position-dependent tilt so that the energy interpolation matters
ra0, dec0 = 266.2, -29.1
w = icrs_wcs(ra0, dec0, 0.1, 60, 50)
yy, xx = np.mgrid[0:50, 0:60]
bumps = (np.exp(-0.5 * (((xx - 25) / 6.0) ** 2 + ((yy - 22) / 4.0) ** 2))
         + 0.5 * np.exp(-0.5 * (((xx - 45) / 3.0) ** 2 + ((yy - 35) / 8.0) ** 2)) + 0.05)
nodes = np.array([0.1, 0.3, 1.0, 3.0, 10.0])
tilt = 0.3 * (xx - 30) / 30.0
cube = np.stack([1e-9 * bumps * e ** (-2.4 + tilt) for e in nodes]).astype(np.float32)
cube_path = out / "icrs_cube.fits"
m = Map.from_geom(WcsGeom(w, npix=(60, 50), axes=[MapAxis.from_nodes(nodes * u.TeV, name="energy_true",
                                                                          interp="log")]),
                  data=cube, unit="cm-2 s-1 TeV-1 sr-1")
m.write(cube_path, overwrite=True)

# a 2D image, 2 x 2 deg at 0.05 deg, normalised by the model
w2 = icrs_wcs(266.6, -28.7, 0.05, 40, 40)
yy, xx = np.mgrid[0:40, 0:40]
image = (np.exp(-0.5 * (((xx - 17) / 5.0) ** 2 + ((yy - 21) / 7.0) ** 2)) + 0.01).astype(np.float32)
image_path = out / "icrs_image.fits"
fits.HDUList([fits.PrimaryHDU(data=image, header=w2.to_header())]).writeto(image_path, overwrite=True)

# ---------------------------------------------------------------- grids
stacked = MapDataset.read(ref / "stacked.fits.gz", name="stacked")
seed_geom = stacked.exposure.geom
e_axis = seed_geom.axes["energy_true"]


def grid_params(geom):
    wcs = geom.wcs
    assert wcs.wcs.crval[1] == 0.0
    return np.array([wcs.wcs.crval[0], wcs.wcs.cdelt[0], wcs.wcs.cdelt[1], wcs.wcs.crpix[0] - 1,
                     wcs.wcs.crpix[1] - 1, geom.data_shape[-1], geom.data_shape[-2]], dtype=float)


def small_geom(frame, lon0, lat_centre, binsz, nx, ny):
    wcs = WCS(naxis=2)
    a, b = ("GLON", "GLAT") if frame == "galactic" else ("RA--", "DEC-")
    wcs.wcs.ctype = [f"{a}-CAR", f"{b}-CAR"]
    wcs.wcs.crval = [lon0, 0.0]
    wcs.wcs.cdelt = [-binsz, binsz]
    wcs.wcs.crpix = [(nx + 1) / 2.0, (ny + 1) / 2.0 - lat_centre / binsz]
    return WcsGeom(wcs, npix=(nx, ny), axes=[e_axis])


small = small_geom("galactic", 1.0, 0.5, 0.02, 50, 50)
small_gc = small_geom("galactic", 359.5, -0.5, 0.05, 60, 60)

seed_rows = np.unique(np.r_[np.arange(0, 400, 13), np.arange(393, 400)])

cases = {
    "fermi_seed": dict(file=fermi, normalize=False, geom=seed_geom, rows=seed_rows,
                       spectral=PowerLawNormSpectralModel(norm=1.0, tilt=0.0)),
    "fermi_small": dict(file=fermi, normalize=False, geom=small, rows=None,
                        spectral=PowerLawNormSpectralModel(norm=0.7, tilt=0.2, reference=1 * u.TeV)),
    "fermi_shifted": dict(file=fermi, normalize=False, geom=small, rows=None, shift=(0.3, 0.1),
                          spectral=PowerLawNormSpectralModel(norm=1.0, tilt=0.0)),
    "fermi_normalized": dict(file=fermi, normalize=True, geom=small, rows=None,
                             spectral=PowerLawSpectralModel(index=2.3, amplitude=1e-11 * u.Unit("cm-2 s-1 TeV-1"))),
    "icrs_cube_seed": dict(file=cube_path, normalize=False, geom=seed_geom, rows=seed_rows,
                           spectral=PowerLawNormSpectralModel(norm=1.3, tilt=-0.1, reference=1 * u.TeV)),
    "icrs_image": dict(file=image_path, normalize=True, geom=small_gc, rows=None,
                       spectral=PowerLawSpectralModel(index=2.2, amplitude=1e-12 * u.Unit("cm-2 s-1 TeV-1"))),
}

arrays = {"energy_true_edges": e_axis.edges.to_value("TeV")}
for name, c in cases.items():
    spatial = TemplateSpatialModel.read(str(c["file"]), normalize=c["normalize"])
    if "shift" in c:
        spatial.lon_0.value = spatial.map_center.data.lon.deg + c["shift"][0]
        spatial.lat_0.value = spatial.map_center.data.lat.deg + c["shift"][1]
    model = SkyModel(spectral_model=c["spectral"], spatial_model=spatial, name=name)
    flux = model.integrate_geom(c["geom"]).quantity.to_value("cm-2 s-1")
    rows = np.arange(flux.shape[1]) if c["rows"] is None else c["rows"]
    arrays[f"{name}__flux"] = flux[:, rows, :]
    arrays[f"{name}__rows"] = rows
    arrays[f"{name}__grid"] = grid_params(c["geom"])
    arrays[f"{name}__frame"] = np.array(c["geom"].frame)
    arrays[f"{name}__spectral"] = np.array([c["spectral"].tag[0]] + [f"{p.name}={p.value!r}" for p in c["spectral"].parameters])
    arrays[f"{name}__spatial"] = np.array([spatial.lon_0.value, spatial.lat_0.value])
    print(name, flux.shape, float(flux.sum()), spatial.map.unit, flush=True)
    if name == "fermi_seed":
        # the evaluator's flux (what npred multiplies by the exposure) is the same cube
        stacked.models = [model]
        stacked.npred()
        ev = stacked.evaluators[name]
        ev_flux = ev.compute_flux().quantity.to_value("cm-2 s-1")
        print("evaluator cutout", ev.exposure.geom.data_shape, "same as integrate_geom:",
              ev_flux.shape == flux.shape and bool(np.array_equal(ev_flux, flux)), flush=True)

np.savez_compressed(out / "gammapy_template_flux.npz", **arrays)
