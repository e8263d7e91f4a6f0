"""Agent plan (ego-frame poses) -> 10 Hz global reference poses, exactly as NAVSIM's `pdm_score.py` does.

NAVSIM builds a nuPlan `InterpolatedTrajectory` from [true initial state] + plan poses at
t0 + k·interval and samples it at t0 + [0, 0.1, ..., 4.0] with times clipped to its span
(`transform_trajectory`, `get_trajectory_as_array`, nuPlan `_get_fixed_timesteps`).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from envs.sim.dynamics import principal_angle
from envs.sim.geometry import to_global

PLAN_INTERVAL_QUANTUM = 0.1
"""[s] Plan intervals must be multiples of the 10 Hz simulation step."""


def validate_plan_poses(poses: Tensor, name: str = "trajectory.poses") -> None:
    """Raise ValueError naming `name` unless poses is a finite (..., H, 3) tensor with H >= 1."""
    if not isinstance(poses, Tensor):
        raise ValueError(f"{name}={type(poses).__name__}: expected a torch.Tensor of shape (..., H, 3)")
    if poses.ndim < 2 or poses.shape[-1] != 3:
        raise ValueError(f"{name}.shape={tuple(poses.shape)!r}: expected (..., H, 3) (x, y, heading)")
    if poses.shape[-2] == 0:
        raise ValueError(f"{name}.shape={tuple(poses.shape)!r}: a plan needs at least one pose (H >= 1)")
    if not (poses.is_floating_point()):
        raise ValueError(f"{name}.dtype={poses.dtype!r}: expected a floating-point tensor")
    bad = ~torch.isfinite(poses)
    if bad.any():
        first = tuple(int(i) for i in bad.nonzero()[0])
        raise ValueError(f"{name}[{first}]={poses[first].item()!r}: poses must be finite")


def plan_to_reference(
    poses: Tensor,
    interval: float,
    origin: Tensor,
    horizon: float = 4.0,
    dt: float = 0.1,
    *,
    start_time_us: int | Tensor = 0,
) -> Tensor:
    """Global rear-axle reference poses (..., round(horizon/dt)+1, 3) sampled at t = 0, dt, ..., horizon.

    poses: (..., H, 3) plan in the frame of the current rear axle, pose k at t = k·interval (k = 1..H).
    origin: (..., 3) global rear-axle pose at t = 0, prepended as the trajectory's first state.
    Times past the plan's end are clipped to it, so a short plan holds its last pose. x, y are
    interpolated linearly, heading on the unwrapped sequence then wrapped to [-pi, pi).
    start_time_us: log timestamp of t = 0 [us], int or int64 tensor (...,). NAVSIM forms every time
    in float seconds from this absolute timestamp and truncates to integer microseconds, which moves
    knots and samples by up to 1 us; pass the scene's timestamp to reproduce that bit for bit.
    """
    validate_plan_poses(poses)
    if not isinstance(origin, Tensor) or origin.ndim < 1 or origin.shape[-1] != 3:
        shape = tuple(origin.shape) if isinstance(origin, Tensor) else type(origin).__name__
        raise ValueError(f"origin.shape={shape!r}: expected (..., 3) (x, y, heading)")
    if not torch.isfinite(origin).all():
        first = tuple(int(i) for i in (~torch.isfinite(origin)).nonzero()[0])
        raise ValueError(f"origin[{first}]={origin[first].item()!r}: must be finite")
    _check_interval(interval)
    if not (isinstance(dt, (int, float)) and math.isfinite(dt) and dt > 0):
        raise ValueError(f"dt={dt!r}: must be a positive number of seconds")
    if not (isinstance(horizon, (int, float)) and math.isfinite(horizon) and horizon > 0):
        raise ValueError(f"horizon={horizon!r}: must be a positive number of seconds")
    num_samples = round(horizon / dt) + 1
    if abs((num_samples - 1) * dt - horizon) > 1e-9:
        raise ValueError(f"horizon={horizon!r}: must be a multiple of dt={dt!r}")

    device = poses.device
    poses = poses.to(torch.float64)
    origin = origin.to(device=device, dtype=torch.float64)
    start_us = torch.as_tensor(start_time_us, device=device)
    if start_us.dtype != torch.int64 or (start_us < 0).any():
        raise ValueError(f"start_time_us={start_time_us!r}: must be a non-negative integer [us]")
    num_poses = poses.shape[-2]
    batch = torch.broadcast_shapes(poses.shape[:-2], origin.shape[:-1], start_us.shape)
    poses = poses.expand(batch + poses.shape[-2:])
    origin = origin.expand(batch + (3,))
    start_us = start_us.expand(batch)

    # --- knots: true initial pose, then the plan in the global frame ---
    absolute = to_global(poses, origin[..., None, :])  # (..., H, 3), nuPlan relative_to_absolute_poses
    knot_xy = torch.cat([origin[..., None, :2], absolute[..., :2]], dim=-2)  # (..., H+1, 2)
    knot_heading = _unwrap(torch.cat([origin[..., 2:3], absolute[..., 2]], dim=-1))  # (..., H+1)

    # --- integer-microsecond times, formed like NAVSIM/nuPlan in float seconds ---
    start_s = start_us.to(torch.float64) * 1e-6  # nuPlan TimePoint.time_s
    index = torch.arange(num_poses, dtype=torch.float64, device=device)
    pose_s = (index * interval + interval) + start_s[..., None]  # _get_fixed_timesteps
    knot_us = torch.cat([start_us[..., None], _to_us(pose_s)], dim=-1)  # (..., H+1)
    sample_s = torch.arange(num_samples, dtype=torch.float64, device=device) * dt + start_s[..., None]
    sample_us = torch.minimum(torch.maximum(_to_us(sample_s), knot_us[..., :1]), knot_us[..., -1:])

    # --- scipy interp1d(kind="linear") on the 2-D state arrays (`_call_linear`) ---
    upper = torch.searchsorted(knot_us.contiguous(), sample_us.contiguous(), side="left")
    upper = upper.clamp(1, num_poses)
    lower = upper - 1
    time_lo = torch.gather(knot_us, -1, lower)
    span = (torch.gather(knot_us, -1, upper) - time_lo).to(torch.float64)
    elapsed = (sample_us - time_lo).to(torch.float64)

    def interpolate(values: Tensor) -> Tensor:  # values (..., H+1)
        value_lo = torch.gather(values, -1, lower)
        slope = (torch.gather(values, -1, upper) - value_lo) / span
        return slope * elapsed + value_lo

    x = interpolate(knot_xy[..., 0])
    y = interpolate(knot_xy[..., 1])
    heading = principal_angle(interpolate(knot_heading))
    return torch.stack([x, y, heading], dim=-1)


def _check_interval(interval: float) -> None:
    is_number = isinstance(interval, (int, float)) and math.isfinite(interval)
    steps = round(interval / PLAN_INTERVAL_QUANTUM) if is_number else 0
    if not (steps >= 1 and abs(interval - steps * PLAN_INTERVAL_QUANTUM) < 1e-9):
        raise ValueError(f"interval={interval!r}: must be a positive multiple of {PLAN_INTERVAL_QUANTUM} s")


def _to_us(seconds: Tensor) -> Tensor:
    """int(seconds * 1e6): Python's truncation toward zero, as nuPlan's TimePoint construction."""
    return (seconds * 1e6).trunc().to(torch.int64)


def _unwrap(angles: Tensor) -> Tensor:
    """numpy.unwrap over the last dim (period 2pi, discontinuity pi), same arithmetic."""
    jumps = angles[..., 1:] - angles[..., :-1]
    wrapped = torch.remainder(jumps + math.pi, 2 * math.pi) - math.pi
    wrapped = torch.where((wrapped == -math.pi) & (jumps > 0), math.pi, wrapped)
    correction = torch.where(jumps.abs() < math.pi, 0.0, wrapped - jumps)
    return torch.cat([angles[..., :1], angles[..., 1:] + torch.cumsum(correction, dim=-1)], dim=-1)
