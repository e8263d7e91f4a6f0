"""Blocked lane: a stopped vehicle, truck or debris sits in the ego lane; the human changes lane to pass.

Agent 1 is the blocker (static). The human's path completes its lane change a few metres before the
blocker; vehicles in the target lane leave a gap. Roads with 2-4 lanes per direction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from envs.sim.scene import AgentType, Scene
from envs.sim.vehicle import PACIFICA
from scenarios import register
from scenarios.drive import Drive, LightCycle, Timeline, concat_lanes, human_idm, pose_on
from scenarios.family import (
    RangedParams, add_traffic, drive_planner, ego_plan, lane_change_path, lane_traffic, matching_arc, planned_scene,
    road_config, road_drive_start, slow_zone, stationary,
)
from scenarios.lane_change import SIDES, has_neighbour
from scenarios.lanes import parallel_lanes, path_poses, points_at

BLOCKER_SIZES = {"vehicle": ((4.2, 5.2), (1.8, 2.1)), "truck": ((7.0, 10.0), (2.4, 2.6)),
                 "debris": ((0.8, 2.0), (0.8, 2.0))}
"""(length range, width range) [m] per blocker kind."""


@dataclass(frozen=True)
class BlockedLaneParams(RangedParams):
    """Knobs of one blocked-lane scene."""

    road: str = "straight"
    """Map kind: "straight" or "curved"."""
    side: str = "left"
    """Preferred side to pass on (the other one when there is no lane there)."""
    blocker: str = "vehicle"
    """"vehicle" (broken down), "truck" (delivering) or "debris" (a generic object)."""
    ego_speed: float = 10.0
    """[m/s] ego speed at t0."""
    blocker_time: float = 3.0
    """[s] bumper gap from the ego to the blocker at t0, over ego_speed (constant velocity would hit it
    in this time; the human is braking by then)."""
    pass_speed: float = 0.6
    """Speed the human slows to (anticipating at 1.5 m/s^2) to swing around the blocker, as a fraction
    of ego_speed."""
    change_length: float = 20.0
    """[m] along the lane of the lateral move."""
    change_margin: float = 5.0
    """[m] the lateral move ends this far (ego front) before the blocker."""
    target_traffic: int = 1
    """Vehicles in the target lane (one behind, then one ahead), leaving a gap for the ego."""
    num_vehicles: int = 3
    """Background vehicles on other lanes."""
    human_style: float = 0.5
    """Ego driver: 0 cautious .. 1 aggressive."""

    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {
        "road": ("straight", "curved"), "side": ("left", "right"), "blocker": ("vehicle", "truck", "debris")}
    RANGES: ClassVar[dict[str, tuple[float, float]]] = {
        "ego_speed": (5.0, 14.0), "blocker_time": (1.8, 4.0), "pass_speed": (0.3, 0.8),
        "change_length": (12.0, 25.0), "change_margin": (2.0, 8.0), "target_traffic": (0, 2), "num_vehicles": (0, 5),
        "human_style": (0.0, 1.0),
    }


@drive_planner("blocked_lane")
def plan(params: BlockedLaneParams, rng: np.random.Generator, timeline: Timeline, alert: bool) -> Drive:
    """Ego on a multi-lane road, a static blocker ahead in its lane, a lane change that passes it."""
    v = params.ego_speed
    gen, lanes, rear_s = road_drive_start(params.road, rng, road_config(timeline, lanes=(2, 4)),
                                          v * -timeline.start_s + 10.0, v * (timeline.end_s + 1.0) + 60.0,
                                          accept=has_neighbour)
    side = SIDES[params.side] if parallel_lanes(gen.map, lanes, SIDES[params.side]) else -SIDES[params.side]

    (length_range, width_range) = BLOCKER_SIZES[params.blocker]
    size = (float(rng.uniform(*length_range)), float(rng.uniform(*width_range)))
    # the move (box centre arc lengths) ends change_margin before the blocker, starting at most 0.5 s
    # before t0; the human slows to pass_speed from its start until past the blocker
    centre = rear_s + PACIFICA.rear_axle_to_center
    block_s = rear_s + PACIFICA.front_length + max(params.blocker_time * v, 12.0) + size[0] / 2
    change_end = block_s - size[0] / 2 - params.change_margin - PACIFICA.length / 2
    change_start = max(change_end - params.change_length, centre - 0.5 * v)
    change_end = max(change_end, change_start + 12.0)
    path, target, offset = lane_change_path(gen, lanes, side, change_start, change_end - change_start)
    ego = ego_plan(gen, lanes, rear_s, v, v, timeline, path=path)
    ego = slow_zone(ego, change_start, block_s + size[0] / 2 + 5.0, params.pass_speed * v)

    lane_path, _ = concat_lanes(gen.map, lanes)
    # blockers stand a little towards the kerb side (away from the passing side)
    shift = -np.sign(offset) * float(rng.uniform(0.0, 0.4))
    xy = points_at(lane_path, np.array([block_s]), shift)[0]
    heading = float(pose_on(lane_path, block_s)[2]) + float(rng.uniform(-0.1, 0.1))
    kind = AgentType.GENERIC_OBJECT if params.blocker == "debris" else AgentType.VEHICLE
    plans = [ego, stationary(xy, heading, size, kind)]
    ego_xy = pose_on(ego.path, ego.s)[:2]
    placed = [(ego_xy, 4.0), (xy, size[0] / 2 + 1.0)]
    if kind == AgentType.VEHICLE and rng.random() < 0.4:   # a warning triangle / cone behind it
        cone_s = block_s - size[0] / 2 - float(rng.uniform(3.0, 8.0))
        plans.append(stationary(points_at(lane_path, np.array([cone_s]), shift)[0], heading, (0.5, 0.5),
                                AgentType.TRAFFIC_CONE))
    here = matching_arc(gen, lanes, centre, target)
    slots = [(here - float(rng.uniform(25.0, 45.0)), v * float(rng.uniform(0.8, 1.0))),
             (here + float(rng.uniform(45.0, 80.0)), max(v, 8.0) * float(rng.uniform(0.95, 1.15)))]
    lane_traffic(gen, target, plans, placed, rng, slots[:params.target_traffic], timeline)
    add_traffic(gen, plans, placed, rng, params.num_vehicles, ego_xy, timeline, avoid_lanes={*lanes, *target})
    wander = (float(rng.uniform(0.0, 0.1)), float(rng.uniform(30.0, 80.0)), float(rng.uniform(0.0, 2 * math.pi)))
    return Drive(gen=gen, route_lane_ids=lanes, agents=tuple(plans), ego_params=human_idm(params.human_style),
                 lights=LightCycle((), (), 0.0), wander=wander, timeline=timeline, ego_baseline=path_poses(path),
                 key_agents=(1,))


@register("blocked_lane")
def build(params: BlockedLaneParams, rng: np.random.Generator) -> Scene:
    """A static blocker in the ego lane and a human that changes lane to pass it."""
    return planned_scene(plan, params, rng, "blocked_lane")
