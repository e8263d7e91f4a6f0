"""Procedural road maps (straight, curved, intersection, T-junction, merge, car park) in nuPlan semantics.

`generate_map(kind, rng, config)` returns a `RoadMap` plus the signal groups, stop-sign connectors and
spawn lanes the closed-loop simulator needs. Seeded and numpy only; curve maths is in `road_geometry`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum, IntEnum
from functools import partial
from typing import Callable

import numpy as np

from envs.sim.map import Area, Lane, RoadMap
from envs.sim.road_geometry import (
    Path,
    arc_path,
    chain_paths,
    drop_collinear,
    frame_point,
    frame_rectangle,
    hermite_path,
    lane_ring,
    min_turn_radius,
    offset_points,
    rigid_transform,
    wrap_angle,
)

JUNCTION_OVERLAP = 0.5
"""[m] an intersection polygon reaches this far into each approach/exit roadblock, so a car straddling
the boundary has every corner strictly inside some drivable polygon (NAVSIM DAC uses the strict
interior, spec navsim.md 1.3); connectors themselves are not drivable (spec 8)."""
CROSSWALK_WIDTH = 3.0
"""[m] crosswalk depth; crosswalks sit inside the junction, JUNCTION_OVERLAP before each arm's mouth."""
STOP_LINE_DEPTH = 0.5
"""[m] stop-line polygons cover the last STOP_LINE_DEPTH metres of the incoming lanes (nuPlan-like)."""
MAX_ARC_TURN = math.radians(75.0)
"""Largest heading change of one curved segment; sharper draws are flattened (radius raised)."""
MAX_ROAD_HEADING = math.radians(90.0)
"""Curved roads keep |heading| below this so they never fold back onto themselves."""
MERGE_ZONE_RANGE = (30.0, 45.0)
"""[m] length of the merge connector (ramp lane end -> main road lane start)."""
RAMP_PARALLEL_RANGE = (15.0, 25.0)
"""[m] length of the ramp lane running alongside the main road before the merge zone."""
RAMP_APPROACH_RANGE = (40.0, 60.0)
"""[m] along-road length of the curved ramp approach."""
RAMP_ANGLE_RANGE = (math.radians(10.0), math.radians(25.0))
"""Heading of the ramp relative to the main road where the approach starts [rad]."""
DRIVEWAY_LENGTH_RANGE = (8.0, 15.0)
"""[m] driveway roadblock between the junction and the car park."""
DRIVEWAY_SPEED_LIMIT = 5.0
"""[m/s] car-park driveway lanes (walking-pace access road)."""
CARPARK_WIDTH_RANGE = (30.0, 50.0)
"""[m] car-park extent across the driveway axis."""
CARPARK_DEPTH_RANGE = (20.0, 35.0)
"""[m] car-park extent along the driveway axis, beyond the driveway end."""
_ANGLE_EPS = 1e-9


class MapKind(str, Enum):
    """Map layouts `generate_map` can build; RANDOM draws one of the others with the rng."""

    STRAIGHT = "straight"
    CURVED = "curved"
    INTERSECTION = "intersection"
    T_JUNCTION = "t_junction"
    MERGE = "merge"
    CARPARK = "carpark"
    RANDOM = "random"


class SignalGroup(IntEnum):
    """Signal phase groups of a 4-way crossing (local frame before the random rotation).

    Through and right-turn connectors of one road share a phase; left turns are protected phases.
    """

    NORTH_SOUTH = 0
    EAST_WEST = 1
    NORTH_SOUTH_LEFT = 2
    EAST_WEST_LEFT = 3


@dataclass(frozen=True)
class MapGenConfig:
    """Knobs of the procedural map generator. Every distance in metres, speed in m/s."""

    lane_width: float = 3.5
    """[m] width of every lane and lane connector; 2.5 to 5."""
    urban_speed_limit: float = 13.9
    """[m/s] (50 km/h) speed limit on junction maps (intersection, t_junction, carpark)."""
    road_speed_limit: float = 22.0
    """[m/s] (~80 km/h) speed limit on straight, curved and merge roads."""
    max_lateral_accel: float = 3.0
    """[m/s^2] on curves and turns a lane's speed limit is capped to sqrt(max_lateral_accel * R_min)."""
    segment_length_range: tuple[float, float] = (50.0, 80.0)
    """[m] (min, max) length of one road segment (one roadblock per direction); at least 10."""
    num_segments_range: tuple[int, int] = (3, 5)
    """(min, max) segments chained along straight and curved roads; min >= min_route_roadblocks."""
    arm_segments: int = 2
    """Segments (roadblocks per direction) on each junction arm and on the car-park main road."""
    lanes_per_direction_range: tuple[int, int] = (1, 4)
    """(min, max) lanes per direction of each road; car-park driveways and ramps always have 1."""
    curve_radius_range: tuple[float, float] = (30.0, 200.0)
    """[m] (min, max) radius of curved segments, drawn log-uniformly; min must exceed the widest road
    half width plus one lane so lane polygons stay simple."""
    corner_radius_range: tuple[float, float] = (6.0, 10.0)
    """[m] (min, max) curb radius at junction corners (inner edge of the outer right turn); min >= 4 so
    a crosswalk fits inside the curb return."""
    point_spacing: float = 1.0
    """[m] largest distance between consecutive centerline/boundary points; in (0, 5]."""
    random_transform: bool = True
    """Rotate the whole map by a uniform angle and shift it, so scenes are not axis-aligned."""
    max_translation: float = 500.0
    """[m] the random shift is uniform in [-max_translation, max_translation] per axis."""
    min_route_roadblocks: int = 3
    """A spawn lane has a successor path through at least this many roadblocks (itself included,
    roadblock connectors counted); 1 to 4."""

    def __post_init__(self):
        def check_range(name: str, value: tuple, low: float, high: float = math.inf) -> None:
            if len(value) != 2 or not (low <= value[0] <= value[1] <= high):
                raise ValueError(f"{name}={value!r}: need ({low} <=) min <= max (<= {high})")

        if not 2.5 <= self.lane_width <= 5.0:
            raise ValueError(f"lane_width={self.lane_width!r}: must lie in [2.5, 5] m")
        for name in ("urban_speed_limit", "road_speed_limit", "max_lateral_accel"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0.0):
                raise ValueError(f"{name}={value!r}: must be positive and finite")
        check_range("segment_length_range", self.segment_length_range, 10.0)
        check_range("num_segments_range", self.num_segments_range, 1)
        check_range("lanes_per_direction_range", self.lanes_per_direction_range, 1, 6)
        check_range("curve_radius_range", self.curve_radius_range, 0.0)
        check_range("corner_radius_range", self.corner_radius_range, 4.0, 50.0)
        if self.arm_segments < 1:
            raise ValueError(f"arm_segments={self.arm_segments!r}: need at least 1")
        widest = (self.lanes_per_direction_range[1] + 1) * self.lane_width
        if self.curve_radius_range[0] <= widest:
            raise ValueError(f"curve_radius_range={self.curve_radius_range!r}: min must exceed "
                             f"{widest} m (widest road half width + one lane) to keep lanes simple")
        if not 0.0 < self.point_spacing <= 5.0:
            raise ValueError(f"point_spacing={self.point_spacing!r}: must lie in (0, 5] m")
        if not (math.isfinite(self.max_translation) and self.max_translation >= 0.0):
            raise ValueError(f"max_translation={self.max_translation!r}: must be finite and >= 0")
        # merge roads have 4 main roadblocks; junction routes span 2 * arm_segments + 1 roadblocks
        longest = min(self.num_segments_range[0], 2 * self.arm_segments + 1, 4)
        if not 1 <= self.min_route_roadblocks <= longest:
            raise ValueError(f"min_route_roadblocks={self.min_route_roadblocks!r}: must lie in [1, {longest}] "
                             f"(limited by num_segments_range min, 2 * arm_segments + 1 and 4)")


@dataclass(frozen=True)
class GeneratedMap:
    """A generated map and the control/spawn information the closed-loop simulator needs."""

    kind: MapKind
    """The concrete layout built (never RANDOM)."""
    map: RoadMap
    signal_groups: dict[str, int]
    """Lane-connector id -> signal phase group (`SignalGroup`); only signalised connectors listed."""
    stop_sign_connectors: tuple[str, ...]
    """Lane connectors governed by a stop sign (T-junction minor road, car-park exit)."""
    spawn_lanes: tuple[str, ...]
    """Lanes with a successor path through >= config.min_route_roadblocks roadblocks."""


# ------------------------------------------------------------------------------------------------
# Mutable draft of a map while it is being assembled (local frame)


@dataclass
class _LaneDraft:
    id: str
    roadblock_id: str
    path: Path
    polygon: np.ndarray
    speed_limit: float
    is_connector: bool
    successors: list[str] = field(default_factory=list)
    predecessors: list[str] = field(default_factory=list)


class _MapDraft:
    """Accumulates lanes and areas with sequential ids (L1, C1, RB1, RBC1, I1, P1, W1, S1)."""

    _LAYER_PREFIX = {"roadblocks": "RB", "roadblock_connectors": "RBC", "intersections": "I",
                     "carparks": "P", "crosswalks": "W", "stop_lines": "S"}

    def __init__(self):
        self._counts: dict[str, int] = {}
        self.lanes: dict[str, _LaneDraft] = {}
        self.areas: dict[str, list[tuple[str, np.ndarray]]] = {layer: [] for layer in self._LAYER_PREFIX}

    def new_id(self, prefix: str) -> str:
        self._counts[prefix] = self._counts.get(prefix, 0) + 1
        return f"{prefix}{self._counts[prefix]}"

    def add_lane(self, roadblock_id: str, path: Path, polygon: np.ndarray, speed_limit: float,
                 is_connector: bool = False) -> str:
        lane_id = self.new_id("C" if is_connector else "L")
        self.lanes[lane_id] = _LaneDraft(lane_id, roadblock_id, path, polygon, speed_limit, is_connector)
        return lane_id

    def add_area(self, layer: str, polygon: np.ndarray, area_id: str | None = None) -> str:
        area_id = area_id or self.new_id(self._LAYER_PREFIX[layer])
        self.areas[layer].append((area_id, polygon))
        return area_id

    def link(self, src: str, dst: str) -> None:
        self.lanes[src].successors.append(dst)
        self.lanes[dst].predecessors.append(src)

    def to_road_map(self, rotation: float, translation: np.ndarray) -> RoadMap:
        def move(points: np.ndarray) -> np.ndarray:
            return rigid_transform(points, rotation, translation)

        def ring(points: np.ndarray) -> np.ndarray:  # simplified in the local frame, where lines are exact
            return move(drop_collinear(points))

        lanes = [
            Lane(id=d.id, roadblock_id=d.roadblock_id, polygon=ring(d.polygon), centerline=move(d.path.points),
                 speed_limit=float(d.speed_limit), successors=tuple(d.successors),
                 predecessors=tuple(d.predecessors), is_connector=d.is_connector)
            for d in self.lanes.values()
        ]
        layers = {layer: tuple(Area(area_id, ring(poly)) for area_id, poly in items)
                  for layer, items in self.areas.items()}
        return RoadMap(lanes=tuple(lane for lane in lanes if not lane.is_connector),
                       lane_connectors=tuple(lane for lane in lanes if lane.is_connector), **layers)


def _capped_speed(limit: float, path: Path, max_lateral_accel: float) -> float:
    """Speed limit [m/s] lowered to the comfortable cornering speed of the path's tightest bend."""
    return min(limit, math.sqrt(max_lateral_accel * min_turn_radius(path)))


# ------------------------------------------------------------------------------------------------
# Roads: chains of two-way segments


@dataclass(frozen=True)
class _Piece:
    """Lane ids of one road segment, innermost (leftmost in driving direction) lane first."""

    forward: tuple[str, ...]
    """Lanes driving along the reference path (to its right)."""
    backward: tuple[str, ...]
    """Lanes driving against the reference path (to its left)."""


def _add_piece(draft: _MapDraft, ref: Path, n_forward: int, n_backward: int, cfg: MapGenConfig,
               speed_limit: float) -> _Piece:
    """One roadblock per direction around a reference path (the centre divider); lanes share edges."""
    w = cfg.lane_width
    # every boundary computed once so neighbouring lanes/roadblocks share the exact same points
    edges = {k: offset_points(ref, k * w) for k in range(-n_forward, n_backward + 1)}
    forward, backward = [], []
    if n_forward:
        block = draft.add_area("roadblocks", lane_ring(edges[-n_forward], edges[0]))
        for k in range(n_forward):
            center = Path(offset_points(ref, -(k + 0.5) * w), ref.headings)
            forward.append(draft.add_lane(block, center, lane_ring(edges[-k - 1], edges[-k]),
                                          _capped_speed(speed_limit, center, cfg.max_lateral_accel)))
    if n_backward:
        block = draft.add_area("roadblocks", lane_ring(edges[n_backward][::-1], edges[0][::-1]))
        for k in range(n_backward):
            center = Path(offset_points(ref, (k + 0.5) * w), ref.headings).reversed()
            polygon = lane_ring(edges[k + 1][::-1], edges[k][::-1])
            backward.append(draft.add_lane(block, center, polygon,
                                           _capped_speed(speed_limit, center, cfg.max_lateral_accel)))
    return _Piece(tuple(forward), tuple(backward))


def _add_road(draft: _MapDraft, refs: list[Path], n_forward: int, n_backward: int, cfg: MapGenConfig,
              speed_limit: float) -> list[_Piece]:
    """Chain of segments whose lanes continue lane-to-lane across segment joints.

    Joints need no lane connector: roadblocks share the joint edge, and a connector would have to lie
    inside an intersection polygon to be drivable (spec navsim.md 8)."""
    pieces = [_add_piece(draft, ref, n_forward, n_backward, cfg, speed_limit) for ref in refs]
    for before, after in zip(pieces, pieces[1:]):
        for src, dst in zip(before.forward, after.forward):
            draft.link(src, dst)
        for src, dst in zip(after.backward, before.backward):
            draft.link(src, dst)
    return pieces


def _add_lane_connector(draft: _MapDraft, block: str, src: str, dst: str, cfg: MapGenConfig,
                        speed_limit: float) -> tuple[str, np.ndarray, np.ndarray]:
    """Smooth connector from the end of lane `src` to the start of lane `dst`; returns id, right, left edge."""
    a, b = draft.lanes[src].path, draft.lanes[dst].path
    path = hermite_path(a.points[-1], float(a.headings[-1]), b.points[0], float(b.headings[0]), cfg.point_spacing)
    right, left = offset_points(path, -0.5 * cfg.lane_width), offset_points(path, 0.5 * cfg.lane_width)
    conn = draft.add_lane(block, path, lane_ring(right, left),
                          _capped_speed(speed_limit, path, cfg.max_lateral_accel), is_connector=True)
    draft.link(src, conn)
    draft.link(conn, dst)
    return conn, right, left


# ------------------------------------------------------------------------------------------------
# Junctions: straight arms at multiples of 90 degrees around the local origin


class _Turn(Enum):
    STRAIGHT = 0
    LEFT = 1
    RIGHT = 2


@dataclass(frozen=True)
class _Arm:
    heading: float
    """Outward direction of the arm [rad]; arms listed counter-clockwise, 90 or 180 degrees apart."""
    n_lanes: int
    """Lanes per direction."""
    lengths: tuple[float, ...]
    """[m] segment lengths, outward from the junction."""
    speed_limit: float


@dataclass(frozen=True)
class _Junction:
    connectors: tuple[tuple[str, int, int, _Turn], ...]
    """(lane-connector id, from arm, to arm, turn)."""
    mouths: tuple[float, ...]
    """[m] distance from the centre to where each arm's roadblocks start."""


def _gap(a: float, b: float) -> float:
    return float(np.mod(b - a, 2.0 * math.pi))


def _add_junction(draft: _MapDraft, cfg: MapGenConfig, arms: list[_Arm], corner_radius: float,
                  crosswalks: bool, stop_line_arms: tuple[int, ...]) -> _Junction:
    """Arms with their roads, lane connectors, roadblock connectors, the intersection polygon and marks."""
    w, n_arms, origin = cfg.lane_width, len(arms), np.zeros(2)
    quarter = []  # quarter[k]: arm k+1 is 90 degrees counter-clockwise of arm k (else 180)
    need = [0.0] * n_arms
    for k in range(n_arms):
        m, gap = (k + 1) % n_arms, _gap(arms[k].heading, arms[(k + 1) % n_arms].heading)
        assert abs(gap - math.pi / 2) < _ANGLE_EPS or abs(gap - math.pi) < _ANGLE_EPS, "arms 90/180 deg apart"
        quarter.append(abs(gap - math.pi / 2) < _ANGLE_EPS)
        if quarter[-1]:  # the curb radius of this corner is measured from both crossing road edges
            need[k] = max(need[k], arms[m].n_lanes * w)
            need[m] = max(need[m], arms[k].n_lanes * w)
    mouths = tuple(corner_radius + n for n in need)

    pieces = []
    for arm, mouth in zip(arms, mouths):
        start = frame_point(origin, arm.heading, mouth, 0.0)
        refs = chain_paths(start, arm.heading, arm.lengths, [0.0] * len(arm.lengths), cfg.point_spacing)
        pieces.append(tuple(_add_road(draft, refs, arm.n_lanes, arm.n_lanes, cfg, arm.speed_limit)))

    connectors, right_turn_edge = [], {}
    for k, arm in enumerate(arms):
        incoming = pieces[k][0].backward
        for m, other in enumerate(arms):
            if m == k:  # no U-turns
                continue
            turn_angle = float(wrap_angle(other.heading - arm.heading - math.pi))
            outgoing = pieces[m][0].forward
            if abs(turn_angle) < _ANGLE_EPS:
                turn, pairs = _Turn.STRAIGHT, [(i, i) for i in range(min(len(incoming), len(outgoing)))]
            elif abs(turn_angle - math.pi / 2) < _ANGLE_EPS:  # leftmost lane to leftmost lane
                turn, pairs = _Turn.LEFT, [(0, 0)]
            else:  # rightmost lane to rightmost lane
                assert abs(turn_angle + math.pi / 2) < _ANGLE_EPS, "arms must be 90 or 180 degrees apart"
                turn, pairs = _Turn.RIGHT, [(len(incoming) - 1, len(outgoing) - 1)]
            block = draft.new_id("RBC")
            edges = []
            for i, j in pairs:
                conn, right, left = _add_lane_connector(draft, block, incoming[i], outgoing[j], cfg,
                                                        min(arm.speed_limit, other.speed_limit))
                connectors.append((conn, k, m, turn))
                edges.append((right, left))
            # roadblock connector = union outline of its side-by-side connectors
            draft.add_area("roadblock_connectors", lane_ring(edges[-1][0], edges[0][1]), block)
            if turn is _Turn.RIGHT:
                right_turn_edge[(k, m)] = edges[-1][0]

    ring = []
    for k, (arm, mouth) in enumerate(zip(arms, mouths)):
        m, half = (k + 1) % n_arms, arm.n_lanes * w
        ring.append(frame_point(origin, arm.heading, mouth + JUNCTION_OVERLAP, -half))
        ring.append(frame_point(origin, arm.heading, mouth + JUNCTION_OVERLAP, half))
        if quarter[k]:  # curb return = inner edge of the outermost right turn into the next arm
            ring.extend(right_turn_edge[(k, m)])
        else:  # straight road edge across the junction
            ring.append(frame_point(origin, arm.heading, mouth, half))
            ring.append(frame_point(origin, arms[m].heading, mouths[m], -arms[m].n_lanes * w))
    draft.add_area("intersections", np.array(ring))

    for k, (arm, mouth) in enumerate(zip(arms, mouths)):
        half = arm.n_lanes * w
        if crosswalks:
            near, far = mouth - JUNCTION_OVERLAP - CROSSWALK_WIDTH, mouth - JUNCTION_OVERLAP
            draft.add_area("crosswalks", frame_rectangle(arm.heading, near, far, -half, half))
        if k in stop_line_arms:
            draft.add_area("stop_lines", frame_rectangle(arm.heading, mouth, mouth + STOP_LINE_DEPTH, 0.0, half))
    return _Junction(tuple(connectors), mouths)


# ------------------------------------------------------------------------------------------------
# Layouts (local frame: roads start at the origin or junctions are centred on it)


@dataclass(frozen=True)
class _Controls:
    signal_groups: dict[str, int] = field(default_factory=dict)
    stop_sign_connectors: tuple[str, ...] = ()


def _draw_lanes(rng: np.random.Generator, cfg: MapGenConfig) -> int:
    low, high = cfg.lanes_per_direction_range
    return int(rng.integers(low, high + 1))


def _draw_lengths(rng: np.random.Generator, cfg: MapGenConfig, count: int) -> tuple[float, ...]:
    return tuple(float(x) for x in rng.uniform(*cfg.segment_length_range, size=count))


def _build_road(draft: _MapDraft, cfg: MapGenConfig, rng: np.random.Generator, curved: bool) -> _Controls:
    n_lanes = _draw_lanes(rng, cfg)
    low, high = cfg.num_segments_range
    lengths = _draw_lengths(rng, cfg, int(rng.integers(low, high + 1)))
    curvatures = [0.0] * len(lengths)
    if curved:
        heading, log_r = 0.0, np.log(cfg.curve_radius_range)
        for i, length in enumerate(lengths):
            radius = max(float(np.exp(rng.uniform(*log_r))), length / MAX_ARC_TURN)
            sign = 1.0 if rng.random() < 0.5 else -1.0
            if abs(heading + sign * length / radius) > MAX_ROAD_HEADING:
                sign = -sign  # bend back (S-curve) rather than fold the road over itself
            heading += sign * length / radius
            curvatures[i] = sign / radius
    refs = chain_paths(np.zeros(2), 0.0, lengths, curvatures, cfg.point_spacing)
    _add_road(draft, refs, n_lanes, n_lanes, cfg, cfg.road_speed_limit)
    return _Controls()


def _draw_corner_radius(rng: np.random.Generator, cfg: MapGenConfig) -> float:
    return float(rng.uniform(*cfg.corner_radius_range))


def _build_intersection(draft: _MapDraft, cfg: MapGenConfig, rng: np.random.Generator) -> _Controls:
    """Signalised 4-way crossing: arms east, north, west, south (local frame)."""
    n_east_west, n_north_south = _draw_lanes(rng, cfg), _draw_lanes(rng, cfg)
    arms = [_Arm(k * math.pi / 2, (n_east_west, n_north_south)[k % 2], _draw_lengths(rng, cfg, cfg.arm_segments),
                 cfg.urban_speed_limit) for k in range(4)]
    junction = _add_junction(draft, cfg, arms, _draw_corner_radius(rng, cfg), crosswalks=True,
                             stop_line_arms=(0, 1, 2, 3))
    groups = {}
    for conn, src, _, turn in junction.connectors:
        north_south = src % 2 == 1
        if turn is _Turn.LEFT:
            groups[conn] = int(SignalGroup.NORTH_SOUTH_LEFT if north_south else SignalGroup.EAST_WEST_LEFT)
        else:
            groups[conn] = int(SignalGroup.NORTH_SOUTH if north_south else SignalGroup.EAST_WEST)
    return _Controls(signal_groups=groups)


def _build_t_junction(draft: _MapDraft, cfg: MapGenConfig, rng: np.random.Generator) -> _Controls:
    """Main road east-west with a minor road to the south that yields at a stop sign."""
    n_main, n_minor = _draw_lanes(rng, cfg), _draw_lanes(rng, cfg)
    arms = [_Arm(heading, n, _draw_lengths(rng, cfg, cfg.arm_segments), cfg.urban_speed_limit)
            for heading, n in ((0.0, n_main), (math.pi, n_main), (1.5 * math.pi, n_minor))]
    junction = _add_junction(draft, cfg, arms, _draw_corner_radius(rng, cfg), crosswalks=True, stop_line_arms=(2,))
    return _Controls(stop_sign_connectors=tuple(c for c, src, _, _ in junction.connectors if src == 2))


def _build_carpark(draft: _MapDraft, cfg: MapGenConfig, rng: np.random.Generator) -> _Controls:
    """Main road east-west; a one-lane-each-way driveway south leads into a car-park area."""
    n_main = _draw_lanes(rng, cfg)
    driveway = float(rng.uniform(*DRIVEWAY_LENGTH_RANGE))
    arms = [
        _Arm(0.0, n_main, _draw_lengths(rng, cfg, cfg.arm_segments), cfg.urban_speed_limit),
        _Arm(math.pi, n_main, _draw_lengths(rng, cfg, cfg.arm_segments), cfg.urban_speed_limit),
        _Arm(1.5 * math.pi, 1, (driveway,), DRIVEWAY_SPEED_LIMIT),
    ]
    junction = _add_junction(draft, cfg, arms, _draw_corner_radius(rng, cfg), crosswalks=False, stop_line_arms=(2,))
    width, depth = float(rng.uniform(*CARPARK_WIDTH_RANGE)), float(rng.uniform(*CARPARK_DEPTH_RANGE))
    # lateral shift keeps the driveway mouth (+-1 lane) at least 1 m inside the car-park side walls
    slack = width / 2 - cfg.lane_width - 1.0
    shift = float(rng.uniform(-slack, slack))
    end = junction.mouths[2] + driveway
    draft.add_area("carparks", frame_rectangle(arms[2].heading, end - JUNCTION_OVERLAP, end + depth,
                                          shift - width / 2, shift + width / 2))
    return _Controls(stop_sign_connectors=tuple(c for c, src, _, _ in junction.connectors if src == 2))


def _build_merge(draft: _MapDraft, cfg: MapGenConfig, rng: np.random.Generator) -> _Controls:
    """Two-way main road along +x; a one-lane on-ramp from the right ends into a merge connector."""
    w, n_main = cfg.lane_width, _draw_lanes(rng, cfg)
    merge_len = float(rng.uniform(*MERGE_ZONE_RANGE))
    parallel_len = float(rng.uniform(*RAMP_PARALLEL_RANGE))
    approach_len = float(rng.uniform(*RAMP_APPROACH_RANGE))
    angle = float(rng.uniform(*RAMP_ANGLE_RANGE))
    lengths = list(_draw_lengths(rng, cfg, 4))
    lengths[1] = max(lengths[1], merge_len + 5.0)  # merge zone sits at the end of segment 1
    # segment 0 long enough that the ramp starts at x >= 10 m (beside the road, not before it)
    lengths[0] = max(lengths[0], approach_len + parallel_len + merge_len - lengths[1] + 10.0)
    main_refs = chain_paths(np.zeros(2), 0.0, lengths, [0.0] * 4, cfg.point_spacing)
    main = _add_road(draft, main_refs, n_main, n_main, cfg, cfg.road_speed_limit)

    merge_end = lengths[0] + lengths[1]  # main-lane start the connector feeds into
    merge_start = merge_end - merge_len  # ramp lane end
    edge = -n_main * w  # right edge of the main road; the ramp's reference is its own left edge
    parallel_start = merge_start - parallel_len
    # tangent from the approach start meets the road edge half-way: a single smooth bend
    ramp_start = np.array([parallel_start - approach_len, edge - 0.5 * approach_len * math.tan(angle)])
    approach = hermite_path(ramp_start, angle, np.array([parallel_start, edge]), 0.0, cfg.point_spacing)
    parallel = arc_path(np.array([parallel_start, edge]), 0.0, parallel_len, 0.0, cfg.point_spacing)
    ramp = _add_road(draft, [approach, parallel], 1, 0, cfg, cfg.road_speed_limit)

    block = draft.new_id("RBC")
    _, right, left = _add_lane_connector(draft, block, ramp[-1].forward[0], main[2].forward[-1], cfg,
                                         cfg.road_speed_limit)
    draft.add_area("roadblock_connectors", lane_ring(right, left), block)
    # merge zone: covers the connector (lanes n-1 and the ramp band) and reaches JUNCTION_OVERLAP into
    # the ramp and the exit lane, notched so no off-road area beyond the exit roadblock is drivable
    inner, outer = edge + w, edge - w
    corners = [(merge_start - JUNCTION_OVERLAP, inner), (merge_start - JUNCTION_OVERLAP, outer),
               (merge_end, outer), (merge_end, edge), (merge_end + JUNCTION_OVERLAP, edge),
               (merge_end + JUNCTION_OVERLAP, inner)]
    draft.add_area("intersections", np.array(corners, dtype=np.float64))
    return _Controls()


_BUILDERS: dict[MapKind, Callable[[_MapDraft, MapGenConfig, np.random.Generator], _Controls]] = {
    MapKind.STRAIGHT: partial(_build_road, curved=False),
    MapKind.CURVED: partial(_build_road, curved=True),
    MapKind.INTERSECTION: _build_intersection,
    MapKind.T_JUNCTION: _build_t_junction,
    MapKind.MERGE: _build_merge,
    MapKind.CARPARK: _build_carpark,
}


# ------------------------------------------------------------------------------------------------
# Public entry point


def _route_depths(road_map: RoadMap) -> dict[str, int]:
    """Lane id -> most roadblocks on any successor path starting in that lane (itself included)."""
    lanes, depth = road_map.lanes_by_id, {}
    for root in lanes:
        stack = [(root, False)]
        while stack:  # iterative post-order DFS; generated lane graphs are acyclic
            lane_id, expanded = stack.pop()
            if lane_id in depth:
                continue
            succ = [s for s in lanes[lane_id].successors if s in lanes]
            if expanded:
                depth[lane_id] = 1 + max((depth[s] for s in succ), default=0)
            else:
                stack.append((lane_id, True))
                stack.extend((s, False) for s in succ if s not in depth)
    return depth


def generate_map(kind: MapKind | str, rng: np.random.Generator, config: MapGenConfig = MapGenConfig()) -> GeneratedMap:
    """Build a random map of the given kind; the same rng state gives bit-identical arrays.

    kind: a `MapKind` or its value ("straight", "curved", "intersection", "t_junction", "merge",
    "carpark", "random"). All coordinates in metres, global frame (rotated/shifted when
    `config.random_transform`).
    """
    try:
        kind = MapKind(kind)
    except ValueError:
        raise ValueError(f"kind={kind!r}: unknown map kind (valid: {', '.join(k.value for k in MapKind)})") from None
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng={rng!r}: expected a numpy.random.Generator")
    if not isinstance(config, MapGenConfig):
        raise ValueError(f"config={config!r}: expected a MapGenConfig")
    if kind is MapKind.RANDOM:
        concrete = [k for k in MapKind if k is not MapKind.RANDOM]
        kind = concrete[int(rng.integers(len(concrete)))]

    draft = _MapDraft()
    controls = _BUILDERS[kind](draft, config, rng)
    rotation, translation = 0.0, np.zeros(2)
    if config.random_transform:
        rotation = float(rng.uniform(0.0, 2.0 * math.pi))
        translation = rng.uniform(-config.max_translation, config.max_translation, size=2)
    road_map = draft.to_road_map(rotation, translation)

    depths = _route_depths(road_map)
    spawn = tuple(lane.id for lane in road_map.lanes if depths[lane.id] >= config.min_route_roadblocks)
    return GeneratedMap(kind=kind, map=road_map, signal_groups=controls.signal_groups,
                        stop_sign_connectors=controls.stop_sign_connectors, spawn_lanes=spawn)
