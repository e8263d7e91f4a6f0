"""What the long-tail families share: range-checked params, the registry of drive planners (a family
that can be simulated over any `Timeline`, for two-stage groups), the plan -> simulate -> scene path
with its "alert human" retry, and placing the ego, parked objects and background traffic."""

from __future__ import annotations

import copy
import math
from dataclasses import replace
from typing import Any, Callable, ClassVar

import numpy as np

from envs.sim.mapgen import GeneratedMap, MapGenConfig, generate_map
from envs.sim.route import path_project
from envs.sim.scene import STEP_S, AgentType, Scene
from envs.sim.vehicle import PACIFICA
from scenarios.drive import (
    PATH_AHEAD, SPEED_CAP, AgentPlan, Drive, Rollout, Timeline, concat_lanes, drive_scene, lane_length, lane_walk,
    map_is_valid, path_plan, pose_on, simulate_drive, touching_agents,
)
from scenarios.lanes import lane_offset, parallel_lanes, points_at, shift_path

Planner = Callable[[Any, np.random.Generator, Timeline, bool], Drive]

PLANNERS: dict[str, Planner] = {}
"""Drive planners by family name: `plan(params, rng, timeline, alert) -> Drive`."""

ALERT_REACTION_S = 0.0
"""[s] reaction time of the "alert" human a family falls back to when its human would hit the agent
the scenario is about (a log never shows the human crashing; that agent would vanish from it)."""


class RangedParams:
    """Mixin for a family's frozen params dataclass: `RANGES` (numeric, ints stay ints) and `CHOICES`
    (strings) bound what `sample` draws and what `__post_init__` accepts, by field name."""

    RANGES: ClassVar[dict[str, tuple[float, float]]] = {}
    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {}

    def __post_init__(self):
        for name, options in self.CHOICES.items():
            value = getattr(self, name)
            if value not in options:
                raise ValueError(f"{name}={value!r}: must be one of {', '.join(map(repr, options))}")
        for name, (low, high) in self.RANGES.items():
            value = getattr(self, name)
            if isinstance(low, int) and not (isinstance(value, (int, np.integer)) and not isinstance(value, bool)):
                raise ValueError(f"{name}={value!r}: must be an int")
            if not (isinstance(value, (int, float, np.integer, np.floating)) and low <= value <= high):
                raise ValueError(f"{name}={value!r}: must lie in [{low}, {high}]")

    @classmethod
    def sample(cls, rng: np.random.Generator):
        """Uniform draws within the ranges and choices."""
        draw = {name: options[int(rng.integers(len(options)))] for name, options in cls.CHOICES.items()}
        draw.update({name: int(rng.integers(low, high + 1)) if isinstance(low, int) else float(rng.uniform(low, high))
                     for name, (low, high) in cls.RANGES.items()})
        return cls(**draw)


def drive_planner(name: str) -> Callable[[Planner], Planner]:
    """Decorator registering `plan(params, rng, timeline, alert) -> Drive` as the planner of family `name`."""

    def decorate(plan: Planner) -> Planner:
        known = PLANNERS.get(name)
        if known is not None and (known.__module__, known.__qualname__) != (plan.__module__, plan.__qualname__):
            raise ValueError(f"name={name!r}: planner already registered by {known.__module__}")
        PLANNERS[name] = plan
        return plan

    return decorate


def simulate_planned(plan: Planner, params: Any, rng: np.random.Generator,
                     timeline: Timeline = Timeline()) -> tuple[Drive, Rollout]:
    """Plan and simulate a drive; if the human touches one of `drive.key_agents` anywhere a scene can be
    cut from the rollout, re-plan from the same rng state with `alert=True`."""
    state = copy.deepcopy(rng.bit_generator.state)
    drive = plan(params, rng, timeline, False)
    rollout = simulate_drive(drive)
    if drive.key_agents and _touches_key(drive, rollout):
        rng.bit_generator.state = state
        drive = plan(params, rng, timeline, True)
        rollout = simulate_drive(drive)
    return drive, rollout


def _touches_key(drive: Drive, rollout: Rollout) -> bool:
    t0, total = drive.timeline.history_steps, drive.timeline.total_steps
    nows = sorted({t0, max(16, t0 - 5), total - 40})
    key = np.asarray(drive.key_agents) - 1
    return any(bool(touching_agents(drive, rollout, now)[key].any()) for now in nows)


def planned_scene(plan: Planner, params: Any, rng: np.random.Generator, name: str) -> Scene:
    """The family's scene at t0 (default timeline)."""
    drive, rollout = simulate_planned(plan, params, rng)
    return drive_scene(drive, rollout, rng.bytes(8).hex(), name)


# --------------------------------------------------------------------------- maps and placement


def road_config(timeline: Timeline, lanes: tuple[int, int] = (1, 4)) -> MapGenConfig:
    """Map generator settings: `lanes` per direction, and longer roads/arms for long timelines so the
    route never ends within the drive."""
    long = timeline.end_s > 4.0 + 1e-9
    return MapGenConfig(lanes_per_direction_range=lanes, num_segments_range=(5, 6) if long else (3, 5),
                        arm_segments=3 if long else 2)


def valid_map(kind: str, rng: np.random.Generator, config: MapGenConfig,
              accept: Callable[[GeneratedMap], bool] = lambda gen: True) -> GeneratedMap:
    """A map of the given kind that scene/1 accepts and `accept` likes (up to 20 draws)."""
    for _ in range(20):
        gen = generate_map(kind, rng, config)
        if map_is_valid(gen.map) and accept(gen):
            return gen
    raise ValueError(f"kind={kind!r}: no acceptable map in 20 draws")


def path_ahead(timeline: Timeline) -> float:
    """[m] path kept ahead of an agent's start: PATH_AHEAD plus what a long timeline adds at SPEED_CAP."""
    return PATH_AHEAD + SPEED_CAP * max(0.0, timeline.end_s - 4.0)


def lanes_length(gen: GeneratedMap, lane_ids) -> float:
    """[m] summed centerline length of the lanes."""
    return float(sum(lane_length(gen.map.lanes_by_id[i]) for i in lane_ids))


def ego_plan(gen: GeneratedMap, lanes, rear_s: float, speed: float, desired: float, timeline: Timeline,
             **kw) -> AgentPlan:
    """The ego on `lanes` with its rear axle near arc length `rear_s` [m] at t0 (placed back by its
    speed over the history, which it drives at about constant speed), wanting speed `desired` [m/s]."""
    limit = min(gen.map.lanes_by_id[lanes[0]].speed_limit or SPEED_CAP, SPEED_CAP)
    start = max(0.5, rear_s + PACIFICA.rear_axle_to_center - speed * -timeline.start_s)
    return path_plan(gen, lanes, start, speed, (PACIFICA.length, PACIFICA.width), desired / limit,
                     ahead=path_ahead(timeline), **kw)


def start_s(s_t0: float, speed: float, timeline: Timeline) -> float:
    """Arc length at the first simulated step of an agent at `s_t0` at t0 moving at constant speed."""
    return s_t0 - speed * -timeline.start_s


def scripted_start(s_t0: float, v_start: float, script: np.ndarray, timeline: Timeline) -> float:
    """Arc length at the first step of a scripted agent that is at `s_t0` at t0: the simulation moves
    it by 0.1 s x (its speed before each step), the first speed `v_start`, then the script."""
    before = np.concatenate([[v_start], script[:timeline.history_steps - 1]])
    return s_t0 - STEP_S * float(before.sum())


def stationary(centre: np.ndarray, heading: float, size, kind: AgentType) -> AgentPlan:
    """A static object (parked car, cone, barrier, sign) at a box centre."""
    direction = np.array([math.cos(heading), math.sin(heading)])
    return AgentPlan(path=np.stack([centre - direction, centre + direction]), s=1.0, speed=0.0, size=tuple(size),
                     type=kind, is_reactive=False)


def vehicle_size(rng: np.random.Generator, van: float = 0.1) -> tuple[float, float]:
    """Length, width [m]: a car, or with probability `van` a van / small truck."""
    if rng.random() < van:
        return float(rng.uniform(6.0, 9.0)), float(rng.uniform(2.2, 2.5))
    return float(rng.uniform(4.2, 5.2)), float(rng.uniform(1.8, 2.1))


def is_clear(centre: np.ndarray, radius: float, placed: list[tuple[np.ndarray, float]]) -> bool:
    """Is a disc (centre (2,), radius [m]) clear of every placed (centre, radius) disc?"""
    return all(float(np.hypot(*(centre - c))) > radius + r for c, r in placed)


def add_traffic(gen: GeneratedMap, plans: list[AgentPlan], placed: list[tuple[np.ndarray, float]],
                rng: np.random.Generator, count: int, near: np.ndarray, timeline: Timeline,
                avoid_lanes=frozenset(), keep_out: tuple[np.ndarray, float] | None = None) -> None:
    """Append up to `count` reactive vehicles on random lanes within 70 m of `near` (none starting on
    `avoid_lanes`, none within `keep_out` = (polyline, half width) of a path); `placed` grows."""
    road_map = gen.map
    nearby = [lane for lane in (*road_map.lanes, *road_map.lane_connectors)
              if lane.id not in avoid_lanes and np.hypot(*(lane.centerline - near).T).min() < 70.0]
    if not nearby:
        return
    walk = 150.0 + SPEED_CAP * max(0.0, timeline.end_s - 4.0)
    for _ in range(count):
        size = vehicle_size(rng)
        factor = float(rng.uniform(0.7, 1.0))
        speed = 0.0 if rng.random() < 0.15 else float(rng.uniform(0.4, 0.9)) * factor * SPEED_CAP
        for _ in range(10):
            start = nearby[int(rng.integers(len(nearby)))]
            lanes = lane_walk(road_map, start.id, walk, rng)
            s = float(rng.uniform(0.0, lane_length(start)))
            plan = path_plan(gen, lanes, s, speed, size, factor, ahead=path_ahead(timeline))
            centre = pose_on(plan.path, plan.s)[:2]
            if keep_out is not None:
                line, half = keep_out
                if float(np.hypot(*(line - centre).T).min()) < half:
                    continue
            if is_clear(centre, size[0] / 2 + 1.5, placed):
                plans.append(plan)
                placed.append((centre, size[0] / 2 + 1.5))
                break


def road_start(gen: GeneratedMap, rng: np.random.Generator, behind: float, ahead: float,
               accept: Callable[[tuple[str, ...]], bool] = lambda lanes: True) -> tuple[tuple[str, ...], float] | None:
    """(lane sequence, ego rear-axle arc length at t0) on a random spawn lane whose sequence (followed to
    its end) has `behind` [m] before and `ahead` [m] after the ego; None if no lane fits."""
    spawn = list(gen.spawn_lanes)
    rng.shuffle(spawn)
    for lane_id in spawn:
        lanes = lane_walk(gen.map, lane_id, 1e9, rng)
        total = lanes_length(gen, lanes)
        if total - ahead >= behind and accept(lanes):
            return lanes, float(rng.uniform(behind, total - ahead))
    return None


EDGE_INSET = 0.3
"""[m] a lane change into a lane at the road edge ends this far from its centre, away from the edge
(drivers keep off the kerb; the scorer's LQR tracking cuts curves by a few tenths of a metre)."""


def lane_change_path(gen: GeneratedMap, lanes, side: int, s_start: float, length: float):
    """(full path (P, 2), neighbour lane ids, lateral offset [m]): the centerline of `lanes` moving
    smoothly into the neighbour lanes on `side` (+1 left, -1 right) between arc lengths s_start and
    s_start + length (EDGE_INSET short of an edge lane's centre); None without neighbours there."""
    target = parallel_lanes(gen.map, lanes, side)
    if target is None:
        return None
    offset = lane_offset(gen.map, lanes[0], target[0])
    if parallel_lanes(gen.map, target, side) is None:
        offset -= math.copysign(EDGE_INSET, offset)
    path, _ = concat_lanes(gen.map, lanes)
    return shift_path(path, ((s_start, 0.0), (s_start + length, offset))), target, offset


def matching_arc(gen: GeneratedMap, lanes, s: float, other_lanes) -> float:
    """Arc length on `other_lanes` (a parallel lane sequence) level with arc length s on `lanes`."""
    path, _ = concat_lanes(gen.map, lanes)
    other, _ = concat_lanes(gen.map, other_lanes)
    return float(path_project(other, points_at(path, np.array([s])))[0])


def lane_traffic(gen: GeneratedMap, lanes, plans: list[AgentPlan], placed: list[tuple[np.ndarray, float]],
                 rng: np.random.Generator, positions, timeline: Timeline) -> None:
    """Reactive vehicles on a lane sequence: `positions` = (centre arc length at t0 [m], speed [m/s]) each,
    placed back along the lane by their speed over the history; `placed` grows."""
    for s_t0, speed in positions:
        size = vehicle_size(rng)
        s = start_s(s_t0, speed, timeline)
        if s < 1.0 or s_t0 > lanes_length(gen, lanes) - 20.0:
            continue
        limit = min(gen.map.lanes_by_id[lanes[0]].speed_limit or SPEED_CAP, SPEED_CAP)
        plan = path_plan(gen, lanes, s, speed, size, min(1.0, speed / limit + 0.05), ahead=path_ahead(timeline))
        plans.append(plan)
        placed.append((pose_on(plan.path, plan.s)[:2], size[0] / 2 + 1.5))


def road_drive_start(kind: str, rng: np.random.Generator, config: MapGenConfig, behind: float, ahead: float,
                     accept: Callable[[GeneratedMap, tuple[str, ...]], bool] = lambda gen, lanes: True):
    """(map, lane sequence, ego rear-axle arc length at t0): `road_start` on up to 20 valid maps."""
    for _ in range(20):
        gen = valid_map(kind, rng, config)
        start = road_start(gen, rng, behind, ahead, accept=lambda lanes: accept(gen, lanes))
        if start is not None:
            return gen, *start
    raise ValueError(f"kind={kind!r}: no lane with {behind:.0f} m behind and {ahead:.0f} m ahead in 20 maps")


def slow_zone(plan: AgentPlan, s_from: float, s_to: float, speed: float) -> AgentPlan:
    """The plan with its desired speed lowered to `speed` [m/s] between arc lengths s_from and s_to [m]
    (full lane-sequence coordinates), as a slower stretch of lane that the IDM anticipates."""
    lo, hi = s_from - plan.path_offset, s_to - plan.path_offset
    starts = list(plan.lane_starts)
    limit_after = next((limit for at, limit in reversed(starts) if at <= hi), starts[0][1])
    kept = [(at, limit) for at, limit in starts if not lo <= at <= hi]
    zone_limit = speed / max(plan.speed_factor, 1e-6)
    merged = sorted(kept + [(lo, zone_limit), (hi, limit_after)])
    return replace(plan, lane_starts=tuple(merged))
