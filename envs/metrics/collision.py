"""No at-fault Collision, NC in {0, 1/2, 1} (NAVSIM `_calculate_no_at_fault_collision`, nuPlan's
`get_collision_type`), plus the box-contact search that NC and TTC share.

NAVSIM walks the steps in order and, per proposal, puts every object of a not-at-fault contact on an
ignore list. An object's at-fault verdict can only lower the score, and a not-at-fault verdict silences
it for good, so each (proposal, object) pair is decided by its FIRST contact alone. That lets the whole
metric run as one batched pass over the contacts instead of a loop over steps and objects.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from envs.metrics.context import Observation, bounding_circles
from envs.metrics.ego_areas import EgoAreas
from envs.metrics.result import MetricResult
from envs.sim.geometry import boxes_intersect, segment_intersects_box
from envs.sim.vehicle import VehicleParams

STOPPED_SPEED = 5e-2
"""[m/s] Ego (`get_collision_type` default) and track (nuPlan v1.2 `is_track_stopped` default) stop speed."""
BEHIND_ANGLE = math.radians(150.0)
"""nuPlan `is_agent_behind`: relative angle above 150 deg."""
STATIC_OBJECT_PENALTY = 0.5
"""NC after an at-fault hit on a non-agent (cone, barrier, sign, generic object); agents give 0."""
_MARGIN = 1e-6
"""[m] far above float64 rounding at map scale: the bounding-circle prefilter never drops touching
boxes, and the separating-axis pass only settles boxes overlapping or apart by more than this."""


def relative_angle(pose: Tensor, point: Tensor) -> Tensor:
    """nuPlan `get_agent_relative_angle`: pose (..., 3) [m, rad], point (..., 2) [m] -> (...) [rad] in [0, pi].

    arccos of the heading unit vector dotted with the normalised pose->point vector, unclamped as in
    nuPlan: NaN when the point sits on the pose (then neither ahead nor behind), and NaN if rounding
    pushes the dot product past +-1.
    """
    dx = point[..., 0] - pose[..., 0]
    dy = point[..., 1] - pose[..., 1]
    norm = torch.sqrt(dx * dx + dy * dy)
    heading = pose[..., 2]
    return torch.arccos(torch.cos(heading) * (dx / norm) + torch.sin(heading) * (dy / norm))


def near_pairs(ego_center: Tensor, ego_radius: float, obj_center: Tensor, obj_radius: Tensor, candidate: Tensor,
               ego_valid: Tensor | None = None, obj_steps: Tensor | None = None) -> Tensor:
    """Rows (K, 4) int64 (b, p, s, a), ordered, of ego and object circles that meet (within 1 um).

    ego_center (B, P, S, 2) [m] with one radius [m] for every ego box; obj_center (B, S, A, 2) and
    obj_radius (B, S, A) [m] at the same step index s (see `bounding_circles`); candidate (B, P, S, A)
    bool (broadcastable) and, if given, ego_valid (B, P, S) bool limit the search (object present, ego
    moving...). `obj_steps` (S,) long: the objects' step of each ego step s instead (obj_center,
    obj_radius and candidate then have the objects' steps), read without copying those windows. Objects
    far from every candidate ego centre of their scene and step are dropped first, so the proposals are
    only compared with the few objects near them.
    """
    num_scenes, num_proposals, num_steps = ego_center.shape[:3]
    num_obj_steps, num_agents = obj_center.shape[1:3]
    if obj_steps is not None:
        candidate = candidate.index_select(2, obj_steps)
    candidate = candidate.expand(num_scenes, -1, num_steps, num_agents)

    # objects near the bounding box of the (valid) ego centres of their scene and step: the distance to
    # the box is at most the distance to any centre inside it, also after rounding
    if ego_valid is None:
        low, high = ego_center.amin(dim=1), ego_center.amax(dim=1)  # (B, S, 2)
    else:
        low = torch.where(ego_valid[..., None], ego_center, math.inf).amin(dim=1)
        high = torch.where(ego_valid[..., None], ego_center, -math.inf).amax(dim=1)
    some_candidate = candidate.any(dim=1) if candidate.shape[1] > 1 else candidate[:, 0]
    # the distance test only on the candidate objects (most slots are padding or absent objects), in the
    # row-major order of the full grid; gathers by flat index (index_select), far cheaper than
    # multi-tensor advanced indexing at these sizes
    b, s, a = torch.nonzero(some_candidate).unbind(dim=-1)
    obj_s = s if obj_steps is None else obj_steps[s]
    slot = (b * num_obj_steps + obj_s) * num_agents + a
    center = obj_center.reshape(-1, 2).index_select(0, slot) if obj_center.is_contiguous() else obj_center[b, obj_s, a]
    radius = obj_radius.reshape(-1).index_select(0, slot) if obj_radius.is_contiguous() else obj_radius[b, obj_s, a]
    near_reach = ego_radius + radius + _MARGIN
    step = b * num_steps + s
    gap = torch.maximum((low.reshape(-1, 2).index_select(0, step) - center).clamp(min=0),
                        (center - high.reshape(-1, 2).index_select(0, step)).clamp(min=0))
    keep = torch.nonzero(gap[:, 0] * gap[:, 0] + gap[:, 1] * gap[:, 1] <= near_reach * near_reach)[:, 0]
    b, s, a, center, near_reach = (v.index_select(0, keep) for v in (b, s, a, center, near_reach))

    # each of those objects against every proposal of its scene and step
    ego = ego_center[b, :, s]  # (K1, P, 2)
    dx = ego[..., 0] - center[:, 0][:, None]  # (K1, P)
    dy = ego[..., 1] - center[:, 1][:, None]
    close = (dx * dx + dy * dy <= (near_reach * near_reach)[:, None]) & candidate[b, :, s, a]
    if ego_valid is not None:
        close &= ego_valid[b, :, s]
    k, p = torch.nonzero(close).unbind(dim=-1)
    rows = torch.stack([b[k], p, s[k], a[k]], dim=-1)
    key = ((rows[:, 0] * num_proposals + rows[:, 1]) * num_steps + rows[:, 2]) * num_agents + rows[:, 3]
    return rows[key.argsort()]


def first_contacts(order: Tensor, object_key: Tensor, num_keys: int, ego_boxes: Tensor, obj_boxes: Tensor) -> Tensor:
    """Indices (L,) of the earliest row per object whose boxes touch (shapely `intersects`).

    order (K,) int64 is unique per object (e.g. the step); object_key (K,) int64 in [0, num_keys),
    e.g. (b * P + p) * A + a; ego_boxes, obj_boxes (K, 4, 2) [m]. A float separating-axis pass settles
    the clear cases; only near-touching rows earlier than their object's first clear contact get the
    exact `boxes_intersect`.
    """
    depth = _overlap_depth(ego_boxes, obj_boxes)
    surely = depth > _MARGIN
    never = torch.iinfo(torch.int64).max
    first_sure = torch.full((num_keys,), never, dtype=torch.int64, device=order.device)
    first_sure = first_sure.scatter_reduce(0, object_key[surely], order[surely], reduce="amin")
    # NaN depth (degenerate box) is neither sure nor apart: it goes to the exact test too
    unsure = ~surely & ~(depth < -_MARGIN) & (order < first_sure[object_key])
    unsure = torch.nonzero(unsure).flatten()
    exact = boxes_intersect(ego_boxes[unsure], obj_boxes[unsure])
    touching = torch.cat([torch.nonzero(surely).flatten(), unsure[exact]])
    earliest = torch.full((num_keys,), never, dtype=torch.int64, device=order.device)
    earliest = earliest.scatter_reduce(0, object_key[touching], order[touching], reduce="amin")
    return touching[order[touching] == earliest[object_key[touching]]].sort().values


def blame_result(pairs: Tensor, penalty: Tensor, num_scenes: int, num_proposals: int, num_agents: int) -> MetricResult:
    """Per-proposal result from at-fault contacts: pairs (L, 4) int64 rows (b, p, t, a), penalty (L,)
    = the score each contact caps its proposal at. value = min penalty (1 without contacts); step and
    agent come from the earliest contact (lowest object index on ties), -1 without contacts."""
    b, p, t, a = pairs.unbind(dim=-1)
    proposal = b * num_proposals + p
    num = num_scenes * num_proposals
    device = penalty.device
    value = torch.ones(num, dtype=torch.float64, device=device).scatter_reduce(
        0, proposal, penalty.to(torch.float64), reduce="amin"
    )
    never = torch.iinfo(torch.int64).max
    key = torch.full((num,), never, dtype=torch.int64, device=device)
    key = key.scatter_reduce(0, proposal, t * num_agents + a, reduce="amin")
    blamed = key != never
    step = torch.where(blamed, key // max(num_agents, 1), -1)
    agent = torch.where(blamed, key % max(num_agents, 1), -1)
    shape = (num_scenes, num_proposals)
    return MetricResult(value=value.reshape(shape), step=step.reshape(shape), agent=agent.reshape(shape))


def no_at_fault_collision(
    pose: Tensor,
    speed: Tensor,
    corners: Tensor,
    areas: EgoAreas,
    obs: Observation,
    vehicle: VehicleParams,
) -> MetricResult:
    """NC (B, P) in {0, 0.5, 1}.

    pose (B, P, T, 3) rear axle [m, rad]; speed (B, P, T) = hypot(vx, vy) [m/s]; corners (B, P, T, 4, 2)
    FL, RL, RR, FR [m]; obs must cover at least T steps. A contact is classified as nuPlan does, in order:
    ego stopped (not at fault); object stopped at its FIRST observation or static (at fault); object
    behind, > 150 deg from the ego heading (not at fault); front bumper FL->FR touches it (at fault);
    otherwise lateral, at fault only while the ego straddles lanes or leaves the drivable area.
    """
    num_scenes, num_proposals, num_steps = check_inputs(pose, speed, corners, areas, obs)
    num_agents = obs.valid.shape[2]

    obj_corners = obs.corners[:, :num_steps]
    ego_center, _ = bounding_circles(corners)
    obj_center, obj_radius = obs.circle_center[:, :num_steps], obs.circle_radius[:, :num_steps]
    ego_radius = math.hypot(vehicle.length, vehicle.width) / 2
    rows = near_pairs(ego_center, ego_radius, obj_center, obj_radius, obs.valid[:, None, :num_steps])
    b, p, t, a = rows.unbind(dim=-1)
    key = (b * num_proposals + p) * num_agents + a
    first = first_contacts(t, key, num_scenes * num_proposals * num_agents, corners[b, p, t], obj_corners[b, t, a])
    pairs = rows[first]
    b, p, t, a = pairs.unbind(dim=-1)

    ego_stopped = speed[b, p, t] <= STOPPED_SPEED
    # nuPlan reads the object as first observed (`unique_objects`), not at the contact step.
    track_stopped = ~obs.is_agent[b, a] | (obs.first_speed[b, a] <= STOPPED_SPEED)
    behind = relative_angle(pose[b, p, t], obs.center[b, t, a]) > BEHIND_ANGLE
    obj_box = obs.corners[b, t, a]
    front = segment_intersects_box(corners[b, p, t, 0], corners[b, p, t, 3], obj_box)
    lateral_at_fault = areas.multiple_lanes[b, p, t] | areas.non_drivable[b, p, t]
    at_fault = ~ego_stopped & (track_stopped | (~behind & (front | lateral_at_fault)))

    penalty = torch.where(obs.is_agent[b, a], 0.0, STATIC_OBJECT_PENALTY).to(torch.float64)
    return blame_result(pairs[at_fault], penalty[at_fault], num_scenes, num_proposals, num_agents)


def check_inputs(
    pose: Tensor, speed: Tensor, corners: Tensor, areas: EgoAreas, obs: Observation
) -> tuple[int, int, int]:
    """Reject ego / observation tensors that do not fit together (NC and TTC); returns (B, P, T)."""
    if pose.ndim != 4 or pose.shape[-1] != 3:
        raise ValueError(f"pose.shape={tuple(pose.shape)}: expected (B, P, T, 3)")
    steps_shape = tuple(pose.shape[:3])
    if tuple(speed.shape) != steps_shape:
        raise ValueError(f"speed.shape={tuple(speed.shape)}: expected {steps_shape} like pose")
    if tuple(corners.shape) != (*steps_shape, 4, 2):
        raise ValueError(f"corners.shape={tuple(corners.shape)}: expected {(*steps_shape, 4, 2)}")
    if tuple(areas.non_drivable.shape) != steps_shape:
        raise ValueError(f"areas.non_drivable.shape={tuple(areas.non_drivable.shape)}: expected {steps_shape}")
    if obs.valid.shape[0] != steps_shape[0]:
        raise ValueError(f"obs.valid.shape={tuple(obs.valid.shape)}: batch differs from pose ({steps_shape[0]})")
    if obs.num_steps < steps_shape[2]:
        raise ValueError(f"obs.num_steps={obs.num_steps}: must cover the {steps_shape[2]} ego steps")
    for name, tensor in (("pose", pose), ("speed", speed), ("corners", corners)):
        bad = ~torch.isfinite(tensor)
        if bool(bad.any()):
            raise ValueError(f"{name}={tensor[bad][0].item()!r} (one of {int(bad.sum())}): must be finite")
    return steps_shape


def _overlap_depth(a: Tensor, b: Tensor) -> Tensor:
    """Separating-axis overlap of convex quads a, b (K, 4, 2) [m] -> (K,): the smallest overlap of their
    projections on the 8 edge normals; negative = the widest gap along a separating axis. A float
    prefilter: within a rounding-safe margin of 0 the exact test decides."""
    edges = torch.cat([a.roll(-1, dims=-2) - a, b.roll(-1, dims=-2) - b], dim=-2)  # (K, 8, 2)
    normals = torch.stack([-edges[..., 1], edges[..., 0]], dim=-1)
    normals = normals / torch.sqrt((normals * normals).sum(dim=-1, keepdim=True))
    project_a = torch.einsum("kvd,kad->kav", a, normals)  # (K, 8 axes, 4 corners)
    project_b = torch.einsum("kvd,kad->kav", b, normals)
    low = torch.maximum(project_a.amin(dim=-1), project_b.amin(dim=-1))
    high = torch.minimum(project_a.amax(dim=-1), project_b.amax(dim=-1))
    return (high - low).amin(dim=-1)
