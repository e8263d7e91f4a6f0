"""Route correction, starting lane, PDM centerline and driving command on hand-built maps."""

from __future__ import annotations

import math

import numpy as np
import pytest

from envs.sim.map import Area, Lane, RoadMap
from envs.sim.route import (
    centerline_lane_ids,
    correct_route,
    driving_command,
    find_route,
    lane_path_poses,
    path_interpolate,
    path_project,
    route_centerline,
    route_lane_ids,
    starting_lane,
)
from envs.sim.scene import Command

LANE_W = 3.5


def rect(x0, x1, y0, y1) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)


def straight_map(num_blocks: int = 3, length: float = 100.0, dead_end_left: bool = False) -> RoadMap:
    """Eastbound road: roadblocks RB{i} over x in [i*length, (i+1)*length], y in [-3.5, 3.5];
    lanes L{i}r (centre y = -1.75) and L{i}l (y = 1.75), each followed by the same lane of RB{i+1}."""
    lanes, blocks = [], []
    for i in range(num_blocks):
        x0, x1 = i * length, (i + 1) * length
        for side, yc in (("r", -LANE_W / 2), ("l", LANE_W / 2)):
            succ = (f"L{i + 1}{side}",) if i + 1 < num_blocks and not (dead_end_left and side == "l" and i == 0) else ()
            pred = (f"L{i - 1}{side}",) if i > 0 else ()
            lanes.append(Lane(
                id=f"L{i}{side}", roadblock_id=f"RB{i}", polygon=rect(x0, x1, yc - LANE_W / 2, yc + LANE_W / 2),
                centerline=np.stack([np.linspace(x0, x1, 21), np.full(21, yc)], 1), speed_limit=15.0,
                successors=succ, predecessors=pred,
            ))
        blocks.append(Area(f"RB{i}", rect(x0, x1, -LANE_W, LANE_W)))
    return RoadMap(lanes=tuple(lanes), roadblocks=tuple(blocks))


def _bezier(p0, p1, p2, n: int = 21) -> np.ndarray:
    t = np.linspace(0.0, 1.0, n)[:, None]
    return (1 - t) ** 2 * np.asarray(p0) + 2 * (1 - t) * t * np.asarray(p1) + t**2 * np.asarray(p2)


def _ribbon(centerline: np.ndarray, half_width: float = LANE_W / 2) -> np.ndarray:
    """Polygon of a lane of the given half width around a centerline."""
    d = np.gradient(centerline, axis=0)
    normal = np.stack([-d[:, 1], d[:, 0]], 1) / np.hypot(d[:, 0], d[:, 1])[:, None]
    return np.concatenate([centerline - half_width * normal, (centerline + half_width * normal)[::-1]])


def t_junction_map() -> RoadMap:
    """Eastbound lane LA (RA, x 0..50, y = -1.75) into an intersection (x 50..60) with connectors to
    LB (straight, RB, x 60..110), LN (left, northbound at x = 56.75, y 10..60) and LS (right,
    southbound at x = 53.25, y -10..-60). Each connector has its own roadblock connector."""
    y = -LANE_W / 2
    la = np.stack([np.linspace(0, 50, 11), np.full(11, y)], 1)
    lb = np.stack([np.linspace(60, 110, 11), np.full(11, y)], 1)
    ln = np.stack([np.full(11, 56.75), np.linspace(10, 60, 11)], 1)
    ls = np.stack([np.full(11, 53.25), np.linspace(-10, -60, 11)], 1)
    cs = np.stack([np.linspace(50, 60, 5), np.full(5, y)], 1)
    cl = _bezier((50, y), (56.75, y), (56.75, 10))
    cr = _bezier((50, y), (53.25, y), (53.25, -10))
    lanes = (
        Lane("LA", "RA", rect(0, 50, -LANE_W, 0), la, 10.0, ("CS", "CL", "CR"), ()),
        Lane("LB", "RB", rect(60, 110, -LANE_W, 0), lb, 10.0, (), ("CS",)),
        Lane("LN", "RN", rect(55, 58.5, 10, 60), ln, 10.0, (), ("CL",)),
        Lane("LS", "RS", rect(51.5, 55, -60, -10), ls, 10.0, (), ("CR",)),
    )
    connectors = (
        Lane("CS", "RCS", _ribbon(cs), cs, None, ("LB",), ("LA",), is_connector=True),
        Lane("CL", "RCL", _ribbon(cl), cl, None, ("LN",), ("LA",), is_connector=True),
        Lane("CR", "RCR", _ribbon(cr), cr, None, ("LS",), ("LA",), is_connector=True),
    )
    return RoadMap(
        lanes=lanes,
        lane_connectors=connectors,
        roadblocks=tuple(Area(lane.roadblock_id, lane.polygon) for lane in lanes),
        roadblock_connectors=tuple(Area(c.roadblock_id, c.polygon) for c in connectors),
        intersections=(Area("I", rect(50, 60, -10, 10)),),
    )


def chain_map(num_blocks: int) -> RoadMap:
    """Single eastbound lane L{i} in roadblock R{i}, 10 m each."""
    lanes = tuple(
        Lane(f"L{i}", f"R{i}", rect(10 * i, 10 * i + 10, -LANE_W, 0),
             np.array([[10.0 * i, -1.75], [10.0 * i + 10, -1.75]]), 10.0,
             (f"L{i + 1}",) if i + 1 < num_blocks else (), (f"L{i - 1}",) if i else ())
        for i in range(num_blocks)
    )
    return RoadMap(lanes=lanes, roadblocks=tuple(Area(lane.roadblock_id, lane.polygon) for lane in lanes))


def pose(x, y, heading=0.0) -> np.ndarray:
    return np.array([x, y, heading], dtype=np.float64)


# ------------------------------------------------------------------------------------ correct_route


def test_correct_route_keeps_a_clean_route_and_dedupes():
    road = straight_map()
    assert correct_route(road, ("RB0", "RB1", "RB2"), pose(10, -1.75)) == ("RB0", "RB1", "RB2")
    assert correct_route(road, ("RB0", "RB0", "RB1", "RB2", "RB1"), pose(10, -1.75)) == ("RB0", "RB1", "RB2")
    assert correct_route(road, ("RB0", "XX", "RB1"), pose(10, -1.75)) == ("RB0", "RB1")
    assert correct_route(road, (), pose(10, -1.75)) == ()


def test_off_route_start_is_prepended_by_the_backward_search():
    assert correct_route(straight_map(), ("RB1", "RB2"), pose(10, -1.75)) == ("RB0", "RB1", "RB2")


def test_backward_search_stops_at_the_nearest_start_candidate():
    # At x = 99.5 both RB0 and RB1 qualify (lane vertex at x = 100, 0.5 m away, heading 0). The BFS
    # backwards from RB2 reaches RB1 first, so RB0 is not added.
    assert correct_route(straight_map(), ("RB2",), pose(99.5, -1.75)) == ("RB1", "RB2")


def test_forward_search_reroots_the_route_when_the_ego_is_past_its_start():
    # Ego in RB1; route (RB0, RB2): nothing leads backwards from RB0 to RB1, so NAVSIM searches
    # forward from RB1 to one of the first three route blocks and keeps the rest after it.
    assert correct_route(straight_map(), ("RB0", "RB2"), pose(150, -1.75)) == ("RB1", "RB2")


def test_gap_between_consecutive_blocks_is_filled():
    assert correct_route(straight_map(5), ("RB0", "RB3", "RB4"), pose(10, 1.75)) == ("RB0", "RB1", "RB2", "RB3", "RB4")


def test_route_loop_is_cut_at_the_overlapping_connector():
    road = t_junction_map()
    # RCL overlaps RCS by more than 1 m^2 near the intersection entry: the route is cut before it.
    assert correct_route(road, ("RA", "RCS", "RB", "RCL"), pose(20, -1.75)) == ("RA", "RCS", "RB")
    assert correct_route(road, ("RA", "RCL", "RN"), pose(20, -1.75)) == ("RA", "RCL", "RN")


def test_correct_route_rejects_a_bad_pose():
    with pytest.raises(ValueError, match="ego_pose"):
        correct_route(straight_map(), ("RB0",), np.array([0.0, np.nan, 0.0]))


# ------------------------------------------------------------------------------------ route lanes


def test_route_lane_ids_lists_interior_lanes_in_route_order():
    road = straight_map()
    assert route_lane_ids(road, ("RB1", "RB0", "RB1")) == ("L1r", "L1l", "L0r", "L0l")
    assert route_lane_ids(t_junction_map(), ("RA", "RCL")) == ("LA", "CL")


# ------------------------------------------------------------------------------------ starting lane


def test_starting_lane_is_the_lane_under_the_rear_axle():
    road = straight_map()
    route = ("RB0", "RB1", "RB2")
    assert starting_lane(road, route, pose(10, -1.75)) == "L0r"
    assert starting_lane(road, route, pose(150, 1.75)) == "L1l"


def test_starting_lane_prefers_the_smaller_heading_error():
    turn = np.array([[10.0, 0.0], [10 + 10 * math.cos(0.5), 10 * math.sin(0.5)]])
    road = RoadMap(lanes=(
        Lane("A", "R", rect(0, 20, -2, 2), np.array([[0.0, 0.0], [20.0, 0.0]])),
        Lane("B", "R", _ribbon(np.array([turn[0] - (turn[1] - turn[0]), turn[0], turn[1]]), 2.0),
             np.array([turn[0] - (turn[1] - turn[0]), turn[0], turn[1]])),
    ), roadblocks=(Area("R", rect(-10, 30, -10, 10)),))
    assert starting_lane(road, ("R",), pose(10, 0, 0.45)) == "B"
    assert starting_lane(road, ("R",), pose(10, 0, 0.1)) == "A"


def test_starting_lane_off_lane_uses_centre_containment_then_footprint_distance():
    road = straight_map()
    route = ("RB0", "RB1", "RB2")
    # Rear axle before the road (x = -1), box centre at x = 0.461 inside L0l (y = 0.3): the footprint
    # touches L0r first in route order, but the lane holding the centre wins.
    assert starting_lane(road, route, pose(-1, 0.3)) == "L0l"
    # 6 m right of the road: L0r is the closest lane to the footprint.
    assert starting_lane(road, route, pose(10, -6.0)) == "L0r"
    assert starting_lane(road, (), pose(10, -1.75)) is None


# ------------------------------------------------------------------------------------ centerline


def test_lane_path_poses_heads_to_the_next_vertex_and_repeats_the_last():
    road = RoadMap(lanes=(Lane("A", "R", rect(0, 5, 0, 10), np.array([[0.0, 0.0], [3.0, 4.0], [3.0, 8.0]])),))
    poses = lane_path_poses(road, ("A",))
    np.testing.assert_allclose(poses[:, 2], [math.atan2(4, 3), math.pi / 2, math.pi / 2])
    np.testing.assert_allclose(poses[:, :2], [[0, 0], [3, 4], [3, 8]])


def test_centerline_follows_successors_without_lane_change():
    road = straight_map()
    assert centerline_lane_ids(road, ("RB0", "RB1", "RB2"), "L0l") == ("L0l", "L1l", "L2l")
    line = route_centerline(road, ("RB0", "RB1", "RB2"), "L0l")
    assert line.shape == (63, 2)  # 3 lanes x 21 vertices; each joint vertex appears twice
    np.testing.assert_allclose(line[:, 1], 1.75)
    np.testing.assert_allclose(line[[0, 20, 21, -1], 0], [0, 100, 100, 300])


def test_centerline_stops_at_the_roadblock_29_after_the_start():
    road = chain_map(35)
    route = tuple(f"R{i}" for i in range(35))
    assert centerline_lane_ids(road, route, "L0") == tuple(f"L{i}" for i in range(30))
    assert centerline_lane_ids(road, route, "L10") == tuple(f"L{i}" for i in range(10, 35))


def test_dead_end_start_lane_caps_the_centerline():
    road = straight_map(dead_end_left=True)
    assert centerline_lane_ids(road, ("RB0", "RB1", "RB2"), "L0l") == ("L0l",)
    assert route_centerline(road, ("RB0", "RB1", "RB2"), "L0l")[-1, 0] == 100.0


def test_centerline_takes_the_cheaper_successor():
    long_turn = _bezier((10, 0), (20, 20), (30, 0))  # about 36 m
    road = RoadMap(lanes=(
        Lane("S", "R0", rect(0, 10, -2, 2), np.array([[0.0, 0.0], [10.0, 0.0]]), successors=("A", "B")),
        Lane("A", "R1", _ribbon(long_turn, 2.0), long_turn, predecessors=("S",)),
        Lane("B", "R1", rect(10, 30, -2, 2), np.array([[10.0, 0.0], [30.0, 0.0]]), predecessors=("S",)),
    ))
    assert centerline_lane_ids(road, ("R0", "R1"), "S") == ("S", "B")


def test_path_interpolate_and_project_match_pdm_path():
    path = np.array([[0, 0, 0], [10, 0, 0], [10, 0, math.pi / 2], [10, 10, math.pi / 2]], dtype=np.float64)
    out = path_interpolate(path, np.array([5.0, 10.0, 10.5, 15.0, -3.0, 100.0]))
    np.testing.assert_allclose(out, [
        [5, 0, 0], [10, 0, 0], [10, 0.5, math.pi / 2], [10, 5, math.pi / 2], [1e-5, 0, 0], [10, 10, math.pi / 2],
    ], atol=1e-12)
    points = np.array([[5.0, 3.0], [12.0, 5.0], [11.0, -1.0]])
    np.testing.assert_allclose(path_project(path[:, :2], points), [5, 15, 10])


# ------------------------------------------------------------------------------------ driving command


@pytest.mark.parametrize("route, expected", [
    (("RA", "RCL", "RN"), Command.LEFT),
    (("RA", "RCS", "RB"), Command.STRAIGHT),
    (("RA", "RCR", "RS"), Command.RIGHT),
])
def test_driving_command_looks_20_m_ahead_on_the_centerline(route, expected):
    assert driving_command(t_junction_map(), route, pose(45, -1.75)) == expected


def test_driving_command_far_from_the_turn_is_straight():
    # 20 m ahead of x = 20 is still on LA.
    assert driving_command(t_junction_map(), ("RA", "RCL", "RN"), pose(20, -1.75)) == Command.STRAIGHT


def test_driving_command_without_usable_route_is_unknown():
    road = t_junction_map()
    assert driving_command(road, (), pose(20, -1.75)) == Command.UNKNOWN
    # Ego on LN, route RB: no backward path from RB to LN; OpenScene gives up.
    assert driving_command(road, ("RB",), pose(56.75, 30, math.pi / 2)) == Command.UNKNOWN


# ------------------------------------------------------------------------------------ find_route


def test_find_route_returns_the_roadblocks_of_the_lane_path():
    assert find_route(t_junction_map(), "LA", "LN") == ("RA", "RCL", "RN")
    assert find_route(straight_map(), "L0r", "L2r") == ("RB0", "RB1", "RB2")
    with pytest.raises(ValueError, match="not reachable"):
        find_route(t_junction_map(), "LN", "LA")
    with pytest.raises(ValueError, match="start_lane_id"):
        find_route(t_junction_map(), "nope", "LA")


def test_path_pose_at_works_on_padded_batches():
    import torch

    from envs.sim.route import path_pose_at

    # path 0: (0,0) -> (4,0) -> (4,3), padded with its last vertex; path 1: (0,0) -> (0,2), padded twice
    xy = torch.tensor([[[0.0, 0.0], [4.0, 0.0], [4.0, 3.0], [4.0, 3.0]],
                       [[0.0, 0.0], [0.0, 2.0], [0.0, 2.0], [0.0, 2.0]]], dtype=torch.float64)
    heading = torch.tensor([[0.0, math.pi / 2, math.pi / 2, math.pi / 2], [math.pi / 2] * 4], dtype=torch.float64)
    arc = torch.tensor([[0.0, 4.0, 7.0, 7.0], [0.0, 2.0, 2.0, 2.0]], dtype=torch.float64)
    count = torch.tensor([3, 2])
    out = path_pose_at(xy, heading, arc, count, torch.tensor([[2.0, 5.5], [1.0, 9.0]], dtype=torch.float64))
    expected = [[[2.0, 0.0, math.pi / 4], [4.0, 1.5, math.pi / 2]], [[0.0, 1.0, math.pi / 2], [0.0, 2.0, math.pi / 2]]]
    torch.testing.assert_close(out, torch.tensor(expected, dtype=torch.float64))
