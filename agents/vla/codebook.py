"""AutoVLA-style action codebook: K motions of 0.5 s ego segments, built by k-disk clustering of expert
plans; a plan is encoded as L = 8 codebook indices and decoded by chaining their motions.

A segment is the motion (dx, dy, dyaw) from one plan pose to the next, expressed in the frame of the
first (pose 0 is the ego origin). As in AutoVLA (`tools/preprocessing/create_action_codebook.py`),
segments are compared by the mean distance between the 4 corners of the ego box at their end poses.
AutoVLA stores 6 box sub-steps per segment from 10 Hz logs; plans here have 0.5 s poses only, so a
segment is its end pose.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from agents.base import load_checkpoint, save_checkpoint

BOX_LENGTH = 4.8
"""[m] Ego box length used to compare segments (AutoVLA's 4.8 x 2.0 box), centred on the pose."""
BOX_WIDTH = 2.0
"""[m]"""
KDISK_RADIUS = 0.05
"""[m] AutoVLA's k-disk radius (mean corner distance)."""


@dataclass(frozen=True)
class Codebook:
    """K segment motions; token k means "move by motions[k]" in the current pose's frame."""

    motions: Tensor = field(metadata={"dims": "K 3"})
    """float64 dx, dy [m], dyaw [rad]; motions[0] is standing still."""
    interval: float = 0.5
    """[s] Duration of one segment."""

    def __post_init__(self):
        if self.motions.ndim != 2 or self.motions.shape[1] != 3 or len(self.motions) < 1:
            raise ValueError(f"motions.shape={tuple(self.motions.shape)}: expected (K >= 1, 3)")
        if not torch.isfinite(self.motions).all():
            raise ValueError("motions: must be finite")

    def __len__(self) -> int:
        return len(self.motions)

    def to(self, device) -> "Codebook":
        return Codebook(self.motions.to(device), self.interval)


def box_corners(poses: Tensor) -> Tensor:
    """(..., 3) poses -> (..., 4, 2) corners of the BOX_LENGTH x BOX_WIDTH box centred on each pose."""
    half = torch.tensor([[1, 1], [1, -1], [-1, -1], [-1, 1]], dtype=poses.dtype, device=poses.device)
    half = half * torch.tensor([BOX_LENGTH / 2, BOX_WIDTH / 2], dtype=poses.dtype, device=poses.device)
    cos, sin = torch.cos(poses[..., 2:3]), torch.sin(poses[..., 2:3])                # (..., 1)
    x = poses[..., :1] + cos * half[:, 0] - sin * half[:, 1]
    y = poses[..., 1:2] + sin * half[:, 0] + cos * half[:, 1]
    return torch.stack([x, y], dim=-1)


def corner_distance(a: Tensor, b: Tensor) -> Tensor:
    """Mean distance [m] between the box corners of poses a and b (broadcast (..., 3) -> (...))."""
    return torch.linalg.vector_norm(box_corners(a) - box_corners(b), dim=-1).mean(-1)


def plan_segments(plans: Tensor) -> Tensor:
    """(..., L, 3) ego-frame plans -> (..., L, 3) motions of each segment in the frame of its start pose."""
    start = torch.cat([torch.zeros_like(plans[..., :1, :]), plans[..., :-1, :]], dim=-2)
    delta = plans[..., :2] - start[..., :2]
    cos, sin = torch.cos(start[..., 2]), torch.sin(start[..., 2])
    dx = cos * delta[..., 0] + sin * delta[..., 1]
    dy = -sin * delta[..., 0] + cos * delta[..., 1]
    dyaw = torch.atan2(torch.sin(plans[..., 2] - start[..., 2]), torch.cos(plans[..., 2] - start[..., 2]))
    return torch.stack([dx, dy, dyaw], dim=-1)


def chain_segments(motions: Tensor) -> Tensor:
    """(..., L, 3) segment motions -> (..., L, 3) ego-frame poses reached after each (inverse of plan_segments)."""
    heading = torch.cumsum(motions[..., 2], dim=-1)                                     # after each segment
    start_heading = heading - motions[..., 2]
    cos, sin = torch.cos(start_heading), torch.sin(start_heading)
    step_x = cos * motions[..., 0] - sin * motions[..., 1]
    step_y = sin * motions[..., 0] + cos * motions[..., 1]
    wrapped = torch.atan2(torch.sin(heading), torch.cos(heading))
    return torch.stack([torch.cumsum(step_x, -1), torch.cumsum(step_y, -1), wrapped], dim=-1)


def decode_tokens(codebook: Codebook, tokens: Tensor) -> Tensor:
    """(..., L) int64 token indices -> (..., L, 3) float64 ego-frame plans."""
    if tokens.numel() and (tokens.min() < 0 or tokens.max() >= len(codebook)):
        raise ValueError(f"tokens: values must be in [0, {len(codebook)}); got [{int(tokens.min())}, {int(tokens.max())}]")
    return chain_segments(codebook.motions.to(tokens.device)[tokens])


def encode_plans(codebook: Codebook, plans: Tensor) -> Tensor:
    """(B, L, 3) ego-frame plans -> (B, L) tokens, greedily: each token is the motion whose end box from the
    pose decoded so far lies closest (mean corner distance) to the plan's next pose, so errors do not accumulate."""
    plans = plans.to(torch.float64)
    if plans.ndim != 3 or plans.shape[-1] != 3:
        raise ValueError(f"plans.shape={tuple(plans.shape)}: expected (B, L, 3)")
    motions = codebook.motions.to(plans.device, torch.float64)
    pose = torch.zeros(plans.shape[0], 3, dtype=torch.float64, device=plans.device)
    tokens = []
    for step in range(plans.shape[1]):                    # sequential: each choice depends on the last
        cos, sin = torch.cos(pose[:, 2:3]), torch.sin(pose[:, 2:3])
        candidates = torch.stack([
            pose[:, :1] + cos * motions[:, 0] - sin * motions[:, 1],
            pose[:, 1:2] + sin * motions[:, 0] + cos * motions[:, 1],
            pose[:, 2:3] + motions[:, 2],
        ], dim=-1)                                                                    # (B, K, 3)
        best = corner_distance(candidates, plans[:, None, step]).argmin(dim=-1)      # (B,)
        tokens.append(best)
        pose = candidates[torch.arange(len(best), device=plans.device), best]
    return torch.stack(tokens, dim=-1)


def build_codebook(expert_plans: Tensor, size: int, radius: float = KDISK_RADIUS,
                   gen: torch.Generator | None = None) -> Codebook:
    """K-disk clustering of the 0.5 s segments of expert plans (N, L, 3) into at most `size` motions.

    Token 0 is standing still and absorbs the segments within `radius` of it; then, until `size`
    tokens exist or no segment is left, a random remaining segment absorbs every remaining one within
    `radius` [m] (mean corner distance) and the cluster's mean motion (circular mean of dyaw) becomes
    a token. Fewer than `size` tokens are returned when the segments run out.
    """
    if expert_plans.ndim != 3 or expert_plans.shape[-1] != 3 or expert_plans.shape[0] == 0:
        raise ValueError(f"expert_plans.shape={tuple(expert_plans.shape)}: expected (N >= 1, L, 3)")
    if size < 1:
        raise ValueError(f"size={size}: must be >= 1")
    if not radius > 0:
        raise ValueError(f"radius={radius}: must be > 0 [m]")
    remaining = plan_segments(expert_plans.to(torch.float64)).reshape(-1, 3)
    if not torch.isfinite(remaining).all():
        raise ValueError("expert_plans: must be finite")
    still = torch.zeros(1, 3, dtype=torch.float64)
    remaining = remaining[corner_distance(remaining, still) > radius]
    motions = [still[0]]
    while len(motions) < size and len(remaining):          # sequential by construction (k-disk)
        pick = int(torch.randint(len(remaining), (1,), generator=gen))
        near = corner_distance(remaining, remaining[pick]) <= radius
        members = remaining[near]
        mean_yaw = torch.atan2(torch.sin(members[:, 2]).mean(), torch.cos(members[:, 2]).mean())
        motions.append(torch.cat([members[:, :2].mean(0), mean_yaw[None]]))
        remaining = remaining[~near]
    return Codebook(torch.stack(motions))


def grid_codebook(size: int = 256, max_step: float = 10.0, max_yaw: float = 0.6) -> Codebook:
    """A data-free codebook: standing still plus constant-curvature arcs on a (length x yaw change) grid.

    Lengths are 0.25 .. max_step [m] per 0.5 s (0.5 .. 20 m/s); yaw changes span ±max_yaw [rad], denser
    near 0. With size - 1 = speeds x yaws + r, the r leftover entries are straight segments at mid lengths.
    """
    if size < 1:
        raise ValueError(f"size={size}: must be >= 1")
    count = size - 1
    root = int(count ** 0.5)
    num_yaw = max(1, root if root % 2 else root - 1)          # odd, so dyaw = 0 is on the grid
    num_speed = count // num_yaw
    half = num_yaw // 2
    u = torch.arange(-half, half + 1, dtype=torch.float64) / max(half, 1)        # exactly 0 in the middle
    yaw = max_yaw * u * u.abs()
    length = torch.linspace(0.25, max_step, max(num_speed, 1), dtype=torch.float64)[:num_speed]
    s, dyaw = torch.meshgrid(length, yaw, indexing="ij")
    safe = torch.where(dyaw.abs() > 1e-9, dyaw, torch.ones_like(dyaw))
    dx = torch.where(dyaw.abs() > 1e-9, s * torch.sin(dyaw) / safe, s)
    dy = torch.where(dyaw.abs() > 1e-9, s * (1 - torch.cos(dyaw)) / safe, torch.zeros_like(s))
    arcs = torch.stack([dx, dy, dyaw], dim=-1).reshape(-1, 3)
    leftover = count - len(arcs)
    mids = torch.linspace(0.25, max_step, leftover + 2, dtype=torch.float64)[1:-1]
    straight = torch.stack([mids, torch.zeros_like(mids), torch.zeros_like(mids)], dim=-1)
    return Codebook(torch.cat([torch.zeros(1, 3, dtype=torch.float64), arcs, straight]))


def save_codebook(codebook: Codebook, path: str | Path) -> None:
    """Write a codebook file (atomic)."""
    save_checkpoint({"kind": "codebook", "motions": codebook.motions.cpu(), "interval": codebook.interval}, path)


def load_codebook(path: str | Path) -> Codebook:
    """Read a file written by `save_codebook`."""
    payload = load_checkpoint(path, "codebook", map_location="cpu")
    return Codebook(payload["motions"].to(torch.float64), float(payload["interval"]))
