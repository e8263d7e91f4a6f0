"""scenarios.lanes on hand-built roads: offsets, lane-change paths, neighbours, turns, crossings, edges."""

import math

import numpy as np
import pytest

from envs.sim.map import Area, Lane, RoadMap
from scenarios.lanes import (
    approach_lanes, arc_lengths, connector_turn, follow_lanes, in_drivable_area, lane_count_beside, lane_offset,
    neighbour_lane, offset_profile, parallel_lanes, path_crossing, path_poses, points_at, road_span, shift_path,
    smoothstep,
)


def rect(x0, x1, y0, y1):
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], float)


def line(x0, x1, y):
    xs = np.arange(x0, x1 + 0.5, 1.0)
    return np.stack([xs, np.full_like(xs, y)], 1)


def two_lane_road() -> RoadMap:
    """Eastbound roadblock RB1 (x 0..100, y -3.5..3.5): R1 at y = -1.75, L1 at y = 1.75; RB2 (x 100..200)
    continues them as R2, L2."""
    lanes = (
        Lane("R1", "RB1", rect(0, 100, -3.5, 0), line(0, 100, -1.75), 15.0, ("R2",), ()),
        Lane("L1", "RB1", rect(0, 100, 0, 3.5), line(0, 100, 1.75), 15.0, ("L2",), ()),
        Lane("R2", "RB2", rect(100, 200, -3.5, 0), line(100, 200, -1.75), 15.0, (), ("R1",)),
        Lane("L2", "RB2", rect(100, 200, 0, 3.5), line(100, 200, 1.75), 15.0, (), ("L1",)),
    )
    blocks = (Area("RB1", rect(0, 100, -3.5, 3.5)), Area("RB2", rect(100, 200, -3.5, 3.5)))
    return RoadMap(lanes=lanes, roadblocks=blocks)


def test_arc_lengths_points_and_poses():
    path = np.array([[0.0, 0.0], [3.0, 4.0], [3.0, 10.0]])
    assert arc_lengths(path).tolist() == [0.0, 5.0, 11.0]
    # 2.5 m along the first segment (direction (0.6, 0.8)), 1 m to its left (normal (-0.8, 0.6))
    assert points_at(path, np.array([2.5]), 1.0)[0] == pytest.approx([1.5 - 0.8, 2.0 + 0.6])
    assert points_at(path, np.array([-3.0, 99.0])).tolist() == [[0.0, 0.0], [3.0, 10.0]]   # clipped
    assert path_poses(path)[:, 2] == pytest.approx([math.atan2(4, 3), math.pi / 2, math.pi / 2])


def test_smoothstep_and_offset_profile():
    # 10 x^3 - 15 x^4 + 6 x^5: 0.25 -> 0.015625 * 6.625
    assert smoothstep(np.array([-1.0, 0.0, 0.25, 0.5, 1.0, 2.0])) == pytest.approx([0, 0, 0.103515625, 0.5, 1, 1])
    s = np.array([5.0, 10.0, 15.0, 20.0, 25.0, 35.0, 45.0])
    assert offset_profile(s, ((10.0, 0.0), (20.0, 2.0), (40.0, -1.0))) == pytest.approx(
        [0, 0, 1, 2, 2 - 3 * 0.103515625, 2 - 3 * 0.896484375, -1])
    with pytest.raises(ValueError, match=r"^knots="):
        offset_profile(s, ((10.0, 0.0), (10.0, 1.0)))


def test_shift_path_moves_a_straight_line_sideways():
    path = shift_path(np.array([[0.0, 0.0], [100.0, 0.0]]), ((10.0, 0.0), (20.0, 2.0)))
    assert path[0].tolist() == [0.0, 0.0] and path[-1].tolist() == pytest.approx([100.0, 2.0])
    assert np.interp(15.0, path[:, 0], path[:, 1]) == pytest.approx(1.0)
    blend = path[(path[:, 0] >= 10) & (path[:, 0] <= 20), 0]
    assert np.all(np.diff(path[:, 0]) > 0) and np.diff(blend).max() <= 1.0 + 1e-9       # 1 m samples there


def test_neighbours_and_offsets():
    road = two_lane_road()
    assert lane_offset(road, "R1", "L1") == pytest.approx(3.5) and lane_offset(road, "L1", "R1") == pytest.approx(-3.5)
    assert neighbour_lane(road, "R1", 1) == "L1" and neighbour_lane(road, "R1", -1) is None
    assert neighbour_lane(road, "L2", -1) == "R2"
    assert parallel_lanes(road, ("R1", "R2"), 1) == ("L1", "L2") and parallel_lanes(road, ("R1", "R2"), -1) is None
    assert lane_count_beside(road, "R1", 1) == 1 and lane_count_beside(road, "L1", 1) == 0
    with pytest.raises(ValueError, match=r"^side=0"):
        neighbour_lane(road, "R1", 0)


def test_lane_sequences_forward_and_back():
    road = two_lane_road()
    assert approach_lanes(road, "R2", 50.0) == ("R1", "R2")
    assert approach_lanes(road, "R1", 50.0) == ("R1",)                      # nothing before it
    assert follow_lanes(road, ("R1",), 150.0) == ("R1", "R2") and follow_lanes(road, ("R1",), 50.0) == ("R1",)


def test_connector_turns():
    angles = np.linspace(0.0, math.pi / 2, 20)
    left = np.stack([10 * np.sin(angles), 10 - 10 * np.cos(angles)], 1)        # heading +x, turning to +y
    right = left * [1.0, -1.0]
    straight = line(0, 20, 0.0)
    turns = [connector_turn(Lane(n, "B", rect(0, 1, 0, 1), c)) for n, c in (("a", left), ("b", right), ("c", straight))]
    assert turns == ["left", "right", "straight"]


def test_path_crossing():
    a = np.array([[0.0, 0.0], [10.0, 0.0], [20.0, 0.0]])
    b = np.array([[15.0, -5.0], [15.0, 5.0]])
    assert path_crossing(a, b) == pytest.approx((15.0, 5.0))
    assert path_crossing(a, b + [0.0, 10.0]) is None
    # a crossing twice: the first one along a
    zigzag = np.array([[0.0, -1.0], [0.0, 1.0], [5.0, 1.0], [5.0, -1.0]])
    assert path_crossing(zigzag, np.array([[-1.0, 0.0], [6.0, 0.0]])) == pytest.approx((1.0, 1.0))


def test_drivable_area_and_road_span():
    road = two_lane_road()
    inside = in_drivable_area(road, np.array([[50.0, 0.0], [50.0, 3.4], [50.0, 3.5], [50.0, 4.0], [-1.0, 0.0]]))
    assert inside.tolist() == [True, True, False, False, False]               # the boundary is outside (strict)
    right, left = road_span(road, line(0, 200, -1.75), 50.0)
    # edges at -1.75 and +5.25 m from lane R1's centre; 0.25 m sampling keeps only strictly inside points
    assert right == pytest.approx(-1.5) and left == pytest.approx(5.0)
    with pytest.raises(ValueError, match=r"^s="):
        road_span(road, line(0, 200, 10.0), 50.0)
