"""comfort.py: C (v1), History Comfort (v2) and Extended Comfort (v2) on hand-built state sequences."""

import math

import pytest
import torch

from envs.metrics.comfort import (
    PastStates,
    comfort_v1,
    extended_comfort,
    history_comfort,
    history_states,
    phase_unwrap,
)
from envs.sim.dynamics import EgoStates, principal_angle
from envs.sim.vehicle import PACIFICA, VehicleParams

T = 41
TIME = torch.arange(T, dtype=torch.float64) * 0.1


def states(heading, ax=0.0, ay=0.0, yaw_rate=0.0, yaw_accel=0.0, speed=10.0, steps=T) -> EgoStates:
    """(T,) states from per-step signals (scalars broadcast); x advances at `speed`, y = 0."""
    like = torch.zeros(steps, dtype=torch.float64)
    full = lambda v: (torch.as_tensor(v, dtype=torch.float64) + like).clone()  # noqa: E731
    t = torch.arange(steps, dtype=torch.float64) * 0.1
    pose = torch.stack([speed * t, like, full(heading)], dim=-1)
    return EgoStates(
        pose=pose,
        velocity=torch.stack([full(speed), like], dim=-1),
        acceleration=torch.stack([full(ax), full(ay)], dim=-1),
        steering_angle=like.clone(),
        steering_rate=like.clone(),
        yaw_rate=full(yaw_rate),
        yaw_accel=full(yaw_accel),
    )


def batch(*items: EgoStates, plans: bool = True) -> EgoStates:
    """Stack (T,) states to (B, 1, T) (plans) or (B, T)."""
    out = {}
    for name in EgoStates.__dataclass_fields__:
        value = torch.stack([getattr(s, name) for s in items])
        out[name] = value[:, None] if plans else value
    return EgoStates(**out)


# ---------------------------------------------------------------------------------------------- C v1


def test_constant_speed_straight_is_comfortable():
    assert comfort_v1(states(0.0)).item() == 1.0


def test_swerve_is_uncomfortable():
    # heading +-0.3 rad at 1 Hz: peak yaw rate 0.3 * 2 pi = 1.88 rad/s > 0.95
    assert comfort_v1(states(0.3 * torch.sin(2 * math.pi * TIME))).item() == 0.0


@pytest.mark.parametrize("yaw_rate, expected", [(0.9, 1.0), (1.0, 0.0)])
def test_yaw_rate_bound_0_95_with_wrapped_heading(yaw_rate, expected):
    # constant turn for 4 s (> pi rad), heading wrapped to [-pi, pi): the yaw acceleration is 0, so
    # only the yaw-rate check (|rate| < 0.95 rad/s) decides, after NAVSIM's phase unwrap
    heading = principal_angle(yaw_rate * TIME)
    assert heading.min() < -3.0  # it really wraps
    assert comfort_v1(states(heading)).item() == expected


@pytest.mark.parametrize("ax, expected", [(-5.0, 0.0), (-4.1, 0.0), (-4.0, 1.0), (2.3, 1.0), (2.5, 0.0)])
def test_longitudinal_acceleration_bounds(ax, expected):
    # harsh braking at -5 m/s^2 fails; the open interval is (-4.05, 2.40)
    assert comfort_v1(states(0.0, ax=ax)).item() == expected


@pytest.mark.parametrize("ay, expected", [(4.8, 1.0), (-4.95, 0.0)])
def test_lateral_acceleration_bound(ay, expected):
    assert comfort_v1(states(0.0, ay=ay)).item() == expected


@pytest.mark.parametrize("curvature, expected", [(1.45, 0.0), (1.0, 1.0)])
def test_longitudinal_jerk_bound_on_a_parabola(curvature, expected):
    # ax = c (t - 2)^2 - 3.5 stays inside (-4.05, 2.40) (edges 4c - 3.5 <= 2.3); a poly-2 fit
    # reproduces it exactly, so the jerk is 2c (t - 2), 4c at the edges: 5.8 > 4.13 fails, 4.0 passes
    ax = curvature * (TIME - 2.0) ** 2 - 3.5
    assert comfort_v1(states(0.0, ax=ax)).item() == expected


def test_whole_horizon_fit_overshoots_a_braking_step():
    # v1 smooths accelerations with one quadratic over all 41 steps: a step 0 -> -4 m/s^2 at 2 s is
    # fitted with an overshoot to about -4.86 m/s^2 at 4 s, below -4.05 (a NAVSIM v1 quirk)
    step = torch.where(TIME < 2.0, 0.0, -4.0)
    assert comfort_v1(states(0.0, ax=step)).item() == 0.0
    assert comfort_v1(states(0.0, ax=torch.full_like(TIME, -4.0))).item() == 1.0


def test_batched_shapes():
    good, bad = states(0.0), states(0.0, ax=-5.0)
    out = comfort_v1(batch(good, bad))
    assert out.shape == (2, 1) and out.dtype == torch.float64
    assert out[:, 0].tolist() == [1.0, 0.0]


def test_phase_unwrap_matches_navsim_definition():
    heading = torch.tensor([3.0, -3.1, 3.1, -3.0], dtype=torch.float64)
    unwrapped = phase_unwrap(heading)
    torch.testing.assert_close(unwrapped, torch.tensor([3.0, 2 * math.pi - 3.1, 3.1, 2 * math.pi - 3.0],
                                                       dtype=torch.float64))


# ---------------------------------------------------------------------------------------------- HC


def logged_history(ax=0.0, heading=(0.0, 0.0, 0.0, 0.0), t=(-1.5, -1.0, -0.5, 0.0), speed=10.0):
    """(1, 4) logged rear-axle history driving along x at `speed`."""
    t = torch.tensor([t], dtype=torch.float64)
    pose = torch.stack([speed * t, torch.zeros_like(t), torch.tensor([heading], dtype=torch.float64)], dim=-1)
    velocity = torch.stack([torch.full_like(t, speed), torch.zeros_like(t)], dim=-1)
    acceleration = torch.stack([torch.full_like(t, ax), torch.zeros_like(t)], dim=-1)
    return t, pose, velocity, acceleration


def test_history_states_exact_times_give_14_samples():
    t, pose, velocity, acceleration = logged_history()
    acceleration[0, :, 0] = torch.tensor([0.0, 1.0, 2.0, 3.0])  # ax rises 2 m/s^2 per second
    past = history_states(t, pose, velocity, acceleration)
    assert isinstance(past, PastStates) and past.count.tolist() == [14]
    expected_t = torch.arange(-15, -1, dtype=torch.float64) * 0.1  # -1.5 .. -0.2 s, last sample dropped
    torch.testing.assert_close(past.states.pose[0, :, 0], 10.0 * expected_t)
    torch.testing.assert_close(past.states.acceleration[0, :, 0], 2.0 * (expected_t + 1.5))
    for name in ("steering_angle", "steering_rate", "yaw_rate", "yaw_accel"):
        assert torch.all(getattr(past.states, name) == 0), name


def test_history_states_slightly_longer_span_gives_15_samples():
    # nuPlan's integer-us arange: 1.500012 s of log -> 16 samples, 15 after dropping the last
    past = history_states(*logged_history(t=(-1.500012, -1.0, -0.5, 0.0)))
    assert past.count.tolist() == [15]
    torch.testing.assert_close(past.states.pose[0, -1, 0], torch.tensor(10.0 * -0.100012, dtype=torch.float64))


def test_history_heading_interpolates_across_the_wrap():
    past = history_states(*logged_history(heading=(3.0, -3.0, -3.0, -3.0)))
    # -1.5 -> -1.0 s turns +0.283 rad through +-pi (unwrapped 3.0 -> 3.283); at -1.4 s: 3.0566
    first_two = past.states.heading[0, :2]
    torch.testing.assert_close(first_two[0], torch.tensor(3.0, dtype=torch.float64))
    expected = (3.0 + 0.2 * (2 * math.pi - 6.0) + math.pi) % (2 * math.pi) - math.pi
    torch.testing.assert_close(first_two[1], torch.tensor(expected, dtype=torch.float64))


def test_history_comfort_none_is_one():
    out = history_comfort(batch(states(0.0, ax=-9.0)), None, PACIFICA)
    assert out.tolist() == [[1.0]]


def test_history_consistent_with_plan_is_comfortable():
    past = history_states(*logged_history(ax=-1.0))
    assert history_comfort(batch(states(0.0, ax=-1.0)), past, PACIFICA).tolist() == [[1.0]]


def test_history_acceleration_jump_is_uncomfortable():
    # the plan alone is comfortable (C = 1), but the logged +2 m/s^2 followed by -3.5 m/s^2 is a jerk
    # of about 5.5 m/s^3 across the join (> 4.13)
    plan = states(0.0, ax=-3.5)
    assert comfort_v1(plan).item() == 1.0
    past = history_states(*logged_history(ax=2.0))
    assert history_comfort(batch(plan), past, PACIFICA).tolist() == [[0.0]]


@pytest.mark.parametrize(
    "yaw_rate, yaw_accel, expected",
    [
        (0.0, 1.0, 1.0),  # centre ax = 1.461 * 1.0 = 1.461 < 2.40
        (0.0, 2.0, 0.0),  # 2.922 > 2.40
        (1.2, 0.0, 1.0),  # 1.461 * 1.44 = 2.104
        (1.3, 0.0, 0.0),  # 1.461 * 1.69 = 2.469
    ],
)
def test_history_comfort_uses_centre_longitudinal_acceleration(yaw_rate, yaw_accel, expected):
    # rear-axle ax = 0 and a constant heading: only a_centre = a + d (w^2 + alpha) can fail
    plan = states(0.0, yaw_rate=yaw_rate, yaw_accel=yaw_accel)
    assert comfort_v1(plan).item() == 1.0
    past = history_states(*logged_history())
    assert history_comfort(batch(plan), past, PACIFICA).tolist() == [[expected]]


def test_history_comfort_centre_offset_follows_the_vehicle():
    plan = states(0.0, yaw_accel=1.0)
    long_car = VehicleParams(length=8.0, rear_axle_to_center=2.5)  # 2.5 * 1.0 > 2.40
    past = history_states(*logged_history())
    assert history_comfort(batch(plan), past, long_car).tolist() == [[0.0]]


def test_history_comfort_mixed_history_lengths_in_one_batch():
    a = logged_history(ax=-1.0)  # 14 past states
    b = logged_history(ax=2.0, t=(-1.500012, -1.0, -0.5, 0.0))  # 15 past states, jerky vs the plan
    past = history_states(*(torch.cat([x, y]) for x, y in zip(a, b)))
    assert past.count.tolist() == [14, 15]
    assert past.states.num_steps == 15
    plans = batch(states(0.0, ax=-1.0), states(0.0, ax=-3.5))
    out = history_comfort(
        EgoStates(**{n: torch.cat([getattr(plans, n)] * 2, dim=1) for n in EgoStates.__dataclass_fields__}),
        past,
        PACIFICA,
    )
    assert out.tolist() == [[1.0, 1.0], [0.0, 0.0]]


def test_history_states_rejects_bad_input():
    t, pose, velocity, acceleration = logged_history()
    with pytest.raises(ValueError, match="strictly increasing"):
        history_states(t.flip(-1), pose, velocity, acceleration)
    with pytest.raises(ValueError, match="history.pose.shape"):
        history_states(t, pose[..., :2], velocity, acceleration)
    bad = acceleration.clone()
    bad[0, 1, 0] = float("nan")
    with pytest.raises(ValueError, match="must be finite"):
        history_states(t, pose, velocity, bad)


# ---------------------------------------------------------------------------------------------- EC


def motion(times: torch.Tensor, heading_fn, ax_fn) -> EgoStates:
    n = times.shape[0]
    zeros = torch.zeros(n, dtype=torch.float64)
    return EgoStates(
        pose=torch.stack([10.0 * times, zeros, heading_fn(times)], dim=-1),
        velocity=torch.stack([torch.full_like(times, 10.0), zeros], dim=-1),
        acceleration=torch.stack([ax_fn(times), zeros], dim=-1),
        steering_angle=zeros, steering_rate=zeros, yaw_rate=zeros, yaw_accel=zeros,
    )


def weave(t):
    return 1.0 * torch.sin(1.5 * t)


def surge(t):
    return 1.5 * torch.sin(2.0 * t)


@pytest.mark.parametrize("interval_s, shift", [(0.5, 5), (0.3, 3)])
def test_identical_overlapping_frames_are_comfortable(interval_s, shift):
    # previous frame starts `interval_s` earlier; the overlap is the very same motion
    steps = torch.arange(T, dtype=torch.float64)
    current = motion(steps * 0.1, weave, surge)
    previous = motion((steps - shift) * 0.1, weave, surge)
    assert extended_comfort(current, previous, interval_s).item() == 1.0


def test_misaligned_overlap_is_uncomfortable():
    # the same pair judged with the wrong gap (0.5 s instead of 0.3 s): 0.2 s of yaw-rate lag,
    # about 2.25 rad/s^2 * 0.2 s = 0.45 rad/s RMS-scale difference > 0.1
    steps = torch.arange(T, dtype=torch.float64)
    current = motion(steps * 0.1, weave, surge)
    previous = motion((steps - 3) * 0.1, weave, surge)
    assert extended_comfort(current, previous, 0.5).item() == 0.0


def test_different_yaw_is_uncomfortable():
    straight = motion(TIME, lambda t: torch.zeros_like(t), lambda t: torch.zeros_like(t))
    turning = motion(TIME, lambda t: 0.3 * t, lambda t: torch.zeros_like(t))  # yaw rate 0.3 vs 0: RMS 0.3
    assert extended_comfort(turning, straight, 0.5).item() == 0.0


@pytest.mark.parametrize("accel, expected", [(0.6, 1.0), (0.8, 0.0)])
def test_acceleration_rms_threshold(accel, expected):
    # constant |a| difference -> RMS = |difference|; pass iff <= 0.7 m/s^2
    calm = motion(TIME, lambda t: torch.zeros_like(t), lambda t: torch.zeros_like(t))
    pushing = motion(TIME, lambda t: torch.zeros_like(t), lambda t: torch.full_like(t, accel))
    assert extended_comfort(pushing, calm, 0.5).item() == expected


def test_extended_comfort_batched():
    calm = motion(TIME, lambda t: torch.zeros_like(t), lambda t: torch.zeros_like(t))
    pushing = motion(TIME, lambda t: torch.zeros_like(t), lambda t: torch.full_like(t, 0.8))
    current = batch(calm, pushing)
    previous = batch(calm, calm)
    assert extended_comfort(current, previous, 0.5).tolist() == [[1.0], [0.0]]


@pytest.mark.parametrize("interval_s", [0.0, 0.55, 0.6, -0.5, 0.04, float("nan")])
def test_extended_comfort_rejects_bad_interval(interval_s):
    calm = motion(TIME, lambda t: torch.zeros_like(t), lambda t: torch.zeros_like(t))
    with pytest.raises(ValueError, match="interval_s"):
        extended_comfort(calm, calm, interval_s)


def test_extended_comfort_rejects_shape_mismatch():
    calm = motion(TIME, lambda t: torch.zeros_like(t), lambda t: torch.zeros_like(t))
    short = motion(TIME[:30], lambda t: torch.zeros_like(t), lambda t: torch.zeros_like(t))
    with pytest.raises(ValueError, match="previous.pose.shape"):
        extended_comfort(calm, short, 0.5)
