"""Bench2Drive junction types with continuous actor flows (#24, #28, #29, #33-#39; Merging, most also
Traffic_Signs): the ego turns across or into flows of recycled IDM vehicles (or bicycles) at the built-in
4-way junction (with or without lights) or T-junction (minor road behind a stop sign).

Flows (`common.flow`) drive from a source before the junction to a sink after it with gaps drawn from the
XML interval; in signalised types the lights are set for the route: the ego's red for 5 s then green,
the flows' green, every other approach red.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from envs.bench2drive.route_scenario import ActorKind, RouteScenario
from envs.sim.mapgen import GeneratedMap
from envs.sim.scene import LightStatus
from scenarios import register_route
from scenarios.bench2drive.assemble import route_scenario
from scenarios.bench2drive.background import Background
from scenarios.bench2drive.common import BICYCLE_SIZE, B2DParams, flow, pick
from scenarios.bench2drive.junctions import (
    JunctionPath, approach_from, first_crossing, junction_route, through, turning,
)
from scenarios.bench2drive.town import LANE_WIDTH, Approach, scenario_programs, stop_signs, traffic_lights
from scenarios.lanes import connector_turn

GREEN_DELAY = 5.0
"""[s] the ego's light is red this long before turning green (spec §2 #33, #39)."""
LEFT_REACH = (4.0, 2.5)
"""Left-turn flows: source / sink distance before / after the junction, in seconds of flow speed."""
RIGHT_REACH = (5.0, 3.0)
"""Right-turn flows (spec §2 #35)."""
END_AFTER_JUNCTION = 10.0
"""[m] past the junction exit where the junction-turn types end."""
INTERURBAN_END = 40.0
BEHIND_EGO = 40.0
"""[m] a flow along the ego's own approach starts at least this far behind the ego's start."""
BIKE_LANE_INSET = 0.6
"""[m] bicycles ride this far inside the lane's right edge (the built-in roads have no bike lanes)."""


@dataclass(frozen=True)
class FlowParams(B2DParams):
    """A flow's speed [m/s] (`flow_speed`) and spacing interval [m] (`source_dist_interval`)."""

    flow_speed: float = 10.0
    source_dist_interval_from: float = 20.0
    source_dist_interval_to: float = 26.0
    RANGES: ClassVar[dict[str, tuple[float, float]]] = {
        "flow_speed": (9.0, 11.0), "source_dist_interval_from": (15.0, 24.0), "source_dist_interval_to": (25.0, 28.0)}

    @property
    def spacing(self) -> tuple[float, float]:
        return self.source_dist_interval_from, self.source_dist_interval_to


def flow_ranges(speed, low, high) -> dict[str, tuple[float, float]]:
    """RANGES of a FlowParams: flow speed [m/s], spacing interval's from and to [m]."""
    return {"flow_speed": speed, "source_dist_interval_from": low, "source_dist_interval_to": high}


@dataclass(frozen=True)
class SignalizedLeftParams(FlowParams):
    """SignalizedJunctionLeftTurn."""


@dataclass(frozen=True)
class NonSignalizedLeftParams(FlowParams):
    """NonSignalizedJunctionLeftTurn."""

    RANGES: ClassVar[dict[str, tuple[float, float]]] = flow_ranges((8.0, 11.0), (15.0, 24.0), (25.0, 30.0))


@dataclass(frozen=True)
class SignalizedRightParams(FlowParams):
    """SignalizedJunctionRightTurn."""

    flow_speed: float = 12.0
    source_dist_interval_to: float = 30.0
    RANGES: ClassVar[dict[str, tuple[float, float]]] = flow_ranges((10.0, 14.0), (19.0, 24.0), (26.0, 38.0))


@dataclass(frozen=True)
class NonSignalizedRightParams(FlowParams):
    """NonSignalizedJunctionRightTurn."""

    RANGES: ClassVar[dict[str, tuple[float, float]]] = flow_ranges((8.0, 14.0), (16.0, 22.0), (25.0, 30.0))


@dataclass(frozen=True)
class SignalizedEnterFlowParams(FlowParams):
    """SignalizedJunctionLeftTurnEnterFlow."""

    flow_speed: float = 9.0
    RANGES: ClassVar[dict[str, tuple[float, float]]] = flow_ranges((8.0, 10.0), (16.0, 24.0), (25.0, 30.0))


@dataclass(frozen=True)
class NonSignalizedEnterFlowParams(FlowParams):
    """NonSignalizedJunctionLeftTurnEnterFlow."""

    flow_speed: float = 9.0
    source_dist_interval_from: float = 17.0
    source_dist_interval_to: float = 28.0
    RANGES: ClassVar[dict[str, tuple[float, float]]] = flow_ranges((8.0, 10.0), (15.0, 19.0), (26.0, 30.0))


@dataclass(frozen=True)
class EnterActorFlowParams(FlowParams):
    """EnterActorFlow."""

    flow_speed: float = 15.0
    source_dist_interval_to: float = 35.0
    RANGES: ClassVar[dict[str, tuple[float, float]]] = flow_ranges((12.0, 19.0), (17.0, 30.0), (30.0, 39.0))


@dataclass(frozen=True)
class InterurbanParams(FlowParams):
    """InterurbanActorFlow."""

    flow_speed: float = 15.5
    source_dist_interval_from: float = 48.0
    source_dist_interval_to: float = 88.0
    RANGES: ClassVar[dict[str, tuple[float, float]]] = flow_ranges((15.0, 16.0), (42.0, 53.0), (78.0, 98.0))


@dataclass(frozen=True)
class BicycleFlowParams(FlowParams):
    """CrossingBicycleFlow: bicycles, flow_speed [m/s] as ActorFlow's."""

    source_dist_interval_from: float = 10.0
    RANGES: ClassVar[dict[str, tuple[float, float]]] = flow_ranges((8.0, 12.0), (5.0, 15.0), (25.0, 30.0))


@dataclass(frozen=True)
class InterurbanAdvancedParams(FlowParams):
    """InterurbanAdvancedActorFlow: both flows share speed and spacing."""

    direction: str = "right"
    """Bench2drive220 only uses "right" (the route files do not say more)."""
    flow_speed: float = 17.0
    source_dist_interval_from: float = 39.0
    source_dist_interval_to: float = 89.0
    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {"direction": ("right",)}
    RANGES: ClassVar[dict[str, tuple[float, float]]] = {
        "flow_speed": (16.0, 18.0), "source_dist_interval_from": (36.0, 42.0), "source_dist_interval_to": (84.0, 94.0)}


# --------------------------------------------------------------------------- set-ups


def _into_exit(gen: GeneratedMap, ego: JunctionPath, source: Approach | None, turn: str) -> JunctionPath | None:
    """The `turn` movement from approach `source` that ends in the ego's exit lane."""
    lanes = gen.map.lanes_by_id
    for lane in () if source is None else source.lanes:
        for conn in lanes[lane].successors:
            if connector_turn(lanes[conn]) == turn and lanes[conn].successors[0] == ego.exit_lane:
                return through(gen, source, lane, conn)
    return None


def _setups(gen: GeneratedMap, ego_turn: str, relation: str, flow_turn: str, minor: bool | None = None):
    """(ego path, flow paths) where a `flow_turn` movement from the `relation` approach conflicts with the
    ego's `ego_turn`: crossing it (straight flows across a left turn) or ending in the ego's exit lane.
    `minor` True/False keeps ego approaches with / without a stop sign (None: any)."""
    out = []
    for jp in turning(gen, ego_turn):
        if minor is not None and _is_minor(gen, jp.approach) != minor:
            continue
        source = approach_from(gen, jp.approach, relation)
        if source is None:
            continue
        if ego_turn == "left" and flow_turn == "straight" and relation == "opposite":
            hit = first_crossing(gen, jp, source, "straight")
            movement = None if hit is None else hit[0]
        else:
            movement = _into_exit(gen, jp, source, flow_turn)
        if movement is not None:
            out.append((jp, (movement,)))
    return out


def _is_minor(gen: GeneratedMap, approach: Approach) -> bool:
    return bool(set(approach.connectors) & set(gen.stop_sign_connectors))


def _advanced_setups(gen: GeneratedMap):
    """InterurbanAdvancedActorFlow: from the minor road, left across the flow from the left into the flow
    from the right."""
    out = []
    for jp in turning(gen, "left"):
        left = approach_from(gen, jp.approach, "left")
        hit = None if left is None else first_crossing(gen, jp, left, "straight")
        joined = _into_exit(gen, jp, approach_from(gen, jp.approach, "right"), "straight")
        if _is_minor(gen, jp.approach) and hit is not None and joined is not None:
            out.append((jp, (hit[0], joined)))
    return out


def _flow_route(scenario_type: str, gen: GeneratedMap, rng: np.random.Generator, setups, params: FlowParams,
                reach: tuple[float, float], signalised: bool, end_after: float = END_AFTER_JUNCTION,
                kind: ActorKind = ActorKind.VEHICLE, lateral: float = 0.0) -> RouteScenario:
    """The ego through its junction path; each flow from `reach[0]` x flow speed before its junction entry
    (BEHIND_EGO behind the ego if it rides along the ego's approach) to `reach[1]` x flow speed after its
    exit, gaps from the params' interval."""
    jp, movements = pick(rng, setups)
    route = junction_route(rng, jp)
    actors, exclude = [], set()
    for movement in movements:
        before, after = (r * params.flow_speed for r in reach)
        if movement.approach.lanes == jp.approach.lanes:   # recycled behind the ego, never onto it
            ego_at = float(movement.path.project(jp.path.point(route.s_start))[0])
            before = max(before, movement.entry - ego_at + BEHIND_EGO)
        actors += flow(movement.path, movement.entry - before, movement.exit + after, params.flow_speed,
                       params.spacing, rng, kind=kind, size=BICYCLE_SIZE if kind == ActorKind.BICYCLE else None,
                       lateral_offset=lateral)
        exclude |= set(movement.approach.lanes)
    lights = ()
    if signalised:
        greens = tuple(m.approach for m in movements if m.approach.lanes != jp.approach.lanes)
        lights = traffic_lights(gen, scenario_programs(jp.approach, greens,
                                                       ((int(LightStatus.RED), GREEN_DELAY),)))
    return route_scenario(scenario_type, gen, jp.path, route.s_start, route.length, rng, route.trigger_at,
                          actors=actors, lights=lights, stop_signs=stop_signs(gen),
                          end_at=jp.exit - route.s_start + end_after,
                          background=Background(exclude_lanes=frozenset(exclude)))


def _accepts(setups):
    return lambda gen, params: bool(setups(gen))


def _left(gen):
    return _setups(gen, "left", "opposite", "straight")


def _right(gen):
    return _setups(gen, "right", "left", "straight")


def _left_enter(gen):
    return _setups(gen, "left", "opposite", "right")


def _enter_actor_flow(gen):
    return _setups(gen, "right", "left", "straight", minor=True)


def _interurban(gen):
    return _setups(gen, "left", "opposite", "straight", minor=False)


def _bicycle_flow(gen):
    return [(jp, (through(gen, jp.approach, jp.entry_lane, pair[1]),)) for jp in turning(gen, "right")
            if (pair := jp.approach.connector(gen, "straight")) is not None and pair[0] == jp.entry_lane]


# --------------------------------------------------------------------------- types


@register_route("SignalizedJunctionLeftTurn", "M+T", ("intersection",), _accepts(_left))
def build_signalized_left(params: SignalizedLeftParams, gen: GeneratedMap, rng: np.random.Generator) -> RouteScenario:
    """Unprotected left turn on green across an oncoming straight flow (its light green too)."""
    return _flow_route("SignalizedJunctionLeftTurn", gen, rng, _left(gen), params, LEFT_REACH, True)


@register_route("NonSignalizedJunctionLeftTurn", "M+T", ("intersection",), _accepts(_left))
def build_unsignalized_left(params: NonSignalizedLeftParams, gen: GeneratedMap,
                            rng: np.random.Generator) -> RouteScenario:
    """Left turn across an oncoming straight flow at a junction without lights."""
    return _flow_route("NonSignalizedJunctionLeftTurn", gen, rng, _left(gen), params, LEFT_REACH, False)


@register_route("SignalizedJunctionRightTurn", "M+T", ("intersection",), _accepts(_right))
def build_signalized_right(params: SignalizedRightParams, gen: GeneratedMap,
                           rng: np.random.Generator) -> RouteScenario:
    """Right turn into a flow coming straight from the left (its light green too)."""
    return _flow_route("SignalizedJunctionRightTurn", gen, rng, _right(gen), params, RIGHT_REACH, True)


@register_route("NonSignalizedJunctionRightTurn", "M+T", ("intersection",), _accepts(_right))
def build_unsignalized_right(params: NonSignalizedRightParams, gen: GeneratedMap,
                             rng: np.random.Generator) -> RouteScenario:
    """Right turn into a flow from the left at a junction without lights."""
    return _flow_route("NonSignalizedJunctionRightTurn", gen, rng, _right(gen), params, RIGHT_REACH, False)


@register_route("SignalizedJunctionLeftTurnEnterFlow", "M+T", ("intersection",), _accepts(_left_enter))
def build_signalized_left_enter(params: SignalizedEnterFlowParams, gen: GeneratedMap,
                                rng: np.random.Generator) -> RouteScenario:
    """Left turn into the single exit lane that an oncoming right-turning flow also takes."""
    return _flow_route("SignalizedJunctionLeftTurnEnterFlow", gen, rng, _left_enter(gen), params, LEFT_REACH, True)


@register_route("NonSignalizedJunctionLeftTurnEnterFlow", "M+T", ("intersection",), _accepts(_left_enter))
def build_unsignalized_left_enter(params: NonSignalizedEnterFlowParams, gen: GeneratedMap,
                                  rng: np.random.Generator) -> RouteScenario:
    """The same without lights."""
    return _flow_route("NonSignalizedJunctionLeftTurnEnterFlow", gen, rng, _left_enter(gen), params, LEFT_REACH,
                       False)


@register_route("EnterActorFlow", "M+T", ("t_junction",), _accepts(_enter_actor_flow))
def build_enter_actor_flow(params: EnterActorFlowParams, gen: GeneratedMap, rng: np.random.Generator) -> RouteScenario:
    """From the minor road (stop sign), turn right into a continuous flow on the main road."""
    return _flow_route("EnterActorFlow", gen, rng, _enter_actor_flow(gen), params, LEFT_REACH, False,
                       end_after=INTERURBAN_END)


@register_route("InterurbanActorFlow", "M", ("t_junction",), _accepts(_interurban))
def build_interurban(params: InterurbanParams, gen: GeneratedMap, rng: np.random.Generator) -> RouteScenario:
    """Leave the main road turning left into the minor road across a fast oncoming flow."""
    return _flow_route("InterurbanActorFlow", gen, rng, _interurban(gen), params, LEFT_REACH, False,
                       end_after=INTERURBAN_END)


@register_route("InterurbanAdvancedActorFlow", "M", ("t_junction",), _accepts(_advanced_setups))
def build_interurban_advanced(params: InterurbanAdvancedParams, gen: GeneratedMap,
                              rng: np.random.Generator) -> RouteScenario:
    """Join the main road from the minor road turning left: cross the flow from the left, merge into the
    flow from the right."""
    return _flow_route("InterurbanAdvancedActorFlow", gen, rng, _advanced_setups(gen), params, LEFT_REACH, False,
                       end_after=INTERURBAN_END)


@register_route("CrossingBicycleFlow", "M+T", ("intersection",), _accepts(_bicycle_flow))
def build_bicycle_flow(params: BicycleFlowParams, gen: GeneratedMap, rng: np.random.Generator) -> RouteScenario:
    """Turn right at a signalised junction across bicycles riding straight along the right edge of the
    ego's lane (the bike lane)."""
    return _flow_route("CrossingBicycleFlow", gen, rng, _bicycle_flow(gen), params, LEFT_REACH, True,
                       end_after=INTERURBAN_END, kind=ActorKind.BICYCLE,
                       lateral=-(LANE_WIDTH / 2 - BIKE_LANE_INSET))
