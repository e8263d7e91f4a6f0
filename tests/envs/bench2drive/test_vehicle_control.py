"""Hand-worked checks of the Bench2Drive ego model and PID follower (envs/bench2drive/vehicle_control.py)."""

import math

import pytest
import torch

from envs.bench2drive.vehicle_control import (
    BRAKE_DECEL, DRAG, MKZ_2020, THROTTLE_ACCEL, TCP_PID, check_control, ego_step, initial_pid_state, pid_control,
)

DT = 0.05
F64 = torch.float64


def step_many(ticks, control, speed=0.0, pose=(0.0, 0.0, 0.0)):
    pose = torch.tensor([pose], dtype=F64)
    speed = torch.tensor([speed], dtype=F64)
    wheel = torch.zeros(1, dtype=F64)
    control = check_control(torch.tensor([control], dtype=F64), 1, F64, pose.device)
    trace = []
    for _ in range(ticks):
        pose, speed, wheel, accel, velocity, yaw_rate = ego_step(pose, speed, wheel, control, DT)
        assert velocity[0].tolist() == pytest.approx([speed.item() * math.cos(pose[0, 2]),
                                                      speed.item() * math.sin(pose[0, 2])])
        trace.append((pose[0].clone(), speed.item(), wheel.item(), accel.item(), yaw_rate.item()))
    return trace


def test_mkz_constants():
    assert (MKZ_2020.length, MKZ_2020.width, MKZ_2020.wheel_base) == (4.89, 2.16, 2.85)
    assert math.degrees(MKZ_2020.max_steering_angle) == pytest.approx(70.0)


def test_full_throttle_from_rest():
    trace = step_many(20, [0.0, 1.0, 0.0])
    q = 1.0 - DRAG * DT                     # v_n = (A / c)(1 - q^n) = 76 (1 - 0.9975^n)
    assert trace[0][1] == pytest.approx(3.8 * 0.05)
    assert trace[19][1] == pytest.approx(THROTTLE_ACCEL / DRAG * (1 - q ** 20))
    assert trace[19][1] == pytest.approx(3.7111, abs=1e-4)
    assert trace[0][3] == pytest.approx(3.8)                             # accel_long at v = 0
    # trapezoidal position: x_20 = sum dt (v_k + v_k+1) / 2
    speeds = [0.0] + [t[1] for t in trace]
    assert trace[19][0][0].item() == pytest.approx(sum(DT * (speeds[k] + speeds[k + 1]) / 2 for k in range(20)))


def test_braking_to_stop_never_reverses():
    trace = step_many(40, [0.0, 0.0, 1.0], speed=10.0)
    speeds = [t[1] for t in trace]
    # v_n+1 = v_n (1 - c dt) - 8 dt  =>  v_n = 170 * 0.9975^n - 160: v_24 = 0.0879, v_25 clamps to 0
    assert speeds[23] == pytest.approx(170 * 0.9975 ** 24 - 160) and speeds[23] == pytest.approx(0.0879, abs=1e-4)
    assert speeds[24] == 0.0
    assert min(speeds) == 0.0 and speeds[-1] == 0.0
    stop_x = trace[-1][0][0].item()
    assert 5.9 < stop_x < 10.0 ** 2 / (2 * BRAKE_DECEL)                 # v^2 / 2a = 6.25 m, drag helps
    assert trace[-1][0][0].item() == trace[30][0][0].item()


def test_steering_radius_matches_wheel_base():
    # steer -0.5 (left, CARLA sign) -> wheel angle 35 deg; throttle balances drag at 5 m/s
    trace = step_many(400, [-0.5, DRAG * 5.0 / THROTTLE_ACCEL, 0.0], speed=5.0)
    assert trace[-1][2] == pytest.approx(math.radians(35.0))
    rear_radius = 2.85 / math.tan(math.radians(35.0))                   # L / tan(delta) = 4.0703 m
    assert rear_radius == pytest.approx(4.0703, abs=1e-4)
    centre_radius = math.hypot(rear_radius, 1.425)                      # the box centre sits L/2 ahead
    points = torch.stack([t[0][:2] for t in trace[200:]])
    centre = (points.max(0).values + points.min(0).values) / 2
    radii = (points - centre).norm(dim=-1)
    assert radii.mean().item() == pytest.approx(centre_radius, abs=0.02)
    yaw = [t[0][2].item() for t in trace]
    yaw_rate = math.remainder(yaw[301] - yaw[300], 2 * math.pi) / DT
    assert yaw_rate == pytest.approx(5.0 * math.tan(math.radians(35.0)) / 2.85, rel=1e-3)   # +1.228 rad/s: left
    assert trace[301][4] == pytest.approx(yaw_rate)


def test_steering_lag_first_order():
    trace = step_many(2, [1.0, 0.0, 0.0], speed=0.0)
    lag = 1 - math.exp(-DT / MKZ_2020.steering_time_constant)
    target = -math.radians(70.0)                                          # full right
    assert trace[0][2] == pytest.approx(target * lag)
    assert trace[1][2] == pytest.approx(target * (1 - (1 - lag) ** 2))
    assert trace[1][0][2].item() == 0.0                                    # no speed, no yaw


def test_check_control_rejects_and_clips():
    with pytest.raises(ValueError, match=r"control.shape=\(2, 2\)"):
        check_control(torch.zeros(2, 2), 2, F64, torch.device("cpu"))
    with pytest.raises(ValueError, match="control=inf"):
        check_control(torch.tensor([[0.0, math.inf, 0.0]]), 1, F64, torch.device("cpu"))
    clipped = check_control(torch.tensor([[2.0, -1.0, 3.0]]), 1, F64, torch.device("cpu"))
    assert clipped.tolist() == [[1.0, 0.0, 1.0]]


# --------------------------------------------------------------------------- PID


def straight(step, count=4):
    return torch.tensor([[[step * (k + 1), 0.0] for k in range(count)]], dtype=F64)


def test_pid_straight_waypoints_throttle():
    state = initial_pid_state(1)
    control, state = pid_control(straight(2.0), torch.zeros(1, dtype=F64), state)
    # desired 2 m x 2 Hz = 4 m/s; delta = min(4, 0.25); 5 * 0.25 + 0.5 * 0.25 / 40 + 1.0 * 0.25 = 1.503 -> 0.75
    assert control.tolist() == [[0.0, 0.75, 0.0]]
    assert state.speed_window[0, -1].item() == 0.25 and state.speed_window[0, :-1].abs().sum().item() == 0.0
    control, state = pid_control(straight(0.5), torch.tensor([0.9], dtype=F64), state)
    # desired 1 m/s, speed 0.9: delta 0.1 -> 5 * 0.1 + 0.5 * 0.35 / 40 + 1.0 * (0.1 - 0.25) = 0.354375
    assert control[0, 1].item() == pytest.approx(0.354375)


def test_pid_steers_right_towards_right_waypoints():
    waypoints = torch.tensor([[[2.0, -2.0], [4.0, -4.0], [6.0, -6.0], [8.0, -8.0]]], dtype=F64)
    control, _ = pid_control(waypoints, torch.zeros(1, dtype=F64), initial_pid_state(1))
    # aim: midpoint norms 4.24, 7.07, ... -> first waypoint (2, -2): 45 deg right -> angle 0.5
    # steer = 0.75 * 0.5 + 0.75 * 0.5 / 40 + 0.3 * 0.5 = 0.534375 (positive = right)
    assert control[0, 0].item() == pytest.approx(0.534375)


def test_pid_brakes_for_slow_plan_or_overspeed():
    speed = torch.tensor([0.0, 5.0], dtype=F64)
    waypoints = torch.cat([straight(0.1), straight(2.0)])                   # desired 0.2 m/s, 4 m/s
    control, _ = pid_control(waypoints, speed, initial_pid_state(2))
    assert control[:, 2].tolist() == [1.0, 1.0] and control[:, 1].tolist() == [0.0, 0.0]   # 0.2 < 0.4; 5 > 4.4


def test_pid_uses_route_target_when_it_needs_less_steering():
    waypoints = torch.tensor([[[2.0, -2.0], [4.0, -4.0], [6.0, -6.0], [8.0, -8.0]]], dtype=F64)
    target = torch.tensor([[20.0, 0.0]], dtype=F64)                          # straight ahead: angle 0 < 0.5
    control, _ = pid_control(waypoints, torch.zeros(1, dtype=F64), initial_pid_state(1), target=target)
    assert control[0, 0].item() == 0.0


def test_pid_rejects_bad_shapes():
    with pytest.raises(ValueError, match="waypoints.shape"):
        pid_control(torch.zeros(1, 1, 2), torch.zeros(1), initial_pid_state(1))
    with pytest.raises(ValueError, match="speed.shape"):
        pid_control(straight(1.0), torch.zeros(2), initial_pid_state(1))
    with pytest.raises(ValueError, match="turn_window"):
        pid_control(straight(1.0), torch.zeros(1), initial_pid_state(2))
    assert TCP_PID.window == 40
