"""Bad input: every case ends in its documented outcome (docs/robustness.md, same case numbers).

Each case starts from a fresh copy of a tiny simulated store (one 2-min run) and breaks one thing.
"""
from __future__ import annotations

import gzip
import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from gcxr.cli import main
from gcxr.config import AnalysisConfig, ConfigError
from gcxr.datastore import DataStore, DataStoreError
from gcxr.geom import EnergyAxis, SkyGeom
from gcxr.models import ModelError, Models
from gcxr.reduce import ReductionSpec, reduce_run

from conftest import SMALL_STORE_CONFIG, SMALL_STORE_MODELS

CONFIG = SMALL_STORE_CONFIG       # conftest: a 3 x 3 deg stacked analysis of a simulated store

MODELS = SMALL_STORE_MODELS        # conftest: a point source on the small store


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    from gcxr.simulate import simulate_datastore
    out = tmp_path_factory.mktemp("robust") / "store"
    simulate_datastore(out, pointings=[(0.0, 0.0)], livetime=120.0, seed=3, quiet=True)
    return out


@pytest.fixture
def store(pristine, tmp_path) -> Path:
    dest = tmp_path / "store"
    shutil.copytree(pristine, dest)
    return dest


def events_file(store: Path) -> Path:
    return store / "data" / "run_000001.fits.gz"


def irf_file(store: Path) -> Path:
    return store / "irf" / "irf_parametric.fits"


def edit(path: Path, fn) -> None:
    """Apply ``fn(hdulist)`` to a FITS file and write it back in place."""
    with fits.open(path) as h:
        h = fits.HDUList([x.copy() for x in h])
    fn(h)
    h.writeto(path, overwrite=True)


def set_column(h, hdu, name, values=None, unit=None, drop=False):
    cols = []
    for c in h[hdu].columns:
        if c.name == name:
            if drop:
                continue
            arr = h[hdu].data[name] if values is None else values
            kw = dict(name=c.name, format=c.format, array=arr, unit=c.unit if unit is None else (unit or None))
            if c.dim:
                kw["dim"] = c.dim
            c = fits.Column(**kw)
        cols.append(c)
    new = fits.BinTableHDU.from_columns(cols, header=h[hdu].header)
    h[hdu] = new


def spec():
    return ReductionSpec(geom=SkyGeom.create((0.0, 0.0), 0.1, (3.0, 3.0), "galactic"),
                         energy=EnergyAxis.from_bounds(0.1, 10.0, 4),
                         energy_true=EnergyAxis.from_bounds(0.08, 12.0, 5, "energy_true"), cutout_width=4.0,
                         binsz_irf=0.5)


def reduce(store: Path):
    ds = DataStore.from_dir(store)
    return reduce_run(ds.runs(ds.obs_ids)[0], spec())


def write_config(tmp_path: Path, store: Path, extra: str = "") -> Path:
    p = tmp_path / "config.yaml"
    p.write_text(CONFIG.format(store=store) + extra)
    return p


def files_in(d: Path) -> list[str]:
    return sorted(str(p.relative_to(d)) for p in d.rglob("*")) if d.exists() else []


# Cases 1-30.  Those of the same shape (break one thing in the store, run one step, expect one
# error or warning whose message names the file, HDU, column or key) are parametrized tests; each id
# starts with its case number in docs/robustness.md ("01-truncated-events-file", ...).  Cases with
# their own checks (7, 13, 19, 20, 24, 25) stay separate ``test_NN_*`` functions.

def _truncate_events(store):
    p = events_file(store)
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


def _truncate_irf(store):
    p = irf_file(store)
    p.write_bytes(p.read_bytes()[:20000])


def _psf_king_in_index(store):
    """An IRF class gcxr cannot read (psf_king) in the hdu-index."""
    def king(h):
        d = h[1].data.copy()
        d["HDU_CLASS"][d["HDU_TYPE"] == "psf"] = "psf_king"
        h[1] = fits.BinTableHDU(d, header=h[1].header)
    edit(store / "hdu-index.fits.gz", king)


def _nan_aeff(h):
    d = h["EFFECTIVE AREA"].data["EFFAREA"].copy()
    d[0, 2, 5] = np.nan
    set_column(h, "EFFECTIVE AREA", "EFFAREA", d)


def _drop_ra_pnt(h):
    del h["EVENTS"].header["RA_PNT"]


def _zero_length_gti(h):
    set_column(h, "GTI", "STOP", h["GTI"].data["START"].copy())


def _zero_deadc(h):
    h["EVENTS"].header["DEADC"] = 0.0


def _empty_gti(h):
    h["GTI"] = fits.BinTableHDU(h["GTI"].data[:0], header=h["GTI"].header)


def _in_events(fn):
    return lambda store: edit(events_file(store), fn)


def _in_irf(fn):
    return lambda store: edit(irf_file(store), fn)


# --------------------------------------------------------------------------- the reduction refuses the run
REDUCTION_ERRORS = {
    "01-truncated-events-file": (_truncate_events, r"run 1: .*run_000001\.fits\.gz.*HDU 'EVENTS'"),
    "02-truncated-irf-file": (_truncate_irf, r"irf_parametric\.fits.*(EFFECTIVE AREA|ENERGY DISPERSION|"
                                             r"POINT SPREAD FUNCTION|BACKGROUND)"),
    "03-corrupt-events-file": (lambda store: events_file(store).write_bytes(
        gzip.compress(b"this is not a FITS file" * 100)), r"run 1: .*run_000001\.fits\.gz"),
    "05-missing-events-file": (lambda store: events_file(store).unlink(),
                               r"run 1: file not found: .*run_000001\.fits\.gz.*'events' HDU"),
    "06-missing-hdu-in-file": (_in_irf(lambda h: h.pop(3)),                 # drop POINT SPREAD FUNCTION
                               r"missing HDU 'POINT SPREAD FUNCTION' \(file has \["),
    "07b-unsupported-irf-class": (_psf_king_in_index,
                                  r"unsupported PSF class 'psf_king' \(supported: psf_3gauss, psf_table\)"),
    "09-nan-irf-values": (_in_irf(_nan_aeff), r"EFFECTIVE AREA.*column EFFAREA has 1 non-finite value"),
    "11-wrong-irf-unit": (_in_irf(lambda h: set_column(h, "EFFECTIVE AREA", "EFFAREA", unit="deg")),
                          r"column EFFAREA has unit 'deg', not convertible to m2"),
    "14-event-energy-wrong-unit": (_in_events(lambda h: set_column(h, "EVENTS", "ENERGY", unit="deg")),
                                   r"run 1: .*ENERGY column has unit 'deg', not an energy"),
    "15-missing-event-column": (_in_events(lambda h: set_column(h, "EVENTS", "DEC", drop=True)),
                                r"run 1: .*EVENTS.*missing column DEC"),
    "16-missing-irf-column": (_in_irf(lambda h: set_column(h, "EFFECTIVE AREA", "EFFAREA", drop=True)),
                              r"EFFECTIVE AREA.*missing column EFFAREA"),
    "18-missing-pointing-key": (_in_events(_drop_ra_pnt), r"run 1: .*missing header key RA_PNT"),
    "21-zero-length-gti": (_in_events(_zero_length_gti), r"run 1: zero or negative ontime in GTI"),
    "22-zero-deadc": (_in_events(_zero_deadc), r"run 1: .*header key DEADC = 0.0"),
    "23-empty-gti": (_in_events(_empty_gti), r"run 1: .*empty GTI"),
}


@pytest.mark.parametrize("case", list(REDUCTION_ERRORS))
def test_01_23_reduction_refuses_bad_dl3_input(store, case):
    """Unreadable files (1-3), missing pieces (5-6), an unsupported IRF class (7b), bad IRF values (9),
    units (11, 14), missing columns and keys (15-16, 18), zero livetime (21-23): a DataStoreError naming
    the run, file, HDU, column or key."""
    breaker, pattern = REDUCTION_ERRORS[case]
    breaker(store)
    with pytest.raises(DataStoreError, match=pattern):
        reduce(store)


# --------------------------------------------------------------------------- the store cannot be opened
def _drop_file_dir(h):
    set_column(h, 1, "FILE_DIR", drop=True)


STORE_ERRORS = {
    "04-corrupt-index-file": (lambda store: (store / "hdu-index.fits.gz").write_bytes(b"\x00" * 100),
                              r"hdu-index\.fits\.gz: cannot read FITS"),
    "08-index-file-missing": (lambda store: (store / "obs-index.fits.gz").unlink(),
                              r"no obs-index\.fits\(\.gz\) found"),
    "17-missing-index-column": (lambda store: edit(store / "hdu-index.fits.gz", _drop_file_dir),
                                r"hdu-index\.fits\.gz: missing column\(s\) \['FILE_DIR'\]"),
}


@pytest.mark.parametrize("case", list(STORE_ERRORS))
def test_04_17_store_refused_when_opened(store, case):
    """A corrupt or missing index file (4, 8) or index column (17): DataStore.from_dir raises a
    DataStoreError naming the file."""
    breaker, pattern = STORE_ERRORS[case]
    breaker(store)
    with pytest.raises(DataStoreError, match=pattern):
        DataStore.from_dir(store)


def test_07_hdu_missing_from_index(store):
    def drop_bkg(h):
        h[1] = fits.BinTableHDU(h[1].data[h[1].data["HDU_TYPE"] != "bkg"], header=h[1].header)
    edit(store / "hdu-index.fits.gz", drop_bkg)
    ds = DataStore.from_dir(store)
    with pytest.raises(DataStoreError, match=r"run 1: missing required HDU\(s\) \['bkg'\]"):
        ds.runs([1])
    with pytest.warns(UserWarning, match="skipped 1 run"):
        assert ds.runs([1], skip_missing=True) == []


# --------------------------------------------------------------------------- the reduction goes on with a warning
def _negative_bkg(h):
    d = h["BACKGROUND"].data["BKG"].copy()
    d[0, 3, 20:30, 20:30] = -1e-9
    set_column(h, "BACKGROUND", "BKG", d)


REDUCTION_WARNINGS = {
    # negative values are clipped: the background cube stays >= 0
    "10-negative-irf-values-warn-and-clip": (
        _in_irf(_negative_bkg), r"BACKGROUND.*column BKG has 100 negative value\(s\); set to 0",
        lambda red: np.all(red["background"].values >= 0)),
    "12-missing-irf-unit-warns": (
        _in_irf(lambda h: set_column(h, "EFFECTIVE AREA", "EFFAREA", unit="")),
        r"column EFFAREA has no unit; assuming m2", lambda red: True),
}


@pytest.mark.parametrize("case", list(REDUCTION_WARNINGS))
def test_10_12_reduction_warns_and_goes_on(store, case):
    """Negative IRF values (10) and an IRF column without a unit (12): one UserWarning naming the HDU and
    column, and the reduction goes on."""
    breaker, pattern, check = REDUCTION_WARNINGS[case]
    breaker(store)
    with pytest.warns(UserWarning, match=pattern):
        red = reduce(store)
    assert check(red)


# --------------------------------------------------------------------------- 13 units
def test_13_event_energy_in_gev_is_converted(store):
    ref = reduce(store)["counts"].values
    edit(events_file(store), lambda h: set_column(h, "EVENTS", "ENERGY", h["EVENTS"].data["ENERGY"] * 1000.0,
                                                   unit="GeV"))
    np.testing.assert_array_equal(reduce(store)["counts"].values, ref)


# --------------------------------------------------------------------------- 19-20 selections
def test_19_empty_selection(store, tmp_path):
    from gcxr.analysis import Analysis
    extra = "    obs_cone: {frame: galactic, lon: 90 deg, lat: 0 deg, radius: 1 deg}\n"
    text = CONFIG.format(store=store).replace("observations:\n", "observations:\n" + extra, 1)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(text)
    with pytest.raises(DataStoreError, match="the selection matches no run"):
        Analysis(cfg).get_observations()


def test_20_unknown_obs_id(store):
    with pytest.raises(DataStoreError, match=r"obs id\(s\) \[99\] not in the obs-index"):
        DataStore.from_dir(store).select(obs_ids=[1, 99])


# --------------------------------------------------------------------------- 24-25 geometry
def test_24_events_outside_the_geometry_are_dropped(store):
    """Events outside the run's cutout or the energy axis are not counted, silently."""
    with fits.open(events_file(store)) as h:
        n_all = len(h["EVENTS"].data)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        red = reduce(store)
    assert 0 < int(red["counts"].sum()) < n_all


def test_25_geometry_overlapping_no_run(store):
    s = spec()
    far = ReductionSpec(geom=SkyGeom.create((40.0, 0.0), 0.1, (3.0, 3.0), "galactic"), energy=s.energy,
                        energy_true=s.energy_true, cutout_width=4.0)
    ds = DataStore.from_dir(store)
    with pytest.raises(DataStoreError, match=r"run 1: pointing .* the run overlaps no pixel"):
        reduce_run(ds.run(1), far)


# --------------------------------------------------------------------------- 26-27 config
CONFIG_ERRORS = {
    "26-invalid-config-key": (("binsize_irf", "binsz_irf"),
                              r"datasets\.geom\.wcs\.binsz_irf: unknown key 'binsz_irf' "
                              r"\(did you mean 'binsize_irf'\?\)"),
    "27-config-wrong-unit": (("binsize: 0.1 deg", "binsize: 0.1 TeV"), r"datasets\.geom\.wcs\.binsize"),
}


@pytest.mark.parametrize("case", list(CONFIG_ERRORS))
def test_26_27_config_refused(store, tmp_path, case):
    """An unknown key (26) or a value with a wrong unit (27): a ConfigError with the dotted key path."""
    (old, new), pattern = CONFIG_ERRORS[case]
    cfg = write_config(tmp_path, store).read_text().replace(old, new)
    with pytest.raises(ConfigError, match=pattern):
        AnalysisConfig.from_yaml(cfg)


# --------------------------------------------------------------------------- 28-30 models
MODEL_ERRORS = {
    "28-models-unknown-type": (MODELS.replace("PowerLawSpectralModel", "PowerLawSpectralModle"),
                               r"m\.yaml: component 'src': unknown spectral model type "
                               r"'PowerLawSpectralModle'; valid types: .*PowerLawSpectralModel"),
    "29-models-unknown-parameter": (MODELS.replace("name: index", "name: indx"),
                                    r"component 'src': spectral model PowerLawSpectralModel has no parameter "
                                    r"'indx'; valid parameters: index, amplitude, reference"),
    "30-models-yaml-syntax-error": ("components: [ {name: src", r"m\.yaml: invalid YAML"),
}


@pytest.mark.parametrize("case", list(MODEL_ERRORS))
def test_28_30_models_refused(tmp_path, case):
    """An unknown model type (28) or parameter (29), or a file that is not YAML (30): a ModelError naming
    the file and the component."""
    text, pattern = MODEL_ERRORS[case]
    p = tmp_path / "m.yaml"
    p.write_text(text)
    with pytest.raises(ModelError, match=pattern):
        Models.read(p)


# --------------------------------------------------------------------------- 31 fit
def test_31_fit_that_cannot_converge(store, tmp_path, capsys):
    """An absurd start value (index 50: ~1e38 predicted counts at 0.1 TeV): MIGRAD fails; the result says so."""
    (tmp_path / "m.yaml").write_text(MODELS.replace("value: 2.3", "value: 50"))
    out = tmp_path / "out"
    with pytest.warns(RuntimeWarning, match="MIGRAD did not converge"):
        rc = main(["run", str(write_config(tmp_path, store)), "--models", str(tmp_path / "m.yaml"),
                   "--out", str(out)])
    assert rc == 5                               # EXIT_FIT: written, but not a result to use unseen
    import json
    fit = json.loads((out / "result.json").read_text())["fit"]
    assert fit["success"] is False and "MIGRAD did not converge" in fit["message"]
    captured = capsys.readouterr()
    assert "success=False" in captured.out and "the fit did not converge" in captured.err
    assert sorted(files_in(out)) == ["datasets.nc", "fit_result.nc", "models_bestfit.yaml", "result.json"]


# --------------------------------------------------------------------------- 32-33 gcxr run leaves nothing half-written
def test_32_failing_run_writes_nothing(store, tmp_path, capsys):
    p = events_file(store)
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 3])
    out = tmp_path / "out"
    rc = main(["run", str(write_config(tmp_path, store)), "--no-fit", "--out", str(out)])
    assert rc == 3                               # EXIT_DATA
    err = capsys.readouterr().err
    assert "gcxr run: error: run 1:" in err and "run_000001.fits.gz" in err
    assert files_in(out) == []


def test_33_crash_while_writing_leaves_no_partial_file(store, tmp_path, monkeypatch, capsys):
    import xarray as xr

    def disk_full(self, path, *a, **k):
        Path(path).write_bytes(b"CDF\x01 partial")
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(xr.Dataset, "to_netcdf", disk_full)

    def disk_full_in_store(self, store, **k):      # gcxr.io writes through the store: the file is open, half-made
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(xr.Dataset, "dump_to_store", disk_full_in_store)
    out = tmp_path / "out"
    assert main(["run", str(write_config(tmp_path, store)), "--no-fit", "--out", str(out)]) == 6   # EXIT_OUTPUT
    err = capsys.readouterr().err
    assert f"{out / 'datasets.nc'}: no space left on the disk" in err and "MB free" in err, err
    assert files_in(out) == []


# --------------------------------------------------------------------------- 34-36 gcxr simulate
def test_34_simulate_with_incomplete_irf_file(tmp_path, capsys):
    from gcxr.simulate import write_parametric_irfs
    irf = write_parametric_irfs(tmp_path / "irf.fits")
    edit(irf, lambda h: h.pop(4))                                      # drop BACKGROUND
    out = tmp_path / "sim"
    assert main(["simulate", "--out", str(out), "--irf", str(irf), "--quiet"]) == 3      # EXIT_DATA
    err = capsys.readouterr().err
    assert "irf.fits: no bkg HDU found" in err and "EFFECTIVE AREA" in err
    assert files_in(out) == []


def test_35_simulate_zero_livetime(tmp_path, capsys):
    out = tmp_path / "sim"
    assert main(["simulate", "--out", str(out), "--livetime", "0", "--quiet"]) == 2
    assert "livetime must be positive" in capsys.readouterr().err
    assert files_in(out) == []


def test_36_interrupted_simulation_leaves_no_index(tmp_path, monkeypatch):
    import gcxr.simulate as sim
    import gcxr.simulate.store as store       # where simulate_datastore looks simulate_events up
    real = sim.simulate_events
    calls = []

    def flaky(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*a, **k)
    monkeypatch.setattr(store, "simulate_events", flaky)
    out = tmp_path / "sim"
    with pytest.raises(KeyboardInterrupt):
        sim.simulate_datastore(out, livetime=60.0, quiet=True)
    left = files_in(out)
    assert not any("index" in f for f in left) and not any(f.endswith(".tmp") for f in left)
    with pytest.raises(DataStoreError, match="no hdu-index"):
        DataStore.from_dir(out)


def test_37_simulate_unsupported_source_shape(tmp_path, capsys):
    """An energy-dependent (3D) template cannot be sampled (event energies are drawn from the
    spectral model alone): refused before anything is written."""
    from astropy.io import fits
    from gcxr.models import PowerLawNormSpectralModel, SkyModel, TemplateSpatialModel
    h = fits.Header()
    h["CTYPE1"], h["CTYPE2"] = "GLON-CAR", "GLAT-CAR"
    h["CRPIX1"] = h["CRPIX2"] = 3.0
    h["CRVAL1"] = h["CRVAL2"] = 0.0
    h["CDELT1"], h["CDELT2"] = -0.1, 0.1
    h["BUNIT"] = "cm-2 s-1 MeV-1 sr-1"
    h["BANDSHDU"] = "PRIMARY_BANDS"
    bands = fits.BinTableHDU.from_columns(
        [fits.Column(name="CHANNEL", format="K", array=np.arange(2)),
         fits.Column(name="ENERGY_TRUE", format="D", unit="TeV", array=np.array([0.1, 1.0]))], name="PRIMARY_BANDS")
    fits.HDUList([fits.PrimaryHDU(data=np.ones((2, 5, 5), np.float32), header=h), bands]).writeto(tmp_path / "cube.fits")
    tpl = TemplateSpatialModel(tmp_path / "cube.fits", normalize=False)
    models = Models([SkyModel(PowerLawNormSpectralModel(), tpl, name="cube")])
    models.write(tmp_path / "m.yaml")
    out = tmp_path / "sim"
    assert main(["simulate", "--out", str(out), "--models", str(tmp_path / "m.yaml"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "cube.fits" in err and "energy" in err, err
    assert files_in(out) == []


# =========================================================================== issue 14: nothing silent
# Each case below is one parametrized id; docs/robustness.md lists them under the same names.
# ``gcxr run`` cases check the exit status, that the message names what is wrong and where, and
# that nothing was written to --out.

def run_cli(args, capsys) -> tuple[int, str]:
    rc = main(args)
    return rc, capsys.readouterr().err


# --------------------------------------------------------------------------- 38 --scheduler specs
@pytest.mark.parametrize("spec, says", [
    ("localhost:8786", "did you mean tcp://localhost:8786"),
    ("locale:3", "expected threads, local:N"),
    ("local:abc", "local:N with a whole number N"),
    ("inproc://x", "only tcp:// and tls://"),
    ("local:100000", "between 1 and"),
    ("local:0", "between 1 and"),
], ids=["host-port-without-tcp", "locale", "local-abc", "inproc", "local-too-many", "local-zero"])
def test_38_scheduler_spec_refused_before_anything_starts(store, tmp_path, capsys, monkeypatch, spec, says):
    import distributed

    def no_cluster(*a, **k):
        raise AssertionError("a LocalCluster was started")
    monkeypatch.setattr(distributed, "LocalCluster", no_cluster)
    out = tmp_path / "out"
    rc, err = run_cli(["run", str(write_config(tmp_path, store)), "--no-fit", "--scheduler", spec,
                       "--out", str(out)], capsys)
    assert rc == 2
    assert f"--scheduler: '{spec}'" in err and says in err, err
    assert files_in(out) == []


def test_38_scheduler_specs_accepted():
    from gcxr.cluster import max_local_workers, parse_scheduler
    assert parse_scheduler("local:2") == ("local", 2)
    assert parse_scheduler(f"local:{max_local_workers()}") == ("local", max_local_workers())
    assert parse_scheduler("tcp://10.0.0.1:8786") == ("address", "tcp://10.0.0.1:8786")
    assert parse_scheduler("tls://host.example:8786") == ("address", "tls://host.example:8786")
    assert parse_scheduler("threads") == ("threads", None)


def test_38_scheduler_that_does_not_answer(store, tmp_path, capsys):
    """Nothing listens on port 1: a named error after --scheduler-timeout, not a 30 s wait and a traceback."""
    import time
    out = tmp_path / "out"
    t0 = time.perf_counter()
    rc, err = run_cli(["run", str(write_config(tmp_path, store)), "--no-fit", "--scheduler", "tcp://127.0.0.1:1",
                       "--scheduler-timeout", "1", "--out", str(out)], capsys)
    assert rc == 2 and time.perf_counter() - t0 < 15
    assert "--scheduler: 'tcp://127.0.0.1:1': no dask scheduler answered" in err and "--scheduler-timeout" in err
    assert files_in(out) == []


# --------------------------------------------------------------------------- 39 DL3 corruptions
def _gti(fn):
    return lambda store: edit(events_file(store), lambda h: fn(h))


def _gti_nan_stop(h):
    stop = h["GTI"].data["STOP"].copy()
    stop[0] = np.nan
    set_column(h, "GTI", "STOP", stop)


def _gti_stop_before_start(h):
    set_column(h, "GTI", "STOP", h["GTI"].data["START"] - 10.0)


def _events_as_image(h):
    h["EVENTS"] = fits.ImageHDU(np.zeros((3, 3)), header=fits.Header([("EXTNAME", "EVENTS")]))


def _header(key, value):
    def fn(h):
        h["EVENTS"].header[key] = value
    return fn


def _truncate(name):
    def fn(store):
        p = store / name
        p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    return fn


def _corrupt_gzip(name):
    def fn(store):
        p = store / name
        b = bytearray(p.read_bytes())
        b[30:60] = b"\xff" * 30                   # inside the deflate stream
        p.write_bytes(bytes(b))
    return fn


def _symlink_loop(store):
    p = events_file(store)
    p.unlink()
    loop = p.with_name("loop.fits.gz")
    p.symlink_to(loop)
    loop.symlink_to(p)


def _bkg_unit(h):
    set_column(h, "BACKGROUND", "BKG", unit="1/s/TeV/sr")


def _empty_events(h):
    h["EVENTS"] = fits.BinTableHDU(h["EVENTS"].data[:0], header=h["EVENTS"].header)


DL3_CASES = {
    "gti-nan-stop": (_gti(_gti_nan_stop), r"run 1: .*run_000001\.fits\.gz\[GTI\]: 1 GTI row\(s\) with a non-finite"),
    "gti-stop-before-start": (_gti(_gti_stop_before_start), r"run 1: .*run_000001\.fits\.gz\[GTI\]: 1 GTI row\(s\) "
                                                            r"with STOP < START"),
    "gti-without-start": (_gti(lambda h: set_column(h, "GTI", "START", drop=True)),
                          r"run 1: .*run_000001\.fits\.gz\[GTI\]: GTI without column\(s\) \['START'\]"),
    "events-image-hdu": (_gti(_events_as_image), r"run 1: .*run_000001\.fits\.gz.*'EVENTS'.*not a binary table"),
    "ra-pnt-abc": (_gti(_header("RA_PNT", "abc")), r"run 1: .*run_000001\.fits\.gz.*header key RA_PNT = 'abc'"),
    "deadc-x": (_gti(_header("DEADC", "x")), r"run 1: .*run_000001\.fits\.gz.*header key DEADC = 'x'"),
    "obs-index-truncated-gzip": (_truncate("obs-index.fits.gz"), r"obs-index\.fits\.gz: cannot read FITS"),
    "hdu-index-truncated-gzip": (_truncate("hdu-index.fits.gz"), r"hdu-index\.fits\.gz: cannot read FITS"),
    "obs-index-corrupt-gzip": (_corrupt_gzip("obs-index.fits.gz"), r"obs-index\.fits\.gz: cannot read FITS"),
    "hdu-index-corrupt-gzip": (_corrupt_gzip("hdu-index.fits.gz"), r"hdu-index\.fits\.gz: cannot read FITS"),
    "events-symlink-loop": (_symlink_loop, r"run 1: .*run_000001\.fits\.gz: cannot resolve the path: a symbolic "
                                           r"link loop"),
    "bkg-unit-unparsable": (lambda s: edit(irf_file(s), _bkg_unit),
                            r"irf_parametric\.fits\[BACKGROUND\].*column BKG has unit '1/s/TeV/sr', which is not a "
                            r"valid FITS unit"),
    "empty-event-list": (_gti(_empty_events), r"run 1: .*run_000001\.fits\.gz\[EVENTS\].*empty events table"),
}


@pytest.mark.parametrize("case", list(DL3_CASES))
def test_39_bad_dl3_input_named_and_nothing_written(store, tmp_path, capsys, case):
    breaker, pattern = DL3_CASES[case]
    breaker(store)
    out = tmp_path / "out"
    rc, err = run_cli(["run", str(write_config(tmp_path, store)), "--no-fit", "--out", str(out)], capsys)
    assert rc == 3, err                                      # EXIT_DATA
    assert re.search(pattern, err), err
    assert files_in(out) == []


def test_39_store_directory_symlink_loop(tmp_path):
    loop = tmp_path / "store"
    loop.symlink_to(tmp_path / "other")
    (tmp_path / "other").symlink_to(loop)
    with pytest.raises(DataStoreError, match=r"data store directory: .*store: cannot resolve the path: a symbolic "
                                             r"link loop"):
        DataStore.from_dir(loop)


# --------------------------------------------------------------------------- 40 configs refused before any work
def _cone_without_lat(text):
    return text.replace("observations:\n", "observations:\n    obs_cone: {frame: galactic, lon: 0 deg, "
                                           "radius: 3 deg}\n", 1)


CONFIG_CASES = {
    "obs-cone-without-lat": (_cone_without_lat, (), r"observations\.obs_cone\.lat: a cone selection needs lon, lat "
                                                    r"and radius; \['lat'\] not given"),
    "offset-max-abc": (lambda t: t.replace("offset_max: 2.0 deg", "offset_max: abc"), (),
                       r"datasets\.geom\.selection\.offset_max: cannot parse 'abc' as an angle"),
    "aeff-percent-500": (lambda t: t + "    safe_mask: {methods: [aeff-max], parameters: {aeff_percent: 500}}\n", (),
                         r"datasets\.safe_mask\.parameters\.aeff_percent: 500.0 is not a percentage in \(0, 100\]"),
    "bias-percent-x": (lambda t: t + "    safe_mask: {methods: [edisp-bias], parameters: {bias_percent: x}}\n", (),
                       r"datasets\.safe_mask\.parameters\.bias_percent: 'x' is not a number"),
    "safe-mask-offset-max-abc": (lambda t: t + "    safe_mask: {methods: [offset-max], parameters: "
                                               "{offset_max: abc}}\n", (),
                                 r"datasets\.safe_mask\.parameters\.offset_max: 'abc' is not an angle"),
    "map-selection-without-background": (lambda t: t + "    map_selection: [counts, exposure, psf, edisp]\n",
                                         ("--models", "MODELS"),
                                         r"datasets\.map_selection: a fit needs the maps .*\['background'\] not "
                                         r"selected"),
    "map-selection-without-psf": (lambda t: t + "    map_selection: [counts, exposure, background, edisp]\n",
                                  ("--models", "MODELS"),
                                  r"datasets\.map_selection: a fit needs the maps .*\['psf'\] not selected"),
    "map-wider-than-360-deg": (lambda t: t.replace("width: 3 deg, height: 3 deg", "width: 400 deg, height: 3 deg"),
                               (), r"datasets\.geom\.wcs: width 400.0 deg .* more than 360 deg"),
    "grid-too-large-for-memory": (lambda t: t.replace("binsize: 0.1 deg", "binsize: 0.0005 deg")
                                  .replace("width: 3 deg, height: 3 deg", "width: 60 deg, height: 60 deg"), (),
                                  r"datasets\.geom: the reduced datasets need at least [\d.]+ GiB .* more than the "
                                  r"[\d.]+ GiB of memory available; .*datasets\.geom\.wcs\.binsize"),
}


@pytest.mark.parametrize("case", list(CONFIG_CASES))
def test_40_config_refused_before_the_work(store, tmp_path, capsys, monkeypatch, case):
    import gcxr.analysis
    change, extra, pattern = CONFIG_CASES[case]

    def no_reduction(*a, **k):
        raise AssertionError("the reduction started")
    monkeypatch.setattr(gcxr.analysis, "run_layout", no_reduction)
    (tmp_path / "m.yaml").write_text(MODELS)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(change(CONFIG.format(store=store)))
    out = tmp_path / "out"
    args = [str(tmp_path / "m.yaml") if a == "MODELS" else a for a in extra] or ["--no-fit"]
    rc, err = run_cli(["run", str(cfg), *args, "--out", str(out)], capsys)
    assert rc == 2, err
    assert re.search(pattern, err), err
    assert files_in(out) == []


def test_40_memory_estimate_counts_every_run_dataset(tmp_path):
    """stack: false keeps one dataset per run: the estimate scales with the runs and says so."""
    from gcxr.plan import check_memory, estimate_dataset_bytes
    s = spec()                                        # 4 x 30 x 30 bins, 5 true-energy planes
    one = 30 * 30 * (8 * (2 * 4 + 5) + 4)
    assert estimate_dataset_bytes(s, 1) == one and estimate_dataset_bytes(s, 3) == 3 * one
    check_memory(s, 3, available=3 * one)
    with pytest.raises(ConfigError, match=r"datasets\.geom: .*or set datasets\.stack: true"):
        check_memory(s, 3, available=3 * one - 1)


# --------------------------------------------------------------------------- 41 fit inputs: a message about the data
def _fit_ready(store):
    from gcxr.analysis import Analysis
    ana = Analysis(AnalysisConfig.from_yaml(CONFIG.format(store=store)), progress=False)
    ana.get_datasets()
    return ana.datasets[0]


def _negative_exposure(ds):
    ds["exposure"].values[2] *= -1.0


def _all_masked(ds):
    ds["mask_safe"].values[:] = False


def _zero_background(ds):
    ds["background"].values[:] = 0.0


def _nan_background(ds):
    ds["background"].values[0, 0, 0] = np.nan


FIT_DATA_CASES = {
    "negative-exposure": (_negative_exposure, r"dataset 'stacked': variable 'exposure' has 900 negative value\(s\)"),
    "nan-background": (_nan_background, r"dataset 'stacked': variable 'background' has 1 non-finite value\(s\)"),
    "safe-mask-removes-every-bin": (_all_masked, r"dataset 'stacked': the safe mask leaves no bin; nothing to fit"),
    "zero-background": (_zero_background, r"dataset 'stacked': the background is zero in every fit bin, so its free "
                                          r"FoVBackgroundModel norm is unconstrained"),
}


@pytest.mark.parametrize("case", list(FIT_DATA_CASES))
def test_41_fit_data_refused_with_a_message_about_the_data(store, tmp_path, case):
    """Written to datasets.nc, read back and fitted: refused before MIGRAD, the models untouched."""
    from gcxr.fit import fit
    from gcxr.io import read_datasets, write_datasets
    breaker, pattern = FIT_DATA_CASES[case]
    ds = _fit_ready(store).copy(deep=True)
    breaker(ds)
    write_datasets(ds, tmp_path / "datasets.nc")
    back = read_datasets(tmp_path / "datasets.nc")
    back.attrs["name"] = "stacked"
    models = Models.from_yaml(MODELS)
    models.add_fov_background(["stacked"])
    before = [p.value for p in models.parameters]
    with pytest.raises(DataStoreError, match=pattern):
        fit([back], models)
    assert [p.value for p in models.parameters] == before


def test_41_gcxr_run_with_a_safe_mask_that_removes_every_bin(store, tmp_path, capsys):
    """Reduced, then refused before the fit with a message about the data; nothing written."""
    (tmp_path / "m.yaml").write_text(MODELS)
    cfg = write_config(tmp_path, store, "    safe_mask: {methods: [offset-max], parameters: {offset_max: 0.01 deg}}\n")
    out = tmp_path / "out"
    rc, err = run_cli(["run", str(cfg), "--models", str(tmp_path / "m.yaml"), "--out", str(out)], capsys)
    assert rc == 3                                           # EXIT_DATA
    assert "gcxr run: error: dataset 'stacked': the safe mask leaves no bin; nothing to fit" in err
    assert files_in(out) == []


def test_41_gcxr_run_with_no_event_in_the_geometry(store, tmp_path, capsys):
    """Every event outside the energy axis (an empty event list for the analysis): a message about
    the data before the fit, nothing written."""
    edit(events_file(store), lambda h: set_column(h, "EVENTS", "ENERGY", h["EVENTS"].data["ENERGY"] * 0 + 500.0))
    (tmp_path / "m.yaml").write_text(MODELS)
    out = tmp_path / "out"
    rc, err = run_cli(["run", str(write_config(tmp_path, store)), "--models", str(tmp_path / "m.yaml"),
                       "--out", str(out)], capsys)
    assert rc == 3                                           # EXIT_DATA
    assert "gcxr run: error: no counts in the fit bins of any dataset (['stacked'])" in err
    assert files_in(out) == []


def test_41_no_counts_in_one_flux_point_bin_is_allowed(store):
    """fit() itself accepts zero counts (a flux point in an empty bin is an upper limit)."""
    from gcxr.fit import fit
    ds = _fit_ready(store).copy(deep=True)
    ds["counts"].values[:] = 0.0
    ds.attrs["name"] = "stacked"
    models = Models.from_yaml(MODELS)
    models.add_fov_background(["stacked"])
    for p in models.parameters:
        p.frozen = p.name != "amplitude"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = fit([ds], models, hesse=False)
    assert res.parameter("src", "amplitude")["value"] <= 1e-14


def test_41_result_json_is_strict_json(tmp_path):
    """NaN and infinities are written as null: a strict JSON reader loads result.json."""
    import json
    from gcxr.io import write_json

    def strict(s):
        raise ValueError(f"bare {s} in JSON")
    p = write_json({"fit": {"parameters": [{"name": "amplitude", "value": 1e-12, "error": float("nan")},
                                           {"name": "index", "value": np.float64(2.0), "error": np.inf}]},
                    "counts": np.array([1.0, np.nan])}, tmp_path / "result.json")
    got = json.loads(p.read_text(), parse_constant=strict)
    assert got == {"fit": {"parameters": [{"name": "amplitude", "value": 1e-12, "error": None},
                                          {"name": "index", "value": 2.0, "error": None}]},
                   "counts": [1.0, None]}


def test_41_fov_background_for_an_absent_dataset_left_out(store, tmp_path, capsys):
    """The stacked seed models run with stack: false: the FoVBackgroundModel of 'stacked' is left out
    of the fit with a warning (as gammapy does); the fit converges and writes strict JSON."""
    import json
    models = MODELS + ("-   name: stacked-bkg\n    type: FoVBackgroundModel\n    datasets_names: [stacked]\n"
                       "    spectral: {type: PowerLawNormSpectralModel, parameters: [{name: norm, value: 1.0}]}\n")
    (tmp_path / "m.yaml").write_text(models)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(CONFIG.format(store=store).replace("stack: true", "stack: false"))
    out = tmp_path / "out"
    with pytest.warns(UserWarning, match=r"models: 'stacked-bkg' \(FoVBackgroundModel for dataset 'stacked'\) "
                                         r"apply to no dataset of this analysis \(datasets: \['obs-1'\]\); left out"):
        rc = main(["run", str(cfg), "--models", str(tmp_path / "m.yaml"), "--out", str(out)])
    assert rc == 0

    def strict(s):
        raise ValueError(f"bare {s} in result.json")
    fit = json.loads((out / "result.json").read_text(), parse_constant=strict)["fit"]
    assert fit["success"] is True
    free = [p for p in fit["parameters"] if not p["frozen"]]
    assert free and all(p["error"] is not None and p["error"] > 0 for p in free)
    assert "stacked-bkg" not in (out / "models_bestfit.yaml").read_text()


# --------------------------------------------------------------------------- 42 models, templates, PSF, YAML
def _template(path: Path, data: np.ndarray) -> Path:
    h = fits.Header()
    h["CTYPE1"], h["CTYPE2"] = "GLON-CAR", "GLAT-CAR"
    h["CRPIX1"] = h["CRPIX2"] = 3.0
    h["CRVAL1"] = h["CRVAL2"] = 0.0
    h["CDELT1"], h["CDELT2"] = -0.1, 0.1
    fits.PrimaryHDU(data=data, header=h).writeto(path)
    return path


def test_42_garbage_template_file(tmp_path):
    from gcxr.models import TemplateSpatialModel
    p = tmp_path / "tpl.fits"
    p.write_bytes(b"\x00garbage" * 500)
    with pytest.raises(ModelError, match=r"TemplateSpatialModel\(.*tpl\.fits.*\): cannot read .*tpl\.fits"):
        TemplateSpatialModel(p, normalize=True)


def test_42_negative_template_values(tmp_path):
    from gcxr.models import TemplateSpatialModel
    data = np.ones((5, 5))
    data[1, 2] = -0.5
    p = _template(tmp_path / "tpl.fits", data)
    with pytest.raises(ModelError, match=r"tpl\.fits' has 1 negative value\(s\) \(min -0\.5\); a template is a "
                                         r"surface brightness"):
        TemplateSpatialModel(p, normalize=True)


def test_42_all_zero_psf_sigmas(store):
    def zero(h):
        for c in ("SIGMA_1", "SIGMA_2", "SIGMA_3"):
            set_column(h, "POINT SPREAD FUNCTION", c, h["POINT SPREAD FUNCTION"].data[c] * 0.0)
    edit(irf_file(store), zero)
    with pytest.raises(DataStoreError, match=r"irf_parametric\.fits\[POINT SPREAD FUNCTION\].*every SIGMA_1, "
                                             r"SIGMA_2 and SIGMA_3 value is 0"):
        reduce(store)


LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(8))


@pytest.mark.parametrize("where", ["models", "config"])
def test_42_yaml_billion_laughs(store, tmp_path, where):
    """Nine levels of ten aliases (1e9 values once expanded) are refused in milliseconds."""
    import time
    t0 = time.perf_counter()
    if where == "models":
        p = tmp_path / "m.yaml"
        p.write_text(MODELS.replace("components:", LAUGHS + "components:"))
        with pytest.raises(ModelError, match=r"m\.yaml: invalid YAML: the document expands to more than "
                                             r"1,000,000 values"):
            Models.read(p)
    else:
        p = write_config(tmp_path, store, "    safe_mask: {parameters: {laughs: *i}}\n")
        p.write_text(LAUGHS + p.read_text())
        with pytest.raises(ConfigError, match=r"c(onfig)?\.yaml.*expands to more than 1,000,000 values"):
            AnalysisConfig.read(p)
    assert time.perf_counter() - t0 < 2.0
