"""scenarios.junction: gap acceptance, launch times, green windows, movements of a generated crossing."""

import math

import numpy as np
import pytest

from envs.sim.mapgen import generate_map
from envs.sim.scene import LightStatus
from scenarios.drive import map_is_valid
from scenarios.junction import (
    crossing_movements, cycle_with_green, go_time, junction_route, lane_start, launch_time, turn_movements,
)
from scenarios.lanes import connector_turn, path_poses


def test_go_time_takes_the_first_gap_that_fits():
    windows = [(4.0, 6.0), (1.0, 2.0)]
    assert go_time(windows, 0.0, 0.5) == 0.0          # before the first vehicle
    assert go_time(windows, 0.0, 1.5) == 2.0          # between 2 and 4
    assert go_time(windows, 0.0, 2.5) == 6.0          # only after the last
    assert go_time(windows, 5.0, 1.0) == 6.0          # ready inside a window: after it
    assert go_time([], 3.0, 9.0) == 3.0


def test_launch_time():
    assert launch_time(8.0, 0.0, 2.0) == pytest.approx(math.sqrt(8.0))        # d = a t^2 / 2
    assert launch_time(7.5, 5.0, 1.0) == pytest.approx(-5.0 + math.sqrt(40.0))
    assert launch_time(-1.0, 5.0, 1.0) == 0.0


def test_cycle_with_green_keeps_the_group_green_over_the_window():
    rng = np.random.default_rng(0)
    for _ in range(20):
        cycle = cycle_with_green((0, 1, 2, 3), 2, -2.1, 8.5, rng)
        for t in np.arange(-2.1, 8.5, 0.1):
            status = cycle.status(np.array([0, 1, 2, 3]), float(t))
            assert status[2] == LightStatus.GREEN
            assert set(status[[0, 1, 3]].tolist()) <= {LightStatus.RED, LightStatus.YELLOW}
    with pytest.raises(ValueError, match=r"^group=5"):
        cycle_with_green((0, 1), 5, 0.0, 1.0, rng)


@pytest.fixture(scope="module")
def crossing():
    rng = np.random.default_rng(4)
    while True:
        gen = generate_map("intersection", rng)
        if map_is_valid(gen.map):
            return gen


def test_movements_of_a_four_way_crossing(crossing):
    lanes = crossing.map.lanes_by_id
    for turn in ("straight", "left", "right"):
        moves = turn_movements(crossing, turn)
        assert moves and all(connector_turn(lanes[c]) == turn and c in lanes[a].successors for a, c in moves)
    # left turns go from each arm's inner lane only: one per arm
    assert len(turn_movements(crossing, "left")) == 4
    approach, connector = turn_movements(crossing, "straight")[0]
    heading = path_poses(lanes[connector].centerline)[0, 2]
    crossings = crossing_movements(crossing, connector, turn="straight")
    assert crossings
    for other, on_own, on_other in crossings:     # perpendicular, inside both connectors
        other_heading = path_poses(lanes[other].centerline)[0, 2]
        assert abs(abs(math.remainder(other_heading - heading, math.pi))) == pytest.approx(math.pi / 2, abs=0.05)
        assert 0 < on_own < np.hypot(*np.diff(lanes[connector].centerline, axis=0).T).sum()
        assert 0 < on_other < np.hypot(*np.diff(lanes[other].centerline, axis=0).T).sum()


def test_junction_route_is_a_successor_chain(crossing):
    approach, connector = turn_movements(crossing, "left")[0]
    route = junction_route(crossing, approach, connector, 30.0, 60.0)
    lanes = crossing.map.lanes_by_id
    assert connector in route and route[route.index(connector) - 1] == approach
    assert all(b in lanes[a].successors for a, b in zip(route, route[1:]))
    start = lane_start(crossing, route, connector)
    before = sum(np.hypot(*np.diff(lanes[i].centerline, axis=0).T).sum() for i in route[:route.index(connector)])
    assert start == pytest.approx(before, abs=1e-6)
