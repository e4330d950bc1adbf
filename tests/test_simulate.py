"""Simulated GADF stores: round trip through gcxr's readers and reduction, seeds, IRFs, cube-level draws."""
from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from astropy.coordinates import SkyCoord
from astropy.io import fits

from gcxr.datastore import DataStore
from gcxr.coords import separation_deg
from gcxr.geom import EnergyAxis, SkyGeom
from gcxr.reduce import ReductionSpec, reduce_run
from gcxr.simulate import (IRFSet, ParametricIRF, default_models, make_runs, simulate_counts,
                           simulate_datastore, simulate_events)

from conftest import DATA, needs_data

POINTINGS = [(0.0, 1.0), (0.5, -1.0)]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim") / "store"
    summary = simulate_datastore(out, pointings=POINTINGS, livetime=600.0, seed=7, quiet=True)
    return out, summary


def _events(path):
    with fits.open(path) as h:
        return h["EVENTS"].data.copy(), dict(h["EVENTS"].header), h["GTI"].data.copy()


def test_store_layout_and_index_columns(store):
    out, summary = store
    ds = DataStore.from_dir(out)
    assert ds.obs_ids == [1, 2]
    with fits.open(out / "hdu-index.fits.gz") as h:
        assert h[1].name == "HDU_INDEX"
        assert {"OBS_ID", "HDU_TYPE", "HDU_CLASS", "FILE_DIR", "FILE_NAME", "HDU_NAME"} <= set(h[1].columns.names)
        types = sorted(set(h[1].data["HDU_TYPE"]))
    assert types == ["aeff", "bkg", "edisp", "events", "gti", "psf"]
    with fits.open(out / "obs-index.fits.gz") as h:
        assert h[1].name == "OBS_INDEX"
        need = {"OBS_ID", "RA_PNT", "DEC_PNT", "GLON_PNT", "GLAT_PNT", "ONTIME", "LIVETIME", "DEADC", "TSTART",
                "TSTOP", "EVENT_COUNT"}
        assert need <= set(h[1].columns.names)
        obs = h[1].data
        np.testing.assert_allclose(obs["GLON_PNT"] % 360, [p[0] for p in POINTINGS], atol=1e-9)
        np.testing.assert_allclose(obs["GLAT_PNT"], [p[1] for p in POINTINGS], atol=1e-9)
        np.testing.assert_allclose(obs["LIVETIME"], 600.0)
        assert h[1].header["MJDREFI"] == 51544
    for run, info in zip(ds.runs(ds.obs_ids), summary["runs"]):
        ev, hdr, gti = _events(run.hdu("events").path)
        assert len(ev) == info["n_events"] == hdr["NAXIS2"]
        for key in ("RA_PNT", "DEC_PNT", "DEADC", "LIVETIME", "ONTIME", "MJDREFI", "MJDREFF", "TIMESYS", "OBS_ID"):
            assert key in hdr, key
        assert hdr["HDUCLASS"] == "GADF" and hdr["HDUCLAS1"] == "EVENTS"
        assert hdr["LIVETIME"] == pytest.approx(hdr["ONTIME"] * hdr["DEADC"], rel=1e-12)
        assert np.all(np.diff(ev["TIME"]) >= 0)
        assert gti["START"][0] <= ev["TIME"].min() and ev["TIME"].max() <= gti["STOP"][0]
        assert list(ev["EVENT_ID"]) == list(range(1, len(ev) + 1))
        assert info["counts"]["background"] > 1000 and info["counts"]["gc-point"] > 50


def _spec(width, binsz, emin=1e-3, emax=1e3, nbin=6, frame="galactic", center=(0.0, 0.0)):
    return ReductionSpec(geom=SkyGeom.create(center, binsz, width, frame),
                         energy=EnergyAxis.from_bounds(emin, emax, nbin),
                         energy_true=EnergyAxis.from_bounds(0.02, 100, 4, "energy_true"),
                         cutout_width=float(np.max(width)), safe_mask_methods=(),
                         map_selection=("counts", "exposure", "background"))


def test_reduced_counts_equal_all_events(store):
    """A geometry covering every event: the cube holds exactly the simulated events."""
    out, summary = store
    ds = DataStore.from_dir(out)
    spec = _spec((24.0, 24.0), 0.2)
    for run, info in zip(ds.runs(ds.obs_ids), summary["runs"]):
        red = reduce_run(run, spec)
        assert int(red["counts"].sum()) == info["n_events"]


def test_reduced_counts_equal_events_inside_geometry(store):
    """A small geometry: counts equal an independent histogram of the events (astropy WCS, np.histogramdd)."""
    out, _ = store
    ds = DataStore.from_dir(out)
    spec = _spec((3.0, 2.0), 0.05, emin=0.1, emax=10.0, nbin=5)
    wcs = spec.geom.wcs
    for run in ds.runs(ds.obs_ids):
        red = reduce_run(run, spec)
        ev, _, _ = _events(run.hdu("events").path)
        c = SkyCoord(ev["RA"], ev["DEC"], unit="deg", frame="icrs").galactic
        x, y = wcs.world_to_pixel_values(c.l.deg, c.b.deg)
        ys, xs = red.attrs["slice_lat"], red.attrs["slice_lon"]
        h, _ = np.histogramdd(np.c_[ev["ENERGY"], y, x],
                              bins=[spec.energy.edges_array, np.arange(ys[0], ys[1] + 1) - 0.5,
                                    np.arange(xs[0], xs[1] + 1) - 0.5])
        assert h.sum() > 100
        np.testing.assert_array_equal(red["counts"].values, h)


def test_background_counts_match_prediction(tmp_path):
    """Background-only run: the reduced counts agree with the predicted background within Poisson errors."""
    out = tmp_path / "bkg"
    simulate_datastore(out, pointings=[(0.0, 0.0)], livetime=3000.0, models=[], seed=3, quiet=True)
    ds = DataStore.from_dir(out)
    spec = _spec((6.0, 6.0), 0.1, emin=0.1, emax=100.0, nbin=60)
    red = reduce_run(ds.run(1), spec)
    n, b = float(red["counts"].sum()), float(red["background"].sum())
    assert abs(n - b) < 4 * np.sqrt(b), (n, b)


def test_point_source_counts_match_expectation(store):
    """Source events before cuts: number = livetime x integral of flux x A_eff at the source offset."""
    from gcxr.coords import transform_lonlat
    from gcxr.irf import eval_aeff
    out, summary = store
    irfs = IRFSet.from_file(out / "irf" / "irf_parametric.fits")
    run = make_runs([(0.0, 0.0)], 20000.0)[0]
    models = default_models()
    ev = simulate_events(run, irfs, models[:1], rng=11, background=False)
    src = models[0]
    ra, dec = transform_lonlat(np.array([src.spatial_model.position[0]]),
                               np.array([src.spatial_model.position[1]]), "galactic", "icrs")
    theta = separation_deg(ra, dec, run.ra_pnt, run.dec_pnt)
    e = np.geomspace(0.02, 200.0, 4001)
    ec = np.sqrt(e[1:] * e[:-1])
    mu = float((src.spectral_model.evaluate(ec) * np.diff(e) * eval_aeff(irfs.aeff, ec, theta)[:, 0]).sum()
               * 1e4 * run.livetime)
    assert abs(len(ev) - mu) < 4 * np.sqrt(mu), (len(ev), mu)
    assert set(np.unique(ev.mc_id)) == {1}


def test_reproducible_from_seed(tmp_path):
    def files(out):
        return {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*.fits*"))}
    a = simulate_datastore(tmp_path / "a", pointings=POINTINGS[:1], livetime=300.0, seed=5, quiet=True)
    b = simulate_datastore(tmp_path / "b", pointings=POINTINGS[:1], livetime=300.0, seed=5, quiet=True)
    c = simulate_datastore(tmp_path / "c", pointings=POINTINGS[:1], livetime=300.0, seed=6, quiet=True)
    fa, fb, fc = files(tmp_path / "a"), files(tmp_path / "b"), files(tmp_path / "c")
    assert fa.keys() == fb.keys() and all(fa[k] == fb[k] for k in fa)      # byte-identical
    assert fa[next(k for k in fa if "run_" in str(k))] != fc[next(k for k in fc if "run_" in str(k))]
    assert a["runs"][0]["counts"] == b["runs"][0]["counts"] != c["runs"][0]["counts"]


def test_run_events_do_not_depend_on_other_runs(tmp_path):
    one = simulate_datastore(tmp_path / "one", pointings=POINTINGS[:1], livetime=300.0, seed=5, quiet=True)
    two = simulate_datastore(tmp_path / "two", pointings=POINTINGS, livetime=300.0, seed=5, quiet=True)
    assert one["runs"][0]["counts"] == two["runs"][0]["counts"]


@pytest.mark.parametrize("psf_class", ["psf_3gauss", "psf_table"])
def test_irfs_read_back_equal_what_was_written(tmp_path, psf_class):
    from gcxr.simulate import write_parametric_irfs
    p = ParametricIRF(psf_class=psf_class)
    irfs = IRFSet.from_file(write_parametric_irfs(tmp_path / "irf.fits", p))
    f32 = dict(rtol=2e-7, atol=0)
    aeff = irfs.aeff
    np.testing.assert_allclose(aeff.values, p.aeff(aeff["energy_true"].values, aeff["offset"].values), rtol=1e-6)
    np.testing.assert_allclose(aeff["energy_true_lo"].values, np.asarray(p.energy_edges[:-1], np.float32), **f32)
    ed = irfs.edisp
    np.testing.assert_allclose(ed.values, p.edisp(ed["energy_true"].values, ed["migra"].values,
                                                  ed["offset"].values), rtol=1e-5, atol=1e-12)
    bkg = irfs.bkg
    assert bkg.attrs["units"] == "s-1 TeV-1 sr-1"
    np.testing.assert_allclose(bkg.values, p.bkg(bkg["energy"].values, bkg["fov_lon"].values,
                                                 bkg["fov_lat"].values), rtol=1e-5)
    psf = irfs.psf
    assert psf.attrs["hdu_class"] == psf_class
    if psf_class == "psf_3gauss":
        sig = p.psf_sigma(psf["energy_true"].values, psf["offset"].values)
        np.testing.assert_allclose(psf.sel(param="SIGMA_1").values, sig, rtol=1e-6)
        np.testing.assert_array_equal(psf.sel(param="AMPL_2").values, 0.0)
    else:
        assert psf.dims == ("energy_true", "offset", "rad")
        sig = p.psf_sigma(psf["energy_true"].values, psf["offset"].values)[:, :, None]
        expect = np.exp(-0.5 * (psf["rad"].values / sig) ** 2) / (2 * np.pi * sig ** 2) * (180 / np.pi) ** 2
        np.testing.assert_allclose(psf.values, expect, rtol=1e-5, atol=1e-30)


def test_rewritten_store_is_read_anew(tmp_path):
    """The IRF readers' cache follows the file: simulating again into the same folder is seen."""
    out = tmp_path / "s"
    simulate_datastore(out, pointings=POINTINGS[:1], livetime=60.0, seed=1, quiet=True,
                       parametric=ParametricIRF(area_max=1e5))
    ref = DataStore.from_dir(out).run(1).hdu("aeff")
    from gcxr.irf import read_aeff
    a1 = float(read_aeff(ref).max())
    simulate_datastore(out, pointings=POINTINGS[:1], livetime=60.0, seed=1, quiet=True,
                       parametric=ParametricIRF(area_max=2e5))
    a2 = float(read_aeff(DataStore.from_dir(out).run(1).hdu("aeff")).max())
    assert a2 == pytest.approx(2 * a1, rel=1e-6)


def test_pointings_in_icrs_and_models_from_yaml(tmp_path):
    models = default_models()
    path = tmp_path / "models.yaml"
    models.write(path)
    s = simulate_datastore(tmp_path / "st", pointings=[(266.4, -28.9)], frame="icrs", livetime=120.0,
                           models=path, seed=2, quiet=True)
    assert s["models"] == ["gc-point", "gauss-source"]
    ds = DataStore.from_dir(tmp_path / "st")
    assert ds.run(1).ra_pnt == pytest.approx(266.4) and ds.run(1).dec_pnt == pytest.approx(-28.9)


def test_gaussian_source_extent(tmp_path):
    """True positions of a symmetric Gaussian: <theta^2> = 2 sigma^2 (small sigma)."""
    from gcxr.models import GaussianSpatialModel
    from gcxr.simulate import _sample_spatial
    m = GaussianSpatialModel(lon_0=10.0, lat_0=60.0, sigma=0.3, frame="icrs")
    lon, lat = _sample_spatial(np.random.default_rng(0), m, 200000)
    th2 = separation_deg(lon, lat, 10.0, 60.0) ** 2
    assert th2.mean() == pytest.approx(2 * 0.3 ** 2, rel=0.01)


@needs_data
def test_supplied_irf_file(tmp_path):
    """The CTA-1DC IRF file is copied into the store and drives the sampling."""
    irf = DATA / "cta-1dc" / "caldb" / "data" / "cta" / "1dc" / "bcf" / "South_z20_50h" / "irf_file.fits"
    s = simulate_datastore(tmp_path / "cta", pointings=[(0.0, 0.0)], livetime=30.0, irf=irf, seed=4, quiet=True)
    assert s["irf"] == "irf/irf_file.fits"
    ds = DataStore.from_dir(tmp_path / "cta")
    run = ds.run(1)
    assert run.hdu("psf").hdu_class == "psf_3gauss" and run.hdu("bkg").hdu_class == "bkg_3d"
    red = reduce_run(run, _spec((24.0, 24.0), 0.2))
    assert int(red["counts"].sum()) == s["runs"][0]["n_events"] > 100


# --------------------------------------------------------------------------- cube level
def _toy_dataset():
    coords = {"energy": [1.0, 2.0], "lat": [0.0, 0.1, 0.2], "lon": [0.0, 0.1]}
    counts = xr.DataArray(np.zeros((2, 3, 2)), dims=("energy", "lat", "lon"), coords=coords,
                          attrs={"units": "1"})
    return xr.Dataset({"counts": counts, "background": counts + 1.0})


def test_simulate_counts_poisson_and_reproducible():
    ds = _toy_dataset()
    npred = ds["background"] * 50.0
    a = simulate_counts(ds, npred, seed=1)
    b = simulate_counts(ds, npred.transpose("lon", "energy", "lat"), seed=1)
    np.testing.assert_array_equal(a["counts"].values, b["counts"].values)
    assert a["counts"].attrs == {"units": "1"} and a["counts"].dtype == ds["counts"].dtype
    assert np.all(ds["counts"].values == 0)                   # the input is not modified
    many = np.array([simulate_counts(ds, npred, seed=s)["counts"].values for s in range(400)])
    assert many.mean() == pytest.approx(50.0, rel=0.02)
    assert many.var() == pytest.approx(50.0, rel=0.1)


def test_simulate_counts_rejects_bad_npred():
    ds = _toy_dataset()
    with pytest.raises(ValueError, match="shape"):
        simulate_counts(ds, np.ones((2, 3)), seed=0)
    with pytest.raises(ValueError, match="non-negative"):
        simulate_counts(ds, -ds["background"], seed=0)
    with pytest.raises(ValueError, match="dims"):
        simulate_counts(ds, ds["background"].rename(lon="x"), seed=0)


# --------------------------------------------------------------------------- command line
def test_cli_simulate(tmp_path, capsys):
    from gcxr.cli import main
    out = tmp_path / "st"
    rc = main(["simulate", "--out", str(out), "--seed", "3", "--pointings", "0,1", "359.5,-1",
               "--livetime", "10 min", "5 min", "--psf-class", "psf_table"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "run 1:" in text and "run 2:" in text and "GADF data store written" in text
    ds = DataStore.from_dir(out)
    assert ds.obs_ids == [1, 2]
    with fits.open(out / "obs-index.fits.gz") as h:
        np.testing.assert_allclose(h[1].data["LIVETIME"], [600.0, 300.0])
    assert ds.run(1).hdu("psf").hdu_class == "psf_table"
    assert main(["simulate", "--out", str(tmp_path / "x"), "--pointings", "0;1"]) == 2
    assert "--pointings: expected LON,LAT" in capsys.readouterr().err


def test_demo_without_data(tmp_path, capsys):
    """`gcxr demo` on a machine without data: simulates, reduces, fits, writes results and plots in < 1 min."""
    import json
    import time
    from gcxr.cli import main
    out = tmp_path / "demo"
    t0 = time.perf_counter()
    assert main(["demo", "--out", str(out), "--simulate"]) == 0
    assert time.perf_counter() - t0 < 60
    for name in ("result.json", "datasets.nc", "models_bestfit.yaml", "config.yaml", "models.yaml",
                 "counts.png", "excess.png"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "simulated-data" / "hdu-index.fits.gz").exists()
    result = json.loads((out / "result.json").read_text())
    assert result["fit"]["success"] is True
    pars = {(p["model"], p["name"]): p for p in result["fit"]["parameters"]}
    lon = pars[("gc-point", "lon_0")]
    assert abs((lon["value"] + 180) % 360 - 180 - (-0.06)) < 5 * lon["error"] + 0.01
    assert not list(out.rglob("*.tmp"))
    assert "gcxr demo: a simulated" in capsys.readouterr().out


@needs_data
def test_demo_with_cta_1dc(tmp_path, monkeypatch, capsys):
    """With $GCXR_DATA holding the CTA-1DC runs, `gcxr demo` analyses them (the reference workflow)."""
    import json
    from gcxr.cli import main
    monkeypatch.setenv("GCXR_DATA", str(DATA))
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--quiet"]) == 0
    assert capsys.readouterr().out == ""
    assert not (out / "simulated-data").exists()
    result = json.loads((out / "result.json").read_text())
    assert result["datasets"][0]["name"] == "stacked" and result["fit"]["success"] is True
    assert (out / "counts.png").exists() and (out / "excess.png").exists()
