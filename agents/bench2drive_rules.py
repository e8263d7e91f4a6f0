"""Rule-based Bench2Drive drivers on the env's batched observation (`envs.bench2drive.observation`):
`PrivilegedRulesAgent`, a teacher (pure pursuit on the route's target points, IDM speed from privileged
actors, lights and stop signs, lane change / nudge around blocked lanes, moves aside for emergency
vehicles), and `RouteSteerAgent` (constant throttle, steers to the route, never brakes).

Both return direct control (B, 3) float32: steer [-1, 1] (CARLA sign: positive turns right), throttle and
brake [0, 1]. Everything is computed in the ego frame (x forward, y left), batched, float64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch import Tensor

from agents.bench2drive_route_path import (
    RoutePath, box_extents, frenet, offset_at, point_at, pure_pursuit_steer, route_path, shift_path, unit,
)
from envs.bench2drive.observation import ACTOR_FEATURES, LIGHT_FEATURES, STOP_FEATURES
from envs.bench2drive.route_scenario import ActorKind
from envs.bench2drive.vehicle_control import BRAKE_DECEL, DRAG, MKZ_2020, THROTTLE_ACCEL
from envs.sim.geometry import wrap_angle
from envs.sim.idm import IDMParams, idm_accel

NONE, OVERTAKE, YIELD = 0, 1, 2
"""Manoeuvre codes of `RulesMemory.manoeuvre`."""


@dataclass(frozen=True)
class RulesConfig:
    """Knobs of the privileged rule agent; units in brackets."""

    idm: IDMParams = IDMParams(target_speed=10.0, min_gap=2.5, headway=1.2, accel_max=1.5, decel_max=2.5, exponent=4.0)
    """Ego longitudinal law; its target speed is replaced by the speed limit (and the curve limits)."""
    speed_factor: float = 1.0
    """Fraction of the route's speed limit aimed at."""
    lateral_accel: float = 2.0
    """[m/s^2] curve speed: v <= sqrt(lateral_accel / curvature)."""
    horizon: tuple[float, ...] = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5)
    """[s] times at which crossing / oncoming actors are predicted (constant velocity)."""
    reach_accel: float = 1.5
    """[m/s^2] by time t the ego could reach v t + a t^2 / 2 (+ half its length + 2 m): a predicted actor
    in its corridor nearer than that is a conflict, handled as a stopped obstacle where it will be ..."""
    go_accel: float = 2.0
    """[m/s^2] ... unless the ego, accelerating at this, clears the conflict zone `go_margin` before it."""
    go_margin: float = 1.0
    """[s]"""
    crossing_patience: float = 8.0
    """[s] after yielding this long to crossing traffic, the ego enters in front of an actor that can still
    stop comfortably (reactive traffic brakes for what is on its path; flows would block it for ever)."""
    yield_decel: float = 4.0
    """[m/s^2] the deceleration assumed of that actor, with `yield_spare` metres to spare."""
    yield_spare: float = 2.0
    """[m]"""
    margin_vehicle: float = 0.35
    """[m] lateral clearance to vehicles and props, added to both half widths."""
    margin_vulnerable: float = 0.8
    """[m] lateral clearance to pedestrians and bicycles."""
    static_gap: float = 6.0
    """[m] extra standstill distance behind obstacles that do not move (room to steer around them)."""
    lookahead: tuple[float, float, float] = (3.0, 0.8, 12.0)
    """Pure pursuit look-ahead clip(a + b v, a, c) [m]."""
    ego_size: tuple[float, float] = (MKZ_2020.length, MKZ_2020.width)
    """[m] the observation has no ego size: CARLA's Lincoln MKZ 2020 box."""
    wheelbase: float = MKZ_2020.wheel_base
    """[m]"""
    max_steer: float = MKZ_2020.max_steering_angle
    """[rad] front-wheel angle at |steer| = 1."""
    yellow_decel: float = 3.5
    """[m/s^2] the ego stops for a yellow light only if this deceleration suffices."""
    stopped_speed: float = 0.05
    """[m/s] below this the ego counts as stopped at a stop sign (the criterion needs < 0.1)."""
    nudge_max: float = 1.3
    """[m] largest sideways shift inside the own lane; larger ones move to the neighbour lane."""
    change_length: tuple[float, float] = (4.0, 2.0)
    """Sideways shifts ramp in over max(a, b v) metres."""
    overtake_check: float = 12.0
    """[s] longest time the target lane is checked free around the ego's future footprint before a manoeuvre
    starts (the time to get 10 m past the obstacles, accelerating at go_accel, plus 1 s)."""
    stationary_speed: float = 0.5
    """[m/s] an actor slower than this counts as stationary."""
    queue_patience: float = 15.0
    """[s] a stationary vehicle centred in the lane is only overtaken after waiting this long (queues)."""
    emergency_range: float = 40.0
    """[m] an emergency vehicle this close behind in the ego's lane makes the ego move aside."""
    lane_width: float = 3.5
    """[m] offset of the neighbour lane (the observation has no map; built-in lanes are 3.5 m)."""
    light_reach: float = 4.0
    """[m] a light's stop-line centre within this lateral distance of the route governs the ego."""
    dt: float = 0.05
    """[s] time between calls (the env's tick)."""

    def __post_init__(self):
        for name in ("speed_factor", "lateral_accel", "reach_accel", "wheelbase", "max_steer", "yellow_decel",
                     "stopped_speed", "lane_width", "dt", "light_reach"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name}={value!r}: must be a positive finite number")
        if not self.horizon or any(not t > 0 for t in self.horizon):
            raise ValueError(f"horizon={self.horizon!r}: need positive times")


# --- inputs and memory ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RulesInput:
    """What the rules read each tick, in the ego frame (x forward, y left; float64)."""

    speed: Tensor = field(metadata={"dims": "B"})              # [m/s]
    route: Tensor = field(metadata={"dims": "B K 2"})          # target points along the route [m]
    speed_limit: Tensor = field(metadata={"dims": "B"})        # [m/s]
    actor_pose: Tensor = field(metadata={"dims": "B A 3"})     # box centre x, y [m], heading [rad]
    actor_speed: Tensor = field(metadata={"dims": "B A"})      # [m/s]
    actor_size: Tensor = field(metadata={"dims": "B A 2"})     # length, width [m]
    actor_kind: Tensor = field(metadata={"dims": "B A"})       # ActorKind (int64)
    actor_valid: Tensor = field(metadata={"dims": "B A"})
    light_pose: Tensor = field(metadata={"dims": "B L 3"})     # stop-line centre, governed heading
    light_stop: Tensor = field(metadata={"dims": "B L"})       # red, or yellow (the rules decide if they stop)
    light_yellow: Tensor = field(metadata={"dims": "B L"})
    light_valid: Tensor = field(metadata={"dims": "B L"})
    sign_box: Tensor = field(metadata={"dims": "B S 5"})       # centre x, y, heading, length, width
    sign_valid: Tensor = field(metadata={"dims": "B S"})


def _columns(names: tuple[str, ...], *wanted: str) -> list[int]:
    return [names.index(n) for n in wanted]


def rules_input(obs: dict, device=None) -> RulesInput:
    """The privileged observation of `envs.bench2drive.observation` (with `privileged`) -> RulesInput."""
    if "privileged" not in obs or "target_points" not in obs or "ego" not in obs:
        raise ValueError(f"obs keys={sorted(obs)}: need 'ego', 'target_points' and 'privileged' "
                         "(make the env with observation privileged=True)")
    t = lambda a: torch.as_tensor(np.asarray(a), device=device).to(torch.float64)
    p = obs["privileged"]
    actors, lights, signs = t(p["actors"]), t(p["lights"]), t(p["stop_signs"])
    x, y, cos, sin, vx, vy, length, width, kind = _columns(ACTOR_FEATURES, "x", "y", "cos_heading", "sin_heading",
                                                           "vx", "vy", "length", "width", "kind")
    lx, ly, lcos, lsin, red, yellow = _columns(LIGHT_FEATURES, "x", "y", "cos_heading", "sin_heading", "red", "yellow")
    sx, sy, scos, ssin, slen, swid = _columns(STOP_FEATURES, "x", "y", "cos_heading", "sin_heading", "length", "width")
    heading = lambda table, c, s: torch.atan2(table[..., s], table[..., c])
    return RulesInput(
        speed=t(obs["ego"])[:, 0], route=t(obs["target_points"]), speed_limit=t(p["speed_limit"])[:, 0],
        actor_pose=torch.stack([actors[..., x], actors[..., y], heading(actors, cos, sin)], -1),
        actor_speed=torch.hypot(actors[..., vx], actors[..., vy]), actor_size=actors[..., [length, width]],
        actor_kind=actors[..., kind].round().long(), actor_valid=t(p["actors_valid"]) > 0.5,
        light_pose=torch.stack([lights[..., lx], lights[..., ly], heading(lights, lcos, lsin)], -1),
        light_stop=(lights[..., red] > 0.5) | (lights[..., yellow] > 0.5), light_yellow=lights[..., yellow] > 0.5,
        light_valid=t(p["lights_valid"]) > 0.5,
        sign_box=torch.stack([signs[..., sx], signs[..., sy], heading(signs, scos, ssin), signs[..., slen],
                              signs[..., swid]], -1),
        sign_valid=t(p["stop_signs_valid"]) > 0.5,
    )


@dataclass(frozen=True)
class RulesMemory:
    """What the rules remember between ticks, one row per route (the observation's slots are nearest-first,
    so nothing is kept per slot)."""

    odometer: Tensor = field(metadata={"dims": "B"})          # [m] driven since the episode started
    target_offset: Tensor = field(metadata={"dims": "B"})     # [m] sideways shift aimed at, left positive
    manoeuvre: Tensor = field(metadata={"dims": "B"})         # NONE / OVERTAKE / YIELD (int64)
    clear_at: Tensor = field(metadata={"dims": "B"})          # [m] odometer past which the manoeuvre may end
    waited: Tensor = field(metadata={"dims": "B"})            # [s] stopped behind a stationary lead
    sign_released: Tensor = field(metadata={"dims": "B"})     # [m] odometer up to which stop signs are done
    yielded: Tensor = field(metadata={"dims": "B"})           # [s] stopped for crossing traffic


def initial_memory(batch: int, device=None) -> RulesMemory:
    """Fresh memory for B episodes."""
    zeros = torch.zeros(batch, dtype=torch.float64, device=device)
    return RulesMemory(zeros, zeros, torch.zeros(batch, dtype=torch.int64, device=device), zeros, zeros, zeros, zeros)


def reset_memory(memory: RulesMemory, rows: Tensor) -> RulesMemory:
    """Memory with rows (B,) bool restarted (their episodes ended)."""
    fresh = initial_memory(rows.shape[0], rows.device)
    names = RulesMemory.__dataclass_fields__
    return RulesMemory(*(torch.where(rows, getattr(fresh, f), getattr(memory, f)) for f in names))


# --- what is in the way -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class _OnPath:
    """Actors now, relative to a path (B, A)."""

    along: Tensor
    lateral: Tensor
    along_half: Tensor
    lat_half: Tensor
    cos: Tensor          # cosine of the actor's heading relative to the path
    inside: Tensor       # valid and overlapping the ego's corridor (widened by the margin)


def _inside(inp: RulesInput, along: Tensor, lateral: Tensor, along_half: Tensor, lat_half: Tensor, path: RoutePath,
            half_width: float, margin: Tensor) -> Tensor:
    return (inp.actor_valid & (lateral.abs() < half_width + lat_half + margin)
            & (along - along_half < path.arc[:, -1:]) & (along + along_half > path.arc[:, :1]))


def actors_on_path(inp: RulesInput, path: RoutePath, half_width: float, margin: Tensor) -> _OnPath:
    """Where each actor (B, A) is relative to `path`, and whether it is in the ego's corridor."""
    along, lateral, heading = frenet(inp.actor_pose[..., :2], path)
    relative = wrap_angle(inp.actor_pose[..., 2] - heading)
    along_half, lat_half = box_extents(inp.actor_size, relative)
    inside = _inside(inp, along, lateral, along_half, lat_half, path, half_width, margin)
    return _OnPath(along, lateral, along_half, lat_half, torch.cos(relative), inside)


def reshift(on: _OnPath, old: RoutePath, new: RoutePath, inp: RulesInput, half_width: float, margin: Tensor) -> _OnPath:
    """`on` (actors relative to `old`) relative to `new`, the same route with another sideways shift."""
    lateral = on.lateral + offset_at(old, on.along) - offset_at(new, on.along)
    return replace(on, lateral=lateral, inside=_inside(inp, on.along, lateral, on.along_half, on.lat_half, new,
                                                       half_width, margin))


def predict_actors(pose: Tensor, speed: Tensor, times: Tensor) -> Tensor:
    """Constant velocity: poses (B, A, 3), speeds (B, A), times (J,) [s] -> poses (B, A, J, 3)."""
    step = speed[..., None, None] * times[:, None] * unit(pose[..., 2])[..., None, :]
    return torch.cat([pose[..., None, :2] + step, pose[..., None, 2:3].expand(*step.shape[:-1], 1)], -1)


def predicted_hits(inp: RulesInput, on_route: _OnPath, path: RoutePath, times: Tensor, half_width: float,
                   margin: Tensor, candidates: Tensor) -> tuple[Tensor, Tensor]:
    """Where `candidates` (B, A) will be at `times` (J,) [s], inside the ego's corridor along `path` (the
    route, shifted): (B, A, J) bool and the arc (B, A, J) [m] of their near edge. Vehicles driving along the
    route (|cos| >= 0.7) keep their lane (their along-route distance moves, their offset stays: right on
    curves); the others go straight at constant velocity. `on_route`: the actors relative to the unshifted route."""
    b, a = candidates.shape
    j = times.shape[0]
    predicted = predict_actors(inp.actor_pose, inp.actor_speed, times)                           # (B, A, J, 3)
    along, lateral, heading = frenet(predicted[..., :2].reshape(b, a * j, 2), path)
    along_half, lat_half = box_extents(inp.actor_size.repeat_interleave(j, 1),
                                    wrap_angle(predicted[..., 2].reshape(b, a * j) - heading))
    along, lateral = along.view(b, a, j), lateral.view(b, a, j)
    along_half, lat_half = along_half.view(b, a, j), lat_half.view(b, a, j)
    lane_along = on_route.along[..., None] + (inp.actor_speed * on_route.cos)[..., None] * times
    lane_lateral = on_route.lateral[..., None] - offset_at(path, lane_along.flatten(1)).view(b, a, j)
    follows = ((on_route.cos.abs() >= 0.7) & (inp.actor_kind != ActorKind.PEDESTRIAN))[..., None]
    along = torch.where(follows, lane_along, along)
    lateral = torch.where(follows, lane_lateral, lateral)
    along_half = torch.where(follows, on_route.along_half[..., None], along_half)
    lat_half = torch.where(follows, on_route.lat_half[..., None], lat_half)
    hit = (lateral.abs() < half_width + lat_half + margin[..., None]) & (along - along_half < path.arc[:, -1:, None])
    return hit & candidates[..., None], along - along_half


def _idm_min(v: Tensor, v_target: Tensor, gap: Tensor, lead_speed: Tensor, use: Tensor, p: IDMParams) -> Tensor:
    """Smallest IDM acceleration (B,) over obstacles (B, X) where `use`; +inf where there is none."""
    if gap.shape[1] == 0:
        return torch.full_like(v, math.inf)
    accel = idm_accel(v[:, None], v_target[:, None], gap.clamp(min=0.0), lead_speed, p)
    return torch.where(use, accel, math.inf).amin(-1)


# --- one tick ---------------------------------------------------------------------------------------------

def _first_valid(options: Tensor) -> Tensor:
    """The first non-NaN column of options (B, X) per row; NaN where all are."""
    ok = ~torch.isnan(options)
    return options.gather(1, torch.where(ok.any(-1), ok.long().argmax(-1), 0)[:, None])[:, 0]


def _manoeuvre(inp: RulesInput, memory: RulesMemory, base: RoutePath, offset_now: Tensor, ramp: Tensor,
               on_route: _OnPath, margin: Tensor, cfg: RulesConfig) -> RulesMemory:
    """Start, keep or end an overtake / yield: the sideways offset aimed at, and until where (odometer)."""
    half_len, half_wid = 0.5 * cfg.ego_size[0], 0.5 * cfg.ego_size[1]
    kind, speed = inp.actor_kind, inp.actor_speed
    stationary = speed < cfg.stationary_speed
    slow_bike = (kind == ActorKind.BICYCLE) & (speed < 0.5 * cfg.speed_factor * inp.speed_limit[:, None])
    ahead = on_route.inside & (on_route.along - on_route.along_half > half_len - 1.0) & (on_route.along < 40.0)
    blocker = ahead & (stationary | slow_bike | (kind == ActorKind.STATIC))
    # Parked / crashed cars stand off the lane centre; a stopped car in the middle is a queue, unless it never moves.
    eligible = blocker & ((kind == ActorKind.STATIC) | (kind == ActorKind.BICYCLE) | (on_route.lateral.abs() > 0.4)
                          | (memory.waited[:, None] > cfg.queue_patience))
    first = torch.where(eligible, on_route.along, math.inf).amin(-1)
    group = blocker & (on_route.along >= first[:, None] - 1.0) & (on_route.along <= first[:, None] + 25.0)
    # 0.4 m more than the corridor margin: the ego only gets near its target offset
    clearance = half_wid + cfg.margin_vehicle + 0.4
    need_left = torch.where(group, on_route.lateral + on_route.lat_half, -math.inf).amax(-1) + clearance
    need_right = torch.where(group, on_route.lateral - on_route.lat_half, math.inf).amin(-1) - clearance
    group_end = torch.where(group, on_route.along + on_route.along_half, -math.inf).amax(-1)
    has_block = torch.isfinite(first)
    nan = torch.full_like(first, math.nan)
    lane = cfg.lane_width
    # overtake: a nudge inside the lane if enough, else the left lane (then the right one), nudged further
    # inside it if the obstacles reach into it
    overtake = _first_valid(torch.stack([
        torch.where(need_left <= cfg.nudge_max, need_left, nan),
        torch.where(-need_right <= cfg.nudge_max, need_right, nan),
        torch.where(need_left <= lane + cfg.nudge_max, need_left.clamp(min=lane), nan),
        torch.where(-need_right <= lane + cfg.nudge_max, need_right.clamp(max=-lane), nan)], -1))
    # emergency vehicle behind in the ego's lane: the left lane if free, else the right edge of the own lane
    emergency = (inp.actor_valid & (kind == ActorKind.EMERGENCY) & (on_route.along < -half_len)
                 & (on_route.along > -cfg.emergency_range) & (on_route.lateral.abs() < 0.5 * lane)
                 & (on_route.cos > 0.7) & ~stationary)
    has_ev = emergency.any(-1)
    idle = memory.manoeuvre == NONE
    new_kind = torch.where(has_ev, YIELD, torch.where(has_block & (first < 35.0), OVERTAKE, NONE))
    aside = torch.where(idle & (new_kind == YIELD), torch.full_like(first, lane), overtake)
    candidate = torch.where(idle, torch.where(new_kind == NONE, nan, aside), memory.target_offset)
    # the target lane must stay free around the ego's future footprint until it is past (accelerating at
    # go_accel from its speed, up to the limit), except what it passes; checked every 0.5 s
    v = inp.speed.clamp(min=0.0)
    zone_end = torch.where(has_block, group_end + 10.0, torch.full_like(first, 20.0)).nan_to_num(0.0, 0.0, 0.0)
    distance = (zone_end + half_len).clamp(min=0.0)
    t_pass = ((v ** 2 + 2.0 * cfg.go_accel * distance).sqrt() - v) / cfg.go_accel
    check = torch.arange(0.0, cfg.overtake_check + 1e-9, 0.5, dtype=base.arc.dtype, device=base.arc.device)
    front = half_len + torch.minimum(v[:, None] * check + 0.5 * cfg.go_accel * check ** 2,
                                     (cfg.speed_factor * inp.speed_limit)[:, None] * check)        # (B, J)
    # an overtake may be called off while the ego is still mostly in its lane and can stop well behind
    room = first - half_len - 4.0 - v ** 2 / (2.0 * cfg.idm.decel_max)
    before = (memory.manoeuvre == OVERTAKE) & ((offset_now.abs() < 0.5) | (
        (offset_now.abs() < 0.35 * memory.target_offset.abs()) & has_block & (room > 0.0)))
    clear = torch.ones_like(idle)
    if bool((~torch.isnan(candidate) & ((idle & (new_kind != NONE)) | before)).any()):
        shifted = shift_path(base, offset_now, candidate.nan_to_num(0.0), ramp)
        behind_away = (on_route.along + on_route.along_half < -half_len) & (on_route.cos < 0.0)   # passed, leaving
        others = inp.actor_valid & ~group & ~emergency & ~behind_away
        hit, near_edge = predicted_hits(inp, on_route, shifted, check, half_wid, margin, others)
        # only where the shifted corridor has left the own lane (half the shift done): what stands behind the
        # ego in its own lane does not matter, what comes from behind in the target lane does once it is there
        moved = (offset_at(shifted, near_edge.flatten(1)).view_as(near_edge) - offset_now[:, None, None]).abs()
        hit = hit & (moved >= 0.5 * (shifted.offset_target - offset_now).abs()[:, None, None])
        # vehicles coming towards the ego off the known route (round a bend past the route's end): assume the
        # worst, that they come down the target lane
        unknown = (others & (on_route.cos < -0.3) & (on_route.cos > -0.7) & (on_route.along > 0.0) & (speed > 1.0)
                   & (inp.actor_kind != ActorKind.PEDESTRIAN))
        towards = on_route.along[..., None] - on_route.along_half[..., None] - speed[..., None] * check
        hit = torch.where(unknown[..., None], True, hit)
        near_edge = torch.where(unknown[..., None], towards, near_edge)
        far_edge = near_edge + 2.0 * on_route.along_half[..., None]
        footprint = (near_edge < front[:, None] + 10.0) & (far_edge > front[:, None] - 2.0 * half_len - 5.0)
        clear = ~(hit & footprint & (check <= t_pass[:, None, None] + 1.0)).flatten(1).any(-1)
    fallback = idle & (new_kind == YIELD) & ~clear          # no room on the left: keep right in the own lane
    candidate = torch.where(fallback, torch.full_like(first, -cfg.nudge_max), candidate)
    start = idle & (new_kind != NONE) & ~torch.isnan(candidate) & (clear | fallback)
    abort = before & ~clear
    passed_at = memory.odometer + (group_end + half_len + 3.0).nan_to_num(0.0, 0.0, 0.0).clamp(min=0.0)
    clear_at = torch.where(start | (has_block & ~idle), torch.maximum(memory.clear_at, passed_at), memory.clear_at)
    clear_at = torch.where(start & (new_kind == YIELD), memory.odometer + 10.0, clear_at)
    near = on_route.inside & (on_route.along > -half_len - 5.0) & (on_route.along < half_len + 10.0)
    lane_free = ~near.any(-1) & ~(has_block & (first < half_len + 12.0))
    done = ~idle & lane_free & (memory.odometer > clear_at) & ~((memory.manoeuvre == YIELD) & has_ev)
    manoeuvre = torch.where(start, new_kind, torch.where(abort | done, NONE, memory.manoeuvre))
    target = torch.where(start, candidate, torch.where(abort | done, 0.0, memory.target_offset))
    # obstacles further on that reach further out (a tapering cone line): move out further, same side
    wider = (manoeuvre == OVERTAKE) & ~start & has_block & (overtake * target > 0) & (overtake.abs() > target.abs())
    target = torch.where(wider, overtake, target)
    return replace(memory, manoeuvre=manoeuvre, target_offset=target, clear_at=clear_at)


def rules_step(inp: RulesInput, memory: RulesMemory, cfg: RulesConfig = RulesConfig()) -> tuple[Tensor, RulesMemory]:
    """One tick of the privileged rules: control (B, 3) steer (CARLA sign), throttle, brake, and the next memory."""
    v = inp.speed.clamp(min=0.0)
    half_len, half_wid = 0.5 * cfg.ego_size[0], 0.5 * cfg.ego_size[1]
    p = cfg.idm
    base, offset_now = route_path(inp.route)
    ramp = (cfg.change_length[1] * v).clamp(min=cfg.change_length[0])
    vulnerable = (inp.actor_kind == ActorKind.PEDESTRIAN) | (inp.actor_kind == ActorKind.BICYCLE)
    margin = torch.where(vulnerable, cfg.margin_vulnerable, cfg.margin_vehicle)
    on_route = actors_on_path(inp, base, half_wid, margin)
    memory = _manoeuvre(inp, memory, base, offset_now, ramp, on_route, margin, cfg)
    path = shift_path(base, offset_now, memory.target_offset, ramp)
    on_path = reshift(on_route, base, path, inp, half_wid, margin)

    # --- target speed: the limit, and what the curves ahead allow with comfortable braking
    spacing = (base.arc[:, 2:] - base.arc[:, :-2]).clamp(min=0.2) / 2.0
    curvature = wrap_angle(base.heading[:, 1:] - base.heading[:, :-1]).abs() / spacing               # at inner knots
    ahead = base.arc[:, 1:-1]
    allowed = (cfg.lateral_accel / curvature.clamp(min=1e-4) + 2.0 * p.decel_max * ahead.clamp(min=0.0)).sqrt()
    v_target = torch.minimum(inp.speed_limit * cfg.speed_factor,
                             torch.where(ahead > 0.0, allowed, math.inf).amin(-1)).clamp(min=0.5)

    # --- leads now, crossing actors predicted, lights, stop signs: obstacles for the IDM
    stationary = inp.actor_speed < cfg.stationary_speed
    # committed to an overtake: traffic coming the other way is no reason to slow down unless it is close
    # (it brakes for the ego; stopping out there would block both)
    committed = ((memory.manoeuvre == OVERTAKE) & (offset_now.abs() >= 0.5))[:, None] & (on_path.cos < -0.3) & (
        on_path.along - on_path.along_half - half_len > 12.0)
    # IDM leads: what drives along the path, and what stands still on it; moving crossers are conflicts below
    lead = on_path.inside & (on_path.along > 0.0) & ~committed & (
        (on_path.cos >= 0.7) | (inp.actor_speed < cfg.stationary_speed))
    gap = on_path.along - on_path.along_half - half_len
    lead_speed = (inp.actor_speed * on_path.cos).clamp(min=0.0)
    # stand further back behind what does not move (fading out by 1 m/s): room to steer around it later
    centred = (memory.manoeuvre == NONE) & (offset_now.abs() < 0.5)      # off-centre: may creep to get back in lane
    standoff = cfg.static_gap * (1.0 - lead_speed).clamp(0.0, 1.0) * centred[:, None]
    gap_idm = gap - standoff
    accel = torch.minimum(idm_accel(v, v_target, torch.full_like(v, math.inf), torch.zeros_like(v), p),
                          _idm_min(v, v_target, gap_idm, lead_speed, lead, p))
    times = torch.tensor((0.0, *cfg.horizon), dtype=v.dtype, device=v.device)
    behind = on_path.along + on_path.along_half < -half_len
    crossing = inp.actor_valid & (on_path.cos < 0.7) & ~behind & ~committed & (inp.actor_speed >= cfg.stationary_speed)
    hit, near_edge = predicted_hits(inp, on_route, path, times, half_wid, margin, crossing)
    reach = half_len + v[:, None] * times + 0.5 * cfg.reach_accel * times ** 2 + 2.0                # (B, J)
    hit = hit & (near_edge > -half_len)
    # gap acceptance: the ego goes first if it clears the zone (near edge + the actor + its own length) in time
    first = hit.long().argmax(-1, keepdim=True)                                                    # (B, A, 1)
    t_first, s_first = times[first[..., 0]], near_edge.gather(-1, first)[..., 0]
    clear_distance = (s_first + 2.0 * on_path.along_half + cfg.ego_size[0] + 1.0).clamp(min=0.0)
    t_clear = ((v[:, None] ** 2 + 2.0 * cfg.go_accel * clear_distance).sqrt() - v[:, None]) / cfg.go_accel
    first_in = t_clear + cfg.go_margin < t_first
    # impatient: enter in front of actors far enough to brake for the ego, behind those about to leave the path
    leaving = hit[..., 0] & ~(hit & (times >= 1.0)).any(-1)
    they_stop = (memory.yielded[:, None] > cfg.crossing_patience) & (leaving | (
        inp.actor_speed * t_first > inp.actor_speed ** 2 / (2.0 * cfg.yield_decel) + cfg.yield_spare))
    hit = hit & (near_edge <= reach[:, None])
    waiting = hit.flatten(1).any(-1) & ((v < 0.3) | (memory.yielded > 0))        # crossing traffic holds the ego
    hit = hit & ~(first_in | they_stop)[..., None]
    conflict = torch.where(hit, near_edge - half_len, math.inf).amin(-1)                           # (B, A)
    crossing_accel = _idm_min(v, v_target, conflict, torch.zeros_like(conflict), hit.any(-1), p)
    accel = torch.minimum(accel, crossing_accel)
    line_arc, line_lat, line_heading = frenet(inp.light_pose[..., :2], base)
    to_line = line_arc - half_len - 1.0
    stoppable = ~inp.light_yellow | (v[:, None] ** 2 < 2.0 * cfg.yellow_decel * to_line.clamp(min=0.1))
    red = (inp.light_valid & inp.light_stop & stoppable & (line_lat.abs() < cfg.light_reach)
           & (torch.cos(inp.light_pose[..., 2] - line_heading) > 0.5) & (line_arc + half_len > 0.0))
    accel = torch.minimum(accel, _idm_min(v, v_target, to_line + p.min_gap, torch.zeros_like(to_line), red, p))
    sign_arc, sign_lat, sign_heading = frenet(inp.sign_box[..., :2], base)
    sign_half_len, sign_half_wid = 0.5 * inp.sign_box[..., 3], 0.5 * inp.sign_box[..., 4]
    far_end = memory.odometer[:, None] + sign_arc + sign_half_len                                    # odometer units
    governs = (inp.sign_valid & (sign_lat.abs() < sign_half_wid + 2.0) & (far_end > memory.sign_released[:, None])
               & (torch.cos(inp.sign_box[..., 2] - sign_heading) > 0.5) & (sign_arc + sign_half_len > -half_len))
    stopped_in = governs & (sign_arc.abs() <= sign_half_len) & (sign_lat.abs() <= sign_half_wid + 0.5) \
        & (v[:, None] < cfg.stopped_speed)
    released = torch.maximum(memory.sign_released, torch.where(stopped_in, far_end + 1.0, -math.inf).amax(-1))
    must_stop = governs & ~stopped_in
    accel = torch.minimum(accel, _idm_min(v, v_target, sign_arc + p.min_gap, torch.zeros_like(sign_arc), must_stop, p))

    # --- controls: pure pursuit on the (shifted) path; acceleration -> throttle / brake of the world's model
    look = (cfg.lookahead[0] + cfg.lookahead[1] * v).clamp(max=cfg.lookahead[2])
    aim = point_at(path, look)
    steer = pure_pursuit_steer(aim, cfg.wheelbase, cfg.max_steer)
    holding = (v < 0.3) & (accel < 0.05)
    throttle = torch.where(holding, 0.0, ((accel + DRAG * v) / THROTTLE_ACCEL).clamp(0.0, 1.0))
    brake = torch.where(holding, 1.0, (-(accel + DRAG * v) / BRAKE_DECEL).clamp(0.0, 1.0))
    stopped_behind = (v < 0.3) & (torch.where(lead & stationary, gap, math.inf).amin(-1) < 15.0)
    memory = replace(memory, odometer=memory.odometer + v * cfg.dt, sign_released=released,
                     waited=torch.where(stopped_behind, memory.waited + cfg.dt, 0.0),
                     yielded=torch.where(waiting, memory.yielded + cfg.dt, 0.0))
    return torch.stack([steer, throttle, brake], -1), memory


# --- the agents -------------------------------------------------------------------------------------------

def _check_rows(rows, batch: int) -> Tensor:
    rows = torch.as_tensor(np.asarray(rows, dtype=bool) if not isinstance(rows, Tensor) else rows, dtype=torch.bool)
    if rows.shape != (batch,):
        raise ValueError(f"rows.shape={tuple(rows.shape)}: expected ({batch},) bool")
    return rows


class PrivilegedRulesAgent:
    """Teacher: pure pursuit on the route, IDM on privileged actors / lights / stop signs, overtakes blocked
    lanes and moves aside for emergency vehicles. Needs the env's `privileged` observation.

    It remembers a little per row (odometer, manoeuvre, stop signs done): call `reset(rows)` for rows whose
    episode restarted (the vector env's autoreset), or `reset()` before a new batch of routes.
    """

    name = "privileged_rules"
    inputs = frozenset({"ego", "target_points", "privileged"})
    privileged = True
    benchmark = "bench2drive"
    """Acts on roadloop/Bench2Drive-v0 observations and returns its `control` actions (B, 3), not NAVSIM plans."""
    observation = {"privileged": True, "target_points": 30, "max_actors": 32}
    """ObservationConfig fields it works best with: 150 m of route (oncoming traffic on curves) and 32 actors."""

    def __init__(self, **config):
        self.config = RulesConfig(**config)
        self._memory: RulesMemory | None = None

    def reset(self, rows=None) -> None:
        """Forget rows (B,) bool (all rows when None)."""
        if rows is None or self._memory is None:
            self._memory = None
            return
        self._memory = reset_memory(self._memory, _check_rows(rows, self._memory.odometer.shape[0]))

    def act(self, obs: dict, gen: torch.Generator | None = None, scenes=None) -> np.ndarray:
        """(B, 3) float32 control: steer (positive right), throttle, brake. Deterministic; `gen` is unused."""
        inp = rules_input(obs)
        batch = inp.speed.shape[0]
        if self._memory is None or self._memory.odometer.shape[0] != batch:
            self._memory = initial_memory(batch)
        control, self._memory = rules_step(inp, self._memory, self.config)
        return control.to(torch.float32).numpy()


@dataclass(frozen=True)
class RouteSteerConfig:
    """Knobs of `RouteSteerAgent`."""

    throttle: float = 0.2
    """Constant throttle [0, 1]; the world's model settles at throttle x THROTTLE_ACCEL / DRAG (15 m/s for 0.2)."""
    aim: int = 1
    """Target point steered to (0 = the first, about 5 m ahead)."""
    wheelbase: float = MKZ_2020.wheel_base
    max_steer: float = MKZ_2020.max_steering_angle

    def __post_init__(self):
        if not 0.0 <= self.throttle <= 1.0:
            raise ValueError(f"throttle={self.throttle!r}: must lie in [0, 1]")
        if not (isinstance(self.aim, int) and self.aim >= 0):
            raise ValueError(f"aim={self.aim!r}: must be an int >= 0")


def route_steer(targets: Tensor, cfg: RouteSteerConfig) -> Tensor:
    """Constant throttle, no brake, pure pursuit steering to target point `cfg.aim` (B, K, 2) -> (B, 3)."""
    steer = pure_pursuit_steer(targets[:, min(cfg.aim, targets.shape[1] - 1)], cfg.wheelbase, cfg.max_steer)
    return torch.stack([steer, torch.full_like(steer, cfg.throttle), torch.zeros_like(steer)], -1)


class RouteSteerAgent:
    """Baseline: constant throttle, steers to the route's target point, never brakes (reads `target_points`)."""

    name = "route_steer"
    inputs = frozenset({"target_points"})
    privileged = False
    benchmark = "bench2drive"

    def __init__(self, **config):
        self.config = RouteSteerConfig(**config)

    def reset(self, rows=None) -> None:
        """Nothing to forget (the agent has no memory); kept for the evaluation loop's uniform calls."""

    def act(self, obs: dict, gen: torch.Generator | None = None, scenes=None) -> np.ndarray:
        """(B, 3) float32 control: steer (positive right), throttle, brake."""
        if "target_points" not in obs:
            raise ValueError(f"obs keys={sorted(obs)}: need 'target_points'")
        targets = torch.as_tensor(np.asarray(obs["target_points"]), dtype=torch.float64)
        if targets.dim() != 3 or targets.shape[-1] != 2:
            raise ValueError(f"obs['target_points'].shape={tuple(targets.shape)}: expected (B, K, 2)")
        return route_steer(targets, self.config).to(torch.float32).numpy()
