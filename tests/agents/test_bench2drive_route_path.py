"""The rule agents' route frame: the polyline from target points, Frenet coordinates, sideways shifts."""

import math

import pytest
import torch

from agents.bench2drive_route_path import (
    box_extents, frenet, offset_at, point_at, pure_pursuit_steer, route_path, shift_path,
)


def test_route_path_runs_from_behind_the_ego_and_goes_straight_past_the_route_end():
    targets = torch.tensor([[[5.0 * i, 1.0] for i in range(1, 11)]], dtype=torch.float64)
    path, offset = route_path(targets)
    assert offset.item() == pytest.approx(-1.0)                       # the ego is 1 m right of the route
    assert path.xy[0, 0].tolist() == pytest.approx([-30.0, 1.0]) and path.arc[0, 0].item() == pytest.approx(-30.0)
    # behind the ego the path runs back along the ego's heading, not along the first chord (bends)
    tilted = torch.tensor([[[5.0 * i * math.cos(0.3), 5.0 * i * math.sin(0.3)] for i in range(1, 5)]], dtype=torch.float64)
    assert route_path(tilted)[0].xy[0, :2].flatten().tolist() == pytest.approx([-30.0, 0.0, -25.0, 0.0])
    assert path.arc[0, -1].item() == pytest.approx(50.0) and path.heading.abs().max().item() == 0.0
    ending = targets.clone()
    ending[0, 6:] = ending[0, 5]                                     # the route ends at x = 30
    path, _ = route_path(ending)
    assert path.xy[0, -1].tolist() == pytest.approx([50.0, 1.0]) and path.heading.abs().max().item() == 0.0
    bend = torch.tensor([[[5.0, 0.0], [10.0, 0.0], [10.0, 5.0], [10.0, 10.0]]], dtype=torch.float64)
    path, _ = route_path(bend)
    assert point_at(path, torch.tensor([12.0]))[0].tolist() == pytest.approx([10.0, 2.0])


def test_frenet_shift_and_extents_on_hand_worked_numbers():
    bend = torch.tensor([[[5.0, 0.0], [10.0, 0.0], [10.0, 5.0], [10.0, 10.0]]], dtype=torch.float64)
    path, _ = route_path(bend)
    along, lateral, heading = frenet(torch.tensor([[[7.0, 2.0], [-4.0, -1.5], [12.0, 8.0]]], dtype=torch.float64), path)
    assert along[0].tolist() == pytest.approx([7.0, -4.0, 18.0]) and lateral[0].tolist() == pytest.approx([2.0, -1.5, -2.0])
    assert heading[0].tolist() == pytest.approx([0.0, 0.0, math.pi / 2])
    # outside a bend an inner segment is not extended: (16, -3) is sqrt(6^2 + 3^2) from the corner (10, 0)
    along, lateral, _ = frenet(torch.tensor([[[16.0, -3.0]]], dtype=torch.float64), path)
    assert (along.item(), lateral.item()) == pytest.approx((10.0, -math.hypot(6.0, 3.0)))
    shifted = shift_path(path, torch.tensor([0.5]), torch.tensor([3.5]), torch.tensor([8.0]))
    arcs = torch.tensor([[-5.0, 0.0, 4.0, 8.0, 20.0]])
    assert offset_at(shifted, arcs)[0].tolist() == pytest.approx([0.5, 0.5, 2.0, 3.5, 3.5])   # smoothstep midpoint
    assert frenet(torch.tensor([[[4.0, 2.5]]], dtype=torch.float64), shifted)[1].item() == pytest.approx(2.5 - 2.0)
    along_half, lat_half = box_extents(torch.tensor([[4.0, 2.0]] * 2), torch.tensor([0.0, math.pi / 2]))
    assert along_half.tolist() == pytest.approx([2.0, 1.0]) and lat_half.tolist() == pytest.approx([1.0, 2.0])


def test_pure_pursuit_steers_the_rear_axle_onto_a_circle_through_the_aim_point():
    # aim 4.575 m ahead of the rear axle and 4.575 m left: a quarter circle of radius 4.575 m, wheel = atan(L / R)
    wheelbase = 2.85
    aim = torch.tensor([[4.575 - wheelbase / 2, 4.575], [10.0, 0.0], [4.575 - wheelbase / 2, -4.575]], dtype=torch.float64)
    steer = pure_pursuit_steer(aim, wheelbase, math.radians(70.0))
    wheel = math.atan(wheelbase / 4.575)
    assert steer.tolist() == pytest.approx([-wheel / math.radians(70.0), 0.0, wheel / math.radians(70.0)])
