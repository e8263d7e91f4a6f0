"""The built-in Bench2Drive closed-loop world: B routes stepped together at 20 Hz by a pure function
(ego from control, scripted/IDM actors, traffic-light programs, ControlLoss noise), seen as a TickView.

Frames: global x, y [m], heading counter-clockwise [rad]. Control follows CARLA: steer > 0 turns right.
Ego model: `vehicle_control.ego_step`; actors: `world_actors.actor_step` (both document their laws).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field, fields
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from envs.bench2drive.route_scenario import RouteScenario
from envs.bench2drive.tick import TickView
from envs.bench2drive.vehicle_control import MKZ_2020, check_control, ego_step
from envs.bench2drive.world_actors import ActorTables, ActorTick, actor_step, actor_tables, initial_actors
from envs.sim.scene import LightStatus

CONTROL_NOISE_RADIUS = 2.0
"""[m] ControlLoss: noise is added while the ego is this close to a debris point (scenario_runner
`ControlLoss._trigger_dist`)."""
CONTROL_NOISE = (0.03, 0.01, 0.055, 0.015)
"""ControlLoss throttle mean, throttle std, steer mean, steer std (scenario_runner `control_loss.py`);
each debris draws the sign of both means once (seeded by RouteScenario.seed)."""
ROUTE_WINDOW = 8
"""Route points searched ahead of the current one each tick (>= 1 m/tick at 20 Hz is 72 km/h)."""


@dataclass(frozen=True)
class WorldStatic:
    """Everything fixed for a batch of B routes (N route points, L lights, K noise points, Q phases)."""

    route: Tensor = field(metadata={"dims": "B N 3", "pad": 0.0})
    """Dense route x, y [m], heading [rad]; padding repeats the last point (see route_count)."""
    route_count: Tensor = field(metadata={"dims": "B", "pad": 0})
    """Valid dense-route points (int64)."""
    route_table: Tensor = field(metadata={"dims": "B N 6", "pad": 0.0})
    """Route point n: x, y, 1 / segment length, unit direction x, y and length [m] of the segment to n + 1."""
    trigger_index: Tensor = field(metadata={"dims": "B", "pad": 0})
    end_index: Tensor = field(metadata={"dims": "B", "pad": 0})
    """Route index where the scenario ends (route_count when RouteScenario.end_index is None)."""
    speed_limit: Tensor = field(metadata={"dims": "B", "pad": 1.0})
    ego_size: Tensor = field(metadata={"dims": "B 2", "pad": 1.0})
    actors: ActorTables
    light_valid: Tensor = field(metadata={"dims": "B L", "pad": False})
    phase_end: Tensor = field(metadata={"dims": "B L Q", "pad": math.inf})
    """[s] end time of each phase: prelude phases, then one cycle shifted by the prelude length."""
    phase_state: Tensor = field(metadata={"dims": "B L Q", "pad": int(LightStatus.UNKNOWN)})
    prelude_time: Tensor = field(metadata={"dims": "B L", "pad": 0.0})
    cycle_time: Tensor = field(metadata={"dims": "B L", "pad": 1.0})
    cycle_offset: Tensor = field(metadata={"dims": "B L", "pad": 0.0})
    noise_points: Tensor = field(metadata={"dims": "B K 2", "pad": 0.0})
    noise_valid: Tensor = field(metadata={"dims": "B K", "pad": False})
    noise_mean: Tensor = field(metadata={"dims": "B K 3", "pad": 0.0})
    """Signed steer and throttle means of each debris point (control order; brake 0)."""
    dt: float = 0.05
    """[s] per tick."""
    # derived index helpers for the route search
    window_offsets: Tensor = field(init=False, metadata={"dims": "1 W"})
    noise_std: Tensor = field(init=False, metadata={"dims": "1 3"})
    control_low: Tensor = field(init=False, metadata={"dims": "1 3"})
    control_high: Tensor = field(init=False, metadata={"dims": "1 3"})
    last_segment: Tensor = field(init=False, metadata={"dims": "B 1"})
    route_row: Tensor = field(init=False, metadata={"dims": "B 1"})

    def __post_init__(self):
        device = self.route.device
        batch, num_route = self.route.shape[:2]
        object.__setattr__(self, "window_offsets", torch.arange(ROUTE_WINDOW, device=device)[None])
        as_row = lambda values: torch.tensor([values], dtype=torch.float64, device=device)  # noqa: E731
        object.__setattr__(self, "noise_std", as_row([CONTROL_NOISE[3], CONTROL_NOISE[1], 0.0]))
        object.__setattr__(self, "control_low", as_row([-1.0, 0.0, 0.0]))
        object.__setattr__(self, "control_high", as_row([1.0, 1.0, 1.0]))
        object.__setattr__(self, "last_segment", (self.route_count - 2).clamp(min=0)[:, None])
        object.__setattr__(self, "route_row", torch.arange(batch, device=device)[:, None] * num_route)

    @property
    def batch(self) -> int:
        return self.route.shape[0]


@dataclass(frozen=True)
class WorldState:
    """The world after a tick (B routes, A actor slots, S stop signs, L lights)."""

    ego_pose: Tensor = field(metadata={"dims": "B 3"})
    """Box centre x, y [m], heading [rad]."""
    ego_speed: Tensor = field(metadata={"dims": "B"})
    ego_velocity: Tensor = field(metadata={"dims": "B 2"})
    """[m/s] world-frame velocity (speed along the heading)."""
    ego_accel: Tensor = field(metadata={"dims": "B 2"})
    """[m/s^2] world-frame acceleration over the last tick (change of ego_velocity / dt)."""
    ego_accel_long: Tensor = field(metadata={"dims": "B"})
    ego_yaw_rate: Tensor = field(metadata={"dims": "B"})
    ego_steer: Tensor = field(metadata={"dims": "B"})
    """Front-wheel angle [rad], positive left (after the steering lag)."""
    route_index: Tensor = field(metadata={"dims": "B"})
    """Nearest dense-route segment start (int64), monotone (searched ROUTE_WINDOW ahead)."""
    route_position: Tensor = field(metadata={"dims": "B"})
    """Fractional route index of the ego centre's projection (route_index + fraction of the segment)."""
    actor_s: Tensor = field(metadata={"dims": "B A"})
    actor_speed: Tensor = field(metadata={"dims": "B A"})
    actor_pose: Tensor = field(metadata={"dims": "B A 3"})
    activated: Tensor = field(metadata={"dims": "B A"})
    activation_time: Tensor = field(metadata={"dims": "B A"})
    """[s] clock time the actor's trigger fired (0 without trigger, inf before)."""
    activation_s: Tensor = field(metadata={"dims": "B A"})
    actor_present: Tensor = field(metadata={"dims": "B A"})
    actor_gone: Tensor = field(metadata={"dims": "B A"})
    sign_wait: Tensor = field(metadata={"dims": "B A S"})
    sign_done: Tensor = field(metadata={"dims": "B A S"})
    light_state: Tensor = field(metadata={"dims": "B L"})
    scenario_active: Tensor = field(metadata={"dims": "B"})
    time: Tensor = field(metadata={"dims": "B"})
    """[s] since reset."""
    tick: Tensor = field(metadata={"dims": "B"})
    """Ticks since reset (int64)."""


# --------------------------------------------------------------------------- init


def _light_tables(scenarios: Sequence[RouteScenario]) -> dict[str, np.ndarray]:
    num_lights = max(len(s.lights) for s in scenarios)
    num_phases = max([len(l.program.prelude) + len(l.program.cycle) for s in scenarios for l in s.lights] + [1])
    out = {
        "light_valid": np.zeros((len(scenarios), num_lights), dtype=bool),
        "phase_end": np.full((len(scenarios), num_lights, num_phases), math.inf),
        "phase_state": np.full((len(scenarios), num_lights, num_phases), int(LightStatus.UNKNOWN), dtype=np.int64),
        "prelude_time": np.zeros((len(scenarios), num_lights)),
        "cycle_time": np.ones((len(scenarios), num_lights)),
        "cycle_offset": np.zeros((len(scenarios), num_lights)),
    }
    for b, scenario in enumerate(scenarios):
        for k, light in enumerate(scenario.lights):
            program = light.program
            durations = [d for _, d in program.prelude] + [d for _, d in program.cycle]
            if not program.cycle or not all(math.isfinite(d) and d > 0 for d in durations):
                raise ValueError(f"lights[{k}].program={program!r}: need a non-empty cycle of positive durations")
            prelude = sum(d for _, d in program.prelude)
            ends = np.cumsum(durations)
            phases = [int(state) for state, _ in (*program.prelude, *program.cycle)]
            out["light_valid"][b, k] = True
            out["phase_end"][b, k, : len(ends)] = ends
            out["phase_state"][b, k, : len(phases)] = phases
            out["prelude_time"][b, k] = prelude
            out["cycle_time"][b, k] = ends[-1] - prelude
            out["cycle_offset"][b, k] = program.offset
    return out


def _noise_tables(scenarios: Sequence[RouteScenario]) -> dict[str, np.ndarray]:
    num_points = max(len(s.control_noise_points) for s in scenarios)
    points = np.zeros((len(scenarios), num_points, 2))
    valid = np.zeros((len(scenarios), num_points), dtype=bool)
    mean = np.zeros((len(scenarios), num_points, 3))
    throttle_mean, _, steer_mean, _ = CONTROL_NOISE
    for b, scenario in enumerate(scenarios):
        count = len(scenario.control_noise_points)
        if count:
            points[b, :count] = np.asarray(scenario.control_noise_points, float)[:, :2]
            valid[b, :count] = True
            signs = np.random.default_rng(scenario.seed).choice([-1.0, 1.0], size=(count, 2))
            mean[b, :count, :2] = signs * np.array([steer_mean, throttle_mean])
    return {"noise_points": points, "noise_valid": valid, "noise_mean": mean}


def world_init(scenarios: Sequence[RouteScenario], device=None, dt: float = 0.05,
               min_actors: int = 0) -> tuple[WorldStatic, WorldState]:
    """Batch B routes: static tables and the state at tick 0 (ego at route[0] with ego_speed0).

    min_actors pads the actor axis to at least this many slots (fixed observation sizes).
    """
    if len(scenarios) == 0:
        raise ValueError("scenarios=[]: need at least one RouteScenario")
    if not (isinstance(dt, (int, float)) and math.isfinite(dt) and dt > 0):
        raise ValueError(f"dt={dt!r}: must be a positive number of seconds")
    num_route = max(len(s.route) for s in scenarios)
    route = np.zeros((len(scenarios), num_route, 3))
    segment = np.zeros((len(scenarios), num_route, 3))
    for b, scenario in enumerate(scenarios):
        points = scenario.route
        route[b, : len(points)] = points
        route[b, len(points):] = points[-1]
        delta = np.diff(points[:, :2], axis=0)
        length = np.hypot(delta[:, 0], delta[:, 1])
        unit = np.where(length[:, None] > 1e-9, delta / np.maximum(length, 1e-9)[:, None],
                        np.stack([np.cos(points[:-1, 2]), np.sin(points[:-1, 2])], -1))
        segment[b, : len(points) - 1] = np.concatenate([unit, length[:, None]], -1)
    as_tensor = lambda a: torch.as_tensor(a, device=device)  # noqa: E731
    counts = [len(s.route) for s in scenarios]
    extras = {**_light_tables(scenarios), **_noise_tables(scenarios)}
    static = WorldStatic(
        route=as_tensor(route), route_count=as_tensor(np.array(counts, dtype=np.int64)),
        route_table=as_tensor(np.concatenate([route[..., :2], 1.0 / np.maximum(segment[..., 2:], 1e-9), segment],
                                             -1)),
        trigger_index=as_tensor(np.array([s.trigger_index for s in scenarios], dtype=np.int64)),
        end_index=as_tensor(np.array([len(s.route) if s.end_index is None else s.end_index for s in scenarios],
                                     dtype=np.int64)),
        speed_limit=as_tensor(np.array([s.speed_limit for s in scenarios], dtype=np.float64)),
        ego_size=as_tensor(np.tile([MKZ_2020.length, MKZ_2020.width], (len(scenarios), 1)).astype(np.float64)),
        actors=actor_tables(scenarios, device, min_actors),
        dt=float(dt),
        **{name: as_tensor(value) for name, value in extras.items()},
    )
    batch = len(scenarios)
    zeros = torch.zeros(batch, dtype=torch.float64, device=device)
    ego_pose = static.route[:, 0].clone()
    ego_speed = torch.as_tensor([s.ego_speed0 for s in scenarios], dtype=torch.float64, device=device)
    actors = initial_actors(static.actors)
    route_index = torch.zeros(batch, dtype=torch.int64, device=device)
    state = WorldState(
        ego_pose=ego_pose, ego_speed=ego_speed,
        ego_velocity=ego_speed[:, None] * torch.stack([torch.cos(ego_pose[:, 2]), torch.sin(ego_pose[:, 2])], -1),
        ego_accel=torch.zeros(batch, 2, dtype=torch.float64, device=device),
        ego_accel_long=zeros, ego_yaw_rate=zeros.clone(), ego_steer=zeros.clone(),
        route_index=route_index, route_position=zeros.clone(),
        **_actor_fields(actors),
        light_state=_light_state(static, zeros),
        scenario_active=(route_index >= static.trigger_index) & (route_index < static.end_index),
        time=zeros.clone(), tick=torch.zeros(batch, dtype=torch.int64, device=device),
    )
    return static, state


def _actor_fields(actors: ActorTick) -> dict[str, Tensor]:
    return dict(actor_s=actors.s, actor_speed=actors.speed, actor_pose=actors.pose, activated=actors.activated,
                activation_time=actors.activation_time, activation_s=actors.activation_s,
                actor_present=actors.present, actor_gone=actors.gone, sign_wait=actors.sign_wait,
                sign_done=actors.sign_done)


# --------------------------------------------------------------------------- step


def _light_state(static: WorldStatic, time: Tensor) -> Tensor:
    """(B, L) LightStatus at clock time (B,) [s]: prelude phases, then the cycle from its offset."""
    if static.phase_end.shape[1] == 0:
        return torch.zeros(static.batch, 0, dtype=torch.int64, device=time.device)
    t = time[:, None]
    in_cycle = t - static.prelude_time
    cyclic = static.prelude_time + torch.remainder(in_cycle + static.cycle_offset, static.cycle_time)
    local = torch.where(in_cycle < 0, t, cyclic)
    phase = (static.phase_end <= local[..., None]).sum(-1, keepdim=True)
    phase = phase.clamp(max=static.phase_state.shape[-1] - 1)
    state = static.phase_state.gather(-1, phase)[..., 0]
    return torch.where(static.light_valid, state, int(LightStatus.UNKNOWN))


def _route_progress(static: WorldStatic, route_index: Tensor, ego_xy: Tensor) -> tuple[Tensor, Tensor]:
    """Project the ego centre on route segments [index, index + ROUTE_WINDOW) and keep the nearest:
    its start index (B,) int64 and (index + fraction along it, along [m], lateral [m, left +]) (B, 3)."""
    batch = route_index.shape[0]
    index = torch.minimum(route_index[:, None] + static.window_offsets, static.last_segment)          # (B, W)
    table = static.route_table.reshape(-1, 6).index_select(0, (static.route_row + index).reshape(-1))
    x, y, inv_length, ux, uy, length = table.reshape(batch, ROUTE_WINDOW, 6).unbind(-1)
    dx, dy = ego_xy[:, 0:1] - x, ego_xy[:, 1:2] - y
    along = dx * ux + dy * uy
    t = torch.minimum(along.clamp(min=0.0), length)
    lateral = ux * dy - uy * dx
    best = (lateral.square() + (along - t).square()).argmin(-1, keepdim=True)
    picked = torch.stack([torch.addcmul(index.to(x.dtype), t, inv_length), t, lateral], -1)
    picked = picked.gather(1, best[..., None].expand(batch, 1, 3))[:, 0]
    return index.gather(1, best)[:, 0], picked


def _control_noise(static: WorldStatic, ego_xy: Tensor, control: Tensor, generator) -> Tensor:
    """Add ControlLoss noise to steer and throttle (then clip) while within CONTROL_NOISE_RADIUS of a
    debris point: N(mean, std) per tick with the debris' signed means (means only without generator)."""
    offset = static.noise_points - ego_xy[:, None]
    near = static.noise_valid & ((offset * offset).sum(-1) < CONTROL_NOISE_RADIUS ** 2)
    noise = (static.noise_mean * near[..., None]).sum(1)                                       # (B, 3)
    if generator is not None:
        draw = torch.randn(control.shape, generator=generator, dtype=control.dtype, device=generator.device)
        noise = noise + draw.to(control.device) * static.noise_std * near.any(1, keepdim=True)
    return torch.clamp(control + noise, static.control_low, static.control_high)


def world_step(static: WorldStatic, state: WorldState, control: Tensor,
               generator: torch.Generator | None = None) -> tuple[WorldState, TickView]:
    """Advance every route one tick: control (B, 3) = steer [-1, 1] (positive turns right, CARLA's
    sign), throttle [0, 1], brake [0, 1] (clipped; wrong shape or non-finite raises). `generator`
    draws the ControlLoss noise (without it only the noise means apply)."""
    control = check_control(control, state.tick.shape[0], torch.float64, state.ego_pose.device)
    if static.noise_points.shape[1] > 0:
        control = _control_noise(static, state.ego_pose[:, :2], control, generator)
    pose, speed, wheel, accel_long, velocity, yaw_rate = ego_step(
        state.ego_pose, state.ego_speed, state.ego_steer, control, static.dt)
    tick = state.tick + 1
    time = tick.to(torch.float64) * static.dt
    route_index, route = _route_progress(static, state.route_index, pose[:, :2])
    light_state = _light_state(static, time)
    actors = actor_step(static.actors, _actor_tick(state), time, static.dt, pose[:, :2], speed, route_index,
                        route[:, 1:], light_state if light_state.shape[1] else None)
    new_state = WorldState(
        ego_pose=pose, ego_speed=speed, ego_velocity=velocity,
        ego_accel=(velocity - state.ego_velocity) * (1.0 / static.dt), ego_accel_long=accel_long,
        ego_yaw_rate=yaw_rate, ego_steer=wheel, route_index=route_index, route_position=route[:, 0],
        **_actor_fields(actors), light_state=light_state,
        scenario_active=(route_index >= static.trigger_index) & (route_index < static.end_index),
        time=time, tick=tick,
    )
    return new_state, tick_view(static, new_state)


def _actor_tick(state: WorldState) -> ActorTick:
    return ActorTick(s=state.actor_s, speed=state.actor_speed, pose=state.actor_pose, activated=state.activated,
                     activation_time=state.activation_time, activation_s=state.activation_s,
                     present=state.actor_present, gone=state.actor_gone, sign_wait=state.sign_wait,
                     sign_done=state.sign_done)


def tick_view(static: WorldStatic, state: WorldState) -> TickView:
    """What the criteria, observations and backends see of a state (also right after reset)."""
    tables = static.actors
    return TickView(
        ego_pose=state.ego_pose, ego_speed=state.ego_speed, ego_accel=state.ego_accel,
        ego_yaw_rate=state.ego_yaw_rate, ego_size=static.ego_size, actor_pose=state.actor_pose,
        actor_speed=state.actor_speed,
        actor_size=torch.where(state.activated[..., None], tables.size_triggered, tables.size),
        actor_kind=tables.kind, actor_role=tables.role, actor_present=state.actor_present,
        light_state=state.light_state, tick=state.tick, dt=static.dt, scenario_active=state.scenario_active,
    )


# --------------------------------------------------------------------------- autoreset


def _pad_tensor(value: Tensor, dims: Sequence[str], sizes: dict[str, int], pad) -> Tensor:
    widths = []
    for axis, letter in reversed(list(enumerate(dims))):
        extra = sizes.get(letter, value.shape[axis]) - value.shape[axis] if not letter.isdigit() else 0
        widths += [0, extra]
    if not any(widths):
        return value
    if value.dtype == torch.bool:
        return torch.nn.functional.pad(value.to(torch.uint8), widths, value=int(pad)).to(torch.bool)
    return torch.nn.functional.pad(value, widths, value=pad)


_STATE_PAD = {"activation_time": math.inf, "light_state": int(LightStatus.UNKNOWN), "actor_pose": 0.0}


@functools.lru_cache(maxsize=None)
def _layout(cls) -> tuple[tuple[str, tuple[str, ...] | None, object], ...]:
    """(name, dims letters (None: not a tensor field), pad value or None) of each init field of a world dataclass."""
    out = []
    for f in fields(cls):
        if f.init:
            dims = tuple(f.metadata["dims"].split()) if "dims" in f.metadata else None
            out.append((f.name, dims, f.metadata.get("pad", _STATE_PAD.get(f.name))))
    return tuple(out)


def _pad_of(value: Tensor, pad):
    return pad if pad is not None else (False if value.dtype == torch.bool else 0)


def _sizes(obj, sizes: dict[str, int]) -> None:
    for name, dims, _ in _layout(type(obj)):
        value = getattr(obj, name)
        if hasattr(value, "__dataclass_fields__"):
            _sizes(value, sizes)
        elif dims is not None and isinstance(value, Tensor):
            for letter, size in zip(dims, value.shape):
                if letter != "B" and not letter.isdigit() and size > sizes.get(letter, 0):
                    sizes[letter] = size


def _fieldwise(old, new, combine):
    """A dataclass like `old` (nested ones recursed) whose tensor fields are combine(a, b, dims, pad) of the
    fields a of `old` and b of `new`; other fields are `old`'s. Derived fields are recomputed."""
    values = {}
    for name, dims, pad in _layout(type(old)):
        a, b = getattr(old, name), getattr(new, name)
        if hasattr(a, "__dataclass_fields__"):
            values[name] = _fieldwise(a, b, combine)
        else:
            values[name] = combine(a, b, dims, _pad_of(a, pad)) if isinstance(a, Tensor) else a
    return type(old)(**values)


def _merge(old, new, rows: Tensor, sizes: dict[str, int]):
    """Field-wise: pad both to `sizes`, then take `new` where rows (B,) is True (new has B or rows.sum() rows)."""
    def combine(a: Tensor, b: Tensor, dims, pad) -> Tensor:
        a, b = _pad_tensor(a, dims, sizes, pad), _pad_tensor(b, dims, sizes, pad).to(a.device)
        if b.shape[0] == a.shape[0]:
            return torch.where(rows.reshape(-1, *([1] * (a.dim() - 1))), b, a)
        merged = a.clone()
        merged[rows] = b
        return merged
    return _fieldwise(old, new, combine)


def _write_rows(old, new, index: Tensor, sizes: dict[str, int]):
    """Field-wise: pad `new` (index.numel() rows) to `sizes` and write it into `old`'s rows `index` in place;
    the result is a fresh dataclass over the same tensors."""
    return _fieldwise(old, new, lambda a, b, dims, pad: a.index_copy_(
        0, index, _pad_tensor(b, dims, sizes, pad).to(a.device)))


def reset_rows(static: WorldStatic, state: WorldState, fresh_static: WorldStatic, fresh_state: WorldState,
               rows: Tensor, inplace: bool = False) -> tuple[WorldStatic, WorldState]:
    """Replace the rows (B,) bool of a batch by freshly initialised ones (vector-env autoreset).

    fresh_* come from `world_init` with either B routes (rows picked where True) or exactly rows.sum()
    routes (in order). Padded axes (actors, lights, ...) grow to the larger of the two batches.
    inplace: when the fresh routes fit `static`'s padded sizes, write them into its tensors (the cost is
    that of the rows, not of the batch's tables; `static` is changed and must not be used afterwards);
    otherwise, and for the state, as without it.
    """
    if rows.dtype != torch.bool or tuple(rows.shape) != (static.batch,):
        raise ValueError(f"rows.shape={tuple(rows.shape)!r}, dtype={rows.dtype}: expected ({static.batch},) bool")
    if fresh_static.batch not in (static.batch, int(rows.sum())):
        raise ValueError(f"fresh_static.batch={fresh_static.batch!r}: expected {static.batch} or "
                         f"rows.sum()={int(rows.sum())}")
    if fresh_static.dt != static.dt:
        raise ValueError(f"fresh_static.dt={fresh_static.dt!r}: must equal dt={static.dt!r}")
    sizes: dict[str, int] = {}
    for obj in (static, state):
        _sizes(obj, sizes)
    current = dict(sizes)
    for obj in (fresh_static, fresh_state):
        _sizes(obj, sizes)
    if not inplace or sizes != current:
        return _merge(static, fresh_static, rows, sizes), _merge(state, fresh_state, rows, sizes)
    index = rows.nonzero()[:, 0]
    if fresh_static.batch != index.numel():          # a full batch of fresh routes: keep the chosen rows
        fresh_static = _take_rows(fresh_static, index)
    return _write_rows(static, fresh_static, index, sizes), _merge(state, fresh_state, rows, sizes)


def _take_rows(obj, index: Tensor):
    """The rows `index` of every batched tensor of a (nested) world dataclass."""
    values = {}
    for f in fields(obj):
        if f.init:
            value = getattr(obj, f.name)
            values[f.name] = (_take_rows(value, index) if hasattr(value, "__dataclass_fields__") else
                              value.index_select(0, index.to(value.device)) if isinstance(value, Tensor) else value)
    return type(obj)(**values)


def route_progress_index(state: WorldState) -> Tensor:
    """(B,) nearest dense-route index of the ego (monotone), as tracked by the world."""
    return state.route_index
