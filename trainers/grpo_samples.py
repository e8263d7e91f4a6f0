"""The groups of a GRPO step and their off-policy members (SpanVLA-style, posttraining.md §1.9):
negatives mined from perturbations of the policy's own plans, recovery scenes (ego displaced
laterally / in heading) labelled by PDM-Closed, plans turned into `Samples` a policy can re-score,
and the slots that carry them into a group.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import Tensor

from agents.base import Samples, resample_plan
from envs.metrics.scorer import SCORE_KEYS, PreparedScenes, score_poses, score_rows
from envs.navsim import PLAN_INTERVAL_S, PLAN_POSES
from envs.sim.scene import HORIZON_S, STEP_S, Scene


@dataclass
class NegativeConfig:
    """SpanVLA negatives: perturbations of the policy's best samples that fail."""

    per_group: int = 0
    """Negative slots per group (0: off); a slot stays empty when its perturbation does not fail."""
    scale: float = 2.0
    """[m] Swerve std at the horizon; the speed factor's log-std is scale / 10."""

    def __post_init__(self):
        if self.per_group < 0 or not (math.isfinite(self.scale) and self.scale >= 0):
            raise ValueError(f"negatives.per_group={self.per_group}, negatives.scale={self.scale}: need >= 0, finite >= 0")


@dataclass
class RecoveryConfig:
    """SpanVLA recoveries: extra groups started off-nominal, with PDM-Closed's plan injected."""

    rate: float = 0.0
    """Recovery groups per env scene (0.25 with B = 8 adds 2 groups); 0: off."""
    lateral: float = 1.0
    """[m] Ego displaced uniformly in [-lateral, lateral] along its normal."""
    heading: float = 0.15
    """[rad] Ego turned uniformly in [-heading, heading]."""
    above: float = 0.5
    """PDM-Closed's recovery plan is injected only if its metric total is at least this."""

    def __post_init__(self):
        if not 0 <= self.rate <= 1 or not (self.lateral >= 0 and self.heading >= 0):
            raise ValueError(f"recovery.rate={self.rate}, lateral={self.lateral}, heading={self.heading}: need rate in [0, 1], offsets >= 0")


def perturb_plans(plans: Tensor, lateral: Tensor, stretch: Tensor) -> Tensor:
    """Deterministic plan perturbation: plans (B, G, H, 3), lateral (B, G) [m], stretch (B, G) -> (B, G, H, 3).

    Pose h (1..H) moves sideways by lateral·(h/H)² (a swerve that starts gently and ends `lateral`
    metres off, left positive) and along the plan by the factor `stretch` on x (1.2: 20 % faster);
    headings turn by the swerve's slope, atan(d offset / dx), so the poses stay drivable-looking.
    """
    if plans.ndim != 4 or plans.shape[-1] != 3:
        raise ValueError(f"plans.shape={tuple(plans.shape)}: expected (B, G, H, 3)")
    if lateral.shape != plans.shape[:2] or stretch.shape != plans.shape[:2]:
        raise ValueError(f"lateral.shape={tuple(lateral.shape)}, stretch.shape={tuple(stretch.shape)}: expected {tuple(plans.shape[:2])}")
    horizon = plans.shape[2]
    fraction = torch.arange(1, horizon + 1, dtype=plans.dtype, device=plans.device) / horizon        # (H,)
    offset = lateral[..., None].to(plans.dtype) * fraction**2                                        # (B, G, H)
    x = plans[..., 0] * stretch[..., None].to(plans.dtype)
    # slope of the offset along the path: d(l·(h/H)²)/dx with x ≈ linear in h -> 2·l·h/H² / (dx/dh)
    dx = torch.clamp(torch.diff(x, dim=-1, prepend=torch.zeros_like(x[..., :1])).abs(), min=0.5)
    slope = 2.0 * lateral[..., None].to(plans.dtype) * fraction / horizon / dx
    return torch.stack([x, plans[..., 1] + offset, plans[..., 2] + torch.atan(slope)], dim=-1)


def perturbed_negatives(plans: Tensor, gen: torch.Generator | None, scale: float) -> Tensor:
    """Candidate negatives (B, G, H, 3) from plans (B, G, H, 3): each swerves N(0, scale²) metres by
    the horizon and is stretched by exp(N(0, (scale/10)²)) (speeding or dawdling). scale [m] >= 0.

    Candidates are only negatives once scored as failures (the trainer keeps those that fail).
    """
    if not (np.isfinite(scale) and scale >= 0):
        raise ValueError(f"scale={scale!r}: must be a finite lateral amplitude >= 0 [m]")
    device = gen.device if gen is not None else plans.device
    noise = torch.randn((*plans.shape[:2], 2), generator=gen, device=device, dtype=torch.float64).to(plans.device)
    lateral = scale * noise[..., 0]
    stretch = torch.exp(0.1 * scale * noise[..., 1])
    return perturb_plans(plans.to(torch.float64), lateral, stretch).to(plans.dtype)


def recovery_scenes(scenes: list[Scene], lateral, heading) -> list[Scene]:
    """Off-nominal starts: each scene with its ego history moved rigidly by `lateral` [m] (left
    positive, along the current pose's normal) and turned by `heading` [rad] about the current rear axle.

    lateral, heading: (B,) offsets. The whole history moves, not only the last pose, so speeds,
    accelerations and the past path stay kinematically consistent (a jump of the last pose alone
    would show an impossible ego status). The new scenes get new tokens, no human plan (it started
    elsewhere) and no reference plan, so PDM-Closed from the new start normalises their progress.
    """
    lateral, heading = np.asarray(lateral, np.float64).reshape(-1), np.asarray(heading, np.float64).reshape(-1)
    if len(lateral) != len(scenes) or len(heading) != len(scenes):
        raise ValueError(f"len(lateral)={len(lateral)}, len(heading)={len(heading)}: expected one per scene ({len(scenes)})")
    if not (np.isfinite(lateral).all() and np.isfinite(heading).all()):
        raise ValueError(f"lateral={lateral.tolist()}, heading={heading.tolist()}: must be finite")
    out = []
    for scene, dy, dyaw in zip(scenes, lateral, heading):
        x0, y0, yaw0 = scene.ego_pose
        cos, sin = np.cos(dyaw), np.sin(dyaw)
        rel = scene.history.pose[:, :2] - (x0, y0)
        rotated = np.stack([cos * rel[:, 0] - sin * rel[:, 1], sin * rel[:, 0] + cos * rel[:, 1]], axis=-1)
        shift = dy * np.array([-np.sin(yaw0), np.cos(yaw0)])
        pose = np.concatenate([rotated + (x0, y0) + shift, np.arctan2(np.sin(scene.history.pose[:, 2:] + dyaw),
                                                                     np.cos(scene.history.pose[:, 2:] + dyaw))], axis=-1)
        out.append(replace(scene, token=f"{scene.token}~rec{dy:+.3f}m{dyaw:+.4f}rad", history=replace(scene.history, pose=pose),
                           human_trajectory=None, reference_trajectory=None))
    return out


def recovery_labels(scenes: list[Scene], device=None) -> tuple[np.ndarray, dict[str, Tensor]]:
    """PDM-Closed on (recovery) scenes -> expert plans (B, 8, 3) float32 at 0.5 s, and the reference
    cache {token: (41, 3) global poses} that `prepare_scenes` reads, so PDM-Closed runs once per scene."""
    from envs.sim.pdm_closed import pdm_closed_plan

    result = pdm_closed_plan(scenes, device=device)
    plans = np.stack([resample_plan(plan) for plan in result.plans])
    steps = round(HORIZON_S / STEP_S) + 1
    return plans, {s.token: result.trajectory[b, :steps] for b, s in enumerate(scenes)}


def offpolicy_samples(agent, plans: Tensor, gen: torch.Generator | None = None) -> Samples:
    """Plans (B, N, 8, 3) that the policy did not sample, as `Samples` it can re-score with `log_prob`.

    Token head: the codebook tokens closest to each plan (`plans` becomes their decoding, which is
    what gets scored). Flow head: a forward bridge x_t = (1 - t)·a + t·ε on the sampler's time grid
    with one ε per plan (posttraining.md §1.9 step 5: an off-policy plan has no recorded chain; the
    bridge is the choice recorded here), ending exactly at the normalised plan a. Gaussian heads
    (ego_mlp): the plans themselves. `logp` is zero: injected samples are shaped, never ratioed.
    """
    if plans.ndim != 4 or plans.shape[2:] != (PLAN_POSES, 3):
        raise ValueError(f"plans.shape={tuple(plans.shape)}: expected (B, N, {PLAN_POSES}, 3)")
    batch, count = plans.shape[:2]
    zeros = torch.zeros(batch, count)
    head = getattr(getattr(agent, "config", None), "head", None)
    head = getattr(head, "value", head)
    if head == "token":
        from agents.vla.codebook import decode_tokens, encode_plans

        tokens = encode_plans(agent.codebook, plans.flatten(0, 1).to(agent.device)).view(batch, count, -1)
        decoded = decode_tokens(agent.codebook, tokens).float().cpu()
        return Samples(plans=decoded, logp=zeros, tokens=tokens.cpu())
    if head == "flow":
        from agents.vla.flow_head import time_grid

        scale = agent.action_scale.detach().float().cpu()
        grid = time_grid(agent.config.flow_steps, agent.config.start_time).cpu()                    # (K+1,)
        actions = plans.float().cpu() / scale                                                       # (B, N, H, 3)
        device = gen.device if gen is not None else "cpu"
        noise = torch.randn(actions.shape, generator=gen, device=device).cpu()
        t = grid.view(1, 1, -1, 1, 1)
        chain = (1 - t) * actions[:, :, None] + t * noise[:, :, None]                              # (B, N, K+1, H, 3)
        chain[:, :, -1] = actions                                                                   # t = 0 exactly
        return Samples(plans=chain[:, :, -1] * scale, logp=zeros, chain=chain,
                       step_logp=torch.zeros(batch, count, len(grid) - 1))
    return Samples(plans=plans.float().cpu(), logp=zeros)


def cat_samples(parts: list[Samples]) -> Samples:
    """Concatenate Samples along G (every part must carry the same optional fields)."""
    def cat(name: str):
        values = [getattr(p, name) for p in parts]
        if all(v is None for v in values):
            return None
        if any(v is None for v in values):
            raise ValueError(f"samples.{name}: present in some parts only; they come from different heads")
        return torch.cat([v.cpu() for v in values], dim=1)

    return Samples(plans=cat("plans"), logp=cat("logp"), tokens=cat("tokens"), chain=cat("chain"), step_logp=cat("step_logp"))


def select_samples(samples: Samples, rows: Tensor, slots: Tensor) -> Samples:
    """Samples[rows[b], slots[b, n]] -> (B', N) Samples; rows (B',) and slots (B', N) int64."""
    pick = lambda t: None if t is None else t[rows[:, None], slots]
    return Samples(plans=pick(samples.plans), logp=pick(samples.logp), tokens=pick(samples.tokens),
                   chain=pick(samples.chain), step_logp=pick(samples.step_logp))


def best_slots(candidates: Samples, rewards: Tensor, eligible: Tensor, keep: int) -> tuple[Samples, Tensor, Tensor]:
    """Up to `keep` eligible candidates per group, highest reward first (ties: lowest index).

    candidates (B, N) with rewards, eligible (B, N), keep <= N -> Samples (B, keep), rewards (B, keep)
    (0 where empty), valid (B, keep) bool. An empty slot holds an ineligible candidate, masked out by
    `valid`. The slots' `logp` is 0: injected samples are shaped, never ratioed.
    """
    if not 1 <= keep <= rewards.shape[1]:
        raise ValueError(f"keep={keep}: must be in [1, {rewards.shape[1]}] (the candidates per group)")
    rows = torch.arange(rewards.shape[0])
    order = torch.where(eligible, rewards, -torch.inf).argsort(dim=1, descending=True, stable=True)[:, :keep]
    valid = eligible[rows[:, None], order]
    slots = replace(select_samples(candidates, rows, order), logp=torch.zeros(valid.shape))
    return slots, torch.where(valid, rewards[rows[:, None], order].double(), 0.0), valid


def replace_rows(samples: Samples, rows: Tensor, new: Samples) -> Samples:
    """A copy of samples (B, N) whose `rows` (B',) hold `new` (B', N) (same head, same N)."""
    def put(value: Tensor | None, part: Tensor | None) -> Tensor | None:
        if value is None:
            return None
        value = value.clone()
        value[rows] = part.to(value.dtype)
        return value

    return Samples(plans=put(samples.plans, new.plans), logp=put(samples.logp, new.logp), tokens=put(samples.tokens, new.tokens),
                   chain=put(samples.chain, new.chain), step_logp=put(samples.step_logp, new.step_logp))


@dataclass
class StepScenes:
    """The groups of one GRPO step: the env's scenes, then any recovery scenes, with scoring inputs."""

    scenes: list[Scene]
    """B_all scenes: the env's B first."""
    num_env: int
    """B: scenes drawn by the env."""
    obs: dict
    """Batched observations of all B_all scenes."""
    preps: list[tuple[PreparedScenes, int, int]]
    """Scoring inputs of rows [start, stop): the env's, then the recoveries'."""
    recovery_plans: np.ndarray | None = None
    """(B_all - B, 8, 3) PDM-Closed plans of the recovery scenes."""

    def score(self, plans: Tensor) -> dict[str, np.ndarray]:
        """Every sub-score and total {key: (B_all, N)} of plans (B_all, N, 8, 3), one call per scene set."""
        parts = []
        for prep, start, stop in self.preps:
            rows = score_rows(score_poses(prep, plans[start:stop].to(torch.float64), PLAN_INTERVAL_S))
            parts.append({k: np.array([[r[k] for r in per] for per in rows]) for k in SCORE_KEYS})
        return {k: np.concatenate([p[k] for p in parts]) for k in SCORE_KEYS}


def add_recoveries(step: StepScenes, obs_config, count: int, lateral: float, heading: float,
                   rng: np.random.Generator, metric, device=None) -> StepScenes:
    """`step` plus `count` recovery groups: env scenes drawn without replacement, displaced uniformly
    within ±lateral [m] and ±heading [rad], labelled by PDM-Closed (which also normalises their EP)."""
    from envs.metrics.scorer import ScoringConfig, prepare_scenes
    from envs.navsim_obs import build_observations
    from trainers.common.rollout import stack_obs

    if count < 1:
        return step
    picked = rng.choice(step.num_env, count, replace=False)
    scenes = recovery_scenes([step.scenes[i] for i in picked], rng.uniform(-lateral, lateral, count),
                             rng.uniform(-heading, heading, count))
    plans, cache = recovery_labels(scenes, device=device)
    prep = prepare_scenes(scenes, ScoringConfig(metric=metric, human_filter=False), device=device, reference_cache=cache)
    obs = build_observations(scenes, obs_config, [route.centerline for route in prep.routes])
    start = len(step.scenes)
    return StepScenes(step.scenes + scenes, step.num_env, stack_obs([step.obs, obs]),
                      step.preps + [(prep, start, start + count)], plans)


class ImitationTargets:
    """Expert plans (B, 8, 3) of scenes for the imitation anchor: the logged human plan or PDM-Closed's,
    cached by scene token (PDM-Closed is the slow part)."""

    def __init__(self, teacher: str = "human"):
        if teacher not in ("human", "pdm_closed"):
            raise ValueError(f"teacher={teacher!r}: expected human or pdm_closed")
        self.teacher, self.cache = teacher, {}

    def __call__(self, scenes: list[Scene]) -> np.ndarray:
        todo = [s for s in scenes if s.token not in self.cache]
        if todo and self.teacher == "pdm_closed":
            plans, _ = recovery_labels(todo)
            self.cache.update(zip([s.token for s in todo], plans))
        for scene in todo if self.teacher == "human" else ():
            if scene.human_trajectory is None:
                raise ValueError(f"scene {scene.token!r}: no human_trajectory for the imitation anchor; use teacher=pdm_closed")
            self.cache[scene.token] = resample_plan(scene.human_trajectory)
        return np.stack([self.cache[s.token] for s in scenes])
