"""The batched policy contract every agent follows (style rule 10): `Agent.act`, the trainable
extension (`sample`, `log_prob`, `imitation_loss`, `save`/`load`), the `Samples` batch type, and the
conversions from observations and `Plan`s to the contract's tensors.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor

from envs.navsim import PLAN_INTERVAL_S, PLAN_POSES
from envs.sim.scene import Plan, Scene

Obs = dict[str, Any]
"""A batched env observation: arrays or tensors with a leading B axis (`envs.navsim_obs`)."""


@dataclass(frozen=True)
class Samples:
    """G plans per scene drawn from a trainable policy, with what is needed to re-score them."""

    plans: Tensor = field(metadata={"dims": "B G H 3"})
    """float32 ego-frame poses x, y [m], heading [rad] at 0.5 .. 4 s."""
    logp: Tensor = field(metadata={"dims": "B G"})
    """float32 log-probability of each plan under the policy that sampled it."""
    tokens: Tensor | None = field(default=None, metadata={"dims": "B G L"})
    """Token head: int64 action-token indices into the codebook (0 .. K-1)."""
    chain: Tensor | None = field(default=None, metadata={"dims": "B G K+1 H 3"})
    """Flow head: the sampler's states x_K (start, noise) .. x_0 (the plan), in normalised action units."""
    step_logp: Tensor | None = field(default=None, metadata={"dims": "B G K"})
    """Flow head: per-denoising-step Gaussian log-densities (their sum is `logp`)."""

    def __post_init__(self):
        if self.plans.ndim != 4 or self.plans.shape[2:] != (PLAN_POSES, 3):
            raise ValueError(f"plans.shape={tuple(self.plans.shape)}: expected (B, G, {PLAN_POSES}, 3)")
        if self.logp.shape != self.plans.shape[:2]:
            raise ValueError(f"logp.shape={tuple(self.logp.shape)}: expected {tuple(self.plans.shape[:2])} (B, G)")

    @property
    def group_size(self) -> int:
        return self.plans.shape[1]

    def to(self, device) -> "Samples":
        """The same samples on `device`."""
        move = lambda t: None if t is None else t.to(device)
        return Samples(move(self.plans), move(self.logp), move(self.tokens), move(self.chain), move(self.step_logp))


@runtime_checkable
class Agent(Protocol):
    """A batched driving policy: B observations in, B plans out."""

    name: str
    inputs: frozenset[str]
    """Observation keys read."""
    privileged: bool
    """Teachers (PDM-Closed, human): also read the ground-truth `scenes`."""

    def act(self, obs: Obs, gen: torch.Generator | None = None, scenes: list[Scene] | None = None) -> np.ndarray:
        """(B, 8, 3) float32 plans; deterministic when gen is None; no side effects."""
        ...


@runtime_checkable
class TrainableAgent(Agent, Protocol):
    """A torch.nn.Module agent that can be imitation- and RL-trained."""

    def sample(self, obs: Obs, num_samples: int, gen: torch.Generator | None = None,
               prompt_extra: list[str] | None = None) -> Samples: ...

    def log_prob(self, obs: Obs, samples: Samples, prompt_extra: list[str] | None = None) -> tuple[Tensor, Tensor | None]:
        """(B, G) total log-probability of `samples` under the current weights, and its parts:
        (B, G, K) per denoising step (flow) or (B, G, L) per token (token head), or None."""
        ...

    def imitation_loss(self, obs: Obs, expert_plans: Tensor) -> Tensor:
        """Scalar imitation loss towards expert plans (B, 8, 3)."""
        ...

    def save(self, path: str | Path) -> None: ...

    @classmethod
    def load(cls, path: str | Path, map_location=None) -> "TrainableAgent": ...


def obs_batch_size(obs: Obs) -> int:
    """B of a batched observation (read from `ego_status` (B, 4, 7))."""
    status = obs.get("ego_status") if isinstance(obs, dict) else None
    if status is None:
        raise ValueError(f"obs keys={sorted(obs) if isinstance(obs, dict) else type(obs).__name__}: need 'ego_status'")
    if len(status.shape) != 3 or tuple(status.shape[1:]) != (4, 7):
        raise ValueError(f"obs['ego_status'].shape={tuple(status.shape)}: expected (B, 4, 7); add the batch axis")
    return int(status.shape[0])


def obs_tensor(obs: Obs, key: str, device=None, dtype=torch.float32) -> Tensor:
    """obs[key] as a tensor on `device` (dtype None keeps the array's own); a clear error if missing."""
    if key not in obs:
        raise ValueError(f"obs keys={sorted(obs)}: missing {key!r} (enable it in the env's ObservationConfig)")
    value = obs[key]
    tensor = value if isinstance(value, Tensor) else torch.from_numpy(np.asarray(value))
    return tensor.to(device=device, dtype=dtype) if dtype is not None else tensor.to(device=device)


def check_scenes(scenes: list[Scene] | None, obs: Obs, agent: str) -> list[Scene]:
    """The scenes a privileged agent was given, checked against the observation's batch size (if it has one)."""
    if scenes is None:
        raise ValueError(f"scenes=None: agent {agent!r} is privileged and needs the env's scenes (env.scenes)")
    batch = obs_batch_size(obs) if "ego_status" in obs else len(scenes)
    if len(scenes) != batch:
        raise ValueError(f"len(scenes)={len(scenes)}: expected one scene per observation (B={batch})")
    return list(scenes)


def resample_plan(plan: Plan, interval: float = PLAN_INTERVAL_S, num_poses: int = PLAN_POSES) -> np.ndarray:
    """A `Plan` at the env's sampling -> (num_poses, 3) float32 poses at t = interval .. num_poses·interval.

    Linear in x, y and unwrapped heading, with the ego origin (0, 0, 0) at t = 0; a plan shorter than
    the horizon raises ValueError (it would need extrapolation).
    """
    poses = np.asarray(plan.poses, np.float64)
    if poses.ndim != 2 or poses.shape[1] != 3 or len(poses) == 0:
        raise ValueError(f"plan.poses.shape={poses.shape}: expected (H, 3)")
    times = plan.interval * np.arange(len(poses) + 1)
    target = interval * np.arange(1, num_poses + 1)
    if target[-1] > times[-1] + 1e-9:
        raise ValueError(f"plan: {times[-1]:.2f} s of poses; {target[-1]:.2f} s are needed")
    knots = np.concatenate([np.zeros((1, 3)), poses])
    knots[:, 2] = np.unwrap(knots[:, 2])
    out = np.stack([np.interp(target, times, knots[:, d]) for d in range(3)], -1)
    out[:, 2] = np.arctan2(np.sin(out[:, 2]), np.cos(out[:, 2]))
    return out.astype(np.float32)


def save_checkpoint(payload: dict, path: str | Path) -> None:
    """torch.save `payload` atomically: a temporary file in the same folder, then os.replace."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | Path, kind: str, map_location=None) -> dict:
    """The payload written by `save_checkpoint`, checked to be an agent of `kind`."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"path={str(path)!r}: no such checkpoint file")
    payload = torch.load(path, map_location=map_location, weights_only=False)
    if not isinstance(payload, dict) or payload.get("kind") != kind:
        found = payload.get("kind") if isinstance(payload, dict) else type(payload).__name__
        raise ValueError(f"path={str(path)!r}: checkpoint of kind {found!r}, expected {kind!r}")
    return payload
