"""netCDF round trips: datasets (stacked and per run), fitted models and fit results."""
import numpy as np
import pytest
import xarray as xr

from conftest import REF, needs_data

pytestmark = [needs_data]


@pytest.fixture(scope="module")
def stacked_fitted(seed_stacked):
    from gcxr.datasets import fit_mask
    from gcxr.fit import fit
    from gcxr.models import Models
    ds = seed_stacked.copy()
    ds.attrs["name"] = "stacked"
    ds["mask_fit"] = fit_mask(ds, 0.3, None)
    models = Models.read(REF / "seed_models_stacked.yaml")
    start = models.to_dict()
    result = fit([ds], models)
    assert models.to_dict() == start and models.covariance is None      # fit leaves the models alone
    result.apply(models)
    return ds, models, result


def test_fit_result_owns_the_fit_and_applies_it(stacked_fitted):
    """FitResult.apply writes the result's values, errors and covariance block into models."""
    from gcxr.models import Models
    _, fitted, result = stacked_fitted
    free = fitted.parameters.free
    assert result.names == [u.split(".")[0] + "." + u.split(".")[-1] for u in free.unique_names]
    np.testing.assert_array_equal(result.values, free.values)
    np.testing.assert_allclose(free.errors, result.errors, rtol=1e-14)     # sqrt(diag(covariance))
    np.testing.assert_allclose(result.errors, np.sqrt(np.diag(result.covariance)), rtol=1e-14)
    fresh = Models.read(REF / "seed_models_stacked.yaml")
    assert result.apply(fresh) is fresh
    assert fresh.to_dict() == fitted.to_dict()
    np.testing.assert_array_equal(fresh.covariance, fitted.covariance)
    np.testing.assert_array_equal(fresh.parameters.free.covariance, result.covariance)


def _assert_identical_arrays(a: xr.Dataset, b: xr.Dataset, names):
    for v in names:
        x, y = a[v].values, b[v].values
        assert x.shape == y.shape, v
        if x.dtype == bool or y.dtype == bool:
            assert np.array_equal(x.astype(bool), y.astype(bool)), v
        else:
            assert np.array_equal(x, y), v
    for c in ("energy", "energy_true", "lon", "lat", "energy_bounds", "energy_true_bounds"):
        if c in a.coords or c in a:
            assert np.array_equal(a[c].values, b[c].values), c


def test_stacked_round_trip_identical_and_plain_xarray(tmp_path, stacked_fitted, seed_spec):
    from gcxr.io import geom_from_dataset, read_datasets, write_datasets
    ds, models, result = stacked_fitted
    path = write_datasets(ds, tmp_path / "datasets.nc", spec=seed_spec)
    back = read_datasets(path)
    names = ["counts", "background", "exposure", "psf", "edisp", "mask_safe", "mask_fit"]
    _assert_identical_arrays(ds, back, names)
    plain = xr.open_dataset(path)                      # no gcxr: plain xarray, default engine
    try:
        for v in ("counts", "background", "exposure", "psf", "edisp"):
            assert "units" in plain[v].attrs, v
        assert plain["exposure"].attrs["units"] in ("m2 s", "m^2 s", "m2.s")
        assert plain["energy"].attrs.get("bounds") == "energy_bounds"
        assert plain.attrs["Conventions"].startswith("CF")
        enc = plain["counts"].encoding
        assert enc.get("zlib") and enc.get("chunksizes")[0] == 1           # compressed, one chunk per plane
    finally:
        plain.close()
    g = geom_from_dataset(back)
    assert g == seed_spec.geom or g.to_header_string() == seed_spec.geom.to_header_string()


def test_fit_statistic_identical_after_round_trip(tmp_path, stacked_fitted, seed_spec):
    from gcxr.io import read_datasets, read_fit_result, write_datasets, write_fit_result
    from gcxr.likelihood import total_stat
    ds, models, result = stacked_fitted
    write_datasets(ds, tmp_path / "datasets.nc", spec=seed_spec)
    write_fit_result(result, tmp_path / "fit_result.nc", models=models)
    back = read_datasets(tmp_path / "datasets.nc")
    back.attrs["name"] = "stacked"
    r2, m2 = read_fit_result(tmp_path / "fit_result.nc")
    # the fit result itself
    assert r2.total_stat == result.total_stat and r2.nfev == result.nfev and r2.success == result.success
    assert r2.parameters == result.parameters
    assert np.array_equal(r2.covariance, result.covariance) and r2.names == result.names
    # the models, rebuilt from the file, give identical parameter values ...
    assert [p.value for p in m2.parameters] == [p.value for p in models.parameters]
    assert np.array_equal(m2.covariance, models.covariance)
    # ... and the statistic on the re-read dataset is identical, not just close
    s_orig = total_stat([ds], models)
    # (the fit's own figure used PSF/EDISP taken where the source started: within 0.1 deg, see gcxr.fit)
    assert abs(s_orig - result.total_stat) < 0.05
    assert total_stat([back], m2) == s_orig
    # the file opens in plain xarray with units on the parameters
    plain = xr.open_dataset(tmp_path / "fit_result.nc")
    try:
        assert "gc-source.index" in list(plain["parameter"].values)
        assert set(plain["unit"].values) >= {"", "deg", "TeV"}
    finally:
        plain.close()


def test_per_run_round_trip_places_each_cutout(tmp_path, seed_runs, seed_spec, run_110380):
    from gcxr.datasets import empty_like_grid
    from gcxr.io import read_datasets, write_datasets
    runs = [run_110380]
    path = write_datasets(runs, tmp_path / "runs.nc", spec=seed_spec)
    back = read_datasets(path)
    assert back.sizes["obs"] == 1 and int(back["obs"][0]) == 110380
    one = back.isel(obs=0).sel(lon=run_110380["lon"], lat=run_110380["lat"])
    for v in ("counts", "background", "exposure", "mask_safe"):
        assert np.array_equal(one[v].values.astype(run_110380[v].dtype), run_110380[v].values), v
    irf = back.isel(obs=0).sel(lon_irf=run_110380["lon_irf"], lat_irf=run_110380["lat_irf"])
    for v in ("mask_safe_psf", "mask_safe_edisp"):     # EDISP weight: per reco-energy bin
        assert irf[v].dims == run_110380[v].dims, v
        assert irf[v].dtype == bool and np.array_equal(irf[v].values, run_110380[v].values), v
    assert back["mask_safe_edisp"].dims == ("obs", "energy", "lat_irf", "lon_irf")
    grid = empty_like_grid(seed_spec)
    assert back.sizes["lon"] == grid.sizes["lon"] and back.sizes["lat"] == grid.sizes["lat"]
    outside = back["counts"].isel(obs=0).where(~back["lon"].isin(run_110380["lon"].values), drop=True)
    assert float(outside.sum()) == 0.0


def test_runs_file_stores_each_run_in_its_own_tiles(tmp_path, seed_spec, run_110380):
    """A runs file stores a run's cubes in sky tiles and writes only the tiles its cutout
    touches: the tiles outside read back as exact zeros (fill value 0, no ``_FillValue``
    attribute, so a reader sees data, not missing values), and the file holds about the run's
    own bytes, far less than the run padded onto the 10 x 8 deg grid (the run's cutout is
    350 x 310 of its 500 x 400 pixels)."""
    import netCDF4
    from gcxr.io import RUN_TILE, write_datasets
    path = write_datasets([run_110380], tmp_path / "runs.nc", spec=seed_spec)
    with netCDF4.Dataset(path) as nc:
        for v in ("counts", "exposure", "background"):
            var = nc.variables[v]
            assert "_FillValue" not in var.ncattrs(), v
            assert var.chunking()[-2:] == [RUN_TILE, RUN_TILE], v
    raw = xr.open_dataset(path)                  # CF decoding on: nothing becomes NaN
    try:
        lon_in = raw["lon"].isin(run_110380["lon"].values)
        lat_in = raw["lat"].isin(run_110380["lat"].values)
        for v in ("counts", "exposure", "background"):
            cube = raw[v].isel(obs=0).values
            assert not np.isnan(cube).any(), v
            assert np.all(cube[..., ~lat_in.values, :] == 0) and np.all(cube[..., ~lon_in.values] == 0), v
        cubes = [v for v in run_110380.data_vars if run_110380[v].ndim > 0]
        padded = sum(raw[v].isel(obs=0).size * raw[v].dtype.itemsize for v in cubes)
        own = sum(run_110380[v].size * raw[v].dtype.itemsize for v in cubes)
    finally:
        raw.close()
    size = path.stat().st_size
    assert size < own + 0.5 * (padded - own), (size, own, padded)


def test_bad_fit_result_file_is_named(tmp_path):
    from gcxr.io import read_fit_result
    bad = tmp_path / "junk.nc"
    bad.write_bytes(b"not netcdf at all")
    with pytest.raises(ValueError, match="junk.nc"):
        read_fit_result(bad)
    with pytest.raises(FileNotFoundError, match="missing.nc"):
        read_fit_result(tmp_path / "missing.nc")
    xr.Dataset({"value": ("parameter", [1.0])}).to_netcdf(tmp_path / "other.nc")
    with pytest.raises(ValueError, match="other.nc.*'error'"):
        read_fit_result(tmp_path / "other.nc")
