"""Red-light runner: the ego crosses a signalised junction on green while a cross-traffic vehicle runs
its red light across the ego's path.

Agent 1 is the runner (constant speed through its red connector). The human yields with a timed stop
before the crossing from when it notices the runner (plus a reaction time) until the runner is past.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from envs.sim.scene import Scene
from envs.sim.vehicle import PACIFICA
from scenarios import register
from scenarios.drive import Drive, Timeline, human_idm, path_plan, pose_on
from scenarios.family import (
    ALERT_REACTION_S, RangedParams, add_traffic, drive_planner, ego_plan, path_ahead, planned_scene, road_config,
    start_s, valid_map, vehicle_size,
)
from scenarios.jaywalker import STOP_MARGIN, alert_idm
from scenarios.junction import crossing_movements, cycle_with_green, junction_route, lane_start, turn_movements
from scenarios.lanes import neighbour_lane


@dataclass(frozen=True)
class RedLightRunnerParams(RangedParams):
    """Knobs of one red-light-runner scene."""

    ego_speed: float = 10.0
    """[m/s] ego speed at t0 (its light is green throughout)."""
    arrive_time: float = 2.5
    """[s] when the ego front would reach the runner's path at constant speed."""
    offset: float = 0.0
    """[s] when the runner's centre crosses the ego's path, relative to arrive_time."""
    runner_speed: float = 11.0
    """[m/s] the runner's (constant) speed."""
    lookahead: float = 2.0
    """[s] how long before it crosses the ego's path the human notices the runner is not stopping."""
    reaction: float = 0.8
    """[s] the human's reaction time."""
    queue: int = 1
    """Vehicles waiting at the red beside the runner (where its road has more lanes)."""
    num_vehicles: int = 4
    """Background vehicles around the junction."""
    human_style: float = 0.5
    """Ego driver: 0 cautious .. 1 aggressive."""

    RANGES: ClassVar[dict[str, tuple[float, float]]] = {
        "ego_speed": (6.0, 13.0), "arrive_time": (1.8, 3.8), "offset": (-0.6, 0.8), "runner_speed": (8.0, 15.0),
        "lookahead": (0.8, 3.0), "reaction": (0.3, 1.2), "queue": (0, 2), "num_vehicles": (0, 6),
        "human_style": (0.0, 1.0),
    }


@drive_planner("red_light_runner")
def plan(params: RedLightRunnerParams, rng: np.random.Generator, timeline: Timeline, alert: bool) -> Drive:
    """Ego straight through a signalised crossing on green; a perpendicular vehicle runs its red."""
    gen = valid_map("intersection", rng, road_config(timeline))
    ego_moves = turn_movements(gen, "straight")
    approach, connector = ego_moves[int(rng.integers(len(ego_moves)))]
    runners = crossing_movements(gen, connector, turn="straight")
    runner_conn, on_ego, on_runner = runners[int(rng.integers(len(runners)))]
    v, v_run = params.ego_speed, params.runner_speed
    size = vehicle_size(rng, van=0.15)

    # runner: its centre reaches the ego's path at t_cross, having entered its connector >= 0.3 s after t0
    runner_approach = gen.map.lanes_by_id[runner_conn].predecessors[0]
    t_cross = max(params.arrive_time + params.offset, on_runner / v_run + 0.3)
    runner_lanes = junction_route(gen, runner_approach, runner_conn, v_run * (t_cross - timeline.start_s) + 20.0,
                                  v_run * timeline.end_s + 40.0)
    runner_conflict = lane_start(gen, runner_lanes, runner_conn) + on_runner
    runner = path_plan(gen, runner_lanes, start_s(runner_conflict - v_run * t_cross, v_run, timeline), v_run, size,
                       1.0, ahead=path_ahead(timeline), is_reactive=False)

    # ego: its front reaches the runner's near side at arrive_time if it kept its speed
    lanes = junction_route(gen, approach, connector, v * -timeline.start_s + 40.0, v * timeline.end_s + 40.0)
    conflict = lane_start(gen, lanes, connector) + on_ego
    near_side = conflict - size[1] / 2 - 1.0
    rear_s = near_side - v * params.arrive_time - PACIFICA.front_length
    lookahead, reaction = (params.lookahead + 1.0, ALERT_REACTION_S) if alert else (params.lookahead, params.reaction)
    clear = t_cross + (size[0] / 2 + PACIFICA.width / 2 + 1.0) / v_run
    stop = (near_side - STOP_MARGIN, t_cross - lookahead + reaction, clear)
    ego = ego_plan(gen, lanes, rear_s, v, v, timeline, timed_stops=(stop,))

    plans = [ego, runner]
    ego_xy = pose_on(ego.path, ego.s)[:2]
    placed = [(ego_xy, 4.0), (pose_on(runner.path, runner.s)[:2], size[0] / 2 + 1.0)]
    # vehicles waiting at the red in the lanes beside the runner
    waiting = [neighbour_lane(gen.map, runner_approach, side) for side in (1, -1)]
    for lane_id in [w for w in waiting if w is not None][:params.queue]:
        length = float(rng.uniform(4.2, 5.2))
        queue_lanes = (lane_id,) + tuple(gen.map.lanes_by_id[lane_id].successors[:1])
        stop_line = lane_start(gen, queue_lanes, queue_lanes[1]) if len(queue_lanes) > 1 else 0.0
        s = stop_line - length / 2 - float(rng.uniform(1.0, 3.0))
        if s > 2.0:
            waiting_car = path_plan(gen, queue_lanes, s, 0.0, (length, 2.0), 0.9, ahead=path_ahead(timeline))
            plans.append(waiting_car)
            placed.append((pose_on(waiting_car.path, waiting_car.s)[:2], length / 2 + 1.0))
    add_traffic(gen, plans, placed, rng, params.num_vehicles, ego_xy, timeline,
                avoid_lanes={*lanes, *runner_lanes})
    lights = cycle_with_green(gen.signal_groups.values(), gen.signal_groups[connector], timeline.start_s,
                              timeline.end_s + 0.5, rng)
    idm = human_idm(params.human_style)
    wander = (float(rng.uniform(0.0, 0.1)), float(rng.uniform(30.0, 80.0)), float(rng.uniform(0.0, 2 * math.pi)))
    return Drive(gen=gen, route_lane_ids=lanes, agents=tuple(plans), ego_params=alert_idm(idm) if alert else idm,
                 lights=lights, wander=wander, timeline=timeline, key_agents=(1,))


@register("red_light_runner")
def build(params: RedLightRunnerParams, rng: np.random.Generator) -> Scene:
    """A cross-traffic vehicle running its red light in front of the IDM human on green."""
    return planned_scene(plan, params, rng, "red_light_runner")
