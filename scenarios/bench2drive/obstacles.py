"""Bench2Drive obstacle types (#1-#9, Overtaking): something blocks the ego's lane on a straight or curved
road and the ego passes it, through the neighbour lane (one-way types: that lane's traffic capped at the
XML `speed`) or through the oncoming lane against a scenario flow ("TwoWays": wrong-direction check off).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar

import numpy as np

from envs.bench2drive.route_scenario import ActorKind, ActorSpec, Behaviour, RouteScenario, Trigger
from envs.sim.mapgen import GeneratedMap
from scenarios import register_route
from scenarios.bench2drive.assemble import route_scenario
from scenarios.bench2drive.background import Background, opposite_lanes
from scenarios.bench2drive.common import (
    BICYCLE_SIZE, CONE_SIZE, POLICE_SIZE, B2DParams, Corridor, corridor, draw_trigger, flow, kmh, lane_corridor,
    lanes_beside, on_lane, parked, pick, road_corridors, road_start, span, start_trigger,
)
from scenarios.bench2drive.town import LANE_WIDTH
from scenarios.family import vehicle_size

ROAD_KINDS = ("straight", "curved")
SIDES = {"right": -1, "left": 1}
END_AFTER = 50.0
"""[m] the scenario ends this far past its last obstacle (spec §2: "end 50 m")."""
OPPOSITE_FLOW_FACTOR = 0.8
"""TwoWays oncoming flow speed as a fraction of its lane's limit (the spec gives no flow speed)."""
DOOR_WIDTH = 1.0
"""[m] an open car door widens the parked car's box by this much (VehicleOpensDoorTwoWays)."""
DOOR_TRIGGER = (3.0, 10.0)
"""(time to arrival [s], distance [m]) that opens the door (spec: reaction 3.0 s, min trigger 10 m)."""

Layout = Callable[[Corridor, float, int, Trigger, np.random.Generator], tuple[list[ActorSpec], float]]
"""layout(corridor, s of the first obstacle, side (+1 left, -1 right), scenario start trigger, rng)
-> (actors, arc length of the last obstacle)."""


# --------------------------------------------------------------------------- params


class ObstacleParams(B2DParams):
    """What `_obstacle_route` reads from an obstacle type's params: the side the obstacles lean to (+1 left,
    -1 right), the passing lane's speed cap [m/s] (one-way types) or the oncoming flow's spacing [m]
    (TwoWays types, None otherwise)."""

    side: ClassVar[int] = -1
    side_speed: ClassVar[float | None] = None
    spacing: ClassVar[tuple[float, float] | None] = None


@dataclass(frozen=True)
class OneWayParams(ObstacleParams):
    """Accident, ParkedObstacle, ConstructionObstacle (XML params of bench2drive220)."""

    distance: float = 42.0
    """[m] from the trigger point to the first obstacle (`distance`)."""
    direction: str = "right"
    """Side the obstacles are pushed towards; the ego passes on the other side (`direction`)."""
    speed: float = 55.0
    """[km/h] desired-speed cap of the passing lane's background traffic (`speed`, SetMaxSpeed)."""

    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {"direction": ("right", "left")}
    SAMPLED_CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {"direction": ("right",)}
    RANGES: ClassVar[dict[str, tuple[float, float]]] = {"distance": (40.0, 44.0), "speed": (53.0, 57.0)}

    @property
    def side(self) -> int:
        return SIDES[self.direction]

    @property
    def side_speed(self) -> float:
        return kmh(self.speed)


@dataclass(frozen=True)
class AccidentParams(OneWayParams):
    """Accident."""


@dataclass(frozen=True)
class ParkedObstacleParams(OneWayParams):
    """ParkedObstacle."""

    distance: float = 41.0
    speed: float = 50.0
    RANGES: ClassVar[dict[str, tuple[float, float]]] = {"distance": (40.0, 43.0), "speed": (40.0, 59.0)}


@dataclass(frozen=True)
class ConstructionParams(OneWayParams):
    """ConstructionObstacle."""

    speed: float = 50.0
    RANGES: ClassVar[dict[str, tuple[float, float]]] = {"distance": (40.0, 45.0), "speed": (47.0, 55.0)}


@dataclass(frozen=True)
class TwoWaysParams(ObstacleParams):
    """AccidentTwoWays: `distance` and the oncoming flow's spacing interval `frequency` [m]."""

    distance: float = 42.0
    frequency_from: float = 45.0
    frequency_to: float = 140.0
    RANGES: ClassVar[dict[str, tuple[float, float]]] = {
        "distance": (40.0, 44.0), "frequency_from": (32.0, 63.0), "frequency_to": (109.0, 184.0)}

    @property
    def spacing(self) -> tuple[float, float]:
        return self.frequency_from, self.frequency_to


@dataclass(frozen=True)
class ParkedTwoWaysParams(TwoWaysParams):
    """ParkedObstacleTwoWays."""

    RANGES: ClassVar[dict[str, tuple[float, float]]] = {
        "distance": (40.0, 44.0), "frequency_from": (31.0, 56.0), "frequency_to": (106.0, 151.0)}


@dataclass(frozen=True)
class ConstructionTwoWaysParams(TwoWaysParams):
    """ConstructionObstacleTwoWays."""

    frequency_from: float = 55.0
    frequency_to: float = 160.0
    RANGES: ClassVar[dict[str, tuple[float, float]]] = {
        "distance": (40.0, 45.0), "frequency_from": (43.0, 70.0), "frequency_to": (129.0, 200.0)}


@dataclass(frozen=True)
class DoorParams(TwoWaysParams):
    """VehicleOpensDoorTwoWays."""

    distance: float = 45.0
    frequency_from: float = 35.0
    frequency_to: float = 93.0
    RANGES: ClassVar[dict[str, tuple[float, float]]] = {
        "distance": (37.0, 59.0), "frequency_from": (30.0, 40.0), "frequency_to": (89.0, 98.0)}


@dataclass(frozen=True)
class HazardParams(ObstacleParams):
    """HazardAtSideLane: two slow bicycles ahead near the right edge of the ego lane."""

    distance: float = 43.0
    """[m] from the trigger point to the first bicycle."""
    speed: float = 45.0
    """[km/h] desired-speed cap of the passing lane's background traffic."""
    bicycle_drive_distance: float = 70.0
    """[m] the bicycles ride before stopping."""
    bicycle_speed: float = 9.0
    """[km/h] their speed (BasicAgent convention, spec §2 [uncertain])."""

    RANGES: ClassVar[dict[str, tuple[float, float]]] = {
        "distance": (41.0, 45.0), "speed": (32.0, 59.0), "bicycle_drive_distance": (40.0, 101.0),
        "bicycle_speed": (6.0, 12.0)}

    @property
    def side_speed(self) -> float:
        return kmh(self.speed)


@dataclass(frozen=True)
class HazardTwoWaysParams(ObstacleParams):
    """HazardAtSideLaneTwoWays: `frequency` is one value here, the oncoming flow's spacing [m]."""

    distance: float = 43.0
    frequency: float = 85.0
    bicycle_drive_distance: float = 95.0
    bicycle_speed: float = 9.0

    RANGES: ClassVar[dict[str, tuple[float, float]]] = {
        "distance": (41.0, 45.0), "frequency": (75.0, 100.0), "bicycle_drive_distance": (80.0, 116.0),
        "bicycle_speed": (7.0, 11.0)}

    @property
    def spacing(self) -> tuple[float, float]:
        return self.frequency, self.frequency


# --------------------------------------------------------------------------- layouts


def accident(path: Corridor, s: float, side: int, trigger: Trigger, rng: np.random.Generator):
    """Warning prop 6 m before a police car, crashed cars 10 m and 16 m after it (centre spacing), all
    shifted 0.6 x half a lane towards `side`."""
    lateral = side * 0.6 * LANE_WIDTH / 2
    actors = [parked(path, s - 6.0, lateral, (0.6, 0.6), ActorKind.STATIC),
              parked(path, s, lateral, POLICE_SIZE, ActorKind.EMERGENCY),
              parked(path, s + 10.0, lateral, vehicle_size(rng)), parked(path, s + 16.0, lateral, vehicle_size(rng))]
    return actors, s + 16.0


def parked_obstacle(path: Corridor, s: float, side: int, trigger: Trigger, rng: np.random.Generator):
    """One badly parked car, 0.7 x half a lane towards `side`."""
    return [parked(path, s, side * 0.7 * LANE_WIDTH / 2, vehicle_size(rng))], s


def construction(path: Corridor, s: float, side: int, trigger: Trigger, rng: np.random.Generator):
    """A cone taper across the lane (towards the passing side), the warning sign, a cone line along the
    boundary with the passing lane and a debris pile behind it: the whole lane is closed for ~20 m."""
    edge = LANE_WIDTH / 2 - 0.3
    taper = [parked(path, s - 9.0 + 3.0 * k, side * edge * (1 - k), CONE_SIZE, ActorKind.STATIC) for k in range(3)]
    line = [parked(path, s + 3.0 + 4.0 * k, -side * edge, CONE_SIZE, ActorKind.STATIC) for k in range(3)]
    sign = parked(path, s, 0.0, (0.8, 2.0), ActorKind.STATIC)
    debris = parked(path, s + 7.0, side * 0.4, (2.0, 1.8), ActorKind.STATIC)
    return [*taper, sign, *line, debris], s + 11.0


def hazard_bicycles(drive_distance: float, speed_kmh: float) -> Layout:
    """Two bicycles 9 m apart, 0.55 x half a lane right of the centre, riding `drive_distance` [m] at
    `speed_kmh` once the scenario triggers, then stopping."""

    def layout(path: Corridor, s: float, side: int, trigger: Trigger, rng: np.random.Generator):
        knots = ((0.0, -0.55 * LANE_WIDTH / 2),)
        bikes = [on_lane(path, s + gap, BICYCLE_SIZE, kmh(speed_kmh), behind=1.0, ahead=drive_distance + 20.0,
                         knots=knots, kind=ActorKind.BICYCLE, behaviour=Behaviour.CONSTANT, trigger=trigger,
                         stop_after=drive_distance, obeys_lights=False) for gap in (0.0, 9.0)]
        return bikes, s + 9.0 + drive_distance

    return layout


def opening_door(path: Corridor, s: float, side: int, trigger: Trigger, rng: np.random.Generator):
    """A car parked on the right kerb (0.8 m of it in the ego lane) whose door opens (+DOOR_WIDTH) when
    the ego is DOOR_TRIGGER away."""
    size = vehicle_size(rng, van=0.0)
    lateral = -(LANE_WIDTH / 2 + size[1] / 2 - 0.8)
    tta, distance = DOOR_TRIGGER
    car = parked(path, s, lateral, size, width_after_trigger=size[1] + DOOR_WIDTH,
                 trigger=Trigger(point=path.point(s, lateral), distance=distance, time_to_arrival=tta))
    return [car], s


# --------------------------------------------------------------------------- builders


def _passing_lanes(gen: GeneratedMap, side: int) -> list[tuple[str, ...]]:
    """Road corridors with a same-direction lane opposite to `side` (where the ego passes)."""
    passing = 0 if side < 0 else 1   # index into (left, right) lane counts
    return road_corridors(gen, lambda lanes: lanes_beside(gen, lanes[0])[passing] > 0)


def _single_lanes(gen: GeneratedMap) -> list[tuple[str, ...]]:
    """Road corridors of a one-lane-each-way road."""
    return road_corridors(gen, lambda lanes: lanes_beside(gen, lanes[0]) == (0, 0))


def _accepts(gen: GeneratedMap, params: ObstacleParams) -> bool:
    return bool(_passing_lanes(gen, params.side) if params.spacing is None else _single_lanes(gen))


def _obstacle_route(scenario_type: str, params: ObstacleParams, gen: GeneratedMap, rng: np.random.Generator,
                    layout: Layout) -> RouteScenario:
    """The ego on a road; `layout` places the obstacles `params.distance` past the trigger point. One-way
    types: the passing lane's traffic capped at `params.side_speed`. TwoWays: a single lane each way and an
    oncoming flow with gaps from `params.spacing` [m]."""
    side, spacing, distance = params.side, params.spacing, params.distance
    lanes = pick(rng, _passing_lanes(gen, side) if spacing is None else _single_lanes(gen))
    path = corridor(gen.map, lanes)
    trigger_at = draw_trigger(rng)
    provisional = span(trigger_at + distance + 30.0 + END_AFTER)
    s_start = road_start(rng, path, provisional)
    s_first = s_start + trigger_at + distance
    actors, s_last = layout(path, s_first, side, start_trigger(path, s_start + trigger_at), rng)
    end_at = s_last - s_start + END_AFTER
    length = min(span(end_at + 5.0), path.length - s_start - 5.0)
    if spacing is None:
        return route_scenario(scenario_type, gen, path, s_start, length, rng, trigger_at, actors=actors,
                              end_at=end_at, background=Background(side_speed=params.side_speed))
    oncoming = lane_corridor(gen, opposite_lanes(gen, path.point(s_start), path.heading(s_start), 1)[0], 300.0, 60.0)
    source = float(oncoming.project(path.point(s_start + length))[0]) - 20.0
    sink = float(oncoming.project(path.point(s_start))[0]) + 30.0
    limit = gen.map.lanes_by_id[oncoming.lane_at(sink)].speed_limit or 13.9
    actors += flow(oncoming, source, sink, OPPOSITE_FLOW_FACTOR * limit, spacing, rng)
    return route_scenario(scenario_type, gen, path, s_start, length, rng, trigger_at, actors=actors, end_at=end_at,
                          background=Background(opposite=False), wrong_direction_check=False)


@register_route("Accident", "O", ROAD_KINDS, _accepts)
def build_accident(params: AccidentParams, gen: GeneratedMap, rng: np.random.Generator) -> RouteScenario:
    """Police car and two crashed cars in the ego lane; change lanes to pass."""
    return _obstacle_route("Accident", params, gen, rng, accident)


@register_route("AccidentTwoWays", "O", ROAD_KINDS, _accepts)
def build_accident_two_ways(params: TwoWaysParams, gen: GeneratedMap, rng: np.random.Generator) -> RouteScenario:
    """The accident on a one-lane-each-way road: pass through the oncoming lane between its flow's gaps."""
    return _obstacle_route("AccidentTwoWays", params, gen, rng, accident)


@register_route("ParkedObstacle", "O", ROAD_KINDS, _accepts)
def build_parked(params: ParkedObstacleParams, gen: GeneratedMap, rng: np.random.Generator) -> RouteScenario:
    """A badly parked car blocks the lane; change lanes to pass."""
    return _obstacle_route("ParkedObstacle", params, gen, rng, parked_obstacle)


@register_route("ParkedObstacleTwoWays", "O", ROAD_KINDS, _accepts)
def build_parked_two_ways(params: ParkedTwoWaysParams, gen: GeneratedMap, rng: np.random.Generator) -> RouteScenario:
    """The parked car on a one-lane-each-way road, passed through the oncoming lane."""
    return _obstacle_route("ParkedObstacleTwoWays", params, gen, rng, parked_obstacle)


@register_route("ConstructionObstacle", "O", ROAD_KINDS, _accepts)
def build_construction(params: ConstructionParams, gen: GeneratedMap, rng: np.random.Generator) -> RouteScenario:
    """A construction zone closes the lane; change lanes to pass."""
    return _obstacle_route("ConstructionObstacle", params, gen, rng, construction)


@register_route("ConstructionObstacleTwoWays", "O", ROAD_KINDS, _accepts)
def build_construction_two_ways(params: ConstructionTwoWaysParams, gen: GeneratedMap,
                                rng: np.random.Generator) -> RouteScenario:
    """The construction zone on a one-lane-each-way road, passed through the oncoming lane."""
    return _obstacle_route("ConstructionObstacleTwoWays", params, gen, rng, construction)


@register_route("HazardAtSideLane", "O", ROAD_KINDS, _accepts)
def build_hazard(params: HazardParams, gen: GeneratedMap, rng: np.random.Generator) -> RouteScenario:
    """Two slow bicycles ride ahead near the right edge; overtake them through the left lane."""
    layout = hazard_bicycles(params.bicycle_drive_distance, params.bicycle_speed)
    return _obstacle_route("HazardAtSideLane", params, gen, rng, layout)


@register_route("HazardAtSideLaneTwoWays", "O", ROAD_KINDS, _accepts)
def build_hazard_two_ways(params: HazardTwoWaysParams, gen: GeneratedMap, rng: np.random.Generator) -> RouteScenario:
    """The two bicycles on a one-lane-each-way road, overtaken through the oncoming lane."""
    layout = hazard_bicycles(params.bicycle_drive_distance, params.bicycle_speed)
    return _obstacle_route("HazardAtSideLaneTwoWays", params, gen, rng, layout)


@register_route("VehicleOpensDoorTwoWays", "O", ROAD_KINDS, _accepts)
def build_door(params: DoorParams, gen: GeneratedMap, rng: np.random.Generator) -> RouteScenario:
    """A parked car opens its door into the lane as the ego comes; swerve through the oncoming lane."""
    return _obstacle_route("VehicleOpensDoorTwoWays", params, gen, rng, opening_door)
