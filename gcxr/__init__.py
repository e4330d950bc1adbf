"""gcxr: 3D gamma-ray analysis on labelled arrays.

DL3 event lists and IRFs go in; counts, exposure, background, PSF and energy
dispersion cubes come out as xarray objects reduced lazily with dask; sky models
are fitted with a Poisson (Cash) likelihood and iminuit.
"""
from .config import AnalysisConfig, ConfigError
from .datastore import DataStore, DataStoreError, RunRef
from .geom import EnergyAxis, SkyGeom

__version__ = "0.1.0"

__all__ = ["AnalysisConfig", "ConfigError", "DataStore", "DataStoreError", "RunRef", "EnergyAxis", "SkyGeom",
           "__version__"]
