"""The route near the ego as the rule agents see it: a polyline in the ego frame rebuilt from the observation's
target points, with Frenet coordinates (arc along it, offset across it) and a sideways shift that ramps in
(lane changes, nudges). Batched torch; B routes, M knots, N query points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
from torch import Tensor

PATH_BEHIND = 30.0
"""[m] the path is extended straight this far behind the ego's route point (emergency vehicles come from there)."""


@dataclass(frozen=True)
class RoutePath:
    """The route near the ego as a polyline in the ego frame (knots, arc 0 at the ego's projection), and a
    sideways shift (left +) that ramps from `offset_now` at the ego to `offset_target` over `ramp` metres."""

    xy: Tensor              # (B, M, 2) knots
    heading: Tensor         # (B, M-1) [rad] of each segment
    arc: Tensor             # (B, M) [m]
    offset_now: Tensor      # (B,) [m]
    offset_target: Tensor   # (B,) [m]
    ramp: Tensor            # (B,) [m]


def unit(heading: Tensor) -> Tensor:
    return torch.stack([torch.cos(heading), torch.sin(heading)], -1)


def offset_at(path: RoutePath, arc: Tensor) -> Tensor:
    """Sideways shift [m] of the path at arc (B, N) [m] (smoothstep ramp; offset_now behind the ego)."""
    u = (arc / path.ramp[:, None]).clamp(0.0, 1.0)
    return path.offset_now[:, None] + (path.offset_target - path.offset_now)[:, None] * u * u * (3.0 - 2.0 * u)


def shift_path(path: RoutePath, offset_now: Tensor, offset_target: Tensor, ramp: Tensor) -> RoutePath:
    """The same route with another sideways shift: from offset_now (B,) at the ego to offset_target (B,) [m]."""
    return replace(path, offset_now=offset_now, offset_target=offset_target, ramp=ramp)


def frenet(points: Tensor, path: RoutePath) -> tuple[Tensor, Tensor, Tensor]:
    """Points (B, N, 2) -> arc along the path (B, N) [m], lateral offset from the shifted path (B, N) [m, left +]
    and the path heading there. Projects on the two segments at the nearest knot (extended past both ends)."""
    last = path.heading.shape[1] - 1
    px, py = points[..., 0], points[..., 1]
    dx, dy = px[:, :, None] - path.xy[:, None, :, 0], py[:, :, None] - path.xy[:, None, :, 1]   # small last axes
    nearest = (dx * dx + dy * dy).argmin(-1)                                                     # (B, N)   are slow
    best = None
    for segment in ((nearest - 1).clamp(0, last), nearest.clamp(0, last)):
        heading = path.heading.gather(1, segment)
        cos, sin = torch.cos(heading), torch.sin(heading)
        rx = px - path.xy[..., 0].gather(1, segment)
        ry = py - path.xy[..., 1].gather(1, segment)
        t = rx * cos + ry * sin
        start_arc = path.arc.gather(1, segment)
        length = path.arc.gather(1, segment + 1) - start_arc
        t_in = t.clamp(min=0.0).minimum(length)
        miss = (rx - t_in * cos).square() + (ry - t_in * sin).square()
        # inner segments project onto the segment itself (a point off a bend is that far from it), the end
        # segments onto their extensions (the path goes straight on past both ends)
        t_use = torch.where(segment == 0, t.minimum(length), torch.where(segment == last, t.clamp(min=0.0), t_in))
        off_x, off_y = rx - t_use * cos, ry - t_use * sin
        side = torch.where(cos * ry - sin * rx < 0.0, -1.0, 1.0)
        found = (miss, start_arc + t_use, side * (off_x.square() + off_y.square()).sqrt(), heading)
        best = found if best is None else tuple(torch.where(found[0] < best[0], f, b) for f, b in zip(found, best))
    _, along, lateral, heading = best
    return along, lateral - offset_at(path, along), heading


def route_path(targets: Tensor) -> tuple[RoutePath, Tensor]:
    """Target points (B, K, 2) -> the route polyline from PATH_BEHIND metres behind the ego (straight back along
    its heading) to the last point, going straight on where the points repeat (the route ends there); and the ego's lateral
    offset (B,) [m, left +] from it."""
    b, k, _ = targets.shape
    if k < 2:
        raise ValueError(f"target_points.shape={tuple(targets.shape)}: the rules need at least 2 target points")
    step = targets[:, 1:] - targets[:, :-1]
    length = step.norm(dim=-1)
    moving = length > 0.1
    index = torch.arange(k - 1, device=targets.device).expand(b, -1)
    last = torch.where(moving, index, -1).cummax(-1).values                          # last real segment so far
    first = torch.where(moving.any(-1), moving.long().argmax(-1), 0)
    unit_of = lambda i: step.gather(1, i[..., None].expand(*i.shape, 2)) / length.gather(1, i).clamp(min=1e-9)[..., None]
    start_dir = torch.where(moving.any(-1, keepdim=True), unit_of(first[:, None])[:, 0],
                            torch.tensor([1.0, 0.0], dtype=targets.dtype, device=targets.device))
    direction = torch.where((last >= 0)[..., None], unit_of(last.clamp(min=0)), start_dir[:, None])
    spacing = torch.where(moving, length, 0.0).amax(-1).clamp(min=1.0)                  # the target spacing
    step = torch.where(moving[..., None], step, direction * spacing[:, None, None])     # route end: go straight on
    # behind: from the route point one spacing before the first target, straight back along the ego's own
    # heading (the ego frame's x axis; the way it came, right on bends), where emergency vehicles come from
    anchor = targets[:, :1] - start_dir[:, None] * spacing[:, None, None]
    back = torch.arange(math.ceil(PATH_BEHIND / 5.0), -1, -1, dtype=targets.dtype, device=targets.device) * 5.0
    behind = anchor - torch.stack([back, torch.zeros_like(back)], -1)[None]
    knots = torch.cat([behind, targets[:, :1], targets[:, :1] + step.cumsum(1)], 1)     # (B, M, 2)
    seg = knots[:, 1:] - knots[:, :-1]
    arc = torch.cat([torch.zeros_like(seg[:, :1, 0]), seg.norm(dim=-1).cumsum(-1)], 1)
    zeros = torch.zeros_like(arc[:, 0])
    path = RoutePath(knots, torch.atan2(seg[..., 1], seg[..., 0]), arc, zeros, zeros, torch.ones_like(zeros))
    along, lateral, _ = frenet(torch.zeros_like(knots[:, :1]), path)
    return replace(path, arc=arc - along), lateral[:, 0]


def point_at(path: RoutePath, arc: Tensor) -> Tensor:
    """The shifted path's point (B, 2) at arc (B,) [m]."""
    segment = (torch.searchsorted(path.arc.contiguous(), arc[:, None].contiguous()) - 1).clamp(0, path.heading.shape[1] - 1)
    heading = path.heading.gather(1, segment)[:, 0]
    start = path.xy.gather(1, segment[..., None].expand(-1, -1, 2))[:, 0]
    return (start + (arc - path.arc.gather(1, segment)[:, 0])[:, None] * unit(heading)
            + offset_at(path, arc[:, None])[:, 0, None] * unit(heading + math.pi / 2))


def box_extents(size: Tensor, relative: Tensor) -> tuple[Tensor, Tensor]:
    """Half extents along / across a path of boxes (..., 2) turned by `relative` (...) [rad] from it."""
    cos, sin = torch.cos(relative).abs(), torch.sin(relative).abs()
    half_len, half_wid = 0.5 * size[..., 0], 0.5 * size[..., 1]
    return half_len * cos + half_wid * sin, half_len * sin + half_wid * cos


def pure_pursuit_steer(aim: Tensor, wheelbase: float, max_steer: float) -> Tensor:
    """Steer command (B,) in [-1, 1], CARLA's sign (positive turns right), that puts the rear axle (wheelbase / 2
    behind the box centre) on a circle through the aim point (B, 2) [m] of the ego frame (x forward, y left)."""
    rel = aim + torch.tensor([0.5 * wheelbase, 0.0], dtype=aim.dtype, device=aim.device)
    wheel = torch.atan2(2.0 * wheelbase * torch.sin(torch.atan2(rel[:, 1], rel[:, 0])), rel.norm(dim=-1).clamp(min=1.0))
    return (-wheel / max_steer).clamp(-1.0, 1.0)
