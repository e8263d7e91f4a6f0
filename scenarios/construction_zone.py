"""Construction zone: cones, barriers and a czone sign close the ego lane (the human changes lane) or
narrow it from one side (the human nudges away from the cones).

Agents 1.. are the zone's objects, first the cone where the zone starts. A "closure" needs a
neighbour lane in the ego's direction; without one the zone narrows the lane instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from envs.sim.scene import AgentType, Scene
from envs.sim.vehicle import PACIFICA
from scenarios import register
from scenarios.drive import AgentPlan, Drive, LightCycle, Timeline, concat_lanes, human_idm, pose_on
from scenarios.family import (
    RangedParams, add_traffic, drive_planner, ego_plan, lane_change_path, lane_traffic, matching_arc, planned_scene,
    lanes_length, road_config, road_drive_start, stationary,
)
from scenarios.lane_change import SIDES
from scenarios.lanes import parallel_lanes, path_poses, points_at, shift_path

CONE = (0.5, 0.5)
"""[m] traffic cone footprint."""
BARRIER = (2.0, 0.6)
"""[m] barrier footprint."""
SIGN = (0.8, 0.8)
"""[m] czone sign footprint."""
HALF_LANE = 1.75
"""[m] half the generated lane width (`MapGenConfig.lane_width` 3.5)."""


@dataclass(frozen=True)
class ConstructionZoneParams(RangedParams):
    """Knobs of one construction-zone scene."""

    road: str = "straight"
    """Map kind: "straight" or "curved"."""
    layout: str = "closure"
    """"closure" (the lane ends in a cone taper) or "shift" (cones narrow it from one side)."""
    side: str = "left"
    """Closure: preferred side to change to; shift: the side the human nudges to (cones on the other)."""
    ego_speed: float = 10.0
    """[m/s] ego speed at t0."""
    zone_gap: float = 25.0
    """Shift: [m] from the ego's front bumper to the first cone at t0 (a closure places the zone
    `change_margin` after the human's lane change)."""
    taper_length: float = 15.0
    """[m] along the lane over which the cones cross it (closure) or step in (shift)."""
    zone_length: float = 35.0
    """[m] length of the zone after the taper."""
    cone_spacing: float = 4.0
    """[m] between cones."""
    encroach: float = 0.9
    """Shift: [m] how far the cones reach into the lane."""
    change_start: float = -0.5
    """Closure: [s] when the lane change starts at the t0 speed (t0 = 0; negative: under way)."""
    change_duration: float = 4.0
    """Closure: [s] duration of the lane change at the t0 speed."""
    change_margin: float = 10.0
    """Closure: [m] the lane change ends this far before the first cone."""
    target_traffic: int = 1
    """Closure: vehicles in the target lane (behind, then ahead), leaving a gap."""
    num_vehicles: int = 3
    """Background vehicles on other lanes."""
    human_style: float = 0.5
    """Ego driver: 0 cautious .. 1 aggressive."""

    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {
        "road": ("straight", "curved"), "layout": ("closure", "shift"), "side": ("left", "right")}
    RANGES: ClassVar[dict[str, tuple[float, float]]] = {
        "ego_speed": (5.0, 13.0), "zone_gap": (10.0, 40.0), "taper_length": (8.0, 25.0), "zone_length": (20.0, 50.0),
        "cone_spacing": (2.5, 6.0), "encroach": (0.6, 1.3), "change_start": (-2.0, 0.5), "change_duration": (3.5, 5.5),
        "change_margin": (6.0, 15.0), "target_traffic": (0, 2),
        "num_vehicles": (0, 5), "human_style": (0.0, 1.0),
    }


def _zone_objects(lane_path: np.ndarray, points: list[tuple[float, float]], kinds: list[AgentType]) -> list[AgentPlan]:
    """Static objects at (arc length, lateral offset) points along a lane, facing along it."""
    s = np.array([p[0] for p in points])
    xy = points_at(lane_path, s, np.array([p[1] for p in points]))
    out = []
    for (at, _), centre, kind in zip(points, xy, kinds):
        size = {AgentType.TRAFFIC_CONE: CONE, AgentType.BARRIER: BARRIER, AgentType.CZONE_SIGN: SIGN}[kind]
        out.append(stationary(centre, float(pose_on(lane_path, at)[2]), size, kind))
    return out


@drive_planner("construction_zone")
def plan(params: ConstructionZoneParams, rng: np.random.Generator, timeline: Timeline, alert: bool) -> Drive:
    """Ego on a road lane with a construction zone ahead; its path avoids the zone."""
    multi = params.layout == "closure"
    v = params.ego_speed
    reach = max(v * (timeline.end_s + 1.0), v * 4.0 + params.zone_gap + params.taper_length) + 40.0
    gen, lanes, rear_s = road_drive_start(params.road, rng, road_config(timeline, lanes=(2, 4) if multi else (1, 4)),
                                          v * -timeline.start_s + 10.0, reach)
    side = SIDES[params.side]
    if multi and parallel_lanes(gen.map, lanes, side) is None:
        side = -side
    closure = multi and parallel_lanes(gen.map, lanes, side) is not None
    lane_path, _ = concat_lanes(gen.map, lanes)
    centre = rear_s + PACIFICA.rear_axle_to_center
    zone_s = rear_s + PACIFICA.front_length + params.zone_gap
    if closure:   # the move (box centre, at the t0 speed, >= 15 m long) ends change_margin before the zone
        change_start = centre + v * params.change_start
        change_end = change_start + max(15.0, v * params.change_duration)
        zone_s = change_end + PACIFICA.length / 2 + params.change_margin
    taper_end = zone_s + params.taper_length
    zone_end = taper_end + params.zone_length
    step = params.cone_spacing

    if closure:   # cones cross the lane from the far edge to the passing side, then line that side
        path, target, _ = lane_change_path(gen, lanes, side, change_start, change_end - change_start)
        taper = np.arange(zone_s, taper_end, step)
        # the cone line stays 0.7 m inside the closed lane: >= 0.7 m clear of a car in the next lane
        lateral = side * (-HALF_LANE + 0.3 + (2 * HALF_LANE - 1.0) * (taper - zone_s) / (taper_end - zone_s))
        points = list(zip(taper, lateral))
        points += [(s, side * (HALF_LANE - 0.7)) for s in np.arange(taper_end, zone_end, step)]
        kinds = [AgentType.TRAFFIC_CONE] * len(points)
        points += [(s, 0.0) for s in np.arange(taper_end + 5.0, zone_end - 2.0, 12.0)]
        kinds += [AgentType.BARRIER] * (len(points) - len(kinds))
        sign_side = -side
    else:         # cones step into the lane from the other side; the human nudges away
        target = ()
        inner = -side * (HALF_LANE - params.encroach + CONE[1] / 2)
        edge = -side * (HALF_LANE - CONE[1] / 2)
        taper = np.arange(zone_s, taper_end, step)
        lateral = edge + (inner - edge) * (taper - zone_s) / (taper_end - zone_s)
        points = list(zip(taper, lateral)) + [(s, inner) for s in np.arange(taper_end, zone_end, step)]
        kinds = [AgentType.TRAFFIC_CONE] * len(points)
        nudge = side * (params.encroach + 0.1)
        path = shift_path(lane_path, ((zone_s - max(15.0, 1.5 * v), 0.0), (zone_s, nudge), (zone_end, nudge),
                                      (zone_end + max(15.0, 1.5 * v), 0.0)))
        sign_side = -side
    sign_s = zone_s - float(rng.uniform(12.0, 25.0))
    if sign_s > centre + PACIFICA.length:
        points.append((sign_s, sign_side * (HALF_LANE - 0.5)))
        kinds.append(AgentType.CZONE_SIGN)
    inside = [i for i, (at, _) in enumerate(points) if at < lanes_length(gen, lanes) - 5.0]
    zone = _zone_objects(lane_path, [points[i] for i in inside], [kinds[i] for i in inside])

    ego = ego_plan(gen, lanes, rear_s, v, v, timeline, path=path)
    plans = [ego, *zone]
    ego_xy = pose_on(ego.path, ego.s)[:2]
    placed = [(ego_xy, 4.0)] + [(pose_on(z.path, z.s)[:2], 1.0) for z in zone]
    if closure:
        here = matching_arc(gen, lanes, centre, target)
        slots = [(here - float(rng.uniform(25.0, 45.0)), v * float(rng.uniform(0.8, 1.0))),
                 (here + float(rng.uniform(45.0, 80.0)), max(v, 8.0) * float(rng.uniform(0.95, 1.15)))]
        lane_traffic(gen, target, plans, placed, rng, slots[:params.target_traffic], timeline)
    add_traffic(gen, plans, placed, rng, params.num_vehicles, ego_xy, timeline, avoid_lanes={*lanes, *target})
    wander = (float(rng.uniform(0.0, 0.08)), float(rng.uniform(30.0, 80.0)), float(rng.uniform(0.0, 2 * math.pi)))
    return Drive(gen=gen, route_lane_ids=lanes, agents=tuple(plans), ego_params=human_idm(params.human_style),
                 lights=LightCycle((), (), 0.0), wander=wander, timeline=timeline, ego_baseline=path_poses(path),
                 key_agents=tuple(range(1, len(zone) + 1)))


@register("construction_zone")
def build(params: ConstructionZoneParams, rng: np.random.Generator) -> Scene:
    """Cones, barriers and a sign closing or narrowing the ego lane; the human avoids them."""
    return planned_scene(plan, params, rng, "construction_zone")
