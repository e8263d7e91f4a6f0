"""Jaywalker: a pedestrian crosses the road mid-block, away from any crosswalk, into the ego's path.

Agent 1 is the pedestrian (straight path across the road, scripted speed). The human yields with a
timed stop before the crossing point from when it notices the pedestrian (plus a reaction time) until
the pedestrian has left its lane. `crossing_pedestrian` is shared with `occluded_pedestrian`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np

from envs.sim.idm import IDMParams
from envs.sim.scene import AgentType, Scene
from envs.sim.vehicle import PACIFICA
from scenarios import register
from scenarios.drive import AgentPlan, Drive, LightCycle, Timeline, concat_lanes, human_idm, pose_on
from scenarios.family import (
    ALERT_REACTION_S, RangedParams, add_traffic, drive_planner, ego_plan, planned_scene, road_config,
    road_drive_start, scripted_start,
)
from scenarios.lanes import points_at, road_span

CLEAR_MARGIN = 0.6
"""[m] the human waits until the pedestrian is this far beyond the ego's sides."""
STOP_MARGIN = 1.5
"""[m] the human's stop line sits this far before the pedestrian's path (plus its IDM jam gap)."""
ALERT_DECEL = 6.0
"""[m/s^2] braking limit of the alert human."""


@dataclass(frozen=True)
class Crossing:
    """A pedestrian crossing the ego lane: its plan and the human's timed stop."""

    pedestrian: AgentPlan
    stop: tuple[float, float, float]
    """(stop position of the ego front on its lane sequence [m], from t [s], until t [s]): from `notice`
    before the pedestrian is within CLEAR_MARGIN of the ego's sides plus `reaction`, until it is beyond."""


def crossing_pedestrian(lane_path: np.ndarray, road_map, s_cross: float, side: int, t_centre: float, speed: float,
                        size: tuple[float, float], notice: float, reaction: float, timeline: Timeline,
                        start_beyond: float = 2.0) -> Crossing:
    """A pedestrian walking straight across the road at arc length s_cross of the ego lane (box-centre
    coordinates): from `start_beyond` [m] outside the kerb on `side` (+1 left, -1 right) to 1 m past the
    far kerb, at `speed` [m/s], its centre on the ego lane centre at t_centre [s]. The human notices it
    `notice` [s] before it enters the ego corridor and reacts `reaction` [s] later."""
    right, left = road_span(road_map, lane_path, s_cross)
    start_lateral = (left + start_beyond) if side > 0 else (right - start_beyond)
    end_lateral = (right - 1.0) if side > 0 else (left + 1.0)
    ends = points_at(lane_path, np.full(2, s_cross), np.array([start_lateral, end_lateral]))
    to_centre = abs(start_lateral)
    half_corridor = PACIFICA.width / 2 + CLEAR_MARGIN + size[1] / 2
    t_walk = t_centre - to_centre / speed                      # when it starts walking
    times = timeline.step_times()
    script = np.where(times >= t_walk, speed, 0.0)
    v_start = speed if timeline.start_s >= t_walk else 0.0
    s_t0 = max(0.0, -t_walk * speed)                            # walked by t0
    s_first = scripted_start(s_t0, v_start, script, timeline)
    pedestrian = AgentPlan(path=ends, s=max(s_first, 0.0), speed=v_start, size=size, type=AgentType.PEDESTRIAN,
                           is_reactive=False, speed_script=tuple(script.tolist()))
    enters = t_centre - half_corridor / speed
    stop = (s_cross - size[0] / 2 - STOP_MARGIN,
            enters - notice + reaction, t_centre + half_corridor / speed)
    return Crossing(pedestrian, stop)


@dataclass(frozen=True)
class JaywalkerParams(RangedParams):
    """Knobs of one jaywalker scene."""

    road: str = "straight"
    """Map kind: "straight" or "curved"."""
    side: str = "right"
    """Kerb the pedestrian starts from."""
    ego_speed: float = 10.0
    """[m/s] ego speed at t0."""
    arrive_time: float = 2.5
    """[s] when the ego front would reach the crossing at constant speed."""
    offset: float = 0.0
    """[s] when the pedestrian is on the ego lane centre, relative to arrive_time."""
    pedestrian_speed: float = 1.5
    """[m/s] walking (1) to running (3)."""
    notice: float = 1.0
    """[s] how long before it enters the ego lane the human notices the pedestrian."""
    reaction: float = 0.8
    """[s] the human's reaction time."""
    human_style: float = 0.5
    """Ego driver: 0 cautious .. 1 aggressive."""
    num_vehicles: int = 3
    """Background vehicles on other lanes."""

    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {"road": ("straight", "curved"), "side": ("right", "left")}
    RANGES: ClassVar[dict[str, tuple[float, float]]] = {
        "ego_speed": (5.0, 14.0), "arrive_time": (1.5, 3.8), "offset": (-0.8, 0.8), "pedestrian_speed": (1.0, 3.0),
        "notice": (0.0, 2.5), "reaction": (0.3, 1.5), "human_style": (0.0, 1.0), "num_vehicles": (0, 5),
    }


def alert_idm(idm: IDMParams) -> IDMParams:
    """The human's IDM braking raised to ALERT_DECEL (the alert retry)."""
    return replace(idm, decel_max=max(idm.decel_max, ALERT_DECEL))


@drive_planner("jaywalker")
def plan(params: JaywalkerParams, rng: np.random.Generator, timeline: Timeline, alert: bool) -> Drive:
    """Ego on a road; a pedestrian crosses its lane where it would be `arrive_time` after t0."""
    v = params.ego_speed
    gen, lanes, rear_s = road_drive_start(params.road, rng, road_config(timeline), v * -timeline.start_s + 10.0,
                                          v * (timeline.end_s + 1.0) + 40.0)
    lane_path, _ = concat_lanes(gen.map, lanes)
    front = rear_s + PACIFICA.front_length
    s_cross = front + v * params.arrive_time
    size = (float(rng.uniform(0.5, 0.8)), float(rng.uniform(0.5, 0.8)))
    side = 1 if params.side == "left" else -1
    notice, reaction = (params.notice + 1.0, ALERT_REACTION_S) if alert else (params.notice, params.reaction)
    crossing = crossing_pedestrian(lane_path, gen.map, s_cross, side, params.arrive_time + params.offset,
                                   params.pedestrian_speed, size, notice, reaction, timeline,
                                   start_beyond=float(rng.uniform(1.0, 3.0)))
    ego = ego_plan(gen, lanes, rear_s, v, v, timeline, timed_stops=(crossing.stop,))
    plans = [ego, crossing.pedestrian]
    ego_xy = pose_on(ego.path, ego.s)[:2]
    placed = [(ego_xy, 4.0), (pose_on(crossing.pedestrian.path, crossing.pedestrian.s)[:2], 1.0)]
    add_traffic(gen, plans, placed, rng, params.num_vehicles, ego_xy, timeline, avoid_lanes=set(lanes),
                keep_out=(crossing.pedestrian.path, 6.0))
    idm = human_idm(params.human_style)
    wander = (float(rng.uniform(0.0, 0.15)), float(rng.uniform(30.0, 80.0)), float(rng.uniform(0.0, 2 * math.pi)))
    return Drive(gen=gen, route_lane_ids=lanes, agents=tuple(plans), ego_params=alert_idm(idm) if alert else idm,
                 lights=LightCycle((), (), 0.0), wander=wander, timeline=timeline, key_agents=(1,))


@register("jaywalker")
def build(params: JaywalkerParams, rng: np.random.Generator) -> Scene:
    """A pedestrian crossing mid-block in front of the IDM human."""
    return planned_scene(plan, params, rng, "jaywalker")
