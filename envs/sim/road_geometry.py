"""Road geometry for procedural maps: reference paths, lateral offsets, smooth connector curves, rings.

Pure numpy, per scene (not a hot path). `envs.sim.mapgen` assembles lanes and areas from these.
Headings are counter-clockwise from +x [rad]; a positive offset is to the left of the path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

_DENSE_SAMPLES_PER_M = 20
"""Bezier samples per metre of control polygon used to tabulate arc length before resampling."""


@dataclass(frozen=True)
class Path:
    """A sampled planar curve with its tangent heading at every sample."""

    points: np.ndarray = field(metadata={"dims": "P 2"})
    """[m], in travel order."""
    headings: np.ndarray = field(metadata={"dims": "P"})
    """Tangent direction at each point [rad], wrapped to (-pi, pi]."""

    def reversed(self) -> Path:
        """The same curve travelled the other way (headings turned by pi)."""
        return Path(self.points[::-1].copy(), wrap_angle(self.headings[::-1] + math.pi))

    @property
    def length(self) -> float:
        """Polyline length [m]."""
        return float(np.linalg.norm(np.diff(self.points, axis=0), axis=1).sum())


def wrap_angle(angle: np.ndarray | float) -> np.ndarray:
    """Wrap angles to (-pi, pi] [rad]; any shape. Angles already in range are returned bit-unchanged."""
    angle = np.asarray(angle, dtype=np.float64)
    wrapped = np.mod(angle + math.pi, 2.0 * math.pi) - math.pi
    wrapped = np.where(wrapped <= -math.pi, wrapped + 2.0 * math.pi, wrapped)
    # (a + pi) - pi is not always a in floating point; leaving in-range values alone keeps chained
    # segments' joint headings (hence their shared boundary points) identical to the last bit
    return np.where((angle > -math.pi) & (angle <= math.pi), angle, wrapped)


def _num_intervals(length: float, spacing: float) -> int:
    """Intervals of at most `spacing` covering `length` (at least one)."""
    return max(1, math.ceil(length / spacing - 1e-9))


def arc_path(start: np.ndarray, heading: float, length: float, curvature: float, spacing: float) -> Path:
    """Straight line (curvature 0) or circular arc from a start pose, sampled every <= `spacing` m.

    start (2,) [m]; heading [rad]; length [m] > 0; curvature [1/m], positive turns left.
    Points and headings are analytic, so the end pose can seed the next segment exactly.
    """
    if not length > 0.0:
        raise ValueError(f"length={length!r}: must be positive")
    s = np.linspace(0.0, length, _num_intervals(length, spacing) + 1)
    x0, y0 = float(start[0]), float(start[1])
    if curvature == 0.0:
        xy = np.stack([x0 + s * math.cos(heading), y0 + s * math.sin(heading)], axis=1)
        return Path(xy, wrap_angle(np.full_like(s, heading)))
    theta = heading + curvature * s
    xy = np.stack(
        [x0 + (np.sin(theta) - math.sin(heading)) / curvature, y0 - (np.cos(theta) - math.cos(heading)) / curvature],
        axis=1,
    )
    return Path(xy, wrap_angle(theta))


def _bezier_control_length(chord: float, turn: float) -> float:
    """Bezier handle length [m] that makes a cubic match a circular arc turning by `turn` rad.

    For an arc turning by phi the classic handle is (4/3) tan(phi/4) R and the chord is 2 R sin(phi/2);
    phi -> 0 gives chord/3, i.e. a straight line travelled at constant speed.
    """
    phi = abs(turn)
    if phi < 1e-6:
        return chord / 3.0
    return chord * (4.0 / 3.0) * math.tan(phi / 4.0) / (2.0 * math.sin(phi / 2.0))


def hermite_path(start: np.ndarray, start_heading: float, end: np.ndarray, end_heading: float,
                 spacing: float) -> Path:
    """Smooth cubic (Bezier) curve between two poses, resampled at equal arc length <= `spacing` m.

    start, end (2,) [m]; headings [rad]. The first/last points equal `start`/`end` exactly and the
    end headings equal the given ones, so a connector meets its lanes with continuous heading.
    """
    p0 = np.asarray(start, dtype=np.float64)
    p3 = np.asarray(end, dtype=np.float64)
    chord = float(np.linalg.norm(p3 - p0))
    if chord <= 0.0:
        raise ValueError(f"start={start!r}, end={end!r}: a connector needs distinct end points")
    handle = _bezier_control_length(chord, float(wrap_angle(end_heading - start_heading)))
    d0 = np.array([math.cos(start_heading), math.sin(start_heading)])
    d1 = np.array([math.cos(end_heading), math.sin(end_heading)])
    ctrl = np.stack([p0, p0 + handle * d0, p3 - handle * d1, p3])  # (4, 2)

    def bezier(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        u = 1.0 - t
        basis = np.stack([u**3, 3 * u**2 * t, 3 * u * t**2, t**3], axis=1)  # (G, 4)
        dbasis = np.stack([-3 * u**2, 3 * u**2 - 6 * u * t, 6 * u * t - 3 * t**2, 3 * t**2], axis=1)
        return basis @ ctrl, dbasis @ ctrl

    polygon_len = float(np.linalg.norm(np.diff(ctrl, axis=0), axis=1).sum())
    dense_t = np.linspace(0.0, 1.0, max(64, int(polygon_len * _DENSE_SAMPLES_PER_M)))
    dense_xy, _ = bezier(dense_t)
    cum = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(dense_xy, axis=0), axis=1))])
    n = _num_intervals(float(cum[-1]), spacing)
    t = np.interp(np.linspace(0.0, cum[-1], n + 1), cum, dense_t)
    t[0], t[-1] = 0.0, 1.0
    xy, dxy = bezier(t)
    xy[0], xy[-1] = p0, p3  # exact: connectors must meet lane ends to the last bit
    headings = np.arctan2(dxy[:, 1], dxy[:, 0])
    headings[0], headings[-1] = start_heading, end_heading
    return Path(xy, wrap_angle(headings))


def chain_paths(start: np.ndarray, heading: float, lengths, curvatures, spacing: float) -> list[Path]:
    """Consecutive lines/arcs (lengths [m], curvatures [1/m]), each starting at the previous end pose.

    The next segment starts from the previous one's stored last point and heading, so joints are exact.
    """
    paths = []
    for length, curvature in zip(lengths, curvatures):
        path = arc_path(start, heading, float(length), float(curvature), spacing)
        paths.append(path)
        start, heading = path.points[-1], float(path.headings[-1])
    return paths


def offset_points(path: Path, offset: float) -> np.ndarray:
    """Points displaced `offset` m to the left of the path (negative: right). Returns (P, 2) [m]."""
    normal = np.stack([-np.sin(path.headings), np.cos(path.headings)], axis=1)
    return path.points + offset * normal


def lane_ring(right: np.ndarray, left: np.ndarray) -> np.ndarray:
    """Counter-clockwise outline of the strip between two boundaries given in travel direction.

    right (P, 2), left (Q, 2) [m] -> (P + Q, 2) ring, first vertex not repeated.
    """
    return np.concatenate([right, left[::-1]], axis=0)


def drop_collinear(ring: np.ndarray, tol: float = 1e-9) -> np.ndarray:
    """Ring (V, 2) without vertices lying within `tol` m of the chord joining their two neighbours.

    Straight boundaries collapse to their end points, which keeps polygons small and avoids long runs
    of collinear edges (fragile for floating-point orientation tests). The shape moves by < `tol`.
    """
    prev, nxt = np.roll(ring, 1, axis=0), np.roll(ring, -1, axis=0)
    chord = nxt - prev
    cross = chord[:, 0] * (ring[:, 1] - prev[:, 1]) - chord[:, 1] * (ring[:, 0] - prev[:, 0])
    length = np.linalg.norm(chord, axis=1)
    # a vertex strictly between its neighbours along the chord and off it by < tol is redundant
    along = np.sum((ring - prev) * chord, axis=1)
    redundant = (np.abs(cross) < tol * length) & (along > 0.0) & (along < length**2)
    return ring[~redundant]


def min_turn_radius(path: Path) -> float:
    """Smallest radius of curvature along the path [m]; inf for a straight path."""
    step = np.linalg.norm(np.diff(path.points, axis=0), axis=1)
    turn = np.abs(wrap_angle(np.diff(path.headings)))
    # per-interval curvature |dh|/ds; exact zero turn means straight
    curvature = np.divide(turn, step, out=np.zeros_like(turn), where=step > 0.0)
    peak = float(curvature.max(initial=0.0))
    return math.inf if peak == 0.0 else 1.0 / peak


def frame_point(origin: np.ndarray, heading: float, along: float, left: float) -> np.ndarray:
    """Point `along` m ahead and `left` m to the left of a pose. Returns (2,) [m]."""
    c, s = math.cos(heading), math.sin(heading)
    return np.array([origin[0] + along * c - left * s, origin[1] + along * s + left * c])


def rigid_transform(points: np.ndarray, rotation: float, translation: np.ndarray) -> np.ndarray:
    """Rotate by `rotation` rad about the origin, then translate. (..., 2) -> (..., 2) [m].

    Written element-wise (no matmul) so that equal input points give bit-equal outputs, which keeps
    shared lane boundaries shared after the transform.
    """
    c, s = math.cos(rotation), math.sin(rotation)
    x, y = points[..., 0], points[..., 1]
    return np.stack([(c * x - s * y) + translation[0], (s * x + c * y) + translation[1]], axis=-1)


def frame_rectangle(heading: float, near: float, far: float, right: float, left: float) -> np.ndarray:
    """Counter-clockwise box in the frame of a ray from the origin with direction `heading` [rad].

    along in [near, far], left offset in [right, left] [m] -> (4, 2) ring [m].
    """
    origin = np.zeros(2)
    corners = [(near, right), (far, right), (far, left), (near, left)]
    return np.array([frame_point(origin, heading, along, side) for along, side in corners])
