"""Route densification over a CARLA map's lane topology (our own replacement for CARLA's GlobalRoutePlanner),
CARLA <-> roadloop frame conversion, and the route-XML fields the backend needs beyond `read_routes`.

CARLA's world frame is left-handed (x forward, y right, z up, yaw clockwise seen from above, degrees);
roadloop's is right-handed (y left, heading counter-clockwise, radians): (x, y, yaw) -> (x, -y, -rad(yaw)).
Only duck-typed map objects are used here (`get_topology`, waypoint `next_until_lane_end`...), so this module
never imports `carla`.
"""

from __future__ import annotations

import heapq
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

DENSE_STEP = 1.0
"""[m] spacing of the dense route (the leaderboard's GlobalRoutePlanner(map, 1.0))."""
NODE_TOLERANCE = 0.5
"""[m] a segment's exit and another's entry closer than this are the same graph node."""
LANE_CHANGE_COST = 5.0
"""[m] extra cost of switching to a neighbouring same-direction lane, so A* prefers staying in lane."""
SEARCH_LIMIT = 400.0
"""[m] longest detour searched between two consecutive keypoints (B2D keypoints are ~2 m apart)."""


# --- frames -----------------------------------------------------------------------------------------------

def pose_from_carla(x: float, y: float, yaw_deg: float) -> tuple[float, float, float]:
    """CARLA (x, y [m], yaw [deg], left-handed) -> roadloop (x, y [m], heading [rad], right-handed)."""
    return float(x), -float(y), -math.radians(float(yaw_deg))


def pose_to_carla(x: float, y: float, heading: float) -> tuple[float, float, float]:
    """roadloop (x, y [m], heading [rad]) -> CARLA (x, y [m], yaw [deg]); inverse of `pose_from_carla`."""
    return float(x), -float(y), -math.degrees(float(heading))


def transform_pose(transform) -> tuple[float, float, float]:
    """roadloop (x, y, heading) of a `carla.Transform`."""
    return pose_from_carla(transform.location.x, transform.location.y, transform.rotation.yaw)


# --- route XML extras -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RouteExtras:
    """What `envs.backends.bench2drive_routes.read_routes` leaves out and the CARLA backend needs."""

    scenario_name: str | None
    """<scenario name=...>, e.g. "ParkingCutIn_1" (record field scenario_name)."""
    trigger: tuple[float, float, float, float] | None
    """<trigger_point> x, y, z [m], yaw [deg] in the CARLA frame."""
    weather: dict[str, float] = field(default_factory=dict)
    """Attributes of the first <weather> (B2D files repeat the same weather at 0 % and 100 %)."""


def read_route_extras(path: str | Path) -> dict[str, RouteExtras]:
    """Route id -> scenario name, trigger point and weather of a Bench2Drive route XML."""
    try:
        root = ET.fromstring(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise ValueError(f"routes={str(path)!r}: cannot read ({error.strerror})") from None
    except ET.ParseError as error:
        raise ValueError(f"routes={str(path)!r}: not valid XML ({error})") from None
    extras = {}
    for elem in root.findall("route"):
        scenario = elem.find("scenarios/scenario")
        point = scenario.find("trigger_point") if scenario is not None else None
        trigger = None
        if point is not None:
            try:
                trigger = tuple(float(point.get(k, 0.0)) for k in ("x", "y", "z", "yaw"))
            except ValueError:
                raise ValueError(f"route {elem.get('id')} trigger_point={point.attrib!r}: not numbers") from None
        weather = elem.find("weathers/weather")
        attrs = {}
        if weather is not None:
            for key, value in weather.attrib.items():
                if key != "route_percentage":
                    try:
                        attrs[key] = float(value)
                    except ValueError:
                        raise ValueError(f"route {elem.get('id')} weather {key}={value!r}: not a number") from None
        extras[str(elem.get("id"))] = RouteExtras(
            scenario.get("name") if scenario is not None else None, trigger, attrs)
    return extras


# --- lane graph -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LaneGraph:
    """The lane segments of a CARLA map (`Map.get_topology()`), sampled every `step` m, roadloop frame.

    E segments, M samples; samples of segment e are `points[starts[e]:starts[e + 1]]`.
    """

    points: np.ndarray = field(metadata={"dims": "M 3"})
    """x, y [m], heading [rad] of every sample (lane yaw), segments concatenated in order."""
    z: np.ndarray = field(metadata={"dims": "M"})
    """[m] height (spawning the ego on the road)."""
    arc: np.ndarray = field(metadata={"dims": "M"})
    """[m] arc length of the sample within its segment."""
    segment: np.ndarray = field(metadata={"dims": "M"})
    """Segment index of each sample."""
    starts: np.ndarray = field(metadata={"dims": "E+1"})
    successors: tuple[tuple[int, ...], ...]
    neighbours: tuple[tuple[int, ...], ...]
    """Same-direction left/right lanes one may change to (Waypoint.get_left_lane/get_right_lane)."""
    is_junction: np.ndarray = field(metadata={"dims": "E"})
    lane_width: np.ndarray = field(metadata={"dims": "E"})
    keys: tuple[tuple[int, int, int], ...]
    """(road_id, section_id, lane_id) of each segment's entry waypoint."""
    parking: tuple[tuple[np.ndarray, float], ...] = ()
    """Parking lanes beside the driving lanes: ((P, 2) centreline [m], width [m]) each."""

    @property
    def lengths(self) -> np.ndarray:
        """(E,) [m] segment lengths."""
        return self.arc[self.starts[1:] - 1]

    def samples(self, e: int) -> np.ndarray:
        """(P, 3) samples of segment e."""
        return self.points[self.starts[e]:self.starts[e + 1]]


def _waypoint_key(wp) -> tuple[int, int, int]:
    return int(wp.road_id), int(wp.section_id), int(wp.lane_id)


def _lane_type(wp) -> str:
    return getattr(wp.lane_type, "name", str(wp.lane_type)).rsplit(".", 1)[-1]


def _parking_lanes(entries: list, step: float) -> tuple[tuple[np.ndarray, float], ...]:
    """Parking lanes found by walking right (and left) from every segment entry, sampled at `step` m."""
    found, seen = [], set()
    for entry in entries:
        for walk in ("get_right_lane", "get_left_lane"):
            wp = entry
            for _ in range(6):   # driving, shoulder, parking, sidewalk... lanes beside a road
                wp = getattr(wp, walk)()
                if wp is None:
                    break
                key = _waypoint_key(wp)
                if _lane_type(wp) == "Parking" and key not in seen:
                    seen.add(key)
                    poses = np.array([transform_pose(w.transform) for w in [wp, *wp.next_until_lane_end(step)]])
                    if len(poses) >= 2:
                        found.append((poses[:, :2], float(wp.lane_width)))
    return tuple(found)


def _segment_waypoints(entry, exit_, step: float, max_steps: int = 100_000) -> list:
    """Waypoints every `step` m from a topology segment's entry to its exit (both included).

    Walks `next(step)`, taking at forks the branch on the entry's lane or else the one nearest the exit,
    until the exit is within one step (measured along s while on the exit's road and lane). Not
    `next_until_lane_end`: that one runs to the end of the road, past lane-section exits.
    """
    end = exit_.transform.location
    same = lambda a, b: (a.road_id, a.lane_id) == (b.road_id, b.lane_id)  # noqa: E731
    gap = lambda wp: math.hypot(wp.transform.location.x - end.x, wp.transform.location.y - end.y)  # noqa: E731
    waypoints, wp = [entry], entry
    for _ in range(max_steps):
        remaining = abs(exit_.s - wp.s) if same(wp, exit_) and wp.section_id == exit_.section_id else gap(wp)
        if remaining <= step:
            break
        branches = wp.next(step)
        if not branches:
            break
        on_lane = [b for b in branches if same(b, entry)]
        wp = min(on_lane or branches, key=gap)
        waypoints.append(wp)
    if gap(waypoints[-1]) > 0.05:
        waypoints.append(exit_)
    return waypoints


def build_lane_graph(carla_map, step: float = DENSE_STEP) -> LaneGraph:
    """Sample every topology segment of `carla_map` at `step` m and link exits to entries (cost = length)."""
    if not step > 0:
        raise ValueError(f"step={step!r}: must be positive")
    topology = list(carla_map.get_topology())
    if not topology:
        raise ValueError(f"map {getattr(carla_map, 'name', '?')!r}: get_topology() is empty")
    rows, z, arcs, seg, starts, widths, junction, keys, entries = [], [], [], [], [0], [], [], [], []
    for e, (entry, exit_) in enumerate(topology):
        waypoints = _segment_waypoints(entry, exit_, step)
        poses = np.array([transform_pose(wp.transform) for wp in waypoints])
        gaps = np.hypot(*np.diff(poses[:, :2], axis=0).T)
        keep = np.concatenate([[True], gaps > 1e-6])  # duplicates would give zero-length pieces
        poses = poses[keep]
        rows.append(poses)
        z.append([wp.transform.location.z for wp, k in zip(waypoints, keep) if k])
        arcs.append(np.concatenate([[0.0], np.cumsum(gaps[keep[1:]])]))
        seg.append(np.full(len(poses), e))
        starts.append(starts[-1] + len(poses))
        widths.append(float(entry.lane_width))
        junction.append(bool(entry.is_junction))
        keys.append(_waypoint_key(entry))
        entries.append(entry)
    points = np.concatenate(rows)
    starts = np.asarray(starts)
    first, last = points[starts[:-1]], points[starts[1:] - 1]
    # exits meet entries: same location (within NODE_TOLERANCE) and compatible heading
    tree = cKDTree(first[:, :2])
    successors = []
    for e in range(len(topology)):
        near = tree.query_ball_point(last[e, :2], NODE_TOLERANCE)
        successors.append(tuple(sorted(j for j in near if j != e
                                       and math.cos(first[j, 2] - last[e, 2]) > 0.0)))
    by_key = {}
    for e, key in enumerate(keys):
        by_key.setdefault(key, e)
    neighbours = []
    for e, entry in enumerate(entries):
        found = []
        for side in (entry.get_left_lane(), entry.get_right_lane()):
            if side is None or np.sign(side.lane_id) != np.sign(entry.lane_id) or entry.is_junction:
                continue
            j = by_key.get(_waypoint_key(side))
            if j is not None and j != e:
                found.append(j)
        neighbours.append(tuple(found))
    return LaneGraph(points, np.concatenate(z).astype(np.float64), np.concatenate(arcs), np.concatenate(seg),
                     starts, tuple(successors), tuple(neighbours), np.asarray(junction),
                     np.asarray(widths, np.float64), tuple(keys), _parking_lanes(entries, step))


# --- densification ----------------------------------------------------------------------------------------

def _project(graph: LaneGraph, e: int, xy: np.ndarray) -> tuple[float, float]:
    """(arc s [m], distance [m]) of the closest point of segment e to xy."""
    pts = graph.samples(e)[:, :2]
    arc = graph.arc[graph.starts[e]:graph.starts[e + 1]]
    if len(pts) == 1:
        return 0.0, float(np.hypot(*(xy - pts[0])))
    a, b = pts[:-1], pts[1:]
    ab = b - a
    t = np.clip(((xy - a) * ab).sum(1) / np.maximum((ab * ab).sum(1), 1e-12), 0.0, 1.0)
    dist = np.hypot(*(a + t[:, None] * ab - xy).T)
    i = int(np.argmin(dist))
    return float(arc[i] + t[i] * (arc[i + 1] - arc[i])), float(dist[i])


def _heading_at(graph: LaneGraph, e: int, s: float) -> float:
    arc = graph.arc[graph.starts[e]:graph.starts[e + 1]]
    i = int(np.clip(np.searchsorted(arc, s, side="right") - 1, 0, len(arc) - 1))
    return float(graph.samples(e)[i, 2])


def _candidates(graph: LaneGraph, tree: cKDTree, xy: np.ndarray, direction: float, radius: float):
    """(segment, s, distance) of lanes passing within `radius` of xy, driving within 90 deg of `direction`."""
    found = {}
    for m in tree.query_ball_point(xy, radius + DENSE_STEP):
        e = int(graph.segment[m])
        if e not in found:
            s, dist = _project(graph, e, xy)
            if dist <= radius and math.cos(_heading_at(graph, e, s) - direction) > 0.0:
                found[e] = (e, s, dist)
    return list(found.values())


def _path_cost(graph: LaneGraph, start: tuple[int, float], goals: list, lengths: np.ndarray):
    """Cheapest (cost, goal, segment chain) from `start` (segment, s) to any goal (segment, s, offset)."""
    e0, s0 = start
    best = (math.inf, None, None)
    # leave the start segment forward, or change lane at the start position
    entry_costs: list[tuple[float, int, tuple[int, ...], float]] = [(0.0, e0, (e0,), s0)]
    for n in graph.neighbours[e0]:
        sn = min(s0 / max(lengths[e0], 1e-9) * lengths[n], lengths[n])
        entry_costs.append((LANE_CHANGE_COST, n, (e0, n), sn))
    goal_by_seg: dict[int, list] = {}
    for goal in goals:
        goal_by_seg.setdefault(goal[0], []).append(goal)
    heap = []
    for cost, e, chain, s in entry_costs:
        for goal in goal_by_seg.get(e, []):
            if goal[1] >= s - 0.5:  # a keypoint up to 0.5 m behind is noise, not a loop
                total = cost + max(goal[1] - s, 0.0) + goal[2]
                if total < best[0]:
                    best = (total, goal, chain)
        heapq.heappush(heap, (cost + lengths[e] - s, e, chain))
    settled = set()
    while heap:
        cost, e, chain = heapq.heappop(heap)
        if cost >= best[0] or cost > SEARCH_LIMIT:
            break
        if e in settled:
            continue
        settled.add(e)
        for nxt in graph.successors[e]:
            for goal in goal_by_seg.get(nxt, []):
                total = cost + goal[1] + goal[2]
                if total < best[0]:
                    best = (total, goal, (*chain, nxt))
            heapq.heappush(heap, (cost + lengths[nxt], nxt, (*chain, nxt)))
    return best


def _piece(graph: LaneGraph, e: int, s_from: float, s_to: float) -> np.ndarray:
    """(P, 3) samples of segment e with s_from <= arc <= s_to, end points interpolated."""
    samples = graph.samples(e)
    arc = graph.arc[graph.starts[e]:graph.starts[e + 1]]
    inner = samples[(arc > s_from) & (arc < s_to)]
    ends = [_interpolate(samples, arc, s) for s in (s_from, s_to)]
    return np.vstack([ends[0][None], inner, ends[1][None]])


def _interpolate(samples: np.ndarray, arc: np.ndarray, s: float) -> np.ndarray:
    s = min(max(s, arc[0]), arc[-1])
    heading = np.unwrap(samples[:, 2])
    return np.array([np.interp(s, arc, samples[:, 0]), np.interp(s, arc, samples[:, 1]),
                     math.remainder(float(np.interp(s, arc, heading)), 2 * math.pi)])


def resample(path: np.ndarray, step: float = DENSE_STEP) -> np.ndarray:
    """(N, 3) poses every `step` m along a (P, 3) x, y, heading path, both ends kept; headings interpolated
    on the unwrapped lane yaw (not the chord), as waypoints carry their lane's yaw."""
    gaps = np.hypot(*np.diff(path[:, :2], axis=0).T)
    path = path[np.concatenate([[True], gaps > 1e-9])]
    arc = np.concatenate([[0.0], np.cumsum(gaps[gaps > 1e-9])])
    if arc[-1] <= 0.0:
        raise ValueError(f"path length={arc[-1]!r}: the route has no extent")
    s = np.arange(0.0, arc[-1], step)
    if arc[-1] - s[-1] > 1e-6:
        s = np.append(s, arc[-1])
    heading = np.unwrap(path[:, 2])
    out = np.stack([np.interp(s, arc, path[:, 0]), np.interp(s, arc, path[:, 1]), np.interp(s, arc, heading)], 1)
    out[:, 2] = np.remainder(out[:, 2] + math.pi, 2 * math.pi) - math.pi
    return out


def densify_route(graph: LaneGraph, keypoints: np.ndarray, step: float = DENSE_STEP,
                  radius: float = 3.0) -> np.ndarray:
    """Dense (N, 3) route x, y, heading (roadloop frame) joining CARLA-frame keypoints (K, >=2) along lanes.

    Each keypoint is matched to the lanes passing within `radius` m that drive along the keypoint sequence;
    consecutive matches are joined by the cheapest lane path (Dijkstra over the topology; a lane change to
    a same-direction neighbour costs LANE_CHANGE_COST extra), continuing from the previous match so that
    overlapping junction connectors do not alternate. The chain is resampled every `step` m.
    """
    keypoints = np.asarray(keypoints, np.float64)
    if keypoints.ndim != 2 or keypoints.shape[1] < 2 or len(keypoints) < 2 or not np.isfinite(keypoints).all():
        raise ValueError(f"keypoints shape={keypoints.shape!r}: need finite (K >= 2, 2 or 3)")
    xy = np.stack([keypoints[:, 0], -keypoints[:, 1]], 1)  # CARLA -> roadloop frame
    keep = np.concatenate([[True], np.hypot(*np.diff(xy, axis=0).T) > 1e-6])
    xy = xy[keep]
    if len(xy) < 2:
        raise ValueError("keypoints: all at one location")
    direction = np.arctan2(*np.diff(xy, axis=0).T[::-1])
    direction = np.append(direction, direction[-1])
    tree = cKDTree(graph.points[:, :2])
    lengths = graph.lengths
    first = _candidates(graph, tree, xy[0], direction[0], radius)
    if not first:
        raise ValueError(f"keypoint 0 at {keypoints[0, :2].tolist()}: no lane within {radius} m driving that way")
    e, s, _ = min(first, key=lambda c: c[2])
    pieces, state = [], (e, s)
    for k in range(1, len(xy)):
        goals = _candidates(graph, tree, xy[k], direction[k], radius)
        cost, goal, chain = _path_cost(graph, state, goals, lengths) if goals else (math.inf, None, None)
        if goal is None:
            raise ValueError(f"keypoint {k} at {keypoints[k, :2].tolist()}: not reachable along lanes from "
                             f"keypoint {k - 1} (no lane within {radius} m, or > {SEARCH_LIMIT} m detour)")
        pieces.extend(_chain_pieces(graph, state, chain, goal, lengths))
        state = (goal[0], goal[1])
    return resample(np.vstack(pieces), step)


def _chain_pieces(graph: LaneGraph, start: tuple[int, float], chain: tuple[int, ...], goal, lengths):
    e0, s0 = start
    if len(chain) >= 2 and chain[1] in graph.neighbours[e0] and chain[1] not in graph.successors[e0]:
        # lane change: a chord straight to the keypoint when it lies on the neighbour lane, else continue
        # from the start position's projection on the neighbour
        chain = chain[1:]
        s0 = goal[1] if len(chain) == 1 else min(s0 / max(lengths[e0], 1e-9) * lengths[chain[0]], lengths[chain[0]])
    pieces = []
    for i, e in enumerate(chain):
        s_from = s0 if i == 0 else 0.0
        s_to = goal[1] if i == len(chain) - 1 else lengths[e]
        pieces.append(_piece(graph, e, s_from, max(s_to, s_from)))
    return pieces


# --- static route context ---------------------------------------------------------------------------------

TRIGGER_DISTANCE = 2.0
"""[m] a scenario is kept only if its trigger point is this close to a route point (leaderboard
route_parser DIST_THRESHOLD) ..."""
TRIGGER_ANGLE = 10.0
"""[deg] ... with a yaw difference below this (ANGLE_THRESHOLD)."""
STOP_LINE_WIDTH = 1.2
"""Red-light stop line width in lane widths, centred on the light's stop waypoint (RunningRedLightTest)."""
CONTEXT_MARGIN = 50.0
"""[m] lanes, parking lanes, lights and stop signs this close to the route enter the route context."""


def _strip(xy: np.ndarray, width: float) -> np.ndarray:
    """Outline ring (2P, 2) of a lane of `width` m around centreline xy (P, 2)."""
    tangent = np.gradient(xy, axis=0)
    normal = np.stack([-tangent[:, 1], tangent[:, 0]], 1) / np.maximum(np.hypot(*tangent.T), 1e-12)[:, None]
    return np.vstack([xy + normal * width / 2, (xy - normal * width / 2)[::-1]])


def _lane_id(key: tuple[int, int, int]) -> str:
    return f"r{key[0]}s{key[1]}l{key[2]}"


def context_road_map(graph: LaneGraph, route_xy: np.ndarray, margin: float = CONTEXT_MARGIN):
    """RoadMap of the lanes (junction segments as lane connectors) and parking lanes (as car parks) that
    pass within `margin` m of the route: what the lane criteria look up (CARLA get_waypoint)."""
    from envs.sim.map import Area, Lane, RoadMap

    tree = cKDTree(route_xy)
    near = np.zeros(len(graph.keys), dtype=bool)
    close = tree.query(graph.points[:, :2], distance_upper_bound=margin)[0] < np.inf
    near[np.unique(graph.segment[close])] = True
    lanes, connectors = [], []
    for e in np.flatnonzero(near):
        xy = graph.samples(e)[:, :2]
        if len(xy) < 2:
            continue
        key = graph.keys[e]
        lane = Lane(id=f"{_lane_id(key)}e{e}", roadblock_id=f"r{key[0]}s{key[1]}{'+' if key[2] > 0 else '-'}",
                    polygon=_strip(xy, graph.lane_width[e]), centerline=xy,
                    successors=tuple(f"{_lane_id(graph.keys[j])}e{j}" for j in graph.successors[e] if near[j]),
                    is_connector=bool(graph.is_junction[e]))
        (connectors if lane.is_connector else lanes).append(lane)
    carparks = tuple(Area(f"parking{i}", _strip(xy, width)) for i, (xy, width) in enumerate(graph.parking)
                     if (tree.query(xy, distance_upper_bound=margin)[0] < np.inf).any())
    return RoadMap(lanes=tuple(lanes), lane_connectors=tuple(connectors), carparks=carparks)


def trigger_index(route: np.ndarray, trigger: tuple[float, float, float, float] | None) -> int | None:
    """Dense-route index of a CARLA-frame trigger point (x, y, z, yaw deg), or None when no route point is
    within TRIGGER_DISTANCE and TRIGGER_ANGLE (the leaderboard then drops the scenario)."""
    if trigger is None:
        return None
    x, y, heading = pose_from_carla(trigger[0], trigger[1], trigger[3])
    distance = np.hypot(route[:, 0] - x, route[:, 1] - y)
    angle = np.degrees(np.abs(np.remainder(route[:, 2] - heading + math.pi, 2 * math.pi) - math.pi))
    ok = (distance < TRIGGER_DISTANCE) & (angle < TRIGGER_ANGLE)
    return int(np.flatnonzero(ok)[np.argmin(distance[ok])]) if ok.any() else None


def _lights(world, route_xy: np.ndarray, margin: float):
    """LightSpecs (one per stop waypoint near the route) and the carla actor id of each."""
    from envs.bench2drive.route_scenario import LightProgram, LightSpec
    from envs.sim.scene import LightStatus

    tree = cKDTree(route_xy)
    program = LightProgram(cycle=((int(LightStatus.UNKNOWN), 1.0),))   # the server runs the real cycle
    specs, ids = [], []
    for light in world.get_actors().filter("traffic.traffic_light*"):
        for wp in light.get_stop_waypoints():
            x, y, heading = transform_pose(wp.transform)
            if tree.query([x, y])[0] > margin:
                continue
            half = STOP_LINE_WIDTH * float(wp.lane_width) / 2
            across = np.array([-math.sin(heading), math.cos(heading)]) * half
            specs.append(LightSpec(stop_line=np.array([[x, y] + across, [x, y] - across]), heading=heading,
                                   program=program, lane_ids=(_lane_id(_waypoint_key(wp)),)))
            ids.append(int(light.id))
    return tuple(specs), tuple(ids)


def _stop_signs(world, graph: LaneGraph, route_xy: np.ndarray, margin: float):
    """StopSignSpecs from `traffic.stop*` actors' trigger volumes, oriented along the lane they cover."""
    from envs.bench2drive.route_scenario import StopSignSpec

    tree, lanes = cKDTree(route_xy), cKDTree(graph.points[:, :2])
    specs = []
    for sign in world.get_actors().filter("traffic.stop*"):
        volume = sign.trigger_volume
        x, y, heading = transform_pose(sign.get_transform())
        lx, ly = volume.location.x, volume.location.y   # actor frame, CARLA y right
        centre = np.array([x + lx * math.cos(heading) + ly * math.sin(heading),
                           y + lx * math.sin(heading) - ly * math.cos(heading)])
        if tree.query(centre)[0] > margin:
            continue
        box_heading = heading - math.radians(getattr(volume.rotation, "yaw", 0.0))
        lane_heading = float(graph.points[lanes.query(centre)[1], 2])
        along = abs(math.cos(box_heading - lane_heading)) >= math.sqrt(0.5)
        length, width = 2 * volume.extent.x, 2 * volume.extent.y
        specs.append(StopSignSpec(center=centre, heading=lane_heading,
                                  length=length if along else width, width=width if along else length))
    return tuple(specs)


def route_scenario_from_carla(route, extras: RouteExtras, graph: LaneGraph, dense: np.ndarray, world,
                              speed_limit: float, seed: int = 0, margin: float = CONTEXT_MARGIN):
    """The static context of one CARLA route as a RouteScenario (no actor scripts: the server runs the
    actors) and the carla actor id behind each of its lights. `route` is a `B2DRoute`."""
    from envs.bench2drive.route_scenario import RouteScenario

    if not str(route.route_id).lstrip("-").isdigit():
        raise ValueError(f"route_id={route.route_id!r}: Bench2Drive route ids are integers")
    lights, light_ids = _lights(world, dense[:, :2], margin)
    index = trigger_index(dense, extras.trigger)
    scenario_type = route.scenario_type or ""
    scenario = RouteScenario(
        route_id=int(route.route_id), scenario_type=scenario_type,
        scenario_name=extras.scenario_name or (f"{scenario_type}_1" if scenario_type else ""),
        town=route.town, road_map=context_road_map(graph, dense[:, :2], margin), route=dense,
        speed_limit=speed_limit, lights=lights, stop_signs=_stop_signs(world, graph, dense[:, :2], margin),
        trigger_index=len(dense) - 1 if index is None else index,
        # TwoWays scenarios switch the wrong-direction check off near the obstacle (SwitchWrongDirectionTest);
        # their end is not known here, so it stays off from the trigger to the route end
        wrong_direction_check=not scenario_type.endswith("TwoWays"), seed=seed)
    return scenario, light_ids, index is not None
