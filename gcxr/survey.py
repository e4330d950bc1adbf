"""A survey-like simulated store: a strip of the Galactic plane in CTA-1DC GPS-like passes.

What to use when:

* :func:`simulate_survey` - one call (``gcxr simulate --survey N_RUNS``): the runs of
  :class:`SurveyPlan` simulated one at a time with the CTA-1DC IRFs and the sources of
  :func:`survey_models`, written as a GADF store, plus ``survey_models.yaml`` (the true
  sources), ``survey_models_joint.yaml`` (the same for the joint fit), ``survey_stacked.yaml``
  and ``survey_joint.yaml`` (analysis configs of the strip).
* :class:`SurveyPlan` - where the runs point: two rows at b = -1 and +1 deg, one pointing every
  ``spacing`` deg in l per row and pass; later passes are shifted in l by a fraction of the
  spacing (0.5, then 0.25, 0.75, ...), so the first N runs of a store cover the whole strip.
* :func:`survey_models` - a fixed-seed catalogue of sources spread along the strip, cycling
  through point, Gaussian, disk and shell shapes and power-law, cut-off power-law and
  log-parabola spectra.
* :func:`survey_config` - the AnalysisConfig of the strip (stacked or one dataset per run).
* :func:`joint_models` - the sources restricted (``datasets_names``) to the runs that reach them,
  for the joint fit: ``survey_models_joint.yaml``.

The 1DC Galactic-plane survey pointed 30-min runs along rows at b = +-1 deg, spaced by roughly
0.5-1 deg in l (visits repeated in later passes); the defaults follow that: 200 runs = two passes
of 2 x 50 pointings 0.6 deg apart over l = -15..15 deg. The simulation keeps one run's events in
memory at a time (events of a 30-min run with the South_z20_50h IRF: ~1.2e5, a few MB) and
writes the index files last, so an interrupted simulation leaves no indexed partial store.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .config import AnalysisConfig
from .io import write_json
from .models import (DiskSpatialModel, ExpCutoffPowerLawSpectralModel, GaussianSpatialModel, LogParabolaSpectralModel,
                     Models, PointSpatialModel, PowerLawSpectralModel, ShellSpatialModel, SkyModel)
from .progress import progress_bar
from .simulate import IRFSet, make_runs, run_rng, simulate_events, sky_models, store_irf, write_index, write_run_events

__all__ = ["SURVEY_IRF", "SurveyPlan", "survey_models", "joint_models", "survey_config", "simulate_survey",
           "default_survey_irf"]

#: The CTA-1DC IRF of the seed runs, relative to the data root ($GCXR_DATA, else $GAMMAPY_DATA).
SURVEY_IRF = "cta-1dc/caldb/data/cta/1dc/bcf/South_z20_50h/irf_file.fits"

SHAPES = ("point", "gaussian", "disk", "shell")
SPECTRA = ("pl", "ecpl", "lp")


def default_survey_irf() -> Path:
    """The CTA-1DC IRF file under $GCXR_DATA (else $GAMMAPY_DATA); FileNotFoundError if absent."""
    tried = []
    for var in ("GCXR_DATA", "GAMMAPY_DATA"):
        root = os.environ.get(var)
        if root:
            path = Path(root).expanduser() / SURVEY_IRF
            if path.exists():
                return path.resolve()
            tried.append(f"${var}/{SURVEY_IRF} ({path})")
    raise FileNotFoundError("the CTA-1DC IRF file was not found: tried "
                            + (", ".join(tried) if tried else "nothing ($GCXR_DATA and $GAMMAPY_DATA are unset)")
                            + "; set GCXR_DATA to the data root or pass irf=/path/to/irf_file.fits")


def _van_der_corput(k: int) -> float:
    """0, 1/2, 1/4, 3/4, 1/8, ... (base 2)."""
    x, f = 0.0, 0.5
    while k:
        x += f * (k & 1)
        k >>= 1
        f /= 2
    return x


@dataclass(frozen=True)
class SurveyPlan:
    """Pointings of a survey strip (galactic, deg) and the runs' livetime (s).

    The strip is ``l_center +- length / 2`` by ``+- height / 2`` in b. Each pass points
    ``n_per_row = floor(length / spacing)`` runs along each row in ``rows``, alternating rows at
    each l; pass p is at ``l_min + (j + f_p) * spacing`` with ``f_p = (0.25 + vdc(p)) mod 1``
    (vdc: 0, 1/2, 1/4, 3/4, ...): every pass lies inside the strip, the second interleaves the
    first, and any prefix of whole passes covers the whole strip.
    """

    l_center: float = 0.0
    length: float = 30.0
    height: float = 4.0
    rows: tuple[float, ...] = (-1.0, 1.0)
    spacing: float = 0.6
    livetime: float = 1800.0

    def __post_init__(self):
        if not (self.length > 0 and self.height > 0 and self.spacing > 0 and self.livetime > 0):
            raise ValueError(f"SurveyPlan: length, height, spacing and livetime must be positive, got {self}")
        if self.spacing > self.length:
            raise ValueError(f"SurveyPlan: spacing {self.spacing} deg is longer than the strip ({self.length} deg)")
        if not self.rows or any(abs(b) > self.height / 2 for b in self.rows):
            raise ValueError(f"SurveyPlan: rows {self.rows} must lie inside the strip, |b| <= {self.height / 2}")

    @property
    def n_per_row(self) -> int:
        """Runs per row in one pass."""
        return int(np.floor(self.length / self.spacing + 1e-9))

    @property
    def runs_per_pass(self) -> int:
        """Runs in one pass over every row."""
        return self.n_per_row * len(self.rows)

    @property
    def l_min(self) -> float:
        """Lowest longitude of the strip (deg)."""
        return self.l_center - self.length / 2

    def pointings(self, n_runs: int) -> list[tuple[float, float]]:
        """The first ``n_runs`` pointings (l in [0, 360), b), in observation order.

        Parameters
        ----------
        n_runs : int
            How many.

        Returns
        -------
        list of tuple
            (l, b) in deg.
        """
        if n_runs < 1:
            raise ValueError(f"SurveyPlan.pointings: n_runs must be >= 1, got {n_runs}")
        out: list[tuple[float, float]] = []
        p = 0
        while len(out) < n_runs:
            f = (0.25 + _van_der_corput(p)) % 1.0
            for j in range(self.n_per_row):
                lon = self.l_min + (j + f) * self.spacing
                for b in self.rows:
                    out.append((float(lon % 360.0), float(b)))
            p += 1
        return out[:n_runs]


def survey_models(n_sources: int = 18, seed: int = 0, plan: SurveyPlan | None = None,
                  margin: float = 1.0, max_abs_lat: float = 0.8):
    """A fixed-seed catalogue of ``n_sources`` sources along the strip (galactic frame).

    Source k has shape ``SHAPES[k % 4]`` and spectrum ``SPECTRA[k % 3]`` (every pairing occurs
    once 12 sources are drawn); it sits at l evenly spaced over the strip less ``margin`` (deg)
    at each end, jittered by a quarter of the spacing, and at ``|b| <= max_abs_lat``. Amplitudes
    at 1 TeV are log-uniform in 2e-12..1e-11 cm-2 s-1 TeV-1 (about 6-30 % of the Crab); sizes
    0.1-0.35 deg. Everything is drawn from ``numpy.random.default_rng([seed, 2026])``.

    Parameters
    ----------
    n_sources : int
        Sources.
    seed : int
        Random seed.
    plan : SurveyPlan, optional
        The strip and its pointings (default: ``SurveyPlan()``).
    margin : float
        Longitude margin at each end (deg).
    max_abs_lat : float
        Largest absolute latitude (deg).

    Returns
    -------
    Models
        The catalogue.
    """
    plan = plan or SurveyPlan()
    if n_sources < 1:
        raise ValueError(f"survey_models: n_sources must be >= 1, got {n_sources}")
    usable = plan.length - 2 * margin
    if usable <= 0:
        raise ValueError(f"survey_models: margin {margin} deg leaves no room on a {plan.length} deg strip")
    rng = np.random.default_rng([int(seed), 2026])
    step = usable / n_sources
    out = []
    for k in range(n_sources):
        u = rng.random(12)
        lon = (plan.l_min + margin + (k + 0.5) * step + (u[0] - 0.5) * 0.5 * step) % 360.0
        lat = float((2 * u[1] - 1) * max_abs_lat)
        amp = float(f"{np.exp(np.log(2e-12) + u[2] * np.log(5.0)):.3g}")
        shape, spec = SHAPES[k % len(SHAPES)], SPECTRA[k % len(SPECTRA)]
        if spec == "pl":
            spectral = PowerLawSpectralModel(index=round(2.0 + 0.8 * u[3], 3), amplitude=amp, reference=1.0)
        elif spec == "ecpl":
            spectral = ExpCutoffPowerLawSpectralModel(index=round(1.8 + 0.5 * u[3], 3), amplitude=amp,
                                                      reference=1.0, lambda_=round(0.05 + 0.25 * u[4], 3))
        else:
            spectral = LogParabolaSpectralModel(amplitude=amp, reference=1.0, alpha=round(2.0 + 0.6 * u[3], 3),
                                                beta=round(0.05 + 0.15 * u[4], 3))
        lon, lat = round(float(lon), 4), round(lat, 4)
        if shape == "point":
            spatial = PointSpatialModel(lon_0=lon, lat_0=lat, frame="galactic")
        elif shape == "gaussian":
            spatial = GaussianSpatialModel(lon_0=lon, lat_0=lat, sigma=round(0.1 + 0.2 * u[5], 3), frame="galactic")
        elif shape == "disk":
            spatial = DiskSpatialModel(lon_0=lon, lat_0=lat, r_0=round(0.15 + 0.2 * u[5], 3), frame="galactic")
        else:
            spatial = ShellSpatialModel(lon_0=lon, lat_0=lat, radius=round(0.2 + 0.15 * u[5], 3),
                                        width=round(0.05 + 0.05 * u[6], 3), frame="galactic")
            spatial.parameters["width"].frozen = True       # fit the radius; the thin width is poorly constrained
        out.append(SkyModel(spectral, spatial, name=f"src{k:02d}-{shape}-{spec}"))
    return Models(out)


def joint_models(models, pointings: dict[int, tuple[float, float]], offset_max: float = 2.5):
    """A copy of ``models`` in which each source applies only to the runs it can reach.

    ``pointings`` maps obs_id to the galactic (l, b) of the run; a run's dataset in a joint
    analysis (``stack: false``) is named ``obs-<obs_id>`` and covers the square of half-width
    ``offset_max`` around its pointing (bins beyond ``offset_max`` are masked). A source is given
    the runs whose square, widened by the source's evaluation radius, holds its centre: its
    ``datasets_names``. Sources that reach no run keep an empty list. gcxr's npred refuses a
    source whose cutout misses a dataset it applies to, so a joint survey fit needs this
    (``survey_models_joint.yaml``); gammapy's ``datasets_names`` mean the same.

    Parameters
    ----------
    models : Models
        The sources.
    pointings : dict
        obs_id -> (l, b) of each run (deg).
    offset_max : float
        Half-width of each run's square (deg).

    Returns
    -------
    Models
        The copy.
    """
    out = models.copy()
    ids = np.array(sorted(pointings), dtype=np.int64)
    pl = np.array([pointings[i][0] for i in ids], float)
    pb = np.array([pointings[i][1] for i in ids], float)
    for m in out:
        sp = getattr(m, "spatial_model", None)
        if sp is None or not hasattr(m, "datasets_names") or not hasattr(sp, "position"):
            continue
        if sp.frame != "galactic":
            raise ValueError(f"joint_models: source {m.name!r} is in frame {sp.frame!r}; the survey is galactic")
        lon, lat = sp.position
        reach = offset_max + float(getattr(sp, "evaluation_radius", 0.0) or 0.0)
        dl = (pl - lon + 180.0) % 360.0 - 180.0
        near = (np.abs(dl) < reach) & (np.abs(pb - lat) < reach)
        m.datasets_names = [f"obs-{int(i)}" for i in ids[near]]
    return out


def survey_config(store: str | Path, plan: SurveyPlan | None = None, stack: bool = True, binsz: float = 0.02,
                  offset_max: float = 2.5, obs_ids=None, energy_nbins: int = 10, energy_true_nbins: int = 14):
    """The AnalysisConfig of the whole strip: a galactic CAR grid of ``plan.length x plan.height``
    deg, ``binsz`` deg pixels, the seed's energy axes (0.1-10 TeV reco, 0.08-12 TeV true), runs
    cut at ``offset_max`` deg (selection and safe mask), ``stack`` true (one stacked dataset) or
    false (one dataset per run, each with its own background norm in a fit).

    Parameters
    ----------
    store : str or Path
        The data store.
    plan : SurveyPlan, optional
        The strip and its pointings (default: ``SurveyPlan()``).
    stack : bool
        One stacked dataset, or one per run.
    binsz : float
        Pixel size (deg).
    offset_max : float
        Run cut (deg).
    obs_ids : iterable of int, optional
        Runs to use (default: all).
    energy_nbins, energy_true_nbins : int
        Bins of the energy axes.

    Returns
    -------
    AnalysisConfig
        The config.
    """
    plan = plan or SurveyPlan()
    data = {
        "observations": {"datastore": str(Path(store).expanduser().resolve()),
                         "obs_ids": [int(i) for i in obs_ids] if obs_ids is not None else [],
                         "required_irf": ["aeff", "edisp", "psf", "bkg"]},
        "datasets": {
            "type": "3d", "stack": bool(stack),
            "geom": {"wcs": {"skydir": {"frame": "galactic", "lon": f"{plan.l_center} deg", "lat": "0 deg"},
                             "binsize": f"{binsz} deg",
                             "width": {"width": f"{plan.length} deg", "height": f"{plan.height} deg"},
                             "binsize_irf": "0.2 deg"},
                     "selection": {"offset_max": f"{offset_max} deg"},
                     "axes": {"energy": {"min": "0.1 TeV", "max": "10 TeV", "nbins": energy_nbins},
                              "energy_true": {"min": "0.08 TeV", "max": "12 TeV", "nbins": energy_true_nbins}}},
            "map_selection": ["counts", "exposure", "background", "psf", "edisp"],
            "safe_mask": {"methods": ["aeff-default", "offset-max"], "parameters": {"offset_max": f"{offset_max} deg"}},
        },
    }
    return AnalysisConfig.from_dict(data)


def simulate_survey(out_dir: str | Path, n_runs: int = 200, seed: int = 0, n_sources: int = 18,
                    plan: SurveyPlan | None = None, irf: str | Path | None = None, binsz: float = 0.02,
                    offset_max: float = 2.5, first_obs_id: int = 1, deadc: float = 0.98,
                    quiet: bool | None = None) -> dict:
    """Simulate a survey store in ``out_dir`` and write its models and analysis configs beside it.

    Writes the GADF store (``data/``, ``irf/``, index files), ``survey_models.yaml`` (the true
    sources, gcxr's models format), ``survey_models_joint.yaml`` (the same, each source restricted
    to the runs that reach it: :func:`joint_models`), ``survey_stacked.yaml`` and ``survey_joint.yaml`` (configs of
    the whole strip, ``stack`` true / false) and ``simulation.json`` (plan, seed, per-run counts).
    Returns the summary. Runs are simulated and written one at a time: memory is one run's
    events. Every run's events come from a generator seeded by ``(seed, obs_id)`` and the
    sources from ``seed``: the same arguments write the same files.

    Parameters
    ----------
    out_dir : str or Path
        The store's folder.
    n_runs : int
        Runs to simulate.
    seed : int
        Random seed.
    n_sources : int
        Sources in the catalogue.
    plan : SurveyPlan, optional
        The strip and its pointings (default: ``SurveyPlan()``).
    irf : str or Path, optional
        An IRF file (default: parametric IRFs).
    binsz : float
        Pixel size of the configs (deg).
    offset_max : float
        Run cut (deg).
    first_obs_id : int
        The first OBS_ID.
    deadc : float
        Dead-time fraction.
    quiet : bool, optional
        Hide progress.
    """
    plan = plan or SurveyPlan()
    irf_src = Path(irf).expanduser().resolve() if irf is not None else default_survey_irf()
    models = survey_models(n_sources, seed, plan)
    runs = make_runs(plan.pointings(n_runs), plan.livetime, frame="galactic", deadc=deadc,
                     first_obs_id=first_obs_id)
    out, irf_path = store_irf(out_dir, irf_src)
    irfs = IRFSet.from_file(irf_path)
    rows, n_events = [], []
    for run in progress_bar(runs, desc="simulate survey", unit="run", quiet=quiet):
        ev = simulate_events(run, irfs, models, run_rng(seed, run.obs_id))
        write_run_events(out, run, ev, compresslevel=1)
        n_events.append(len(ev))
        rows.append({**asdict(run), "ontime": run.ontime, "n_events": len(ev), "counts": ev.counts_by_component(),
                     "dropped": ev.dropped})
        del ev
    write_index(out, runs, n_events, irf_path)
    models.write(out / "survey_models.yaml", overwrite=True)
    gal = dict(zip([r.obs_id for r in runs], plan.pointings(n_runs)))
    joint_models(models, gal, offset_max).write(out / "survey_models_joint.yaml", overwrite=True)
    for name, stack in (("survey_stacked.yaml", True), ("survey_joint.yaml", False)):
        survey_config(out, plan, stack=stack, binsz=binsz, offset_max=offset_max).write(out / name, overwrite=True)
    summary = {"out_dir": str(out), "seed": seed, "irf": str(irf_path.relative_to(out)), "plan": asdict(plan),
               "n_runs": n_runs, "models": [m.name for m in sky_models(models)],
               "files": {"models": "survey_models.yaml", "models_joint": "survey_models_joint.yaml",
                         "config_stacked": "survey_stacked.yaml",
                         "config_joint": "survey_joint.yaml"},
               "runs": rows}
    write_json(summary, out / "simulation.json")
    return summary

