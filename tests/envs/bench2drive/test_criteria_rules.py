"""envs.bench2drive.criteria_rules: route windows, box contact (against the exact shapely-semantics test of
envs.sim.geometry), segment crossing, trigger boxes and the row helpers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from envs.bench2drive.criteria_rules import (PASSED_REACH, arange_constant, as_complex, boxes_touch, crosses_lines,
                                             first_true, pick, points_in_boxes, route_step_table, window_points)
from envs.sim.geometry import box_corners, boxes_intersect


def t(values, dtype=torch.float64):
    return torch.tensor(values, dtype=dtype)


def test_route_step_table_walks_the_passed_points_in_order():
    # right angle: (0,0) -> (1,0) -> (1,1) -> (1,2); masks are bits of points i+1, i+2, i+3
    xy = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [1.0, 2.0]])
    table = route_step_table(xy, last=3)
    assert table[0, 0b000] == 0.0
    assert table[0, 0b001] == pytest.approx(1.0)                    # 0 -> 1
    assert table[0, 0b010] == pytest.approx(math.sqrt(2.0))         # 0 -> 2 straight, 1 skipped
    assert table[0, 0b011] == pytest.approx(2.0)                    # 0 -> 1 -> 2
    assert table[0, 0b101] == pytest.approx(3.0)                    # 0 -> 1, then 1 -> 3 (2 m)
    assert table[0, 0b110] == pytest.approx(math.sqrt(2.0) + 1.0)   # 0 -> 2 -> 3
    assert table[0, 0b111] == pytest.approx(3.0)
    assert table[2, 0b111] == pytest.approx(1.0)                    # 2 -> 3, then clamped at the end
    assert table[3].tolist() == [0.0] * 8
    assert PASSED_REACH[0b101] == 3 and PASSED_REACH[0b011] == 2 and PASSED_REACH[0] == 0


def test_window_points_passed_rule():
    route = torch.tensor([[0j, 1 + 0j, 2 + 0j]])
    forward = torch.tensor([[1 + 0j, 1 + 0j, 1j]])              # the last point faces +y
    rel, passed, arc = window_points(route, forward, t([[0.0, 1.0, 2.0]]), torch.tensor([[0, 1, 2]]),
                                     torch.tensor([1 + 0.5j]))
    # passed iff dot(ego - point, point forward) > 0: point 0 yes, point 1 no (dot = 0), point 2 yes
    assert passed.tolist() == [[True, False, True]]
    assert rel.tolist() == [[1 + 0.5j, 0.5j, -1 + 0.5j]] and arc.tolist() == [[0.0, 1.0, 2.0]]


def test_boxes_touch_agrees_with_the_exact_polygon_test():
    gen = torch.Generator().manual_seed(3)
    B, A = 32, 40
    ego = torch.rand(B, 3, generator=gen, dtype=torch.float64) * t([10.0, 10.0, 2 * math.pi])
    ego_size = torch.rand(B, 2, generator=gen, dtype=torch.float64) * 3 + 1
    pose = torch.rand(B, A, 3, generator=gen, dtype=torch.float64) * t([10.0, 10.0, 2 * math.pi])
    size = torch.rand(B, A, 2, generator=gen, dtype=torch.float64) * 3 + 0.5
    ours = boxes_touch(ego, ego_size, pose, size)
    exact = boxes_intersect(box_corners(ego[:, None, :2], ego[:, None, 2], ego_size[:, None, 0], ego_size[:, None, 1]),
                            box_corners(pose[..., :2], pose[..., 2], size[..., 0], size[..., 1]))
    assert 0.1 < ours.double().mean() < 0.9
    assert torch.equal(ours, exact)


def test_boxes_touch_hand_cases():
    ego, ego_size = t([[0.0, 0.0, 0.0]]), t([[4.0, 2.0]])
    pose = t([[[4.0, 0.0, 0.0], [4.01, 0.0, 0.0], [0.0, 1.9, math.pi / 2], [3.4, 1.4, math.pi / 4]]])
    size = t([[[4.0, 2.0], [4.0, 2.0], [2.0, 2.0], [1.0, 1.0]]])
    # bumper to bumper touches; 1 cm apart does not; a box reaching 0.1 m into the ego's side overlaps;
    # a diamond whose corner (3.4 - 0.71, 1.4 - 0.71) stays outside the ego's corner (2, 1) does not
    assert boxes_touch(ego, ego_size, pose, size).tolist() == [[True, False, True, False]]


def test_crosses_lines():
    # one line from (0, 0) to (2, 0): frame = conj of its unit direction (1, 0)
    origin, frame, length = torch.tensor([[0j]]), torch.tensor([[1 + 0j]]), t([[2.0]])
    cases = [((1.0, -1.0), (1.0, 1.0), True),      # proper crossing
             ((2.0, 0.0), (3.0, 1.0), True),       # touching at the line's end point
             ((0.0, 1.0), (2.0, 1.0), False),      # parallel
             ((3.0, -1.0), (3.0, 1.0), False),     # crosses the extended line only
             ((1.0, 0.5), (1.0, 2.0), False),      # on one side
             ((1.0, 0.0), (1.0, 1.0), True)]       # starts on the line
    for q0, q1, expected in cases:
        segment = torch.tensor([[complex(*q0), complex(*q1)]])
        assert crosses_lines(segment, origin, frame, length).tolist() == [[expected]], (q0, q1)
    # a rotated line: from (1, 1) along 45 degrees, 2 m long; the segment (1, 2) -> (2, 1) crosses its middle
    diagonal = torch.tensor([[complex(math.cos(math.pi / 4), -math.sin(math.pi / 4))]])
    assert crosses_lines(torch.tensor([[1 + 2j, 2 + 1j]]), torch.tensor([[1 + 1j]]), diagonal, t([[2.0]])).item()
    assert not crosses_lines(torch.tensor([[3 + 4j, 4 + 3j]]), torch.tensor([[1 + 1j]]), diagonal, t([[2.0]])).item()


def test_points_in_boxes_strict_interior():
    # a box along +y (frame = conj(i) = -i): |dy| < 2 and |dx| < 1 around (1, 0)
    centre, frame, half = torch.tensor([[1 + 0j], [1 + 0j]]), torch.tensor([[-1j], [-1j]]), t([[[2.0, 1.0]]] * 2)
    # (0, 0) is on the box edge, (2.5, 0) outside; (0.5, 1.9) inside
    points = torch.tensor([[0 + 0j, 2 + 2j], [2.5 + 0j, 5 + 5j]])
    assert points_in_boxes(points, centre, frame, half).tolist() == [[False], [False]]
    points = torch.tensor([[0.5 + 1.9j, 9 + 9j], [2.5 + 0j, 5 + 5j]])
    assert points_in_boxes(points, centre, frame, half).tolist() == [[True], [False]]


def test_as_complex_views_or_copies():
    xy = t([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert as_complex(xy[:, :2]).tolist() == [1 + 2j, 4 + 5j]             # odd row stride: a copy
    assert as_complex(xy[:, 1:]).tolist() == [2 + 3j, 5 + 6j]             # odd offset: a copy
    pairs = t([[1.0, 2.0], [3.0, 4.0]])
    assert as_complex(pairs).data_ptr() == pairs.data_ptr()               # a free view
    assert arange_constant(3, "cpu").tolist() == [0, 1, 2] and arange_constant(3, "cpu") is arange_constant(3, "cpu")


def test_first_true_and_pick():
    mask = torch.tensor([[False, True, True], [False, False, False]])
    hit, index = first_true(mask)
    assert hit.tolist() == [True, False] and index.tolist() == [1, -1]
    values = t([[10.0, 11.0, 12.0], [20.0, 21.0, 22.0]])
    assert pick(values, torch.tensor([2, -1])).tolist() == [12.0, 20.0]      # -1 is clamped to slot 0
    empty_hit, empty_index = first_true(torch.zeros((2, 0), dtype=torch.bool))
    assert empty_index.tolist() == [-1, -1] and not empty_hit.any()
    assert pick(torch.zeros((2, 0, 3)), torch.tensor([0, 0])).shape == (2, 3)
