"""envs.bench2drive.criteria_lanes: lane segments, the cell index and the nearest-lane look-up against brute force."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from envs.bench2drive.criteria_lanes import (DEFAULT_HALF_WIDTH, SIMPLIFY_TOLERANCE, cell_index, lane_segments,
                                             lane_table, nearest_lane)
from envs.sim.map import Area, Lane, RoadMap


def strip(lane_id: str, centre: np.ndarray, half: float = 1.75, connector: bool = False) -> Lane:
    """A lane of constant width around a polyline (outline from the vertex normals)."""
    tangent = np.gradient(centre, axis=0)
    normal = np.stack([-tangent[:, 1], tangent[:, 0]], -1) / np.linalg.norm(tangent, axis=1)[:, None]
    ring = np.concatenate([centre - half * normal, (centre + half * normal)[::-1]])
    return Lane(id=lane_id, roadblock_id="R" + lane_id, polygon=ring, centerline=centre, is_connector=connector)


def arc(radius: float, start: float, end: float, centre=(0.0, 0.0), step: float = 0.5) -> np.ndarray:
    angles = np.linspace(start, end, int(abs(end - start) * radius / step) + 1)
    return np.stack([centre[0] + radius * np.cos(angles), centre[1] + radius * np.sin(angles)], -1)


def junction_map() -> RoadMap:
    """An eastbound lane (x -60..0 at y = -1.75), a left-turn connector (radius 20 arc), a straight connector,
    the opposite westbound lane, and a car park south of the road."""
    xs = np.arange(-60.0, 0.5, 1.0)
    east = strip("E", np.stack([xs, np.full_like(xs, -1.75)], -1))
    west = strip("W", np.stack([xs[::-1], np.full_like(xs, 1.75)], -1))
    turn = strip("T", arc(20.0, -math.pi / 2, 0.0, centre=(0.0, 18.25)), connector=True)
    ahead = strip("S", np.stack([np.arange(0.0, 30.5, 1.0), np.full(31, -1.75)], -1), connector=True)
    park = Area("P", np.array([[-50.0, -30.0], [-20.0, -30.0], [-20.0, -10.0], [-50.0, -10.0]]))
    return RoadMap(lanes=(east, west), lane_connectors=(turn, ahead), carparks=(park,))


def test_lane_segments_simplify_and_measure():
    seg = lane_segments(junction_map())
    assert seg.lane_ids == ("E", "W", "T", "S")
    # straight lanes collapse to one segment each; the arc keeps chords within the tolerance
    assert (seg.lane == 0).sum() == 1 and (seg.lane == 3).sum() == 1
    chords = seg.length[seg.lane == 2]
    sagitta = chords ** 2 / (8 * 20.0)
    assert len(chords) > 3 and sagitta.max() <= SIMPLIFY_TOLERANCE + 1e-9
    assert seg.length[seg.lane == 0][0] == pytest.approx(60.0)
    assert seg.half_width[seg.lane == 0][0] == pytest.approx(1.75)
    assert seg.half_width[seg.lane == 2].mean() == pytest.approx(1.75, abs=0.01)
    assert seg.junction.tolist() == [lane >= 2 for lane in seg.lane]
    np.testing.assert_allclose(np.linalg.norm(seg.direction, axis=1), 1.0)
    # a lane without a polygon gets CARLA's usual 3.5 m width
    bare = Lane(id="X", roadblock_id="R", polygon=np.zeros((0, 2)), centerline=np.array([[0.0, 0.0], [5.0, 0.0]]))
    assert lane_segments(RoadMap(lanes=(bare,))).half_width.tolist() == [DEFAULT_HALF_WIDTH]


def brute_force(seg, points):
    rel = points[:, None] - seg.start[None]
    along = np.clip((rel * seg.direction[None]).sum(-1), 0.0, seg.length[None])
    return np.linalg.norm(rel - along[..., None] * seg.direction[None], axis=-1).min(1)


def test_nearest_lane_matches_brute_force_near_the_route():
    road = junction_map()
    seg = lane_segments(road)
    route = np.concatenate([np.stack([np.arange(-60.0, 0.0), np.full(60, -1.75)], -1), arc(20.0, -math.pi / 2, 0.0,
                                                                                           centre=(0.0, 18.25))])
    index = cell_index(seg, route)
    rng = np.random.default_rng(0)
    points = route[rng.integers(len(route), size=400)] + rng.uniform(-12.0, 12.0, size=(400, 2))
    exact = brute_force(seg, points)
    # one route per query point (B = 400 copies of the same map)
    many = lane_table([road] * len(points), [seg] * len(points), [index] * len(points))
    found = nearest_lane(many, torch.as_tensor(points)).distance.numpy()
    near = exact < 6.5                              # cells far from all lanes keep a few candidates only
    assert near.sum() > 200
    np.testing.assert_allclose(found[near], exact[near], atol=1e-9)
    assert (found[~near] > 6.5 - 1e-9).all()


def test_nearest_lane_reports_lane_heading_and_carpark():
    road = junction_map()
    seg = lane_segments(road)
    route = np.stack([np.arange(-60.0, 0.0), np.full(60, -1.75)], -1)
    table = lane_table([road, road], [seg, seg], [cell_index(seg, route)] * 2)
    hit = nearest_lane(table, torch.tensor([[-30.0, 2.0], [-30.0, -20.0]], dtype=torch.float64))
    assert hit.lane.tolist() == [1, 0]                                      # W, then E (nearest to the car park)
    assert hit.heading[0].item() == pytest.approx(math.pi) and hit.heading[1].item() == pytest.approx(0.0)
    assert hit.distance.tolist() == pytest.approx([0.25, 18.25])
    assert hit.point.flatten().tolist() == pytest.approx([-30.0, 1.75, -30.0, -1.75])
    assert hit.half_width.tolist() == pytest.approx([1.75, 1.75])
    assert hit.in_carpark.tolist() == [False, True] and hit.junction.tolist() == [False, False]
    bare = nearest_lane(table, torch.tensor([[-30.0, 2.0], [-30.0, -20.0]], dtype=torch.float64), with_point=False)
    assert bare.point is None and bare.lane.tolist() == [1, 0] and bare.distance.tolist() == pytest.approx([0.25, 18.25])
    turn = nearest_lane(table, torch.tensor([[14.1, 4.1], [40.0, 0.0]], dtype=torch.float64), check_carparks=False)
    assert turn.lane[0].item() == 2 and turn.junction[0].item()             # on the left-turn connector
    assert not turn.in_carpark.any()


def test_cell_index_layout_and_empty_cells_far_from_the_route():
    seg = lane_segments(junction_map())
    route = np.array([[-30.0, -1.75], [-29.0, -1.75]])
    index = cell_index(seg, route, cell=2.0, margin=10.0)
    nx, ny = index.shape
    assert (nx, ny) == (12, 11)                                 # ceil(extent / 2) + 1: extents 21 and 20 m
    assert nx * ny == len(index.count) == len(index.offset) and index.count.sum() == len(index.candidates)
    ij = np.stack(np.meshgrid(np.arange(nx), np.arange(ny), indexing="ij"), -1).reshape(-1, 2)
    centres = index.origin + 2.0 * (ij + 0.5)
    gap = np.linalg.norm(centres[:, None] - route[None], axis=-1).min(1)
    assert (index.count[gap > 12.0] == 0).all() and (index.count[gap <= 12.0] > 0).all()
    # the cell holding (-30, 0) lists the eastbound lane (nearest) first, then the westbound one
    cell = np.floor((np.array([-30.0, 0.0]) - index.origin) / 2.0).astype(int)
    first = index.offset[cell[0] * ny + cell[1]]
    assert index.candidates[first:first + 2].tolist() == [0, 1]
