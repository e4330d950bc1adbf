"""gammapy 2.1's predicted source counts for extended models on the seed's stacked dataset.

Run with the gammapy 2.1 virtual environment (benchmarks/setup_gammapy_env.sh):

    .venv-gammapy/bin/python tests/data/extended_npred/make_reference.py

Reads ``../shared/reference/gammapy-2.1-cta1dc-gc/stacked.fits.gz`` and, for each model in
``MODELS`` (an ECPL spectrum with one spatial shape at the Galactic Centre), writes to
``gammapy_npred.npz``: the source's npred summed over the map per reco-energy bin
(``<name>_spectrum``) and summed over energy on a 101 x 101 pixel cutout centred on the source
(``<name>_image``, rows = lat, columns = lon as in the dataset).
"""
from pathlib import Path

import numpy as np
import yaml
from gammapy.datasets import MapDataset
from gammapy.modeling.models import Models

HERE = Path(__file__).resolve().parent
REF = HERE.parents[2].parent / "shared" / "reference" / "gammapy-2.1-cta1dc-gc"
SPECTRAL = """
    spectral:
      type: ExpCutoffPowerLawSpectralModel
      parameters:
      - {name: index, value: 2.4}
      - {name: amplitude, value: 3.0e-12, unit: TeV-1 s-1 cm-2}
      - {name: reference, value: 1.0, unit: TeV}
      - {name: lambda_, value: 0.05, unit: TeV-1}
      - {name: alpha, value: 1.0}
"""
MODELS = {
    "point": "{type: PointSpatialModel, frame: galactic, parameters: [{name: lon_0, value: -0.047, unit: deg}, {name: lat_0, value: -0.053, unit: deg}]}",
    "gauss_small": "{type: GaussianSpatialModel, frame: galactic, parameters: [{name: lon_0, value: -0.047, unit: deg}, {name: lat_0, value: -0.053, unit: deg}, {name: sigma, value: 0.03, unit: deg}]}",
    "gauss": "{type: GaussianSpatialModel, frame: galactic, parameters: [{name: lon_0, value: -0.047, unit: deg}, {name: lat_0, value: -0.053, unit: deg}, {name: sigma, value: 0.2, unit: deg}]}",
    "gauss_icrs_elongated": "{type: GaussianSpatialModel, frame: icrs, parameters: [{name: lon_0, value: 266.42, unit: deg}, {name: lat_0, value: -29.0, unit: deg}, {name: sigma, value: 0.15, unit: deg}, {name: e, value: 0.6}, {name: phi, value: 30, unit: deg}]}",
    "disk": "{type: DiskSpatialModel, frame: galactic, parameters: [{name: lon_0, value: -0.047, unit: deg}, {name: lat_0, value: -0.053, unit: deg}, {name: r_0, value: 0.3, unit: deg}]}",
    "shell": "{type: ShellSpatialModel, frame: galactic, parameters: [{name: lon_0, value: 0.1, unit: deg}, {name: lat_0, value: 0.05, unit: deg}, {name: radius, value: 0.3, unit: deg}, {name: width, value: 0.1, unit: deg}]}",
    "gauss_general": "{type: GeneralizedGaussianSpatialModel, frame: galactic, parameters: [{name: lon_0, value: -0.047, unit: deg}, {name: lat_0, value: -0.053, unit: deg}, {name: r_0, value: 0.1, unit: deg}, {name: eta, value: 0.7}]}",
}


def main():
    ds = MapDataset.read(REF / "stacked.fits.gz", name="stacked")
    out = {}
    for name, spatial in MODELS.items():
        comp = {"name": "src", "type": "SkyModel", **yaml.safe_load(SPECTRAL), "spatial": yaml.safe_load(spatial)}
        ds.models = Models.from_dict({"components": [comp]})
        npred = ds.npred_signal().data.astype(float)
        m = ds.models["src"].spatial_model
        x, y = ds.counts.geom.to_image().coord_to_pix(m.position)
        ix, iy = int(np.round(np.ravel(x)[0])), int(np.round(np.ravel(y)[0]))
        out[f"{name}_spectrum"] = npred.sum(axis=(1, 2))
        out[f"{name}_image"] = npred.sum(axis=0)[iy - 50:iy + 51, ix - 50:ix + 51].astype(np.float32)
        out[f"{name}_center"] = np.array([iy, ix])
        print(name, out[f"{name}_spectrum"].sum())
    np.savez_compressed(HERE / "gammapy_npred.npz", **out)


if __name__ == "__main__":
    main()
