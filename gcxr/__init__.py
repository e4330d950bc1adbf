"""gcxr: 3D gamma-ray analysis on labelled arrays.

DL3 event lists and IRFs go in; counts, exposure, background, PSF and energy
dispersion cubes come out as xarray objects reduced lazily with dask; sky models
are fitted with a Poisson (Cash) likelihood and iminuit.

``import gcxr`` is light: the public names below are imported on first use
(PEP 562 module ``__getattr__``), so ``gcxr --help`` and ``import gcxr`` do not
pay for xarray, dask, astropy or scipy.  ``from gcxr import Analysis`` works as
usual.  The ``ds.gcxr`` accessor is registered as soon as a module that makes
gcxr datasets is imported (:mod:`gcxr.geom`, which every one of them uses).
"""
from __future__ import annotations

import importlib
import sys
import types

__version__ = "0.1.0"

#: public name -> the submodule that defines it
_API = {
    "Analysis": "analysis",
    "AnalysisConfig": "config", "ConfigError": "config",
    "DataStore": "datastore", "DataStoreError": "datastore", "RunRef": "datastore",
    "EnergyAxis": "geom", "SkyGeom": "geom",
    "ReductionSpec": "reduce", "reduce_run": "reduce", "reduce_run_lazy": "reduce",
    "stack": "datasets", "stack_runs": "datasets", "info": "datasets",
    "Models": "models", "ModelError": "models",
    "npred_cubes": "npred",
    "fit": "fit", "FitResult": "fit",
}

#: submodules reachable as attributes without an explicit import (``gcxr.plot``)
_SUBMODULES = ("accessor", "analysis", "cli", "cluster", "config", "coords", "datasets", "datastore", "demo",
               "distributed", "download", "estimators", "fit", "geom", "io", "irf", "likelihood", "models", "npred",
               "plot", "progress", "reduce", "simulate", "stats", "testing")

__all__ = ["Analysis", "AnalysisConfig", "ConfigError", "DataStore", "DataStoreError", "RunRef", "EnergyAxis",
           "SkyGeom", "ReductionSpec", "reduce_run", "reduce_run_lazy", "stack", "stack_runs", "info", "Models",
           "ModelError", "npred_cubes", "fit", "FitResult", "estimators", "plot", "__version__"]


def __getattr__(name: str):
    """Import a public name (or a submodule) on first access and cache it in the module."""
    if name in _API:
        value = getattr(importlib.import_module(f".{_API[name]}", __name__), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module 'gcxr' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__) | set(_SUBMODULES))


class _Module(types.ModuleType):
    """``gcxr.fit`` is the function :func:`gcxr.fit.fit`, as with eager imports, even after the
    import system has bound the submodule ``gcxr.fit`` to that attribute (a data descriptor on the
    module's class wins over the attribute the import system sets)."""

    @property
    def fit(self):
        from .fit import fit  # deferred: keeps import gcxr light (gcxr.fit pulls in xarray and the likelihood)
        return fit

    @fit.setter
    def fit(self, value):      # the import system binding the submodule: the function stays visible
        pass


sys.modules[__name__].__class__ = _Module
