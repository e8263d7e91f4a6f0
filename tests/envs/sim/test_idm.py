"""IDM acceleration: free road, jam gap floor, NAVSIM's signed free-road term, parameter checks."""

from __future__ import annotations

import math

import pytest
import torch

from envs.sim.idm import PDM_CLOSED_IDM, IDMParams, idm_accel


def t(*values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def test_free_road_accelerates_from_rest_and_holds_the_target_speed():
    p = IDMParams(accel_max=1.0, exponent=4.0)
    accel = idm_accel(t(0.0, 10.0), 10.0, t(math.inf, math.inf), t(0.0, 0.0), p)
    torch.testing.assert_close(accel, t(1.0, 0.0))


def test_pdm_closed_first_step_gap_is_floored_at_the_jam_distance():
    # NAVSIM reads a lead at progress 0 on PDM-Closed's first step: gap < 0 -> floored to 1 m.
    # s* = 1 + 10 * 1.5 + 10 * 10 / (2 * sqrt(1.5 * 3)) ; a = 1.5 (1 - (10/15)^10 - s*^2)
    s_star = 1.0 + 15.0 + 100.0 / (2 * math.sqrt(4.5))
    expected = 1.5 * (1 - (10 / 15) ** 10 - s_star**2)
    accel = idm_accel(t(10.0), t(15.0), t(-12.0), t(0.0), PDM_CLOSED_IDM)
    torch.testing.assert_close(accel, t(expected))


def test_free_road_term_keeps_the_sign_of_a_negative_speed():
    # Euler steps can leave a small negative speed; nuPlan/NAVSIM raise the signed ratio: (-0.1)^10.
    accel = idm_accel(t(-0.5), 5.0, t(math.inf), t(0.0), PDM_CLOSED_IDM)
    torch.testing.assert_close(accel, t(1.5 * (1 - 0.1**10)))


def test_following_at_the_desired_gap_neither_brakes_nor_speeds_up_much():
    p = IDMParams(target_speed=30.0, min_gap=2.0, headway=1.0, accel_max=1.0, decel_max=2.0, exponent=4.0)
    # same speed as the leader, gap = s* = 2 + 10 * 1 -> interaction 1 -> a = -(10/30)^4
    accel = idm_accel(t(10.0), 30.0, t(12.0), t(10.0), p)
    torch.testing.assert_close(accel, t(-(1 / 3) ** 4))


@pytest.mark.parametrize(
    "field, value", [("exponent", 4.5), ("accel_max", 0.0), ("min_gap", -1.0), ("headway", math.nan)]
)
def test_bad_parameters_are_rejected(field, value):
    with pytest.raises(ValueError, match=field):
        IDMParams(**{field: value})
