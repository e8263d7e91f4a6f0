"""Batched 2D geometry in torch with shapely/GEOS semantics: SE(2) frames, boxes, polygons, polylines.

Shapes: `...` is any batch prefix; B scenes, N query points or boxes, P polyline vertices, R polygons,
V polygon vertices. Predicates use an exact orientation test (float filter plus an exact expansion
fallback), so touching and collinear cases agree with GEOS on the same float inputs.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Callable

import numpy as np
import torch
from torch import Tensor

# --------------------------------------------------------------------------- input checks


def _require_shape(name: str, tensor: Tensor, tail: tuple[int, ...]) -> None:
    if not isinstance(tensor, Tensor) or tensor.dim() < len(tail) or tuple(tensor.shape[-len(tail):]) != tail:
        shape = tuple(tensor.shape) if isinstance(tensor, Tensor) else type(tensor).__name__
        raise ValueError(f"{name}.shape={shape!r}: expected (..., {', '.join(map(str, tail))})")


def _require_finite(name: str, tensor: Tensor) -> None:
    bad = ~torch.isfinite(tensor)
    if bool(bad.any()):
        raise ValueError(f"{name}={tensor[bad][0].item()!r} (one of {int(bad.sum())} entries): must be finite")


# --------------------------------------------------------------------------- angles and SE(2) frames


def wrap_angle(angle: Tensor) -> Tensor:
    """Wrap angles to [-pi, pi] as NAVSIM `normalize_angle` does (atan2(sin, cos)) [rad].

    The interval is closed and both ends occur: the sign of the rounded sine picks the end, so
    wrap(pi) = pi and wrap(-pi) = -pi (sin(+-pi) rounds to +-1.2e-16), and wrap(3 pi / 2) = -pi / 2.
    """
    return torch.atan2(torch.sin(angle), torch.cos(angle))


def rotation(heading: Tensor) -> Tensor:
    """Rotation matrices [[cos, -sin], [sin, cos]] for headings (...) [rad] -> (..., 2, 2)."""
    cos, sin = torch.cos(heading), torch.sin(heading)
    return torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)


def to_global(local: Tensor, origin: Tensor) -> Tensor:
    """Poses (..., 3) [m, m, rad] given in the frame of `origin` (..., 3) -> global poses (..., 3).

    Same arithmetic as nuPlan `relative_to_absolute_poses` (3x3 matrix product, heading read back with
    atan2 from the composed rotation), so the heading is in [-pi, pi].
    """
    _require_shape("local", local, (3,))
    _require_shape("origin", origin, (3,))
    cos, sin = torch.cos(origin[..., 2]), torch.sin(origin[..., 2])
    cos_l, sin_l = torch.cos(local[..., 2]), torch.sin(local[..., 2])
    x = (cos * local[..., 0] - sin * local[..., 1]) + origin[..., 0]
    y = (sin * local[..., 0] + cos * local[..., 1]) + origin[..., 1]
    heading = torch.atan2(sin * cos_l + cos * sin_l, cos * cos_l - sin * sin_l)
    return torch.stack([x, y, heading], -1)


def to_local(global_pose: Tensor, origin: Tensor) -> Tensor:
    """Inverse of `to_global`: global poses (..., 3) -> poses in the frame of `origin` (..., 3).

    As NAVSIM `convert_absolute_to_relative_se2_array`: rotate the offset by -heading, wrap the heading.
    """
    _require_shape("global_pose", global_pose, (3,))
    _require_shape("origin", origin, (3,))
    xy = points_to_local(global_pose[..., :2], origin)
    return torch.cat([xy, wrap_angle(global_pose[..., 2] - origin[..., 2])[..., None]], -1)


def points_to_global(xy: Tensor, origin: Tensor) -> Tensor:
    """Points (..., 2) [m] in the frame of `origin` (..., 3) -> global points (..., 2)."""
    _require_shape("xy", xy, (2,))
    _require_shape("origin", origin, (3,))
    cos, sin = torch.cos(origin[..., 2]), torch.sin(origin[..., 2])
    x = (cos * xy[..., 0] - sin * xy[..., 1]) + origin[..., 0]
    y = (sin * xy[..., 0] + cos * xy[..., 1]) + origin[..., 1]
    return torch.stack([x, y], -1)


def points_to_local(xy: Tensor, origin: Tensor) -> Tensor:
    """Global points (..., 2) [m] -> points in the frame of `origin` (..., 3)."""
    _require_shape("xy", xy, (2,))
    _require_shape("origin", origin, (3,))
    cos, sin = torch.cos(origin[..., 2]), torch.sin(origin[..., 2])
    dx, dy = xy[..., 0] - origin[..., 0], xy[..., 1] - origin[..., 1]
    return torch.stack([dx * cos + dy * sin, dy * cos - dx * sin], -1)


def box_corners(center_xy: Tensor, heading: Tensor, length: float | Tensor, width: float | Tensor) -> Tensor:
    """Corners (..., 4, 2) of boxes in nuPlan `BBCoordsIndex` order FL, RL, RR, FR.

    center_xy (..., 2) [m]; heading (...) [rad], front = +x of the box; length, width [m] are floats or
    tensors broadcastable to (...). The offsets use nuPlan `translate_longitudinally_and_laterally`
    arithmetic (lat * cos(h + pi/2) + lon * cos(h)), which NAVSIM's ego footprint also uses.
    """
    _require_shape("center_xy", center_xy, (2,))
    half_length = torch.as_tensor(length, dtype=center_xy.dtype, device=center_xy.device) / 2.0
    half_width = torch.as_tensor(width, dtype=center_xy.dtype, device=center_xy.device) / 2.0
    for name, value in (("length", half_length), ("width", half_width)):
        if not bool((torch.isfinite(value) & (value >= 0)).all()):
            raise ValueError(f"{name}={length if name == 'length' else width!r}: must be finite and >= 0")
    lon = torch.stack([half_length, -half_length, -half_length, half_length], -1)   # FL, RL, RR, FR
    lat = torch.stack([half_width, half_width, -half_width, -half_width], -1)
    h = heading[..., None]
    dx = lat * torch.cos(h + math.pi / 2) + lon * torch.cos(h)
    dy = lat * torch.sin(h + math.pi / 2) + lon * torch.sin(h)
    return center_xy[..., None, :] + torch.stack([dx, dy], -1)


# --------------------------------------------------------------------------- exact predicates


def _two_sum(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """Knuth TwoSum: a + b = s + err exactly."""
    s = a + b
    b_virtual = s - a
    return s, (a - (s - b_virtual)) + (b - b_virtual)


def _two_prod(a: Tensor, b: Tensor, splitter: float) -> tuple[Tensor, Tensor]:
    """Dekker TwoProduct with Veltkamp splitting (no FMA needed): a * b = p + err exactly."""
    p = a * b
    a_big, b_big = splitter * a, splitter * b
    a_hi, b_hi = a_big - (a_big - a), b_big - (b_big - b)
    a_lo, b_lo = a - a_hi, b - b_hi
    return p, a_lo * b_lo - (((p - a_hi * b_hi) - a_lo * b_hi) - a_hi * b_lo)


def _splitter(dtype: torch.dtype) -> float:
    """Veltkamp splitting constant 2^ceil(p/2) + 1 for a p-bit mantissa."""
    return 2.0 ** math.ceil((1 - int(math.log2(torch.finfo(dtype).eps))) / 2) + 1.0


def _sqrt(x: Tensor) -> Tensor:
    """Correctly rounded sqrt, like the C library that GEOS uses (torch's vectorised CPU sqrt is only
    faithful, off by one ulp for ~1% of inputs): one Newton step on the exact residual x - r^2."""
    root = torch.sqrt(x)
    high, low = _two_prod(root, root, _splitter(x.dtype))
    return torch.where(root > 0, root + ((x - high) - low) / (2 * root), root)


def _exact_orientation_sign(ax, ay, bx, by, cx, cy) -> Tensor:
    """Exact sign of (a - c) x (b - c) for 1-D float tensors, as Shewchuk's exact orient2d.

    The determinant is written as 16 exact products of exact differences and summed with
    Grow-Expansion; the sign of a non-overlapping expansion is that of its largest non-zero component.
    """
    splitter = _splitter(ax.dtype)
    acx, acy, bcx, bcy = _two_sum(ax, -cx), _two_sum(ay, -cy), _two_sum(bx, -cx), _two_sum(by, -cy)
    terms: list[Tensor] = []
    for u in acx:
        for v in bcy:
            terms.extend(_two_prod(u, v, splitter))
    for u in acy:
        for v in bcx:
            terms.extend(-t for t in _two_prod(u, v, splitter))
    expansion: list[Tensor] = []
    for term in terms:
        grown = []
        for component in expansion:
            term, low = _two_sum(term, component)
            grown.append(low)
        expansion = grown + [term]
    sign = torch.zeros(ax.shape, dtype=torch.int8, device=ax.device)
    for component in expansion:       # increasing magnitude: the last non-zero one decides
        sign = torch.where(component != 0, torch.sign(component).to(torch.int8), sign)
    return sign


def _orientation_sign_xy(ax, ay, bx, by, cx, cy) -> Tensor:
    """Filtered exact orientation on coordinate tensors (broadcast); int8 in {-1, 0, 1}."""
    if all(c.dim() == 0 for c in (ax, ay, bx, by, cx, cy)):   # index the unsure entries of a batch of one
        return _orientation_sign_xy(*(c[None] for c in (ax, ay, bx, by, cx, cy)))[0]
    acx, acy, bcx, bcy = ax - cx, ay - cy, bx - cx, by - cy
    det_left, det_right = acx * bcy, acy * bcx
    det = det_left - det_right
    sign = torch.sign(det).to(torch.int8)
    # Shewchuk's ccwerrboundA: when the two products have opposite signs (or one is 0) the float
    # sign is already exact; otherwise it is exact once |det| exceeds (3 + 16 eps) eps |sum|.
    eps = torch.finfo(det.dtype).eps / 2
    bound = (3.0 + 16.0 * eps) * eps * (det_left.abs() + det_right.abs())
    unsure = (det.abs() <= bound) & (torch.sign(det_left) * torch.sign(det_right) > 0)
    where = unsure.nonzero(as_tuple=True)
    if where[0].numel():
        coords = torch.broadcast_tensors(ax, ay, bx, by, cx, cy)
        sign[where] = _exact_orientation_sign(*(c[where] for c in coords))
    return sign


def orientation_sign(a: Tensor, b: Tensor, c: Tensor) -> Tensor:
    """Exact sign of the turn a -> b -> c for points (..., 2) (broadcast) -> int8 (...).

    +1: counter-clockwise (c left of the line a->b), 0: collinear, -1: clockwise. Exact for any finite
    inputs, like GEOS `Orientation::index`.
    """
    return _orientation_sign_xy(a[..., 0], a[..., 1], b[..., 0], b[..., 1], c[..., 0], c[..., 1])


def _is_between(point: Tensor, start: Tensor, end: Tensor) -> Tensor:
    """For a point collinear with start-end: is it on the closed segment? Exact (signs of rounded
    differences are exact, so the dot product of (start - p) and (end - p) is <= 0 exactly when it is)."""
    d0, d1 = start - point, end - point
    return d0[..., 0] * d1[..., 0] + d0[..., 1] * d1[..., 1] <= 0


def segments_intersect(p0: Tensor, p1: Tensor, q0: Tensor, q1: Tensor) -> Tensor:
    """Do closed segments p0-p1 and q0-q1 (..., 2) share a point (touching counts)? -> bool (...)."""
    o1, o2 = orientation_sign(p0, p1, q0), orientation_sign(p0, p1, q1)
    o3, o4 = orientation_sign(q0, q1, p0), orientation_sign(q0, q1, p1)
    proper = (o1 * o2 < 0) & (o3 * o4 < 0)
    touching = (((o1 == 0) & _is_between(q0, p0, p1)) | ((o2 == 0) & _is_between(q1, p0, p1))
                | ((o3 == 0) & _is_between(p0, q0, q1)) | ((o4 == 0) & _is_between(p1, q0, q1)))
    return proper | touching


def ray_crossing(point: Tensor, start: Tensor, end: Tensor) -> tuple[Tensor, Tensor]:
    """GEOS `RayCrossingCounter` rule for one edge start->end and a point (all (..., 2), broadcast).

    Returns (crosses, on_edge), bool (...). `crosses`: the edge meets the ray from the point towards +x,
    half-open in y (exactly one endpoint strictly above the point). `on_edge`: the point is on the closed
    edge. Over a ring, an odd number of crossings and no `on_edge` means strict interior.
    """
    px, py = point[..., 0], point[..., 1]
    start_above, end_above = start[..., 1] > py, end[..., 1] > py
    sign = _orientation_sign_xy(start[..., 0], start[..., 1], end[..., 0], end[..., 1], px, py)
    # an upward edge passes right of the point when the point is on its left (sign > 0)
    crosses = (start_above != end_above) & torch.where(end_above, sign > 0, sign < 0)
    return crosses, (sign == 0) & _is_between(point, start, end)


def _point_in_ring(point: Tensor, start: Tensor, end: Tensor, edge_valid: Tensor | None = None) -> Tensor:
    """Closed point-in-ring: point (k, 2), edges (k, E, 2) -> bool (k,), True inside or on the boundary."""
    crosses, on_edge = ray_crossing(point[:, None, :], start, end)
    if edge_valid is not None:
        crosses, on_edge = crosses & edge_valid, on_edge & edge_valid
    return (crosses.sum(-1) % 2 == 1) | on_edge.any(-1)


def _where_candidates(candidate: Tensor, exact: Callable[..., Tensor], operands: tuple[Tensor, ...],
                      chunk: int) -> Tensor:
    """Run `exact` only on the True entries of `candidate` (torch.nonzero compaction), `chunk` at a time.

    Each operand has shape candidate.shape + trailing dims (expanded views are fine).
    """
    if candidate.dim() == 0:                 # unbatched call: give it a batch of one
        return _where_candidates(candidate[None], exact, tuple(op[None] for op in operands), chunk)[0]
    result = torch.zeros(candidate.shape, dtype=torch.bool, device=candidate.device)
    where = candidate.nonzero()
    for first in range(0, where.shape[0], chunk):
        index = tuple(where[first:first + chunk].unbind(-1))
        result[index] = exact(*(operand[index] for operand in operands))
    return result


def _aabb_overlap(a: Tensor, b: Tensor) -> Tensor:
    """Closed axis-aligned bounding boxes of point sets (..., k, 2) overlap -> bool (...)."""
    return ((a.amin(-2) <= b.amax(-2)) & (b.amin(-2) <= a.amax(-2))).all(-1)


def _edges(ring: Tensor) -> tuple[Tensor, Tensor]:
    return ring, ring.roll(-1, dims=-2)


def _quads_intersect_exact(a: Tensor, b: Tensor) -> Tensor:
    a0, a1 = _edges(a)
    b0, b1 = _edges(b)
    crossing = segments_intersect(a0[:, :, None], a1[:, :, None], b0[:, None], b1[:, None]).flatten(1).any(-1)
    return crossing | _point_in_ring(a[:, 0], b0, b1) | _point_in_ring(b[:, 0], a0, a1)


def boxes_intersect(a: Tensor, b: Tensor) -> Tensor:
    """Do convex quads a, b (..., 4, 2) (broadcast) intersect as closed sets? -> bool (...).

    Same answer as shapely `intersects` (touching counts). Bounding boxes prefilter the pairs; the
    survivors get an exact edge-crossing plus containment test.
    """
    _require_shape("a", a, (4, 2))
    _require_shape("b", b, (4, 2))
    _require_finite("a", a)
    _require_finite("b", b)
    shape = torch.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    candidate = _aabb_overlap(a, b).expand(shape)
    operands = (a.expand(*shape, 4, 2), b.expand(*shape, 4, 2))
    return _where_candidates(candidate, _quads_intersect_exact, operands, chunk=1 << 16)


def _segment_box_exact(p0: Tensor, p1: Tensor, box: Tensor) -> Tensor:
    b0, b1 = _edges(box)
    crossing = segments_intersect(p0[:, None], p1[:, None], b0, b1).any(-1)
    return crossing | _point_in_ring(p0, b0, b1)


def segment_intersects_box(p0: Tensor, p1: Tensor, box: Tensor) -> Tensor:
    """Does the closed segment p0-p1 (..., 2) meet the closed convex quad `box` (..., 4, 2)? -> bool (...).

    Used for the ego front bumper (FL -> FR) against a track polygon (nuPlan collision typing).
    """
    _require_shape("p0", p0, (2,))
    _require_shape("p1", p1, (2,))
    _require_shape("box", box, (4, 2))
    for name, tensor in (("p0", p0), ("p1", p1), ("box", box)):
        _require_finite(name, tensor)
    shape = torch.broadcast_shapes(p0.shape[:-1], p1.shape[:-1], box.shape[:-2])
    candidate = _aabb_overlap(torch.stack(torch.broadcast_tensors(p0, p1), -2), box).expand(shape)
    operands = (p0.expand(*shape, 2), p1.expand(*shape, 2), box.expand(*shape, 4, 2))
    return _where_candidates(candidate, _segment_box_exact, operands, chunk=1 << 16)


def _check_prefix_mask(name: str, valid: Tensor) -> None:
    if valid.dtype != torch.bool:
        raise ValueError(f"{name}.dtype={valid.dtype!r}: must be torch.bool")
    if bool((valid[..., 1:] & ~valid[..., :-1]).any()):
        raise ValueError(f"{name}: valid entries must form a prefix along the last dim (padding at the end)")


def _polygon_box_exact(box: Tensor, ring: Tensor, valid: Tensor) -> Tensor:
    # each valid vertex joins the next valid one; the last valid vertex closes back to vertex 0
    next_valid = torch.cat([valid[:, 1:], torch.zeros_like(valid[:, :1])], 1)
    end = torch.where(next_valid[..., None], ring.roll(-1, dims=1), ring[:, :1])
    b0, b1 = _edges(box)
    crossing = segments_intersect(b0[:, :, None], b1[:, :, None], ring[:, None], end[:, None])
    crossing = (crossing & valid[:, None]).flatten(1).any(-1)
    return crossing | _point_in_ring(box[:, 0], ring, end, valid) | _point_in_ring(ring[:, 0], b0, b1)


def polygon_intersects_boxes(boxes: Tensor, poly: Tensor, poly_valid_vertex: Tensor) -> Tensor:
    """Closed-set intersection of boxes with simple (possibly non-convex) polygons, like shapely.

    boxes (B, *N, 4, 2) [m]; poly (B, R, V, 2) rings without the closing vertex, padded; poly_valid_vertex
    (B, R, V) bool, valid vertices a prefix (a polygon with none never intersects). Returns (B, *N, R).
    Pairs whose bounding boxes overlap get the exact test: an edge pair meets, a box corner is in or on
    the polygon, or a polygon vertex is in or on the box.
    """
    _require_shape("boxes", boxes, (4, 2))
    if boxes.dim() < 3 or poly.dim() != 4 or poly.shape[-1] != 2 or boxes.shape[0] != poly.shape[0] \
            or tuple(poly_valid_vertex.shape) != tuple(poly.shape[:-1]):
        raise ValueError(f"boxes.shape={tuple(boxes.shape)!r}, poly.shape={tuple(poly.shape)!r}, "
                         f"poly_valid_vertex.shape={tuple(poly_valid_vertex.shape)!r}: "
                         "expected (B, *N, 4, 2), (B, R, V, 2), (B, R, V)")
    _check_prefix_mask("poly_valid_vertex", poly_valid_vertex)
    _require_finite("boxes", boxes)
    _require_finite("poly", poly[poly_valid_vertex])
    batch, middle = boxes.shape[0], boxes.shape[1:-2]
    flat = boxes.reshape(batch, -1, 4, 2)                                              # (B, N, 4, 2)
    num_boxes, (num_poly, num_vertices) = flat.shape[1], poly.shape[1:3]
    mask = poly_valid_vertex[..., None]
    poly_min = torch.where(mask, poly, math.inf).amin(-2)                              # (B, R, 2)
    poly_max = torch.where(mask, poly, -math.inf).amax(-2)
    candidate = ((flat.amin(-2)[:, :, None] <= poly_max[:, None]) &
                 (poly_min[:, None] <= flat.amax(-2)[:, :, None])).all(-1)             # (B, N, R)
    shape = (batch, num_boxes, num_poly)
    operands = (flat[:, :, None].expand(*shape, 4, 2), poly[:, None].expand(*shape, num_vertices, 2),
                poly_valid_vertex[:, None].expand(*shape, num_vertices))
    result = _where_candidates(candidate, _polygon_box_exact, operands, chunk=max(1, (1 << 18) // num_vertices))
    return result.reshape(batch, *middle, num_poly)


# --------------------------------------------------------------------------- polylines (LineString)


def _polyline_segments(line: Tensor, valid: Tensor):
    """Segments of padded polylines: start, end (B, P-1, 2), valid (B, P-1), length and start arc (B, P-1)."""
    if line.dim() != 3 or line.shape[-1] != 2 or tuple(valid.shape) != tuple(line.shape[:2]):
        raise ValueError(f"line.shape={tuple(line.shape)!r}, valid.shape={tuple(valid.shape)!r}: "
                         "expected (B, P, 2) and (B, P)")
    _check_prefix_mask("valid", valid)
    counts = valid.sum(-1)
    if bool((counts < 2).any()):
        raise ValueError(f"valid.sum(-1)={counts.tolist()!r}: every polyline needs at least 2 vertices")
    _require_finite("line", line[valid])
    start, end, seg_valid = line[:, :-1], line[:, 1:], valid[:, 1:]
    delta = end - start
    seg_len = torch.where(seg_valid, _sqrt(delta[..., 0] * delta[..., 0] + delta[..., 1] * delta[..., 1]), 0.0)
    # sequential running sum, as GEOS accumulates segment lengths
    seg_start = torch.cat([torch.zeros_like(seg_len[:, :1]), torch.cumsum(seg_len, -1)[:, :-1]], -1)
    return start, end, seg_valid, seg_len, seg_start


def _point_segment_distance_and_arc(points: Tensor, start: Tensor, end: Tensor, seg_len: Tensor,
                                    seg_start: Tensor) -> tuple[Tensor, Tensor]:
    """GEOS `Distance::pointToSegment` and `LengthIndexOfPoint::segmentNearestMeasure` -> (B, N, S) each."""
    px, py = points[..., 0, None], points[..., 1, None]                                 # (B, N, 1)
    ax, ay, bx, by = (t[:, None] for t in (start[..., 0], start[..., 1], end[..., 0], end[..., 1]))
    dx, dy = bx - ax, by - ay
    len2 = dx * dx + dy * dy
    factor = ((px - ax) * dx + (py - ay) * dy) / len2          # NaN for a zero-length segment
    near_start = (len2 == 0) | (factor <= 0)
    end_x, end_y = torch.where(near_start, ax, bx), torch.where(near_start, ay, by)
    to_endpoint = _sqrt((px - end_x) * (px - end_x) + (py - end_y) * (py - end_y))
    across = (((ay - py) * dx - (ax - px) * dy) / len2).abs() * _sqrt(len2)
    distance = torch.where(near_start | (factor >= 1), to_endpoint, across)
    seg_start, seg_len = seg_start[:, None], seg_len[:, None]
    arc = torch.where(factor <= 0, seg_start, torch.where(factor <= 1, seg_start + factor * seg_len,
                                                          seg_start + seg_len))
    return distance, arc


def _check_points(points: Tensor, line: Tensor) -> None:
    if points.dim() != 3 or points.shape[-1] != 2 or points.shape[0] != line.shape[0]:
        raise ValueError(f"points.shape={tuple(points.shape)!r}: expected (B, N, 2) with B={line.shape[0]}")
    _require_finite("points", points)


def polyline_project(points: Tensor, line: Tensor, valid: Tensor) -> Tensor:
    """Arc length [m] along each line of the point on it closest to each point, as shapely `project`.

    points (B, N, 2); line (B, P, 2) with valid (B, P) a prefix of >= 2 vertices -> (B, N). Ties go to
    the first segment in line order: GEOS `LengthIndexOfPoint` only replaces its best segment on a
    strictly smaller distance. Distances and arc lengths use the GEOS formulas term by term.
    """
    start, end, seg_valid, seg_len, seg_start = _polyline_segments(line, valid)
    _check_points(points, line)
    distance, arc = _point_segment_distance_and_arc(points, start, end, seg_len, seg_start)
    best = distance.masked_fill(~seg_valid[:, None], math.inf).argmin(-1, keepdim=True)   # first minimum
    return arc.gather(-1, best)[..., 0]


def polyline_distance(points: Tensor, line: Tensor, valid: Tensor) -> Tensor:
    """Euclidean distance [m] from points (B, N, 2) to lines (B, P, 2) + valid (B, P) -> (B, N)."""
    start, end, seg_valid, seg_len, seg_start = _polyline_segments(line, valid)
    _check_points(points, line)
    distance, _ = _point_segment_distance_and_arc(points, start, end, seg_len, seg_start)
    return distance.masked_fill(~seg_valid[:, None], math.inf).amin(-1)


def polyline_length(line: Tensor, valid: Tensor) -> Tensor:
    """Length [m] of padded polylines (B, P, 2) + valid (B, P) -> (B,)."""
    return _polyline_segments(line, valid)[3].cumsum(-1)[:, -1]


def polyline_interpolate(line: Tensor, valid: Tensor, s: Tensor, return_heading: bool = False):
    """Point (B, N, 2) at arc length s (B, N) [m] along each line, s clamped to [0, length].

    Like shapely `interpolate` for s in [0, length] (negative s is clamped, not counted from the end). At
    a vertex the outgoing segment is used. With `return_heading`, also returns the heading (B, N) [rad] of
    that segment (the last segment with non-zero length at or before it; 0 for a line of length 0).
    """
    start, end, seg_valid, seg_len, seg_start = _polyline_segments(line, valid)
    if s.dim() != 2 or s.shape[0] != line.shape[0]:
        raise ValueError(f"s.shape={tuple(s.shape)!r}: expected (B, N) with B={line.shape[0]}")
    _require_finite("s", s)
    length = seg_len.cumsum(-1)[:, -1:]
    s = torch.minimum(torch.clamp(s, min=0.0), length)
    num_seg = seg_valid.sum(-1, keepdim=True)                                           # (B, 1)
    # GEOS walks the segments and stops at the first one with start + length > s
    seg_end = torch.where(seg_valid, seg_start + seg_len, math.inf).contiguous()
    index = torch.searchsorted(seg_end, s.contiguous(), right=True)
    at_end = index >= num_seg
    index = torch.minimum(index, num_seg - 1)

    def pick(t: Tensor) -> Tensor:
        return t.gather(1, index)

    frac = (s - pick(seg_start)) / pick(seg_len)
    p0 = torch.stack([pick(start[..., 0]), pick(start[..., 1])], -1)
    p1 = torch.stack([pick(end[..., 0]), pick(end[..., 1])], -1)
    point = torch.where((at_end | (frac >= 1))[..., None], p1,
                        torch.where((frac <= 0)[..., None], p0, (p1 - p0) * frac[..., None] + p0))
    if not return_heading:
        return point
    positions = torch.arange(seg_len.shape[1], device=line.device).expand_as(seg_len)
    last_moving = torch.where(seg_len > 0, positions, -1).cummax(-1).values                # (B, P-1)
    heading_seg = last_moving.gather(1, index)
    delta = end - start
    heading_all = torch.atan2(delta[..., 1], delta[..., 0])
    heading = torch.where(heading_seg >= 0, heading_all.gather(1, heading_seg.clamp(min=0)), 0.0)
    return point, heading


# --------------------------------------------------------------------------- ring validation (numpy)


def _clean_ring(ring: np.ndarray) -> np.ndarray:
    ring = np.asarray(ring, dtype=np.float64)
    if ring.ndim != 2 or ring.shape[1] != 2:
        raise ValueError(f"ring.shape={ring.shape!r}: expected (V, 2)")
    if not np.isfinite(ring).all():
        raise ValueError(f"ring={ring.tolist()!r}: must be finite")
    # drop consecutive repeats, cyclically (an explicit closing vertex is one), as shapely tolerates them
    keep = np.any(ring != np.concatenate([ring[-1:], ring[:-1]]), axis=1)
    if len(ring) and not keep.any():
        keep[0] = True
    return ring[keep]


def polygon_signed_area(ring: np.ndarray) -> float:
    """Shoelace area [m^2] of a ring (V, 2), positive when counter-clockwise (closing vertex optional)."""
    ring = _clean_ring(ring)
    rel = ring - ring[0]    # relative coordinates keep precision for large (UTM) offsets
    return 0.5 * float(np.sum(rel[:, 0] * np.roll(rel[:, 1], -1) - np.roll(rel[:, 0], -1) * rel[:, 1]))


_PAIR_BLOCK = 1 << 16
"""Candidate edge pairs tested at a time (bounds memory on pathological rings)."""
_SWEEP_MIN_EDGES = 32
"""Below this many edges every pair is a candidate: the sweep would cost more than it saves."""


def _orientation_sign_np(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """numpy twin of `orientation_sign` for points (K, 2): same float filter, the rare unsure entries
    go to the exact expansion (torch) -> int8 (K,)."""
    ac, bc = a - c, b - c
    det_left, det_right = ac[:, 0] * bc[:, 1], ac[:, 1] * bc[:, 0]
    det = det_left - det_right
    sign = np.sign(det).astype(np.int8)
    eps = np.finfo(np.float64).eps / 2
    bound = (3.0 + 16.0 * eps) * eps * (np.abs(det_left) + np.abs(det_right))
    unsure = np.flatnonzero((np.abs(det) <= bound) & (np.sign(det_left) == np.sign(det_right)) & (det_left != 0))
    if len(unsure):
        coords = (torch.from_numpy(p[unsure, k].copy()) for p in (a, b, c) for k in (0, 1))
        sign[unsure] = _exact_orientation_sign(*coords).numpy()
    return sign


def _segments_meet_np(p0: np.ndarray, p1: np.ndarray, q0: np.ndarray, q1: np.ndarray) -> np.ndarray:
    """numpy twin of `segments_intersect` for segment pairs (K, 2) -> bool (K,)."""
    first, second = np.concatenate([p0, p0, q0, q0]), np.concatenate([p1, p1, q1, q1])
    third = np.concatenate([q0, q1, p0, p1])
    signs = _orientation_sign_np(first, second, third).reshape(4, -1)
    meets = (signs[0] * signs[1] < 0) & (signs[2] * signs[3] < 0)
    collinear = np.flatnonzero(signs.reshape(-1) == 0)
    if len(collinear):   # on the closed segment: exact for collinear points, as `_is_between`
        d0, d1 = first[collinear] - third[collinear], second[collinear] - third[collinear]
        on = np.zeros(signs.size, dtype=bool)
        on[collinear] = d0[:, 0] * d1[:, 0] + d0[:, 1] * d1[:, 1] <= 0
        meets |= on.reshape(4, -1).any(0)
    return meets


@lru_cache(maxsize=_SWEEP_MIN_EDGES)
def _non_adjacent_pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Edge index pairs i < j of an n-edge ring that share no vertex (edges 0 and n - 1 share vertex 0)."""
    i, j = np.triu_indices(n, k=2)
    return i[j - i != n - 1], j[j - i != n - 1]


def _candidate_edge_pairs(start: np.ndarray, end: np.ndarray):
    """Yield blocks (i, j) of non-adjacent edge indices whose closed bounding boxes overlap: sort-and-sweep
    on the axis with fewer overlaps (a ring stretched along one axis overlaps everywhere on the other),
    then a filter on the other axis; about O(V log V + pairs). Small rings take every pair."""
    n = len(start)
    lo, hi = np.minimum(start, end), np.maximum(start, end)
    if n < _SWEEP_MIN_EDGES:
        i, j = _non_adjacent_pairs(n)
        keep = (lo[i] <= hi[j]).all(1) & (lo[j] <= hi[i]).all(1)
        yield i[keep], j[keep]
        return
    orders = np.argsort(lo, axis=0, kind="stable")                                       # (V, 2)
    lo_sorted = np.take_along_axis(lo, orders, 0)
    # per sorted edge: how many later ones start at or before its end (closed: touching boxes count)
    count = np.stack([np.searchsorted(lo_sorted[:, k], hi[orders[:, k], k], side="right") for k in (0, 1)], 1)
    count -= np.arange(1, n + 1)[:, None]
    axis = int(count[:, 1].sum() < count[:, 0].sum())
    order, count, other = orders[:, axis], count[:, axis], 1 - axis
    ends, first = np.cumsum(count), 0
    while first < n:
        # sorted edges [first, last) give at most _PAIR_BLOCK pairs (or one edge's worth)
        base = ends[first - 1] if first else 0
        last = max(first + 1, int(np.searchsorted(ends, base + _PAIR_BLOCK, side="right")))
        block = count[first:last]
        a = np.repeat(np.arange(first, last), block)
        b = a + 1 + (np.arange(len(a)) - np.repeat(np.cumsum(block) - block, block))
        i, j = order[a], order[b]
        gap = (i - j) % n
        keep = (lo[i, other] <= hi[j, other]) & (lo[j, other] <= hi[i, other]) & (gap != 1) & (gap != n - 1)
        yield i[keep], j[keep]
        first = last


def polygon_is_simple(ring: np.ndarray) -> bool:
    """Is the ring (V, 2) a valid simple polygon boundary? Same answer as shapely `Polygon(ring).is_valid`.

    Consecutive repeated vertices (including an explicit closing vertex) are ignored. False when fewer
    than 3 distinct vertices remain, two non-adjacent edges touch or cross, or two adjacent edges fold
    back over each other (a spike); a zero-area ring always has one of these. Exact orientation tests
    (rotated straight boundaries have many nearly collinear edges) on the edge pairs whose bounding
    boxes overlap (sort-and-sweep): about O(V log V) for road-like rings. numpy, for scene files.
    """
    ring = _clean_ring(ring)
    if len(ring) < 3:
        return False
    start, end, following = ring, np.concatenate([ring[1:], ring[:1]]), np.concatenate([ring[2:], ring[:2]])
    # collinear adjacent edges overlap when the next vertex lies back towards the previous one; for
    # exactly collinear points the signs of the rounded differences make this dot product exact
    back, ahead = start - end, following - end
    folds = back[:, 0] * ahead[:, 0] + back[:, 1] * ahead[:, 1] > 0
    if folds.any() and not _orientation_sign_np(start[folds], end[folds], following[folds]).all():
        return False
    for i, j in _candidate_edge_pairs(start, end):
        if len(i) and _segments_meet_np(start[i], end[i], start[j], end[j]).any():
            return False
    return True
