"""What the Bench2Drive scenario builders share: range-checked params, lane corridors (lane centrelines as
one polyline with arc length), road lanes and their neighbours, the dense 1 m route and actor specs
(parked, on a lane, crossing, actor flows)."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Callable, ClassVar

import numpy as np

from envs.bench2drive.route_scenario import ActorKind, ActorSpec, Behaviour, Role, Trigger
from envs.sim.map import RoadMap
from envs.sim.mapgen import GeneratedMap
from envs.sim.route import path_project
from scenarios.bench2drive.town import LANE_WIDTH
from scenarios.family import RangedParams, vehicle_size
from scenarios.lanes import approach_lanes, arc_lengths, follow_lanes, offset_profile, points_at

ROUTE_STEP = 1.0
"""[m] spacing of the dense route (GlobalRoutePlanner(map, 1.0), spec §1.3)."""
ACTOR_PATH_STEP = 2.0
"""[m] vertex spacing of actor paths (finer is not needed: lane changes span >= 8 m)."""
ROUTE_LENGTH = (100.0, 150.0)
"""[m] route lengths the builders aim for (bench2drive220: median 103 m, most 50-150 m; spec §1.2)."""
BEHIND_ROOM = 40.0
"""[m] of lane kept behind the route start (background behind the ego, emergency vehicle spawn)."""
TRIGGER_AT = (5.0, 15.0)
"""[m] from the route start to the scenario trigger point (bench2drive220: 0-26 m, median 8 m)."""
TRIGGER_RADIUS = 3.0
"""[m] an actor started "when the scenario triggers" fires when the ego is this close to the trigger
point (the leaderboard uses the route point nearest the ego within 2 m; the world measures from the ego
centre, which may sit a little off the route)."""
EGO_CLEARANCE = (10.0, 2.0)
"""No flow vehicle starts closer to the ego than 10 m + 2 s at its speed (one coming from behind in the
ego's lane must be able to stop)."""

POLICE_SIZE = (4.9, 2.0)
EMERGENCY_SIZE = (6.4, 2.4)
"""Ambulance-sized emergency vehicle (YieldToEmergencyVehicle, red-light runner)."""
BICYCLE_SIZE = (1.8, 0.7)
WALKER_SIZE = (0.6, 0.6)
CONE_SIZE = (0.4, 0.4)


class B2DParams(RangedParams):
    """Params of a Bench2Drive type: `RangedParams` checks plus `<name>_from <= <name>_to` for interval
    params (XML `<name from=".." to=".."/>`); `SAMPLED_CHOICES` narrows what `sample` draws for a choice
    to the values bench2drive220 uses, while `CHOICES` lists every value the builder supports;
    `SAMPLED_RANGES` does the same for numbers (a fixed value in the route files, a range accepted)."""

    SAMPLED_CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {}
    SAMPLED_RANGES: ClassVar[dict[str, tuple[float, float]]] = {}

    def __post_init__(self):
        super().__post_init__()
        for name in self.RANGES:
            upper = name[:-len("_from")] + "_to"
            if name.endswith("_from") and upper in self.RANGES and getattr(self, name) > getattr(self, upper):
                raise ValueError(f"{name}={getattr(self, name)!r}: must not exceed {upper}={getattr(self, upper)!r}")

    @classmethod
    def sample(cls, rng: np.random.Generator):
        params = super().sample(rng)
        narrowed = {name: options[int(rng.integers(len(options)))] for name, options in cls.SAMPLED_CHOICES.items()}
        narrowed.update({name: draw(rng, bounds) for name, bounds in cls.SAMPLED_RANGES.items()})
        return replace(params, **narrowed)


@dataclass(frozen=True)
class NoParams(B2DParams):
    """A type without XML params (HardBreakRoute, ControlLoss, PedestrianCrossing...)."""


def kmh(speed: float) -> float:
    """km/h -> m/s."""
    return speed / 3.6


def draw(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(rng.uniform(*bounds))


def draw_trigger(rng: np.random.Generator, bounds: tuple[float, float] = TRIGGER_AT) -> float:
    """[m] route start to trigger point, whole metres: the trigger point is a dense route point."""
    return float(round(draw(rng, bounds)))


# --------------------------------------------------------------------------- corridors and the route


@dataclass(frozen=True)
class Corridor:
    """Consecutive lanes as one centreline polyline; positions along it are arc lengths s [m]."""

    lanes: tuple[str, ...]
    xy: np.ndarray
    """(P, 2) [m] centreline vertices (the map's ~1 m spacing)."""
    lane_starts: tuple[float, ...]
    """[m] arc length where each lane begins."""

    @cached_property
    def arc(self) -> np.ndarray:
        return arc_lengths(self.xy)

    @property
    def length(self) -> float:
        return float(self.arc[-1])

    def lane_start(self, lane_id: str) -> float:
        return self.lane_starts[self.lanes.index(lane_id)]

    def lane_end(self, lane_id: str) -> float:
        k = self.lanes.index(lane_id)
        return self.lane_starts[k + 1] if k + 1 < len(self.lanes) else self.length

    def lane_at(self, s: float) -> str:
        return self.lanes[max(0, int(np.searchsorted(self.lane_starts, s, side="right")) - 1)]

    def points(self, s, lateral=0.0) -> np.ndarray:
        """(N, 2) points at arc lengths s (N,), `lateral` [m] to the left."""
        return points_at(self.xy, np.atleast_1d(np.asarray(s, np.float64)), lateral)

    def point(self, s: float, lateral: float = 0.0) -> np.ndarray:
        return self.points([s], lateral)[0]

    def heading(self, s: float) -> float:
        """[rad] direction of travel at arc length s."""
        a, b = self.points([s - 0.5, s + 0.5])
        return math.atan2(b[1] - a[1], b[0] - a[0])

    def project(self, xy) -> np.ndarray:
        """(N,) arc lengths of the points (N, 2) projected on the centreline."""
        return path_project(self.xy, np.atleast_2d(np.asarray(xy, np.float64)))

    def path(self, s_from: float, s_to: float, knots=(), step: float = ACTOR_PATH_STEP) -> np.ndarray:
        """(Q, 2) the centreline between two arc lengths, shifted left by `offset_profile(s, knots)` (a
        lane change or nudge); knots in corridor arc lengths."""
        s_from, s_to = max(0.0, s_from), min(self.length, s_to)
        s = np.append(np.arange(s_from, s_to, step), s_to)
        return self.points(s, offset_profile(s, knots) if knots else 0.0)


def corridor(road_map: RoadMap, lanes) -> Corridor:
    """The corridor of a lane sequence (joint vertices shared by consecutive lanes appear once)."""
    parts, starts, total = [], [], 0.0
    for lane_id in lanes:
        line = np.asarray(road_map.lanes_by_id[lane_id].centerline, np.float64)
        if parts:
            total += float(np.hypot(*(line[0] - parts[-1][-1])))
            if np.allclose(line[0], parts[-1][-1]):
                line = line[1:]
        starts.append(total)
        total += float(arc_lengths(line)[-1]) if len(line) > 1 else 0.0
        parts.append(line)
    return Corridor(tuple(lanes), np.concatenate(parts), tuple(starts))


def lane_corridor(gen: GeneratedMap, lane_id: str, behind: float, ahead: float) -> Corridor:
    """The corridor through `lane_id`: its first predecessors over `behind` [m], first successors `ahead`."""
    return corridor(gen.map, approach_lanes(gen.map, lane_id, behind)[:-1] + follow_lanes(gen.map, (lane_id,), ahead))


def dense_route(path: Corridor, s_start: float, length: float, knots=()) -> np.ndarray:
    """(N, 3) x, y [m], heading [rad] every ROUTE_STEP from s_start over `length` [m] (knots: lateral
    offsets as in `Corridor.path`)."""
    s = s_start + np.arange(0.0, length + 1e-9, ROUTE_STEP)
    xy = path.points(s, offset_profile(s, knots) if knots else 0.0)
    step = np.diff(xy, axis=0)
    heading = np.arctan2(step[:, 1], step[:, 0])
    return np.concatenate([xy, np.append(heading, heading[-1])[:, None]], 1)


ROAD_NEED = BEHIND_ROOM + ROUTE_LENGTH[1] + 5.0
"""[m] corridor a road scenario needs: room behind, the longest route, a little beyond."""


def road_corridors(gen: GeneratedMap, accept: Callable[[tuple[str, ...]], bool] = lambda lanes: True,
                   need: float = ROAD_NEED) -> list[tuple[str, ...]]:
    """Lane sequences from a road's start (lanes without predecessors) to its end, without junctions,
    at least `need` [m] long and liked by `accept`; in map order."""
    road_map, out = gen.map, []
    for lane in road_map.lanes:
        if lane.predecessors:
            continue
        lanes = follow_lanes(road_map, (lane.id,), 1e9)
        if any(road_map.lanes_by_id[i].is_connector for i in lanes):
            continue
        if sum(float(arc_lengths(road_map.lanes_by_id[i].centerline)[-1]) for i in lanes) >= need and accept(lanes):
            out.append(lanes)
    return out


def siblings(gen: GeneratedMap, lane_id: str) -> list[tuple[float, str]]:
    """(lateral offset [m], lane id) of the other lanes of `lane_id`'s roadblock, left positive (built-in
    roadblocks are parallel lanes, so the offset of each one's vertex nearest the lane middle decides)."""
    lanes = gen.map.lanes_by_id
    line = np.asarray(lanes[lane_id].centerline)
    k = len(line) // 2
    middle, step = line[k], line[min(k + 1, len(line) - 1)] - line[max(k - 1, 0)]
    direction = step / max(float(np.hypot(*step)), 1e-12)
    out = []
    for other in gen.map.roadblock_lane_ids[lanes[lane_id].roadblock_id]:
        points = np.asarray(lanes[other].centerline)
        rel = points[int(np.argmin(np.hypot(*(points - middle).T)))] - middle
        lateral = float(direction[0] * rel[1] - direction[1] * rel[0])
        if abs(lateral) > 0.5:
            out.append((lateral, other))
    return out


def lanes_beside(gen: GeneratedMap, lane_id: str) -> tuple[int, int]:
    """(lanes on the left, lanes on the right) of `lane_id` in its roadblock (same direction)."""
    offsets = [lateral for lateral, _ in siblings(gen, lane_id)]
    return sum(d > 0 for d in offsets), sum(d < 0 for d in offsets)


def neighbours(gen: GeneratedMap, lanes, side: int) -> tuple[str, ...]:
    """The lane next to each lane of a sequence on `side` (+1 left, -1 right); ValueError if one has none."""
    out = []
    for lane_id in lanes:
        beside = [(abs(d), other) for d, other in siblings(gen, lane_id) if d * side > 0]
        if not beside:
            raise ValueError(f"lane_id={lane_id!r}: no lane on side {side}")
        out.append(min(beside)[1])
    return tuple(out)


def road_edges(gen: GeneratedMap, lane_id: str) -> tuple[float, float]:
    """(right, left) lateral offsets [m] of the road's kerbs from `lane_id`'s centre, the oncoming half
    included (built-in roads have as many lanes each way)."""
    left, right = lanes_beside(gen, lane_id)
    width = LANE_WIDTH
    return -(width / 2 + right * width), width / 2 + left * width + (left + right + 1) * width


def pick(rng: np.random.Generator, options):
    """One of a non-empty sequence, uniformly."""
    return options[int(rng.integers(len(options)))]


def road_start(rng: np.random.Generator, path: Corridor, length: float) -> float:
    """A random route start s [m] on a corridor of at least ROAD_NEED metres, BEHIND_ROOM from its start."""
    return draw(rng, (BEHIND_ROOM, max(BEHIND_ROOM, path.length - length - 5.0)))


def span(length: float) -> float:
    """A route length [m] kept within ROUTE_LENGTH."""
    return float(np.clip(length, *ROUTE_LENGTH))


# --------------------------------------------------------------------------- actors


def parked(path: Corridor, s: float, lateral: float, size, kind: ActorKind = ActorKind.VEHICLE,
           role: Role = Role.SCENARIO, **kw) -> ActorSpec:
    """A box that never moves, centred `lateral` [m] left of the corridor at arc length s, aligned with it."""
    centre, heading = path.point(s, lateral), path.heading(s)
    direction = np.array([math.cos(heading), math.sin(heading)])
    return ActorSpec(kind=kind, path=np.stack([centre - direction, centre + direction]), size=tuple(size), s0=1.0,
                     behaviour=Behaviour.PARKED, role=role, **kw)


def on_lane(path: Corridor, s: float, size, target_speed: float, behind: float = 5.0, ahead: float = 250.0,
            knots=(), kind: ActorKind = ActorKind.VEHICLE, behaviour: Behaviour = Behaviour.IDM,
            role: Role = Role.SCENARIO, **kw) -> ActorSpec:
    """An actor driving along the corridor from arc length s (its path from s - behind to s + ahead)."""
    start = max(0.0, s - behind)
    return ActorSpec(kind=kind, path=path.path(start, s + ahead, knots), size=tuple(size), s0=s - start,
                     target_speed=target_speed, behaviour=behaviour, role=role, **kw)


def crossing(path: Corridor, s: float, start_lateral: float, end_lateral: float, speed: float, size,
             kind: ActorKind, time_to_arrival: float, min_distance: float, angle: float = 0.0,
             along: float = 0.0, trigger: Trigger | None = None) -> ActorSpec:
    """A walker/bike crossing the corridor at arc length s + `along`, from `start_lateral` to `end_lateral`
    [m] (left positive), `angle` [deg] off the perpendicular, at a constant `speed` [m/s] once the ego's
    time to arrival at the crossing point drops below `time_to_arrival` [s] or it is within `min_distance`
    [m] ("sudden adversary" trigger, spec §2); before that it waits at its start. `trigger` replaces that
    trigger (a group crossing together)."""
    centre = path.point(s)
    heading = path.heading(s)
    tangent = np.array([math.cos(heading), math.sin(heading)])
    normal = np.array([-tangent[1], tangent[0]])
    lean = math.tan(math.radians(angle))
    start = centre + normal * start_lateral + tangent * (along + lean * abs(start_lateral))
    end = centre + normal * end_lateral + tangent * (along - lean * abs(end_lateral))
    return ActorSpec(kind=kind, path=np.stack([start, end]), size=tuple(size), target_speed=speed,
                     behaviour=Behaviour.CONSTANT, role=Role.SCENARIO,
                     trigger=trigger or Trigger(point=centre + tangent * along, distance=min_distance,
                                                time_to_arrival=time_to_arrival), obeys_lights=False)


def flow(path: Corridor, s_source: float, s_sink: float, speed: float, spacing: tuple[float, float],
         rng: np.random.Generator, kind: ActorKind = ActorKind.VEHICLE, size=None, max_count: int = 8,
         knots=(), **kw) -> list[ActorSpec]:
    """A continuous actor flow (ActorFlow, spec §2): vehicles at gaps drawn from `spacing` [m], driving
    from s_source to s_sink at `speed` [m/s] and recycled at the source. The source is moved back so the
    path is exactly the sum of the gaps: the flow stays periodic with every gap (the wrap-around one
    included) in the interval. At most `max_count` actors (a wider last gap beyond that); `knots` shift
    the flow's path sideways as in `Corridor.path`."""
    gaps = []
    while sum(gaps) < s_sink - s_source:
        gaps.append(draw(rng, spacing))
    start = max(0.0, s_sink - sum(gaps))
    line = path.path(start, s_sink, knots)
    phase = draw(rng, (0.0, gaps[0]))
    total = float(arc_lengths(line)[-1])
    offsets = (np.concatenate([[0.0], np.cumsum(gaps[:-1])])[:max_count] + phase) % max(total, 1e-6)
    return [ActorSpec(kind=kind, path=line, size=tuple(size or vehicle_size(rng)), s0=float(s0), speed0=speed,
                      target_speed=speed, role=Role.SCENARIO, recycle=True, **kw) for s0 in offsets]


def actor_xy(actor: ActorSpec) -> np.ndarray:
    """(2,) where an actor's box centre starts."""
    return points_at(actor.path, np.array([actor.s0]))[0]


def start_trigger(path: Corridor, s: float) -> Trigger:
    """Fires when the ego reaches the trigger point at arc length s of its (unshifted) route corridor:
    the scenario starts (spec §1.3 step 5)."""
    return Trigger(point=path.point(s), distance=TRIGGER_RADIUS)
