"""The reduction's fast paths give what the slower references give.

* the FITS reader (``gcxr._fitsio``) against astropy on every DL3 file of the shared data;
* the numpy event-direction rotation binned like astropy's transform (negative RA included);
* the written-out FoV rotation against astropy's SkyOffsetFrame;
* the vectorised filling of background-table gaps against the per-column ``np.interp`` loop;
* IRFs evaluated only where the stack uses them: the stacked dataset is unchanged.
"""
import glob
import warnings

import numpy as np
import pytest

from conftest import DATA, needs_data


def _data_files():
    return sorted(glob.glob(str(DATA / "**" / "*.fits*"), recursive=True))


@needs_data
def test_fits_reader_matches_astropy():
    from astropy.io import fits

    from gcxr._fitsio import read_fits
    files = _data_files()
    assert files
    n_tables = 0
    for path in files:
        f = read_fits(path)
        with warnings.catch_warnings(), fits.open(path) as h:
            warnings.simplefilter("ignore")
            assert f.names == [x.name for x in h], path
            for x in h:
                for k, v in x.header.items():
                    if k in ("COMMENT", "HISTORY", ""):
                        continue
                    mine = f.header(x.name).get(k)
                    assert mine == v or (isinstance(v, float) and mine == pytest.approx(v, rel=1e-15)), (path, k)
                if not isinstance(x, fits.BinTableHDU):
                    continue
                t = f.table(x.name)
                n_tables += 1
                if x.data is None or len(x.data) == 0:
                    assert t is None
                    continue
                for i, c in enumerate(x.data.columns):
                    a, b = np.asarray(x.data[c.name]), t[c.name]
                    if a.dtype.kind in "SU":
                        continue
                    assert a.shape == b.shape and a.dtype.kind == b.dtype.kind, (path, c.name)
                    assert np.array_equal(a, b, equal_nan=True), (path, c.name)
                    assert (c.unit or "").strip() == t.columns[i].unit
    assert n_tables > 10


def test_fits_reader_errors(tmp_path):
    from gcxr._fitsio import FitsError, read_fits
    p = tmp_path / "x.fits"
    p.write_bytes(b"not a fits file" * 300)
    with pytest.raises(FitsError, match="not a FITS file"):
        read_fits(str(p))


def test_event_pixels_match_astropy_binning():
    from gcxr.coords import icrs_to_frame_float32
    from gcxr.geom import SkyGeom
    from gcxr.reduce import _event_pixels
    rng = np.random.default_rng(7)
    n = 300_000
    ra = (rng.random(n) * 1080 - 360).astype(">f4")        # FITS byte order; RA outside [0, 360) too
    dec = np.degrees(np.arcsin(rng.random(n) * 1.98 - 0.99)).astype(">f4")
    ref = icrs_to_frame_float32(ra, dec, "galactic")
    for lon0, lat0, binsz in [(0.0, 0.0, 0.02), (359.99, -60.0, 0.05), (180.0, 30.0, 0.01)]:
        g = SkyGeom.create((lon0, lat0), binsz, (40.0, 30.0), "galactic")
        for a, b in zip(g.world_to_index(*ref), _event_pixels(ra, dec, g)):
            np.testing.assert_array_equal(a, b)


def test_fov_matrix_is_astropys_skyoffset_rotation():
    from gcxr.coords import _fov_matrix_astropy, fov_matrix
    rng = np.random.default_rng(3)
    for _ in range(50):
        ra, dec = rng.random() * 360, rng.random() * 170 - 85
        for frame in ("icrs", "galactic"):
            np.testing.assert_allclose(fov_matrix(ra, dec, frame), _fov_matrix_astropy(ra, dec, frame), atol=1e-15)


def test_background_gap_filling_equals_interp_loop():
    from gcxr.irf.background import _fill_missing_energy

    def loop(data, tiny):
        mask = ~np.isfinite(data) | (data == 0)
        cols = np.nonzero(mask.any(axis=0) & (~mask).any(axis=0))
        data = data.copy()
        xp = np.arange(data.shape[0])
        for a, b in zip(*cols):
            valid = ~mask[:, a, b]
            fp = np.log(np.clip(data[valid, a, b], tiny, None))
            bad = np.nonzero(mask[:, a, b])[0]
            v = np.interp(bad, xp[valid], fp, left=np.nan, right=np.nan)
            ok = ~np.isnan(v)
            data[bad[ok], a, b] = np.exp(v[ok])
        return data

    rng = np.random.default_rng(1)
    for trial in range(100):
        d = rng.random((int(rng.integers(1, 12)), 5, 4)) * 10.0 ** int(rng.integers(-30, 5))
        d[rng.random(d.shape) < rng.random()] = 0
        if trial % 3 == 0:
            d[rng.random(d.shape) < 0.1] = np.nan
        np.testing.assert_array_equal(_fill_missing_energy(d, 1e-38), loop(d, 1e-38))


@needs_data
def test_stacking_inputs_unchanged_by_restricted_evaluation(cta_store, seed_spec):
    """``for_stacking=True`` evaluates IRFs only where the stack uses them; the stacking terms are
    the same as from the full evaluation."""
    from gcxr.datasets import _contribution
    from gcxr.reduce import reduce_run_arrays, run_layout
    run = cta_store.run(110380)
    lay = run_layout(run, seed_spec)
    off = {"lat": lay.slices[0], "lon": lay.slices[1], "lat_irf": lay.irf_slices[0], "lon_irf": lay.irf_slices[1]}
    terms = []
    for for_stacking in (False, True):
        arrays, meta = reduce_run_arrays(run, seed_spec, lay, for_stacking=for_stacking)
        arrays = {k: v for k, v in arrays.items() if v is not None}
        arrays["livetime"], arrays["ontime"] = meta["livetime"], meta["ontime"]
        terms.append(_contribution(arrays, off))
    full, restricted = terms
    for k in ("counts", "exposure", "background", "mask_safe", "psf_den", "edisp_den", "edisp_num"):
        np.testing.assert_array_equal(full[k], restricted[k], err_msg=k)
    np.testing.assert_allclose(restricted["psf_num"], full["psf_num"], rtol=1e-6, atol=0)
