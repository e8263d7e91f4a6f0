"""Static drawable map geometry: boundaries, dashes, crosswalk stripes, signal heads, cache."""

import numpy as np
import pytest

from envs.sim.map import Area, Lane, RoadMap
from envs.sim.scenery import (
    CROSSWALK_PERIOD, DASH_GAP, DASH_LENGTH, HEAD_AHEAD, HEAD_SPACING, MAX_QUAD_LENGTH, Boundary, Paint, Surface, build_scenery,
    points_in_ring, scenery_for,
)


def rect(x0, x1, y0, y1) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=float)


def straight_road_map(x0: float = -50.0, x1: float = 150.0, crosswalk_x: float | None = None,
                      connectors: bool = False) -> RoadMap:
    """Two-way road along x: eastbound roadblock RBE (lanes LE1 y in [0, 3.5], LE2 [3.5, 7]) and
    westbound RBW (LW1 [-3.5, 0], LW2 [-7, -3.5]). Optional crosswalk W1 (3 m deep, across the road at
    crosswalk_x) and, with `connectors`, an intersection x1..x1+20 with eastbound connectors CS (straight
    from LE1) and CL (left turn from LE1, ends heading north)."""
    lanes = []
    layout = (("LE1", "RBE", (0.0, 3.5), True), ("LE2", "RBE", (3.5, 7.0), True),
              ("LW1", "RBW", (-3.5, 0.0), False), ("LW2", "RBW", (-7.0, -3.5), False))
    for lane_id, block, (y0, y1), eastbound in layout:
        yc = (y0 + y1) / 2
        line = np.array([[x0, yc], [(x0 + x1) / 2, yc], [x1, yc]])
        lanes.append(Lane(lane_id, block, rect(x0, x1, y0, y1), line if eastbound else line[::-1], 15.0))
    crosswalks = () if crosswalk_x is None else (Area("W1", rect(crosswalk_x, crosswalk_x + 3.0, -7.0, 7.0)),)
    lane_connectors, intersections, rbc = (), (), ()
    if connectors:
        straight = Lane("CS", "RBC1", rect(x1, x1 + 20, 0.0, 3.5),
                        np.array([[x1, 1.75], [x1 + 10, 1.75], [x1 + 20, 1.75]]), is_connector=True)
        angles = np.linspace(-np.pi / 2, 0.0, 60)
        turn_line = np.stack([x1 + 12 * np.cos(angles), 13.75 + 12 * np.sin(angles)], 1)   # quarter circle to the north
        left = Lane("CL", "RBC2", np.concatenate([turn_line + [0, -1.75], (turn_line + [0, 1.75])[::-1]]), turn_line,
                    is_connector=True)
        lane_connectors = (straight, left)
        intersections = (Area("I1", rect(x1, x1 + 20, -7.0, 7.0)),)
        rbc = (Area("RBC1", rect(x1, x1 + 20, 0.0, 3.5)),)
    return RoadMap(lanes=tuple(lanes), lane_connectors=lane_connectors,
                   roadblocks=(Area("RBE", rect(x0, x1, 0.0, 7.0)), Area("RBW", rect(x0, x1, -7.0, 0.0))),
                   roadblock_connectors=rbc, intersections=intersections, crosswalks=crosswalks)


def test_points_in_ring_square():
    inside = points_in_ring(np.array([[0.5, 0.5], [1.5, 0.5], [-0.1, 0.9]]), rect(0, 1, 0, 1))
    assert inside.tolist() == [True, False, False]


def test_lane_boundaries_of_a_two_way_road():
    scenery = build_scenery(straight_road_map())
    by_y = {}
    for r, kind in enumerate(scenery.boundaries.label.tolist()):
        line = scenery.boundaries.points[scenery.boundaries.starts[r]:scenery.boundaries.starts[r + 1]]
        assert np.ptp(line[:, 1]) < 1e-9                                   # straight along x
        by_y[round(float(line[0, 1]), 6)] = Boundary(kind)
    # each shared boundary once: dashed between same-direction lanes, yellow in the middle, solid edges
    assert by_y == {3.5: Boundary.DASHED, -3.5: Boundary.DASHED, 0.0: Boundary.CENTRE,
                    7.0: Boundary.SOLID, -7.0: Boundary.SOLID}


def test_dashes_and_centre_line_quads():
    scenery = build_scenery(straight_road_map(x0=0.0, x1=100.0))
    yellow = scenery.quads[scenery.quad_paint == Paint.YELLOW]
    assert len(yellow) == 100 / MAX_QUAD_LENGTH                            # the 100 m centre line, cut up
    assert np.allclose(np.sort(yellow[:, :, 1], axis=1), [-0.15, -0.15, 0.15, 0.15])
    assert np.allclose(np.sort(yellow[:, :, 0].min(axis=1)), np.arange(0.0, 100.0, MAX_QUAD_LENGTH))
    centre_y = scenery.quads[..., 1].mean(axis=1)
    dashes = scenery.quads[np.isclose(centre_y, 3.5)]
    # dashes start every 9 m from x = 0 along the eastbound lane: 0, 9, ..., 99 (the last one clipped)
    period = DASH_LENGTH + DASH_GAP
    starts = np.sort(dashes[..., 0].min(axis=1))
    assert np.allclose(starts, np.arange(0.0, 100.0, period))
    assert np.allclose(dashes[0, :, 0].max() - dashes[0, :, 0].min(), DASH_LENGTH)


def test_crosswalk_stripes_span_the_road():
    scenery = build_scenery(straight_road_map(crosswalk_x=40.0))
    stripes = scenery.quads[np.isclose(scenery.quads[..., 0].min(axis=1), 40.1)]
    assert len(stripes) == int(14.0 // CROSSWALK_PERIOD)                  # 14 m long crosswalk
    assert np.allclose(stripes[..., 0].max(axis=1), 42.9)


def test_surfaces_and_signal_heads():
    road_map = straight_road_map(x1=100.0, connectors=True)
    scenery = build_scenery(road_map)
    # roadblock connectors inside an intersection are not paved separately
    assert sorted(scenery.surfaces.label.tolist()) == [Surface.ROADBLOCK, Surface.ROADBLOCK, Surface.INTERSECTION]
    straight = scenery.head_row["CS"]
    assert np.allclose(scenery.head_xy[straight], [100.0 + HEAD_AHEAD, 1.75])
    assert scenery.head_heading[straight] == pytest.approx(0.0)
    left = scenery.head_row["CL"]                                          # a left turn: its head sits left
    # (the first chord of the sampled arc is 0.013 rad off the tangent: 0.16 m at HEAD_AHEAD)
    assert scenery.head_xy[left] == pytest.approx([100.0 + HEAD_AHEAD, 1.75 + HEAD_SPACING], abs=0.2)
    assert scenery.lane_roadblock_ids[scenery.lane_row["CL"]] == "RBC2"


def test_scenery_is_cached_per_map_object():
    road_map = straight_road_map()
    assert scenery_for(road_map) is scenery_for(road_map)
    assert scenery_for(straight_road_map()) is not scenery_for(road_map)


def test_scenery_cache_keeps_every_live_map_and_forgets_dead_ones():
    import gc

    from envs.sim import scenery as scenery_module

    maps = [straight_road_map() for _ in range(40)]           # more maps than a batch used to keep (32)
    first = [scenery_for(m) for m in maps]
    assert all(scenery_for(m) is s for m, s in zip(maps, first))
    key = id(maps[0])
    assert key in scenery_module._CACHE
    del maps[0], first[0]
    gc.collect()
    assert key not in scenery_module._CACHE
