"""Observations of `roadloop/Bench2Drive-v0`, batched: ego measurements, the route's next target points and
driving command (`RouteTable` + `vector_observations`, pure torch, no per-env loop), optional privileged
vectors for teachers, and the optional BEV raster / cameras drawn from `WorldFrame`s (`frame_observations`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Sequence

import numpy as np
import torch
from gymnasium import spaces
from torch import Tensor

from envs.bench2drive.route_scenario import ActorKind, RouteScenario
from envs.bench2drive.tick import TickView
from envs.bench2drive.vehicle_control import MKZ_2020
from envs.sim.geometry import points_to_local
from envs.sim.scene import AgentType, LightStatus

FRONT_CAMERAS = ("cam_l0", "cam_f0", "cam_r0")
"""Cameras used when `cameras=True`: left-front, front, right-front (TCP-like 3 front views)."""
VALUE_LIMIT = 1000.0
"""Bound of every float feature in the spaces; values are clipped to it."""
EGO_FEATURES = ("speed", "accel_lon", "accel_lat", "yaw_rate")
"""Columns of `ego` [m/s, m/s^2, m/s^2, rad/s]; accelerations in the ego frame (x forward, y left)."""
COMMANDS = ("left", "right", "straight", "lane_follow", "change_lane_left", "change_lane_right")
"""One-hot order of `command`: CARLA RoadOption 1..6 minus 1, as the Bench2Drive baselines feed it (spec §4)."""
LEFT, RIGHT, STRAIGHT, LANE_FOLLOW, CHANGE_LANE_LEFT, CHANGE_LANE_RIGHT = range(6)
ACTOR_FEATURES = ("x", "y", "cos_heading", "sin_heading", "vx", "vy", "length", "width", "kind", "role")
"""Columns of `privileged.actors`: box centre and velocity in the ego frame [m, m/s], size [m], ActorKind,
Role; nearest present actors first."""
LIGHT_FEATURES = ("x", "y", "cos_heading", "sin_heading", "red", "yellow", "green")
"""Columns of `privileged.lights`: stop-line centre in the ego frame [m], governed heading relative to the
ego, state one-hot (UNKNOWN: all zero); nearest first."""
STOP_FEATURES = ("x", "y", "cos_heading", "sin_heading", "length", "width")
"""Columns of `privileged.stop_signs`: trigger-area centre in the ego frame [m], heading, size [m]."""

COMMAND_LOOKAHEAD_M = 20.0
"""[m] a junction turn or lane change this far ahead already sets the command (the baselines read the
RoadOption of the next plan keypoint, which lies ahead of the ego)."""
TURN_ANGLE = math.radians(30.0)
"""Heading change over a junction that makes it a LEFT/RIGHT turn rather than STRAIGHT."""
LANE_CHANGE_WINDOW_M = 20.0
LANE_CHANGE_SHIFT_M = 1.5
"""[m] sideways shift of the route over LANE_CHANGE_WINDOW_M that marks a lane change (a lane is ~3.5 m wide)."""
LANE_CHANGE_MAX_TURN = math.radians(5.0)
"""Heading change over the window below which the road counts as straight there."""

_AGENT_TYPE = np.zeros(max(ActorKind) + 1, np.int64)
_AGENT_TYPE[[ActorKind.VEHICLE, ActorKind.PEDESTRIAN, ActorKind.BICYCLE, ActorKind.STATIC, ActorKind.EMERGENCY]] = [
    AgentType.VEHICLE, AgentType.PEDESTRIAN, AgentType.BICYCLE, AgentType.GENERIC_OBJECT, AgentType.VEHICLE]
"""ActorKind -> AgentType of the renderers (props are drawn as static objects)."""


@dataclass(frozen=True)
class ObservationConfig:
    """What a Bench2Drive observation holds (every key is documented in `observation_space`)."""

    target_points: int = 10
    """K: route points ahead in `target_points`."""
    target_spacing: float = 5.0
    """[m] arc length between consecutive target points (the first lies this far ahead)."""
    cameras: tuple[str, ...] | bool = ()
    """Camera names (envs.sim.camera.NAVSIM_CAMERA_NAMES); True means FRONT_CAMERAS; empty/False: none."""
    image_width: int = 256
    """[px]"""
    image_height: int = 128
    """[px]"""
    bev: bool = False
    """Add the semantic BEV raster `bev` (C, S, S) uint8 (envs.sim.bev channels)."""
    bev_size: int = 128
    """S [px]"""
    bev_meters_per_pixel: float = 0.5
    """[m/px]"""
    privileged: bool = False
    """Add `privileged` ground-truth vectors (actors, lights, stop signs) for teachers and critics."""
    max_actors: int = 16
    """Nearest actors kept in `privileged.actors`."""
    max_lights: int = 4
    max_stop_signs: int = 2

    def __post_init__(self):
        cameras = self.cameras
        cameras = FRONT_CAMERAS if cameras is True else () if cameras is False or cameras is None else tuple(cameras)
        object.__setattr__(self, "cameras", cameras)
        for name in ("target_points", "image_width", "image_height", "bev_size", "max_actors", "max_lights",
                     "max_stop_signs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"obs.{name}={value!r}: must be an int >= 1")
        for name in ("target_spacing", "bev_meters_per_pixel"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"obs.{name}={value!r}: must be a positive number")
        from envs.sim.camera import NAVSIM_CAMERA_NAMES

        unknown = [c for c in cameras if c not in NAVSIM_CAMERA_NAMES]
        if unknown or len(set(cameras)) != len(cameras):
            raise ValueError(f"obs.cameras={cameras!r}: need distinct names from {', '.join(NAVSIM_CAMERA_NAMES)}")


def _box(shape, low=-VALUE_LIMIT, high=VALUE_LIMIT) -> spaces.Box:
    return spaces.Box(low=low, high=high, shape=shape, dtype=np.float32)


@lru_cache(maxsize=8)
def _bev_config(config: ObservationConfig):
    from envs.sim.bev import BEVConfig

    return BEVConfig(size=config.bev_size, meters_per_pixel=config.bev_meters_per_pixel)


@lru_cache(maxsize=8)
def _rig(config: ObservationConfig):
    from envs.sim.camera import CameraRig

    return CameraRig.navsim(config.cameras, width=config.image_width, height=config.image_height)


def observation_space(config: ObservationConfig) -> spaces.Dict:
    """Dict space of one observation.

    - `ego` (4,) float32: EGO_FEATURES;
    - `target_points` (K, 2) float32: route points target_spacing, 2*target_spacing, ... metres ahead of the
      ego's route progress, x forward / y left of the ego box centre [m] (the route end repeats);
    - `command` (6,) float32: one-hot COMMANDS of the route at the first target point;
    - one (H, W, 3) uint8 image per camera; `bev` (C, S, S) uint8 when enabled;
    - `privileged` (when enabled): `actors` (A, 10) + `actors_valid` (A,), `lights` (L, 7) + `lights_valid`,
      `stop_signs` (S, 6) + `stop_signs_valid`, and `speed_limit` (1,) [m/s].
    """
    items: dict[str, spaces.Space] = {
        "ego": _box((len(EGO_FEATURES),)),
        "target_points": _box((config.target_points, 2)),
        "command": spaces.Box(0.0, 1.0, shape=(len(COMMANDS),), dtype=np.float32),
    }
    for name in config.cameras:
        items[name] = spaces.Box(0, 255, shape=(config.image_height, config.image_width, 3), dtype=np.uint8)
    if config.bev:
        channels = len(_bev_config(config).channels)
        items["bev"] = spaces.Box(0, 255, shape=(channels, config.bev_size, config.bev_size), dtype=np.uint8)
    if config.privileged:
        items["privileged"] = spaces.Dict({
            "actors": _box((config.max_actors, len(ACTOR_FEATURES))),
            "actors_valid": spaces.MultiBinary(config.max_actors),
            "lights": _box((config.max_lights, len(LIGHT_FEATURES))),
            "lights_valid": spaces.MultiBinary(config.max_lights),
            "stop_signs": _box((config.max_stop_signs, len(STOP_FEATURES))),
            "stop_signs_valid": spaces.MultiBinary(config.max_stop_signs),
            "speed_limit": _box((1,), 0.0, VALUE_LIMIT),
        })
    return spaces.Dict(items)


# --------------------------------------------------------------------------------------------- route table


def route_commands(route: np.ndarray, road_map) -> np.ndarray:
    """Driving command (COMMANDS index) at every dense route point (N, 3) -> (N,) int64.

    Points inside a junction (map intersection polygon) are LEFT / RIGHT / STRAIGHT by the heading change
    across that junction (> TURN_ANGLE); elsewhere a sideways shift of the route on a straight stretch marks a
    lane change (`CHANGE_LANE_*`); the rest is LANE_FOLLOW. Each point then takes the first such manoeuvre within
    COMMAND_LOOKAHEAD_M ahead (our stand-in for CARLA's GlobalRoutePlanner RoadOptions).
    """
    route = np.asarray(route, np.float64)
    xy, heading = route[:, :2], route[:, 2]
    arc = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(xy, axis=0).T))])
    labels = np.full(len(route), LANE_FOLLOW, np.int64)
    in_junction = np.zeros(len(route), bool)
    if road_map is not None and road_map.intersections:
        import shapely

        polygons = shapely.MultiPolygon([shapely.Polygon(a.polygon) for a in road_map.intersections]).buffer(0)
        in_junction = shapely.contains_xy(polygons, xy[:, 0], xy[:, 1])
    # lane changes: a window of W metres with the same heading at both ends (a straight road) whose end lies
    # sideways of its start; the points that do the sideways move get the label
    ahead = np.minimum(np.searchsorted(arc, arc + LANE_CHANGE_WINDOW_M), len(route) - 1)
    turn = np.arctan2(np.sin(heading[ahead] - heading), np.cos(heading[ahead] - heading))
    cos, sin = np.cos(heading), np.sin(heading)
    delta = xy[ahead] - xy
    shift = cos * delta[:, 1] - sin * delta[:, 0]
    changing = (np.abs(turn) < LANE_CHANGE_MAX_TURN) & (np.abs(shift) > LANE_CHANGE_SHIFT_M)
    for i in np.flatnonzero(changing & ~in_junction & ~in_junction[ahead]).tolist():
        span = slice(i, ahead[i] + 1)
        part = (cos[i] * (xy[span, 1] - xy[i, 1]) - sin[i] * (xy[span, 0] - xy[i, 0])) / shift[i]
        moving = np.flatnonzero((part > 0.05) & (part < 0.95)) + i
        labels[moving] = CHANGE_LANE_LEFT if shift[i] > 0 else CHANGE_LANE_RIGHT
    # junction runs, labelled by their heading change
    edges = np.flatnonzero(np.diff(np.concatenate([[0], in_junction.astype(np.int8), [0]])))
    for start, stop in zip(edges[::2], edges[1::2]):
        change = math.atan2(math.sin(heading[stop - 1] - heading[start]), math.cos(heading[stop - 1] - heading[start]))
        labels[start:stop] = LEFT if change > TURN_ANGLE else RIGHT if change < -TURN_ANGLE else STRAIGHT
    # look ahead: the next non-follow label within COMMAND_LOOKAHEAD_M
    marked = np.where(labels != LANE_FOLLOW, np.arange(len(route)), len(route))
    following = np.minimum.accumulate(marked[::-1])[::-1]
    use = following < len(route)
    use[use] = arc[following[use]] - arc[use] <= COMMAND_LOOKAHEAD_M
    return np.where(use, labels[np.minimum(following, len(route) - 1)], LANE_FOLLOW)


def _meta(dims: str, pad: float = 0.0) -> dict:
    return {"dims": dims, "pad": pad}


@dataclass(frozen=True)
class RouteTable:
    """Static per-batch data the observations read: B routes of N dense points, K target points per route point,
    L lights, S stop signs (padded)."""

    targets: Tensor = field(metadata=_meta("B N K 2"))
    """[m] global target points of each route point: K points target_spacing apart ahead of it (`route_targets`)."""
    target_command: Tensor = field(metadata=_meta("B N", LANE_FOLLOW))
    """COMMANDS index at the first target point of each route point (int64)."""
    speed_limit: Tensor = field(metadata=_meta("B"))
    """[m/s]"""
    light_xy: Tensor = field(metadata=_meta("B L 2"))
    """[m] stop-line centres, in the same slot order as TickView.light_state."""
    light_heading: Tensor = field(metadata=_meta("B L"))
    light_valid: Tensor = field(metadata=_meta("B L"))
    stop_xy: Tensor = field(metadata=_meta("B S 2"))
    stop_heading: Tensor = field(metadata=_meta("B S"))
    stop_size: Tensor = field(metadata=_meta("B S 2"))
    stop_valid: Tensor = field(metadata=_meta("B S"))


def route_targets(route: np.ndarray, count: int, spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """For every dense route point (N, 3): the global points `spacing`, 2 `spacing`, ... metres of arc ahead,
    linearly interpolated (the route end repeats past it) -> (xy (N, K, 2), dense index (N, K) of the route
    point at or after each)."""
    xy = np.asarray(route, np.float64)[:, :2]
    arc = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(xy, axis=0).T))])
    s = np.minimum(arc[:, None] + spacing * np.arange(1, count + 1), arc[-1])               # (N, K)
    end = np.clip(np.searchsorted(arc, s), 1, len(arc) - 1)
    t = np.clip((s - arc[end - 1]) / np.maximum(arc[end] - arc[end - 1], 1e-9), 0.0, 1.0)[..., None]
    return xy[end - 1] + t * (xy[end] - xy[end - 1]), end


def _padded(rows: Sequence[np.ndarray], tail: tuple[int, ...], pad: float, dtype, device) -> Tensor:
    size = max([len(r) for r in rows] + [1])
    out = np.full((len(rows), size, *tail), pad, dtype=np.float64)
    for b, r in enumerate(rows):
        out[b, :len(r)] = np.asarray(r, np.float64).reshape(len(r), *tail)
    return torch.as_tensor(out, device=device).to(dtype)


def route_table(scenarios: Sequence[RouteScenario], config: ObservationConfig = ObservationConfig(),
                commands: Sequence[np.ndarray] | None = None, device: torch.device | str | None = None) -> RouteTable:
    """Targets, commands, lights and stop signs of B scenarios as one padded table (setup, numpy per route).

    commands: per-route `route_commands` results if already computed, else computed here.
    """
    if commands is None:
        commands = [route_commands(s.route, s.road_map) for s in scenarios]
    f64 = torch.float64
    targets = [route_targets(s.route, config.target_points, config.target_spacing) for s in scenarios]
    lights = [s.lights for s in scenarios]
    stops = [s.stop_signs for s in scenarios]
    return RouteTable(
        targets=_padded([t[0] for t in targets], (config.target_points, 2), 0.0, f64, device),
        target_command=_padded([c[t[1][:, 0]] for c, t in zip(commands, targets)], (), LANE_FOLLOW, torch.int64,
                               device),
        speed_limit=torch.tensor([s.speed_limit for s in scenarios], dtype=f64, device=device),
        light_xy=_padded([[np.mean(l.stop_line, axis=0) for l in ls] for ls in lights], (2,), 0.0, f64, device),
        light_heading=_padded([[l.heading for l in ls] for ls in lights], (), 0.0, f64, device),
        light_valid=_padded([[1.0] * len(ls) for ls in lights], (), 0.0, torch.bool, device),
        stop_xy=_padded([[s.center for s in ss] for ss in stops], (2,), 0.0, f64, device),
        stop_heading=_padded([[s.heading for s in ss] for ss in stops], (), 0.0, f64, device),
        stop_size=_padded([[(s.length, s.width) for s in ss] for ss in stops], (2,), 0.0, f64, device),
        stop_valid=_padded([[1.0] * len(ss) for ss in stops], (), 0.0, torch.bool, device),
    )


# --------------------------------------------------------------------------------------------- vectors

_EYE = np.eye(len(COMMANDS), dtype=np.float32)


def vector_observations(view: TickView, table: RouteTable, route_index: Tensor, config: ObservationConfig) -> dict:
    """Ego measurements, target points and command of every row (batched torch) -> dict of float32 numpy (B, ...).

    route_index: (B,) int64 dense-route index of the ego's route progress (the criteria's RC index).
    """
    pose = view.ego_pose
    cos, sin = torch.cos(pose[:, 2:3]), torch.sin(pose[:, 2:3])                           # (B, 1)
    batch, num_route, count = table.targets.shape[:3]
    row = _row_offsets(batch, num_route, str(route_index.device)) + route_index              # flat (b, n) rows
    targets = table.targets.reshape(batch * num_route, count * 2).index_select(0, row).view(batch, count, 2)
    # accelerations and target offsets rotated together: columns 0 (accel) and 1.. (targets)
    along_x = torch.cat([view.ego_accel[:, 0:1], targets[..., 0] - pose[:, 0:1]], 1)         # (B, 1 + K)
    along_y = torch.cat([view.ego_accel[:, 1:2], targets[..., 1] - pose[:, 1:2]], 1)
    forward, left = cos * along_x + sin * along_y, cos * along_y - sin * along_x
    ego = torch.cat([view.ego_speed[:, None], forward[:, :1], left[:, :1], view.ego_yaw_rate[:, None]], 1)
    command = table.target_command.reshape(-1).index_select(0, row).cpu().numpy()
    obs = {"ego": _float32(ego), "target_points": _float32(torch.stack([forward[:, 1:], left[:, 1:]], -1)),
           "command": _EYE[command]}
    if config.privileged:
        obs["privileged"] = privileged_vectors(view, table, config)
    return obs


@lru_cache(maxsize=64)
def _row_offsets(batch: int, num_route: int, device: str) -> Tensor:
    """(B,) b * N: the first flat row of each route in a (B * N, ...) table (cached; never written to)."""
    return torch.arange(batch, device=device) * num_route


def _float32(tensor: Tensor) -> np.ndarray:
    return tensor.clamp(-VALUE_LIMIT, VALUE_LIMIT).to(torch.float32).cpu().numpy()


def _nearest(xy_local: Tensor, valid: Tensor, keep: int) -> tuple[Tensor, Tensor]:
    """Indices (B, keep) of the nearest valid slots (nearest first, then padding) and their validity."""
    distance = torch.where(valid, xy_local.norm(dim=-1), torch.full_like(xy_local[..., 0], math.inf))
    if distance.shape[1] < keep:
        distance = torch.cat([distance, distance.new_full((distance.shape[0], keep - distance.shape[1]), math.inf)], 1)
    order = torch.sort(distance, dim=1, stable=True).indices[:, :keep]
    return order, torch.isfinite(distance.gather(1, order))


def _gather_rows(features: Tensor, order: Tensor, valid: Tensor) -> Tensor:
    """features (B, X, F) at order (B, K) (indices past X read as zero) -> (B, K, F), zero where not valid."""
    padded = torch.cat([features, features.new_zeros(features.shape[0], 1, features.shape[2])], 1)
    index = torch.where(valid, order, features.shape[1])
    return padded.gather(1, index[..., None].expand(-1, -1, features.shape[2]))


def privileged_vectors(view: TickView, table: RouteTable, config: ObservationConfig) -> dict:
    """Ground truth in the ego frame: nearest actors, lights with their state, stop signs (see observation_space)."""
    pose = view.ego_pose
    origin = pose[:, None]
    # actors
    xy = points_to_local(view.actor_pose[..., :2], origin)
    heading = view.actor_pose[..., 2] - pose[:, 2:3]
    actors = torch.cat([xy, torch.cos(heading)[..., None], torch.sin(heading)[..., None],
                        (view.actor_speed[..., None] * torch.stack([torch.cos(heading), torch.sin(heading)], -1)),
                        view.actor_size, view.actor_kind[..., None].to(xy.dtype),
                        view.actor_role[..., None].to(xy.dtype)], -1)
    order, valid = _nearest(xy, view.actor_present, config.max_actors)
    out = {"actors": _gather_rows(actors, order, valid), "actors_valid": valid}
    # lights: geometry from the table, state from the view (same slot order)
    xy = points_to_local(table.light_xy, origin)
    heading = table.light_heading - pose[:, 2:3]
    state = view.light_state[:, : table.light_xy.shape[1]]
    if state.shape[1] < table.light_xy.shape[1]:     # a world without lights has no light columns at all
        state = torch.nn.functional.pad(state, (0, table.light_xy.shape[1] - state.shape[1]), value=int(LightStatus.UNKNOWN))
    lights = torch.cat([xy, torch.cos(heading)[..., None], torch.sin(heading)[..., None],
                        torch.stack([state == LightStatus.RED, state == LightStatus.YELLOW,
                                     state == LightStatus.GREEN], -1).to(xy.dtype)], -1)
    order, valid = _nearest(xy, table.light_valid, config.max_lights)
    out.update(lights=_gather_rows(lights, order, valid), lights_valid=valid)
    # stop signs
    xy = points_to_local(table.stop_xy, origin)
    heading = table.stop_heading - pose[:, 2:3]
    stops = torch.cat([xy, torch.cos(heading)[..., None], torch.sin(heading)[..., None], table.stop_size], -1)
    order, valid = _nearest(xy, table.stop_valid, config.max_stop_signs)
    out.update(stop_signs=_gather_rows(stops, order, valid), stop_signs_valid=valid)
    out["speed_limit"] = table.speed_limit[:, None]
    return {k: (v.to(torch.int8).cpu().numpy() if v.dtype == torch.bool else _float32(v)) for k, v in out.items()}


# --------------------------------------------------------------------------------------------- rasters


@dataclass(frozen=True, eq=False)
class RouteDrawing:
    """What the renderers need of one route besides the tick: its map, route roadblocks, light connectors."""

    road_map: object
    route_roadblock_ids: tuple[str, ...]
    light_connector_ids: tuple[str, ...]
    light_slot: np.ndarray
    """(len(light_connector_ids),) index of the LightSpec (TickView light slot) governing each connector."""


def route_drawing(scenario: RouteScenario) -> RouteDrawing:
    """Setup per route: roadblocks whose lanes the dense route runs along, and the signalised connectors."""
    lanes = list(scenario.road_map.lanes_by_id.values())
    blocks: tuple[str, ...] = ()
    if lanes:
        points = scenario.route[:, :2]
        best = np.full(len(points), np.inf)
        owner = np.zeros(len(points), np.int64)
        for i, lane in enumerate(lanes):
            line = np.asarray(lane.centerline, np.float64)
            if len(line) < 2:
                continue
            distance = _polyline_distance(line, points)
            closer = distance < best
            best[closer], owner[closer] = distance[closer], i
        blocks = tuple(dict.fromkeys(lanes[i].roadblock_id for i in owner[np.isfinite(best)]))
    ids, slots = [], []
    for slot, light in enumerate(scenario.lights):
        for lane_id in light.lane_ids:
            ids.append(lane_id)
            slots.append(slot)
    return RouteDrawing(scenario.road_map, blocks, tuple(ids), np.asarray(slots, np.int64))


def _polyline_distance(line: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Distance [m] of points (P, 2) to a polyline (V, 2) -> (P,)."""
    a, b = line[:-1], line[1:]
    ab = b - a
    t = np.clip(((points[:, None] - a) * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-12), 0.0, 1.0)
    nearest = a + t[..., None] * ab
    return np.hypot(*(points[:, None] - nearest).transpose(2, 0, 1)).min(axis=1)


EGO_REAR_AXLE_TO_CENTER = MKZ_2020.rear_axle_to_center
"""[m] the renderers place cameras relative to the rear axle; TickView poses are box centres."""


def world_frames(view: TickView, drawings: Sequence[RouteDrawing], rows: Sequence[int] | None = None) -> list:
    """One `WorldFrame` per row (image work only; numpy per row): actors present now, light states, route."""
    from envs.sim.frame import AgentBoxes, WorldFrame

    rows = range(len(drawings)) if rows is None else rows
    pose = view.ego_pose.cpu().numpy()
    size = view.ego_size.cpu().numpy()
    actor_pose, actor_size = view.actor_pose.cpu().numpy(), view.actor_size.cpu().numpy()
    kind, present = view.actor_kind.cpu().numpy(), view.actor_present.cpu().numpy()
    lights = view.light_state.cpu().numpy()
    frames = []
    for b in rows:
        keep = np.flatnonzero(present[b])
        heading = pose[b, 2]
        axle = pose[b, :2] - EGO_REAR_AXLE_TO_CENTER * np.array([math.cos(heading), math.sin(heading)])
        drawing = drawings[b]
        length, width = float(size[b, 0]), float(size[b, 1])
        vehicle = MKZ_2020 if (length, width) == (MKZ_2020.length, MKZ_2020.width) else \
            replace(MKZ_2020, length=length, width=width)
        frames.append(WorldFrame(
            road_map=drawing.road_map, ego_pose=np.array([axle[0], axle[1], heading]),
            agents=AgentBoxes(actor_pose[b, keep], actor_size[b, keep], _AGENT_TYPE[kind[b, keep]], keys=keep),
            light_connector_ids=drawing.light_connector_ids, light_status=lights[b, drawing.light_slot],
            route_roadblock_ids=drawing.route_roadblock_ids, vehicle=vehicle))
    return frames


def frame_observations(view: TickView, drawings: Sequence[RouteDrawing], config: ObservationConfig) -> dict:
    """Cameras and BEV of every row -> {camera name: (B, H, W, 3) uint8, "bev": (B, C, S, S) uint8}."""
    if not (config.cameras or config.bev):
        return {}
    frames = world_frames(view, drawings)
    obs = {}
    if config.cameras:
        from envs.sim.render_camera import render_cameras

        images = render_cameras(frames, _rig(config))
        for c, name in enumerate(config.cameras):
            obs[name] = np.ascontiguousarray(images[:, c])
    if config.bev:
        from envs.sim.bev import bev_raster

        obs["bev"] = bev_raster(frames, _bev_config(config))
    return obs


def build_observations(view: TickView, table: RouteTable, route_index: Tensor, drawings: Sequence[RouteDrawing],
                       config: ObservationConfig) -> dict:
    """The full observation dict of B rows (vectors batched, rasters per row)."""
    obs = vector_observations(view, table, route_index, config)
    obs.update(frame_observations(view, drawings, config))
    return obs

