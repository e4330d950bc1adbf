"""Sky coordinates: unit vectors, great-circle separations, and frame rotations as 3x3 matrices.

:func:`lonlat_to_unit` and :func:`unit_to_lonlat` convert between longitudes/latitudes (deg)
and unit vectors; :func:`angular_separation` (radians) and :func:`separation_deg` are the one
great-circle distance of gcxr.

For the rotations, astropy is asked once per frame pair (or per pointing); the
per-pixel work is then a matrix product on unit vectors.  ICRS <-> Galactic is
a fixed rotation, and the field-of-view frame of a run (an offset frame
centred on the ICRS pointing, longitude reversed) is another.
"""
from __future__ import annotations

import functools
import threading

import numpy as np

__all__ = ["lonlat_to_unit", "unit_to_lonlat", "angular_separation", "position_angle", "separation_deg",
           "frame_matrix", "transform_lonlat", "fov_matrix", "to_fov", "icrs_to_frame_float32", "icrs_to_frame_fast"]


# --------------------------------------------------------------------------- unit vectors and separations
def lonlat_to_unit(lon_deg, lat_deg) -> np.ndarray:
    """Unit vectors (..., 3) for longitudes/latitudes in degrees.

    Parameters
    ----------
    lon_deg, lat_deg : array_like
        Longitudes and latitudes (deg), broadcasting.

    Returns
    -------
    numpy.ndarray
        Unit vectors, shape ``(..., 3)``.
    """
    lon = np.deg2rad(np.asarray(lon_deg, dtype=float))
    lat = np.deg2rad(np.asarray(lat_deg, dtype=float))
    cl = np.cos(lat)
    return np.stack(np.broadcast_arrays(cl * np.cos(lon), cl * np.sin(lon), np.sin(lat)), axis=-1)


def unit_to_lonlat(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`lonlat_to_unit`; longitude in [0, 360).

    Parameters
    ----------
    v : numpy.ndarray
        Vectors, shape ``(..., 3)`` (need not be normalised).

    Returns
    -------
    lon, lat : numpy.ndarray
        Longitude in [0, 360) and latitude (deg).
    """
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    lon = np.rad2deg(np.arctan2(y, x)) % 360.0
    lat = np.rad2deg(np.arctan2(z, np.hypot(x, y)))
    return lon, lat


def angular_separation(lon1, lat1, lon2, lat2):
    """Great-circle distance (Vincenty's formula, stable at all separations, as astropy uses),
    radians; the one implementation behind :func:`separation_deg` and the spatial models.

    Parameters
    ----------
    lon1, lat1, lon2, lat2 : array_like
        The two positions (radians), broadcasting.

    Returns
    -------
    numpy.ndarray
        Separation (radians).
    """
    dlon = lon2 - lon1
    s1, c1 = np.sin(lat1), np.cos(lat1)
    s2, c2 = np.sin(lat2), np.cos(lat2)
    cd = np.cos(dlon)
    num1 = c2 * np.sin(dlon)
    num2 = c1 * s2 - s1 * c2 * cd
    den = s1 * s2 + c1 * c2 * cd
    return np.arctan2(np.hypot(num1, num2), den)


def position_angle(lon1, lat1, lon2, lat2):
    """Position angle of point 2 seen from point 1, east of north, radians.

    Parameters
    ----------
    lon1, lat1, lon2, lat2 : array_like
        The two positions (radians), broadcasting.

    Returns
    -------
    numpy.ndarray
        Position angle (radians).
    """
    dlon = lon2 - lon1
    c2 = np.cos(lat2)
    y = np.sin(dlon) * c2
    x = np.sin(lat2) * np.cos(lat1) - c2 * np.sin(lat1) * np.cos(dlon)
    return np.arctan2(y, x)


def separation_deg(lon1, lat1, lon2, lat2) -> np.ndarray:
    """Great-circle separation in degrees (:func:`angular_separation` on degrees).

    Parameters
    ----------
    lon1, lat1, lon2, lat2 : array_like
        The two positions (deg), broadcasting.

    Returns
    -------
    numpy.ndarray
        Separation (deg).

    Examples
    --------
    >>> float(separation_deg(0.0, 0.0, 90.0, 0.0))
    90.0
    """
    l1, b1, l2, b2 = (np.deg2rad(np.asarray(a, dtype=float)) for a in (lon1, lat1, lon2, lat2))
    return np.rad2deg(angular_separation(l1, b1, l2, b2))


# --------------------------------------------------------------------------- frame rotations
_GRAPH_LOCK = threading.Lock()
_graph_ready = False


def _prepare_astropy_graph() -> None:
    """Make astropy's frame-transform graph complete before runs transform in parallel threads.

    The graph is not thread-safe while it grows: the first ``SkyOffsetFrame`` with an ICRS origin
    registers new transforms, and a path search iterating over the graph in another thread then
    fails ("RuntimeError: dictionary changed size during iteration", seen in ``gcxr run`` on the
    seed), or a thread caches the frame names of a half-built graph and every later
    ``frame="icrs"`` fails ('Coordinate frame name "icrs" is not a known coordinate frame',
    seen in the validation benchmark).  The transforms the reduction uses and the name cache are
    made once here, under a lock; afterwards the graph is only read.
    """
    global _graph_ready
    if _graph_ready:
        return
    with _GRAPH_LOCK:
        if _graph_ready:
            return
        from astropy.coordinates import SkyCoord, SkyOffsetFrame  # deferred: heavy import (astropy)
        import astropy.units as u  # deferred: heavy import (astropy)
        origin = SkyCoord(0.0 * u.deg, 0.0 * u.deg, frame="icrs")
        for frame in ("icrs", "galactic"):
            c = SkyCoord(0.0 * u.deg, 0.0 * u.deg, frame=frame)
            c.transform_to(SkyOffsetFrame(origin=origin))
            c.transform_to("galactic" if frame == "icrs" else "icrs")
        from astropy.coordinates import frame_transform_graph  # deferred: heavy import (astropy)
        frame_transform_graph.get_names()
        _graph_ready = True


@functools.lru_cache(maxsize=8)
def frame_matrix(src: str, dst: str) -> np.ndarray:
    """M such that v_dst = M @ v_src for unit vectors."""
    if src == dst:
        return np.eye(3)
    _prepare_astropy_graph()
    from astropy.coordinates import CartesianRepresentation, SkyCoord  # deferred: heavy import (astropy)
    basis = CartesianRepresentation(np.eye(3)[0], np.eye(3)[1], np.eye(3)[2])
    c = SkyCoord(basis, frame=src, representation_type="cartesian").transform_to(dst)
    xyz = c.cartesian.xyz.value          # (3, 3): columns are images of the basis vectors
    return np.asarray(xyz, dtype=float)


def transform_lonlat(lon, lat, src: str, dst: str):
    """Transform longitudes/latitudes (deg) between 'icrs' and 'galactic'.

    Parameters
    ----------
    lon, lat : array_like
        Longitudes and latitudes (deg), broadcasting.
    src, dst : {'icrs', 'galactic'}
        The frames to convert from and to.

    Returns
    -------
    lon, lat : numpy.ndarray
        The positions in ``dst`` (deg).
    """
    if src == dst:
        return np.asarray(lon, float), np.asarray(lat, float)
    v = lonlat_to_unit(lon, lat) @ frame_matrix(src, dst).T
    return unit_to_lonlat(v)


def icrs_to_frame_float32(ra, dec, frame: str):
    """Event directions to ``frame`` with astropy, from the columns as stored.

    The float32 columns are handed to astropy unchanged: converting them to
    float64 first moves events sitting on pixel borders (see conventions).

    Parameters
    ----------
    ra, dec : numpy.ndarray
        Event directions (deg) as stored in the EVENTS table (float32).
    frame : {'icrs', 'galactic'}
        The target frame.

    Returns
    -------
    lon, lat : numpy.ndarray
        The directions in ``frame`` (deg).
    """
    _prepare_astropy_graph()
    from astropy.coordinates import SkyCoord  # deferred: heavy import (astropy)
    import astropy.units as u  # deferred: heavy import (astropy)
    c = SkyCoord(ra * u.deg, dec * u.deg, frame="icrs")
    if frame == "icrs":
        return np.asarray(c.ra.deg, float), np.asarray(c.dec.deg, float)
    g = c.galactic
    return np.asarray(g.l.deg, float), np.asarray(g.b.deg, float)


def _wrap360_like_astropy(lon: np.ndarray) -> np.ndarray:
    """Longitudes wrapped into [0, 360) with the arithmetic (and dtype) of astropy's ``Longitude``."""
    bad = (lon < 0.0) | (lon >= 360.0)
    if not bad.any():
        return lon
    lon = lon.astype(lon.dtype.newbyteorder("="))                   # a native copy, as the Quantity is
    wraps = lon // 360.0
    lon -= wraps * 360.0
    lon[lon >= 360.0] -= 360.0
    lon[lon < 0.0] += 360.0
    return lon


def icrs_to_frame_fast(ra, dec, frame: str):
    """Event directions to ``frame`` with numpy, within ~1e-11 deg of :func:`icrs_to_frame_float32`.

    The float32 columns are converted to radians in float32 as astropy does (the step that
    moves events on pixel borders by ~1e-6 deg, see conventions), then rotated in float64.
    For ``icrs`` the result is exactly astropy's (the columns as float64). Callers that bin
    events re-do the few events within rounding distance of a pixel border with astropy.

    Parameters
    ----------
    ra, dec : numpy.ndarray
        Event directions (deg) as stored in the EVENTS table (float32).
    frame : {'icrs', 'galactic'}
        The target frame.

    Returns
    -------
    lon, lat : numpy.ndarray
        The directions in ``frame`` (deg).
    """
    ra, dec = np.asarray(ra), np.asarray(dec)
    if frame == "icrs":
        return ra.astype(float), dec.astype(float)
    ra = _wrap360_like_astropy(ra)
    s = np.pi / 180.0
    lon, lat = (ra * s).astype(float), (dec * s).astype(float)      # float32 x float -> float32, as astropy
    m = frame_matrix("icrs", frame)
    cl = np.cos(lat)
    x, y, z = cl * np.cos(lon), cl * np.sin(lon), np.sin(lat)
    xp = m[0, 0] * x + m[0, 1] * y + m[0, 2] * z
    yp = m[1, 0] * x + m[1, 1] * y + m[1, 2] * z
    zp = m[2, 0] * x + m[2, 1] * y + m[2, 2] * z
    lon_out = np.rad2deg(np.arctan2(yp, xp)) % 360.0
    lat_out = np.rad2deg(np.arctan2(zp, np.hypot(xp, yp)))
    return lon_out, lat_out


@functools.lru_cache(maxsize=1024)
def fov_matrix(ra_pnt: float, dec_pnt: float, frame: str) -> np.ndarray:
    """Rotation from ``frame`` unit vectors to the offset frame centred on the pointing.

    In the offset frame the pointing is at (lon', lat') = (0, 0) and north is up: the
    rotation of astropy's ``SkyOffsetFrame`` (rotation angle 0), R_y(-dec) R_z(ra) in
    astropy's convention, written out here instead of transforming a basis through
    astropy (the same matrix to ~1e-16, without astropy's per-call cost).
    """
    a, d = np.deg2rad(float(ra_pnt)), np.deg2rad(float(dec_pnt))
    ca, sa, cd, sd = np.cos(a), np.sin(a), np.cos(d), np.sin(d)
    rz = np.array([[ca, sa, 0.0], [-sa, ca, 0.0], [0.0, 0.0, 1.0]])
    ry = np.array([[cd, 0.0, sd], [0.0, 1.0, 0.0], [-sd, 0.0, cd]])          # rotation_matrix(-dec, "y")
    m = ry @ rz
    return m if frame == "icrs" else m @ frame_matrix(frame, "icrs")


def _fov_matrix_astropy(ra_pnt: float, dec_pnt: float, frame: str) -> np.ndarray:
    """:func:`fov_matrix` through astropy's SkyOffsetFrame (kept for the tests)."""
    _prepare_astropy_graph()
    from astropy.coordinates import CartesianRepresentation, SkyCoord, SkyOffsetFrame  # deferred: heavy import (astropy)
    import astropy.units as u  # deferred: heavy import (astropy)
    origin = SkyCoord(ra_pnt * u.deg, dec_pnt * u.deg, frame="icrs")
    basis = CartesianRepresentation(np.eye(3)[0], np.eye(3)[1], np.eye(3)[2])
    c = SkyCoord(basis, frame=frame, representation_type="cartesian")
    off = c.transform_to(SkyOffsetFrame(origin=origin))
    return np.asarray(off.cartesian.xyz.value, dtype=float)


def to_fov(unit_vectors: np.ndarray, ra_pnt: float, dec_pnt: float, frame: str, reverse_lon: bool = False):
    """(fov_lon, fov_lat) in deg for RADEC alignment: fov_lon = -lon' (longitude reversed).

    ``reverse_lon`` gives fov_lon = +lon' (the convention of the H.E.S.S. DR1
    background models, see docs/notes/gammapy-hess-conventions.md).

    Parameters
    ----------
    unit_vectors : numpy.ndarray
        (..., 3) unit vectors of the positions in ``frame``.
    ra_pnt, dec_pnt : float
        The pointing direction (ICRS, deg).
    frame : {'icrs', 'galactic'}
        The frame of ``unit_vectors``.
    reverse_lon : bool
        Give fov_lon = +lon' (H.E.S.S. DR1 background models).

    Returns
    -------
    fov_lon, fov_lat : numpy.ndarray
        Field-of-view coordinates (deg).
    """
    v = unit_vectors @ fov_matrix(ra_pnt, dec_pnt, frame).T
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    lon = np.rad2deg(np.arctan2(y, x))
    lat = np.rad2deg(np.arctan2(z, np.hypot(x, y)))
    return (lon if reverse_lon else -lon), lat
