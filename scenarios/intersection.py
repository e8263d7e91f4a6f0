"""Signalised crossing: the ego goes straight, left or right through a 4-way junction under a fixed-time
light cycle, with cross traffic, a possible lead and pedestrians on the crosswalks.

No scripted event: the lights (the human stops for red and for yellow it can stop for), the turn and
the traffic make it. Left turns have their own protected phase.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from envs.sim.scene import AgentType, Scene
from envs.sim.vehicle import PACIFICA
from scenarios import register
from scenarios.drive import AgentPlan, Drive, LightCycle, Timeline, human_idm, path_plan, pose_on
from scenarios.family import (
    RangedParams, add_traffic, drive_planner, ego_plan, is_clear, path_ahead, planned_scene, road_config, valid_map,
    vehicle_size,
)
from scenarios.junction import junction_route, lane_start, turn_movements
from scenarios.lanes import TURNS


@dataclass(frozen=True)
class IntersectionParams(RangedParams):
    """Knobs of one signalised-crossing scene."""

    turn: str = "straight"
    """The ego's movement: "straight", "left" or "right"."""
    ego_speed: float = 8.0
    """[m/s] ego speed at t0 (lowered so it could still stop for a red at 2.5 m/s^2)."""
    line_distance: float = 20.0
    """[m] from the ego front to the stop line at t0."""
    lead: float = 0.5
    """Chance of a vehicle ahead of the ego in its lane."""
    num_vehicles: int = 6
    """Cross and oncoming traffic around the junction."""
    num_pedestrians: int = 2
    """Pedestrians on the crosswalks."""
    human_style: float = 0.5
    """Ego driver: 0 cautious .. 1 aggressive."""

    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {"turn": TURNS}
    RANGES: ClassVar[dict[str, tuple[float, float]]] = {
        "ego_speed": (0.0, 13.0), "line_distance": (0.0, 25.0), "lead": (0.0, 1.0), "num_vehicles": (2, 10),
        "num_pedestrians": (0, 4), "human_style": (0.0, 1.0),
    }


@drive_planner("intersection")
def plan(params: IntersectionParams, rng: np.random.Generator, timeline: Timeline, alert: bool) -> Drive:
    """Ego approaching a signalised crossing on a route with the requested turn."""
    gen = valid_map("intersection", rng, road_config(timeline))
    moves = turn_movements(gen, params.turn)
    approach, connector = moves[int(rng.integers(len(moves)))]
    v = min(params.ego_speed, math.sqrt(2.0 * 2.5 * params.line_distance))
    lanes = junction_route(gen, approach, connector, v * -timeline.start_s + 50.0, 12.0 * timeline.end_s + 40.0)
    line = lane_start(gen, lanes, connector)
    rear_s = line - params.line_distance - PACIFICA.front_length
    ego = ego_plan(gen, lanes, rear_s, v, max(v, 8.0), timeline)
    plans = [ego]
    ego_xy = pose_on(ego.path, ego.s)[:2]
    placed = [(ego_xy, 4.0)]
    if rng.random() < params.lead:     # a lead in the ego lane, some way ahead
        size = vehicle_size(rng)
        s = rear_s + PACIFICA.front_length + float(rng.uniform(6.0, 30.0)) + size[0] / 2
        speed = float(rng.uniform(0.0, 1.0)) * v
        lead = path_plan(gen, lanes, max(s - speed * -timeline.start_s, s - 20.0), speed, size,
                         float(rng.uniform(0.6, 0.8)), ahead=path_ahead(timeline))
        centre = pose_on(lead.path, lead.s)[:2]
        if is_clear(centre, size[0] / 2 + 1.0, placed):
            plans.append(lead)
            placed.append((centre, size[0] / 2 + 1.0))
    add_traffic(gen, plans, placed, rng, params.num_vehicles, ego_xy, timeline, avoid_lanes=set(lanes[:-1]))
    for _ in range(params.num_pedestrians):   # across the long axis of a crosswalk, kerb to kerb (+1.5 m)
        ring = np.asarray(gen.map.crosswalks[int(rng.integers(len(gen.map.crosswalks)))].polygon)
        edges = np.roll(ring, -1, 0) - ring
        longest = edges[int(np.argmax(np.hypot(*edges.T)))]
        half = longest / 2 + 1.5 * longest / np.hypot(*longest)
        ends = np.stack([ring.mean(0) - half, ring.mean(0) + half])
        path = ends[::-1] if rng.random() < 0.5 else ends
        s = float(rng.uniform(0.0, 0.7)) * float(np.hypot(*(path[1] - path[0])))
        position = pose_on(path, s)[:2]
        if is_clear(position, 1.0, placed):
            plans.append(AgentPlan(path=path, s=s, speed=float(rng.uniform(0.8, 1.6)),
                                   size=(float(rng.uniform(0.5, 0.8)), float(rng.uniform(0.5, 0.8))),
                                   type=AgentType.PEDESTRIAN, is_reactive=False))
            placed.append((position, 1.0))
    lights = LightCycle.sample(gen.signal_groups.values(), rng)
    wander = (float(rng.uniform(0.0, 0.15)), float(rng.uniform(30.0, 80.0)), float(rng.uniform(0.0, 2 * math.pi)))
    return Drive(gen=gen, route_lane_ids=lanes, agents=tuple(plans), ego_params=human_idm(params.human_style),
                 lights=lights, wander=wander, timeline=timeline)


@register("intersection")
def build(params: IntersectionParams, rng: np.random.Generator) -> Scene:
    """An ordinary drive through a signalised crossing."""
    return planned_scene(plan, params, rng, "intersection")
