"""GRPO on NAVSIM pseudo-simulation: B scenes x G plans per step from the vector env, rewarded by
PDMS or EPDMS (`trainers.grpo_reward`), for the token head (per-token ratios), the flow head (Flow-GRPO
SDE, per-denoising-step ratios) and Gaussian heads (one ratio per plan). Optional: feedback-guided
refinement of all-failed groups (ELF-VLA), mined negatives and PDM-Closed recoveries (SpanVLA), injected
with policy shaping (LUFFY).

Papers: GRPO (arXiv 2402.03300), Dr.GRPO (2503.20783), Flow-GRPO (2505.05470), ELF-VLA (2603.01063),
SpanVLA (2604.19710), LUFFY (2504.14945). Differences: ELF-VLA's teacher VLM is replaced by a report
built from the scorer (`trainers.grpo_feedback`); SpanVLA's negatives / recoveries are built from our own
samples and PDM-Closed (`trainers.grpo_samples`); spec: shared/specs/posttraining.md §1, §7, §8.
Defaults: Dr.GRPO advantages and a k3 KL anchor (β 0.04) to the SFT start, no imitation term (see the
`advantage`, `kl_coef` and `imitation_coef` fields for why). `configs/grpo_agent/<agent>.yaml` adds per-agent
defaults: the VLAs read the text prompt only (no cameras), the flow head samples with SDE noise 0.3 at lr 5e-5.

    python -m trainers.grpo env=navsim                                   # front door: short SFT, then GRPO
    python -m trainers.grpo agent=vla_flow init_checkpoint=runs/sft__x/agent.pt steps=100 group_size=8
    python -m trainers.grpo agent=ego_mlp refine.enabled=true negatives.per_group=1 recovery.rate=0.25
    python -m trainers.grpo reward.metric=epdms reward.hard_mask=true kl_coef=0.01 run.dir=runs/a   # resumable

Keys mirror `GRPOConfig`; `env.*`, `agent.*` and `run.*` are the same as in `trainers.sft`.
Runs go to `runs/grpo__navsim__{seed}__{time}/`; `run.resume=auto` (default) continues a given `run.dir`.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from agents.base import Samples
from envs.metrics.scorer import Metric
from envs.navsim import PLAN_POSES, NavsimConfig
from trainers.common.checkpoint import StopRequest, checkpoint_path, rng_state, save_atomic
from trainers.common.logging import PhaseClock, RunLogger
from trainers.common.rollout import Evaluation, agent_obs_config, select_obs
from trainers.common.setup import (
    AgentSpec, RunConfig, check_ranges, config_to_dict, hydra_main, make_train_vec, resolve_device, resume_latest, sft_start,
    start_run, trainable_agent,
)
from trainers.grpo_feedback import RefineConfig, failure_reports, group_picture, report_file_text
from trainers.grpo_reward import RewardConfig, reward_from_scores
from trainers.grpo_samples import (
    ImitationTargets, NegativeConfig, RecoveryConfig, StepScenes, add_recoveries, best_slots, cat_samples, offpolicy_samples,
    perturbed_negatives, replace_rows, select_samples,
)
from trainers.sft import LRSchedule, Teacher, lr_factor


class AdvantageMode(str, Enum):
    std = "std"
    """(r - mean) / (std + eps), std with Bessel's correction (TRL `scale_rewards="group"`)."""
    dr_grpo = "dr_grpo"
    """r - mean (Dr.GRPO: no std division, which removes the difficulty bias)."""


@dataclass
class GRPOConfig:
    """Every knob of GRPO (Hydra mirrors it, see the module docstring)."""

    env: NavsimConfig = field(default_factory=NavsimConfig)
    """Scene data, observation (`env.obs`) and scoring device; `train_split` / `eval_split` pick scenes."""
    agent: AgentSpec = field(default_factory=AgentSpec)
    """The trained agent (must match `init_checkpoint`'s kind when one is given)."""
    run: RunConfig = field(default_factory=RunConfig)
    """Seed, run folder, resume."""
    device: str = "auto"
    """Torch device of the agent: `auto` (cuda when available), `cpu`, `cuda`, ..."""

    # --- start ---
    init_checkpoint: str | None = None
    """SFT agent file (`agent.pt` of an SFT run); None: run a short SFT into `{run.dir}/sft` first."""
    sft_steps: int = 300
    """Steps of that SFT (ignored with `init_checkpoint`)."""
    sft_lr: float = 3e-4
    """Learning rate of that SFT."""
    teacher: Teacher = Teacher.human
    """Expert of that SFT and of the imitation anchor: `human` or `pdm_closed`."""

    # --- rollout and reward ---
    train_split: str = "navtrain"
    """Scenes the env draws from."""
    max_train_scenes: int | None = 512
    """Use only the first N training scenes; None: all (built-in navtrain has 10k, generated on first use at
    about 1 s per scene and core, so the default keeps a fresh machine's first run short)."""
    batch_size: int = 8
    """B: scenes (groups) per step."""
    group_size: int = 8
    """G: plans sampled per scene; advantages are normalised within each group. At least 2."""
    temperature: float | None = None
    """Token head: sampling temperature of the rollouts and of their log-probs (ratios stay exact); None keeps
    the agent's. Evaluation decodes greedily."""
    noise_level: float | None = None
    """Flow head: Flow-GRPO SDE noise level a of the rollouts and of their log-probs; None keeps the agent's.
    Evaluation integrates the deterministic ODE."""
    reward: RewardConfig = field(default_factory=RewardConfig)
    """Metric, sub-score weights, hard masks."""
    fail_score: float = 0.0
    """A sample fails when its metric total is at most this (ELF-VLA: PDMS 0); groups that only fail
    are refined, and failing perturbations become negatives."""

    # --- objective ---
    advantage: AdvantageMode = AdvantageMode.dr_grpo
    """`dr_grpo` or `std` (GRPO). With `std` a group of safe plans that differ only by a little progress gets
    advantages as large as a group where one plan crashes, so the policy learns to speed up and crashes more
    (token head on navtest: NC fell, PDMS fell); `dr_grpo` keeps the crash signal 90x larger (hand-worked test)."""
    adv_eps: float = 1e-4
    """Added to the group std (TRL, Flow-GRPO: 1e-4)."""
    drop_zero_variance: bool = True
    """Groups whose rewards are all equal (after injections) leave the loss entirely (Flow-GRPO,
    RLinf); False keeps them in the denominator with zero advantage (stock TRL)."""
    clip_eps: float = 0.2
    """PPO clip range below 1 (and above unless `clip_eps_high`)."""
    clip_eps_high: float | None = None
    """Clip range above 1 (DAPO clip-higher 0.28); None: `clip_eps`."""
    num_iterations: int = 1
    """μ: updates per batch of rollouts; 1 makes the ratio exactly 1 (REINFORCE with a group baseline)."""
    kl_coef: float = 0.04
    """Weight of the k3 KL to the frozen start policy (AutoVLA, Flow-GRPO β 0.04): the anchor that keeps the
    sampling entropy (no collapse into all-failed groups); 0 never builds the reference copy."""
    imitation_coef: float = 0.0
    """Weight of the agent's imitation loss to the `teacher`'s plans (spec §7.1 anchor). Off by default: next to
    Dr.GRPO advantages (|A| ~ 0.1) it outweighs the policy gradient and the run becomes more SFT."""
    shaping_gamma: float = 0.1
    """γ of the policy shaping p / (p + γ) of injected samples (LUFFY 0.1)."""
    step_discount: float = 1.0
    """Flow head: denoising step k of K weighs step_discount^(K-1-k) (ReCogDrive 0.6, Flow-GRPO 1)."""

    # --- injected samples ---
    refine: RefineConfig = field(default_factory=RefineConfig)
    negatives: NegativeConfig = field(default_factory=NegativeConfig)
    recovery: RecoveryConfig = field(default_factory=RecoveryConfig)

    # --- optimisation ---
    steps: int = 200
    """Optimizer steps (one batch of rollouts each, times `num_iterations`)."""
    lr: float = 1e-4
    """AdamW learning rate (peak, after warm-up); spec §8: 1e-4 for small heads, 1e-6 .. 3e-5 for LMs / LoRA."""
    weight_decay: float = 0.0
    """AdamW decoupled weight decay."""
    grad_clip: float = 1.0
    """Max global gradient norm; 0 disables clipping (the norm is still logged)."""
    warmup_steps: int = 0
    """Linear learning-rate warm-up from 0 over this many steps."""
    lr_schedule: LRSchedule = LRSchedule.constant
    """`constant` or `cosine` after the warm-up."""

    # --- evaluation, logging, checkpoints ---
    eval_split: str = "navtest"
    """Scenes of the closed-loop evaluation (deterministic `act`)."""
    eval_every: int = 50
    """Evaluate at step 0, every this many steps and at the end; 0 disables evaluation."""
    eval_scenes: int = 64
    """Evaluate on the first N scenes of `eval_split`."""
    eval_batch_size: int = 16
    """Scenes per evaluation batch."""
    log_every: int = 1
    """Log rollout, loss and timing scalars every this many steps (and at the last)."""
    image_every: int = 50
    """Draw group 0's samples with their scores every this many steps; 0: never."""
    ckpt_every: int = 50
    """Checkpoint every this many steps; the last step and a Ctrl-C always checkpoint."""
    progress: bool = True
    """Show tqdm progress bars."""

    def __post_init__(self):
        self.teacher, self.advantage, self.lr_schedule = Teacher(self.teacher), AdvantageMode(self.advantage), LRSchedule(self.lr_schedule)
        if self.group_size < 2:
            raise ValueError(f"group_size={self.group_size}: GRPO needs at least 2 samples per group")
        check_ranges(self, at_least_one=("batch_size", "steps", "num_iterations", "eval_scenes", "eval_batch_size", "log_every",
                                         "ckpt_every", "max_train_scenes"),
                     non_negative=("sft_steps", "eval_every", "image_every", "warmup_steps", "adv_eps", "clip_eps",
                                   "clip_eps_high", "kl_coef", "imitation_coef", "weight_decay", "grad_clip"),
                     positive=("shaping_gamma", "lr", "sft_lr", "step_discount", "temperature", "noise_level"), unit=("step_discount",),
                     device=self.device)
        if self.negatives.per_group > self.group_size:
            raise ValueError(f"negatives.per_group={self.negatives.per_group}: at most group_size={self.group_size} (one per sample)")


# --- pure maths ----------------------------------------------------------------------------------


def group_advantages(rewards: Tensor, valid: Tensor, mode: AdvantageMode | str = AdvantageMode.std,
                     eps: float = 1e-4) -> tuple[Tensor, Tensor]:
    """Group-relative advantages (B, G) over the valid members of each group, and zero_variance (B,) bool.

    std: (r - mean) / (std + eps) with the Bessel-corrected std (TRL); dr_grpo: r - mean. A group whose
    valid rewards are all equal (or with fewer than 2 valid members) gets zero advantage and is flagged.
    Invalid members get 0.
    """
    mode = AdvantageMode(mode)
    if rewards.shape != valid.shape or rewards.ndim != 2:
        raise ValueError(f"rewards.shape={tuple(rewards.shape)}, valid.shape={tuple(valid.shape)}: expected equal (B, G)")
    if not bool(torch.isfinite(rewards[valid]).all()):
        raise ValueError("rewards: non-finite value among the valid members")
    rewards, valid = rewards.to(torch.float64), valid.bool()
    count = valid.sum(1, keepdim=True)
    filled = torch.where(valid, rewards, 0.0)
    mean = filled.sum(1, keepdim=True) / count.clamp(min=1)
    centred = torch.where(valid, rewards - mean, 0.0)
    high = torch.where(valid, rewards, -math.inf).amax(1)
    low = torch.where(valid, rewards, math.inf).amin(1)
    zero_variance = (count[:, 0] < 2) | (high - low <= 1e-12)
    if mode is AdvantageMode.std:
        std = torch.sqrt((centred**2).sum(1, keepdim=True) / (count - 1).clamp(min=1))
        centred = centred / (std + eps)
    return torch.where(zero_variance[:, None], 0.0, centred), zero_variance


def injection_weights(logp: Tensor, gamma: float = 0.1) -> Tensor:
    """LUFFY policy shaping f(p) = p / (p + γ) with p = exp(logp), computed as sigmoid(logp - log γ).

    The log-space form never forms exp(logp): a density far above 1 (logp = 800) gives 1 and a
    vanishing one (logp = -1e4) gives 0, both with finite gradients γp/(p+γ)² · ∇logp, where p / (p + γ)
    itself would overflow or divide 0 by 0.
    """
    if gamma <= 0:
        raise ValueError(f"gamma={gamma!r}: must be > 0")
    return torch.sigmoid(logp - math.log(gamma))


def grpo_loss(logp_new: Tensor, logp_old: Tensor, advantages: Tensor, clip_eps: float, weights: Tensor | None = None,
              ref_logp: Tensor | None = None, kl_coef: float = 0.0, *, clip_eps_high: float | None = None,
              injected: Tensor | None = None, gamma: float = 0.1, unit_dims: int = 1,
              unit_weights: Tensor | None = None) -> tuple[Tensor, dict[str, float]]:
    """Clipped GRPO loss with k3 KL and policy-shaped injected samples -> (scalar loss, stats).

    logp_new, logp_old, ref_logp: (B, G, U) log-probs per unit (token, denoising step, or U = 1 for a
    whole plan) or (B, G); advantages (B, G); weights (B, G) >= 0 per-sample loss weights (0 drops
    padding and zero-variance groups); injected (B, G) bool off-policy members.
    Per unit: on-policy -min(ρA, clip(ρ, 1-ε, 1+ε_high)A) with ρ = exp(new - old); injected -f(p)A with
    f = `injection_weights`, no clip, p = exp(new / unit_dims) the per-dimension likelihood (a unit that
    sums unit_dims Gaussian dimensions is a density, not a probability), its gradient scaled by unit_dims
    so it is γp/(p+γ)²·∇logp_unit, on the scale of the on-policy ρ·∇logp_unit; plus kl_coef·k3 with
    k3 = exp(ref - new) - (ref - new) - 1. Units are averaged with `unit_weights` (U,) (default uniform),
    samples by `weights`: loss = Σ w·ℓ / Σ w (0 with a graph when every weight is 0).
    """
    if logp_new.ndim == 2:
        logp_new, logp_old = logp_new[..., None], logp_old[..., None]
        ref_logp = None if ref_logp is None else ref_logp[..., None]
    if logp_new.shape != logp_old.shape or logp_new.shape[:2] != advantages.shape:
        raise ValueError(f"logp_new {tuple(logp_new.shape)}, logp_old {tuple(logp_old.shape)}, advantages "
                         f"{tuple(advantages.shape)}: expected (B, G, U), (B, G, U), (B, G)")
    batch, group, units = logp_new.shape
    weights = torch.ones(batch, group) if weights is None else weights
    weights = weights.to(logp_new.device, logp_new.dtype)
    injected = torch.zeros(batch, group, dtype=torch.bool) if injected is None else injected.bool()
    injected = injected.to(logp_new.device)
    unit_weights = torch.ones(units) if unit_weights is None else unit_weights
    unit_weights = (unit_weights / unit_weights.sum()).to(logp_new.device, logp_new.dtype)
    adv = advantages.to(logp_new.device, logp_new.dtype)[..., None]
    high = clip_eps if clip_eps_high is None else clip_eps_high

    ratio = torch.exp(logp_new - logp_old.detach())
    clipped = ratio.clamp(1 - clip_eps, 1 + high)
    on_policy = -torch.minimum(ratio * adv, clipped * adv)
    shaped = injection_weights(logp_new / unit_dims, gamma)
    shaped = shaped + (unit_dims - 1) * (shaped - shaped.detach())    # value f(p), gradient x unit_dims
    per_unit = torch.where(injected[..., None], -shaped * adv, on_policy)
    kl = torch.zeros_like(per_unit)
    if ref_logp is not None and kl_coef > 0:
        delta = ref_logp.detach().to(logp_new.device, logp_new.dtype) - logp_new
        kl = torch.exp(delta) - delta - 1
    per_sample = ((per_unit + kl_coef * kl) * unit_weights).sum(-1)
    total = weights.sum()
    loss = (per_sample * weights).sum() / total if total > 0 else 0.0 * logp_new.sum()

    with torch.no_grad():
        on = (weights > 0) & ~injected
        inj = (weights > 0) & injected
        is_clipped = ((ratio < 1 - clip_eps) & (adv < 0)) | ((ratio > 1 + high) & (adv > 0))
        mean = lambda value, mask: float(value[mask].mean()) if bool(mask.any()) else 0.0
        stats = {
            "policy": float((((per_unit * unit_weights).sum(-1)) * weights).sum() / total) if total > 0 else 0.0,
            "kl": mean((kl * unit_weights).sum(-1), weights > 0),
            "clip_frac": mean(is_clipped.float().mean(-1), on),
            "ratio_mean": mean(ratio.mean(-1), on),
            "injected_weight": mean(shaped.mean(-1), inj),
        }
    return loss, stats


# --- training ------------------------------------------------------------------------------------


def train(cfg: GRPOConfig) -> dict[str, Any]:
    """Run GRPO; returns {"run_dir", "step", "scorer_plans", "first_eval", "last_eval", "last_metrics"}."""

    # --- setup ---
    device, run_dir = resolve_device(cfg.device), start_run(cfg.run, "grpo", "navsim")
    init_path = Path(cfg.init_checkpoint) if cfg.init_checkpoint else sft_start(cfg, run_dir, cfg.sft_steps, cfg.sft_lr)
    agent = trainable_agent(cfg.agent, init_path, device, needs=("sample", "log_prob", "imitation_loss"))
    for knob in ("temperature", "noise_level"):     # exploration of the rollouts, saved with the agent
        if getattr(cfg, knob) is not None:
            if not hasattr(getattr(agent, "config", None), knob):
                raise ValueError(f"{knob}={getattr(cfg, knob)}: agent {agent.name!r} samples without a {knob}")
            setattr(agent.config, knob, getattr(cfg, knob))
    reference = copy.deepcopy(agent).eval().requires_grad_(False) if cfg.kl_coef > 0 else None
    metric = Metric(cfg.reward.metric.value)
    obs_config = agent_obs_config(frozenset(agent.inputs), cfg.env.obs)
    env_config = replace(cfg.env, split=cfg.train_split, max_scenes=cfg.max_train_scenes, obs=obs_config)
    vec = make_train_vec(f"roadloop/Navsim-v{1 if metric is Metric.PDMS else 2}", cfg.batch_size, env_config)
    scene_rng = np.random.default_rng(cfg.run.seed)
    sample_gen = torch.Generator(device=device).manual_seed(cfg.run.seed)
    aux_gen = torch.Generator().manual_seed(cfg.run.seed + 1)
    generators = {"scenes": scene_rng, "sample": sample_gen, "aux": aux_gen}
    params = [p for p in agent.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, cfg.warmup_steps, cfg.steps, cfg.lr_schedule))
    evaluation = (Evaluation(cfg.env, cfg.eval_split, cfg.eval_scenes, cfg.eval_batch_size, metric)
                  if cfg.eval_every else None)
    expert_plans = ImitationTargets(cfg.teacher.value)
    config_dict = {**config_to_dict(cfg), "init_checkpoint": str(init_path)}
    step, state = resume_latest(run_dir, cfg.run.resume, {"model": agent, "optimizer": optimizer, "scheduler": scheduler},
                                generators, config_dict)
    scorer_plans = int(state.get("scorer_plans", 0))     # every plan the true scorer scored (PPO + RWM compares on it)
    logger = RunLogger(run_dir, config_dict)

    def checkpoint() -> None:
        save_atomic({"step": step, "model": agent.state_dict(), "optimizer": optimizer.state_dict(),
                     "scheduler": scheduler.state_dict(), "rng": rng_state(generators), "config": config_dict, "scorer_plans": scorer_plans,
                     "agent": cfg.agent.name}, checkpoint_path(run_dir, step))

    def score(plans: Tensor) -> dict:
        nonlocal scorer_plans
        scorer_plans += plans.shape[0] * plans.shape[1]
        return groups.score(plans)

    def run_eval() -> dict[str, float]:
        return evaluation.run_logged(agent, logger, step, cfg.run.seed, cfg.progress)

    first_eval = last_eval = None
    if evaluation is not None and step == 0:
        first_eval = last_eval = run_eval()

    # --- loop: rollout -> score -> inject -> advantages -> update -> log -> checkpoint ---
    last_metrics: dict[str, float] = {}
    keys = ("nc", "dac", "ddc", "ep", "ttc", "c") if metric is Metric.PDMS else ("nc", "dac", "ddc", "tlc", "ep", "ttc", "lk", "hc", "ec")
    bar = tqdm(total=cfg.steps, initial=step, desc="grpo", unit="step", disable=not cfg.progress)
    with StopRequest() as stop:
        while step < cfg.steps and not stop.requested:
            clock = PhaseClock(("env", "sampling", "scoring", "update"), device)    # env: scene draw, observations, metric cache
            lap = clock.lap

            # --- rollout: scenes (env draw + recovery starts) and observations ---
            obs, _ = vec.reset(seed=int(scene_rng.integers(2**31 - 1)))
            env_scenes = vec.unwrapped.scenes
            groups = add_recoveries(StepScenes(env_scenes, len(env_scenes), obs, [(vec.unwrapped.batch.prep, 0, len(env_scenes))]),
                                    obs_config, round(cfg.recovery.rate * cfg.batch_size), cfg.recovery.lateral,
                                    cfg.recovery.heading, scene_rng, metric, cfg.env.device)
            obs, batch = groups.obs, len(groups.scenes)
            rows = torch.arange(batch)
            lap("env")

            # --- sample G plans per scene (one batched call), simulate and score them ---
            agent.eval()
            with torch.no_grad():
                samples = agent.sample(obs, cfg.group_size, sample_gen).to("cpu")
            lap("sampling")
            table = score(samples.plans)
            rewards = reward_from_scores(table, cfg.reward)
            failed = torch.as_tensor(table[metric.value] <= cfg.fail_score)
            all_failed = failed.all(1)
            lap("scoring")

            # --- inject: refinements (ELF-VLA), negatives and recoveries (SpanVLA) ---
            parts, part_rewards, part_valid, counts, reports = [samples], [rewards], [torch.ones_like(failed)], {}, []

            def inject(name: str, candidates: Samples, eligible_of, keep: int) -> None:
                """Score candidates (B_all, N); append `keep` slots holding the best eligible ones."""
                cand_table = score(candidates.plans)
                slots, slot_rewards, valid = best_slots(candidates, reward_from_scores(cand_table, cfg.reward),
                                                        eligible_of(torch.as_tensor(cand_table[metric.value])), keep)
                parts.append(slots), part_rewards.append(slot_rewards), part_valid.append(valid)
                counts[name] = float(valid.sum()) / batch

            if cfg.refine.enabled:
                counts["refine"] = 0.0
                if bool(all_failed.any()):
                    failed_rows = all_failed.nonzero()[:, 0]
                    reports = failure_reports(groups, samples.plans, rewards, failed_rows)
                    lap("scoring")
                    with torch.no_grad():
                        refined = agent.sample(select_obs(obs, failed_rows.numpy()), cfg.refine.samples, sample_gen,
                                               prompt_extra=[text for _, _, text in reports]).to("cpu")
                    lap("sampling")
                    # groups that did not fail keep copies of their own samples in these slots (never eligible)
                    own = select_samples(samples, rows, torch.arange(cfg.refine.samples).repeat(batch, 1) % cfg.group_size)
                    inject("refine", replace_rows(own, failed_rows, refined),
                           lambda total: (total >= cfg.refine.above) & all_failed[:, None], cfg.refine.keep)
                    lap("scoring")
            if cfg.negatives.per_group:
                best = select_samples(samples, rows, rewards.argsort(dim=1, descending=True, stable=True)[:, :cfg.negatives.per_group])
                inject("negative", offpolicy_samples(agent, perturbed_negatives(best.plans, aux_gen, cfg.negatives.scale), aux_gen),
                       lambda total: total <= cfg.fail_score, cfg.negatives.per_group)
                lap("scoring")
            if groups.recovery_plans is not None:
                plans = samples.plans[:, :1].clone()
                plans[groups.num_env:] = torch.as_tensor(groups.recovery_plans)[:, None]
                inject("recovery", offpolicy_samples(agent, plans, aux_gen),
                       lambda total: (total >= cfg.recovery.above) & (rows >= groups.num_env)[:, None], 1)
                lap("scoring")

            # --- advantages over the mixed groups ---
            group = cat_samples(parts)
            group_rewards, valid = torch.cat(part_rewards, 1), torch.cat(part_valid, 1)
            injected = torch.cat([torch.zeros_like(failed)] + part_valid[1:], 1)
            advantages, zero_variance = group_advantages(group_rewards, valid, cfg.advantage, cfg.adv_eps)
            _, zero_before = group_advantages(rewards, torch.ones_like(failed), cfg.advantage, cfg.adv_eps)
            weights = (valid & ~(zero_variance[:, None] & cfg.drop_zero_variance)).double()

            # --- update ---
            agent.train()
            unit_dims = 1 if group.tokens is not None else PLAN_POSES * 3    # a token is one categorical draw
            unit_weights = None if group.chain is None else cfg.step_discount ** torch.arange(group.chain.shape[2] - 2, -1, -1.0)
            ref_units = None
            if reference is not None:
                with torch.no_grad():
                    ref_total, ref_parts = reference.log_prob(obs, group.to(device))
                ref_units = ref_parts if ref_parts is not None else ref_total[..., None]
            expert = np.concatenate([expert_plans(env_scenes)] + ([groups.recovery_plans] if groups.recovery_plans is not None else []))
            old_units = None
            for iteration in range(cfg.num_iterations):
                logp_total, logp_parts = agent.log_prob(obs, group.to(device))
                logp_units = logp_parts if logp_parts is not None else logp_total[..., None]
                if old_units is None:   # the sampler's log-probs must be the update's at the same weights
                    old_units = logp_units.detach()
                    logp_gap = float((logp_total.detach().cpu() - group.logp)[~injected].abs().max())
                policy_loss, stats = grpo_loss(logp_units, old_units, advantages, cfg.clip_eps, weights, ref_units, cfg.kl_coef,
                                               clip_eps_high=cfg.clip_eps_high, injected=injected, gamma=cfg.shaping_gamma,
                                               unit_dims=unit_dims, unit_weights=unit_weights)
                imitation = (agent.imitation_loss(obs, torch.as_tensor(expert, device=device)) if cfg.imitation_coef > 0
                             else torch.zeros((), device=device))
                loss = policy_loss.to(device) + cfg.imitation_coef * imitation
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"losses/total={loss.item()} at step {step}: not finite")
                share = 0.0
                if bool(injected.any()) and logp_units.requires_grad:
                    (grad_logp,) = torch.autograd.grad(policy_loss, logp_units, retain_graph=True)
                    magnitude = grad_logp.abs().sum(-1).cpu()
                    share = float(magnitude[injected].sum() / magnitude.sum().clamp(min=1e-30))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip if cfg.grad_clip > 0 else math.inf)
                optimizer.step()
            scheduler.step()
            lap("update")
            step += 1
            bar.update(1)

            # --- log ---
            on_policy = ~injected & (weights > 0)     # entropy estimate: -log π of the policy's own samples
            metrics = {
                "rollout/reward": float(rewards.mean()), f"rollout/{metric.value}": float(table[metric.value].mean()),
                "rollout/fail_rate": float(failed.double().mean()), "rollout/all_failed_frac": float(all_failed.double().mean()),
                "rollout/zero_var_frac": float(zero_before.double().mean()),
                "rollout/zero_var_after_frac": float(zero_variance.double().mean()),
                "rollout/repaired_frac": float((zero_before & ~zero_variance).double().mean()),
                "rollout/adv_mean": float(advantages[valid].mean()), "rollout/adv_std": float(advantages[valid].std()),
                "rollout/adv_abs_max": float(advantages.abs().max()),
                **{f"rollout/{k}": float(table[k].mean()) for k in keys},
                **{f"rollout/{k}_fail": float((table[k] < 1).mean()) for k in keys if k != "ep"},
                **{f"rollout/injected_{k}": v for k, v in counts.items()},
                **{f"losses/{k}": v for k, v in stats.items()},
                "losses/imitation": float(imitation.detach()), "losses/total": float(loss.detach()), "losses/grad_norm": float(grad_norm),
                "losses/entropy": float(-old_units.cpu()[on_policy].mean()) if bool(on_policy.any()) else 0.0,
                "losses/injected_grad_share": share, "losses/logp_gap": logp_gap, "charts/lr": scheduler.get_last_lr()[0],
                "charts/scorer_plans": float(scorer_plans),
                **{f"charts/time_{k}": v for k, v in clock.seconds.items()},
                "charts/steps_per_s": 1.0 / max(1e-9, sum(clock.seconds.values())),
            }
            last_metrics = metrics
            bar.set_postfix(reward=f"{metrics['rollout/reward']:.3f}")
            if reports:
                (run_dir / "reports").mkdir(parents=True, exist_ok=True)
                (run_dir / "reports" / f"step_{step:08d}.txt").write_text(report_file_text(step, reports))
            if step % cfg.log_every == 0 or step == cfg.steps:
                logger.log_scalars(metrics, step)
                for scene, _, text in reports[: cfg.refine.reports_logged]:
                    logger.writer.add_text("rollout/report", f"{scene.token} ({scene.scenario_type}): {text}", step)
            if cfg.image_every and step % cfg.image_every == 0:
                logger.log_image("rollout/group_0", group_picture(groups.scenes[0], samples.plans[0], table[metric.value][0],
                                                                  metric.value), step)
            if evaluation is not None and (step % cfg.eval_every == 0 or step == cfg.steps):
                last_eval = run_eval()
                first_eval = first_eval or last_eval
            if step % cfg.ckpt_every == 0 or step == cfg.steps or stop.requested:
                checkpoint()
    bar.close()
    if step == cfg.steps:
        agent.save(run_dir / "agent.pt")
    logger.close()
    vec.close()
    return {"run_dir": str(run_dir), "step": step, "scorer_plans": scorer_plans, "first_eval": first_eval, "last_eval": last_eval, "last_metrics": last_metrics}


# --- Hydra entry ----------------------------------------------------------------------------------


def main() -> None:
    hydra_main("grpo", GRPOConfig, train, ("run_dir", "step", "scorer_plans", "first_eval", "last_eval"))


if __name__ == "__main__":
    main()
