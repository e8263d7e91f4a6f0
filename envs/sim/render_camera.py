"""Camera images of `WorldFrame`s by pinhole projection (cv2 polygon fills, painter's algorithm).

Sky gradient and hazy ground; road surfaces, stop lines, lane markings and crosswalk stripes on z = 0,
clipped at the near plane (Sutherland-Hodgman in camera space) before projection; agents, traffic-light
heads as shaded 3D boxes drawn far to near. No assets; static map geometry comes from `scenery`.
"""

from __future__ import annotations

import math
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Sequence

import cv2
import numpy as np

from envs.sim.camera import Camera, CameraRig
from envs.sim.frame import WorldFrame
from envs.sim.scene import AgentType, LightStatus
from envs.sim.scenery import Paint, PolygonSet, Scenery, Surface, scenery_for

NEAR = 0.3
"""[m] near clipping plane (optical-axis depth)."""
DRAW_DISTANCE = 150.0
"""[m] objects farther than this from the ego (Chebyshev distance) are not drawn (a few pixels at most)."""
MARKING_DISTANCE = 80.0
"""[m] markings farther than this are not drawn (a 0.2 m line is under 0.5 px there at 256 px, 70 deg)."""
_SHIFT = 2
_SCALE = float(1 << _SHIFT)
"""cv2 fixed-point bits: vertices are placed to 1/4 px."""

SKY_HORIZON, SKY_ZENITH = np.array([205, 220, 235]), np.array([85, 135, 205])
"""RGB of the sky at the horizon and 30 deg above it (and higher)."""
GROUND, HAZE = np.array([105, 118, 88]), np.array([175, 182, 185])
"""RGB of the verge (off-road ground) near the car, and of distant haze it fades into."""
HAZE_DISTANCE = 250.0
"""[m] the ground colour is 63 % haze at this distance."""
SURFACE_RGB = {
    Surface.ROADBLOCK_CONNECTOR: (72, 72, 76), Surface.ROADBLOCK: (72, 72, 76), Surface.INTERSECTION: (72, 72, 76),
    Surface.CARPARK: (92, 92, 96), Surface.STOP_LINE: (235, 235, 235),
}
PAINT_RGB = {Paint.WHITE: (235, 235, 235), Paint.YELLOW: (235, 195, 50)}
LIGHT_RGB = {LightStatus.GREEN: (40, 225, 90), LightStatus.YELLOW: (250, 200, 30), LightStatus.RED: (235, 30, 30),
             LightStatus.UNKNOWN: (125, 125, 125)}
VEHICLE_PAINTS = np.array([(40, 80, 170), (215, 215, 220), (125, 128, 135), (35, 35, 40), (25, 50, 100),
                           (200, 185, 150), (95, 60, 40), (60, 120, 150)])
"""Vehicle body colours, picked by the object's key (no reds or greens: those mean traffic lights)."""
TYPE_RGB = {AgentType.PEDESTRIAN: (220, 60, 170), AgentType.BICYCLE: (40, 200, 210),
            AgentType.TRAFFIC_CONE: (255, 120, 10), AgentType.BARRIER: (215, 215, 70),
            AgentType.CZONE_SIGN: (255, 160, 40), AgentType.GENERIC_OBJECT: (140, 105, 65)}
TYPE_HEIGHT = {AgentType.VEHICLE: 1.6, AgentType.PEDESTRIAN: 1.8, AgentType.BICYCLE: 1.5, AgentType.TRAFFIC_CONE: 0.7,
               AgentType.BARRIER: 1.0, AgentType.CZONE_SIGN: 1.2, AgentType.GENERIC_OBJECT: 1.0}
"""[m] box heights (nuPlan boxes carry no height in scene files)."""
_HEIGHT_BY_TYPE = np.array([TYPE_HEIGHT[t] for t in AgentType])
_RGB_BY_TYPE = np.array([TYPE_RGB.get(t, (0, 0, 0)) for t in AgentType], dtype=np.float64)
_RGB_BY_LIGHT = np.array([LIGHT_RGB[s] for s in LightStatus], dtype=np.float64)
TRUCK_LENGTH, TRUCK_HEIGHT = 6.0, 3.0
"""[m] vehicles longer than TRUCK_LENGTH are drawn TRUCK_HEIGHT tall."""
HEAD_SIZE = (0.35, 0.5, 4.2, 5.4)
"""Signal head: length, width, bottom z, top z [m]; its stub pole rises 0.8 m above it."""
HOUSING_RGB = (45, 45, 45)
SUN = np.array([0.35, 0.55, 0.76])
"""Direction to the light source (global frame; about 50 deg high)."""
AMBIENT = 0.4
"""Face brightness = AMBIENT + (1 - AMBIENT) * (1 + normal . SUN) / 2 (half-Lambert, so that faces
turned away from the sun still differ from each other)."""

# Box corners: 0-3 bottom FL, RL, RR, FR (geometry.box_corners order), 4-7 the same on top.
_FACES = np.array([[4, 5, 6, 7], [0, 3, 7, 4], [1, 5, 6, 2], [0, 4, 5, 1], [3, 2, 6, 7]])
"""Face corner indices: top, front (+x), rear (-x), left (+y), right (-y)."""
_FRONT, _REAR = 1, 2


# --------------------------------------------------------------------------------------------- API


def render_cameras(frames: Sequence[WorldFrame], rig: CameraRig) -> np.ndarray:
    """Images of every frame from every camera -> (B, C, H, W, 3) uint8 RGB."""
    if not isinstance(rig, CameraRig):
        raise ValueError(f"rig={type(rig).__name__!r}: must be a CameraRig")
    frames = list(frames)
    for b, frame in enumerate(frames):
        if not isinstance(frame, WorldFrame):
            raise ValueError(f"frames[{b}]={type(frame).__name__!r}: must be a WorldFrame")
    height, width = rig.image_size
    out = np.empty((len(frames), len(rig), height, width, 3), dtype=np.uint8)
    backgrounds = np.stack([_background(camera) for camera in rig])
    for b, frame in enumerate(frames):
        out[b] = backgrounds
        scenery = scenery_for(frame.road_map)
        view = _View(frame, rig)
        _draw_surfaces(out[b], view, scenery.surfaces)
        _draw_quads(out[b], view, *_nearby_quads(frame, scenery))
        _draw_boxes(out[b], view, _frame_boxes(frame, scenery))
    return out


# --------------------------------------------------------------------------------------------- background

_BACKGROUNDS: OrderedDict[bytes, np.ndarray] = OrderedDict()


def _background(camera: Camera) -> np.ndarray:
    """(H, W, 3) sky gradient above the horizon, hazy ground below it; cached per camera geometry."""
    hit = _BACKGROUNDS.get(camera.key)
    if hit is not None:
        return hit
    v, u = np.mgrid[0:camera.height, 0:camera.width].astype(np.float64)
    rays = np.stack([u, v, np.ones_like(u)], axis=-1) @ np.linalg.inv(camera.intrinsics).T @ camera.rotation.T
    horizontal = np.linalg.norm(rays[..., :2], axis=-1)
    elevation = np.arctan2(rays[..., 2], horizontal)
    sky_mix = np.clip(elevation / math.radians(30.0), 0.0, 1.0)[..., None]
    sky = SKY_HORIZON * (1 - sky_mix) + SKY_ZENITH * sky_mix
    below = rays[..., 2] < 0
    distance = max(camera.translation[2], 0.1) * horizontal / np.where(below, -rays[..., 2], 1.0)
    haze = np.where(below, 1.0 - np.exp(-distance / HAZE_DISTANCE), 1.0)[..., None]
    ground = GROUND * (1 - haze) + HAZE * haze
    image = np.where(below[..., None], ground, sky).round().astype(np.uint8)
    _BACKGROUNDS[camera.key] = image
    while len(_BACKGROUNDS) > 64:
        _BACKGROUNDS.popitem(last=False)
    return image


# --------------------------------------------------------------------------------------------- projection


class _View:
    """World -> scaled homogeneous pixel coordinates for all C cameras of a rig at one ego pose.

    A world point maps to (a, b, z) = (S u z, S v z, z), z the optical depth and S = 2^_SHIFT, so the
    cv2 fixed-point pixel is (a, b) / z. The map is linear, hence clipping in (a, b, z) equals clipping
    in camera space, and the frustum sides are half-spaces (`cull`). Arrays are components-first:
    each of a, b, z is (C, N) for N points, so one camera's values are contiguous.
    """

    def __init__(self, frame: WorldFrame, rig: CameraRig):
        x, y, heading = frame.ego_pose
        cos, sin = math.cos(heading), math.sin(heading)
        ego_to_world = np.array([[cos, -sin, 0.0, x], [sin, cos, 0.0, y], [0.0, 0.0, 1.0, 0.0], [0, 0, 0, 1.0]])
        world_to_ego = np.linalg.inv(ego_to_world)
        maps, positions = [], []
        for camera in rig:
            scaled_k = np.diag([_SCALE, _SCALE, 1.0]) @ camera.intrinsics
            ego_to_cam = np.concatenate([camera.rotation.T, -(camera.rotation.T @ camera.translation)[:, None]], 1)
            maps.append(scaled_k @ ego_to_cam @ world_to_ego)                      # (3, 4)
            positions.append((ego_to_world @ np.append(camera.translation, 1.0))[:3])
        height, width = rig.image_size
        self.num_cameras = len(rig)
        maps = np.stack(maps)                                                     # (C, 3, 4)
        self.linear = maps[:, :, :3].transpose(2, 1, 0).reshape(3, -1)            # (3, 3C), columns (k, c)
        self.offset = maps[:, :, 3].T.reshape(-1)                                 # (3C,)
        self.positions = np.stack(positions)                                      # (C, 3)
        self.bounds = (_SCALE * (width + 1), _SCALE * (height + 1))

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """World points (N, 2) on the ground or (N, 3) [m] -> a, b, z, each (C, N)."""
        h = points @ self.linear[:points.shape[1]] + self.offset              # (N, 3C)
        h = np.ascontiguousarray(h.T).reshape(3, self.num_cameras, -1)
        return h[0], h[1], h[2]

    def cull(self, a, b, z, reduce_max, reduce_min) -> tuple[np.ndarray, np.ndarray]:
        """Frustum tests of shapes made of points (a, b, z), given the reductions over each shape's
        vertices -> (in_view, in_front), bool (C, shapes).

        in_view is False when every vertex is outside one side of the frustum (u < -1, u > W + 1,
        v < -1, v > H + 1 or depth < NEAR: one pixel of margin), so the shape cannot be seen; in_front:
        every vertex has depth >= NEAR, so it can be projected without clipping.
        """
        scaled_z = _SCALE * z
        right, bottom = self.bounds
        in_view = ((reduce_max(a + scaled_z) >= 0) & (reduce_max(right * z - a) >= 0)
                   & (reduce_max(b + scaled_z) >= 0) & (reduce_max(bottom * z - b) >= 0) & (reduce_max(z) >= NEAR))
        return in_view, reduce_min(z) >= NEAR


def clip_near(polygon: np.ndarray, near: float = NEAR) -> np.ndarray:
    """Sutherland-Hodgman clip of a polygon (V, 3) whose last coordinate is depth to depth >= near
    -> (V', 3); V' may be 0. Works for camera-frame points and for homogeneous pixels alike."""
    depth = polygon[:, 2] - near
    inside = depth >= 0
    following = np.concatenate([polygon[1:], polygon[:1]])
    depth_next = np.concatenate([depth[1:], depth[:1]])
    crosses = inside != (depth_next >= 0)
    # each edge emits its start vertex when inside, then its crossing point when it crosses the plane
    emitted = np.empty((len(polygon), 2, 3))
    emitted[:, 0] = polygon
    t = depth[crosses] / (depth[crosses] - depth_next[crosses])
    emitted[crosses, 1] = polygon[crosses] + t[:, None] * (following[crosses] - polygon[crosses])
    keep = np.empty((len(polygon), 2), dtype=bool)
    keep[:, 0], keep[:, 1] = inside, crosses
    return emitted[keep]


def _fixed(a: np.ndarray, b: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Homogeneous pixels (...) each, depth >= NEAR -> cv2 fixed-point pixels (..., 2) int32."""
    depth = np.maximum(z, NEAR)
    uv = np.empty(a.shape + (2,))
    np.divide(a, depth, out=uv[..., 0])
    np.divide(b, depth, out=uv[..., 1])
    np.minimum(uv, 2.0e9, out=uv)                # int32 safety; |uv| stays far below this for real maps
    np.maximum(uv, -2.0e9, out=uv)
    return np.rint(uv, out=uv).astype(np.int32)


# --------------------------------------------------------------------------------------------- ground


def _draw_surfaces(images: np.ndarray, view: _View, surfaces: PolygonSet) -> None:
    """Fill road-surface polygons into images (C, H, W, 3), one cv2 call per layer and camera (see
    `Surface` on overlaps); polygons reaching behind the camera are clipped first."""
    if not len(surfaces):
        return
    a, b, z = view.project(surfaces.points)                              # (C, P) each
    starts = surfaces.starts[:-1]
    visible, front = view.cull(a, b, z, lambda v: np.maximum.reduceat(v, starts, axis=1),
                               lambda v: np.minimum.reduceat(v, starts, axis=1))    # (C, R)
    pixels = _fixed(a, b, z)                                             # (C, P, 2)
    bounds = surfaces.starts.tolist()
    labels = surfaces.label
    for c in range(view.num_cameras):
        rows = np.flatnonzero(visible[c])
        if not len(rows):
            continue
        for layer in np.unique(labels[rows]).tolist():
            rings = []
            for r in rows[labels[rows] == layer].tolist():
                lo, hi = bounds[r], bounds[r + 1]
                if front[c, r]:
                    rings.append(pixels[c, lo:hi])
                else:
                    clipped = clip_near(np.stack([a[c, lo:hi], b[c, lo:hi], z[c, lo:hi]], axis=1))
                    if len(clipped) >= 3:
                        rings.append(_fixed(*clipped.T))
            if layer == Surface.ROADBLOCK_CONNECTOR:       # may overlap: a joint fill would XOR them
                for ring in rings:
                    cv2.fillPoly(images[c], [ring], SURFACE_RGB[Surface(layer)], cv2.LINE_8, _SHIFT)
            elif rings:
                cv2.fillPoly(images[c], rings, SURFACE_RGB[Surface(layer)], cv2.LINE_8, _SHIFT)


def _nearby_quads(frame: WorldFrame, scenery: Scenery) -> tuple[np.ndarray, np.ndarray]:
    """Marking quads (Q', 4, 2) within MARKING_DISTANCE of the ego, and their paint."""
    if not len(scenery.quads):
        return scenery.quads, scenery.quad_paint
    near = np.abs(scenery.quads[:, 0] - frame.ego_pose[:2]).max(axis=-1) < MARKING_DISTANCE
    return scenery.quads[near], scenery.quad_paint[near]


def _draw_quads(images: np.ndarray, view: _View, quads: np.ndarray, paint: np.ndarray) -> None:
    """Fill marking quads that lie wholly beyond the near plane, one cv2 call per paint and camera (a
    small quad crossing the near plane lies below the view of a camera not looking steeply down)."""
    if not len(quads):
        return
    # vertex-major (C, 4, Q): numpy reduces over a middle axis much faster than over a short last one
    a, b, z = (v.reshape(view.num_cameras, 4, -1) for v in view.project(quads.transpose(1, 0, 2).reshape(-1, 2)))
    in_view, front = view.cull(a, b, z, lambda v: v.max(axis=1), lambda v: v.min(axis=1))
    keep = in_view & front                                               # (C, Q)
    for c in range(view.num_cameras):
        for kind in np.unique(paint[keep[c]]).tolist():
            chosen = keep[c] & (paint == kind)
            cv2.fillPoly(images[c], _fixed(a[c][:, chosen].T, b[c][:, chosen].T, z[c][:, chosen].T),
                         PAINT_RGB[Paint(kind)], cv2.LINE_8, _SHIFT)


# --------------------------------------------------------------------------------------------- boxes


@dataclass(frozen=True, eq=False)
class _Boxes:
    """Upright boxes to draw (N of them), global frame."""

    corners: np.ndarray = field(metadata={"dims": "N 8 3"})
    """Bottom FL, RL, RR, FR, then the same on top [m]."""
    centre: np.ndarray = field(metadata={"dims": "N 3"})
    normals: np.ndarray = field(metadata={"dims": "N 5 3"})
    """Outward unit normals of the faces in `_FACES` order."""
    plane: np.ndarray = field(metadata={"dims": "N 5"})
    """normal . point for each face plane: a camera at p sees the face when normal . p > plane."""
    colours: list = field(metadata={"dims": "N 5 3"})
    """Shaded RGB ints per face (nested lists, as cv2 wants them)."""


def _boxes(xy, heading, length, width, bottom, top, colours, emissive) -> _Boxes:
    """Boxes from centres xy (N, 2), heading, length, width, bottom z, top z (N,) [m, rad], face colours
    (N, 5, 3) and emissive faces (N, 5) (not shaded)."""
    cos, sin = np.cos(heading)[:, None], np.sin(heading)[:, None]
    lon = np.array([0.5, -0.5, -0.5, 0.5]) * length[:, None]
    lat = np.array([0.5, 0.5, -0.5, -0.5]) * width[:, None]
    x = xy[:, 0:1] + lon * cos - lat * sin
    y = xy[:, 1:2] + lon * sin + lat * cos
    count = len(xy)
    corners = np.empty((count, 8, 3))
    corners[:, :4, 0], corners[:, 4:, 0] = x, x
    corners[:, :4, 1], corners[:, 4:, 1] = y, y
    corners[:, :4, 2], corners[:, 4:, 2] = bottom[:, None], top[:, None]
    centre = np.stack([xy[:, 0], xy[:, 1], (bottom + top) / 2], axis=1)
    # side normals point along heading + 0, pi, pi/2, -pi/2 (front, rear, left, right)
    side = heading[:, None] + np.array([0.0, math.pi, math.pi / 2, -math.pi / 2])
    normals = np.zeros((count, 5, 3))
    normals[:, 0, 2] = 1.0
    normals[:, 1:, 0], normals[:, 1:, 1] = np.cos(side), np.sin(side)
    half = np.stack([(top - bottom) / 2, length / 2, length / 2, width / 2, width / 2], axis=1)
    plane = (normals * centre[:, None]).sum(-1) + half
    shade = np.where(emissive, 1.0, AMBIENT + (1 - AMBIENT) * (1.0 + normals @ SUN) / 2)
    shaded = np.clip(colours * shade[..., None], 0, 255).round().astype(np.int64)
    return _Boxes(corners, centre, normals, plane, shaded.tolist())


_HEAD_CACHE: "weakref.WeakKeyDictionary[Scenery, dict]" = weakref.WeakKeyDictionary()


def _head_parts(scenery: Scenery) -> dict[str, np.ndarray]:
    """Per-connector signal head + stub-pole box parameters of a map (cached): arrays of 2 L rows, heads
    first, then stubs."""
    hit = _HEAD_CACHE.get(scenery)
    if hit is not None:
        return hit
    count = len(scenery.head_xy)
    length, width, bottom, top = HEAD_SIZE
    ones = np.ones(count)
    parts = {
        "xy": np.concatenate([scenery.head_xy, scenery.head_xy]),
        "heading": np.concatenate([scenery.head_heading, scenery.head_heading]),
        "length": np.concatenate([length * ones, 0.1 * ones]),
        "width": np.concatenate([width * ones, 0.1 * ones]),
        "bottom": np.concatenate([bottom * ones, top * ones]),
        "top": np.concatenate([top * ones, (top + 0.8) * ones]),
    }
    _HEAD_CACHE[scenery] = parts
    return parts


def _frame_boxes(frame: WorldFrame, scenery: Scenery) -> _Boxes:
    """Boxes of the agents within DRAW_DISTANCE of the ego and of the heads of its signalised connectors."""
    ego_xy = frame.ego_pose[:2]
    agents = frame.agents
    near = np.abs(agents.pose[:, :2] - ego_xy).max(axis=1) < DRAW_DISTANCE
    pose, size, types, keys = agents.pose[near], agents.size[near], agents.types[near], agents.keys[near]
    is_vehicle = types == int(AgentType.VEHICLE)
    heights = np.where(is_vehicle & (size[:, 0] > TRUCK_LENGTH), TRUCK_HEIGHT, _HEIGHT_BY_TYPE[types])
    colours = np.repeat(_RGB_BY_TYPE[types][:, None], 5, axis=1)
    if is_vehicle.any():
        paint = VEHICLE_PAINTS[keys[is_vehicle] % len(VEHICLE_PAINTS)]
        colours[is_vehicle] = paint[:, None]
        # tail lights and headlights: a reddish rear and a lighter front tell the heading apart
        colours[is_vehicle, _REAR] = 0.6 * paint + 0.4 * np.array([170.0, 25.0, 25.0])
        colours[is_vehicle, _FRONT] = 0.75 * paint + 0.25 * 255.0
    emissive = np.zeros((len(pose), 5), bool)
    parts = [pose[:, :2], pose[:, 2], size[:, 0], size[:, 1], np.zeros(len(pose)), heights, colours, emissive]

    rows = np.array([scenery.head_row.get(connector, -1) for connector in frame.light_connector_ids], dtype=np.int64)
    status = frame.light_status[rows >= 0]
    rows = rows[rows >= 0]
    near = np.abs(scenery.head_xy[rows] - ego_xy).max(axis=1) < DRAW_DISTANCE
    rows, status = rows[near], status[near]
    if len(rows):
        heads = _head_parts(scenery)
        chosen = np.concatenate([rows, rows + len(scenery.head_xy)])    # each head, then its stub
        colours = np.tile(np.array(HOUSING_RGB, dtype=np.float64), (len(chosen), 5, 1))
        colours[:len(rows), _REAR] = _RGB_BY_LIGHT[status]             # the face towards traffic glows
        emissive = np.zeros((len(chosen), 5), bool)
        emissive[:len(rows), _REAR] = True
        head = [heads[k][chosen] for k in ("xy", "heading", "length", "width", "bottom", "top")] + [colours, emissive]
        parts = [np.concatenate([p, h]) for p, h in zip(parts, head)]
    return _boxes(*parts)


def _draw_boxes(images: np.ndarray, view: _View, boxes: _Boxes) -> None:
    """Painter's algorithm: per camera, boxes far to near by centre distance, faces turned to the camera."""
    if not len(boxes.corners):
        return
    # vertex-major (C, 8, N) for fast reductions, as in _draw_quads
    a, b, z = (v.reshape(view.num_cameras, 8, -1)
               for v in view.project(boxes.corners.transpose(1, 0, 2).reshape(-1, 3)))
    in_view, front = view.cull(a, b, z, lambda v: v.max(axis=1), lambda v: v.min(axis=1))   # (C, N)
    faces = _fixed(a[:, _FACES].transpose(0, 3, 1, 2), b[:, _FACES].transpose(0, 3, 1, 2),
                   z[:, _FACES].transpose(0, 3, 1, 2))                   # (C, N, 5, 4, 2)
    normals = boxes.normals
    facing = (view.positions @ normals.reshape(-1, 3).T).reshape(view.num_cameras, *normals.shape[:2]) \
        > boxes.plane + 1e-9                                             # (C, N, 5)
    distance = np.linalg.norm(boxes.centre[None] - view.positions[:, None], axis=-1)   # (C, N)
    colours = boxes.colours
    for c in range(view.num_cameras):
        candidates = np.flatnonzero(in_view[c])
        if not len(candidates):
            continue
        order = candidates[np.argsort(-distance[c, candidates], kind="stable")].tolist()
        faces_of = facing[c].tolist()
        is_front = front[c].tolist()
        image, polygons = images[c], faces[c]
        for n in order:
            for f, is_facing in enumerate(faces_of[n]):
                if not is_facing:
                    continue
                if is_front[n]:
                    polygon = polygons[n, f]
                else:
                    corner = _FACES[f]
                    clipped = clip_near(np.stack([a[c, corner, n], b[c, corner, n], z[c, corner, n]], axis=1))
                    if len(clipped) < 3:
                        continue
                    polygon = _fixed(*clipped.T)
                cv2.fillConvexPoly(image, polygon, colours[n][f], cv2.LINE_8, _SHIFT)
