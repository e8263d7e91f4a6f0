"""Background traffic of a Bench2Drive route, a static simplification of the leaderboard's BackgroundBehavior
(spec §2.1): IDM vehicles placed once at the start instead of sources that keep spawning.

- Same-direction lanes of the route start: 2 vehicles ahead (20 and 35 m) and 2 behind (-20 and -35 m)
  per lane, 15 m apart, none within 20 m of the ego; the ego lane ahead only when the scenario allows it
  (`LeaveSpaceInFront` keeps the scenario's actors visible). Desired speed = lane speed limit (at most
  90 km/h), capped on the other lanes by the scenario's `SetMaxSpeed`.
- Opposite road: up to 3 oncoming vehicles per lane (two innermost lanes) 30, 70 and 110 m ahead of the
  ego (sources 80 m ahead at 40 m spacing in the leaderboard).
- Junction on the route: with 80 % chance per other arm, one vehicle 20-40 m before its stop line
  driving through a random connector (the leaderboard's junction entry sources 40 m out).
- At most MAX_BACKGROUND vehicles, nearest to the ego first; none within KEEP_OUT of a scenario actor.
Not modelled: spawning while the ego drives, the radius growing with ego speed, lane changes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from envs.bench2drive.route_scenario import ActorSpec, Role
from envs.sim.mapgen import GeneratedMap
from scenarios.bench2drive.common import Corridor, corridor, lane_corridor, on_lane
from scenarios.bench2drive.town import LANE_WIDTH, approaches
from scenarios.family import vehicle_size
from scenarios.lanes import approach_lanes, follow_lanes

MAX_BACKGROUND = 12
"""Background vehicles per route (the world's actor slots are shared with the scenario's actors)."""
MAX_SPEED = 25.0
"""[m/s] 90 km/h: no background vehicle wants more (spec §2.1)."""
SAME_LANE_OFFSETS = (20.0, 35.0)
"""[m] ahead of / behind the ego on each same-direction lane (nothing within 20 m, 15 m apart)."""
OPPOSITE_OFFSETS = (30.0, 70.0, 110.0)
"""[m] ahead of the ego on the opposite lanes (40 m spacing)."""
JUNCTION_SOURCE = (20.0, 40.0)
"""[m] before its stop line, a junction background vehicle's start."""
JUNCTION_CHANCE = 0.8
SPACING = 3.0
"""[m] no two background vehicles start closer than this (centres; less than a lane width apart means two
sources on one spot)."""
KEEP_OUT = 15.0
"""[m] no background vehicle starts this close to a scenario actor."""


@dataclass(frozen=True)
class Background:
    """How one route's background traffic is laid out."""

    ego_lane_ahead: bool = False
    """Vehicles ahead of the ego in its own lane (False: the leaderboard's LeaveSpaceInFront)."""
    side_speed: float | None = None
    """[m/s] desired-speed cap of the other same-direction lanes (obstacle scenarios' SetMaxSpeed)."""
    behind: bool = True
    """Vehicles behind the ego."""
    opposite: bool = True
    """Oncoming vehicles (False where a scenario flow replaces them, the TwoWays types)."""
    junction: bool = True
    """Vehicles entering the route's junction from its other arms."""
    exclude_lanes: frozenset[str] = frozenset()
    """Lanes no background vehicle starts on (scenario flows, parking lanes); an arm with one is skipped."""


def _heading_at(line: np.ndarray, k: int) -> float:
    a, b = line[max(k - 1, 0)], line[min(k + 1, len(line) - 1)]
    return math.atan2(b[1] - a[1], b[0] - a[0])


def opposite_lanes(gen: GeneratedMap, point: np.ndarray, heading: float, count: int = 2) -> list[str]:
    """Up to `count` non-connector lanes beside `point` on its left whose traffic drives against
    `heading`, innermost first."""
    found = []
    for lane in gen.map.lanes:
        line = np.asarray(lane.centerline)
        k = int(np.argmin(np.hypot(*(line - point).T)))
        rel = line[k] - point
        lateral = -math.sin(heading) * rel[0] + math.cos(heading) * rel[1]
        along = math.cos(heading) * rel[0] + math.sin(heading) * rel[1]
        if 0.5 < lateral < 6 * LANE_WIDTH and abs(along) < 3.0 and \
                math.cos(_heading_at(line, k) - heading) < -0.9:
            found.append((lateral, lane.id))
    out: list[tuple[float, str]] = []
    for lateral, lane_id in sorted(found):   # two lanes of one chain meet beside a roadblock joint: keep one
        if not out or lateral - out[-1][0] > 1.0:
            out.append((lateral, lane_id))
    return [lane_id for _, lane_id in out[:count]]


def background_actors(gen: GeneratedMap, route: np.ndarray, path: Corridor, s_start: float, spec: Background,
                      keep_out: np.ndarray, rng: np.random.Generator) -> list[ActorSpec]:
    """Background vehicles of a route (see the module docstring); `keep_out` (K, 2) scenario actor starts."""
    ego_xy, ego_heading = route[0, :2], float(route[0, 2])
    candidates: list[tuple[Corridor, float, float]] = []   # (corridor, s, desired speed)
    lanes = gen.map.lanes_by_id

    def speed_of(lane_id: str) -> float:
        return min(float(lanes[lane_id].speed_limit or MAX_SPEED), MAX_SPEED)

    # same-direction lanes of the roadblock the route starts in
    base = path.lane_at(s_start)
    siblings = [i for i in gen.map.roadblock_lane_ids[lanes[base].roadblock_id] if not lanes[i].is_connector]
    start_lane = min(siblings, key=lambda i: float(np.hypot(*(np.asarray(lanes[i].centerline) - ego_xy).T).min()))
    for lane_id in siblings:
        if lane_id in spec.exclude_lanes:
            continue
        lane_path = path if lane_id == base else lane_corridor(gen, lane_id, 60.0, 300.0)
        s_ego = float(lane_path.project(ego_xy)[0])
        offsets = [] if lane_id == start_lane and not spec.ego_lane_ahead else list(SAME_LANE_OFFSETS)
        offsets += [-d for d in SAME_LANE_OFFSETS] if spec.behind else []
        cap = spec.side_speed if spec.side_speed is not None and lane_id != start_lane else MAX_SPEED
        candidates += [(lane_path, s_ego + d, min(speed_of(lane_id), cap)) for d in offsets]

    if spec.opposite:
        for lane_id in opposite_lanes(gen, ego_xy, ego_heading):
            lane_path = lane_corridor(gen, lane_id, 250.0, 60.0)
            s_ego = float(lane_path.project(ego_xy)[0])
            candidates += [(lane_path, s_ego - d, speed_of(lane_id)) for d in OPPOSITE_OFFSETS]

    route_lanes = path.lanes[path.lanes.index(base):]
    first_connector = next((i for i in route_lanes if lanes[i].is_connector), None)
    if spec.junction and first_connector is not None:
        entry = lanes[first_connector].predecessors[0]
        for arm in approaches(gen):
            if entry in arm.lanes or set(arm.lanes) & spec.exclude_lanes or rng.random() >= JUNCTION_CHANCE:
                continue
            movements = [(lane_id, c) for lane_id in arm.lanes for c in lanes[lane_id].successors
                         if c in lanes and lanes[c].is_connector]
            lane_id, connector = movements[int(rng.integers(len(movements)))]
            lane_path = corridor(gen.map, approach_lanes(gen.map, lane_id, 60.0)
                                 + follow_lanes(gen.map, (connector,), 80.0))
            s_stop = lane_path.lane_start(connector)
            candidates.append((lane_path, s_stop - float(rng.uniform(*JUNCTION_SOURCE)), speed_of(lane_id)))

    chosen, taken = [], []
    for lane_path, s, speed in candidates:
        if not 2.0 <= s <= lane_path.length - 30.0:
            continue
        xy = lane_path.point(s)
        distance = float(np.hypot(*(xy - ego_xy)))
        if distance < 18.0 or (len(keep_out) and np.hypot(*(keep_out - xy).T).min() < KEEP_OUT):
            continue
        if taken and np.hypot(*(np.array(taken) - xy).T).min() < SPACING:   # two sources on one spot
            continue
        taken.append(xy)
        chosen.append((distance, lane_path, s, speed))
    chosen.sort(key=lambda item: item[0])
    return [on_lane(lane_path, s, vehicle_size(rng), speed, role=Role.BACKGROUND)
            for _, lane_path, s, speed in chosen[:MAX_BACKGROUND]]
