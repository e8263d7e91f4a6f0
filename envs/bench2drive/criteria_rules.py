"""Batched geometric tests behind the Bench2Drive criteria: route windows, box contact, stop-line crossing,
stop-sign trigger boxes. Pure torch on (B, ...) tensors, written for few kernel launches per tick.

Letters: B routes, N dense-route points, K window points, A actor slots, L lights, S stop signs, W waypoints.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from torch import Tensor

PASSED_REACH = (0, 1, 2, 2, 3, 3, 3, 3)
"""Furthest passed offset (1..3) for each 3-bit mask of passed points c+1, c+2, c+3 (bit k-1 = point c+k)."""


def route_step_table(xy: np.ndarray, last: int) -> np.ndarray:
    """(N, 8) metres OutsideRouteLanesTest adds from point i for each 3-bit mask of passed points i+1..i+3.

    The official loop walks the window in order and adds the straight distance from the last passed point
    (starting at i) to each newly passed one; indices past the route end are clamped to `last`.
    """
    n = len(xy)
    out = np.zeros((n, 8))
    for mask in range(1, 8):
        total = np.zeros(n)
        prev = np.arange(n)
        for k in (1, 2, 3):
            if mask >> (k - 1) & 1:
                nxt = np.minimum(np.arange(n) + k, last)
                total += np.linalg.norm(xy[nxt] - xy[np.minimum(prev, last)], axis=1)
                prev = nxt
        out[:, mask] = total
    return out


def window_points(route_xy: Tensor, forward: Tensor, arc: Tensor, window: Tensor,
                  ego: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Route points of a window: (ego - point (B, K) complex, passed (B, K) bool, arc (B, K) [m]).

    route_xy, forward (B, N) complex (unit forward vectors), arc (B, N) [m]; window (B, K) int64 point
    indices; ego (B,) complex. A point is passed when dot(ego - point, point forward) > 0
    (RouteCompletionTest and its siblings)."""
    rel = ego[:, None] - route_xy.gather(1, window)
    return rel, (rel * forward.gather(1, window).conj()).real > 0, arc.gather(1, window)


def boxes_touch(ego_pose: Tensor, ego_size: Tensor, pose: Tensor, size: Tensor) -> Tensor:
    """Separating-axis test: ego box (B, 3) + (B, 2) [x, y, heading; length, width] against actor boxes
    (B, A, 3) + (B, A, 2) -> (B, A) bool; touching counts (CARLA's collision sensor fires on contact).

    The centre offset (dx, dy) is projected on the ego's and the actor's axes; c, s are |cos|, |sin| of the
    relative heading. On each of the 4 axes the offset must not exceed the two half extents projected on it:
    |dx ce + dy se| <= el + l c + w s, |dy ce - dx se| <= ew + l s + w c on the ego's axes (ce, se: its
    cos, sin; el, ew: its half length, width) and the same with the roles swapped on the actor's. Pairs of
    axes share one (B, A, 2) op; each value is the same product-and-sum as written out (bit for bit)."""
    ego_cos, ego_sin = torch.cos(ego_pose[:, 2:3])[..., None], torch.sin(ego_pose[:, 2:3])[..., None]   # (B, 1, 1)
    cos, sin = torch.cos(pose[..., 2]), torch.sin(pose[..., 2])                                          # (B, A)
    sign = _plus_minus(ego_pose.dtype, str(ego_pose.device))
    offset = pose[..., :2] - ego_pose[:, None, :2]                                    # (B, A, 2): dx, dy
    swapped = offset.flip(-1)
    ego_sin = ego_sin * sign                                                          # se, -se
    in_ego = (offset * ego_cos + swapped * ego_sin).abs()
    in_actor = (offset * cos[..., None] + swapped * (sin[..., None] * sign)).abs()
    unit = torch.stack([cos, sin], -1)
    turn = (unit * ego_cos + unit.flip(-1) * ego_sin).abs()                          # c, s
    other = turn.flip(-1)                                                             # s, c
    half, ego_half = size / 2, (ego_size / 2)[:, None]
    reach_ego = ego_half + half[..., 0:1] * turn + half[..., 1:2] * other
    reach_actor = half + ego_half[..., 0:1] * turn + ego_half[..., 1:2] * other
    return ((in_ego <= reach_ego) & (in_actor <= reach_actor)).all(-1)


@functools.lru_cache(maxsize=16)
def _plus_minus(dtype: torch.dtype, device: str) -> Tensor:
    """[1, -1] (cached; callers must not write to it)."""
    return torch.tensor([1.0, -1.0], dtype=dtype, device=device)


@functools.lru_cache(maxsize=256)
def arange_constant(n: int, device: str) -> Tensor:
    """0..n-1 (int64) on `device`, one cached copy per size and device: callers must not write to it."""
    return torch.arange(n, device=device)


def as_complex(xy: Tensor) -> Tensor:
    """Points (..., 2) as complex (...): a free view when the layout allows it, else a copy."""
    if xy.stride(-1) == 1 and xy.storage_offset() % 2 == 0 and all(st % 2 == 0 for st in xy.stride()[:-1]):
        return torch.view_as_complex(xy)
    return torch.complex(xy[..., 0], xy[..., 1])


def crosses_lines(segment: Tensor, origin: Tensor, frame: Tensor, length: Tensor) -> Tensor:
    """Does the segment (B, 2) complex [start, end] cross each line (B, L): start `origin` complex, `frame`
    = conj(unit direction) complex, `length` [m]? -> (B, L) bool; touching counts, collinear does not.

    In each line's frame the segment's end points have across-coordinates a0, a1: it crosses when they
    differ in sign (or one is 0) and the crossing point lies within [0, length] along the line."""
    z = (segment[:, None, :] - origin[..., None]) * frame[..., None]                       # (B, L, 2)
    b0, b1 = z.real.unbind(-1)
    a0, a1 = z.imag.unbind(-1)
    along = b0 + a0 / (a0 - a1) * (b1 - b0)
    return (a0 * a1 <= 0) & (along >= 0) & (along <= length)


def points_in_boxes(points: Tensor, center: Tensor, frame: Tensor, half: Tensor) -> Tensor:
    """Does any of the points (B, W) complex lie strictly inside each box (B, S): `center` complex,
    `frame` = conj(unit forward) complex, `half` (B, S, 2) half length and width -> (B, S) bool."""
    local = torch.view_as_real((points[:, None, :] - center[..., None]) * frame[..., None]).abs()   # (B, S, W, 2)
    return (local < half[:, :, None]).all(-1).any(-1)


def first_true(mask: Tensor) -> tuple[Tensor, Tensor]:
    """(any (B,), index of the first True (B,) with -1 where none) of a (B, K) bool mask."""
    if mask.shape[1] == 0:
        return mask.any(-1), torch.full(mask.shape[:1], -1, dtype=torch.int64, device=mask.device)
    hit = mask.any(-1)
    return hit, mask.to(torch.uint8).argmax(-1).masked_fill(~hit, -1)


def pick(values: Tensor, index: Tensor) -> Tensor:
    """values (B, K, ...) at index (B,) (clamped into range) -> (B, ...); zeros when K is 0."""
    if values.shape[1] == 0:
        return values.new_zeros((values.shape[0], *values.shape[2:]))
    index = index.clamp(0, values.shape[1] - 1)
    if values.dim() == 2:
        return values.gather(1, index[:, None])[:, 0]
    return values.gather(1, index.view(-1, 1, *([1] * (values.dim() - 2))).expand(-1, 1, *values.shape[2:])).squeeze(1)
