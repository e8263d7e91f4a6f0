"""ego_areas.py: footprint geometry and NAVSIM's per-step map flags on the straight two-lane road."""

import math

import numpy as np
import pytest
import torch

from envs.metrics.ego_areas import ego_areas, ego_footprint
from envs.sim.vehicle import PACIFICA
from tests.envs.metrics.conftest import MapSpec, build_map, rect, two_lane_road

F64 = torch.float64
HALF_W = 2.297 / 2  # 1.1485


def areas_at(spec, poses):
    """Flags for one scene with one proposal per pose (x, y, heading) at a single step -> dict of lists."""
    pose = torch.tensor(poses, dtype=F64)[None, :, None, :]  # (1, P, 1, 3)
    areas = ego_areas(pose, PACIFICA, build_map([spec]))
    return {name: getattr(areas, name)[0, :, 0].tolist() for name in
            ("non_drivable", "multiple_lanes", "oncoming", "center_in_intersection", "rear_axle_in_intersection")}


def test_footprint_of_the_pacifica_at_the_origin():
    corners, center = ego_footprint(torch.zeros(3, dtype=F64), PACIFICA)
    # front 4.049 m and rear 1.127 m from the rear axle; centre 1.461 m ahead of it
    expected = [[4.049, HALF_W], [-1.127, HALF_W], [-1.127, -HALF_W], [4.049, -HALF_W]]
    torch.testing.assert_close(corners, torch.tensor(expected, dtype=F64))
    torch.testing.assert_close(center, torch.tensor([1.461, 0.0], dtype=F64))


def test_footprint_rotates_about_the_rear_axle():
    corners, center = ego_footprint(torch.tensor([[10.0, 5.0, math.pi / 2]], dtype=F64), PACIFICA)
    torch.testing.assert_close(center, torch.tensor([[10.0, 6.461]], dtype=F64))
    torch.testing.assert_close(corners[0, 0], torch.tensor([10.0 - HALF_W, 5.0 + 4.049], dtype=F64))  # FL
    torch.testing.assert_close(corners[0, 3], torch.tensor([10.0 + HALF_W, 5.0 + 4.049], dtype=F64))  # FR


def test_footprint_rejects_a_pose_without_heading():
    with pytest.raises(ValueError, match="pose.shape"):
        ego_footprint(torch.zeros(4, 2, dtype=F64), PACIFICA)


def test_centred_in_the_route_lane_raises_no_flag():
    flags = areas_at(two_lane_road(), [[0.0, -1.75, 0.0]])
    assert flags == {"non_drivable": [False], "multiple_lanes": [False], "oncoming": [False],
                     "center_in_intersection": [False], "rear_axle_in_intersection": [False]}


def test_straddling_two_lanes_is_multiple_lanes_and_the_centre_decides_oncoming():
    # y = -0.5: corners at y = -1.65 (lane 0) and 0.65 (lane 1); centre in the on-route lane 0
    # y = +0.5: same straddle, centre in the off-route lane 1
    flags = areas_at(two_lane_road(), [[0.0, -0.5, 0.0], [0.0, 0.5, 0.0]])
    assert flags["multiple_lanes"] == [True, True]
    assert flags["oncoming"] == [False, True]
    assert flags["non_drivable"] == [False, False]


def test_one_lane_holding_all_corners_cancels_multiple_lanes():
    spec = two_lane_road()
    spec.lanes.append(rect(-50.0, 250.0, -3.4, 3.4))  # e.g. an overlapping connector holding the whole box
    spec.lane_on_route.append(False)
    flags = areas_at(spec, [[0.0, -0.5, 0.0]])
    assert flags["multiple_lanes"] == [False]


def test_no_lane_or_one_lane_touched_is_not_multiple_lanes():
    # y = 20: box entirely off the road; y = 2.5: left corners at 3.65 off the road, right ones in lane 1
    flags = areas_at(two_lane_road(), [[0.0, 20.0, 0.0], [0.0, 2.5, 0.0]])
    assert flags["multiple_lanes"] == [False, False]
    assert flags["non_drivable"] == [True, True]
    assert flags["oncoming"] == [True, True]


def test_corners_may_sit_in_different_drivable_polygons():
    # roadblock up to x = 100, intersection from x = 100: the box straddles x = 100
    spec = MapSpec(roadblocks=[rect(-50.0, 100.0, -3.5, 3.5)], lanes=[rect(-50.0, 100.0, -3.5, 0.0)],
                   lane_on_route=[True], intersections=[rect(100.0, 120.0, -3.5, 3.5)])
    flags = areas_at(spec, [[98.0, -1.75, 0.0], [121.0, -1.75, 0.0]])
    assert flags["non_drivable"] == [False, True]


def test_points_on_a_polygon_edge_are_outside():
    # the right corners lie exactly on the road edge y = -3.5: not strictly inside -> off-road
    pose = [0.0, -3.5 + HALF_W, 0.0]
    corners, _ = ego_footprint(torch.tensor(pose, dtype=F64), PACIFICA)
    assert corners[2:, 1].tolist() == [-3.5, -3.5]
    flags = areas_at(two_lane_road(), [pose])
    assert flags["non_drivable"] == [True]


def test_intersection_flags_use_the_centre_and_the_rear_axle_separately():
    spec = two_lane_road(intersection=(40.0, 60.0))
    # rear axle at 39 (outside), centre at 40.461 (inside); rear axle at 59 (inside), centre at 60.461
    flags = areas_at(spec, [[39.0, -1.75, 0.0], [59.0, -1.75, 0.0]])
    assert flags["center_in_intersection"] == [True, False]
    assert flags["rear_axle_in_intersection"] == [False, True]


def test_batched_scenes_equal_each_scene_alone():
    specs = [two_lane_road(intersection=(10.0, 20.0)), two_lane_road()]
    specs[1].lanes.append(rect(-50.0, 250.0, 3.5, 7.0))
    specs[1].lane_on_route.append(True)
    specs[1].roadblocks.append(rect(-50.0, 250.0, 3.5, 7.0))
    rng = np.random.default_rng(0)
    pose = torch.as_tensor(np.stack([
        np.stack([rng.uniform(-5, 30, (3, 41)), rng.uniform(-6, 8, (3, 41)), rng.uniform(-0.5, 0.5, (3, 41))], -1)
        for _ in specs
    ]))
    batched = ego_areas(pose, PACIFICA, build_map(specs))
    for b, spec in enumerate(specs):
        alone = ego_areas(pose[b : b + 1], PACIFICA, build_map([spec]))
        for name in ("non_drivable", "multiple_lanes", "oncoming", "center_in_intersection",
                     "rear_axle_in_intersection"):
            assert torch.equal(getattr(batched, name)[b], getattr(alone, name)[0]), name
    # the random poses do exercise the flags
    assert batched.multiple_lanes.any() and batched.non_drivable.any() and (~batched.oncoming).any()


def test_ego_areas_rejects_a_batch_that_does_not_match_the_map():
    pose = torch.zeros(2, 1, 41, 3, dtype=F64)
    with pytest.raises(ValueError, match="batch"):
        ego_areas(pose, PACIFICA, build_map([two_lane_road()]))


@pytest.mark.parametrize("slots", [(3, 19), (3, 66), (66, 3), (8, 9)])
def test_lane_flags_with_more_than_64_lane_slots(slots):
    # 70 lane slots: far-away dummies except the two road lanes at `slots`. With 70 slots a lane set is 16
    # bytes and slot m sits in byte m % 16: (3, 19) share a byte, (3, 66) do not, 8 and 9 are in different
    # 64-bit words; all must count as two lanes.
    road = two_lane_road()
    lanes = [rect(1000.0 + 10 * k, 1005.0 + 10 * k, 0.0, 1.0) for k in range(70)]
    on_route = [False] * 70
    lanes[slots[0]], lanes[slots[1]] = road.lanes
    on_route[slots[0]] = True
    spec = MapSpec(roadblocks=road.roadblocks, lanes=lanes, lane_on_route=on_route)
    flags = areas_at(spec, [[0.0, -1.75, 0.0], [0.0, -0.5, 0.0], [0.0, 0.5, 0.0], [0.0, 1.75, 0.0]])
    assert flags["multiple_lanes"] == [False, True, True, False]
    assert flags["oncoming"] == [False, False, True, True]
    assert flags["non_drivable"] == [False] * 4


def test_a_given_footprint_is_used_as_is():
    pose = torch.tensor([[[[5.0, 1.75, 0.0], [20.0, 1.75, 0.0]]]], dtype=torch.float64)
    map_ctx = build_map([two_lane_road()])
    own = ego_areas(pose, PACIFICA, map_ctx)
    given = ego_areas(pose, PACIFICA, map_ctx, footprint=ego_footprint(pose, PACIFICA))
    assert all(torch.equal(getattr(own, f), getattr(given, f)) for f in own.__dataclass_fields__)
    # a footprint far off the road (shifted 100 m) is what gets tested, not the pose's own box
    corners, center = ego_footprint(pose, PACIFICA)
    moved = ego_areas(pose, PACIFICA, map_ctx, footprint=(corners + 100.0, center + 100.0))
    assert moved.non_drivable.all() and not own.non_drivable.any()
    with pytest.raises(ValueError, match="footprint"):
        ego_areas(pose, PACIFICA, map_ctx, footprint=(corners[..., :3, :], center))
