"""One Bench2Drive route scored on a CARLA server (`envs.bench2drive.carla_backend`): the criteria loop, the
leaderboard record (or 'Failed - Simulation crashed'), metric_info steps, and the collisions the sensor saw but
the criteria could not. What `tools.bench2drive_eval` runs per route and worker for backend=carla."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np
import torch
from torch import Tensor

from envs.backends.bench2drive_routes import B2DRoute
from envs.bench2drive.carla_backend import DEFAULT_SPEED_LIMIT, CarlaBackend, SensorFrame, SimulationCrashed
from envs.bench2drive.carla_route import RouteExtras
from envs.bench2drive.criteria import criteria_context, criteria_step, finalize, initial_criteria
from envs.bench2drive.record import EpisodeLog, crashed_record, log_events, metric_info_steps, route_record
from envs.bench2drive.route_scenario import RouteScenario
from envs.bench2drive.tick import TickView
from envs.sim.map import RoadMap


@dataclass
class RouteResult:
    """One route run by `drive_route`."""

    record: dict
    """Leaderboard route record (`envs.bench2drive.record.route_record` / `crashed_record`)."""
    metric_info: dict
    """metric_info.json steps (Comfortness); empty for a crashed route."""
    unscored_collisions: list[tuple[int, str]]
    """(id, type_id) of objects the collision sensor reported but the TickView holds no box for (buildings,
    poles, signs): the leaderboard would count them as collisions, our criteria cannot see them."""
    crashed: bool


def _stub_scenario(route: B2DRoute, extras: RouteExtras) -> RouteScenario:
    """The minimal RouteScenario a crashed record needs when the server died before the route was built."""
    keypoints = np.asarray(route.keypoints, np.float64).reshape(-1, 3)
    xy = np.stack([keypoints[:, 0], -keypoints[:, 1]], 1) if len(keypoints) >= 2 else np.zeros((2, 2))
    return RouteScenario(route_id=int(route.route_id), scenario_type=route.scenario_type or "",
                         scenario_name=extras.scenario_name or "", town=route.town, road_map=RoadMap(),
                         route=np.column_stack([xy, np.zeros(len(xy))]), speed_limit=DEFAULT_SPEED_LIMIT)


def drive_route(backend: CarlaBackend, route: B2DRoute, extras: RouteExtras | None,
                controller: Callable[[TickView, SensorFrame], Tensor], index: int = 0,
                save_name: str | None = None) -> RouteResult:
    """Run one route to its end on `backend`, scored by the shared criteria; a crash gives the record
    'Failed - Simulation crashed' and the backend reconnects on its next reset.

    controller(view, sensors) -> (1, 3) or (3,) steer (positive right), throttle, brake.
    """
    extras = extras or RouteExtras(None, None)
    started, log, unscored, seen = time.monotonic(), EpisodeLog(), [], set()
    steps: list[tuple[list[float], float, list[float]]] = []

    def crashed() -> RouteResult:
        scenario = backend.scenario if backend.scenario is not None else _stub_scenario(route, extras)
        return RouteResult(crashed_record(scenario, index, save_name=save_name), {}, unscored, True)

    try:
        view = backend.reset(route, extras)
    except (SimulationCrashed, ValueError):   # the leaderboard records a route that fails to load as crashed
        return crashed()
    scenario = backend.scenario
    ctx = criteria_context([scenario], backend.config.device)
    state = initial_criteria(ctx)
    device = ctx.route_last.device
    ytev = scenario.scenario_type == "YieldToEmergencyVehicle"
    try:
        while not bool(state.done[0]):
            view = backend.step(controller(view, backend.sensors))
            if ytev and int(ctx.emergency_actor[0]) < 0 <= backend.emergency_slot:
                ctx = replace(ctx, emergency_actor=torch.tensor([backend.emergency_slot], device=device))
            state, events = criteria_step(ctx, state, view)
            log_events([log], events, ctx, [backend.slot_actor_ids], [backend.slot_type_ids])
            for other_id, type_id in backend.sensors.collisions:
                if other_id not in backend.slot_actor_ids and other_id not in seen:
                    seen.add(other_id)
                    unscored.append((other_id, type_id))
            steps.append((view.ego_accel[0].tolist(), float(view.ego_yaw_rate[0]), view.ego_pose[0].tolist()))
    except SimulationCrashed:
        return crashed()
    state, events = finalize(ctx, state, view)
    log_events([log], events, ctx, [backend.slot_actor_ids], [backend.slot_type_ids])
    record = route_record(scenario, log, state, 0, duration_game=int(view.tick[0]) * view.dt,
                          duration_system=time.monotonic() - started, index=index, save_name=save_name)
    accel, rate, pose = zip(*steps)
    return RouteResult(record, metric_info_steps(np.array(accel), np.array(rate), np.array(pose)), unscored, False)
