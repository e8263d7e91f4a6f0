"""Route densification over CARLA topology, frame conversion and route-XML extras (envs/bench2drive/carla_route.py),
on hand-built maps exposed through the carla stand-in's Map."""

import math

import numpy as np
import pytest

from envs.bench2drive.carla_route import (LANE_CHANGE_COST, build_lane_graph, context_road_map, densify_route,
                                          pose_from_carla, pose_to_carla, read_route_extras, resample, trigger_index)
from envs.bench2drive.criteria_lanes import lane_segments
from envs.sim.map import Lane, RoadMap
from tests.envs.bench2drive.carla_standin import Map

WIDTH = 3.5


def strip(xy, width=WIDTH):
    xy = np.asarray(xy, float)
    t = np.gradient(xy, axis=0)
    n = np.stack([-t[:, 1], t[:, 0]], 1) / np.hypot(*t.T)[:, None]
    return np.vstack([xy + n * width / 2, (xy - n * width / 2)[::-1]])


def line(x0, y0, x1, y1, n=31):
    return np.stack([np.linspace(x0, x1, n), np.linspace(y0, y1, n)], 1)


def arc_left(cx, cy, radius, n=31):
    """Quarter circle from (cx, cy - radius) heading +x, turning left to heading +y."""
    a = np.linspace(-math.pi / 2, 0.0, n)
    return np.stack([cx + radius * np.cos(a), cy + radius * np.sin(a)], 1)


def lane(lane_id, block, xy, succ=(), pred=(), connector=False):
    return Lane(lane_id, block, strip(xy), np.asarray(xy, float), 10.0, tuple(succ), tuple(pred), connector)


def two_lane_map():
    """Road block B1: lanes A (y=0, right) and L (y=3.5, its left neighbour), x 0..30, both continuing in
    block B2 (x 30..60); a junction at x=60 after A: straight connector S to x=80 and a left turn T
    (radius 20, centre (60, 20)) ending at (80, 20) heading +y, then lanes beyond."""
    lanes = [
        lane("A", "B1", line(0, 0, 30, 0), succ=("A2",)),
        lane("L", "B1", line(0, 3.5, 30, 3.5), succ=("L2",)),
        lane("A2", "B2", line(30, 0, 60, 0), succ=("S", "T"), pred=("A",)),
        lane("L2", "B2", line(30, 3.5, 60, 3.5), pred=("L",)),
        lane("AS", "B3", line(80, 0, 110, 0), pred=("S",)),
        lane("AT", "B4", line(80, 20, 80, 50), pred=("T",)),
        lane("FAR", "B5", line(0, 300, 30, 300)),
    ]
    connectors = [lane("S", "C1", line(60, 0, 80, 0, 21), succ=("AS",), pred=("A2",), connector=True),
                  lane("T", "C2", arc_left(60, 20, 20, 41), succ=("AT",), pred=("A2",), connector=True)]
    return RoadMap(lanes=tuple(lanes), lane_connectors=tuple(connectors))


def carla_keypoints(xy, step=2.0):
    """Keypoints every `step` m along a roadloop-frame polyline, in the CARLA frame (y flipped), z = 0."""
    xy = np.asarray(xy, float)
    arc = np.concatenate([[0], np.cumsum(np.hypot(*np.diff(xy, axis=0).T))])
    s = np.append(np.arange(0, arc[-1], step), arc[-1])
    return np.stack([np.interp(s, arc, xy[:, 0]), -np.interp(s, arc, xy[:, 1]), np.zeros_like(s)], 1)


@pytest.fixture(scope="module")
def graph():
    return build_lane_graph(Map("Town", two_lane_map()))


def test_frames_flip_y_and_yaw():
    assert pose_from_carla(1.0, 2.0, 90.0) == pytest.approx((1.0, -2.0, -math.pi / 2))
    assert pose_to_carla(1.0, -2.0, -math.pi / 2) == pytest.approx((1.0, 2.0, 90.0))
    assert pose_to_carla(*pose_from_carla(-3.0, 7.5, -135.0)) == pytest.approx((-3.0, 7.5, -135.0))


def test_read_route_extras(tmp_path):
    path = tmp_path / "r.xml"
    path.write_text(
        '<routes><route id="7" town="Town01"><waypoints><position x="0" y="0" z="0"/></waypoints>'
        '<scenarios><scenario name="Accident_1" type="Accident"><trigger_point x="1" y="-2" z="0.5" yaw="90"/>'
        '</scenario></scenarios><weathers><weather route_percentage="0" cloudiness="5.0" wetness="10"/>'
        '</weathers></route><route id="8" town="Town02"/></routes>')
    extras = read_route_extras(path)
    assert extras["7"].scenario_name == "Accident_1"
    assert extras["7"].trigger == (1.0, -2.0, 0.5, 90.0)
    assert extras["7"].weather == {"cloudiness": 5.0, "wetness": 10.0}
    assert extras["8"].trigger is None and extras["8"].weather == {}
    with pytest.raises(ValueError, match="cannot read"):
        read_route_extras(tmp_path / "missing.xml")
    path.write_text('<routes><route id="1" town="T"><scenarios><scenario name="a" type="b">'
                    '<trigger_point x="one" y="0" z="0" yaw="0"/></scenario></scenarios></route></routes>')
    with pytest.raises(ValueError, match="trigger_point"):
        read_route_extras(path)


def test_lane_graph_links_and_neighbours(graph):
    names = {key: i for i, key in enumerate(graph.keys)}
    assert len(graph.keys) == 9
    lengths = dict(zip(graph.keys, graph.lengths))
    # B1 is road 1 with lane L (the left one) as lane -1 and A as -2
    a, left, a2 = names[(1, 0, -2)], names[(1, 0, -1)], names[(2, 0, -2)]
    assert lengths[(1, 0, -2)] == pytest.approx(30.0)
    assert graph.successors[a] == (a2,)
    assert graph.neighbours[a] == (left,) and graph.neighbours[left] == (a,)
    assert graph.lane_width[a] == pytest.approx(WIDTH)
    turn = [i for i, key in enumerate(graph.keys) if graph.is_junction[i] and lengths[key] > 25]
    assert len(turn) == 1 and graph.lengths[turn[0]] == pytest.approx(math.pi * 20 / 2, rel=1e-3)
    assert len(graph.successors[a2]) == 2
    # 1 m samples, heading along the lane, roadloop frame (y = 3.5 for the left lane)
    samples = graph.samples(left)
    assert np.allclose(np.diff(samples[:, 0]), 1.0) and np.allclose(samples[:, 1], 3.5) and np.allclose(samples[:, 2], 0)


def test_densify_follows_lane_and_turn(graph):
    path = np.vstack([line(5, 0, 60, 0), arc_left(60, 20, 20, 41)[1:], line(80, 20, 80, 40)[1:]])
    dense = densify_route(graph, carla_keypoints(path))
    steps = np.hypot(*np.diff(dense[:, :2], axis=0).T)
    assert np.allclose(steps[:-1], 1.0, atol=2e-3) and steps[-1] <= 1.0 + 1e-9
    total = 55 + math.pi * 10 + 20
    assert len(dense) == math.ceil(total) + 1 or len(dense) == math.ceil(total)
    assert dense[0] == pytest.approx([5.0, 0.0, 0.0])
    assert dense[-1, :2] == pytest.approx([80.0, 40.0], abs=1e-6) and dense[-1, 2] == pytest.approx(math.pi / 2)
    # on the arc every point is 20 m from the turn centre: the overlapping straight connector was not taken
    on_arc = (dense[:, 0] > 61) & (dense[:, 1] > 1) & (dense[:, 1] < 19)
    assert on_arc.sum() > 20
    assert np.allclose(np.hypot(dense[on_arc, 0] - 60, dense[on_arc, 1] - 20), 20.0, atol=0.05)


def test_densify_straight_through_junction(graph):
    dense = densify_route(graph, carla_keypoints(line(50, 0, 100, 0)))
    assert np.allclose(dense[:, 1], 0.0) and np.allclose(dense[:, 2], 0.0)
    assert dense[-1, 0] == pytest.approx(100.0)


def test_densify_lane_change_to_neighbour(graph):
    # keypoints on A up to x = 20, then on the left lane L: one lane change, no detour
    path = np.vstack([line(2, 0, 20, 0, 10), line(22, 3.5, 50, 3.5, 15)])
    keypoints = np.stack([path[:, 0], -path[:, 1], np.zeros(len(path))], 1)
    dense = densify_route(graph, keypoints)
    assert np.allclose(dense[dense[:, 0] <= 20.0 + 1e-9, 1], 0.0)
    assert np.allclose(dense[dense[:, 0] >= 22.0 - 1e-9, 1], 3.5)
    length = np.hypot(*np.diff(dense[:, :2], axis=0).T).sum()
    assert length == pytest.approx(48.0 + math.hypot(2.0, 3.5) - 2.0, abs=0.05)   # jump of ~4 m between lanes
    assert LANE_CHANGE_COST > 0


def test_densify_rejects_bad_keypoints(graph):
    with pytest.raises(ValueError, match="keypoint 0"):
        densify_route(graph, np.array([[0.0, -150.0, 0.0], [2.0, -150.0, 0.0]]))   # no lane there
    with pytest.raises(ValueError, match="not reachable"):
        densify_route(graph, np.array([[10.0, 0.0, 0.0], [12.0, 0.0, 0.0], [10.0, -300.0, 0.0]]))
    with pytest.raises(ValueError, match="keypoints"):
        densify_route(graph, np.zeros((1, 3)))


def test_resample_keeps_ends_and_spacing():
    out = resample(np.array([[0.0, 0.0, 0.0], [2.5, 0.0, 0.0]]))
    assert out[:, 0] == pytest.approx([0.0, 1.0, 2.0, 2.5])
    with pytest.raises(ValueError, match="no extent"):
        resample(np.zeros((2, 3)))


def test_trigger_index_uses_distance_and_angle(graph):
    dense = densify_route(graph, carla_keypoints(line(0, 0, 60, 0)))
    assert trigger_index(dense, (20.3, -0.5, 0.0, 5.0)) == 20
    assert trigger_index(dense, (20.3, -0.5, 0.0, 15.0)) is None      # yaw 15 deg off the route
    assert trigger_index(dense, (20.0, -3.0, 0.0, 0.0)) is None       # 3 m beside the route
    assert trigger_index(dense, None) is None


def test_context_road_map_keeps_near_lanes_with_their_width(graph):
    dense = densify_route(graph, carla_keypoints(line(0, 0, 60, 0)))
    road_map = context_road_map(graph, dense[:, :2], margin=50.0)
    ids = {lane.id for lane in (*road_map.lanes, *road_map.lane_connectors)}
    assert len(road_map.lanes) == 6 and len(road_map.lane_connectors) == 2   # FAR (road 5, 300 m away) left out
    assert not any(i.startswith("r5s") for i in ids) and any(i.startswith("r4s") for i in ids)
    segments = lane_segments(road_map)
    assert np.allclose(segments.half_width, WIDTH / 2, atol=0.02)
