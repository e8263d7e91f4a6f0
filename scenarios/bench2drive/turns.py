"""Bench2Drive plain-turn types (#40-#44, Traffic_Signs): no adversary, the ego turns at a junction obeying
what controls it: the T-junction (minor road behind a stop sign), the 4-way junction without controls, or
the signalised 4-way junction with the Vanilla types' scripted light preludes (spec §2).
"""

from __future__ import annotations

import numpy as np

from envs.bench2drive.route_scenario import RouteScenario
from envs.sim.mapgen import GeneratedMap
from envs.sim.scene import LightStatus
from scenarios import register_route
from scenarios.bench2drive.assemble import route_scenario
from scenarios.bench2drive.background import Background
from scenarios.bench2drive.common import NoParams, pick
from scenarios.bench2drive.junctions import JunctionPath, junction_route, turning
from scenarios.bench2drive.town import axis_programs, cycle_offset, scenario_programs, stop_signs, traffic_lights

PRELUDE_S = 5.0
"""[s] each frozen phase of the Vanilla signalised types."""
END_AFTER_JUNCTION = 10.0
"""[m] the Vanilla types end this far past the junction (spec §2)."""


def _turns(gen: GeneratedMap) -> list[JunctionPath]:
    return turning(gen, "left") + turning(gen, "right")


def _minor_turns(gen: GeneratedMap) -> list[JunctionPath]:
    return [jp for jp in _turns(gen) if set(jp.approach.connectors) & set(gen.stop_sign_connectors)]


def _turn_route(scenario_type: str, gen: GeneratedMap, rng: np.random.Generator, paths: list[JunctionPath],
                lights=(), end_after: float | None = END_AFTER_JUNCTION) -> RouteScenario:
    jp = pick(rng, paths)
    route = junction_route(rng, jp)
    end_at = None if end_after is None else jp.exit - route.s_start + end_after
    return route_scenario(scenario_type, gen, jp.path, route.s_start, route.length, rng, route.trigger_at,
                          lights=lights(jp) if callable(lights) else lights, stop_signs=stop_signs(gen),
                          end_at=end_at, background=Background(ego_lane_ahead=True))


@register_route("T_Junction", "T", ("t_junction",), lambda gen, params: bool(_turns(gen)))
def build_t_junction(params: NoParams, gen: GeneratedMap, rng: np.random.Generator) -> RouteScenario:
    """Any movement through the T-junction in background traffic, stopping at the minor road's stop sign."""
    return _turn_route("T_Junction", gen, rng, _turns(gen) + turning(gen, "straight"), end_after=None)


@register_route("VanillaNonSignalizedTurn", "T", ("intersection",), lambda gen, params: bool(_turns(gen)))
def build_unsignalized_turn(params: NoParams, gen: GeneratedMap, rng: np.random.Generator) -> RouteScenario:
    """A left or right turn at the 4-way junction without lights or signs."""
    return _turn_route("VanillaNonSignalizedTurn", gen, rng, _turns(gen))


@register_route("VanillaNonSignalizedTurnEncounterStopsign", "T", ("t_junction",),
                lambda gen, params: bool(_minor_turns(gen)))
def build_stop_sign_turn(params: NoParams, gen: GeneratedMap, rng: np.random.Generator) -> RouteScenario:
    """A turn from the minor road of the T-junction: stop at the sign first."""
    return _turn_route("VanillaNonSignalizedTurnEncounterStopsign", gen, rng, _minor_turns(gen))


@register_route("VanillaSignalizedTurnEncounterGreenLight", "T", ("intersection",),
                lambda gen, params: bool(_turns(gen)))
def build_green_light_turn(params: NoParams, gen: GeneratedMap, rng: np.random.Generator) -> RouteScenario:
    """A turn at the signalised junction; the ego's light is green for 5 s, red for 5 s (all others red),
    then everything cycles normally."""
    offset = cycle_offset(rng)
    green, red = int(LightStatus.GREEN), int(LightStatus.RED)

    def lights(jp: JunctionPath):
        programs = axis_programs(jp.approach, offset, ((green, PRELUDE_S), (red, PRELUDE_S)), ((red, 2 * PRELUDE_S),))
        return traffic_lights(gen, programs)

    return _turn_route("VanillaSignalizedTurnEncounterGreenLight", gen, rng, _turns(gen), lights)


@register_route("VanillaSignalizedTurnEncounterRedLight", "T", ("intersection",),
                lambda gen, params: bool(_turns(gen)))
def build_red_light_turn(params: NoParams, gen: GeneratedMap, rng: np.random.Generator) -> RouteScenario:
    """A turn at the signalised junction; the ego's light is red for 5 s, then green for good (all others
    red)."""

    def lights(jp: JunctionPath):
        return traffic_lights(gen, scenario_programs(jp.approach, (), ((int(LightStatus.RED), PRELUDE_S),)))

    return _turn_route("VanillaSignalizedTurnEncounterRedLight", gen, rng, _turns(gen), lights)
