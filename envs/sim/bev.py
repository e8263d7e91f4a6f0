"""Ego-centred bird's-eye-view rasters of `WorldFrame`s: uint8 semantic masks for policies (`bev_raster`)
and a colour picture with plans, the tracked trajectory and sub-scores for `env.render()` (`bev_rgb`).

Image frame: the ego heading points up (row 0 is ahead), the ego's left is the image's left. The point
`forward_offset` metres ahead of the rear axle sits at the image centre (between the 4 middle pixels).
Shapes are filled the cv2 way: every pixel the outline touches is set (up to half a pixel of growth per
side, so masks err on the safe side).
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass
from typing import Mapping, Sequence

import cv2
import numpy as np

from envs.sim.frame import WorldFrame
from envs.sim.scene import AgentType, LightStatus
from envs.sim.scenery import PolygonSet, Scenery, Surface, scenery_for

BEV_CHANNELS = ("drivable", "lane_boundaries", "route", "vehicles", "pedestrians_bicycles", "static_objects",
                "red_lights", "green_lights")
"""Every channel, in default order:
- drivable: roadblocks, intersections and car parks (what NAVSIM's drivable-area check accepts; lane
  connectors and roadblock connectors are not drivable by themselves, spec navsim.md §8);
- lane_boundaries: painted lane lines of lanes (not connectors), 1 px wide, dashed ones drawn solid;
- route: lanes and lane connectors of the frame's route roadblocks;
- vehicles; pedestrians_bicycles; static_objects (cones, barriers, signs, generic objects): boxes;
- red_lights: lane connectors whose light is RED or YELLOW (a yellow light asks to stop where one can;
  NAVSIM's traffic-light metric itself only looks at RED); green_lights: GREEN connectors.
UNKNOWN lights are drawn in neither."""
_SHIFT = 2
_SCALE = float(1 << _SHIFT)
"""cv2 fixed-point bits: vertices are placed to 1/4 px."""
_GATHER_ABOVE = 4000
"""Polygon sets with more vertices than this, of which at most half lie near the view, project only those."""


@dataclass(frozen=True)
class BEVConfig:
    """Size, scale and channels of a BEV raster."""

    size: int = 128
    """Image height = width [px]."""
    meters_per_pixel: float = 0.5
    """Ground resolution [m/px]; 128 px at 0.5 m/px cover 64 m x 64 m."""
    forward_offset: float = 0.0
    """[m] the image centre lies this far ahead of the ego rear axle (0: ego-centred; size/4 * m/px puts
    the ego half-way down the lower half and shows more road ahead)."""
    channels: tuple[str, ...] = BEV_CHANNELS
    """Channels to draw and their order; a subset of BEV_CHANNELS."""

    def __post_init__(self):
        if not isinstance(self.size, int) or isinstance(self.size, bool) or self.size < 2:
            raise ValueError(f"size={self.size!r}: must be an int >= 2")
        if not (math.isfinite(self.meters_per_pixel) and self.meters_per_pixel > 0):
            raise ValueError(f"meters_per_pixel={self.meters_per_pixel!r}: must be positive and finite")
        if not math.isfinite(self.forward_offset):
            raise ValueError(f"forward_offset={self.forward_offset!r}: must be finite")
        channels = tuple(self.channels)
        unknown = [c for c in channels if c not in BEV_CHANNELS]
        if unknown or not channels or len(set(channels)) != len(channels):
            raise ValueError(f"channels={channels!r}: need distinct names from {', '.join(BEV_CHANNELS)}")
        object.__setattr__(self, "channels", channels)

    @property
    def extent(self) -> float:
        """Side of the covered square [m]."""
        return self.size * self.meters_per_pixel


# --------------------------------------------------------------------------------------------- raster


def bev_raster(frames: Sequence[WorldFrame], config: BEVConfig = BEVConfig()) -> np.ndarray:
    """Semantic masks of every frame -> (B, len(config.channels), size, size) uint8, 0 or 255."""
    if not isinstance(config, BEVConfig):
        raise ValueError(f"config={type(config).__name__!r}: must be a BEVConfig")
    frames = list(frames)
    for b, frame in enumerate(frames):
        if not isinstance(frame, WorldFrame):
            raise ValueError(f"frames[{b}]={type(frame).__name__!r}: must be a WorldFrame")
    out = np.zeros((len(frames), len(config.channels), config.size, config.size), dtype=np.uint8)
    for b, frame in enumerate(frames):
        _draw_frame(frame, config, {name: out[b, c] for c, name in enumerate(config.channels)})
    return out


def pixel_transform(ego_pose: np.ndarray, config: BEVConfig) -> np.ndarray:
    """(2, 3) affine map from global x, y [m] to BEV (column, row) [px] for an ego rear-axle pose (3,).

    Pixel (0, 0) is the centre of the top-left pixel (cv2 convention).
    """
    x, y, heading = (float(v) for v in ego_pose)
    cos, sin = math.cos(heading), math.sin(heading)
    scale = 1.0 / config.meters_per_pixel
    centre = config.size / 2 - 0.5
    # column = centre - ego y / m, row = centre + offset / m - ego x / m
    return np.array([[scale * sin, -scale * cos, centre - scale * (sin * x - cos * y)],
                     [-scale * cos, -scale * sin, centre + scale * (config.forward_offset + cos * x + sin * y)]])


def _fixed(points: np.ndarray, transform: np.ndarray) -> np.ndarray:
    """Global points (..., 2) [m] -> cv2 fixed-point pixels (..., 2) int32 (clamped far off-image)."""
    pixels = points @ (transform[:, :2].T * _SCALE) + transform[:, 2] * _SCALE
    np.minimum(pixels, 1.0e9, out=pixels)
    np.maximum(pixels, -1.0e9, out=pixels)
    return np.rint(pixels, out=pixels).astype(np.int32)


class _Projector:
    """Fixed-point BEV pixels of a frame's polygon sets, each projected once; polygons whose bounds miss
    the view are dropped before projecting."""

    def __init__(self, transform: np.ndarray, config: BEVConfig):
        self.transform = transform
        # the view in global coordinates: a square around the image centre, rotated; bound it by a circle
        inverse = np.linalg.inv(np.vstack([transform, [0.0, 0.0, 1.0]]))
        centre = config.size / 2 - 0.5
        self.centre = inverse[:2, :2] @ [centre, centre] + inverse[:2, 2]
        self.radius = config.extent / math.sqrt(2) + config.meters_per_pixel
        self._done: dict[int, tuple] = {}

    def rings(self, polygons: PolygonSet, rows: np.ndarray) -> list[np.ndarray]:
        """Pixel rings (int32 (V, 2)) of the chosen rows of `polygons` that may reach into the view."""
        if not len(rows):
            return []
        key = id(polygons)
        if key not in self._done:
            self._done[key] = self._project(polygons)
        pixels, seen, low, high = self._done[key]
        return [pixels[low[r]:high[r]] for r in rows[seen[rows]].tolist()]

    def _project(self, polygons: PolygonSet) -> tuple[np.ndarray, np.ndarray, list[int], list[int]]:
        """Project every polygon of the set whose bounds meet the view, once per frame: pixels, in-view
        flags (R,) and each polygon's slice bounds into pixels."""
        box, (x, y), radius = polygons.boxes, self.centre, self.radius
        seen = (box[:, 0] < x + radius) & (box[:, 2] > x - radius) & (box[:, 1] < y + radius) & (box[:, 3] > y - radius)
        if len(polygons.points) < _GATHER_ABOVE or seen.mean() > 0.5:     # gathering would cost more than it saves
            pixels = _fixed(polygons.points, self.transform)
            return pixels, seen, polygons.starts[:-1].tolist(), polygons.starts[1:].tolist()
        rows = np.flatnonzero(seen)
        first, lengths = polygons.starts[rows], polygons.starts[rows + 1] - polygons.starts[rows]
        ends = np.cumsum(lengths)
        # vertices of the seen polygons, polygon after polygon
        index = np.arange(ends[-1] if len(ends) else 0) + np.repeat(first - (ends - lengths), lengths)
        low, high = np.zeros(len(seen), np.int64), np.zeros(len(seen), np.int64)
        low[rows], high[rows] = ends - lengths, ends
        return _fixed(polygons.points[index], self.transform), seen, low.tolist(), high.tolist()


_DRIVABLE = (Surface.ROADBLOCK, Surface.INTERSECTION, Surface.CARPARK)
_AGENT_GROUP = np.array([0 if t == AgentType.VEHICLE else 1 if t in (AgentType.PEDESTRIAN, AgentType.BICYCLE) else 2
                         for t in AgentType])
"""AgentType -> index into _AGENT_CHANNELS."""
_AGENT_CHANNELS = ("vehicles", "pedestrians_bicycles", "static_objects")
_LIGHT_CHANNELS = (("red_lights", frozenset({int(LightStatus.RED), int(LightStatus.YELLOW)})),
                   ("green_lights", frozenset({int(LightStatus.GREEN)})))


_ROUTE_ROWS: "weakref.WeakKeyDictionary[Scenery, dict[tuple[str, ...], np.ndarray]]" = weakref.WeakKeyDictionary()
"""Per scenery, the `_route_rows` of each route seen (a route is drawn on every tick of its episode)."""
_ROUTE_MEMO_SIZE = 1024


def _route_rows(scenery: Scenery, route: tuple[str, ...]) -> np.ndarray:
    """Rows of `scenery.lanes` in the route roadblocks (memoised per scenery and route)."""
    memo = _ROUTE_ROWS.setdefault(scenery, {})
    rows = memo.get(route)
    if rows is None:
        if len(memo) >= _ROUTE_MEMO_SIZE:        # a shared map drawn along many routes (NAVSIM scenes): start over
            memo.clear()
        wanted = set(route)
        rows = memo[route] = np.array([i for i, block in enumerate(scenery.lane_roadblock_ids) if block in wanted],
                                      dtype=np.int64)
    return rows


def _draw_frame(frame: WorldFrame, config: BEVConfig, masks: Mapping[str, np.ndarray]) -> None:
    """Draw the requested channels of one frame into 2D uint8 masks (channel name -> (size, size))."""
    scenery = scenery_for(frame.road_map)
    transform = pixel_transform(frame.ego_pose, config)
    projector = _Projector(transform, config)
    if "drivable" in masks:
        surfaces = scenery.surfaces
        for layer in _DRIVABLE:
            rings = projector.rings(surfaces, surfaces.label_rows(int(layer)))
            if rings:
                cv2.fillPoly(masks["drivable"], rings, 255, cv2.LINE_8, _SHIFT)
    if "lane_boundaries" in masks:
        lines = projector.rings(scenery.boundaries, np.arange(len(scenery.boundaries)))
        if lines:
            cv2.polylines(masks["lane_boundaries"], lines, False, 255, 1, cv2.LINE_8, _SHIFT)
    if "route" in masks and frame.route_roadblock_ids:
        for ring in projector.rings(scenery.lanes, _route_rows(scenery, frame.route_roadblock_ids)):
            cv2.fillPoly(masks["route"], [ring], 255, cv2.LINE_8, _SHIFT)     # connectors may overlap: no XOR
    if any(name in masks for name in _AGENT_CHANNELS):
        _draw_agents(frame, transform, config.size, masks)
    for name, statuses in _LIGHT_CHANNELS:
        if name in masks:
            for ring in _light_rings(frame, scenery, statuses, projector):
                cv2.fillPoly(masks[name], [ring], 255, cv2.LINE_8, _SHIFT)


def _light_rings(frame: WorldFrame, scenery: Scenery, statuses, projector: _Projector) -> list[np.ndarray]:
    """Pixel polygons of the frame's lane connectors whose light has one of `statuses`."""
    status = frame.light_status.tolist()
    wanted = statuses if isinstance(statuses, frozenset) else {int(s) for s in statuses}
    rows = [scenery.lane_row.get(i, -1) for i, s in zip(frame.light_connector_ids, status) if s in wanted]
    return projector.rings(scenery.lanes, np.array([r for r in rows if r >= 0], dtype=np.int64))


def _draw_agents(frame: WorldFrame, transform: np.ndarray, size: int, masks: Mapping[str, np.ndarray]) -> None:
    """Fill agent boxes into the vehicles / pedestrians_bicycles / static_objects masks."""
    agents = frame.agents
    if not agents.num_agents:
        return
    pose, extent = agents.pose, agents.size
    cos, sin = np.cos(pose[:, 2:3]), np.sin(pose[:, 2:3])
    lon = extent[:, 0:1] * np.array([0.5, -0.5, -0.5, 0.5])              # FL, RL, RR, FR
    lat = extent[:, 1:2] * np.array([0.5, 0.5, -0.5, -0.5])
    corners = np.empty((len(pose), 4, 2))
    corners[..., 0] = pose[:, 0:1] + lon * cos - lat * sin
    corners[..., 1] = pose[:, 1:2] + lon * sin + lat * cos
    pixels = _fixed(corners, transform)                                  # (A, 4, 2)
    high, low = pixels.max(axis=1), pixels.min(axis=1)
    limit = size * _SCALE
    seen = (high[:, 0] >= 0) & (high[:, 1] >= 0) & (low[:, 0] < limit) & (low[:, 1] < limit)
    group = _AGENT_GROUP[agents.types]
    for g, name in enumerate(_AGENT_CHANNELS):
        if name in masks:
            mask = masks[name]
            for a in np.flatnonzero(seen & (group == g)).tolist():
                cv2.fillConvexPoly(mask, pixels[a], 255, cv2.LINE_8, _SHIFT)


# --------------------------------------------------------------------------------------------- picture

_RGB = {"background": (38, 40, 44), "drivable": (92, 94, 98), "route": (62, 86, 128),
        "lane_boundaries": (205, 205, 205),
        "vehicles": (70, 130, 235), "pedestrians_bicycles": (235, 85, 200), "static_objects": (245, 160, 40),
        "red": (230, 40, 40), "yellow": (240, 205, 40), "green": (50, 205, 80), "ego": (245, 245, 245)}
_PLAN_RGB = ((255, 140, 0), (255, 200, 120), (200, 120, 255), (120, 220, 255))
"""Plan polylines: the first plan, then further plans cycling through the rest."""
_TRACKED_RGB = (0, 230, 230)


def bev_rgb(frame: WorldFrame, config: BEVConfig = BEVConfig(size=384, meters_per_pixel=0.25, forward_offset=16.0),
            plans: np.ndarray | None = None, tracked: np.ndarray | None = None,
            scores: Mapping[str, float] | None = None, title: str | None = None,
            plans_global: bool = False, tracked_global: bool = False) -> np.ndarray:
    """Colour BEV picture (size, size, 3) uint8 RGB of one frame, for `env.render()`.

    plans: (H, 2+) or (K, H, 2+) x, y [m] (extra columns such as heading are ignored), drawn as polylines
    from the ego rear axle, the first plan brightest; tracked: (T, 2+) the simulated ego trajectory;
    both are in the frame's ego frame (x forward, y left) unless plans_global / tracked_global.
    scores: sub-score name -> value, printed top-left under the title. config.channels is ignored.
    """
    if not isinstance(frame, WorldFrame):
        raise ValueError(f"frame={type(frame).__name__!r}: must be a WorldFrame")
    full = BEVConfig(config.size, config.meters_per_pixel, config.forward_offset)
    masks = np.zeros((len(BEV_CHANNELS) + 1, full.size, full.size), dtype=np.uint8)
    named = {name: masks[i] for i, name in enumerate(BEV_CHANNELS)}
    _draw_frame(frame, full, named)
    transform = pixel_transform(frame.ego_pose, full)
    yellow = masks[-1]
    for ring in _light_rings(frame, scenery_for(frame.road_map), (LightStatus.YELLOW,), _Projector(transform, full)):
        cv2.fillPoly(yellow, [ring], 255, cv2.LINE_8, _SHIFT)
    image = np.empty((full.size, full.size, 3), dtype=np.uint8)
    image[:] = _RGB["background"]
    layers = [("drivable", named["drivable"]), ("route", named["route"]), ("red", named["red_lights"]),
              ("yellow", yellow), ("green", named["green_lights"]), ("lane_boundaries", named["lane_boundaries"]),
              ("static_objects", named["static_objects"]), ("pedestrians_bicycles", named["pedestrians_bicycles"]),
              ("vehicles", named["vehicles"])]
    for colour, mask in layers:
        where = mask > 0
        if colour in ("red", "yellow", "green"):       # half-transparent, so the route shows through
            image[where] = (image[where] + np.array(_RGB[colour])) // 2
        else:
            image[where] = _RGB[colour]

    ego = frame.vehicle
    heading = frame.ego_pose[2]
    cos, sin = math.cos(heading), math.sin(heading)
    centre = frame.ego_pose[:2] + ego.rear_axle_to_center * np.array([cos, sin])
    lon = np.array([0.5, -0.5, -0.5, 0.5]) * ego.length
    lat = np.array([0.5, 0.5, -0.5, -0.5]) * ego.width
    corners = np.stack([centre[0] + lon * cos - lat * sin, centre[1] + lon * sin + lat * cos], axis=-1)
    cv2.fillConvexPoly(image, _fixed(corners, transform), _RGB["ego"], cv2.LINE_AA, _SHIFT)

    thickness = max(1, full.size // 192)
    if plans is not None:
        plans = _as_paths("plans", plans, batched=True)
        for k, plan in enumerate(plans[::-1]):                          # first plan drawn last, on top
            index = len(plans) - 1 - k
            colour = _PLAN_RGB[0] if index == 0 else _PLAN_RGB[1 + (index - 1) % (len(_PLAN_RGB) - 1)]
            _draw_path(image, plan, frame.ego_pose, plans_global, transform, colour, thickness + (index == 0))
    if tracked is not None:
        _draw_path(image, _as_paths("tracked", tracked, batched=False)[0], frame.ego_pose, tracked_global, transform,
                   _TRACKED_RGB, thickness)
    lines = ([title] if title else []) + [f"{name}: {float(value):.3f}" for name, value in (scores or {}).items()]
    scale = max(0.3, full.size / 800)
    y = 2
    for text in lines:
        (width, height), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        cv2.rectangle(image, (0, y), (width + 6, y + height + baseline + 4), (0, 0, 0), -1)
        cv2.putText(image, text, (3, y + height + 2), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
        y += height + baseline + 4
    return image


def _as_paths(name: str, value, batched: bool) -> np.ndarray:
    """Validate (H, 2+) or, when batched, (K, H, 2+) -> (K, H, 2) float64."""
    array = np.asarray(value, dtype=np.float64)
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3 or array.shape[-1] < 2 or (not batched and array.shape[0] != 1):
        expected = "(H, 2+) or (K, H, 2+)" if batched else "(T, 2+)"
        raise ValueError(f"{name}.shape={np.shape(value)!r}: expected {expected}")
    if not np.isfinite(array[..., :2]).all():
        raise ValueError(f"{name}: x, y must be finite")
    return array[..., :2]


def _draw_path(image, path: np.ndarray, ego_pose: np.ndarray, is_global: bool, transform, colour, thickness) -> None:
    """Polyline with dots at the poses; ego-frame paths start at the rear axle."""
    if not is_global:
        cos, sin = math.cos(ego_pose[2]), math.sin(ego_pose[2])
        path = np.concatenate([np.zeros((1, 2)), path], axis=0)
        path = ego_pose[:2] + path @ np.array([[cos, sin], [-sin, cos]])
    pixels = _fixed(path, transform)
    cv2.polylines(image, [pixels], False, colour, thickness, cv2.LINE_AA, _SHIFT)
    for point in pixels[0 if is_global else 1:]:
        cv2.circle(image, (int(point[0]), int(point[1])), int(round((thickness + 1) * _SCALE)), colour, -1,
                   cv2.LINE_AA, _SHIFT)
