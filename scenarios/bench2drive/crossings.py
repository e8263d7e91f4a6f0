"""Bench2Drive types where someone crosses the ego's path (#14-#21, Emergency_Brake, most also
Traffic_Signs): hidden or between-parked-cars pedestrians on a road, pedestrians and cyclists at the
built-in 4-way junction, vehicles running a red light or taking priority, and a car stopped past the
junction. Crossers are CONSTANT actors started by the "sudden adversary" trigger (time to arrival or
distance, spec §2)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from envs.bench2drive.route_scenario import ActorKind, ActorSpec, Behaviour, Role, RouteScenario, Trigger
from envs.sim.mapgen import GeneratedMap
from scenarios import register_route
from scenarios.bench2drive.assemble import route_scenario
from scenarios.bench2drive.background import Background
from scenarios.bench2drive.common import (
    BICYCLE_SIZE, EMERGENCY_SIZE, WALKER_SIZE, B2DParams, NoParams, corridor, crossing, draw_trigger, kmh,
    lanes_beside, parked, pick, road_corridors, road_edges, road_start, span,
)
from scenarios.bench2drive.junctions import JunctionPath, approach_from, first_crossing, junction_route, turning
from scenarios.bench2drive.obstacles import ROAD_KINDS, SIDES
from scenarios.bench2drive.town import axis_programs, cycle_offset, scenario_programs, traffic_lights
from scenarios.family import vehicle_size

JUNCTION_KINDS = ("intersection",)
WALKER_SPEED = 2.0
"""[m/s] DynamicObjectCrossing / ParkingCrossingPedestrian walkers (spec §2)."""
HIDDEN_WALKER = (2.1, 6.0)
"""DynamicObjectCrossing trigger: reaction time [s], min distance [m]."""
PARKED_WALKER = (2.15, 6.0)
"""ParkingCrossingPedestrian trigger."""
BLOCKER_SIZES = {"static.prop.advertisement": (2.5, 0.6), "static.prop.container": (6.0, 2.5)}
"""(length along the road, width) [m] of the props a DynamicObjectCrossing walker hides behind."""
GROUP = ((0.0, 1.0), (-0.9, 1.8), (0.9, 1.4))
"""PedestrianCrossing: (along, beyond the kerb) [m] of the three walkers."""
GROUP_WALK = (1.3, 3.5, 12.0)
"""PedestrianCrossing: speed [m/s], reaction [s], min trigger [m]."""
TURN_CROSSERS = {"VehicleTurningRoute": (ActorKind.BICYCLE, BICYCLE_SIZE, 1.8, 1.8, 6.0),
                 "VehicleTurningRoutePedestrian": (ActorKind.PEDESTRIAN, WALKER_SIZE, 1.8, 2.2, 6.0)}
"""Crosser kind, size, speed [m/s], reaction [s], min trigger [m] (spec §2)."""
TURN_CROSSING_AT = 11.0
"""[m] past the junction exit where the crosser crosses the exit road."""
RUNNER = (60.0, 2.2, 12.0, 30.0, 10.0)
"""Opposite* adversary: speed [km/h], sync reaction [s], min trigger [m], source before / sink after
the junction [m] (spec §2)."""
BLOCKED = (5.0, 13.0, 10.0)
"""BlockedIntersection: gap past the junction exit [m], trigger distance [m], disappears after [s]."""
CROSSING_END = 40.0
"""[m] past the crossing point where these scenarios end (spec §2)."""


@dataclass(frozen=True)
class HiddenWalkerParams(B2DParams):
    """DynamicObjectCrossing."""

    distance: float = 45.0
    """[m] from the trigger point to the blocker prop."""
    direction: str = "right"
    """Kerb the walker comes from."""
    blocker_model: str = "static.prop.advertisement"
    crossing_angle: float = 5.0
    """[deg] off the perpendicular."""

    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {"direction": ("right", "left"),
                                                     "blocker_model": tuple(BLOCKER_SIZES)}
    SAMPLED_CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {"direction": ("right",)}
    RANGES: ClassVar[dict[str, tuple[float, float]]] = {"distance": (40.0, 50.0), "crossing_angle": (0.0, 11.0)}


@dataclass(frozen=True)
class ParkedWalkerParams(B2DParams):
    """ParkingCrossingPedestrian."""

    distance: float = 40.0
    """[m] from the trigger point to the walker."""
    direction: str = "right"
    crossing_angle: float = 5.0

    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {"direction": ("right", "left")}
    SAMPLED_CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {"direction": ("right",)}
    RANGES: ClassVar[dict[str, tuple[float, float]]] = {"distance": (36.0, 45.0), "crossing_angle": (0.0, 12.0)}


@dataclass(frozen=True)
class RedLightParams(B2DParams):
    """OppositeVehicleRunningRedLight."""

    direction: str = "right"
    """Where the adversary comes from; "opposite" makes the ego turn left across it."""

    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {"direction": ("left", "right", "opposite")}


@dataclass(frozen=True)
class PriorityParams(B2DParams):
    """OppositeVehicleTakingPriority."""

    direction: str = "right"

    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {"direction": ("left", "right")}


# --------------------------------------------------------------------------- road crossings


def _kerb_lanes(gen: GeneratedMap, side: int) -> list[tuple[str, ...]]:
    """Road corridors whose first lane is the outermost on `side` (the walker reaches it first)."""
    index = 0 if side > 0 else 1
    return road_corridors(gen, lambda lanes: lanes_beside(gen, lanes[0])[index] == 0)


def _kerb_accepts(gen: GeneratedMap, params) -> bool:
    return bool(_kerb_lanes(gen, SIDES[params.direction]))


def _road_crossing(scenario_type: str, gen: GeneratedMap, rng: np.random.Generator, side: int, distance: float,
                   props, sudden: tuple[float, float]) -> RouteScenario:
    """A walker `distance` [m] past the trigger point crossing from the kerb on `side`, started by the
    `sudden` (reaction [s], min distance [m]) trigger; `props(path, s, edge)` gives (occluding actors,
    walker arc length, walker start beyond the kerb [m], crossing angle [deg])."""
    lanes = pick(rng, _kerb_lanes(gen, side))
    path = corridor(gen.map, lanes)
    trigger_at = draw_trigger(rng)
    end_at = trigger_at + distance + CROSSING_END
    length = span(end_at + 10.0)
    s_start = road_start(rng, path, length)
    right, left = road_edges(gen, lanes[0])
    near, far = (left, -right) if side > 0 else (-right, left)
    blockers, s_walk, beyond, angle = props(path, s_start + trigger_at + distance, near)
    walker = crossing(path, s_walk, side * (near + beyond), -side * (far + 1.5), WALKER_SPEED, WALKER_SIZE,
                      ActorKind.PEDESTRIAN, *sudden, angle=angle)
    return route_scenario(scenario_type, gen, path, s_start, length, rng, trigger_at, actors=[walker, *blockers],
                          end_at=end_at)


@register_route("DynamicObjectCrossing", "E", ROAD_KINDS, _kerb_accepts)
def build_hidden_walker(params: HiddenWalkerParams, gen: GeneratedMap, rng: np.random.Generator) -> RouteScenario:
    """A pedestrian steps out from behind a roadside prop and crosses in front of the ego."""
    side = SIDES[params.direction]
    length, width = BLOCKER_SIZES[params.blocker_model]

    def props(path, s, edge):
        prop = parked(path, s, side * (edge + 0.5 + width / 2), (length, width), ActorKind.STATIC)
        return [prop], s + length / 2 + 0.8, 1.0, params.crossing_angle

    return _road_crossing("DynamicObjectCrossing", gen, rng, side, params.distance, props, HIDDEN_WALKER)


@register_route("ParkingCrossingPedestrian", "E", ROAD_KINDS, _kerb_accepts)
def build_parked_walker(params: ParkedWalkerParams, gen: GeneratedMap, rng: np.random.Generator) -> RouteScenario:
    """A pedestrian emerges between two cars parked at the kerb (just off the road: there are no
    parking lanes) and crosses."""
    side = SIDES[params.direction]

    def props(path, s, edge):
        sizes = [vehicle_size(rng, van=0.2) for _ in range(2)]
        cars = [parked(path, s + sign * (size[0] / 2 + 1.2), side * (edge + size[1] / 2 + 0.2), size)
                for sign, size in zip((-1, 1), sizes)]
        return cars, s, 1.0, params.crossing_angle

    return _road_crossing("ParkingCrossingPedestrian", gen, rng, side, params.distance, props, PARKED_WALKER)


# --------------------------------------------------------------------------- junction crossings


def _turn_paths(gen: GeneratedMap) -> list[JunctionPath]:
    return turning(gen, "left") + turning(gen, "right")


def _normal_lights(gen: GeneratedMap, jp: JunctionPath, rng: np.random.Generator):
    return traffic_lights(gen, axis_programs(jp.approach, cycle_offset(rng)))


def _junction_accepts(gen: GeneratedMap, params) -> bool:
    return bool(turning(gen, "straight"))


@register_route("PedestrianCrossing", "E+T", JUNCTION_KINDS, _junction_accepts)
def build_pedestrian_crossing(params: NoParams, gen: GeneratedMap, rng: np.random.Generator) -> RouteScenario:
    """Three pedestrians cross the exit road's crosswalk as the ego drives straight through a signalised
    junction (normal light cycle)."""
    jp = pick(rng, turning(gen, "straight"))
    route = junction_route(rng, jp)
    speed, reaction, min_trigger = GROUP_WALK
    right, left = road_edges(gen, jp.exit_lane)
    s_walk = jp.exit - 2.0   # the crosswalk: 3 m deep, 0.5 m inside the junction before the exit road
    group = Trigger(point=jp.path.point(s_walk), distance=min_trigger, time_to_arrival=reaction)
    walkers = [crossing(jp.path, s_walk, right - beyond, left + 1.5, speed, WALKER_SIZE, ActorKind.PEDESTRIAN,
                        reaction, min_trigger, along=along, trigger=group) for along, beyond in GROUP]
    end_at = s_walk - route.s_start + CROSSING_END
    return route_scenario("PedestrianCrossing", gen, jp.path, route.s_start, route.length, rng, route.trigger_at,
                          actors=walkers, lights=_normal_lights(gen, jp, rng), end_at=end_at)


def _turning_crosser(scenario_type: str, gen: GeneratedMap, rng: np.random.Generator) -> RouteScenario:
    kind, size, speed, reaction, min_trigger = TURN_CROSSERS[scenario_type]
    jp = pick(rng, _turn_paths(gen))
    route = junction_route(rng, jp, after=TURN_CROSSING_AT + CROSSING_END)
    right, left = road_edges(gen, jp.exit_lane)
    s_cross = jp.exit + TURN_CROSSING_AT
    crosser = crossing(jp.path, s_cross, right - 1.5, left + 1.5, speed, size, kind, reaction, min_trigger)
    return route_scenario(scenario_type, gen, jp.path, route.s_start, route.length, rng, route.trigger_at,
                          actors=[crosser], lights=_normal_lights(gen, jp, rng),
                          end_at=s_cross - route.s_start + CROSSING_END)


@register_route("VehicleTurningRoute", "E+T", JUNCTION_KINDS, _junction_accepts)
def build_turning_bicycle(params: NoParams, gen: GeneratedMap, rng: np.random.Generator) -> RouteScenario:
    """After the ego turns at a signalised junction, a cyclist crosses the exit road."""
    return _turning_crosser("VehicleTurningRoute", gen, rng)


@register_route("VehicleTurningRoutePedestrian", "E+T", JUNCTION_KINDS, _junction_accepts)
def build_turning_pedestrian(params: NoParams, gen: GeneratedMap, rng: np.random.Generator) -> RouteScenario:
    """After the ego turns at a signalised junction, a pedestrian crosses the exit road."""
    return _turning_crosser("VehicleTurningRoutePedestrian", gen, rng)


def _runner_setups(gen: GeneratedMap, direction: str):
    """(ego path, adversary path, conflict arc length on the adversary path) per ego approach."""
    ego_turn = "left" if direction == "opposite" else "straight"
    out = []
    for jp in turning(gen, ego_turn):
        other = approach_from(gen, jp.approach, direction)
        hit = None if other is None else first_crossing(gen, jp, other, "straight")
        if hit is not None:
            out.append((jp, *hit))
    return out


def _runner_accepts(gen: GeneratedMap, params) -> bool:
    return bool(_runner_setups(gen, params.direction))


def _runner_route(scenario_type: str, gen: GeneratedMap, rng: np.random.Generator, direction: str,
                  kind: ActorKind, lights: bool) -> RouteScenario:
    """An adversary waiting RUNNER's source distance before the junction crosses the ego's path at
    60 km/h, started when the ego is 2.2 s from the conflict point, ignoring lights; it vanishes at the
    sink. With `lights`, the ego's light is green and every other one red for the whole route."""
    speed_kmh, reaction, min_trigger, source, sink = RUNNER
    jp, adversary, s_conflict = pick(rng, _runner_setups(gen, direction))
    route = junction_route(rng, jp)
    line = adversary.path.path(adversary.entry - source, adversary.exit + sink)
    speed = kmh(speed_kmh)
    runner = ActorSpec(kind=kind, path=line, size=EMERGENCY_SIZE if kind == ActorKind.EMERGENCY else vehicle_size(rng),
                       target_speed=speed, behaviour=Behaviour.CONSTANT, role=Role.SCENARIO, obeys_lights=False,
                       trigger=Trigger(point=adversary.path.point(s_conflict), distance=min_trigger,
                                       time_to_arrival=reaction),
                       despawn_after=float(np.hypot(*np.diff(line, axis=0).T).sum()) / speed + 0.5)
    programs = None
    if lights:
        programs = traffic_lights(gen, scenario_programs(jp.approach))
    exclude = frozenset(adversary.approach.lanes)
    return route_scenario(scenario_type, gen, jp.path, route.s_start, route.length, rng, route.trigger_at,
                          actors=[runner], lights=programs or (), end_at=jp.exit - route.s_start + CROSSING_END,
                          background=Background(exclude_lanes=exclude))


@register_route("OppositeVehicleRunningRedLight", "E+T", JUNCTION_KINDS, _runner_accepts)
def build_red_light_runner(params: RedLightParams, gen: GeneratedMap, rng: np.random.Generator) -> RouteScenario:
    """An emergency vehicle runs its red light across the junction while the ego has green."""
    return _runner_route("OppositeVehicleRunningRedLight", gen, rng, params.direction, ActorKind.EMERGENCY, True)


@register_route("OppositeVehicleTakingPriority", "E+T", JUNCTION_KINDS, _runner_accepts)
def build_priority_taker(params: PriorityParams, gen: GeneratedMap, rng: np.random.Generator) -> RouteScenario:
    """At the same junction without lights, a car crosses the ego's path without yielding."""
    return _runner_route("OppositeVehicleTakingPriority", gen, rng, params.direction, ActorKind.VEHICLE, False)


@register_route("BlockedIntersection", "E+T", JUNCTION_KINDS, _junction_accepts)
def build_blocked_intersection(params: NoParams, gen: GeneratedMap, rng: np.random.Generator) -> RouteScenario:
    """Just past the turn a stopped car blocks the exit lane; it disappears 10 s after the ego comes
    within 13 m (the ego must stop and wait, not push through)."""
    gap, distance, vanish = BLOCKED
    jp = pick(rng, _turn_paths(gen))
    route = junction_route(rng, jp)
    size = vehicle_size(rng)
    s_car = jp.exit + gap + size[0] / 2
    car = parked(jp.path, s_car, 0.0, size, trigger=Trigger(point=jp.path.point(s_car), distance=distance),
                 despawn_after=vanish)
    return route_scenario("BlockedIntersection", gen, jp.path, route.s_start, route.length, rng, route.trigger_at,
                          actors=[car], lights=_normal_lights(gen, jp, rng), end_at=s_car - route.s_start + 20.0)
