"""Observations of the NAVSIM envs: what a policy sees of a scene at t = 0, batched.

`ego_status` and `command` mirror NAVSIM's `AgentInput`; cameras and the BEV come from the
built-in renderer (`envs.sim.render_camera`, `envs.sim.bev`); `privileged` holds vectors for
teachers and critics (agents, lanes, route centerline), padded with validity masks.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from gymnasium import spaces

from envs.sim.scene import Scene

STATUS_LIMIT = 1000.0
"""Bound of every ego-status and privileged coordinate in the spaces (values are clipped to it)."""
AGENT_FEATURES = ("x", "y", "cos_heading", "sin_heading", "vx", "vy", "length", "width", "type")
"""Columns of `privileged.agents`, in the current ego frame [m, m/s]; type = AgentType value."""


@dataclass(frozen=True)
class ObservationConfig:
    """What the NAVSIM observation holds."""

    cameras: tuple[str, ...] = ("cam_l0", "cam_f0", "cam_r0")
    """Camera names (NAVSIM's cam_f0, cam_l0..l2, cam_r0..r2, cam_b0); empty for none."""
    image_width: int = 256
    """[px]"""
    image_height: int = 128
    """[px]"""
    bev: bool = False
    """Add the semantic BEV raster `bev` (C, S, S) uint8."""
    bev_size: int = 128
    """S [px]"""
    bev_meters_per_pixel: float = 0.5
    """[m/px]"""
    privileged: bool = False
    """Add `privileged` vectors (ground truth: teachers and critics only)."""
    max_agents: int = 32
    """A: nearest objects kept in `privileged.agents`."""
    max_lanes: int = 24
    """L: nearest lanes kept in `privileged.lanes`."""
    lane_points: int = 20
    """Points per resampled lane centerline."""
    route_points: int = 40
    """Points of the route centerline ahead, 2 m apart."""

    def __post_init__(self):
        object.__setattr__(self, "cameras", tuple(self.cameras))
        for name in ("image_width", "image_height", "bev_size", "max_agents", "max_lanes", "lane_points", "route_points"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"obs.{name}={getattr(self, name)!r}: must be >= 1")
        from envs.sim.camera import NAVSIM_CAMERA_NAMES

        unknown = [c for c in self.cameras if c not in NAVSIM_CAMERA_NAMES]
        if unknown:
            raise ValueError(f"obs.cameras={unknown!r}: unknown camera (valid: {', '.join(NAVSIM_CAMERA_NAMES)})")


@lru_cache(maxsize=8)
def _rig(config: ObservationConfig):
    from envs.sim.camera import CameraRig

    return CameraRig.navsim(config.cameras, width=config.image_width, height=config.image_height)


@lru_cache(maxsize=8)
def _bev_config(config: ObservationConfig):
    from envs.sim.bev import BEVConfig

    return BEVConfig(size=config.bev_size, meters_per_pixel=config.bev_meters_per_pixel)


def _box(shape, low=-STATUS_LIMIT, high=STATUS_LIMIT) -> spaces.Box:
    return spaces.Box(low=low, high=high, shape=shape, dtype=np.float32)


def observation_space(config: ObservationConfig) -> spaces.Dict:
    """The Dict space of one observation (see NavsimEnv's docstring)."""
    items: dict[str, spaces.Space] = {
        "ego_status": _box((4, 7)),
        "command": spaces.Box(0.0, 1.0, shape=(4,), dtype=np.float32),
    }
    for name in config.cameras:
        items[name] = spaces.Box(0, 255, shape=(config.image_height, config.image_width, 3), dtype=np.uint8)
    if config.bev:
        channels = len(_bev_config(config).channels)
        items["bev"] = spaces.Box(0, 255, shape=(channels, config.bev_size, config.bev_size), dtype=np.uint8)
    if config.privileged:
        items["privileged"] = spaces.Dict({
            "agents": _box((config.max_agents, len(AGENT_FEATURES))),
            "agents_valid": spaces.MultiBinary(config.max_agents),
            "lanes": _box((config.max_lanes, config.lane_points, 2)),
            "lanes_valid": spaces.MultiBinary(config.max_lanes),
            "route": _box((config.route_points, 2)),
        })
    return spaces.Dict(items)


def ego_status(scene: Scene) -> np.ndarray:
    """(4, 7) history frames: pose in the current ego frame, velocity and acceleration (ego frames)."""
    history = scene.history
    origin = history.pose[-1]
    cos, sin = np.cos(origin[2]), np.sin(origin[2])
    delta = history.pose[:, :2] - origin[:2]
    local = np.stack([cos * delta[:, 0] + sin * delta[:, 1], -sin * delta[:, 0] + cos * delta[:, 1]], -1)
    heading = np.arctan2(np.sin(history.pose[:, 2] - origin[2]), np.cos(history.pose[:, 2] - origin[2]))
    status = np.concatenate([local, heading[:, None], history.velocity, history.acceleration], -1)
    frames = np.zeros((4, 7))
    frames[-len(status):] = status[-4:]
    return frames


def _to_ego(xy: np.ndarray, origin: np.ndarray) -> np.ndarray:
    cos, sin = np.cos(origin[2]), np.sin(origin[2])
    d = xy - origin[:2]
    return np.stack([cos * d[..., 0] + sin * d[..., 1], -sin * d[..., 0] + cos * d[..., 1]], -1)


def _resample(line: np.ndarray, count: int, spacing: float | None = None) -> np.ndarray:
    """`count` points along a polyline (evenly over its length, or `spacing` apart from its start)."""
    step = np.linalg.norm(np.diff(line, axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(step)])
    target = np.linspace(0.0, arc[-1], count) if spacing is None else np.minimum(np.arange(count) * spacing, arc[-1])
    return np.stack([np.interp(target, arc, line[:, 0]), np.interp(target, arc, line[:, 1])], -1)


def privileged(scene: Scene, config: ObservationConfig, centerline: np.ndarray | None) -> dict[str, np.ndarray]:
    """Ground-truth vectors of one scene in its current ego frame (padded, nearest first)."""
    origin = scene.ego_pose
    tracks = scene.agents
    A, L = config.max_agents, config.max_lanes
    agents = np.zeros((A, len(AGENT_FEATURES)), np.float32)
    agents_valid = np.zeros(A, np.int8)
    present = np.flatnonzero(tracks.valid[:, 0]) if tracks.num_agents else np.zeros(0, int)
    if present.size:
        xy = _to_ego(tracks.pose[present, 0, :2], origin)
        order = np.argsort(np.hypot(*xy.T), kind="stable")[:A]
        rel_heading = tracks.pose[present[order], 0, 2] - origin[2]
        velocity = tracks.velocity[present[order], 0]
        cos, sin = np.cos(origin[2]), np.sin(origin[2])
        local_v = np.stack([cos * velocity[:, 0] + sin * velocity[:, 1], -sin * velocity[:, 0] + cos * velocity[:, 1]], -1)
        agents[: len(order)] = np.column_stack([
            xy[order], np.cos(rel_heading), np.sin(rel_heading), local_v,
            tracks.size[present[order]], tracks.types[present[order]],
        ])
        agents_valid[: len(order)] = 1
    lanes = np.zeros((L, config.lane_points, 2), np.float32)
    lanes_valid = np.zeros(L, np.int8)
    all_lanes = list(scene.map.lanes_by_id.values())
    if all_lanes:
        local = [_to_ego(np.asarray(lane.centerline, np.float64), origin) for lane in all_lanes]
        distance = np.array([np.hypot(*c.T).min() for c in local])
        for slot, i in enumerate(np.argsort(distance, kind="stable")[:L]):
            lanes[slot] = _resample(local[i], config.lane_points)
            lanes_valid[slot] = 1
    route = np.zeros((config.route_points, 2), np.float32)
    if centerline is not None and len(centerline) >= 2:
        local = _to_ego(centerline, origin)
        start = int(np.argmin(np.hypot(*local.T)))
        ahead = local[start:] if len(local) - start >= 2 else local[-2:]
        route[:] = _resample(ahead, config.route_points, spacing=2.0)
    clip = lambda a: np.clip(a, -STATUS_LIMIT, STATUS_LIMIT).astype(np.float32)
    return {"agents": clip(agents), "agents_valid": agents_valid, "lanes": clip(lanes),
            "lanes_valid": lanes_valid, "route": clip(route)}


def build_observations(scenes: list[Scene], config: ObservationConfig, centerlines: list | None = None) -> dict:
    """Batched observations of B scenes at t = 0 -> dict of arrays with a leading B axis."""
    obs: dict[str, np.ndarray | dict] = {
        "ego_status": np.clip(np.stack([ego_status(s) for s in scenes]), -STATUS_LIMIT, STATUS_LIMIT).astype(np.float32),
        "command": np.eye(4, dtype=np.float32)[[int(s.command) for s in scenes]],
    }
    if config.cameras or config.bev:
        from envs.sim.frame import frame_from_scene

        frames = [frame_from_scene(s, 0) for s in scenes]
    if config.cameras:
        from envs.sim.render_camera import render_cameras

        images = render_cameras(frames, _rig(config))  # (B, C, H, W, 3)
        for c, name in enumerate(config.cameras):
            obs[name] = np.ascontiguousarray(images[:, c])
    if config.bev:
        from envs.sim.bev import bev_raster

        obs["bev"] = bev_raster(frames, _bev_config(config))
    if config.privileged:
        per = [privileged(s, config, None if centerlines is None else centerlines[b]) for b, s in enumerate(scenes)]
        obs["privileged"] = {k: np.stack([p[k] for p in per]) for k in per[0]}
    return obs



def observation_rows(obs: dict) -> list[dict]:
    """Batched observations (a dict of arrays with a leading B axis, nested dicts allowed) -> B per-scene
    dicts of copies (so that one can be kept without the whole batch)."""
    def row(tree, b):
        return {k: row(v, b) for k, v in tree.items()} if isinstance(tree, dict) else np.array(tree[b])

    return [row(obs, b) for b in range(len(obs["command"]))]


def stack_observations(rows: list[dict]) -> dict:
    """Inverse of `observation_rows`: per-scene observation dicts -> one batched dict."""
    def stack(trees):
        first = trees[0]
        return {k: stack([t[k] for t in trees]) for k in first} if isinstance(first, dict) else np.stack(trees)

    if not rows:
        raise ValueError("rows=[]: nothing to stack")
    return stack(rows)
