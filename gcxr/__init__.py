"""gcxr: 3D gamma-ray analysis on labelled arrays.

DL3 event lists and IRFs go in; counts, exposure, background, PSF and energy
dispersion cubes come out as xarray objects reduced lazily with dask; sky models
are fitted with a Poisson (Cash) likelihood and iminuit.
"""
from . import accessor as accessor  # registers the xarray Dataset accessor ds.gcxr
from . import estimators, plot
from .analysis import Analysis
from .config import AnalysisConfig, ConfigError
from .datasets import info, stack, stack_runs
from .datastore import DataStore, DataStoreError, RunRef
from .fit import FitResult, fit
from .geom import EnergyAxis, SkyGeom
from .models import Models, ModelError
from .npred import npred_cubes
from .reduce import ReductionSpec, reduce_run, reduce_run_lazy

__version__ = "0.1.0"

__all__ = ["Analysis", "AnalysisConfig", "ConfigError", "DataStore", "DataStoreError", "RunRef", "EnergyAxis",
           "SkyGeom", "ReductionSpec", "reduce_run", "reduce_run_lazy", "stack", "stack_runs", "info", "Models",
           "ModelError", "npred_cubes", "fit", "FitResult", "estimators", "plot", "__version__"]
