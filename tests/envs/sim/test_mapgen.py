"""Tests for envs/sim/mapgen.py: determinism, polygon validity, drivable coverage, lane graph, hand cases."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import replace
from functools import lru_cache

import numpy as np
import pytest
import torch

from envs.sim.geometry import polygon_is_simple, polygon_signed_area
from envs.sim.mapgen import (
    CROSSWALK_WIDTH,
    JUNCTION_OVERLAP,
    GeneratedMap,
    MapGenConfig,
    MapKind,
    SignalGroup,
    generate_map,
)
from envs.sim.polygon_index import PolygonIndex

KINDS = [k for k in MapKind if k is not MapKind.RANDOM]
SEEDS = (0, 1)
CASES = [(kind, seed) for kind in KINDS for seed in SEEDS]
FLAT = MapGenConfig(random_transform=False)
SIDE = 0.45 * MapGenConfig().lane_width
"""[m] lateral offset of probe points: where a car's corners are when it fills most of its lane."""


@lru_cache(maxsize=None)
def _map(kind: MapKind, seed: int) -> GeneratedMap:
    return generate_map(kind, np.random.default_rng(seed), MapGenConfig())


def _layer(m, layer: str) -> tuple:
    """Polygon objects of a named group of map layers."""
    groups = {"lanes": m.lanes + m.lane_connectors, "blocks": m.roadblocks + m.roadblock_connectors,
              "drivable": m.roadblocks + m.intersections + m.carparks, "intersections": m.intersections}
    return groups[layer]


@lru_cache(maxsize=None)
def _index(kind: MapKind, seed: int, layer: str) -> PolygonIndex:
    # thin strips: road maps put many long, nearly parallel edges in the same y band
    return PolygonIndex.build([[o.polygon for o in _layer(_map(kind, seed).map, layer)]], strip_height=0.1)


def _contains(polygons, points: np.ndarray) -> np.ndarray:
    """Strict-interior test (shapely semantics) of points (N, 2) against each polygon -> (N, M).

    `polygons` is a PolygonIndex or a list of rings."""
    index = polygons if isinstance(polygons, PolygonIndex) else \
        PolygonIndex.build([[np.asarray(p) for p in polygons]], strip_height=0.1)
    return index.contains(torch.as_tensor(points, dtype=torch.float64)[None])[0].numpy()


def _samples(line: np.ndarray, lateral: float = 0.0, ends: bool = False) -> np.ndarray:
    """Vertices (without the two ends unless asked) and segment midpoints, shifted `lateral` m left."""
    mids = 0.5 * (line[1:] + line[:-1])
    tangent = np.diff(line, axis=0)
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
    normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)
    points = [mids + lateral * normal]
    vertex_normal = np.concatenate([normal[:1], 0.5 * (normal[1:] + normal[:-1]), normal[-1:]])
    vertices = line + lateral * vertex_normal
    points.append(vertices if ends else vertices[1:-1])
    return np.concatenate(points)


def _distance_to_rings(points: np.ndarray, rings) -> np.ndarray:
    """Smallest distance [m] of each point (N, 2) to any edge of any ring."""
    best = np.full(len(points), np.inf)
    for ring in rings:
        a, b = ring, np.roll(ring, -1, axis=0)
        ab = b - a
        t = np.clip(np.einsum("nec,ec->ne", points[:, None] - a[None], ab) / np.sum(ab * ab, axis=1), 0.0, 1.0)
        closest = a[None] + t[..., None] * ab[None]
        best = np.minimum(best, np.linalg.norm(points[:, None] - closest, axis=-1).min(axis=1))
    return best


def _heading(segment: np.ndarray) -> float:
    d = segment[1] - segment[0]
    return math.atan2(d[1], d[0])


# ---------------------------------------------------------------------------------------------- determinism


@pytest.mark.parametrize("kind", KINDS)
def test_same_seed_gives_identical_maps_and_different_seeds_differ(kind):
    a = generate_map(kind, np.random.default_rng(7))
    b = generate_map(kind, np.random.default_rng(7))
    c = generate_map(kind, np.random.default_rng(8))
    objs_a, objs_b = a.map.all_polygon_objects(), b.map.all_polygon_objects()
    assert [o.id for o in objs_a] == [o.id for o in objs_b]
    for oa, ob in zip(objs_a, objs_b):
        assert oa.polygon.tobytes() == ob.polygon.tobytes()
    for la, lb in zip(a.map.lanes + a.map.lane_connectors, b.map.lanes + b.map.lane_connectors):
        assert la.centerline.tobytes() == lb.centerline.tobytes()
        assert (la.successors, la.predecessors, la.speed_limit) == (lb.successors, lb.predecessors, lb.speed_limit)
    assert (a.signal_groups, a.stop_sign_connectors, a.spawn_lanes) == (b.signal_groups, b.stop_sign_connectors,
                                                                       b.spawn_lanes)
    assert a.map.lanes[0].centerline.shape != c.map.lanes[0].centerline.shape or \
        not np.array_equal(a.map.lanes[0].centerline, c.map.lanes[0].centerline)


def test_random_kind_is_seeded_and_concrete():
    kinds = {generate_map("random", np.random.default_rng(s)).kind for s in range(12)}
    assert MapKind.RANDOM not in kinds and len(kinds) >= 3
    assert generate_map(MapKind.RANDOM, np.random.default_rng(3)).kind == \
        generate_map("random", np.random.default_rng(3)).kind


def test_random_transform_is_a_rigid_motion():
    """The global frame only rotates/shifts the local map: all pairwise distances are kept."""
    flat = generate_map("t_junction", np.random.default_rng(4), FLAT)
    moved = generate_map("t_junction", np.random.default_rng(4))
    for la, lb in zip(flat.map.lanes, moved.map.lanes):
        da = np.linalg.norm(la.centerline[:, None] - la.centerline[None], axis=-1)
        db = np.linalg.norm(lb.centerline[:, None] - lb.centerline[None], axis=-1)
        np.testing.assert_allclose(da, db, atol=1e-9)
    assert not np.allclose(flat.map.lanes[0].centerline, moved.map.lanes[0].centerline)


# ------------------------------------------------------------------------------------------------ geometry


@pytest.mark.parametrize("kind,seed", CASES)
def test_every_polygon_is_simple(kind, seed):
    for obj in _map(kind, seed).map.all_polygon_objects():
        assert polygon_is_simple(obj.polygon), obj.id


@pytest.mark.parametrize("kind,seed", CASES)
def test_centerlines_inside_own_polygon_and_roadblock(kind, seed):
    m = _map(kind, seed).map
    lanes = m.lanes + m.lane_connectors
    blocks = {a.id: a.polygon for a in m.roadblocks + m.roadblock_connectors}
    points, owner = [], []
    for i, lane in enumerate(lanes):
        for lateral in (0.0, SIDE, -SIDE):
            pts = _samples(lane.centerline, lateral)
            points.append(pts)
            owner.append(np.full(len(pts), i))
    points, owner = np.concatenate(points), np.concatenate(owner)
    in_lane = _contains(_index(kind, seed, "lanes"), points)
    assert in_lane[np.arange(len(points)), owner].all()
    block_ids = list(blocks)
    in_block = _contains(_index(kind, seed, "blocks"), points)
    own_block = np.array([block_ids.index(lanes[i].roadblock_id) for i in owner])
    assert in_block[np.arange(len(points)), own_block].all()


@pytest.mark.parametrize("kind,seed", CASES)
def test_lanes_lie_on_drivable_area(kind, seed):
    """Lane interiors (centre and +-0.45 lane width) are strictly inside a roadblock, intersection or car park."""
    m = _map(kind, seed).map
    points = np.concatenate([_samples(lane.centerline, lat) for lane in m.lanes for lat in (0.0, SIDE, -SIDE)])
    assert _contains(_index(kind, seed, "drivable"), points).any(axis=1).all()


@pytest.mark.parametrize("kind,seed", CASES)
def test_connectors_lie_inside_intersections(kind, seed):
    """Connectors are not drivable for NAVSIM DAC: each one must be covered by an intersection polygon."""
    m = _map(kind, seed).map
    has_junction = kind not in (MapKind.STRAIGHT, MapKind.CURVED)
    assert bool(m.lane_connectors) == has_junction and bool(m.intersections) == has_junction
    rings, index = [a.polygon for a in m.intersections], _index(kind, seed, "intersections")
    for conn in m.lane_connectors:
        interior = np.concatenate([_samples(conn.centerline, lat, ends=True) for lat in (0.0, SIDE, -SIDE)])
        assert _contains(index, interior).any(axis=1).all(), conn.id
        # the whole connector polygon is inside (vertices strictly inside or on the intersection edge)
        vertex_in = _contains(index, conn.polygon).any(axis=1) | (_distance_to_rings(conn.polygon, rings) < 1e-6)
        assert vertex_in.all(), conn.id


@pytest.mark.parametrize("kind,seed", CASES)
def test_intersections_reach_half_a_metre_into_approach_and_exit_roadblocks(kind, seed):
    m = _map(kind, seed).map
    lanes = m.lanes_by_id
    rings = _index(kind, seed, "intersections") if m.intersections else []
    for conn in m.lane_connectors:
        for lane, sign in ((lanes[conn.predecessors[0]], -1.0), (lanes[conn.successors[0]], 1.0)):
            line = lane.centerline if sign > 0 else lane.centerline[::-1]
            direction = (line[1] - line[0]) / np.linalg.norm(line[1] - line[0])  # into the roadblock
            probes = line[0] + np.outer([JUNCTION_OVERLAP - 0.1, JUNCTION_OVERLAP + 0.1], direction)
            inside = _contains(rings, probes).any(axis=1)
            assert inside.tolist() == [True, False], (conn.id, lane.id)


@pytest.mark.parametrize("kind,seed", CASES)
def test_adjacent_lanes_share_boundaries_and_roadblock_is_their_union(kind, seed):
    m = _map(kind, seed).map
    lanes = m.lanes_by_id
    for block in m.roadblocks:
        members = [lanes[i] for i in m.roadblock_lane_ids[block.id]]
        area = sum(polygon_signed_area(lane.polygon) for lane in members)
        assert polygon_signed_area(block.polygon) == pytest.approx(area, rel=1e-9)
        for inner, outer in zip(members, members[1:]):
            # the inner lane's right boundary is the outer lane's left boundary, vertex for vertex
            shared = (inner.polygon[:, None] == outer.polygon[None]).all(-1).any(1).sum()
            assert shared >= 2 and 2 * shared >= len(inner.polygon), (inner.id, outer.id)


# ------------------------------------------------------------------------------------------------ lane graph


@pytest.mark.parametrize("kind,seed", CASES)
def test_successors_and_predecessors_are_symmetric(kind, seed):
    m = _map(kind, seed).map
    lanes = m.lanes_by_id
    assert len(lanes) == len(m.lanes) + len(m.lane_connectors)
    for lane in lanes.values():
        for nxt in lane.successors:
            assert lane.id in lanes[nxt].predecessors
        for prev in lane.predecessors:
            assert lane.id in lanes[prev].successors
    for conn in m.lane_connectors:  # nuPlan: exactly one exit lane and one entry lane per connector
        assert len(conn.predecessors) == 1 and len(conn.successors) == 1
        assert not lanes[conn.predecessors[0]].is_connector and not lanes[conn.successors[0]].is_connector


@pytest.mark.parametrize("kind,seed", CASES)
def test_consecutive_lanes_meet_with_continuous_heading(kind, seed):
    lanes = _map(kind, seed).map.lanes_by_id
    for lane in lanes.values():
        for nxt in lane.successors:
            end, start = lane.centerline, lanes[nxt].centerline
            assert np.linalg.norm(end[-1] - start[0]) < 1e-6
            jump = abs(math.remainder(_heading(start[:2]) - _heading(end[-2:]), 2 * math.pi))
            assert jump < 0.1, (lane.id, nxt, jump)  # chord headings; a kink would be ~0.5+ rad


@pytest.mark.parametrize("kind,seed", CASES)
def test_spawn_lanes_have_routes_through_three_roadblocks(kind, seed):
    g = _map(kind, seed)
    lanes = g.map.lanes_by_id
    assert g.spawn_lanes and all(not lanes[i].is_connector for i in g.spawn_lanes)
    for start in g.spawn_lanes:
        longest, queue = 0, deque([(start, 1)])
        while queue:  # BFS over successors counting distinct roadblocks along the path
            lane_id, depth = queue.popleft()
            longest = max(longest, depth)
            queue.extend((s, depth + 1) for s in lanes[lane_id].successors)
        assert longest >= 3, start


@pytest.mark.parametrize("kind,seed", CASES)
def test_speed_limits_are_set(kind, seed):
    cfg = MapGenConfig()
    for lane in _map(kind, seed).map.lanes_by_id.values():
        assert lane.speed_limit is not None and 0.0 < lane.speed_limit <= cfg.road_speed_limit


def test_ids_follow_the_naming_scheme():
    m = _map(MapKind.INTERSECTION, 0).map
    prefixes = {"lanes": "L", "lane_connectors": "C", "roadblocks": "RB", "roadblock_connectors": "RBC",
                "intersections": "I", "crosswalks": "W", "stop_lines": "S"}
    for layer, prefix in prefixes.items():
        ids = [o.id for o in getattr(m, layer)]
        assert ids and sorted(ids, key=lambda i: int(i[len(prefix):])) == [f"{prefix}{k}" for k in
                                                                          range(1, len(ids) + 1)]
    assert _map(MapKind.CARPARK, 0).map.carparks[0].id == "P1"


# ------------------------------------------------------------------------------------------------ hand cases


def test_straight_road_hand_case():
    """2 lanes per direction, three 60 m segments along +x, no transform."""
    cfg = replace(FLAT, lanes_per_direction_range=(2, 2), segment_length_range=(60.0, 60.0),
                  num_segments_range=(3, 3))
    g = generate_map("straight", np.random.default_rng(0), cfg)
    m = g.map
    assert (len(m.lanes), len(m.roadblocks), len(m.lane_connectors), len(m.intersections)) == (12, 6, 0, 0)
    l1 = m.lanes_by_id["L1"]  # forward, innermost lane of segment 1: 1.75 m right of the divider
    np.testing.assert_allclose(l1.centerline[[0, -1]], [[0.0, -1.75], [60.0, -1.75]])
    assert len(l1.centerline) == 61 and l1.roadblock_id == "RB1" and l1.successors == ("L5",)
    assert polygon_signed_area(l1.polygon) == pytest.approx(60.0 * 3.5)
    l3 = m.lanes_by_id["L3"]  # backward lane of segment 1 drives towards -x, 1.75 m left of the divider
    np.testing.assert_allclose(l3.centerline[[0, -1]], [[60.0, 1.75], [0.0, 1.75]])
    assert l3.predecessors == ("L7",) and l3.successors == ()
    assert polygon_signed_area(m.roadblocks[0].polygon) == pytest.approx(60.0 * 7.0)
    assert {lane.speed_limit for lane in m.lanes} == {22.0}
    # forward lanes of segment 1 and backward lanes of segment 3 have 3 roadblocks ahead
    assert g.spawn_lanes == ("L1", "L2", "L11", "L12")


def test_four_way_intersection_hand_case():
    """1 lane per direction, 6 m curb radius: arms start 3.5 + 6 = 9.5 m from the centre."""
    cfg = replace(FLAT, lanes_per_direction_range=(1, 1), segment_length_range=(50.0, 50.0), arm_segments=1,
                  corner_radius_range=(6.0, 6.0))
    g = generate_map("intersection", np.random.default_rng(0), cfg)
    m = g.map
    assert len(m.lane_connectors) == 12 and len(m.roadblock_connectors) == 12  # 4 arms x (straight, left, right)
    assert len(m.crosswalks) == 4 and len(m.stop_lines) == 4 and len(m.intersections) == 1
    # box 19 x 19 minus four quarter discs of radius 6, plus four 0.5 m x 7 m strips into the arms
    assert polygon_signed_area(m.intersections[0].polygon) == pytest.approx(361 - 36 * math.pi + 14, abs=0.5)
    east_in = m.lanes_by_id["L2"]  # east arm, incoming (westbound, north side)
    np.testing.assert_allclose(east_in.centerline[-1], [9.5, 1.75], atol=1e-12)
    turns = {tuple(m.lanes_by_id[c].centerline[-1].round(6)): c for c in east_in.successors}
    right, straight, left = turns[(1.75, 9.5)], turns[(-9.5, 1.75)], turns[(-1.75, -9.5)]
    # the right turn is a near-circular quarter of radius 7.75 about the block corner (9.5, 9.5)
    radius = np.linalg.norm(m.lanes_by_id[right].centerline - [9.5, 9.5], axis=1)
    np.testing.assert_allclose(radius, 7.75, atol=0.01)
    assert m.lanes_by_id[straight].speed_limit == 13.9
    assert m.lanes_by_id[right].speed_limit == pytest.approx(math.sqrt(3.0 * 7.75), rel=0.01)
    assert g.signal_groups[straight] == g.signal_groups[right] == SignalGroup.EAST_WEST
    assert g.signal_groups[left] == SignalGroup.EAST_WEST_LEFT
    assert sorted(set(g.signal_groups.values())) == [0, 1, 2, 3] and len(g.signal_groups) == 12
    # crosswalk of the east arm spans the road, ending JUNCTION_OVERLAP before the mouth
    xs = m.crosswalks[0].polygon[:, 0]
    assert (xs.min(), xs.max()) == pytest.approx((9.0 - CROSSWALK_WIDTH, 9.0))
    assert g.spawn_lanes == ("L2", "L4", "L6", "L8") and g.stop_sign_connectors == ()


def test_t_junction_minor_road_has_stop_signs():
    g = generate_map("t_junction", np.random.default_rng(5), FLAT)
    lanes = g.map.lanes_by_id
    assert g.signal_groups == {} and len(g.stop_sign_connectors) == 2  # minor road: left and right turn
    for conn in g.stop_sign_connectors:
        start = lanes[conn].centerline[0]
        assert start[1] < 0 and abs(start[0]) < 4 * 3.5  # the minor arm points south (local frame)
    assert len(g.map.stop_lines) == 1 and len(g.map.crosswalks) == 3


def test_merge_ramp_lane_ends_into_a_connector():
    g = generate_map("merge", np.random.default_rng(2), FLAT)
    m = g.map
    (conn,) = m.lane_connectors
    ramp_lane, main_lane = m.lanes_by_id[conn.predecessors[0]], m.lanes_by_id[conn.successors[0]]
    assert ramp_lane.successors == (conn.id,)
    assert len(main_lane.predecessors) == 2  # the main lane before it and the merge connector
    # both ends run along +x, shifted by one lane width (ramp lane -> outermost main lane)
    assert conn.centerline[-1, 1] - conn.centerline[0, 1] == pytest.approx(3.5)
    assert _heading(conn.centerline[:2]) == pytest.approx(0.0, abs=0.01)
    assert ramp_lane.id in g.spawn_lanes or any(
        ramp_lane.id in m.lanes_by_id[s].successors for s in g.spawn_lanes)


def test_carpark_driveway_leads_into_the_carpark():
    g = generate_map("carpark", np.random.default_rng(3), FLAT)
    m = g.map
    (park,) = m.carparks
    def in_park(point: np.ndarray) -> bool:
        return bool(_contains([park.polygon], point[None])[0, 0])

    dead_ends = [lane for lane in m.lanes if not lane.successors and in_park(lane.centerline[-1])]
    starts = [lane for lane in m.lanes if not lane.predecessors and in_park(lane.centerline[0])]
    assert len(dead_ends) == 1 and len(starts) == 1  # one lane in, one lane out
    assert starts[0].id in g.spawn_lanes and len(g.stop_sign_connectors) == 2
    assert dead_ends[0].speed_limit == 5.0


# ------------------------------------------------------------------------------------------------ validation


@pytest.mark.parametrize("field,value", [
    ("lane_width", 1.0), ("urban_speed_limit", 0.0), ("road_speed_limit", float("nan")),
    ("segment_length_range", (80.0, 50.0)), ("lanes_per_direction_range", (0, 2)),
    ("curve_radius_range", (10.0, 200.0)), ("corner_radius_range", (2.0, 8.0)), ("point_spacing", 0.0),
    ("max_translation", -1.0), ("arm_segments", 0), ("min_route_roadblocks", 9), ("num_segments_range", (2, 1)),
])
def test_config_rejects_bad_values(field, value):
    with pytest.raises(ValueError, match=field):
        MapGenConfig(**{field: value})


def test_generate_map_rejects_bad_arguments():
    with pytest.raises(ValueError, match="kind='roundabout'"):
        generate_map("roundabout", np.random.default_rng(0))
    with pytest.raises(ValueError, match="rng="):
        generate_map("straight", 0)
    with pytest.raises(ValueError, match="config="):
        generate_map("straight", np.random.default_rng(0), {"lane_width": 3.5})
