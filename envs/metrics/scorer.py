"""NAVSIM scoring of B scenes x G planned trajectories in one call (PDMS v1.1, EPDMS v2.2).

Flow per batch (spec navsim.md §0): plans -> 41 global poses -> LQR + bicycle re-simulation
together with the reference (PDM-Closed, or the scene's `reference_trajectory`) and, for the
EPDMS human filter, the human plan -> every sub-metric -> progress normalisation -> totals.
`prepare_scenes` is the metric cache: made once per scene (kept in a `SceneCache` if given) and
concatenated per batch; score many plans against it. `ScoredPlans.details` tells when and why plans fail.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from enum import Enum
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from envs.metrics.collision import no_at_fault_collision
from envs.metrics.comfort import PastStates, comfort_v1, history_comfort, history_states
from envs.metrics.context import (
    MapContext,
    Observation,
    SceneCache,
    SceneRoute,
    build_map_context,
    build_observation,
    scene_route,
)
from envs.metrics.direction import driving_direction_compliance
from envs.metrics.drivable_area import drivable_area_compliance
from envs.metrics.ego_areas import ego_areas, ego_footprint
from envs.metrics.epdms import apply_human_filter, epdm_score
from envs.metrics.lane_keeping import lane_keeping
from envs.metrics.pdms import SubScores, pdm_score
from envs.metrics.progress import normalized_progress, raw_progress, start_arc
from envs.metrics.result import MetricResult
from envs.metrics.traffic_light import traffic_light_compliance
from envs.metrics.ttc import time_to_collision
from envs.sim.dynamics import EgoStates, initial_ego_state
from envs.sim.lqr import lqr_track
from envs.sim.scene import HORIZON_S, STEP_S, Plan, Scene
from envs.sim.trajectory import plan_to_reference, validate_plan_poses


class Metric(str, Enum):
    """Which NAVSIM score: `pdms` (v1.1, navtest) or `epdms` (v2.2)."""

    PDMS = "pdms"
    EPDMS = "epdms"


@dataclass(frozen=True)
class ScoringConfig:
    """How plans are scored."""

    metric: Metric = Metric.PDMS
    """`pdms` (NAVSIM v1.1) or `epdms` (NAVSIM v2.2, one stage, EC = 1 for a single frame)."""
    human_filter: bool = True
    """EPDMS only: a sub-metric the human plan also fails counts as passed (spec §2.4)."""
    human_filter_fixed: bool = True
    """True: the filter changes the final score (NAVSIM after commit 359c7f7, the default).
    False: reproduce the earlier bug where only the displayed sub-scores were filtered."""

    def __post_init__(self):
        object.__setattr__(self, "metric", Metric(self.metric))


@dataclass(frozen=True)
class PreparedScenes:
    """Everything per scene that does not depend on the plan (NAVSIM's metric cache), batched."""

    scenes: tuple[Scene, ...]
    routes: tuple[SceneRoute, ...]
    map_ctx: MapContext
    observation: Observation
    initial: EgoStates
    """(B, 1) logged ego state at t = 0."""
    origin: Tensor
    """(B, 3) global rear-axle pose at t = 0."""
    fixed_states: EgoStates
    """(B, K, 41) simulated reference (k = 0) and, for EPDMS with the filter, human (k = 1)."""
    history: PastStates | None
    """Past human states for history comfort (EPDMS)."""
    config: ScoringConfig
    fixed_scores: dict[str, Tensor] | None = None
    """Sub-metric values (B, K) of the fixed plans (`nc dac ddc tlc ttc lk c raw_progress`): they do not
    depend on the scored plans, so they are computed once here. None: computed on each `score_poses`."""
    start_arc: Tensor | None = None
    """(B,) [m] arc length along the centerline of the ego box centre at t = 0, where every plan starts
    (`progress.start_arc`); None: projected with each batch of plans."""

    @property
    def batch_size(self) -> int:
        return len(self.scenes)

    @property
    def device(self) -> torch.device:
        return self.origin.device

    @classmethod
    def cat(cls, parts: Sequence[PreparedScenes]) -> PreparedScenes:
        """The scenes of every part in turn, as one batch: what `prepare_scenes` gives for all of them."""
        parts = list(parts)
        if not parts:
            raise ValueError("parts=[]: nothing to concatenate")
        if len(parts) == 1:
            return parts[0]
        configs = {p.config for p in parts}
        if len(configs) > 1:
            raise ValueError(f"config: {len(configs)} different scoring configs; prepare such scenes separately")
        _check_vehicles([s for p in parts for s in p.scenes])
        histories = [p.history for p in parts]
        if any(h is None for h in histories) and not all(h is None for h in histories):
            raise ValueError("history: some parts carry past states and others not; prepare them alike")
        fixed_scores = None
        if all(p.fixed_scores is not None for p in parts):
            fixed_scores = {k: torch.cat([p.fixed_scores[k] for p in parts]) for k in parts[0].fixed_scores}
        starts = None if any(p.start_arc is None for p in parts) else torch.cat([p.start_arc for p in parts])
        return cls(
            scenes=tuple(s for p in parts for s in p.scenes),
            routes=tuple(r for p in parts for r in p.routes),
            map_ctx=MapContext.cat([p.map_ctx for p in parts]),
            observation=Observation.cat([p.observation for p in parts]),
            initial=_cat_states([p.initial for p in parts]),
            origin=torch.cat([p.origin for p in parts]),
            fixed_states=_cat_states([p.fixed_states for p in parts]),
            history=None if histories[0] is None else _cat_past(histories),
            config=parts[0].config,
            fixed_scores=fixed_scores,
            start_arc=starts,
        )


def _cat_states(states: Sequence[EgoStates]) -> EgoStates:
    """Concatenate EgoStates along the batch (first) dim."""
    return EgoStates(**{f.name: torch.cat([getattr(s, f.name) for s in states]) for f in fields(EgoStates)})


def _cat_past(histories: Sequence[PastStates]) -> PastStates:
    """Concatenate right-aligned past states along the batch, left-padding shorter ones with their first
    slot (history comfort reads only the last `count[b]` slots of a row)."""
    width = max(h.states.num_steps for h in histories)
    padded = []
    for h in histories:
        missing = width - h.states.num_steps
        padded.append(h.states if missing == 0 else EgoStates.cat([h.states.index(0)] * missing + [h.states]))
    return PastStates(states=_cat_states(padded), count=torch.cat([h.count for h in histories]))


def _check_vehicles(scenes: Sequence[Scene]) -> None:
    vehicles = {s.vehicle for s in scenes}
    if len(vehicles) > 1:
        raise ValueError(f"scenes: {len(vehicles)} different ego vehicles in one batch; score them separately")


def _simulate(reference_poses: Tensor, initial: EgoStates, scenes) -> EgoStates:
    vehicle = scenes[0].vehicle
    return lqr_track(reference_poses, initial, vehicle)


def _plan_poses(plan: Plan, origin: Tensor) -> Tensor:
    poses = torch.as_tensor(plan.poses, dtype=torch.float64, device=origin.device)
    return plan_to_reference(poses, plan.interval, origin, horizon=HORIZON_S, dt=STEP_S)


def prepare_scenes(
    scenes: list[Scene], config: ScoringConfig = ScoringConfig(), device=None,
    reference_cache: dict[str, Tensor] | None = None, cache: SceneCache | None = None,
) -> PreparedScenes:
    """Build the per-scene scoring inputs and simulate the reference (and human) once.

    Each scene is prepared on its own (its PDM-Closed run and fixed-plan simulation batched with the
    other new scenes) and the batch is their concatenation, so a scene scores the same in any batch.
    `cache` keeps the per-scene parts (by scene token and object, config and device): a scene seen
    before is only concatenated. `reference_cache` (scene token -> (41, 3) global poses; default
    `cache.references`) is read and filled so a scene seen again skips PDM-Closed. Scores are
    identical with or without either.
    """
    if not scenes:
        raise ValueError("scenes=[]: nothing to score")
    _check_vehicles(scenes)
    device = torch.device(device) if device is not None else torch.device("cpu")
    cache = cache if cache is not None else SceneCache(max_scenes=None)
    reference_cache = reference_cache if reference_cache is not None else cache.references
    kind = ("prepared", config, str(device))
    parts: list[PreparedScenes | None] = [cache.get(s, kind) for s in scenes]
    todo = list({id(s): s for s, p in zip(scenes, parts) if p is None}.values())   # each new scene once
    made = dict(zip(map(id, todo), _prepare_parts(todo, config, device, reference_cache, cache))) if todo else {}
    unsaved = set(made)
    for b, scene in enumerate(scenes):
        key = id(scene)
        part = made.get(key, parts[b])
        # polygon indexes live in the cache's current stores, so the batch below shares their rows (no copy)
        map_ctx = part.map_ctx.stored(cache)
        if map_ctx is not part.map_ctx:
            part = made[key] = replace(part, map_ctx=map_ctx)
            unsaved.add(key)
        if key in unsaved:
            cache.put(scene, kind, part)
            unsaved.discard(key)
        parts[b] = part
    return PreparedScenes.cat(parts)  # type: ignore[arg-type]


def _prepare_parts(scenes: list[Scene], config: ScoringConfig, device: torch.device,
                   reference_cache: dict[str, Tensor], cache: SceneCache) -> list[PreparedScenes]:
    """Per-scene prepared inputs (B = 1 each, polygon indexes in `cache`'s stores) of new scenes, made as
    one batch and split: map context, objects, PDM-Closed, the fixed plans' simulation and sub-metrics."""
    is_v2 = config.metric is Metric.EPDMS
    if is_v2 and config.human_filter:
        missing = [s.token for s in scenes if s.human_trajectory is None]
        if missing:
            raise ValueError(f"human_trajectory=None in scene {missing[0]!r}: the EPDMS human filter needs it (disable human_filter)")
    routes = [scene_route(s) for s in scenes]
    map_ctx = build_map_context(scenes, routes, device=device).stored(cache)
    observation = build_observation(scenes, routes, remove_initial_overlaps=is_v2, device=device)
    origin = torch.as_tensor(np.stack([s.ego_pose for s in scenes]), dtype=torch.float64, device=device)
    hist = [s.history for s in scenes]
    initial = initial_ego_state(
        origin,
        torch.as_tensor(np.stack([h.velocity[-1] for h in hist]), dtype=torch.float64, device=device),
        torch.as_tensor(np.stack([h.acceleration[-1] for h in hist]), dtype=torch.float64, device=device),
    )
    fixed = [_reference_poses(scenes, routes, origin, reference_cache)]
    if is_v2 and config.human_filter:
        fixed.append(torch.stack([_plan_poses(s.human_trajectory, origin[b]) for b, s in enumerate(scenes)]))
    fixed_poses = torch.stack(fixed, dim=1)  # (B, K, 41, 3)
    fixed_states = _simulate(fixed_poses, _expand(initial, fixed_poses.shape[1]), scenes)
    batch = PreparedScenes(
        scenes=tuple(scenes), routes=tuple(routes), map_ctx=map_ctx, observation=observation, initial=initial,
        origin=origin, fixed_states=fixed_states, history=None, config=config,
    )
    fixed_scores = _proposal_values(*_proposal_results(batch, fixed_states))
    _, start_center = ego_footprint(initial.pose, scenes[0].vehicle)   # (B, 1, 2), as the plans' first centre
    starts = start_arc(start_center[:, 0], map_ctx.centerline, map_ctx.centerline_valid)
    map_parts = map_ctx.split()
    observation_parts = observation.split([s.agents.num_agents for s in scenes])
    one = lambda value, b: value[b : b + 1].contiguous()   # its own memory, not a view of the batch's
    return [
        PreparedScenes(
            scenes=(scene,), routes=(routes[b],), map_ctx=map_parts[b], observation=observation_parts[b],
            initial=_map_states(initial, lambda v: one(v, b)), origin=one(origin, b),
            fixed_states=_map_states(fixed_states, lambda v: one(v, b)),
            history=_past_states(scene, device) if is_v2 else None, config=config,
            fixed_scores={k: one(v, b) for k, v in fixed_scores.items()}, start_arc=one(starts, b),
        )
        for b, scene in enumerate(scenes)
    ]


def _map_states(states: EgoStates, fn) -> EgoStates:
    return EgoStates(**{f.name: fn(getattr(states, f.name)) for f in fields(EgoStates)})


def _past_states(scene: Scene, device) -> PastStates:
    """Logged ego history of one scene as past states (B = 1); `_cat_past` batches them."""
    def one(name: str) -> Tensor:
        return torch.as_tensor(getattr(scene.history, name)[None], dtype=torch.float64, device=device)

    return history_states(one("t"), one("pose"), one("velocity"), one("acceleration"))


def _reference_poses(
    scenes: list[Scene], routes: list[SceneRoute], origin: Tensor, cache: dict[str, Tensor] | None = None
) -> Tensor:
    """(B, 41, 3) global reference poses: the scene's own reference plan where given, else
    PDM-Closed's trajectory (one batched call), whose first pose is the ego's projection onto the
    path, exactly as NAVSIM caches it. `cache` (token -> poses) keeps PDM-Closed runs across calls."""
    cache = {} if cache is None else cache
    poses: list[Tensor | None] = [
        _plan_poses(s.reference_trajectory, origin[b]) if s.reference_trajectory is not None
        else cache[s.token].to(origin) if s.token in cache else None
        for b, s in enumerate(scenes)
    ]
    todo = [i for i, p in enumerate(poses) if p is None]
    if todo:
        from envs.sim.pdm_closed import pdm_closed_plan

        result = pdm_closed_plan([scenes[i] for i in todo], routes=[routes[i] for i in todo], device=origin.device)
        for j, i in enumerate(todo):
            poses[i] = result.trajectory[j, : round(HORIZON_S / STEP_S) + 1].to(origin)
            cache[scenes[i].token] = poses[i]
    return torch.stack(poses)  # type: ignore[arg-type]


def _expand(states: EgoStates, count: int) -> EgoStates:
    """(B, 1) -> (B, count, 1) by broadcasting every field."""
    return _map_states(states, lambda value: value[:, None].expand(value.shape[0], count, *value.shape[1:]))


LOCATED_METRICS = ("nc", "dac", "ddc", "tlc", "ttc", "lk")
"""Sub-metrics whose `MetricResult` also says when (first failing step) and why (object) a plan fails."""


def _proposal_results(prep: PreparedScenes, states: EgoStates) -> tuple[dict[str, MetricResult], Tensor, Tensor]:
    """For (B, P, 41) simulated states: the located sub-metrics' results (B, P), comfort (B, P) and raw
    progress (B, P); everything a proposal scores on its own, before progress normalisation."""
    version = "v2" if prep.config.metric is Metric.EPDMS else "v1"
    vehicle = prep.scenes[0].vehicle
    pose, speed = states.pose, states.speed
    corners, center = ego_footprint(pose, vehicle)
    areas = ego_areas(pose, vehicle, prep.map_ctx, footprint=(corners, center))
    obs = prep.observation
    results = {
        "nc": no_at_fault_collision(pose, speed, corners, areas, obs, vehicle),
        "dac": drivable_area_compliance(areas),
        "ddc": driving_direction_compliance(center, areas, version),
        "tlc": traffic_light_compliance(corners, obs),
        "ttc": time_to_collision(pose, speed, corners, areas, obs, vehicle, version),
        "lk": lane_keeping(center, areas, prep.map_ctx),
    }
    # every plan starts at the logged state (`initial`), whose projection `start_arc` is made once per scene
    progress = raw_progress(center, prep.map_ctx.centerline, prep.map_ctx.centerline_valid, prep.start_arc)
    return results, comfort_v1(states), progress


def _proposal_values(results: dict[str, MetricResult], comfort: Tensor, progress: Tensor) -> dict[str, Tensor]:
    """The values (B, P) of `_proposal_results`, keyed like `PreparedScenes.fixed_scores`."""
    return {**{name: result.value for name, result in results.items()}, "c": comfort, "raw_progress": progress}


@dataclass(frozen=True)
class ScoredPlans:
    """Sub-scores of B x G plans. `reported` is what NAVSIM displays; `scored` feeds the totals.

    They differ only for EPDMS with the pre-fix human filter (`human_filter_fixed=False`).
    """

    reported: SubScores
    scored: SubScores
    states: EgoStates | None = None
    """(B, G, 41) the simulated ego states of the plans (for extended comfort across frames)."""
    details: dict[str, MetricResult] | None = None
    """The located sub-metrics (`LOCATED_METRICS`) of the plans, (B, G) each: value before the human
    filter, first failing step (0.1 s each, -1 if none) and the object held responsible (agent slot of
    `PreparedScenes.observation`, or red-light index for TLC; -1 if none). For diagnostics."""

    @property
    def pdms(self) -> Tensor:
        """(B, G) NAVSIM v1.1 PDMS."""
        return pdm_score(self.scored)

    @property
    def epdms(self) -> Tensor:
        """(B, G) NAVSIM v2.2 EPDMS (one frame: EC = 1)."""
        return epdm_score(self.scored)


def score_poses(prep: PreparedScenes, poses: Tensor, interval: float) -> ScoredPlans:
    """Score G plans per scene: poses (B, G, H, 3) in each scene's ego frame -> sub-scores (B, G)."""
    validate_plan_poses(poses, name="trajectory.poses")
    if poses.dim() != 4 or poses.shape[0] != prep.batch_size:
        raise ValueError(
            f"trajectory.poses: expected shape (B={prep.batch_size}, G, H, 3), got {tuple(poses.shape)}"
        )
    poses = poses.to(device=prep.device, dtype=torch.float64)
    B, G = poses.shape[:2]
    reference = plan_to_reference(poses, interval, prep.origin[:, None], horizon=HORIZON_S, dt=STEP_S)
    agent_states = _simulate(reference, _expand(prep.initial, G), prep.scenes)
    fixed = prep.fixed_scores
    if fixed is None:
        fixed = _proposal_values(*_proposal_results(prep, prep.fixed_states))
    details, comfort, progress = _proposal_results(prep, agent_states)
    agent = _proposal_values(details, comfort, progress)
    is_v2 = prep.config.metric is Metric.EPDMS
    version = "v2" if is_v2 else "v1"

    # Ego progress: each plan is normalised against the reference alone (NAVSIM scores the batch
    # [PDM-Closed, agent]); the human is scored alone, so its EP is 1 (spec §2.4).
    def multiplier(raw: dict[str, Tensor]) -> Tensor:
        value = raw["nc"] * raw["dac"]
        return value * raw["ddc"] * raw["tlc"] if is_v2 else value

    pair_raw = torch.stack([fixed["raw_progress"][:, :1].expand(B, G), agent["raw_progress"]], dim=-1)
    pair_mult = torch.stack([multiplier(fixed)[:, :1].expand(B, G), multiplier(agent)], dim=-1)
    ep = normalized_progress(pair_raw, pair_mult, version)[..., 1]

    ones = torch.ones(B, G, dtype=torch.float64, device=prep.device)
    hc = history_comfort(agent_states, prep.history, prep.scenes[0].vehicle) if is_v2 else ones
    scores = SubScores(ep=ep, hc=hc, ec=ones, **{k: v for k, v in agent.items() if k != "raw_progress"})
    if is_v2 and prep.config.human_filter:
        human = {name: value[:, 1:2].expand(B, G) for name, value in fixed.items() if name != "raw_progress"}
        human_scores = SubScores(ep=ones, hc=ones, ec=ones, **human)
        filtered = apply_human_filter(scores, human_scores, fixed=prep.config.human_filter_fixed)
        return ScoredPlans(reported=filtered.reported, scored=filtered.scored, states=agent_states, details=details)
    return ScoredPlans(reported=scores, scored=scores, states=agent_states, details=details)


def score_plans(scenes: list[Scene], plans: list[Plan], config: ScoringConfig = ScoringConfig(), device=None) -> list[dict]:
    """Score one plan per scene; returns one dict per scene with every sub-score and both totals."""
    if len(plans) != len(scenes):
        raise ValueError(f"plans: got {len(plans)} plans for {len(scenes)} scenes")
    results: list[dict | None] = [None] * len(scenes)
    # Plans of equal interval and length are scored as one batch; each scene is in one group.
    groups: dict[tuple[float, int], list[int]] = {}
    for i, plan in enumerate(plans):
        groups.setdefault((round(plan.interval, 6), len(plan.poses)), []).append(i)
    for (interval, _), idx in groups.items():
        prep = prepare_scenes([scenes[i] for i in idx], config, device=device)
        poses = torch.as_tensor(np.stack([plans[i].poses for i in idx]), dtype=torch.float64)[:, None]
        scores = score_poses(prep, poses, interval)
        rows = score_rows(scores)
        for j, i in enumerate(idx):
            results[i] = rows[j][0]
    return results  # type: ignore[return-value]


SCORE_KEYS = ("nc", "dac", "ddc", "tlc", "ep", "ttc", "c", "lk", "hc", "ec", "pdms", "epdms")
"""Keys of a score dict, in the order of the scene/1 spec."""


def score_rows(scores: ScoredPlans) -> list[list[dict]]:
    """Scores (B, G) -> B lists of G dicts with every sub-score plus both totals (floats)."""
    columns = {name: getattr(scores.reported, name) for name in SCORE_KEYS[:-2]}
    columns["pdms"] = scores.pdms
    columns["epdms"] = scores.epdms
    table = {name: value.detach().cpu().tolist() for name, value in columns.items()}
    B, G = scores.reported.nc.shape
    return [[{name: float(table[name][b][g]) for name in SCORE_KEYS} for g in range(G)] for b in range(B)]
