"""Ego kinematic state and NAVSIM's kinematic bicycle model (rear-axle reference, actuator lags).

Reproduces `BatchKinematicBicycleModel` (navsim `pdm_planner/simulation/batch_kinematic_bicycle.py`) and
the state array layout `StateIndex` (`pdm_planner/utils/pdm_enums.py`), batched in torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

import torch
from torch import Tensor

from envs.sim.vehicle import VehicleParams

STATE_SIZE = 11
"""Columns of NAVSIM's ego state array: x, y, heading, vx, vy, ax, ay, steering angle, steering rate,
angular velocity, angular acceleration (`StateIndex`)."""


def principal_angle(angle: Tensor) -> Tensor:
    """Wrap to [-pi, pi) the way nuPlan's `principal_value` does: (angle + pi) mod 2pi - pi."""
    return torch.remainder(angle + math.pi, 2 * math.pi) - math.pi


def normalize_angle(angle: Tensor) -> Tensor:
    """Wrap to [-pi, pi] like NAVSIM's `normalize_angle` = atan2(sin, cos), to within an ulp.

    Angles already in range are returned unchanged (atan2(sin, cos) may move them by an ulp); others
    are wrapped with an exact remainder. torch's CPU atan2 rounds differently in its vectorised and
    scalar paths, which would make a plan's result depend on its batch size.
    """
    return torch.where(angle.abs() <= math.pi, angle, principal_angle(angle))


@dataclass(frozen=True)
class EgoStates:
    """Ego rear-axle kinematics over time, in the global (scene) frame.

    Every field has leading dims `(..., T)`. The dynamics act elementwise over all leading dims, so a
    single simulation step is just an `EgoStates` with T = 1 (see `bicycle_step`).
    """

    pose: Tensor = field(metadata={"dims": "... T 3"})
    """Rear-axle x [m], y [m], heading [rad]."""
    velocity: Tensor = field(metadata={"dims": "... T 2"})
    """vx, vy [m/s] in the ego frame (rear axle)."""
    acceleration: Tensor = field(metadata={"dims": "... T 2"})
    """ax, ay [m/s^2] in the ego frame (rear axle)."""
    steering_angle: Tensor = field(metadata={"dims": "... T"})
    """Tyre steering angle [rad]."""
    steering_rate: Tensor = field(metadata={"dims": "... T"})
    """Tyre steering rate [rad/s]."""
    yaw_rate: Tensor = field(metadata={"dims": "... T"})
    """Angular velocity [rad/s]."""
    yaw_accel: Tensor = field(metadata={"dims": "... T"})
    """Angular acceleration [rad/s^2]."""

    # --- derived quantities ---
    @property
    def xy(self) -> Tensor:
        """(..., T, 2) rear-axle position [m]."""
        return self.pose[..., :2]

    @property
    def heading(self) -> Tensor:
        """(..., T) heading [rad]."""
        return self.pose[..., 2]

    @property
    def speed(self) -> Tensor:
        """(..., T) hypot(vx, vy) [m/s], the speed NAVSIM's metrics use."""
        return torch.hypot(self.velocity[..., 0], self.velocity[..., 1])

    @property
    def batch_shape(self) -> torch.Size:
        """Leading dims without T."""
        return self.pose.shape[:-2]

    @property
    def num_steps(self) -> int:
        """T."""
        return self.pose.shape[-2]

    # --- array layout ---
    def to_array(self) -> Tensor:
        """(..., T, 11) NAVSIM `StateIndex` layout."""
        return torch.cat(
            [
                self.pose,
                self.velocity,
                self.acceleration,
                self.steering_angle[..., None],
                self.steering_rate[..., None],
                self.yaw_rate[..., None],
                self.yaw_accel[..., None],
            ],
            dim=-1,
        )

    @classmethod
    def from_array(cls, array: Tensor, name: str = "states") -> EgoStates:
        """Build from a (..., T, 11) NAVSIM `StateIndex` array."""
        if not isinstance(array, Tensor) or array.ndim < 2 or array.shape[-1] != STATE_SIZE:
            shape = tuple(array.shape) if isinstance(array, Tensor) else type(array).__name__
            raise ValueError(f"{name}.shape={shape!r}: expected (..., T, {STATE_SIZE})")
        return cls(
            pose=array[..., 0:3],
            velocity=array[..., 3:5],
            acceleration=array[..., 5:7],
            steering_angle=array[..., 7],
            steering_rate=array[..., 8],
            yaw_rate=array[..., 9],
            yaw_accel=array[..., 10],
        )

    # --- time indexing ---
    def index(self, t: int | slice) -> EgoStates:
        """States at step `t` (T kept, = 1) or over a slice of steps."""
        window = slice(t, t + 1 if t != -1 else None) if isinstance(t, int) else t
        return EgoStates(**{f.name: _time_slice(getattr(self, f.name), f, window) for f in fields(self)})

    @classmethod
    def cat(cls, states: list[EgoStates]) -> EgoStates:
        """Concatenate along T."""
        return cls(
            **{
                f.name: torch.cat([getattr(s, f.name) for s in states], dim=_time_dim(f))
                for f in fields(cls)
            }
        )


def _time_dim(f) -> int:
    """Index of T for a field, counted from the end ("... T 3" -> -2, "... T" -> -1)."""
    return -len(f.metadata["dims"].split()) + 1


def _time_slice(value: Tensor, f, window: slice) -> Tensor:
    dim = _time_dim(f)
    index = (slice(None),) * (value.ndim + dim) + (window,)
    return value[index]


def initial_ego_state(pose: Tensor, velocity: Tensor, acceleration: Tensor) -> EgoStates:
    """Logged ego status -> state at t = 0 (T = 1), as NAVSIM's `ego_status_to_ego_state` builds it.

    pose (..., 3) rear axle x, y, heading; velocity (..., 2) and acceleration (..., 2) in the ego frame.
    Steering angle, steering rate, yaw rate and yaw acceleration are 0 (nuPlan `build_from_rear_axle`
    defaults, with `tire_steering_angle=0.0`).
    """
    pose = _checked(pose, "pose", 3)
    velocity = _checked(velocity, "velocity", 2)
    acceleration = _checked(acceleration, "acceleration", 2)
    batch = torch.broadcast_shapes(pose.shape[:-1], velocity.shape[:-1], acceleration.shape[:-1])
    zeros = pose.new_zeros(batch + (1,))
    return EgoStates(
        pose=pose.expand(batch + (3,))[..., None, :],
        velocity=velocity.expand(batch + (2,))[..., None, :],
        acceleration=acceleration.expand(batch + (2,))[..., None, :],
        steering_angle=zeros,
        steering_rate=zeros,
        yaw_rate=zeros,
        yaw_accel=zeros,
    )


def _checked(value: Tensor, name: str, width: int) -> Tensor:
    if not isinstance(value, Tensor):
        raise ValueError(f"{name}={value!r}: expected a torch.Tensor of shape (..., {width})")
    if value.ndim < 1 or value.shape[-1] != width:
        raise ValueError(f"{name}.shape={tuple(value.shape)!r}: expected (..., {width})")
    value = value.to(torch.float64)
    bad = ~torch.isfinite(value)
    if bad.any():
        first = tuple(int(i) for i in bad.nonzero()[0])
        raise ValueError(f"{name}[{first}]={value[first].item()!r}: must be finite")
    return value


def bicycle_step(
    state: EgoStates, accel_cmd: Tensor, steering_rate_cmd: Tensor, params: VehicleParams, dt: float
) -> EgoStates:
    """One forward-Euler step of NAVSIM's kinematic bicycle model (rear-axle reference).

    Elementwise over all leading dims: `state` fields (..., 3) / (...,) etc. and commands shaped like
    `state.steering_angle`. Pass a T = 1 slice to step one time instant. `dt` [s] is the step length;
    NAVSIM passes nuPlan's `TimePoint.time_s` of 100000 us, i.e. 100000 * 1e-6 (see `lqr.lqr_track`).

    Order of operations as in `BatchKinematicBicycleModel.propagate_state`:
    first-order lags on acceleration and steering angle; pose integrated with the OLD speed and
    steering angle; speed with the lagged acceleration; steering angle clipped to +-max; yaw rate
    recomputed from the new speed and steering; yaw acceleration by finite difference; lateral
    velocity and stored lateral acceleration 0; stored steering rate is the lagged (unclipped) one.
    """
    x, y, heading = state.pose.unbind(-1)
    vx = state.velocity[..., 0]
    accel = state.acceleration[..., 0]
    steer = state.steering_angle

    # actuator lags (`_update_commands`)
    ideal_steer = dt * steering_rate_cmd + steer
    lagged_accel = dt / (dt + params.accel_time_constant) * (accel_cmd - accel) + accel
    lagged_steer = dt / (dt + params.steering_time_constant) * (ideal_steer - steer) + steer
    lagged_steer_rate = (lagged_steer - steer) / dt

    # forward Euler with the old vx and steering angle (`get_state_dot` on the propagating state)
    new_x = x + vx * torch.cos(heading) * dt
    new_y = y + vx * torch.sin(heading) * dt
    new_heading = principal_angle(heading + vx * torch.tan(steer) / params.wheel_base * dt)
    new_vx = vx + lagged_accel * dt
    # integrates the steering rate from the OLD angle, so it is not bit-equal to `lagged_steer`
    new_steer = torch.clamp(
        steer + lagged_steer_rate * dt, -params.max_steering_angle, params.max_steering_angle
    )
    new_yaw_rate = new_vx * torch.tan(new_steer) / params.wheel_base
    zeros = torch.zeros_like(new_vx)
    return EgoStates(
        pose=torch.stack([new_x, new_y, new_heading], dim=-1),
        velocity=torch.stack([new_vx, zeros], dim=-1),
        acceleration=torch.stack([lagged_accel, zeros], dim=-1),
        steering_angle=new_steer,
        steering_rate=lagged_steer_rate,
        yaw_rate=new_yaw_rate,
        yaw_accel=(new_yaw_rate - state.yaw_rate) / dt,
    )
