"""The dataset contract (gcxr.contract): every dataset gcxr makes passes validate(); broken ones
are refused with the variable, dim or attribute named; frame_of/geom_of read them; a joint set
written to netCDF and read back splits into the runs, which fit and stack as the list does."""
from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from conftest import SMALL_STORE_CONFIG, SMALL_STORE_MODELS

MODELS = SMALL_STORE_MODELS        # conftest: a point source on the small store


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from gcxr.simulate import simulate_datastore
    out = tmp_path_factory.mktemp("contract") / "store"
    simulate_datastore(out, pointings=[(0.0, 0.3), (0.2, -0.3)], livetime=120.0, seed=3, quiet=True)
    return out


def _analysis(store, stack: bool):
    from gcxr.analysis import Analysis
    from gcxr.config import AnalysisConfig
    cfg = AnalysisConfig.from_yaml(SMALL_STORE_CONFIG.format(store=store))
    cfg.datasets.stack = stack
    # runs on 2 x 2 deg cutouts of the 3 x 3 deg grid, placed differently
    cfg = cfg.update({"datasets": {"geom": {"selection": {"offset_max": "1.0 deg"}}},
                      "fit": {"fit_range": {"min": "0.15 TeV"}}})
    ana = Analysis(cfg, progress=False)
    ana.get_observations()
    ana.get_datasets()
    return ana


@pytest.fixture(scope="module")
def stacked(store):
    return _analysis(store, True)


@pytest.fixture(scope="module")
def joint(store):
    return _analysis(store, False)


@pytest.fixture(scope="module")
def runs_file(joint, tmp_path_factory):
    return joint.write_datasets(tmp_path_factory.mktemp("contract-io") / "runs.nc")


# --------------------------------------------------------------------------- validate accepts
def test_validate_accepts_every_dataset_gcxr_makes(stacked, joint, runs_file, tmp_path):
    from gcxr.contract import validate
    from gcxr.io import read_datasets, read_gammapy_dataset, write_gammapy_dataset
    from gcxr.reduce import reduce_run
    made = [stacked.datasets[0], *joint.datasets, reduce_run(joint.runs[0], joint.spec)]
    made.append(read_datasets(stacked.write_datasets(tmp_path / "stacked.nc")))
    made.append(read_datasets(runs_file))                          # a joint set along obs
    made.append(read_gammapy_dataset(write_gammapy_dataset(stacked.datasets[0], tmp_path / "stacked.fits")))
    for ds in made:
        assert validate(ds) is ds


def test_reduced_variables_follow_the_schema(joint, stacked):
    """Dims, units and long names of what reduce and stack make are the contract's."""
    from gcxr.contract import VARIABLES
    for ds in (joint.datasets[0], stacked.datasets[0]):
        for name in ds.data_vars:
            if name in VARIABLES:
                assert ds[name].dims == VARIABLES[name].dims or \
                    ds[name].dims in VARIABLES[name].alt_dims, name
                if VARIABLES[name].units is not None:
                    assert ds[name].attrs["units"] == VARIABLES[name].units, name
    assert joint.datasets[0]["counts"].dtype == np.dtype(VARIABLES["counts"].dtype)


# --------------------------------------------------------------------------- validate refuses
def test_validate_refuses_missing_counts(stacked):
    from gcxr.contract import DatasetError, validate
    with pytest.raises(DatasetError, match="'counts'"):
        validate(stacked.datasets[0].drop_vars("counts"))


def test_validate_refuses_wrong_dim_order(stacked):
    from gcxr.contract import DatasetError, validate
    ds = stacked.datasets[0].copy(deep=True)
    ds["counts"] = ds["counts"].transpose("lat", "energy", "lon")
    with pytest.raises(DatasetError, match=r"variable 'counts' has dims \('lat', 'energy', 'lon'\)"):
        validate(ds)


@pytest.mark.parametrize("frame", ["fk5", "icrs", None])
def test_validate_refuses_wrong_or_missing_frame(stacked, frame):
    """A frame gcxr does not know, one the lon coordinate contradicts, or none at all."""
    from gcxr.contract import DatasetError, frame_of, validate
    ds = stacked.datasets[0].copy(deep=True)
    if frame is None:
        del ds.attrs["frame"]
        ds["lon"].attrs.pop("long_name")
    else:
        ds.attrs["frame"] = frame
    for fn in (validate, frame_of):
        with pytest.raises(DatasetError, match="'frame'"):
            fn(ds)


def test_frame_without_the_attribute_is_the_lon_coordinates(stacked):
    """gcxr writes the frame twice (attrs and the lon long name): either one is enough."""
    from gcxr.contract import frame_of
    ds = stacked.datasets[0].copy(deep=True)
    del ds.attrs["frame"]
    assert frame_of(ds) == "galactic"
    assert ds["lon"].attrs["long_name"] == "Galactic longitude"


def test_validate_refuses_wrong_units_and_missing_bounds(stacked):
    from gcxr.contract import DatasetError, validate
    ds = stacked.datasets[0].copy(deep=True)
    ds["exposure"] = ds["exposure"].assign_attrs(units="cm2 s")
    with pytest.raises(DatasetError, match="'exposure' has units 'cm2 s'"):
        validate(ds)
    with pytest.raises(DatasetError, match="'energy_bounds'"):
        validate(stacked.datasets[0].drop_vars("energy_bounds"))


# --------------------------------------------------------------------------- frame_of, geom_of
def test_frame_and_geoms(stacked, joint, runs_file):
    from gcxr.contract import frame_of, geom_of
    from gcxr.io import read_datasets
    spec = stacked.spec
    st = stacked.datasets[0]
    assert frame_of(st) == "galactic"
    geom, irf = geom_of(st)
    assert geom.frame == irf.frame == "galactic"
    assert geom.shape == spec.geom.shape and irf.shape == spec.irf_geom.shape
    np.testing.assert_allclose(geom.lon, spec.geom.lon, atol=1e-9)
    np.testing.assert_allclose(irf.lat, spec.irf_geom.lat, atol=1e-9)
    for run in joint.datasets:
        g, i = geom_of(run)
        assert g.shape == run["counts"].shape[1:] and i.shape == run["psf"].shape[2:]
    back = read_datasets(runs_file)
    assert geom_of(back)[0].shape == spec.geom.shape          # a joint set is on the full grid
    assert st.gcxr.geom.shape == geom.shape                  # the accessor reads the same frame


def test_run_coords_are_the_grid_labels(joint):
    """A run's coordinates are the grid's own labels, cut: the stack finds each one exactly."""
    from gcxr.contract import grid_coords, run_coords, run_offsets
    from gcxr.reduce import run_layout
    spec = joint.spec
    grid = xr.Dataset(coords=grid_coords(spec))
    lay = run_layout(joint.runs[0], spec)
    run = xr.Dataset(coords=run_coords(spec, lay))
    off = run_offsets(run, grid)
    assert (off["lat"], off["lon"]) == lay.slices and (off["lat_irf"], off["lon_irf"]) == lay.irf_slices
    assert int(run["obs"]) == lay.obs_id


# --------------------------------------------------------------------------- joint sets
def _same_run(a: xr.Dataset, b: xr.Dataset) -> None:
    names = [v for v in a.data_vars if not v.startswith("sky_wcs")]
    assert sorted(names) == sorted(v for v in b.data_vars if not v.startswith("sky_wcs"))
    for v in names:
        assert a[v].dims == b[v].dims, v
        assert np.array_equal(a[v].values, b[v].values), v
    for k in ("name", "obs_id", "frame", "slice_lat", "slice_lon"):
        assert np.array_equal(np.asarray(a.attrs[k]), np.asarray(b.attrs[k])), k


def test_join_and_split_are_inverse(joint, runs_file):
    """In memory and on disk alike: join_runs pads the runs along obs as the writer does, and
    split_runs drops exactly that padding."""
    from gcxr.contract import join_runs, split_runs, validate
    from gcxr.io import read_datasets
    runs = joint.datasets
    joined = validate(join_runs(runs, joint.spec))
    back = read_datasets(runs_file)
    assert joined.sizes == back.sizes
    for v in ("counts", "mask_safe", "psf", "cutout_lat", "cutout_lon_irf", "livetime"):
        assert np.array_equal(joined[v].values, back[v].values), v
    for original, mem, disk in zip(runs, split_runs(joined), split_runs(back)):
        _same_run(original, mem)
        _same_run(original, disk)


def test_fit_and_stack_read_a_joint_set_from_disk(joint, runs_file):
    """reduce jointly -> write -> read -> fit: the same statistic as the in-memory list (1e-9)."""
    from gcxr.datasets import stack
    from gcxr.fit import fit
    from gcxr.io import read_datasets
    from gcxr.models import Models
    back = read_datasets(runs_file)
    assert "obs" in back.dims and back.sizes["obs"] == len(joint.datasets) == 2
    m_list, m_file = Models.from_yaml(MODELS), Models.from_yaml(MODELS)
    r_list = fit(joint.datasets, m_list)
    r_file = fit(back, m_file)
    assert r_list.success and r_file.success
    assert r_file.total_stat == pytest.approx(r_list.total_stat, rel=1e-9)
    for p, q in zip(r_list.parameters, r_file.parameters):
        assert q["value"] == pytest.approx(p["value"], rel=1e-6, abs=1e-9), p["name"]
    s_list, s_file = stack(joint.datasets, joint.spec), stack(back, joint.spec)
    for v in ("counts", "background", "exposure", "mask_safe", "psf", "edisp", "livetime"):
        assert np.array_equal(s_list[v].values, s_file[v].values), v


def test_split_refuses_a_stacked_dataset(stacked):
    from gcxr.contract import DatasetError, as_runs, split_runs
    with pytest.raises(DatasetError, match="no 'obs' dim"):
        split_runs(stacked.datasets[0])
    assert as_runs(stacked.datasets[0])[0] is stacked.datasets[0]


def test_read_datasets_holds_a_file_to_the_contract(stacked, store, tmp_path):
    """``Analysis.read_datasets`` (``gcxr run --datasets``) refuses a netCDF file whose datasets
    break the contract, naming the file and what is wrong, before any fit."""
    from gcxr.datastore import DataStoreError
    from gcxr.io import write_datasets
    from gcxr.analysis import Analysis
    from gcxr.config import AnalysisConfig
    ds = stacked.datasets[0] if hasattr(stacked, "datasets") else stacked
    bad = ds.copy()
    bad.attrs = dict(ds.attrs) | {"frame": "fk5"}
    path = write_datasets(bad, tmp_path / "bad.nc")
    ana = Analysis(AnalysisConfig.from_yaml(SMALL_STORE_CONFIG.format(store=store)), progress=False)
    with pytest.raises(DataStoreError, match=r"bad\.nc.*frame"):
        ana.read_datasets(path)


# --------------------------------------------------------------------------- every entry validates
def test_stack_refuses_runs_that_break_the_contract(joint):
    """``stack`` holds every run it is given to the contract and names the run and the variable."""
    from gcxr.contract import DatasetError
    from gcxr.datasets import stack
    runs = list(joint.datasets)
    with pytest.raises(DatasetError, match=r"stack: run 1 of 2: .*'counts'.* missing"):
        stack([runs[0], runs[1].drop_vars("counts")], joint.spec)
    bad = runs[0].copy()
    bad["exposure"] = bad["exposure"].transpose("lat", "energy_true", "lon")
    with pytest.raises(DatasetError, match=r"stack: run 0 of 2: .*variable 'exposure' has dims "
                                           r"\('lat', 'energy_true', 'lon'\)"):
        stack([bad, runs[1]], joint.spec)


def test_fit_refuses_datasets_that_break_the_contract(joint):
    """``fit`` holds the datasets it is given to the contract before building anything: the error
    names the dataset and the variable."""
    from gcxr.contract import DatasetError
    from gcxr.fit import fit
    from gcxr.models import Models, PointSpatialModel, PowerLawSpectralModel, SkyModel
    runs = list(joint.datasets)
    models = Models([SkyModel(PowerLawSpectralModel(), PointSpatialModel(lon_0=0.0, lat_0=0.0, frame="galactic"),
                              name="src")])
    with pytest.raises(DatasetError, match=r"'exposure'.* missing"):
        fit([runs[0], runs[1].drop_vars("exposure")], models)
    # background is optional in the contract; with a free background norm there is nothing to fit it to
    from gcxr.datastore import DataStoreError
    models.add_fov_background([ds.attrs["name"] for ds in runs])
    no_bkg = runs[1].drop_vars("background")
    with pytest.raises(DataStoreError, match=rf"dataset {no_bkg.attrs['name']!r} has no background cube"):
        fit([runs[0], no_bkg], models)


@pytest.mark.parametrize("break_it, named", [
    (lambda ds: ds.drop_vars("exposure"), r"'exposure'.* missing"),
    (lambda ds: ds.assign(counts=ds["counts"].transpose("lon", "lat", "energy")),
     r"variable 'counts' has dims \('lon', 'lat', 'energy'\)"),
])
def test_readers_refuse_files_that_break_the_contract(stacked, store, tmp_path, break_it, named):
    """``gcxr.io.read_datasets`` validates what it read: the error names the file and the variable;
    ``Analysis.read_datasets`` (``gcxr run --datasets``) reports it as a data error."""
    from gcxr.analysis import Analysis
    from gcxr.config import AnalysisConfig
    from gcxr.contract import DatasetError
    from gcxr.datastore import DataStoreError
    from gcxr.io import read_datasets, write_datasets
    path = write_datasets(break_it(stacked.datasets[0]), tmp_path / "broken.nc")
    with pytest.raises(DatasetError, match=r"broken\.nc: .*" + named):
        read_datasets(path)
    with pytest.raises(DataStoreError, match=r"broken\.nc: .*" + named):
        Analysis(AnalysisConfig.from_yaml(SMALL_STORE_CONFIG.format(store=store)), progress=False).read_datasets(path)

