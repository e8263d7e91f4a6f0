"""Background traffic: vehicles driven by IDM along fixed paths, constant velocity, and log replay.

All functions are pure and batched over B scenes x A agents (torch, any device); only callers loop over
time. Semantics follow nuPlan's IDM agents as NAVSIM v2 runs them (spec navsim.md §2.5).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from functools import cached_property
from typing import Sequence

import torch
from torch import Tensor

from envs.sim.geometry import (
    box_corners, boxes_intersect, polyline_interpolate, polyline_project,
)
from envs.sim.idm import IDMParams, idm_accel

NAVSIM_TRAFFIC_IDM = IDMParams()
"""NAVSIM v2 reactive traffic (`navsim_IDM_traffic_agents.yaml`): v0 10 m/s, s0 1.0 m, T 1.5 s,
a 1.0 m/s^2, b 2.0 m/s^2, exponent 4 (nuPlan IDMPolicy hard-codes 4)."""


@dataclass(frozen=True)
class PathAgents:
    """Agents that each move along their own path polyline (B scenes, A agent slots, P path points).

    The box centre sits at arc length `s` on the path, heading along it; poses past either end of the
    path are clamped to it (nuPlan `IDMAgent._clamp_progress`). Build with `PathAgents.create`, which
    checks shapes once; stepping functions trust their input.
    """

    path: Tensor = field(metadata={"dims": "B A P 2"})
    """Path vertices [m], global frame, in driving direction; padding repeats the last valid vertex."""
    path_valid: Tensor = field(metadata={"dims": "B A P"})
    """bool, a prefix of >= 2 vertices per slot."""
    s: Tensor = field(metadata={"dims": "B A"})
    """Arc length of the box centre along the path [m] (may run past the path end)."""
    speed: Tensor = field(metadata={"dims": "B A"})
    """Speed along the path [m/s], >= 0."""
    size: Tensor = field(metadata={"dims": "B A 2"})
    """Box length, width [m]."""
    types: Tensor = field(metadata={"dims": "B A"})
    """AgentType values (int64)."""
    is_reactive: Tensor = field(metadata={"dims": "B A"})
    """bool: True -> IDM; False -> keeps its speed (constant velocity along the path; parked at 0)."""
    valid: Tensor = field(metadata={"dims": "B A"})
    """bool: False for padding slots (never move, never lead)."""

    @classmethod
    def create(
        cls, path: Tensor, path_valid: Tensor, s: Tensor, speed: Tensor, size: Tensor, types: Tensor,
        is_reactive: Tensor, valid: Tensor,
    ) -> "PathAgents":
        """Check shapes, dtypes and values, and pad paths safely (see field docs for shapes)."""
        values = dict(path=path, path_valid=path_valid, s=s, speed=speed, size=size, types=types,
                      is_reactive=is_reactive, valid=valid)
        _check_dims(cls, values)
        for name in ("path_valid", "is_reactive", "valid"):
            if values[name].dtype != torch.bool:
                raise ValueError(f"{name}.dtype={values[name].dtype!r}: must be torch.bool")
        if bool((path_valid[..., 1:] & ~path_valid[..., :-1]).any()):
            raise ValueError("path_valid: valid vertices must form a prefix (padding at the end)")
        short = valid & (path_valid.sum(-1) < 2)
        if bool(short.any()):
            raise ValueError(f"path_valid.sum(-1)={path_valid.sum(-1)[short][0].item()!r}: "
                             "every valid agent needs a path of >= 2 vertices")
        finite_where = {"path": valid[..., None, None] & path_valid[..., None], "s": valid, "speed": valid,
                        "size": valid[..., None]}
        for name, mask in finite_where.items():
            bad = ~torch.isfinite(values[name]) & mask
            if bool(bad.any()):
                raise ValueError(f"{name}={values[name][bad][0].item()!r}: must be finite")
        if bool(((speed < 0) & valid).any()):
            raise ValueError(f"speed={speed[(speed < 0) & valid][0].item()!r}: must be >= 0")
        if bool(((size <= 0) & valid[..., None]).any()):
            raise ValueError(f"size={size[(size <= 0) & valid[..., None]][0].item()!r}: must be > 0")
        # padding slots get harmless finite values so batched geometry never sees NaN or short paths
        unit_path = torch.zeros_like(path)
        unit_path[..., 1:, 0] = 1.0
        first_two = torch.zeros_like(path_valid)
        first_two[..., :2] = True
        return cls(
            path=torch.where(valid[..., None, None], _padded_path(path, path_valid), unit_path),
            path_valid=torch.where(valid[..., None], path_valid, first_two),
            s=torch.where(valid, s, 0.0),
            speed=torch.where(valid, speed, 0.0),
            size=torch.where(valid[..., None], size, 1.0),
            types=types, is_reactive=is_reactive & valid, valid=valid,
        )

    @property
    def shape(self) -> tuple[int, int]:
        """(B, A)."""
        return tuple(self.s.shape)

    # derived quantities are cached per state object (a step builds a new one with `replace`)
    @cached_property
    def path_length(self) -> Tensor:
        """(B, A) path length [m]."""
        step = (self.path[..., 1:, :] - self.path[..., :-1, :]).norm(dim=-1)
        return (step * self.path_valid[..., 1:]).sum(-1)

    @cached_property
    def pose(self) -> Tensor:
        """(B, A, 3) box centre x, y [m] and heading [rad] at the clamped arc length."""
        batch, agents = self.shape
        flat_path, flat_valid = self.path.flatten(0, 1), self.path_valid.flatten(0, 1)
        xy, heading = polyline_interpolate(flat_path, flat_valid, self.s.reshape(-1, 1), return_heading=True)
        return torch.cat([xy, heading[..., None]], -1).reshape(batch, agents, 3)

    @cached_property
    def velocity(self) -> Tensor:
        """(B, A, 2) global vx, vy [m/s]: speed along the path heading (nuPlan `_velocity_to_global_frame`)."""
        heading = self.pose[..., 2]
        return self.speed[..., None] * torch.stack([torch.cos(heading), torch.sin(heading)], -1)


@dataclass(frozen=True)
class BoxObstacles:
    """Extra boxes that path agents react to but that do not follow a path (K per scene): the ego, or
    open-loop objects. NAVSIM feeds the simulated ego this way."""

    pose: Tensor = field(metadata={"dims": "B K 3"})
    """Box centre x, y [m], heading [rad]."""
    size: Tensor = field(metadata={"dims": "B K 2"})
    """Length, width [m]."""
    speed: Tensor = field(metadata={"dims": "B K"})
    """Speed along the box heading [m/s]."""
    valid: Tensor = field(metadata={"dims": "B K"})
    """bool."""


@dataclass(frozen=True)
class Leads:
    """The nearest thing ahead of each agent on its path (IDM input)."""

    gap: Tensor = field(metadata={"dims": "B A"})
    """Bumper-to-bumper distance along the path [m], >= 0; with no lead, front bumper to path end."""
    speed: Tensor = field(metadata={"dims": "B A"})
    """Lead speed projected on the agent heading [m/s] (0 for stops and the path end)."""
    has_lead: Tensor = field(metadata={"dims": "B A"})
    """bool: an agent, obstacle or stop was found (False -> the path end acts as a stopped lead)."""


# --------------------------------------------------------------------------- IDM along paths


def find_leads(agents: PathAgents, obstacles: BoxObstacles | None = None, stop_s: Tensor | None = None) -> Leads:
    """Nearest lead of every agent: another agent, an obstacle box, or a stop on its own path.

    A box leads agent i when it overlaps i's corridor (i's path widened by half i's width, flat ends, as
    nuPlan buffers `get_path_to_go`) and some part of it lies ahead of i's centre: its centre is projected
    on i's path, and its extent along and across the path comes from its heading relative to the path
    there. stop_s (B, A, S) gives stop positions as arc lengths on each agent's own path [m] (red lights,
    stop lines; +inf = inactive); a stop leads while the agent's front bumper has not passed it. With no
    lead at all, the path end is a stopped lead (nuPlan's free-road case: progress to go minus half
    length). Agents are judged simultaneously from the same state (nuPlan updates them one after another).
    """
    batch, num_agents = agents.shape
    pose = agents.pose
    cand_pose, cand_size, cand_speed, cand_valid = pose, agents.size, agents.speed, agents.valid
    if obstacles is not None:
        _check_dims(BoxObstacles, {f.name: getattr(obstacles, f.name) for f in fields(BoxObstacles)})
        present = obstacles.valid
        cand_pose = torch.cat([cand_pose, torch.where(present[..., None], obstacles.pose.to(pose), 0.0)], 1)
        cand_size = torch.cat([cand_size, torch.where(present[..., None], obstacles.size.to(pose), 1.0)], 1)
        cand_speed = torch.cat([cand_speed, torch.where(present, obstacles.speed.to(pose), 0.0)], 1)
        cand_valid = torch.cat([cand_valid, present], 1)
    num_cand = cand_pose.shape[1]

    # project every candidate centre on every agent's path: (B*A paths, K points)
    flat_path, flat_valid = agents.path.flatten(0, 1), agents.path_valid.flatten(0, 1)
    points = cand_pose[:, None, :, :2].expand(batch, num_agents, num_cand, 2).reshape(-1, num_cand, 2)
    along = polyline_project(points, flat_path, flat_valid)                             # (B*A, K)
    foot, path_heading = polyline_interpolate(flat_path, flat_valid, along, return_heading=True)
    across = (points - foot).norm(dim=-1).reshape(batch, num_agents, num_cand)          # distance to the path
    along, path_heading = along.reshape(batch, num_agents, num_cand), path_heading.reshape(batch, num_agents, num_cand)

    relative = cand_pose[:, None, :, 2] - path_heading
    half_length, half_width = cand_size[:, None, :, 0] / 2, cand_size[:, None, :, 1] / 2
    cos_rel, sin_rel = torch.cos(relative).abs(), torch.sin(relative).abs()
    extent_along = half_length * cos_rel + half_width * sin_rel
    extent_across = half_length * sin_rel + half_width * cos_rel

    s_centre = agents.s[..., None]
    front = s_centre + agents.size[..., 0:1] / 2
    in_corridor = across - extent_across < agents.size[..., 1:2] / 2
    ahead = (along + extent_along > s_centre) & (along - extent_along < agents.path_length[..., None])
    not_self = torch.ones(num_agents, num_cand, dtype=torch.bool, device=pose.device)
    not_self[:, :num_agents] = ~torch.eye(num_agents, dtype=torch.bool, device=pose.device)
    is_lead = in_corridor & ahead & not_self & cand_valid[:, None, :] & agents.valid[..., None]
    gap = torch.where(is_lead, (along - extent_along - front).clamp(min=0.0), math.inf)
    heading_diff = cand_pose[:, None, :, 2] - pose[..., None, 2]
    lead_speed = cand_speed[:, None, :] * torch.cos(heading_diff)                       # nuPlan rotate_angle(v).x

    if stop_s is not None:
        if stop_s.dim() != 3 or tuple(stop_s.shape[:2]) != (batch, num_agents):
            raise ValueError(f"stop_s.shape={tuple(stop_s.shape)!r}: expected (B, A, S) with B, A = {batch}, {num_agents}")
        stop_s = stop_s.to(pose)
        stop_ahead = (stop_s >= front) & torch.isfinite(stop_s) & agents.valid[..., None]
        gap = torch.cat([gap, torch.where(stop_ahead, stop_s - front, math.inf)], -1)
        lead_speed = torch.cat([lead_speed, torch.zeros_like(stop_s)], -1)

    # argmin + gather: Tensor.min(dim) with indices is ~20 ms per call on CPU in torch 2.13
    nearest = gap.argmin(-1, keepdim=True)
    nearest_gap = gap.gather(-1, nearest)[..., 0]
    has_lead = torch.isfinite(nearest_gap)
    path_end_gap = (agents.path_length - front[..., 0]).clamp(min=0.0)
    return Leads(
        gap=torch.where(has_lead, nearest_gap, path_end_gap),
        speed=torch.where(has_lead, lead_speed.gather(-1, nearest)[..., 0], 0.0),
        has_lead=has_lead,
    )


def idm_path_accel(agents: PathAgents, leads: Leads, params: IDMParams = NAVSIM_TRAFFIC_IDM,
                   target_speed: Tensor | None = None) -> Tensor:
    """(B, A) IDM acceleration [m/s^2] clipped to [-decel_max, accel_max] (nuPlan forward-Euler solver).

    target_speed (B, A) [m/s] overrides `params.target_speed` per agent. nuPlan's speed-limit override is
    a no-op (its `target_velocity` setter never assigns), so NAVSIM traffic always uses the config value.
    """
    target = params.target_speed if target_speed is None else target_speed
    accel = idm_accel(agents.speed, target, leads.gap, leads.speed, params)
    return accel.clamp(min=-params.decel_max, max=params.accel_max)


def advance_on_path(agents: PathAgents, accel: Tensor, dt: float) -> PathAgents:
    """Forward-Euler step: s += speed dt (old speed, as nuPlan), speed = max(speed + accel dt, 0).

    accel (B, A) [m/s^2] applies to reactive agents; the others keep their speed. An agent that reaches
    its path end stays there with speed 0 (nuPlan clamps the pose but keeps counting progress; stopping
    keeps the reported velocity consistent with the pose). Invalid slots stay put.
    """
    if not (math.isfinite(dt) and dt > 0):
        raise ValueError(f"dt={dt!r}: must be a positive finite number [s]")
    moving = agents.valid
    accel = torch.where(agents.is_reactive, accel, 0.0)
    length = agents.path_length
    s = agents.s + agents.speed * dt
    at_end = s >= length
    speed = torch.where(at_end, 0.0, (agents.speed + accel * dt).clamp(min=0.0))
    s = torch.where(at_end, torch.maximum(length, agents.s), s)
    return replace(agents, s=torch.where(moving, s, agents.s), speed=torch.where(moving, speed, agents.speed))


def idm_follow_step(
    agents: PathAgents,
    params: IDMParams = NAVSIM_TRAFFIC_IDM,
    dt: float = 0.1,
    obstacles: BoxObstacles | None = None,
    stop_s: Tensor | None = None,
    target_speed: Tensor | None = None,
) -> PathAgents:
    """One IDM step of every reactive agent behind its nearest lead (`find_leads`); see `advance_on_path`."""
    leads = find_leads(agents, obstacles, stop_s)
    return advance_on_path(agents, idm_path_accel(agents, leads, params, target_speed), dt)


# --------------------------------------------------------------------------- open-loop policies


def constant_velocity_rollout(pose: Tensor, velocity: Tensor, num_steps: int, dt: float = 0.1) -> tuple[Tensor, Tensor]:
    """Constant-velocity future, fixed heading (NAVSIM `ConstantVelocityTrafficAgents`).

    pose (..., 3) x, y [m], heading [rad]; velocity (..., 2) global [m/s] -> pose (..., T, 3) and
    velocity (..., T, 2) with T = num_steps + 1, the first being t = 0.
    """
    if pose.shape[-1:] != (3,) or velocity.shape[-1:] != (2,) or pose.shape[:-1] != velocity.shape[:-1]:
        raise ValueError(f"pose.shape={tuple(pose.shape)!r}, velocity.shape={tuple(velocity.shape)!r}: "
                         "expected (..., 3) and (..., 2)")
    if not (isinstance(num_steps, int) and num_steps >= 0):
        raise ValueError(f"num_steps={num_steps!r}: must be an int >= 0")
    if not (math.isfinite(dt) and dt > 0):
        raise ValueError(f"dt={dt!r}: must be a positive finite number [s]")
    elapsed = torch.arange(num_steps + 1, dtype=pose.dtype, device=pose.device) * dt          # (T,)
    xy = pose[..., None, :2] + velocity[..., None, :] * elapsed[:, None]
    heading = pose[..., None, 2:3].expand(*xy.shape[:-1], 1)
    return torch.cat([xy, heading], -1), velocity[..., None, :].expand(*xy.shape).clone()


def log_replay(pose: Tensor, size: Tensor, valid: Tensor, ego_pose: Tensor, ego_size: Tensor) -> Tensor:
    """Validity of logged tracks under NAVSIM v2 log replay -> valid (B, A, T).

    Objects whose box at t = 0 (step 0) intersects the ego box at t = 0 are dropped from every step
    (`LogReplayTrafficAgents.simulate_environment`). pose (B, A, T, 3) box centres; size (B, A, 2);
    valid (B, A, T); ego_pose (B, 3) ego box centre (not the rear axle); ego_size (B, 2) length, width.
    """
    if pose.dim() != 4 or tuple(size.shape) != tuple(pose.shape[:2]) + (2,) or tuple(valid.shape) != tuple(pose.shape[:3]):
        raise ValueError(f"pose.shape={tuple(pose.shape)!r}, size.shape={tuple(size.shape)!r}, "
                         f"valid.shape={tuple(valid.shape)!r}: expected (B, A, T, 3), (B, A, 2), (B, A, T)")
    first = pose[:, :, 0]
    boxes = box_corners(torch.where(valid[:, :, 0, None], first[..., :2], 0.0),
                        torch.where(valid[:, :, 0], first[..., 2], 0.0), size[..., 0], size[..., 1])
    ego_box = box_corners(ego_pose[:, :2], ego_pose[:, 2], ego_size[:, 0], ego_size[:, 1])
    overlaps = boxes_intersect(boxes, ego_box[:, None]) & valid[:, :, 0]
    return valid & ~overlaps[..., None]


# --------------------------------------------------------------------------- output


def path_agents_to_tracks(states: Sequence[PathAgents]) -> tuple[Tensor, Tensor, Tensor]:
    """Stack per-step agent states into tracks: pose (B, A, T, 3), velocity (B, A, T, 2), valid (B, A, T)."""
    if len(states) == 0:
        raise ValueError("states=[]: need at least one step")
    poses = [state.pose for state in states]
    pose = torch.stack(poses, 2)
    heading = pose[..., 2]
    speed = torch.stack([state.speed for state in states], 2)
    velocity = speed[..., None] * torch.stack([torch.cos(heading), torch.sin(heading)], -1)
    valid = torch.stack([state.valid for state in states], 2)
    return pose, velocity, valid


# --------------------------------------------------------------------------- internals


def _check_dims(cls, values: dict[str, Tensor]) -> None:
    """Compare each tensor with its field's "dims", binding letters consistently; names the field."""
    bound: dict[str, int] = {}
    for f in fields(cls):
        value, dims = values[f.name], f.metadata["dims"].split()
        if not isinstance(value, Tensor) or value.dim() != len(dims):
            shape = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
            raise ValueError(f"{f.name}.shape={shape!r}: expected ({', '.join(dims)})")
        for letter, size in zip(dims, value.shape):
            expected = int(letter) if letter.isdigit() else bound.setdefault(letter, size)
            if size != expected:
                raise ValueError(f"{f.name}.shape={tuple(value.shape)!r}: {letter} should be {expected}")


def _padded_path(path: Tensor, path_valid: Tensor) -> Tensor:
    """Replace padding vertices by the last valid one (so padded segments have zero length)."""
    count = path_valid.sum(-1)
    last = path.gather(-2, (count - 1).clamp(min=0)[..., None, None].expand(*count.shape, 1, 2))
    return torch.where(path_valid[..., None], path, last)
