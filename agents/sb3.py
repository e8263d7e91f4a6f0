"""A Stable-Baselines3-style `predict` around any contract agent, for SB3 evaluation helpers
(`evaluate_policy`) and scripts written against SB3 policies. SB3 itself is not imported."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from agents.base import Agent
from envs.sim.scene import Scene


class SB3Policy:
    """`predict(obs, state, episode_start, deterministic) -> (actions, state)` over `agent.act`.

    scenes: for privileged agents, a callable returning the env's current scenes (e.g.
    `lambda: env.scenes`). deterministic=False draws from `gen` (agents that ignore it stay deterministic).
    """

    def __init__(self, agent: Agent, scenes: Callable[[], list[Scene]] | None = None, gen: torch.Generator | None = None):
        if agent.privileged and scenes is None:
            raise ValueError(f"scenes=None: agent {agent.name!r} is privileged; pass scenes=lambda: env.scenes")
        self.agent, self.scenes, self.gen = agent, scenes, gen

    def predict(self, observation: dict[str, Any], state: Any = None, episode_start: np.ndarray | None = None,
                deterministic: bool = True) -> tuple[np.ndarray, Any]:
        """Plans (B, 8, 3), or (8, 3) for an unbatched observation; the state is passed through."""
        is_single = np.ndim(observation["ego_status"]) == 2
        obs = {k: (_add_batch(v) if is_single else v) for k, v in observation.items()}
        scenes = self.scenes() if self.scenes is not None else None
        if is_single and scenes is not None and isinstance(scenes, Scene):
            scenes = [scenes]
        gen = None if deterministic else self.gen
        with torch.no_grad():
            actions = self.agent.act(obs, gen, scenes)
        return (actions[0] if is_single else actions), state


def _add_batch(value):
    if isinstance(value, dict):
        return {k: _add_batch(v) for k, v in value.items()}
    return value[None]
