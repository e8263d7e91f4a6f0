"""Assembling one Bench2Drive `RouteScenario`: the dense route of a corridor, the scenario's actors, the
background traffic, trigger / end indices and control-noise points."""

from __future__ import annotations

import numpy as np

from envs.bench2drive.route_scenario import LightSpec, RouteScenario, StopSignSpec
from envs.sim.mapgen import GeneratedMap
from scenarios.bench2drive.background import Background, background_actors
from scenarios.bench2drive.common import EGO_CLEARANCE, ROUTE_STEP, Corridor, actor_xy, dense_route


def route_scenario(scenario_type: str, gen: GeneratedMap, path: Corridor, s_start: float, length: float,
                   rng: np.random.Generator, trigger_at: float, *, knots=(), actors=(),
                   lights: tuple[LightSpec, ...] = (), stop_signs: tuple[StopSignSpec, ...] = (),
                   end_at: float | None = None, background: Background | None = None, noise_at=(),
                   wrong_direction_check: bool = True, emergency_actor: int = -1) -> RouteScenario:
    """Assemble one route: the dense route from s_start over `length` [m] of the corridor, the scenario
    actors (first, in the given order), then background traffic per `background` (a `Background`; None
    for the default). trigger_at / end_at / noise_at are metres from the route start. The registry fills
    route_id, town, seed and weather."""
    route = dense_route(path, s_start, length, knots)
    last = len(route) - 1
    # a flow vehicle may start where the ego does: it is simply left out (the flow keeps its period)
    near, headway = EGO_CLEARANCE
    actors = [a for a in actors
              if not (a.recycle and np.hypot(*(actor_xy(a) - route[0, :2])) < near + headway * a.speed0)]
    keep_out = np.array([actor_xy(a) for a in actors]).reshape(-1, 2)
    extra = background_actors(gen, route, path, s_start, background or Background(), keep_out, rng)
    start_lane = gen.map.lanes_by_id[path.lane_at(s_start)]
    noise = np.array([route[min(last, int(round(d / ROUTE_STEP))), :2] for d in noise_at]).reshape(-1, 2)
    return RouteScenario(
        route_id=0, scenario_type=scenario_type, scenario_name=f"{scenario_type}_1", town="", road_map=gen.map,
        route=route, speed_limit=float(start_lane.speed_limit or 13.9), actors=(*actors, *extra), lights=lights,
        stop_signs=stop_signs, trigger_index=min(last, int(round(trigger_at / ROUTE_STEP))),
        end_index=None if end_at is None else min(last, int(round(end_at / ROUTE_STEP))),
        control_noise_points=noise, wrong_direction_check=wrong_direction_check, emergency_actor=emergency_actor)
