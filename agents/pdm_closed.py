"""PDM-Closed as a privileged teacher agent: `envs.sim.pdm_closed.pdm_closed_plan` (0.1 s, 50 poses)
resampled to the env's 8 poses at 0.5 s."""

from __future__ import annotations

import numpy as np
import torch

from agents.base import Obs, check_scenes, resample_plan
from envs.sim.pdm_closed import PDMClosedConfig, pdm_closed_plan
from envs.sim.scene import Scene


class PDMClosedAgent:
    """NAVSIM's rule-based PDM-Closed planner on the ground-truth scenes (DAgger / GRPO teacher)."""

    name = "pdm_closed"
    inputs = frozenset()
    privileged = True

    def __init__(self, config: PDMClosedConfig | None = None, device: str | None = None):
        self.config = config or PDMClosedConfig()
        self.device = device

    def act(self, obs: Obs, gen: torch.Generator | None = None, scenes: list[Scene] | None = None) -> np.ndarray:
        scenes = check_scenes(scenes, obs, self.name)
        # scenes with different ego vehicles cannot share one planner batch
        plans = np.zeros((len(scenes), 8, 3), np.float32)
        vehicles = {}
        for b, scene in enumerate(scenes):
            vehicles.setdefault(scene.vehicle, []).append(b)
        for rows in vehicles.values():
            result = pdm_closed_plan([scenes[b] for b in rows], self.config, device=self.device)
            plans[rows] = np.stack([resample_plan(plan) for plan in result.plans])
        return plans
