"""envs.bench2drive.observation: target points, ego features, commands, privileged vectors, frames, on
hand-built routes and fake TickViews."""

import math

import numpy as np
import pytest
import torch
from gymnasium import spaces

from envs.bench2drive.observation import (CHANGE_LANE_LEFT, COMMANDS, EGO_REAR_AXLE_TO_CENTER, FRONT_CAMERAS, LANE_FOLLOW,
                                          LEFT, ObservationConfig, build_observations, observation_space,
                                          route_commands, route_drawing, route_table, route_targets,
                                          vector_observations, world_frames)
from envs.bench2drive.route_scenario import ActorKind, LightProgram, LightSpec, RouteScenario, StopSignSpec
from envs.bench2drive.tick import TickView
from envs.sim.map import Area, Lane, RoadMap
from envs.sim.scene import LightStatus


def straight(length=100.0, y=0.0):
    x = np.arange(0.0, length + 0.5, 1.0)
    return np.stack([x, np.full_like(x, y), np.zeros_like(x)], -1)


def left_turn():
    """Straight 0..50 m along x, a 10 m-radius left quarter circle to (60, 10), straight up to (60, 40)."""
    first = straight(50.0)[:-1]
    angle = np.linspace(0.0, math.pi / 2, 16)[:-1]
    arc = np.stack([50 + 10 * np.sin(angle), 10 - 10 * np.cos(angle), angle], -1)
    y = np.arange(10.0, 40.5, 1.0)
    last = np.stack([np.full_like(y, 60.0), y, np.full_like(y, math.pi / 2)], -1)
    return np.concatenate([first, arc, last])


def scenario(route, road_map=RoadMap(), **kw):
    return RouteScenario(route_id=0, scenario_type="Accident", scenario_name="Accident_1", town="Builtin_test",
                         road_map=road_map, route=route, speed_limit=10.0, **kw)


def view(ego=(0.0, 0.0, 0.0), speed=0.0, accel=(0.0, 0.0), yaw_rate=0.0, actors=(), lights=()):
    """One-row TickView; actors: (x, y, heading, speed, kind, present)."""
    f = lambda v: torch.tensor([v], dtype=torch.float64)
    A = max(len(actors), 1)
    pose, spd, kind, present = np.zeros((A, 3)), np.zeros(A), np.zeros(A, np.int64), np.zeros(A, bool)
    for a, (x, y, h, s, k, p) in enumerate(actors):
        pose[a], spd[a], kind[a], present[a] = (x, y, h), s, k, p
    return TickView(
        ego_pose=f(list(ego)), ego_speed=f(speed), ego_accel=f(list(accel)), ego_yaw_rate=f(yaw_rate),
        ego_size=f([4.89, 2.12]), actor_pose=torch.tensor(pose)[None], actor_speed=torch.tensor(spd)[None],
        actor_size=torch.tensor([[4.0, 2.0]] * A, dtype=torch.float64)[None], actor_kind=torch.tensor(kind)[None],
        actor_role=torch.zeros(1, A, dtype=torch.int64), actor_present=torch.tensor(present)[None],
        light_state=torch.tensor([list(lights) or [LightStatus.UNKNOWN]], dtype=torch.int64), tick=torch.ones(1, dtype=torch.int64),
        dt=0.05, scenario_active=torch.zeros(1, dtype=torch.bool))


def test_target_points_in_the_ego_frame():
    config = ObservationConfig(target_points=3, target_spacing=5.0)
    table = route_table([scenario(straight())], config)
    obs = vector_observations(view(ego=(10.0, 2.0, 0.0)), table, torch.tensor([10]), config)
    np.testing.assert_allclose(obs["target_points"][0], [[5, -2], [10, -2], [15, -2]], atol=1e-6)
    obs = vector_observations(view(ego=(10.0, 0.0, math.pi / 2)), table, torch.tensor([10]), config)
    np.testing.assert_allclose(obs["target_points"][0], [[0, -5], [0, -10], [0, -15]], atol=1e-5)
    # near the end the last route point repeats
    obs = vector_observations(view(ego=(97.0, 0.0, 0.0)), table, torch.tensor([97]), config)
    np.testing.assert_allclose(obs["target_points"][0], [[3, 0], [3, 0], [3, 0]], atol=1e-6)


def test_route_targets_interpolate_between_route_points():
    route = straight(10.0)[::2]              # points 2 m apart
    xy, end = route_targets(route, 2, 3.0)
    np.testing.assert_allclose(xy[1], [[5, 0], [8, 0]])
    assert end[1].tolist() == [3, 4] and end[-1].tolist() == [5, 5]


def test_ego_features_are_in_the_ego_frame():
    obs = vector_observations(view(ego=(0.0, 0.0, math.pi / 2), speed=3.0, accel=(1.0, 2.0), yaw_rate=0.1),
                              route_table([scenario(straight())]), torch.tensor([0]), ObservationConfig())
    np.testing.assert_allclose(obs["ego"][0], [3.0, 2.0, -1.0, 0.1], atol=1e-6)
    assert obs["ego"].dtype == np.float32 and obs["command"][0].tolist() == np.eye(6)[LANE_FOLLOW].tolist()


def test_commands_of_a_junction_turn_and_a_lane_change():
    junction = RoadMap(intersections=(Area("I1", np.array([[48.0, -2.0], [62.0, -2.0], [62.0, 12.0], [48.0, 12.0]])),))
    route = left_turn()
    labels = route_commands(route, junction)
    x = route[:, 0]
    before = (route[:, 1] == 0) & (x < 28)
    soon = (route[:, 1] == 0) & (x >= 28.5)
    after = route[:, 1] > 13
    assert (labels[before] == LANE_FOLLOW).all() and (labels[soon] == LEFT).all() and (labels[after] == LANE_FOLLOW).all()
    # a 3.5 m shift to the left between x = 40 and 50 on a straight road
    x = np.arange(0.0, 100.5, 1.0)
    y = 3.5 * np.clip((x - 40) / 10, 0, 1)
    heading = np.arctan2(np.gradient(y), 1.0)
    labels = route_commands(np.stack([x, y, heading], -1), RoadMap())
    assert labels[35] == CHANGE_LANE_LEFT and labels[0] == LANE_FOLLOW and labels[80] == LANE_FOLLOW
    assert COMMANDS[CHANGE_LANE_LEFT] == "change_lane_left"


def test_privileged_vectors_nearest_first_and_padded():
    light = LightSpec(stop_line=np.array([[30.0, -2.0], [30.0, 2.0]]), heading=0.0,
                      program=LightProgram(((int(LightStatus.RED), 10.0),)))
    stop = StopSignSpec(center=np.array([0.0, 40.0]), heading=math.pi / 2, length=4.0, width=3.0)
    table = route_table([scenario(straight(), lights=(light,), stop_signs=(stop,))])
    tick = view(actors=[(20.0, 0.0, 0.0, 1.0, ActorKind.VEHICLE, True), (5.0, 0.0, math.pi, 2.0, ActorKind.PEDESTRIAN, True),
                        (1.0, 0.0, 0.0, 0.0, ActorKind.VEHICLE, False)], lights=[LightStatus.RED])
    config = ObservationConfig(privileged=True, max_actors=3, max_lights=2, max_stop_signs=1)
    obs = vector_observations(tick, table, torch.tensor([0]), config)["privileged"]
    assert obs["actors_valid"][0].tolist() == [1, 1, 0]
    np.testing.assert_allclose(obs["actors"][0, 0], [5, 0, -1, 0, -2, 0, 4, 2, ActorKind.PEDESTRIAN, 0], atol=1e-6)
    np.testing.assert_allclose(obs["actors"][0, 1, :2], [20, 0])
    assert not obs["actors"][0, 2].any()
    np.testing.assert_allclose(obs["lights"][0, 0], [30, 0, 1, 0, 1, 0, 0], atol=1e-6)
    assert obs["lights_valid"][0].tolist() == [1, 0]
    np.testing.assert_allclose(obs["stop_signs"][0, 0], [0, 40, 0, 1, 4, 3], atol=1e-6)
    assert obs["speed_limit"][0].tolist() == [10.0]
    assert observation_space(config)["privileged"].contains({k: v[0] for k, v in obs.items()})


def test_bev_shows_an_actor_ahead_and_the_spaces_hold():
    lane = Lane("L1", "RB1", np.array([[-10.0, -2.0], [110.0, -2.0], [110.0, 2.0], [-10.0, 2.0]]),
                np.array([[-10.0, 0.0], [110.0, 0.0]]))
    road = RoadMap(lanes=(lane,), roadblocks=(Area("RB1", lane.polygon),))
    route = scenario(straight(), road_map=road)
    drawing = route_drawing(route)
    assert drawing.route_roadblock_ids == ("RB1",)
    tick = view(ego=(10.0, 0.0, 0.0), actors=[(20.0, 0.0, 0.0, 0.0, ActorKind.VEHICLE, True)])
    frame = world_frames(tick, [drawing])[0]
    np.testing.assert_allclose(frame.ego_pose, [10.0 - EGO_REAR_AXLE_TO_CENTER, 0.0, 0.0])
    config = ObservationConfig(bev=True, cameras=True, image_width=64, image_height=32)
    obs = build_observations(tick, route_table([route]), torch.tensor([10]), [drawing], config)
    vehicles = obs["bev"][0, 3].astype(float)
    rows, cols = np.nonzero(vehicles)
    # 10 m + the axle offset ahead of the image centre (63.5) at 0.5 m/px
    assert rows.mean() == pytest.approx(63.5 - (10 + EGO_REAR_AXLE_TO_CENTER) / 0.5, abs=1.0)
    assert cols.mean() == pytest.approx(63.5, abs=1.0)
    space = observation_space(config)
    assert space.contains({k: v[0] for k, v in obs.items()})
    assert set(FRONT_CAMERAS) <= set(obs) and obs["cam_f0"].shape == (1, 32, 64, 3)


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="target_points"):
        ObservationConfig(target_points=0)
    with pytest.raises(ValueError, match="cameras"):
        ObservationConfig(cameras=("cam_x",))
    assert isinstance(observation_space(ObservationConfig())["command"], spaces.Box)
