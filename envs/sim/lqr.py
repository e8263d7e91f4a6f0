"""NAVSIM's batched LQR trajectory tracker driving the kinematic bicycle (pseudo-simulation of a plan).

Reproduces `PDMSimulator.simulate_proposals` + `BatchLQRTracker` + `batch_lqr_utils` (navsim
`pdm_planner/simulation/`), a batch port of nuPlan's `LQRTracker`, in batched torch float64.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
from torch import Tensor

from envs.sim.dynamics import EgoStates, normalize_angle, principal_angle
from envs.sim.vehicle import PACIFICA, VehicleParams


@dataclass(frozen=True)
class LQRParams:
    """Tracker settings; defaults are `BatchLQRTracker.__init__` and `batch_lqr_utils` constants."""

    q_longitudinal: float = 10.0
    """Weight on the velocity error at the lookahead."""
    r_longitudinal: float = 1.0
    """Weight on the acceleration input."""
    q_lateral: tuple[float, float, float] = (1.0, 10.0, 0.0)
    """Diagonal weights on (lateral error, heading error, steering angle) at the lookahead."""
    r_lateral: float = 1.0
    """Weight on the steering-rate input."""
    dt: float = 0.1
    """[s] Discretisation of the reference poses and of the simulation (`interval_length`)."""
    tracking_horizon: int = 10
    """Lookahead in steps for both LQR sub-problems (> 1, else steering rate has no effect)."""
    jerk_penalty: float = 1e-4
    """Regularisation weight of the velocity-profile fit (named for jerk; see `_difference_matrix`)."""
    curvature_rate_penalty: float = 1e-2
    """Regularisation on curvature rate in the curvature-profile fit."""
    initial_curvature_penalty: float = 1e-10
    """Small weight on the initial curvature so the fit stays well posed at zero speed
    (`INITIAL_CURVATURE_PENALTY`)."""
    stopping_proportional_gain: float = 0.5
    """P gain of the stopping controller [1/s]."""
    stopping_velocity: float = 0.2
    """[m/s] Below this (both ego and reference speed) the stopping controller replaces LQR."""

    def __post_init__(self):
        positive = (
            "r_longitudinal",
            "r_lateral",
            "dt",
            "jerk_penalty",
            "curvature_rate_penalty",
            "initial_curvature_penalty",
            "stopping_proportional_gain",
            "stopping_velocity",
        )
        for name in positive:
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"lqr.{name}={value!r}: must be a positive finite number")
        if not (math.isfinite(self.q_longitudinal) and self.q_longitudinal >= 0):
            raise ValueError(f"lqr.q_longitudinal={self.q_longitudinal!r}: must be finite and >= 0")
        if len(self.q_lateral) != 3 or not all(math.isfinite(q) and q >= 0 for q in self.q_lateral):
            raise ValueError(
                f"lqr.q_lateral={self.q_lateral!r}: must be 3 finite weights >= 0 "
                "(lateral error, heading error, steering angle)"
            )
        if not (isinstance(self.tracking_horizon, int) and self.tracking_horizon > 1):
            raise ValueError(f"lqr.tracking_horizon={self.tracking_horizon!r}: must be an integer > 1")

    @property
    def simulation_dt(self) -> float:
        """[s] Step the bicycle model integrates over: NAVSIM passes nuPlan's `TimePoint.time_s` of the
        step, `time_us * 1e-6`, which for 0.1 s is 0.09999999999999999 (not 0.1)."""
        return int(self.dt * 1_000_000) * 1e-6


def lqr_track(
    reference: Tensor,
    initial: EgoStates,
    vehicle: VehicleParams = PACIFICA,
    params: LQRParams = LQRParams(),
) -> EgoStates:
    """Simulate the ego tracking reference poses: state 0 = `initial`, then N-1 LQR + bicycle steps.

    reference: (..., N, 3) global rear-axle poses at 0, dt, ..., (N-1)·dt (N >= 2), e.g. from
    `trajectory.plan_to_reference`. initial: EgoStates (..., 1), leading dims broadcast with the
    reference's. Returns EgoStates (..., N). Only the reference poses are used, as in NAVSIM.
    """
    reference = _check_reference(reference)
    if not isinstance(initial, EgoStates) or initial.num_steps != 1:
        raise ValueError(f"initial={type(initial).__name__}: expected EgoStates with T = 1")
    try:
        batch = torch.broadcast_shapes(reference.shape[:-2], initial.batch_shape)
    except RuntimeError:
        raise ValueError(
            f"initial.batch_shape={tuple(initial.batch_shape)!r}: does not broadcast with "
            f"reference.shape={tuple(reference.shape)!r}"
        ) from None
    num_poses = reference.shape[-2]
    # one flat batch dim, so a plan alone and in a batch go through the same kernels
    reference = reference.expand(batch + reference.shape[-2:]).reshape(-1, num_poses, 3)
    state = EgoStates(
        **{
            name: value.to(device=reference.device, dtype=torch.float64)
            .expand(batch + value.shape[len(initial.batch_shape) :])
            .reshape((-1,) + value.shape[len(initial.batch_shape) :])
            for name, value in vars(initial).items()
        }
    )

    velocity_profile, curvature_profile = fit_velocity_curvature_profiles(reference, params)
    targets = _TrackingTargets.build(reference, velocity_profile, curvature_profile, params)
    simulated = _rollout(state, targets, vehicle, params, num_poses)
    return EgoStates(
        **{name: value.reshape(batch + value.shape[1:]) for name, value in vars(simulated).items()}
    )


def _rollout(initial: EgoStates, targets: _TrackingTargets, vehicle: VehicleParams, params: LQRParams,
             num_poses: int) -> EgoStates:
    """Track for N-1 steps from `initial` (n, 1) -> EgoStates (n, N).

    Each step is `_tracker_commands` and then `dynamics.bicycle_step`, done here on the bare per-plan
    columns (n,) rather than on an EgoStates per step: the same floating-point operations in the same
    order on tensors of the same layout (the heading stays a column of an (n, 3) pose, so cos / sin take
    the same kernel path), hence bit-identical states, with fewer tensor ops and no per-step EgoStates. The
    step's targets are split once (`_TrackingTargets.rows`), the lookahead sums go to a `_Workspace`, and
    tan(steer) and vx·tan(steer)/L are shared by a step's yaw rate and the next step's heading update; x and y
    advance as one (n, 2) pair (elementwise products and sums round per element, whatever the layout).
    """
    dt = params.simulation_dt
    accel_lag = dt / (dt + vehicle.accel_time_constant)
    steer_lag = dt / (dt + vehicle.steering_time_constant)
    pose = initial.pose[:, 0]
    vx, accel = initial.velocity[:, 0, 0], initial.acceleration[:, 0, 0]
    steer, yaw_rate = initial.steering_angle[:, 0], initial.yaw_rate[:, 0]
    poses, speeds, accels, steers, rates, yaw_rates, yaw_accels = [], [], [], [], [], [], []
    rows = targets.rows()
    work = _Workspace(pose.shape[0], params.tracking_horizon, pose.dtype, pose.device)
    tan_steer = torch.tan(steer)
    turn_rate = vx * tan_steer / vehicle.wheel_base   # of the old state; later the yaw rate of the step before
    for k in range(num_poses - 1):
        heading = pose[:, 2]
        accel_cmd, steering_rate_cmd = _tracker_commands(k, pose, vx, steer, rows[k], vehicle, params, work)
        # --- `bicycle_step`: actuator lags, then forward Euler with the OLD speed and steering angle ---
        ideal_steer = dt * steering_rate_cmd + steer
        accel = accel_lag * (accel_cmd - accel) + accel
        lagged_steer = steer_lag * (ideal_steer - steer) + steer
        steer_rate = (lagged_steer - steer) / dt
        # x and y advance together: the same products and sums per element as one coordinate at a time
        new_xy = pose[:, :2] + vx[:, None] * torch.stack([torch.cos(heading), torch.sin(heading)], dim=-1) * dt
        new_heading = principal_angle(heading + turn_rate * dt)
        vx = vx + accel * dt
        steer = torch.clamp(steer + steer_rate * dt, -vehicle.max_steering_angle, vehicle.max_steering_angle)
        tan_steer = torch.tan(steer)   # also the next step's (same tensor, same kernel: same bits)
        new_yaw_rate = vx * tan_steer / vehicle.wheel_base
        yaw_accels.append((new_yaw_rate - yaw_rate) / dt)
        yaw_rate = turn_rate = new_yaw_rate   # vx * tan(steer) / L of the next step's old state
        pose = torch.cat([new_xy, new_heading[:, None]], dim=-1)
        poses.append(pose)
        speeds.append(vx)
        accels.append(accel)
        steers.append(steer)
        rates.append(steer_rate)
        yaw_rates.append(yaw_rate)
    zeros = torch.zeros(initial.pose.shape[0], num_poses - 1, dtype=initial.pose.dtype, device=initial.pose.device)
    stepped = EgoStates(
        pose=torch.stack(poses, dim=1),
        velocity=torch.stack([torch.stack(speeds, dim=1), zeros], dim=-1),
        acceleration=torch.stack([torch.stack(accels, dim=1), zeros], dim=-1),
        steering_angle=torch.stack(steers, dim=1),
        steering_rate=torch.stack(rates, dim=1),
        yaw_rate=torch.stack(yaw_rates, dim=1),
        yaw_accel=torch.stack(yaw_accels, dim=1),
    )
    return EgoStates.cat([initial, stepped])


def _check_reference(reference: Tensor) -> Tensor:
    if not isinstance(reference, Tensor):
        raise ValueError(f"reference={reference!r}: expected a torch.Tensor of shape (..., N, 3)")
    if reference.ndim < 2 or reference.shape[-1] != 3 or reference.shape[-2] < 2:
        raise ValueError(f"reference.shape={tuple(reference.shape)!r}: expected (..., N, 3) with N >= 2")
    reference = reference.to(torch.float64)
    bad = ~torch.isfinite(reference)
    if bad.any():
        first = tuple(int(i) for i in bad.nonzero()[0])
        raise ValueError(f"reference[{first}]={reference[first].item()!r}: must be finite")
    return reference


def fit_velocity_curvature_profiles(reference: Tensor, params: LQRParams) -> tuple[Tensor, Tensor]:
    """Regularised least-squares speed and curvature profiles of a pose sequence.

    reference (..., N, 3) -> velocity (..., N-1) [m/s] and curvature (..., N-1) [1/m], one per
    displacement. `get_velocity_curvature_profiles_with_derivatives_from_poses`: unknowns are
    (v0, a_0..a_{N-3}) with NAVSIM's "jerk" penalty (see `_difference_matrix`), then
    (kappa0, kappa_rate_0..) with a curvature-rate penalty, each solved as pinv(AᵀA + penalty)·Aᵀ·y.
    Poses must be finite (`lqr_track` checks them).
    """
    batch = reference.shape[:-2]
    reference = reference.reshape(-1, *reference.shape[-2:])  # same kernels for any batch shape
    # A plan's profiles do not depend on its batch (every step is per plan), so plans are fitted a few
    # dozen at a time: the (plans, 2M, M) design matrices then stay in cache.
    parts = [_fit_profiles(part, params) for part in reference.split(_FIT_CHUNK)]
    velocity = torch.cat([v for v, _ in parts]) if len(parts) != 1 else parts[0][0]
    curvature = torch.cat([c for _, c in parts]) if len(parts) != 1 else parts[0][1]
    return velocity.reshape(batch + velocity.shape[-1:]), curvature.reshape(batch + curvature.shape[-1:])


_FIT_CHUNK = 64
"""Plans per least-squares batch in `fit_velocity_curvature_profiles` (cache-sized; results do not depend on it)."""


@functools.lru_cache(maxsize=16)
def _fit_constants(num_disp: int, dtype: torch.dtype, device: torch.device, params: LQRParams):
    """Parts of both fits that depend only on M = N-1 and the parameters: the lower-triangular column mask
    (M, M) and its copy for the interleaved x / y rows (M, 2, M), the column scales (dt, dt², dt², ...)
    (M,), the jerk penalty (M, M) and the curvature regulariser (M, M)."""
    dt = params.dt
    lower = torch.ones(num_disp, num_disp, dtype=torch.bool, device=device).tril()  # j <= i
    lower_xy = lower[:, None, :].expand(num_disp, 2, num_disp).contiguous()  # rows (i, x / y), column j
    scale = torch.full((num_disp,), dt**2, dtype=dtype, device=device)
    scale[0] = dt
    jerk = _difference_matrix(num_disp, dtype, device)  # (M-2, M), zero column for v0
    jerk_penalty = params.jerk_penalty * (jerk.mT @ jerk)
    regulariser = torch.full((num_disp,), params.curvature_rate_penalty, dtype=dtype, device=device)
    regulariser[0] = params.initial_curvature_penalty
    return lower, lower_xy, scale, jerk_penalty, torch.diag(regulariser)


def _fit_profiles(reference: Tensor, params: LQRParams) -> tuple[Tensor, Tensor]:
    """`fit_velocity_curvature_profiles` of reference (n, N, 3) -> velocity, curvature (n, N-1)."""
    dt = params.dt
    displacements = reference[..., 1:, :] - reference[..., :-1, :]  # (..., M, 3), M = N-1
    num_disp = displacements.shape[-2]
    lower, lower_xy, scale, jerk_penalty, curvature_penalty = _fit_constants(
        num_disp, reference.dtype, reference.device, params
    )

    # --- velocity / acceleration fit: displacement i = (v0·dt + dt²·sum_{j<i} a_j)·(cos, sin)(θ_i) ---
    headings = reference[..., :-1, 2]
    direction = torch.stack([torch.cos(headings), torch.sin(headings)], dim=-1)  # (..., M, 2)
    # column 0 multiplies v0 (scale dt), column j >= 1 multiplies a_{j-1} (scale dt²) and is active for rows i >= j
    columns = torch.where(lower_xy, direction[..., None] * scale, 0.0)  # (..., M, 2, M)
    design = columns.reshape(*columns.shape[:-3], 2 * num_disp, num_disp)  # rows dx_0, dy_0, dx_1...
    observed = displacements[..., :2].reshape(*displacements.shape[:-2], 2 * num_disp)
    normal = design.mT @ design + jerk_penalty
    solution = _solve(normal, design, observed)
    initial_velocity, accelerations = solution[..., 0], solution[..., 1:]
    velocity = _integrate(initial_velocity, accelerations, dt)  # (..., M)

    # --- curvature / curvature-rate fit: heading change i = v_i·dt·(kappa0 + dt·sum_{j<i} kdot_j) ---
    heading_changes = normalize_angle(displacements[..., 2])
    # column 0 multiplies kappa0 (v_i·dt), column j >= 1 multiplies kdot_{j-1} (v_i·dt²), active for rows i >= j
    design = torch.where(lower, velocity[..., :, None] * scale, 0.0)
    normal = design.mT @ design + curvature_penalty
    solution = _solve(normal, design, heading_changes)
    curvature = _integrate(solution[..., 0], solution[..., 1:], dt)
    return velocity, curvature


def _difference_matrix(num_disp: int, dtype, device) -> Tensor:
    """The "jerk" regulariser R (M-2, M) exactly as nuPlan/NAVSIM build it.

    `_make_banded_difference_matrix` writes +eye into columns 1.. and then -eye into columns ..-1,
    and the second write overwrites the first where they overlap. What survives is -1 at (r, r+1)
    for every row and a single +1 at the last row's last column, so with x = (v0, a_0, ..., a_{M-2})
    the penalty is sum_{r < M-3} a_r² + (a_{M-2} - a_{M-3})²: a ridge on the accelerations, not
    on their differences. Column 0 (v0) is zero. NAVSIM crashes for M = 1; no rows are used there.
    """
    rows = max(num_disp - 2, 0)
    matrix = torch.zeros(rows, num_disp, dtype=dtype, device=device)
    index = torch.arange(rows, device=device)
    matrix[index, index + 1] = -1.0
    if rows > 0:
        matrix[rows - 1, rows + 1] = 1.0
    return matrix


def _solve(normal: Tensor, design: Tensor, observed: Tensor) -> Tensor:
    """x = (pinv(normal) @ designᵀ) @ observed, NAVSIM's regularised least squares.

    `normal` is symmetric positive definite for every input (the penalties make it so), where the
    pseudo-inverse is the inverse; it is formed from a Cholesky factor because batched CPU SVD is two
    orders of magnitude slower. Agreement with numpy's SVD pinv is ~1e-12 m/s in the profiles. The
    final product is an elementwise sum so that a plan's result does not depend on its batch.
    """
    factor, info = torch.linalg.cholesky_ex(normal)
    inverse = torch.cholesky_inverse(factor)
    failed = info != 0
    if failed.any():  # defensive: only reachable for non-finite or absurdly scaled poses
        inverse[failed] = torch.linalg.pinv(normal[failed], rtol=1e-15)  # numpy's rcond
    intermediate = inverse @ design.mT
    return (intermediate * observed[..., None, :]).sum(-1)


def _integrate(initial: Tensor, derivatives: Tensor, dt: float) -> Tensor:
    """[x0, x0 + d0·dt, x0 + (d0·dt + d1·dt), ...], as NAVSIM's
    `_generate_profile_from_initial_condition_and_derivatives`."""
    steps = torch.cumsum(derivatives * dt, dim=-1)
    return initial[..., None] + torch.nn.functional.pad(steps, (1, 0))


class _StepTargets(NamedTuple):
    """The rows (n,) of `_TrackingTargets` that step k reads."""

    xy: Tensor                # (n, 2)
    heading: Tensor
    frenet: Tensor            # (n, 2): -sin, cos of the heading
    speed: Tensor
    slow: Tensor
    minus_curvature: Tensor   # (n, H)


@dataclass(frozen=True)
class _TrackingTargets:
    """What the tracker reads at each step k, gathered once, step-major so that a step is one contiguous row."""

    xy: Tensor = field(metadata={"dims": "N n 2"})       # [m] reference position
    heading: Tensor = field(metadata={"dims": "N n"})    # [rad]
    frenet: Tensor = field(metadata={"dims": "N n 2"})   # -sin, cos of the heading (negating a factor is exact)
    speed: Tensor = field(metadata={"dims": "N-1 n"})    # [m/s] velocity profile at the lookahead min(k + H, last)
    slow: Tensor = field(metadata={"dims": "N-1 n"})     # bool: speed <= the stopping velocity
    minus_curvature: Tensor = field(metadata={"dims": "N-1 n H"})  # [1/m] -profile over the lookahead, padded

    @classmethod
    def build(cls, reference: Tensor, velocity_profile: Tensor, curvature_profile: Tensor,
              params: LQRParams) -> _TrackingTargets:
        """From reference (n, N, 3) and profiles (n, N-1)."""
        horizon, last = params.tracking_horizon, velocity_profile.shape[-1] - 1
        steps = torch.arange(velocity_profile.shape[-1], device=reference.device)
        lookahead = torch.clamp(steps + horizon, max=last)
        window = torch.clamp(steps[:, None] + torch.arange(horizon, device=reference.device), max=last)  # (N-1, H)
        x, y, heading = reference.permute(2, 1, 0).contiguous()
        speed = velocity_profile[:, lookahead].T.contiguous()
        return cls(torch.stack([x, y], dim=-1), heading, torch.stack([-torch.sin(heading), torch.cos(heading)], dim=-1),
                   speed, speed <= params.stopping_velocity,
                   -curvature_profile[:, window].permute(1, 0, 2).contiguous())

    def rows(self) -> list[_StepTargets]:
        """The targets of every step k < N-1, split once (a few ops instead of eight per step)."""
        steps = self.speed.shape[0]
        columns = [value.unbind(0) for value in (self.xy, self.heading, self.frenet, self.speed, self.slow,
                                                  self.minus_curvature)]
        return [_StepTargets(*(column[k] for column in columns)) for k in range(steps)]


class _Workspace:
    """Scratch tensors of the tracker's lookahead sums, written in place (`out=`) at every step of a rollout.

    A running sum x_0, x_0 + x_1, ... is taken as the cumsum of (0, x_0, x_1, ...): column 0 is then the sum
    before step 0 and column j + 1 the sum up to step j, so one cumsum gives the sums before each step and the
    total, with the same additions in the same order (0 + x is x, up to the sign of a zero). Buffers and their
    views are made once, so a step only computes. Views read from it are overwritten by the next step.
    """

    def __init__(self, n: int, horizon: int, dtype: torch.dtype, device: torch.device):
        def zeros(*shape):
            return torch.zeros(*shape, dtype=dtype, device=device)

        self.increments = zeros(n, horizon)       # 0, then the lqr speed increment a·dt over the lookahead
        self.speed_steps = torch.empty_like(self.increments)
        self.speeds = torch.empty_like(self.increments)
        self.terms = zeros(3, n, horizon + 1)     # 0, then b_j, a_j, c_j of `_lateral_lqr`
        self.sums = torch.empty_like(self.terms)
        self.products = zeros(3, n, horizon + 1)  # 0, then a_j·r_before_j, b_j·B2_before_j, a_j·g1_before_j
        self.product_sums = torch.empty_like(self.products)
        self.last = zeros(n, horizon + 1)         # 0, then a_j·B1_before_j
        self.last_sums = torch.empty_like(self.last)
        self.increment_tail = self.increments[:, 1:]
        self.b, self.a, self.c = self.terms[:, :, 1:].unbind(0)
        self.totals = self.sums[:, :, horizon].unbind(0)           # r, p, g1
        self.b1_terms = self.products[1, :, 1:]
        self.r_g1_before, self.q_g0_terms = self.sums[::2, :, :horizon], self.products[::2, :, 1:]   # rows 0, 2
        self.b1_before = self.product_sums[1, :, :horizon]
        self.product_totals = self.product_sums[:, :, horizon].unbind(0)  # q, b1, g0
        self.last_terms, self.last_total = self.last[:, 1:], self.last_sums[:, horizon]


def _tracker_commands(
    k: int,
    pose: Tensor,
    speed: Tensor,
    steer: Tensor,
    target: _StepTargets,
    vehicle: VehicleParams,
    params: LQRParams,
    work: _Workspace | None = None,
) -> tuple[Tensor, Tensor]:
    """Acceleration [m/s²] and steering-rate [rad/s] commands (n,) at step k (`track_trajectory`).

    pose (n, 3) x, y [m], heading [rad], speed = vx [m/s] (NAVSIM tracks vx, not hypot(vx, vy)), steer [rad]: (n,)
    ego state at step k; `target`: `_TrackingTargets.rows()[k]`; `work`: the rollout's scratch (made here
    if None).
    """
    horizon, dt = params.tracking_horizon, params.dt
    work = work if work is not None else _Workspace(pose.shape[0], horizon, pose.dtype, pose.device)

    # --- errors relative to reference pose k, in the reference's Frenet frame ---
    # x and y together: (x - x_ref)·(-sin) + (y - y_ref)·cos with the same roundings as one at a time
    terms = (pose[:, :2] - target.xy) * target.frenet
    lateral_error = terms[:, 0] + terms[:, 1]
    heading_error = normalize_angle(pose[:, 2] - target.heading)

    # --- stopping P controller (replaces both LQRs when ego and reference are slow; the reference
    # speed is the profile at the lookahead) ---
    is_stopping = target.slow & (speed <= params.stopping_velocity)
    speed_error = speed - target.speed
    stopping_accel = -params.stopping_proportional_gain * speed_error

    # --- longitudinal LQR: v_N = v_0 + (N·dt)·a, one step, target v_ref ---
    gain_b = horizon * dt
    inverse = -1 / (gain_b * params.q_longitudinal * gain_b + params.r_longitudinal)
    lqr_accel = inverse * gain_b * params.q_longitudinal * speed_error
    accel = torch.where(is_stopping, stopping_accel, lqr_accel)

    # --- lateral LQR over the lookahead (curvature padded with its end), linearised about speeds
    # v + (a·dt + ... + a·dt) (j terms at step j; `_integrate`) ---
    torch.mul(lqr_accel[:, None].expand(work.increment_tail.shape), dt, out=work.increment_tail)
    torch.cumsum(work.increments, dim=-1, out=work.speed_steps)
    torch.add(speed[:, None], work.speed_steps, out=work.speeds)
    # the steering angle is clamped to +-max_steering_angle after step 0: in range, wrapping leaves it as is
    in_range = k > 0 and vehicle.max_steering_angle <= math.pi
    steering_rate = _lateral_lqr(lateral_error, heading_error, steer, work.speeds, target.minus_curvature, vehicle,
                                 params, steer_in_range=in_range, work=work)
    return accel, torch.where(is_stopping, 0.0, steering_rate)


def _lateral_lqr(
    lateral_error: Tensor,
    heading_error: Tensor,
    steer: Tensor,
    speeds: Tensor,
    minus_curvature: Tensor,
    vehicle: VehicleParams,
    params: LQRParams,
    steer_in_range: bool = False,
    work: _Workspace | None = None,
) -> Tensor:
    """Steering rate (n,) from the one-step lateral LQR (`_lateral_lqr_controller`).

    speeds, minus_curvature (n, H): linearisation speeds and negated curvature over the lookahead;
    `steer_in_range`: |steer| <= pi is known, so wrapping it would change nothing and is skipped.

    The error state (e, psi, delta) evolves as x_{j+1} = M_j x_j + B_in·u + g_j with
    M_j = [[1, v_j·dt, 0], [0, 1, v_j·dt/L], [0, 0, 1]], B_in = (0, 0, dt), g_j = (0, -v_j·kappa_j·dt, 0).
    NAVSIM multiplies these 3x3 matrices over the horizon; with this sparsity every product entry is a
    running sum, so the same sequence of floating-point additions is done here with cumsums.
    """
    dt = params.dt
    work = work if work is not None else _Workspace(speeds.shape[0], speeds.shape[-1], speeds.dtype, speeds.device)
    # a_j = M_j[0, 1], b_j = M_j[1, 2], c_j = g_j[1] = -v_j·kappa_j·dt (negating a factor is exact)
    a, b, c = work.a, work.b, work.c
    torch.mul(speeds, dt, out=a)
    torch.div(a, vehicle.wheel_base, out=b)
    torch.mul(speeds, minus_curvature, out=c)
    torch.mul(c, dt, out=c)
    # Independent running sums share one cumsum (each row is still summed in order).
    # state matrix A = prod M_j = [[1, p, q], [0, 1, r], [0, 0, 1]]; affine term g: g1 += c_j, g0 += a_j·g1
    # (old value), g2 = 0; input matrix B: B2 += dt, B1 += b_j·B2, B0 += a_j·B1 (old values)
    torch.cumsum(work.terms, dim=-1, out=work.sums)
    r, p, g1 = work.totals
    b2_before, b2 = _input_column(speeds.shape[-1], dt, speeds.dtype, speeds.device)
    torch.mul(a, work.r_g1_before, out=work.q_g0_terms)   # a_j·r_before_j and a_j·g1_before_j in one op
    torch.mul(b, b2_before, out=work.b1_terms)
    torch.cumsum(work.products, dim=-1, out=work.product_sums)
    q, b1, g0 = work.product_totals
    torch.mul(a, work.b1_before, out=work.last_terms)
    torch.cumsum(work.last, dim=-1, out=work.last_sums)
    b0 = work.last_total

    # zero-input prediction x̂ = A x0 + g, angle entries wrapped
    pred_lateral = lateral_error + p * heading_error + q * steer + g0
    pred_heading = normalize_angle(heading_error + r * steer + g1)

    q0, q1, q2 = params.q_lateral
    # a weight of 1 (NAVSIM's q0) is skipped: x·1 is x, bit for bit
    bq0, bq1, bq2 = b0 if q0 == 1.0 else b0 * q0, b1 if q1 == 1.0 else b1 * q1, b2 * q2
    # the steering-angle terms are skipped when q2 = 0 (NAVSIM's default): adding a zero changes no sum
    # but the sign of a zero one
    denominator = bq0 * b0 + bq1 * b1
    tail = bq0 * pred_lateral + bq1 * pred_heading
    if bq2 != 0.0:
        pred_steer = steer if steer_in_range else normalize_angle(steer)
        denominator = denominator + bq2 * b2
        tail = tail + bq2 * pred_steer
    inverse = -1 / (denominator + params.r_lateral)
    return inverse * tail


@functools.lru_cache(maxsize=16)
def _input_column(horizon: int, dt: float, dtype: torch.dtype, device: torch.device) -> tuple[Tensor, float]:
    """B2 of the lateral LQR: running sums of dt before each step (H,) and after the last (a float)."""
    running = torch.cumsum(torch.full((horizon,), dt, dtype=dtype, device=device), dim=-1)
    return torch.nn.functional.pad(running[:-1], (1, 0)), float(running[-1])
