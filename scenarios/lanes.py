"""Lane geometry for building scenes: neighbour lanes, lane-change and nudge paths (smooth lateral
offsets of a centerline), connector turns, approach lanes and path crossings. Numpy, per scene."""

from __future__ import annotations

import math

import numpy as np
import torch

from envs.sim.geometry import ray_crossing
from envs.sim.map import Lane, RoadMap
from envs.sim.route import path_project

TURNS = ("straight", "left", "right")
"""Connector turn kinds (`connector_turn`)."""


def arc_lengths(path: np.ndarray) -> np.ndarray:
    """(P,) cumulative arc length [m] of the vertices of a (P, 2) polyline."""
    path = np.asarray(path, np.float64)
    return np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(path, axis=0).T))])


def points_at(path: np.ndarray, s: np.ndarray, lateral: np.ndarray | float = 0.0) -> np.ndarray:
    """(N, 2) points at arc lengths s (N,) [m] on a (P, 2) polyline, shifted `lateral` [m] to the left
    (positive) of its direction; s is clipped to the polyline."""
    path = np.asarray(path, np.float64)
    arc = arc_lengths(path)
    s = np.clip(np.asarray(s, np.float64), 0.0, arc[-1])
    segment = np.clip(np.searchsorted(arc, s, side="right") - 1, 0, len(path) - 2)
    step = path[segment + 1] - path[segment]
    length = np.maximum(np.hypot(*step.T), 1e-12)
    along = (s - arc[segment]) / length
    direction = step / length[:, None]
    normal = np.stack([-direction[:, 1], direction[:, 0]], -1)
    return path[segment] + along[:, None] * step + np.asarray(lateral, np.float64)[..., None] * normal


def path_poses(path: np.ndarray) -> np.ndarray:
    """(P, 3) x, y [m] and heading [rad] of a (P, 2) polyline (heading to the next vertex; the last
    vertex repeats the previous one), the form of a lane baseline."""
    path = np.asarray(path, np.float64)
    step = np.diff(path, axis=0)
    heading = np.arctan2(step[:, 1], step[:, 0])
    return np.concatenate([path, np.append(heading, heading[-1])[:, None]], 1)


def smoothstep(x: np.ndarray) -> np.ndarray:
    """Quintic 0 -> 1 ramp on [0, 1] (zero slope and curvature at both ends); clipped outside."""
    x = np.clip(np.asarray(x, np.float64), 0.0, 1.0)
    return x ** 3 * (10.0 - 15.0 * x + 6.0 * x ** 2)


def offset_profile(s: np.ndarray, knots) -> np.ndarray:
    """Lateral offset [m] at arc lengths s (N,): `knots` ((s_0, d_0), (s_1, d_1), ...) with increasing
    s_i; constant d_0 before s_0 and d_last after the last knot, `smoothstep` blends in between."""
    knots = [(float(a), float(d)) for a, d in knots]
    if not knots or any(b[0] <= a[0] for a, b in zip(knots, knots[1:])):
        raise ValueError(f"knots={knots!r}: need >= 1 knot with strictly increasing arc lengths")
    s = np.asarray(s, np.float64)
    out = np.full(s.shape, knots[0][1])
    for (s0, d0), (s1, d1) in zip(knots, knots[1:]):
        inside = s >= s0
        out = np.where(inside, d0 + (d1 - d0) * smoothstep((s - s0) / (s1 - s0)), out)
    return out


def shift_path(path: np.ndarray, knots, spacing: float = 1.0) -> np.ndarray:
    """(Q, 2) the polyline shifted left by `offset_profile(s, knots)`, resampled every `spacing` [m]
    where the offset changes (a lane change or nudge with the same arc length parametrisation)."""
    path = np.asarray(path, np.float64)
    arc = arc_lengths(path)
    first, last = float(knots[0][0]), float(knots[-1][0])
    extra = np.arange(max(first, 0.0), min(last, arc[-1]), spacing)
    at_knots = np.clip([float(k[0]) for k in knots], 0.0, arc[-1])
    s = np.unique(np.concatenate([arc, extra, at_knots]))
    points = points_at(path, s, offset_profile(s, knots))
    keep = np.concatenate([[True], np.hypot(*np.diff(points, axis=0).T) > 1e-6])
    return points[keep]


def lane_offset(road_map: RoadMap, lane_id: str, other_id: str) -> float:
    """Signed lateral distance [m] of lane `other_id`'s centerline from lane `lane_id`'s (left > 0),
    measured at the middle of `other_id`."""
    line = np.asarray(road_map.lanes_by_id[lane_id].centerline, np.float64)
    other = np.asarray(road_map.lanes_by_id[other_id].centerline, np.float64)
    middle = other[len(other) // 2]
    s = path_project(line, middle[None])[0]
    foot, ahead = points_at(line, np.array([s, s + 0.5]))
    direction = (ahead - foot) / max(float(np.hypot(*(ahead - foot))), 1e-12)
    rel = middle - foot
    return float(direction[0] * rel[1] - direction[1] * rel[0])


def neighbour_lane(road_map: RoadMap, lane_id: str, side: int) -> str | None:
    """The lane next to `lane_id` in its roadblock on the left (side = +1) or right (side = -1)."""
    if side not in (1, -1):
        raise ValueError(f"side={side!r}: must be +1 (left) or -1 (right)")
    lane = road_map.lanes_by_id[lane_id]
    siblings = [i for i in road_map.roadblock_lane_ids.get(lane.roadblock_id, ()) if i != lane_id]
    offsets = {i: side * lane_offset(road_map, lane_id, i) for i in siblings}
    beside = [i for i, d in offsets.items() if d > 0.5]
    return min(beside, key=offsets.__getitem__) if beside else None


def parallel_lanes(road_map: RoadMap, lane_ids, side: int) -> tuple[str, ...] | None:
    """Neighbour of every lane of a lane sequence on one side (None if any lane has none there)."""
    out = tuple(neighbour_lane(road_map, i, side) for i in lane_ids)
    return None if any(i is None for i in out) else out


def lane_count_beside(road_map: RoadMap, lane_id: str, side: int) -> int:
    """How many lanes lie beside `lane_id` on one side (+1 left, -1 right) in its roadblock."""
    count, current = 0, neighbour_lane(road_map, lane_id, side)
    while current is not None:
        count, current = count + 1, neighbour_lane(road_map, current, side)
    return count


def connector_turn(lane: Lane) -> str:
    """"left", "right" or "straight": the heading change along a lane (connector) beyond 45 degrees."""
    poses = path_poses(lane.centerline)
    change = math.remainder(float(poses[-2, 2] - poses[0, 2]), 2 * math.pi)
    return "left" if change > math.pi / 4 else "right" if change < -math.pi / 4 else "straight"


def approach_lanes(road_map: RoadMap, lane_id: str, length: float) -> tuple[str, ...]:
    """`lane_id` preceded by its (first) predecessors until they cover `length` [m] before it."""
    lanes, covered = [lane_id], 0.0
    while covered < length:
        before = [p for p in road_map.lanes_by_id[lanes[0]].predecessors if p in road_map.lanes_by_id]
        if not before or before[0] in lanes:
            break
        lanes.insert(0, before[0])
        covered += float(arc_lengths(road_map.lanes_by_id[before[0]].centerline)[-1])
    return tuple(lanes)


def follow_lanes(road_map: RoadMap, lane_ids, length: float) -> tuple[str, ...]:
    """The lane sequence extended by (first) successors until it is `length` [m] long or dead-ends."""
    lanes = list(lane_ids)
    total = sum(float(arc_lengths(road_map.lanes_by_id[i].centerline)[-1]) for i in lanes)
    while total < length:
        after = [n for n in road_map.lanes_by_id[lanes[-1]].successors if n in road_map.lanes_by_id]
        if not after or after[0] in lanes:
            break
        lanes.append(after[0])
        total += float(arc_lengths(road_map.lanes_by_id[after[0]].centerline)[-1])
    return tuple(lanes)


def path_crossing(a: np.ndarray, b: np.ndarray) -> tuple[float, float] | None:
    """(arc length on a, arc length on b) [m] of the first point of a that crosses polyline b, or None."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    p, r = a[:-1], np.diff(a, axis=0)                     # (Sa, 2)
    q, u = b[:-1], np.diff(b, axis=0)                     # (Sb, 2)
    cross = r[:, None, 0] * u[None, :, 1] - r[:, None, 1] * u[None, :, 0]
    rel = q[None] - p[:, None]
    safe = np.where(np.abs(cross) > 1e-12, cross, 1.0)
    t = (rel[..., 0] * u[None, :, 1] - rel[..., 1] * u[None, :, 0]) / safe
    v = (rel[..., 0] * r[:, None, 1] - rel[..., 1] * r[:, None, 0]) / safe
    hit = (np.abs(cross) > 1e-12) & (t >= 0) & (t <= 1) & (v >= 0) & (v <= 1)
    if not hit.any():
        return None
    i, j = np.argwhere(hit)[np.argmin(np.where(hit, np.arange(len(p))[:, None] + t, np.inf)[hit])]
    arc_a, arc_b = arc_lengths(a), arc_lengths(b)
    return (float(arc_a[i] + t[i, j] * np.hypot(*r[i])), float(arc_b[j] + v[i, j] * np.hypot(*u[j])))


def in_drivable_area(road_map: RoadMap, points: np.ndarray) -> np.ndarray:
    """(N,) bool: point (N, 2) [m] strictly inside some roadblock, intersection or car park (the areas
    NAVSIM's DAC accepts)."""
    points = torch.as_tensor(np.asarray(points, np.float64)).reshape(-1, 2)
    inside = torch.zeros(len(points), dtype=torch.bool)
    for area in (*road_map.roadblocks, *road_map.intersections, *road_map.carparks):
        ring = torch.as_tensor(np.asarray(area.polygon, np.float64))
        crosses, on_edge = ray_crossing(points[:, None], ring, torch.roll(ring, -1, 0))
        inside |= (crosses.sum(-1) % 2 == 1) & ~on_edge.any(-1)
    return inside.numpy()


def road_span(road_map: RoadMap, path: np.ndarray, s: float, reach: float = 30.0,
              step: float = 0.25) -> tuple[float, float]:
    """(right, left) lateral offsets [m] of the drivable edges across a (P, 2) path at arc length s
    (the contiguous drivable stretch of the normal through the path point, `step` resolution)."""
    lateral = np.arange(-reach, reach + step / 2, step)
    inside = in_drivable_area(road_map, points_at(path, np.full(len(lateral), s), lateral))
    centre = len(lateral) // 2
    if not inside[centre]:
        raise ValueError(f"s={s!r}: the path point is not in the drivable area")
    outside = np.flatnonzero(~inside)
    right = outside[outside < centre].max(initial=-1) + 1
    left = outside[outside > centre].min(initial=len(lateral)) - 1
    return float(lateral[right]), float(lateral[left])
