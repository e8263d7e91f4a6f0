"""lane_keeping.py: LK counter (> 0.5 m from the centerline for 20 consecutive counted steps)."""

import numpy as np
import pytest
import torch
from shapely import LineString, Point

from envs.metrics.ego_areas import EgoAreas, ego_areas, ego_footprint
from envs.metrics.lane_keeping import lane_keeping
from envs.sim.vehicle import PACIFICA
from tests.envs.metrics.conftest import EGO_LANE_Y, batch, build_map, straight_poses, two_lane_road

F64 = torch.float64


def centers_with_offsets(offsets):
    """(1, 1, T, 2) centres along +x at 1 m per step, `offsets[t]` m left of the centerline y = -1.75."""
    steps = len(offsets)
    x = torch.arange(steps, dtype=F64)
    y = EGO_LANE_Y + torch.as_tensor(offsets, dtype=F64)
    return torch.stack([x, y], -1)[None, None]


def areas_with_intersection(in_intersection):
    flags = torch.as_tensor(in_intersection, dtype=torch.bool)[None, None]
    none = torch.zeros_like(flags)
    return EgoAreas(non_drivable=none, multiple_lanes=none, oncoming=none, center_in_intersection=flags,
                    rear_axle_in_intersection=none)


def lk(offsets, in_intersection=None):
    in_intersection = [False] * len(offsets) if in_intersection is None else in_intersection
    return lane_keeping(centers_with_offsets(offsets), areas_with_intersection(in_intersection),
                        build_map([two_lane_road()]))


def test_twenty_consecutive_deviating_steps_fail():
    result = lk([0.6] * 25 + [0.0] * 16)
    assert result.value.tolist() == [[0.0]]
    assert result.step.tolist() == [[19]]  # the 20th deviating step


def test_fifteen_deviating_steps_or_exactly_half_a_metre_pass():
    assert lk([0.6] * 15 + [0.0] * 26).value.tolist() == [[1.0]]
    assert lk([0.5] * 41).value.tolist() == [[1.0]]  # the limit is strict
    assert lk([-0.6] * 19 + [0.0] + [-0.6] * 19 + [0.0] * 2).value.tolist() == [[1.0]]  # reset in between


def test_intersection_steps_neither_count_nor_reset():
    # 15 deviating, 5 on the centerline inside an intersection, 10 deviating: 25 counted in a row
    offsets = [0.6] * 15 + [0.0] * 5 + [0.6] * 10 + [0.0] * 11
    inside = [False] * 15 + [True] * 5 + [False] * 21
    result = lk(offsets, inside)
    assert result.value.tolist() == [[0.0]]
    assert result.step.tolist() == [[24]]  # 15 + 5 + 5th deviating step after the intersection
    # the same centres outside any intersection: the on-centerline steps reset the counter
    assert lk(offsets).value.tolist() == [[1.0]]
    # deviating steps inside an intersection do not count either: 20 counted fail (at the last step), 19 pass
    twenty = lk([0.6] * 41, [False] * 10 + [True] * 21 + [False] * 10)
    assert twenty.value.tolist() == [[0.0]] and twenty.step.tolist() == [[40]]
    assert lk([0.6] * 41, [False] * 10 + [True] * 22 + [False] * 9).value.tolist() == [[1.0]]


def test_with_ego_areas_on_the_road_and_batched():
    specs = [two_lane_road(), two_lane_road(intersection=(-20.0, 100.0))]
    poses = [[straight_poses(0.0, EGO_LANE_Y, 10.0)[0], straight_poses(0.0, EGO_LANE_Y + 0.8, 10.0)[0]]
             for _ in specs]
    pose = batch(poses)
    _, center = ego_footprint(pose, PACIFICA)
    result = lane_keeping(center, ego_areas(pose, PACIFICA, build_map(specs)), build_map(specs))
    # scene 0: the offset proposal fails; scene 1: it drives inside the intersection all along
    assert result.value.tolist() == [[1.0, 0.0], [1.0, 1.0]]
    assert result.step.tolist() == [[-1, 19], [-1, -1]]


def navsim_lane_keeping(center, line, in_intersection):
    """NAVSIM's loop for one proposal with shapely distances -> (value, step)."""
    centerline = LineString(line)
    consecutive = 0
    for t, (x, y) in enumerate(center):
        if in_intersection[t]:
            continue
        consecutive = consecutive + 1 if Point(x, y).distance(centerline) > 0.5 else 0
        if consecutive >= 20:
            return 0.0, t
    return 1.0, -1


def test_matches_shapely_distances_on_a_winding_centerline():
    rng = np.random.default_rng(3)
    arc = np.linspace(0.0, 60.0, 90)
    specs, centers, flags = [], [], []
    for b in range(3):
        line = np.stack([arc, 4.0 * np.sin(arc / (6.0 + b))], -1) + [5e5, 4e6]  # map-scale coordinates
        spec = two_lane_road()
        spec.centerline = line
        specs.append(spec)
        s = rng.uniform(0.0, 55.0, (6, 1)) + np.linspace(0.0, 4.0, 41)
        base = np.stack([s, 4.0 * np.sin(s / (6.0 + b))], -1) + [5e5, 4e6]
        # offsets around the 0.5 m limit, some steps inside an intersection
        centers.append(base + rng.uniform(-0.75, 0.75, (6, 1, 2)) + rng.normal(0.0, 0.05, (6, 41, 2)))
        flags.append(rng.uniform(size=(6, 41)) < 0.1)
    center = torch.as_tensor(np.stack(centers))
    in_intersection = torch.as_tensor(np.stack(flags))
    none = torch.zeros_like(in_intersection)
    areas = EgoAreas(non_drivable=none, multiple_lanes=none, oncoming=none, center_in_intersection=in_intersection,
                     rear_axle_in_intersection=none)
    result = lane_keeping(center, areas, build_map(specs))
    expected = [[navsim_lane_keeping(centers[b][p], specs[b].centerline, flags[b][p]) for p in range(6)]
                for b in range(3)]
    assert result.value.tolist() == [[v for v, _ in row] for row in expected]
    assert result.step.tolist() == [[s for _, s in row] for row in expected]
    assert 0.0 in result.value and 1.0 in result.value


def test_rejects_a_centerline_without_a_segment_and_non_finite_centres():
    spec = two_lane_road()
    spec.centerline = spec.centerline[:1]
    centers = centers_with_offsets([0.0] * 41)
    with pytest.raises(ValueError, match="centerline_valid"):
        lane_keeping(centers, areas_with_intersection([False] * 41), build_map([spec]))
    centers[0, 0, 3, 1] = float("nan")
    with pytest.raises(ValueError, match="center"):
        lane_keeping(centers, areas_with_intersection([False] * 41), build_map([two_lane_road()]))


def test_deviation_near_a_turning_centerline_and_far_off_it():
    from envs.metrics.lane_keeping import _beyond_limit

    # an L-shaped centerline (east 30 m, then north 30 m) with 1 m vertices, padded to 70 vertices
    east = np.stack([np.arange(0.0, 31.0), np.zeros(31)], -1)
    north = np.stack([np.full(30, 30.0), np.arange(1.0, 31.0)], -1)
    line = np.concatenate([east, north])
    padded = np.concatenate([line, np.zeros((9, 2))])
    valid = np.arange(70) < len(line)
    rng = np.random.default_rng(8)
    points = np.concatenate([
        rng.uniform(-2.0, 32.0, (300, 2)),                        # all around, mostly far
        rng.uniform(27.0, 33.0, (200, 2)) * [1.0, 0.0] + rng.uniform(-0.7, 0.7, (200, 1)) * [0.0, 1.0],
        [[10.0, 0.5], [10.0, -0.5], [30.5, 15.0], [29.5, 15.0], [30.0, 30.5]],   # exactly 0.5 m: not beyond
        [[10.0, 0.5000001], [-0.5000001, 0.0], [500.0, -400.0]],               # just beyond; far off the grid
    ])
    beyond = _beyond_limit(torch.tensor(points)[None], torch.tensor(padded)[None], torch.tensor(valid)[None])[0]
    centerline = LineString(line)
    expected = [Point(x, y).distance(centerline) > 0.5 for x, y in points]
    assert beyond.tolist() == expected
    assert beyond[-8:].tolist() == [False] * 5 + [True] * 3
