"""The Bench2Drive ego: CARLA-style control (steer, throttle, brake) -> kinematic bicycle motion of a
Lincoln MKZ 2020, and the PID waypoint follower of the Bench2Drive baselines (TCP / UniAD / VAD)."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

from envs.sim.vehicle import VehicleParams

MKZ_2020 = VehicleParams(
    length=4.89, width=2.16, wheel_base=2.85, rear_axle_to_center=1.425,
    max_steering_angle=math.radians(70.0), steering_time_constant=0.1,
)
"""The leaderboard ego `vehicle.lincoln.mkz_2020`. Box 4.89 x 2.16 m (CARLA bounding-box extent
2.445 x 1.08 m); wheel base 2.85 m (Lincoln's 112.2 in for the 2020 MKZ), axles placed symmetrically
about the box centre (an assumption); 70 deg front-wheel lock (CARLA MKZ `max_steer_angle`); first-order
steering lag 0.1 s (our choice: CARLA wheels turn at a finite rate). `accel_time_constant` is unused:
throttle acts at once."""

THROTTLE_ACCEL = 3.8
"""[m/s^2] at full throttle and zero speed: 0-100 km/h in about 7.3 s with the drag below, like the
2.0 l MKZ (0-60 mph in ~7 s)."""
BRAKE_DECEL = 8.0
"""[m/s^2] at full brake (dry-road emergency stop)."""
DRAG = 0.05
"""[1/s] linear speed drag (rolling + air + engine braking lumped): 0.5 m/s^2 coasting at 10 m/s."""
MAX_SPEED = 50.0
"""[m/s] clamp; there is no reverse gear, speed never goes below 0."""


# --------------------------------------------------------------------------- control -> motion


def check_control(control: Tensor, batch: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """Validate a (B, 3) [steer, throttle, brake] batch; clip to CARLA's ranges like `VehicleControl` does.

    steer in [-1, 1] (positive = turn right, CARLA's sign), throttle and brake in [0, 1]. Wrong shape or a
    non-finite entry raises ValueError naming `control`.
    """
    if not isinstance(control, Tensor):
        control = torch.as_tensor(control)
    if tuple(control.shape) != (batch, 3):
        raise ValueError(f"control.shape={tuple(control.shape)!r}: expected ({batch}, 3) = steer, throttle, brake")
    control = control.to(dtype=dtype, device=device)
    if not math.isfinite(control.sum().item()):        # one op; the slow path finds the culprit
        finite = torch.isfinite(control)
        bad = control[~finite][0].item() if not bool(finite.all()) else control.abs().max().item()
        raise ValueError(f"control={bad!r}: every steer, throttle, brake must be finite")
    low, high = _control_bounds(control.dtype, str(control.device))
    return torch.clamp(control, low, high)


@functools.lru_cache(maxsize=16)
def _control_bounds(dtype: torch.dtype, device: str) -> tuple[Tensor, Tensor]:
    """CARLA's control ranges [steer, throttle, brake] (cached per dtype and device; never written to)."""
    return (torch.tensor([-1.0, 0.0, 0.0], dtype=dtype, device=device),
            torch.tensor([1.0, 1.0, 1.0], dtype=dtype, device=device))


@functools.lru_cache(maxsize=16)
def _ego_constants(dt: float, dtype: torch.dtype, device: str) -> tuple[Tensor, Tensor]:
    """(control -> speed change gains (3,), heading-turn fractions of a tick (3,)) for `ego_step`, cached."""
    gains = torch.tensor([0.0, THROTTLE_ACCEL * dt, -BRAKE_DECEL * dt], dtype=dtype, device=device)
    return gains, torch.tensor([0.5 * dt, dt, 0.0], dtype=dtype, device=device)


def ego_step(pose: Tensor, speed: Tensor, wheel_angle: Tensor, control: Tensor, dt: float,
             params: VehicleParams = MKZ_2020) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """One tick of the ego -> (pose (B, 3), speed (B,), wheel_angle (B,), accel_long (B,), velocity (B, 2),
    yaw_rate (B,)).

    pose is the box centre x, y [m], heading [rad]; speed [m/s] >= 0 at the rear axle; wheel_angle [rad]
    is the front-wheel angle (positive = left, our counter-clockwise frame). control (B, 3) is already
    checked (`check_control`). Model:
      accel = THROTTLE_ACCEL * throttle - BRAKE_DECEL * brake - DRAG * speed
      speed' = clamp(speed + accel * dt, 0, MAX_SPEED)                      (explicit Euler, no reverse)
      wheel' = wheel + (-steer * max_angle - wheel) * (1 - exp(-dt / tau))  (steer > 0 turns right)
      yaw_rate = v_mid * tan(wheel') / wheel_base,   v_mid = (speed + speed') / 2
      the rear axle moves v_mid * dt along the mid heading yaw + yaw_rate * dt / 2.
    accel_long = (speed' - speed) / dt; velocity = speed' along the new heading (global frame).
    """
    gains = _ego_constants(float(dt), control.dtype, str(control.device))[0]
    turns = _ego_constants(float(dt), pose.dtype, str(pose.device))[1]
    new_speed = (speed * (1.0 - DRAG * dt) + control @ gains).clamp(min=0.0, max=MAX_SPEED)
    lag = 1.0 - math.exp(-dt / params.steering_time_constant)
    new_wheel = torch.lerp(wheel_angle, control[:, 0] * -params.max_steering_angle, lag)
    mid_speed = 0.5 * (speed + new_speed)
    yaw_rate = mid_speed * torch.tan(new_wheel) * (1.0 / params.wheel_base)
    # headings at mid-tick, new, old -> (B, 3, 2) unit vectors
    turn = pose[:, 2:3] + yaw_rate[:, None] * turns
    unit = torch.stack([torch.cos(turn), torch.sin(turn)], -1)
    # centre = rear axle + c * unit(yaw): move the rear axle, then go back to the centre
    xy = pose[:, :2] + (mid_speed * dt)[:, None] * unit[:, 0] + params.rear_axle_to_center * (unit[:, 1] - unit[:, 2])
    new_yaw = torch.atan2(unit[:, 1, 1], unit[:, 1, 0])
    return (torch.cat([xy, new_yaw[:, None]], -1), new_speed, new_wheel, (new_speed - speed) * (1.0 / dt),
            new_speed[:, None] * unit[:, 1], yaw_rate)


# --------------------------------------------------------------------------- PID waypoint follower


@dataclass(frozen=True)
class PIDConfig:
    """Constants of the Bench2DriveZoo TCP controller (`TCP/config.py`), shared by the UniAD/VAD agents."""

    turn_kp: float = 0.75
    turn_ki: float = 0.75
    turn_kd: float = 0.3
    speed_kp: float = 5.0
    speed_ki: float = 0.5
    speed_kd: float = 1.0
    window: int = 40
    """Samples in each PID's error window (integral = window mean, zeros at start)."""
    max_throttle: float = 0.75
    brake_speed: float = 0.4
    """[m/s] desired speed below which the controller brakes."""
    brake_ratio: float = 1.1
    """Brake when speed / desired speed exceeds this."""
    clip_delta: float = 0.25
    """[m/s] cap on the speed error fed to the longitudinal PID."""
    aim_dist: float = 4.0
    """[m] the aim point is the waypoint whose segment midpoint is nearest this distance."""
    angle_thresh: float = 0.3
    dist_thresh: float = 10.0
    """[m] the route target replaces the aim point only when it is closer ahead than this (outlier rule)."""
    waypoint_rate: float = 2.0
    """[Hz] waypoint spacing in time: desired speed = mean segment length x rate."""

    def __post_init__(self):
        if not (isinstance(self.window, int) and self.window >= 2):
            raise ValueError(f"window={self.window!r}: need an int >= 2")


TCP_PID = PIDConfig()


@dataclass(frozen=True)
class PIDState:
    """Error windows of the lateral and longitudinal PIDs (newest last)."""

    turn_window: Tensor = field(metadata={"dims": "B W"})
    speed_window: Tensor = field(metadata={"dims": "B W"})


def initial_pid_state(batch: int, device=None, config: PIDConfig = TCP_PID) -> PIDState:
    """Zero-filled windows, as TCP's `deque([0] * n)`."""
    zeros = torch.zeros(batch, config.window, dtype=torch.float64, device=device)
    return PIDState(turn_window=zeros, speed_window=zeros.clone())


def _pid(window: Tensor, error: Tensor, kp: float, ki: float, kd: float) -> tuple[Tensor, Tensor]:
    window = torch.cat([window[:, 1:], error[:, None]], 1)
    output = kp * error + ki * window.mean(-1) + kd * (window[:, -1] - window[:, -2])
    return output, window


def _tcp_angle(forward: Tensor, left: Tensor) -> Tensor:
    """TCP's steering error: degrees(pi/2 - atan2(fwd, right)) / 90 (positive = target on the right)."""
    return torch.rad2deg(math.pi / 2 - torch.atan2(forward, -left)) / 90.0


def pid_control(waypoints: Tensor, speed: Tensor, state: PIDState, target: Tensor | None = None,
                config: PIDConfig = TCP_PID) -> tuple[Tensor, PIDState]:
    """Waypoints -> control, batched like TCP's `control_pid`; returns control (B, 3) and the new state.

    waypoints (B, T, 2) ego frame (x forward, y left) [m], T >= 2, spaced 1/waypoint_rate s apart;
    speed (B,) [m/s]; target (B, 2) optional route target point in the ego frame (TCP's outlier rule uses
    it; without it the aim point is always used). Control is (steer in CARLA's sign: positive = right,
    throttle, brake in {0, 1}). Agent-specific post-processing (UniAD's 5 m/s throttle cut, TCP's blend
    with its control branch) is not included.
    """
    if waypoints.dim() != 3 or waypoints.shape[-1] != 2 or waypoints.shape[1] < 2:
        raise ValueError(f"waypoints.shape={tuple(waypoints.shape)!r}: expected (B, T >= 2, 2)")
    batch = waypoints.shape[0]
    if tuple(speed.shape) != (batch,):
        raise ValueError(f"speed.shape={tuple(speed.shape)!r}: expected ({batch},)")
    if not (bool(torch.isfinite(waypoints).all()) and bool(torch.isfinite(speed).all())):
        raise ValueError("waypoints, speed: must be finite")
    if tuple(state.turn_window.shape) != (batch, config.window):
        raise ValueError(f"state.turn_window.shape={tuple(state.turn_window.shape)!r}: "
                         f"expected ({batch}, {config.window})")
    waypoints = waypoints.to(torch.float64)
    speed = speed.to(waypoints)
    segments = waypoints[:, 1:] - waypoints[:, :-1]                                   # (B, T-1, 2)
    desired_speed = segments.norm(dim=-1).mean(-1) * config.waypoint_rate
    # aim: first waypoint i whose midpoint with i+1 is nearest aim_dist (TCP's strict-improvement loop)
    midpoint_norm = (0.5 * (waypoints[:, 1:] + waypoints[:, :-1])).norm(dim=-1)
    aim_index = (config.aim_dist - midpoint_norm).abs().argmin(-1)
    aim = waypoints.gather(1, aim_index[:, None, None].expand(batch, 1, 2))[:, 0]
    angle = _tcp_angle(aim[:, 0], aim[:, 1])
    if target is not None:
        if tuple(target.shape) != (batch, 2) or not bool(torch.isfinite(target).all()):
            raise ValueError(f"target.shape={tuple(target.shape)!r}: expected finite ({batch}, 2)")
        target = target.to(waypoints)
        angle_last = _tcp_angle(segments[:, -1, 0], segments[:, -1, 1])
        angle_target = _tcp_angle(target[:, 0], target[:, 1])
        use_target = (angle_target.abs() < angle.abs()) | (
            ((angle_target - angle_last).abs() > config.angle_thresh) & (target[:, 0] < config.dist_thresh))
        angle = torch.where(use_target, angle_target, angle)
    steer, turn_window = _pid(state.turn_window.to(waypoints), angle, config.turn_kp, config.turn_ki, config.turn_kd)
    steer = steer.clamp(-1.0, 1.0)
    brake = (desired_speed < config.brake_speed) | (speed > config.brake_ratio * desired_speed)
    delta = (desired_speed - speed).clamp(0.0, config.clip_delta)
    throttle, speed_window = _pid(state.speed_window.to(waypoints), delta, config.speed_kp, config.speed_ki,
                                  config.speed_kd)
    throttle = torch.where(brake, 0.0, throttle.clamp(0.0, config.max_throttle))
    control = torch.stack([steer, throttle, brake.to(waypoints.dtype)], -1)
    return control, PIDState(turn_window=turn_window, speed_window=speed_window)
