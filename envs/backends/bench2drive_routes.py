"""Bench2Drive route XML (id, town, scenario type, keypoints) and a minimal OpenDRIVE reader that finds where a
route first enters a junction: the Traffic_Signs extra credit of ability_benchmark 0.0.4, without CARLA.

The official script densifies the keypoints with CARLA's GlobalRoutePlanner at 1 m and checks
`waypoint.is_junction`; the approximation made here is described in docs/bench2drive_merge.md.
"""

from __future__ import annotations

import functools
import io
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

DENSE_STEP = 1.0
"""[m] spacing of the dense route (GlobalRoutePlanner(map, 1.0) in ability_benchmark)."""
LANE_SAMPLE_STEP = 0.5
"""[m] spacing of the sampled lane centre lines used to classify dense-route points."""
ROAD_MARGIN = 50.0
"""[m] roads whose geometry comes this close to a route's bounding box are sampled for that route."""
_INTEGRATION_STEP = 0.02
"""[m] step of the numeric arc-length integration (spiral, poly3, paramPoly3)."""


# --- Route XML --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class B2DRoute:
    """One <route> of a Bench2Drive route file, as ability_benchmark reads it."""

    route_id: str
    town: str
    scenario_type: str | None      # `type` of the first <scenario>; None without one
    has_scenario: bool             # a <scenarios><scenario> exists (ability_benchmark crashes without one)
    keypoints: np.ndarray          # (K, 3) [m] <waypoints><position x y z>, CARLA world frame


def _float(elem: ET.Element, name: str, where: str) -> float:
    value = elem.get(name)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{where}.{name}={value!r}: must be a number") from None


def parse_routes(text: str) -> tuple[B2DRoute, ...]:
    """Routes of a route XML document, in file order: the <route> children of the root element."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as error:
        raise ValueError(f"routes: not valid XML ({error})") from None
    routes = []
    for i, elem in enumerate(root.findall("route")):
        route_id, town = elem.get("id"), elem.get("town")
        if not route_id or not town:
            raise ValueError(f"route[{i}] id={route_id!r} town={town!r}: both attributes are required")
        scenarios = elem.find("scenarios")
        scenario = scenarios.find("scenario") if scenarios is not None else None
        where = f"route {route_id} position"
        positions = elem.find("waypoints")
        points = [[_float(p, axis, where) for axis in "xyz"]
                  for p in (positions.findall("position") if positions is not None else [])]
        routes.append(B2DRoute(route_id, town, scenario.get("type") if scenario is not None else None,
                               scenario is not None, np.asarray(points, dtype=np.float64).reshape(-1, 3)))
    return tuple(routes)


def read_routes(path: str | Path) -> tuple[B2DRoute, ...]:
    """parse_routes on a file; ValueError names the file."""
    try:
        return parse_routes(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise ValueError(f"routes={str(path)!r}: cannot read ({error.strerror})") from None
    except ValueError as error:
        raise ValueError(f"routes={str(path)!r}: {error}") from None


# --- OpenDRIVE --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Geometry:
    """One planView <geometry>: start pose, length and shape parameters."""

    s: float              # [m] start along the road
    x: float
    y: float
    hdg: float            # [rad]
    length: float         # [m]
    kind: str             # line | arc | spiral | poly3 | paramPoly3
    params: tuple[float, ...] = ()   # arc (k), spiral (k0, k1), poly3 (a, b, c, d),
                                     # paramPoly3 (aU, bU, cU, dU, aV, bV, cV, dV, p_max)


@dataclass(frozen=True)
class Lane:
    lane_id: int                     # > 0 left of the reference line, < 0 right
    lane_type: str
    widths: np.ndarray               # (W, 5) sOffset, a, b, c, d (relative to the section start)


@dataclass(frozen=True)
class Road:
    road_id: str
    junction: str                    # "-1" outside junctions
    length: float                    # [m]
    geometries: tuple[Geometry, ...]
    elevation: np.ndarray            # (E, 5) s, a, b, c, d
    lane_offset: np.ndarray          # (O, 5) s, a, b, c, d
    sections: tuple[tuple[float, tuple[Lane, ...]], ...]   # (s, lanes) per laneSection

    @property
    def is_junction(self) -> bool:
        return self.junction != "-1"


@dataclass(frozen=True)
class OpenDriveMap:
    roads: tuple[Road, ...]

    @property
    def has_elevation(self) -> bool:
        return any(len(road.elevation) for road in self.roads)

    @functools.cached_property
    def road_boxes(self) -> np.ndarray:
        """(R, 4) x_min, y_min, x_max, y_max holding each reference line: a geometry stays within `length` of
        its start."""
        boxes = np.empty((len(self.roads), 4))
        for i, road in enumerate(self.roads):
            starts = np.array([[g.x, g.y, g.length] for g in road.geometries])
            boxes[i, :2] = (starts[:, :2] - starts[:, 2:]).min(0)
            boxes[i, 2:] = (starts[:, :2] + starts[:, 2:]).max(0)
        return boxes


def _records(parent: ET.Element | None, tag: str, s_name: str, where: str) -> np.ndarray:
    rows = [] if parent is None else [[_float(e, n, where) for n in (s_name, "a", "b", "c", "d")]
                                      for e in parent.findall(tag)]
    table = np.asarray(rows, dtype=np.float64).reshape(-1, 5)
    return table[np.argsort(table[:, 0], kind="stable")]


def _geometry(elem: ET.Element, where: str) -> Geometry:
    start = [_float(elem, n, where) for n in ("s", "x", "y", "hdg", "length")]
    shape = next(iter(elem), None)
    kind = shape.tag if shape is not None else "line"
    if kind == "line":
        params: tuple[float, ...] = ()
    elif kind == "arc":
        params = (_float(shape, "curvature", where),)
    elif kind == "spiral":
        params = (_float(shape, "curvStart", where), _float(shape, "curvEnd", where))
    elif kind == "poly3":
        params = tuple(_float(shape, n, where) for n in "abcd")
    elif kind == "paramPoly3":
        coefficients = tuple(_float(shape, f"{n}{axis}", where) for axis in "UV" for n in "abcd")
        # pRange="arcLength" runs p over [0, length]; "normalized" (the default) over [0, 1].
        params = coefficients + (start[4] if shape.get("pRange") == "arcLength" else 1.0,)
    else:
        raise ValueError(f"{where} geometry={kind!r}: expected line, arc, spiral, poly3 or paramPoly3")
    return Geometry(*start, kind=kind, params=params)


def _road(elem: ET.Element) -> Road:
    road_id = elem.get("id", "?")
    where = f"road {road_id}"
    plan = elem.find("planView")
    geometries = tuple(_geometry(g, where) for g in (plan.findall("geometry") if plan is not None else []))
    if not geometries:
        raise ValueError(f"{where}: no planView geometry")
    lanes_elem = elem.find("lanes")
    sections = []
    for section in (lanes_elem.findall("laneSection") if lanes_elem is not None else []):
        lanes = []
        for side in ("left", "right"):
            for lane in section.findall(f"{side}/lane"):
                lane_id = int(_float(lane, "id", where))
                lanes.append(Lane(lane_id, lane.get("type", "none"),
                                  _records(lane, "width", "sOffset", f"{where} lane {lane_id} width")))
        sections.append((_float(section, "s", where), tuple(lanes)))
    sections.sort(key=lambda item: item[0])
    return Road(road_id, elem.get("junction", "-1"), _float(elem, "length", where), geometries,
                _records(elem.find("elevationProfile"), "elevation", "s", f"{where} elevation"),
                _records(lanes_elem, "laneOffset", "s", f"{where} laneOffset"), tuple(sections))


def _parse_opendrive(stream) -> OpenDriveMap:
    roads = []
    try:
        for _, elem in ET.iterparse(stream, events=("end",)):
            if elem.tag == "road":
                roads.append(_road(elem))
                elem.clear()          # town files are large: keep only what was read
            elif elem.tag in ("junction", "controller"):
                elem.clear()
    except ET.ParseError as error:
        raise ValueError(f"opendrive: not valid XML ({error})") from None
    if not roads:
        raise ValueError("opendrive: no <road> element")
    return OpenDriveMap(tuple(roads))


def parse_opendrive(text: str) -> OpenDriveMap:
    """Roads of an OpenDRIVE (.xodr) document: planView, elevation, lane offsets, sections, widths, junction."""
    return _parse_opendrive(io.StringIO(text))


def read_opendrive(path: str | Path) -> OpenDriveMap:
    """parse_opendrive on a file, streamed (a town file can be tens of MB)."""
    try:
        with open(path, "rb") as stream:
            return _parse_opendrive(stream)
    except OSError as error:
        raise ValueError(f"opendrive={str(path)!r}: cannot read ({error.strerror})") from None
    except ValueError as error:
        raise ValueError(f"opendrive={str(path)!r}: {error}") from None


def _cubic(table: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Piecewise cubic a + b ds + c ds^2 + d ds^3 of OpenDRIVE records (R, 5) at s (M,); 0 without records."""
    if len(table) == 0:
        return np.zeros_like(s)
    row = table[np.clip(np.searchsorted(table[:, 0], s, side="right") - 1, 0, None)]
    ds = s - row[:, 0]
    return row[:, 1] + ds * (row[:, 2] + ds * (row[:, 3] + ds * row[:, 4]))


def _arc_length_inverse(speed, t_max: float, length: float, s: np.ndarray) -> np.ndarray:
    """Curve parameter t in [0, t_max] at arc lengths s, by trapezoid integration of |dC/dt| = speed(t)."""
    grid = np.linspace(0.0, t_max, max(2, int(math.ceil(max(length, t_max) / _INTEGRATION_STEP)) + 1))
    rate = speed(grid)
    cumulative = np.concatenate([[0.0], np.cumsum(0.5 * (rate[1:] + rate[:-1]) * np.diff(grid))])
    return np.interp(s, cumulative, grid)


def geometry_pose(g: Geometry, u: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, y, hdg) at arc lengths u (M,) [m] from the geometry start; spiral and polynomials integrated numerically."""
    cos0, sin0 = math.cos(g.hdg), math.sin(g.hdg)
    if g.kind == "line" or (g.kind == "arc" and g.params[0] == 0.0):
        return g.x + u * cos0, g.y + u * sin0, np.full_like(u, g.hdg)
    if g.kind == "arc":
        k = g.params[0]
        hdg = g.hdg + k * u
        return g.x + (np.sin(hdg) - sin0) / k, g.y - (np.cos(hdg) - cos0) / k, hdg
    if g.kind == "spiral":
        k0, k1 = g.params
        rate = (k1 - k0) / g.length if g.length > 0 else 0.0
        grid = np.linspace(0.0, g.length, max(2, int(math.ceil(g.length / _INTEGRATION_STEP)) + 1))
        heading = g.hdg + k0 * grid + 0.5 * rate * grid ** 2
        steps = 0.5 * np.diff(grid)
        x = g.x + np.concatenate([[0.0], np.cumsum(steps * (np.cos(heading[1:]) + np.cos(heading[:-1])))])
        y = g.y + np.concatenate([[0.0], np.cumsum(steps * (np.sin(heading[1:]) + np.sin(heading[:-1])))])
        return np.interp(u, grid, x), np.interp(u, grid, y), g.hdg + k0 * u + 0.5 * rate * u ** 2
    if g.kind == "poly3":
        a, b, c, d = g.params
        slope = lambda t: b + 2 * c * t + 3 * d * t ** 2                           # noqa: E731
        # ds >= du along the curve, so the local u at arc length `length` lies within [0, length].
        lu = _arc_length_inverse(lambda t: np.hypot(1.0, slope(t)), g.length, g.length, u)
        lv, dlu, dlv = a + lu * (b + lu * (c + lu * d)), np.ones_like(lu), slope(lu)
    else:
        au, bu, cu, du, av, bv, cv, dv, p_max = g.params
        du_dp = lambda p: bu + 2 * cu * p + 3 * du * p ** 2                          # noqa: E731
        dv_dp = lambda p: bv + 2 * cv * p + 3 * dv * p ** 2                          # noqa: E731
        p = _arc_length_inverse(lambda t: np.hypot(du_dp(t), dv_dp(t)), p_max, g.length, u)
        lu, lv = au + p * (bu + p * (cu + p * du)), av + p * (bv + p * (cv + p * dv))
        dlu, dlv = du_dp(p), dv_dp(p)
    return (g.x + lu * cos0 - lv * sin0, g.y + lu * sin0 + lv * cos0, g.hdg + np.arctan2(dlv, dlu))


def reference_line(road: Road, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, y, hdg) of the road's reference line at s (M,) [m]."""
    starts = np.array([g.s for g in road.geometries])
    index = np.clip(np.searchsorted(starts, s, side="right") - 1, 0, len(starts) - 1)
    x, y, hdg = np.empty_like(s), np.empty_like(s), np.empty_like(s)
    for i, g in enumerate(road.geometries):
        mask = index == i
        if mask.any():
            x[mask], y[mask], hdg[mask] = geometry_pose(g, np.clip(s[mask] - g.s, 0.0, g.length))
    return x, y, hdg


@dataclass(frozen=True)
class LaneCentres:
    """Samples of driving-lane centre lines."""

    xyz: np.ndarray          # (P, 3) [m]
    is_junction: np.ndarray  # (P,) bool: the lane's road belongs to a junction
    road_id: np.ndarray      # (P,) object (str)


def road_lane_centres(road: Road, step: float = LANE_SAMPLE_STEP) -> LaneCentres:
    """Centre lines of the road's `driving` lanes (CARLA's default waypoint lane type) every `step` metres."""
    s = np.append(np.arange(0.0, road.length, step), road.length)
    x, y, hdg = reference_line(road, s)
    z, offset = _cubic(road.elevation, s), _cubic(road.lane_offset, s)
    normal = np.stack([-np.sin(hdg), np.cos(hdg)], axis=-1)     # left of the reference line
    section_s = np.array([sec_s for sec_s, _ in road.sections]) if road.sections else np.zeros(1)
    section = np.clip(np.searchsorted(section_s, s, side="right") - 1, 0, None)
    points = []
    for k, (sec_s, lanes) in enumerate(road.sections):
        mask = section == k
        ds = s[mask] - sec_s
        left = sorted((lane for lane in lanes if lane.lane_id > 0), key=lambda lane: lane.lane_id)
        right = sorted((lane for lane in lanes if lane.lane_id < 0), key=lambda lane: -lane.lane_id)
        for sign, side in ((1, left), (-1, right)):               # each side from the centre outwards
            inner = np.zeros_like(ds)                 # width of the lanes between this one and the centre
            for lane in side:
                width = _cubic(lane.widths, ds)
                if lane.lane_type == "driving":
                    t = offset[mask] + sign * (inner + 0.5 * width)
                    xy = np.stack([x[mask], y[mask]], axis=-1) + t[:, None] * normal[mask]
                    points.append(np.column_stack([xy, z[mask]]))
                inner = inner + width
    xyz = np.concatenate(points) if points else np.zeros((0, 3))
    return LaneCentres(xyz, np.full(len(xyz), road.is_junction), np.full(len(xyz), road.road_id, dtype=object))


def lane_centres_near(odr: OpenDriveMap, points: np.ndarray, margin: float = ROAD_MARGIN) -> LaneCentres:
    """Driving-lane centres of the roads that come within `margin` metres of the box around points (N, 3)."""
    low, high = points[:, :2].min(0) - margin, points[:, :2].max(0) + margin
    boxes = odr.road_boxes
    near = np.flatnonzero((boxes[:, :2] <= high).all(1) & (boxes[:, 2:] >= low).all(1))
    parts = [road_lane_centres(odr.roads[i]) for i in near]
    if not parts:
        return LaneCentres(np.zeros((0, 3)), np.zeros(0, dtype=bool), np.zeros(0, dtype=object))
    return LaneCentres(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("xyz", "is_junction", "road_id")))


def densify(keypoints: np.ndarray, step: float = DENSE_STEP) -> np.ndarray:
    """Points every `step` metres (ground-plane arc length) along the straight keypoint polyline (K, 3) -> (N, 3).

    N = floor(L / step) + 1 from the first keypoint; the end keypoint itself is kept only when L is a multiple.
    """
    if len(keypoints) == 0:
        return np.zeros((0, 3))
    gaps = np.hypot(*np.diff(keypoints[:, :2], axis=0).T)
    kept = np.concatenate([[True], gaps > 0])          # repeated keypoints add nothing
    points, gaps = keypoints[kept], gaps[gaps > 0]
    along = np.concatenate([[0.0], np.cumsum(gaps)])
    s = np.arange(int(math.floor(along[-1] / step + 1e-9)) + 1) * step
    return np.column_stack([np.interp(s, along, points[:, axis]) for axis in range(3)])


def junction_point(keypoints: np.ndarray, odr: OpenDriveMap) -> tuple[int, int] | None:
    """(c, n): 1-based index of the first dense-route point in a junction, and the number of dense points.

    Each point takes the junction flag of the nearest driving-lane centre sample (3-D distance when the map
    has elevation, else ground plane), the way CARLA's map.get_waypoint projects a location onto a lane.
    None when no point is in a junction or the route has no nearby road.
    """
    dense = densify(keypoints)
    if len(dense) == 0:
        return None
    centres = lane_centres_near(odr, dense)
    if len(centres.xyz) == 0:
        return None
    dims = 3 if odr.has_elevation else 2
    _, nearest = cKDTree(centres.xyz[:, :dims]).query(dense[:, :dims])
    inside = np.flatnonzero(centres.is_junction[nearest])
    return (int(inside[0]) + 1, len(dense)) if len(inside) else None


def town_map_path(maps_dir: str | Path, town: str) -> Path:
    """The town's .xodr under maps_dir: OpenDrive/<T>.xodr, <T>/OpenDrive/<T>.xodr (CARLA's Maps layout, as in
    ability_benchmark) or <T>.xodr; ValueError when none exists."""
    root = Path(maps_dir)
    candidates = [root / "OpenDrive" / f"{town}.xodr", root / town / "OpenDrive" / f"{town}.xodr", root / f"{town}.xodr"]
    for path in candidates:
        if path.is_file():
            return path
    raise ValueError(f"town={town!r}: no OpenDRIVE file under {str(root)!r} "
                     f"(looked for {', '.join(str(p.relative_to(root)) for p in candidates)})")


class TownJunctions:
    """Junction lookup (see envs.metrics.bench2drive_results.JunctionLookup) over a folder of town maps.

    Keeps the last town read: ability_benchmark visits routes sorted by town, so each map is parsed once.
    """

    def __init__(self, maps_dir: str | Path):
        self.maps_dir = Path(maps_dir)
        self._town: str | None = None
        self._map: OpenDriveMap | ValueError | None = None

    def __call__(self, route: B2DRoute) -> tuple[int, int] | None:
        if route.town != self._town:
            self._town = route.town
            try:
                self._map = read_opendrive(town_map_path(self.maps_dir, route.town))
            except ValueError as error:       # remembered, so a missing town is reported per route, read once
                self._map = error
        if isinstance(self._map, ValueError):
            raise self._map
        return junction_point(route.keypoints, self._map)
