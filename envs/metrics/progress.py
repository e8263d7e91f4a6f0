"""NAVSIM Ego Progress (EP): raw progress along the centerline and its normalisation (v1.1, v2).

Sources: `PDMScorer._calculate_progress` and the EP part of `_aggregate_scores` / `_aggregate_pdm_scores`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from envs.sim.geometry import polyline_project

PROGRESS_DISTANCE_THRESHOLD = 5.0
"""[m] `progress_distance_threshold` (v1.1 and v2; it was 0.1 m in v1.0): below it every EP is 1."""

VERSIONS = ("v1", "v2")


def raw_progress(center_xy: Tensor, centerline: Tensor, centerline_valid: Tensor,
                 start_arc: Tensor | None = None) -> Tensor:
    """Metres travelled along the centerline: clip(project(last) - project(first), >= 0).

    center_xy (B, P, T, 2) box-centre positions [m]; centerline (B, Pc, 2) with centerline_valid
    (B, Pc) bool (a prefix of >= 2 vertices) -> (B, P) [m]. Projection is shapely `project` (arc length
    of the closest point), so reversing and overshooting past the end give no extra progress.
    `start_arc` (B,) [m]: project(first) where every proposal of a scene starts at the same point
    (`start_arc`), which then is not projected again.
    """
    if not isinstance(center_xy, Tensor) or center_xy.ndim != 4 or center_xy.shape[-1] != 2:
        shape = tuple(center_xy.shape) if isinstance(center_xy, Tensor) else type(center_xy).__name__
        raise ValueError(f"center_xy.shape={shape!r}: expected (B, P, T, 2)")
    batch, num_plans = center_xy.shape[:2]
    if start_arc is not None:
        if tuple(start_arc.shape) != (batch,):
            raise ValueError(f"start_arc.shape={tuple(start_arc.shape)!r}: expected ({batch},)")
        end = polyline_project(center_xy[:, :, -1], centerline, centerline_valid)
        return torch.clamp(end - start_arc[:, None], min=0.0)
    endpoints = torch.stack([center_xy[:, :, 0], center_xy[:, :, -1]], dim=2)  # (B, P, 2, 2)
    arc = polyline_project(endpoints.reshape(batch, num_plans * 2, 2), centerline, centerline_valid)
    arc = arc.reshape(batch, num_plans, 2)
    return torch.clamp(arc[..., 1] - arc[..., 0], min=0.0)


def start_arc(center_xy: Tensor, centerline: Tensor, centerline_valid: Tensor) -> Tensor:
    """project(first) of `raw_progress` for one start per scene: center_xy (B, 2) [m] -> (B,) [m]."""
    return polyline_project(center_xy[:, None], centerline, centerline_valid)[:, 0]


def normalized_progress(
    raw: Tensor, multiplier: Tensor, version: str, threshold: float = PROGRESS_DISTANCE_THRESHOLD
) -> Tensor:
    """EP of K proposals scored together (last dim), as NAVSIM normalises one scoring batch.

    raw (..., K) raw progress [m] >= 0; multiplier (..., K) the product of the multiplicative metrics
    (v1.1: NC*DAC; v2: NC*DAC*DDC*TLC). With masked = raw * multiplier and M = max_K masked:
      v1: M > threshold -> EP = masked / M (a failing proposal gets 0, NC 0.5 halves it);
          else EP = 1, except 0 where multiplier == 0.
      v2: M > threshold -> EP = clip(raw / M, 0, 1) (the proposal's own failures do not mask it);
          else EP = 1.
    In both, M ignores proposals whose multiplier is 0 (e.g. a colliding PDM-Closed reference).
    """
    if version not in VERSIONS:
        raise ValueError(f"version={version!r}: must be one of {VERSIONS}")
    if not (isinstance(threshold, (int, float)) and math.isfinite(threshold) and threshold >= 0):
        raise ValueError(f"threshold={threshold!r}: must be a finite number >= 0 [m]")
    for name, value in (("raw", raw), ("multiplier", multiplier)):
        if not isinstance(value, Tensor) or value.ndim < 1 or value.shape[-1] < 1:
            raise ValueError(f"{name}={type(value).__name__}: expected a tensor of shape (..., K>=1)")
    if raw.shape != multiplier.shape:
        raise ValueError(f"multiplier.shape={tuple(multiplier.shape)!r}: must equal raw.shape {tuple(raw.shape)}")
    raw = raw.to(torch.float64)
    multiplier = multiplier.to(torch.float64)
    bad_raw = ~torch.isfinite(raw) | (raw < 0)
    if bad_raw.any():
        first = tuple(int(i) for i in bad_raw.nonzero()[0])
        raise ValueError(f"raw{list(first)}={raw[first].item()!r}: raw progress must be finite and >= 0")
    bad_mult = ~torch.isfinite(multiplier) | (multiplier < 0) | (multiplier > 1)
    if bad_mult.any():
        first = tuple(int(i) for i in bad_mult.nonzero()[0])
        raise ValueError(f"multiplier{list(first)}={multiplier[first].item()!r}: must be in [0, 1]")

    masked = raw * multiplier
    norm = masked.amax(dim=-1, keepdim=True)
    above = norm > threshold
    safe_norm = torch.where(above, norm, torch.ones_like(norm))  # only read where above
    if version == "v1":
        below = torch.where(multiplier == 0.0, torch.zeros_like(raw), torch.ones_like(raw))
        return torch.where(above, masked / safe_norm, below)
    return torch.where(above, torch.clamp(raw / safe_norm, 0.0, 1.0), torch.ones_like(raw))
