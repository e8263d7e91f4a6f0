"""Bench2Drive give-way types (#22-#23, Give_Way): an emergency vehicle coming up from behind in the ego's
lane (YieldToEmergencyVehicle) and oncoming vehicles cutting a curve into the ego's lane (InvadingTurn).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from envs.bench2drive.route_scenario import ActorKind, RouteScenario
from envs.sim.mapgen import GeneratedMap
from scenarios import register_route
from scenarios.bench2drive.assemble import route_scenario
from scenarios.bench2drive.background import Background, opposite_lanes
from scenarios.bench2drive.common import (
    EMERGENCY_SIZE, B2DParams, corridor, draw, draw_trigger, flow, kmh, lane_corridor, lanes_beside, on_lane, pick,
    road_corridors, road_start, span, start_trigger,
)
from scenarios.bench2drive.obstacles import ROAD_KINDS
from scenarios.bench2drive.town import LANE_WIDTH

EV_EXTRA_SPEED = 25.0
"""[km/h] the emergency vehicle wants the speed limit plus this (spec §2: ego speed + 25 km/h)."""
SPAWN_DELAY = 0.05
"""[s] after the trigger: the emergency vehicle does not exist before the scenario starts."""
INVADING_SPACING = 40.0
"""[m] between InvadingTurn's oncoming vehicles (spec §2)."""
INVADING_SOURCE = 30.0
"""[m] beyond the invasion point where their flow starts."""
INVADING_BASE = 0.25
"""Lane widths added to the XML `offset` factor: the oncoming vehicles also swerve around obstacles
placed on their own lane in CARLA (not placed here), so their box reaches into the ego's lane."""
INVADING_ZONE = (15.0, 35.0, 15.0)
"""[m] along their lane: the oncoming vehicles swerve out over 15 m up to the invasion point, stay out
for 35 m towards the ego and swerve back over 15 m (the curve they cut)."""
INVADING_CHECK = 50.0
"""[m] past the invasion point where InvadingTurn ends."""


@dataclass(frozen=True)
class EmergencyParams(B2DParams):
    """YieldToEmergencyVehicle."""

    distance: float = 28.0
    """[m] behind the trigger point where the emergency vehicle appears."""
    RANGES: ClassVar[dict[str, tuple[float, float]]] = {"distance": (26.0, 30.0)}


@dataclass(frozen=True)
class InvadingParams(B2DParams):
    """InvadingTurn."""

    distance: float = 55.0
    """[m] from the trigger point to where the oncoming flow invades."""
    offset: float = 0.26
    """Lateral offset factor (of a lane width) of the invading vehicles."""
    RANGES: ClassVar[dict[str, tuple[float, float]]] = {"distance": (50.0, 60.0), "offset": (0.18, 0.34)}


def _with_left_lane(gen: GeneratedMap) -> list[tuple[str, ...]]:
    return road_corridors(gen, lambda lanes: lanes_beside(gen, lanes[0])[0] > 0)


def _innermost(gen: GeneratedMap) -> list[tuple[str, ...]]:
    return road_corridors(gen, lambda lanes: lanes_beside(gen, lanes[0])[0] == 0)


@register_route("YieldToEmergencyVehicle", "G", ROAD_KINDS, lambda gen, params: bool(_with_left_lane(gen)))
def build_emergency(params: EmergencyParams, gen: GeneratedMap, rng: np.random.Generator) -> RouteScenario:
    """When the scenario triggers, an emergency vehicle appears `distance` behind the trigger point in the
    ego's lane at the limit + 25 km/h (IDM: it follows the ego until the ego moves to the left lane);
    the route's YTEV check wants it ahead of the ego at the end."""
    lanes = pick(rng, _with_left_lane(gen))
    path = corridor(gen.map, lanes)
    trigger_at = draw_trigger(rng)
    length = span(draw(rng, (130.0, 150.0)))
    s_start = road_start(rng, path, length)
    speed = (gen.map.lanes_by_id[lanes[0]].speed_limit or 13.9) + kmh(EV_EXTRA_SPEED)
    ev = on_lane(path, s_start + trigger_at - params.distance, EMERGENCY_SIZE, speed, behind=2.0, ahead=400.0,
                 kind=ActorKind.EMERGENCY, speed0=speed, trigger=start_trigger(path, s_start + trigger_at),
                 spawn_delay=SPAWN_DELAY, obeys_lights=False)
    return route_scenario("YieldToEmergencyVehicle", gen, path, s_start, length, rng, trigger_at, actors=[ev],
                          emergency_actor=0, background=Background(behind=False))


@register_route("InvadingTurn", "G", ("curved",), lambda gen, params: bool(_innermost(gen)))
def build_invading_turn(params: InvadingParams, gen: GeneratedMap, rng: np.random.Generator) -> RouteScenario:
    """On a curve, oncoming vehicles every 40 m swerve towards the centre line by (offset + 0.25) lane
    widths around the invasion point `distance` past the trigger, into the ego's (innermost) lane: the
    ego must keep right and let them by."""
    lanes = pick(rng, _innermost(gen))
    path = corridor(gen.map, lanes)
    trigger_at = draw_trigger(rng)
    end_at = trigger_at + params.distance + INVADING_CHECK
    length = span(end_at + 5.0)
    s_start = road_start(rng, path, length)
    oncoming = lane_corridor(gen, opposite_lanes(gen, path.point(s_start), path.heading(s_start), 1)[0], 300.0, 60.0)
    source = float(oncoming.project(path.point(s_start + trigger_at + params.distance))[0]) - INVADING_SOURCE
    sink = float(oncoming.project(path.point(s_start))[0]) + 30.0
    limit = gen.map.lanes_by_id[oncoming.lane_at(sink)].speed_limit or 13.9
    shift = (INVADING_BASE + params.offset) * LANE_WIDTH
    invade = source + INVADING_SOURCE
    ramp, hold, back = INVADING_ZONE
    knots = ((invade - ramp, 0.0), (invade, shift), (invade + hold, shift), (invade + hold + back, 0.0))
    actors = flow(oncoming, source, sink, limit, (INVADING_SPACING, INVADING_SPACING), rng, knots=knots)
    return route_scenario("InvadingTurn", gen, path, s_start, length, rng, trigger_at, actors=actors, end_at=end_at,
                          background=Background(opposite=False))
