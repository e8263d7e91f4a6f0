"""Supervised fine-tuning (behaviour cloning) of a trainable agent on expert plans of NAVSIM scenes,
evaluated by closed-loop PDMS. The expert is the scene's logged human plan or PDM-Closed's plan.

    python -m trainers.sft env=navsim agent=vla                       # `vla` = `vla_token`
    python -m trainers.sft agent=ego_mlp steps=2000 batch_size=64 lr=1e-3 run.seed=1
    python -m trainers.sft agent=vla_flow teacher=pdm_closed max_train_scenes=64 eval_scenes=16 \
        env.obs.image_width=128 agent.kwargs.preset=small run.dir=runs/my_run   # run.dir: resumable

Keys mirror `SFTConfig`: trainer knobs at the top level (`steps`, `lr`, `teacher`, ...), `env.*` the
`NavsimConfig` (observation under `env.obs.*`), `agent.name` / `agent.kwargs.*` the agent, `run.*`
seed, folder and resume. Unknown keys are errors. Runs go to `runs/sft__navsim__{seed}__{time}/`
(config.yaml, TensorBoard events, scalars.jsonl, media/, checkpoints/, agent.pt at the end). The
built-in splits are generated and cached on first use (all 10k navtrain scenes unless
`max_train_scenes` is set). Ctrl-C stops after the current step and checkpoints.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from agents import make_agent
from envs.navsim import NavsimConfig
from envs.navsim_obs import ObservationConfig, build_observations
from envs.scene_source import open_scene_source
from trainers.common.checkpoint import StopRequest, checkpoint_path, rng_state, save_atomic
from trainers.common.logging import RunLogger
from trainers.common.rollout import Evaluation, agent_obs_config, select_obs, stack_obs
from trainers.common.setup import (
    AgentSpec, RunConfig, check_ranges, config_to_dict, hydra_main, resolve_device, resume_latest, start_run, trainable_agent,
)


class Teacher(str, Enum):
    """Where the expert plans come from (member names are the Hydra values)."""

    human = "human"
    """The scene's logged human trajectory (NAVSIM's imitation target)."""
    pdm_closed = "pdm_closed"
    """PDM-Closed's plan on the ground-truth scene (privileged rule-based teacher), 8 poses at 0.5 s."""


class LRSchedule(str, Enum):
    constant = "constant"
    """`lr` after the warm-up."""
    cosine = "cosine"
    """Cosine decay from `lr` to 0 over the steps after the warm-up."""


@dataclass
class SFTConfig:
    """Every knob of supervised fine-tuning (Hydra mirrors it, see the module docstring)."""

    env: NavsimConfig = field(default_factory=NavsimConfig)
    """Scene data, observation (`env.obs`) and scoring device. Its `split` and `max_scenes` are not
    used: `train_split` / `max_train_scenes` and `eval_split` / `eval_scenes` pick the scenes."""
    agent: AgentSpec = field(default_factory=AgentSpec)
    """The trained agent."""
    run: RunConfig = field(default_factory=RunConfig)
    """Seed, run folder, resume."""
    device: str = "auto"
    """Torch device of the agent: `auto` (cuda when available), `cpu`, `cuda`, `cuda:1`, ..."""

    # --- data ---
    train_split: str = "navtrain"
    """Scenes the expert plans come from."""
    max_train_scenes: int | None = None
    """Use only the first N training scenes (tests, CI, quick runs); None: all."""
    teacher: Teacher = Teacher.human
    """`human` (logged plan) or `pdm_closed` (PDM-Closed on the ground truth)."""
    prepare_block: int = 32
    """Scenes whose observations and expert plans are built together on first use (then kept in memory)."""

    # --- optimisation ---
    steps: int = 2000
    """Optimizer steps."""
    batch_size: int = 16
    """Scenes per step, drawn without replacement within an epoch (reshuffled every epoch)."""
    lr: float = 1e-4
    """AdamW learning rate (peak, after warm-up)."""
    weight_decay: float = 0.01
    """AdamW decoupled weight decay."""
    grad_clip: float = 1.0
    """Max global gradient norm; 0 disables clipping (the norm is still logged)."""
    warmup_steps: int = 0
    """Linear learning-rate warm-up from 0 over this many steps."""
    lr_schedule: LRSchedule = LRSchedule.constant
    """`constant` or `cosine` after the warm-up."""

    # --- evaluation, logging, checkpoints ---
    eval_split: str = "navtest"
    """Scenes of the closed-loop PDMS evaluation."""
    eval_every: int = 500
    """Evaluate at step 0, every this many steps and at the end; 0 disables evaluation."""
    eval_scenes: int = 64
    """Evaluate on the first N scenes of `eval_split`, once each."""
    eval_batch_size: int = 16
    """Scenes per evaluation batch."""
    eval_images: int = 2
    """BEV pictures (first scenes of the evaluation) logged per evaluation; 0: none."""
    log_every: int = 10
    """Log losses and charts every this many steps (and at the last step)."""
    ckpt_every: int = 500
    """Checkpoint every this many steps; the last step and a Ctrl-C always checkpoint."""
    progress: bool = True
    """Show tqdm progress bars."""

    def __post_init__(self):
        self.teacher = Teacher(self.teacher)
        check_ranges(self, at_least_one=("steps", "batch_size", "eval_scenes", "eval_batch_size", "log_every", "ckpt_every",
                                         "prepare_block", "max_train_scenes"),
                     non_negative=("eval_every", "eval_images", "warmup_steps", "weight_decay", "grad_clip"),
                     positive=("lr",), device=self.device)


# --- pure helpers -------------------------------------------------------------------------------


def lr_factor(step: int, warmup_steps: int, total_steps: int, schedule: LRSchedule) -> float:
    """Multiplier of the peak lr at optimizer step `step` (0-based): linear warm-up, then constant or
    cosine to 0 at `total_steps`."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if LRSchedule(schedule) is LRSchedule.constant:
        return 1.0
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


class EpochSampler:
    """Batches of scene indices: a fresh permutation of range(n) from `rng` each epoch, consumed in
    order; a batch that crosses an epoch end is completed from the next permutation."""

    def __init__(self, num_items: int, rng: np.random.Generator):
        if num_items < 1:
            raise ValueError(f"num_items={num_items}: need at least one training scene")
        self.num_items, self.rng = num_items, rng
        self.order = np.zeros(0, np.int64)
        self.cursor = 0
        self.epoch = 0

    def next(self, batch_size: int) -> np.ndarray:
        """(batch_size,) int64 indices."""
        parts = []
        needed = batch_size
        while needed:
            if self.cursor == len(self.order):
                self.order, self.cursor = self.rng.permutation(self.num_items), 0
                self.epoch += 1
            take = min(needed, len(self.order) - self.cursor)
            parts.append(self.order[self.cursor : self.cursor + take])
            self.cursor += take
            needed -= take
        return np.concatenate(parts)

    def state_dict(self) -> dict:
        return {"order": self.order.copy(), "cursor": self.cursor, "epoch": self.epoch}

    def load_state_dict(self, state: dict) -> None:
        self.order, self.cursor, self.epoch = np.asarray(state["order"], np.int64), int(state["cursor"]), int(state["epoch"])


class ExpertData:
    """Training scenes with their observations and expert plans. Both are built per block of
    `block` consecutive scenes on first use and kept in memory (rendering and PDM-Closed are the slow
    parts); building whole blocks keeps the values independent of the order they are asked for."""

    def __init__(self, env_config: NavsimConfig, split: str, max_scenes: int | None, teacher, obs_config: ObservationConfig,
                 block: int = 32):
        self.source = open_scene_source(replace(env_config, split=split, max_scenes=max_scenes))
        self.teacher, self.obs_config, self.block = teacher, obs_config, block
        self._blocks: dict[int, tuple[dict, np.ndarray]] = {}

    def __len__(self) -> int:
        return len(self.source)

    def _build(self, k: int) -> tuple[dict, np.ndarray]:
        scenes = [self.source.scene(i) for i in range(k * self.block, min(len(self), (k + 1) * self.block))]
        obs = build_observations(scenes, self.obs_config)
        experts = np.asarray(self.teacher.act(obs, scenes=scenes), np.float32)  # (b, 8, 3)
        if experts.shape != (len(scenes), 8, 3) or not np.isfinite(experts).all():
            raise ValueError(f"teacher {self.teacher.name!r}: expert plans of shape {experts.shape} with "
                             f"non-finite values={not np.isfinite(experts).all()}; expected finite ({len(scenes)}, 8, 3)")
        return obs, experts

    def batch(self, indices: np.ndarray) -> tuple[dict, torch.Tensor]:
        """Observations of `indices` (B,) and their expert plans (B, 8, 3) float32."""
        for k in sorted({int(i) // self.block for i in indices} - set(self._blocks)):
            self._blocks[k] = self._build(k)
        parts, experts = [], []
        for i in indices:
            obs, plans = self._blocks[int(i) // self.block]
            row = np.array([int(i) % self.block])
            parts.append(select_obs(obs, row))
            experts.append(plans[row])
        return stack_obs(parts), torch.from_numpy(np.concatenate(experts))


# --- training -----------------------------------------------------------------------------------


def train(cfg: SFTConfig) -> dict[str, Any]:
    """Run SFT; returns {"run_dir", "step", "loss" (last step's), "first_eval", "last_eval"}."""
    # --- setup ---
    device, run_dir = resolve_device(cfg.device), start_run(cfg.run, "sft", "navsim")
    data_rng = np.random.default_rng(cfg.run.seed)
    agent = trainable_agent(cfg.agent, None, device, needs=("imitation_loss",))
    teacher = make_agent(cfg.teacher.value)
    obs_config = agent_obs_config(frozenset(agent.inputs) | frozenset(teacher.inputs), cfg.env.obs)
    data = ExpertData(cfg.env, cfg.train_split, cfg.max_train_scenes, teacher, obs_config, cfg.prepare_block)
    sampler = EpochSampler(len(data), data_rng)
    params = [p for p in agent.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, cfg.warmup_steps, cfg.steps, cfg.lr_schedule))
    evaluation = Evaluation(cfg.env, cfg.eval_split, cfg.eval_scenes, cfg.eval_batch_size) if cfg.eval_every else None
    config_dict = config_to_dict(cfg)

    step, _ = resume_latest(run_dir, cfg.run.resume, {"model": agent, "optimizer": optimizer, "scheduler": scheduler,
                                                      "sampler": sampler}, {"data": data_rng}, config_dict)
    logger = RunLogger(run_dir, config_dict)

    def checkpoint() -> None:
        save_atomic({
            "step": step, "model": agent.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "sampler": sampler.state_dict(),
            "rng": rng_state({"data": data_rng}), "config": config_dict, "agent": cfg.agent.name,
        }, checkpoint_path(run_dir, step))

    def run_eval() -> dict[str, float]:
        return evaluation.run_logged(agent, logger, step, cfg.run.seed, cfg.progress, cfg.eval_images)

    first_eval = last_eval = None
    if evaluation is not None and step == 0:
        first_eval = last_eval = run_eval()

    # --- loop: batch -> imitation loss -> AdamW -> log -> evaluate -> checkpoint ---
    loss_value = float("nan")
    window_steps, window_seconds = 0, 0.0  # steps/s counts the training steps only (not eval or checkpoints)
    bar = tqdm(total=cfg.steps, initial=step, desc="sft", unit="step", disable=not cfg.progress)
    with StopRequest() as stop, logger, bar:
        while step < cfg.steps and not stop.requested:
            clock = time.perf_counter()
            obs, expert = data.batch(sampler.next(cfg.batch_size))
            agent.train()
            loss = agent.imitation_loss(obs, expert.to(device))
            if not torch.isfinite(loss):
                raise FloatingPointError(f"losses/imitation={loss.item()} at step {step}: not finite")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip if cfg.grad_clip > 0 else math.inf)
            optimizer.step()
            scheduler.step()
            step += 1
            loss_value = float(loss.detach())
            window_steps, window_seconds = window_steps + 1, window_seconds + time.perf_counter() - clock
            bar.update(1)
            bar.set_postfix(loss=f"{loss_value:.4f}")

            if step % cfg.log_every == 0 or step == cfg.steps:
                logger.log_scalars({
                    "losses/imitation": loss_value, "losses/grad_norm": float(grad_norm),
                    "charts/lr": scheduler.get_last_lr()[0], "charts/epoch": sampler.epoch,
                    "charts/steps_per_s": window_steps / max(1e-9, window_seconds),
                }, step)
                window_steps, window_seconds = 0, 0.0
            if evaluation is not None and (step % cfg.eval_every == 0 or step == cfg.steps):
                last_eval = run_eval()
                first_eval = first_eval or last_eval
            if step % cfg.ckpt_every == 0 or step == cfg.steps or stop.requested:
                checkpoint()
    if step == cfg.steps:
        agent.save(run_dir / "agent.pt")
    return {"run_dir": str(run_dir), "step": step, "loss": loss_value, "first_eval": first_eval, "last_eval": last_eval}


# --- Hydra entry ----------------------------------------------------------------------------------


def main() -> None:
    hydra_main("sft", SFTConfig, train, ("run_dir", "step", "loss", "last_eval"))


if __name__ == "__main__":
    main()
