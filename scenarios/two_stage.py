"""Two-stage (navhard-style) groups: one long drive cut into the stage-1 scene at t0, its EC partner
0.5 s earlier, and synthetic stage-2 follow-ups 4 s later with the ego start perturbed from the human's
(spec navsim.md §2.6: NAVSIM pre-renders these from rollouts of different plans).

The drive is simulated from t0 - 2.1 s to t0 + 8 s. A follow-up's ego deviates from the human over the
4 s before its start (lateral offset, heading offset and speed factor growing linearly), then recovers
to the human's lane position and speed: that continuation is its human trajectory.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, replace

import numpy as np
import torch

from envs.sim.geometry import box_corners
from envs.sim.route import driving_command
from envs.sim.scene import HISTORY_STEP_S, NUM_STEPS, STEP_S, EgoHistory, Plan, Scene
from envs.sim.vehicle import PACIFICA
from scenarios import SCENARIOS, scene_rngs
from scenarios.drive import Drive, Rollout, Timeline, drive_scene, rear_axle_at
from scenarios.family import PLANNERS, simulate_planned
from scenarios.lanes import in_drivable_area, smoothstep

TWO_STAGE_TIMELINE = Timeline(history_steps=21, total_steps=101)
"""t0 - 2.1 s .. t0 + 8.0 s: room for the EC partner's history and the follow-ups' 4 s futures."""
FOLLOW_UP_DELAY_S = 4.0
"""[s] stage-2 scenes start this long after the stage-1 scene (NAVSIM: around t0 + 4 s)."""
PREV_OFFSET_S = 0.5
"""[s] each scene's EC partner is this much earlier."""
LATERAL_RANGE = (-1.5, 1.5)
"""[m] follow-up start: lateral offset from the human (left > 0)."""
HEADING_RANGE = (-0.15, 0.15)
"""[rad] follow-up start: heading offset from the human."""
SPEED_RANGE = (0.7, 1.2)
"""Follow-up start: factor on the human's speed."""
FOLLOW_UPS = (5, 10)
"""Follow-ups per group (inclusive range)."""
DEVIATE_S, RECOVER_S, HEADING_RECOVER_S, SPEED_RECOVER_S = 4.0, 3.0, 1.5, 1.5
"""[s] the deviation builds over DEVIATE_S before a follow-up; after it the lateral offset fades over
RECOVER_S, the heading offset over HEADING_RECOVER_S and the speed factor with time constant SPEED_RECOVER_S."""


@dataclass(frozen=True)
class Perturbation:
    """How a follow-up's ego start differs from the human's."""

    lateral: float
    """[m], left > 0."""
    heading: float
    """[rad]."""
    speed_factor: float


@dataclass(frozen=True)
class TwoStageGroup:
    """One navhard-style group: stage 1 (`now`, `prev`) and its stage-2 follow-ups (`syn_now[i]`,
    `syn_prev[i]`), all cut from the same drive."""

    family: str
    seed: int
    now: Scene
    """The stage-1 scene at t0."""
    prev: Scene
    """The same drive at t0 - 0.5 s (for EC)."""
    syn_now: tuple[Scene, ...]
    """Follow-ups at t0 + 4.0 s, ego start perturbed; tokens have 17 hex characters, as NAVSIM's."""
    syn_prev: tuple[Scene, ...]
    """The same follow-ups' drives at t0 + 3.5 s."""
    perturbations: tuple[Perturbation, ...]

    def __post_init__(self):
        if not (len(self.syn_now) == len(self.syn_prev) == len(self.perturbations)):
            raise ValueError(f"syn_now, syn_prev, perturbations: lengths {len(self.syn_now)}, {len(self.syn_prev)}, "
                             f"{len(self.perturbations)} differ")


def build_group(name: str, seed: int) -> TwoStageGroup:
    """The two-stage group of family `name` (one with a drive planner) for a seed; deterministic."""
    if name not in PLANNERS:
        raise ValueError(f"name={name!r}: no drive planner (valid: {', '.join(sorted(PLANNERS))})")
    params_rng, build_rng = scene_rngs(name, seed)
    params = SCENARIOS[name].sample_params(params_rng)
    drive, rollout = simulate_planned(PLANNERS[name], params, build_rng, TWO_STAGE_TIMELINE)
    key = hashlib.sha256(f"{name}|{int(seed)}|{params!r}|two-stage".encode()).hexdigest()
    t0 = TWO_STAGE_TIMELINE.history_steps
    back, ahead = round(PREV_OFFSET_S / STEP_S), round(FOLLOW_UP_DELAY_S / STEP_S)
    now = drive_scene(drive, rollout, key[:16], name, now=t0)
    prev = drive_scene(drive, rollout, key[16:32], name, now=t0 - back)
    count = int(build_rng.integers(FOLLOW_UPS[0], FOLLOW_UPS[1] + 1))
    # the world at the follow-ups' starts is shared: cut it once, swap the ego per follow-up
    world_now = drive_scene(drive, rollout, key[:16], name, now=t0 + ahead)
    world_prev = drive_scene(drive, rollout, key[:16], name, now=t0 + ahead - back)
    syn_now, syn_prev, perturbations = [], [], []
    for i in range(count):
        # the first follow-up stays close to the human (a well-driving agent should find a near match)
        shrink = 0.2 if i == 0 else 1.0
        draw = Perturbation(lateral=shrink * float(build_rng.uniform(*LATERAL_RANGE)),
                            heading=shrink * float(build_rng.uniform(*HEADING_RANGE)),
                            speed_factor=1.0 + shrink * (float(build_rng.uniform(*SPEED_RANGE)) - 1.0))
        perturbation, ego = _synthetic_ego(drive, rollout, t0 + ahead, draw)
        tokens = hashlib.sha256(f"{key}|{i}".encode()).hexdigest()
        syn_now.append(follow_up_scene(world_now, drive, ego, t0 + ahead, tokens[:17]))
        syn_prev.append(follow_up_scene(world_prev, drive, ego, t0 + ahead - back, tokens[17:34]))
        perturbations.append(perturbation)
    return TwoStageGroup(family=name, seed=int(seed), now=now, prev=prev, syn_now=tuple(syn_now),
                         syn_prev=tuple(syn_prev), perturbations=tuple(perturbations))


def synthetic_ego(drive: Drive, rollout: Rollout, anchor: int, perturbation: Perturbation) -> np.ndarray:
    """(T, 3) rear-axle poses of a follow-up ego over the whole rollout: the human's, deviating linearly
    over DEVIATE_S up to `perturbation` at rollout index `anchor`, then recovering."""
    centre_s = rollout.ego_s + drive.agents[0].path_offset
    tau = (np.arange(len(centre_s)) - anchor) * STEP_S
    growth = np.clip(1.0 + tau / DEVIATE_S, 0.0, 1.0)
    after = tau > 0
    speed_share = np.where(after, np.exp(-np.clip(tau, 0.0, None) / SPEED_RECOVER_S), growth)
    lateral_share = np.where(after, 1.0 - smoothstep(tau / RECOVER_S), growth)
    heading_share = np.where(after, 1.0 - smoothstep(tau / HEADING_RECOVER_S), growth)
    # arc length: the human's steps scaled by the speed factor, pinned to the human's at the anchor
    scale = 1.0 + (perturbation.speed_factor - 1.0) * speed_share
    step = np.diff(centre_s) * 0.5 * (scale[1:] + scale[:-1])
    travelled = np.concatenate([[0.0], np.cumsum(step)])
    syn_s = centre_s[anchor] + travelled - travelled[anchor]
    pose = rear_axle_at(drive, syn_s)
    offset = perturbation.lateral * lateral_share
    pose[:, 0] -= np.sin(pose[:, 2]) * offset
    pose[:, 1] += np.cos(pose[:, 2]) * offset
    heading = pose[:, 2] + perturbation.heading * heading_share
    pose[:, 2] = np.arctan2(np.sin(heading), np.cos(heading))
    return pose


def _synthetic_ego(drive: Drive, rollout: Rollout, anchor: int, draw: Perturbation) -> tuple[Perturbation, np.ndarray]:
    """The drawn perturbation, halved (then mirrored) until the ego box at the anchor is on the road."""
    candidates = [draw] + [replace(draw, lateral=draw.lateral * f, heading=draw.heading * f)
                           for f in (0.5, 0.25, -0.5, -0.25, 0.0)]
    for candidate in candidates:
        pose = synthetic_ego(drive, rollout, anchor, candidate)
        if _on_road(drive, pose[anchor]):
            return candidate, pose
    return candidates[-1], pose


def _on_road(drive: Drive, pose: np.ndarray) -> bool:
    centre = pose[:2] + PACIFICA.rear_axle_to_center * np.array([math.cos(pose[2]), math.sin(pose[2])])
    corners = box_corners(torch.as_tensor(centre)[None], torch.tensor([pose[2]], dtype=torch.float64),
                          PACIFICA.length, PACIFICA.width)[0].numpy()
    return bool(in_drivable_area(drive.gen.map, np.concatenate([corners, pose[None, :2]])).all())


def follow_up_scene(base: Scene, drive: Drive, ego: np.ndarray, now: int, token: str) -> Scene:
    """`base` (the drive's scene at rollout index `now`) with the ego replaced by the synthetic one `ego`
    (T, 3): its history, its continuation as the human trajectory, the command from its pose, `token`.
    The other agents and the lights stay the drive's."""
    velocity = np.gradient(ego[:, :2], STEP_S, axis=0)
    speed = np.hypot(*velocity.T)
    heading = np.unwrap(ego[:, 2])
    accel = np.gradient(speed, STEP_S)
    yaw_rate = np.gradient(heading, STEP_S)
    index = now - np.arange(3, -1, -1) * round(HISTORY_STEP_S / STEP_S)
    history = EgoHistory(
        t=(index - now) * STEP_S, pose=ego[index],
        velocity=np.stack([speed[index], np.zeros(len(index))], -1),      # along the heading
        acceleration=np.stack([accel[index], speed[index] * yaw_rate[index]], -1),
    )
    current = ego[now]
    future = ego[now + 5:now + NUM_STEPS:5]
    cos, sin = math.cos(current[2]), math.sin(current[2])
    rel = future[:, :2] - current[:2]
    local = np.stack([cos * rel[:, 0] + sin * rel[:, 1], cos * rel[:, 1] - sin * rel[:, 0]], -1)
    local_heading = np.arctan2(np.sin(future[:, 2] - current[2]), np.cos(future[:, 2] - current[2]))
    human = Plan(interval=0.5, poses=np.concatenate([local, local_heading[:, None]], 1))
    command = driving_command(drive.gen.map, base.route_roadblock_ids, current)
    return replace(base, token=token, history=history, human_trajectory=human, command=command)
