"""The GRPO reward from a plan's NAVSIM sub-scores: the product of the metric's multiplicative
sub-scores times the weighted mean of the others (PDMS v1.1 or EPDMS v2.2, configurable weights),
optionally -1 for a collision or leaving the drivable area (DiffusionDriveV2 hard masks)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np
import torch
from torch import Tensor

from envs.metrics.epdms import EPDMS_MULTIPLIERS
from envs.metrics.pdms import PDMS_MULTIPLIERS


class RewardMetric(str, Enum):
    """Which NAVSIM total the reward follows (member names are the Hydra values)."""

    pdms = "pdms"
    """NAVSIM v1.1: NC·DAC·(EP, TTC, C weighted); env `roadloop/Navsim-v1`."""
    epdms = "epdms"
    """NAVSIM v2.2 one stage: NC·DAC·DDC·TLC·(EP, TTC, LK, HC, EC weighted); env `roadloop/Navsim-v2`."""


@dataclass
class RewardConfig:
    """Reward = product of the metric's multiplicative sub-scores x weighted mean of the others."""

    metric: RewardMetric = RewardMetric.pdms
    """`pdms` or `epdms`; also the total that decides failure (`fail_score`) and the evaluation score."""
    ep_weight: float = 5.0
    """Ego-progress weight (NAVSIM 5; ReCogDrive's 10 invites progress hacking, spec §7.1)."""
    ttc_weight: float = 5.0
    """Time-to-collision weight (NAVSIM 5)."""
    c_weight: float = 2.0
    """Comfort weight (PDMS only; NAVSIM 2)."""
    lk_weight: float = 2.0
    """Lane-keeping weight (EPDMS only; NAVSIM 2)."""
    hc_weight: float = 2.0
    """History-comfort weight (EPDMS only; NAVSIM 2)."""
    ec_weight: float = 2.0
    """Extended-comfort weight (EPDMS only; NAVSIM 2; EC is 1 for one-stage scoring)."""
    hard_mask: bool = False
    """DiffusionDriveV2-style: any collision (NC < 1) or leaving the drivable area (DAC 0) gives -1."""

    def __post_init__(self):
        self.metric = RewardMetric(self.metric)
        weights = {k: getattr(self, f"{k}_weight") for k in ("ep", "ttc", "c", "lk", "hc", "ec")}
        if not all(math.isfinite(w) and w >= 0 for w in weights.values()) or sum(weights[k] for k in self.weighted) <= 0:
            raise ValueError(f"reward weights={weights}: must be finite, >= 0 and not all 0 for {self.metric.value}")

    @property
    def multiplicative(self) -> tuple[str, ...]:
        return PDMS_MULTIPLIERS if self.metric is RewardMetric.pdms else EPDMS_MULTIPLIERS

    @property
    def weighted(self) -> tuple[str, ...]:
        return ("ep", "ttc", "c") if self.metric is RewardMetric.pdms else ("ep", "ttc", "lk", "hc", "ec")


def reward_from_scores(scores: dict[str, Any], cfg: RewardConfig) -> Tensor:
    """Reward (B, G) float64 from sub-score tables {key: (B, G)}: Π multiplicative · Σ w·s / Σ w,
    then -1 where `hard_mask` and a collision (NC < 1) or off-road (DAC < 1) happened."""
    table = {k: torch.as_tensor(np.asarray(scores[k]), dtype=torch.float64) for k in (*cfg.multiplicative, *cfg.weighted)}
    weights = {k: getattr(cfg, f"{k}_weight") for k in cfg.weighted}
    product = torch.stack([table[k] for k in cfg.multiplicative]).prod(0)
    weighted = sum(w * table[k] for k, w in weights.items()) / sum(weights.values())
    reward = product * weighted
    if cfg.hard_mask:
        reward = torch.where((table["nc"] < 1) | (table["dac"] < 1), -1.0, reward)
    return reward
