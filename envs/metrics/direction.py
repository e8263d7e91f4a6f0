"""Driving Direction Compliance, DDC in {0, 1/2, 1} (NAVSIM `_calculate_driving_direction_compliance`).

v1.1 reports it with weight 0; v2 multiplies it in and ignores steps whose centre is in an intersection.
"""

from __future__ import annotations

import torch
from torch import Tensor

from envs.metrics.ego_areas import EgoAreas
from envs.metrics.result import MetricResult, first_step

WINDOW_STEPS = 10
"""int(driving_direction_horizon 1.0 s / 0.1 s); the window [t-10, t] holds 11 samples (NAVSIM slices inclusively)."""
COMPLIANCE_THRESHOLD = 2.0
"""[m] off-route distance within the window below which DDC = 1 (NAVSIM `PDMScorerConfig`)."""
VIOLATION_THRESHOLD = 6.0
"""[m] off-route distance within the window from which DDC = 0; in between DDC = 0.5."""
VERSIONS = ("v1", "v2")


def driving_direction_compliance(center: Tensor, areas: EgoAreas, version: str) -> MetricResult:
    """DDC (B, P) from the ego box centres (B, P, T, 2) [m] and the per-step areas.

    Distance driven with the centre outside every on-route lane, summed over 1 s windows; the worst
    window decides. `step` is the first step whose window reaches the threshold that set the value.
    """
    if version not in VERSIONS:
        raise ValueError(f"version={version!r}: expected one of {VERSIONS}")
    if center.ndim != 4 or center.shape[-1] != 2 or center.shape[:3] != areas.oncoming.shape:
        raise ValueError(
            f"center.shape={tuple(center.shape)}: expected (B, P, T, 2) matching areas {tuple(areas.oncoming.shape)}"
        )
    bad = ~torch.isfinite(center)
    if bool(bad.any()):
        raise ValueError(f"center={center[bad][0].item()!r} (one of {int(bad.sum())}): must be finite")
    displacement = center[..., 1:, :] - center[..., :-1, :]
    step_distance = torch.sqrt((displacement * displacement).sum(dim=-1))  # numpy linalg.norm
    step_distance = torch.cat([torch.zeros_like(step_distance[..., :1]), step_distance], dim=-1)
    counts = areas.oncoming
    if version == "v2":
        counts = counts & ~areas.center_in_intersection
    oncoming_distance = torch.where(counts, step_distance, 0.0)

    window_sum = _window_sums(oncoming_distance)
    worst = window_sum.amax(dim=-1)
    value = torch.where(
        worst < COMPLIANCE_THRESHOLD,
        1.0,
        torch.where(worst < VIOLATION_THRESHOLD, 0.5, 0.0),
    ).to(torch.float64)
    threshold = torch.where(value == 0.0, VIOLATION_THRESHOLD, COMPLIANCE_THRESHOLD)
    step = first_step((window_sum >= threshold[..., None]) & (value < 1.0)[..., None])
    return MetricResult(value=value, step=step, agent=torch.full_like(step, -1))


def _window_sums(distance: Tensor) -> Tensor:
    """Sums over the windows [max(0, t-10), t] of (B, P, T) -> (B, P, T), added in numpy's order.

    NAVSIM sums each window slice with numpy, whose pairwise summation adds short runs (< 8)
    left to right and longer ones as ((r0+r1)+(r2+r3))+((r4+r5)+(r6+r7)) followed by the rest left to
    right. Matching the order bit for bit keeps window sums that land on 2 m or 6 m on the same side.
    """
    size = WINDOW_STEPS + 1
    # right-aligned windows, zeros in front of step 0: window t holds distance[t - 10 + j] at j
    windows = torch.nn.functional.pad(distance, (WINDOW_STEPS, 0)).unfold(-1, size, 1)  # (B, P, T, 11)
    left_to_right = windows[..., 0]
    for j in range(1, size):
        left_to_right = left_to_right + windows[..., j]  # the leading zeros leave short runs exact
    window_length = torch.clamp(torch.arange(distance.shape[-1], device=distance.device) + 1, max=size)
    result = left_to_right
    for length in range(8, size + 1):
        r = windows[..., size - length :]
        first_half = (r[..., 0] + r[..., 1]) + (r[..., 2] + r[..., 3])
        total = first_half + ((r[..., 4] + r[..., 5]) + (r[..., 6] + r[..., 7]))
        for j in range(8, length):
            total = total + r[..., j]
        result = torch.where(window_length == length, total, result)
    return result
