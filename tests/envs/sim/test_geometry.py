"""Hand-worked cases for envs/sim/geometry.py, plus shapely comparisons on random data when installed."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import torch

from envs.sim.geometry import (box_corners, boxes_intersect, orientation_sign, points_to_global, points_to_local,
                               polygon_intersects_boxes, polygon_is_simple, polygon_signed_area, polyline_distance,
                               polyline_interpolate, polyline_length, polyline_project, ray_crossing, rotation,
                               segment_intersects_box, segments_intersect, to_global, to_local, wrap_angle)

F64 = torch.float64


def t(values) -> torch.Tensor:
    return torch.tensor(values, dtype=F64)


def quad(x0, y0, x1, y1) -> torch.Tensor:
    """Axis-aligned box [x0, x1] x [y0, y1] as corners FL, RL, RR, FR for heading 0."""
    return t([[x1, y1], [x0, y1], [x0, y0], [x1, y0]])


# --------------------------------------------------------------------------- angles and frames


def test_wrap_angle_uses_atan2_convention():
    out = wrap_angle(t([0.5, 3 * math.pi / 2, -3 * math.pi / 2, 7.0, math.pi, -math.pi]))
    expected = t([0.5, -math.pi / 2, math.pi / 2, 7.0 - 2 * math.pi, math.pi, -math.pi])
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)
    assert out[4] == math.pi and out[5] == -math.pi      # both ends of [-pi, pi] occur


def test_rotation_quarter_turn():
    torch.testing.assert_close(rotation(t([math.pi / 2, 0.0])), t([[[0, -1], [1, 0]], [[1, 0], [0, 1]]]),
                               rtol=0, atol=1e-15)


def test_to_global_and_to_local_hand_worked():
    origin = t([1.0, 2.0, math.pi / 2])
    torch.testing.assert_close(to_global(t([3.0, 0.0, 0.0]), origin), t([1.0, 5.0, math.pi / 2]), rtol=0, atol=1e-12)
    # one metre to the left of a north-facing pose is west; heading pi/2 + pi wraps to -pi/2
    torch.testing.assert_close(to_global(t([0.0, 1.0, math.pi]), origin), t([0.0, 2.0, -math.pi / 2]),
                               rtol=0, atol=1e-12)
    torch.testing.assert_close(to_local(t([1.0, 5.0, 0.0]), origin), t([3.0, 0.0, -math.pi / 2]), rtol=0, atol=1e-12)


def test_to_local_inverts_to_global_with_broadcasting():
    gen = torch.Generator().manual_seed(0)
    local = torch.randn(5, 7, 3, generator=gen, dtype=F64) * 10
    origin = torch.randn(5, 1, 3, generator=gen, dtype=F64) * 100
    back = to_local(to_global(local, origin), origin)
    torch.testing.assert_close(back[..., :2], local[..., :2], rtol=0, atol=1e-9)
    torch.testing.assert_close(back[..., 2], wrap_angle(local[..., 2]), rtol=0, atol=1e-12)
    assert to_global(local, origin).shape == (5, 7, 3)


def test_points_to_global_and_local():
    origin = t([10.0, -2.0, math.pi])
    torch.testing.assert_close(points_to_global(t([[1.0, 2.0]]), origin), t([[9.0, -4.0]]), rtol=0, atol=1e-12)
    torch.testing.assert_close(points_to_local(t([[9.0, -4.0]]), origin), t([[1.0, 2.0]]), rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="xy.shape"):
        points_to_global(t([1.0, 2.0, 3.0]), origin)


# --------------------------------------------------------------------------- boxes


def test_box_corner_order_fl_rl_rr_fr():
    corners = box_corners(t([1.0, 2.0]), t(0.0), 4.0, 2.0)
    torch.testing.assert_close(corners, t([[3, 3], [-1, 3], [-1, 1], [3, 1]]), rtol=0, atol=1e-12)
    # facing north: front is +y, left is -x
    corners = box_corners(t([1.0, 2.0]), t(math.pi / 2), 4.0, 2.0)
    torch.testing.assert_close(corners, t([[0, 4], [0, 0], [2, 0], [2, 4]]), rtol=0, atol=1e-12)


def test_box_corners_broadcast_tensor_sizes_and_rejects_negative():
    corners = box_corners(torch.zeros(3, 2, dtype=F64), torch.zeros(3, dtype=F64), t([2.0, 4.0, 6.0]), 1.0)
    assert corners.shape == (3, 4, 2)
    torch.testing.assert_close(corners[:, 0, 0], t([1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match="width"):
        box_corners(t([0.0, 0.0]), t(0.0), 4.0, -1.0)


def test_boxes_touching_at_an_edge_intersect_and_a_gap_of_1e6_does_not():
    a = quad(0, 0, 2, 1)
    assert boxes_intersect(a, quad(2, 0, 3, 1)).item()               # shared edge x = 2
    assert boxes_intersect(a, quad(2, 1, 3, 2)).item()               # shared corner (2, 1)
    assert not boxes_intersect(a, quad(2 + 1e-6, 0, 3, 1)).item()
    assert boxes_intersect(a, quad(0.5, 0.2, 1.0, 0.4)).item()       # containment, no edge crossing
    assert boxes_intersect(quad(0.5, 0.2, 1.0, 0.4), a).item()


def test_boxes_rotated_45_degrees():
    square = quad(0, 0, 2, 2)
    diamond = t([[3, 2], [2, 1], [3, 0], [4, 1]])                    # left vertex on the square's edge
    assert boxes_intersect(square, diamond).item()
    assert not boxes_intersect(square, diamond + t([1e-6, 0.0])).item()
    assert boxes_intersect(square, diamond - t([0.5, 0.0])).item()
    # a 45-degree box near the corner (2, 2): its bounding box overlaps but the box itself does not
    near = box_corners(t([3.0, 3.0]), t(math.pi / 4), 2.0, 1.0)       # closest point ~(2.65, 2.65)
    assert not boxes_intersect(square, near).item()


def test_boxes_intersect_broadcasts():
    a = torch.stack([quad(0, 0, 1, 1), quad(10, 10, 11, 11), quad(0.5, 0.5, 3, 3)])[:, None]   # (3, 1, 4, 2)
    b = torch.stack([quad(1, 0, 2, 1), quad(5, 5, 6, 6)])[None]                              # (1, 2, 4, 2)
    assert boxes_intersect(a, b).tolist() == [[True, False], [False, False], [True, False]]


def test_segment_intersects_box():
    box = quad(0, 0, 2, 1)
    cases = [
        (([-1, 0.5], [3, 0.5]), True),          # crosses through
        (([0.5, 0.5], [1.0, 0.6]), True),       # inside, no edge crossing
        (([2, 1], [3, 2]), True),               # touches the corner (2, 1)
        (([-1, 1], [3, 1]), True),              # runs along the top edge
        (([-1, 1 + 1e-6], [3, 1 + 1e-6]), False),
        (([1, 3], [3, 1 + 1e-9]), False),       # passes just above the corner
        (([1, 1], [1, 1]), True),               # degenerate segment on the edge
    ]
    p0 = t([c[0][0] for c in cases])
    p1 = t([c[0][1] for c in cases])
    assert segment_intersects_box(p0, p1, box).tolist() == [c[1] for c in cases]


# --------------------------------------------------------------------------- predicates


def test_orientation_sign_hand_cases():
    a, b = t([0.0, 0.0]), t([4.0, 0.0])
    assert orientation_sign(a, b, t([[1.0, 1.0], [1.0, -1.0], [9.0, 0.0]])).tolist() == [1, -1, 0]


def test_orientation_sign_is_exact_where_floats_fail():
    # points a hair off the diagonal through (12, 12) and (24, 24): the float determinant gets the sign
    # wrong for many of them (Kettner et al.'s classic example); compare with rational arithmetic
    ulp = 2.0 ** -53
    steps = torch.arange(64, dtype=F64)
    grid = torch.stack(torch.meshgrid(steps, steps, indexing="ij"), -1).reshape(-1, 2)
    a = 0.5 + grid * ulp
    b, c = t([12.0, 12.0]), t([24.0, 24.0])
    signs = orientation_sign(a, b, c)
    expected = []
    for ax, ay in a.tolist():
        det = (Fraction(ax) - 24) * (Fraction(12) - 24) - (Fraction(ay) - 24) * (Fraction(12) - 24)
        expected.append((det > 0) - (det < 0))
    assert signs.tolist() == expected
    assert expected.count(0) == 64 and expected.count(1) > 0 and expected.count(-1) > 0


def test_orientation_sign_single_points_use_the_exact_fallback():
    # unbatched (2,) points whose float determinant is unsure: 0-d tensors take the exact path too
    # (a - c) x (b - c) = (-23.5 + u) * -12 - (-23.5) * -12 = -12 u < 0 for u = 2^-53 (one ulp of 0.5)
    a = t([0.5 + 2.0 ** -53, 0.5])
    assert int(orientation_sign(a, t([12.0, 12.0]), t([24.0, 24.0]))) == -1
    assert int(orientation_sign(t([0.5, 0.5]), t([12.0, 12.0]), t([24.0, 24.0]))) == 0


def test_segments_intersect_cases():
    p0, p1 = t([0.0, 0.0]), t([2.0, 2.0])
    q = t([[[0, 2], [2, 0]],        # proper crossing
           [[1, 1], [3, 0]],        # T-touch at (1, 1)
           [[1, 1], [3, 3]],        # collinear overlap
           [[3, 3], [4, 4]],        # collinear, disjoint
           [[0, 1], [2, 3]],        # parallel
           [[2, 2], [5, 0]]])       # shared endpoint
    assert segments_intersect(p0, p1, q[:, 0], q[:, 1]).tolist() == [True, True, True, False, False, True]


def test_ray_crossing_half_open_rule():
    point = t([0.0, 0.0])
    starts = t([[1, -1], [1, 0], [1, 0], [-1, -1], [0, -1], [1, 5]])
    ends = t([[1, 1], [1, 1], [1, -1], [-1, 1], [0, 1], [2, 5]])
    crosses, on_edge = ray_crossing(point, starts, ends)
    # upward edge right of the point: crosses. An edge whose lower end is on the ray counts, one whose
    # upper end is on it does not (so a ray through a vertex counts once). Left edges never count.
    assert crosses.tolist() == [True, True, False, False, False, False]
    assert on_edge.tolist() == [False, False, False, False, True, False]
    crosses, _ = ray_crossing(point, t([[1, 1]]), t([[1, 0]]))
    assert crosses.tolist() == [True]                 # direction does not matter


# --------------------------------------------------------------------------- polygons vs boxes


L_SHAPE = [[0, 0], [4, 0], [4, 1], [1, 1], [1, 4], [0, 4]]


def test_polygon_intersects_boxes_l_shape_notch():
    poly = t([[L_SHAPE, L_SHAPE[:3] + [[0, 0]] * 3]])                 # (1, 2, 6, 2); slot 1 is padding
    valid = torch.tensor([[[True] * 6, [False] * 6]])
    boxes = torch.stack([quad(2, 2, 3, 3),          # in the notch: bounding boxes overlap, shapes do not
                         quad(0.5, 2, 1.5, 3),      # overlaps the vertical arm
                         quad(1, 2, 2, 3),          # touches the inner edge x = 1
                         quad(1 + 1e-9, 1 + 1e-9, 2, 2),   # just off the reflex corner
                         quad(0.2, 0.2, 0.8, 0.8),  # inside, no edge crossing
                         quad(-1, -1, 5, 5)])[None]  # contains the polygon
    out = polygon_intersects_boxes(boxes, poly, valid)
    assert out.shape == (1, 6, 2)
    assert out[0, :, 0].tolist() == [False, True, True, False, True, True]
    assert not out[0, :, 1].any()
    nested = polygon_intersects_boxes(boxes.reshape(1, 2, 3, 4, 2), poly, valid)
    assert nested.shape == (1, 2, 3, 2) and torch.equal(nested.reshape(1, 6, 2), out)


def test_polygon_intersects_boxes_rejects_gappy_mask():
    poly = torch.zeros(1, 1, 4, 2, dtype=F64)
    with pytest.raises(ValueError, match="prefix"):
        polygon_intersects_boxes(torch.zeros(1, 1, 4, 2, dtype=F64), poly, torch.tensor([[[True, False, True, True]]]))


def _star(rng, center, radius, count):
    angle = np.sort(rng.uniform(0, 2 * np.pi, count))
    r = rng.uniform(0.3, 1.0, count) * radius
    return np.stack([center[0] + r * np.cos(angle), center[1] + r * np.sin(angle)], 1)


def test_boxes_segments_and_polygons_match_shapely_on_random_data():
    shapely = pytest.importorskip("shapely")
    rng = np.random.default_rng(0)
    n = 400
    a = box_corners(t(rng.uniform(-5, 5, (n, 2))), t(rng.uniform(-4, 4, n)), 4.0, 2.0)
    b = box_corners(t(rng.uniform(-5, 5, (n, 2))), t(rng.uniform(-4, 4, n)), t(rng.uniform(0.5, 5, n)), 1.5)
    b[:50] = a[:50] + (a[:50, 0] - a[:50, 1])[:, None]        # boxes sharing an edge
    expected = [shapely.Polygon(x).intersects(shapely.Polygon(y)) for x, y in zip(a.numpy(), b.numpy())]
    assert boxes_intersect(a, b).tolist() == expected

    p0, p1 = a[:, 0], a[:, 3]                                  # front bumpers
    expected = [shapely.LineString([x, y]).intersects(shapely.Polygon(z))
                for x, y, z in zip(p0.numpy(), p1.numpy(), b.numpy())]
    assert segment_intersects_box(p0, p1, b).tolist() == expected

    num_poly, num_vertices = 6, 14
    poly = np.zeros((2, num_poly, num_vertices, 2))
    valid = np.zeros((2, num_poly, num_vertices), bool)
    for batch in range(2):
        for r in range(num_poly):
            count = rng.integers(3, num_vertices + 1)
            poly[batch, r, :count] = _star(rng, rng.uniform(-8, 8, 2), rng.uniform(2, 8), count)
            valid[batch, r, :count] = True
    boxes = box_corners(t(rng.uniform(-12, 12, (2, 150, 2))), t(rng.uniform(-4, 4, (2, 150))), 3.0, 1.5)
    out = polygon_intersects_boxes(boxes, t(poly), torch.tensor(valid))
    for batch in range(2):
        for r in range(num_poly):
            shape = shapely.Polygon(poly[batch, r, valid[batch, r]])
            assert out[batch, :, r].tolist() == [shape.intersects(shapely.Polygon(x)) for x in boxes[batch].numpy()]


# --------------------------------------------------------------------------- polylines


def _three_segments():
    """(0,0) -> (4,0) -> (4,3) -> (8,3): segment lengths 4, 3, 4; plus a padded 2-vertex row."""
    line = t([[[0, 0], [4, 0], [4, 3], [8, 3]], [[0, 0], [0, 2], [9, 9], [9, 9]]])
    valid = torch.tensor([[True] * 4, [True, True, False, False]])
    return line, valid


def test_polyline_length_project_distance_hand_worked():
    line, valid = _three_segments()
    torch.testing.assert_close(polyline_length(line, valid), t([11.0, 2.0]))
    points = t([[[2, 1], [5, 1.5], [10, 5], [-1, -1], [6, 1.5]], [[1, 1], [0, 5], [0, -3], [0, 1], [-2, 1]]])
    torch.testing.assert_close(polyline_project(points, line, valid), t([[2, 5.5, 11, 0, 9], [1, 2, 0, 1, 1]]))
    torch.testing.assert_close(polyline_distance(points, line, valid),
                               t([[1, 1, math.sqrt(8), math.sqrt(2), 1.5], [1, 3, 3, 0, 2]]))


def test_polyline_project_ties_go_to_the_first_segment():
    line, valid = _three_segments()
    # (3, 1) is 1 m from segment 0 (at arc 3) and from segment 1 (at arc 5)
    assert polyline_project(t([[[3, 1]], [[0, 1]]]), line, valid)[0, 0].item() == 3.0
    u_turn = t([[[0, 0], [4, 0], [4, 2], [0, 2]]])
    # (1, 1) is 1 m from the first leg (arc 1) and from the last leg (arc 9)
    assert polyline_project(t([[[1, 1]]]), u_turn, torch.ones(1, 4, dtype=torch.bool)).item() == 1.0


def test_polyline_interpolate_hand_worked():
    line, valid = _three_segments()
    s = t([[5.5, 4.0, -1.0, 20.0, 11.0], [1.0, 0.0, 2.0, 3.0, 0.5]])
    point, heading = polyline_interpolate(line, valid, s, return_heading=True)
    torch.testing.assert_close(point, t([[[4, 1.5], [4, 0], [0, 0], [8, 3], [8, 3]],
                                         [[0, 1], [0, 0], [0, 2], [0, 2], [0, 0.5]]]))
    # at the vertex s = 4 the outgoing segment (north) gives the heading
    torch.testing.assert_close(heading, t([[math.pi / 2, math.pi / 2, 0, 0, 0], [math.pi / 2] * 5]))
    assert polyline_interpolate(line, valid, s).shape == (2, 5, 2)


def test_polyline_rejects_bad_input():
    line, valid = _three_segments()
    with pytest.raises(ValueError, match="at least 2"):
        polyline_length(line, torch.tensor([[True] * 4, [True, False, False, False]]))
    with pytest.raises(ValueError, match="prefix"):
        polyline_length(line, torch.tensor([[True] * 4, [True, False, True, False]]))
    with pytest.raises(ValueError, match="points"):
        polyline_project(t([[[math.nan, 0.0]], [[0.0, 0.0]]]), line, valid)


def test_polylines_match_shapely_bit_for_bit():
    shapely = pytest.importorskip("shapely")
    rng = np.random.default_rng(1)
    batch, num_vertices, num_points = 12, 8, 200
    line = np.cumsum(rng.uniform(-3, 3, (batch, num_vertices, 2)), 1)
    valid = np.zeros((batch, num_vertices), bool)
    for b in range(batch):
        valid[b, :rng.integers(2, num_vertices + 1)] = True
    line[3, 2] = line[3, 1]                                   # a zero-length segment
    points = rng.uniform(-10, 10, (batch, num_points, 2))
    points[:, :num_vertices] = line                           # exactly on vertices
    points[:, num_vertices:2 * num_vertices - 1] = (line[:, 1:] + line[:, :-1]) / 2
    s = rng.uniform(-1, 25, (batch, 30))
    args = (t(line), torch.tensor(valid))
    project = polyline_project(t(points), *args).numpy()
    distance = polyline_distance(t(points), *args).numpy()
    length = polyline_length(*args).numpy()
    interpolated = polyline_interpolate(*args, t(s)).numpy()
    for b in range(batch):
        shape = shapely.LineString(line[b, valid[b]])
        geoms = shapely.points(points[b])
        np.testing.assert_array_equal(project[b], shapely.line_locate_point(shape, geoms))
        np.testing.assert_array_equal(distance[b], shapely.distance(shape, geoms))
        assert length[b] == shape.length
        expected = shapely.get_coordinates(shapely.line_interpolate_point(shape, np.clip(s[b], 0, shape.length)))
        np.testing.assert_array_equal(interpolated[b], expected)


# --------------------------------------------------------------------------- ring validation


@pytest.mark.parametrize("ring, simple", [
    ([[0, 0], [1, 0], [1, 1], [0, 1]], True),                       # square
    ([[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]], True),               # explicitly closed
    ([[0, 0], [1, 0], [1, 0], [1, 1], [0, 1]], True),               # repeated consecutive vertex
    ([[0, 0], [1, 1], [1, 0], [0, 1]], False),                      # bow-tie
    ([[0, 0], [1, 0], [2, 0]], False),                              # collinear, zero area
    ([[0, 0], [2, 0], [1, 0], [1, 1]], False),                      # spike folding back on an edge
    ([[0, 0], [4, 0], [4, 4], [2, 0.0], [0, 4]], False),            # vertex touching another edge
    ([[0, 0], [2, 2], [4, 0], [4, 4], [2, 2], [0, 4]], False),      # ring touching itself at a vertex
    ([[0, 0], [1, 0], [0, 0]], False),                              # two distinct vertices
    ([[0, 0], [4, 0], [4, 1], [1, 1], [1, 4], [0, 4]], True),       # L-shape
])
def test_polygon_is_simple_cases(ring, simple):
    assert polygon_is_simple(np.array(ring, dtype=float)) is simple


def _rotated(ring, angle: float, shift) -> np.ndarray:
    cos, sin = math.cos(angle), math.sin(angle)
    return np.asarray(ring, dtype=float) @ np.array([[cos, sin], [-sin, cos]]) + np.asarray(shift, dtype=float)


def _shapely_valid(shapely, ring: np.ndarray) -> bool:
    clean = ring[np.any(ring != np.roll(ring, 1, axis=0), axis=1)]
    return len(clean) >= 3 and bool(shapely.Polygon(clean).is_valid)


def test_polygon_is_simple_rotated_collinear_edges():
    # edges 39 and 75 of I1 in generate_map("intersection", default_rng(4)), joined by a third edge
    # along the same rotated straight line: the float determinants call the two 40 m apart edges
    # crossing; exact orientation (and shapely) say the ring is simple
    ring = np.array([[-47.42820008747778, -65.01159644009917], [-47.0196405731971, -65.29983093368163],
                     [-10.779160478853822, -90.86711320728043], [-10.370600964573146, -91.15534770086289],
                     [0.0, -60.0]])
    assert polygon_is_simple(ring)
    assert not polygon_is_simple(np.insert(ring, 2, [-30.0, -40.0], axis=0))   # now edge 1 -> 2 crosses
    # a 200 m x 3.5 m lane with a vertex every metre along both sides, rotated off the axes and moved
    # to UTM-sized coordinates: all consecutive edges are (nearly) collinear, and still simple
    along = np.arange(201.0)
    lane = np.concatenate([np.stack([along, np.zeros_like(along)], 1),
                           np.stack([along[::-1], np.full_like(along, 3.5)], 1)])
    for angle in (0.1, 0.7, 1.0, 2.5, 4.0):
        assert polygon_is_simple(_rotated(lane, angle, [664_000.0, 3_997_000.0])), angle
    # the same lane with its far top corner pulled to (150, -1): the edge from there to (199, 3.5)
    # crosses the bottom side near x = 150.9
    folded = lane.copy()
    folded[201] = [150.0, -1.0]
    assert not polygon_is_simple(_rotated(folded, 0.7, [664_000.0, 3_997_000.0]))


def test_polygon_is_simple_matches_shapely_on_rotated_lanes():
    """Lane-like rectangles with irregularly spaced collinear side vertices, rotated and shifted."""
    shapely = pytest.importorskip("shapely")
    rng = np.random.default_rng(0)
    valid = 0
    for _ in range(300):
        length, width = rng.uniform(20, 200), rng.uniform(2.5, 4.0)
        right = np.concatenate([[0.0], np.sort(rng.uniform(0, length, rng.integers(5, 60))), [length]])
        left = np.concatenate([[0.0], np.sort(rng.uniform(0, length, rng.integers(5, 60))), [length]])[::-1]
        ring = np.concatenate([np.stack([right, np.zeros_like(right)], 1),
                               np.stack([left, np.full_like(left, width)], 1)])
        ring = _rotated(ring, rng.uniform(0, 2 * math.pi), rng.uniform(-500, 500, 2))
        expected = _shapely_valid(shapely, ring)
        valid += expected
        assert polygon_is_simple(ring) == expected, ring.tolist()
    assert valid >= 290                 # rounding the rotation rarely breaks a lane


def test_polygon_is_simple_spike_and_touch_on_straight_edges():
    # edge (0,0)-(4,0) with an extra collinear vertex at (2,0): fine; a spike back to (3,0) is not
    base = [[0, 0], [2, 0], [4, 0], [4, 3], [0, 3]]
    assert polygon_is_simple(_rotated(base, 0.3, [10, 20]))
    assert not polygon_is_simple(np.array([[0, 0], [2, 0], [4, 0], [3, 0], [4, 3], [0, 3]], dtype=float))
    # a vertex of the top side dipping exactly onto the collinear bottom side at (2, 0)
    assert not polygon_is_simple(np.array([[0, 0], [4, 0], [4, 3], [2, 0], [0, 3]], dtype=float))


def test_polygon_is_simple_large_rings():
    angle = np.linspace(0.0, 2 * math.pi, 2000, endpoint=False)
    circle = np.stack([50 * np.cos(angle), 50 * np.sin(angle)], 1) + [664_000.0, 3_997_000.0]
    assert polygon_is_simple(circle)
    # 2000-vertex star (every edge's box overlaps many others in x or y)
    radius = np.where(np.arange(2000) % 2 == 0, 50.0, 10.0)
    star = np.stack([radius * np.cos(angle), radius * np.sin(angle)], 1)
    assert polygon_is_simple(star)
    # last (inner) vertex moved to (30, 5): edge 1998 -> 1999, from (50.0, -0.3) up to it, crosses
    # edge 0 -> 1, from (50, 0) to (10, 0.03), near x = 48.8
    star[-1] = [30.0, 5.0]
    assert not polygon_is_simple(star)


def test_candidate_edge_pairs_are_all_overlapping_box_pairs():
    # the sweep (13 blocks of pairs here) must list exactly the non-adjacent edge pairs whose closed
    # bounding boxes overlap, as brute force over all pairs does
    from envs.sim.geometry import _candidate_edge_pairs
    angle = np.linspace(0.0, 2 * math.pi, 2000, endpoint=False)
    radius = np.where(np.arange(2000) % 2 == 0, 50.0, 10.0)
    start = np.stack([radius * np.cos(angle), radius * np.sin(angle)], 1)
    end = np.roll(start, -1, axis=0)
    lo, hi = np.minimum(start, end), np.maximum(start, end)
    i, j = np.triu_indices(2000, k=2)
    keep = (j - i != 1999) & (lo[i] <= hi[j]).all(1) & (lo[j] <= hi[i]).all(1)
    blocks = list(_candidate_edge_pairs(start, end))
    found = np.concatenate([np.minimum(a, b) * 2000 + np.maximum(a, b) for a, b in blocks])   # pair codes
    assert len(blocks) > 1
    np.testing.assert_array_equal(np.sort(found), i[keep] * 2000 + j[keep])   # triu order is sorted


def test_polygon_is_simple_matches_shapely_validity():
    shapely = pytest.importorskip("shapely")
    rng = np.random.default_rng(2)
    for _ in range(300):
        ring = rng.integers(0, 4, (rng.integers(3, 7), 2)).astype(float)   # small grid: many touching cases
        assert polygon_is_simple(ring) == _shapely_valid(shapely, ring), ring.tolist()
        # the same ring rotated and shifted: collinear and touching cases become inexact in floats
        moved = _rotated(ring, rng.uniform(0, 2 * math.pi), rng.uniform(-1000, 1000, 2))
        assert polygon_is_simple(moved) == _shapely_valid(shapely, moved), moved.tolist()


def test_polygon_is_simple_matches_shapely_on_random_shapes():
    """Bow-ties, densified (collinear) rotated star polygons and spikes, against shapely."""
    shapely = pytest.importorskip("shapely")
    rng = np.random.default_rng(5)
    counts = {True: 0, False: 0}
    for _ in range(400):
        k = int(rng.integers(3, 7))
        angle = np.sort(rng.uniform(0, 2 * math.pi, k))
        base = rng.uniform(1, 10, k)[:, None] * np.stack([np.cos(angle), np.sin(angle)], 1)
        steps = np.linspace(0, 1, int(rng.integers(1, 6)), endpoint=False)[:, None, None]
        dense = (base * (1 - steps) + np.roll(base, -1, 0) * steps).transpose(1, 0, 2).reshape(-1, 2)
        dense = _rotated(dense, rng.uniform(0, 2 * math.pi), rng.uniform(-1000, 1000, 2))
        i, j = rng.integers(1, len(dense), 2)
        spike = np.insert(dense, i + 1, dense[i] + (dense[i - 1] - dense[i]) * rng.uniform(0.1, 0.9), 0)
        bow_tie = dense.copy()
        bow_tie[[i, j]] = bow_tie[[j, i]]
        for ring in (dense, spike, bow_tie):
            expected = _shapely_valid(shapely, ring)
            counts[expected] += 1
            assert polygon_is_simple(ring) == expected, ring.tolist()
    assert counts[True] > 300 and counts[False] > 300       # both answers well represented


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["straight", "curved", "intersection", "t_junction", "merge", "carpark", "random"])
def test_polygon_is_simple_matches_shapely_on_generated_maps(kind):
    """Every polygon of 200 seeded maps of each kind (about 72k rings), against shapely."""
    shapely = pytest.importorskip("shapely")
    from envs.sim.mapgen import generate_map
    rings = [obj.polygon for seed in range(200)
             for obj in generate_map(kind, np.random.default_rng(seed)).map.all_polygon_objects()]
    ours = [polygon_is_simple(ring) for ring in rings]
    assert ours == [shapely.Polygon(ring).is_valid for ring in rings]


def test_polygon_is_simple_rejects_bad_input():
    with pytest.raises(ValueError, match="ring.shape"):
        polygon_is_simple(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="finite"):
        polygon_is_simple(np.array([[0, 0], [1, 0], [np.nan, 1]]))


def test_polygon_signed_area():
    square = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], dtype=float)
    assert polygon_signed_area(square) == 1.0
    assert polygon_signed_area(square[::-1]) == -1.0
    assert polygon_signed_area(np.vstack([square, square[:1]])) == 1.0
    assert polygon_signed_area(square + [664_000.0, 3_997_000.0]) == 1.0    # UTM-sized offsets
    assert polygon_signed_area(np.array(L_SHAPE, dtype=float)) == 7.0


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    rng = np.random.default_rng(5)
    a = box_corners(t(rng.uniform(-5, 5, (300, 2))), t(rng.uniform(-4, 4, 300)), 4.0, 2.0)
    b = box_corners(t(rng.uniform(-5, 5, (300, 2))), t(rng.uniform(-4, 4, 300)), 3.0, 1.0)
    assert torch.equal(boxes_intersect(a.cuda(), b.cuda()).cpu(), boxes_intersect(a, b))
    assert torch.equal(segment_intersects_box(a[:, 0].cuda(), a[:, 3].cuda(), b.cuda()).cpu(),
                       segment_intersects_box(a[:, 0], a[:, 3], b))
    line, valid = _three_segments()
    points = t(rng.uniform(-5, 12, (2, 50, 2)))
    torch.testing.assert_close(polyline_project(points.cuda(), line.cuda(), valid.cuda()).cpu(),
                               polyline_project(points, line, valid), rtol=0, atol=1e-12)
