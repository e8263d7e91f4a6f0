"""Bench2Drive route criteria, batched over B routes: what the leaderboard's RouteScenario criteria tree
decides each tick (spec bench2drive.md §3.1, §3.2, §3.5), as pure torch float64 functions.

`criteria_context` (from `criteria_tables`) builds the static tables once; `criteria_step` consumes one
`TickView` and returns the new state plus the tick's events as numbers; `finalize` adds what the official
criteria log when a route stops. Messages and records are `envs.bench2drive.record`'s job. Letters: B routes,
A actor slots, L lights, S stop signs. Rules follow scenario_runner's atomic_criteria.py (leaderboard-2.0
branch as vendored by Bench2Drive); the constants below name the class they come from.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field, fields, replace
from enum import IntEnum

import torch
from torch import Tensor

from envs.bench2drive.criteria_lanes import nearest_lane
from envs.bench2drive.criteria_rules import (PASSED_REACH, arange_constant, as_complex, boxes_touch, crosses_lines,
                                             first_true, pick, points_in_boxes, window_points)
from envs.bench2drive.criteria_tables import (MAX_TICKS, ROUTE_TIMEOUT_SPEED, STOP_BOX_SCALE, CriteriaContext,
                                              criteria_context)
from envs.bench2drive.route_scenario import ActorKind, Role
from envs.bench2drive.tick import TickView
from envs.metrics.bench2drive_results import INFRACTION_KEYS
from envs.sim.scene import LightStatus

__all__ = ["MAX_TICKS", "ROUTE_TIMEOUT_SPEED", "STOP_BOX_SCALE", "KEY", "PENALTY", "RouteStatus", "CriteriaContext",
           "CriteriaState", "TickEvents", "criteria_context", "initial_criteria", "reset_criteria_rows",
           "criteria_step", "finalize"]

COLLISION_RADIUS, COLLISION_ID_TIME, COLLISION_MIN_SPEED = 5.0, 5.0, 0.1   # CollisionTest [m], [s], [m/s]
RED_LIGHT_DISTANCE = 15.0          # RunningRedLightTest.DISTANCE_LIGHT [m]
STOP_PROXIMITY, STOP_STEP, STOP_SPEED = 4.0, 0.5, 0.1   # RunningStopTest [m], [m], [m/s]
STOP_REVERSE = -0.17               # RunningStopTest: moving backwards / against the lane ("100 deg")
ALLOWED_OUT_DISTANCE = 0.5         # OutsideRouteLanesTest [m] beyond half the lane width
MAX_VEHICLE_ANGLE, MAX_WAYPOINT_ANGLE = 120.0, 150.0   # OutsideRouteLanesTest [deg]
RC_WINDOW, LANES_WINDOW, IN_ROUTE_WINDOW = 2, 3, 5
"""Points after the current index examined by RouteCompletion/MinSpeed, OutsideRouteLanes/RouteTimeout, InRoute."""
RC_PERCENT_THRESHOLD, RC_DISTANCE_THRESHOLD = 99.0, 10.0   # RouteCompletionTest [%], [m]
OFFROAD_MAX, OFFROAD_MIN, MAX_ROUTE_PERCENTAGE = 30.0, 15.0, 30.0   # InRouteTest [m], [m], [%]
BLOCKED_SPEED, BLOCKED_TIME = 0.1, 60.0   # Bench2Drive AgentBlockedTest [m/s], [s] (upstream 180 s)
MIN_SPEED_CHECKPOINTS, MIN_SPEED_FINAL = 20, 0.95   # Bench2Drive MinSpeedTest checkpoints; terminate rule
ROUTE_TIMEOUT_MIN = 300.0          # RouteTimeoutBehavior.MIN_TIMEOUT [s]
SCENARIO_TIMEOUT = 240.0           # ScenarioTimeout of the blocking scenarios [s] (spec §3.1)
KEY = {name: i for i, name in enumerate(INFRACTION_KEYS)}
"""Column of each leaderboard infraction list in `CriteriaState.counts`."""
PENALTY = {"collisions_pedestrian": 0.5, "collisions_vehicle": 0.6, "collisions_layout": 0.65, "red_light": 0.7,
           "stop_infraction": 0.8, "scenario_timeouts": 0.7, "yield_emergency_vehicle_infractions": 0.7}
"""statistics_manager PENALTY_VALUE_DICT; outside_route_lanes multiplies by (1 - pct/100), min speed is unused."""
_COS_VEHICLE = math.cos(math.radians(MAX_VEHICLE_ANGLE))
_COS_WAYPOINT = math.cos(math.radians(MAX_WAYPOINT_ANGLE))


class RouteStatus(IntEnum):
    """Route outcome codes; `envs.bench2drive.record.STATUS_STRINGS[code]` is the leaderboard string."""

    STARTED = 0
    PERFECT = 1
    COMPLETED = 2
    FAILED = 3
    DEVIATED = 4
    BLOCKED = 5
    TIMED_OUT = 6
    TICK_RUNTIME = 7
    SIMULATION_CRASHED = 8
    AGENT_CRASHED = 9
    AGENT_SETUP = 10
    SENSORS_INVALID = 11


@dataclass(frozen=True)
class CriteriaState:
    """Per-route criteria state after the last processed tick; every field is (B,) or (B, k)."""

    tick: Tensor = field(metadata={"dims": "B"})
    """Last processed tick (int64); 0 before the first."""
    time: Tensor = field(metadata={"dims": "B"})
    """[s] game time of the last processed tick (tick x dt)."""
    start_time: Tensor = field(metadata={"dims": "B"})
    """[s] game time of the first processed tick (RouteTimeoutBehavior start)."""
    route_index: Tensor = field(metadata={"dims": "B"})
    """RouteCompletionTest / MinSpeedTest index (int64)."""
    route_completion: Tensor = field(metadata={"dims": "B"})
    """[%] RC rounded to 2 decimals; 100 once completed."""
    lanes_index: Tensor = field(metadata={"dims": "B"})
    """OutsideRouteLanesTest / RouteTimeoutBehavior index (int64)."""
    in_route_index: Tensor = field(metadata={"dims": "B"})
    out_route_m: Tensor = field(metadata={"dims": "B"})
    """[m] route advanced while 15 m or more from the route (InRouteTest)."""
    in_safe_route: Tensor = field(metadata={"dims": "B"})
    counts: Tensor = field(metadata={"dims": "B 12"})
    """Events per leaderboard infraction list (INFRACTION_KEYS order; outside_route_lanes stays 0, see wrong_m)."""
    coefficient: Tensor = field(metadata={"dims": "B"})
    """Product of the per-event penalty coefficients."""
    collision_actor: Tensor = field(metadata={"dims": "B"})
    """Slot of the last counted collision, -1 once 5 s have passed (int64)."""
    collision_time: Tensor = field(metadata={"dims": "B"})
    collision_xy: Tensor = field(metadata={"dims": "B 2"})
    collision_near: Tensor = field(metadata={"dims": "B"})
    """bool: the last collision location still blocks new ones (ego has not left its 5 m radius)."""
    last_red_light: Tensor = field(metadata={"dims": "B"})
    stop_target: Tensor = field(metadata={"dims": "B"})
    stop_completed: Tensor = field(metadata={"dims": "B"})
    stop_last_failed: Tensor = field(metadata={"dims": "B"})
    lane: Tensor = field(metadata={"dims": "B"})
    """Lane index of the last ego waypoint (int64); -2 before the first tick (forces the first comparison)."""
    lane_junction: Tensor = field(metadata={"dims": "B"})
    lane_heading: Tensor = field(metadata={"dims": "B"})
    wrong_lane: Tensor = field(metadata={"dims": "B"})
    total_m: Tensor = field(metadata={"dims": "B"})
    """[m] route advanced (OutsideRouteLanesTest: straight distances between passed points)."""
    wrong_m: Tensor = field(metadata={"dims": "B"})
    """[m] of total_m driven outside the route lanes or in a wrong-direction lane."""
    blocked_since: Tensor = field(metadata={"dims": "B"})
    """[s] last time the ego was not blocked (or the check was switched)."""
    scenario_active: Tensor = field(metadata={"dims": "B"})
    """bool: the view's scenario_active at the last tick."""
    trigger_time: Tensor = field(metadata={"dims": "B"})
    scenario_timed_out: Tensor = field(metadata={"dims": "B"})
    ytev_failing: Tensor = field(metadata={"dims": "B"})
    """bool: at its last update the emergency vehicle was still behind the ego."""
    ytev_checked: Tensor = field(metadata={"dims": "B"})
    checkpoint_m: Tensor = field(metadata={"dims": "B"})
    """[m] route length at the last min-speed checkpoint."""
    ego_speed_sum: Tensor = field(metadata={"dims": "B"})
    traffic_speed_sum: Tensor = field(metadata={"dims": "B"})
    speed_samples: Tensor = field(metadata={"dims": "B"})
    """int64 ticks with background vehicles since the last checkpoint."""
    done: Tensor = field(metadata={"dims": "B"})
    status: Tensor = field(metadata={"dims": "B"})
    """RouteStatus code (int64)."""
    finalized: Tensor = field(metadata={"dims": "B"})

    @property
    def outside_percent(self) -> Tensor:
        """[%] share of the advanced route driven outside the route lanes (B,)."""
        return self.wrong_m / self.total_m.clamp(min=1e-12) * 100.0

    @property
    def penalty(self) -> Tensor:
        """Infraction penalty P (B,): coefficients times (1 - outside %/100)."""
        return self.coefficient * (1.0 - self.outside_percent / 100.0)

    @property
    def driving_score(self) -> Tensor:
        """DS = RC x P (B,), 0-100."""
        return self.route_completion * self.penalty


@dataclass(frozen=True)
class TickEvents:
    """What one tick (or `finalize`) added, as numbers; all (B,) unless noted. -1 marks "none"."""

    collision_key: Tensor = field(metadata={"dims": "B"})
    """INFRACTION_KEYS column of a counted collision (int64), -1 for none."""
    collision_actor: Tensor = field(metadata={"dims": "B"})
    collision_kind: Tensor = field(metadata={"dims": "B"})
    """ActorKind of the other actor (int64), -1 for none."""
    red_light: Tensor = field(metadata={"dims": "B"})
    """Light slot run on red (int64)."""
    stop_sign: Tensor = field(metadata={"dims": "B"})
    """Stop-sign slot rolled through (int64)."""
    min_speed: Tensor = field(metadata={"dims": "B"})
    """bool: a min-speed checkpoint was logged."""
    min_speed_ego: Tensor = field(metadata={"dims": "B"})
    """[m/s] sum of the ego speeds sampled since the previous checkpoint (ticks with background vehicles)."""
    min_speed_traffic: Tensor = field(metadata={"dims": "B"})
    """[m/s] sum of the per-tick mean background-vehicle speeds over the same ticks."""
    min_speed_samples: Tensor = field(metadata={"dims": "B"})
    """Number of those ticks (int64)."""
    outside_lanes: Tensor = field(metadata={"dims": "B"})
    """bool: route metres were counted outside the route lanes this tick."""
    route_dev: Tensor = field(metadata={"dims": "B"})
    blocked: Tensor = field(metadata={"dims": "B"})
    route_timeout: Tensor = field(metadata={"dims": "B"})
    scenario_timeout: Tensor = field(metadata={"dims": "B"})
    ytev: Tensor = field(metadata={"dims": "B"})
    ego_xy: Tensor = field(metadata={"dims": "B 2"})
    """[m] ego location of the tick (infraction messages)."""
    done: Tensor = field(metadata={"dims": "B"})
    status: Tensor = field(metadata={"dims": "B"})
    logged: Tensor | None = field(default=None, metadata={"dims": "B"})
    """bool: what `any()` returns, when the producer already has it (criteria_step: one op); None: computed."""

    @property
    def hard_infraction(self) -> Tensor:
        """bool (B,): a collision, red-light or stop-sign infraction this tick."""
        return (self.collision_key >= 0) | (self.red_light >= 0) | (self.stop_sign >= 0)

    @property
    def min_speed_default(self) -> Tensor:
        """bool (B,): no background samples or zero traffic speed: the official checkpoint value is the int 100."""
        return (self.min_speed_samples == 0) | (self.min_speed_traffic == 0)

    @property
    def min_speed_percent(self) -> Tensor:
        """[%] (B,) MinSpeedTest value of a checkpoint, unrounded: mean ego speed / mean background speed x 100
        (each mean over the samples, as the official test divides), 100 where `min_speed_default`."""
        samples = self.min_speed_samples.clamp(min=1).to(self.min_speed_ego.dtype)
        traffic = (self.min_speed_traffic / samples).masked_fill(self.min_speed_default, 1.0)
        return (self.min_speed_ego / samples / traffic * 100.0).masked_fill(self.min_speed_default, 100.0)

    def any(self) -> Tensor:
        """bool (B,): the tick logged a message of any kind."""
        if self.logged is not None:
            return self.logged
        return (self.hard_infraction | self.min_speed | self.route_dev | self.blocked | self.route_timeout
                | self.scenario_timeout | self.ytev)


def initial_criteria(ctx: CriteriaContext) -> CriteriaState:
    """Criteria state before the first tick of every route."""
    zeros = torch.zeros_like(ctx.route_length)
    none = torch.full_like(ctx.route_last, -1)
    index = torch.zeros_like(none)
    false = torch.zeros_like(ctx.wrong_direction_check)
    return CriteriaState(
        tick=index, time=zeros, start_time=zeros, route_index=index, route_completion=zeros, lanes_index=index,
        in_route_index=index, out_route_m=zeros, in_safe_route=~false,
        counts=torch.zeros((len(zeros), len(INFRACTION_KEYS)), dtype=torch.int64, device=zeros.device),
        coefficient=torch.ones_like(zeros), collision_actor=none, collision_time=zeros,
        collision_xy=torch.zeros_like(ctx.route_end), collision_near=false, last_red_light=none, stop_target=none,
        stop_completed=false, stop_last_failed=none, lane=torch.full_like(none, -2),
        lane_junction=ctx.start_lane[:, 1] > 0.5, lane_heading=ctx.start_lane[:, 2], wrong_lane=false,
        total_m=zeros, wrong_m=zeros, blocked_since=zeros, scenario_active=false, trigger_time=zeros,
        scenario_timed_out=false, ytev_failing=false, ytev_checked=false, checkpoint_m=zeros, ego_speed_sum=zeros,
        traffic_speed_sum=zeros, speed_samples=index, done=false,
        status=torch.full_like(none, int(RouteStatus.STARTED)), finalized=false,
    )


def _merge(rows: Tensor, new: CriteriaState, old: CriteriaState) -> CriteriaState:
    """`new` on rows (B,) bool, `old` elsewhere."""
    values = {}
    for f in fields(CriteriaState):
        a = getattr(new, f.name)
        values[f.name] = torch.where(rows.view(-1, *([1] * (a.dim() - 1))), a, getattr(old, f.name))
    return CriteriaState(**values)


def reset_criteria_rows(ctx: CriteriaContext, state: CriteriaState, rows: Tensor) -> CriteriaState:
    """State with `rows` (B,) bool back at their initial values (autoreset; `ctx` already holds the new routes)."""
    return _merge(rows, initial_criteria(ctx), state)


# --------------------------------------------------------------------------- per tick


@functools.lru_cache(maxsize=64)
def _constants(device: str) -> dict[str, Tensor]:
    """Small constant tensors of the step, one copy per device (never written to)."""
    long = dict(dtype=torch.int64, device=device)
    kind_keys = [KEY["collisions_vehicle"]] * len(ActorKind)
    kind_keys[ActorKind.PEDESTRIAN] = KEY["collisions_pedestrian"]
    kind_keys[ActorKind.STATIC] = KEY["collisions_layout"]
    return {
        # window layout: RouteCompletion idx+0..2, OutsideRouteLanes c+1..c+3, InRoute j+0..5
        "window_column": torch.tensor([0] * 3 + [1] * 3 + [2] * 6, **long),
        "window_offset": torch.tensor([0, 1, 2, 1, 2, 3, 0, 1, 2, 3, 4, 5], **long),
        "bits": torch.tensor([1, 2, 4], **long),
        "reach": torch.tensor(PASSED_REACH, **long),
        "kind_key": torch.tensor(kind_keys, **long),
        "is_vehicle": torch.tensor([k not in (ActorKind.PEDESTRIAN, ActorKind.STATIC) for k in ActorKind],
                                   dtype=torch.bool, device=device),
        "drop": torch.tensor([1.0 - PENALTY.get(name, 1.0) for name in INFRACTION_KEYS], dtype=torch.float64,
                             device=device),
        "ahead": torch.arange(int(STOP_PROXIMITY / STOP_STEP) + 1, dtype=torch.float64, device=device) * STOP_STEP,
        "tail_scale": torch.tensor([0.4, 0.5], dtype=torch.float64, device=device),
        "tail_shift": torch.tensor([0.0, 1.0], dtype=torch.float64, device=device),
    }


def _light_states(light_state: Tensor, width: int) -> Tensor:
    """The view's light states (B, L') cut or padded (UNKNOWN) to the context's L slots."""
    if light_state.shape[1] >= width:
        return light_state[:, :width] if light_state.shape[1] > width else light_state
    pad = light_state.new_full((light_state.shape[0], width - light_state.shape[1]), int(LightStatus.UNKNOWN))
    return torch.cat([light_state, pad], 1)


def _success_status(counts: Tensor, wrong_m: Tensor) -> Tensor:
    """PERFECT when no infraction list has an entry, else COMPLETED (statistics_manager)."""
    clean = (counts.sum(-1) == 0) & (wrong_m == 0)
    return torch.where(clean, int(RouteStatus.PERFECT), int(RouteStatus.COMPLETED))


def _yield_check(ctx: CriteriaContext, state: CriteriaState, view: TickView) -> tuple[Tensor, Tensor, Tensor]:
    """YieldToEmergencyVehicleTest: (failing, scenario ended now, event) (B,) bool.

    It updates while the scenario runs and on the tick it ends: failing while the ego is ahead of the
    emergency vehicle (dot(EV forward, ego - EV) > 0). At the scenario's end a failing test logs once."""
    active, was_active = view.scenario_active, state.scenario_active
    has_ev = ctx.emergency_actor >= 0
    pose = pick(view.actor_pose, ctx.emergency_actor)
    ahead = (torch.cos(pose[:, 2]) * (view.ego_pose[:, 0] - pose[:, 0])
             + torch.sin(pose[:, 2]) * (view.ego_pose[:, 1] - pose[:, 1])) > 0
    update = has_ev & pick(view.actor_present, ctx.emergency_actor) & (active | was_active)
    failing = torch.where(update, ahead, state.ytev_failing)
    ended = has_ev & was_active & ~active & ~state.ytev_checked
    return failing, ended, ended & failing


def criteria_step(ctx: CriteriaContext, state: CriteriaState, view: TickView) -> tuple[CriteriaState, TickEvents]:
    """Advance every route's criteria by one tick of `view`; rows already done stay as they are.

    Rules of the leaderboard's criteria tree: RouteCompletionTest, OutsideRouteLanesTest, CollisionTest,
    RunningRedLightTest, RunningStopTest, MinSpeedTest, InRouteTest, AgentBlockedTest, the scenario's
    ScenarioTimeout and YieldToEmergencyVehicle, and RouteTimeoutBehavior. A tick past `ctx.max_ticks` ends
    the route with TICK_RUNTIME before any criterion runs (Bench2Drive ScenarioManager).
    """
    device = ctx.device_name
    const = _constants(device)
    live = ~state.done
    runtime = live & (view.tick > ctx.max_ticks)
    run = live & ~runtime
    all_run = bool(run.all())      # the one host sync: usually every row runs, and `run &` can be left out
    gate = (lambda mask: mask) if all_run else (lambda mask: run & mask)  # noqa: E731
    now = view.tick.to(ctx.route_length.dtype) * view.dt
    first = state.tick == 0
    ego_xy, heading = view.ego_pose[:, :2], view.ego_pose[:, 2]
    if ctx.has_lights or ctx.has_stops:
        ego_dir = torch.polar(torch.ones_like(heading), heading)
    speed = view.ego_speed.abs()   # CarlaDataProvider.get_velocity: speed magnitude

    # --- the windows of RouteCompletion (idx..idx+2), OutsideRouteLanes (c+1..c+3), InRoute (j..j+5) at once
    ego_point = torch.complex(view.ego_pose[:, 0], view.ego_pose[:, 1])
    indices = torch.stack([state.route_index, state.lanes_index, state.in_route_index], -1)
    window = torch.minimum(indices.index_select(1, const["window_column"]) + const["window_offset"],
                           ctx.route_last[:, None])
    rel, passed, arc = window_points(ctx.route_xy_c, ctx.route_forward_c, ctx.route_arc, window, ego_point)

    # RouteCompletionTest: furthest passed point of the window; RC > 99 % within 10 m of the end => 100
    passed_rc = passed[:, :3]
    route_index = torch.where(passed_rc, window[:, :3], window[:, :1]).amax(-1)
    rc_arc = torch.where(passed_rc, arc[:, :3], arc[:, :1]).amax(-1)
    completion = torch.round(rc_arc / ctx.route_length * 10000.0) / 100.0
    completed = gate((completion > RC_PERCENT_THRESHOLD) & (
        (ego_point - ctx.route_end_c).abs() < RC_DISTANCE_THRESHOLD))
    completion = completion.masked_fill(completed, 100.0)

    # --- OutsideRouteLanesTest: lane under the ego, wrong-direction toggles, metres per passed point
    hit = nearest_lane(ctx.lanes, ego_xy, ctx.has_carparks, with_point=ctx.has_stops)
    outside = hit.distance > hit.half_width + ALLOWED_OUT_DISTANCE
    if ctx.has_carparks:
        outside = outside & ~hit.in_carpark
    off_junction = ~hit.junction
    changed = (hit.lane != state.lane) & off_junction
    after_junction = torch.cos(hit.heading - heading) < _COS_VEHICLE        # 120..240 deg off the lane
    flipped = torch.cos(state.lane_heading - hit.heading) < _COS_WAYPOINT    # 150..210 deg jump between lanes
    toggled = torch.where(state.lane_junction, after_junction, state.wrong_lane ^ flipped)
    wrong_lane = torch.where(changed, toggled, state.wrong_lane) & off_junction
    counted_out = outside | (wrong_lane & (ctx.wrong_direction_check | ~view.scenario_active))
    bits = (passed[:, 3:6] * const["bits"]).sum(-1)
    step_m = ctx.route_steps.flatten(1).gather(1, (state.lanes_index * 8 + bits)[:, None]).squeeze(1)
    lanes_index = torch.minimum(state.lanes_index + const["reach"].take(bits), ctx.route_last)
    total_m = state.total_m + step_m
    wrong_m = state.wrong_m + step_m * counted_out

    # --- CollisionTest: the first touching actor not deduplicated; then the tick's clean-up of the memory
    touching = boxes_touch(view.ego_pose, view.ego_size, view.actor_pose, view.actor_size) & view.actor_present
    slots = arange_constant(touching.shape[1], device)
    any_touch, slot = first_true(touching & (slots != state.collision_actor[:, None]))
    near_last = state.collision_near & ((ego_point - as_complex(state.collision_xy)).abs() <= COLLISION_RADIUS)
    collided = gate(any_touch & ~near_last & (speed >= COLLISION_MIN_SPEED))
    kind = pick(view.actor_kind, slot)
    collision_key = const["kind_key"].take(kind).masked_fill(~collided, -1)
    collision_time = torch.where(collided, now, state.collision_time)
    collision_xy = torch.where(collided[:, None], ego_xy, state.collision_xy)
    collision_near = collided | near_last        # a new collision is 0 m from its own location
    collision_actor = torch.where(collided, slot, state.collision_actor).masked_fill(
        now - collision_time > COLLISION_ID_TIME, -1)

    # --- RunningRedLightTest: tail segment across the stop line of a red light within 15 m, once per light
    none = torch.full_like(state.route_index, -1)
    red_light, last_red_light = none, state.last_red_light
    if ctx.has_lights:
        # the tail: from 0.8 x half length to half length + 1 m behind the centre
        behind = view.ego_size[:, 0:1] * const["tail_scale"] + const["tail_shift"]
        tail = ego_point[:, None] - behind * ego_dir[:, None]
        lights = arange_constant(ctx.light_valid.shape[1], device)
        ran = (ctx.light_valid & (_light_states(view.light_state, len(lights)) == int(LightStatus.RED))
               & (lights != state.last_red_light[:, None])
               & ((ctx.light_center_c - ego_point[:, None]).abs() <= RED_LIGHT_DISTANCE)
               & ((ctx.light_forward_c * ego_dir.conj()[:, None]).real > 0)
               & crosses_lines(tail, ctx.light_origin_c, ctx.light_frame_c, ctx.light_length))
        ran_any, ran_slot = first_true(ran)
        red_light = ran_slot.masked_fill(~gate(ran_any), -1)
        last_red_light = torch.where(red_light >= 0, red_light, state.last_red_light)

    # --- RunningStopTest: lane waypoints 0..4 m ahead against the trigger boxes; left without stopping
    stop_sign, stop_target = none, state.stop_target
    stop_completed, stop_last_failed = state.stop_completed, state.stop_last_failed
    if ctx.has_stops:
        lane_point = as_complex(hit.point)
        lane_dir = torch.polar(torch.ones_like(hit.heading), hit.heading)
        waypoints = lane_point[:, None] + const["ahead"] * lane_dir[:, None]
        center = ctx.stop_center_c
        affected = (ctx.stop_valid & (hit.lane >= 0)[:, None]
                    & ((center - lane_point[:, None]).abs() <= STOP_PROXIMITY)
                    & points_in_boxes(waypoints, center, ctx.stop_frame_c, ctx.stop_half))
        has_target = state.stop_target >= 0
        may_scan = (view.ego_speed >= STOP_REVERSE) & (torch.cos(heading - hit.heading) >= STOP_REVERSE)
        _, scan_slot = first_true(affected & may_scan[:, None])
        completed_stop = state.stop_completed | (has_target & (speed < STOP_SPEED))
        left_box = has_target & ~pick(affected, state.stop_target)
        rolled = gate(left_box & ~completed_stop & (state.stop_last_failed != state.stop_target))
        stop_sign = state.stop_target.masked_fill(~rolled, -1)
        stop_target = torch.where(has_target, state.stop_target.masked_fill(left_box, -1), scan_slot)
        stop_completed = completed_stop & ~left_box
        stop_last_failed = torch.where(rolled, state.stop_target, state.stop_last_failed)

    # --- MinSpeedTest: a checkpoint from the samples so far, then this tick's sample
    checkpoint = gate(rc_arc - state.checkpoint_m > ctx.route_length / MIN_SPEED_CHECKPOINTS)
    background = (view.actor_present & (view.actor_role == int(Role.BACKGROUND))
                  & const["is_vehicle"].take(view.actor_kind))
    n_background = background.sum(-1)
    has_traffic = n_background > 0
    keep = ~checkpoint
    ego_speed_sum = state.ego_speed_sum * keep + speed * has_traffic
    traffic_speed_sum = (state.traffic_speed_sum * keep
                         + (view.actor_speed.abs() * background).sum(-1) / n_background.clamp(min=1))
    speed_samples = state.speed_samples * keep + has_traffic
    checkpoint_m = torch.where(checkpoint, rc_arc, state.checkpoint_m)

    # --- InRouteTest: nearest of the next 6 points (a later index wins ties); > 30 m or > 30 % far away
    distance = rel[:, 6:].abs()
    nearest = (IN_ROUTE_WINDOW - distance.flip(-1).argmin(-1))[:, None]
    in_route_index = window[:, 6:].gather(1, nearest).squeeze(1)
    shortest = distance.gather(1, nearest).squeeze(1)
    on_route = shortest < OFFROAD_MAX
    in_safe_route = torch.where(on_route, shortest < OFFROAD_MIN, state.in_safe_route)
    out_route_m = state.out_route_m + (arc[:, 6:].gather(1, nearest).squeeze(1) - arc[:, 6]) * ~in_safe_route
    route_dev = gate(~on_route | (out_route_m * 100.0 > MAX_ROUTE_PERCENTAGE * ctx.route_length))

    # --- AgentBlockedTest, paused while the scenario runs (ScenarioTimeout switches it off and on again)
    active = view.scenario_active
    blocked_since = torch.where(first | (active != state.scenario_active), now, state.blocked_since)
    slow = speed < BLOCKED_SPEED
    blocked = gate(~active & slow & (now - blocked_since > BLOCKED_TIME))
    blocked_since = torch.where(active | slow, blocked_since, now)

    # --- ScenarioTimeout, YieldToEmergencyVehicle, RouteTimeoutBehavior
    trigger_time = torch.where(active & ~state.scenario_active, now, state.trigger_time)
    scenario_timeout = gate(active & ~state.scenario_timed_out & (now - trigger_time > SCENARIO_TIMEOUT))
    ytev_failing, ytev_checked, ytev = state.ytev_failing, state.ytev_checked, torch.zeros_like(live)
    if ctx.has_emergency:
        ytev_failing, ytev_ended, ytev = _yield_check(ctx, state, view)
        ytev = gate(ytev)
        ytev_checked = ytev_checked | ytev_ended
    start_time = torch.where(first, now, state.start_time)
    lanes_arc = ctx.route_arc.gather(1, lanes_index[:, None]).squeeze(1)
    route_timeout = gate(now - start_time > ROUTE_TIMEOUT_MIN + lanes_arc * ctx.timeout_rate)

    # --- outcome: statistics_manager's failure message priority is blocked > deviated > timed out
    done = completed | route_dev | blocked | route_timeout
    increments = torch.stack([
        collision_key == KEY["collisions_layout"], collision_key == KEY["collisions_pedestrian"],
        collision_key == KEY["collisions_vehicle"], red_light >= 0, stop_sign >= 0, torch.zeros_like(live), checkpoint,
        ytev, scenario_timeout, route_dev, blocked, route_timeout], -1)
    counts = state.counts + increments
    status = state.status
    if bool(done.any()):
        failure = torch.where(blocked, int(RouteStatus.BLOCKED), torch.where(
            route_dev, int(RouteStatus.DEVIATED), int(RouteStatus.TIMED_OUT)))
        status = torch.where(completed, _success_status(counts, wrong_m), torch.where(done, failure, status))
    new = CriteriaState(
        tick=view.tick, time=now, start_time=start_time, route_index=route_index, route_completion=completion,
        lanes_index=lanes_index, in_route_index=in_route_index, out_route_m=out_route_m, in_safe_route=in_safe_route,
        counts=counts, coefficient=state.coefficient * (1.0 - increments * const["drop"]).prod(-1),
        collision_actor=collision_actor, collision_time=collision_time, collision_xy=collision_xy,
        collision_near=collision_near, last_red_light=last_red_light, stop_target=stop_target,
        stop_completed=stop_completed, stop_last_failed=stop_last_failed, lane=hit.lane, lane_junction=hit.junction,
        lane_heading=hit.heading, wrong_lane=wrong_lane, total_m=total_m, wrong_m=wrong_m,
        blocked_since=blocked_since, scenario_active=active, trigger_time=trigger_time,
        scenario_timed_out=state.scenario_timed_out | scenario_timeout, ytev_failing=ytev_failing,
        ytev_checked=ytev_checked, checkpoint_m=checkpoint_m, ego_speed_sum=ego_speed_sum,
        traffic_speed_sum=traffic_speed_sum, speed_samples=speed_samples, done=done, status=status,
        finalized=state.finalized)
    merged = new
    if not all_run:                                  # done rows stay frozen; a tick past max_ticks ends its row
        merged = _merge(run, new, state)
        merged = replace(merged, done=merged.done | runtime,
                         status=merged.status.masked_fill(runtime, int(RouteStatus.TICK_RUNTIME)))
    events = TickEvents(
        collision_key=collision_key, collision_actor=slot.masked_fill(~collided, -1),
        collision_kind=kind.masked_fill(~collided, -1), red_light=red_light, stop_sign=stop_sign, min_speed=checkpoint,
        min_speed_ego=state.ego_speed_sum, min_speed_traffic=state.traffic_speed_sum,
        min_speed_samples=state.speed_samples,
        outside_lanes=gate(counted_out & (step_m > 0)), route_dev=route_dev, blocked=blocked,
        route_timeout=route_timeout, scenario_timeout=scenario_timeout, ytev=ytev, ego_xy=ego_xy, done=merged.done,
        status=merged.status, logged=increments.any(-1))     # every message kind is a column of increments
    return merged, events


def finalize(ctx: CriteriaContext, state: CriteriaState, view: TickView | None = None,
             rows: Tensor | None = None) -> tuple[CriteriaState, TickEvents]:
    """What the criteria log when a route stops (their `terminate`), once per route: (new state, events).

    rows (B,) bool, default the routes that are done and not yet finalized. MinSpeedTest logs a last
    checkpoint when more than 95 % of the route was passed; a YieldToEmergencyVehicleTest whose scenario
    still runs logs its failure. A row finalized while not done (the caller stopped it) ends as FAILED.
    `view` only supplies the events' ego location.
    """
    rows = (state.done if rows is None else rows) & ~state.finalized
    rc_arc = ctx.route_arc.gather(1, state.route_index[:, None]).squeeze(1)
    min_speed = rows & (rc_arc / ctx.route_length > MIN_SPEED_FINAL)
    ytev = rows & (ctx.emergency_actor >= 0) & state.scenario_active & ~state.ytev_checked & state.ytev_failing
    increments = torch.zeros_like(state.counts)
    increments[:, KEY["min_speed_infractions"]] = min_speed.long()
    increments[:, KEY["yield_emergency_vehicle_infractions"]] = ytev.long()
    counts = state.counts + increments
    status = torch.where(state.done, state.status, int(RouteStatus.FAILED))
    success = (status == int(RouteStatus.PERFECT)) | (status == int(RouteStatus.COMPLETED))
    status = torch.where(success, _success_status(counts, state.wrong_m), status)
    coefficient = state.coefficient * (1.0 - (1.0 - PENALTY["yield_emergency_vehicle_infractions"]) * ytev)
    new = replace(state, counts=counts, coefficient=coefficient, done=state.done | rows,
                  status=torch.where(rows, status, state.status), ytev_checked=state.ytev_checked | rows,
                  finalized=state.finalized | rows)
    none = torch.full_like(state.route_index, -1)
    false = torch.zeros_like(rows)
    events = TickEvents(
        collision_key=none, collision_actor=none, collision_kind=none, red_light=none, stop_sign=none,
        min_speed=min_speed, min_speed_ego=state.ego_speed_sum, min_speed_traffic=state.traffic_speed_sum,
        min_speed_samples=state.speed_samples, outside_lanes=false,
        route_dev=false, blocked=false, route_timeout=false, scenario_timeout=false, ytev=ytev,
        ego_xy=view.ego_pose[:, :2] if view is not None else torch.zeros_like(ctx.route_end),
        done=new.done, status=new.status)
    return new, events
