"""Lane change: a slower vehicle ahead in the ego lane; the human moves to the next lane to pass it.

Agent 1 is the slow lead (constant speed). Vehicles in the target lane leave a gap; the ones behind
react to the ego once it enters their lane. Roads with 2-4 lanes per direction.
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
    RangedParams, add_traffic, drive_planner, ego_plan, lane_change_path, lane_traffic, matching_arc, path_ahead,
    planned_scene, road_config, road_drive_start, start_s, vehicle_size,
)
from scenarios.lanes import parallel_lanes, path_poses

SIDES = {"left": 1, "right": -1}


@dataclass(frozen=True)
class LaneChangeParams(RangedParams):
    """Knobs of one lane-change scene."""

    road: str = "straight"
    """Map kind: "straight" or "curved"."""
    side: str = "left"
    """Preferred side of the change (the other one when there is no lane there)."""
    ego_speed: float = 12.0
    """[m/s] ego speed at t0."""
    lead_speed_ratio: float = 0.5
    """Slow lead's speed as a fraction of ego_speed."""
    lead_gap: float = 25.0
    """[m] bumper-to-bumper gap to the slow lead at t0."""
    change_start: float = 0.5
    """[s] when the ego starts moving over (t0 = 0; negative: already changing), at its t0 speed."""
    change_duration: float = 4.0
    """[s] duration of the lateral move at the t0 speed."""
    target_traffic: int = 1
    """Vehicles in the target lane (one behind, then one ahead), leaving a gap for the ego."""
    num_vehicles: int = 3
    """Background vehicles on other lanes."""
    human_style: float = 0.5
    """Ego driver: 0 cautious .. 1 aggressive."""

    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {"road": ("straight", "curved"), "side": ("left", "right")}
    RANGES: ClassVar[dict[str, tuple[float, float]]] = {
        "ego_speed": (7.0, 15.0), "lead_speed_ratio": (0.2, 0.7), "lead_gap": (8.0, 35.0),
        "change_start": (-1.0, 1.0), "change_duration": (3.5, 5.5), "target_traffic": (0, 2),
        "num_vehicles": (0, 5), "human_style": (0.0, 1.0),
    }


def has_neighbour(gen, lanes) -> bool:
    """Does the lane sequence have a neighbour sequence on some side?"""
    return any(parallel_lanes(gen.map, lanes, side) is not None for side in (1, -1))


@drive_planner("lane_change")
def plan(params: LaneChangeParams, rng: np.random.Generator, timeline: Timeline, alert: bool) -> Drive:
    """Ego behind a slow lead on a multi-lane road; its path changes lane before reaching the lead."""
    v = params.ego_speed
    gen, lanes, rear_s = road_drive_start(params.road, rng, road_config(timeline, lanes=(2, 4)),
                                          v * -timeline.start_s + 10.0, v * (timeline.end_s + 1.0) + 80.0,
                                          accept=has_neighbour)
    side = SIDES[params.side] if parallel_lanes(gen.map, lanes, SIDES[params.side]) else -SIDES[params.side]

    lead_size = vehicle_size(rng, van=0.4)
    v_lead = params.lead_speed_ratio * v
    front = rear_s + PACIFICA.front_length
    # the move is 60% done (the lead out of the ego corridor) before the gap closes to 4 m
    closing = max(v - v_lead, 0.1)
    change_start = params.change_start if not alert else -1.0
    change_start = max(-1.5, min(change_start, (params.lead_gap - 4.0) / closing - 0.6 * params.change_duration))
    s_change = rear_s + PACIFICA.rear_axle_to_center + v * change_start
    path, target, _ = lane_change_path(gen, lanes, side, s_change, v * params.change_duration)
    ego = ego_plan(gen, lanes, rear_s, v, v, timeline, path=path)

    lead_t0 = front + params.lead_gap + lead_size[0] / 2
    lead = path_plan(gen, lanes, start_s(lead_t0, v_lead, timeline), v_lead, lead_size, 1.0,
                     ahead=path_ahead(timeline), is_reactive=False)
    plans = [ego, lead]
    ego_xy = pose_on(ego.path, ego.s)[:2]
    placed = [(ego_xy, 4.0), (pose_on(lead.path, lead.s)[:2], lead_size[0] / 2 + 1.0)]
    centre = rear_s + PACIFICA.rear_axle_to_center
    here = matching_arc(gen, lanes, centre, target)
    slots = [(here - float(rng.uniform(22.0, 45.0)), v * float(rng.uniform(0.8, 1.0))),
             (here + float(rng.uniform(40.0, 70.0)), v * float(rng.uniform(0.95, 1.15)))]
    lane_traffic(gen, target, plans, placed, rng, slots[:params.target_traffic], timeline)
    add_traffic(gen, plans, placed, rng, params.num_vehicles, ego_xy, timeline, avoid_lanes={*lanes, *target})
    wander = (float(rng.uniform(0.0, 0.1)), float(rng.uniform(30.0, 80.0)), float(rng.uniform(0.0, 2 * math.pi)))
    return Drive(gen=gen, route_lane_ids=lanes, agents=tuple(plans), ego_params=human_idm(params.human_style),
                 lights=LightCycle((), (), 0.0), wander=wander, timeline=timeline, ego_baseline=path_poses(path),
                 key_agents=(1,))


@register("lane_change")
def build(params: LaneChangeParams, rng: np.random.Generator) -> Scene:
    """A slow lead and a human that changes lane to pass it."""
    return planned_scene(plan, params, rng, "lane_change")
