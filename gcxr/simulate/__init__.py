r"""Simulated DL3 data: parametric IRFs, event sampling, a GADF data-store writer.

What to use when:

* :func:`simulate_datastore` - one call: IRFs (parametric or a supplied file),
  events for every run, a complete GADF store on disk (what ``gcxr simulate``
  runs).
* :class:`ParametricIRF` / :func:`write_parametric_irfs` - CTA-like effective
  area, Gaussian PSF (``psf_3gauss`` or ``psf_table``), log-normal energy
  dispersion (``edisp_2d``) and background (``bkg_3d``) as GADF HDUs.
* :class:`IRFSet` - the four IRF HDUs of any IRF file (found by their HDUCLAS
  keywords), read with gcxr's own readers.
* :func:`make_runs`, :func:`simulate_events`, :func:`write_datastore` - the
  steps of :func:`simulate_datastore`, for custom observation plans.
* :func:`simulate_counts` - a Poisson realisation of a predicted-counts cube
  (closure tests at the cube level, no events).

Sampling (one Poisson process per run and component)
----------------------------------------------------
Sources: true energy and direction follow
:math:`\phi(E)\,S(\Omega)\,A_\mathrm{eff}(E, \theta(\Omega))\,T_\mathrm{live}`.
They are drawn by *thinning*: candidates from :math:`\phi(E)\,S(\Omega)\,
\hat A(E)` where :math:`\hat A` is the maximum of the interpolated effective
area over the energy cell and the offsets the source can reach (exact: a
bilinear interpolant peaks on its nodes or on the domain corners), each kept
with probability :math:`A_\mathrm{eff}/\hat A`.  The reconstructed direction is
the true one displaced by a radius drawn from the PSF at (E, offset) in a
uniform position angle; the reconstructed energy is ``E * migra`` with migra
drawn from the energy dispersion.

Background: the ``bkg_3d`` rate (per unit *ontime*) is integrated on a fine
(energy, FoV) grid, a Poisson number of events is drawn per cell, placed
uniformly in (lon, sin lat) of the field-of-view frame and power-law
distributed in energy within the cell.

The IRFs are evaluated with the interpolation gcxr's reduction uses (bilinear
in (ln E, offset); log-trilinear for the background), so the events follow the
response that the reduction predicts.  Every draw comes from a
``numpy.random.Generator`` seeded by ``(seed, obs_id)``: a run's events do not
depend on which other runs are simulated.

The package, by job: :mod:`~gcxr.simulate.irfs` (parametric IRFs, the IRF HDUs of a file, the
store's IRF file), :mod:`~gcxr.simulate.runs` (run specs, event lists, the GADF writers),
:mod:`~gcxr.simulate.events` (drawing sources' and background events) and
:mod:`~gcxr.simulate.store` (:func:`simulate_datastore`, :func:`simulate_counts`).
"""
from __future__ import annotations

from .events import CM2_PER_M2, sample_spatial, simulate_events, sky_models  # noqa: F401
from .events import sample_spatial as _sample_spatial  # noqa: F401  (the name tests import, as before the split)
from .irfs import IRFSet, ParametricIRF, irf_hdus, store_irf, write_parametric_irfs  # noqa: F401
from .runs import (MJDREF, SITE, T0_DEFAULT, EventList, RunSpec, SimulatedRun, make_runs, run_rng,  # noqa: F401
                   write_datastore, write_index, write_run_events)
from .store import DEFAULT_POINTINGS, default_models, simulate_counts, simulate_datastore  # noqa: F401

__all__ = ["ParametricIRF", "write_parametric_irfs", "IRFSet", "irf_hdus", "RunSpec", "make_runs", "EventList",
           "simulate_events", "SimulatedRun", "write_datastore", "write_run_events", "write_index",
           "simulate_datastore", "default_models",
           "simulate_counts", "MJDREF", "T0_DEFAULT"]
