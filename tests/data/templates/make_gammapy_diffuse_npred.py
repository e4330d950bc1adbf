"""gammapy 2.1's predicted counts of the Fermi-LAT diffuse component on the seed's stacked dataset.

For the integration of templates into npred (not used by gcxr's template tests
themselves).  Run in gammapy's own environment::

    GAMMAPY_DATA=../shared/data .venv-gammapy/bin/python \
        tests/data/templates/make_gammapy_diffuse_npred.py ../shared tests/data/templates

The diffuse component of ``exercise_diffuse_models.yaml`` (TemplateSpatialModel
of gll_iem_v06_gc, normalize false, PowerLawNormSpectralModel norm 1, tilt 0)
alone, through the stacked dataset's exposure, PSF and energy dispersion:
``gammapy_diffuse_npred.npz`` holds ``npred_signal`` summed per reconstructed
energy bin (``per_energy``), its sum over 10 x 10 pixel blocks (``blocks``,
shape (10, 40, 50)) and the dataset's ``npred_signal`` total inside the fit
mask (E_reco >= 0.3 TeV) and the safe mask (``in_fit_mask``).
"""
import sys
import warnings
from pathlib import Path

import astropy.units as u
import numpy as np

warnings.simplefilter("ignore")
from gammapy.datasets import MapDataset  # noqa: E402
from gammapy.modeling.models import Models  # noqa: E402

shared = Path(sys.argv[1])
out = Path(sys.argv[2])
ref = shared / "reference" / "gammapy-2.1-cta1dc-gc"
dataset = MapDataset.read(ref / "stacked.fits.gz", name="stacked")
dataset.mask_fit = dataset.counts.geom.energy_mask(energy_min=0.3 * u.TeV, energy_max=None)
models = Models.read(ref / "exercise_diffuse_models.yaml")
dataset.models = [models["diffuse"]]
npred = dataset.npred_signal(model_names=["diffuse"]).data.astype(float)
n_e, ny, nx = npred.shape
blocks = npred.reshape(n_e, ny // 10, 10, nx // 10, 10).sum(axis=(2, 4))
mask = dataset.mask.data
np.savez_compressed(out / "gammapy_diffuse_npred.npz", per_energy=npred.sum(axis=(1, 2)), blocks=blocks,
                    in_fit_mask=np.array(float(npred[mask].sum())),
                    energy_edges=dataset.counts.geom.axes["energy"].edges.to_value("TeV"))
print("per reco-energy bin:", npred.sum(axis=(1, 2)))
print("in fit mask:", npred[mask].sum())
