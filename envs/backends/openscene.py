"""Real NAVSIM data without nuplan-devkit: OpenScene log pickles, sensor blobs and nuPlan GPKG maps ->
the same `Scene`s the rest of roadloop uses, built the way NAVSIM builds its scenes and metric cache.

Folder layout, frame format and every reproduced quirk: docs/openscene.md. Sources (behaviour, not code):
navsim `common/dataclasses.py` (Scene/EgoStatus), `common/dataloader.py` (`filter_scenes`),
`planning/scenario_builder/navsim_scenario{,_utils}.py` (boxes -> global, lights), and
`planning/metric_caching/metric_cache_processor.py` (`_interpolate_gt_observation`, light expansion).
"""

from __future__ import annotations

import json
import os
import pickle
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from envs.backends.nuplan_map import load_nuplan_map, road_map_near
from envs.sim.map import RoadMap
from envs.sim.scene import (
    NUM_STEPS, STEP_S, AgentTracks, AgentType, Command, EgoHistory, LightStatus, Plan, Scene, TrafficLights,
)

CAMERA_NAMES = ("cam_f0", "cam_l0", "cam_l1", "cam_l2", "cam_r0", "cam_r1", "cam_r2", "cam_b0")
"""NAVSIM camera identifiers; the pickle's `cams` keys are their upper-case forms (CAM_F0, ...)."""
FRAME_INTERVAL_S = 0.5
"""OpenScene frames are 2 Hz (every 10th 20 Hz lidar sweep)."""
HUMAN_POSES = 8
"""Human trajectory: 8 poses at 0.5 s (NAVSIM HumanAgent's default 4 s sampling, and the v2 cache's)."""
LIGHT_HORIZON_S = 4.0
"""Traffic-light statuses cover 0..4 s (v2 `_interpolate_traffic_light_status`, proposal horizon)."""
MAP_LOCATION_ALIASES = {"las_vegas": "us-nv-las-vegas-strip"}
"""OpenScene `map_location` values NAVSIM renames before opening the map (`NavSimScenario`)."""
MAP_PATCH_MARGIN_M = 10.0
"""Loaded map patch = map_radius + this [m]: the scorer re-queries NAVSIM's patch around the ego *centre*
(1.461 m ahead of the rear axle) and route correction looks at neighbours of the edge roadblocks."""
_AGENT_LABELS = {t.label: t for t in AgentType}


@dataclass(frozen=True)
class OpenSceneConfig:
    """Where OpenScene data lives and how scenes are cut from its logs (NAVSIM SceneFilter semantics)."""

    data_root: str
    """$OPENSCENE_DATA_ROOT: holds navsim_logs/<split>/*.pkl and sensor_blobs/<split>/."""
    maps_root: str
    """$NUPLAN_MAPS_ROOT: holds <map_version>.json and <location>/<version>/map.gpkg."""
    split: str = "mini"
    """Log/sensor sub-folder (mini, trainval, test, navsim synthetic exports, ...)."""
    map_version: str = "nuplan-maps-v1.0"
    num_history_frames: int = 4
    """Frames up to and including the current one (2 Hz); the scene token is frame num_history_frames - 1."""
    num_future_frames: int = 8
    """Frames after the current one; >= 8 (4 s of human trajectory). NAVSIM v1 splits use 10."""
    frame_interval: int | None = None
    """Window stride in frames; None = num_history_frames + num_future_frames (non-overlapping), 1 = navtrain/navtest."""
    has_route: bool = True
    """Skip windows whose current frame has no roadblock_ids (NAVSIM's default filter)."""
    log_names: tuple[str, ...] | None = None
    """Only these logs (file stems); None = every *.pkl of the split."""
    map_radius: float = 100.0
    """[m] half side of the square map patch around the current rear axle (NAVSIM `map_radius`), plus
    MAP_PATCH_MARGIN_M; route roadblocks and their lanes are always loaded."""
    observation_horizon_s: float = 4.0
    """GT objects are interpolated over [0, this] s: 4.0 = NAVSIM v2 caching, 5.0 = v1.1 (needs 10 future
    frames; objects seen once in (4, 5] s are then copied into every step, as in v1.1)."""
    load_cameras: bool = False
    """Whether env backends read camera blobs (`load_camera_images`); `load_scenes` never reads images."""
    camera_names: tuple[str, ...] = CAMERA_NAMES

    def __post_init__(self):
        for name in ("data_root", "maps_root", "split", "map_version"):
            if not isinstance(getattr(self, name), (str, os.PathLike)) or not str(getattr(self, name)):
                raise ValueError(f"{name}={getattr(self, name)!r}: must be a non-empty path or name")
        if self.num_history_frames < 1:
            raise ValueError(f"num_history_frames={self.num_history_frames}: must be >= 1")
        if self.num_future_frames < HUMAN_POSES:
            raise ValueError(f"num_future_frames={self.num_future_frames}: must be >= {HUMAN_POSES} (4 s human trajectory)")
        if self.frame_interval is not None and self.frame_interval < 1:
            raise ValueError(f"frame_interval={self.frame_interval}: must be >= 1 or None")
        if self.observation_horizon_s not in (4.0, 5.0):
            raise ValueError(f"observation_horizon_s={self.observation_horizon_s}: must be 4.0 (v2) or 5.0 (v1.1)")
        if self.observation_horizon_s > self.num_future_frames * FRAME_INTERVAL_S:
            raise ValueError(f"observation_horizon_s={self.observation_horizon_s}: needs num_future_frames >= "
                             f"{round(self.observation_horizon_s / FRAME_INTERVAL_S)}, got {self.num_future_frames}")
        if not self.map_radius > 0:
            raise ValueError(f"map_radius={self.map_radius}: must be > 0")
        unknown = [c for c in self.camera_names if c not in CAMERA_NAMES]
        if unknown:
            raise ValueError(f"camera_names={unknown[0]!r}: unknown camera (valid: {', '.join(CAMERA_NAMES)})")

    @property
    def num_frames(self) -> int:
        return self.num_history_frames + self.num_future_frames

    @property
    def logs_dir(self) -> Path:
        return Path(self.data_root) / "navsim_logs" / self.split

    @property
    def sensor_dir(self) -> Path:
        return Path(self.data_root) / "sensor_blobs" / self.split

    @classmethod
    def from_env(cls, **overrides) -> "OpenSceneConfig":
        """Config from $OPENSCENE_DATA_ROOT, $NUPLAN_MAPS_ROOT and $NUPLAN_MAP_VERSION (read now)."""
        values = {"data_root": os.environ.get("OPENSCENE_DATA_ROOT", ""),
                  "maps_root": os.environ.get("NUPLAN_MAPS_ROOT", ""),
                  "map_version": os.environ.get("NUPLAN_MAP_VERSION", "nuplan-maps-v1.0")}
        return cls(**{**values, **overrides})


# --------------------------------------------------------------------------------------------
# Logs and scene windows
# --------------------------------------------------------------------------------------------

def _log_paths(config: OpenSceneConfig) -> list[Path]:
    logs_dir = config.logs_dir
    if not logs_dir.is_dir():
        raise ValueError(f"data_root={str(config.data_root)!r}: no log folder {logs_dir}")
    paths = sorted(logs_dir.glob("*.pkl"))  # sorted: NAVSIM's iterdir order is file-system dependent
    if config.log_names is not None:
        wanted = set(config.log_names)
        paths = [p for p in paths if p.stem in wanted]
    return paths


LOG_CACHE_SIZE = 4
"""Parsed log pickles kept in memory (scenes of one log are usually requested together)."""
_LOGS: OrderedDict[tuple[str, int, int], list[dict]] = OrderedDict()
_TOKEN_INDEX: dict[tuple, dict[str, tuple[Path, int]]] = {}


def _file_key(path: Path) -> tuple[str, int, int]:
    stat = path.stat()
    return str(path.resolve()), stat.st_size, stat.st_mtime_ns


def _read_log(path: Path) -> list[dict]:
    """The frames of one log pickle (small LRU cache keyed by path, size and mtime; never mutated)."""
    try:
        key = _file_key(path)
    except OSError as err:
        raise ValueError(f"{path}: cannot read the log pickle: {err}") from None
    if key in _LOGS:
        _LOGS.move_to_end(key)
        return _LOGS[key]
    try:
        with open(path, "rb") as f:
            frames = pickle.load(f)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, ValueError) as err:
        raise ValueError(f"{path}: cannot read the log pickle: {err}") from None
    if not isinstance(frames, list) or not all(isinstance(frame, dict) for frame in frames):
        raise ValueError(f"{path}: expected a list of frame dicts, got {type(frames).__name__}")
    _LOGS[key] = frames
    while len(_LOGS) > LOG_CACHE_SIZE:
        _LOGS.popitem(last=False)
    return frames


def _token_index(config: OpenSceneConfig) -> dict[str, tuple[Path, int]]:
    """Scene token -> (log, first frame of its window), in log then window order; built once per set of
    log files and window settings (every log is read once)."""
    paths = _log_paths(config)
    try:
        files = tuple(_file_key(p) for p in paths)
    except OSError as err:
        raise ValueError(f"{config.logs_dir}: cannot list the logs: {err}") from None
    key = (files, config.num_history_frames, config.num_frames, config.frame_interval, config.has_route)
    if key not in _TOKEN_INDEX:
        index: dict[str, tuple[Path, int]] = {}
        for path in paths:
            for token, start, _ in _windows(_read_log(path), config, path):
                index[token] = (path, start)
        _TOKEN_INDEX[key] = index
    return _TOKEN_INDEX[key]


def _windows(frames: list[dict], config: OpenSceneConfig, path: Path) -> Iterator[tuple[str, int, list[dict]]]:
    """(token, index of the first frame, frames) of every scene window of one log, as NAVSIM
    `filter_scenes` cuts them."""
    step = config.frame_interval or config.num_frames
    current = config.num_history_frames - 1
    for start in range(0, len(frames), step):
        window = frames[start:start + config.num_frames]
        if len(window) < config.num_frames:
            continue
        _require(window[current], ("token", "roadblock_ids"), path, start + current)
        if config.has_route and len(window[current]["roadblock_ids"]) == 0:
            continue
        yield str(window[current]["token"]), start, window


def _require(frame: dict, keys: Sequence[str], path: Path, index: int) -> None:
    for key in keys:
        if key not in frame:
            raise ValueError(f"{path}: frame {index}: missing key {key!r}")


def iter_scene_tokens(config: OpenSceneConfig) -> Iterator[str]:
    """Scene tokens of the split, log by log (sorted file names), in NAVSIM window order."""
    yield from list(_token_index(config))


def _scene_of(config: OpenSceneConfig, maps: "_MapIndex", path: Path, start: int) -> Scene:
    window = _read_log(path)[start:start + config.num_frames]
    return _scene_from_window(window, config, maps, path, start)


def load_scenes(config: OpenSceneConfig, tokens: Sequence[str] | None = None,
                max_scenes: int | None = None) -> list[Scene]:
    """Scenes of the split (all, or those with the given tokens, in that order), at most `max_scenes`.

    A requested token that no log holds is a ValueError naming it. With tokens, logs are found through
    a token index built once per split (so loading scenes one token at a time stays cheap).
    """
    if max_scenes is not None and max_scenes < 1:
        raise ValueError(f"max_scenes={max_scenes}: must be >= 1 or None")
    maps = _MapIndex(config)
    if tokens is not None:
        wanted = list(dict.fromkeys(str(t) for t in tokens))[:max_scenes]
        index = _token_index(config)
        missing = [t for t in wanted if t not in index]
        if missing:
            raise ValueError(f"tokens={missing[0]!r}: no scene with this token in {config.logs_dir}")
        return [_scene_of(config, maps, *index[t]) for t in wanted]
    scenes: list[Scene] = []
    for path in _log_paths(config):
        for _, start, window in _windows(_read_log(path), config, path):
            scenes.append(_scene_from_window(window, config, maps, path, start))
            if max_scenes is not None and len(scenes) >= max_scenes:
                return scenes
    return scenes


class _MapIndex:
    """Map location -> parsed GPKG, via <maps_root>/<map_version>.json (read once)."""

    def __init__(self, config: OpenSceneConfig):
        self._config = config
        self._versions: dict[str, Any] | None = None

    def road_map(self, location: str, center_xy: np.ndarray, radius: float, route: tuple[str, ...]) -> RoadMap:
        location = MAP_LOCATION_ALIASES.get(location, location)
        index_path = Path(self._config.maps_root) / f"{self._config.map_version}.json"
        if self._versions is None:
            try:
                self._versions = json.loads(index_path.read_text(encoding="utf-8"))
            except FileNotFoundError:
                raise ValueError(f"maps_root={str(self._config.maps_root)!r}: no map index {index_path}") from None
            except (OSError, json.JSONDecodeError) as err:
                raise ValueError(f"{index_path}: cannot read the map index: {err}") from None
        entry = self._versions.get(location) if isinstance(self._versions, dict) else None
        if not isinstance(entry, dict) or "version" not in entry:
            known = ", ".join(sorted(self._versions)) if isinstance(self._versions, dict) else ""
            raise ValueError(f"map_location={location!r}: not in {index_path} (known: {known})")
        gpkg = Path(self._config.maps_root) / location / str(entry["version"]) / "map.gpkg"
        return road_map_near(load_nuplan_map(gpkg), center_xy, radius, route)


# --------------------------------------------------------------------------------------------
# One window of frames -> Scene
# --------------------------------------------------------------------------------------------

_SCENE_KEYS = ("token", "timestamp", "map_location", "roadblock_ids", "ego2global_translation",
               "ego2global_rotation", "ego_dynamic_state", "driving_command", "traffic_lights", "anns")


def normalize_angle(angle: np.ndarray) -> np.ndarray:
    """Angle wrapped to [-pi, pi] the way NAVSIM does it: atan2(sin, cos) (numpy, any shape)."""
    return np.arctan2(np.sin(angle), np.cos(angle))


def quaternion_yaw(quaternion: np.ndarray) -> np.ndarray:
    """(..., 4) w, x, y, z -> yaw [rad] as pyquaternion's `yaw_pitch_roll[0]` (normalised first unless
    already unit within 1e-14): atan2(2(wz - xy), 1 - 2(y^2 + z^2))."""
    q = np.asarray(quaternion, np.float64)
    norm2 = (q * q).sum(axis=-1, keepdims=True)
    q = np.where(np.abs(1.0 - norm2) < 1e-14, q, q / np.sqrt(norm2))
    w, x, y, z = np.moveaxis(q, -1, 0)
    return np.arctan2(2 * (w * z - x * y), 1 - 2 * (y * y + z * z))


def _scene_from_window(frames: list[dict], config: OpenSceneConfig, maps: _MapIndex, path: Path,
                       first_index: int) -> Scene:
    """The Scene of one window of num_history_frames + num_future_frames frames (NAVSIM semantics);
    `first_index` is the window's position in the log (for error messages)."""
    for i, frame in enumerate(frames):
        _require(frame, _SCENE_KEYS, path, first_index + i)
    cur = config.num_history_frames - 1
    where = f"{path}: frame {frames[cur]['token']}"
    translation = np.array([np.asarray(f["ego2global_translation"], np.float64)[:2] for f in frames])
    yaw = quaternion_yaw(np.array([np.asarray(f["ego2global_rotation"], np.float64) for f in frames]))
    ego = np.concatenate([translation, yaw[:, None]], axis=1)  # (F, 3) global rear-axle poses
    timestamps = np.array([int(f["timestamp"]) for f in frames], dtype=np.int64)
    if np.any(np.diff(timestamps) <= 0):
        raise ValueError(f"{where}: timestamps are not increasing")
    # NAVSIM's EgoStatus stores velocity / acceleration as float32 (`_build_ego_status`), so the initial
    # state the LQR starts from carries float32 values.
    dynamics = np.array([np.asarray(f["ego_dynamic_state"], np.float64)[:4] for f in frames])
    dynamics = dynamics.astype(np.float32).astype(np.float64)
    history = EgoHistory(
        t=(timestamps[:cur + 1] - timestamps[cur]) / 1e6, pose=ego[:cur + 1],
        velocity=dynamics[:cur + 1, :2], acceleration=dynamics[:cur + 1, 2:],
    )
    route = tuple(str(r) for r in frames[cur]["roadblock_ids"])
    road_map = maps.road_map(str(frames[cur]["map_location"]), ego[cur, :2],
                             config.map_radius + MAP_PATCH_MARGIN_M, route)
    num_obs = round(config.observation_horizon_s / FRAME_INTERVAL_S) + 1
    objects = [frame_objects(frames[cur + j]["anns"], ego[cur + j], f"{where}: frame +{j}") for j in range(num_obs)]
    agents = interpolate_tracks(objects, config.observation_horizon_s)
    num_lights = round(LIGHT_HORIZON_S / FRAME_INTERVAL_S) + 1
    lights = traffic_light_tracks([frames[cur + j]["traffic_lights"] for j in range(num_lights)], road_map)
    relative = ego[cur + 1:cur + 1 + HUMAN_POSES] - ego[cur]
    cos, sin = np.cos(-ego[cur, 2]), np.sin(-ego[cur, 2])
    human = np.stack([relative[:, 0] * cos - relative[:, 1] * sin, relative[:, 0] * sin + relative[:, 1] * cos,
                      normalize_angle(relative[:, 2])], axis=1)
    return Scene(
        token=str(frames[cur]["token"]), map=road_map, route_roadblock_ids=route, history=history,
        agents=agents, traffic_lights=lights, command=driving_command(frames[cur]["driving_command"], where),
        human_trajectory=Plan(interval=FRAME_INTERVAL_S, poses=human),
    )


def driving_command(one_hot, where: str) -> Command:
    """OpenScene one-hot [left, straight, right, unknown] -> Command (all zeros -> UNKNOWN)."""
    vector = np.asarray(one_hot).reshape(-1)
    if vector.shape != (4,) or not np.isin(vector, (0, 1)).all() or vector.sum() > 1:
        raise ValueError(f"{where}: driving_command={vector.tolist()}: expected a 4-way one-hot")
    return Command(int(np.argmax(vector))) if vector.any() else Command.UNKNOWN


@dataclass(frozen=True)
class FrameObjects:
    """Annotated boxes of one frame in the global frame (N objects)."""

    track_tokens: tuple[str, ...]
    types: np.ndarray = field(metadata={"dims": "N"})
    size: np.ndarray = field(metadata={"dims": "N 2"})
    """Length, width [m]."""
    pose: np.ndarray = field(metadata={"dims": "N 3"})
    """Global box centre x, y [m], heading [rad]."""
    velocity: np.ndarray = field(metadata={"dims": "N 2"})
    """Global vx, vy [m/s]; zeros for static objects (NAVSIM keeps no velocity for them)."""


def frame_objects(anns: dict, ego_pose: np.ndarray, where: str) -> FrameObjects:
    """`anns` (ego-frame boxes) -> global boxes, as navsim `annotations_to_detection_tracks`: rotate the
    local x, y, yaw by the ego rear-axle heading, translate by its position; gt_velocity_3d (x, y) is
    treated as ego-frame and rotated the same way (OpenScene actually writes it in the lidar frame)."""
    for key in ("gt_boxes", "gt_names", "gt_velocity_3d", "track_tokens"):
        if key not in anns:
            raise ValueError(f"{where}: anns has no {key!r}")
    boxes = np.asarray(anns["gt_boxes"], np.float64).reshape(-1, 7)
    names = [str(n) for n in anns["gt_names"]]
    unknown = [n for n in names if n not in _AGENT_LABELS]
    if unknown:
        raise ValueError(f"{where}: gt_names={unknown[0]!r}: unknown object type (valid: {', '.join(_AGENT_LABELS)})")
    if not (len(names) == len(boxes) == len(anns["track_tokens"]) == len(anns["gt_velocity_3d"])):
        raise ValueError(f"{where}: anns lists have different lengths")
    tokens = tuple(str(t) for t in anns["track_tokens"])
    if len(set(tokens)) != len(tokens):
        raise ValueError(f"{where}: track_tokens repeat within one frame")
    types = np.array([_AGENT_LABELS[n] for n in names], dtype=np.int64)
    sin, cos = np.sin(ego_pose[2]), np.cos(ego_pose[2])
    x = boxes[:, 0] * cos - boxes[:, 1] * sin + ego_pose[0]
    y = boxes[:, 0] * sin + boxes[:, 1] * cos + ego_pose[1]
    heading = normalize_angle(normalize_angle(boxes[:, 6] + ego_pose[2]))  # rotate_state_se2, then the box
    local_v = np.asarray(anns["gt_velocity_3d"], np.float64).reshape(-1, 3)[:, :2]
    velocity = np.stack([local_v[:, 0] * cos - local_v[:, 1] * sin, local_v[:, 0] * sin + local_v[:, 1] * cos], axis=1)
    velocity[types > int(AgentType.BICYCLE)] = 0.0
    return FrameObjects(track_tokens=tokens, types=types,
                        size=boxes[:, 3:5].copy(), pose=np.stack([x, y, heading], axis=1), velocity=velocity)


def interpolate_tracks(frames: Sequence[FrameObjects], horizon_s: float) -> AgentTracks:
    """GT objects of the 2 Hz frames at t = 0, 0.5, ..., horizon_s -> AgentTracks over the 41 scored steps,
    exactly as NAVSIM `_interpolate_gt_observation` + `StateInterpolator`:

    - per track token, the (t, x, y, heading, vx, vy) samples are interpolated linearly (scipy interp1d's
      arithmetic) at t = k * 0.1, heading unwrapped first and wrapped with atan2(sin, cos) after;
    - a track exists at step k only within [first, last] sample time (`valid`); gaps in between are bridged;
    - a track seen in exactly one frame is copied unchanged into EVERY step (valid at all 41 steps, even
      before it appeared) — NAVSIM's quirk;
    - size and type come from the first sample; static objects carry zero velocity.
    horizon_s = 5.0 (v1.1) interpolates over 51 steps and keeps the first 41.
    """
    knots_t = np.arange(0, horizon_s / FRAME_INTERVAL_S + 1, 1, dtype=float) * FRAME_INTERVAL_S
    steps_t = np.arange(0, int(horizon_s / STEP_S) + 1, 1, dtype=float) * STEP_S
    if len(frames) != len(knots_t):
        raise ValueError(f"frames: expected {len(knots_t)} frames for a {horizon_s} s horizon, got {len(frames)}")
    order: dict[str, int] = {}
    for frame in frames:
        for token in frame.track_tokens:
            order.setdefault(token, len(order))
    A, F = len(order), len(frames)
    if A == 0:
        return AgentTracks.empty()
    # Per track, its samples compacted to the left (count[a] of them); padding repeats the last sample.
    times = np.full((A, F), np.inf)
    values = np.zeros((A, F, 5))
    count = np.zeros(A, np.int64)
    first_type, first_size = np.zeros(A, np.int64), np.zeros((A, 2))
    for j, frame in enumerate(frames):
        rows = np.array([order[t] for t in frame.track_tokens], dtype=np.int64)
        is_new = count[rows] == 0
        first_type[rows[is_new]], first_size[rows[is_new]] = frame.types[is_new], frame.size[is_new]
        times[rows, count[rows]] = knots_t[j]
        values[rows, count[rows]] = np.concatenate([frame.pose, frame.velocity], axis=1)
        count[rows] += 1
    last = count - 1
    pad = np.arange(F)[None, :] > last[:, None]
    values = np.where(pad[..., None], values[np.arange(A), last][:, None, :], values)
    values[..., 2] = np.unwrap(values[..., 2], axis=1)
    start, end = times[:, 0], times[np.arange(A), last]
    valid = (start[:, None] <= steps_t[None, :]) & (steps_t[None, :] <= end[:, None])       # (A, K)
    # scipy interp1d linear: hi = searchsorted(x, t, 'left') clipped to [1, n - 1], lo = hi - 1,
    # y = (y_hi - y_lo) / (x_hi - x_lo) * (t - x_lo) + y_lo.
    hi = (times[:, None, :] < steps_t[None, :, None]).sum(axis=-1)
    hi = np.clip(hi, 1, np.maximum(last, 1)[:, None])
    lo = hi - 1
    track = np.arange(A)[:, None]
    x_lo, x_hi = times[track, lo], times[track, hi]
    y_lo, y_hi = values[track, lo], values[track, hi]
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = (y_hi - y_lo) / (x_hi - x_lo)[..., None]
        state = slope * (steps_t[None, :] - x_lo)[..., None] + y_lo                          # (A, K, 5)
    state[..., 2] = normalize_angle(state[..., 2])
    once = count == 1
    state[once] = values[once, :1]  # the first (only) sample as stored: NAVSIM appends the original object
    valid[once] = True
    state = np.where(valid[..., None], state, 0.0)[:, :NUM_STEPS]
    return AgentTracks(ids=tuple(order), types=first_type, size=first_size, pose=state[..., :3].copy(),
                       velocity=state[..., 3:].copy(), valid=valid[:, :NUM_STEPS].copy())


def traffic_light_tracks(frame_lights: Sequence[list], road_map: RoadMap) -> TrafficLights:
    """Per-frame [(lane_connector_id, is_red), ...] at 0, 0.5, ..., 4 s -> statuses over the 41 steps.

    As NAVSIM: is_red -> RED, else GREEN (OpenScene's is_red is nuPlan status == RED, so yellow and
    unknown lights read back GREEN); each 0.5 s frame covers the 5 steps from its time (step k uses
    frame k // 5); a connector absent from a frame is UNKNOWN there. Lights on connectors that are not in
    `road_map` (outside the loaded patch and off the route) are dropped: they can never be scored.
    """
    connectors = {lane.id for lane in road_map.lane_connectors}
    ids: dict[str, int] = {}
    for lights in frame_lights:
        for entry in lights:
            cid = str(int(entry[0])) if isinstance(entry[0], (int, np.integer)) else str(entry[0])
            if cid in connectors:
                ids.setdefault(cid, len(ids))
    status = np.full((len(ids), len(frame_lights)), int(LightStatus.UNKNOWN), dtype=np.int64)
    for j, lights in enumerate(frame_lights):
        for entry in lights:
            cid = str(int(entry[0])) if isinstance(entry[0], (int, np.integer)) else str(entry[0])
            if cid in ids:
                status[ids[cid], j] = int(LightStatus.RED if bool(entry[1]) else LightStatus.GREEN)
    per_step = np.repeat(status, round(FRAME_INTERVAL_S / STEP_S), axis=1)[:, :NUM_STEPS]
    return TrafficLights(lane_connector_ids=tuple(ids), status=per_step)


# --------------------------------------------------------------------------------------------
# Camera images
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CameraImage:
    """One camera frame with its calibration (OpenScene `cams` entry)."""

    image: np.ndarray = field(metadata={"dims": "H W 3"})
    """RGB uint8."""
    intrinsics: np.ndarray = field(metadata={"dims": "3 3"})
    sensor2lidar_rotation: np.ndarray = field(metadata={"dims": "3 3"})
    sensor2lidar_translation: np.ndarray = field(metadata={"dims": "3"})
    distortion: np.ndarray = field(metadata={"dims": "D"})


def load_camera_images(config: OpenSceneConfig, token: str, camera_names: Sequence[str] | None = None,
                       history_index: int = -1) -> dict[str, CameraImage]:
    """Camera images of scene `token` at history frame `history_index` (-1 = current), read from
    sensor_blobs/<split>/<data_path> with cv2 and converted to RGB (NAVSIM reads them with PIL)."""
    import cv2  # heavy; only camera users pay for it

    names = tuple(config.camera_names if camera_names is None else camera_names)
    unknown = [c for c in names if c not in CAMERA_NAMES]
    if unknown:
        raise ValueError(f"camera_names={unknown[0]!r}: unknown camera (valid: {', '.join(CAMERA_NAMES)})")
    if not -config.num_history_frames <= history_index < config.num_history_frames:
        raise ValueError(f"history_index={history_index}: must index the {config.num_history_frames} history frames")
    located = _token_index(config).get(str(token))
    if located is None:
        raise ValueError(f"token={token!r}: no scene with this token in {config.logs_dir}")
    path, start = located
    frame = _read_log(path)[start:start + config.num_history_frames][history_index]
    _require(frame, ("cams",), path, start + history_index % config.num_history_frames)
    out = {}
    for name in names:
        cam = frame["cams"].get(name.upper())
        if not cam or "data_path" not in cam:
            raise ValueError(f"{path}: frame {frame.get('token')}: no camera {name.upper()!r}")
        image_path = config.sensor_dir / str(cam["data_path"])
        image = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"{image_path}: cannot read the camera image")
        out[name] = CameraImage(
            image=cv2.cvtColor(image, cv2.COLOR_BGR2RGB),
            intrinsics=np.asarray(cam["cam_intrinsic"], np.float64),
            sensor2lidar_rotation=np.asarray(cam["sensor2lidar_rotation"], np.float64),
            sensor2lidar_translation=np.asarray(cam["sensor2lidar_translation"], np.float64),
            distortion=np.asarray(cam["distortion"], np.float64),
        )
    return out
