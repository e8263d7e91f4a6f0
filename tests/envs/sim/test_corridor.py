"""Hand-worked cases for envs/sim/corridor.py: corridor substrings and caps, ring closing, box/polygon
distance, corridor proximity and box-within-polygon."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from envs.sim.corridor import box_ring_distance, box_within_rings, close_rings, path_corridor, polygons_near_corridor

F64 = torch.float64


def t(values) -> torch.Tensor:
    return torch.tensor(values, dtype=F64)


def square(x0, y0, x1, y1) -> list[list[float]]:
    """Axis-aligned rectangle [x0, x1] x [y0, y1], counter-clockwise from (x0, y0)."""
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]


# --------------------------------------------------------------------------- path_corridor

STRAIGHT = np.stack([np.arange(11.0), np.zeros(11)], 1)          # (0, 0) .. (10, 0), a vertex every metre


def test_path_corridor_keeps_the_vertices_inside_the_interval():
    # arc lengths 2.5 .. 6.5 keep vertices 3 .. 6 only (NAVSIM's substring of PDMPath); radius 1 caps
    # are 1 m deep, 2 m wide squares behind (3, 0) and beyond (6, 0)
    line, caps = path_corridor(STRAIGHT, 2.5, 6.5, 1.0)
    np.testing.assert_array_equal(line, [[3, 0], [4, 0], [5, 0], [6, 0]])
    np.testing.assert_allclose(caps[0], [[3, 1], [2, 1], [2, -1], [3, -1]], atol=1e-12)
    np.testing.assert_allclose(caps[1], [[6, -1], [7, -1], [7, 1], [6, 1]], atol=1e-12)


def test_path_corridor_between_two_vertices_interpolates_the_ends():
    line, caps = path_corridor(STRAIGHT, 2.2, 2.8, 0.5)
    np.testing.assert_allclose(line, [[2.2, 0], [2.8, 0]], atol=1e-12)
    np.testing.assert_allclose(caps[0], [[2.2, 0.5], [1.7, 0.5], [1.7, -0.5], [2.2, -0.5]], atol=1e-12)
    np.testing.assert_allclose(caps[1], [[2.8, -0.5], [3.3, -0.5], [3.3, 0.5], [2.8, 0.5]], atol=1e-12)


def test_path_corridor_of_a_point_is_an_axis_aligned_square():
    # both ends clip to the path end (10, 0): GEOS buffers a point to a 2r x 2r square
    line, caps = path_corridor(STRAIGHT, 20.0, 30.0, 1.0)
    np.testing.assert_array_equal(line, [[10, 0], [10, 0]])
    for cap in caps:
        np.testing.assert_allclose(cap, [[11, 1], [9, 1], [9, -1], [11, -1]], atol=1e-12)


# --------------------------------------------------------------------------- close_rings


def test_close_rings_repeats_the_first_vertex_after_the_last_valid_one():
    ring = t([[[0, 0], [1, 0], [0, 1], [7, 7]],          # triangle padded with a junk vertex
              [[0, 0], [2, 0], [2, 2], [0, 2]]])         # full square
    valid = torch.tensor([[True, True, True, False], [True, True, True, True]])
    closed, closed_valid = close_rings(ring, valid)
    torch.testing.assert_close(closed, t([[[0, 0], [1, 0], [0, 1], [0, 0], [0, 0]],
                                          [[0, 0], [2, 0], [2, 2], [0, 2], [0, 0]]]))
    assert closed_valid.tolist() == [[True, True, True, True, False], [True] * 5]


# --------------------------------------------------------------------------- box_ring_distance

UNIT = square(0, 0, 1, 1)


def test_box_ring_distance_hand_cases():
    rings = t([square(3, 0, 4, 1),                         # 2 m to the right, edge to edge
               square(2, 2, 3, 3),                         # corner (1, 1) to corner (2, 2): sqrt(2)
               [[0.5, 3], [0, 5], [1, 5], [0.5, 3]],        # triangle tip 2 m above the top edge
               square(1, 0, 2, 1),                         # sharing an edge: touching
               square(-5, -5, 5, 5)])                      # containing the box
    valid = torch.ones(5, 4, dtype=torch.bool)
    distance = box_ring_distance(t([UNIT] * 5), rings, valid)
    torch.testing.assert_close(distance, t([2.0, math.sqrt(2), 2.0, 0.0, 0.0]), rtol=0, atol=1e-12)


def test_box_ring_distance_ignores_padding_vertices():
    # a padded vertex at (0.5, 0.5) would sit inside the box; the real triangle is 3 m away
    ring = t([[[4, 0], [6, 0], [5, 1], [0.5, 0.5]]])
    valid = torch.tensor([[True, True, True, False]])
    torch.testing.assert_close(box_ring_distance(t([UNIT]), ring, valid), t([3.0]), rtol=0, atol=1e-12)
    assert box_ring_distance(t([UNIT])[:0], ring[:0], valid[:0]).shape == (0,)


# --------------------------------------------------------------------------- polygons_near_corridor


def test_polygons_near_corridor_hand_cases():
    # corridor: the segment (0, 0) -> (10, 0) buffered by 1 m with square caps x in [-1, 0] and [10, 11]
    line = t([[[[0, 0], [10, 0]]]])                                                   # (1, 1, 2, 2)
    line_valid = torch.ones(1, 1, 2, dtype=torch.bool)
    caps = t([[[square(-1, -1, 0, 1), square(10, -1, 11, 1)]]])                       # (1, 1, 2, 4, 2)
    poly = t([[square(4, 1.5, 5, 2.5),          # 1.5 m beside the line: out
               square(4, 0.9, 5, 2),            # 0.9 m: in
               square(4, 1, 5, 2),              # exactly 1 m: the buffer is closed, in
               square(10.8, 0.8, 11.5, 1.5),    # 1.13 m from the end point but inside the square end cap
               square(11.2, 0, 12, 0.5),        # 1.2 m beyond the end: out
               square(-20, -20, 20, 20),        # contains the whole line: in
               square(2, -3, 3, -2)]])          # 2 m below: out
    poly_valid = torch.ones(1, 7, 4, dtype=torch.bool)
    near = polygons_near_corridor(poly, poly_valid, line, line_valid, caps, 1.0)
    assert near.tolist() == [[[False, True, True, True, False, True, False]]]
    # a polygon without valid vertices never touches
    poly_valid[0, 1] = False
    assert not polygons_near_corridor(poly, poly_valid, line, line_valid, caps, 1.0)[0, 0, 1]


def test_polygons_near_corridor_ignores_padded_line_segments():
    # path 0 has 2 vertices (padding repeats (10, 0)); path 1 runs along y = 5 with 3 vertices
    line = t([[[[0, 0], [10, 0], [10, 0]], [[0, 5], [5, 5], [10, 5]]]])
    line_valid = torch.tensor([[[True, True, False], [True, True, True]]])
    caps = t([[[square(-1, -1, 0, 1), square(10, -1, 11, 1)], [square(-1, 4, 0, 6), square(10, 4, 11, 6)]]])
    poly = t([[square(4, 5.5, 5, 6), square(4, -1.5, 5, -0.5)]])
    near = polygons_near_corridor(poly, torch.ones(1, 2, 4, dtype=torch.bool), line, line_valid, caps, 1.0)
    assert near.tolist() == [[[False, True], [True, False]]]


# --------------------------------------------------------------------------- box_within_rings


def test_box_within_rings_hand_cases():
    padded = torch.zeros(1, 5, 7, 2, dtype=F64)
    valid = torch.zeros(1, 5, 7, dtype=torch.bool)
    cases = [square(-1, -1, 2, 2),                                              # around the box
             UNIT,                                                              # the box itself: boundary allowed
             square(0.5, -1, 3, 2),                                             # left corners outside
             [[-1, -1], [2, -1], [2, 2], [0.6, 2], [0.5, 0.5], [0.4, 2], [-1, 2]],      # notch tip inside
             [[-1, -1], [2, -1], [2, 2], [0.55, 2], [0.5, -0.5], [0.45, 2], [-1, 2]]]   # notch through it
    for r, ring in enumerate(cases):
        padded[0, r, :len(ring)] = t(ring)
        valid[0, r, :len(ring)] = True
    # the notch of the last ring enters the box through its top edge and leaves through its bottom one
    # with no vertex inside: only the proper edge crossings reject it
    assert box_within_rings(t([UNIT]), padded, valid).tolist() == [[True, True, False, False, False]]


def test_box_within_rings_needs_a_valid_vertex():
    ring = t([[square(-1, -1, 2, 2)]])
    assert not box_within_rings(t([UNIT]), ring, torch.zeros(1, 1, 4, dtype=torch.bool))[0, 0]


@pytest.mark.parametrize("heading", [0.3, 2.0])
def test_box_within_rings_rotated_box(heading):
    from envs.sim.geometry import box_corners
    box = box_corners(t([[0.0, 0.0]]), t([heading]), 4.0, 2.0)          # half diagonal sqrt(5) = 2.24 m
    inside = t([[square(-2.3, -2.3, 2.3, 2.3)]])
    tight = t([[square(-2.0, -2.0, 2.0, 2.0)]])
    valid = torch.ones(1, 1, 4, dtype=torch.bool)
    assert box_within_rings(box, inside, valid).item()
    # at 0.3 rad the corners reach |x| = 2cos(0.3) + sin(0.3) = 2.21 > 2; at 2.0 rad |y| = 2 sin 2 + |cos 2| = 2.24
    assert not box_within_rings(box, tight, valid).item()
