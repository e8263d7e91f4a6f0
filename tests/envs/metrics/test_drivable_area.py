"""drivable_area.py: DAC on the straight road and through a roadblock connector."""

import numpy as np
import torch

from envs.metrics.drivable_area import drivable_area_compliance
from envs.metrics.ego_areas import ego_areas
from envs.sim.vehicle import PACIFICA
from tests.envs.metrics.conftest import MapSpec, batch, build_map, poses_from_x, rect, straight_poses, two_lane_road


def dac(spec, poses):
    pose = batch([[p for p in poses]])
    return drivable_area_compliance(ego_areas(pose, PACIFICA, build_map([spec])))


def test_staying_on_the_road_passes_and_a_corner_off_the_road_fails():
    on_road, _ = straight_poses(0.0, -1.75, 10.0)
    off_road, _ = straight_poses(0.0, 2.5, 10.0)  # left corners at y = 3.65 > 3.5
    x = np.arange(41) * 1.0
    drifting, _ = poses_from_x(x, -1.75, 10.0)
    drifting[20:, 1] = 2.5  # leaves the road at step 20
    result = dac(two_lane_road(), [on_road, off_road, drifting])
    assert result.value.tolist() == [[1.0, 0.0, 0.0]]
    assert result.step.tolist() == [[-1, 0, 20]]


def connector_road(intersection=None):
    """Roadblock x < 100, a lane connector (lanes index only) over 100..120, roadblock x > 120."""
    spec = MapSpec(
        roadblocks=[rect(-50.0, 100.0, -3.5, 3.5), rect(120.0, 250.0, -3.5, 3.5)],
        lanes=[rect(-50.0, 100.0, -3.5, 0.0), rect(100.0, 120.0, -3.5, 0.0), rect(120.0, 250.0, -3.5, 0.0)],
        lane_on_route=[True, True, True],
    )
    if intersection is not None:
        spec.intersections.append(rect(*intersection, -3.5, 3.5))
    return spec


def test_a_connector_without_intersection_polygon_is_not_drivable():
    # front corners x = 84.049 + t*1 m: they leave the first roadblock (x < 100) at step 16 (100.049)
    pose, _ = straight_poses(80.0, -1.75, 10.0)
    result = dac(connector_road(), [pose])
    assert result.value.tolist() == [[0.0]]
    assert result.step.tolist() == [[16]]


def test_a_connector_covered_by_an_intersection_is_drivable_even_split_across_polygons():
    pose, _ = straight_poses(80.0, -1.75, 10.0)
    # the intersection exactly fills 100..120: corners straddle roadblock / intersection / roadblock
    assert dac(connector_road(intersection=(100.0, 120.0)), [pose]).value.tolist() == [[1.0]]


def test_batched_equals_single():
    specs = [connector_road(), two_lane_road()]
    poses = [[straight_poses(80.0, -1.75, 10.0)[0], straight_poses(0.0, 2.5, 3.0)[0]],
             [straight_poses(0.0, -1.75, 10.0)[0], straight_poses(0.0, 2.5, 3.0)[0]]]
    batched = drivable_area_compliance(ego_areas(batch(poses), PACIFICA, build_map(specs)))
    for b in range(2):
        alone = dac(specs[b], poses[b])
        assert torch.equal(batched.value[b], alone.value[0]) and torch.equal(batched.step[b], alone.step[0])
