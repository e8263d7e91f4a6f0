"""Batched scoring inputs (NAVSIM's metric cache): what the world does and what the map says.

`Observation` holds the other objects over the scored steps (ground truth, reactive simulation, or
a constant-velocity forecast for PDM-Closed). `MapContext` holds the per-scene map tensors. Both
are built once per batch of scenes and shared by every proposal scored against them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from envs.sim.geometry import box_corners, boxes_intersect, polygon_intersects_boxes
from envs.sim.polygon_index import PolygonIndex
from envs.sim.route import correct_route, route_centerline, route_lane_ids, starting_lane
from envs.sim.scene import NUM_STEPS, AgentTracks, AgentType, LightStatus, Scene


@dataclass(frozen=True)
class Observation:
    """Other objects and red lights at each observation step (step k = t k*0.1 s)."""

    corners: Tensor = field(metadata={"dims": "B T A 4 2"})
    """Box corners FL, RL, RR, FR [m]; arbitrary where not valid."""
    center: Tensor = field(metadata={"dims": "B T A 2"})
    """Box centre = polygon centroid [m]."""
    valid: Tensor = field(metadata={"dims": "B T A"})
    """bool: object present at that step."""
    first_heading: Tensor = field(metadata={"dims": "B A"})
    """Heading of the object's first observation [rad] (nuPlan `unique_objects`)."""
    first_speed: Tensor = field(metadata={"dims": "B A"})
    """Speed of the object's first observation [m/s] (decides STOPPED_TRACK)."""
    is_agent: Tensor = field(metadata={"dims": "B A"})
    """bool: vehicle/pedestrian/bicycle; False for static objects (NC 0.5 on hit, always stopped)."""
    red_light_polygons: Tensor = field(metadata={"dims": "B R V 2"})
    """Polygons of on-route lane connectors that have a red light at some step [m]."""
    red_light_vertex_valid: Tensor = field(metadata={"dims": "B R V"})
    red_light_active: Tensor = field(metadata={"dims": "B T R"})
    """bool: that connector's light is red at that step."""

    @property
    def num_steps(self) -> int:
        return self.valid.shape[1]


@dataclass(frozen=True)
class MapContext:
    """Per-scene map tensors used by the area-based metrics and by progress / lane keeping."""

    drivable: PolygonIndex
    """Roadblocks, intersections and car parks (NOT connectors: NAVSIM DAC semantics)."""
    lanes: PolygonIndex
    """Lanes and lane connectors."""
    lane_on_route: Tensor = field(metadata={"dims": "B M"})
    """bool per `lanes` slot: an interior lane of a (corrected) route roadblock or connector."""
    intersections: PolygonIndex
    centerline: Tensor = field(metadata={"dims": "B P 2"})
    """PDM centerline from the starting lane along the route (successor edges only) [m]."""
    centerline_valid: Tensor = field(metadata={"dims": "B P"})
    """bool; valid vertices are a prefix."""


# --------------------------------------------------------------------------------------------
# Builders: list[Scene] -> batched tensors (NAVSIM metric caching, spec navsim.md §3.4-§3.6)
# --------------------------------------------------------------------------------------------

MAP_RADIUS_M = 100.0
"""Half side of the square map patch around the ego centre (NAVSIM `map_radius`)."""


def _patch_filter(objects, center_xy: np.ndarray, radius: float) -> list:
    """Map objects whose polygon intersects the square patch centre ± radius (nuPlan proximal query)."""
    if not objects:
        return []
    rings = [np.asarray(o.polygon, np.float64) for o in objects]
    lo, hi = center_xy - radius, center_xy + radius
    keep = []
    for obj, ring in zip(objects, rings):
        mins, maxs = ring.min(axis=0), ring.max(axis=0)
        if np.any(maxs < lo) or np.any(mins > hi):
            continue
        keep.append(obj)
    if not keep:
        return keep
    # Exact test for the bbox candidates: polygon vs the patch square.
    patch = torch.tensor(
        [[[[hi[0], hi[1]], [lo[0], hi[1]], [lo[0], lo[1]], [hi[0], lo[1]]]]], dtype=torch.float64
    )
    poly, vertex_valid = pad_rings([np.asarray(o.polygon, np.float64) for o in keep])
    hit = polygon_intersects_boxes(patch, poly[None], vertex_valid[None])[0, 0]
    return [obj for obj, h in zip(keep, hit.tolist()) if h]


def pad_rings(rings: list[np.ndarray], num_vertices: int | None = None) -> tuple[Tensor, Tensor]:
    """Stack rings (V_i, 2) into (R, V, 2) float64 plus (R, V) vertex-valid mask (prefix)."""
    width = max([len(r) for r in rings] + [num_vertices or 0, 3])
    poly = torch.zeros(len(rings), width, 2, dtype=torch.float64)
    valid = torch.zeros(len(rings), width, dtype=torch.bool)
    for i, ring in enumerate(rings):
        poly[i, : len(ring)] = torch.as_tensor(ring, dtype=torch.float64)
        valid[i, : len(ring)] = True
    return poly, valid


@dataclass(frozen=True)
class SceneRoute:
    """Route facts of one scene, computed once (NAVSIM PDM-Closed set-up)."""

    corrected_ids: tuple[str, ...]
    """Route roadblocks after NAVSIM's correction (EP, LK, DDC, PDM-Closed)."""
    lane_ids: frozenset[str]
    """Interior lanes/connectors of the corrected route."""
    red_light_lane_ids: frozenset[str]
    """Interior lanes/connectors of the route BEFORE correction (TLC, spec §2.3)."""
    start_lane: str | None
    centerline: np.ndarray
    """(P, 2) PDM centerline [m]."""


def scene_route(scene: Scene) -> SceneRoute:
    """Route correction, starting lane and centerline of one scene."""
    pose = scene.ego_pose
    corrected = correct_route(scene.map, scene.route_roadblock_ids, pose, scene.vehicle)
    start = starting_lane(scene.map, corrected, pose, scene.vehicle)
    if start is None:
        centerline = np.repeat(pose[None, :2], 2, axis=0)
    else:
        centerline = route_centerline(scene.map, corrected, start)
    uncorrected = tuple(dict.fromkeys(scene.route_roadblock_ids))
    return SceneRoute(
        corrected_ids=corrected,
        lane_ids=frozenset(route_lane_ids(scene.map, corrected)),
        red_light_lane_ids=frozenset(route_lane_ids(scene.map, uncorrected)),
        start_lane=start,
        centerline=np.asarray(centerline, np.float64),
    )


def ego_center_xy(scene: Scene) -> np.ndarray:
    x, y, heading = scene.ego_pose
    d = scene.vehicle.rear_axle_to_center
    return np.array([x + d * np.cos(heading), y + d * np.sin(heading)])


def build_map_context(scenes: list[Scene], routes: list[SceneRoute], device=None) -> MapContext:
    """Drivable, lane and intersection polygon indexes plus the centerline, per scene."""
    drivable, lanes, on_route, intersections = [], [], [], []
    for scene, route in zip(scenes, routes):
        center = ego_center_xy(scene)
        m = scene.map
        drivable.append([a.polygon for a in _patch_filter([*m.roadblocks, *m.intersections, *m.carparks], center, MAP_RADIUS_M)])
        near_lanes = _patch_filter([*m.lanes, *m.lane_connectors], center, MAP_RADIUS_M)
        lanes.append([lane.polygon for lane in near_lanes])
        on_route.append([lane.id in route.lane_ids for lane in near_lanes])
        intersections.append([a.polygon for a in _patch_filter(list(m.intersections), center, MAP_RADIUS_M)])
    # Index each scene with the ego heading along the strips' y axis: the long edges of the road the ego
    # drives on then cross many thin strips instead of filling a few (answers do not depend on it).
    align = [float(scene.ego_pose[2]) - np.pi / 2 for scene in scenes]
    lane_index = PolygonIndex.build(lanes, device=device, align=align)
    lane_on_route = torch.zeros(len(scenes), lane_index.polygon_valid.shape[1], dtype=torch.bool)
    for b, flags in enumerate(on_route):
        lane_on_route[b, : len(flags)] = torch.tensor(flags, dtype=torch.bool)
    width = max(len(r.centerline) for r in routes)
    centerline = torch.zeros(len(scenes), width, 2, dtype=torch.float64)
    centerline_valid = torch.zeros(len(scenes), width, dtype=torch.bool)
    for b, route in enumerate(routes):
        centerline[b, : len(route.centerline)] = torch.as_tensor(route.centerline)
        centerline_valid[b, : len(route.centerline)] = True
    return MapContext(
        drivable=PolygonIndex.build(drivable, device=device, align=align),
        lanes=lane_index,
        lane_on_route=lane_on_route.to(device),
        intersections=PolygonIndex.build(intersections, device=device, align=align),
        centerline=centerline.to(device),
        centerline_valid=centerline_valid.to(device),
    )


def build_observation(
    scenes: list[Scene],
    routes: list[SceneRoute],
    remove_initial_overlaps: bool,
    device=None,
    tracks: list[AgentTracks] | None = None,
) -> Observation:
    """Other objects (ground truth, or the given `tracks`) and red lights over the 41 steps.

    `remove_initial_overlaps` is NAVSIM v2's log-replay rule: objects whose box intersects the ego
    box at t = 0 are removed from every frame (spec §2.5). v1 keeps them.
    """
    tracks = tracks or [s.agents for s in scenes]
    num_steps = NUM_STEPS
    width = max([t.num_agents for t in tracks] + [1])
    B = len(scenes)
    pose = torch.zeros(B, num_steps, width, 3, dtype=torch.float64)
    size = torch.ones(B, width, 2, dtype=torch.float64)
    valid = torch.zeros(B, num_steps, width, dtype=torch.bool)
    first_heading = torch.zeros(B, width, dtype=torch.float64)
    first_speed = torch.zeros(B, width, dtype=torch.float64)
    is_agent = torch.zeros(B, width, dtype=torch.bool)
    for b, agents in enumerate(tracks):
        A = agents.num_agents
        if A == 0:
            continue
        pose[b, :, :A] = torch.as_tensor(agents.pose).transpose(0, 1)
        size[b, :A] = torch.as_tensor(agents.size)
        valid[b, :, :A] = torch.as_tensor(agents.valid).T
        first = agents.first_step
        rows = np.arange(A)
        first_heading[b, :A] = torch.as_tensor(agents.pose[rows, first, 2])
        first_speed[b, :A] = torch.as_tensor(np.hypot(*agents.velocity[rows, first].T))
        is_agent[b, :A] = torch.as_tensor(agents.types <= int(AgentType.BICYCLE))
    # Static objects carry no velocity in NAVSIM's cache: they are always "stopped".
    first_speed = torch.where(is_agent, first_speed, torch.zeros_like(first_speed))
    corners = box_corners(pose[..., :2], pose[..., 2], size[:, None, :, 0], size[:, None, :, 1])
    center = pose[..., :2]
    if remove_initial_overlaps:
        ego = torch.tensor(np.stack([s.ego_pose for s in scenes]), dtype=torch.float64)
        ego_corners = torch.stack(
            [
                box_corners(
                    torch.as_tensor(ego_center_xy(s)), ego[b, 2],
                    torch.tensor(s.vehicle.length, dtype=torch.float64), torch.tensor(s.vehicle.width, dtype=torch.float64),
                )
                for b, s in enumerate(scenes)
            ]
        )  # (B, 4, 2)
        overlap = boxes_intersect(ego_corners[:, None], corners[:, 0]) & valid[:, 0]  # (B, A)
        valid = valid & ~overlap[:, None, :]
    red_poly, red_vertex_valid, red_active = _red_lights(scenes, routes, num_steps)
    return Observation(
        corners=corners.to(device),
        center=center.to(device),
        valid=valid.to(device),
        first_heading=first_heading.to(device),
        first_speed=first_speed.to(device),
        is_agent=is_agent.to(device),
        red_light_polygons=red_poly.to(device),
        red_light_vertex_valid=red_vertex_valid.to(device),
        red_light_active=red_active.to(device),
    )


def _red_lights(scenes: list[Scene], routes: list[SceneRoute], num_steps: int):
    """Polygons of on-route (uncorrected route) lane connectors with a red light, and when red."""
    per_scene = []
    for scene, route in zip(scenes, routes):
        lights = scene.traffic_lights
        entries = []
        for i, lane_id in enumerate(lights.lane_connector_ids):
            red = lights.status[i] == int(LightStatus.RED)
            lane = scene.map.lanes_by_id.get(lane_id)
            if lane is None or lane_id not in route.red_light_lane_ids or not red.any():
                continue
            entries.append((lane.polygon, red[:num_steps]))
        per_scene.append(entries)
    width_r = max([len(e) for e in per_scene] + [1])
    width_v = max([len(p) for e in per_scene for p, _ in e] + [3])
    poly = torch.zeros(len(scenes), width_r, width_v, 2, dtype=torch.float64)
    vertex_valid = torch.zeros(len(scenes), width_r, width_v, dtype=torch.bool)
    active = torch.zeros(len(scenes), num_steps, width_r, dtype=torch.bool)
    for b, entries in enumerate(per_scene):
        for r, (ring, red) in enumerate(entries):
            poly[b, r, : len(ring)] = torch.as_tensor(ring, dtype=torch.float64)
            vertex_valid[b, r, : len(ring)] = True
            active[b, : len(red), r] = torch.as_tensor(red)
    return poly, vertex_valid, active
