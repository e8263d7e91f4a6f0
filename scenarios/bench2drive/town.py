"""Built-in "towns" of the Bench2Drive catalog: procedural maps named `Builtin_<kind>_<seed>`, the choice of
a map that suits a scenario, and the junction furniture the routes need (approaches, traffic lights with
their programs, stop signs). A town name alone rebuilds its map (fixed generator settings per kind).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import numpy as np

from envs.bench2drive.route_scenario import LightProgram, LightSpec, StopSignSpec
from envs.sim.mapgen import GeneratedMap, MapGenConfig, generate_map
from envs.sim.scene import LightStatus
from scenarios.lanes import connector_turn, path_poses

TOWN_PREFIX = "Builtin_"
LANE_WIDTH = 3.5
"""[m] every built-in town uses the generator's default lane width."""
TOWN_CONFIGS: dict[str, MapGenConfig] = {
    # 60 km/h rural/urban roads: Bench2Drive's obstacle routes cap side traffic at 32-59 km/h (spec §2 table)
    "straight": MapGenConfig(road_speed_limit=16.7, num_segments_range=(3, 5)),
    "curved": MapGenConfig(road_speed_limit=16.7, num_segments_range=(3, 5)),
    # 50 km/h urban junctions with 100-160 m arms (room for a ~50 m run-up and ~50 m after the junction)
    "intersection": MapGenConfig(arm_segments=2),
    "t_junction": MapGenConfig(arm_segments=2),
    # 90 km/h: the cap Bench2Drive's background traffic never exceeds (spec §2.1)
    "merge": MapGenConfig(road_speed_limit=25.0),
}
"""Generator settings per map kind; part of a town's identity (changing one renames nothing: do not)."""
TOWN_TRIES = 60
"""Maps drawn before giving up on a scenario's requirements (the rarest, 1 lane per direction, is 1 in 4)."""

WEATHER_IDS = tuple(str(i) for i in (0, 1, 2, 3, *range(5, 16), *range(18, 24), 25, 26))
"""Weather preset ids of the leaderboard's weather list (spec §1.1; 4, 16, 17 and 24 do not exist); the
built-in simulator does not render weather, the id only names the route's record."""

GREEN_S, YELLOW_S, ALL_RED_S = 12.0, 3.0, 1.0
"""[s] two-phase fixed-time plan of the built-in signalised junctions (each axis in turn)."""
HOLD_S = 300.0
"""[s] a "held" light keeps its state longer than the 200 s route cap (spec §3.1 TickRuntime)."""
STOP_BOX_LENGTH = 3.0
"""[m] depth of a stop sign's trigger area before the stop line."""


def town_name(kind: str, seed: int) -> str:
    return f"{TOWN_PREFIX}{kind}_{int(seed)}"


@lru_cache(maxsize=256)
def town_map(town: str) -> GeneratedMap:
    """The map of a built-in town name ("Builtin_<kind>_<seed>"); cached (maps are immutable; ~0.3 MB and
    10-30 ms each)."""
    body = town[len(TOWN_PREFIX):] if town.startswith(TOWN_PREFIX) else ""
    kind, _, seed = body.rpartition("_")
    if kind not in TOWN_CONFIGS or not seed.isdigit():
        raise ValueError(f"town={town!r}: expected {TOWN_PREFIX}<kind>_<seed> with kind in {', '.join(TOWN_CONFIGS)}")
    return generate_map(kind, np.random.default_rng(int(seed)), TOWN_CONFIGS[kind])


def pick_town(kinds: tuple[str, ...], accepts: Callable[[GeneratedMap], bool],
              rng: np.random.Generator) -> tuple[str, GeneratedMap]:
    """(town, map): the first of up to TOWN_TRIES random towns of the given kinds that `accepts` likes."""
    for _ in range(TOWN_TRIES):
        kind = kinds[int(rng.integers(len(kinds)))]
        town = town_name(kind, int(rng.integers(2 ** 31)))
        gen = town_map(town)
        if accepts(gen):
            return town, gen
    raise ValueError(f"kinds={kinds!r}: no town in {TOWN_TRIES} draws meets the scenario's requirements")


# --------------------------------------------------------------------------- junction approaches


@dataclass(frozen=True)
class Approach:
    """The incoming lanes of one junction arm and its stop line."""

    lanes: tuple[str, ...]
    """Incoming lane ids, innermost (left) first."""
    connectors: tuple[str, ...]
    heading: float
    """[rad] direction of travel at the stop line."""
    stop_line: np.ndarray
    """(2, 2) [m] from the right road edge to the centre line, where the lanes end."""

    def connector(self, gen: GeneratedMap, turn: str) -> tuple[str, str] | None:
        """(incoming lane, connector) making `turn` ("left", "right", "straight"), innermost lane first."""
        lanes = gen.map.lanes_by_id
        for lane in self.lanes:
            for conn in lanes[lane].successors:
                if conn in lanes and connector_turn(lanes[conn]) == turn:
                    return lane, conn
        return None

    def relation(self, other: "Approach") -> str:
        """Where `other`'s traffic comes from, seen by a driver on this approach: "left", "right",
        "opposite" or "same"."""
        delta = math.remainder(other.heading - self.heading, 2 * math.pi)
        if abs(delta) < math.pi / 4:
            return "same"
        if abs(delta) > 3 * math.pi / 4:
            return "opposite"
        return "left" if delta < 0 else "right"   # from the left it drives towards the ego's right


def approaches(gen: GeneratedMap) -> tuple[Approach, ...]:
    """Every junction arm of the map: the roadblocks with a lane whose successors are lane connectors (all
    their lanes: a middle lane without a turn of its own still stops at the line)."""
    lanes = gen.map.lanes_by_id
    blocks = dict.fromkeys(lane.roadblock_id for lane in gen.map.lanes
                           if any(s in lanes and lanes[s].is_connector for s in lane.successors))
    out = []
    for block in blocks:
        ids = [i for i in gen.map.roadblock_lane_ids[block] if not lanes[i].is_connector]
        ends = {i: path_poses(lanes[i].centerline)[-1] for i in ids}   # the lanes end on one stop line
        heading = float(ends[ids[0]][2])
        normal = np.array([-math.sin(heading), math.cos(heading)])
        ids.sort(key=lambda i: -float(normal @ ends[i][:2]))   # leftmost first
        poses = [ends[i] for i in ids]
        left, right = poses[0][:2] + normal * LANE_WIDTH / 2, poses[-1][:2] - normal * LANE_WIDTH / 2
        connectors = tuple(c for i in ids for c in lanes[i].successors if c in lanes and lanes[c].is_connector)
        out.append(Approach(tuple(ids), connectors, heading, np.stack([right, left])))
    return tuple(out)


def approach_of(gen: GeneratedMap, lane_id: str) -> Approach:
    """The approach whose incoming lanes include `lane_id`."""
    for approach in approaches(gen):
        if lane_id in approach.lanes:
            return approach
    raise ValueError(f"lane_id={lane_id!r}: not an incoming junction lane")


# --------------------------------------------------------------------------- lights and stop signs


def held(status: LightStatus, prelude: tuple[tuple[int, float], ...] = ()) -> LightProgram:
    """A light that shows `status` for the whole route (after `prelude`)."""
    return LightProgram(cycle=((int(status), HOLD_S),), prelude=prelude)


def cycling(phase: int, offset: float, prelude: tuple[tuple[int, float], ...] = ()) -> LightProgram:
    """Two-phase plan: phase 0 green while phase 1 is red and back; `offset` [s] into the cycle of phase 0."""
    half = GREEN_S + YELLOW_S + ALL_RED_S
    cycle = ((int(LightStatus.GREEN), GREEN_S), (int(LightStatus.YELLOW), YELLOW_S),
             (int(LightStatus.RED), ALL_RED_S + half))
    return LightProgram(cycle=cycle, offset=float((offset + phase * half) % (2 * half)), prelude=prelude)


def cycle_offset(rng: np.random.Generator) -> float:
    """[s] a random point of the two-phase cycle."""
    return float(rng.uniform(0.0, 2 * (GREEN_S + YELLOW_S + ALL_RED_S)))


def traffic_lights(gen: GeneratedMap, programs: Callable[[Approach], LightProgram]) -> tuple[LightSpec, ...]:
    """One light per approach of a signalised junction, its program chosen by `programs`."""
    return tuple(LightSpec(stop_line=a.stop_line, heading=a.heading, program=programs(a), lane_ids=a.connectors)
                 for a in approaches(gen))


def scenario_programs(ego: Approach, green: tuple[Approach, ...] = (), ego_prelude: tuple[tuple[int, float], ...] = ()
                      ) -> Callable[[Approach], LightProgram]:
    """Lights a scenario sets for the whole route: the ego's green (after `ego_prelude`), the `green`
    approaches green, every other one red."""
    greens = {a.lanes for a in green}

    def program(a: Approach) -> LightProgram:
        if a.lanes == ego.lanes:
            return held(LightStatus.GREEN, ego_prelude)
        return held(LightStatus.GREEN if a.lanes in greens else LightStatus.RED)

    return program


def axis_programs(ego: Approach, offset: float, ego_prelude: tuple[tuple[int, float], ...] = (),
                  others_prelude: tuple[tuple[int, float], ...] = ()) -> Callable[[Approach], LightProgram]:
    """Normal cycling: the ego's axis (its approach and the opposite one) is phase 0; the ego's light and
    the others start with their preludes."""

    def program(a: Approach) -> LightProgram:
        phase = 0 if ego.relation(a) in ("same", "opposite") else 1
        return cycling(phase, offset, ego_prelude if a.lanes == ego.lanes else others_prelude)

    return program


def stop_signs(gen: GeneratedMap) -> tuple[StopSignSpec, ...]:
    """A stop sign on every approach whose connectors the map marks as stop-sign controlled (T-junction minor
    road, car-park exit): its trigger area covers the last STOP_BOX_LENGTH metres of the incoming lanes."""
    out = []
    for a in approaches(gen):
        if not set(a.connectors) & set(gen.stop_sign_connectors):
            continue
        direction = np.array([math.cos(a.heading), math.sin(a.heading)])
        centre = a.stop_line.mean(0) - direction * STOP_BOX_LENGTH / 2
        out.append(StopSignSpec(center=centre, heading=a.heading, length=STOP_BOX_LENGTH,
                                width=len(a.lanes) * LANE_WIDTH, lane_ids=a.connectors))
    return tuple(out)
