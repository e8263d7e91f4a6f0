"""On-ramp merge: the ego comes down a curved ramp and merges into the right lane of a main road with
traffic; it yields (slows, or stops at the end of the merge lane) until a gap opens.

Agents 1..n are the main-lane vehicles around the merge point (reactive: the one behind the gap the
ego takes brakes for it once it is in its lane).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from envs.sim.scene import Scene
from envs.sim.vehicle import PACIFICA
from scenarios import register
from scenarios.drive import Drive, LightCycle, Timeline, human_idm, path_plan, pose_on
from scenarios.family import (
    RangedParams, add_traffic, drive_planner, ego_plan, lanes_length, path_ahead, planned_scene, road_config,
    start_s, valid_map, vehicle_size,
)
from scenarios.junction import junction_route, lane_start, launch_time
from scenarios.lanes import approach_lanes, follow_lanes

MERGE_HALF = 4.0
"""[m] half the length of the merge point's conflict zone along the main lane."""
LAUNCH_ACCEL = 1.5
"""[m/s^2] the acceleration a yielding human counts on to reach the merge point."""


@dataclass(frozen=True)
class MergeParams(RangedParams):
    """Knobs of one on-ramp merge scene."""

    ego_speed: float = 10.0
    """[m/s] ego speed at t0 on the ramp."""
    merge_time: float = 2.5
    """[s] when the ego front would reach the merge point at constant speed."""
    slot_delay: float = 0.0
    """[s] how much later than that the gap the human takes passes the merge point; the human yields at
    the start of the merge lane for it (when it can still stop there; else it takes the gap at hand)."""
    before: int = 2
    """Main-lane vehicles passing the merge point before the gap."""
    after: int = 2
    """Main-lane vehicles after the gap."""
    main_speed: float = 12.0
    """[m/s] main-lane traffic speed."""
    headway_min: float = 1.0
    """[s] shortest headway in the main lane; each is drawn in [headway_min, headway_min + 2]."""
    critical_margin: float = 0.8
    """[s] spare time the human wants before and after its slot."""
    human_style: float = 0.5
    """Ego driver: 0 cautious .. 1 aggressive."""
    num_vehicles: int = 2
    """Background vehicles on other lanes."""

    RANGES: ClassVar[dict[str, tuple[float, float]]] = {
        "ego_speed": (6.0, 14.0), "merge_time": (1.0, 4.5), "slot_delay": (0.0, 4.0), "before": (0, 3),
        "after": (1, 3), "main_speed": (8.0, 15.0), "headway_min": (0.8, 2.5), "critical_margin": (0.3, 1.5),
        "human_style": (0.0, 1.0), "num_vehicles": (0, 4),
    }


def _ramp(gen) -> tuple[str, str, str]:
    """(ramp lane before the merge connector, the connector, the main lane it joins)."""
    connector = gen.map.lane_connectors[0]
    return connector.predecessors[0], connector.id, connector.successors[0]


@drive_planner("merge")
def plan(params: MergeParams, rng: np.random.Generator, timeline: Timeline, alert: bool) -> Drive:
    """Ego on the on-ramp, main-lane traffic around a gap at the merge point; the human takes the gap."""
    gen = valid_map("merge", rng, road_config(timeline))
    ramp_lane, connector, main_lane = _ramp(gen)
    v, v_main = params.ego_speed, params.main_speed
    lanes = junction_route(gen, ramp_lane, connector, 200.0, v_main * timeline.end_s + 60.0)
    merge_at = lane_start(gen, lanes, main_lane)                        # the ramp's end joins the main lane
    front = max(merge_at - v * params.merge_time, v * -timeline.start_s + PACIFICA.length + 2.0)
    rear_s = front - PACIFICA.front_length
    arrive = (merge_at - front) / v
    margin = params.critical_margin + (1.0 if alert else 0.0)

    # the human's slot at the merge point: as it comes, or later after yielding at the merge lane's start
    stop_at = lane_start(gen, lanes, connector) + 2.0                    # a lane width off the main lane
    can_yield = front + v * v / (2 * 2.5) < stop_at
    timed = ()
    if params.slot_delay > 0.3 and can_yield:
        launch = launch_time(merge_at - stop_at, 0.0, LAUNCH_ACCEL)
        slot = max(arrive + params.slot_delay, (stop_at - front) / v + launch)
        passing = (PACIFICA.length + 2 * MERGE_HALF) / math.sqrt(2.0 * LAUNCH_ACCEL * (merge_at - stop_at))
        timed = ((stop_at, timeline.start_s - 1.0, slot - launch),)
    else:
        slot, passing = arrive, (PACIFICA.length + 2 * MERGE_HALF) / v

    # main-lane vehicles passing the merge point before and after the slot (constant speed there)
    sizes = [vehicle_size(rng, van=0.15) for _ in range(params.before + params.after)]
    half = [(size[0] / 2 + MERGE_HALF) / v_main for size in sizes]
    headways = rng.uniform(params.headway_min, params.headway_min + 2.0, size=len(sizes))
    arrivals, t = [], slot - margin - float(rng.uniform(0.0, 0.5))
    for k in reversed(range(params.before)):
        arrivals.insert(0, t - half[k])
        t -= headways[k] + 2 * half[k]
    t = slot + passing + margin + float(rng.uniform(0.0, 1.5))
    for k in range(params.before, len(sizes)):
        arrivals.append(t + half[k])
        t += headways[k] + 2 * half[k]
    main_lanes = follow_lanes(gen.map, approach_lanes(gen.map, main_lane, 1e9), 1e9)
    main_merge = lane_start(gen, main_lanes, main_lane)
    limit = min(gen.map.lanes_by_id[main_lane].speed_limit or 15.0, 15.0)
    plans = []
    for arrival, size in zip(arrivals, sizes):
        s0 = main_merge - v_main * arrival
        s = start_s(s0, v_main, timeline)
        if s >= 1.0 and s0 < lanes_length(gen, main_lanes) - 30.0:
            plans.append(path_plan(gen, main_lanes, s, v_main, size, min(1.0, v_main / limit),
                                   ahead=path_ahead(timeline)))
    key = len(plans)
    ego = ego_plan(gen, lanes, rear_s, v, v, timeline, timed_stops=timed)
    plans = [ego, *plans]
    ego_xy = pose_on(ego.path, ego.s)[:2]
    placed = [(ego_xy, 4.0)] + [(pose_on(p.path, p.s)[:2], p.size[0] / 2 + 1.0) for p in plans[1:]]
    add_traffic(gen, plans, placed, rng, params.num_vehicles, ego_xy, timeline, avoid_lanes={*lanes, *main_lanes})
    wander = (float(rng.uniform(0.0, 0.1)), float(rng.uniform(30.0, 80.0)), float(rng.uniform(0.0, 2 * math.pi)))
    return Drive(gen=gen, route_lane_ids=lanes, agents=tuple(plans), ego_params=human_idm(params.human_style),
                 lights=LightCycle((), (), 0.0), wander=wander, timeline=timeline, key_agents=tuple(range(1, key + 1)))


@register("merge")
def build(params: MergeParams, rng: np.random.Generator) -> Scene:
    """An on-ramp merge into main-lane traffic, the human taking a gap."""
    return planned_scene(plan, params, rng, "merge")
