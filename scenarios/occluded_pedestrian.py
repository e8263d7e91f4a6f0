"""Occluded pedestrian: someone steps out from in front of a van parked at the kerb, into the ego lane.

Agent 1 is the pedestrian, agent 2 the van (more parked cars may stand behind it). The human notices
the pedestrian only once it clears the van's road-side edge, then reacts: the hard cases are real.
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
    ALERT_REACTION_S, RangedParams, add_traffic, drive_planner, ego_plan, planned_scene, road_config,
    road_drive_start, stationary,
)
from scenarios.jaywalker import CLEAR_MARGIN, alert_idm, crossing_pedestrian
from scenarios.lanes import lane_count_beside, points_at, road_span


@dataclass(frozen=True)
class OccludedPedestrianParams(RangedParams):
    """Knobs of one occluded-pedestrian scene."""

    road: str = "straight"
    """Map kind: "straight" or "curved"."""
    ego_speed: float = 9.0
    """[m/s] ego speed at t0."""
    arrive_time: float = 2.5
    """[s] when the ego front would reach the crossing at constant speed."""
    offset: float = 0.0
    """[s] when the pedestrian is on the ego lane centre, relative to arrive_time."""
    pedestrian_speed: float = 1.8
    """[m/s] walking (1) to a running child (3.5)."""
    reaction: float = 0.7
    """[s] the human's reaction time once the pedestrian is visible."""
    van_length: float = 7.0
    """[m] the parked van (or truck)."""
    kerb_gap: float = 0.3
    """[m] between the road edge and the parked vehicles."""
    parked_behind: int = 1
    """Parked cars behind the van."""
    human_style: float = 0.5
    """Ego driver: 0 cautious .. 1 aggressive."""
    num_vehicles: int = 2
    """Background vehicles on other lanes."""

    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {"road": ("straight", "curved")}
    RANGES: ClassVar[dict[str, tuple[float, float]]] = {
        "ego_speed": (5.0, 13.0), "arrive_time": (1.2, 3.5), "offset": (-0.6, 0.8), "pedestrian_speed": (1.0, 3.5),
        "reaction": (0.3, 1.2), "van_length": (5.5, 9.0), "kerb_gap": (0.1, 0.6), "parked_behind": (0, 3),
        "human_style": (0.0, 1.0), "num_vehicles": (0, 4),
    }


@drive_planner("occluded_pedestrian")
def plan(params: OccludedPedestrianParams, rng: np.random.Generator, timeline: Timeline, alert: bool) -> Drive:
    """Ego in the kerb-side lane; a pedestrian emerges from in front of a parked van into its path."""
    v = params.ego_speed
    gen, lanes, rear_s = road_drive_start(params.road, rng, road_config(timeline), v * -timeline.start_s + 10.0,
                                          v * (timeline.end_s + 1.0) + 40.0,
                                          accept=lambda g, ids: lane_count_beside(g.map, ids[0], -1) == 0)
    lane_path, _ = concat_lanes(gen.map, lanes)
    front = rear_s + PACIFICA.front_length
    s_cross = front + v * params.arrive_time
    ped_size = (float(rng.uniform(0.4, 0.7)), float(rng.uniform(0.4, 0.7)))
    van_width = float(rng.uniform(2.0, 2.5))
    right, _ = road_span(gen.map, lane_path, s_cross)
    van_inner = right - params.kerb_gap                    # lateral of the van's road-side edge
    van_front = s_cross - ped_size[0] / 2 - 0.3
    # visible once its centre clears the van's edge; "notice" counts back from entering the ego corridor
    half_corridor = PACIFICA.width / 2 + CLEAR_MARGIN + ped_size[1] / 2
    notice = (-half_corridor - van_inner) / params.pedestrian_speed
    reaction = params.reaction
    if alert:
        notice, reaction = notice + 1.0, ALERT_REACTION_S
    # it steps out from behind the van after t0: on the lane centre no sooner than that walk allows
    t_centre = max(params.arrive_time + params.offset, -van_inner / params.pedestrian_speed + 0.2)
    crossing = crossing_pedestrian(lane_path, gen.map, s_cross, -1, t_centre,
                                   params.pedestrian_speed, ped_size, notice, reaction, timeline,
                                   start_beyond=params.kerb_gap + van_width * float(rng.uniform(0.3, 0.9)))
    ego = ego_plan(gen, lanes, rear_s, v, v, timeline, timed_stops=(crossing.stop,))

    def parked(front_s: float, length: float, width: float):
        centre_s = front_s - length / 2
        xy = points_at(lane_path, np.array([centre_s]), np.array([van_inner - width / 2]))[0]
        return stationary(xy, float(pose_on(lane_path, centre_s)[2]), (length, width), AgentType.VEHICLE)

    plans = [ego, crossing.pedestrian, parked(van_front, params.van_length, van_width)]
    behind = van_front - params.van_length
    for _ in range(params.parked_behind):
        length = float(rng.uniform(4.2, 5.2))
        behind -= float(rng.uniform(1.0, 4.0))
        plans.append(parked(behind, length, float(rng.uniform(1.8, 2.1))))
        behind -= length
    ego_xy = pose_on(ego.path, ego.s)[:2]
    placed = [(ego_xy, 4.0)] + [(pose_on(p.path, p.s)[:2], p.size[0] / 2 + 1.0) for p in plans[1:]]
    add_traffic(gen, plans, placed, rng, params.num_vehicles, ego_xy, timeline, avoid_lanes=set(lanes),
                keep_out=(crossing.pedestrian.path, 6.0))
    idm = human_idm(params.human_style)
    wander = (float(rng.uniform(0.0, 0.1)), float(rng.uniform(30.0, 80.0)), float(rng.uniform(0.0, 2 * math.pi)))
    return Drive(gen=gen, route_lane_ids=lanes, agents=tuple(plans), ego_params=alert_idm(idm) if alert else idm,
                 lights=LightCycle((), (), 0.0), wander=wander, timeline=timeline, key_agents=(1,))


@register("occluded_pedestrian")
def build(params: OccludedPedestrianParams, rng: np.random.Generator) -> Scene:
    """A pedestrian stepping out from behind a parked van in front of the IDM human."""
    return planned_scene(plan, params, rng, "occluded_pedestrian")
