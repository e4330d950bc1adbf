"""Field-of-view background normalisation and exclusion masks.

gammapy's ``FoVBackgroundMaker`` (``datasets.background.method: fov_background``)
rescales each run's template background so that, over the bins used for the
normalisation, it predicts the counts observed there:

.. math::

    \\mathrm{norm} = \\frac{\\sum_{m} n}{\\sum_{m} B}, \\qquad
    m = \\text{safe mask} \\wedge \\text{exclusion mask} \\wedge \\mathrm{isfinite}(B)

(method ``scale``; method ``fit``, a Cash fit of that single norm, has the same
maximum).  If the sums fail the requirements (``min_counts``,
``min_npred_background``, a non-finite or non-positive value) the run's safe mask
is cleared, as in gammapy.  The exclusion mask is True where a bin may be used
(gammapy's convention); it is read from a FITS image and looked up at every pixel
centre of the analysis grid (nearest pixel; outside the image: excluded).

Example
-------
>>> import numpy as np
>>> counts = np.array([[[3, 5]]]); bkg = np.array([[[2.0, 2.0]]])
>>> fov_background_norm(counts, bkg, np.ones((1, 1, 2), bool))
FovNorm(norm=2.0, error=0.7071067811865476, ok=True)
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .coords import separation_deg
from .geom import SkyGeom

__all__ = ["ExclusionMask", "FovNorm", "fov_background_norm", "read_exclusion_mask",
           "exclusion_mask_from_circles", "write_exclusion_mask", "FOV_METHODS"]

#: Normalisation methods of gammapy's FoVBackgroundMaker.
FOV_METHODS = ("scale", "fit")


class FovNorm(NamedTuple):
    """Result of :func:`fov_background_norm`: the norm, its error and whether it is valid."""

    norm: float
    error: float
    ok: bool


def fov_background_norm(counts: np.ndarray, background: np.ndarray, mask: np.ndarray,
                        min_counts: float = 0.0, min_npred_background: float = 0.0) -> FovNorm:
    """The FoV background norm ``sum(counts) / sum(background)`` over ``mask``.

    Parameters
    ----------
    counts, background : numpy.ndarray
        Cubes of one run, same shape.
    mask : numpy.ndarray
        Bins used (bool, broadcastable): safe mask and exclusion mask combined.
    min_counts, min_npred_background : float
        The sums must exceed these (gammapy's ``min_counts``/``min_npred_background``).

    Returns
    -------
    FovNorm
        ``ok`` is False (and ``norm`` 1) when a requirement fails; the caller then clears
        the run's safe mask, as gammapy does.
    """
    m = np.broadcast_to(mask, background.shape) & np.isfinite(background)
    n = float(counts[m].sum())
    b = float(background[m].sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        value = n / b
    if not np.isfinite(value) or b <= min_npred_background or n <= min_counts or n <= 0:
        return FovNorm(1.0, np.nan, False)
    return FovNorm(value, float(np.sqrt(n) / b), True)


@dataclass(frozen=True)
class ExclusionMask:
    """A 2-D mask on the analysis grid (True = usable), hashable and small to ship to workers."""

    shape: tuple[int, int]
    bits: bytes
    source: str = ""

    @classmethod
    def from_array(cls, mask: np.ndarray, source: str = "") -> "ExclusionMask":
        """Pack a 2-D boolean array.

        Parameters
        ----------
        mask : numpy.ndarray
            2-D boolean image (True: usable).
        source : str
            Where it came from, for messages.

        Returns
        -------
        ExclusionMask
            The packed mask.
        """
        mask = np.asarray(mask, bool)
        if mask.ndim != 2:
            raise ValueError(f"an exclusion mask is a 2-D image, got shape {mask.shape}")
        return cls(tuple(int(s) for s in mask.shape), np.packbits(mask.ravel()).tobytes(), source)

    @property
    def array(self) -> np.ndarray:
        """The mask as a 2-D boolean array."""
        n = self.shape[0] * self.shape[1]
        return np.unpackbits(np.frombuffer(self.bits, np.uint8), count=n).astype(bool).reshape(self.shape)


def _image_hdu(path: Path, key: str):
    from astropy.io import fits  # deferred: heavy import (astropy)

    from .config import ConfigError  # deferred: keeps gcxr.reduce free of pydantic (gcxr.config)
    try:
        hdul = fits.open(path)
    except FileNotFoundError:
        raise ConfigError([(key, f"exclusion mask file {str(path)!r} does not exist")]) from None
    except OSError as exc:
        raise ConfigError([(key, f"cannot read {str(path)!r} as FITS: {exc}")]) from None
    with hdul:
        for hdu in hdul:
            if hdu.is_image and hdu.data is not None:
                data = np.asarray(hdu.data)
                if data.ndim == 3 and data.shape[0] == 1:
                    data = data[0]
                if data.ndim != 2:
                    raise ConfigError([(key, f"{str(path)!r}, HDU {hdu.name!r}: an exclusion mask must be a "
                                             f"2-D sky image, got shape {data.shape}")])
                return data, hdu.header.copy(), hdu.name
    raise ConfigError([(key, f"{str(path)!r} holds no image HDU (expected a 2-D exclusion mask)")])


def read_exclusion_mask(path: str | os.PathLike[str], geom: SkyGeom,
                        key: str = "datasets.background.exclusion") -> ExclusionMask:
    """Read a FITS exclusion mask (gammapy ``Map.write`` layout) onto ``geom``.

    Every pixel centre of ``geom`` takes the value of the nearest mask pixel (non-zero =
    usable); centres outside the mask image are excluded (gammapy's ``interp_to_geom``
    with ``fill_value=0``).  Errors are :class:`~gcxr.config.ConfigError` naming ``key``.

    Parameters
    ----------
    path : str or os.PathLike
        The FITS file.
    geom : SkyGeom
        The analysis grid.
    key : str
        The config key, for error messages.

    Returns
    -------
    ExclusionMask
        The mask on ``geom``.
    """
    from astropy.coordinates import SkyCoord  # deferred: heavy import (astropy)
    from astropy.wcs import WCS  # deferred: heavy import (astropy)

    from .config import ConfigError  # deferred: keeps gcxr.reduce free of pydantic (gcxr.config)
    path = Path(path)
    data, header, hdu = _image_hdu(path, key)
    try:
        wcs = WCS(header).celestial
        if wcs.naxis != 2:
            raise ValueError("no celestial WCS")
    except Exception as exc:
        raise ConfigError([(key, f"{str(path)!r}, HDU {hdu!r}: no usable sky WCS ({exc})")]) from None
    lon, lat = np.meshgrid(geom.lon, geom.lat)
    frame = "galactic" if geom.frame == "galactic" else "icrs"
    coords = SkyCoord(lon, lat, unit="deg", frame=frame)
    x, y = wcs.world_to_pixel(coords)
    ix = np.floor(np.asarray(x) + 0.5)
    iy = np.floor(np.asarray(y) + 0.5)
    ok = np.isfinite(ix) & np.isfinite(iy) & (ix >= 0) & (ix < data.shape[1]) & (iy >= 0) & (iy < data.shape[0])
    out = np.zeros(geom.shape, bool)
    vals = data[iy[ok].astype(np.int64), ix[ok].astype(np.int64)]
    out[ok] = np.nan_to_num(vals.astype(float), nan=0.0) != 0
    return ExclusionMask.from_array(out, source=str(path))


def exclusion_mask_from_circles(geom: SkyGeom, circles) -> np.ndarray:
    """True outside every circle ``(lon, lat, radius)`` (deg, in ``geom``'s frame).

    Parameters
    ----------
    geom : SkyGeom
        The grid.
    circles : iterable of tuple
        ``(lon, lat, radius)`` in deg.

    Returns
    -------
    numpy.ndarray
        Boolean image, shape ``geom.shape``.

    Examples
    --------
    >>> g = SkyGeom.create((0, 0), 0.1, (1, 1), "galactic")
    >>> int((~exclusion_mask_from_circles(g, [(0, 0, 0.2)])).sum())
    12
    """
    keep = np.ones(geom.shape, bool)
    lon, lat = geom.lon[None, :], geom.lat[:, None]
    for lon0, lat0, radius in circles:
        keep &= ~(separation_deg(lon, lat, float(lon0), float(lat0)) < float(radius))
    return keep


def write_exclusion_mask(path: str | os.PathLike[str], geom: SkyGeom, mask: np.ndarray,
                         overwrite: bool = False) -> Path:
    """Write ``mask`` (on ``geom``) as a FITS image that gammapy's ``Map.read`` and gcxr read.

    Parameters
    ----------
    path : str or os.PathLike
        The FITS file.
    geom : SkyGeom
        The grid of ``mask``.
    mask : numpy.ndarray
        Boolean image (True: usable).
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    from astropy.io import fits  # deferred: heavy import (astropy)
    hdu = fits.PrimaryHDU(np.asarray(mask, np.uint8), header=geom.wcs.to_header())
    path = Path(path)
    hdu.writeto(path, overwrite=overwrite)
    return path
