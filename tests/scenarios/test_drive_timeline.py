"""scenarios.drive extensions: long timelines, timed stops, scenes at any "now", a lane-change baseline."""

import numpy as np
import pytest

from envs.sim.map import Area, Lane, RoadMap
from envs.sim.mapgen import GeneratedMap, MapKind
from envs.sim.scene import LightStatus
from envs.sim.vehicle import PACIFICA
from scenarios.drive import (
    Drive, LightCycle, Timeline, drive_scene, ego_poses, human_idm, path_plan, rear_axle_at, simulate_drive,
    touching_agents,
)
from scenarios.lanes import path_poses

LONG = Timeline(history_steps=21, total_steps=101)


def rect(x0, x1, y0, y1):
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], float)


def road() -> GeneratedMap:
    """One eastbound lane L1 along y = 0, x 0..400 (15 m/s), and a parallel lane L2 at y = 3.5."""
    xs = np.arange(0.0, 400.5, 1.0)
    lanes = (Lane("L1", "RB1", rect(0, 400, -1.75, 1.75), np.stack([xs, 0 * xs], 1), 15.0),
             Lane("L2", "RB1", rect(0, 400, 1.75, 5.25), np.stack([xs, 0 * xs + 3.5], 1), 15.0))
    road_map = RoadMap(lanes=lanes, roadblocks=(Area("RB1", rect(0, 400, -1.75, 5.25)),),
                       lane_connectors=(Lane("C9", "RBC9", rect(500, 510, 0, 1), np.array([[500.0, 0.5], [510.0, 0.5]]),
                                             15.0, (), (), True),))
    return GeneratedMap(MapKind.STRAIGHT, road_map, {"C9": 1}, (), ("L1",))


def cruise(timeline=Timeline(), **kw) -> Drive:
    gen = road()
    ego = path_plan(gen, ("L1",), 20.0 + PACIFICA.rear_axle_to_center, 10.0, (PACIFICA.length, PACIFICA.width),
                    10.0 / 15.0, **kw)
    return Drive(gen=gen, route_lane_ids=("L1",), agents=(ego,), ego_params=human_idm(0.5),
                 lights=LightCycle((0, 1), (6.0, 10.0), 0.0), timeline=timeline)


def test_timeline_checks_and_times():
    assert Timeline().start_s == pytest.approx(-1.6) and Timeline().end_s == pytest.approx(4.0)
    assert LONG.start_s == pytest.approx(-2.1) and LONG.end_s == pytest.approx(8.0)
    assert LONG.step_times()[[0, 20, -1]] == pytest.approx([-2.0, 0.0, 8.0])
    with pytest.raises(ValueError, match=r"^history_steps=10"):
        Timeline(history_steps=10)
    with pytest.raises(ValueError, match=r"^total_steps=50"):
        Timeline(history_steps=16, total_steps=50)


def test_long_rollout_and_scenes_at_any_now():
    drive = cruise(LONG)
    rollout = simulate_drive(drive)
    assert rollout.pose.shape == (1, 102, 3)
    # free road at its desired speed, ~1 m per step (the path end 130+ m ahead brakes it a little)
    assert 99.0 < rollout.ego_s[-1] - rollout.ego_s[0] <= 101.0
    poses = ego_poses(drive, rollout)
    for now in (16, 21, 61):
        scene = drive_scene(drive, rollout, "t", "test", now=now)
        assert scene.ego_pose == pytest.approx(poses[now])
        assert scene.history.pose == pytest.approx(poses[[now - 15, now - 10, now - 5, now]])
        # lights: group 1 of the cycle (green 6 s, yellow 3 s, all-red 1 s; then group 1 from 10 s)
        t = (now - 21) * 0.1 + np.arange(41) * 0.1
        expected = drive.lights.status(np.array([1]), 0.0)
        assert scene.traffic_lights.status[0, 0] == drive.lights.status(np.array([1]), float(t[0]))[0]
        assert scene.traffic_lights.status[0, -1] == drive.lights.status(np.array([1]), float(t[-1]))[0]
        assert expected[0] == LightStatus.RED
    assert drive_scene(drive, rollout, "t", "test").ego_pose == pytest.approx(poses[21])     # default: t0
    with pytest.raises(ValueError, match=r"^now=62"):
        drive_scene(drive, rollout, "t", "test", now=62)


def test_timed_stop_holds_the_ego_only_in_its_window():
    # a stop line at x = 60 (front bumper) from t = 0 to t = 2 s: free before, braking after, then released
    drive = cruise(timed_stops=((60.0, 0.0, 2.0),))
    rollout = simulate_drive(drive)
    speed = np.hypot(*rollout.velocity[0].T)
    free = simulate_drive(cruise())
    assert speed[:17] == pytest.approx(np.hypot(*free.velocity[0, :17].T))
    front = rollout.ego_s + drive.agents[0].path_offset + PACIFICA.length / 2
    assert speed[36] < speed[16] - 3.0 and front[:37].max() < 60.0          # braking, short of the line at 2 s
    assert speed[-1] > speed[37]                                              # released at 2 s
    # an agent whose window has not opened yet is not held: same as free before t = 0
    later = simulate_drive(cruise(timed_stops=((60.0, 5.0, 6.0),)))
    assert later.ego_s == pytest.approx(free.ego_s)


def test_ego_baseline_replaces_the_route_lane():
    gen = road()
    shifted = path_poses(np.stack([np.arange(0.0, 401.0), np.full(401, 2.0)], 1))     # 2 m left of L1
    base = cruise()
    drive = Drive(gen=gen, route_lane_ids=("L1",), agents=base.agents, ego_params=base.ego_params,
                  lights=base.lights, ego_baseline=shifted)
    rollout = simulate_drive(drive)
    scene = drive_scene(drive, rollout, "t", "test")
    assert scene.ego_pose[1] == pytest.approx(2.0) and scene.history.pose[:, 1] == pytest.approx(2.0)
    centre = rollout.ego_s[16] + drive.agents[0].path_offset
    expected = [centre - PACIFICA.rear_axle_to_center, 2.0, 0.0]
    assert rear_axle_at(drive, np.array([centre]))[0] == pytest.approx(expected)


def test_touching_agents_finds_the_overlap():
    gen = road()
    base = cruise()
    parked = path_plan(gen, ("L2",), 60.0, 0.0, (4.5, 2.0), 1.0, is_reactive=False)                  # next lane
    wrong_way = path_plan(gen, ("L2",), 300.0, 10.0, (4.5, 2.0), 1.0, is_reactive=False,
                          path=np.stack([np.arange(400.0, -1.0, -1.0), np.zeros(401)], 1))        # head-on at x = 100
    drive = Drive(gen=gen, route_lane_ids=("L1",), agents=(base.agents[0], parked, wrong_way),
                  ego_params=human_idm(0.5), lights=base.lights)
    rollout = simulate_drive(drive)
    assert touching_agents(drive, rollout, 16).tolist() == [False, True]
