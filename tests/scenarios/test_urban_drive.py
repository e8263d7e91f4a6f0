"""Scenario families (urban_drive, following) and the registry: valid, deterministic, plausible scenes."""

import math

import numpy as np
import pytest
import torch
from shapely.geometry import Point, Polygon
from shapely.ops import unary_union

from envs.scene_file import scene_from_dict, scene_to_dict
from envs.sim.scene import NUM_STEPS, LightStatus
from envs.sim.vehicle import PACIFICA
from scenarios import SCENARIOS, build_scene, register, sample_params, scene_rngs
from scenarios.following import FollowingParams
from scenarios.drive import ALL_RED_S, YELLOW_S, LightCycle, human_idm
from scenarios.urban_drive import UrbanDriveParams

SEEDS = range(10)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # scene tensors are tiny; intra-op threads only add synchronisation (and are slow on a busy host)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def scenes():
    return {(name, seed): build_scene(name, None, seed) for name in ("urban_drive", "following") for seed in SEEDS}


def drivable(scene):
    m = scene.map
    return unary_union([Polygon(a.polygon) for a in (*m.roadblocks, *m.intersections, *m.carparks)])


def ego_box(pose):
    """shapely box of the ego whose rear axle is at pose (x, y, heading)."""
    x, y, h = pose
    c, s = math.cos(h), math.sin(h)
    cx, cy = x + PACIFICA.rear_axle_to_center * c, y + PACIFICA.rear_axle_to_center * s
    return box(cx, cy, h, PACIFICA.length, PACIFICA.width)


def box(cx, cy, h, length, width):
    c, s = math.cos(h), math.sin(h)
    corners = [(dx, dy) for dx, dy in ((1, 1), (-1, 1), (-1, -1), (1, -1))]
    return Polygon([(cx + c * dx * length / 2 - s * dy * width / 2, cy + s * dx * length / 2 + c * dy * width / 2)
                    for dx, dy in corners])


def to_global(origin, local):
    x, y, h = origin
    c, s = math.cos(h), math.sin(h)
    return (x + c * local[0] - s * local[1], y + s * local[0] + c * local[1], h + local[2])


def test_registry_lists_both_families_and_rejects_unknown_names():
    assert {"urban_drive", "following"} <= set(SCENARIOS)
    assert SCENARIOS["urban_drive"].params_type is UrbanDriveParams
    with pytest.raises(ValueError, match=r"^name='nope': unknown scenario"):
        build_scene("nope", None, 0)
    with pytest.raises(ValueError, match=r"^seed=-1"):
        build_scene("following", None, -1)
    with pytest.raises(ValueError, match=r"^params="):
        build_scene("following", UrbanDriveParams(), 0)

    def impostor(params: FollowingParams, rng: np.random.Generator):
        return None

    def unannotated(params, rng):
        return None

    with pytest.raises(ValueError, match=r"^name='following': already registered"):
        register("following")(impostor)
    with pytest.raises(ValueError, match="annotated"):
        register("something_new")(unannotated)
    assert "something_new" not in SCENARIOS
    assert isinstance(sample_params("following", np.random.default_rng(0)), FollowingParams)


def test_params_are_range_checked_by_name():
    with pytest.raises(ValueError, match=r"^num_vehicles=99"):
        UrbanDriveParams(num_vehicles=99)
    with pytest.raises(ValueError, match=r"^map_kind='moon'"):
        UrbanDriveParams(map_kind="moon")
    with pytest.raises(ValueError, match=r"^gap=1.0"):
        FollowingParams(gap=1.0)
    rng = np.random.default_rng(3)
    for _ in range(20):
        UrbanDriveParams.sample(rng)
        FollowingParams.sample(rng)


@pytest.mark.parametrize("name", ["urban_drive", "following"])
def test_scenes_are_valid(scenes, name):
    for seed in SEEDS:
        scene = scenes[name, seed]
        assert scene.scenario_type == name
        assert len(scene.token) == 16 and int(scene.token, 16) >= 0
        assert scene.history.t.tolist() == pytest.approx([-1.5, -1.0, -0.5, 0.0])
        for array in (scene.history.pose, scene.history.velocity, scene.history.acceleration,
                      scene.agents.pose, scene.agents.velocity, scene.human_trajectory.poses):
            assert np.isfinite(array).all()
        assert scene.agents.pose.shape[1:] == (NUM_STEPS, 3) and scene.agents.valid.shape[1] == NUM_STEPS
        assert scene.traffic_lights.status.shape[1:] == (NUM_STEPS,)
        assert scene.human_trajectory.interval == 0.5 and scene.human_trajectory.poses.shape == (8, 3)
        assert len(scene.route_roadblock_ids) >= 3
        assert drivable(scene).contains(Point(scene.ego_pose[:2])), (name, seed)
        # the ego's roadblock comes first on the route
        first = scene.route_roadblock_ids[0]
        lanes = [lane for lane in (*scene.map.lanes, *scene.map.lane_connectors) if lane.roadblock_id == first]
        assert any(Polygon(lane.polygon).buffer(0.5).contains(Point(scene.ego_pose[:2])) for lane in lanes)
        scene_from_dict(scene_to_dict(scene))          # scene/1 accepts it


def test_history_matches_the_human_drive(scenes):
    for seed in SEEDS:
        scene = scenes["urban_drive", seed]
        # history velocity (ego frame) ~ displacement over the last 0.5 s; vy small (no side slip)
        pose = scene.history.pose
        step = np.hypot(*(pose[-1, :2] - pose[-2, :2])) / 0.5
        assert abs(np.hypot(*scene.history.velocity[-1]) - step) < 1.0
        assert abs(scene.history.velocity[-1, 1]) < 0.5
        # the human plan starts where the history ends: first pose ~ v * 0.5 s ahead, never backwards
        first = scene.human_trajectory.poses[0]
        assert first[0] >= -1e-6 and abs(first[1]) < 1.0


def test_same_seed_same_scene_and_seeds_differ(scenes):
    for name in ("urban_drive", "following"):
        again = build_scene(name, None, 4)
        first = scenes[name, 4]
        assert again.token == first.token
        np.testing.assert_array_equal(again.agents.pose, first.agents.pose)
        np.testing.assert_array_equal(again.history.pose, first.history.pose)
        np.testing.assert_array_equal(again.human_trajectory.poses, first.human_trajectory.poses)
        assert scenes[name, 4].token != scenes[name, 5].token
    # explicit params equal to the drawn ones give the same scene
    params_rng, _ = scene_rngs("following", 7)
    explicit = build_scene("following", FollowingParams.sample(params_rng), 7)
    np.testing.assert_array_equal(explicit.human_trajectory.poses, scenes["following", 7].human_trajectory.poses)


def test_human_trajectory_does_not_collide_with_agents(scenes):
    clean = 0
    for key, scene in scenes.items():
        hit = False
        for k, local in enumerate(scene.human_trajectory.poses, start=1):
            ego = ego_box(to_global(scene.ego_pose, local))
            step = 5 * k
            for a in range(scene.agents.num_agents):
                x, y, h = scene.agents.pose[a, step]
                hit |= ego.intersects(box(x, y, h, *scene.agents.size[a]))
        clean += not hit
    assert clean >= 0.9 * len(scenes)


def test_urban_scenes_have_traffic_of_several_kinds(scenes):
    types = np.concatenate([scenes["urban_drive", s].agents.types for s in SEEDS])
    assert {0, 1} <= set(types.tolist())                    # vehicles and pedestrians
    assert set(types.tolist()) & {3, 4}                     # cones or barriers
    assert any(len(scenes["urban_drive", s].traffic_lights.lane_connector_ids) for s in SEEDS)


def test_following_ego_starting_at_rest_accelerates_at_accel_max():
    # lead far ahead and faster: the ego's IDM is free-road, a ~ accel_max (style 0.5: 1.4 m/s^2)
    params = FollowingParams(road="straight", ego_speed=0.0, gap=60.0, lead_speed=14.0, lead_decel=0.0,
                             human_style=0.5)
    scene = build_scene("following", params, 0)
    accel = human_idm(0.5).accel_max
    assert accel == pytest.approx(1.4)
    # v(t=0) after 1.6 s from rest (Euler: 16 steps of 0.1 s)
    assert scene.history.velocity[-1, 0] == pytest.approx(accel * 1.6, rel=0.1)
    assert scene.history.acceleration[-1, 0] == pytest.approx(accel, rel=0.15)
    lead = scene.agents
    assert lead.num_agents == 1 and np.allclose(np.hypot(*lead.velocity[0].T), 14.0)


def test_following_lead_brakes_to_a_stop_and_the_ego_stops_behind_it():
    params = FollowingParams(road="straight", ego_speed=10.0, gap=30.0, lead_speed=10.0, brake_time=0.0,
                             lead_decel=4.0, final_fraction=0.0, human_style=0.5)
    scene = build_scene("following", params, 1)
    lead_speed = np.hypot(*scene.agents.velocity[0].T)
    # scripted profile: 10 m/s until t = 0, then -4 m/s^2 -> 0 from t = 2.5 s
    assert lead_speed[0] == pytest.approx(10.0)
    assert lead_speed[10] == pytest.approx(6.0)
    assert lead_speed[25:].max() == pytest.approx(0.0)
    lead_end = scene.agents.pose[0, -1]
    ego_end = to_global(scene.ego_pose, scene.human_trajectory.poses[-1])
    assert not ego_box(ego_end).intersects(box(*lead_end, *scene.agents.size[0]))
    gap = ego_box(ego_end).distance(box(*lead_end, *scene.agents.size[0]))
    assert gap > 1.0


def test_light_cycle_hand_worked():
    cycle = LightCycle(groups=(0, 1), green_s=(10.0, 6.0), offset_s=0.0)
    period = 10.0 + 6.0 + 2 * (YELLOW_S + ALL_RED_S)
    groups = np.array([0, 1, 7])          # 7: not in the plan -> green
    green, yellow, red = LightStatus.GREEN, LightStatus.YELLOW, LightStatus.RED
    assert cycle.status(groups, 0.0).tolist() == [green, red, green]
    assert cycle.status(groups, 10.5).tolist() == [yellow, red, green]
    assert cycle.status(groups, 13.5).tolist() == [red, red, green]          # all-red clearance
    assert cycle.status(groups, 14.0).tolist() == [red, green, green]
    assert cycle.status(groups, 20.5).tolist() == [red, yellow, green]
    assert cycle.status(groups, period + 1.0).tolist() == [green, red, green]
    sampled = LightCycle.sample([3, 1, 1], np.random.default_rng(0))
    assert sampled.groups == (1, 3) and all(6.0 <= g <= 14.0 for g in sampled.green_s)


def test_human_idm_spans_cautious_to_aggressive():
    cautious, aggressive = human_idm(0.0), human_idm(1.0)
    assert (cautious.min_gap, cautious.headway, cautious.accel_max, cautious.decel_max) == (3.0, 2.0, 0.8, 2.5)
    assert (aggressive.min_gap, aggressive.headway, aggressive.accel_max, aggressive.decel_max) == (1.5, 1.0, 2.0, 4.0)
