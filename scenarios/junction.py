"""Junction set-ups for the families that drive through one: routes by turn, conflicting movements,
signal plans with a chosen green window, and gap acceptance (when a yielding human may go)."""

from __future__ import annotations

import math

import numpy as np

from envs.sim.mapgen import GeneratedMap
from scenarios.drive import ALL_RED_S, GREEN_RANGE_S, YELLOW_S, LightCycle, concat_lanes
from scenarios.lanes import approach_lanes, connector_turn, follow_lanes, path_crossing


def turn_movements(gen: GeneratedMap, turn: str) -> list[tuple[str, str]]:
    """(approach lane, connector) pairs of the map whose connector makes `turn` ("straight", "left",
    "right"), in map order."""
    lanes = gen.map.lanes_by_id
    return [(lane.id, c) for lane in gen.map.lanes for c in lane.successors
            if c in lanes and lanes[c].is_connector and connector_turn(lanes[c]) == turn]


def junction_route(gen: GeneratedMap, approach: str, connector: str, behind: float, ahead: float) -> tuple[str, ...]:
    """Lane sequence: >= `behind` [m] of lanes before `approach`, the connector, then >= `ahead` [m]
    of lanes after it (or until the map ends)."""
    before = approach_lanes(gen.map, approach, behind)
    exit_lane = gen.map.lanes_by_id[connector].successors[0]
    return before + (connector,) + follow_lanes(gen.map, (exit_lane,), ahead)


def lane_start(gen: GeneratedMap, lane_ids, lane_id: str) -> float:
    """Arc length [m] where `lane_id` starts along the lane sequence."""
    _, starts = concat_lanes(gen.map, lane_ids)
    return starts[list(lane_ids).index(lane_id)][0]


def crossing_movements(gen: GeneratedMap, connector: str, turn: str | None = None) -> list[tuple[str, float, float]]:
    """Connectors whose centerline crosses `connector`'s (other approaches only; `turn` filters them):
    (connector id, arc length of the crossing on `connector`, arc length on the other) [m]."""
    lanes = gen.map.lanes_by_id
    own = lanes[connector]
    out = []
    for other in gen.map.lane_connectors:
        if other.id == connector or set(other.predecessors) & set(own.predecessors):
            continue
        if turn is not None and connector_turn(other) != turn:
            continue
        hit = path_crossing(own.centerline, other.centerline)
        if hit is not None:
            out.append((other.id, *hit))
    return out


def cycle_with_green(groups, group: int, t_from: float, t_to: float, rng: np.random.Generator) -> LightCycle:
    """A fixed-time plan over `groups` in which `group` is green from t_from to t_to [s] (at a random
    point of its green, which lasts at least that long plus 1 s); the other greens as `LightCycle.sample`."""
    order = tuple(sorted(set(int(g) for g in groups)))
    if group not in order:
        raise ValueError(f"group={group!r}: not among the signal groups {order}")
    span = t_to - t_from
    green = [float(g) for g in rng.uniform(*GREEN_RANGE_S, size=len(order))]
    k = order.index(group)
    green[k] = max(green[k], span + 1.0)
    start = sum(green[:k]) + k * (YELLOW_S + ALL_RED_S)
    cycle = sum(green) + len(order) * (YELLOW_S + ALL_RED_S)
    into = float(rng.uniform(0.0, green[k] - span))
    return LightCycle(order, tuple(green), float((start + into - t_from) % cycle))


def go_time(windows, ready: float, needed: float) -> float:
    """Earliest time t >= ready [s] such that [t, t + needed] overlaps none of the occupied `windows`
    ((start, end) [s] each): when a yielding driver can take the gap."""
    t = ready
    for start, end in sorted(windows):
        if t + needed <= start:
            return t
        t = max(t, end)
    return t


def launch_time(distance: float, speed: float, accel: float) -> float:
    """[s] to cover `distance` [m] from `speed` [m/s] accelerating at `accel` [m/s^2]."""
    return (-speed + math.sqrt(speed * speed + 2.0 * accel * max(distance, 0.0))) / accel
