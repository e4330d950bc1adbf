"""Instrument response functions: each HDU read into an xarray.DataArray with named dims.

One module per component: :mod:`.aeff`, :mod:`.psf`, :mod:`.edisp`, :mod:`.background`.
"""
from .._maths import trapz_loglog
from .aeff import eval_aeff, eval_aeff_at, read_aeff
from .background import eval_bkg_rate, read_bkg
from .edisp import eval_edisp_kernel, read_edisp
from .psf import DEG2_PER_SR, RAD_EDGES, eval_psf_map, read_psf

__all__ = ["read_aeff", "eval_aeff", "eval_aeff_at", "read_psf", "eval_psf_map", "read_edisp", "eval_edisp_kernel",
           "read_bkg", "eval_bkg_rate", "trapz_loglog", "RAD_EDGES", "DEG2_PER_SR"]
