"""Follow-up scenes: the world re-simulated 4 s on from where the ego actually ended up.

NAVSIM v2's second stage starts from the end of the first. Its official follow-ups are pre-rendered
from fixed plans; roadloop instead rebuilds the world from the ego's simulated stage-1 states:
vehicles near a lane are snapped onto it and driven by IDM (NAVSIM's reactive traffic constants,
spec navsim.md §2.5), reacting to each other and to the ego (a constant-velocity forecast of its
stage-2 start state); pedestrians, bicycles, static objects and off-lane vehicles move at constant
velocity. Traffic lights hold their last logged status. Vectorised over scenes x agents.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace

import numpy as np
import torch

from envs.sim.dynamics import EgoStates
from envs.sim.geometry import polyline_distance, polyline_project, wrap_angle
from envs.sim.route import lane_path_poses
from envs.sim.scene import HISTORY_STEP_S, NUM_STEPS, STEP_S, AgentTracks, AgentType, EgoHistory, Scene, TrafficLights
from envs.sim.traffic import NAVSIM_TRAFFIC_IDM, BoxObstacles, PathAgents, constant_velocity_rollout, idm_follow_step

SNAP_DISTANCE = 3.0
"""[m] vehicles farther from every lane centerline stay open-loop (NAVSIM `idm_snap_threshold`)."""
SNAP_HEADING = np.pi / 2
"""[rad] a lane is only snapped to when it points roughly the vehicle's way."""
PATH_LENGTH = 120.0
"""[m] lane path ahead of a snapped vehicle (enough for 4 s at urban speeds)."""
PARKED_SPEED = 0.1
"""[m/s] slower vehicles off their lane's heading are parked: they stay put."""


def _lane_path(scene: Scene, lane_id: str) -> np.ndarray:
    """(P, 2) centerline of a lane and its first successors, up to PATH_LENGTH [m]."""
    lanes, ids, length = scene.map.lanes_by_id, [lane_id], 0.0
    while length < PATH_LENGTH:
        lane = lanes[ids[-1]]
        length += float(np.linalg.norm(np.diff(lane.centerline, axis=0), axis=1).sum())
        successors = [s for s in lane.successors if s in lanes and s not in ids]
        if not successors:
            break
        ids.append(successors[0])
    return lane_path_poses(scene.map, ids)[:, :2]


def _snap(scene: Scene, pose: np.ndarray, is_vehicle: np.ndarray) -> list[str | None]:
    """Nearest lane within SNAP_DISTANCE and SNAP_HEADING for each vehicle (A,), else None."""
    lanes = list(scene.map.lanes_by_id.values())
    result: list[str | None] = [None] * len(pose)
    if not lanes or not is_vehicle.any():
        return result
    width = max(len(lane.centerline) for lane in lanes)
    line = torch.zeros(len(lanes), width, 2, dtype=torch.float64)
    valid = torch.zeros(len(lanes), width, dtype=torch.bool)
    for i, lane in enumerate(lanes):
        line[i, : len(lane.centerline)] = torch.as_tensor(lane.centerline)
        valid[i, : len(lane.centerline)] = True
    points = torch.as_tensor(pose[:, :2], dtype=torch.float64)[None].expand(len(lanes), -1, -1)
    distance = polyline_distance(points, line, valid).numpy()  # (lanes, A)
    arc = polyline_project(points, line, valid).numpy()
    for a in np.flatnonzero(is_vehicle):
        for i in np.argsort(distance[:, a], kind="stable"):
            if distance[i, a] > SNAP_DISTANCE:
                break
            cl = lanes[i].centerline
            k = int(np.clip(np.searchsorted(np.cumsum(np.r_[0, np.linalg.norm(np.diff(cl, axis=0), axis=1)]), arc[i, a]) - 1, 0, len(cl) - 2))
            lane_heading = np.arctan2(*(cl[k + 1] - cl[k])[::-1])
            if abs(float(wrap_angle(torch.tensor(pose[a, 2] - lane_heading)))) < SNAP_HEADING:
                result[a] = lanes[i].id
                break
    return result


def _ego_history(ego: EgoStates) -> EgoHistory:
    """The last 1.5 s of the simulated ego (2 Hz) as the follow-up's logged history."""
    stride = round(HISTORY_STEP_S / STEP_S)
    steps = np.arange(NUM_STEPS - 1 - 3 * stride, NUM_STEPS, stride)
    return EgoHistory(
        t=(steps - steps[-1]) * STEP_S,
        pose=ego.pose[steps].cpu().numpy().copy(),
        velocity=ego.velocity[steps].cpu().numpy().copy(),
        acceleration=ego.acceleration[steps].cpu().numpy().copy(),
    )


def follow_up_scenes(scenes: list[Scene], ego: EgoStates) -> list[Scene]:
    """One follow-up scene per scene, starting where the simulated ego `ego` (B, 41) ended, 4 s later.

    The follow-up has no human trajectory (like NAVSIM's synthetic scenes, the human filter is off)
    and no reference trajectory (PDM-Closed plans it when scored). Tokens are derived from the
    original token and the ego end state, so the same stage-1 outcome gives the same follow-up.
    """
    B = len(scenes)
    if ego.pose.shape[:2] != (B, NUM_STEPS):
        raise ValueError(f"ego.pose.shape={tuple(ego.pose.shape)}: expected ({B}, {NUM_STEPS}, 3)")
    last = NUM_STEPS - 1
    # --- every object's state at the end of stage 1 (its last valid state) ---
    width = max([s.agents.num_agents for s in scenes] + [1])
    starts, paths, snapped = [], [], []
    for scene in scenes:
        agents = scene.agents
        present = agents.valid[:, last] if agents.num_agents else np.zeros(0, bool)
        idx = np.flatnonzero(present)
        pose, velocity = agents.pose[idx, last], agents.velocity[idx, last]
        is_vehicle = agents.types[idx] == int(AgentType.VEHICLE)
        lanes = _snap(scene, pose, is_vehicle)
        starts.append((idx, pose, velocity))
        snapped.append(lanes)
        paths.append([_lane_path(scene, lane) if lane is not None else None for lane in lanes])
    num_points = max([len(p) for per in paths for p in per if p is not None] + [2])
    path = torch.zeros(B, width, num_points, 2, dtype=torch.float64)
    path_valid = torch.zeros(B, width, num_points, dtype=torch.bool)
    s = torch.zeros(B, width, dtype=torch.float64)
    speed = torch.zeros(B, width, dtype=torch.float64)
    size = torch.ones(B, width, 2, dtype=torch.float64)
    types = torch.zeros(B, width, dtype=torch.int64)
    reactive = torch.zeros(B, width, dtype=torch.bool)
    valid = torch.zeros(B, width, dtype=torch.bool)
    open_pose = torch.zeros(B, width, 3, dtype=torch.float64)
    open_velocity = torch.zeros(B, width, 2, dtype=torch.float64)
    for b, (scene, (idx, pose, velocity), per) in enumerate(zip(scenes, starts, paths)):
        for j, (a, lane_path) in enumerate(zip(idx, per)):
            size[b, j] = torch.as_tensor(scene.agents.size[a])
            types[b, j] = int(scene.agents.types[a])
            open_pose[b, j] = torch.as_tensor(pose[j])
            open_velocity[b, j] = torch.as_tensor(velocity[j])
            if lane_path is None:
                continue
            path[b, j, : len(lane_path)] = torch.as_tensor(lane_path)
            path_valid[b, j, : len(lane_path)] = True
            s[b, j] = float(polyline_project(torch.as_tensor(pose[j][None, None, :2]), path[b, j][None], path_valid[b, j][None])[0, 0])
            speed[b, j] = float(np.hypot(*velocity[j]))
            reactive[b, j] = True
            valid[b, j] = True
    agents = PathAgents.create(path, path_valid, s, speed, size, types, reactive, valid)

    # --- the ego as an obstacle: constant velocity from its stage-1 end state ---
    d = scenes[0].vehicle.rear_axle_to_center
    ego_pose = ego.pose[:, last].cpu()
    ego_speed = ego.speed[:, last].cpu()
    center = ego_pose[:, :2] + d * torch.stack([torch.cos(ego_pose[:, 2]), torch.sin(ego_pose[:, 2])], -1)
    ego_size = torch.tensor([[scenes[0].vehicle.length, scenes[0].vehicle.width]], dtype=torch.float64).expand(B, 2)

    # --- roll every object 4 s forward ---
    poses, velocities = [agents.pose], [agents.velocity]
    for k in range(1, NUM_STEPS):
        heading = ego_pose[:, 2]
        forecast = center + ego_speed[:, None] * (k * STEP_S) * torch.stack([torch.cos(heading), torch.sin(heading)], -1)
        obstacle = BoxObstacles(
            pose=torch.cat([forecast, heading[:, None]], -1)[:, None], size=ego_size[:, None],
            speed=ego_speed[:, None], valid=torch.ones(B, 1, dtype=torch.bool),
        )
        agents = idm_follow_step(agents, NAVSIM_TRAFFIC_IDM, STEP_S, obstacles=obstacle)
        poses.append(agents.pose)
        velocities.append(agents.velocity)
    path_pose = torch.stack(poses, 2)  # (B, A, T, 3)
    path_velocity = torch.stack(velocities, 2)
    cv_pose, cv_velocity = constant_velocity_rollout(open_pose, open_velocity, NUM_STEPS - 1, STEP_S)
    # parked or static objects stay where they are
    still = (open_velocity.norm(dim=-1) < PARKED_SPEED)[..., None, None]
    cv_pose = torch.where(still, open_pose[:, :, None].expand_as(cv_pose), cv_pose)
    pose = torch.where(valid[..., None, None], path_pose, cv_pose).numpy()
    velocity = torch.where(valid[..., None, None], path_velocity, cv_velocity).numpy()

    result = []
    for b, (scene, (idx, _, _)) in enumerate(zip(scenes, starts)):
        A = len(idx)
        tracks = AgentTracks(
            ids=tuple(scene.agents.ids[a] for a in idx),
            types=scene.agents.types[idx].copy(),
            size=scene.agents.size[idx].copy(),
            pose=pose[b, :A].copy(),
            velocity=velocity[b, :A].copy(),
            valid=np.ones((A, NUM_STEPS), bool),
        )
        lights = scene.traffic_lights
        held = TrafficLights(lights.lane_connector_ids, np.repeat(lights.status[:, -1:], NUM_STEPS, axis=1))
        history = _ego_history(_take(ego, b))
        digest = hashlib.sha256(scene.token.encode() + history.pose.tobytes()).hexdigest()[:16]
        result.append(replace(
            scene, token=f"{digest}", history=history, agents=tracks, traffic_lights=held,
            human_trajectory=None, reference_trajectory=None,
        ))
    return result


def _take(states: EgoStates, b: int) -> EgoStates:
    return replace(states, **{n: getattr(states, n)[b] for n in states.__dataclass_fields__})
