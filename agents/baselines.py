"""NAVSIM's simple baselines in the batched contract: constant velocity, the ego-status MLP (trainable,
with a Gaussian policy for RL) and the privileged human log replay.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from agents.base import (
    Obs, Samples, check_scenes, load_checkpoint, obs_batch_size, obs_tensor, resample_plan, save_checkpoint,
)
from envs.navsim import PLAN_INTERVAL_S, PLAN_POSES
from envs.sim.scene import Scene


def constant_velocity_plans(ego_status: Tensor, num_poses: int = PLAN_POSES, interval: float = PLAN_INTERVAL_S) -> Tensor:
    """Straight ahead at the current speed (NAVSIM `ConstantVelocityAgent`): (B, 4, 7) -> (B, H, 3).

    Pose k (k = 1..H) is (k·interval·|v|, 0, 0) with v = (vx, vy) of the current (last) frame.
    """
    speed = torch.linalg.vector_norm(ego_status[:, -1, 3:5], dim=-1)                     # (B,)
    times = interval * torch.arange(1, num_poses + 1, device=ego_status.device, dtype=ego_status.dtype)
    plans = torch.zeros(ego_status.shape[0], num_poses, 3, device=ego_status.device, dtype=ego_status.dtype)
    plans[..., 0] = speed[:, None] * times
    return plans


class ConstantVelocityAgent:
    """NAVSIM's constant-velocity baseline (`navsim/agents/constant_velocity_agent.py`)."""

    name = "constant_velocity"
    inputs = frozenset({"ego_status"})
    privileged = False

    def act(self, obs: Obs, gen: torch.Generator | None = None, scenes: list[Scene] | None = None) -> np.ndarray:
        obs_batch_size(obs)
        status = obs_tensor(obs, "ego_status", dtype=torch.float64)
        return constant_velocity_plans(status).numpy().astype(np.float32)


class HumanAgent:
    """The logged human trajectory of each scene (privileged: reads `scenes`)."""

    name = "human"
    inputs = frozenset()
    privileged = True

    def act(self, obs: Obs, gen: torch.Generator | None = None, scenes: list[Scene] | None = None) -> np.ndarray:
        scenes = check_scenes(scenes, obs, self.name)
        missing = [s.token for s in scenes if s.human_trajectory is None]
        if missing:
            raise ValueError(f"scene.token={missing[0]!r}: has no human_trajectory to replay")
        return np.stack([resample_plan(s.human_trajectory) for s in scenes])


def ego_features(obs: Obs, device=None) -> Tensor:
    """NAVSIM EgoStatusMLP input (B, 8): current vx, vy, ax, ay [m/s, m/s^2] then the command one-hot.

    Order as NAVSIM's `EgoStatusFeatureBuilder` (velocity, acceleration, driving_command).
    """
    status = obs_tensor(obs, "ego_status", device)
    command = obs_tensor(obs, "command", device)
    return torch.cat([status[:, -1, 3:7], command], dim=-1)


@dataclass(frozen=True)
class EgoMLPConfig:
    """Ego-status MLP sizes and its Gaussian policy."""

    hidden: int = 512
    """Width of the 3 hidden layers (NAVSIM `hidden_layer_dim` 512)."""
    init_std: float = 1.0
    """Initial std of the Gaussian policy [m, m, rad] (same for every coordinate)."""
    learn_std: bool = True
    """Learn log-std (a free parameter per pose coordinate); False keeps `init_std` fixed."""
    seed: int = 0
    """Seed of the weight initialisation (the module is reproducible from its config)."""

    def __post_init__(self):
        if self.hidden < 1:
            raise ValueError(f"hidden={self.hidden}: must be >= 1")
        if not (math.isfinite(self.init_std) and self.init_std > 0):
            raise ValueError(f"init_std={self.init_std}: must be a positive finite std")


class EgoStatusMLPAgent(nn.Module):
    """NAVSIM's ego-status MLP (8 -> 512 -> 512 -> 512 -> 8·3, ReLU), L1 imitation loss, and a
    diagonal Gaussian around its output for sampling and RL: log π(plan) = Σ_{h,d} log N(plan; μ, σ²)."""

    name = "ego_mlp"
    inputs = frozenset({"ego_status", "command"})
    privileged = False

    def __init__(self, config: EgoMLPConfig | None = None, **overrides):
        super().__init__()
        self.config = config or EgoMLPConfig(**overrides)
        h = self.config.hidden
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.config.seed)
            self.mlp = nn.Sequential(
                nn.Linear(8, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(),
                nn.Linear(h, PLAN_POSES * 3),
            )
        log_std = torch.full((PLAN_POSES, 3), math.log(self.config.init_std))
        if self.config.learn_std:
            self.log_std = nn.Parameter(log_std)
        else:
            self.register_buffer("log_std", log_std)

    @property
    def device(self) -> torch.device:
        return self.log_std.device

    def mean_plans(self, obs: Obs) -> Tensor:
        """(B, 8, 3) the MLP's plan (the Gaussian's mean)."""
        obs_batch_size(obs)
        return self.mlp(ego_features(obs, self.device)).view(-1, PLAN_POSES, 3)

    def act(self, obs: Obs, gen: torch.Generator | None = None, scenes: list[Scene] | None = None) -> np.ndarray:
        mean = self.mean_plans(obs)
        if gen is not None:
            mean = mean + self.log_std.exp() * torch.randn(mean.shape, generator=gen, device=gen.device).to(mean.device)
        return mean.detach().float().cpu().numpy()

    def _gaussian_logp(self, mean: Tensor, plans: Tensor) -> Tensor:
        """(B, G, H, 3) per-coordinate log N(plans; mean, std^2)."""
        return torch.distributions.Normal(mean[:, None], self.log_std.exp()).log_prob(plans)

    def sample(self, obs: Obs, num_samples: int, gen: torch.Generator | None = None,
               prompt_extra: list[str] | None = None) -> Samples:
        if num_samples < 1:
            raise ValueError(f"num_samples={num_samples}: must be >= 1")
        mean = self.mean_plans(obs)
        shape = (mean.shape[0], num_samples, PLAN_POSES, 3)
        noise = torch.randn(shape, generator=gen, device=gen.device if gen is not None else self.device)
        plans = (mean[:, None] + self.log_std.exp() * noise.to(self.device)).detach()
        logp = self._gaussian_logp(mean, plans).sum((-1, -2)).detach()
        return Samples(plans=plans.float(), logp=logp.float())

    def log_prob(self, obs: Obs, samples: Samples, prompt_extra: list[str] | None = None) -> tuple[Tensor, None]:
        mean = self.mean_plans(obs)
        logp = self._gaussian_logp(mean, samples.plans.to(self.device)).sum((-1, -2))
        return logp, None

    def imitation_loss(self, obs: Obs, expert_plans: Tensor) -> Tensor:
        """L1 between the MLP plan and the expert (NAVSIM `compute_loss`)."""
        target = torch.as_tensor(expert_plans, dtype=torch.float32, device=self.device)
        return nn.functional.l1_loss(self.mean_plans(obs), target)

    def save(self, path: str | Path) -> None:
        save_checkpoint({"kind": self.name, "config": asdict(self.config), "state_dict": self.state_dict()}, path)

    @classmethod
    def load(cls, path: str | Path, map_location=None) -> "EgoStatusMLPAgent":
        payload = load_checkpoint(path, cls.name, map_location)
        agent = cls(EgoMLPConfig(**payload["config"]))
        agent.load_state_dict(payload["state_dict"])
        return agent
