"""The long-tail and junction families: valid scene/1 scenes, deterministic, and their event happens."""

import math
import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest
from shapely.geometry import LineString, Point, Polygon
from shapely.ops import unary_union

from envs.scene_file import scene_from_dict, scene_to_dict
from envs.sim.scene import NUM_STEPS, AgentType, LightStatus
from scenarios import SCENARIOS, build_scene, scene_rngs
from scenarios.lanes import connector_turn

FAMILIES = ("lane_change", "intersection", "cut_in", "hard_brake", "jaywalker", "occluded_pedestrian",
            "red_light_runner", "blocked_lane", "unprotected_left", "merge", "construction_zone")
SEEDS = range(5)


def _build(job):
    import torch

    torch.set_num_threads(1)
    return job, build_scene(*job)


@pytest.fixture(scope="module")
def scenes():
    # ~0.6 s a scene: two processes halve the wait
    jobs = [(name, None, seed) for name in FAMILIES for seed in SEEDS]
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        return {(name, seed): scene for (name, _, seed), scene in pool.map(_build, jobs)}


def global_poses(scene):
    """(9, 3) ego rear-axle poses at t = 0, 0.5 .. 4 s from the human trajectory."""
    x, y, h = scene.ego_pose
    local = scene.human_trajectory.poses
    c, s = math.cos(h), math.sin(h)
    out = np.stack([x + c * local[:, 0] - s * local[:, 1], y + s * local[:, 0] + c * local[:, 1], h + local[:, 2]], 1)
    return np.concatenate([scene.ego_pose[None], out])


def drivable(scene):
    m = scene.map
    return unary_union([Polygon(a.polygon) for a in (*m.roadblocks, *m.intersections, *m.carparks)])


def start_lane(scene):
    """The route lane (not connector) holding the ego's rear axle at t = 0."""
    point = Point(scene.ego_pose[:2])
    lanes = [lane for lane in scene.map.lanes if lane.roadblock_id in scene.route_roadblock_ids]
    return min(lanes, key=lambda lane: Polygon(lane.polygon).distance(point))


def lane_line(scene, lane, length=150.0):
    """The lane's centerline continued through its first successors (shapely)."""
    points, total, current = [], 0.0, lane
    while current is not None and total < length:
        points.extend(current.centerline.tolist())
        total += LineString(current.centerline).length
        nxt = [scene.map.lanes_by_id[i] for i in current.successors if i in scene.map.lanes_by_id]
        current = nxt[0] if nxt else None
    return LineString(points)


def signed_lateral(line: LineString, point) -> tuple[float, float]:
    """(arc length, signed lateral offset, left > 0) of a point from a line."""
    s = line.project(Point(point))
    a, b = np.array(line.interpolate(s).coords[0]), np.array(line.interpolate(min(s + 0.5, line.length)).coords[0])
    d = (b - a) / max(np.hypot(*(b - a)), 1e-9)
    rel = np.asarray(point) - a
    return s, float(d[0] * rel[1] - d[1] * rel[0])


def test_all_families_registered():
    assert set(FAMILIES) <= set(SCENARIOS)


@pytest.mark.parametrize("name", FAMILIES)
def test_scenes_are_valid(scenes, name):
    for seed in SEEDS:
        scene = scenes[name, seed]
        assert scene.scenario_type == name
        again = scene_from_dict(scene_to_dict(scene))                 # scene/1 accepts it, round trip
        np.testing.assert_array_equal(again.agents.pose, scene.agents.pose)
        np.testing.assert_array_equal(again.history.pose, scene.history.pose)
        assert scene.agents.pose.shape[1:] == (NUM_STEPS, 3) and scene.traffic_lights.status.shape[1:] == (NUM_STEPS,)
        assert scene.human_trajectory.interval == 0.5 and scene.human_trajectory.poses.shape == (8, 3)
        assert np.isfinite(scene.human_trajectory.poses).all() and np.isfinite(scene.agents.pose).all()
        assert drivable(scene).contains(Point(scene.ego_pose[:2])), (name, seed)
        assert len(scene.route_roadblock_ids) >= 2


@pytest.mark.parametrize("name", ["cut_in", "red_light_runner", "blocked_lane"])
def test_same_seed_same_scene(scenes, name):
    again = build_scene(name, None, 3)
    first = scenes[name, 3]
    assert again.token == first.token
    np.testing.assert_array_equal(again.agents.pose, first.agents.pose)
    np.testing.assert_array_equal(again.human_trajectory.poses, first.human_trajectory.poses)
    assert scenes[name, 3].token != scenes[name, 4].token
    params_rng, _ = scene_rngs(name, 3)
    explicit = build_scene(name, SCENARIOS[name].params_type.sample(params_rng), 3)
    np.testing.assert_array_equal(explicit.history.pose, first.history.pose)


def test_cut_in_vehicle_ends_up_ahead_in_the_ego_lane(scenes):
    for seed in SEEDS:
        scene = scenes["cut_in", seed]
        assert scene.agents.ids[0] == "A1" and scene.agents.types[0] == AgentType.VEHICLE
        line = lane_line(scene, start_lane(scene))
        ego_s, _ = signed_lateral(line, scene.ego_pose[:2])
        start_s, start_lat = signed_lateral(line, scene.agents.pose[0, 0, :2])
        assert abs(start_lat) > 1.0, seed                             # it starts beside the ego lane ...
        inside = [k for k in range(NUM_STEPS) if abs(signed_lateral(line, scene.agents.pose[0, k, :2])[1]) < 0.5]
        assert inside, seed                                           # ... and is in it within 4 s,
        k = inside[0]
        human = global_poses(scene)[min(k // 5, 8)]
        assert signed_lateral(line, scene.agents.pose[0, k, :2])[0] > signed_lateral(line, human[:2])[0] + 2.0, seed


def test_hard_brake_lead_brakes_hard_ahead(scenes):
    for seed in SEEDS:
        scene = scenes["hard_brake", seed]
        line = lane_line(scene, start_lane(scene))
        s, lateral = signed_lateral(line, scene.agents.pose[0, 0, :2])
        assert abs(lateral) < 0.5 and s > signed_lateral(line, scene.ego_pose[:2])[0]
        speed = np.hypot(*scene.agents.velocity[0].T)
        assert (-np.diff(speed)).max() / 0.1 >= 3.9, seed              # braking at >= 4 m/s^2 within 4 s


def test_jaywalker_crosses_the_ego_lane_off_crosswalks(scenes):
    for seed in SEEDS:
        scene = scenes["jaywalker", seed]
        assert scene.agents.types[0] == AgentType.PEDESTRIAN
        line = lane_line(scene, start_lane(scene))
        lateral = np.array([signed_lateral(line, p)[1] for p in scene.agents.pose[0, :, :2]])
        assert np.abs(lateral).min() < 0.5 or lateral.min() < 0 < lateral.max(), seed
        crosswalks = [Polygon(c.polygon) for c in scene.map.crosswalks]
        assert not any(c.contains(Point(p)) for c in crosswalks for p in scene.agents.pose[0, :, :2])


def test_occluded_pedestrian_steps_out_in_front_of_a_van(scenes):
    for seed in SEEDS:
        scene = scenes["occluded_pedestrian", seed]
        assert scene.agents.types[0] == AgentType.PEDESTRIAN and scene.agents.types[1] == AgentType.VEHICLE
        van = scene.agents
        assert van.size[1, 0] >= 5.5 and np.abs(van.velocity[1]).max() == 0.0     # parked
        line = lane_line(scene, start_lane(scene))
        _, van_lateral = signed_lateral(line, van.pose[1, 0, :2])
        assert van_lateral < -1.75 - van.size[1, 1] / 2 + 0.01                   # off the road, right of the lane
        ped = [signed_lateral(line, p)[1] for p in van.pose[0, :, :2]]
        # behind the van's road-side edge at t = 0, in the ego lane within 4 s
        assert ped[0] < van_lateral + van.size[1, 1] / 2 + 0.3 and np.abs(ped).min() < 1.0, seed
        # where it steps out is just ahead of the van's front
        heading = van.pose[1, 0, 2]
        van_front = Point(van.pose[1, 0, :2] + van.size[1, 0] / 2 * np.array([np.cos(heading), np.sin(heading)]))
        assert LineString(van.pose[0, :, :2]).distance(van_front) < 2.0


def test_red_light_runner_enters_its_connector_on_red(scenes):
    for seed in SEEDS:
        scene = scenes["red_light_runner", seed]
        lanes = scene.map.lanes_by_id
        lights = dict(zip(scene.traffic_lights.lane_connector_ids, scene.traffic_lights.status))
        runner = scene.agents.pose[0]
        on_red = False
        for cid, status in lights.items():
            polygon, start = Polygon(lanes[cid].polygon), lanes[cid].centerline[:2]
            heading = math.atan2(*(start[1] - start[0])[::-1])
            for k in range(1, NUM_STEPS):
                entering = polygon.contains(Point(runner[k, :2])) and not polygon.contains(Point(runner[k - 1, :2]))
                aligned = abs(math.remainder(runner[k, 2] - heading, 2 * math.pi)) < 0.3
                on_red |= entering and aligned and status[k] == LightStatus.RED
        assert on_red, seed
        # the ego's own connector is green throughout
        ego_connectors = [c for c in lights if lanes[c].roadblock_id in scene.route_roadblock_ids]
        assert ego_connectors and all((lights[c] == LightStatus.GREEN).all() for c in ego_connectors)


def test_blocked_lane_blocker_in_the_lane_and_passed(scenes):
    for seed in SEEDS:
        scene = scenes["blocked_lane", seed]
        line = lane_line(scene, start_lane(scene))
        s, lateral = signed_lateral(line, scene.agents.pose[0, 0, :2])
        assert abs(lateral) < 0.5 and s > signed_lateral(line, scene.ego_pose[:2])[0], seed
        assert np.abs(scene.agents.velocity[0]).max() == 0.0
        # the human starts moving over within 4 s (slowing first when the blocker is far)
        offsets = [abs(signed_lateral(line, p[:2])[1]) for p in global_poses(scene)]
        assert max(offsets) > 0.5, seed


def test_construction_zone_objects_in_the_ego_lane(scenes):
    for seed in SEEDS:
        scene = scenes["construction_zone", seed]
        kinds = set(scene.agents.types.tolist())
        assert AgentType.TRAFFIC_CONE in kinds
        line = lane_line(scene, start_lane(scene))
        zone = [i for i, t in enumerate(scene.agents.types) if t in (AgentType.TRAFFIC_CONE, AgentType.BARRIER,
                                                                    AgentType.CZONE_SIGN)]
        laterals = [signed_lateral(line, scene.agents.pose[i, 0, :2])[1] for i in zone]
        assert len(zone) >= 3 and min(abs(v) for v in laterals) < 1.75 - 0.25, seed   # some inside the lane


def test_unprotected_left_turns_across_oncoming_traffic(scenes):
    for seed in SEEDS:
        scene = scenes["unprotected_left", seed]
        turns = [connector_turn(c) for c in scene.map.lane_connectors if c.roadblock_id in scene.route_roadblock_ids]
        assert "left" in turns, seed
        heading = scene.ego_pose[2]
        oncoming = [a for a in range(scene.agents.num_agents) if scene.agents.types[a] == AgentType.VEHICLE
                    and abs(math.remainder(scene.agents.pose[a, 0, 2] - heading - math.pi, 2 * math.pi)) < 0.5
                    and np.hypot(*scene.agents.velocity[a, 0]) > 5.0]
        assert oncoming, seed


def test_merge_from_the_ramp_into_traffic(scenes):
    for seed in SEEDS:
        scene = scenes["merge", seed]
        connectors = [c for c in scene.map.lane_connectors if c.roadblock_id in scene.route_roadblock_ids]
        assert len(scene.map.lane_connectors) == 1 and connectors, seed          # the merge connector ahead
        main = scene.map.lanes_by_id[connectors[0].successors[0]]
        before = [scene.map.lanes_by_id[i] for i in main.predecessors if not scene.map.lanes_by_id[i].is_connector]
        main_line = lane_line(scene, before[0] if before else main, 400.0)
        in_main = [a for a in range(scene.agents.num_agents)
                   if abs(signed_lateral(main_line, scene.agents.pose[a, 0, :2])[1]) < 0.5
                   and main_line.distance(Point(scene.agents.pose[a, 0, :2])) < 0.5]
        assert in_main, seed                                                     # traffic in the lane it joins


def test_lane_change_passes_a_slower_lead(scenes):
    for seed in SEEDS:
        scene = scenes["lane_change", seed]
        line = lane_line(scene, start_lane(scene))
        s, lateral = signed_lateral(line, scene.agents.pose[0, 0, :2])
        assert abs(lateral) < 0.5 and s > signed_lateral(line, scene.ego_pose[:2])[0], seed   # lead ahead in lane
        assert np.hypot(*scene.agents.velocity[0, 0]) < np.hypot(*scene.history.velocity[-1]), seed
        offsets = [abs(signed_lateral(line, p[:2])[1]) for p in global_poses(scene)]
        assert max(offsets) > 0.3, seed                                          # moving over within 4 s


def test_intersection_crosses_a_signalised_junction(scenes):
    for seed in SEEDS:
        scene = scenes["intersection", seed]
        assert scene.traffic_lights.lane_connector_ids
        assert any(c.roadblock_id in scene.route_roadblock_ids for c in scene.map.lane_connectors)
        assert scene.map.intersections and np.hypot(*scene.history.velocity[-1]) <= 13.5
