"""Ego-centred bird's-eye-view rasters of `WorldFrame`s: uint8 semantic masks for policies (`bev_raster`)
and a colour picture with plans, the tracked trajectory and sub-scores for `env.render()` (`bev_rgb`).

Image frame: the ego heading points up (row 0 is ahead), the ego's left is the image's left. The point
`forward_offset` metres ahead of the rear axle sits at the image centre (between the 4 middle pixels).
"""

from __future__ import annotations

import math
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
_STATIC_TYPES = (AgentType.TRAFFIC_CONE, AgentType.BARRIER, AgentType.CZONE_SIGN, AgentType.GENERIC_OBJECT)


@dataclass(frozen=True)
class BEVConfig:
    """Size, scale and channels of a BEV raster."""

    size: int = 128
    """Image height = width [px]."""
    metres_per_pixel: float = 0.5
    """Ground resolution [m/px]; 128 px at 0.5 m/px cover 64 m x 64 m."""
    forward_offset: float = 0.0
    """[m] the image centre lies this far ahead of the ego rear axle (0: ego-centred; size/4 * m/px puts
    the ego half-way down the lower half and shows more road ahead)."""
    channels: tuple[str, ...] = BEV_CHANNELS
    """Channels to draw and their order; a subset of BEV_CHANNELS."""

    def __post_init__(self):
        if not isinstance(self.size, int) or isinstance(self.size, bool) or self.size < 2:
            raise ValueError(f"size={self.size!r}: must be an int >= 2")
        if not (math.isfinite(self.metres_per_pixel) and self.metres_per_pixel > 0):
            raise ValueError(f"metres_per_pixel={self.metres_per_pixel!r}: must be positive and finite")
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
        return self.size * self.metres_per_pixel


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
    scale = 1.0 / config.metres_per_pixel
    centre = config.size / 2 - 0.5
    linear = scale * np.array([[sin, -cos], [-cos, -sin]])     # column = -ego y, row = -ego x
    offset = np.array([centre, centre + config.forward_offset * scale]) - linear @ np.array([x, y])
    return np.concatenate([linear, offset[:, None]], axis=1)


def _fixed(points: np.ndarray, transform: np.ndarray) -> np.ndarray:
    """Global points (..., 2) [m] -> cv2 fixed-point pixels (..., 2) int32 (clamped far off-image)."""
    pixels = points @ (transform[:, :2].T * _SCALE) + transform[:, 2] * _SCALE
    np.minimum(pixels, 1.0e9, out=pixels)
    np.maximum(pixels, -1.0e9, out=pixels)
    return np.rint(pixels, out=pixels).astype(np.int32)


def _rings(polygons: PolygonSet, rows: np.ndarray, transform: np.ndarray, size: int) -> list[np.ndarray]:
    """Fixed-point rings of the chosen polygons whose bounding box meets the image."""
    if not len(rows):
        return []
    pixels = _fixed(polygons.points, transform)
    starts = polygons.starts[:-1]
    low = np.minimum.reduceat(pixels, starts, axis=0)[rows]
    high = np.maximum.reduceat(pixels, starts, axis=0)[rows]
    limit = size * _SCALE
    seen = (high >= 0).all(axis=1) & (low < limit).all(axis=1)
    bounds = polygons.starts
    return [pixels[bounds[r]:bounds[r + 1]] for r in rows[seen].tolist()]


def _draw_frame(frame: WorldFrame, config: BEVConfig, masks: Mapping[str, np.ndarray]) -> None:
    """Draw the requested channels of one frame into 2D uint8 masks (channel name -> (size, size))."""
    scenery = scenery_for(frame.road_map)
    transform = pixel_transform(frame.ego_pose, config)
    size = config.size
    if "drivable" in masks:
        surfaces = scenery.surfaces
        for layer in (Surface.ROADBLOCK, Surface.INTERSECTION, Surface.CARPARK):
            rings = _rings(surfaces, np.flatnonzero(surfaces.label == layer), transform, size)
            if rings:
                cv2.fillPoly(masks["drivable"], rings, 255, cv2.LINE_8, _SHIFT)
    if "lane_boundaries" in masks and len(scenery.boundaries):
        lines = _rings(scenery.boundaries, np.arange(len(scenery.boundaries)), transform, size)
        if lines:
            cv2.polylines(masks["lane_boundaries"], lines, False, 255, 1, cv2.LINE_8, _SHIFT)
    if "route" in masks and frame.route_roadblock_ids:
        route = set(frame.route_roadblock_ids)
        rows = np.array([i for i, block in enumerate(scenery.lane_roadblock_ids) if block in route], dtype=np.int64)
        rings = _rings(scenery.lanes, rows, transform, size)
        for ring in rings:          # connectors of one route may overlap: one fill each (no XOR)
            cv2.fillPoly(masks["route"], [ring], 255, cv2.LINE_8, _SHIFT)
    _draw_agents(frame, transform, size, masks)
    if "red_lights" in masks or "green_lights" in masks:
        for name, statuses in (("red_lights", (LightStatus.RED, LightStatus.YELLOW)), ("green_lights", (LightStatus.GREEN,))):
            if name in masks:
                for ring in _light_rings(frame, scenery, statuses, transform, size):
                    cv2.fillPoly(masks[name], [ring], 255, cv2.LINE_8, _SHIFT)


def _light_rings(frame: WorldFrame, scenery: Scenery, statuses, transform, size) -> list[np.ndarray]:
    """Fixed-point polygons of the frame's lane connectors whose light has one of `statuses`."""
    wanted = np.isin(frame.light_status, [int(s) for s in statuses])
    rows = [scenery.lane_row.get(i, -1) for i, keep in zip(frame.light_connector_ids, wanted.tolist()) if keep]
    rows = np.array([r for r in rows if r >= 0], dtype=np.int64)
    return _rings(scenery.lanes, rows, transform, size)


def _draw_agents(frame: WorldFrame, transform: np.ndarray, size: int, masks: Mapping[str, np.ndarray]) -> None:
    """Fill agent boxes into the vehicles / pedestrians_bicycles / static_objects masks."""
    agents = frame.agents
    groups = {"vehicles": (AgentType.VEHICLE,), "pedestrians_bicycles": (AgentType.PEDESTRIAN, AgentType.BICYCLE),
              "static_objects": _STATIC_TYPES}
    wanted = [name for name in groups if name in masks]
    if not wanted or not agents.num_agents:
        return
    pose, size_lw = agents.pose, agents.size
    cos, sin = np.cos(pose[:, 2])[:, None], np.sin(pose[:, 2])[:, None]
    lon = np.array([0.5, -0.5, -0.5, 0.5]) * size_lw[:, 0:1]          # FL, RL, RR, FR
    lat = np.array([0.5, 0.5, -0.5, -0.5]) * size_lw[:, 1:2]
    corners = np.stack([pose[:, 0:1] + lon * cos - lat * sin, pose[:, 1:2] + lon * sin + lat * cos], axis=-1)
    pixels = _fixed(corners, transform)                                  # (A, 4, 2)
    limit = size * _SCALE
    seen = (pixels.max(axis=1) >= 0).all(axis=1) & (pixels.min(axis=1) < limit).all(axis=1)
    for name in wanted:
        chosen = np.flatnonzero(seen & np.isin(agents.types, [int(t) for t in groups[name]]))
        mask = masks[name]
        for a in chosen.tolist():
            cv2.fillConvexPoly(mask, pixels[a], 255, cv2.LINE_8, _SHIFT)


# --------------------------------------------------------------------------------------------- picture

_RGB = {"background": (38, 40, 44), "drivable": (92, 94, 98), "route": (62, 86, 128), "lane_boundaries": (205, 205, 205),
        "vehicles": (70, 130, 235), "pedestrians_bicycles": (235, 85, 200), "static_objects": (245, 160, 40),
        "red": (230, 40, 40), "yellow": (240, 205, 40), "green": (50, 205, 80), "ego": (245, 245, 245)}
_PLAN_RGB = ((255, 140, 0), (255, 200, 120), (200, 120, 255), (120, 220, 255))
"""Plan polylines: the first plan, then further plans cycling through the rest."""
_TRACKED_RGB = (0, 230, 230)


def bev_rgb(frame: WorldFrame, config: BEVConfig = BEVConfig(size=384, metres_per_pixel=0.25, forward_offset=16.0),
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
    full = BEVConfig(config.size, config.metres_per_pixel, config.forward_offset)
    masks = np.zeros((len(BEV_CHANNELS) + 1, full.size, full.size), dtype=np.uint8)
    named = {name: masks[i] for i, name in enumerate(BEV_CHANNELS)}
    _draw_frame(frame, full, named)
    transform = pixel_transform(frame.ego_pose, full)
    yellow = masks[-1]
    for ring in _light_rings(frame, scenery_for(frame.road_map), (LightStatus.YELLOW,), transform, full.size):
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
    centre = frame.ego_pose[:2] + ego.rear_axle_to_center * np.array([math.cos(frame.ego_pose[2]), math.sin(frame.ego_pose[2])])
    heading = frame.ego_pose[2]
    cos, sin = math.cos(heading), math.sin(heading)
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
