"""Time-to-collision within bound, TTC in {0, 1} (NAVSIM `PDMScorer._calculate_ttc`).

The ego box at step t is pushed ahead at constant speed and heading by 0, 0.3, 0.6 and 0.9 s and
compared with the objects at step t + offset. NAVSIM walks t (outer) then the offset (inner) and puts
every object of a harmless overlap on a per-proposal ignore list for good, so, as in NC, each
(proposal, object) pair is decided by its first overlap in that order alone.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from envs.metrics.collision import (
    BEHIND_ANGLE,
    blame_result,
    bounding_circles,
    check_inputs,
    first_contacts,
    near_pairs,
    relative_angle,
)
from envs.metrics.context import Observation
from envs.metrics.ego_areas import EgoAreas
from envs.metrics.result import MetricResult
from envs.sim.vehicle import VehicleParams

PROJECTION_STEPS = (0, 3, 6, 9)
"""np.arange(0, int(future_collision_horizon_window 1.0 s * 10), 3): offsets in 0.1 s steps."""
STEP_S = 0.1
"""[s] NAVSIM proposal interval."""
STOPPED_SPEED = 5e-3
"""[m/s] stopped_speed_threshold: the ego is skipped below it (strictly)."""
AHEAD_ANGLE = math.radians(30.0)
"""nuPlan v1.2 `is_agent_ahead`: relative angle below 30 deg."""
VERSIONS = ("v1", "v2")


def time_to_collision(
    pose: Tensor,
    speed: Tensor,
    corners: Tensor,
    areas: EgoAreas,
    obs: Observation,
    vehicle: VehicleParams,
    version: str,
) -> MetricResult:
    """TTC (B, P) in {0, 1}.

    pose (B, P, T, 3) rear axle [m, rad]; speed (B, P, T) [m/s]; corners (B, P, T, 4, 2) [m].
    v1 checks t = 0..T-1, v2 only t = 0..T-10 (NAVSIM v2: the 4 s observation must hold t + 9).
    Observed steps past the end of `obs` hold no objects. An overlap fails TTC if the object's centre
    (at t + offset) is ahead of the rear axle (< 30 deg), or if it is not behind (<= 150 deg) while the
    ego straddles lanes, leaves the drivable area or has its rear axle in an intersection.
    """
    if version not in VERSIONS:
        raise ValueError(f"version={version!r}: expected one of {VERSIONS}")
    num_scenes, num_proposals, num_steps = check_inputs(pose, speed, corners, areas, obs)
    num_agents = obs.valid.shape[2]
    num_checked = num_steps if version == "v1" else num_steps - max(PROJECTION_STEPS)

    heading = pose[..., 2]
    velocity = torch.stack([torch.cos(heading) * speed, torch.sin(heading) * speed], dim=-1)  # (B, P, T, 2)
    moving = speed >= STOPPED_SPEED  # slower egos are skipped without ignoring the object
    offsets = torch.tensor(PROJECTION_STEPS, device=pose.device)
    # NAVSIM shifts the corners by (cos h * v, sin h * v) * (offset * 0.1 s), with the Python float product
    shifts = torch.tensor([offset * STEP_S for offset in PROJECTION_STEPS], dtype=pose.dtype, device=pose.device)

    # circles around the ego boxes (pushed ahead like the boxes) and the objects, for the near-pair search
    ego_center, _ = bounding_circles(corners)
    ego_radius = math.hypot(vehicle.length, vehicle.width) / 2
    obj_center, obj_radius = obs.circle_center, obs.circle_radius
    # one near-pair search over every offset: the step slots of offset k's window follow those of offset k-1
    counts = [min(num_checked, obs.num_steps - offset) for offset in PROJECTION_STEPS]
    used = [k for k, count in enumerate(counts) if count > 0]
    if not used:  # v2 with T <= 9: NAVSIM's loop is empty
        nothing = torch.zeros((0, 4), dtype=torch.int64, device=pose.device)
        return blame_result(nothing, nothing[:, 0].to(torch.float64), num_scenes, num_proposals, num_agents)
    shift = torch.cat([velocity[:, :, :counts[k]] * shifts[k] for k in used], dim=2)          # (B, P, S, 2)
    ego_slots = torch.cat([ego_center[:, :, :counts[k]] for k in used], dim=2) + shift
    slot_k = torch.cat([torch.full((counts[k],), k, device=pose.device) for k in used])       # (S,)
    slot_t = torch.cat([torch.arange(counts[k], device=pose.device) for k in used])
    rows = near_pairs(ego_slots, ego_radius, obj_center, obj_radius, obs.valid[:, None],
                      ego_valid=torch.cat([moving[:, :, :counts[k]] for k in used], dim=2),
                      obj_steps=slot_t + offsets[slot_k])
    b, p, s, a = rows.unbind(dim=-1)
    k, t = slot_k[s], slot_t[s]
    ego_boxes = corners[b, p, t] + shift[b, p, s, None, :]
    obj_boxes = obs.corners[b, t + offsets[k], a]
    rows = torch.stack([b, p, t, a, k], dim=-1)

    order = t * len(PROJECTION_STEPS) + k  # t outer, offset inner, as NAVSIM iterates
    key = (b * num_proposals + p) * num_agents + a
    first = first_contacts(order, key, num_scenes * num_proposals * num_agents, ego_boxes, obj_boxes)
    b, p, t, a, k = rows[first].unbind(dim=-1)

    # Heading of the object is irrelevant here: nuPlan only uses the ego heading and the object centroid.
    angle = relative_angle(pose[b, p, t], obs.center[b, t + offsets[k], a])
    risky_area = areas.multiple_lanes[b, p, t] | areas.non_drivable[b, p, t] | areas.rear_axle_in_intersection[b, p, t]
    fails = (angle < AHEAD_ANGLE) | (risky_area & ~(angle > BEHIND_ANGLE))

    failing = torch.stack([b, p, t, a], dim=-1)[fails]
    penalty = torch.zeros(failing.shape[0], dtype=torch.float64, device=pose.device)
    return blame_result(failing, penalty, num_scenes, num_proposals, num_agents)
