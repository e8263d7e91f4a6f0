"""One scored CARLA route (envs/bench2drive/carla_eval.py) on the `carla` stand-in: the same record as the
built-in world's for the same route and controls, crashed routes recorded as 'Failed - Simulation crashed'."""

import math

import numpy as np
import pytest
import torch

from envs.backends.bench2drive_routes import B2DRoute
from envs.bench2drive.carla_backend import CarlaBackend, CarlaConfig
from envs.bench2drive.carla_eval import drive_route
from envs.bench2drive.route_scenario import RouteScenario
from tests.envs.bench2drive.carla_standin import StandinServer, make_carla_module
from tests.envs.bench2drive.test_carla_backend import FAST, route_of, short_scenario, turn_scenario



def follow_route(route: np.ndarray):
    """Closed-loop controller: steer at the route point 6 m ahead, hold ~6 m/s. Outputs are float32 values
    (what carla.VehicleControl stores), so both paths apply exactly the same control."""
    def act(view, sensors=None):
        x, y, heading = view.ego_pose[0].tolist()
        i = int(np.argmin(np.hypot(route[:, 0] - x, route[:, 1] - y)))
        target = route[min(i + 6, len(route) - 1)]
        angle = math.remainder(math.atan2(target[1] - y, target[0] - x) - heading, 2 * math.pi)
        throttle = 0.5 if float(view.ego_speed[0]) < 6.0 else 0.0
        return torch.tensor([[float(np.clip(-2.0 * angle, -1, 1)), throttle, 0.0]]).double()
    return act


def builtin_record(scenario: RouteScenario, seed: int = 0) -> dict:
    """The built-in path: world_step + the same criteria and record code."""
    from envs.bench2drive.criteria import criteria_context, criteria_step, finalize, initial_criteria
    from envs.bench2drive.record import EpisodeLog, log_events, route_record
    from envs.bench2drive.world import tick_view, world_init, world_step

    static, state = world_init([scenario])
    view, act, generator = tick_view(static, state), follow_route(scenario.route), torch.Generator().manual_seed(seed)
    ctx = criteria_context([scenario])
    criteria, log = initial_criteria(ctx), EpisodeLog()
    while not bool(criteria.done[0]):
        state, view = world_step(static, state, act(view), generator=generator)
        criteria, events = criteria_step(ctx, criteria, view)
        log_events([log], events, ctx)
    criteria, events = finalize(ctx, criteria, view)
    log_events([log], events, ctx)
    return route_record(scenario, log, criteria, 0, int(view.tick[0]) * view.dt, 0.0, 0)


def counts(record: dict) -> dict:
    return {key: len(messages) for key, messages in record["infractions"].items()}


def builtin_route_60():
    try:
        from scenarios.bench2drive.routes import build_builtin_route
        return build_builtin_route(60)   # ControlLoss: the seeded control noise must match too
    except Exception as error:   # the catalog is written concurrently (issue 4); the hand-built route still runs
        pytest.skip(f"built-in route 60 unavailable: {error!r}")


@pytest.mark.parametrize("make", [turn_scenario, builtin_route_60], ids=["hand_built_turn", "builtin_60"])
def test_scores_equal_builtin(make):
    scenario = make()
    expected = builtin_record(scenario)
    server = StandinServer({scenario.town: scenario})
    backend = CarlaBackend(CarlaConfig(**FAST), carla_module=make_carla_module(server))
    result = drive_route(backend, *route_of(scenario), controller=follow_route(scenario.route), index=4)
    record = result.record
    assert not result.crashed and record["index"] == 4
    assert record["status"] == expected["status"]
    assert record["scores"] == expected["scores"]
    assert record["meta"]["duration_game"] == expected["meta"]["duration_game"]
    # min-speed checkpoints fall where route arc > length / 20: our 1 m resampling and the catalog's differ by
    # ~1e-14 m, which can move a knife-edge checkpoint by one tick and the count by one (efficiency only)
    mine, theirs = counts(record), counts(expected)
    assert abs(mine.pop("min_speed_infractions") - theirs.pop("min_speed_infractions")) <= 1
    assert mine == theirs
    if make is turn_scenario:   # the hand-built route hits the cone and runs the red light
        assert theirs["collisions_layout"] == 1 and theirs["red_light"] == 1
        assert record["infractions"]["collisions_layout"][0].startswith(
            "Agent collided against object with type=static.prop.trafficcone01 and id=")
    assert len(result.metric_info) == int(record["meta"]["duration_game"] / 0.05 + 0.5)
    assert result.unscored_collisions == []


def test_crash_records_failed_and_next_route_runs():
    first, second = short_scenario(11, "Town01"), short_scenario(12, "Town02")
    server = StandinServer({"Town01": first, "Town02": second}, crash_at_tick=20)
    backend = CarlaBackend(CarlaConfig(**FAST), carla_module=make_carla_module(server), launcher=server)
    crashed = drive_route(backend, *route_of(first), controller=follow_route(first.route), index=0)
    assert crashed.crashed and crashed.record["status"] == "Failed - Simulation crashed"
    assert crashed.record["route_id"] == "RouteScenario_11_rep0" and crashed.record["scores"]["score_composed"] == 0
    done = drive_route(backend, *route_of(second), controller=follow_route(second.route), index=1)
    assert not done.crashed and done.record["route_id"] == "RouteScenario_12_rep0"
    assert done.record["scores"]["score_route"] == 100.0 and server.launches == 2
    assert server.loads == ["Town01", "Town02"]


def test_unloadable_route_is_a_crashed_record():
    scenario = turn_scenario()
    server = StandinServer({"Town01": scenario})
    backend = CarlaBackend(CarlaConfig(**FAST), carla_module=make_carla_module(server))
    route, extras = route_of(scenario)
    far = B2DRoute(route.route_id, "Town01", route.scenario_type, True, route.keypoints + [0.0, 500.0, 0.0])
    result = drive_route(backend, far, extras, controller=follow_route(scenario.route))
    assert result.crashed and result.record["status"] == "Failed - Simulation crashed"
    assert result.record["town_name"] == "Town01" and result.record["scenario_name"] == "Accident_1"
