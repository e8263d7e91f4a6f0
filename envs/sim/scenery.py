"""Static drawable geometry of a `RoadMap`, built once per map and cached: road-surface polygons, lane
markings (dashed/solid/yellow quads, crosswalk stripes), lane boundary polylines, lane polygons and
signal-head sites. Shared by the camera renderer and the BEV rasteriser; numpy, global frame [m].
"""

from __future__ import annotations

import math
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from enum import IntEnum
from functools import cached_property, partial

import cv2
import numpy as np

from envs.sim.map import Lane, RoadMap

SURFACE_TOLERANCE = 0.03
"""[m] road outlines are simplified (Douglas-Peucker) by at most this much; invisible at camera height."""
BOUNDARY_TOLERANCE = 0.02
"""[m] lane boundary polylines (offsets of the centerlines) are simplified by at most this much."""
MARKING_WIDTH = 0.2
"""[m] painted line width; real lines are 0.10-0.15 m, widened so they survive 256 px images."""
CENTRE_LINE_WIDTH = 0.3
"""[m] the yellow line between opposite directions (one band standing for the usual double line)."""
MAX_QUAD_LENGTH = 2.0
"""[m] solid lines are cut into quads this long at most: a camera drops the quads reaching behind its
near plane, and those then lie wholly in the blind spot under a level camera (it sees the ground from
~4.5 m ahead)."""
DASH_LENGTH, DASH_GAP = 3.0, 6.0
"""[m] dashed lane lines: 3 m paint, 6 m gap (US MUTCD uses 3 m / 9 m; a shorter gap gives more cues)."""
NEIGHBOUR_PROBE = 0.6
"""[m] a lane's side is probed this far beyond its boundary to find the neighbouring lane."""
CROSSWALK_STRIPE, CROSSWALK_PERIOD = 0.5, 1.0
"""[m] zebra bar width and bar-to-bar spacing along the crosswalk."""
HEAD_AHEAD = 12.0
"""[m] a signal head hangs this far past the start of its connector, above the lane, so that it is in
view of a car waiting at the stop line (like far-side signals; the start itself would be overhead)."""
HEAD_SPACING = 0.55
"""[m] heads of left / right turn connectors sit this far left / right of the straight one."""
_TURN_THRESHOLD = 0.35
"""[rad] a connector turning more than this is a left/right turn (for head placement)."""
_CACHE_SIZE = 1024
"""Maps kept in the scenery cache at most. An entry also goes as soon as its map object is garbage collected, so
the cache holds the live maps (a scenery is ~50-100 kB): a batch drawing many distinct maps every tick (a vector
env of 64 routes) never rebuilds them, however many it has below this bound."""


class Surface(IntEnum):
    """Road-surface layers, in drawing order (later layers paint over earlier ones). Polygons of one
    layer do not overlap, except ROADBLOCK_CONNECTOR ones (drawn one by one)."""

    ROADBLOCK_CONNECTOR = 0
    ROADBLOCK = 1
    INTERSECTION = 2
    CARPARK = 3
    STOP_LINE = 4


class Paint(IntEnum):
    """Colour classes of marking quads."""

    WHITE = 0
    YELLOW = 1


class Boundary(IntEnum):
    """Kinds of lane boundary lines."""

    SOLID = 0
    DASHED = 1
    CENTRE = 2


@dataclass(frozen=True, eq=False)
class PolygonSet:
    """R polygons (or polylines) stored flat: polygon r is points[starts[r]:starts[r + 1]]."""

    points: np.ndarray = field(metadata={"dims": "P 2"})
    """Vertices [m], global frame."""
    starts: np.ndarray = field(metadata={"dims": "R+1"})
    """int64 offsets into points; starts[0] = 0, starts[-1] = P."""
    label: np.ndarray = field(metadata={"dims": "R"})
    """int64 class of each polygon (a `Surface`, `Boundary`, ...)."""

    @classmethod
    def from_list(cls, rings: list[np.ndarray], labels: list[int]) -> "PolygonSet":
        lengths = [len(r) for r in rings]
        points = np.concatenate(rings, axis=0) if rings else np.zeros((0, 2))
        return cls(points.astype(np.float64), np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
                   np.asarray(labels, dtype=np.int64).reshape(-1))

    def __len__(self) -> int:
        return len(self.label)

    def label_rows(self, label: int) -> np.ndarray:
        """Rows (int64, ascending) of the polygons with this label (cached per label)."""
        rows = self._label_rows.get(label)
        if rows is None:
            rows = self._label_rows[label] = np.flatnonzero(self.label == label)
        return rows

    @cached_property
    def _label_rows(self) -> dict[int, np.ndarray]:
        return {}

    @cached_property
    def boxes(self) -> np.ndarray:
        """(R, 4) axis-aligned bounds xmin, ymin, xmax, ymax of each polygon [m]."""
        if not len(self.label):
            return np.zeros((0, 4))
        starts = self.starts[:-1]
        return np.concatenate([np.minimum.reduceat(self.points, starts, axis=0),
                               np.maximum.reduceat(self.points, starts, axis=0)], axis=1)


@dataclass(frozen=True, eq=False)
class Scenery:
    """Drawable static geometry of one map (global frame, ground plane z = 0)."""

    surfaces: PolygonSet
    """Road surface and stop-line polygons, labelled by `Surface`, ordered by label."""
    quads: np.ndarray = field(metadata={"dims": "Q 4 2"})
    """Marking quads (lane lines, crosswalk stripes) [m]."""
    quad_paint: np.ndarray = field(metadata={"dims": "Q"})
    """`Paint` of each quad."""
    boundaries: PolygonSet
    """Lane boundary polylines (each drawn once), labelled by `Boundary`."""
    lanes: PolygonSet
    """Lane and lane-connector polygons; label 1 for connectors."""
    lane_roadblock_ids: tuple[str, ...]
    """Roadblock (connector) id of each polygon in `lanes`."""
    lane_row: dict[str, int]
    """Lane / lane-connector id -> row in `lanes`."""
    head_xy: np.ndarray = field(metadata={"dims": "N 2"})
    """Signal-head position of every lane connector [m]."""
    head_heading: np.ndarray = field(metadata={"dims": "N"})
    """Direction the connector starts in [rad]; the lit face looks the opposite way."""
    head_row: dict[str, int]
    """Lane-connector id -> row in head_xy."""


# --------------------------------------------------------------------------------------------- cache

_CACHE: OrderedDict[int, tuple[weakref.ref, Scenery]] = OrderedDict()


def scenery_for(road_map: RoadMap) -> Scenery:
    """The (cached) scenery of `road_map`; rebuilt only for a map object not seen recently."""
    key = id(road_map)
    hit = _CACHE.get(key)
    if hit is not None and hit[0]() is road_map:
        _CACHE.move_to_end(key)
        return hit[1]
    scenery = build_scenery(road_map)
    _CACHE[key] = (weakref.ref(road_map, partial(_forget, key)), scenery)
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return scenery


def _forget(key: int, ref: weakref.ref) -> None:
    """Weak-reference callback: drop the entry of a map that was garbage collected (if it is still its entry)."""
    hit = _CACHE.get(key)
    if hit is not None and hit[0] is ref:
        del _CACHE[key]


# --------------------------------------------------------------------------------------------- build


def build_scenery(road_map: RoadMap) -> Scenery:
    """Triangulation-free drawable geometry of a map (see `Scenery`)."""
    # roadblock connectors lie inside intersections in nuPlan-like maps; paved separately only without them
    connectors = () if road_map.intersections else road_map.roadblock_connectors
    layers = [(Surface.ROADBLOCK_CONNECTOR, connectors), (Surface.ROADBLOCK, road_map.roadblocks),
              (Surface.INTERSECTION, road_map.intersections), (Surface.CARPARK, road_map.carparks),
              (Surface.STOP_LINE, road_map.stop_lines)]
    if not (road_map.roadblocks or road_map.intersections or road_map.carparks):
        # maps without area layers: pave the lanes themselves (connectors may overlap: their own layer)
        layers[0] = (Surface.ROADBLOCK_CONNECTOR, road_map.lane_connectors)
        layers[1] = (Surface.ROADBLOCK, road_map.lanes)
    rings, labels = [], []
    for label, objects in layers:
        for obj in objects:
            ring = _simplify(np.asarray(obj.polygon, dtype=np.float64), SURFACE_TOLERANCE, closed=True)
            if len(ring) >= 3:
                rings.append(ring)
                labels.append(int(label))
    surfaces = PolygonSet.from_list(rings, labels)

    lines, kinds, quads, paint = _lane_markings(road_map.lanes)
    stripes = [_crosswalk_stripes(np.asarray(c.polygon, dtype=np.float64)) for c in road_map.crosswalks]
    quads = np.concatenate([quads, *stripes], axis=0) if stripes else quads
    paint = np.concatenate([paint, np.full(sum(len(s) for s in stripes), int(Paint.WHITE))]).astype(np.int64)

    all_lanes = (*road_map.lanes, *road_map.lane_connectors)
    lanes = PolygonSet.from_list([np.asarray(l.polygon, dtype=np.float64) for l in all_lanes],
                                 [int(l.is_connector) for l in all_lanes])
    head_xy, head_heading = _signal_heads(road_map.lane_connectors)
    return Scenery(
        surfaces=surfaces,
        quads=quads,
        quad_paint=paint,
        boundaries=PolygonSet.from_list(lines, kinds),
        lanes=lanes,
        lane_roadblock_ids=tuple(l.roadblock_id for l in all_lanes),
        lane_row={l.id: i for i, l in enumerate(all_lanes)},
        head_xy=head_xy,
        head_heading=head_heading,
        head_row={c.id: i for i, c in enumerate(road_map.lane_connectors)},
    )


def _simplify(points: np.ndarray, tolerance: float, closed: bool) -> np.ndarray:
    """Douglas-Peucker simplification (cv2, float32 around the first vertex to keep precision)."""
    if len(points) < 3:
        return points
    origin = points[0]
    local = (points - origin).astype(np.float32).reshape(-1, 1, 2)
    kept = cv2.approxPolyDP(local, tolerance, closed).reshape(-1, 2).astype(np.float64)
    return kept + origin


def points_in_ring(points: np.ndarray, ring: np.ndarray) -> np.ndarray:
    """Even-odd point-in-polygon: points (N, 2), ring (V, 2) [m] -> bool (N,) (boundary undefined)."""
    a, b = ring, np.roll(ring, -1, axis=0)
    px, py = points[:, None, 0], points[:, None, 1]
    straddles = (a[None, :, 1] > py) != (b[None, :, 1] > py)
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = (b[None, :, 0] - a[None, :, 0]) / (b[None, :, 1] - a[None, :, 1])
        x_cross = a[None, :, 0] + (py - a[None, :, 1]) * slope
    return ((straddles & (px < x_cross)).sum(axis=1) % 2) == 1


def _tangents(line: np.ndarray) -> np.ndarray:
    """Unit tangents (P, 2) of a polyline (P >= 2), central differences inside."""
    grad = np.gradient(line, axis=0)
    return grad / np.maximum(np.linalg.norm(grad, axis=1, keepdims=True), 1e-9)


def _side_widths(centre: np.ndarray, normal: np.ndarray, ring: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distances (P,) from each centerline point to the lane outline along its left and its right normal
    [m] (rays, so the end caps never count); a ray that misses takes the median of the others."""
    a, edge = ring, np.roll(ring, -1, axis=0) - ring
    widths = []
    for direction in (normal, -normal):
        d = direction[:, None, :]                                        # (P, 1, 2) against edges (1, V, 2)
        offset = a[None] - centre[:, None, :]
        denom = d[..., 0] * edge[None, :, 1] - d[..., 1] * edge[None, :, 0]
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (offset[..., 0] * edge[None, :, 1] - offset[..., 1] * edge[None, :, 0]) / denom
            s = (offset[..., 0] * d[..., 1] - offset[..., 1] * d[..., 0]) / denom
        hit = (np.abs(denom) > 1e-12) & (s >= -1e-9) & (s <= 1 + 1e-9) & (t > 1e-6)
        width = np.where(hit, t, np.inf).min(axis=1)
        finite = np.isfinite(width)
        width[~finite] = np.median(width[finite]) if finite.any() else 0.0
        widths.append(width)
    return widths[0], widths[1]


def _lane_markings(lanes: tuple[Lane, ...]) -> tuple[list[np.ndarray], list[int], np.ndarray, np.ndarray]:
    """Boundary polylines and kinds of every lane, each shared boundary once, and their paint quads.

    A lane's side is probed NEIGHBOUR_PROBE beyond its boundary: no lane there -> solid white road edge;
    a same-direction lane -> dashed white (drawn by the lane having it on its left); an opposite-direction
    lane -> yellow centre line (drawn by the lane with the smaller id).
    """
    usable = [l for l in lanes if len(l.centerline) >= 2 and len(l.polygon) >= 3]
    rings = [np.asarray(l.polygon, dtype=np.float64) for l in usable]
    boxes = np.array([[*r.min(0), *r.max(0)] for r in rings]) if rings else np.zeros((0, 4))
    lines, kinds = [], []
    for i, lane in enumerate(usable):
        centre = np.asarray(lane.centerline, dtype=np.float64)
        tangent = _tangents(centre)
        normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)      # left of travel
        left, right = _side_widths(centre, normal, rings[i])
        count = len(centre)
        probe_rows = np.unique(np.clip([count // 4, count // 2, (3 * count) // 4], 0, count - 1))
        for side, half in ((1.0, left), (-1.0, right)):
            boundary = centre + side * normal * half[:, None]
            probes = centre[probe_rows] + side * normal[probe_rows] * (half[probe_rows, None] + NEIGHBOUR_PROBE)
            votes: dict[int, int] = {}
            for p, point in enumerate(probes):
                inside = np.flatnonzero((boxes[:, 0] <= point[0]) & (point[0] <= boxes[:, 2])
                                        & (boxes[:, 1] <= point[1]) & (point[1] <= boxes[:, 3]))
                hits = [j for j in inside if j != i and points_in_ring(point[None], rings[j])[0]]
                key = hits[0] if hits else -1
                votes[key] = votes.get(key, 0) + 1
            neighbour = max(votes, key=lambda k: (votes[k], k >= 0))
            if neighbour < 0:
                kind = Boundary.SOLID
            else:
                other = np.asarray(usable[neighbour].centerline, dtype=np.float64)
                mid = centre[probe_rows[len(probe_rows) // 2]]
                nearest = int(np.argmin(np.linalg.norm(other - mid, axis=1)))
                same_direction = float(_tangents(other)[nearest] @ tangent[probe_rows[len(probe_rows) // 2]]) > 0
                if same_direction:
                    if side < 0:
                        continue
                    kind = Boundary.DASHED
                else:
                    if lane.id > usable[neighbour].id:
                        continue
                    kind = Boundary.CENTRE
            lines.append(boundary)
            kinds.append(int(kind))
    quads, paint = [np.zeros((0, 4, 2))], [np.zeros(0, np.int64)]
    for line, kind in zip(lines, kinds):
        if kind == Boundary.DASHED:
            q = _dash_quads(line, MARKING_WIDTH)
        else:
            q = _ribbon_quads(_simplify(line, BOUNDARY_TOLERANCE, closed=False),
                              CENTRE_LINE_WIDTH if kind == Boundary.CENTRE else MARKING_WIDTH)
        quads.append(q)
        paint.append(np.full(len(q), int(Paint.YELLOW if kind == Boundary.CENTRE else Paint.WHITE)))
    lines = [_simplify(line, BOUNDARY_TOLERANCE, closed=False) for line in lines]
    return lines, kinds, np.concatenate(quads, axis=0), np.concatenate(paint).astype(np.int64)


def _quads_between(start: np.ndarray, end: np.ndarray, width: float) -> np.ndarray:
    """Rectangles (N, 4, 2) of the given width centred on segments start (N, 2) -> end (N, 2)."""
    direction = end - start
    direction = direction / np.maximum(np.linalg.norm(direction, axis=1, keepdims=True), 1e-9)
    offset = np.stack([-direction[:, 1], direction[:, 0]], axis=1) * (width / 2.0)
    return np.stack([start + offset, end + offset, end - offset, start - offset], axis=1)


def _ribbon_quads(line: np.ndarray, width: float) -> np.ndarray:
    """A solid line as quads (N, 4, 2) along its segments, each at most MAX_QUAD_LENGTH long."""
    length = np.linalg.norm(np.diff(line, axis=0), axis=1)
    pieces = np.ceil(length / MAX_QUAD_LENGTH).astype(np.int64)       # 0 for repeated points
    if not pieces.sum():
        return np.zeros((0, 4, 2))
    segment = np.repeat(np.arange(len(length)), pieces)
    first = np.repeat(np.cumsum(pieces) - pieces, pieces)
    fraction = (np.arange(pieces.sum()) - first) / pieces[segment]
    step = (line[1:] - line[:-1])[segment] / pieces[segment][:, None]
    start = line[:-1][segment] + fraction[:, None] * (line[1:] - line[:-1])[segment]
    return _quads_between(start, start + step, width)


def _dash_quads(line: np.ndarray, width: float) -> np.ndarray:
    """Dashes DASH_LENGTH long every DASH_LENGTH + DASH_GAP along a polyline, as quads (N, 4, 2)."""
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(line, axis=0), axis=1))])
    begin = np.arange(0.0, arc[-1], DASH_LENGTH + DASH_GAP)
    end = np.minimum(begin + DASH_LENGTH, arc[-1])
    keep = end - begin > 0.2
    begin, end = begin[keep], end[keep]
    at = lambda s: np.stack([np.interp(s, arc, line[:, 0]), np.interp(s, arc, line[:, 1])], axis=1)   # noqa: E731
    return _quads_between(at(begin), at(end), width)


def _crosswalk_stripes(ring: np.ndarray) -> np.ndarray:
    """Zebra bars (N, 4, 2) across a crosswalk: parallel to its short axis, repeated along its long axis."""
    if len(ring) < 3:
        return np.zeros((0, 4, 2))
    centre = ring.mean(axis=0)
    _, vectors = np.linalg.eigh(np.cov((ring - centre).T))
    long_axis, short_axis = vectors[:, 1], vectors[:, 0]
    along, across = (ring - centre) @ long_axis, (ring - centre) @ short_axis
    count = int(max((along.max() - along.min()) // CROSSWALK_PERIOD, 0))
    if count == 0:
        return np.zeros((0, 4, 2))
    margin = (along.max() - along.min() - (count - 1) * CROSSWALK_PERIOD) / 2       # centres the bars
    offsets = along.min() + margin + np.arange(count) * CROSSWALK_PERIOD
    mid = centre + (across.max() + across.min()) / 2 * short_axis
    half_depth = (across.max() - across.min()) / 2 - 0.1
    start = mid + offsets[:, None] * long_axis - half_depth * short_axis
    end = mid + offsets[:, None] * long_axis + half_depth * short_axis
    return _quads_between(start, end, CROSSWALK_STRIPE)


def _signal_heads(connectors: tuple[Lane, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Head position (N, 2) and start heading (N,) of each lane connector (see HEAD_AHEAD, HEAD_SPACING)."""
    xy, heading = np.zeros((len(connectors), 2)), np.zeros(len(connectors))
    for i, connector in enumerate(connectors):
        line = np.asarray(connector.centerline, dtype=np.float64)
        if len(line) < 2:
            xy[i] = line[0] if len(line) else 0.0
            continue
        steps = np.diff(line, axis=0)
        steps = steps[np.linalg.norm(steps, axis=1) > 1e-6]
        if not len(steps):
            xy[i] = line[0]
            continue
        # first and last segments: the tangents at the ends
        start, finish = math.atan2(steps[0, 1], steps[0, 0]), math.atan2(steps[-1, 1], steps[-1, 0])
        turn = math.atan2(math.sin(finish - start), math.cos(finish - start))
        lateral = HEAD_SPACING if turn > _TURN_THRESHOLD else -HEAD_SPACING if turn < -_TURN_THRESHOLD else 0.0
        forward, left = np.array([math.cos(start), math.sin(start)]), np.array([-math.sin(start), math.cos(start)])
        xy[i], heading[i] = line[0] + HEAD_AHEAD * forward + lateral * left, start
    return xy, heading
