"""scenarios.family: params checks, the planner registry and alert retry, placement helpers."""

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest

from envs.sim.map import Area, Lane, RoadMap
from envs.sim.mapgen import GeneratedMap, MapKind
from envs.sim.scene import AgentType
from envs.sim.vehicle import PACIFICA
from scenarios.drive import AgentPlan, Drive, LightCycle, Timeline, human_idm, path_plan
from scenarios.family import (
    EDGE_INSET, PLANNERS, RangedParams, add_traffic, drive_planner, ego_plan, lane_change_path, matching_arc,
    road_config, scripted_start, simulate_planned, slow_zone, start_s, stationary,
)


def rect(x0, x1, y0, y1):
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], float)


def line(x0, x1, y):
    xs = np.arange(x0, x1 + 0.5, 1.0)
    return np.stack([xs, np.full_like(xs, y)], 1)


def road() -> GeneratedMap:
    """Two eastbound lanes, x 0..300: R (y = -1.75, limit 15 m/s) and L (y = +1.75)."""
    lanes = (Lane("R", "RB1", rect(0, 300, -3.5, 0), line(0, 300, -1.75), 15.0),
             Lane("L", "RB1", rect(0, 300, 0, 3.5), line(0, 300, 1.75), 15.0))
    road_map = RoadMap(lanes=lanes, roadblocks=(Area("RB1", rect(0, 300, -3.5, 3.5)),))
    return GeneratedMap(MapKind.STRAIGHT, road_map, {}, (), ("R", "L"))


@dataclass(frozen=True)
class Knobs(RangedParams):
    kind: str = "a"
    count: int = 1
    level: float = 0.5
    CHOICES: ClassVar[dict] = {"kind": ("a", "b")}
    RANGES: ClassVar[dict] = {"count": (0, 3), "level": (0.0, 1.0)}


def test_ranged_params_check_and_sample():
    with pytest.raises(ValueError, match=r"^kind='c': must be one of 'a', 'b'"):
        Knobs(kind="c")
    with pytest.raises(ValueError, match=r"^count=1.5: must be an int"):
        Knobs(count=1.5)
    with pytest.raises(ValueError, match=r"^level=2.0: must lie in \[0.0, 1.0\]"):
        Knobs(level=2.0)
    rng = np.random.default_rng(0)
    draws = [Knobs.sample(rng) for _ in range(50)]
    assert {d.kind for d in draws} == {"a", "b"} and {d.count for d in draws} == {0, 1, 2, 3}
    assert all(isinstance(d.count, int) and 0.0 <= d.level <= 1.0 for d in draws)


def test_start_positions_back_along_the_history():
    assert start_s(100.0, 10.0, Timeline()) == pytest.approx(84.0)          # 1.6 s of history
    assert start_s(100.0, 10.0, Timeline(21, 101)) == pytest.approx(79.0)   # 2.1 s
    # scripted: the first step moves by the start speed, then by the script (which holds its last value)
    script = np.concatenate([np.full(10, 4.0), np.full(46, 2.0)])
    assert scripted_start(50.0, 5.0, script, Timeline()) == pytest.approx(50.0 - 0.1 * (5.0 + 10 * 4.0 + 5 * 2.0))


def test_slow_zone_inserts_a_slower_stretch():
    plan = path_plan(road(), ("R",), 50.0, 10.0, (5.0, 2.0), 0.8)            # offset 40: lane starts at -40
    slowed = slow_zone(plan, 100.0, 150.0, 4.0)
    # desired speed 0.8 x limit: a 4 m/s stretch is a 5 m/s "limit" from 60 to 110 (path coordinates)
    assert slowed.lane_starts == ((-40.0, 15.0), (60.0, 5.0), (110.0, 15.0))
    assert plan.lane_starts == ((-40.0, 15.0),)


def test_lane_change_path_and_matching_arc():
    gen = road()
    path, target, offset = lane_change_path(gen, ("R",), 1, 50.0, 30.0)
    assert target == ("L",) and offset == pytest.approx(3.5 - EDGE_INSET)    # L is the road's left edge lane
    assert np.interp(40.0, path[:, 0], path[:, 1]) == pytest.approx(-1.75)
    assert np.interp(65.0, path[:, 0], path[:, 1]) == pytest.approx(-1.75 + offset / 2)
    assert np.interp(200.0, path[:, 0], path[:, 1]) == pytest.approx(-1.75 + offset)
    assert lane_change_path(gen, ("R",), -1, 50.0, 30.0) is None
    assert matching_arc(gen, ("R",), 120.0, ("L",)) == pytest.approx(120.0)


def test_ego_plan_starts_back_by_its_speed():
    plan = ego_plan(road(), ("R",), 100.0, 10.0, 12.0, Timeline())
    # box centre at t0 = rear axle + 1.461; 16 m earlier at the first step; wants 12 of the 15 m/s limit
    assert plan.s + plan.path_offset == pytest.approx(100.0 + PACIFICA.rear_axle_to_center - 16.0)
    assert plan.speed_factor == pytest.approx(0.8) and plan.size == (PACIFICA.length, PACIFICA.width)


def test_add_traffic_avoids_lanes_and_keeps_clear():
    gen = road()
    plans, placed = [], [(np.array([150.0, -1.75]), 4.0)]
    add_traffic(gen, plans, placed, np.random.default_rng(1), 4, np.array([150.0, 0.0]), Timeline(), avoid_lanes={"R"})
    assert 1 <= len(plans) <= 4 and len(placed) == len(plans) + 1
    for plan in plans:
        assert np.allclose(plan.path[:, 1], 1.75) and plan.is_reactive         # all on lane L
    centres = [c for c, _ in placed]
    assert min(np.hypot(*(a - b)) for i, a in enumerate(centres) for b in centres[:i]) > 4.0


def rear_ended(alert: bool) -> Drive:
    """The ego cruising at 8 m/s; agent 1 (non-reactive, 14 m/s) comes from behind in its lane and hits
    it unless `alert` (then it is slower than the ego)."""
    gen = road()
    ego = path_plan(gen, ("R",), 60.0, 8.0, (PACIFICA.length, PACIFICA.width), 8.0 / 15.0)
    chaser = path_plan(gen, ("R",), 30.0, 6.0 if alert else 14.0, (4.5, 2.0), 1.0, is_reactive=False)
    return Drive(gen=gen, route_lane_ids=("R",), agents=(ego, chaser), ego_params=human_idm(0.5),
                 lights=LightCycle((), (), 0.0), key_agents=(1,))


def test_simulate_planned_retries_with_an_alert_human():
    calls = []

    def plan(params, rng, timeline, alert):
        calls.append((alert, float(rng.random())))          # the retry starts from the same rng state
        return rear_ended(alert)

    drive, rollout = simulate_planned(plan, None, np.random.default_rng(3))
    assert [c[0] for c in calls] == [False, True] and calls[0][1] == calls[1][1]
    assert drive.agents[1].speed == 6.0 and rollout.pose.shape == (2, 57, 3)
    calls.clear()
    simulate_planned(lambda p, r, t, a: calls.append(a) or rear_ended(True), None, np.random.default_rng(3))
    assert calls == [False]                                    # no contact: no retry


def test_planner_registry_rejects_a_second_owner():
    assert {"cut_in", "hard_brake", "merge"} <= set(PLANNERS)

    def plan(params, rng, timeline, alert):
        return None

    with pytest.raises(ValueError, match=r"^name='cut_in': planner already registered"):
        drive_planner("cut_in")(plan)


def test_stationary_and_road_config():
    cone = stationary(np.array([3.0, 4.0]), 0.0, (0.5, 0.5), AgentType.TRAFFIC_CONE)
    assert isinstance(cone, AgentPlan) and not cone.is_reactive and cone.speed == 0.0
    assert cone.path[0].tolist() == [2.0, 4.0] and cone.s == 1.0                 # centre at arc 1 of a 2 m path
    assert road_config(Timeline()).num_segments_range == (3, 5)
    long = road_config(Timeline(21, 101), lanes=(2, 4))
    assert long.num_segments_range == (5, 6) and long.arm_segments == 3 and long.lanes_per_direction_range == (2, 4)
