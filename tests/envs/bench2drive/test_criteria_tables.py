"""envs.bench2drive.criteria_tables: the static criteria tables of a batch of routes, hand-checked."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from envs.bench2drive.criteria_tables import STOP_BOX_SCALE, criteria_context
from envs.bench2drive.route_scenario import LightProgram, LightSpec, StopSignSpec
from tests.envs.bench2drive.test_criteria import LANE_Y, scenario


def test_route_tables_are_padded_with_the_last_point():
    ctx = criteria_context([scenario(length=4), scenario(length=2)])
    assert ctx.route_xy.shape == (2, 5, 2) and ctx.route_last.tolist() == [4, 2]
    assert ctx.route_xy[1, :, 0].tolist() == [0.0, 1.0, 2.0, 2.0, 2.0]          # repeats point 2
    assert ctx.route_arc[1].tolist() == [0.0, 1.0, 2.0, 2.0, 2.0]
    assert ctx.route_forward[0, 0].tolist() == [1.0, 0.0]
    assert ctx.route_length.tolist() == [4.0, 2.0] and ctx.route_end.tolist() == [[4.0, LANE_Y], [2.0, LANE_Y]]
    # OutsideRouteLanesTest steps: from point 1 with points 2 and 3 passed (mask 0b011): 2 m
    assert ctx.route_steps[0, 1, 0b011].item() == 2.0 and ctx.route_steps[1, 1, 0b111].item() == 1.0
    assert ctx.timeout_rate.tolist() == [1.0, 1.0]                                  # 1 / (0.1 x 10 m/s)
    # the ego starts on lane L1 (index 0), not in a junction, heading east
    assert ctx.start_lane[0].tolist() == [0.0, 0.0, 0.0]


def test_light_and_stop_sign_tables():
    light = LightSpec(stop_line=np.array([[10.0, 0.0], [10.0, 4.0]]), heading=0.0,
                      program=LightProgram(cycle=((2, 1.0),)))
    stop = StopSignSpec(center=np.array([5.0, 1.0]), heading=math.pi / 2, length=4.0, width=2.0)
    ctx = criteria_context([scenario(lights=(light, light), stop_signs=(stop,), emergency_actor=-1), scenario()])
    assert ctx.has_lights and ctx.has_stops and not ctx.has_emergency and not ctx.has_carparks
    assert ctx.light_valid.tolist() == [[True, True], [False, False]]
    assert ctx.light_origin[0, 0].tolist() == [10.0, 0.0] and ctx.light_length[0, 0].item() == 4.0
    assert ctx.light_frame[0, 0].tolist() == pytest.approx([0.0, -1.0])             # conj of the unit along (0, 1)
    assert ctx.light_center[0, 1].tolist() == [10.0, 2.0] and ctx.light_forward[0, 0].tolist() == [1.0, 0.0]
    assert ctx.stop_valid.tolist() == [[True], [False]]
    assert ctx.stop_center[0, 0].tolist() == [5.0, 1.0]
    assert ctx.stop_frame[0, 0].tolist() == pytest.approx([0.0, -1.0])
    assert ctx.stop_half[0, 0].tolist() == pytest.approx([2.0 * STOP_BOX_SCALE, 1.0 * STOP_BOX_SCALE])
    assert ctx.emergency_actor.tolist() == [-1, -1] and ctx.wrong_direction_check.tolist() == [True, True]


def test_a_route_gets_the_same_tables_in_any_batch():
    route = scenario()
    first = criteria_context([route])
    second = criteria_context([route, route])
    assert torch.equal(second.lanes.candidates[1], first.lanes.candidates[0])
    assert second.lanes.window == first.lanes.window
    with pytest.raises(ValueError, match="scenarios"):
        criteria_context([])
