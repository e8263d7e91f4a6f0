"""Routes through the built-in junctions for the Bench2Drive types that turn or cross: the ego's lane
sequence through one connector, the run-up before it, crossing movements and actors that drive through."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from envs.sim.mapgen import GeneratedMap
from scenarios.bench2drive.common import Corridor, corridor, draw, draw_trigger, span
from scenarios.bench2drive.town import Approach, approaches
from scenarios.lanes import approach_lanes, arc_lengths, connector_turn, follow_lanes, path_crossing

RUN_UP = (40.0, 55.0)
"""[m] from the route start to the junction entry: the trigger (5-15 m in) comes well before it."""
AFTER = 50.0
"""[m] of exit road kept on the route after the junction (spec: most junction types end 10-40 m after)."""
ARM_REACH = 200.0
"""[m] of lanes kept before and after the connector (a whole built-in junction arm)."""


@dataclass(frozen=True)
class JunctionPath:
    """A lane sequence through one junction connector."""

    approach: Approach
    connector: str
    path: Corridor

    @property
    def entry(self) -> float:
        """[m] arc length where the connector starts (the stop line)."""
        return self.path.lane_start(self.connector)

    @property
    def exit(self) -> float:
        """[m] arc length where the connector ends (the exit road starts)."""
        return self.path.lane_end(self.connector)

    @property
    def exit_lane(self) -> str:
        return self.path.lanes[self.path.lanes.index(self.connector) + 1]

    @property
    def entry_lane(self) -> str:
        return self.path.lanes[self.path.lanes.index(self.connector) - 1]


def through(gen: GeneratedMap, approach: Approach, lane: str, connector: str, before: float = ARM_REACH,
            after: float = ARM_REACH) -> JunctionPath:
    """The path from `before` [m] ahead of the junction on `lane` through `connector` and `after` beyond."""
    exit_lane = gen.map.lanes_by_id[connector].successors[0]
    lanes = approach_lanes(gen.map, lane, before) + (connector,) + follow_lanes(gen.map, (exit_lane,), after)
    return JunctionPath(approach, connector, corridor(gen.map, lanes))


def turning(gen: GeneratedMap, turn: str, approach: Approach | None = None) -> list[JunctionPath]:
    """Paths making `turn` ("left", "right", "straight") from each approach (or the given one), through
    the innermost lane that has such a connector."""
    out = []
    for a in approaches(gen) if approach is None else (approach,):
        pair = a.connector(gen, turn)
        if pair is not None:
            out.append(through(gen, a, *pair))
    return out


def approach_from(gen: GeneratedMap, ego: Approach, relation: str) -> Approach | None:
    """The approach whose traffic comes from `relation` ("left", "right", "opposite") of the ego's."""
    return next((a for a in approaches(gen) if ego.relation(a) == relation), None)


def first_crossing(gen: GeneratedMap, ego: JunctionPath, other: Approach,
                   turn: str) -> tuple[JunctionPath, float] | None:
    """(path, arc length on it of the conflict point) of the `turn` movement from `other` whose connector
    crosses the ego's connector first along the ego's path; None without one."""
    own = gen.map.lanes_by_id[ego.connector].centerline
    best = None
    for lane in other.lanes:
        for conn in gen.map.lanes_by_id[lane].successors:
            if connector_turn(gen.map.lanes_by_id[conn]) != turn:
                continue
            hit = path_crossing(own, gen.map.lanes_by_id[conn].centerline)
            if hit is not None and (best is None or hit[0] < best[0]):
                best = (hit[0], lane, conn, hit[1])
    if best is None:
        return None
    candidate = through(gen, other, best[1], best[2], after=80.0)
    return candidate, candidate.entry + best[3]


@dataclass(frozen=True)
class JunctionRoute:
    """Where a junction route starts, triggers and how long it is (metres on its path)."""

    s_start: float
    trigger_at: float
    length: float


def junction_route(rng: np.random.Generator, jp: JunctionPath, after: float = AFTER) -> JunctionRoute:
    """Route start RUN_UP before the junction, trigger TRIGGER_AT in, `after` [m] of exit road."""
    s_start = jp.entry - draw(rng, RUN_UP)
    length = min(span(jp.exit - s_start + after), jp.path.length - s_start - 1.0)
    return JunctionRoute(s_start, draw_trigger(rng), length)


def connector_length(gen: GeneratedMap, connector: str) -> float:
    return float(arc_lengths(gen.map.lanes_by_id[connector].centerline)[-1])
