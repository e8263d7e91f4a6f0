"""Scripted actors of the Bench2Drive world: per-route tables built once in numpy (resampled paths,
which actor can lead which, where the ego sits on each path, stop positions), padded into batched
tensors (`ActorTables`), and the batched per-tick update (triggers, timers, IDM, lights, stop signs)."""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass, field, fields
from typing import Sequence

import numpy as np
import torch
from scipy.spatial import cKDTree
from torch import Tensor

from envs.bench2drive.route_scenario import ActorSpec, Behaviour, RouteScenario
from envs.bench2drive.vehicle_control import MKZ_2020
from envs.sim.idm import IDMParams
from envs.sim.scene import LightStatus

PATH_STEP = 1.0
"""[m] arc-length spacing of resampled actor paths."""
MAX_PARTNERS = 10
"""Partner pieces an IDM actor watches: the nearest ahead at the start (cyclically for recycling flows),
then the nearest behind (reachable only by overtaking or wrapping)."""
PIECE_TOLERANCE = 0.25
"""[m] a partner's position on an actor path is piecewise linear in its own arc length to within this."""
ACTOR_IDM = IDMParams(target_speed=10.0, min_gap=2.0, headway=1.0, accel_max=2.0, decel_max=3.0, exponent=4.0)
"""Scripted and background vehicles (v0 is each actor's target_speed). Our choice, close to CARLA's
traffic manager: ~2 m standstill gap, 1 s headway, brisk but comfortable acceleration."""
ACTOR_MAX_DECEL = 8.0
"""[m/s^2] IDM braking is clipped here (emergency stop), not at the comfortable b."""
HOLD_DECEL = 5.0
"""[m/s^2] braking of an actor told to stop (pause window, stop_after reached)."""
STOP_SIGN_WAIT = 2.0
"""[s] an IDM actor that obeys signs waits this long stopped at a stop sign on its path, then goes."""
STOP_SIGN_NEAR = 4.0
"""[m] front bumper within this of the stop line counts as waiting at the sign."""
STOPPED_SPEED = 0.1
"""[m/s] below this an actor counts as stopped (leaderboard stop-sign threshold)."""
YELLOW_STOP_DECEL = 3.0
"""[m/s^2] a yellow light stops an actor only if it can stop at this deceleration."""
EGO_LEAD_MAX_ACROSS = 8.0
"""[m] the ego's place on an actor path is linearised from its route; route points farther than this
from the path are not trusted (the ego is no lead there)."""
UNTRUSTED = -1.0
"""Corridor reach that nothing fits (|lateral| < -1 never holds)."""
EPS_TIME = 1e-9
"""[s] slack on timer comparisons (clock = tick x dt in float64)."""


@dataclass(frozen=True)
class ActorTables:
    """Static actor data of a batch: B routes, A actor slots, P path samples, F partner pieces, N route
    points, L lights, S stop signs. Padding slots have `valid` False. Times are seconds after the
    actor's activation (its trigger firing, or t = 0 without trigger), inf for never."""

    valid: Tensor = field(metadata={"dims": "B A", "pad": False})
    kind: Tensor = field(metadata={"dims": "B A", "pad": 0})
    """ActorKind values (int64)."""
    role: Tensor = field(metadata={"dims": "B A", "pad": 0})
    """Role values (int64)."""
    is_idm: Tensor = field(metadata={"dims": "B A", "pad": False})
    is_parked: Tensor = field(metadata={"dims": "B A", "pad": True})
    """Behaviour.PARKED (padding counts as parked: it never moves)."""
    size: Tensor = field(metadata={"dims": "B A 2", "pad": 1.0})
    """length, width [m] before activation."""
    size_triggered: Tensor = field(metadata={"dims": "B A 2", "pad": 1.0})
    """length, width [m] once activated (width_after_trigger)."""
    s0: Tensor = field(metadata={"dims": "B A", "pad": 0.0})
    speed0: Tensor = field(metadata={"dims": "B A", "pad": 0.0})
    target_speed: Tensor = field(metadata={"dims": "B A", "pad": 0.0})
    has_trigger: Tensor = field(metadata={"dims": "B A", "pad": False})
    trigger_point: Tensor = field(metadata={"dims": "B A 2", "pad": 0.0})
    trigger_distance_sq: Tensor = field(metadata={"dims": "B A", "pad": -1.0})
    """[m^2]; -1 for actors without trigger (never fires)."""
    trigger_tta_sq: Tensor = field(metadata={"dims": "B A", "pad": 0.0})
    """[s^2]; 0 when the trigger has no time-to-arrival rule."""
    spawn_after: Tensor = field(metadata={"dims": "B A", "pad": math.inf})
    """spawn_delay (minus EPS_TIME); -inf when the actor exists from the start."""
    despawn_after: Tensor = field(metadata={"dims": "B A", "pad": math.inf})
    pause_start: Tensor = field(metadata={"dims": "B A", "pad": math.inf})
    pause_end: Tensor = field(metadata={"dims": "B A", "pad": math.inf})
    stop_after: Tensor = field(metadata={"dims": "B A", "pad": math.inf})
    """[m] driven after activation."""
    recycle: Tensor = field(metadata={"dims": "B A", "pad": False})
    path: Tensor = field(metadata={"dims": "B A P 6", "pad": 0.0})
    """Resampled path every PATH_STEP m (lateral offset applied): x, y [m], heading [rad] of sample k,
    then the change of x, y, unwrapped heading per PATH_STEP of arc towards sample k + 1 (0 at the end)."""
    path_length: Tensor = field(metadata={"dims": "B A", "pad": 0.0})
    path_last: Tensor = field(metadata={"dims": "B A", "pad": 0})
    """Index of the last sample (int64)."""
    partner_index: Tensor = field(metadata={"dims": "B A F", "pad": 0})
    """Actor slot of each partner piece (int64)."""
    partner: Tensor = field(metadata={"dims": "B A F 5", "pad": -1.0})
    """Per piece: sigma, delta, mid, half, extent: while |s_j - mid| <= half, partner j's box centre sits
    at arc length sigma * s_j + delta on this actor's path, approaching at sigma * speed_j, with half
    extent `extent` along the path (padding: half < 0)."""
    ego_table: Tensor = field(metadata={"dims": "B N A 8", "pad": 0.0})
    """Route point n seen from this actor's path: arc length, lateral (left +), the rotation from route
    frame to path frame [[cos, -sin], [sin, cos]] row-major, the ego's half extent along the path, and
    the corridor reach (ego half extent across + actor half width; UNTRUSTED far from the path)."""
    light_stop_s: Tensor = field(metadata={"dims": "B A L", "pad": math.inf})
    """[m] arc length where the path crosses the light's stop line in its direction; inf for none and
    for actors that do not obey lights."""
    sign_stop_s: Tensor = field(metadata={"dims": "B A S", "pad": math.inf})
    # derived (recomputed whenever tables are built or padded)
    path_row: Tensor = field(init=False, metadata={"dims": "B A"})
    partner_gather: Tensor = field(init=False, metadata={"dims": "B AF"})
    """partner_index as (B, A * F): gathers every partner piece's actor from a (B, A) tensor."""
    partner_sigma: Tensor = field(init=False, metadata={"dims": "B A F"})
    """The columns of `partner`, each contiguous (elementwise ops on them run at full speed)."""
    partner_delta: Tensor = field(init=False, metadata={"dims": "B A F"})
    partner_mid: Tensor = field(init=False, metadata={"dims": "B A F"})
    partner_half: Tensor = field(init=False, metadata={"dims": "B A F"})
    partner_extent: Tensor = field(init=False, metadata={"dims": "B A F"})
    ego_row: Tensor = field(init=False, metadata={"dims": "B"})
    """b * N: route b's first row of ego_table flattened to (B * N, A * 8) (all actors of a route point are one
    contiguous row, so the per-tick look-up reads B rows)."""
    inv_target_speed: Tensor = field(init=False, metadata={"dims": "B A"})
    half_length: Tensor = field(init=False, metadata={"dims": "B A"})
    stop_speeds: Tensor = field(init=False, metadata={"dims": "B A LS"})
    moves: Tensor = field(init=False, metadata={"dims": "B A"})
    leaves: Tensor = field(init=False, metadata={"dims": "B A"})
    """Moving actors that leave the world at their path end (not recycling)."""
    wraps: Tensor = field(init=False, metadata={"dims": "B A"})
    inf: Tensor = field(init=False, metadata={"dims": ""})
    far: Tensor = field(init=False, metadata={"dims": ""})
    """1e15 m: the arc length absent partners are looked up at (finite, so sigma * far stays a number)."""

    def __post_init__(self):
        batch, num_actors, num_samples, _ = self.path.shape
        num_route = self.ego_table.shape[1]
        slot = torch.arange(batch * num_actors, device=self.path.device).reshape(batch, num_actors)
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731
        set_("path_row", slot * num_samples)
        set_("partner_gather", self.partner_index.reshape(batch, -1))
        for name, column in zip(("sigma", "delta", "mid", "half", "extent"), self.partner.movedim(-1, 0).contiguous()):
            set_(f"partner_{name}", column)
        set_("ego_row", torch.arange(batch, device=self.path.device) * num_route)
        set_("inv_target_speed", 1.0 / self.target_speed.clamp(min=1e-6))
        set_("half_length", self.size[..., 0] * 0.5)
        stops = self.light_stop_s.shape[-1] + self.sign_stop_s.shape[-1]
        set_("stop_speeds", torch.zeros(batch, num_actors, stops, dtype=self.s0.dtype, device=self.path.device))
        set_("moves", ~self.is_parked)
        set_("leaves", ~self.is_parked & ~self.recycle)
        set_("wraps", ~self.is_parked & self.recycle)
        set_("inf", torch.tensor(math.inf, dtype=self.s0.dtype, device=self.path.device))
        set_("far", torch.tensor(1e15, dtype=self.s0.dtype, device=self.path.device))


# --------------------------------------------------------------------------- numpy: one route


def _resample(path: np.ndarray, lateral_offset: float) -> tuple[np.ndarray, float]:
    """Samples (n, 3) every PATH_STEP m (x, y, unwrapped heading), shifted left by lateral_offset; length."""
    seg = np.diff(path, axis=0)
    seg_len = np.hypot(seg[:, 0], seg[:, 1])
    moving = seg_len > 1e-9
    if not moving.any():
        return np.concatenate([np.repeat(path[:1], 2, axis=0), np.zeros((2, 1))], -1), 0.0
    arc = np.concatenate([[0.0], np.cumsum(seg_len)])
    length = float(arc[-1])
    count = max(int(math.ceil(length / PATH_STEP - 1e-9)) + 1, 2)
    s = np.minimum(np.arange(count) * PATH_STEP, length)
    xy = np.stack([np.interp(s, arc, path[:, 0]), np.interp(s, arc, path[:, 1])], -1)
    seg_heading = np.unwrap(np.arctan2(seg[moving, 1], seg[moving, 0]))
    heading = seg_heading[np.minimum(np.searchsorted(arc[1:][moving], s, side="right"), len(seg_heading) - 1)]
    normal = np.stack([-np.sin(heading), np.cos(heading)], -1)
    return np.concatenate([xy + lateral_offset * normal, heading[:, None]], -1), length


def _interleaved(samples: np.ndarray) -> np.ndarray:
    """(n, 6): sample k, then its change per PATH_STEP of arc towards sample k + 1 (so a linear step
    from k by a fraction of PATH_STEP stays on a shorter last segment); heading wrapped at k."""
    delta = np.zeros_like(samples)
    step = np.diff(samples, axis=0)
    seg_len = np.hypot(step[:, 0], step[:, 1])
    delta[:-1] = step * (PATH_STEP / np.maximum(seg_len, 1e-9))[:, None]
    delta[:-1][seg_len <= 1e-9] = 0.0
    wrapped = samples.copy()
    wrapped[:, 2] = np.arctan2(np.sin(samples[:, 2]), np.cos(samples[:, 2]))
    return np.concatenate([wrapped, delta], -1)


def _project(points: np.ndarray, samples: np.ndarray, tree: cKDTree) -> tuple[np.ndarray, ...]:
    """Project points (M, 2) on a resampled path: arc length, signed lateral (left +), path heading there.

    The nearest sample's two segments are tried; the end segments extend beyond the path (arc < 0 or
    > length) so that the lateral offset is always perpendicular.
    """
    count = len(samples)
    _, nearest = tree.query(points)
    best = None
    for seg in (np.clip(nearest - 1, 0, count - 2), np.clip(nearest, 0, count - 2)):
        start, end = samples[seg, :2], samples[seg + 1, :2]
        delta = end - start
        seg_len = np.hypot(delta[:, 0], delta[:, 1])
        unit = np.where(seg_len[:, None] > 1e-9, delta / np.maximum(seg_len, 1e-9)[:, None],
                        np.stack([np.cos(samples[seg, 2]), np.sin(samples[seg, 2])], -1))
        rel = points - start
        t = np.clip((rel * unit).sum(-1), np.where(seg == 0, -np.inf, 0.0), np.where(seg == count - 2, np.inf, seg_len))
        foot = start + t[:, None] * unit
        distance = np.hypot(*(points - foot).T)
        lateral = unit[:, 0] * rel[:, 1] - unit[:, 1] * rel[:, 0]
        result = (seg * PATH_STEP + t, lateral, np.arctan2(unit[:, 1], unit[:, 0]), distance)
        if best is None:
            best = result
        else:
            closer = result[3] < best[3]
            best = tuple(np.where(closer, new, old) for new, old in zip(result, best))
    return best[:3]


def _segment_crossing_s(samples: np.ndarray, line: np.ndarray, heading: float) -> float:
    """First arc length where the path crosses segment `line` (2, 2) moving along `heading`; inf if none."""
    p0, p1 = samples[:-1, :2], samples[1:, :2]
    d, e = p1 - p0, line[1] - line[0]
    denom = d[:, 0] * e[1] - d[:, 1] * e[0]
    w = line[0] - p0
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (w[:, 0] * e[1] - w[:, 1] * e[0]) / denom
        u = (w[:, 0] * d[:, 1] - w[:, 1] * d[:, 0]) / denom
    forward = d[:, 0] * math.cos(heading) + d[:, 1] * math.sin(heading) > 0
    hit = (np.abs(denom) > 1e-12) & (t >= 0) & (t <= 1) & (u >= 0) & (u <= 1) & forward
    if not hit.any():
        return math.inf
    index = int(np.argmax(hit))
    return float(index * PATH_STEP + t[index] * np.hypot(*d[index]))


def _stop_sign_line(sign) -> np.ndarray:
    """The stop line of a stop sign: the downstream edge of its trigger box (2, 2)."""
    direction = np.array([math.cos(sign.heading), math.sin(sign.heading)])
    normal = np.array([-direction[1], direction[0]])
    centre = np.asarray(sign.center, float)[:2] + direction * sign.length / 2
    return np.stack([centre - normal * sign.width / 2, centre + normal * sign.width / 2])


def _extents(size: np.ndarray, relative: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Half extents of boxes (..., 2) along / across a direction at `relative` heading [rad]."""
    cos, sin = np.abs(np.cos(relative)), np.abs(np.sin(relative))
    half_len, half_wid = size[..., 0] / 2, size[..., 1] / 2
    return half_len * cos + half_wid * sin, half_len * sin + half_wid * cos


def _pieces(arc: np.ndarray, along: np.ndarray, extent: np.ndarray) -> list[tuple[float, ...]]:
    """Split one contiguous in-corridor run into linear pieces along = sigma * arc + delta (least squares,
    halved until within PIECE_TOLERANCE): (sigma, delta, lo, hi, max extent) each."""
    if len(arc) == 1:
        return [(0.0, float(along[0]), float(arc[0]), float(arc[0]), float(extent[0]))]
    sigma, delta = np.polyfit(arc, along, 1)
    if len(arc) <= 2 or np.abs(sigma * arc + delta - along).max() <= PIECE_TOLERANCE:
        return [(float(sigma), float(delta), float(arc[0]), float(arc[-1]), float(extent.max()))]
    half = len(arc) // 2
    head = _pieces(arc[:half + 1], along[:half + 1], extent[:half + 1])
    return head + _pieces(arc[half:], along[half:], extent[half:])


def _partners(i: int, actors: Sequence[ActorSpec], samples: list[np.ndarray], length: np.ndarray,
              size: np.ndarray, widest: np.ndarray, tree: cKDTree) -> list[tuple[float, int, tuple[float, ...]]]:
    """Every piece of every other actor's path where its (widest) box overlaps actor i's corridor,
    with a priority: the start gap ahead of i (cyclic when i recycles), behind ones after all ahead."""
    others = [j for j in range(len(actors)) if j != i]
    if not others:
        return []
    points = np.concatenate([samples[j] for j in others])
    owner = np.concatenate([np.full(len(samples[j]), j) for j in others])
    arc = np.concatenate([np.minimum(np.arange(len(samples[j])) * PATH_STEP, length[j]) for j in others])
    along, lateral, path_heading = _project(points[:, :2], samples[i], tree)
    ext_along, ext_across = _extents(widest[owner], points[:, 2] - path_heading)
    inside = (np.abs(lateral) - ext_across < size[i, 1] / 2) & (along - ext_along < length[i]) & (along + ext_along > 0)
    rows = []
    starts = np.cumsum([0] + [len(samples[j]) for j in others])
    for k, j in enumerate(others):
        mask = inside[starts[k]:starts[k + 1]]
        edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
        for lo, hi in zip(edges[::2] + starts[k], edges[1::2] + starts[k]):
            for sigma, delta, arc_lo, arc_hi, extent in _pieces(arc[lo:hi], along[lo:hi], ext_along[lo:hi]):
                arc_lo, arc_hi = arc_lo - PATH_STEP / 2, arc_hi + PATH_STEP / 2
                moves = actors[j].behaviour != Behaviour.PARKED
                if (not moves and not arc_lo <= actors[j].s0 <= arc_hi) or (
                        not actors[j].recycle and arc_hi < actors[j].s0):
                    continue                     # j never reaches this piece
                if not actors[i].recycle and max(sigma * arc_lo, sigma * arc_hi) + delta + extent < actors[i].s0:
                    continue                     # forever behind i
                gap = sigma * min(max(actors[j].s0, arc_lo), arc_hi) + delta - actors[i].s0
                if actors[i].recycle and length[i] > 0:
                    gap %= length[i]
                priority = gap if gap > 0 else 1e6 - gap
                rows.append((priority, j, (sigma, delta, 0.5 * (arc_lo + arc_hi), 0.5 * (arc_hi - arc_lo), extent)))
    return sorted(rows, key=lambda r: r[0])


def _route_tables(scenario: RouteScenario) -> dict[str, np.ndarray]:
    """Every per-actor array of one route (numpy, unpadded across routes)."""
    actors: Sequence[ActorSpec] = scenario.actors
    count = len(actors)
    sampled = [_resample(a.path, a.lateral_offset) for a in actors]
    samples = [s for s, _ in sampled]
    length = np.array([n for _, n in sampled], dtype=np.float64)
    trees = [cKDTree(s[:, :2]) for s in samples]
    size = np.array([a.size for a in actors], dtype=np.float64).reshape(count, 2)
    size_triggered = size.copy()
    for i, a in enumerate(actors):
        if a.width_after_trigger is not None:
            size_triggered[i, 1] = a.width_after_trigger
    widest = np.maximum(size, size_triggered)   # partner tables use the widest box (doors open or not)
    is_idm = np.array([a.behaviour == Behaviour.IDM for a in actors], dtype=bool)
    obeys = is_idm & np.array([a.obeys_lights for a in actors], dtype=bool)

    partner_rows = [_partners(i, actors, samples, length, size, widest, trees[i]) if is_idm[i] else []
                    for i in range(count)]
    num_partners = min(max([len(r) for r in partner_rows], default=0), MAX_PARTNERS)
    partner_index = np.zeros((count, num_partners), dtype=np.int64)
    partner = np.full((count, num_partners, 5), -1.0)
    for i, rows in enumerate(partner_rows):
        for f, (_, j, values) in enumerate(rows[:num_partners]):
            partner_index[i, f], partner[i, f] = j, values

    # the ego on each IDM path, linearised from its route
    route = scenario.route
    ego_table = np.zeros((len(route), count, 8))
    for i in np.flatnonzero(is_idm):
        along, lateral, path_heading = _project(route[:, :2], samples[i], trees[i])
        relative = route[:, 2] - path_heading
        cos, sin = np.cos(relative), np.sin(relative)
        ext_along, ext_across = _extents(np.array([MKZ_2020.length, MKZ_2020.width]), relative)
        reach = np.where(np.abs(lateral) < EGO_LEAD_MAX_ACROSS, ext_across + size[i, 1] / 2, UNTRUSTED)
        ego_table[:, i] = np.stack([along, lateral, cos, -sin, sin, cos, ext_along, reach], -1)
    ego_table[:, ~is_idm, 7] = UNTRUSTED

    # stop positions of lights and stop signs on the paths of actors that obey them
    light_stop = np.full((count, len(scenario.lights)), math.inf)
    sign_stop = np.full((count, len(scenario.stop_signs)), math.inf)
    for i in np.flatnonzero(obeys):
        for k, light in enumerate(scenario.lights):
            light_stop[i, k] = _segment_crossing_s(samples[i], np.asarray(light.stop_line, float), light.heading)
        for k, sign in enumerate(scenario.stop_signs):
            sign_stop[i, k] = _segment_crossing_s(samples[i], _stop_sign_line(sign), sign.heading)

    def seconds(values, slack: float = -EPS_TIME) -> np.ndarray:
        return np.array([math.inf if v is None else v + slack for v in values], dtype=np.float64)

    trig = [a.trigger for a in actors]
    pause = [a.pause for a in actors]
    max_samples = max([len(s) for s in samples], default=2)
    return dict(
        valid=np.ones(count, dtype=bool),
        kind=np.array([int(a.kind) for a in actors], dtype=np.int64),
        role=np.array([int(a.role) for a in actors], dtype=np.int64),
        is_idm=is_idm,
        is_parked=np.array([a.behaviour == Behaviour.PARKED for a in actors], dtype=bool),
        size=size, size_triggered=size_triggered,
        s0=np.array([a.s0 for a in actors], dtype=np.float64),
        speed0=np.array([0.0 if a.behaviour == Behaviour.PARKED else a.speed0 for a in actors], dtype=np.float64),
        target_speed=np.array([a.target_speed for a in actors], dtype=np.float64),
        has_trigger=np.array([t is not None for t in trig], dtype=bool),
        trigger_point=np.array([[0.0, 0.0] if t is None else np.asarray(t.point, float)[:2] for t in trig])
        .reshape(count, 2),
        trigger_distance_sq=np.array([-1.0 if t is None else t.distance ** 2 for t in trig], dtype=np.float64),
        trigger_tta_sq=np.array([0.0 if t is None or t.time_to_arrival is None else t.time_to_arrival ** 2
                                 for t in trig], dtype=np.float64),
        spawn_after=np.array([-math.inf if a.spawn_delay <= 0 else a.spawn_delay - EPS_TIME for a in actors]),
        despawn_after=seconds([a.despawn_after for a in actors]),
        pause_start=seconds([None if p is None else p[0] for p in pause]),
        pause_end=seconds([None if p is None else p[0] + p[1] for p in pause]),
        stop_after=seconds([a.stop_after for a in actors], slack=0.0),
        recycle=np.array([a.recycle for a in actors], dtype=bool),
        path=np.stack([np.pad(_interleaved(s), ((0, max_samples - len(s)), (0, 0)), mode="edge") for s in samples])
        if count else np.zeros((0, max_samples, 6)),
        path_length=length,
        path_last=np.array([len(s) - 1 for s in samples], dtype=np.int64),
        partner_index=partner_index, partner=partner,
        ego_table=ego_table, light_stop_s=light_stop, sign_stop_s=sign_stop,
    )


_CACHE: dict[int, dict[str, np.ndarray]] = {}


def _cached_route_tables(scenario: RouteScenario) -> dict[str, np.ndarray]:
    """`_route_tables`, memoised per live RouteScenario object (frozen, so its tables never change;
    vector envs re-initialise the same routes at every autoreset). The entry dies with the object."""
    key = id(scenario)
    tables = _CACHE.get(key)
    if tables is None:
        tables = _CACHE[key] = _route_tables(scenario)
        weakref.finalize(scenario, _CACHE.pop, key, None)
    return tables


def actor_tables(scenarios: Sequence[RouteScenario], device=None, min_actors: int = 0) -> ActorTables:
    """Pad the per-route tables of every scenario into one batch (A >= max(1, min_actors))."""
    per_route = [_cached_route_tables(s) for s in scenarios]
    sizes = {
        "A": max([len(t["valid"]) for t in per_route] + [1, min_actors]),
        "P": max(t["path"].shape[1] for t in per_route),
        "F": max([t["partner_index"].shape[1] for t in per_route] + [1]),
        "N": max(len(s.route) for s in scenarios),
        "L": max(len(s.lights) for s in scenarios),
        "S": max(len(s.stop_signs) for s in scenarios),
    }
    values = {}
    for f in fields(ActorTables):
        if not f.init:
            continue
        dims, pad = f.metadata["dims"].split()[1:], f.metadata["pad"]
        stacked = []
        for t in per_route:
            array = np.asarray(t[f.name])
            widths = [(0, 0) if d.isdigit() else (0, sizes[d] - array.shape[k]) for k, d in enumerate(dims)]
            stacked.append(np.pad(array, widths, constant_values=pad))
        dtype = torch.bool if isinstance(pad, bool) else torch.int64 if isinstance(pad, int) else torch.float64
        values[f.name] = torch.as_tensor(np.stack(stacked), dtype=dtype, device=device)
    return ActorTables(**values)


# --------------------------------------------------------------------------- torch: one tick


@dataclass(frozen=True)
class ActorTick:
    """Actor part of the world state (B routes, A slots, S stop signs); see WorldState for the fields."""

    s: Tensor
    speed: Tensor
    pose: Tensor
    activated: Tensor
    activation_time: Tensor
    activation_s: Tensor
    present: Tensor
    gone: Tensor
    sign_wait: Tensor
    sign_done: Tensor


def path_pose(tables: ActorTables, s: Tensor) -> Tensor:
    """(B, A, 3) box centre at arc length s (B, A), linear between path samples. The heading is wrapped
    at samples and may leave [-pi, pi] by less than one sample's turn in between."""
    position = s.clamp(min=0.0) if PATH_STEP == 1.0 else s.clamp(min=0.0) * (1.0 / PATH_STEP)
    low = torch.minimum(position.long(), tables.path_last)
    rows = tables.path.reshape(-1, 6).index_select(0, (tables.path_row + low).reshape(-1)).reshape(*s.shape, 6)
    frac = (position - low).clamp(max=1.0)[..., None]
    return torch.addcmul(rows[..., :3], rows[..., 3:], frac)


def _idm(speed: Tensor, inv_target: Tensor, gap: Tensor, lead_speed: Tensor) -> Tensor:
    """ACTOR_IDM acceleration [m/s^2], as `envs.sim.idm.idm_accel` (exponent 4, gap floored at s0) in
    fewer ops: inv_target is 1 / v0 precomputed; an infinite gap gives no interaction term."""
    p = ACTOR_IDM
    ratio = (speed * inv_target).square()
    desired = p.min_gap + speed * (p.headway + (speed - lead_speed) * (0.5 / math.sqrt(p.accel_max * p.decel_max)))
    return p.accel_max * (1.0 - ratio.square() - (desired / gap.clamp(min=p.min_gap)).square())


def actor_step(tables: ActorTables, prev: ActorTick, time: Tensor, dt: float, ego_xy: Tensor, ego_speed: Tensor,
               route_index: Tensor, route_offset: Tensor, light_state: Tensor | None) -> ActorTick:
    """Advance every actor one tick.

    ego_xy (B, 2), ego_speed (B,) after the ego's move; route_index (B,) the dense-route point the ego
    is referred to and route_offset (B, 2) the ego centre in that point's frame (along, left) [m];
    time (B,) [s] the clock after the tick; light_state (B, L) LightStatus now (None without lights).

    Order: triggers fire (ego distance < distance, or distance < time_to_arrival x ego speed) ->
    spawn / despawn / hold timers -> leads from the previous positions (partner pieces, the ego, red or
    stoppable-yellow lights and unserved stop signs for actors that obey them) -> speed: parked 0,
    untriggered speed0, holding brakes at HOLD_DECEL, IDM, else the constant target -> trapezoidal
    move -> at the path end a recycling actor wraps to the start, any other leaves the world.
    """
    # --- triggers, timers
    delta = tables.trigger_point - ego_xy[:, None]
    reach_sq = torch.maximum(tables.trigger_distance_sq, tables.trigger_tta_sq * ego_speed.square()[:, None])
    fires = ((delta * delta).sum(-1) < reach_sq) & ~prev.activated
    now = time[:, None]
    activated = prev.activated | fires
    activation_time = torch.where(fires, now, prev.activation_time)
    activation_s = torch.where(fires, prev.s, prev.activation_s)
    since = now - activation_time                                      # -inf before activation
    gone = prev.gone | (since >= tables.despawn_after)
    present = (since >= tables.spawn_after) & ~gone
    holding = ((since >= tables.pause_start) & (since < tables.pause_end)) | (
        prev.s - activation_s >= tables.stop_after)
    front = prev.s + tables.half_length

    # --- leads: partner pieces
    inf = tables.inf
    shape = tables.partner_sigma.shape
    s_j = torch.where(present, prev.s, tables.far).gather(1, tables.partner_gather).view(shape)   # absent: never in range
    speed_j = prev.speed.gather(1, tables.partner_gather).view(shape)
    along = torch.addcmul(tables.partner_delta, tables.partner_sigma, s_j)
    on = ((s_j - tables.partner_mid).abs() <= tables.partner_half) & (along > prev.s[..., None])
    gaps = [torch.where(on, along - (tables.partner_extent + front[..., None]), inf)]
    speeds = [tables.partner_sigma * speed_j]
    # the ego: its offset from its route point, rotated into each actor's path frame
    rows = tables.ego_table.reshape(len(tables.ego_row) * tables.ego_table.shape[1], -1).index_select(
        0, tables.ego_row + route_index)
    rows = rows.view(*prev.s.shape, 8)
    base_along, base_across, cos, minus_sin, sin, _, ext_along, reach = rows.unbind(-1)
    along_offset, left_offset = route_offset[:, 0:1], route_offset[:, 1:2]
    ego_along = torch.addcmul(torch.addcmul(base_along, cos, along_offset), minus_sin, left_offset)
    ego_across = torch.addcmul(torch.addcmul(base_across, sin, along_offset), cos, left_offset)
    is_lead = ((ego_across.abs() < reach) & (ego_along > prev.s)
               & (ego_along - ext_along < tables.path_length))
    gaps.append(torch.where(is_lead, ego_along - (ext_along + front), inf)[..., None])
    speeds.append((ego_speed[:, None] * cos)[..., None])
    # lights and stop signs (stop positions are inf for actors that do not obey them)
    sign_wait, sign_done = prev.sign_wait, prev.sign_done
    if light_state is not None:
        to_line = tables.light_stop_s - front[..., None]                                   # (B, A, L)
        yellow = (light_state == int(LightStatus.YELLOW))[:, None]
        can_stop = to_line * (2.0 * YELLOW_STOP_DECEL) >= prev.speed.square()[..., None]
        stops = ((light_state == int(LightStatus.RED))[:, None] | (yellow & can_stop)) & (to_line >= 0)
        gaps.append(torch.where(stops, to_line, inf))
    if tables.sign_stop_s.shape[-1]:
        to_sign = tables.sign_stop_s - front[..., None]                                    # (B, A, S)
        sign_gap = torch.where(~sign_done & (to_sign >= 0), to_sign, inf)
        waiting = (sign_gap < STOP_SIGN_NEAR) & (prev.speed < STOPPED_SPEED)[..., None]
        sign_wait = torch.where(waiting, sign_wait + dt, sign_wait)
        sign_done = sign_done | (sign_wait >= STOP_SIGN_WAIT - EPS_TIME)
        gaps.append(torch.where(sign_done, inf, sign_gap))
    speeds.append(tables.stop_speeds)
    lead_gap, nearest = torch.cat(gaps, -1).min(-1, keepdim=True)
    lead_gap = lead_gap[..., 0]
    lead_speed = torch.cat(speeds, -1).gather(-1, nearest)[..., 0]
    accel = _idm(prev.speed, tables.inv_target_speed, lead_gap, lead_speed)

    # --- speeds and motion
    speed = torch.where(tables.is_idm, (prev.speed + accel.clamp(-ACTOR_MAX_DECEL, ACTOR_IDM.accel_max) * dt)
                        .clamp(min=0.0), tables.target_speed)
    speed = torch.where(holding, (prev.speed - HOLD_DECEL * dt).clamp(min=0.0), speed)
    speed = torch.where(activated & tables.moves, speed, tables.speed0)
    speed = torch.where(present, speed, prev.speed)
    s = torch.where(present, prev.s + (prev.speed + speed) * (0.5 * dt), prev.s)
    past_end = present & (s >= tables.path_length)
    s = torch.where(past_end & tables.wraps, s - tables.path_length, s)
    gone = gone | (past_end & tables.leaves)
    return ActorTick(s=s, speed=speed, pose=path_pose(tables, s), activated=activated,
                     activation_time=activation_time, activation_s=activation_s, present=present & ~gone,
                     gone=gone, sign_wait=sign_wait, sign_done=sign_done)


def initial_actors(tables: ActorTables) -> ActorTick:
    """Actors at tick 0: at s0 with speed0 (parked: 0); actors without trigger are active from t = 0."""
    activated = tables.valid & ~tables.has_trigger
    zeros = torch.zeros_like(tables.s0)
    sign_shape = (*tables.s0.shape, tables.sign_stop_s.shape[-1])
    return ActorTick(
        s=tables.s0.clone(), speed=tables.speed0.clone(),
        pose=path_pose(tables, tables.s0), activated=activated,
        activation_time=torch.where(activated, zeros, math.inf), activation_s=tables.s0.clone(),
        present=tables.valid & (tables.spawn_after == -math.inf), gone=torch.zeros_like(activated),
        sign_wait=torch.zeros(sign_shape, dtype=torch.float64, device=zeros.device),
        sign_done=torch.zeros(sign_shape, dtype=torch.bool, device=zeros.device),
    )
