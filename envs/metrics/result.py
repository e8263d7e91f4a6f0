"""What every NAVSIM sub-metric returns: a score per proposal plus where and why it first failed."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor


@dataclass(frozen=True)
class MetricResult:
    """One sub-metric for every proposal of every scene."""

    value: Tensor = field(metadata={"dims": "B P"})
    """float64 score (e.g. NC in {0, 0.5, 1})."""
    step: Tensor = field(metadata={"dims": "B P"})
    """int64: first failing ego step (0.1 s each), -1 where the proposal never fails."""
    agent: Tensor = field(metadata={"dims": "B P"})
    """int64: index of the object (agent slot or red light) held responsible, -1 if none (diagnostic)."""


def first_step(mask: Tensor) -> Tensor:
    """Index of the first True along the last axis, -1 where there is none: (..., T) bool -> (...,) int64."""
    num_steps = mask.shape[-1]
    steps = torch.arange(num_steps, device=mask.device)
    first = torch.where(mask, steps, num_steps).amin(dim=-1)
    return torch.where(first == num_steps, -1, first)


def binary_result(fails: Tensor) -> MetricResult:
    """Pass/fail metric (DAC, TLC, LK) from per-step failures (B, P, T) bool: 0 if any step fails."""
    step = first_step(fails)
    value = (step < 0).to(torch.float64)
    return MetricResult(value=value, step=step, agent=torch.full_like(step, -1))
