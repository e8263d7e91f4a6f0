"""NAVSIM scoring of B scenes x G planned trajectories in one call (PDMS v1.1, EPDMS v2.2).

Flow per batch (spec navsim.md §0): plans -> 41 global poses -> LQR + bicycle re-simulation
together with the reference (PDM-Closed, or the scene's `reference_trajectory`) and, for the
EPDMS human filter, the human plan -> every sub-metric -> progress normalisation -> totals.
`prepare_scenes` is the metric cache: build it once, score many plans against it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum

import numpy as np
import torch
from torch import Tensor

from envs.metrics.collision import no_at_fault_collision
from envs.metrics.comfort import PastStates, comfort_v1, history_comfort, history_states
from envs.metrics.context import (
    MapContext,
    Observation,
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
from envs.metrics.progress import normalized_progress, raw_progress
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

    @property
    def batch_size(self) -> int:
        return len(self.scenes)

    @property
    def device(self) -> torch.device:
        return self.origin.device


def _simulate(reference_poses: Tensor, initial: EgoStates, scenes) -> EgoStates:
    vehicle = scenes[0].vehicle
    return lqr_track(reference_poses, initial, vehicle)


def _plan_poses(plan: Plan, origin: Tensor) -> Tensor:
    poses = torch.as_tensor(plan.poses, dtype=torch.float64, device=origin.device)
    return plan_to_reference(poses, plan.interval, origin, horizon=HORIZON_S, dt=STEP_S)


def prepare_scenes(
    scenes: list[Scene], config: ScoringConfig = ScoringConfig(), device=None,
    reference_cache: dict[str, Tensor] | None = None,
) -> PreparedScenes:
    """Build the per-scene scoring inputs and simulate the reference (and human) once.

    `reference_cache` (scene token -> (41, 3) global poses), when given, is read and filled so a
    scene seen again skips PDM-Closed; scores are identical with or without it.
    """
    if not scenes:
        raise ValueError("scenes=[]: nothing to score")
    vehicles = {s.vehicle for s in scenes}
    if len(vehicles) > 1:
        raise ValueError(f"scenes: {len(vehicles)} different ego vehicles in one batch; score them separately")
    device = torch.device(device) if device is not None else torch.device("cpu")
    routes = [scene_route(s) for s in scenes]
    map_ctx = build_map_context(scenes, routes, device=device)
    is_v2 = config.metric is Metric.EPDMS
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
        missing = [s.token for s in scenes if s.human_trajectory is None]
        if missing:
            raise ValueError(f"human_trajectory=None in scene {missing[0]!r}: the EPDMS human filter needs it (disable human_filter)")
        fixed.append(torch.stack([_plan_poses(s.human_trajectory, origin[b]) for b, s in enumerate(scenes)]))
    fixed_poses = torch.stack(fixed, dim=1)  # (B, K, 41, 3)
    fixed_states = _simulate(fixed_poses, _expand(initial, fixed_poses.shape[1]), scenes)
    history = _past_states(scenes, device) if is_v2 else None
    return PreparedScenes(
        scenes=tuple(scenes), routes=tuple(routes), map_ctx=map_ctx, observation=observation,
        initial=initial, origin=origin, fixed_states=fixed_states, history=history, config=config,
    )


def _past_states(scenes: list[Scene], device) -> PastStates:
    """Logged ego history of every scene, batched (all scenes must log the same number of frames)."""
    lengths = {len(s.history.t) for s in scenes}
    if len(lengths) > 1:
        raise ValueError(f"ego.history: scenes in one batch log {sorted(lengths)} history frames; score them separately")

    def stack(name: str) -> Tensor:
        return torch.as_tensor(np.stack([getattr(s.history, name) for s in scenes]), dtype=torch.float64, device=device)

    return history_states(stack("t"), stack("pose"), stack("velocity"), stack("acceleration"))


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
    fields = {}
    for name in states.__dataclass_fields__:
        value = getattr(states, name)
        fields[name] = value[:, None].expand(value.shape[0], count, *value.shape[1:])
    return replace(states, **fields)


def _per_proposal_scores(prep: PreparedScenes, states: EgoStates) -> dict[str, Tensor]:
    """Every sub-metric except progress normalisation, for (B, P, 41) simulated states."""
    cfg = prep.config
    version = "v2" if cfg.metric is Metric.EPDMS else "v1"
    vehicle = prep.scenes[0].vehicle
    pose, speed = states.pose, states.speed
    corners, center = ego_footprint(pose, vehicle)
    areas = ego_areas(pose, vehicle, prep.map_ctx)
    obs = prep.observation
    out = {
        "nc": no_at_fault_collision(pose, speed, corners, areas, obs, vehicle).value,
        "dac": drivable_area_compliance(areas).value,
        "ddc": driving_direction_compliance(center, areas, version).value,
        "tlc": traffic_light_compliance(corners, obs).value,
        "ttc": time_to_collision(pose, speed, corners, areas, obs, vehicle, version).value,
        "lk": lane_keeping(center, areas, prep.map_ctx).value,
        "c": comfort_v1(states),
        "raw_progress": raw_progress(center, prep.map_ctx.centerline, prep.map_ctx.centerline_valid),
    }
    return out


@dataclass(frozen=True)
class ScoredPlans:
    """Sub-scores of B x G plans. `reported` is what NAVSIM displays; `scored` feeds the totals.

    They differ only for EPDMS with the pre-fix human filter (`human_filter_fixed=False`).
    """

    reported: SubScores
    scored: SubScores
    states: EgoStates | None = None
    """(B, G, 41) the simulated ego states of the plans (for extended comfort across frames)."""

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
    K = prep.fixed_states.pose.shape[1]
    states = _cat(prep.fixed_states, agent_states)  # (B, K + G, 41)
    raw = _per_proposal_scores(prep, states)
    is_v2 = prep.config.metric is Metric.EPDMS
    version = "v2" if is_v2 else "v1"

    # Ego progress: each plan is normalised against the reference alone (NAVSIM scores the batch
    # [PDM-Closed, agent]); the human is scored alone, so its EP is 1 (spec §2.4).
    multiplier = raw["nc"] * raw["dac"]
    if is_v2:
        multiplier = multiplier * raw["ddc"] * raw["tlc"]
    pair_raw = torch.stack([raw["raw_progress"][:, :1].expand(B, G), raw["raw_progress"][:, K:]], dim=-1)
    pair_mult = torch.stack([multiplier[:, :1].expand(B, G), multiplier[:, K:]], dim=-1)
    ep = normalized_progress(pair_raw, pair_mult, version)[..., 1]

    agent = {name: value[:, K:] for name, value in raw.items() if name != "raw_progress"}
    ones = torch.ones(B, G, dtype=torch.float64, device=prep.device)
    hc = history_comfort(agent_states, prep.history, prep.scenes[0].vehicle) if is_v2 else ones
    scores = SubScores(ep=ep, hc=hc, ec=ones, **agent)
    if is_v2 and prep.config.human_filter:
        human = {name: value[:, 1:2].expand(B, G) for name, value in raw.items() if name != "raw_progress"}
        human_scores = SubScores(ep=ones, hc=ones, ec=ones, **human)
        filtered = apply_human_filter(scores, human_scores, fixed=prep.config.human_filter_fixed)
        return ScoredPlans(reported=filtered.reported, scored=filtered.scored, states=agent_states)
    return ScoredPlans(reported=scores, scored=scores, states=agent_states)


def _cat(a: EgoStates, b: EgoStates) -> EgoStates:
    return replace(a, **{n: torch.cat([getattr(a, n), getattr(b, n)], dim=1) for n in a.__dataclass_fields__})


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
