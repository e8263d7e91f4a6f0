"""Bench2Drive cut-in and braking types (#10-#13, Emergency_Brake) on straight and curved roads: a parked car
pulling out (ParkingCutIn), a car leaving a stopped queue (StaticCutIn), leads braking hard
(HardBreakRoute) and noise on the ego's own control (ControlLoss).

The built-in roads have no parking lanes: the same-direction lane on the `direction` side plays the
parking lane (no background traffic starts on it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from envs.bench2drive.route_scenario import RouteScenario, Trigger
from envs.sim.mapgen import GeneratedMap
from scenarios import register_route
from scenarios.bench2drive.assemble import route_scenario
from scenarios.bench2drive.background import Background
from scenarios.bench2drive.common import (
    B2DParams, NoParams, corridor, draw, draw_trigger, kmh, lanes_beside, neighbours, on_lane, parked, pick,
    road_corridors, road_start, span, start_trigger,
)
from scenarios.bench2drive.obstacles import ROAD_KINDS, SIDES
from scenarios.bench2drive.town import LANE_WIDTH
from scenarios.family import vehicle_size

CUT_IN_LENGTH = 10.0
"""[m] along the road over which a cutter moves from its lane into the ego's (~3 s pulling out)."""
PARKING_CUT_IN = (28.0, 35.0, 2.35, 10.0)
"""ParkingCutIn: blocker and cutter [m] past the trigger point, reaction time [s], min trigger [m]."""
PARKING_CUTTER_SPEED = 13.0
"""[m/s] ParkingCutIn's declared adversary speed (spec §2: which speed CARLA uses is [uncertain])."""
STATIC_CUT_IN = (11.0, 2, 3, 2.7, 15.0, 60.0)
"""StaticCutIn: queue spacing [m], cars behind / ahead of the cutter, reaction [s], min trigger [m],
cutter target speed [km/h] (spec §2)."""
HARD_BRAKE_LEADS = (20.0, 35.0)
"""[m] ahead of the ego start: the leads that brake (15 m apart, none within 20 m, like §2.1 spawns)."""
HARD_BRAKE_STOP = 10.0
"""[s] the leads stay stopped (spec §2 HardBreakRoute)."""
HARD_BRAKE_TRIGGER_AT = (15.0, 25.0)
"""[m] route start to trigger: the ego gets moving before its leads brake."""
LEAD_CRUISE = 0.5
"""Leads cruise at this fraction of the speed limit until they brake (the ego starts from rest)."""
NOISE_AT = (14.0, 48.0, 74.0)
"""[m] past the trigger point: ControlLoss's three debris spots (spec §2)."""
CONTROL_LOSS_END = 110.0
"""[m] past the trigger point where ControlLoss ends."""


@dataclass(frozen=True)
class ParkingCutInParams(B2DParams):
    """ParkingCutIn."""

    direction: str = "right"
    """Side of the parking lane the cutter pulls out of."""

    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {"direction": ("right", "left")}


@dataclass(frozen=True)
class StaticCutInParams(B2DParams):
    """StaticCutIn."""

    distance: float = 42.0
    """[m] from the trigger point to the cutter."""
    direction: str = "right"
    """Side of the stopped queue."""

    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {"direction": ("right", "left")}
    SAMPLED_CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {"direction": ("right",)}
    RANGES: ClassVar[dict[str, tuple[float, float]]] = {"distance": (40.0, 45.0)}


def _side_lanes(gen: GeneratedMap, side: int) -> list[tuple[str, ...]]:
    index = 0 if side > 0 else 1   # (left, right) lane counts
    return road_corridors(gen, lambda lanes: lanes_beside(gen, lanes[0])[index] > 0)


def _side_accepts(gen: GeneratedMap, params) -> bool:
    return bool(_side_lanes(gen, SIDES[params.direction]))


def _road_accepts(gen: GeneratedMap, params) -> bool:
    return bool(road_corridors(gen))


def _cut_in_route(scenario_type: str, gen: GeneratedMap, rng: np.random.Generator, side: int,
                  cutter_at: float, queue: tuple[float, ...], reaction: float, min_trigger: float,
                  cutter_speed: float | None) -> RouteScenario:
    """Cars stopped in the side lane at `queue` [m] from the cutter, the cutter `cutter_at` [m] past the
    trigger point: once the ego's time to arrival is below `reaction` [s] (or it is `min_trigger` m away)
    it drives into the ego lane (IDM, so it accelerates from rest) at up to `cutter_speed` [m/s]."""
    lanes = pick(rng, _side_lanes(gen, side))
    path = corridor(gen.map, lanes)
    trigger_at = draw_trigger(rng)
    end_at = trigger_at + cutter_at + 60.0
    length = span(end_at + 10.0)
    s_start = road_start(rng, path, length)
    s_cut = s_start + trigger_at + cutter_at
    lateral = side * LANE_WIDTH
    limit = gen.map.lanes_by_id[lanes[0]].speed_limit or 13.9
    knots = ((s_cut + 1.0, lateral), (s_cut + 1.0 + CUT_IN_LENGTH, 0.0))
    cutter = on_lane(path, s_cut, vehicle_size(rng, van=0.0), min(cutter_speed or limit, limit), behind=1.0,
                     knots=knots, trigger=Trigger(point=path.point(s_cut), distance=min_trigger,
                                                  time_to_arrival=reaction))
    others = [parked(path, s_cut + gap, lateral, vehicle_size(rng)) for gap in queue]
    side_lanes = neighbours(gen, lanes, side)
    return route_scenario(scenario_type, gen, path, s_start, length, rng, trigger_at, actors=[cutter, *others],
                          end_at=end_at, background=Background(exclude_lanes=frozenset(side_lanes)))


@register_route("ParkingCutIn", "E", ROAD_KINDS, _side_accepts)
def build_parking_cut_in(params: ParkingCutInParams, gen: GeneratedMap, rng: np.random.Generator) -> RouteScenario:
    """A car parked behind a blocker in the side lane pulls out in front of the ego."""
    blocker, cutter, reaction, min_trigger = PARKING_CUT_IN
    return _cut_in_route("ParkingCutIn", gen, rng, SIDES[params.direction], cutter, (blocker - cutter,),
                         reaction, min_trigger, PARKING_CUTTER_SPEED)


@register_route("StaticCutIn", "E", ROAD_KINDS, _side_accepts)
def build_static_cut_in(params: StaticCutInParams, gen: GeneratedMap, rng: np.random.Generator) -> RouteScenario:
    """One car of a stopped queue in the side lane cuts into the ego's lane."""
    spacing, behind, ahead, reaction, min_trigger, speed = STATIC_CUT_IN
    queue = tuple(spacing * k for k in range(-behind, ahead + 1) if k != 0)
    return _cut_in_route("StaticCutIn", gen, rng, SIDES[params.direction], params.distance, queue, reaction,
                         min_trigger, kmh(speed))


@register_route("HardBreakRoute", "E", ROAD_KINDS, _road_accepts)
def build_hard_break(params: NoParams, gen: GeneratedMap, rng: np.random.Generator) -> RouteScenario:
    """Two leads cruise ahead in the ego lane; when the scenario triggers they brake to a stop, wait
    HARD_BRAKE_STOP seconds and drive on."""
    lanes = pick(rng, road_corridors(gen))
    path = corridor(gen.map, lanes)
    trigger_at = draw_trigger(rng, HARD_BRAKE_TRIGGER_AT)
    length = span(draw(rng, (110.0, 140.0)))
    s_start = road_start(rng, path, length)
    limit = gen.map.lanes_by_id[lanes[0]].speed_limit or 13.9
    trigger = start_trigger(path, s_start + trigger_at)
    leads = [on_lane(path, s_start + gap, vehicle_size(rng), limit, speed0=LEAD_CRUISE * limit, trigger=trigger,
                     pause=(0.0, HARD_BRAKE_STOP)) for gap in HARD_BRAKE_LEADS]
    return route_scenario("HardBreakRoute", gen, path, s_start, length, rng, trigger_at, actors=leads)


@register_route("ControlLoss", "E", ROAD_KINDS, _road_accepts)
def build_control_loss(params: NoParams, gen: GeneratedMap, rng: np.random.Generator) -> RouteScenario:
    """Noise on the ego's throttle and steering within 2 m of three points along the route (the world
    applies it; the debris props are decals without collision in CARLA and are not placed)."""
    lanes = pick(rng, road_corridors(gen))
    path = corridor(gen.map, lanes)
    trigger_at = draw_trigger(rng)
    end_at = trigger_at + CONTROL_LOSS_END
    length = span(end_at + 5.0)
    s_start = road_start(rng, path, length)
    return route_scenario("ControlLoss", gen, path, s_start, length, rng, trigger_at, end_at=end_at,
                          noise_at=tuple(trigger_at + d for d in NOISE_AT),
                          background=Background(ego_lane_ahead=True))
