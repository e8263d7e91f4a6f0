"""Ordinary urban driving: a procedural map, an IDM "human" ego on a route, traffic, pedestrians, lights.

The family's params and spawning rules; the simulation and the scene assembly are `scenarios.drive`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from envs.sim.geometry import box_corners, polygon_intersects_boxes
from envs.sim.map import RoadMap
from envs.sim.mapgen import MapKind, generate_map
from envs.sim.route import path_project
from envs.sim.scene import AgentType, Scene
from envs.sim.vehicle import PACIFICA
from scenarios import register
from scenarios.drive import (
    SPEED_CAP, AgentPlan, Drive, LightCycle, drive_scene, human_idm, lane_length, lane_walk, map_is_valid, path_plan,
    pose_on, simulate_drive, spawn_ego,
)


def _clear(centre: np.ndarray, radius: float, placed: list[tuple[np.ndarray, float]]) -> bool:
    return all(np.hypot(*(centre - c)) > radius + r for c, r in placed)


def _lane_rings(road_map: RoadMap) -> tuple[torch.Tensor, torch.Tensor]:
    """Every lane and lane-connector polygon, padded: (1, R, V, 2) and valid (1, R, V)."""
    rings = [np.asarray(o.polygon) for o in (*road_map.lanes, *road_map.lane_connectors)]
    width = max(len(r) for r in rings)
    poly = torch.zeros(1, len(rings), width, 2, dtype=torch.float64)
    valid = torch.zeros(1, len(rings), width, dtype=torch.bool)
    for i, ring in enumerate(rings):
        poly[0, i, :len(ring)], valid[0, i, :len(ring)] = torch.as_tensor(ring), True
    return poly, valid


def _roadside(road_map: RoadMap, rings, rng: np.random.Generator, near: np.ndarray, size, gap: float):
    """(centre, heading) of a box `gap` beyond the right edge of a lane within 70 m of `near`, touching no
    lane or connector; None when the draw lands on the road (e.g. beside an inner lane)."""
    candidates = [lane for lane in road_map.lanes if np.hypot(*(lane.centerline - near).T).min() < 70.0]
    if not candidates:
        return None
    lane = candidates[int(rng.integers(len(candidates)))]
    x, y, h = pose_on(np.asarray(lane.centerline), float(rng.uniform(0.0, lane_length(lane))))
    half_lane = float(np.hypot(*(np.asarray(lane.polygon) - [x, y]).T).min())
    offset = half_lane + size[1] / 2 + gap
    centre = np.array([x + math.sin(h) * offset, y - math.cos(h) * offset])
    corners = box_corners(torch.as_tensor(centre)[None], torch.tensor([h], dtype=torch.float64), size[0], size[1])
    if bool(polygon_intersects_boxes(corners[None], *rings).any()):
        return None
    return centre, h


def _stationary(centre: np.ndarray, heading: float, size, kind: AgentType) -> AgentPlan:
    direction = np.array([math.cos(heading), math.sin(heading)])
    return AgentPlan(path=np.stack([centre - direction, centre + direction]), s=1.0, speed=0.0, size=tuple(size),
                     type=kind, is_reactive=False)


def _vehicle_size(rng: np.random.Generator) -> tuple[float, float]:
    if rng.random() < 0.1:
        return float(rng.uniform(6.0, 9.0)), float(rng.uniform(2.2, 2.5))   # van / small truck
    return float(rng.uniform(4.2, 5.2)), float(rng.uniform(1.8, 2.1))


def _blocks_ego(ego: AgentPlan, centre: np.ndarray, speed: float) -> bool:
    """Would a vehicle here start too close ahead of (or behind) the ego in its lane?"""
    along = path_project(ego.path, centre[None])[0]
    lateral = np.hypot(*(pose_on(ego.path, along)[:2] - centre))
    ahead, behind = ego.speed ** 2 / (2 * 2.5) + 12.0, speed ** 2 / (2 * 3.0) + 12.0
    return lateral < 2.5 and -behind < along - ego.s < ahead


# --------------------------------------------------------------------------- the family


@dataclass(frozen=True)
class UrbanDriveParams:
    """Knobs of one ordinary-driving scene; `RANGES` bounds what `sample` draws and what is accepted."""

    map_kind: str = "random"
    """A `MapKind` value; "random" lets the map generator choose."""
    num_vehicles: int = 8
    """Moving vehicles spawned (some ahead on the ego route, the rest on lanes within 70 m)."""
    num_parked: int = 2
    """Stationary vehicles beside the road."""
    num_pedestrians: int = 2
    """Pedestrians crossing on crosswalks (walking beside the road where a map has none)."""
    num_static: int = 2
    """Cones and barriers beside the road, off every lane."""
    human_style: float = 0.5
    """Ego driver: 0 cautious .. 1 aggressive (IDM gaps, headway, accelerations, desired speed)."""
    wander: float = 0.15
    """[m] amplitude of the human's lateral wander around the lane centre."""

    RANGES: ClassVar[dict[str, tuple[float, float]]] = {
        "num_vehicles": (0, 14), "num_parked": (0, 4), "num_pedestrians": (0, 5), "num_static": (0, 4),
        "human_style": (0.0, 1.0), "wander": (0.0, 0.3),
    }

    def __post_init__(self):
        kinds = [k.value for k in MapKind]
        if self.map_kind not in kinds:
            raise ValueError(f"map_kind={self.map_kind!r}: unknown (valid: {', '.join(kinds)})")
        for name, (low, high) in self.RANGES.items():
            value = getattr(self, name)
            if isinstance(low, int) and not isinstance(value, int):
                raise ValueError(f"{name}={value!r}: must be an int")
            if not (low <= value <= high):
                raise ValueError(f"{name}={value!r}: must lie in [{low}, {high}]")

    @classmethod
    def sample(cls, rng: np.random.Generator) -> "UrbanDriveParams":
        draw = {name: (int(rng.integers(low, high + 1)) if isinstance(low, int) else float(rng.uniform(low, high)))
                for name, (low, high) in cls.RANGES.items()}
        return cls(map_kind="random", **draw)


@register("urban_drive")
def build(params: UrbanDriveParams, rng: np.random.Generator) -> Scene:
    """An ordinary drive: random map, IDM human on a >= 3-roadblock route, traffic, pedestrians, lights."""
    for _ in range(20):
        gen = generate_map(params.map_kind, rng)
        ego = spawn_ego(gen, rng, params.human_style) if map_is_valid(gen.map) else None
        if ego is not None:
            break
    else:
        raise ValueError(f"map_kind={params.map_kind!r}: no spawn lane with a 3-roadblock route in 20 maps")
    route, ego_plan = ego
    road_map, rings = gen.map, _lane_rings(gen.map)
    ego_xy = pose_on(ego_plan.path, ego_plan.s)[:2]
    placed = [(ego_xy, PACIFICA.length / 2 + 1.0)]
    plans = [ego_plan]
    route_length = sum(lane_length(road_map.lanes_by_id[i]) for i in route)

    # vehicles: every third one ahead on the ego route, the others on lanes within 70 m of the ego
    nearby = [lane for lane in (*road_map.lanes, *road_map.lane_connectors)
              if np.hypot(*(lane.centerline - ego_xy).T).min() < 70.0]
    for i in range(params.num_vehicles):
        size = _vehicle_size(rng)
        factor = float(rng.uniform(0.75, 1.0))
        speed = 0.0 if rng.random() < 0.2 else float(rng.uniform(0.3, 0.9)) * factor * SPEED_CAP
        for _ in range(10):
            if i % 3 == 0:
                lanes = route
                gap = ego_plan.speed ** 2 / (2 * 2.5) + 12.0 + float(rng.uniform(0.0, 50.0))
                s = ego_plan.path_offset + ego_plan.s + (PACIFICA.length + size[0]) / 2 + gap
                if s > route_length - 10.0:
                    continue
            else:
                start = nearby[int(rng.integers(len(nearby)))]
                lanes = lane_walk(road_map, start.id, 150.0, rng)
                s = float(rng.uniform(0.0, lane_length(start)))
            plan = path_plan(gen, lanes, s, speed, size, factor)
            centre = pose_on(plan.path, s)[:2]
            if _clear(centre, size[0] / 2 + 1.0, placed) and (i % 3 == 0 or not _blocks_ego(ego_plan, centre, speed)):
                plans.append(plan)
                placed.append((centre, size[0] / 2 + 1.0))
                break

    for j in range(params.num_parked + params.num_static):
        if j < params.num_parked:
            kind, size, gap = AgentType.VEHICLE, _vehicle_size(rng), float(rng.uniform(0.2, 0.6))
        else:
            kind = AgentType.TRAFFIC_CONE if rng.random() < 0.6 else AgentType.BARRIER
            size = (0.5, 0.5) if kind == AgentType.TRAFFIC_CONE else (2.0, 0.6)
            gap = float(rng.uniform(0.2, 1.0))
        spot = _roadside(road_map, rings, rng, ego_xy, size, gap)
        if spot is not None and _clear(spot[0], size[0] / 2 + 0.5, placed):
            plans.append(_stationary(spot[0], spot[1], size, kind))
            placed.append((spot[0], size[0] / 2 + 0.5))

    for _ in range(params.num_pedestrians):
        size = (float(rng.uniform(0.5, 0.9)), float(rng.uniform(0.5, 0.9)))
        if road_map.crosswalks:   # across the long axis of a crosswalk, from kerb to kerb (+1.5 m)
            ring = np.asarray(road_map.crosswalks[int(rng.integers(len(road_map.crosswalks)))].polygon)
            edges = np.roll(ring, -1, 0) - ring
            longest = edges[int(np.argmax(np.hypot(*edges.T)))]
            half = longest / 2 + 1.5 * longest / np.hypot(*longest)
            ends = np.stack([ring.mean(0) - half, ring.mean(0) + half])
        else:                     # along the road, beside it
            spot = _roadside(road_map, rings, rng, ego_xy, (1.0, 1.0), 1.5)
            if spot is None:
                continue
            direction = np.array([math.cos(spot[1]), math.sin(spot[1])])
            ends = np.stack([spot[0] - 10.0 * direction, spot[0] + 30.0 * direction])
        path = ends[::-1] if rng.random() < 0.5 else ends
        s = float(rng.uniform(0.0, 0.7)) * float(np.hypot(*(path[1] - path[0])))
        position = pose_on(path, s)[:2]
        if _clear(position, 1.0, placed):
            plans.append(AgentPlan(path=path, s=s, speed=float(rng.uniform(0.8, 1.6)), size=size,
                                   type=AgentType.PEDESTRIAN, is_reactive=False))
            placed.append((position, 1.0))

    lights = LightCycle.sample(gen.signal_groups.values(), rng)
    wander = (params.wander, float(rng.uniform(30.0, 80.0)), float(rng.uniform(0.0, 2 * math.pi)))
    drive = Drive(gen=gen, route_lane_ids=route, agents=tuple(plans), ego_params=human_idm(params.human_style),
                  lights=lights, wander=wander)
    token = rng.bytes(8).hex()
    return drive_scene(drive, simulate_drive(drive), token, "urban_drive")
