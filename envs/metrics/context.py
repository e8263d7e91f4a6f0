"""Batched scoring inputs (NAVSIM's metric cache): what the world does and what the map says.

`Observation` holds the other objects over the scored steps (ground truth, reactive simulation, or
a constant-velocity forecast for PDM-Closed). `MapContext` holds the per-scene map tensors. Both are
built for new scenes, split per scene, kept in a `SceneCache` and batched again by `cat`.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Any, Hashable, Sequence

import numpy as np
import torch
from torch import Tensor

from envs.metrics.centerline_grid import CenterlineGrid
from envs.sim.geometry import box_corners, boxes_intersect, polygon_intersects_boxes
from envs.sim.polygon_index import IndexStore, PolygonIndex
from envs.sim.ragged import cat_padded
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
    circle_center: Tensor | None = field(default=None, metadata={"dims": "B T A 2"})
    """Centre of each box's bounding circle [m] (`bounding_circles`; made from `corners` when not given):
    kept with the scene so that NC and TTC do not recompute it for every batch of plans."""
    circle_radius: Tensor | None = field(default=None, metadata={"dims": "B T A"})
    """Radius of each box's bounding circle [m]."""

    def __post_init__(self):
        if self.circle_center is None or self.circle_radius is None:
            center, radius = bounding_circles(self.corners)
            object.__setattr__(self, "circle_center", center)
            object.__setattr__(self, "circle_radius", radius)

    @property
    def num_steps(self) -> int:
        return self.valid.shape[1]

    def split(self, num_objects: Sequence[int]) -> list[Observation]:
        """One observation per scene of `num_objects[b]` objects, as `build_observation` makes it for that
        scene alone (objects and red lights trimmed to its own; contiguous copies)."""
        has_vertices = self.red_light_vertex_valid.any(-1)                  # (B, R), a prefix per scene
        num_lights = has_vertices.sum(-1).tolist()
        num_vertices = self.red_light_vertex_valid.sum(-1).amax(-1).tolist()
        parts = []
        for b, count in enumerate(num_objects):
            one, objects = slice(b, b + 1), slice(0, max(count, 1))
            lights, vertices = slice(0, max(num_lights[b], 1)), slice(0, max(num_vertices[b], 3))
            parts.append(Observation(**{name: value.contiguous() for name, value in (
                ("corners", self.corners[one, :, objects]), ("center", self.center[one, :, objects]),
                ("valid", self.valid[one, :, objects]), ("first_heading", self.first_heading[one, objects]),
                ("first_speed", self.first_speed[one, objects]), ("is_agent", self.is_agent[one, objects]),
                ("red_light_polygons", self.red_light_polygons[one, lights, vertices]),
                ("red_light_vertex_valid", self.red_light_vertex_valid[one, lights, vertices]),
                ("red_light_active", self.red_light_active[one, :, lights]),
                ("circle_center", self.circle_center[one, :, objects]),
                ("circle_radius", self.circle_radius[one, :, objects]))}))
        return parts

    @classmethod
    def cat(cls, parts: Sequence[Observation]) -> Observation:
        """Observations of the scenes of every part in turn, objects and red lights padded to the widest
        part exactly as `build_observation` pads them (so per-scene builds batch freely)."""
        parts = list(parts)
        if len(parts) == 1:
            return parts[0]
        padding, padding_center, padding_radius = _padding_box(parts[0].corners.dtype, parts[0].corners.device)
        return cls(
            # a padding object is a 1 m x 1 m box at the origin, as `build_observation` pads
            corners=cat_padded([p.corners for p in parts], 2, fill=padding),
            center=cat_padded([p.center for p in parts], 2),
            valid=cat_padded([p.valid for p in parts], 2),
            first_heading=cat_padded([p.first_heading for p in parts]),
            first_speed=cat_padded([p.first_speed for p in parts]),
            is_agent=cat_padded([p.is_agent for p in parts]),
            red_light_polygons=cat_padded([p.red_light_polygons for p in parts], 2),
            red_light_vertex_valid=cat_padded([p.red_light_vertex_valid for p in parts], 2),
            red_light_active=cat_padded([p.red_light_active for p in parts], 2),
            circle_center=cat_padded([p.circle_center for p in parts], 2, fill=padding_center),
            circle_radius=cat_padded([p.circle_radius for p in parts], 2, fill=padding_radius),
        )


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
    centerline_grid: CenterlineGrid | None = None
    """The centerline's segments by cell, for lane keeping (made there when None)."""

    @classmethod
    def cat(cls, parts: Sequence[MapContext]) -> MapContext:
        """Map tensors of the scenes of every part in turn, padded like `build_map_context`."""
        parts = list(parts)
        if len(parts) == 1:
            return parts[0]
        return cls(
            drivable=PolygonIndex.cat([p.drivable for p in parts]),
            lanes=PolygonIndex.cat([p.lanes for p in parts]),
            lane_on_route=cat_padded([p.lane_on_route for p in parts]),   # as wide as `lanes`' slots
            intersections=PolygonIndex.cat([p.intersections for p in parts]),
            centerline=cat_padded([p.centerline for p in parts]),
            centerline_valid=cat_padded([p.centerline_valid for p in parts]),
            centerline_grid=None if any(p.centerline_grid is None for p in parts)
            else CenterlineGrid.cat([p.centerline_grid for p in parts]),
        )


    def split(self) -> list[MapContext]:
        """One context per scene, as `build_map_context` makes it for that scene alone (indexes share rows,
        the rest is copied)."""
        drivable, lanes, intersections = self.drivable.split(), self.lanes.split(), self.intersections.split()
        num_lanes, num_points = self.lanes.polygon_valid.sum(1).tolist(), self.centerline_valid.sum(1).tolist()
        grids = self.centerline_grid.split() if self.centerline_grid is not None else [None] * len(num_lanes)
        return [MapContext(drivable=drivable[b], lanes=lanes[b],
                           lane_on_route=self.lane_on_route[b : b + 1, : num_lanes[b]].contiguous(),
                           intersections=intersections[b],
                           centerline=self.centerline[b : b + 1, : num_points[b]].contiguous(),
                           centerline_valid=self.centerline_valid[b : b + 1, : num_points[b]].contiguous(),
                           centerline_grid=grids[b])
                for b in range(len(num_lanes))]

    def stored(self, cache: SceneCache) -> MapContext:
        """The same map tensors with the polygon indexes copied into `cache`'s current index stores (kept as
        they are where already there), so that contexts stored alike batch without copying index rows."""
        indexes = {}
        for name in ("drivable", "lanes", "intersections"):
            index = getattr(self, name)
            store = cache.index_store(name, index)
            if index.store is not store:
                indexes[name] = store.add(index)
        return replace(self, **indexes) if indexes else self


def bounding_circles(corners: Tensor) -> tuple[Tensor, Tensor]:
    """Circles around boxes (..., 4, 2) [m]: centre = mean of the corners (..., 2), radius = farthest corner (...)."""
    center = (corners[..., 0, :] + corners[..., 1, :] + corners[..., 2, :] + corners[..., 3, :]) / 4
    to_corner = corners - center[..., None, :]
    radius = torch.sqrt(to_corner[..., 0] * to_corner[..., 0] + to_corner[..., 1] * to_corner[..., 1]).amax(dim=-1)
    return center, radius


@functools.lru_cache(maxsize=8)
def _padding_box(dtype: torch.dtype, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    """The padding box's corners (4, 2) and bounding circle, centre (2,) and radius (), made once (read only)."""
    corners = _padding_corners(torch.empty(0, dtype=dtype, device=device))
    return (corners, *bounding_circles(corners))


def _padding_corners(like: Tensor) -> Tensor:
    """(4, 2) corners of the 1 m x 1 m padding box at the origin, heading 0."""
    zero = torch.zeros((), dtype=like.dtype, device=like.device)
    return box_corners(torch.zeros(2, dtype=like.dtype, device=like.device), zero, zero + 1.0, zero + 1.0)


class SceneCache:
    """Per-scene results (prepared scoring inputs, observations) kept by scene token and a `kind` (what
    was made, under which settings); past `max_scenes` entries the least recently used goes.

    An entry serves only the very scene object it was made from, so another scene under the same token
    (a re-simulated follow-up, a reloaded file) is made afresh rather than served stale results.
    """

    def __init__(self, max_scenes: int | None = 4096):
        if max_scenes is not None and max_scenes < 1:
            raise ValueError(f"max_scenes={max_scenes!r}: must be >= 1 or None (no limit)")
        self.max_scenes = max_scenes
        self._entries: OrderedDict[tuple[str, Hashable], tuple[Scene, Any]] = OrderedDict()
        self.references: dict[str, Tensor] = {}
        """PDM-Closed reference poses (41, 3) by scene token (`prepare_scenes(reference_cache=...)`)."""
        self._stores: dict[tuple, IndexStore] = {}
        self.hits = 0
        """Lookups served from the cache."""
        self.misses = 0
        """Lookups that found nothing (each is then made and stored by the caller)."""

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, scene: Scene, kind: Hashable) -> Any | None:
        """The value stored for this scene object and kind, or None."""
        key = (scene.token, kind)
        entry = self._entries.get(key)
        if entry is None or entry[0] is not scene:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return entry[1]

    def index_store(self, name: str, like: PolygonIndex) -> IndexStore:
        """The current store for `name` polygon indexes of `like`'s dtype, device and strip height. Once it has
        taken twice `max_scenes` scenes, at least half of it belongs to dropped entries: a new one starts
        (indexes in the old one stay valid and are moved over as they are used again)."""
        key = (name, like.row_bounds.dtype, like.row_bounds.device, like.strip_height)
        store = self._stores.get(key)
        if store is None or (self.max_scenes is not None and store.num_scenes >= 2 * self.max_scenes):
            store = self._stores[key] = IndexStore(like.row_bounds.dtype, like.row_bounds.device, like.strip_height)
        return store

    def put(self, scene: Scene, kind: Hashable, value: Any) -> None:
        """Store `value` for this scene object and kind (dropping the least recently used past the limit)."""
        key = (scene.token, kind)
        self._entries[key] = (scene, value)
        self._entries.move_to_end(key)
        while self.max_scenes is not None and len(self._entries) > self.max_scenes:
            self._entries.popitem(last=False)


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
    centerline, centerline_valid = centerline.to(device), centerline_valid.to(device)
    return MapContext(
        drivable=PolygonIndex.build(drivable, device=device, align=align),
        lanes=lane_index,
        lane_on_route=lane_on_route.to(device),
        intersections=PolygonIndex.build(intersections, device=device, align=align),
        centerline=centerline,
        centerline_valid=centerline_valid,
        centerline_grid=CenterlineGrid.build(centerline, centerline_valid),
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
