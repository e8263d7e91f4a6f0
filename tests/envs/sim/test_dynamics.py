"""Tests for envs/sim/dynamics.py: EgoStates layout, initial state, NAVSIM bicycle step."""

import math

import pytest
import torch

from envs.sim.dynamics import (
    EgoStates,
    bicycle_step,
    initial_ego_state,
    normalize_angle,
    principal_angle,
)
from envs.sim.vehicle import PACIFICA

F64 = torch.float64


def state_from_row(row):
    """EgoStates (1,) with T = 1 from an 11-column StateIndex row."""
    return EgoStates.from_array(torch.tensor([row], dtype=F64)[:, None, :])


def test_bicycle_step_hand_computed():
    # x, y, heading, vx, vy, ax, ay, steer, steer rate, yaw rate, yaw accel
    state = state_from_row([1.0, 2.0, 0.3, 5.0, 0.4, 1.0, 0.7, 0.1, 0.0, 0.2, 0.0])
    accel_cmd, steering_rate_cmd = torch.tensor([[2.0]], dtype=F64), torch.tensor([[0.5]], dtype=F64)
    out = bicycle_step(state, accel_cmd, steering_rate_cmd, PACIFICA, 0.1)
    # acceleration lag: 1 + 0.1 / (0.1 + 0.2) * (2 - 1) = 4/3
    assert out.acceleration[0, 0, 0].item() == pytest.approx(4 / 3, abs=1e-14)
    # steering lag: ideal 0.1 + 0.1 * 0.5 = 0.15; 0.1 + 0.1 / 0.15 * 0.05 = 0.1 + 1/30
    assert out.steering_angle[0, 0].item() == pytest.approx(0.1 + 1 / 30, abs=1e-14)
    assert out.steering_rate[0, 0].item() == pytest.approx(1 / 3, abs=1e-12)
    # pose with the OLD speed 5 and OLD steering 0.1
    assert out.pose[0, 0, 0].item() == pytest.approx(1.0 + 0.5 * math.cos(0.3), abs=1e-14)
    assert out.pose[0, 0, 1].item() == pytest.approx(2.0 + 0.5 * math.sin(0.3), abs=1e-14)
    assert out.heading[0, 0].item() == pytest.approx(0.3 + 0.5 * math.tan(0.1) / 3.089, abs=1e-14)
    # speed with the lagged acceleration
    assert out.velocity[0, 0, 0].item() == pytest.approx(5.0 + 0.1 * 4 / 3, abs=1e-14)
    # kinematic model: no lateral velocity, stored lateral acceleration 0 although the input had 0.7
    assert out.velocity[0, 0, 1].item() == 0.0
    assert out.acceleration[0, 0, 1].item() == 0.0
    # yaw rate from the new speed and steering, yaw acceleration by finite difference
    yaw_rate = (5.0 + 0.4 / 3) * math.tan(0.1 + 1 / 30) / 3.089
    assert out.yaw_rate[0, 0].item() == pytest.approx(yaw_rate, abs=1e-13)
    assert out.yaw_accel[0, 0].item() == pytest.approx((yaw_rate - 0.2) / 0.1, abs=1e-11)


def test_bicycle_step_clips_steering_at_max_but_keeps_lagged_rate():
    state = state_from_row([0.0, 0.0, 0.0, 3.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0])
    out = bicycle_step(state, torch.zeros(1, 1, dtype=F64), torch.tensor([[100.0]], dtype=F64), PACIFICA, 0.1)
    # lagged angle 1 + (0.1 / 0.15) * 10 = 7.67 rad -> clipped to pi/3
    assert out.steering_angle.item() == math.pi / 3
    assert out.steering_rate.item() == pytest.approx(200 / 3, abs=1e-10)  # stored unclipped
    assert out.yaw_rate.item() == pytest.approx(3.0 * math.tan(math.pi / 3) / 3.089, abs=1e-12)
    # pose still uses the OLD steering angle of 1 rad
    assert out.heading.item() == pytest.approx(0.3 * math.tan(1.0) / 3.089, abs=1e-14)
    left = torch.tensor([[-100.0]], dtype=F64)
    negative = bicycle_step(state, torch.zeros(1, 1, dtype=F64), left, PACIFICA, 0.1)
    assert negative.steering_angle.item() == -math.pi / 3


def test_bicycle_step_wraps_heading_to_half_open_interval():
    # heading 3.1 + 10 * tan(0.3) / 3.089 * 0.1 = 3.2003 -> 3.2003 - 2 pi
    state = state_from_row([0.0, 0.0, 3.1, 10.0, 0.0, 0.0, 0.0, 0.3, 0.0, 0.0, 0.0])
    out = bicycle_step(state, torch.zeros(1, 1, dtype=F64), torch.zeros(1, 1, dtype=F64), PACIFICA, 0.1)
    expected = 3.1 + 10 * math.tan(0.3) / 3.089 * 0.1 - 2 * math.pi
    assert out.heading.item() == pytest.approx(expected, abs=1e-13)
    assert -math.pi <= out.heading.item() < 0


def test_bicycle_step_is_elementwise_over_any_leading_dims():
    rows = torch.tensor(
        [[0.0, 0.0, 0.1 * i, 2.0 + i, 0.0, 0.5, 0.0, 0.05 * i, 0.0, 0.0, 0.0] for i in range(6)], dtype=F64
    )
    grid = EgoStates.from_array(rows.reshape(2, 3, 11)[..., None, :])  # (2, 3, T=1)
    accel = torch.linspace(-1, 1, 6, dtype=F64).reshape(2, 3, 1)
    rate = torch.linspace(0.2, -0.2, 6, dtype=F64).reshape(2, 3, 1)
    together = bicycle_step(grid, accel, rate, PACIFICA, 0.1).to_array()
    for i in range(6):
        single = EgoStates.from_array(rows[i][None, None])
        commands = accel.reshape(6, 1)[i : i + 1], rate.reshape(6, 1)[i : i + 1]
        alone = bicycle_step(single, *commands, PACIFICA, 0.1).to_array()
        assert torch.equal(together.reshape(6, 11)[i], alone[0, 0])


def test_initial_ego_state_zeroes_steering_and_yaw():
    state = initial_ego_state(
        torch.tensor([10.0, -4.0, 0.5], dtype=F64),
        torch.tensor([7.0, 0.2], dtype=F64),
        torch.tensor([0.3, -0.1], dtype=F64),
    )
    assert state.num_steps == 1 and state.batch_shape == ()
    assert state.to_array()[0].tolist() == [10.0, -4.0, 0.5, 7.0, 0.2, 0.3, -0.1, 0.0, 0.0, 0.0, 0.0]
    assert state.speed.item() == pytest.approx(math.hypot(7.0, 0.2))


def test_initial_ego_state_broadcasts_batch():
    velocity = torch.tensor([1.0, 0.0], dtype=F64)
    state = initial_ego_state(torch.zeros(4, 3, dtype=F64), velocity, torch.zeros(4, 2))
    assert state.pose.shape == (4, 1, 3) and state.velocity.shape == (4, 1, 2)
    assert state.steering_angle.shape == (4, 1) and state.velocity[:, 0, 0].tolist() == [1.0] * 4


@pytest.mark.parametrize(
    "pose, velocity, message",
    [
        (torch.zeros(2), torch.zeros(2), "pose.shape"),
        (torch.zeros(3), torch.zeros(3), "velocity.shape"),
        (torch.tensor([0.0, float("nan"), 0.0]), torch.zeros(2), "pose[(1,)]=nan"),
        ([0.0, 0.0, 0.0], torch.zeros(2), "pose="),
    ],
)
def test_initial_ego_state_rejects_bad_input(pose, velocity, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        initial_ego_state(pose, velocity, torch.zeros(2))


def test_array_layout_round_trip_and_indices():
    array = torch.arange(2 * 3 * 11, dtype=F64).reshape(2, 3, 11)
    states = EgoStates.from_array(array)
    assert states.pose[1, 2].tolist() == [55.0, 56.0, 57.0]  # x, y, heading of row (1, 2)
    assert states.velocity[0, 0].tolist() == [3.0, 4.0]
    assert states.acceleration[0, 0].tolist() == [5.0, 6.0]
    assert states.steering_angle[0, 0].item() == 7.0 and states.steering_rate[0, 0].item() == 8.0
    assert states.yaw_rate[0, 0].item() == 9.0 and states.yaw_accel[0, 0].item() == 10.0
    assert states.xy.shape == (2, 3, 2) and states.heading[0, 1].item() == 13.0
    assert torch.equal(states.to_array(), array)
    with pytest.raises(ValueError, match=r"states.shape=\(3, 10\)"):
        EgoStates.from_array(torch.zeros(3, 10))


def test_index_and_cat_along_time():
    states = EgoStates.from_array(torch.arange(2 * 4 * 11, dtype=F64).reshape(2, 4, 11))
    last = states.index(-1)
    assert last.num_steps == 1 and torch.equal(last.to_array()[:, 0], states.to_array()[:, 3])
    assert torch.equal(states.index(1).steering_angle[:, 0], states.steering_angle[:, 1])
    middle = states.index(slice(1, 3))
    assert middle.num_steps == 2 and torch.equal(middle.pose, states.pose[:, 1:3])
    joined = EgoStates.cat([states.index(0), middle, last])
    assert torch.equal(joined.to_array(), states.to_array())


def test_angle_wraps():
    angles = torch.tensor([0.0, 1e-12, math.pi, -math.pi, 3 * math.pi / 2, -7.0], dtype=F64)
    # nuPlan principal_value: [-pi, pi)
    expected = [0.0, 1e-12, -math.pi, -math.pi, -math.pi / 2, 2 * math.pi - 7.0]
    assert principal_angle(angles).tolist() == pytest.approx(expected)
    # NAVSIM normalize_angle (atan2(sin, cos)): [-pi, pi], in-range angles unchanged
    wrapped = normalize_angle(angles)
    assert wrapped[:4].tolist() == [0.0, 1e-12, math.pi, -math.pi]
    assert wrapped[4:].tolist() == pytest.approx([-math.pi / 2, 2 * math.pi - 7.0], abs=1e-15)
