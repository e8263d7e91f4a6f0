"""Bench2Drive merging types off the junctions (#25-#27, #30-#32, Merging): crossing a flow to an exit,
merging from an on-ramp into slow traffic, a car cutting in from the on-ramp, leaving a parking spot and
consecutive lane changes. Lane changes of the ego's route are smooth lateral offsets of one corridor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from envs.bench2drive.route_scenario import Behaviour, RouteScenario, Trigger
from envs.bench2drive.vehicle_control import MKZ_2020
from envs.sim.mapgen import GeneratedMap
from scenarios import register_route
from scenarios.bench2drive.assemble import route_scenario
from scenarios.bench2drive.background import Background
from scenarios.bench2drive.common import (
    B2DParams, NoParams, corridor, draw, draw_trigger, flow, lane_corridor, lanes_beside, on_lane, parked, pick,
    road_corridors, road_start, span,
)
from scenarios.bench2drive.junction_flows import FlowParams, flow_ranges
from scenarios.bench2drive.junctions import JunctionPath, junction_route, through, turning
from scenarios.bench2drive.obstacles import ROAD_KINDS, SIDES
from scenarios.bench2drive.town import LANE_WIDTH, approaches, stop_signs
from scenarios.family import vehicle_size

LANE_CHANGE = 20.0
"""[m] along the road for one lane change of the ego's route."""
EXIT_FLOW = (60.0, 40.0)
"""HighwayExit flow: source before the junction, sink after it [m]."""
EXIT_END = 40.0
"""[m] past the junction where HighwayExit ends (spec §2)."""
RAMP_RUN_UP = {"MergerIntoSlowTraffic": (50.0, 70.0), "MergerIntoSlowTrafficV2": (20.0, 30.0)}
"""[m] of on-ramp before the merge connector at the route start: V2's "variant geometry" is a short run-up
from the ramp's parallel part (the built-in merge map has one ramp shape)."""
SLOW_FLOW = (80.0, 60.0)
"""Merger flows: source before / sink after the merge point on the main lane [m]."""
CUT_IN_SPEED = 0.8
"""HighwayCutIn: the cutter drives at this fraction of the main road's limit (spec: "speed 80 %")."""
CUTTER_WAIT = 10.0
"""[m] before the end of the ramp lane where the HighwayCutIn cutter waits for its trigger."""
MAIN_RUN_UP = (70.0, 90.0)
"""[m] HighwayCutIn: route start to the merge point."""
PARKING_EXIT_OUT = (0.5, 12.5)
"""[m] past the route start where ParkingExit's route leaves the parking lane and where it is out: the
ego's corner clears the front car's (9 m bumper gap) by ~0.7 m, with at most ~33 deg of yaw."""
SEQUENTIAL = ((10.0, 30.0), (50.0, 70.0))
"""[m] past the trigger point: SequentialLaneChange's two lane changes (start, end)."""


@dataclass(frozen=True)
class ExitParams(FlowParams):
    """HighwayExit: the fast flow on the exit lane."""

    flow_speed: float = 12.5
    source_dist_interval_from: float = 15.0
    source_dist_interval_to: float = 40.0
    RANGES: ClassVar[dict[str, tuple[float, float]]] = flow_ranges((10.0, 15.0), (11.0, 20.0), (33.0, 46.0))


@dataclass(frozen=True)
class SlowTrafficParams(FlowParams):
    """MergerIntoSlowTraffic."""

    flow_speed: float = 9.5
    source_dist_interval_from: float = 15.0
    source_dist_interval_to: float = 37.0
    RANGES: ClassVar[dict[str, tuple[float, float]]] = flow_ranges((9.0, 10.0), (14.0, 16.0), (33.0, 42.0))


@dataclass(frozen=True)
class SlowTrafficV2Params(FlowParams):
    """MergerIntoSlowTrafficV2 (flow_speed 10 in every bench2drive220 route)."""

    source_dist_interval_from: float = 12.0
    source_dist_interval_to: float = 32.0
    RANGES: ClassVar[dict[str, tuple[float, float]]] = flow_ranges((10.0, 10.0), (11.0, 14.0), (30.0, 34.0))


@dataclass(frozen=True)
class ParkingExitParams(B2DParams):
    """ParkingExit; the distances are free gaps between the ego's and the parked cars' bumpers [m] (the
    spec does not define them; centre distances of 9 m would leave 4 m to pull out of)."""

    direction: str = "right"
    """Side of the parking lane the ego starts in (it merges into the lane on the other side)."""
    front_vehicle_distance: float = 9.0
    behind_vehicle_distance: float = 9.0

    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {"direction": ("right", "left")}
    SAMPLED_CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {"direction": ("right",)}
    RANGES: ClassVar[dict[str, tuple[float, float]]] = {"front_vehicle_distance": (6.0, 15.0),
                                                        "behind_vehicle_distance": (6.0, 15.0)}
    SAMPLED_RANGES: ClassVar[dict[str, tuple[float, float]]] = {"front_vehicle_distance": (9.0, 9.0),
                                                                "behind_vehicle_distance": (9.0, 9.0)}


# --------------------------------------------------------------------------- HighwayExit


def _exit_setups(gen: GeneratedMap) -> list[tuple[JunctionPath, JunctionPath]]:
    """(ego path: right turn off the main road, flow path: straight on the exit-turn lane) where the main
    road has >= 2 lanes (the ego starts one lane left of the flow)."""
    out = []
    for jp in turning(gen, "right"):
        main = not set(jp.approach.connectors) & set(gen.stop_sign_connectors)
        straight = [c for c in gen.map.lanes_by_id[jp.entry_lane].successors if c != jp.connector]
        if main and len(jp.approach.lanes) >= 2 and straight:
            out.append((jp, through(gen, jp.approach, jp.entry_lane, straight[0])))
    return out


@register_route("HighwayExit", "M", ("t_junction",), lambda gen, params: bool(_exit_setups(gen)))
def build_highway_exit(params: ExitParams, gen: GeneratedMap, rng: np.random.Generator) -> RouteScenario:
    """From the second lane, cross the fast flow on the right lane to turn off the main road."""
    jp, lane_flow = pick(rng, _exit_setups(gen))
    route = junction_route(rng, jp, after=EXIT_END)
    change = route.s_start + route.trigger_at
    knots = ((change, LANE_WIDTH), (change + LANE_CHANGE, 0.0))
    actors = flow(lane_flow.path, lane_flow.entry - EXIT_FLOW[0], lane_flow.exit + EXIT_FLOW[1], params.flow_speed,
                  params.spacing, rng)
    return route_scenario("HighwayExit", gen, jp.path, route.s_start, route.length, rng, route.trigger_at,
                          knots=knots, actors=actors, stop_signs=stop_signs(gen),
                          end_at=jp.exit - route.s_start + EXIT_END,
                          background=Background(exclude_lanes=frozenset({jp.entry_lane})))


# --------------------------------------------------------------------------- on-ramp types


def _ramp(gen: GeneratedMap) -> JunctionPath:
    """The on-ramp's path through the merge connector into the main road (the merge map's one connector)."""
    connector = gen.map.lane_connectors[0]
    approach = next(a for a in approaches(gen) if connector.id in a.connectors)
    return through(gen, approach, connector.predecessors[0], connector.id)


def _slow_traffic(scenario_type: str, params: FlowParams, gen: GeneratedMap, rng: np.random.Generator) -> RouteScenario:
    ramp = _ramp(gen)
    s_start = max(5.0, ramp.entry - draw(rng, RAMP_RUN_UP[scenario_type]))
    trigger_at = draw_trigger(rng)
    length = min(span(ramp.exit - s_start + 60.0), ramp.path.length - s_start - 1.0)
    main = lane_corridor(gen, ramp.exit_lane, 250.0, 250.0)
    merge = main.lane_start(ramp.exit_lane)
    actors = flow(main, merge - SLOW_FLOW[0], merge + SLOW_FLOW[1], params.flow_speed, params.spacing, rng)
    return route_scenario(scenario_type, gen, ramp.path, s_start, length, rng, trigger_at, actors=actors,
                          background=Background(exclude_lanes=frozenset(main.lanes)))


@register_route("MergerIntoSlowTraffic", "M", ("merge",))
def build_slow_traffic(params: SlowTrafficParams, gen: GeneratedMap, rng: np.random.Generator) -> RouteScenario:
    """Merge from the on-ramp into slow, dense traffic on the main road's right lane."""
    return _slow_traffic("MergerIntoSlowTraffic", params, gen, rng)


@register_route("MergerIntoSlowTrafficV2", "M", ("merge",))
def build_slow_traffic_v2(params: SlowTrafficV2Params, gen: GeneratedMap, rng: np.random.Generator) -> RouteScenario:
    """The same merge with a short run-up on the ramp."""
    return _slow_traffic("MergerIntoSlowTrafficV2", params, gen, rng)


@register_route("HighwayCutIn", "M", ("merge",))
def build_highway_cut_in(params: NoParams, gen: GeneratedMap, rng: np.random.Generator) -> RouteScenario:
    """A car waiting at the end of the on-ramp starts when the ego's time to the merge point equals its own
    and cuts into the ego's lane at CUT_IN_SPEED x the limit, whatever is there."""
    ramp = _ramp(gen)
    main = lane_corridor(gen, ramp.exit_lane, 250.0, 250.0)
    merge = main.lane_start(ramp.exit_lane)
    s_start = max(5.0, merge - draw(rng, MAIN_RUN_UP))
    trigger_at = draw_trigger(rng)
    length = span(merge - s_start + 50.0)
    speed = CUT_IN_SPEED * (gen.map.lanes_by_id[ramp.exit_lane].speed_limit or 13.9)
    s_cutter = ramp.entry - CUTTER_WAIT
    sync = (ramp.exit - s_cutter) / speed
    cutter = on_lane(ramp.path, s_cutter, vehicle_size(rng, van=0.0), speed, behind=2.0, ahead=150.0,
                     behaviour=Behaviour.CONSTANT, obeys_lights=False,
                     trigger=Trigger(point=ramp.path.point(ramp.exit), distance=10.0, time_to_arrival=sync))
    return route_scenario("HighwayCutIn", gen, main, s_start, length, rng, trigger_at, actors=[cutter],
                          end_at=merge - s_start + 40.0)


# --------------------------------------------------------------------------- road types


def _side_lanes(gen: GeneratedMap, side: int, count: int = 1) -> list[tuple[str, ...]]:
    """Road corridors with at least `count` same-direction lanes on `side` of the first lane."""
    index = 0 if side > 0 else 1
    return road_corridors(gen, lambda lanes: lanes_beside(gen, lanes[0])[index] >= count)


@register_route("ParkingExit", "M", ROAD_KINDS,
                lambda gen, params: bool(_side_lanes(gen, -SIDES[params.direction])))
def build_parking_exit(params: ParkingExitParams, gen: GeneratedMap, rng: np.random.Generator) -> RouteScenario:
    """The ego starts at rest between two parked cars in the parking lane (the same-direction lane on
    `direction`) and merges into the traffic of the next lane."""
    out = -SIDES[params.direction]
    lanes = pick(rng, _side_lanes(gen, out))
    path = corridor(gen.map, lanes)
    length = span(draw(rng, (110.0, 140.0)))
    s_start = road_start(rng, path, length)
    start, end = PARKING_EXIT_OUT
    knots = ((s_start + start, 0.0), (s_start + end, out * LANE_WIDTH))
    sizes = [vehicle_size(rng, van=0.0) for _ in range(2)]
    reach = MKZ_2020.length / 2
    cars = [parked(path, s_start + reach + params.front_vehicle_distance + sizes[0][0] / 2, 0.0, sizes[0]),
            parked(path, s_start - reach - params.behind_vehicle_distance - sizes[1][0] / 2, 0.0, sizes[1])]
    return route_scenario("ParkingExit", gen, path, s_start, length, rng, 0.0, knots=knots, actors=cars,
                          background=Background(exclude_lanes=frozenset(lanes)))


@register_route("SequentialLaneChange", "M", ROAD_KINDS,
                lambda gen, params: bool(_side_lanes(gen, 1, 2) + _side_lanes(gen, -1, 2)))
def build_sequential(params: NoParams, gen: GeneratedMap, rng: np.random.Generator) -> RouteScenario:
    """No adversary: the route changes lanes twice in a row through background traffic on every lane."""
    options = [(side, lanes) for side in (1, -1) for lanes in _side_lanes(gen, side, 2)]
    side, lanes = pick(rng, options)
    path = corridor(gen.map, lanes)
    length = span(draw(rng, (130.0, 150.0)))
    s_start = road_start(rng, path, length)
    trigger_at = draw_trigger(rng)
    (a0, a1), (b0, b1) = ((s_start + trigger_at + a, s_start + trigger_at + b) for a, b in SEQUENTIAL)
    knots = ((a0, 0.0), (a1, side * LANE_WIDTH), (b0, side * LANE_WIDTH), (b1, 2 * side * LANE_WIDTH))
    return route_scenario("SequentialLaneChange", gen, path, s_start, length, rng, trigger_at, knots=knots,
                          background=Background(ego_lane_ahead=True))
