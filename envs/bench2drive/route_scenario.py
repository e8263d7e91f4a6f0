"""One Bench2Drive route as data: map, dense route, actors with their scripts, lights, stop signs.

This is the contract between the scenario catalog (`scenarios/bench2drive/`, which builds it), the
closed-loop world (`envs.bench2drive.world`, which batches and steps it), the criteria
(`envs.bench2drive.criteria`, which scores it) and the CARLA backend. Plain numpy, one route; frozen.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from envs.sim.map import RoadMap


class ActorKind(IntEnum):
    """What an actor is; decides its collision class (spec bench2drive.md §3.1) and how it is drawn."""

    VEHICLE = 0
    PEDESTRIAN = 1
    BICYCLE = 2
    STATIC = 3
    """Props, cones, debris, parked meshes: a `collisions_layout` infraction when hit."""
    EMERGENCY = 4
    """A vehicle with special lights (police, ambulance, fire truck); collides as a vehicle."""

    @property
    def collision_key(self) -> str:
        """The leaderboard infraction list a collision with this kind goes to."""
        if self is ActorKind.PEDESTRIAN:
            return "collisions_pedestrian"
        if self is ActorKind.STATIC:
            return "collisions_layout"
        return "collisions_vehicle"  # CARLA bicycles are `vehicle.*` blueprints


class Behaviour(IntEnum):
    """How an actor moves along its path once active."""

    IDM = 0
    """Follows leads on its path (ego included), stops at red lights and stop signs on its path."""
    CONSTANT = 1
    """Drives at its target speed whatever is in front (red-light runners, crossing walkers, flows
    that do not yield)."""
    PARKED = 2
    """Never moves."""


class Role(IntEnum):
    """Who the actor belongs to; background vehicles feed the min-speed (efficiency) criterion."""

    BACKGROUND = 0
    SCENARIO = 1


@dataclass(frozen=True)
class Trigger:
    """Fires once when the ego is within `distance` of `point`, or (if `time_to_arrival` is set) when
    ego distance / ego speed < `time_to_arrival` (the "sudden adversary" rule of spec §2)."""

    point: np.ndarray = field(metadata={"dims": "2"})
    """[m] global frame."""
    distance: float
    """[m]"""
    time_to_arrival: float | None = None
    """[s]"""


@dataclass(frozen=True)
class ActorSpec:
    """One actor of a route: a box that moves along its own polyline."""

    kind: ActorKind
    path: np.ndarray = field(metadata={"dims": "P 2"})
    """[m] global frame, in driving direction, >= 2 points; a parked/static actor may use 2 points."""
    size: tuple[float, float]
    """(length, width) [m]."""
    s0: float = 0.0
    """[m] arc length of the box centre on `path` at the start (or at spawn)."""
    speed0: float = 0.0
    """[m/s] speed before the trigger fires (0 for actors that wait)."""
    target_speed: float = 0.0
    """[m/s] desired speed once active (IDM v0, or the constant speed)."""
    behaviour: Behaviour = Behaviour.IDM
    role: Role = Role.BACKGROUND
    trigger: Trigger | None = None
    """None: active from tick 0. Otherwise the actor keeps `speed0` until the trigger fires."""
    spawn_delay: float = 0.0
    """[s] after the trigger (or tick 0) before the actor exists (invisible, not collidable)."""
    stop_after: float | None = None
    """[m] driven after activation, then it brakes to a stop and stays (HazardAtSideLane bikes)."""
    pause: tuple[float, float] | None = None
    """(delay, duration) [s] after activation: brake to a stop for `duration`, then resume
    (HardBreakRoute)."""
    despawn_after: float | None = None
    """[s] after activation the actor disappears (BlockedIntersection's stopped car)."""
    recycle: bool = False
    """At the end of its path the actor reappears at arc length 0 (continuous actor flows)."""
    width_after_trigger: float | None = None
    """[m] box width once triggered (VehicleOpensDoorTwoWays: the open door widens the box)."""
    lateral_offset: float = 0.0
    """[m] left-positive shift of the box from the path (InvadingTurn, parked obstacles)."""
    obeys_lights: bool = True
    """IDM actors stop at red lights/stop signs on their path; False for runners."""

    def __post_init__(self):
        path = np.asarray(self.path, dtype=np.float64)
        if path.ndim != 2 or path.shape[1] != 2 or len(path) < 2 or not np.isfinite(path).all():
            raise ValueError(f"path={self.path!r}: need a finite (P >= 2, 2) polyline")
        object.__setattr__(self, "path", path)
        for name in ("s0", "speed0", "target_speed", "spawn_delay"):
            value = getattr(self, name)
            if not (math.isfinite(value) and (name == "s0" or value >= 0.0)):
                raise ValueError(f"{name}={value!r}: must be finite" + ("" if name == "s0" else " and >= 0"))
        if len(self.size) != 2 or not all(math.isfinite(v) and v > 0 for v in self.size):
            raise ValueError(f"size={self.size!r}: need positive (length, width)")


@dataclass(frozen=True)
class LightProgram:
    """A traffic light as a pure function of time: optional `prelude` phases, then `cycle` repeated
    from `offset` seconds in. Phases are (LightStatus value, duration [s])."""

    cycle: tuple[tuple[int, float], ...]
    offset: float = 0.0
    prelude: tuple[tuple[int, float], ...] = ()
    """Frozen phases at the start (Vanilla*EncounterGreen/RedLight, Signalized* 'red for 5 s')."""


@dataclass(frozen=True)
class LightSpec:
    """One traffic light and the stop line it guards."""

    stop_line: np.ndarray = field(metadata={"dims": "2 2"})
    """[m] segment across the lanes it governs, at the stop position."""
    heading: float
    """[rad] direction of travel it governs (the ego must cross the line this way to run it)."""
    program: LightProgram
    lane_ids: tuple[str, ...] = ()
    """Lane connectors it governs (for IDM actors and the BEV)."""


@dataclass(frozen=True)
class StopSignSpec:
    """A stop sign: its trigger area in front of the stop line (spec §3.1 stop_infraction)."""

    center: np.ndarray = field(metadata={"dims": "2"})
    heading: float
    """[rad] direction of travel it governs."""
    length: float
    """[m] along `heading`."""
    width: float
    lane_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class RouteScenario:
    """Everything needed to run and score one route (one scenario) on the built-in simulator."""

    route_id: int
    """Index in the route set; records name it `RouteScenario_<route_id>_rep0`."""
    scenario_type: str
    """One of the 44 Bench2Drive types, e.g. "Accident"."""
    scenario_name: str
    """XML-style name, e.g. "Accident_1"."""
    town: str
    """Map name; built-in maps are "Builtin_<kind>_<seed>"."""
    road_map: RoadMap
    route: np.ndarray = field(metadata={"dims": "N 3"})
    """Dense route, ~1 m spacing: x, y [m], heading [rad]; the ego starts at route[0]."""
    speed_limit: float
    """[m/s] along the route (route-timeout rule, background speeds)."""
    actors: tuple[ActorSpec, ...] = ()
    lights: tuple[LightSpec, ...] = ()
    stop_signs: tuple[StopSignSpec, ...] = ()
    ego_speed0: float = 0.0
    """[m/s]"""
    trigger_index: int = 0
    """Dense-route index where the scenario triggers (ScenarioTimeout starts, TwoWays checks off)."""
    end_index: int | None = None
    """Dense-route index where the scenario is over (None: end of route)."""
    control_noise_points: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)), metadata={"dims": "K 2"})
    """ControlLoss debris: within 2 m of one, noise is added to the ego's control."""
    wrong_direction_check: bool = True
    """False in TwoWays scenarios between trigger and end (SwitchWrongDirectionTest(False))."""
    emergency_actor: int = -1
    """Index in `actors` of the YieldToEmergencyVehicle's emergency vehicle; -1 for none."""
    weather_id: str | None = None
    seed: int = 0

    def __post_init__(self):
        route = np.asarray(self.route, dtype=np.float64)
        if route.ndim != 2 or route.shape[1] != 3 or len(route) < 2 or not np.isfinite(route).all():
            raise ValueError(f"route shape={getattr(self.route, 'shape', None)!r}: need finite (N >= 2, 3)")
        object.__setattr__(self, "route", route)
        if not (math.isfinite(self.speed_limit) and self.speed_limit > 0):
            raise ValueError(f"speed_limit={self.speed_limit!r}: must be positive")
        if not -1 <= self.emergency_actor < len(self.actors):
            raise ValueError(f"emergency_actor={self.emergency_actor!r}: not an actor index")

    @property
    def abilities(self) -> tuple[str, ...]:
        """Bench2Drive abilities this route counts for (spec §3.7)."""
        from envs.metrics.bench2drive_results import ABILITY_NAMES, ABILITY_TYPES  # one table, shared

        return tuple(name for name in ABILITY_NAMES if self.scenario_type in ABILITY_TYPES[name])
