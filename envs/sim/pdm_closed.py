"""PDM-Closed, NAVSIM's privileged rule-based planner, batched over scenes (spec navsim.md §1.11).

Per scene: 3 lateral paths (the route centerline and its +-1 m offsets) x 5 IDM target speeds = 15
proposals, unrolled against a constant-velocity forecast of the current objects and the red lights of
on-route connectors, simulated with the LQR tracker, scored with NAVSIM v1.1 semantics; the best one
is extended to 5 s. Reproduces navsim `pdm_planner/{pdm_closed_planner,abstract_pdm_closed_planner}.py`,
`proposal/{pdm_generator,batch_idm_policy}.py` and `observation/{pdm_observation,pdm_object_manager}.py`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor
from torch.nn.functional import pad

from envs.metrics.collision import no_at_fault_collision
from envs.metrics.comfort import comfort_v1
from envs.metrics.context import (
    MapContext, Observation, SceneRoute, build_map_context, ego_center_xy, pad_rings, scene_route,
)
from envs.metrics.direction import driving_direction_compliance
from envs.metrics.drivable_area import drivable_area_compliance
from envs.metrics.ego_areas import ego_areas, ego_footprint
from envs.metrics.pdms import SubScores, pdm_score
from envs.metrics.progress import normalized_progress, raw_progress
from envs.metrics.ttc import time_to_collision
from envs.sim.corridor import box_ring_distance, box_within_rings, path_corridor, polygons_near_corridor
from envs.sim.dynamics import EgoStates, initial_ego_state
from envs.sim.geometry import box_corners, boxes_intersect, polyline_project, to_local
from envs.sim.idm import PDM_CLOSED_IDM, IDMParams, idm_accel
from envs.sim.lqr import lqr_track
from envs.sim.route import centerline_lane_ids, lane_path_poses, path_pose_at, path_project
from envs.sim.scene import AgentType, LightStatus, Plan, Scene

MAX_OBJECTS = {AgentType.VEHICLE: 50, AgentType.PEDESTRIAN: 25, AgentType.BICYCLE: 10}
"""Nearest dynamic objects kept per type (`PDMObjectManager.MAX_DYNAMIC_OBJECTS`)."""
MAX_STATIC_OBJECTS = 50
"""Nearest static objects kept (`MAX_STATIC_OBJECTS`)."""


@dataclass(frozen=True)
class PDMClosedConfig:
    """PDM-Closed settings; defaults are NAVSIM's metric-caching planner (`MetricCacheProcessor`)."""

    lateral_offsets: tuple[float, ...] = (0.0, -1.0, 1.0)
    """[m] Lateral path offsets (left positive) in proposal order: the centerline, then -1 m and +1 m."""
    speed_fractions: tuple[float, ...] = (0.2, 0.4, 0.6, 0.8, 1.0)
    """IDM target speeds as fractions of the starting lane's speed limit, in proposal order."""
    fallback_speed: float = 15.0
    """[m/s] Speed limit used when the starting lane has none (`fallback_target_velocity`)."""
    idm: IDMParams = PDM_CLOSED_IDM
    """IDM constants (its target speed is replaced per proposal)."""
    proposal_steps: int = 40
    """Proposal poses after t = 0 (4 s at dt), simulated and scored."""
    output_steps: int = 50
    """Poses of the chosen trajectory after t = 0 (5 s at dt)."""
    dt: float = 0.1
    """[s] Step of proposals, output and IDM integration."""
    map_radius: float = 100.0
    """[m] Objects farther than this from the ego box centre are ignored."""
    lead_update_every: int = 2
    """The leading object is searched every this many steps and held in between."""
    forecast_every: int = 2
    """The constant-velocity forecast is sampled every this many steps; step k reads sample k // this."""

    def __post_init__(self):
        if not self.lateral_offsets or not all(math.isfinite(o) for o in self.lateral_offsets):
            raise ValueError(f"lateral_offsets={self.lateral_offsets!r}: need at least one finite offset [m]")
        if not self.speed_fractions or not all(math.isfinite(f) and f > 0 for f in self.speed_fractions):
            raise ValueError(f"speed_fractions={self.speed_fractions!r}: need positive finite fractions")
        for name in ("fallback_speed", "dt", "map_radius"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name}={value!r}: must be a positive finite number")
        for name in ("proposal_steps", "output_steps", "lead_update_every", "forecast_every"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value > 0):
                raise ValueError(f"{name}={value!r}: must be a positive integer")
        if self.output_steps < self.proposal_steps:
            raise ValueError(
                f"output_steps={self.output_steps!r}: must be >= proposal_steps={self.proposal_steps}"
            )

    @property
    def num_proposals(self) -> int:
        """G = paths x speeds."""
        return len(self.lateral_offsets) * len(self.speed_fractions)


@dataclass(frozen=True)
class PlanResult:
    """PDM-Closed output for B scenes with G proposals each."""

    plans: tuple[Plan, ...]
    """Chosen trajectory per scene in its ego frame: interval dt, `output_steps` poses (t = dt .. 5 s)."""
    trajectory: Tensor = field(metadata={"dims": "B H 3"})
    """Chosen trajectory, global rear-axle poses at t = 0 .. 5 s (H = output_steps + 1). Pose 0 is the
    ego's projection onto the path, not the ego pose: this is NAVSIM's cached `MetricCache.trajectory`,
    and the pose sequence its scorer re-simulates (sample [:, :41])."""
    proposals: Tensor = field(metadata={"dims": "B G T 3"})
    """IDM proposals, global poses at t = 0 .. 4 s; g = path * speeds + speed."""
    simulated: EgoStates
    """(B, G, T) LQR + bicycle re-simulation of the proposals."""
    sub_scores: SubScores
    """(B, G) sub-scores against the forecast (EP normalised over the G proposals of a scene)."""
    scores: Tensor = field(metadata={"dims": "B G"})
    """PDMS v1.1 of every proposal."""
    chosen: Tensor = field(metadata={"dims": "B"})
    """Index of the best proposal (first on ties)."""


def pdm_closed_plan(
    scenes: list[Scene], config: PDMClosedConfig = PDMClosedConfig(), routes: list[SceneRoute] | None = None,
    device=None,
) -> PlanResult:
    """Plan B scenes at once: build, unroll, simulate and score G proposals each, extend the best.

    `routes` (from `envs.metrics.context.scene_route`) may be passed to avoid recomputing them. All
    scenes must share one ego vehicle. Raises ValueError for a scene whose route has no lane.
    """
    if not scenes:
        raise ValueError("scenes=[]: nothing to plan")
    vehicles = {s.vehicle for s in scenes}
    if len(vehicles) > 1:
        raise ValueError(f"scenes: {len(vehicles)} different ego vehicles in one batch; plan them separately")
    vehicle = scenes[0].vehicle
    routes = routes if routes is not None else [scene_route(s) for s in scenes]
    if len(routes) != len(scenes):
        raise ValueError(f"routes: got {len(routes)} for {len(scenes)} scenes")
    device = torch.device(device) if device is not None else torch.device("cpu")
    setup = _setup(scenes, routes, config, device)

    # --- unroll the IDM proposals along their paths ---
    num_paths, num_speeds = len(config.lateral_offsets), len(config.speed_fractions)
    path_of = torch.arange(num_paths, device=device).repeat_interleave(num_speeds)     # (G,)
    fractions = torch.tensor(config.speed_fractions, dtype=torch.float64, device=device)
    target = setup.speed_limit[:, None] * fractions.repeat(num_paths)                     # (B, G)
    roll = _Rollout.start(setup, path_of, target)
    for step in range(1, config.proposal_steps + 1):
        roll = roll.advance(setup, step, config, vehicle, group=num_speeds)
    proposals = torch.stack(roll.poses, dim=2)                                           # (B, G, T, 3)

    # --- simulate and score (NAVSIM v1.1 PDMScorer over the G proposals) ---
    initial = EgoStates(**{name: value[:, None] for name, value in vars(setup.initial).items()})  # (B, 1, 1)
    simulated = lqr_track(proposals, initial, vehicle)
    map_ctx = build_map_context(scenes, routes, device=device)
    sub_scores = _score(simulated, setup.observation, map_ctx, vehicle)
    scores = pdm_score(sub_scores)
    chosen = scores.argmax(dim=-1)

    # --- extend the chosen proposal to the output horizon (`generate_trajectory`) ---
    rows = torch.arange(len(scenes), device=device)
    best = roll.select(rows, chosen)
    for step in range(config.proposal_steps + 1, config.output_steps + 1):
        best = best.advance(setup, step, config, vehicle, group=1)
    trajectory = torch.stack(best.poses, dim=2)[:, 0]                                    # (B, H, 3)
    local = to_local(trajectory[:, 1:], setup.origin[:, None])
    plans = tuple(Plan(interval=config.dt, poses=local[b].cpu().numpy()) for b in range(len(scenes)))
    return PlanResult(plans, trajectory, proposals, simulated, sub_scores, scores, chosen)


# --------------------------------------------------------------------------------------------
# Per-scene set-up: paths, forecast, corridors
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Setup:
    """Batched planner inputs (B scenes, L paths, P path vertices, A boxes, R red lights)."""

    origin: Tensor        # (B, 3) ego rear-axle pose
    initial: EgoStates    # (B, 1) logged ego state
    speed_limit: Tensor   # (B,) [m/s]
    path_xy: Tensor       # (B, L, P, 2)
    path_heading: Tensor  # (B, L, P) unwrapped [rad]
    path_progress: Tensor  # (B, L, P) arc length, padding repeats the last value
    path_valid: Tensor    # (B, L, P) bool prefix
    path_count: Tensor    # (B, L) long
    start_progress: Tensor  # (B, L) ego rear axle projected on each path [m]
    corridor: Tensor      # (B, L, S, 2) polyline the driving corridor buffers
    corridor_valid: Tensor  # (B, L, S)
    corridor_caps: Tensor  # (B, L, 2, 4, 2) square end caps (or the whole square of a point corridor)
    half_width: float     # [m] corridor half width = ego half width
    box_corners: Tensor   # (B, A, 4, 2) objects at t = 0
    box_center: Tensor    # (B, A, 2) box centres at t = 0
    box_velocity: Tensor  # (B, A, 2) forecast velocity [m/s]
    box_valid: Tensor     # (B, A) kept and not overlapping the ego at t = 0
    box_speed: Tensor     # (B, A) |v| at t = 0 (0 for static objects)
    box_heading: Tensor   # (B, A) heading at t = 0
    box_is_agent: Tensor  # (B, A)
    red_polygon: Tensor   # (B, R, V, 2)
    red_vertex_valid: Tensor  # (B, R, V)
    red_valid: Tensor     # (B, R) red, on the corrected route, ego not inside
    red_centroid: Tensor  # (B, R, 2)
    observation: Observation  # forecast for scoring, steps 0 .. output_steps

    def forecast_time(self, step: int, config: PDMClosedConfig) -> float:
        """[s] time of the forecast sample that step `step` reads (`PDMObservation.__getitem__`)."""
        return (step // config.forecast_every) * config.forecast_every * config.dt


def _setup(scenes: list[Scene], routes: list[SceneRoute], config: PDMClosedConfig, device) -> _Setup:
    per_scene = [_scene_inputs(scene, route, config) for scene, route in zip(scenes, routes)]
    vehicle, f64 = scenes[0].vehicle, dict(dtype=torch.float64, device=device)
    num_paths = len(config.lateral_offsets)

    path, path_valid = _pad([s["paths"].transpose(1, 0, 2) for s in per_scene], device, repeat_last=True)
    path, path_valid = path.transpose(1, 2), path_valid[:, None].expand(-1, num_paths, -1)   # (B, L, P, 3)
    delta = path[..., 1:, :2] - path[..., :-1, :2]
    step = torch.sqrt((delta * delta).sum(-1))                     # np.linalg.norm, as `calculate_progress`
    progress = torch.cat([torch.zeros_like(step[..., :1]), torch.cumsum(step, -1)], -1)
    corridor, corridor_valid = _pad([line for s in per_scene for line in s["corridors"]], device, repeat_last=True)
    corridor = corridor.reshape(len(scenes), num_paths, -1, 2)
    corridor_valid = corridor_valid.reshape(len(scenes), num_paths, -1)
    caps = torch.as_tensor(np.stack([s["caps"] for s in per_scene]), **f64)

    # boxes: corners (8), centre (2), velocity (2), speed, heading, is_agent per row
    box, box_valid = _pad([s["boxes"] for s in per_scene], device)
    corners, center, velocity = box[..., :8].reshape(*box.shape[:2], 4, 2), box[..., 8:10], box[..., 10:12]
    origin = torch.as_tensor(np.stack([s.ego_pose for s in scenes]), **f64)
    ego_box, _ = ego_footprint(origin, vehicle)                                              # (B, 4, 2)
    # Objects touching the ego at t = 0 are NAVSIM's "collided tracks": out of the lead search and scoring.
    box_valid &= ~boxes_intersect(ego_box[:, None], corners)

    flat, flat_valid = pad_rings([ring for s in per_scene for ring in s["red_rings"]] or [np.zeros((3, 2))])
    counts = np.cumsum([0] + [len(s["red_rings"]) for s in per_scene])
    red_polygon, red_valid = _pad([flat[a:b].numpy() for a, b in zip(counts[:-1], counts[1:])], device)
    red_vertex_valid, _ = _pad([flat_valid[a:b].numpy() for a, b in zip(counts[:-1], counts[1:])], device)
    red_vertex_valid = red_vertex_valid.bool() & red_valid[..., None]
    red_centroid, _ = _pad([np.reshape(s["red_centroids"], (-1, 2)) for s in per_scene], device)
    red_valid &= ~box_within_rings(ego_box, red_polygon, red_vertex_valid)

    hist = [s.history for s in scenes]
    initial = initial_ego_state(origin, torch.as_tensor(np.stack([h.velocity[-1] for h in hist]), **f64),
                                torch.as_tensor(np.stack([h.acceleration[-1] for h in hist]), **f64))
    is_agent = box[..., 14] > 0
    observation = _forecast_observation(corners, center, velocity, box_valid, box[..., 12], box[..., 13], is_agent,
                                        red_polygon, red_vertex_valid, red_valid, config)
    half_width = vehicle.width / 2
    return _Setup(
        origin=origin, initial=initial, speed_limit=torch.as_tensor([s["speed_limit"] for s in per_scene], **f64),
        path_xy=path[..., :2], path_heading=path[..., 2], path_progress=progress, path_valid=path_valid,
        path_count=path_valid.sum(-1), start_progress=torch.as_tensor(np.stack([s["start"] for s in per_scene]), **f64),
        corridor=corridor, corridor_valid=corridor_valid, corridor_caps=caps, half_width=half_width,
        box_corners=corners, box_center=center, box_velocity=velocity, box_valid=box_valid, box_speed=box[..., 12],
        box_heading=box[..., 13], box_is_agent=is_agent, red_polygon=red_polygon, red_vertex_valid=red_vertex_valid,
        red_valid=red_valid, red_centroid=red_centroid, observation=observation,
    )


def _pad(arrays: list[np.ndarray], device, repeat_last: bool = False) -> tuple[Tensor, Tensor]:
    """Stack arrays (N_i, ...) into float64 (B, N, ...) plus a prefix mask (B, N); padding is 0 or the last row."""
    width = max([len(a) for a in arrays] + [1])
    tail = next((a.shape[1:] for a in arrays if len(a)), arrays[0].shape[1:])
    out = torch.zeros(len(arrays), width, *tail, dtype=torch.float64, device=device)
    valid = torch.zeros(len(arrays), width, dtype=torch.bool, device=device)
    for b, array in enumerate(arrays):
        if len(array):
            out[b, : len(array)] = torch.as_tensor(np.asarray(array, np.float64), device=device)
            valid[b, : len(array)] = True
            if repeat_last:
                out[b, len(array):] = out[b, len(array) - 1]
    return out, valid


def _scene_inputs(scene: Scene, route: SceneRoute, config: PDMClosedConfig) -> dict:
    """Numpy inputs of one scene: paths, corridors, speed limit, kept objects, red lights."""
    if route.start_lane is None:
        raise ValueError(f"scene {scene.token!r}: route_roadblock_ids={scene.route_roadblock_ids!r} give no "
                         "route lane; PDM-Closed needs one (NAVSIM keeps only scenes with a route)")
    road_map = scene.map
    centerline = lane_path_poses(road_map, centerline_lane_ids(road_map, route.corrected_ids, route.start_lane))
    heading = np.unwrap(centerline[:, 2])
    normal = np.stack([np.cos(centerline[:, 2] + math.pi / 2), np.sin(centerline[:, 2] + math.pi / 2)], -1)
    paths = np.stack([np.concatenate([centerline[:, :2] + offset * normal, heading[:, None]], -1)
                      for offset in config.lateral_offsets])
    limit = road_map.lanes_by_id[route.start_lane].speed_limit
    speed_limit = config.fallback_speed if limit is None else float(limit)

    ego = scene.ego_pose
    start = np.array([path_project(p[:, :2], ego[None, :2])[0] for p in paths])  # shapely `project`
    reach = max(config.speed_fractions) * speed_limit * config.output_steps * config.dt
    half_width = scene.vehicle.width / 2
    corridors, caps = zip(*(path_corridor(p[:, :2], s, s + reach, half_width) for p, s in zip(paths, start)))

    # current objects, nearest first per category (`PDMObjectManager`)
    agents = scene.agents
    now = agents.valid[:, 0] if agents.num_agents else np.zeros(0, bool)
    center = ego_center_xy(scene)
    distance = np.hypot(*(agents.pose[:, 0, :2] - center).T) if agents.num_agents else np.zeros(0)
    near = now & (distance <= config.map_radius)
    types = agents.types
    chosen = []
    static = near & (types > int(AgentType.BICYCLE))
    chosen.append(np.flatnonzero(static)[np.argsort(distance[static])][:MAX_STATIC_OBJECTS])
    for kind, limit_count in MAX_OBJECTS.items():
        mask = near & (types == int(kind))
        chosen.append(np.flatnonzero(mask)[np.argsort(distance[mask])][:limit_count])
    index = np.concatenate(chosen).astype(np.int64)
    pose0 = agents.pose[index, 0]
    corners = box_corners(torch.as_tensor(pose0[:, :2]), torch.as_tensor(pose0[:, 2]),
                          torch.as_tensor(agents.size[index, 0]), torch.as_tensor(agents.size[index, 1])).numpy()
    is_agent = types[index] <= int(AgentType.BICYCLE)
    velocity = agents.velocity[index, 0]
    speed = np.where(is_agent, np.hypot(velocity[:, 0], velocity[:, 1]), 0.0)
    # agents move along their heading, or against it when the velocity points backwards
    backward = np.abs(_wrap(pose0[:, 2] - np.arctan2(velocity[:, 1], velocity[:, 0]))) >= math.pi / 2
    track_heading = np.where(backward, _wrap(pose0[:, 2] + math.pi), pose0[:, 2])
    dxy = speed[:, None] * np.stack([np.cos(track_heading), np.sin(track_heading)], -1)   # 0 for static objects

    # red lights of connectors on the CORRECTED route, status at t = 0 (`_get_traffic_light_geometries`)
    lights = scene.traffic_lights
    rings, centroids = [], []
    for i, lane_id in enumerate(lights.lane_connector_ids):
        on_route = lane_id in route.lane_ids and lane_id in road_map.lanes_by_id
        if on_route and lights.status[i, 0] == int(LightStatus.RED):
            ring = np.asarray(road_map.lanes_by_id[lane_id].polygon, np.float64)
            rings.append(ring)
            centroids.append(_ring_centroid(ring))
    columns = [corners.reshape(-1, 8), pose0[:, :2], dxy, speed[:, None], pose0[:, 2:3], is_agent[:, None]]
    boxes = np.concatenate(columns, axis=1)
    return dict(paths=paths, start=start, corridors=corridors, caps=np.stack(caps), speed_limit=speed_limit,
                boxes=boxes, red_rings=rings, red_centroids=np.array(centroids))


def _wrap(angle: np.ndarray) -> np.ndarray:
    """NAVSIM `normalize_angle`: atan2(sin, cos)."""
    return np.arctan2(np.sin(angle), np.cos(angle))


def _ring_centroid(ring: np.ndarray) -> np.ndarray:
    """Area centroid of a polygon ring (shapely `centroid`)."""
    rel = ring - ring[0]
    nxt = np.roll(rel, -1, axis=0)
    cross = rel[:, 0] * nxt[:, 1] - nxt[:, 0] * rel[:, 1]
    area = cross.sum() / 2
    if area == 0:
        return ring.mean(axis=0)
    return ring[0] + ((rel + nxt) * cross[:, None]).sum(0) / (6 * area)


def _forecast_observation(corners0, center0, velocity, valid, speed, heading, is_agent, red_polygon,
                          red_vertex_valid, red_valid, config: PDMClosedConfig) -> Observation:
    """Constant-velocity forecast as the scorer reads it: step k holds the sample at k // 2 (0.2 s)."""
    steps = torch.arange(config.output_steps + 1, device=corners0.device)
    times = (steps // config.forecast_every * config.forecast_every).to(torch.float64) * config.dt    # (T,)
    shift = times[None, :, None, None] * velocity[:, None]                                           # (B, T, A, 2)
    corners = corners0[:, None] + shift[..., None, :]
    num_steps = len(steps)
    return Observation(
        corners=corners,
        center=center0[:, None] + shift,
        valid=valid[:, None].expand(-1, num_steps, -1),
        first_heading=heading,
        first_speed=speed,
        is_agent=is_agent,
        red_light_polygons=red_polygon,
        red_light_vertex_valid=red_vertex_valid,
        red_light_active=red_valid[:, None].expand(-1, num_steps, -1),
    )


# --------------------------------------------------------------------------------------------
# IDM rollout with the leading-object search (`PDMGenerator`)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Rollout:
    """State of N proposals per scene: path index (N,), IDM progress / speed, held lead, poses so far."""

    path_of: Tensor       # (B, N) long
    path: tuple[Tensor, Tensor, Tensor, Tensor]  # xy (B, N, P, 2), heading, arc (B, N, P), count (B, N) of path_of
    target: Tensor        # (B, N) [m/s]
    progress: Tensor      # (B, N) [m]
    speed: Tensor         # (B, N) [m/s]
    lead: Tensor          # (B, N, 3) progress, speed, rear length of the leading object
    poses: list[Tensor]   # per step (B, N, 3) global, heading wrapped

    @classmethod
    def start(cls, setup: _Setup, path_of: Tensor, target: Tensor) -> _Rollout:
        path_of = path_of.expand(target.shape)
        batch = torch.arange(target.shape[0], device=target.device)[:, None]
        path = (setup.path_xy[batch, path_of], setup.path_heading[batch, path_of], setup.path_progress[batch, path_of],
                setup.path_count[batch, path_of])
        progress = setup.start_progress.gather(1, path_of)
        speed = setup.initial.velocity[:, 0, :1].expand_as(progress)
        lead = torch.zeros(*progress.shape, 3, dtype=progress.dtype, device=progress.device)
        return cls(path_of, path, target, progress, speed.clone(), lead, [_path_pose(path, progress)])

    def select(self, rows: Tensor, index: Tensor) -> _Rollout:
        """Keep proposal index[b] of every scene b (N becomes 1)."""
        take = lambda t: t[rows, index][:, None]  # noqa: E731
        return _Rollout(take(self.path_of), tuple(take(t) for t in self.path), take(self.target), take(self.progress),
                        take(self.speed), take(self.lead), [take(p) for p in self.poses])

    def advance(self, setup: _Setup, step: int, config: PDMClosedConfig, vehicle, group: int) -> _Rollout:
        """One IDM step to `step`: refresh the lead on update steps, integrate, place on the path.

        `group` is how many consecutive proposals NAVSIM handles in one `_update_leading_agents` call
        (the speeds of one path); their lead entries leak into each other there (see `_leads`).
        """
        path_of = self.path_of
        if step % config.lead_update_every == 0:
            lead = _leads(setup, path_of, self.progress, self.poses[-1], step, config, vehicle, group)
        elif step == 1:
            lead = torch.zeros_like(self.lead)  # NAVSIM copies the never-filled t = 0 entry: a lead at 0 m
        else:
            lead = self.lead
        gap = lead[..., 0] - self.progress - lead[..., 2]
        accel = idm_accel(self.speed, self.target, gap, lead[..., 1], config.idm)
        accel = accel.clamp(-config.idm.decel_max, config.idm.accel_max)
        progress = self.progress + config.dt * self.speed
        speed = self.speed + config.dt * accel
        pose = _path_pose(self.path, progress)
        return _Rollout(path_of, self.path, self.target, progress, speed, lead, self.poses + [pose])


def _path_pose(path: tuple[Tensor, Tensor, Tensor, Tensor], s: Tensor) -> Tensor:
    """(B, N, 3) poses at arc lengths s (B, N) on each proposal's path (`PDMPath.interpolate`)."""
    xy, heading, arc, count = path
    return path_pose_at(xy, heading, arc, count, s[..., None])[..., 0, :]


def _leads(setup: _Setup, path_of: Tensor, ego_progress: Tensor, ego_pose: Tensor, step: int,
           config: PDMClosedConfig, vehicle, group: int) -> Tensor:
    """Leading object of every proposal (B, N, 3): progress, speed along the ego, rear length.

    NAVSIM `_update_leading_agents`: objects (boxes at the forecast of this step, red lights) touching
    the path's corridor and not overlapping the ego at t = 0, whose centroid projects ahead of the
    proposal's progress; the one nearest to the ego box at the previous pose leads, at progress =
    ego progress + that distance. Without one the path end leads (rear length = half ego length).
    NAVSIM reuses one buffer across the proposals of a call, so a proposal inherits the speed written
    by an earlier one whose lead was not a red light, and the rear length of an earlier free one.
    """
    B, N = ego_progress.shape
    t = setup.forecast_time(step, config)
    boxes = setup.box_corners + t * setup.box_velocity[:, :, None, :]                     # (B, A, 4, 2)
    num_boxes, num_vertices = boxes.shape[1], max(4, setup.red_polygon.shape[2])
    # every object as a padded polygon (B, K, V, 2), K = boxes then red lights; dropped ones have no vertex
    extra = num_vertices - setup.red_polygon.shape[2]
    poly = torch.cat([pad(boxes, (0, 0, 0, num_vertices - 4)), pad(setup.red_polygon, (0, 0, 0, extra))], 1)
    vertex = torch.arange(num_vertices, device=boxes.device)
    poly_valid = torch.cat([setup.box_valid[..., None] & (vertex < 4),
                            pad(setup.red_vertex_valid, (0, extra)) & setup.red_valid[..., None]], 1)
    in_corridor = polygons_near_corridor(poly, poly_valid, setup.corridor, setup.corridor_valid,
                                         setup.corridor_caps, setup.half_width)           # (B, L, K)
    centroid = torch.cat([setup.box_center + t * setup.box_velocity, setup.red_centroid], dim=1)  # (B, K, 2)
    object_progress = _project_pairs(setup, centroid, in_corridor)                       # (B, L, K)

    batch = torch.arange(B, device=ego_progress.device)[:, None]
    ahead = in_corridor[batch, path_of] & (object_progress[batch, path_of] > ego_progress[..., None])  # (B, N, K)
    ego_box, _ = ego_footprint(ego_pose, vehicle)                                             # (B, N, 4, 2)
    distance = torch.full(ahead.shape, math.inf, dtype=torch.float64, device=ahead.device)
    b, n, k = ahead.nonzero(as_tuple=True)
    distance[b, n, k] = box_ring_distance(ego_box[b, n], poly[b, k], poly_valid[b, k])
    has_ahead = ahead.any(dim=-1)
    nearest = distance.argmin(dim=-1)                                                    # first on ties
    nearest_distance = distance.gather(-1, nearest[..., None])[..., 0]
    is_red = nearest >= num_boxes
    box_index = nearest.clamp(max=num_boxes - 1)
    relative = setup.box_heading[batch, box_index] - ego_pose[..., 2]
    lead_speed = torch.where(setup.box_is_agent[batch, box_index],
                             setup.box_speed[batch, box_index] * torch.cos(relative), 0.0)

    last = (setup.path_count[batch, path_of] - 1)[..., None]
    path_length = setup.path_progress[batch, path_of].gather(-1, last)[..., 0]
    progress = torch.where(has_ahead, ego_progress + torch.where(has_ahead, nearest_distance, 0.0), path_length)
    speed = _carry(has_ahead & ~is_red, lead_speed, group)
    rear = _carry(~has_ahead, torch.full_like(ego_progress, vehicle.length / 2), group)
    return torch.stack([progress, speed, rear], dim=-1)


def _carry(written: Tensor, value: Tensor, group: int) -> Tensor:
    """Within consecutive groups along N: the value of the last entry (at or before) that wrote one, else 0."""
    B, N = written.shape
    position = torch.arange(N, device=written.device).expand(B, N)
    last = torch.where(written, position, -1).reshape(B, N // group, group).cummax(dim=-1).values.reshape(B, N)
    return torch.where(last >= 0, value.gather(-1, last.clamp(min=0)), torch.zeros_like(value))


def _project_pairs(setup: _Setup, points: Tensor, mask: Tensor) -> Tensor:
    """Arc length of points (B, K, 2) projected on every path (shapely `project`), where mask (B, L, K).

    Only the stretch of path that can hold the closest point is handed to `polyline_project`: the
    segments whose bounding box is no farther than the nearest vertex. Entries outside mask are 0.
    """
    out = torch.zeros(mask.shape, dtype=torch.float64, device=points.device)
    b, l, k = mask.nonzero(as_tuple=True)
    if not b.numel():
        return out
    xy, valid = setup.path_xy[b, l], setup.path_valid[b, l]                                # (M, P, 2)
    point = points[b, k]                                                                   # (M, 2)
    bound = torch.where(valid, torch.linalg.vector_norm(xy - point[:, None], dim=-1), math.inf).amin(-1)
    seg_lo = torch.minimum(xy[:, :-1], xy[:, 1:])
    seg_hi = torch.maximum(xy[:, :-1], xy[:, 1:])
    outside = torch.clamp(seg_lo - point[:, None], min=0) + torch.clamp(point[:, None] - seg_hi, min=0)
    maybe = (torch.linalg.vector_norm(outside, dim=-1) <= bound[:, None] + 1e-9) & valid[:, 1:]   # (M, P-1)
    position = torch.arange(maybe.shape[1], device=maybe.device)
    first = torch.where(maybe, position, maybe.shape[1]).amin(-1)
    last = torch.where(maybe, position, -1).amax(-1) + 1                                   # last vertex
    width = int((last - first).max()) + 1
    window = first[:, None] + torch.arange(width, device=xy.device)
    window_valid = window <= last[:, None]
    window = torch.minimum(window, last[:, None])
    local = xy.gather(1, window[..., None].expand(-1, -1, 2))
    offset = setup.path_progress[b, l].gather(1, first[:, None])[:, 0]
    out[b, l, k] = offset + polyline_project(point[:, None], local, window_valid)[:, 0]
    return out


# --------------------------------------------------------------------------------------------
# Scoring (NAVSIM v1.1 PDMScorer on the forecast)
# --------------------------------------------------------------------------------------------


def _score(states: EgoStates, observation: Observation, map_ctx: MapContext, vehicle) -> SubScores:
    """Sub-scores (B, G) of simulated proposals; EP normalised over the G proposals of each scene."""
    pose, speed = states.pose, states.speed
    corners, center = ego_footprint(pose, vehicle)
    areas = ego_areas(pose, vehicle, map_ctx)
    nc = no_at_fault_collision(pose, speed, corners, areas, observation, vehicle).value
    dac = drivable_area_compliance(areas).value
    raw = raw_progress(center, map_ctx.centerline, map_ctx.centerline_valid)
    ones = torch.ones_like(nc)
    return SubScores(
        nc=nc,
        dac=dac,
        ddc=driving_direction_compliance(center, areas, "v1").value,
        tlc=ones,
        ep=normalized_progress(raw, nc * dac, "v1"),
        ttc=time_to_collision(pose, speed, corners, areas, observation, vehicle, "v1").value,
        c=comfort_v1(states),
        lk=ones,
        hc=ones,
        ec=ones,
    )
