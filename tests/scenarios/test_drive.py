"""scenarios.drive on a hand-built straight road: paths, spawning, the rollout and the scene it gives."""

import math

import numpy as np
import pytest
import torch

from envs.sim.map import Area, Lane, RoadMap
from envs.sim.mapgen import GeneratedMap, MapKind
from envs.sim.scene import LightStatus
from envs.sim.vehicle import PACIFICA
from scenarios.drive import (
    NOW, TOTAL_STEPS, AgentPlan, Drive, LightCycle, concat_lanes, drive_scene, human_idm, lane_length, lane_walk,
    map_is_valid, path_plan, pose_on, simulate_drive, spawn_ego,
)

WIDTH = 3.5


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def rect(x0, x1, y0=-WIDTH / 2, y1=WIDTH / 2):
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], float)


def lane(lane_id, block, x0, x1, succ=(), pred=(), connector=False, limit=15.0):
    xs = np.arange(x0, x1 + 0.5, 1.0)
    return Lane(lane_id, block, rect(x0, x1), np.stack([xs, np.zeros_like(xs)], 1), limit, tuple(succ), tuple(pred),
                connector)


def road(signal_groups=None) -> GeneratedMap:
    """L1 (0-100 m) -> connector C1 (100-120 m, inside intersection I1) -> L2 (120-300 m), along +x."""
    lanes = (lane("L1", "RB1", 0, 100, succ=("C1",)), lane("L2", "RB2", 120, 300, pred=("C1",)))
    connectors = (lane("C1", "RBC1", 100, 120, succ=("L2",), pred=("L1",), connector=True),)
    road_map = RoadMap(lanes=lanes, lane_connectors=connectors,
                       roadblocks=(Area("RB1", rect(0, 100)), Area("RB2", rect(120, 300))),
                       roadblock_connectors=(Area("RBC1", rect(100, 120)),),
                       intersections=(Area("I1", rect(99.5, 120.5, -10, 10)),))
    return GeneratedMap(MapKind.STRAIGHT, road_map, dict(signal_groups or {}), (), ("L1",))


def test_lane_paths_hand_worked():
    gen = road()
    path, starts = concat_lanes(gen.map, ("L1", "C1", "L2"))
    assert starts == ((0.0, 15.0), (100.0, 15.0), (120.0, 15.0))
    assert path[0].tolist() == [0.0, 0.0] and path[-1].tolist() == [300.0, 0.0]
    assert np.all(np.diff(path[:, 0]) > 0)                      # shared joints appear once
    assert lane_length(gen.map.lanes_by_id["C1"]) == pytest.approx(20.0)
    assert lane_walk(gen.map, "L1", 110.0, np.random.default_rng(0)) == ("L1", "C1")
    assert lane_walk(gen.map, "L1", 1e6, np.random.default_rng(0)) == ("L1", "C1", "L2")   # dead end stops it
    assert pose_on(path, 150.0).tolist() == pytest.approx([150.0, 0.0, 0.0])
    assert map_is_valid(gen.map)


def test_path_plan_keeps_a_window_around_the_start():
    gen = road({"C1": 0})
    plan = path_plan(gen, ("L1", "C1", "L2"), 50.0, 5.0, (4.5, 2.0), 1.0)
    # window [s - 10, s + 230] = [40, 280] of the 300 m lane sequence; positions are relative to its start
    assert plan.path_offset == 40.0 and plan.s == 10.0
    assert plan.path[0].tolist() == pytest.approx([40.0, 0.0]) and plan.path[-1].tolist() == pytest.approx([280.0, 0.0])
    assert plan.lane_starts == ((-40.0, 15.0), (60.0, 15.0), (80.0, 15.0))
    assert plan.controls == ((60.0, 0),)                        # the signalised connector starts 60 m ahead


def test_spawn_ego_on_the_only_spawn_lane():
    lanes, plan = spawn_ego(road(), np.random.default_rng(1), style=0.5)
    assert lanes == ("L1", "C1", "L2")
    assert plan.is_reactive and plan.size == (PACIFICA.length, PACIFICA.width)
    assert 0.0 <= plan.speed <= 15.0 * 1.1


def drive_alone(lights: LightCycle, speed=10.0, groups=None, rear_x=20.0) -> Drive:
    gen = road(groups)
    ego = path_plan(gen, ("L1", "C1", "L2"), rear_x + PACIFICA.rear_axle_to_center, speed,
                    (PACIFICA.length, PACIFICA.width), speed_factor=10.0 / 15.0)
    return Drive(gen=gen, route_lane_ids=("L1", "C1", "L2"), agents=(ego,), ego_params=human_idm(0.5), lights=lights)


def test_free_road_ego_keeps_its_speed():
    # desired speed = 10/15 of the 15 m/s limit = its speed. The path end (a stopped lead >= 170 m ahead)
    # brakes it by at most 1.4 * (s*/170)^2 with s* = 2.25 + 15 + 100/(2 sqrt(1.4 * 3.25)) = 40.7 m:
    # 0.08 m/s^2 (0.045 at the start, 227 m away)
    drive = drive_alone(LightCycle((), (), 0.0))
    rollout = simulate_drive(drive)
    assert rollout.pose.shape == (1, TOTAL_STEPS + 1, 3) and rollout.ego_s.shape == (TOTAL_STEPS + 1,)
    speed = np.hypot(*rollout.velocity[0].T)
    assert speed[0] == 10.0 and speed[1] == pytest.approx(10.0 - 0.1 * 1.4 * (40.69 / 227.0) ** 2, abs=1e-3)
    assert speed.min() > 10.0 - 5.6 * 0.08
    scene = drive_scene(drive, rollout, "0123456789abcdef", "test")
    # rear axle starts at x = 20 at -1.6 s: x = 36 at t = 0, history every 5 m back to -1.5 s
    assert scene.history.pose[:, 0] == pytest.approx([21.0, 26.0, 31.0, 36.0], abs=0.05)
    assert scene.history.velocity[:, 0] == pytest.approx([10.0] * 4, abs=0.1)
    assert np.abs(scene.history.velocity[:, 1]).max() < 1e-9
    assert scene.human_trajectory.poses[:, 0] == pytest.approx(5.0 * np.arange(1, 9), abs=0.5)
    assert np.abs(scene.human_trajectory.poses[:, 1:]).max() < 1e-9
    assert scene.route_roadblock_ids == ("RB1", "RBC1", "RB2")
    assert scene.agents.num_agents == 0 and scene.command.label == "straight"


def test_red_light_stops_the_ego_before_the_connector():
    # groups 0 and 1 (greens 6 s and 14 s, cycle 28 s); offset 12.6 s puts group 0 in red from -1.6 s to 4 s
    lights = LightCycle((0, 1), (6.0, 14.0), 12.6)
    drive = drive_alone(lights, speed=8.0, groups={"C1": 0}, rear_x=65.0)      # front 31 m before the line
    rollout = simulate_drive(drive)
    scene = drive_scene(drive, rollout, "0123456789abcdef", "test")
    assert scene.traffic_lights.lane_connector_ids == ("C1",)
    assert set(scene.traffic_lights.status[0].tolist()) == {int(LightStatus.RED)}
    front = rollout.ego_s + drive.agents[0].path_offset + PACIFICA.length / 2     # box centre + half length
    assert front.max() <= 100.0 - 1.0                            # never past the line, human min gap kept
    # IDM brakes smoothly towards the human's 2.25 m jam gap: nearly stopped ~3 m before the line at 4 s
    assert front[-1] > 95.0 and np.hypot(*rollout.velocity[0, -1]) < 1.5


def test_ego_must_be_reactive_agent_zero():
    drive = drive_alone(LightCycle((), (), 0.0))
    parked = AgentPlan(path=np.array([[0.0, 5.0], [1.0, 5.0]]), s=0.5, speed=0.0, size=(4.0, 2.0), is_reactive=False)
    with pytest.raises(ValueError, match="ego must be reactive"):
        simulate_drive(Drive(drive.gen, drive.route_lane_ids, (parked, *drive.agents), drive.ego_params, drive.lights))
    assert NOW == 16 and TOTAL_STEPS == 56 and math.isclose(NOW * 0.1, 1.6)
