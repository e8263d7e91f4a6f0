"""Unprotected left turn: the ego turns left across a stream of oncoming traffic, at a T-junction
without signals or on a shared (permissive) green at a crossing, taking a gap of its choice.

Agents 1..n are the oncoming vehicles (constant speed, right of way). The human waits in the junction
with a timed stop until a gap lets it clear the crossing at its launch acceleration plus its margin.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np

from envs.sim.scene import Scene
from envs.sim.vehicle import PACIFICA
from scenarios import register
from scenarios.drive import Drive, LightCycle, Timeline, human_idm, path_plan, pose_on
from scenarios.family import (
    RangedParams, add_traffic, drive_planner, ego_plan, path_ahead, planned_scene, road_config, start_s, valid_map,
    vehicle_size,
)
from scenarios.junction import (
    crossing_movements, cycle_with_green, go_time, junction_route, lane_start, launch_time, turn_movements,
)
from scenarios.lanes import path_poses

CONFLICT_HALF = 3.0
"""[m] half the length of the conflict zone around the crossing point, along each path."""
LAUNCH_ACCEL = 1.5
"""[m/s^2] the acceleration the human counts on when it judges a gap."""


@dataclass(frozen=True)
class UnprotectedLeftParams(RangedParams):
    """Knobs of one unprotected-left scene."""

    junction: str = "t_junction"
    """"t_junction" (no signals on the main road) or "intersection" (left turns share the green)."""
    ego_speed: float = 6.0
    """[m/s] ego speed at t0."""
    wait_distance: float = 15.0
    """[m] from the ego front at t0 to where it waits, just past the stop line (go_time > 0 only)."""
    go_time: float = 0.5
    """[s] when the human leaves its wait point into the gap (t0 = 0; before t0 it waited there from
    the start of the drive)."""
    before: int = 2
    """Oncoming vehicles before the gap (their headways are too short to turn in)."""
    after: int = 2
    """Oncoming vehicles after the gap."""
    oncoming_speed: float = 11.0
    """[m/s] their speed."""
    headway_min: float = 1.5
    """[s] shortest headway between oncoming vehicles; each is drawn in [headway_min, headway_min + 2]."""
    critical_margin: float = 1.0
    """[s] spare time the human wants between clearing the crossing and the next arrival."""
    human_style: float = 0.5
    """Ego driver: 0 cautious .. 1 aggressive."""
    num_vehicles: int = 3
    """Background vehicles around the junction."""

    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {"junction": ("t_junction", "intersection")}
    RANGES: ClassVar[dict[str, tuple[float, float]]] = {
        "ego_speed": (3.0, 10.0), "wait_distance": (5.0, 30.0), "go_time": (-1.5, 3.5), "before": (0, 3),
        "after": (1, 3), "oncoming_speed": (7.0, 13.0), "headway_min": (1.2, 3.0), "critical_margin": (0.0, 2.5),
        "human_style": (0.0, 1.0), "num_vehicles": (0, 5),
    }


def _left_turns(gen) -> list[tuple[str, str, list]]:
    """(approach, left connector, straight connectors crossing it) with at least one crossing."""
    out = []
    for approach, connector in turn_movements(gen, "left"):
        if connector in gen.stop_sign_connectors:
            continue
        # the oncoming stream: straight movements from the opposite arm (heading reversed)
        heading = path_poses(gen.map.lanes_by_id[approach].centerline)[-1, 2]
        crossing = [c for c in crossing_movements(gen, connector, turn="straight")
                    if abs(math.remainder(path_poses(gen.map.lanes_by_id[c[0]].centerline)[0, 2] - heading,
                                          2 * math.pi)) > 2.6]
        if crossing:
            out.append((approach, connector, crossing))
    return out


@drive_planner("unprotected_left")
def plan(params: UnprotectedLeftParams, rng: np.random.Generator, timeline: Timeline, alert: bool) -> Drive:
    """Ego approaching a left turn; an oncoming stream crosses its connector; the human picks a gap."""
    gen = valid_map(params.junction, rng, road_config(timeline), accept=lambda g: bool(_left_turns(g)))
    signal_groups = {c: g % 2 for c, g in gen.signal_groups.items()}    # left turns on the through green
    gen = replace(gen, signal_groups=signal_groups)
    turns = _left_turns(gen)
    approach, connector, crossing = turns[int(rng.integers(len(turns)))]
    oncoming_conn, on_ego, on_other = crossing[int(rng.integers(len(crossing)))]
    v, v_on = params.ego_speed, params.oncoming_speed

    lanes = junction_route(gen, approach, connector, v * -timeline.start_s + 40.0, 8.0 * timeline.end_s + 40.0)
    entry = lane_start(gen, lanes, connector)
    conflict = entry + on_ego
    wait_at = min(entry + 2.0, conflict - CONFLICT_HALF - 1.0)          # front bumper, just past the line
    if params.go_time < 0.0:     # waiting at the line since the drive began, launched at go_time
        v, distance = 0.0, 0.0
        rear_s = wait_at - PACIFICA.front_length
        ready = timeline.start_s
    else:                         # approaching; no faster than it can stop from at 3 m/s^2
        distance = params.wait_distance
        v = min(v, math.sqrt(2.0 * 3.0 * distance))
        rear_s = wait_at - distance - PACIFICA.front_length
        ready = distance / max(v, 2.0) if distance > 0.5 else 0.0
    t_go = max(params.go_time, ready)

    # oncoming stream around the gap: arrivals at the crossing point, headways drawn per vehicle
    clear = launch_time(conflict + CONFLICT_HALF + PACIFICA.length - wait_at, 0.0, LAUNCH_ACCEL)
    margin = params.critical_margin + (1.5 if alert else 0.0)
    sizes = [vehicle_size(rng, van=0.1) for _ in range(params.before + params.after)]
    half = [(size[0] / 2 + CONFLICT_HALF) / v_on for size in sizes]
    headways = rng.uniform(params.headway_min, params.headway_min + 2.0, size=len(sizes))
    arrivals = []
    t = t_go - float(rng.uniform(0.0, 0.5))
    for k in reversed(range(params.before)):
        arrivals.insert(0, t - half[k])
        t -= headways[k]
    t = t_go + clear + margin + float(rng.uniform(0.0, 1.5))
    for k in range(params.before, len(sizes)):
        arrivals.append(t + half[k])
        t += headways[k]
    oncoming_approach = gen.map.lanes_by_id[oncoming_conn].predecessors[0]
    latest = max(arrivals, default=0.0)
    other_lanes = junction_route(gen, oncoming_approach, oncoming_conn,
                                 v_on * (latest - timeline.start_s) + 30.0, v_on * timeline.end_s + 40.0)
    other_conflict = lane_start(gen, other_lanes, oncoming_conn) + on_other
    plans, windows = [], []
    for arrival, size, occupied in zip(arrivals, sizes, half):
        s = start_s(other_conflict - v_on * arrival, v_on, timeline)
        if s < 1.0:
            continue
        plans.append(path_plan(gen, other_lanes, s, v_on, size, 1.0, ahead=path_ahead(timeline), is_reactive=False))
        windows.append((arrival - occupied, arrival + occupied))

    # the human waits at the line until the gap (oncoming vehicles skipped above leave it free)
    timed = ((wait_at, timeline.start_s - 1.0, go_time(windows, t_go, clear + margin)),)
    # wants 90% of each lane's limit: ~12 m/s on the approach, ~4.5 m/s in the turn
    limit = gen.map.lanes_by_id[lanes[0]].speed_limit or 13.9
    ego = ego_plan(gen, lanes, rear_s, v, 0.9 * min(limit, 15.0), timeline, timed_stops=timed)

    plans = [ego, *plans]
    ego_xy = pose_on(ego.path, ego.s)[:2]
    placed = [(ego_xy, 4.0)] + [(pose_on(p.path, p.s)[:2], p.size[0] / 2 + 1.0) for p in plans[1:]]
    add_traffic(gen, plans, placed, rng, params.num_vehicles, ego_xy, timeline, avoid_lanes={*lanes, *other_lanes})
    if gen.signal_groups:
        lights = cycle_with_green(gen.signal_groups.values(), gen.signal_groups[connector], timeline.start_s,
                                  timeline.end_s + 0.5, rng)
    else:
        lights = LightCycle((), (), 0.0)
    wander = (float(rng.uniform(0.0, 0.1)), float(rng.uniform(30.0, 80.0)), float(rng.uniform(0.0, 2 * math.pi)))
    return Drive(gen=gen, route_lane_ids=lanes, agents=tuple(plans), ego_params=human_idm(params.human_style),
                 lights=lights, wander=wander, timeline=timeline, key_agents=tuple(range(1, len(windows) + 1)))


@register("unprotected_left")
def build(params: UnprotectedLeftParams, rng: np.random.Generator) -> Scene:
    """A left turn across an oncoming stream, the human taking a gap."""
    return planned_scene(plan, params, rng, "unprotected_left")
