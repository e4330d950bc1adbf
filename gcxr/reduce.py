"""Per-run reduction: DL3 run -> cubes on the run's cutout of the analysis grid.

:func:`reduce_run` does the work for one run with numpy and returns an
``xarray.Dataset``; :func:`reduce_run_lazy` wraps it in one dask task per run
(named ``gcxr-reduce-<obs_id>-<token of the run, the settings and the layout>``) whose outputs are dask arrays of known shape,
so that building the dataset reads nothing.  Conventions (cutout, exposure with
livetime, background with ontime, safe-mask rules) are those of the reference
workflow, written out in docs/conventions.md.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import dask
import dask.base
import dask.array as dsa
import numpy as np
import xarray as xr

from ._testhook import pause_point
from .background import ExclusionMask, fov_background_norm
from .contract import VARIABLES, make_variable, run_coords
from .coords import icrs_to_frame_fast, icrs_to_frame_float32, lonlat_to_unit, separation_deg, to_fov, transform_lonlat
from .datastore import DataStoreError, RunRef, open_hdu, read_events, read_gti
from .geom import EnergyAxis, SkyGeom
from .irf import RAD_EDGES, eval_edisp_kernel, eval_psf_map, read_aeff, read_bkg, read_edisp, read_psf
from .irf.aeff import AeffEvaluator
from .irf.background import BkgEvaluator
from .safe_mask import SAFE_MASK_METHODS, edisp_mask_neighbours, fixed_offset_pixels, irf_grid_weights, \
    safe_energy_range

__all__ = ["ReductionSpec", "reduce_run", "reduce_run_arrays", "reduce_run_lazy", "run_layout"]


@dataclass(frozen=True)
class ReductionSpec:
    """Everything a worker needs to reduce a run (small, hashable, picklable)."""

    geom: SkyGeom
    energy: EnergyAxis
    energy_true: EnergyAxis
    binsz_irf: float = 0.2
    cutout_width: float = 5.0                    # deg (2 x selection.offset_max)
    safe_mask_methods: tuple[str, ...] = ("aeff-default",)
    offset_max: float = 3.0                      # deg, offset-max safe-mask cut
    aeff_percent: float = 10.0
    bias_percent: float = 10.0
    rad_edges: tuple[float, ...] = tuple(RAD_EDGES)
    map_selection: tuple[str, ...] = ("counts", "exposure", "background", "psf", "edisp")
    fixed_offset: float | None = None            # deg: safe-mask IRFs taken this far north of the pointing
    background_method: str | None = None         # None or "fov_background"
    fov_min_counts: float = 0.0                  # FoVBackgroundMaker requirements
    fov_min_npred_background: float = 0.0
    exclusion: ExclusionMask | None = None       # on the analysis grid (True = used for the FoV norm)

    def __post_init__(self):
        bad = [m for m in self.safe_mask_methods if m not in SAFE_MASK_METHODS]
        if bad:
            raise ValueError(f"unknown safe_mask method(s) {bad}; valid: {list(SAFE_MASK_METHODS)}")
        if self.background_method not in (None, "fov_background"):
            raise ValueError(f"background_method: only None or 'fov_background', got {self.background_method!r}")
        if self.exclusion is not None and self.exclusion.shape != self.geom.shape:
            raise ValueError(f"exclusion mask shape {self.exclusion.shape} differs from the grid's {self.geom.shape}")

    @property
    def irf_geom(self) -> SkyGeom:
        """The coarse grid for PSF and EDISP maps: same centre and width, ``binsz_irf`` pixels."""
        g = self.geom
        return SkyGeom.create(g.center, self.binsz_irf, (g.nx * g.binsz, g.ny * g.binsz), g.frame)


@dataclass(frozen=True)
class RunLayout:
    """Where a run sits in the analysis grid (computed from the pointing alone)."""

    obs_id: int
    lon_pnt: float
    lat_pnt: float
    slices: tuple[slice, slice]
    irf_slices: tuple[slice, slice]
    extra: dict = field(default_factory=dict, compare=False)


def _pointing(run: RunRef) -> tuple[float, float]:
    if np.isfinite(run.ra_pnt) and np.isfinite(run.dec_pnt):
        return run.ra_pnt, run.dec_pnt
    _, hdr = open_hdu(run.hdu("events"), run.obs_id)
    return float(hdr["RA_PNT"]), float(hdr["DEC_PNT"])


def run_layout(run: RunRef, spec: ReductionSpec, pointing: tuple[float, float] | None = None) -> RunLayout:
    """Where a run's cutout sits in the analysis grid, from its pointing alone (no file is read).

    Parameters
    ----------
    run : RunRef
        The run.
    spec : ReductionSpec
        The reduction specification.
    pointing : tuple of float, optional
        (RA, Dec) in deg (default: the obs-index's).

    Returns
    -------
    RunLayout
        The slices of the cutout in the fine and IRF grids; :class:`DataStoreError` if it
        overlaps no pixel.
    """
    ra, dec = pointing if pointing is not None else _pointing(run)
    lon, lat = transform_lonlat(np.array([ra]), np.array([dec]), "icrs", spec.geom.frame)
    lon, lat = float(lon[0]), float(lat[0])
    try:
        sl = spec.geom.cutout_slices(lon, lat, int(np.rint(spec.cutout_width / spec.geom.binsz)))
        irf_n = int(np.rint(max(spec.cutout_width / spec.binsz_irf, 3)))
        isl = spec.irf_geom.cutout_slices(lon, lat, irf_n)
    except ValueError:
        raise DataStoreError(f"run {run.obs_id}: pointing (RA {ra:.3f}, Dec {dec:.3f}) is more than "
                             f"{spec.cutout_width / 2:.2f} deg outside the analysis geometry; "
                             "the run overlaps no pixel") from None
    return RunLayout(run.obs_id, lon, lat, sl, isl)


# --------------------------------------------------------------------------- the work
BLOCK_PIXELS = 8192      # pixels per block of the fine-grid IRF evaluation (temporaries stay in cache)


def _row_blocks(ny: int, nx: int = 1, pixels: int = BLOCK_PIXELS):
    size = max(1, pixels // max(nx, 1))
    for start in range(0, ny, size):
        yield slice(start, min(start + size, ny))


def _reverse_lon(ev) -> bool:
    """H.E.S.S. DR1 background models are aligned with FoV longitude growing with RA."""
    h = ev.header
    return str(h.get("CREATOR", "")).strip() == "SASH FITS::EventListWriter" and \
        str(h.get("HDUVERS", "")).strip() == "0.2"


class _Clock:
    """Adds the CPU time of this thread since the previous mark to ``out[stage]`` (no-op if ``out`` is None)."""

    def __init__(self, out: dict | None):
        self.out = out
        self.t = time.thread_time() if out is not None else 0.0

    def __call__(self, stage: str) -> None:
        if self.out is not None:
            t = time.thread_time()
            self.out[stage] = self.out.get(stage, 0.0) + (t - self.t)
            self.t = t


def reduce_run(run: RunRef, spec: ReductionSpec, layout: RunLayout | None = None,
               timings: dict | None = None) -> xr.Dataset:
    """Reduce one run to counts, exposure, background, PSF, EDISP and safe mask on its cutout.

    ``timings``: if a dict is given, the CPU seconds (of the calling thread) spent in each
    stage are added to it (for profiling; see benchmarks/profile_reduce.py).

    Parameters
    ----------
    run : RunRef
        The run.
    spec : ReductionSpec
        The grid, energy axes and safe-mask settings.
    layout : RunLayout, optional
        The run's place in the grid (default: :func:`run_layout`).
    timings : dict, optional
        Receives CPU seconds per stage.

    Returns
    -------
    xarray.Dataset
        The run dataset.
    """
    arrays, meta = reduce_run_arrays(run, spec, layout, timings)
    clock = _Clock(timings)
    ds = build_run_dataset(run.obs_id, spec, meta.pop("layout"), **meta, **arrays)
    clock("build_dataset")
    return ds


def reduce_run_arrays(run: RunRef, spec: ReductionSpec, layout: RunLayout | None = None,
                      timings: dict | None = None, for_stacking: bool = False) -> tuple[dict, dict]:
    """The numpy work of :func:`reduce_run`: ``(arrays, meta)``.

    ``arrays`` maps variable names of :data:`gcxr.contract.VARIABLES` to numpy arrays (``None`` where a
    product is not made); ``meta`` holds ``layout``, ``livetime``, ``ontime``, ``pointing``
    and ``events`` (events in the file, events binned).

    With ``for_stacking=True`` the IRFs are evaluated only where the stacked dataset uses
    them: exposure and background inside the offset-max circle (when that safe-mask method is
    on), PSF and EDISP maps at the coarse pixels with a nonzero stacking weight
    (``mask_safe_psf``, ``mask_safe_edisp``). Elsewhere these arrays are 0; every product
    that enters the stack (``stack``'s masked sums) is unchanged.

    Parameters
    ----------
    run : RunRef
        The run.
    spec : ReductionSpec
        The grid, energy axes and safe-mask settings.
    layout : RunLayout, optional
        The run's place in the grid (default: :func:`run_layout`).
    timings : dict, optional
        Receives CPU seconds per stage.
    for_stacking : bool
        Evaluate the IRFs only where stacking uses them.
    """
    clock = _Clock(timings)
    pause_point("reduce")                   # tests only: GCXR_TEST_PAUSE_AT=reduce (gcxr._testhook)
    ev = read_events(run)
    start, stop = read_gti(run)
    clock("read_events_gti")
    layout = layout or run_layout(run, spec, (ev.ra_pnt, ev.dec_pnt))
    ontime = float(np.sum(stop - start))
    livetime = ontime * ev.deadc
    if ontime <= 0:
        raise DataStoreError(f"run {run.obs_id}: zero or negative ontime in GTI ({ontime} s)")
    g = spec.geom
    ys, xs = layout.slices
    sub = g.slice(ys, xs)
    lon_p, lat_p = layout.lon_pnt, layout.lat_pnt
    ra_p, dec_p = ev.ra_pnt, ev.dec_pnt
    lon1, lat1 = sub.lon[None, :], sub.lat[:, None]              # the grid is separable: 1-D coordinates
    E, Et = spec.energy, spec.energy_true
    sel = set(spec.map_selection)
    methods = spec.safe_mask_methods
    energy_methods = [m for m in methods if m != "offset-max"]

    # counts: one pass of index arithmetic and a bincount
    ie = np.searchsorted(E.edges_array, ev.energy, side="right") - 1
    in_e = np.flatnonzero((ie >= 0) & (ie < E.nbin))                 # energy first: fewer directions to transform
    ie = ie[in_e]
    ix, iy, ok = _event_pixels(ev.ra[in_e], ev.dec[in_e], sub)
    n_in = int(np.count_nonzero(ok))
    counts = np.bincount((ie[ok] * sub.ny + iy[ok]) * sub.nx + ix[ok],
                         minlength=E.nbin * sub.ny * sub.nx).reshape(E.nbin, sub.ny, sub.nx).astype(np.int32)
    clock("counts")

    # IRF tables (each read once per file)
    aeff = read_aeff(run.hdu("aeff"))
    make_bkg = "bkg" in run.hdu_types and "background" in sel
    bkg = read_bkg(run.hdu("bkg")) if make_bkg else None
    psf_tab = read_psf(run.hdu("psf")) if ("psf" in sel and "psf" in run.hdu_types) else None
    ed_tab = read_edisp(run.hdu("edisp")) if ("edisp" in sel and "edisp" in run.hdu_types) else None
    clock("read_irfs")

    # exposure (livetime) and background (ontime) on the fine grid, in blocks of rows
    sep = separation_deg(lon1, lat1, lon_p, lat_p)
    inside = sep < spec.offset_max if "offset-max" in methods else None
    restrict = for_stacking and inside is not None
    restrict_bkg = restrict and "bkg-peak" not in energy_methods     # bkg-peak sums the whole cutout
    aeff_eval = AeffEvaluator(aeff, Et.centers)
    exposure = (np.zeros if restrict else np.empty)((Et.nbin,) + sub.shape)
    background = (np.zeros if restrict_bkg else np.empty)((E.nbin,) + sub.shape) if make_bkg else None
    if make_bkg:
        bkg_eval = BkgEvaluator(bkg, E.edges_array)
        omega_t = sub.solid_angle()[:, :1] * ontime                  # per row (sr s)
        rev = _reverse_lon(ev)
    for rows in _row_blocks(sub.ny, sub.nx):
        cols = slice(None)
        if restrict:                                                 # columns of these rows inside the circle
            c = np.flatnonzero(inside[rows].any(axis=0))
            cols = slice(c[0], c[-1] + 1) if c.size else slice(0, 0)
        exposure[:, rows, cols] = aeff_eval(sep[rows, cols], livetime)                  # m2 s
        if make_bkg:
            bcols = cols if restrict_bkg else slice(None)
            unit = lonlat_to_unit(lon1[:, bcols], lat1[rows])
            fov_lon, fov_lat = to_fov(unit, ra_p, dec_p, g.frame, reverse_lon=rev)
            background[:, rows, bcols] = bkg_eval.integrate(fov_lon, fov_lat, omega_t[rows])   # at reco edges
    clock("exposure_background")

    # coarse grid: exposure, and EDISP at the centre if a safe-mask method needs it
    iys, ixs = layout.irf_slices
    isub = spec.irf_geom.slice(iys, ixs)
    isep = separation_deg(isub.lon[None, :], isub.lat[:, None], lon_p, lat_p)
    irf_exposure = aeff_eval(isep, livetime)
    cy, cx = (sub.ny - 1) // 2, (sub.nx - 1) // 2          # where aeff-max and edisp-bias look
    icy, icx = (isub.ny - 1) // 2, (isub.nx - 1) // 2
    if spec.fixed_offset is not None and energy_methods:
        (cy, cx), (icy, icx) = fixed_offset_pixels(run.obs_id, ra_p, dec_p, spec.fixed_offset, sub, isub)
    edisp = None
    if ed_tab is not None and not for_stacking:
        edisp = eval_edisp_kernel(ed_tab, Et.centers, E.edges_array, isep)
        clock("edisp")

    # safe mask
    mask = np.ones((E.nbin,) + sub.shape, bool)
    if background is not None:
        mask &= np.isfinite(background) & (background > 0)
    if inside is not None:
        mask &= inside[None]
    if energy_methods:
        bkg_spec = background.sum(axis=(1, 2)) if background is not None else np.zeros(E.nbin)
        if ed_tab is None:
            ed_c = np.eye(Et.nbin, E.nbin)
        elif edisp is not None:
            ed_c = edisp[:, :, icy, icx]
        else:
            ed_c = eval_edisp_kernel(ed_tab, Et.centers, E.edges_array, isep[icy:icy + 1, icx:icx + 1])[:, :, 0, 0]
        expo_c = aeff_eval(sep[cy:cy + 1, cx:cx + 1], livetime)[:, 0, 0]
        keep = safe_energy_range(energy_methods, aeff, spec, expo_c, bkg_spec, ed_c)
        mask &= keep[:, None, None]
    background_norm = None
    if spec.background_method == "fov_background" and background is not None:
        background_norm = _fov_normalise(counts, background, mask, spec, layout)
    w_psf, w_edisp = irf_grid_weights(mask, sub, isub, edisp_mask_neighbours(E))
    clock("safe_mask")

    # PSF and EDISP maps on the coarse grid (for stacking: only where they are weighted)
    rad_edges = np.asarray(spec.rad_edges)
    psf = None
    if psf_tab is not None:
        psf = _eval_at(lambda o: eval_psf_map(psf_tab, Et.centers, o, rad_edges), isep,
                       w_psf if for_stacking else None)
        clock("psf")
    if ed_tab is not None and edisp is None:
        edisp = _eval_at(lambda o: eval_edisp_kernel(ed_tab, Et.centers, E.edges_array, o), isep,
                         w_edisp.any(axis=0))
        clock("edisp")
    arrays = {"counts": counts, "exposure": exposure, "background": background, "mask_safe": mask,
              "psf": psf, "edisp": edisp, "exposure_irf": irf_exposure,
              "mask_safe_psf": w_psf, "mask_safe_edisp": w_edisp, "background_norm": background_norm}
    meta = {"layout": layout, "livetime": livetime, "ontime": ontime, "pointing": (ra_p, dec_p),
            "events": (int(ev.energy.size), n_in)}
    return arrays, meta


def _fov_normalise(counts, background, mask, spec: ReductionSpec, layout: RunLayout) -> np.ndarray:
    """gammapy's FoVBackgroundMaker on one run: scale ``background`` in place by the norm fitted
    over the safe, non-excluded bins; a run that fails the requirements loses its safe mask
    (``mask`` is cleared in place).  Returns the norm as a 0-d array."""
    use = mask
    if spec.exclusion is not None:
        ys, xs = layout.slices
        use = mask & spec.exclusion.array[ys, xs][None]
    res = fov_background_norm(counts, background, use, spec.fov_min_counts, spec.fov_min_npred_background)
    if res.ok:
        background *= res.norm
    else:
        mask[...] = False
    return np.asarray(res.norm)


BORDER_TOL = 1e-6     # pixels: events this close to a pixel border are placed with astropy


def _event_pixels(ra, dec, sub: SkyGeom):
    """Pixel indices of event directions, as binning astropy's transform of the columns gives them.

    The numpy rotation agrees with astropy to ~1e-11 deg; only events within ``BORDER_TOL``
    pixels of a border could land in another pixel, so those few are transformed again with
    astropy (:func:`gcxr.coords.icrs_to_frame_float32`).
    """
    lon, lat = icrs_to_frame_fast(ra, dec, sub.frame)
    if sub.frame != "icrs":
        x, y = sub.world_to_pix(lon, lat)
        fx, fy = x + 0.5, y + 0.5
        near = np.flatnonzero((np.abs(fx - np.rint(fx)) < BORDER_TOL) | (np.abs(fy - np.rint(fy)) < BORDER_TOL)
                              | (np.abs(lat) > 89.9))                 # longitude ill-conditioned at the poles
        if near.size:
            lon[near], lat[near] = icrs_to_frame_float32(ra[near], dec[near], sub.frame)
    return sub.world_to_index(lon, lat)


def _eval_at(fn, offset: np.ndarray, where: np.ndarray | None) -> np.ndarray:
    """``fn(offset)`` -> ``(a, b, *offset.shape)``, evaluated only at ``where`` (zeros elsewhere)."""
    if where is None:
        return fn(offset)
    idx = np.flatnonzero(where)
    vals = fn(offset.ravel()[idx])                                    # (a, b, n)
    out = np.zeros(vals.shape[:2] + (offset.size,))
    out[:, :, idx] = vals
    return out.reshape(vals.shape[:2] + offset.shape)


def _dataset_attrs(spec, layout, pointing):
    return {"obs_id": int(layout.obs_id),
            "ra_pnt": float(pointing[0]), "dec_pnt": float(pointing[1]), "frame": spec.geom.frame,
            "slice_lat": [layout.slices[0].start, layout.slices[0].stop],
            "slice_lon": [layout.slices[1].start, layout.slices[1].stop]}


def build_run_dataset(obs_id, spec, layout, *, livetime, ontime, pointing, events=None, **arrays) -> xr.Dataset:
    data_vars = {name: make_variable(name, arr) for name, arr in arrays.items() if arr is not None}
    data_vars["livetime"] = make_variable("livetime", livetime)
    data_vars["ontime"] = make_variable("ontime", ontime)
    coords = run_coords(spec, layout)
    attrs = _dataset_attrs(spec, layout, pointing)
    if events is not None:   # events outside the run's cutout or energy range are not binned
        attrs["n_events"], attrs["n_events_binned"] = events
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


# --------------------------------------------------------------------------- lazy
_RUN_PRODUCTS = ("counts", "exposure", "background", "mask_safe", "psf", "edisp", "exposure_irf",
                 "mask_safe_psf", "mask_safe_edisp", "background_norm")


def _shapes(spec: ReductionSpec, layout: RunLayout) -> dict:
    """(shape, dtype) of each product of a run, from the contract's dims and dtypes."""
    sizes = {"lat": layout.slices[0].stop - layout.slices[0].start,
             "lon": layout.slices[1].stop - layout.slices[1].start,
             "lat_irf": layout.irf_slices[0].stop - layout.irf_slices[0].start,
             "lon_irf": layout.irf_slices[1].stop - layout.irf_slices[1].start,
             "energy": spec.energy.nbin, "energy_true": spec.energy_true.nbin, "rad": len(spec.rad_edges) - 1}
    return {k: (tuple(sizes[d] for d in VARIABLES[k].dims), np.dtype(VARIABLES[k].dtype)) for k in _RUN_PRODUCTS}


def _reduce_to_dict(run, spec, layout):
    arrays, meta = reduce_run_arrays(run, spec, layout)
    out = {k: v for k, v in arrays.items() if v is not None}
    out["livetime"], out["ontime"] = np.asarray(meta["livetime"]), np.asarray(meta["ontime"])
    return out


def reduce_run_lazy(run: RunRef, spec: ReductionSpec, layout: RunLayout | None = None) -> xr.Dataset:
    """A dask-backed run dataset; nothing is read until it is computed.

    The run's place in the grid comes from the obs-index pointing (no file is
    opened); livetime and ontime are dask scalars in the ``livetime``/``ontime``
    variables of the result.

    Parameters
    ----------
    run : RunRef
        The run.
    spec : ReductionSpec
        The grid, energy axes and safe-mask settings.
    layout : RunLayout, optional
        The run's place in the grid (default: :func:`run_layout`).

    Returns
    -------
    xarray.Dataset
        The run dataset (dask arrays).
    """
    layout = layout or run_layout(run, spec)
    # the key names the run and tokenizes what the reduction depends on: two reductions of one
    # run with different settings on one cluster must not share results (a key without the token
    # handed a second analysis the first one's persisted cubes)
    name = f"gcxr-reduce-{run.obs_id}-{dask.base.tokenize(run, spec, layout)}"
    task = dask.delayed(_reduce_to_dict, pure=True)(run, spec, layout, dask_key_name=name)
    want = set(spec.map_selection) | {"mask_safe", "exposure_irf", "mask_safe_psf", "mask_safe_edisp"}
    if spec.background_method == "fov_background" and "background" in want:
        want.add("background_norm")
    if "bkg" not in run.hdu_types:
        want.discard("background")
        want.discard("background_norm")
    arrays = {}
    for k, (shape, dtype) in _shapes(spec, layout).items():
        if k not in want:
            continue
        arrays[k] = dsa.from_delayed(task[k], shape=shape, dtype=dtype, name=f"{name}-{k}")
    livetime = dsa.from_delayed(task["livetime"], shape=(), dtype=float, name=f"{name}-livetime")
    ontime = dsa.from_delayed(task["ontime"], shape=(), dtype=float, name=f"{name}-ontime")
    return build_run_dataset(run.obs_id, spec, layout, livetime=livetime, ontime=ontime,
                             pointing=(run.ra_pnt, run.dec_pnt), **arrays)
