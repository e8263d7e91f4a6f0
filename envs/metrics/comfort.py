"""NAVSIM comfort metrics: Comfort (C, v1), History Comfort (HC, v2), Extended Comfort (EC, v2).

Batched re-implementation of navsim `pdm_comfort_metrics.py`, `PDMScorer._calculate_history_comfort`
and `SceneAggregator._compute_two_frame_comfort`, NAVSIM's quirks included (noted where they happen).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from envs.metrics.savgol import savgol
from envs.sim.dynamics import EgoStates, principal_angle
from envs.sim.scene import STEP_S
from envs.sim.vehicle import VehicleParams

# Bounds of the six checks: nuPlan ego comfort metrics, as copied into pdm_comfort_metrics.py.
# Every check is a strict open interval and must hold at every time step.
MIN_LON_ACCEL = -4.05
"""[m/s^2]"""
MAX_LON_ACCEL = 2.40
"""[m/s^2]"""
MAX_ABS_LAT_ACCEL = 4.89
"""[m/s^2]"""
MAX_ABS_MAG_JERK = 8.37
"""[m/s^3]"""
MAX_ABS_LON_JERK = 4.13
"""[m/s^3]"""
MAX_ABS_YAW_ACCEL = 1.93
"""[rad/s^2]"""
MAX_ABS_YAW_RATE = 0.95
"""[rad/s]"""

# Extended Comfort: RMS over the overlap of (current - previous) feature, pass if <= (navsim main).
EC_MAX_RMS_ACCEL = 0.7
"""[m/s^2]"""
EC_MAX_RMS_JERK = 0.5
"""[m/s^3]"""
EC_MAX_RMS_YAW_RATE = 0.1
"""[rad/s]"""
EC_MAX_RMS_YAW_ACCEL = 0.1
"""[rad/s^2]"""
EC_MAX_INTERVAL_S = 0.55
"""Largest time gap between the two frames that SceneAggregator accepts [s] (exclusive)."""

DECIMALS = 8
"""NAVSIM rounds every extracted signal to 8 decimals before comparing."""
ACCEL_WINDOW = 8
"""Default Savitzky-Golay window of `_extract_ego_acceleration` (also the smoothing before jerk)."""
JERK_WINDOW = 15
"""Default window of `_extract_ego_jerk` (v2; v1 passes the full length instead)."""
YAW_WINDOW = 5
"""`_approximate_derivatives` default: the yaw helpers never pass their window on, so always 5."""
HISTORY_STEP_US = 100_000
"""Sampling step of the past human trajectory [us] (int(0.1 * 1e6) in `_calculate_history_comfort`)."""


# --------------------------------------------------------------------------------------------------
# signal extraction (shared by C, HC, EC)
# --------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def _time_delta(num_steps: int) -> float:
    """`delta` of NAVSIM's derivatives: the mean spacing of `arange(n) * 0.1` (not exactly 0.1)."""
    return float(np.diff(np.arange(num_steps).astype(np.float64) * STEP_S).mean())


def _round(x: Tensor) -> Tensor:
    return torch.round(x, decimals=DECIMALS)


def _smooth(signal: Tensor, window: int) -> Tensor:
    """`_extract_ego_acceleration`: savgol (poly 2) with window min(w, n), rounded."""
    return _round(savgol(signal, min(window, signal.shape[-1]), 2))


def _derivative(signal: Tensor, window: int, polyorder: int, deriv: int) -> Tensor:
    """`_approximate_derivatives` + rounding: savgol derivative with window min(w, n), delta = mean dt."""
    num_steps = signal.shape[-1]
    window = min(window, num_steps)
    if not polyorder < window:
        raise ValueError(f"num_steps={num_steps}: too short for a poly-{polyorder} derivative (NAVSIM raises too)")
    return _round(savgol(signal, window, polyorder, deriv=deriv, delta=_time_delta(num_steps)))


def phase_unwrap(heading: Tensor) -> Tensor:
    """NAVSIM's `_phase_unwrap` over the last dim: subtract 2*pi*cumsum(round(diff / 2*pi))."""
    two_pi = 2.0 * math.pi
    steps = torch.round(torch.diff(heading, dim=-1) / two_pi)
    adjustments = torch.cat([torch.zeros_like(heading[..., :1]), torch.cumsum(steps, dim=-1)], dim=-1)
    return heading - two_pi * adjustments


def _within(values: Tensor, low: float, high: float) -> Tensor:
    """`_within_bound`: low < v < high at every step -> (...,) bool."""
    return ((values > low) & (values < high)).all(dim=-1)


def _six_checks(
    heading: Tensor, accel_mag: Tensor, lon_accel: Tensor, lat_accel: Tensor, accel_window: int, jerk_window: int
) -> Tensor:
    """`ego_is_comfortable` over the last dim (all inputs (..., n)) -> (...,) float64 in {0, 1}.

    `lon_accel`/`lat_accel` feed the two acceleration checks and the longitudinal jerk; `accel_mag`
    (always the rear-axle hypot(ax, ay)) feeds the jerk-magnitude check.
    """
    lon = _smooth(lon_accel, accel_window)
    lat = _smooth(lat_accel, accel_window)
    # jerk: acceleration smoothed with the DEFAULT window 8, then differentiated with `jerk_window`
    jerk = _derivative(_smooth(accel_mag, ACCEL_WINDOW), jerk_window, 2, 1)
    lon_jerk = _derivative(_smooth(lon_accel, ACCEL_WINDOW), jerk_window, 2, 1)
    yaw = phase_unwrap(heading)
    yaw_accel = _derivative(yaw, YAW_WINDOW, 3, 2)
    yaw_rate = _derivative(yaw, YAW_WINDOW, 2, 1)
    ok = (
        _within(lon, MIN_LON_ACCEL, MAX_LON_ACCEL)
        & _within(lat, -MAX_ABS_LAT_ACCEL, MAX_ABS_LAT_ACCEL)
        & _within(jerk, -MAX_ABS_MAG_JERK, MAX_ABS_MAG_JERK)
        & _within(lon_jerk, -MAX_ABS_LON_JERK, MAX_ABS_LON_JERK)
        & _within(yaw_accel, -MAX_ABS_YAW_ACCEL, MAX_ABS_YAW_ACCEL)
        & _within(yaw_rate, -MAX_ABS_YAW_RATE, MAX_ABS_YAW_RATE)
    )
    return ok.to(torch.float64)


def _check_states(states: EgoStates, name: str, min_steps: int) -> None:
    if not isinstance(states, EgoStates):
        raise ValueError(f"{name}={type(states).__name__}: expected EgoStates")
    if states.pose.ndim < 2 or states.num_steps < min_steps:
        raise ValueError(f"{name}.pose.shape={tuple(states.pose.shape)!r}: expected (..., T>={min_steps}, 3)")


# --------------------------------------------------------------------------------------------------
# C (v1)
# --------------------------------------------------------------------------------------------------


def comfort_v1(states: EgoStates) -> Tensor:
    """NAVSIM v1.1 comfort C of simulated states (..., T) -> (...,) float64 in {0, 1}.

    Rear-axle signals, time axis 0, 0.1, ... s. Accelerations are smoothed over the whole horizon
    (window T, poly 2); jerk is the window-8 smoothed acceleration differentiated with window T;
    yaw rate / yaw acceleration use window 5 (poly 2 / poly 3).
    """
    _check_states(states, "states", min_steps=4)
    ax, ay = states.acceleration[..., 0], states.acceleration[..., 1]
    num_steps = states.num_steps
    return _six_checks(
        states.heading, torch.hypot(ax, ay), ax, ay, accel_window=num_steps, jerk_window=num_steps
    )


# --------------------------------------------------------------------------------------------------
# HC (v2)
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PastStates:
    """Past human ego states that prefix the plan for history comfort, one row per scene.

    Scenes may have different counts (14 or 15, see `history_states`), so the rows are right-aligned:
    the valid states of scene b are the last `count[b]` of `states`; earlier slots are padding.
    """

    states: EgoStates
    """(B, Th) past states, right-aligned; Th = max(count)."""
    count: Tensor = field(metadata={"dims": "B"})
    """int64: number of valid (last) states per scene."""


def _unwrap_like_numpy(angles: Tensor) -> Tensor:
    """`np.unwrap(angles, axis=-1)` (discont = pi, period = 2 pi), as nuPlan's AngularInterpolator uses it."""
    diff = torch.diff(angles, dim=-1)
    wrapped = torch.remainder(diff + math.pi, 2 * math.pi) - math.pi
    # numpy maps -pi to +pi when the raw jump was positive
    wrapped = torch.where((wrapped == -math.pi) & (diff > 0), torch.full_like(wrapped, math.pi), wrapped)
    correction = torch.where(diff.abs() < math.pi, torch.zeros_like(diff), wrapped - diff)
    return torch.cat([angles[..., :1], angles[..., 1:] + torch.cumsum(correction, dim=-1)], dim=-1)


def _interp_linear(knots: Tensor, values: Tensor, query: Tensor) -> Tensor:
    """scipy `interp1d(kind="linear")` per row: knots (B, H), values (B, H, C), query (B, Q) -> (B, Q, C)."""
    num_knots = knots.shape[-1]
    hi = torch.searchsorted(knots, query, right=False).clamp(1, num_knots - 1)
    lo = hi - 1
    x_lo, x_hi = knots.gather(1, lo), knots.gather(1, hi)
    channels = values.shape[-1]
    y_lo = values.gather(1, lo[..., None].expand(-1, -1, channels))
    y_hi = values.gather(1, hi[..., None].expand(-1, -1, channels))
    slope = (y_hi - y_lo) / (x_hi - x_lo)[..., None]
    return slope * (query - x_lo)[..., None] + y_lo


def _checked_history(value: Tensor, name: str, shape: tuple) -> Tensor:
    if not isinstance(value, Tensor):
        raise ValueError(f"{name}={type(value).__name__}: expected a torch.Tensor")
    if value.ndim != len(shape) or any(want is not None and got != want for got, want in zip(value.shape, shape)):
        raise ValueError(f"{name}.shape={tuple(value.shape)!r}: expected {shape}")
    value = value.to(torch.float64)
    bad = ~torch.isfinite(value)
    if bad.any():
        first = tuple(int(i) for i in bad.nonzero()[0])
        raise ValueError(f"{name}[{first}]={value[first].item()!r}: must be finite")
    return value


def history_states(t: Tensor, pose: Tensor, velocity: Tensor, acceleration: Tensor) -> PastStates:
    """The past human states NAVSIM prefixes to each plan for History Comfort.

    Inputs are the batched logged ego history (`EgoHistory`), oldest first: t (B, H) [s], pose (B, H, 3)
    global rear-axle x, y, heading, velocity (B, H, 2) and acceleration (B, H, 2) in the ego frame.

    NAVSIM builds an nuPlan `InterpolatedTrajectory` over these states (timestamps in integer us)
    and samples it at `arange(start_us, end_us, 100000)` with the LAST sample dropped. With exact
    times -1.5 .. 0 s this gives **14 states at -1.5, -1.4, ..., -0.2 s**; a logged span a hair longer
    than 1.5 s gives 15 (up to about -0.1 s). Times are rounded to whole microseconds first.
    Each state carries: x, y, vx, vy, ax, ay linearly interpolated in time; heading unwrapped,
    interpolated and wrapped to [-pi, pi); steering angle, steering rate, yaw rate and yaw
    acceleration all 0 (nuPlan `build_from_rear_axle` defaults; NAVSIM logs steering 0).
    """
    t = _checked_history(t, "history.t", (None, None))
    batch, num_knots = t.shape
    if num_knots < 2:
        raise ValueError(f"history.t.shape={tuple(t.shape)!r}: need at least 2 logged states")
    pose = _checked_history(pose, "history.pose", (batch, num_knots, 3))
    velocity = _checked_history(velocity, "history.velocity", (batch, num_knots, 2))
    acceleration = _checked_history(acceleration, "history.acceleration", (batch, num_knots, 2))

    t_us = torch.round(t * 1e6).to(torch.int64)
    gaps = torch.diff(t_us, dim=-1)
    if (gaps <= 0).any():
        row = int((gaps <= 0).any(dim=-1).nonzero()[0])
        raise ValueError(f"history.t[{row}]={t[row].tolist()!r}: times must be strictly increasing")
    span = t_us[:, -1] - t_us[:, 0]
    count = (span + HISTORY_STEP_US - 1) // HISTORY_STEP_US - 1  # len(arange(start, end, step)) - 1
    if (count < 1).any():
        row = int((count < 1).nonzero()[0])
        raise ValueError(f"history.t[{row}]={t[row].tolist()!r}: spans 0.1 s or less, no past state to sample")

    num_past = int(count.max())
    slots = torch.arange(num_past, device=t.device)
    sample = (slots[None, :] - (num_past - count[:, None])).clamp(min=0)  # right-aligned sample index
    query = (t_us[:, :1] + sample * HISTORY_STEP_US).to(torch.float64)
    knots = t_us.to(torch.float64)

    linear = _interp_linear(knots, torch.cat([pose[..., :2], velocity, acceleration], dim=-1), query)
    heading = _interp_linear(knots, _unwrap_like_numpy(pose[..., 2])[..., None], query)[..., 0]
    zeros = torch.zeros_like(heading)
    states = EgoStates(
        pose=torch.cat([linear[..., :2], principal_angle(heading)[..., None]], dim=-1),
        velocity=linear[..., 2:4],
        acceleration=linear[..., 4:6],
        steering_angle=zeros,
        steering_rate=zeros,
        yaw_rate=zeros,
        yaw_accel=zeros,
    )
    return PastStates(states=states, count=count)


def _center_lon_accel(states: EgoStates, rear_axle_to_center: float) -> Tensor:
    """Longitudinal acceleration of the box centre as `state_array_to_center_state_array` computes it.

    nuPlan shifts by the displacement (d, 0): a_c = a + d*w^2 + d*alpha on x only (lateral unchanged).
    """
    ax = states.acceleration[..., 0]
    return ax + rear_axle_to_center * states.yaw_rate**2 + rear_axle_to_center * states.yaw_accel


def history_comfort(states: EgoStates, history: PastStates | None, vehicle: VehicleParams) -> Tensor:
    """History Comfort HC (v2) of simulated plans (B, P, T) prefixed by the past human states -> (B, P).

    HC = 1 everywhere when `history` is None (NAVSIM: no `past_human_trajectory`, e.g. the human run
    of the filter). Otherwise the six comfort checks run on [past (count[b]) + plan (T)] states, with
    the time axis assumed uniform at 0.1 s across the join (NAVSIM's quirk). Longitudinal signals are
    at the box centre (`_center_lon_accel`, d = vehicle.rear_axle_to_center; NAVSIM always uses the
    Pacifica's 1.461 m here, whatever the configured vehicle), lateral acceleration
    is the rear-axle ay, the jerk magnitude uses the rear-axle hypot(ax, ay). Windows: accelerations
    8, jerk 8 then 15, yaw 5.
    """
    _check_states(states, "states", min_steps=1)
    if states.pose.ndim != 4:
        raise ValueError(f"states.pose.shape={tuple(states.pose.shape)!r}: expected (B, P, T, 3)")
    batch, num_plans = states.pose.shape[:2]
    if history is None:
        return torch.ones(batch, num_plans, dtype=torch.float64, device=states.pose.device)
    if not isinstance(history, PastStates):
        raise ValueError(f"history={type(history).__name__}: expected PastStates or None")
    if history.count.shape != (batch,):
        raise ValueError(f"history.count.shape={tuple(history.count.shape)!r}: expected ({batch},) to match states")

    num_past = history.states.num_steps
    result = torch.empty(batch, num_plans, dtype=torch.float64, device=states.pose.device)
    # one pass per distinct history length (normally a single one); the signal length sets the filters
    for count in torch.unique(history.count).tolist():
        rows = (history.count == count).nonzero()[:, 0]
        past = history.states.index(slice(num_past - count, None))
        joined = EgoStates.cat(
            [_select_rows(past, rows, num_plans), _select_rows(states, rows, None)]
        )
        ax, ay = joined.acceleration[..., 0], joined.acceleration[..., 1]
        result[rows] = _six_checks(
            joined.heading,
            torch.hypot(ax, ay),
            _center_lon_accel(joined, vehicle.rear_axle_to_center),
            ay,
            accel_window=ACCEL_WINDOW,
            jerk_window=JERK_WINDOW,
        )
    return result


def _select_rows(states: EgoStates, rows: Tensor, num_plans: int | None) -> EgoStates:
    """Scenes `rows` of (B, T) or (B, P, T) states; with `num_plans`, (B, T) is broadcast to (b, P, T)."""
    selected = {}
    for name in states.__dataclass_fields__:
        value = getattr(states, name)[rows]
        if num_plans is not None:
            value = value[:, None].expand(value.shape[0], num_plans, *value.shape[1:])
        selected[name] = value
    return EgoStates(**selected)


# --------------------------------------------------------------------------------------------------
# EC (v2)
# --------------------------------------------------------------------------------------------------


def _ec_features(states: EgoStates) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """`extract_features`: |a| (w8), jerk of |a| (w8 then w15), yaw rate (w5 p2), yaw accel (w5 p2)."""
    magnitude = torch.hypot(states.acceleration[..., 0], states.acceleration[..., 1])
    accel = _smooth(magnitude, ACCEL_WINDOW)
    jerk = _derivative(accel, JERK_WINDOW, 2, 1)
    yaw = phase_unwrap(states.heading)
    # yaw acceleration with poly 2 here (the C/HC check uses poly 3)
    return accel, jerk, _derivative(yaw, YAW_WINDOW, 2, 1), _derivative(yaw, YAW_WINDOW, 2, 2)


def _rms(values: Tensor) -> Tensor:
    return torch.sqrt(torch.mean(values**2, dim=-1))


def extended_comfort(current: EgoStates, previous: EgoStates, interval_s: float) -> Tensor:
    """Extended Comfort EC (v2) between the same planner's simulated states on two frames -> (...,).

    `current` (..., T) is simulated from the frame at t0, `previous` (..., T) from the frame
    `interval_s` earlier (0 < interval_s < 0.55, normally 0.5). With k = round(interval_s / 0.1) the
    overlap current[0 : T-k] is compared with previous[k : T] as if the times matched. EC = 1 iff the
    RMS over time of the feature differences is <= 0.7 m/s^2 (|a|), 0.5 m/s^3 (jerk), 0.1 rad/s
    (yaw rate) and 0.1 rad/s^2 (yaw acceleration).
    """
    if not (isinstance(interval_s, (int, float)) and math.isfinite(interval_s)):
        raise ValueError(f"interval_s={interval_s!r}: must be a finite number [s]")
    if not 0 < interval_s < EC_MAX_INTERVAL_S:
        raise ValueError(f"interval_s={interval_s!r}: must be in (0, {EC_MAX_INTERVAL_S}) s (NAVSIM asserts it)")
    overlap_shift = round(interval_s / STEP_S)
    if overlap_shift < 1:
        # NAVSIM would slice current[:-0] (empty) and fail; reject instead
        raise ValueError(f"interval_s={interval_s!r}: shorter than half a step ({STEP_S / 2} s), no overlap shift")
    _check_states(current, "current", min_steps=overlap_shift + 4)
    _check_states(previous, "previous", min_steps=overlap_shift + 4)
    if current.pose.shape != previous.pose.shape:
        raise ValueError(
            f"previous.pose.shape={tuple(previous.pose.shape)!r}: must equal current {tuple(current.pose.shape)}"
        )
    current_features = _ec_features(current.index(slice(None, -overlap_shift)))
    previous_features = _ec_features(previous.index(slice(overlap_shift, None)))
    limits = (EC_MAX_RMS_ACCEL, EC_MAX_RMS_JERK, EC_MAX_RMS_YAW_RATE, EC_MAX_RMS_YAW_ACCEL)
    ok = torch.ones_like(current.heading[..., 0], dtype=torch.bool)
    for now, before, limit in zip(current_features, previous_features, limits):
        ok = ok & (_rms(now - before) <= limit)
    return ok.to(torch.float64)
