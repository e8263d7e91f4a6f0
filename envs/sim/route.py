"""Route handling of one scene: NAVSIM's route correction, route lanes, the starting lane, the PDM
centerline (Dijkstra on the lane graph) and the OpenScene driving command.

Numpy and plain Python per scene (metric-cache set-up, not a hot path); point-in-polygon and segment
crossings use geometry's exact predicates, as GEOS does. Sources: navsim
`pdm_planner/utils/route_utils.py`, `utils/graph_search/{bfs_roadblock,dijkstra}.py`,
`abstract_pdm_planner.py`, `utils/pdm_path.py`, and OpenScene `process_data/helpers/driving_command.py`.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from envs.sim.geometry import polyline_project, ray_crossing, segments_intersect
from envs.sim.map import Lane, RoadMap
from envs.sim.scene import Command
from envs.sim.vehicle import PACIFICA, VehicleParams

BACKWARD_SEARCH_DEPTH = 15
"""Roadblock BFS depth when the ego starts before the route (`route_roadblock_correction`)."""
FORWARD_SEARCH_DEPTH = 30
"""Roadblock BFS depth to bridge route gaps / reach the route going forward."""
CENTERLINE_SEARCH_DEPTH = 30
"""The Dijkstra goal is the route roadblock this many blocks after the start (`_get_discrete_centerline`)."""
CANDIDATE_RADIUS_M = 1.0
"""Half side of the square patch that finds the ego's roadblocks (`get_current_roadblock_candidates`)."""
CANDIDATE_HEADING_ERROR = math.pi / 4
"""[rad] A lane qualifies its roadblock as a start candidate below this heading error..."""
CANDIDATE_DISPLACEMENT_M = 3.0
"""...and below this distance to its nearest baseline vertex [m]."""
LOOP_OVERLAP_AREA_M2 = 1.0
"""Two route connectors overlapping by more than this area close a loop (`remove_route_loops`)."""
COMMAND_DISTANCE_M = 20.0
"""Look-ahead along the centerline for the driving command (OpenScene `get_driving_command`)."""
COMMAND_LATERAL_M = 2.0
"""Lateral offset of the look-ahead pose that makes the command left/right."""
_EPS = 1e-9
"""[m] Rounding slack for "on the boundary" in the overlap-area and starting-lane tests."""


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def correct_route(
    road_map: RoadMap, route_roadblock_ids, ego_pose: np.ndarray, vehicle: VehicleParams | None = None
) -> tuple[str, ...]:
    """NAVSIM's `route_roadblock_correction`: the route roadblock ids PDM-Closed and the scorer use.

    Deduplicates (order kept), then: if the ego's starting roadblock is off-route, prepends the
    backward-BFS path (depth 15) to it, or else re-roots the route with a forward BFS (depth 30) to
    one of its first 3 blocks; bridges consecutive non-adjacent blocks with a forward BFS (depth 30);
    cuts the route where a roadblock connector overlaps an earlier one (> 1 m^2, a loop).
    ego_pose: (3,) global rear-axle x, y [m], heading [rad]. `vehicle` is not used by the correction
    (NAVSIM looks at the rear-axle pose only); it is accepted for a uniform signature.
    Ids absent from the map are dropped (NAVSIM would fail on them; scene maps may be cropped).
    """
    del vehicle
    route = _route_correction(road_map, route_roadblock_ids, _checked_pose(ego_pose), openscene=False)
    return tuple(dict.fromkeys(route or ()))


def route_lane_ids(road_map: RoadMap, roadblock_ids) -> tuple[str, ...]:
    """Interior lanes / lane connectors of the given roadblocks, in route then map order."""
    lanes: dict[str, None] = {}
    for block in dict.fromkeys(roadblock_ids):
        for lane_id in road_map.roadblock_lane_ids.get(block, ()):
            lanes[lane_id] = None
    return tuple(lanes)


def starting_lane(
    road_map: RoadMap, route_ids, ego_pose: np.ndarray, vehicle: VehicleParams = PACIFICA
) -> str | None:
    """PDM-Closed's starting lane (`AbstractPDMPlanner._get_starting_lane`); None without route lanes.

    1. Route lanes whose polygon touches the rear axle (boundary included): the one with the smallest
       heading error at its baseline vertex nearest to the rear axle (first on ties).
    2. Else, scanning the route lanes in order: the first whose polygon strictly contains the box
       centre, or else the one closest to the ego footprint (first on ties).
    """
    pose = _checked_pose(ego_pose)
    lanes = [road_map.lanes_by_id[i] for i in route_lane_ids(road_map, route_ids)]
    if not lanes:
        return None
    rear_axle = pose[:2]
    route_set = {lane.id for lane in lanes}
    touching = [
        lane for lane in (*road_map.lanes, *road_map.lane_connectors)
        if lane.id in route_set and _ring_point_distance(lane.polygon, rear_axle) <= _EPS
    ]
    if touching:
        errors = [_nearest_vertex_errors(lane, rear_axle, pose[2])[1] for lane in touching]
        return touching[int(np.argmin(errors))].id
    center = rear_axle + vehicle.rear_axle_to_center * np.array([math.cos(pose[2]), math.sin(pose[2])])
    footprint = _box_ring(center, pose[2], vehicle.length, vehicle.width)
    best, best_distance = None, math.inf
    for lane in lanes:
        if _ring_contains(lane.polygon, center[None])[0]:
            return lane.id
        distance = _rings_distance(lane.polygon, footprint)
        if distance < best_distance:
            best, best_distance = lane.id, distance
    return best


def centerline_lane_ids(road_map: RoadMap, route_ids, start_lane_id: str) -> tuple[str, ...]:
    """Lanes of the PDM centerline: NAVSIM's `Dijkstra` from the starting lane over successor edges.

    Only route lanes are expanded (no lane changes); edge cost = the next lane's baseline length; the
    goal is any lane of route roadblock min(start_index + 29, last). An unreachable goal yields the
    cheapest path among the deepest expanded lanes.
    """
    route = list(dict.fromkeys(route_ids))
    lanes = road_map.lanes_by_id
    if start_lane_id not in lanes:
        raise ValueError(f"start_lane_id={start_lane_id!r}: not a lane of this map")
    start_block = lanes[start_lane_id].roadblock_id
    # np.argmax of an all-False mask is 0: a start block off the route counts from the route start.
    start_index = route.index(start_block) if start_block in route else 0
    window = route[start_index : start_index + CENTERLINE_SEARCH_DEPTH]
    goal_block = window[-1] if window else None
    candidates = set(route_lane_ids(road_map, route))

    queue, dist, depth = [start_lane_id], [1.0], [1]
    parent: dict[str, str | None] = {start_lane_id: None}
    expanded: list[tuple[str, float, int]] = []
    expanded_ids: set[str] = set()
    end = None
    while queue:
        idx = min(range(len(queue)), key=lambda i: (dist[i], i))
        current, current_dist, current_depth = queue.pop(idx), dist.pop(idx), depth.pop(idx)
        if lanes[current].roadblock_id == goal_block:
            end = current
            break
        expanded.append((current, current_dist, current_depth))
        expanded_ids.add(current)
        for nxt in lanes[current].successors:
            if nxt not in candidates or nxt not in lanes:
                continue
            alt = current_dist + _polyline_length(lanes[nxt].centerline)
            if nxt not in expanded_ids and nxt not in queue:
                parent[nxt] = current
                queue.append(nxt)
                dist.append(alt)
                depth.append(current_depth + 1)
            elif nxt in queue:
                k = queue.index(nxt)
                if alt < dist[k]:
                    parent[nxt] = current
                    dist[k] = alt
                    depth[k] = current_depth + 1
    if end is None:  # cheapest of the deepest expanded lanes, first on ties
        deepest = max(d for _, _, d in expanded)
        _, first = min((c, i) for i, (_, c, d) in enumerate(expanded) if d == deepest)
        end = expanded[first][0]
    path = [end]
    while parent[path[-1]] is not None:
        path.append(parent[path[-1]])
    return tuple(reversed(path))


def lane_path_poses(road_map: RoadMap, lane_ids) -> np.ndarray:
    """(P, 3) concatenated baseline vertices x, y [m] and heading [rad] of the given lanes.

    nuPlan `discrete_path`: a vertex's heading points to the next vertex of its lane, the last vertex
    repeats the previous heading. Joint vertices shared by consecutive lanes appear twice, as in
    NAVSIM's centerline (they have zero-length segments between them and change nothing in arc length).
    """
    parts = [_lane_poses(road_map.lanes_by_id[i]) for i in lane_ids]
    if not parts:
        return np.zeros((0, 3))
    return np.concatenate(parts, axis=0)


def route_centerline(road_map: RoadMap, route_ids, start_lane_id: str) -> np.ndarray:
    """(P, 2) PDM centerline [m]: baseline vertices of the Dijkstra lanes from the starting lane.

    This is the polyline EP projects onto and LK measures against (spec navsim.md §1.11).
    """
    return lane_path_poses(road_map, centerline_lane_ids(road_map, route_ids, start_lane_id))[:, :2]


def driving_command(road_map: RoadMap, route_ids, ego_pose: np.ndarray) -> Command:
    """NAVSIM/OpenScene driving command from the route (OpenScene `get_driving_command`).

    OpenScene's own correction (backward BFS only, no loop cut; a failed search -> UNKNOWN), the
    route lane holding (strict interior) or else closest to the rear axle, the Dijkstra centerline;
    the centerline pose 20 m past the ego's projection, in the frame of the pose at the projection:
    lateral y >= 2 m -> LEFT, <= -2 m -> RIGHT, else STRAIGHT. No usable route -> UNKNOWN.
    """
    pose = _checked_pose(ego_pose)
    route = _route_correction(road_map, route_ids, pose, openscene=True)
    if not route:
        return Command.UNKNOWN
    lanes = [road_map.lanes_by_id[i] for i in route_lane_ids(road_map, route)]
    if not lanes:
        return Command.UNKNOWN
    current, best_distance = None, math.inf
    for lane in lanes:
        if _ring_contains(lane.polygon, pose[None, :2])[0]:
            current = lane
            break
        distance = _ring_point_distance(lane.polygon, pose[:2])
        if distance < best_distance:
            current, best_distance = lane, distance
    path = lane_path_poses(road_map, centerline_lane_ids(road_map, route, current.id))
    progress = path_project(path[:, :2], pose[None, :2])[0]
    here, ahead = path_interpolate(path, np.array([progress, progress + COMMAND_DISTANCE_M]))
    delta = ahead[:2] - here[:2]
    lateral = -math.sin(here[2]) * delta[0] + math.cos(here[2]) * delta[1]
    if lateral >= COMMAND_LATERAL_M:
        return Command.LEFT
    if lateral <= -COMMAND_LATERAL_M:
        return Command.RIGHT
    return Command.STRAIGHT


def find_route(road_map: RoadMap, start_lane_id: str, goal_lane_id: str) -> tuple[str, ...]:
    """Roadblock ids along the shortest successor-edge lane path from start to goal lane (both included).

    Cost is the summed baseline length of the lanes after the start; for building scenes.
    """
    lanes = road_map.lanes_by_id
    for name, lane_id in (("start_lane_id", start_lane_id), ("goal_lane_id", goal_lane_id)):
        if lane_id not in lanes:
            raise ValueError(f"{name}={lane_id!r}: not a lane of this map")
    best = {start_lane_id: 0.0}
    parent: dict[str, str | None] = {start_lane_id: None}
    done: set[str] = set()
    while True:
        open_lanes = [(cost, lane_id) for lane_id, cost in best.items() if lane_id not in done]
        if not open_lanes:
            raise ValueError(f"goal_lane_id={goal_lane_id!r}: not reachable from {start_lane_id!r}")
        cost, current = min(open_lanes)
        if current == goal_lane_id:
            break
        done.add(current)
        for nxt in lanes[current].successors:
            if nxt not in lanes or nxt in done:
                continue
            alt = cost + _polyline_length(lanes[nxt].centerline)
            if alt < best.get(nxt, math.inf):
                best[nxt], parent[nxt] = alt, current
    path = [goal_lane_id]
    while parent[path[-1]] is not None:
        path.append(parent[path[-1]])
    return tuple(dict.fromkeys(lanes[i].roadblock_id for i in reversed(path)))


def path_project(points_xy: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Arc length [m] of the closest point on polyline (P, 2) for each query point (N, 2).

    shapely `LineString.project` (the first segment wins a tie), via `geometry.polyline_project`.
    """
    line = torch.as_tensor(np.asarray(points_xy, np.float64))[None]
    points = torch.as_tensor(np.asarray(query, np.float64))[None]
    valid = torch.ones(line.shape[:2], dtype=torch.bool)
    return polyline_project(points, line, valid)[0].numpy()


def path_interpolate(path: np.ndarray, distances: np.ndarray) -> np.ndarray:
    """(N, 3) poses at arc lengths `distances` (N,) on a (P, 3) path x, y, heading (NAVSIM `PDMPath`)."""
    path = torch.as_tensor(np.asarray(path, np.float64))
    step = torch.sqrt(((path[1:, :2] - path[:-1, :2]) ** 2).sum(-1))
    arc = torch.cat([torch.zeros(1, dtype=torch.float64), torch.cumsum(step, 0)])
    heading = torch.as_tensor(np.unwrap(path[:, 2].numpy()))
    count = torch.tensor(len(path))
    return path_pose_at(path[:, :2], heading, arc, count, torch.as_tensor(np.asarray(distances, np.float64))).numpy()


def path_pose_at(xy: Tensor, heading: Tensor, arc: Tensor, count: Tensor, s: Tensor) -> Tensor:
    """Poses (..., N, 3) at arc lengths s (..., N) on padded paths, exactly as NAVSIM's `PDMPath.interpolate`.

    xy (..., P, 2) [m], heading (..., P) unwrapped [rad], arc (..., P) cumulative vertex arc length
    [m] (padding must repeat the last value), count (...) valid vertices (>= 2). s is clipped to
    [1e-5, length]; x, y and heading follow scipy `interp1d` (left-searchsorted knots, so a repeated
    joint vertex is skipped); the heading is wrapped to [-pi, pi]; NaNs (zero-length paths) become 0.
    """
    count = count[..., None]
    length = arc.gather(-1, count - 1)
    s = torch.minimum(torch.clamp(s, min=1e-5), length)
    hi = torch.searchsorted(arc.contiguous(), s.contiguous(), side="left")
    hi = torch.minimum(hi.clamp(min=1), count - 1)
    lo = hi - 1
    values = torch.cat([xy, heading[..., None]], -1)
    index = lambda i: i[..., None].expand(*i.shape, 3)  # noqa: E731
    value_lo, value_hi = values.gather(-2, index(lo)), values.gather(-2, index(hi))
    arc_lo, arc_hi = arc.gather(-1, lo), arc.gather(-1, hi)
    pose = (value_hi - value_lo) / (arc_hi - arc_lo)[..., None] * (s - arc_lo)[..., None] + value_lo
    pose = torch.cat([pose[..., :2], torch.atan2(torch.sin(pose[..., 2:]), torch.cos(pose[..., 2:]))], -1)
    return torch.nan_to_num(pose, nan=0.0)


# --------------------------------------------------------------------------------------------
# Route correction (route_utils.py)
# --------------------------------------------------------------------------------------------


def _route_correction(road_map: RoadMap, route_ids, pose: np.ndarray, openscene: bool) -> list[str] | None:
    """NAVSIM's correction (`openscene=False`) or OpenScene's variant; None where OpenScene gives up."""
    known = set(road_map.roadblock_ids)
    route = [block for block in dict.fromkeys(route_ids) if block in known]
    if not route:
        return None if openscene else []
    start, candidates = _start_roadblock(road_map, set(route), pose)
    if start is not None and start not in route:
        path = _bfs(road_map, route[0], set(candidates), BACKWARD_SEARCH_DEPTH, forward=False)
        if path is not None:
            route = path[:-1] + route
        elif openscene:
            return None
        else:
            path = _bfs(road_map, start, set(route[:3]), FORWARD_SEARCH_DEPTH, forward=True)
            if path is not None:
                end_index = route.index(path[-1])
                route = path + route[end_index + 1 :]
    bridges: dict[int, list[str]] = {}
    for i in range(len(route) - 1):
        if route[i] in road_map.roadblock_predecessors.get(route[i + 1], ()):
            continue
        path = _bfs(road_map, route[i], {route[i + 1]}, FORWARD_SEARCH_DEPTH, forward=True)
        if path is not None and len(path) >= 3:
            bridges[i] = path[1:-1]
    for i in sorted(bridges, reverse=True):
        route[i + 1 : i + 1] = bridges[i]
    if not openscene:
        route = _cut_loops(road_map, route)
    return route


def _start_roadblock(road_map: RoadMap, on_route: set[str], pose: np.ndarray) -> tuple[str | None, list[str]]:
    """`get_current_roadblock_candidates`: (most promising roadblock, candidate ids incl. repeats)."""
    polygons = _block_polygons(road_map)
    blocks, connectors = _block_layers(road_map)
    x, y = pose[:2]
    r = CANDIDATE_RADIUS_M
    patch = np.array([[x + r, y + r], [x - r, y + r], [x - r, y - r], [x + r, y - r]])
    found = [
        block for block in (*blocks, *connectors)
        if any(_rings_distance(ring, patch) <= 0.0 for ring in polygons.get(block, ()))
    ]
    if not found:  # nearest roadblock and nearest connector (`get_distance_to_nearest_map_object`)
        for layer in (blocks, connectors):
            distances = [min((_ring_point_distance(g, pose[:2]) for g in polygons.get(b, ())), default=math.inf)
                         for b in layer]
            if distances and math.isfinite(min(distances)):
                found.append(layer[int(np.argmin(distances))])
    if not found:
        return None, []
    on_route_hits, on_route_disp, other_hits, other_disp, block_disp = [], [], [], [], []
    for block in found:
        best_disp = math.inf
        for lane_id in road_map.roadblock_lane_ids.get(block, ()):
            displacement, heading_error = _nearest_vertex_errors(road_map.lanes_by_id[lane_id], pose[:2], pose[2])
            best_disp = min(best_disp, displacement)
            if heading_error < CANDIDATE_HEADING_ERROR and displacement < CANDIDATE_DISPLACEMENT_M:
                hits, disp = (on_route_hits, on_route_disp) if block in on_route else (other_hits, other_disp)
                hits.append(block)
                disp.append(displacement)
        block_disp.append(best_disp)
    if on_route_hits:
        return on_route_hits[int(np.argmin(on_route_disp))], on_route_hits
    if other_hits:
        return other_hits[int(np.argmin(other_disp))], other_hits
    return found[int(np.argmin(block_disp))], found


def _bfs(road_map: RoadMap, start: str, targets: set[str], max_depth: int, forward: bool) -> list[str] | None:
    """NAVSIM's `BreadthFirstSearchRoadBlock.search`; the path in driving order, or None if not found.

    NAVSIM keeps no visited set, so a level may hold a block many times, and a block's parent is the
    LAST occurrence that pushed it. Levels are kept deduplicated here with each block's first and last
    position, which gives the same goal and the same parents without the exponential queue.
    """
    neighbours = road_map.roadblock_successors if forward else road_map.roadblock_predecessors
    level, last_rank = [start], {start: 0}
    parents: list[dict[str, str]] = [{}]
    for depth in range(1, max_depth + 1):
        for node in level:  # nodes are popped in first-occurrence order
            if node in targets:
                path = [node]
                for back in range(depth - 1, 0, -1):
                    path.append(parents[back][path[-1]])
                return path[::-1] if forward else path
        first_key: dict[str, tuple[int, int]] = {}
        last_key: dict[str, tuple[int, int]] = {}
        parent: dict[str, str] = {}
        for rank, node in enumerate(level):
            for j, nxt in enumerate(neighbours.get(node, ())):
                if nxt not in first_key or (rank, j) < first_key[nxt]:
                    first_key[nxt] = (rank, j)
                if nxt not in last_key or (last_rank[node], j) > last_key[nxt]:
                    last_key[nxt] = (last_rank[node], j)
                    parent[nxt] = node
        if not first_key:
            return None
        level = sorted(first_key, key=first_key.__getitem__)
        last_rank = {node: i for i, node in enumerate(sorted(last_key, key=last_key.__getitem__))}
        parents.append(parent)
    return None


def _cut_loops(road_map: RoadMap, route: list[str]) -> list[str]:
    """`remove_route_loops`: cut the route at the first connector overlapping an earlier one by > 1 m^2."""
    # Only declared connector outlines take part (a connector known only by its lane connectors has
    # no nuPlan ROADBLOCK_CONNECTOR polygon here).
    polygons = {a.id: np.asarray(a.polygon, np.float64) for a in road_map.roadblock_connectors}
    seen: list[np.ndarray] = []
    for idx, block in enumerate(route):
        if block not in polygons:
            continue
        if any(_overlap_area(earlier, polygons[block]) > LOOP_OVERLAP_AREA_M2 for earlier in seen):
            return route[:idx]
        seen.append(polygons[block])
    return route


def _block_layers(road_map: RoadMap) -> tuple[list[str], list[str]]:
    """Roadblock ids and roadblock-connector ids, each in map (layer) order."""
    connectors = road_map.connector_ids
    blocks = [a.id for a in road_map.roadblocks]
    joins = [a.id for a in road_map.roadblock_connectors]
    for block in road_map.roadblock_lane_ids:
        if block not in blocks and block not in joins:
            (joins if block in connectors else blocks).append(block)
    return blocks, joins


def _block_polygons(road_map: RoadMap) -> dict[str, list[np.ndarray]]:
    """Outline(s) of each roadblock: its declared polygon, else its lanes' polygons."""
    out = {a.id: [np.asarray(a.polygon, np.float64)] for a in (*road_map.roadblocks, *road_map.roadblock_connectors)}
    for block, lane_ids in road_map.roadblock_lane_ids.items():
        if block not in out:
            out[block] = [np.asarray(road_map.lanes_by_id[i].polygon, np.float64) for i in lane_ids]
    return out


# --------------------------------------------------------------------------------------------
# Small per-scene geometry (numpy)
# --------------------------------------------------------------------------------------------


def _checked_pose(ego_pose) -> np.ndarray:
    pose = np.asarray(ego_pose, dtype=np.float64)
    if pose.shape != (3,) or not np.isfinite(pose).all():
        raise ValueError(f"ego_pose={ego_pose!r}: expected 3 finite numbers (x, y, heading)")
    return pose


def _lane_poses(lane: Lane) -> np.ndarray:
    """(P, 3) nuPlan `discrete_path` of one lane."""
    xy = np.asarray(lane.centerline, np.float64)
    if len(xy) < 2:
        raise ValueError(f"lane {lane.id!r}: centerline has {len(xy)} point(s), needs at least 2")
    step = np.diff(xy, axis=0)
    heading = np.arctan2(step[:, 1], step[:, 0])
    return np.concatenate([xy, np.append(heading, heading[-1])[:, None]], axis=1)


def _nearest_vertex_errors(lane: Lane, point: np.ndarray, heading: float) -> tuple[float, float]:
    """(distance to the nearest baseline vertex [m], |heading error| there [rad]); first vertex on ties."""
    poses = _lane_poses(lane)
    distances = np.sqrt(((poses[:, :2] - point) ** 2).sum(-1))
    k = int(np.argmin(distances))
    error = poses[k, 2] - heading
    return float(distances[k]), float(abs(math.atan2(math.sin(error), math.cos(error))))


def _polyline_length(xy: np.ndarray) -> float:
    return float(np.hypot(*np.diff(np.asarray(xy, np.float64), axis=0).T).sum())


def _box_ring(center: np.ndarray, heading: float, length: float, width: float) -> np.ndarray:
    """(4, 2) corners FL, RL, RR, FR."""
    c, s = math.cos(heading), math.sin(heading)
    local = np.array([[1, 1], [-1, 1], [-1, -1], [1, -1]]) * np.array([length / 2, width / 2])
    return center + local @ np.array([[c, s], [-s, c]])


def _edges(ring: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ring = np.asarray(ring, np.float64)
    return ring, np.roll(ring, -1, axis=0)


def _point_segment_distance(points: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, S) distance of each point to each segment a->b."""
    seg = b - a
    len2 = (seg**2).sum(-1)
    rel = points[:, None, :] - a[None]
    t = np.clip((rel * seg).sum(-1) / np.where(len2 > 0, len2, 1.0), 0.0, 1.0)
    return np.hypot(*(rel - t[..., None] * seg).transpose(2, 0, 1))


def _ring_contains(ring: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(N,) strict interior (shapely `contains`), with geometry's exact ray-crossing rule."""
    start, end = (torch.as_tensor(np.ascontiguousarray(e)) for e in _edges(ring))
    crosses, on_edge = ray_crossing(torch.as_tensor(np.ascontiguousarray(points, np.float64))[:, None], start, end)
    return ((crosses.sum(-1) % 2 == 1) & ~on_edge.any(-1)).numpy()


def _ring_point_distance(ring: np.ndarray, point: np.ndarray) -> float:
    """Distance from a point to a polygon [m]; 0 inside or on the boundary."""
    a, b = _edges(ring)
    if _ring_contains(ring, point[None])[0]:
        return 0.0
    return float(_point_segment_distance(point[None], a, b).min())


def _segments_cross(a0, a1, b0, b1) -> np.ndarray:
    """(Sa, Sb) whether segments a0->a1 and b0->b1 share a point (exact, touching included)."""
    a0, a1, b0, b1 = (torch.as_tensor(np.ascontiguousarray(v, np.float64)) for v in (a0, a1, b0, b1))
    return segments_intersect(a0[:, None], a1[:, None], b0[None], b1[None]).numpy()


def _rings_distance(ring_a: np.ndarray, ring_b: np.ndarray) -> float:
    """Distance between two polygons [m] (shapely `distance`); 0 when they intersect or touch."""
    a0, a1 = _edges(ring_a)
    b0, b1 = _edges(ring_b)
    if _segments_cross(a0, a1, b0, b1).any():
        return 0.0
    if _ring_contains(ring_b, a0[:1])[0] or _ring_contains(ring_a, b0[:1])[0]:
        return 0.0
    return float(min(_point_segment_distance(a0, b0, b1).min(), _point_segment_distance(b0, a0, a1).min()))


def _signed_area(ring: np.ndarray) -> float:
    a, b = _edges(ring)
    return 0.5 * float((a[:, 0] * b[:, 1] - b[:, 0] * a[:, 1]).sum())


def _overlap_area(ring_a: np.ndarray, ring_b: np.ndarray) -> float:
    """Area of the intersection of two simple polygons [m^2] (Green's theorem on its boundary).

    The boundary of A n B is the part of A's boundary inside B plus the part of B's boundary inside
    A (both counter-clockwise); a boundary stretch shared in the same direction is counted once.
    """
    origin = np.asarray(ring_a, np.float64)[0]
    rings = []
    for ring in (ring_a, ring_b):
        ring = np.asarray(ring, np.float64) - origin
        rings.append(ring if _signed_area(ring) >= 0 else ring[::-1])
    total = 0.0
    for own, other, keep_shared in ((rings[0], rings[1], True), (rings[1], rings[0], False)):
        o0, o1 = _edges(other)
        for p, q in zip(*_edges(own)):
            cuts = [0.0, 1.0] + _cut_parameters(p, q, o0, o1)
            cuts = np.unique(np.clip(cuts, 0.0, 1.0))
            starts, ends = p + cuts[:-1, None] * (q - p), p + cuts[1:, None] * (q - p)
            mids = (starts + ends) / 2
            # a midpoint within rounding of the other boundary lies on it (the keep_shared case below)
            inside = _ring_contains(other, mids) & (_point_segment_distance(mids, o0, o1).min(-1) > _EPS)
            if keep_shared:  # a stretch shared in the same direction bounds A n B once
                e, d = o1 - o0, q - p
                scale = np.hypot(*e.T) * math.hypot(*d) + _EPS
                same_way = (np.abs(e[:, 0] * d[1] - e[:, 1] * d[0]) <= 1e-9 * scale) & (e @ d > 0)
                on_edge = _point_segment_distance(mids, o0, o1) <= _EPS
                inside |= (on_edge & same_way[None]).any(-1)
            total += 0.5 * float((starts[inside, 0] * ends[inside, 1] - ends[inside, 0] * starts[inside, 1]).sum())
    return total


def _cut_parameters(p: np.ndarray, q: np.ndarray, o0: np.ndarray, o1: np.ndarray) -> list[float]:
    """Parameters t in [0, 1] along p->q where it meets the segments o0->o1 (collinear overlaps too)."""
    d = q - p
    e = o1 - o0
    denom = d[0] * e[:, 1] - d[1] * e[:, 0]
    rel = o0 - p
    cuts: list[float] = []
    regular = np.abs(denom) > _EPS
    t = np.where(regular, (rel[:, 0] * e[:, 1] - rel[:, 1] * e[:, 0]) / np.where(regular, denom, 1.0), 0.0)
    u = np.where(regular, (rel[:, 0] * d[1] - rel[:, 1] * d[0]) / np.where(regular, denom, 1.0), 0.0)
    hit = regular & (t >= -_EPS) & (t <= 1 + _EPS) & (u >= -_EPS) & (u <= 1 + _EPS)
    cuts += t[hit].tolist()
    d2 = float(d @ d)
    if d2 > 0:  # collinear segments: their end points cut p->q
        collinear = ~regular & (np.abs(rel[:, 0] * d[1] - rel[:, 1] * d[0]) <= _EPS * (1 + math.sqrt(d2)))
        for end in (o0[collinear], o1[collinear]):
            cuts += (((end - p) @ d) / d2).tolist()
    return cuts
