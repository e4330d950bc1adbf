"""One source's npred on a fixed cutout of one dataset, assembled from cached parts
(:class:`SourceEvaluator`), and the error of a source that misses a dataset
(:class:`OutsideDataset`).

The folding, the images, the derivatives and the sparse parts are in :mod:`gcxr.npred.folding`,
:mod:`gcxr.npred.images`, :mod:`gcxr.npred.derivatives` and :mod:`gcxr.npred.sparse`; the
methods here delegate to them.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from ..contract import geom_of
from ..coords import transform_lonlat
from ..geom import EnergyAxis, SkyGeom
from ..models.spatial import oversampling_factor
from . import derivatives, folding, images, sparse
from .derivatives import step
from .kernels import MARGIN_DEG, oddup, psf_kernel
from .sparse import SparseSelection

# F_t of a spectral model at given values over given true-energy bins, shared by every evaluator of
# the process: the statistic, gradient and curvature at one point ask for the same integrals, and
# so do all the runs of a joint fit on one true-energy axis (48 runs of the seed: 4512 numerical
# integrals per fit, 1.5 s of a 5.4 s fit, became 1/48th of that).  Keys: (model class, the bins'
# bytes, the values); values are read-only arrays.
FLUX_CACHE_SIZE = 512
_FLUX: "OrderedDict[tuple, np.ndarray]" = OrderedDict()
_FLUX_LOCK = threading.Lock()

__all__ = ["SourceEvaluator", "OutsideDataset"]


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
        """(padded shape, rFFT of the kernels): :func:`gcxr.npred.folding.kernel_fft`."""
        return folding.kernel_fft(self, box)

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
        et = self.energy_true
        edges = self._aux.get("edges")
        if edges is None:
            edges = self._aux["edges"] = (et.lo.tobytes(), et.hi.tobytes())
        key = (self.spectral_cls, edges, tuple(sorted((k, float(v)) for k, v in spectral_values.items())))
        hit = _FLUX.get(key)
        if hit is None:
            hit = np.asarray(self.spectral_cls._integral(et.lo, et.hi, **spectral_values), float)
            hit.setflags(write=False)
            with _FLUX_LOCK:
                _FLUX[key] = hit
                while len(_FLUX) > FLUX_CACHE_SIZE:
                    _FLUX.popitem(last=False)
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
        """:meth:`image` with ``f x f`` sub-pixels: :func:`gcxr.npred.images.oversampled_image`."""
        return images.oversampled_image(self, spatial_values, f)

    def _fine_grid(self, ya: int, yb: int, xa: int, xb: int, f: int) -> tuple:
        """Sub-pixels of a box of the cutout: :func:`gcxr.npred.images.fine_grid`."""
        return images.fine_grid(self, ya, yb, xa, xb, f)

    def _image_at(self, spatial_values: dict, lon, lat, omega) -> np.ndarray:
        """Surface brightness x solid angle at the given pixel centres (model frame)."""
        return images.image_at(self, spatial_values, lon, lat, omega)

    def _model_lonlat(self, grid: SkyGeom):
        """Pixel-centre (lon, lat) of ``grid`` in the model's frame."""
        return images.model_lonlat(self, grid)

    def _grid(self):
        """(lon, lat) in the model frame and solid angles of the cutout's pixels, computed once."""
        return images.cutout_grid(self)

    def _centre(self, spatial_values: dict) -> tuple[float, float]:
        """The model's ``(lon_0, lat_0)`` at these values, in the dataset's frame."""
        return images.centre(self, spatial_values)

    def _image_derivative(self, spatial_values: dict, name: str, h: float) -> np.ndarray:
        """Central difference of :meth:`image` in one parameter: :func:`gcxr.npred.images.image_derivative`."""
        return images.image_derivative(self, spatial_values, name, h)

    def _convolve(self, img: np.ndarray) -> np.ndarray:
        """``img (*) K_t`` for every t on the cutout: :func:`gcxr.npred.folding.convolve`."""
        return folding.convolve(self, img)

    def _correlate(self, v: np.ndarray, per_plane: bool = False, box=None) -> np.ndarray:
        """Adjoint of :meth:`_convolve`: :func:`gcxr.npred.folding.correlate`."""
        return folding.correlate(self, v, per_plane, box)

    def _point_pixel(self, spatial_values: dict) -> tuple[float, float]:
        x0, y0 = self._aux["sub"].world_to_pix(*self._centre(spatial_values))
        return float(x0), float(y0)

    def _pixel_jacobian(self, spatial_values: dict, name: str, h: float) -> tuple[float, float]:
        """``(dx0/dv, dy0/dv)``: :func:`gcxr.npred.derivatives.pixel_jacobian`."""
        return derivatives.pixel_jacobian(self, spatial_values, name, h)

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
        """The taps around (x0, y0) with their windows: :func:`gcxr.npred.folding.windows`."""
        return folding.windows(self, x0, y0, derivative)

    def _point(self, x0, y0):
        """A point source as shifted, weighted kernels: :func:`gcxr.npred.folding.point_image`."""
        return folding.point_image(self, x0, y0)

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
        return sparse.sparse_parts(self, spatial_values, sel)

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
        inner step of the gradients (:func:`gcxr.npred.derivatives.step`).

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
        h = step(name, spectral_values, steps or {})
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
        return derivatives.backprop(self, w, spectral_values, spatial_values, spectral_free, spatial_free, steps, reco)

    def _shape_image(self, spatial_values: dict) -> np.ndarray:
        """The spatial part that the PSF folds: :func:`gcxr.npred.derivatives.shape_image`."""
        return derivatives.shape_image(self, spatial_values)

    def _shape_derivative(self, spatial_values: dict, name: str, h: float) -> np.ndarray:
        """d :meth:`_shape_image` / d value: :func:`gcxr.npred.derivatives.shape_derivative`."""
        return derivatives.shape_derivative(self, spatial_values, name, h)

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
            Inner and outer difference steps by name (defaults as in :func:`gcxr.npred.derivatives.step`; outer: 100
            times the inner step).
        reco : numpy.ndarray, optional
            Indices of the reco-energy planes of ``w``.

        Returns
        -------
        dict
            ``{(("spectral" | "spatial", name), (..., name)): value}``, both orders.
        """
        return derivatives.second_order(self, w, spectral_values, spatial_values, spectral_free, spatial_free, steps, outer,
                                         reco)

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
        return derivatives.dnpred(self, spectral_values, spatial_values, spectral_free, spatial_free, steps, reco)


class OutsideDataset(ValueError):
    """A source whose cutout (evaluation radius + PSF kernel + margin) misses a dataset's grid: it
    predicts no counts there (gammapy likewise evaluates a model only where its cutout overlaps)."""

