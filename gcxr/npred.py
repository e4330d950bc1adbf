"""Forward folding: flux x exposure -> PSF -> energy dispersion, plus background x norm.

For a source s on a dataset:

    npred_true(t, p) = F_t * [S (*) K_t](p) * Exposure(t, p) * 1e4     (F_t: flux in true-energy bin t)
    npred_sig(r, p)  = sum_t npred_true(t, p) * D[t, r]                (D: EDISP matrix)

evaluated on a cutout around the source.  S is the source's spatial
distribution on the pixels (bilinear "tent" weights for a point source; the
surface brightness times the pixel solid angle for extended ones), K_t the PSF
kernel at the source position.  The PSF kernel, the EDISP matrix and the
cutout are computed once, at the position the source has when the evaluator is
built (see :mod:`gcxr.fit` for when they are rebuilt), so that a likelihood
call is a pure function of the parameters.  Background:
``npred_bkg = B * norm * (E_c / E_ref)^-tilt`` with E_c the reco-bin centre.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from .contract import geom_of
from .geom import EnergyAxis, SkyGeom, separation_deg
from .models.spatial import oversampling_factor

__all__ = ["SourceEvaluator", "SparseSelection", "OutsideDataset", "psf_kernel", "psf_profile_at", "containment_radius",
           "npred_cubes", "oddup", "MARGIN_DEG"]

MAX_SUBPIXELS = 2 ** 22   # sub-pixels of one oversampled evaluation (32 MB a float64 array)
MARGIN_DEG = 0.1          # cutout margin beyond the PSF kernel and the source's evaluation radius
RAD_SR_TO_DEG2 = (np.pi / 180.0) ** 2


def oddup(x: float) -> int:
    """Smallest odd integer >= ceil(x) (as the reference sizes kernels and cutouts).

    Parameters
    ----------
    x : float
        A size in pixels.

    Returns
    -------
    int
        The odd size.

    Examples
    --------
    >>> oddup(4.2)
    5
    """
    return int(np.ceil(x) // 2 * 2 + 1)


def psf_profile_at(psf: np.ndarray, irf_geom: SkyGeom, lon: float, lat: float) -> np.ndarray:
    """PSF profile P[t, r] (sr^-1) at a position: bilinear in the IRF-grid pixel coordinates.

    Parameters
    ----------
    psf : numpy.ndarray
        The PSF on (energy_true, rad, lat_irf, lon_irf), sr^-1.
    irf_geom : SkyGeom
        The IRF grid.
    lon, lat : float
        The position in the grid's frame, deg.

    Returns
    -------
    numpy.ndarray
        The profile on (energy_true, rad), sr^-1.
    """
    from .irf._interp import interp_scattered
    px, py = irf_geom.world_to_pix(lon, lat)
    ny, nx = psf.shape[-2:]
    return interp_scattered(psf, [np.arange(ny, dtype=float), np.arange(nx, dtype=float)],
                            [np.array(float(py)), np.array(float(px))])


def containment_radius(profile_deg2: np.ndarray, rad_edges: np.ndarray, fraction: float) -> np.ndarray:
    """Radius (deg) holding ``fraction`` of the PSF, per true energy, on a 20x finer radial grid.

    Parameters
    ----------
    profile_deg2 : numpy.ndarray
        The PSF profile on (energy_true, rad), deg^-2.
    rad_edges : numpy.ndarray
        The radial bin edges, deg.
    fraction : float
        The containment fraction.

    Returns
    -------
    numpy.ndarray
        One radius per true energy, deg.
    """
    rc = 0.5 * (rad_edges[:-1] + rad_edges[1:])
    dr = np.diff(rad_edges)
    cums = np.cumsum(profile_deg2 * (2 * np.pi * rc * dr)[None, :], axis=1)     # at the upper edges
    nodes = rad_edges[1:]
    fine = np.linspace(rad_edges[0], rad_edges[-1], (rad_edges.size - 1) * 20 + 1)
    fine = 0.5 * (fine[:-1] + fine[1:])
    from .irf._interp import interp_axis
    c = np.clip(interp_axis(cums.T, nodes, fine, axis=0).T, 0.0, None)            # (nE, n_fine)
    c[:, (fine < nodes[0] - 0.5 * dr[0]) | (fine > nodes[-1] + 0.5 * dr[-1])] = 0.0
    return fine[np.argmin(np.abs(c - fraction), axis=1)]


def psf_kernel(psf: np.ndarray, irf_geom: SkyGeom, geom: SkyGeom, lon: float, lat: float,
               rad_edges: np.ndarray) -> np.ndarray:
    """PSF kernel (n_true, n, n) on the fine grid at (lon, lat); each plane sums to 1.

    The kernel extends to the largest 99.9 % containment radius; pixels are
    oversampled (up to 4x) where the 68 % radius is small compared to a pixel.
    Radii are true angular separations at the source latitude.

    Parameters
    ----------
    psf : numpy.ndarray
        PSF density (sr-1) on (energy_true, rad, lat_irf, lon_irf).
    irf_geom, geom : SkyGeom
        The IRF grid and the fine (counts) grid.
    lon, lat : float
        The source position (deg, grid frame).
    rad_edges : numpy.ndarray
        Edges of the PSF's radial bins (deg).

    Returns
    -------
    numpy.ndarray
        Kernel, shape ``(n_true, n, n)``.
    """
    prof = psf_profile_at(psf, irf_geom, lon, lat) * RAD_SR_TO_DEG2                   # deg^-2
    binsz = geom.binsz
    r999 = containment_radius(prof, rad_edges, 0.999)
    r68 = containment_radius(prof, rad_edges, 0.68)
    nk = oddup(2 * r999.max() / binsz)
    with np.errstate(divide="ignore"):
        factors = np.minimum(np.ceil(12.0 / (2 * r68 / binsz)), 4).astype(int)
    factors = np.where(r68 > 0, factors, 4)
    rc = 0.5 * (rad_edges[:-1] + rad_edges[1:])
    kern = np.zeros((prof.shape[0], nk, nk))
    for t in range(prof.shape[0]):
        n_t, f = oddup(2 * r999[t] / binsz), int(factors[t])
        sub = (np.arange(n_t * f) + 0.5) / f - n_t / 2.0                             # fine-pixel units
        dx, dy = np.meshgrid(sub * abs(geom.dlon), sub * geom.dlat)
        r = separation_deg(dx, lat + dy, 0.0, lat)
        # linear in rad with linear extrapolation (r below the first centre), clipped at 0
        i = np.clip(np.searchsorted(rc, r, side="right") - 1, 0, rc.size - 2)
        w = (r - rc[i]) / (rc[i + 1] - rc[i])
        v = np.clip(prof[t, i] * (1 - w) + prof[t, i + 1] * w, 0.0, None)
        small = v.reshape(n_t, f, n_t, f).sum(axis=(1, 3))
        o = (nk - n_t) // 2
        kern[t, o:o + n_t, o:o + n_t] += small
    tot = kern.sum(axis=(1, 2), keepdims=True)
    return np.where(tot > 0, kern / np.where(tot > 0, tot, 1.0), 0.0)


@dataclass
class SourceEvaluator:
    """One source's npred on a fixed cutout of one dataset, assembled from cached parts.

    ``npred[r, p] = sum_t D[t, r] F_t C_t[p]`` with

    * ``F_t``: the spectral model's integral over true-energy bin t (:meth:`flux`), cheap;
    * ``C_t = Exposure_t * (X (*) K_t)``: the *folded spatial part* (:meth:`folded`), where X
      is the source's flux fraction per pixel on the cutout (surface brightness times solid
      angle; for a point source the tap weights around its position) and K_t the PSF kernel.
      ``C`` depends only on the spatial parameters and is cached (a few entries, LRU), so a
      move of a spectral parameter costs one small matrix product, and a frozen shape is
      folded once per fit;
    * ``D``: the energy-dispersion matrix at the source position.

    Convolutions are done by FFT with the kernels' transforms computed once.
    :meth:`backprop` gives the derivatives of a statistic with respect to the source's
    parameters from ``dstat/dnpred`` on the cutout (the chain rule through the parts above;
    the 1-D flux integrals and the spatial image are differentiated by central differences,
    which are cheap; the folding is differentiated exactly, by the adjoint convolution).

    Built from numpy arrays only (picklable, no model objects): the spectral and spatial
    model *classes* provide the pure ``_integral``/``_evaluate``.
    """

    name: str
    spectral_cls: type
    spatial_cls: type | None
    spatial_template: object | None      # a TemplateSpatialModel instance (data holder), else None
    frame_model: str
    geom: SkyGeom                         # the dataset's fine grid
    cut: tuple[slice, slice]              # cutout slices in the dataset grid
    energy_true: EnergyAxis
    kernel: np.ndarray                    # (n_true, nk, nk)
    edisp: np.ndarray                     # (n_true, n_reco)
    exposure_cut: np.ndarray              # (n_true, ny_c, nx_c), m2 s x 1e4 -> cm2 s
    irf_position: tuple[float, float]     # (lon, lat) in the dataset frame where IRFs were taken
    point_weights: str = "tent"
    radius: float = 0.0                   # evaluation radius (deg) the cutout was sized for
    _aux: dict = field(default_factory=dict, repr=False)

    CACHE_SIZE = 3

    @classmethod
    def build(cls, model, ds: xr.Dataset, geom: SkyGeom | None = None, irf_geom: SkyGeom | None = None,
              position: tuple[float, float] | None = None, point_weights: str = "tent") -> "SourceEvaluator":
        """The evaluator of one source on a dataset: cutout, PSF kernels and EDISP matrix at its position (design record 9).

        Parameters
        ----------
        model : SkyModel
            The source.
        ds : xarray.Dataset
            The dataset.
        geom, irf_geom : SkyGeom, optional
            The dataset's grids (default: rebuilt from it).
        position : tuple of float, optional
            Where to take the IRFs (default: the model's position).
        point_weights : {'tent', 'cubic'}
            Rendering of a point source.

        Returns
        -------
        SourceEvaluator
            The evaluator.
        """
        from .coords import transform_lonlat
        if geom is None or irf_geom is None:
            geom, irf_geom = geom_of(ds)
        sp = model.spatial_model
        if sp is None:
            raise ValueError(f"model {model.name!r}: a 3D fit needs a spatial model")
        if position is None:
            lon_m, lat_m = sp.position
            lon, lat = transform_lonlat(np.array([lon_m]), np.array([lat_m]), sp.frame, geom.frame)
            position = (float(lon[0]), float(lat[0]))
        lon, lat = position
        rad_b = ds["rad_bounds"].values
        rad_edges = np.append(rad_b[:, 0], rad_b[-1, 1])
        kernel = psf_kernel(np.asarray(ds["psf"].values, float), irf_geom, geom, lon, lat, rad_edges)
        ix, iy, ok = irf_geom.world_to_index(np.array([lon]), np.array([lat]))
        ix = int(np.clip(ix[0], 0, irf_geom.nx - 1))
        iy = int(np.clip(iy[0], 0, irf_geom.ny - 1))
        edisp = np.asarray(ds["edisp"].values[:, :, iy, ix], float)
        radius = float(getattr(sp, "evaluation_radius", 0.0) or 0.0)
        width = kernel.shape[-1] * geom.binsz + 2 * (radius + MARGIN_DEG)
        try:
            cut = geom.cutout_slices(lon, lat, oddup(width / geom.binsz))
        except ValueError:
            raise OutsideDataset(f"model {model.name!r}: its cutout around ({lon:.3f}, {lat:.3f}) does not "
                                 f"overlap dataset {ds.attrs.get('name', '')!r}") from None
        expo = np.asarray(ds["exposure"].values[(slice(None),) + cut], float) * 1e4
        template = sp if sp.tag == "TemplateSpatialModel" else None
        ev = cls(model.name, type(model.spectral_model), None if template is not None else type(sp), template,
                 sp.frame, geom, cut, EnergyAxis.from_coord(ds, "energy_true"), kernel, edisp, expo, (lon, lat),
                 point_weights, radius)
        ev._prepare()
        return ev

    # ---- pickling: the caches stay behind (they are rebuilt on first use)
    def __getstate__(self):
        state = dict(self.__dict__)
        state["_aux"] = {}
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._prepare()

    @property
    def is_point(self) -> bool:
        """Whether the source is a point source (rendered by tap weights)."""
        return self.spatial_cls is not None and self.spatial_cls.tag == "PointSpatialModel"

    def _prepare(self):
        self._aux["sub"] = self.geom.slice(*self.cut)
        self._aux["cache"] = OrderedDict()

    def _fft(self, box: tuple[int, int] | None = None):
        """(padded shape, rFFT of the kernels) for a linear convolution of an image of ``box``
        (rows, columns; default the whole cutout) with the kernels, computed once per padded shape."""
        ny, nx = box or self.shape
        nk = self.kernel.shape[-1]
        s = (_fast_len(ny + nk - 1), _fast_len(nx + nk - 1))
        cache = self._aux.setdefault("kf", OrderedDict())
        kf = cache.get(s)
        if kf is None:
            kf = cache[s] = np.fft.rfft2(self.kernel, s=s)
            while len(cache) > 4:
                cache.popitem(last=False)
        return s, kf

    @property
    def shape(self) -> tuple[int, int]:
        """(ny, nx) of the cutout."""
        ys, xs = self.cut
        return (ys.stop - ys.start, xs.stop - xs.start)

    # ---- the parts
    def flux(self, spectral_values: dict) -> np.ndarray:
        """``F_t``: the spectral integral over each true-energy bin (cm-2 s-1).

        Parameters
        ----------
        spectral_values : dict
            Spectral parameter values by name.

        Returns
        -------
        numpy.ndarray
            ``F_t``.
        """
        key = tuple(sorted((k, float(v)) for k, v in spectral_values.items()))
        cache = self._aux.setdefault("flux", OrderedDict())
        hit = cache.get(key)
        if hit is None:              # the statistic, gradient and curvature at one point share it
            et = self.energy_true
            hit = cache[key] = np.asarray(self.spectral_cls._integral(et.lo, et.hi, **spectral_values), float)
            hit.setflags(write=False)
            while len(cache) > 16:
                cache.popitem(last=False)
        return hit

    def image(self, spatial_values: dict) -> np.ndarray:
        """Flux fraction per cutout pixel of an extended source, (ny, nx).

        The surface brightness times the solid angle, integrated over each pixel on a grid of
        ``f x f`` sub-pixels where ``f`` is gammapy 2.1's oversampling factor for the model at
        these values (:func:`gcxr.models.spatial.oversampling_factor`: small extents are
        oversampled, templates never).

        Parameters
        ----------
        spatial_values : dict
            Spatial parameter values by name.

        Returns
        -------
        numpy.ndarray
            The image.
        """
        f = 1 if self.spatial_template is not None else oversampling_factor(self.spatial_cls, spatial_values,
                                                                             self.geom.binsz)
        if f > 1:
            return self._oversampled_image(spatial_values, f)
        # templates: each true-energy bin takes the template at its log centre (gammapy's rule,
        # docs/conventions.md, "Energy-dependent templates")
        return self._image_at(spatial_values, *self._grid())

    def _oversampled_image(self, spatial_values: dict, f: int) -> np.ndarray:
        """:meth:`image` with ``f x f`` sub-pixels inside the model's evaluation radius (plus a pixel),
        plain pixel centres outside (where the model is negligible by definition).  The box is
        capped at ``MAX_SUBPIXELS`` sub-pixels by lowering ``f`` (a source far smaller than a pixel
        in a large cutout), so memory stays bounded whatever the parameters."""
        img = self._image_at(spatial_values, *self._grid())
        sub = self._aux["sub"]
        lon0, lat0 = self._centre(spatial_values)
        x0, y0 = sub.world_to_pix(lon0, lat0)
        r = self.spatial_cls.evaluation_radius_at(spatial_values)
        rx = r / (abs(sub.dlon) * np.cos(np.deg2rad(min(abs(lat0) + r, 89.0)))) + 1.0
        ry = r / abs(sub.dlat) + 1.0
        ny, nx = self.shape
        ya, yb = max(int(np.floor(y0 - ry)), 0), min(int(np.ceil(y0 + ry)) + 1, ny)
        xa, xb = max(int(np.floor(x0 - rx)), 0), min(int(np.ceil(x0 + rx)) + 1, nx)
        if yb <= ya or xb <= xa:
            return img
        f = int(min(f, max(np.sqrt(MAX_SUBPIXELS / ((yb - ya) * (xb - xa))), 1.0)))
        if f <= 1:
            return img
        fine = self._image_at(spatial_values, *self._fine_grid(ya, yb, xa, xb, f))
        img[ya:yb, xa:xb] = fine.reshape(yb - ya, f, xb - xa, f).sum(axis=(1, 3))
        return img

    def _fine_grid(self, ya: int, yb: int, xa: int, xb: int, f: int) -> tuple:
        """(lon, lat, solid angle) of the ``f x f`` sub-pixels of the cutout's box ``[ya:yb, xa:xb]``
        (read-only), kept for the last few boxes: a fit moves a small source by less than a pixel
        between most calls, so the box and its sub-pixels repeat."""
        key = (ya, yb, xa, xb, f)
        cache = self._aux.setdefault("fine", OrderedDict())
        hit = cache.get(key)
        if hit is None:
            box = self._aux["sub"].slice(slice(ya, yb), slice(xa, xb)).subdivide(f)
            hit = cache[key] = tuple(_frozen(a) for a in (*self._model_lonlat(box), box.solid_angle()))
            while len(cache) > 4:
                cache.popitem(last=False)
        else:
            cache.move_to_end(key)
        return hit

    def _image_at(self, spatial_values: dict, lon, lat, omega) -> np.ndarray:
        """Surface brightness x solid angle at the given pixel centres (model frame)."""
        tpl = self.spatial_template
        if tpl is not None and tpl.is_energy_dependent:
            img = tpl.evaluate_planes(lon, lat, self.energy_true.centers, **spatial_values)
        elif tpl is not None:
            img = tpl._evaluate(lon, lat, None, **spatial_values)
        else:
            img = self.spatial_cls._evaluate(lon, lat, **spatial_values)
        return np.asarray(img, float) * omega

    def _model_lonlat(self, grid: SkyGeom):
        """Pixel-centre (lon, lat) of ``grid`` in the model's frame."""
        from .coords import transform_lonlat
        lon, lat = grid.grid_lonlat()
        if self.frame_model != self.geom.frame:
            lon, lat = transform_lonlat(lon, lat, self.geom.frame, self.frame_model)
        return lon, lat

    def _grid(self):
        """(lon, lat) in the model frame and solid angles of the cutout's pixels, computed once."""
        if "grid" not in self._aux:
            sub = self._aux["sub"]
            self._aux["grid"] = tuple(_frozen(a) for a in (*self._model_lonlat(sub), sub.solid_angle()))
        return self._aux["grid"]

    def _centre(self, spatial_values: dict) -> tuple[float, float]:
        """The model's ``(lon_0, lat_0)`` at these values, in the dataset's frame."""
        from .coords import transform_lonlat
        lon0, lat0 = spatial_values["lon_0"], spatial_values["lat_0"]
        if self.frame_model != self.geom.frame:
            l, b = transform_lonlat(np.array([lon0]), np.array([lat0]), self.frame_model, self.geom.frame)
            lon0, lat0 = float(l[0]), float(b[0])
        return lon0, lat0

    def _image_derivative(self, spatial_values: dict, name: str, h: float) -> np.ndarray:
        """Central difference of :meth:`image` in one parameter (step ``h``), cached with the
        folded parts' key: the gradient and the curvature at one point share it."""
        if name in _ANGULAR and self.spatial_cls is not None and self.spatial_cls.has_sharp_edges(
                spatial_values, self.geom.binsz):
            # the image at pixel centres is a staircase in this parameter (an edge narrower than a
            # pixel): difference over half a pixel, the slope of the pixel-averaged statistic that
            # MIGRAD should follow, not the slope of one stair
            h = max(h, 0.5 * self.geom.binsz)
        key = (tuple(sorted((k, float(v)) for k, v in spatial_values.items())), name, float(h))
        cache = self._aux.setdefault("dimage", OrderedDict())
        hit = cache.get(key)
        if hit is not None:
            return hit
        up, down = dict(spatial_values), dict(spatial_values)
        up[name] += h
        down[name] -= h
        d = (self.image(up) - self.image(down)) / (2.0 * h)
        cache[key] = d
        while len(cache) > 4 * max(len(spatial_values), 1):
            cache.popitem(last=False)
        return d

    def _convolve(self, img: np.ndarray) -> np.ndarray:
        """``img (*) K_t`` for every t, cropped to the cutout ("same" alignment), (n_true, ny, nx).

        A 2D image is convolved over its support only (the box of pixels above ``SUPPORT_FLOOR``
        of its peak, see :func:`_support`): the FFTs are sized by the model's extent plus the
        kernel, not by the cutout (which must also hold the PSF's spread)."""
        ny, nx = self.shape
        h = self.kernel.shape[-1] // 2
        if img.ndim == 3:               # one plane per true energy: empty planes stay empty
            s, kf = self._fft()
            out = np.zeros((kf.shape[0], ny, nx))
            live = np.flatnonzero(np.any(img.reshape(img.shape[0], -1) != 0, axis=1))
            if live.size:
                full = np.fft.irfft2(np.fft.rfft2(img[live], s=s) * kf[live], s=s)
                out[live] = full[:, h:h + ny, h:h + nx]
            return out
        out = np.zeros((self.kernel.shape[0], ny, nx))
        box = _support(img)
        if box is None:
            return out
        y0, y1, x0, x1 = box
        s, kf = self._fft((y1 - y0, x1 - x0))
        full = np.fft.irfft2(np.fft.rfft2(img[y0:y1, x0:x1], s=s) * kf, s=s)
        # full[i] lands on cutout pixel y0 - h + i (and likewise in x), i < box + kernel - 1
        nk = self.kernel.shape[-1]
        ya, yb = max(y0 - h, 0), min(y1 - 1 + (nk - 1 - h), ny - 1) + 1
        xa, xb = max(x0 - h, 0), min(x1 - 1 + (nk - 1 - h), nx - 1) + 1
        out[:, ya:yb, xa:xb] = full[:, ya - (y0 - h):yb - (y0 - h), xa - (x0 - h):xb - (x0 - h)]
        return out

    def _correlate(self, v: np.ndarray, per_plane: bool = False, box=None) -> np.ndarray:
        """Adjoint of :meth:`_convolve`: ``sum_p v_t[p] dconv_t[p]/dimg[q]``, summed over t into one
        (ny, nx) image, or one per plane (n_true, ny, nx) for an energy-dependent image.  With
        ``box = (y0, y1, x0, x1)`` only the pixels of the box are computed (the rest are 0): the
        FFTs then cover the box plus the kernel."""
        ny, nx = self.shape
        nk = self.kernel.shape[-1]
        h = nk // 2
        if box is None or per_plane:
            s, kf = self._fft()
            pad = np.zeros((v.shape[0],) + s)
            pad[:, h:h + ny, h:h + nx] = v
            spec = np.fft.rfft2(pad) * np.conj(kf)
            if not per_plane:
                spec = spec.sum(axis=0)
            return np.fft.irfft2(spec, s=s)[..., :ny, :nx]
        y0, y1, x0, x1 = box
        s, kf = self._fft((y1 - y0, x1 - x0))
        # the output at box pixel q reads v on [y0 - h + q, y0 - h + q + nk): copy that window of v
        # (zero outside the cutout) to the start of the padded array
        ly, lx = (y1 - y0) + nk - 1, (x1 - x0) + nk - 1
        pad = np.zeros((v.shape[0],) + s)
        ya, yb = max(y0 - h, 0), min(y0 - h + ly, ny)
        xa, xb = max(x0 - h, 0), min(x0 - h + lx, nx)
        pad[:, ya - (y0 - h):yb - (y0 - h), xa - (x0 - h):xb - (x0 - h)] = v[:, ya:yb, xa:xb]
        spec = (np.fft.rfft2(pad) * np.conj(kf)).sum(axis=0)
        out = np.zeros((ny, nx))
        out[y0:y1, x0:x1] = np.fft.irfft2(spec, s=s)[:y1 - y0, :x1 - x0]
        return out

    def _point_pixel(self, spatial_values: dict) -> tuple[float, float]:
        x0, y0 = self._aux["sub"].world_to_pix(*self._centre(spatial_values))
        return float(x0), float(y0)

    def _pixel_jacobian(self, spatial_values: dict, name: str, h: float) -> tuple[float, float]:
        """``(dx0/dv, dy0/dv)``: how the point's pixel position moves with one spatial parameter."""
        up, down = dict(spatial_values), dict(spatial_values)
        up[name] += h
        down[name] -= h
        (xu, yu), (xd, yd) = self._point_pixel(up), self._point_pixel(down)
        return (xu - xd) / (2 * h), (yu - yd) / (2 * h)

    def folded(self, spatial_values: dict) -> np.ndarray:
        """``C_t = Exposure_t * (X (*) K_t)`` on the cutout, (n_true, ny, nx); cached by spatial values.

        Parameters
        ----------
        spatial_values : dict
            Spatial parameter values by name.

        Returns
        -------
        numpy.ndarray
            ``C_t``.
        """
        return self._folded(spatial_values)[0]

    def _folded(self, spatial_values: dict) -> tuple[np.ndarray, np.ndarray | None]:
        """(C, indices of its non-zero planes or None if all are), cached by spatial values."""
        key = tuple(sorted((k, float(v)) for k, v in spatial_values.items()))
        cache = self._aux["cache"]
        hit = cache.get(key)
        if hit is not None:
            cache.move_to_end(key)
            return hit
        if self.is_point:
            x0, y0 = self._point_pixel(spatial_values)
            c = self._point(x0, y0) * self.exposure_cut
        else:
            c = self._convolve(self.image(spatial_values)) * self.exposure_cut     # contiguous
        # true-energy planes that carry flux (a template may be empty beyond its last plane)
        planes = np.flatnonzero(np.any(c.reshape(c.shape[0], -1) != 0, axis=1))
        if planes.size == c.shape[0]:
            planes = None
        elif planes.size and np.all(np.diff(planes) == 1):
            planes = slice(int(planes[0]), int(planes[-1]) + 1)       # a view, no copy
        c = (c, planes)
        cache[key] = c
        while len(cache) > self.CACHE_SIZE:
            cache.popitem(last=False)
        return c

    def _windows(self, x0: float, y0: float, derivative: bool = False):
        """(weight, d weight/dx, d weight/dy, cutout slices, kernel slices) of each tap around (x0, y0)."""
        ny, nx = self.shape
        nk = self.kernel.shape[-1]
        h = nk // 2
        for (xi, wx, dwx) in _taps(x0, self.point_weights, True):
            for (yi, wy, dwy) in _taps(y0, self.point_weights, True):
                if wx * wy == 0 and not (derivative and (dwx * wy != 0 or wx * dwy != 0)):
                    continue
                y_a, x_a = yi - h, xi - h
                cy0, cy1 = max(y_a, 0), min(y_a + nk, ny)
                cx0, cx1 = max(x_a, 0), min(x_a + nk, nx)
                if cy1 <= cy0 or cx1 <= cx0:
                    continue
                yield (wx * wy, dwx * wy, wx * dwy, (slice(cy0, cy1), slice(cx0, cx1)),
                       (slice(cy0 - y_a, cy1 - y_a), slice(cx0 - x_a, cx1 - x_a)))

    def _point(self, x0, y0):
        """A point source: shifted copies of the kernel at the pixels around (x0, y0), weighted.

        ``point_weights="tent"`` (default): bilinear weights on the 2 x 2 pixels, the reference's
        convention (parity of the statistic to 1e-4). npred is then only piecewise linear in the
        position: fitted positions lock towards pixel centres by up to ~0.1 px and HESSE
        underestimates position errors by ~1.5x (docs/parity.md, "Point-source rendering").
        ``"cubic"``: cubic B-spline weights on the 4 x 4 nearest pixels; npred is twice
        continuously differentiable in the position and position pulls are unit-normal
        (tests/test_closure.py); the rendering adds a 1/3 px^2 variance to the PSF.
        ``"keys"``: Catmull-Rom weights (C1, no added variance).
        """
        out = np.zeros((self.kernel.shape[0],) + self.shape)
        for w, _, _, cs, ks in self._windows(x0, y0):
            out[(slice(None),) + cs] += w * self.kernel[(slice(None),) + ks]
        return out

    def npred(self, spectral_values: dict, spatial_values: dict, reco: np.ndarray | None = None) -> np.ndarray:
        """Source npred on the cutout, (n_reco, ny, nx), or on the reco-energy planes ``reco`` only.

        Parameters
        ----------
        spectral_values, spatial_values : dict
            Parameter values by name.
        reco : numpy.ndarray, optional
            Indices of the reco-energy planes.

        Returns
        -------
        numpy.ndarray
            Predicted counts.
        """
        F = self.flux(spectral_values)
        C, planes = self._folded(spatial_values)
        nt, ny, nx = C.shape
        D = self.edisp if reco is None else self.edisp[:, reco]
        if planes is not None:
            Cp = C[planes]
            if Cp.shape[0] == 0:                       # no flux on the cutout at all, whatever F is
                return np.zeros((D.shape[1], ny, nx))
            D, F, C = D[planes], F[planes], Cp
        if not np.all(np.isfinite(F)):
            raise ValueError(f"model {self.name!r}: its flux is not finite in some true-energy bin at "
                             f"{spectral_values} (the spectral model overflows): no predicted counts")
        DF = D * F[:, None]                            # (n_true, n_reco)
        return (DF.T @ C.reshape(C.shape[0], -1)).reshape(-1, ny, nx)

    def flux_finite(self, spectral_values: dict, spatial_values: dict) -> bool:
        """Whether the bin fluxes are finite on every true-energy plane that carries flux on the cutout
        (where no plane does, the source predicts no counts here, whatever its flux).

        Parameters
        ----------
        spectral_values, spatial_values : dict
            Parameter values by name.

        Returns
        -------
        bool
            False where :meth:`npred` cannot be computed (a spectral model that overflows).
        """
        F = self.flux(spectral_values)
        if np.all(np.isfinite(F)):
            return True
        _, planes = self._folded(spatial_values)
        return planes is not None and bool(np.all(np.isfinite(F[planes])))

    def sparse_parts(self, spatial_values: dict, sel: "SparseSelection") -> tuple[np.ndarray, np.ndarray]:
        """``(G, DS)`` for a statistic evaluated on a few bins plus per-plane sums (see
        :class:`SparseSelection`): ``G[t, k] = D[t, plane_k] C_t[pixel_k]``, so that the source's
        npred on the selected bins is ``F @ G``, and ``DS[t] = sum_p D[t, p] sum_{q in mask_p} C_t[q]``,
        so that its npred summed over the masked bins is ``F @ DS``.  Cached with the folded part
        (computed once per spatial values).

        Parameters
        ----------
        spatial_values : dict
            Spatial parameter values by name.
        sel : SparseSelection
            The bins and per-plane masks of the statistic.

        Returns
        -------
        tuple of numpy.ndarray
            ``(G, DS)``.
        """
        key = tuple(sorted((k, float(v)) for k, v in spatial_values.items()))
        C, _ = self._folded(spatial_values)
        extras = self._aux.setdefault("sparse", OrderedDict())
        hit = extras.get((key, id(sel)))
        if hit is not None and hit[0] is C and hit[1] is sel:
            return hit[2], hit[3]
        nt = C.shape[0]
        Cf = C.reshape(nt, -1)
        D = self.edisp[:, sel.reco]
        G = D[:, sel.plane] * Cf[:, sel.pixel]
        if sel.mask_uniform is not None:                       # the same mask on every plane
            S = (Cf[:, sel.mask_uniform].sum(axis=1) if sel.mask_uniform.size < Cf.shape[1]
                 else Cf.sum(axis=1))
            DS = D.sum(axis=1) * S
        else:                                                  # per-plane masks (bool, n_reco x n_pixels)
            S = np.stack([Cf @ m.astype(float) for m in sel.mask], axis=1)
            DS = np.einsum("tp,tp->t", D, S)
        extras[(key, id(sel))] = (C, sel, G, DS)
        while len(extras) > 2 * self.CACHE_SIZE:
            extras.popitem(last=False)
        return G, DS

    def spectral_gradient(self, g_f: np.ndarray, spectral_values: dict, names, steps: dict | None = None) -> dict:
        """``{("spectral", name): g_f . dF/dv}`` from ``g_f = dstat/dF_t`` (one value per true-energy bin).

        Parameters
        ----------
        g_f : numpy.ndarray
            dstat/dF_t.
        spectral_values : dict
            Spectral parameter values by name.
        names : iterable of str
            The parameters.
        steps : dict, optional
            Inner difference steps by name.

        Returns
        -------
        dict
            ``{('spectral', name): dstat/dvalue}``.
        """
        steps = steps or {}
        return {("spectral", n): float(g_f @ self.flux_derivative(spectral_values, n, steps))
                for n in names}

    def flux_derivative(self, spectral_values: dict, name: str, steps: dict | None = None) -> np.ndarray:
        """``dF_t/dv`` for one spectral parameter: a central difference of the bin integrals with the
        inner step of the gradients (:func:`_step`).

        Parameters
        ----------
        spectral_values : dict
            Spectral parameter values by name.
        name : str
            The parameter.
        steps : dict, optional
            Inner difference steps by name.

        Returns
        -------
        numpy.ndarray
            One value per true-energy bin.
        """
        h = _step(name, spectral_values, steps or {})
        up, down = dict(spectral_values), dict(spectral_values)
        up[name] += h
        down[name] -= h
        return (self.flux(up) - self.flux(down)) / (2.0 * h)

    # ---- derivatives
    def backprop(self, w: np.ndarray, spectral_values: dict, spatial_values: dict,
                 spectral_free=(), spatial_free=(), steps: dict | None = None,
                 reco: np.ndarray | None = None) -> dict:
        """Derivatives of a statistic with respect to the named parameters, given
        ``w = dstat/dnpred`` on the cutout, (n_reco, ny, nx) (or on the reco planes ``reco``).

        Returns ``{("spectral" | "spatial", name): dstat/dvalue}``.  ``steps`` (by name) are the
        central-difference steps of the flux integrals and the image (defaults: 1e-5 deg for
        angles, ``1e-6 * max(abs(v), 1e-3)`` otherwise).

        Parameters
        ----------
        w : numpy.ndarray
            dstat/dnpred on the cutout.
        spectral_values, spatial_values : dict
            Parameter values by name.
        spectral_free, spatial_free : sequence of str
            The parameters to differentiate.
        steps : dict, optional
            Inner difference steps by name.
        reco : numpy.ndarray, optional
            Indices of the reco-energy planes to evaluate.
        """
        steps = steps or {}
        out = {}
        nt = self.kernel.shape[0]
        C, planes = self._folded(spatial_values)
        D = self.edisp if reco is None else self.edisp[:, reco]
        if not spatial_free and planes is not None and np.size(C[planes]) > 0:   # only planes with flux matter
            D, C = D[planes], C[planes]
        else:
            planes = None
        n = C.shape[0]
        u = (D @ w.reshape(w.shape[0], -1)).reshape((n,) + C.shape[1:])               # dstat/d(F_t C_t)
        if spectral_free:
            g_f = np.zeros(nt)
            g_f[planes if (not spatial_free and planes is not None) else slice(None)] = np.einsum(
                "tp,tp->t", u.reshape(n, -1), C.reshape(n, -1))                         # dstat/dF_t
            for name in spectral_free:
                dF = self.flux_derivative(spectral_values, name, steps)
                out[("spectral", name)] = float(g_f @ dF)
        if spatial_free:
            F = self.flux(spectral_values)
            v = u * self.exposure_cut * F[:, None, None]                                 # dstat/d(X (*) K_t)
            if self.is_point:
                x0, y0 = self._point_pixel(spatial_values)
                gx = gy = 0.0
                for _, dwx, dwy, cs, ks in self._windows(x0, y0, derivative=True):
                    if dwx == 0 and dwy == 0:
                        continue
                    r = float(np.einsum("tij,tij->", v[(slice(None),) + cs], self.kernel[(slice(None),) + ks]))
                    gx += dwx * r
                    gy += dwy * r
                for name in spatial_free:
                    dxdv, dydv = self._pixel_jacobian(spatial_values, name, _step(name, spatial_values, steps))
                    out[("spatial", name)] = gx * dxdv + gy * dydv
            else:
                tpl = self.spatial_template
                dXs = {name: self._image_derivative(spatial_values, name, _step(name, spatial_values, steps))
                       for name in spatial_free}
                per_plane = tpl is not None and tpl.is_energy_dependent
                box = None if per_plane else _union_box([_support(dX) for dX in dXs.values()])
                if box is None and not per_plane:
                    return out | {("spatial", name): 0.0 for name in spatial_free}
                r = self._correlate(v, per_plane=per_plane, box=box)                     # dstat/dX
                for name, dX in dXs.items():
                    if box is None:
                        out[("spatial", name)] = float(np.sum(r * dX))
                    else:
                        y0, y1, x0, x1 = box
                        out[("spatial", name)] = float(np.sum(r[y0:y1, x0:x1] * dX[y0:y1, x0:x1]))
        return out

    def _shape_image(self, spatial_values: dict) -> np.ndarray:
        """The spatial part that the PSF folds: :meth:`image` for an extended source, for a point
        source the tap weights that place the kernel (:meth:`_point`) as an image, (ny, nx)."""
        if not self.is_point:
            return self.image(spatial_values)
        ny, nx = self.shape
        out = np.zeros((ny, nx))
        x0, y0 = self._point_pixel(spatial_values)
        for xi, wx in _taps(x0, self.point_weights):
            for yi, wy in _taps(y0, self.point_weights):
                if 0 <= yi < ny and 0 <= xi < nx:
                    out[yi, xi] += wx * wy
        return out

    def _shape_derivative(self, spatial_values: dict, name: str, h: float) -> np.ndarray:
        """d :meth:`_shape_image` / d value (central difference, step ``h``; an extended source's
        is :meth:`_image_derivative`, with its rule for sharp edges)."""
        if not self.is_point:
            return self._image_derivative(spatial_values, name, h)
        up, down = dict(spatial_values), dict(spatial_values)
        up[name] += h
        down[name] -= h
        return (self._shape_image(up) - self._shape_image(down)) / (2.0 * h)

    def second_order(self, w: np.ndarray, spectral_values: dict, spatial_values: dict, spectral_free=(),
                     spatial_free=(), steps: dict | None = None, outer: dict | None = None,
                     reco: np.ndarray | None = None) -> dict:
        """``sum_b w_b d2 npred_b / dv_i dv_j`` over the named parameters, for ``w`` (n_reco, ny, nx)
        on the cutout (or on the reco planes ``reco``): the part of the statistic's Hessian that
        the second derivatives of npred give (with ``w = dstat/dnpred``).

        With ``w`` fixed, ``sum_b w_b npred_b = sum_t F_t <P_t, X>``, where ``P_t`` is ``w`` taken
        back through the energy dispersion, the exposure and the PSF (one correlation per
        true-energy plane, computed once) and ``X`` is the spatial part (:meth:`_shape_image`).
        Its second derivatives then need no PSF folding: spectral pairs are differences of the
        bin fluxes' derivatives, spatial pairs differences of the image derivatives, mixed pairs
        the product of a flux derivative and an image derivative.  ``outer`` (by name) are the
        steps of those outer differences, ``steps`` the inner ones (as in :meth:`backprop`).

        Parameters
        ----------
        w : numpy.ndarray
            Weights on the cutout, (n_reco, ny, nx).
        spectral_values, spatial_values : dict
            Parameter values by name.
        spectral_free, spatial_free : sequence of str
            The parameters.
        steps, outer : dict, optional
            Inner and outer difference steps by name (defaults as in :func:`_step`; outer: 100
            times the inner step).
        reco : numpy.ndarray, optional
            Indices of the reco-energy planes of ``w``.

        Returns
        -------
        dict
            ``{(("spectral" | "spatial", name), (..., name)): value}``, both orders.
        """
        steps, outer = steps or {}, outer or {}
        spec, spat = list(spectral_free), list(spatial_free)
        D = self.edisp if reco is None else self.edisp[:, reco]
        nt = D.shape[0]
        ny, nx = self.shape
        u = (D @ w.reshape(w.shape[0], -1)).reshape(nt, ny, nx)                 # dstat/d(F_t C_t)

        def h_out(name, values):
            return outer.get(name) or 100.0 * _step(name, values, steps)

        def shifted(values, name, dv):
            out = dict(values)
            out[name] += dv
            return out

        def dF(values, name):
            return self.flux_derivative(values, name, steps)

        if spat:
            P = self._correlate(u * self.exposure_cut, per_plane=True)             # (nt, ny, nx)

            def on_planes(img):                                                     # <P_t, X> per t
                if img.ndim == 3:
                    return np.einsum("tij,tij->t", P, img)
                return np.einsum("tij,ij->t", P, img)
            base = on_planes(self._shape_image(spatial_values))
        else:
            C, _ = self._folded(spatial_values)
            base = np.einsum("tp,tp->t", u.reshape(nt, -1), C.reshape(nt, -1))
        res: dict = {}
        for j, b in enumerate(spec):                                               # spectral pairs
            hb = h_out(b, spectral_values)
            for a in spec[:j + 1]:
                d2 = (dF(shifted(spectral_values, b, hb), a) - dF(shifted(spectral_values, b, -hb), a)) / (2 * hb)
                res[(("spectral", a), ("spectral", b))] = float(base @ d2)
        if spat:
            F = self.flux(spectral_values)
            inner = {n: _step(n, spatial_values, steps) for n in spat}
            dX = {n: on_planes(self._shape_derivative(spatial_values, n, inner[n])) for n in spat}
            for a in spec:                                                         # mixed pairs
                fa = dF(spectral_values, a)
                for n in spat:
                    res[(("spectral", a), ("spatial", n))] = float(fa @ dX[n])
            for j, b in enumerate(spat):                                           # spatial pairs
                hb = h_out(b, spatial_values)
                up, down = shifted(spatial_values, b, hb), shifted(spatial_values, b, -hb)
                for a in spat[:j + 1]:
                    d2 = (self._shape_derivative(up, a, inner[a]) - self._shape_derivative(down, a, inner[a])) / (2 * hb)
                    res[(("spatial", a), ("spatial", b))] = float(F @ on_planes(d2))
        return res | {(k2, k1): v for (k1, k2), v in res.items()}

    def dnpred(self, spectral_values: dict, spatial_values: dict, spectral_free=(), spatial_free=(),
               steps: dict | None = None, reco: np.ndarray | None = None) -> dict:
        """Derivatives of the source's npred with respect to the named parameters, one cube each
        (n_reco or len(reco), ny, nx): ``{("spectral" | "spatial", name): dnpred/dvalue}``.

        Used for the Gauss-Newton curvature that seeds MIGRAD (one cube per parameter, so kept
        for a few parameters at a time); same inner steps as :meth:`backprop`.

        Parameters
        ----------
        spectral_values, spatial_values : dict
            Parameter values by name.
        spectral_free, spatial_free : sequence of str
            The parameters to differentiate.
        steps : dict, optional
            Inner difference steps by name.
        reco : numpy.ndarray, optional
            Indices of the reco-energy planes to evaluate.
        """
        steps = steps or {}
        out = {}
        C, _ = self._folded(spatial_values)
        nt, ny, nx = C.shape
        D = self.edisp if reco is None else self.edisp[:, reco]
        for name in spectral_free:
            dF = self.flux_derivative(spectral_values, name, steps)
            out[("spectral", name)] = ((D * dF[:, None]).T @ C.reshape(nt, -1)).reshape(-1, ny, nx)
        if spatial_free:
            DF = D * self.flux(spectral_values)[:, None]
            for name in spatial_free:
                h = _step(name, spatial_values, steps)
                if self.is_point:
                    dxdv, dydv = self._pixel_jacobian(spatial_values, name, h)
                    dc = np.zeros((nt, ny, nx))
                    for _, dwx, dwy, cs, ks in self._windows(*self._point_pixel(spatial_values), derivative=True):
                        wgt = dwx * dxdv + dwy * dydv
                        if wgt != 0:
                            dc[(slice(None),) + cs] += wgt * self.kernel[(slice(None),) + ks]
                    dc *= self.exposure_cut
                else:
                    dc = self._convolve(self._image_derivative(spatial_values, name, h)) * self.exposure_cut
                out[("spatial", name)] = (DF.T @ dc.reshape(nt, -1)).reshape(-1, ny, nx)
        return out


class OutsideDataset(ValueError):
    """A source whose cutout (evaluation radius + PSF kernel + margin) misses a dataset's grid: it
    predicts no counts there (gammapy likewise evaluates a model only where its cutout overlaps)."""


@dataclass(eq=False)
class SparseSelection:
    """Where a statistic reads one source's npred: ``reco`` (the reco-energy planes evaluated),
    ``pixel``/``plane`` of the selected bins (flat pixel index in the source's cutout, position in
    ``reco``), and the mask whose per-plane sums are wanted, either ``mask`` (n_reco, n_pixels,
    bool) or, when every plane has the same mask, ``mask_uniform`` (the flat pixel indices it
    keeps)."""

    reco: np.ndarray
    pixel: np.ndarray
    plane: np.ndarray
    mask: np.ndarray | None = None
    mask_uniform: np.ndarray | None = None


SUPPORT_FLOOR = 1e-15     # image pixels below this fraction of the peak are outside the support


def _support(img: np.ndarray) -> tuple[int, int, int, int] | None:
    """``(y0, y1, x0, x1)``: the smallest box holding every pixel of a 2D image whose magnitude
    exceeds ``SUPPORT_FLOOR`` times the image's largest (None for an empty image).  A Gaussian's
    tails far outside its evaluation radius (1e-45 of the peak at 11 sigma) are left out; what is
    left out is below 1e-15 of npred's largest bin, far below any parity tolerance."""
    a = np.abs(img)
    peak = float(a.max()) if a.size else 0.0
    if not peak > 0:
        return None
    keep = a > SUPPORT_FLOOR * peak
    rows = np.flatnonzero(keep.any(axis=1))
    cols = np.flatnonzero(keep.any(axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def _union_box(boxes) -> tuple[int, int, int, int] | None:
    boxes = [b for b in boxes if b is not None]
    if not boxes:
        return None
    return (min(b[0] for b in boxes), max(b[1] for b in boxes), min(b[2] for b in boxes), max(b[3] for b in boxes))


POINT_WEIGHTS = ("cubic", "tent", "keys")
_ANGULAR = {"lon_0", "lat_0", "sigma", "r_0", "radius", "width", "phi"}


def _step(name: str, values: dict, steps: dict) -> float:
    """Central-difference step of the cheap inner derivatives (flux integrals, images, pixel
    positions): the given one, else 1e-5 deg for angles and ``1e-6 * max(abs(v), 1e-3)`` otherwise."""
    return steps.get(name) or (1e-5 if name in _ANGULAR else 1e-6 * max(abs(values[name]), 1e-3))


def _frozen(a) -> np.ndarray:
    """A read-only array owning its data (a copy of ``a``): the pixel grids, whose trigonometry
    the spatial models memoise (:func:`gcxr.models.spatial.separation_from`)."""
    out = np.array(a, dtype=float, copy=True, order="C")
    out.setflags(write=False)
    return out


def _fast_len(n: int) -> int:
    """Smallest 5-smooth integer >= n (sizes that FFTs handle fastest)."""
    best = 1 << max(int(n - 1).bit_length(), 0)
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            q = p35
            while q < n:
                q *= 2
            best = min(best, q)
            p35 *= 3
        p5 *= 5
    return best


def _keys(d: float) -> float:
    d = abs(d)
    if d < 1:
        return 1.5 * d ** 3 - 2.5 * d ** 2 + 1
    if d < 2:
        return -0.5 * d ** 3 + 2.5 * d ** 2 - 4 * d + 2
    return 0.0


def _keys_d(d: float) -> float:
    s, a = np.sign(d), abs(d)
    if a < 1:
        return float(s * (4.5 * a ** 2 - 5 * a))
    if a < 2:
        return float(s * (-1.5 * a ** 2 + 5 * a - 4))
    return 0.0


def _taps(x0: float, kind: str, derivative: bool = False):
    """(pixel index, weight[, d weight / d x0]) that spread a point at pixel coordinate x0 over the grid."""
    i = int(np.floor(x0))
    t = x0 - i
    if kind == "tent":
        if derivative and min(t, 1.0 - t) < 1e-9:
            # on a pixel centre the weights have a kink: the symmetric slope (what a central
            # difference sees, and where a minimiser that starts there should be sent)
            j = i if t < 0.5 else i + 1
            return ((j - 1, 0.0, -0.5), (j, 1.0, 0.0), (j + 1, 0.0, 0.5))
        taps = ((i, 1.0 - t, -1.0), (i + 1, t, 1.0))
    elif kind == "cubic":
        t2, t3 = t * t, t * t * t
        taps = ((i - 1, (1 - t) ** 3 / 6.0, -0.5 * (1 - t) ** 2), (i, (3 * t3 - 6 * t2 + 4) / 6.0, 1.5 * t2 - 2 * t),
                (i + 1, (-3 * t3 + 3 * t2 + 3 * t + 1) / 6.0, -1.5 * t2 + t + 0.5), (i + 2, t3 / 6.0, 0.5 * t2))
    elif kind == "keys":          # Catmull-Rom cubic convolution (a = -0.5): C1, reproduces quadratics
        taps = tuple((i + j, _keys(t - j), _keys_d(t - j)) for j in (-1, 0, 1, 2))
    else:
        raise ValueError(f"point_weights must be one of {POINT_WEIGHTS}, got {kind!r}")
    return taps if derivative else tuple(tp[:2] for tp in taps)


def background_factor(energy: EnergyAxis, norm: float, tilt: float, reference: float) -> np.ndarray:
    """Per reco-bin multiplier of the background template: norm * (E_c / E_ref)^-tilt."""
    return norm * (energy.centers / reference) ** (-tilt)


def npred_cubes(ds: xr.Dataset, models, name: str | None = None, point_weights: str = "tent") -> xr.Dataset:
    """Full-grid ``npred``, ``npred_signal`` and ``npred_background`` cubes of a dataset.

    Parameters
    ----------
    ds : xarray.Dataset
        A reduced dataset.
    models : Models
        Sky models and background models.
    name : str, optional
        The dataset's name (default: its ``name`` attribute).
    point_weights : {'tent', 'cubic'}
        Rendering of point sources.

    Returns
    -------
    xarray.Dataset
        ``npred``, ``npred_signal``, ``npred_background`` on (energy, lat, lon).

    Examples
    --------
    >>> npred = npred_cubes(ds, models)['npred']     # doctest: +SKIP
    """
    geom, irf = geom_of(ds)
    name = name or ds.attrs.get("name", "")
    energy = EnergyAxis.from_coord(ds, "energy")
    bkg = np.asarray(ds["background"].values, float)
    bm = models.background_model(name)
    if bm is not None:
        v = {p.name: p.value for p in bm.spectral_model.parameters}
        bkg = bkg * background_factor(energy, v["norm"], v.get("tilt", 0.0), v.get("reference", 1.0))[:, None, None]
    sig = np.zeros_like(bkg)
    for m in models.sky_models:
        if not m.applies_to(name):
            continue
        try:
            ev = SourceEvaluator.build(m, ds, geom, irf, point_weights=point_weights)
        except OutsideDataset:
            continue                            # no counts from this source here
        spec_v = {p.name: p.value for p in m.spectral_model.parameters}
        spat_v = {p.name: p.value for p in m.spatial_model.parameters}
        sig[(slice(None),) + ev.cut] += ev.npred(spec_v, spat_v)
    coords = {k: ds.coords[k] for k in ("energy", "lat", "lon")}
    attrs = {"units": "1"}
    out = xr.Dataset({"npred": (("energy", "lat", "lon"), np.clip(bkg + sig, 0, None), attrs | {"long_name": "Predicted counts"}),
                      "npred_signal": (("energy", "lat", "lon"), sig, attrs | {"long_name": "Predicted source counts"}),
                      "npred_background": (("energy", "lat", "lon"), bkg, attrs | {"long_name": "Predicted background counts"})},
                     coords=coords)
    return out
