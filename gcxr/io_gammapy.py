"""gammapy ``MapDataset`` FITS files in and out (the GADF map-dataset layout of gammapy 2.1).

A gammapy ``MapDataset`` file holds one image HDU per map, each followed by a ``<NAME>_BANDS``
table that describes its non-spatial axes (``AXCOLS<i>`` names the edge columns of axis i,
``INTERP<i>`` its interpolation), plus ``GTI`` and ``META_TABLE`` tables:

=================  ==========================================  =====================================
HDU                FITS axes (fastest first)                   gcxr variable (dims)
=================  ==========================================  =====================================
COUNTS             lon, lat, energy                            ``counts`` (energy, lat, lon)
EXPOSURE           lon, lat, energy_true            [m2 s]     ``exposure`` (energy_true, lat, lon)
BACKGROUND         lon, lat, energy                            ``background`` (energy, lat, lon)
PSF                lon, lat, rad, energy_true       [sr-1]     ``psf`` (energy_true, rad, lat_irf, lon_irf)
PSF_EXPOSURE       lon, lat, rad (1 bin), energy_true          ``exposure_irf`` (energy_true, lat_irf, lon_irf)
EDISP              lon, lat, energy, energy_true               ``edisp`` (energy_true, energy, lat_irf, lon_irf)
EDISP_EXPOSURE     lon, lat, energy (1 bin), energy_true       ``exposure_edisp`` (energy_true, lat_irf, lon_irf)
MASK_SAFE          lon, lat, energy                            ``mask_safe`` (bool)
MASK_FIT           lon, lat, energy                            ``mask_fit`` (bool)
GTI                START, STOP                                 ``gti_start``, ``gti_stop`` (gti)
=================  ==========================================  =====================================

A file without MASK_SAFE gets a safe mask of every bin (gammapy uses every bin then); a
``MapDatasetOnOff`` file (COUNTS_OFF, ACCEPTANCE HDUs) is refused.  The EDISP HDU is gammapy's kernel map (``EDispKernelMap``: reco energy x true energy), which is
what gammapy's ``MapDatasetMaker`` writes for 3D datasets; a migration map (``EDispMap``, a
``migra`` axis) is refused.  The livetime is the ``livetime`` of the EXPOSURE HDU's ``META``
card, the ontime the sum of the GTIs.  Units are converted at the edge (exposure to m2 s, PSF
to sr-1); energies are TeV, angles degrees.

Read, a file gives the layout of gcxr's own stacked dataset (:mod:`gcxr.datasets`), plus the
scalar ``sky_wcs``/``sky_wcs_irf`` grid-mapping variables of :mod:`gcxr.io` that keep the two
grids exactly, and the GTI and META_TABLE contents, so that writing it back reproduces every
array of the file.  Masks are written as unsigned bytes (gammapy writes int64; both read back
as the same booleans).  A dataset gcxr reduced itself has no ``exposure_edisp`` (its stacking
weight is not kept): its file then has no EDISP_EXPOSURE HDU, which gammapy reads as an EDISP
without exposure (fine for fitting; gammapy cannot stack such a dataset further).
"""
from __future__ import annotations

import gzip
import json
from pathlib import Path
import warnings

import numpy as np
import xarray as xr

from . import __version__
from .contract import (VARIABLES, DatasetError, coords_of, frame_of, geom_from_dataset, grid_mapping, make_variable,
                       validate)
from .datastore import DataStoreError
from .geom import EnergyAxis, SkyGeom
from .io import atomic_path

__all__ = ["read_gammapy_dataset", "write_gammapy_dataset", "GAMMAPY_HDUS"]

#: the map HDUs gcxr reads and writes, in the order gammapy writes them
GAMMAPY_HDUS = ("COUNTS", "EXPOSURE", "BACKGROUND", "EDISP", "EDISP_EXPOSURE", "PSF", "PSF_EXPOSURE",
                "MASK_SAFE", "MASK_FIT")

# gcxr variable -> (HDU, non-spatial axes in FITS order (fastest first), grid: "sky" or "irf")
_LAYOUT = {
    "counts": ("COUNTS", ("energy",), "sky"),
    "exposure": ("EXPOSURE", ("energy_true",), "sky"),
    "background": ("BACKGROUND", ("energy",), "sky"),
    "edisp": ("EDISP", ("energy", "energy_true"), "irf"),
    "exposure_edisp": ("EDISP_EXPOSURE", ("energy", "energy_true"), "irf"),
    "psf": ("PSF", ("rad", "energy_true"), "irf"),
    "exposure_irf": ("PSF_EXPOSURE", ("rad", "energy_true"), "irf"),
    "mask_safe": ("MASK_SAFE", ("energy",), "sky"),
    "mask_fit": ("MASK_FIT", ("energy",), "sky"),
}
_SQUASHED = {"exposure_edisp": "energy", "exposure_irf": "rad"}     # one-bin axes of the IRF exposures
_IRF_OF_EXPOSURE = {"exposure_irf": "psf", "exposure_edisp": "edisp"}
_ON_OFF_HDUS = ("COUNTS_OFF", "ACCEPTANCE", "ACCEPTANCE_OFF")
_UNITS = {"exposure": "m2 s", "exposure_irf": "m2 s", "exposure_edisp": "m2 s", "psf": "sr-1"}
# BANDS columns of each axis: (centre, low edge, high edge), unit, interpolation
_AXIS_COLUMNS = {"energy": (("ENERGY", "E_MIN", "E_MAX"), "TeV", "log"),
                 "energy_true": (("ENERGY_TRUE", "ENERGY_TRUE_MIN", "ENERGY_TRUE_MAX"), "TeV", "log"),
                 "rad": (("RAD", "RAD_MIN", "RAD_MAX"), "deg", "lin")}


# --------------------------------------------------------------------------- reading
def _axis_name(first_column: str) -> str:
    """gammapy's rule: ``E_MIN`` is the reco-energy axis, otherwise the column prefix in lower case."""
    if first_column == "E_MIN":
        return "energy"
    name = first_column[:-4].lower() if first_column.endswith("_MIN") else first_column.lower()
    return "rad" if name == "theta" else name


def _read_axes(hdul, hdu, where: str) -> list[tuple[str, np.ndarray]]:
    """The non-spatial axes of map HDU ``hdu`` (FITS order) as (name, edges in TeV or deg)."""
    import astropy.units as u  # deferred: heavy import (astropy)
    hdr = hdu.header
    n_axes = int(hdr["NAXIS"]) - 2
    if n_axes == 0:
        return []
    bands = hdr.get("BANDSHDU")
    if bands is None or bands not in hdul:
        raise DataStoreError(f"{where}: no BANDS table ({'BANDSHDU missing' if bands is None else bands + ' missing'})"
                             "; gcxr reads gammapy's GADF map layout (each map HDU with a <NAME>_BANDS table)")
    table = hdul[bands]
    out = []
    for i in range(n_axes):
        cols = str(hdr.get(f"AXCOLS{i + 1}", table.header.get(f"AXCOLS{i + 1}", ""))).split(",")
        if len(cols) != 2:
            raise DataStoreError(f"{where}: AXCOLS{i + 1} = {','.join(cols)!r}; gcxr reads binned axes (two edge "
                                 "columns, e.g. 'E_MIN,E_MAX')")
        name = _axis_name(cols[0])
        if name not in _AXIS_COLUMNS:
            raise DataStoreError(f"{where}: axis {i + 1} is {name!r}; gcxr knows {sorted(_AXIS_COLUMNS)} "
                                 "(a gammapy EDispMap with a migra axis must be converted to a kernel map first: "
                                 "EDispMap.to_edisp_kernel_map)")
        unit = _AXIS_COLUMNS[name][1]
        try:
            lo = np.unique(u.Quantity(table.data[cols[0]], table.columns[cols[0]].unit or unit).to_value(unit))
            hi = np.unique(u.Quantity(table.data[cols[1]], table.columns[cols[1]].unit or unit).to_value(unit))
        except (KeyError, u.UnitsError) as exc:
            raise DataStoreError(f"{where}: BANDS table {bands}: cannot read axis {name!r} ({exc})") from None
        edges = np.append(lo, hi[-1])
        nbin = int(hdr[f"NAXIS{i + 3}"])
        if edges.size != nbin + 1 or not np.allclose(lo[1:], hi[:-1], rtol=1e-9, atol=0):
            raise DataStoreError(f"{where}: axis {name!r} of {bands} gives {edges.size - 1} contiguous bins, "
                                 f"the image has {nbin}")
        out.append((name, edges))
    return out


def _read_geom(hdu, where: str) -> SkyGeom:
    from astropy.wcs import WCS, FITSFixedWarning  # deferred: heavy import (astropy)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        wcs = WCS(hdu.header, naxis=2)
    try:
        return SkyGeom.from_wcs(wcs, (int(hdu.header["NAXIS2"]), int(hdu.header["NAXIS1"])))
    except ValueError as exc:
        raise DataStoreError(f"{where}: sky grid not supported by gcxr ({exc})") from None


def _unit_factor(hdu, var: str, where: str) -> float:
    """Factor from the HDU's BUNIT to gcxr's unit of ``var`` (1 where gcxr keeps no unit)."""
    import astropy.units as u  # deferred: heavy import (astropy)
    if var not in _UNITS:
        return 1.0
    bunit = str(hdu.header.get("BUNIT", "")).strip()
    if not bunit:
        raise DataStoreError(f"{where}: BUNIT is missing; expected a unit convertible to {_UNITS[var]}")
    try:
        return float(u.Unit(bunit).to(_UNITS[var]))
    except (ValueError, u.UnitsError):
        raise DataStoreError(f"{where}: BUNIT {bunit!r} is not convertible to {_UNITS[var]}") from None


def _livetime(hdu, where: str) -> float:
    import astropy.units as u  # deferred: heavy import (astropy)
    meta = str(hdu.header.get("META", "") or "").strip()
    if not meta:
        return float("nan")
    try:
        value = json.loads(meta).get("livetime")
        return float("nan") if value is None else float(u.Quantity(value).to_value("s"))
    except (ValueError, TypeError, AttributeError, u.UnitsError) as exc:
        raise DataStoreError(f"{where}: cannot read the livetime from META = {meta!r} ({exc})") from None


def _coords(axes: dict, sky: SkyGeom, irf: SkyGeom | None) -> dict:
    """Coordinates as gcxr's reduction makes them (:func:`gcxr.contract.coords_of`)."""
    energy, energy_true = (EnergyAxis(tuple(axes[n]), n) if n in axes else None for n in ("energy", "energy_true"))
    return coords_of(energy, energy_true, sky, irf, axes.get("rad"))


def _check_same(kind: str, ref, new, where: str) -> None:
    if ref is None:
        return
    same = ref == new if isinstance(ref, SkyGeom) else (ref.shape == new.shape and np.allclose(ref, new, rtol=1e-9))
    if not same:
        raise DataStoreError(f"{where}: its {kind} differs from the other maps' ({ref} vs {new}); "
                             "gcxr needs one sky grid, one IRF grid and one axis of each kind per dataset")


def _table_to_json(hdu) -> str:
    return json.dumps({c.name: np.asarray(hdu.data[c.name]).tolist() for c in hdu.columns})


def read_gammapy_dataset(path: str | Path, name: str | None = None) -> xr.Dataset:
    """Read a gammapy 2.1 ``MapDataset`` FITS file into gcxr's dataset layout.

    Parameters
    ----------
    path : str or Path
        A file written by gammapy's ``MapDataset.write`` (``.fits`` or ``.fits.gz``) with a WCS
        plate-carree geometry whose reference latitude is 0 (gcxr's grids, and gammapy's for
        maps centred on the equator of their frame).
    name : str, optional
        Dataset name (default: the ``NAME`` of the primary header, else the file name).

    Returns
    -------
    xarray.Dataset
        ``counts``, ``exposure``, ``background``, ``mask_safe``, ``mask_fit``, ``psf``,
        ``exposure_irf``, ``edisp``, ``exposure_edisp`` (those the file has), ``livetime`` and
        ``ontime``, with the coordinates of gcxr's reduction; see the module docstring for the
        mapping of HDUs to variables.

    Raises
    ------
    DataStoreError
        The file is missing, not FITS, lacks COUNTS or EXPOSURE, or has a map gcxr cannot
        represent (non-CAR grid, migration-map EDISP, inconsistent axes); the message names the
        file and the HDU.

    Examples
    --------
    >>> from gcxr.io import read_gammapy_dataset                      # doctest: +SKIP
    >>> ds = read_gammapy_dataset("stacked.fits.gz")                   # doctest: +SKIP
    >>> ds["counts"].dims                                               # doctest: +SKIP
    ('energy', 'lat', 'lon')
    """
    from astropy.io import fits  # deferred: heavy import (astropy)
    path = Path(path)
    if not path.is_file():
        raise DataStoreError(f"gammapy dataset file not found: {path}")
    try:
        hdul = fits.open(path, memmap=False)
    except OSError as exc:
        raise DataStoreError(f"{path}: cannot open as FITS ({exc})") from None
    with hdul:
        missing = [h for h in ("COUNTS", "EXPOSURE") if h not in hdul]
        if missing:
            raise DataStoreError(f"{path}: no {' or '.join(missing)} HDU; not a gammapy MapDataset file "
                                 f"(HDUs: {[h.name for h in hdul]})")
        on_off = [h for h in _ON_OFF_HDUS if h in hdul]
        if on_off:
            raise DataStoreError(f"{path}: HDUs {on_off}: a gammapy MapDatasetOnOff (ON-OFF statistic), which gcxr "
                                 "does not fit; gcxr reads MapDataset files (counts with a background model)")
        sky = irf = None
        axes: dict[str, np.ndarray] = {}
        data_vars = {}
        for var, (hname, _, grid) in _LAYOUT.items():
            if hname not in hdul:
                continue
            hdu = hdul[hname]
            where = f"{path}, HDU {hname}"
            if not isinstance(hdu, fits.ImageHDU) or hdu.data is None or int(hdu.header["NAXIS"]) < 2:
                raise DataStoreError(f"{where}: not an image (gcxr reads WCS maps, not HEALPix or region maps)")
            geom = _read_geom(hdu, where)
            if grid == "sky":
                _check_same("sky grid", sky, geom, where)
                sky = geom
            else:
                _check_same("IRF grid", irf, geom, where)
                irf = geom
            file_axes = _read_axes(hdul, hdu, where)
            if var == "exposure" and file_axes and file_axes[0][0] == "energy":
                file_axes[0] = ("energy_true", file_axes[0][1])        # as gammapy: exposure is in true energy
            expected = _LAYOUT[var][1]
            got = tuple(a for a, _ in file_axes)
            if got != expected and not (var == "mask_fit" and got == ()):
                raise DataStoreError(f"{where}: axes {list(got)}, expected {list(expected)} (gammapy's MapDataset "
                                     "layout)")
            for a, edges in file_axes:
                if var in _SQUASHED and a == _SQUASHED[var]:
                    continue
                _check_same(f"{a} axis", axes.get(a), edges, where)
                axes[a] = edges
            arr = np.asarray(hdu.data, dtype=hdu.data.dtype.newbyteorder("="))     # FITS is big-endian
            if var.startswith("mask"):
                arr = arr.astype(bool)
            else:
                factor = _unit_factor(hdu, var, where)
                if factor != 1.0:
                    arr = arr * arr.dtype.type(factor)
            if var in _SQUASHED:
                arr = arr[:, 0]
            if var == "mask_fit" and arr.ndim == 2:
                data_vars[var] = xr.Variable(("lat", "lon"), arr, VARIABLES[var].attrs)
            else:
                data_vars[var] = make_variable(var, arr)
        if "mask_safe" not in data_vars:     # as gammapy: a dataset without a safe mask uses every bin
            data_vars["mask_safe"] = make_variable("mask_safe", np.ones(data_vars["counts"].shape, bool),
                                                   comment="no MASK_SAFE in the file")
        if irf is not None and irf.frame != sky.frame:
            raise DataStoreError(f"{path}: the IRF maps are in frame {irf.frame!r}, the counts in {sky.frame!r}")
        livetime = _livetime(hdul["EXPOSURE"], f"{path}, HDU EXPOSURE")
        data_vars["livetime"] = make_variable("livetime", livetime, long_name="Livetime (EXPOSURE META)")
        ontime = float("nan")
        attrs = {"name": name or str(hdul[0].header.get("NAME", "") or path.name.split(".")[0]),
                 "frame": sky.frame, "source_file": str(path)}
        if "GTI" in hdul:
            gti = hdul["GTI"]
            start = np.asarray(gti.data["START"], float)
            stop = np.asarray(gti.data["STOP"], float)
            ontime = float(np.sum(stop - start))
            tattrs = {"units": "s"} | {k.lower(): gti.header[k] for k in ("MJDREFI", "MJDREFF", "TIMESYS")
                                       if k in gti.header}
            data_vars["gti_start"] = make_variable("gti_start", start, **tattrs)
            data_vars["gti_stop"] = make_variable("gti_stop", stop, **tattrs)
        data_vars["ontime"] = make_variable("ontime", ontime)
        if "META_TABLE" in hdul:
            meta = hdul["META_TABLE"]
            attrs["gammapy_meta_table"] = _table_to_json(meta)
            if "OBS_ID" in meta.columns.names:
                attrs["obs_ids"] = [int(x) for x in np.ravel(meta.data["OBS_ID"])]
        data_vars["sky_wcs"] = grid_mapping("sky_wcs", sky).variable
        if irf is not None:
            data_vars["sky_wcs_irf"] = grid_mapping("sky_wcs_irf", irf).variable
        ds = xr.Dataset(data_vars, coords=_coords(axes, sky, irf), attrs=attrs)
    try:
        return validate(ds)             # the contract, as for every dataset gcxr reads
    except DatasetError as exc:
        raise DataStoreError(f"{path}: {exc}") from None


# --------------------------------------------------------------------------- writing
def _clean(x: float) -> float:
    """Round away the last-bit noise of a grid step or centre recomputed from coordinates."""
    return float(f"{x:.12g}")


def _geom_from(ds: xr.Dataset, kind: str) -> SkyGeom:
    """The exact grid of ``ds`` (its ``sky_wcs``/``sky_wcs_irf`` variable), else one rebuilt from
    its 1-D coordinates with the reference pixel at the centre, as gcxr and gammapy create grids."""
    var, lon, lat = ("sky_wcs", "lon", "lat") if kind == "sky" else ("sky_wcs_irf", "lon_irf", "lat_irf")
    frame = frame_of(ds)
    if var in ds.variables:
        geom = geom_from_dataset(ds, var)
    else:
        lo, la = np.asarray(ds[lon].values, float), np.asarray(ds[lat].values, float)
        if lo.size < 2 or la.size < 2:
            raise DataStoreError(f"write_gammapy_dataset: the {lon}/{lat} grid needs at least 2 x 2 pixels")
        dlon, dlat = _clean((lo[-1] - lo[0]) / (lo.size - 1)), _clean((la[-1] - la[0]) / (la.size - 1))
        x_ref = (lo.size - 1) / 2.0
        geom = SkyGeom(frame, _clean(0.5 * (lo[0] + lo[-1])), dlon, dlat, x_ref, _clean(-la[0] / dlat),
                       lo.size, la.size)
    tol = 1e-6 * geom.binsz
    if geom.shape != (ds.sizes[lat], ds.sizes[lon]) or \
            not (np.allclose(geom.lon, ds[lon].values, atol=tol, rtol=0)
                 and np.allclose(geom.lat, ds[lat].values, atol=tol, rtol=0)):
        raise DataStoreError(f"write_gammapy_dataset: the {lon}/{lat} coordinates are not a regular plate-carree "
                             f"grid matching {var}")
    return geom


def _bands_hdu(name: str, axes: list[tuple[str, np.ndarray]]):
    """The ``<NAME>_BANDS`` table: one row per channel, the first (FITS) axis fastest."""
    from astropy.io import fits  # deferred: heavy import (astropy)
    sizes = [e.size - 1 for _, e in axes]
    channel = np.arange(int(np.prod(sizes)))
    cols = [fits.Column("CHANNEL", "K", array=channel)]
    hdr = {}
    stride = 1
    for i, ((ax, edges), n) in enumerate(zip(axes, sizes)):
        (c_name, lo_name, hi_name), unit, interp = _AXIS_COLUMNS[ax]
        idx = (channel // stride) % n
        stride *= n
        lo, hi = edges[:-1][idx], edges[1:][idx]
        # log centres as the mean of the logs (rounds as gammapy's BANDS tables do)
        centre = np.exp(0.5 * (np.log(lo) + np.log(hi))) if interp == "log" else 0.5 * (lo + hi)
        cols += [fits.Column(c_name, "D", unit=unit, array=centre), fits.Column(lo_name, "D", unit=unit, array=lo),
                 fits.Column(hi_name, "D", unit=unit, array=hi)]
        hdr[f"AXCOLS{i + 1}"], hdr[f"INTERP{i + 1}"] = f"{lo_name},{hi_name}", interp
    hdu = fits.BinTableHDU.from_columns(cols, name=f"{name}_BANDS")
    hdu.header.update(hdr)
    return hdu, hdr


def _image_hdu(name: str, data: np.ndarray, geom: SkyGeom, axes, unit: str, meta: dict | None = None):
    from astropy.io import fits  # deferred: heavy import (astropy)
    bands, axhdr = _bands_hdu(name, axes)
    hdr = geom.wcs.to_header()
    hdr.update(axhdr)
    hdr["WCSSHAPE"] = "(" + ",".join(str(s) for s in data.shape[::-1]) + ")"
    hdr["BANDSHDU"] = f"{name}_BANDS"
    hdu = fits.ImageHDU(data=data, header=hdr, name=name)
    hdu.header["META"] = json.dumps(meta or {})
    hdu.header["BUNIT"] = unit
    return [hdu, bands]


def _edges(ds: xr.Dataset, ax: str) -> np.ndarray:
    if ax == "rad":
        b = np.asarray(ds["rad_bounds"].values, float)
        return np.append(b[:, 0], b[-1, 1])
    return EnergyAxis.from_coord(ds, ax).edges_array


def _fits_array(ds: xr.Dataset, var: str, dims: tuple[str, ...]) -> np.ndarray:
    da = ds[var]
    if var.startswith("mask"):
        da = da.broadcast_like(ds["counts"]) if var == "mask_fit" else da
        return np.ascontiguousarray(da.transpose(*dims).values, dtype=np.uint8)
    arr = np.asarray(da.transpose(*dims).values)
    if var == "counts" and arr.dtype.kind in "iub":
        arr = arr.astype(np.float32 if arr.size == 0 or arr.max() < 2**24 else np.float64)
    return np.ascontiguousarray(arr)


def _meta_table_hdu(text: str):
    from astropy.io import fits  # deferred: heavy import (astropy)
    from astropy.table import Table  # deferred: heavy import (astropy)
    cols = json.loads(text)
    return fits.BinTableHDU(Table({k: np.asarray(v) for k, v in cols.items()}), name="META_TABLE")


def _hdulist(ds: xr.Dataset):
    """The ``astropy.io.fits.HDUList`` of :func:`write_gammapy_dataset` (nothing written)."""
    from astropy.io import fits  # deferred: heavy import (astropy)
    if not isinstance(ds, xr.Dataset):
        raise DataStoreError(f"write_gammapy_dataset: expected one xarray.Dataset, got {type(ds).__name__}")
    if "obs" in ds.dims:
        raise DataStoreError("write_gammapy_dataset: the dataset has an 'obs' dim (several runs); gammapy's "
                             "MapDataset file holds one dataset: write each run (ds.isel(obs=i)) to its own file")
    for v in ("counts", "exposure"):
        if v not in ds:
            raise DataStoreError(f"write_gammapy_dataset: the dataset has no {v!r} variable")
    sky = _geom_from(ds, "sky")
    irf = _geom_from(ds, "irf") if any(v in ds for v in ("psf", "edisp")) else None
    primary = fits.PrimaryHDU()
    primary.header["NAME"] = str(ds.attrs.get("name", "gcxr"))
    primary.header["CREATOR"] = f"gcxr {__version__}"
    hdul = fits.HDUList([primary])
    for var, (hname, fits_axes, grid) in _LAYOUT.items():
        if var not in ds:
            continue
        if var in _IRF_OF_EXPOSURE and _IRF_OF_EXPOSURE[var] not in ds:
            continue                        # an IRF exposure without its IRF: gammapy has no place for it
        axes = [(a, _edges(ds, a)) for a in fits_axes]
        dims = tuple(a for a in fits_axes[::-1]) + (("lat", "lon") if grid == "sky" else ("lat_irf", "lon_irf"))
        if var in _SQUASHED:
            sq = _SQUASHED[var]
            axes = [(a, e[[0, -1]] if a == sq else e) for a, e in axes]
            data = _fits_array(ds, var, tuple(d for d in dims if d != sq))
            data = data[:, None]
        else:
            data = _fits_array(ds, var, dims)
        meta = None
        if var == "exposure" and "livetime" in ds and np.isfinite(float(ds["livetime"])):
            meta = {"livetime": f"{float(ds['livetime'])!r} s"}
        hdul += _image_hdu(hname, data, sky if grid == "sky" else irf, axes, _UNITS.get(var, ""), meta)
    if "gti_start" in ds and "gti_stop" in ds:
        cols = [fits.Column("START", "D", unit="s", array=np.asarray(ds["gti_start"].values, float)),
                fits.Column("STOP", "D", unit="s", array=np.asarray(ds["gti_stop"].values, float))]
        gti = fits.BinTableHDU.from_columns(cols, name="GTI")
        for k in ("mjdrefi", "mjdreff", "timesys"):
            if k in ds["gti_start"].attrs:
                gti.header[k.upper()] = ds["gti_start"].attrs[k]
        hdul.append(gti)
    if "gammapy_meta_table" in ds.attrs:
        hdul.append(_meta_table_hdu(str(ds.attrs["gammapy_meta_table"])))
    return hdul


def write_gammapy_dataset(ds: xr.Dataset, path: str | Path, overwrite: bool = True) -> Path:
    """Write one gcxr dataset as a gammapy 2.1 ``MapDataset`` FITS file (gzip if ``path`` ends in ``.gz``).

    Parameters
    ----------
    ds : xarray.Dataset
        A stacked dataset, a single run's dataset, or one read by :func:`read_gammapy_dataset`
        (which is then written back array for array).  Needs ``counts`` and ``exposure``; PSF and
        EDISP are written on the IRF grid (``lon_irf``, ``lat_irf``).
    path : str or Path
        Output file, written to a temporary name and moved into place.
    overwrite : bool
        Replace an existing file (default True).

    Returns
    -------
    Path
        ``path``; gammapy reads it with ``MapDataset.read(path)``.

    Raises
    ------
    DataStoreError
        ``ds`` holds several runs (an ``obs`` dim), lacks counts or exposure, or its grid is
        not a regular plate-carree grid.

    Examples
    --------
    >>> from gcxr.io import write_gammapy_dataset                    # doctest: +SKIP
    >>> write_gammapy_dataset(ana.datasets[0], "stacked.fits.gz")     # doctest: +SKIP
    """
    hdul = _hdulist(ds)
    path = Path(path)
    with atomic_path(path, overwrite=overwrite) as tmp:
        if path.suffix == ".gz":
            with gzip.open(tmp, "wb", compresslevel=4) as f:
                hdul.writeto(f)
        else:
            hdul.writeto(tmp, overwrite=True)
    return path
