"""PPO with a learned reward world model (IRL-VLA, arXiv 2508.06571) on NAVSIM pseudo-simulation:
clipped PPO with a value head and GAE, rewarded by the reward world model (`trainers.reward_model`)
between periodic true-scorer corrections that also grow its training set and refresh it.

Differences from the paper (which published no code): the RWM reads privileged scene vectors, not
the VLA's sensor tokens; PPO's action is a whole plan (its log-prob is the agent's, per plan or per
token / denoising step), not DPPO's per-denoising-step MDP; the critic is a separate network on the
same privileged vectors (the agents expose no pooled backbone features). Spec: posttraining.md §2, §8.

    python -m trainers.ppo                                                 # ego_mlp on Navsim-v1
    python -m trainers.ppo agent=vla_flow init_checkpoint=runs/sft__x/agent.pt ratio_level=part
    python -m trainers.ppo env_id=roadloop/Navsim-v2 num_samples=1 true_score_every=2 run.dir=runs/p  # resumable
    python -m trainers.ppo true_score_every=1                             # plain PPO on the true scorer

Rollouts: each step draws `num_envs` scenes. Navsim-v1 is a bandit (one plan per episode): G plans
per scene are sampled and rewarded, the env is never stepped (it would score plans nobody uses).
Navsim-v2 has two stages: one plan per env is stepped to build the follow-up world (the env scores
it on the way; those true sub-scores are used, never thrown away), the second-stage plan is rewarded
by the RWM; the episode reward is stage-1 score x stage-2 score at the last stage, as the env's.
Every `true_score_every` steps the last-stage plans go to the true scorer instead: their scores are
the rewards of that step, the RWM's error on them is logged (before it sees them), they join the RWM
data set, and the RWM is refit. `charts/scorer_plans` counts every plan the true scorer scored.
Keys mirror `PPOConfig`; `env.*`, `agent.*`, `run.*` are as in `trainers.sft`. Runs: `runs/ppo__navsim-v1__{seed}__{time}/`.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import asdict, dataclass, field, fields, replace
from enum import Enum
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from agents.base import Samples
from envs.metrics.scorer import Metric
from envs.navsim import NavsimConfig
from trainers.common.checkpoint import StopRequest, checkpoint_path, rng_state, save_atomic
from trainers.common.logging import RunLogger
from trainers.common.rollout import Evaluation, agent_obs_config, select_obs
from trainers.reward_model import (
    SUBSCORES, RewardDataset, RewardModelConfig, RewardWorldModel, SceneEncoder, SceneFeatures, fit_reward_model,
    predicted_score, ranking_accuracy, scene_features, subscore_errors,
)
from trainers.common.setup import (
    AgentSpec, RunConfig, check_ranges, config_to_dict, hydra_main, make_train_vec, resolve_device, resume_latest, start_run, trainable_agent,
)
from trainers.sft import Teacher

ENV_STAGES = {"roadloop/Navsim-v1": (1, Metric.PDMS), "roadloop/Navsim-v2": (2, Metric.EPDMS)}
"""Supported env ids -> (steps per episode, the metric of each stage's score)."""


class RatioLevel(str, Enum):
    """What one PPO probability ratio covers (member names are the Hydra values)."""

    plan = "plan"
    """One ratio per plan: exp of the difference of whole-plan log-probs."""
    part = "part"
    """One ratio per action token (token head) or denoising step (flow head), each with the plan's
    advantage, averaged (DPPO-style); agents without parts (ego_mlp) fall back to `plan`."""


@dataclass
class PPOConfig:
    """Every knob of PPO + RWM (Hydra mirrors it; PPO names follow Stable-Baselines3)."""

    env: NavsimConfig = field(default_factory=NavsimConfig)
    """Scene data, observation (`env.obs`; `privileged` is switched on for the RWM and the critic) and
    scoring device. `train_split` / `eval_split` pick the scenes."""
    agent: AgentSpec = field(default_factory=lambda: AgentSpec(name="ego_mlp"))
    """The trained agent (built fresh unless `init_checkpoint` is given)."""
    run: RunConfig = field(default_factory=RunConfig)
    """Seed, run folder, resume."""
    device: str = "auto"
    """Torch device of the agent, critic and RWM: `auto` (cuda when available), `cpu`, `cuda`, ..."""
    init_checkpoint: str | None = None
    """Agent file to start from (an SFT run's `agent.pt`); None: a fresh `agent.name` with `agent.kwargs`."""
    env_id: str = "roadloop/Navsim-v1"
    """`roadloop/Navsim-v1` (one stage, PDMS) or `roadloop/Navsim-v2` (two stages, EPDMS)."""

    # --- rollout ---
    train_split: str = "navtrain"
    """Scenes the env draws from."""
    max_train_scenes: int | None = None
    """Use only the first N training scenes; None: all."""
    num_envs: int = 16
    """B: scenes per step (CaRL: never fewer than ~8, mini-batches need decorrelated scenes)."""
    num_samples: int = 8
    """G: plans sampled per scene (Navsim-v1). Must be 1 on multi-stage envs: only one plan can
    continue an episode."""

    # --- PPO (SB3 names; defaults from spec §8 / Roach / CaRL) ---
    steps: int = 500
    """PPO iterations: rollout, rewards, `n_epochs` of updates."""
    learning_rate: float = 1e-4
    """Adam learning rate of the agent."""
    vf_learning_rate: float = 1e-3
    """Adam learning rate of the critic (RL4VLA: value head 30x the policy's)."""
    n_epochs: int = 4
    """Passes over each rollout."""
    batch_size: int = 8
    """Rows per mini-batch; a row is one scene at one stage with its G plans."""
    gamma: float = 0.99
    """Discount between the stages of an episode."""
    gae_lambda: float = 0.95
    """GAE λ."""
    clip_range: float = 0.2
    """PPO ratio clip ε."""
    normalize_advantage: bool = True
    """Normalise advantages to zero mean, unit std within each mini-batch (SB3 default)."""
    ent_coef: float = 0.01
    """Entropy bonus weight; needs a closed-form entropy (Gaussian heads with `log_std`, e.g. ego_mlp).
    Agents without one get a warning and no bonus."""
    vf_coef: float = 0.5
    """Value-loss weight."""
    max_grad_norm: float = 0.5
    """Global gradient-norm clip of agent + critic; 0 disables clipping (the norm is still logged)."""
    target_kl: float | None = 0.01
    """Stop the epochs of a step when a mini-batch's approximate KL exceeds 1.5 x this (SB3); None: never."""
    ratio_level: RatioLevel = RatioLevel.plan
    """`plan` or `part` (per token / denoising step)."""
    imitation_coef: float = 0.1
    """Weight of the agent's imitation loss to the `teacher`'s plans on first-stage rows (spec §7.1:
    the anchor against EP hacking); 0 disables it."""
    teacher: Teacher = Teacher.human
    """Expert of the imitation anchor: `human` or `pdm_closed`."""

    # --- reward world model ---
    true_score_every: int = 4
    """Every this many steps (and at step 0) the last stage is scored by the true scorer; 1: plain PPO
    on true rewards (the RWM is still fit and validated)."""
    rwm_updates: int = 100
    """RWM optimizer steps per refresh."""
    rwm_batch_size: int = 16
    """Scenes (with their plans) per RWM mini-batch."""
    rwm_lr: float = 3e-3
    """RWM Adam peak learning rate (cosine-annealed within each refresh)."""
    rwm_width: int = 32
    """RWM and critic scene-encoder width."""
    rwm_hidden: int = 256
    """RWM trunk width."""
    rwm_buffer_scenes: int = 4096
    """Scored scenes the RWM data set keeps (oldest dropped first)."""

    # --- evaluation, logging, checkpoints ---
    eval_split: str = "navtest"
    """Scenes of the evaluation (deterministic `act`, one-stage metric of `env_id`)."""
    eval_every: int = 50
    """Evaluate at step 0, every this many steps and at the end; 0 disables evaluation."""
    eval_scenes: int = 64
    """Evaluate on the first N scenes of `eval_split`."""
    eval_batch_size: int = 16
    """Scenes per evaluation batch."""
    log_every: int = 1
    """Log scalars every this many steps (and at the last)."""
    ckpt_every: int = 50
    """Checkpoint every this many steps; the last step and a Ctrl-C always checkpoint."""
    progress: bool = True
    """Show tqdm progress bars."""

    def __post_init__(self):
        self.ratio_level, self.teacher = RatioLevel(self.ratio_level), Teacher(self.teacher)
        if self.env_id not in ENV_STAGES:
            raise ValueError(f"env_id={self.env_id!r}: supported ids are {', '.join(ENV_STAGES)}")
        if self.stages > 1 and self.num_samples != 1:
            raise ValueError(f"num_samples={self.num_samples}: {self.env_id} has {self.stages} stages; only one plan "
                             "per env can continue an episode, so it needs num_samples=1")
        check_ranges(self, at_least_one=("num_envs", "num_samples", "steps", "n_epochs", "batch_size", "true_score_every",
                                         "rwm_batch_size", "rwm_width", "rwm_hidden", "rwm_buffer_scenes", "eval_scenes",
                                         "eval_batch_size", "log_every", "ckpt_every", "max_train_scenes"),
                     non_negative=("rwm_updates", "eval_every", "ent_coef", "vf_coef", "max_grad_norm", "imitation_coef"),
                     positive=("learning_rate", "vf_learning_rate", "rwm_lr", "clip_range", "target_kl"),
                     unit=("gamma", "gae_lambda"), device=self.device)

    @property
    def stages(self) -> int:
        """T: env steps per episode."""
        return ENV_STAGES[self.env_id][0]

    @property
    def metric(self) -> Metric:
        return ENV_STAGES[self.env_id][1]


# --- pure maths ----------------------------------------------------------------------------------


def gae(rewards: Tensor, values: Tensor, dones: Tensor, gamma: float, lam: float) -> tuple[Tensor, Tensor]:
    """Generalised advantage estimation (Schulman et al. 2016) -> advantages (T, N), returns (T, N).

    rewards (T, N) after each action; values (T+1, N) V(s_0..s_T), the last row the bootstrap value of
    the state after the rollout; dones (T, N) 1 where the episode ended with action t (no bootstrap
    across it). δ_t = r_t + γ V_{t+1} (1 - d_t) - V_t, A_t = δ_t + γ λ (1 - d_t) A_{t+1}, returns = A + V.
    """
    if rewards.ndim != 2 or values.shape != (rewards.shape[0] + 1, rewards.shape[1]) or dones.shape != rewards.shape:
        raise ValueError(f"rewards {tuple(rewards.shape)}, values {tuple(values.shape)}, dones {tuple(dones.shape)}: "
                         "expected (T, N), (T+1, N), (T, N)")
    live = 1.0 - dones.to(rewards.dtype)
    advantages = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[0])
    for t in range(rewards.shape[0] - 1, -1, -1):          # sequential by definition; T is 1-2 on NAVSIM
        delta = rewards[t] + gamma * values[t + 1] * live[t] - values[t]
        running = delta + gamma * lam * live[t] * running
        advantages[t] = running
    return advantages, advantages + values[:-1]


@dataclass(frozen=True)
class PPOLoss:
    """The terms of one PPO mini-batch loss; `total` carries the gradient, the rest are detached."""

    total: Tensor
    policy: Tensor
    value: Tensor
    entropy: Tensor
    approx_kl: Tensor
    """mean((ρ - 1) - log ρ), the low-variance KL(old || new) estimator SB3 uses for `target_kl`."""
    clip_fraction: Tensor
    """Share of ratios outside [1 - ε, 1 + ε]."""


def ppo_loss(logp_new: Tensor, logp_old: Tensor, advantages: Tensor, values: Tensor, returns: Tensor, clip: float,
             vf_coef: float, ent_coef: float, entropy: Tensor | None = None) -> PPOLoss:
    """Clipped PPO loss: -mean(min(ρA, clip(ρ, 1-ε, 1+ε)A)) + vf_coef·mean((V - R)²) - ent_coef·mean(H).

    logp_new, logp_old (N, ...) with ρ = exp(new - old) per entry (a plan, or its tokens / denoising
    steps: (N, G, K)); advantages broadcast from the left over the trailing axes of logp ((N, G) with
    (N, G, K)); values, returns any equal shape (N, G); entropy any shape or None (no bonus).
    """
    if logp_new.shape != logp_old.shape or logp_new.shape[: advantages.ndim] != advantages.shape:
        raise ValueError(f"logp_new {tuple(logp_new.shape)}, logp_old {tuple(logp_old.shape)}, advantages "
                         f"{tuple(advantages.shape)}: logp shapes must agree and start with the advantages' shape")
    if values.shape != returns.shape:
        raise ValueError(f"values {tuple(values.shape)}, returns {tuple(returns.shape)}: must agree")
    adv = advantages.to(logp_new).reshape(advantages.shape + (1,) * (logp_new.ndim - advantages.ndim))
    log_ratio = logp_new - logp_old.detach()
    ratio = torch.exp(log_ratio)
    policy = -torch.minimum(ratio * adv, ratio.clamp(1 - clip, 1 + clip) * adv).mean()
    value = ((values - returns.to(values).detach()) ** 2).mean()
    bonus = entropy.mean() if entropy is not None else torch.zeros((), device=logp_new.device)
    total = policy + vf_coef * value - ent_coef * bonus
    with torch.no_grad():
        approx_kl = ((ratio - 1) - log_ratio).mean()
        clip_fraction = ((ratio - 1).abs() > clip).to(ratio.dtype).mean()
    return PPOLoss(total, policy.detach(), value.detach(), bonus.detach(), approx_kl, clip_fraction)


def episode_rewards(stage_scores: Tensor) -> Tensor:
    """Rewards (T, ...) of episodes scored per stage, stage_scores (T, ...): 0 before the last stage,
    the product of all stage scores at it (Navsim-v2: EPDMS(stage 1) x EPDMS(stage 2); v1: PDMS)."""
    rewards = torch.zeros_like(stage_scores)
    rewards[-1] = stage_scores.prod(0)
    return rewards


def explained_variance(values: Tensor, returns: Tensor) -> float:
    """1 - Var(R - V) / Var(R) (SB3's critic diagnostic); NaN when the returns do not vary."""
    spread = returns.var(unbiased=False)
    return float("nan") if spread <= 0 else float(1 - (returns - values).var(unbiased=False) / spread)


# --- critic and rollout storage -------------------------------------------------------------------


class ValueNetwork(nn.Module):
    """V(s): the RWM's scene encoder (privileged vectors + ego status) and a linear head. The agents
    expose no pooled backbone features, so the critic is a separate network for every policy."""

    def __init__(self, width: int, seed: int = 0):
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.encoder = SceneEncoder(width)
            self.head = nn.Linear(width, 1)

    def forward(self, scene: SceneFeatures) -> Tensor:
        """(B,) state values."""
        return self.head(torch.relu(self.encoder(scene)))[:, 0]


def closed_form_entropy(agent) -> Tensor | None:
    """Entropy of a diagonal Gaussian plan head (`log_std` (H, 3)): Σ log σ + D/2 (1 + log 2π); None
    for agents without one (token and flow heads)."""
    log_std = getattr(agent, "log_std", None)
    return log_std.sum() + 0.5 * log_std.numel() * (1.0 + math.log(2 * math.pi)) if isinstance(log_std, Tensor) else None


def select_samples(samples: Samples, rows: Tensor) -> Samples:
    """Rows `rows` (n,) of a Samples batch (every tensor field indexed on B)."""
    pick = lambda value: None if value is None else value[rows.to(samples.plans.device)]
    return Samples(**{f.name: pick(getattr(samples, f.name)) for f in fields(samples)})


@dataclass(frozen=True)
class Stage:
    """One stage of B episodes: what was seen, sampled and scored."""

    obs: dict
    scene: SceneFeatures
    samples: Samples
    logp_old: Tensor = field(metadata={"dims": "B G ..."})
    """Log-probs under the sampling weights, per plan or per part (`ratio_level`)."""
    value: Tensor = field(metadata={"dims": "B"})
    score: Tensor = field(metadata={"dims": "B G"})
    """Stage score used for the reward: true where `labels` exist, else the RWM's."""
    labels: Tensor | None = field(metadata={"dims": "B G K"})
    """True sub-scores in `SUBSCORES` order, or None (not scored)."""
    predicted: Tensor = field(metadata={"dims": "B G K"})
    """RWM sub-scores before this step's refresh."""


# --- training ------------------------------------------------------------------------------------


def train(cfg: PPOConfig) -> dict[str, Any]:
    """Run PPO + RWM; returns {"run_dir", "step", "scorer_plans", "first_eval", "last_eval", "last_metrics"}."""
    from trainers.grpo_samples import ImitationTargets

    # --- setup ---
    device, run_dir = resolve_device(cfg.device), start_run(cfg.run, "ppo", cfg.env_id.split("/")[-1].lower())
    agent = trainable_agent(cfg.agent, cfg.init_checkpoint, device, needs=("sample", "log_prob"))
    agent.to(device).eval()  # dropout stays off: the first epoch's ratios must be exactly 1
    if cfg.ent_coef > 0 and closed_form_entropy(agent) is None:
        warnings.warn(f"ent_coef={cfg.ent_coef}: agent {agent.name!r} has no closed-form entropy; no entropy bonus")
    metric, stages, group = cfg.metric, cfg.stages, cfg.num_samples
    obs_config = agent_obs_config(frozenset(agent.inputs) | {"privileged"}, replace(cfg.env.obs, privileged=True))
    env_config = replace(cfg.env, split=cfg.train_split, max_scenes=cfg.max_train_scenes, obs=obs_config)
    vec = make_train_vec(cfg.env_id, cfg.num_envs, env_config)
    critic = ValueNetwork(cfg.rwm_width, seed=cfg.run.seed).to(device)
    rwm = RewardWorldModel(RewardModelConfig(width=cfg.rwm_width, hidden=cfg.rwm_hidden, seed=cfg.run.seed)).to(device).eval()
    dataset = RewardDataset(cfg.rwm_buffer_scenes)
    agent_params, critic_params = [p for p in agent.parameters() if p.requires_grad], list(critic.parameters())
    params = agent_params + critic_params
    optimizer = torch.optim.Adam([{"params": agent_params, "lr": cfg.learning_rate},
                                  {"params": critic_params, "lr": cfg.vf_learning_rate}])
    rwm_optimizer = torch.optim.Adam(rwm.parameters(), lr=cfg.rwm_lr)
    generators = {"scenes": np.random.default_rng(cfg.run.seed), "sample": torch.Generator(device=device).manual_seed(cfg.run.seed),
                  "minibatch": torch.Generator().manual_seed(cfg.run.seed + 1), "rwm": torch.Generator().manual_seed(cfg.run.seed + 2)}
    experts = ImitationTargets(cfg.teacher.value) if cfg.imitation_coef > 0 else None
    evaluation = Evaluation(cfg.env, cfg.eval_split, cfg.eval_scenes, cfg.eval_batch_size, metric) if cfg.eval_every else None
    config_dict = config_to_dict(cfg)
    parts = {"model": agent, "critic": critic, "rwm": rwm, "optimizer": optimizer, "rwm_optimizer": rwm_optimizer,
             "dataset": dataset}
    step, state = resume_latest(run_dir, cfg.run.resume, parts, generators, config_dict)
    counters = dict(state.get("counters", {"scorer_plans": 0, "rwm_refreshes": 0}))
    logger = RunLogger(run_dir, config_dict)

    def checkpoint() -> None:
        save_atomic({"step": step, "model": agent.state_dict(), "critic": critic.state_dict(), "rwm": rwm.state_dict(),
                     "optimizer": optimizer.state_dict(), "rwm_optimizer": rwm_optimizer.state_dict(),
                     "dataset": dataset.state_dict(), "counters": counters, "rng": rng_state(generators),
                     "config": config_dict, "agent": agent.name}, checkpoint_path(run_dir, step))

    def run_eval() -> dict[str, float]:
        return evaluation.run_logged(agent, logger, step, cfg.run.seed, cfg.progress)

    first_eval = last_eval = None
    if evaluation is not None and step == 0:
        first_eval = last_eval = run_eval()

    # --- loop: rollout -> true scores or RWM -> RWM refresh -> GAE -> PPO epochs -> log -> checkpoint ---
    last_metrics: dict[str, float] = {}
    bar = tqdm(total=cfg.steps, initial=step, desc="ppo", unit="step", disable=not cfg.progress)
    with StopRequest() as stop:
        while step < cfg.steps and not stop.requested:
            clock = time.perf_counter()
            is_correction = step % cfg.true_score_every == 0

            # --- rollout: B episodes; every stage samples G plans, the non-final stages step the env ---
            obs, _ = vec.reset(seed=int(generators["scenes"].integers(2**31 - 1)))
            first_scenes = vec.unwrapped.scenes
            rollout: list[Stage] = []
            for t in range(stages):
                scene = scene_features(obs, device)
                with torch.no_grad():
                    samples = agent.sample(obs, group, generators["sample"])
                    total, parts = agent.log_prob(obs, samples)
                    logp_old = parts if cfg.ratio_level is RatioLevel.part and parts is not None else total
                    value = critic(scene)
                    predicted = rwm.predict(scene, samples.plans)
                plans = samples.plans.detach().cpu().numpy()
                table = None
                if t < stages - 1:      # the env tracks the plan to build the next stage and scores it on the way
                    next_obs, _, _, _, info = vec.step(plans[:, 0])
                    table = {k: info[k][:, None] for k in (*SUBSCORES, metric.value)}
                elif is_correction:
                    table = vec.unwrapped.score_group(plans)[1]
                labels = None if table is None else torch.as_tensor(np.stack([table[k] for k in SUBSCORES], -1), device=device).float()
                score = (predicted_score(predicted, metric) if table is None
                         else torch.as_tensor(table[metric.value], device=device)).float()      # the scorer's own total
                counters["scorer_plans"] += 0 if table is None else table[metric.value].size
                rollout.append(Stage(obs, scene, samples, logp_old, value, score, labels, predicted))
                if t < stages - 1:
                    obs = next_obs

            # --- RWM: validate on the fresh true scores (before it sees them), add them, refresh ---
            metrics: dict[str, float] = {}
            scored = [s for s in rollout if s.labels is not None]
            if scored and counters["rwm_refreshes"] > 0:
                predicted = torch.cat([s.predicted.reshape(-1, len(SUBSCORES)) for s in scored])
                labels = torch.cat([s.labels.reshape(-1, len(SUBSCORES)) for s in scored])
                errors = subscore_errors(predicted, labels)
                metrics.update({f"losses/rwm_val_{k}": float(e) for k, e in zip(SUBSCORES, errors)})
                metrics["losses/rwm_val_total"] = float((predicted_score(predicted, metric) - predicted_score(labels, metric)).abs().mean())
                metrics["losses/rwm_val_rank"] = ranking_accuracy(predicted_score(scored[-1].predicted, metric), scored[-1].score)
            for s in scored:
                dataset.add(s.scene, s.samples.plans, s.labels)
            if is_correction:
                metrics["losses/rwm_train"] = fit_reward_model(rwm, rwm_optimizer, dataset, cfg.rwm_updates,
                                                               cfg.rwm_batch_size, generators["rwm"])
                counters["rwm_refreshes"] += 1

            # --- advantages: episode rewards, GAE over the stages; a column is one (scene, plan) ---
            scores = torch.stack([s.score for s in rollout])                                   # (T, B, G)
            rewards = episode_rewards(scores.double()).reshape(stages, -1)
            values = torch.stack([s.value.double()[:, None].expand(-1, group) for s in rollout]).reshape(stages, -1)
            values = torch.cat([values, torch.zeros_like(values[:1])])                          # nothing after the episode
            dones = torch.zeros_like(rewards)
            dones[-1] = 1
            advantages, returns = gae(rewards, values, dones, cfg.gamma, cfg.gae_lambda)
            advantages, returns = advantages.view(stages, -1, group).float(), returns.view(stages, -1, group).float()
            expert_plans = torch.as_tensor(experts(first_scenes), device=device) if experts is not None else None

            # --- update: n_epochs over mini-batches of (stage, scene) rows ---
            entropy = closed_form_entropy(agent)
            stats: dict[str, list[float]] = {}
            epochs_done, stop_epochs = 0, False
            for _ in range(cfg.n_epochs):
                order = torch.randperm(stages * cfg.num_envs, generator=generators["minibatch"])
                for chunk in order.split(cfg.batch_size):
                    new, old, adv, ret, val, imitation_rows = [], [], [], [], [], None
                    for t in range(stages):
                        rows = chunk[chunk // cfg.num_envs == t] % cfg.num_envs
                        if not len(rows):
                            continue
                        stage = rollout[t]
                        sub_obs = select_obs(stage.obs, rows.numpy())
                        total, parts = agent.log_prob(sub_obs, select_samples(stage.samples, rows))
                        new.append(parts if cfg.ratio_level is RatioLevel.part and parts is not None else total)
                        old.append(stage.logp_old[rows.to(device)])
                        adv.append(advantages[t][rows])
                        ret.append(returns[t][rows])
                        val.append(critic(stage.scene.rows(rows))[:, None].expand(-1, group))
                        if t == 0:
                            imitation_rows = (sub_obs, rows)
                    adv_batch = torch.cat(adv).to(device)
                    if cfg.normalize_advantage and adv_batch.numel() > 1:
                        adv_batch = (adv_batch - adv_batch.mean()) / (adv_batch.std() + 1e-8)
                    terms = ppo_loss(torch.cat(new), torch.cat(old), adv_batch, torch.cat(val), torch.cat(ret).to(device),
                                     cfg.clip_range, cfg.vf_coef, cfg.ent_coef if entropy is not None else 0.0, entropy)
                    if cfg.target_kl is not None and float(terms.approx_kl) > 1.5 * cfg.target_kl:
                        stats.setdefault("approx_kl", []).append(float(terms.approx_kl))
                        stop_epochs = True      # SB3: the update that would overshoot is not taken
                        break
                    loss = terms.total
                    imitation = torch.zeros((), device=device)
                    if expert_plans is not None and imitation_rows is not None:
                        imitation = agent.imitation_loss(imitation_rows[0], expert_plans[imitation_rows[1].to(device)])
                        loss = loss + cfg.imitation_coef * imitation
                    if not torch.isfinite(loss):
                        raise FloatingPointError(f"losses/total={loss.item()} at step {step}: not finite")
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm if cfg.max_grad_norm > 0 else math.inf)
                    optimizer.step()
                    for key, value in (("policy", terms.policy), ("value", terms.value), ("entropy", terms.entropy),
                                       ("approx_kl", terms.approx_kl), ("clip_fraction", terms.clip_fraction),
                                       ("imitation", imitation), ("total", loss), ("grad_norm", grad_norm)):
                        stats.setdefault(key, []).append(float(value.detach()))
                if stop_epochs:
                    break
                epochs_done += 1
            step += 1
            bar.update(1)

            # --- log ---
            last = rollout[-1]
            value_all = torch.stack([s.value[:, None].expand(-1, group) for s in rollout]).cpu().float()
            metrics.update({
                "rollout/reward": float(rewards[-1].mean()),
                "rollout/is_true_reward": float(is_correction),
                f"rollout/rwm_{metric.value}": float(predicted_score(last.predicted, metric).mean()),
                "rollout/value": float(value_all.mean()),
                **{f"losses/{k}": float(np.mean(v)) for k, v in stats.items()},
                "losses/explained_variance": explained_variance(value_all.flatten(), returns.cpu().flatten()),
                "losses/epochs": float(epochs_done),
                "charts/scorer_plans": float(counters["scorer_plans"]),
                "charts/rwm_data_plans": float(dataset.total_added),
                "charts/rwm_refreshes": float(counters["rwm_refreshes"]),
                "charts/lr": cfg.learning_rate,
                "charts/steps_per_s": 1.0 / max(1e-9, time.perf_counter() - clock),
            })
            if last.labels is not None:
                metrics[f"rollout/true_{metric.value}"] = float(last.score.mean())
                metrics.update({f"rollout/true_{k}": float(last.labels[..., i].mean()) for i, k in enumerate(SUBSCORES)})
            metrics = {k: v for k, v in metrics.items() if math.isfinite(v)}
            last_metrics = metrics
            bar.set_postfix(reward=f"{metrics['rollout/reward']:.3f}", scored=counters["scorer_plans"])
            if step % cfg.log_every == 0 or step == cfg.steps:
                logger.log_scalars(metrics, step)
            if evaluation is not None and (step % cfg.eval_every == 0 or step == cfg.steps):
                last_eval = run_eval()
                first_eval = first_eval or last_eval
            if step % cfg.ckpt_every == 0 or step == cfg.steps or stop.requested:
                checkpoint()
    bar.close()
    if step == cfg.steps:
        agent.save(run_dir / "agent.pt")
        torch.save({"config": asdict(rwm.config), "state_dict": rwm.state_dict()}, run_dir / "reward_model.pt")
    logger.close()
    vec.close()
    return {"run_dir": str(run_dir), "step": step, "scorer_plans": counters["scorer_plans"], "first_eval": first_eval,
            "last_eval": last_eval, "last_metrics": last_metrics}


# --- Hydra entry ----------------------------------------------------------------------------------


def main() -> None:
    hydra_main("ppo", PPOConfig, train, ("run_dir", "step", "scorer_plans", "first_eval", "last_eval"))


if __name__ == "__main__":
    main()
