"""Tests for envs/sim/road_geometry.py on hand-worked lines, quarter circles and boxes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from envs.sim.geometry import polygon_is_simple, polygon_signed_area
from envs.sim.road_geometry import (
    Path,
    arc_path,
    chain_paths,
    drop_collinear,
    frame_point,
    frame_rectangle,
    hermite_path,
    lane_ring,
    min_turn_radius,
    offset_points,
    rigid_transform,
    wrap_angle,
)


def test_wrap_angle_range_and_in_range_values_unchanged():
    np.testing.assert_allclose(wrap_angle(np.array([3 * math.pi, -math.pi, 2 * math.pi + 0.5, -4.0])),
                               [math.pi, math.pi, 0.5, 2 * math.pi - 4.0])
    # bit-identical for values already in range ((a + pi) - pi != a in floating point)
    assert wrap_angle(0.1) == 0.1 and wrap_angle(-3.0) == -3.0


def test_arc_path_straight_line():
    path = arc_path(np.array([1.0, 2.0]), math.pi / 2, 10.0, 0.0, spacing=3.0)
    assert len(path.points) == 5  # ceil(10 / 3) = 4 intervals of 2.5 m
    np.testing.assert_allclose(path.points[:, 0], 1.0, atol=1e-12)
    np.testing.assert_allclose(path.points[:, 1], [2.0, 4.5, 7.0, 9.5, 12.0])
    np.testing.assert_allclose(path.headings, math.pi / 2)
    assert path.length == pytest.approx(10.0)


def test_arc_path_quarter_circle_left():
    """Radius 10 from the origin heading +x, turning left: centre (0, 10), ends at (10, 10) heading north."""
    path = arc_path(np.zeros(2), 0.0, 5 * math.pi, 0.1, spacing=1.0)
    np.testing.assert_allclose(path.points[-1], [10.0, 10.0], atol=1e-12)
    assert path.headings[-1] == pytest.approx(math.pi / 2)
    np.testing.assert_allclose(np.linalg.norm(path.points - [0.0, 10.0], axis=1), 10.0)
    assert min_turn_radius(path) == pytest.approx(10.0, rel=1e-3)
    with pytest.raises(ValueError, match="length=0.0"):
        arc_path(np.zeros(2), 0.0, 0.0, 0.0, 1.0)


def test_chain_paths_joints_are_exact():
    paths = chain_paths(np.zeros(2), 0.0, [10.0, 5 * math.pi, 7.0], [0.0, -0.1, 0.0], spacing=1.0)
    for before, after in zip(paths, paths[1:]):
        assert before.points[-1].tobytes() == after.points[0].tobytes()
        assert before.headings[-1] == after.headings[0]
    # straight 10 m, right quarter turn of radius 10, then 7 m south
    np.testing.assert_allclose(paths[1].points[-1], [20.0, -10.0], atol=1e-12)
    np.testing.assert_allclose(paths[2].points[-1], [20.0, -17.0], atol=1e-12)


def test_hermite_path_straight_is_a_uniform_line():
    path = hermite_path(np.array([0.0, 0.0]), 0.0, np.array([10.0, 0.0]), 0.0, spacing=1.0)
    np.testing.assert_allclose(path.points[:, 1], 0.0, atol=1e-12)
    np.testing.assert_allclose(np.diff(path.points[:, 0]), 1.0, atol=1e-3)
    np.testing.assert_allclose(path.headings, 0.0, atol=1e-12)


def test_hermite_path_quarter_turn_approximates_a_circle():
    """Right turn from heading -x at (8, 0) to heading +y at (0, 8): circle of radius 8 about (8, 8)."""
    start, end = np.array([8.0, 0.0]), np.array([0.0, 8.0])
    path = hermite_path(start, math.pi, end, math.pi / 2, spacing=1.0)
    assert path.points[0].tobytes() == start.tobytes() and path.points[-1].tobytes() == end.tobytes()
    assert (path.headings[0], path.headings[-1]) == (math.pi, math.pi / 2)
    np.testing.assert_allclose(np.linalg.norm(path.points - [8.0, 8.0], axis=1), 8.0, atol=8 * 3e-4)
    steps = np.linalg.norm(np.diff(path.points, axis=0), axis=1)
    assert steps.max() <= 1.0 and steps.min() > 0.9  # equal arc length, 4 pi (12.57 m) in 13 steps
    with pytest.raises(ValueError, match="distinct"):
        hermite_path(start, 0.0, start, 0.0, 1.0)


def test_offset_points_and_lane_ring():
    ref = arc_path(np.zeros(2), 0.0, 4.0, 0.0, 1.0)
    left, right = offset_points(ref, 1.5), offset_points(ref, -1.5)
    np.testing.assert_allclose(left[:, 1], 1.5)
    np.testing.assert_allclose(right[:, 1], -1.5)
    ring = lane_ring(right, left)
    assert ring.shape == (10, 2) and polygon_is_simple(ring)
    assert polygon_signed_area(ring) == pytest.approx(12.0)  # counter-clockwise, 4 x 3 m


def test_path_reversed():
    path = Path(np.array([[0.0, 0.0], [1.0, 0.0]]), np.array([0.0, 0.0]))
    back = path.reversed()
    np.testing.assert_array_equal(back.points, [[1.0, 0.0], [0.0, 0.0]])
    np.testing.assert_allclose(back.headings, math.pi)


def test_min_turn_radius_of_straight_is_inf():
    assert min_turn_radius(arc_path(np.zeros(2), 1.0, 5.0, 0.0, 1.0)) == math.inf


def test_frame_point_and_rectangle():
    np.testing.assert_allclose(frame_point(np.array([1.0, 1.0]), math.pi / 2, 2.0, 3.0), [-2.0, 3.0])
    box = frame_rectangle(math.pi, 5.0, 8.0, -1.0, 2.0)  # ray pointing -x: along 5..8 -> x in [-8, -5]
    np.testing.assert_allclose(box, [[-5.0, 1.0], [-8.0, 1.0], [-8.0, -2.0], [-5.0, -2.0]], atol=1e-12)
    assert polygon_signed_area(box) == pytest.approx(9.0)


def test_rigid_transform_rotates_then_translates():
    out = rigid_transform(np.array([[1.0, 0.0], [0.0, 2.0]]), math.pi / 2, np.array([10.0, 20.0]))
    np.testing.assert_allclose(out, [[10.0, 21.0], [8.0, 20.0]], atol=1e-12)
    same = rigid_transform(np.array([[0.3, 0.7], [5.0, 1.0], [0.3, 0.7]]), 0.4, np.array([1.0, 2.0]))
    assert same[0].tobytes() == same[2].tobytes()


def test_drop_collinear_keeps_corners_and_curves():
    square = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [2.0, 1.0], [2.0, 2.0], [1.0, 2.0], [0.0, 2.0]])
    np.testing.assert_array_equal(drop_collinear(square), [[0.0, 0.0], [2.0, 0.0], [2.0, 2.0], [0.0, 2.0]])
    arc = arc_path(np.zeros(2), 0.0, 10.0, 0.01, 1.0)  # sagitta ~1e-3 m per vertex: all kept
    ring = lane_ring(offset_points(arc, -1.0), offset_points(arc, 1.0))
    assert len(drop_collinear(ring)) == len(ring)
    spike = np.array([[0.0, 0.0], [2.0, 0.0], [1.0, 0.0], [1.0, 1.0]])  # folds back: not redundant
    assert len(drop_collinear(spike)) == 4
