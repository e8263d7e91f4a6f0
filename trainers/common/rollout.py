"""Deterministic closed-loop evaluation of an agent on a fixed list of NAVSIM scenes: mean PDMS and
every sub-score, plus BEV pictures of the plans. Shared by every trainer.

It runs the same steps as `NavsimVectorEnv.reset` + `step` (scene source, `build_observations`,
`prepare_scenes`, `check_plans`, `score_poses`), but plays the first `num_scenes` scenes of a split
once each, in order, where the env's reset draws scenes at random with replacement.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
from tqdm.auto import tqdm

from envs.metrics.scorer import SCORE_KEYS, Metric, PreparedScenes, ScoringConfig, prepare_scenes, score_poses, score_rows
from envs.navsim import PLAN_INTERVAL_S, NavsimConfig, check_plans
from envs.navsim_obs import ObservationConfig, build_observations
from envs.scene_source import open_scene_source
from envs.sim.scene import Scene

ALWAYS_OBSERVED = frozenset({"ego_status", "command"})
"""Observation keys every NAVSIM observation holds."""
PDMS_KEYS = ("nc", "dac", "ddc", "ep", "ttc", "c", "pdms")
"""Score keys that mean something under PDMS v1.1 (DDC is reported with weight 0)."""


def agent_obs_config(inputs: frozenset[str], obs: ObservationConfig) -> ObservationConfig:
    """The env's observation config trimmed to the keys an agent reads (rendering is the slow part).

    Raises ValueError naming a key the agent reads that the env's config does not provide.
    """
    provided = ALWAYS_OBSERVED | set(obs.cameras) | ({"bev"} if obs.bev else set()) | ({"privileged"} if obs.privileged else set())
    missing = sorted(set(inputs) - provided)
    if missing:
        raise ValueError(f"agent inputs {missing!r}: not in env.obs (cameras={list(obs.cameras)}, bev={obs.bev}, "
                         f"privileged={obs.privileged}); enable them in the env's observation config")
    return replace(obs, cameras=tuple(c for c in obs.cameras if c in inputs), bev=obs.bev and "bev" in inputs,
                   privileged=obs.privileged and "privileged" in inputs)


def stack_obs(parts: list[dict]) -> dict:
    """Concatenate batched observation dicts (nested dicts allowed) along B."""
    return {k: stack_obs([p[k] for p in parts]) if isinstance(parts[0][k], dict) else np.concatenate([p[k] for p in parts])
            for k in parts[0]}


def select_obs(obs: dict, index) -> dict:
    """Rows `index` (int array or slice) of a batched observation dict."""
    return {k: select_obs(v, index) if isinstance(v, dict) else v[index] for k, v in obs.items()}


class Evaluation:
    """The first `num_scenes` scenes of a split, in blocks of `batch_size`; observations (per
    observation config) and scoring inputs (PDM-Closed references included) are built once and kept,
    so evaluating again during training costs only the agent and the plan simulation."""

    def __init__(self, env_config: NavsimConfig, split: str, num_scenes: int, batch_size: int,
                 metric: Metric | str = Metric.PDMS):
        if num_scenes < 1:
            raise ValueError(f"num_scenes={num_scenes}: must be >= 1")
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size}: must be >= 1")
        self.env_config = replace(env_config, split=split, max_scenes=num_scenes)
        self.source = open_scene_source(self.env_config)
        self.num_scenes = min(num_scenes, len(self.source))
        self.batch_size = batch_size
        self.scoring = ScoringConfig(metric=Metric(metric), human_filter=Metric(metric) is Metric.EPDMS)
        self.keys = PDMS_KEYS if self.scoring.metric is Metric.PDMS else SCORE_KEYS
        self._prepared: dict[int, PreparedScenes] = {}
        self._obs: dict[tuple[int, ObservationConfig], dict] = {}
        self.plans = np.zeros((self.num_scenes, 8, 3), np.float32)
        """(N, 8, 3) the plans of the last `run`."""
        self.rows: list[dict] = []
        """Per-scene score dicts of the last `run`."""

    @property
    def num_blocks(self) -> int:
        return -(-self.num_scenes // self.batch_size)

    def scenes(self, block: int) -> list[Scene]:
        stop = min(self.num_scenes, (block + 1) * self.batch_size)
        return [self.source.scene(i) for i in range(block * self.batch_size, stop)]

    def prepared(self, block: int) -> PreparedScenes:
        if block not in self._prepared:
            self._prepared[block] = prepare_scenes(self.scenes(block), self.scoring, device=self.env_config.device)
        return self._prepared[block]

    def observations(self, block: int, obs_config: ObservationConfig) -> dict:
        key = (block, obs_config)
        if key not in self._obs:
            prep = self.prepared(block)
            centerlines = [route.centerline for route in prep.routes]
            self._obs[key] = build_observations(list(prep.scenes), obs_config, centerlines)
        return self._obs[key]

    def run(self, agent, seed: int = 0, progress: bool = True) -> dict[str, float]:
        """Mean of every score key over the scenes (`pdms`, `nc`, `dac`, `ddc`, `ep`, `ttc`, `c` for
        PDMS), plus `num_scenes`. Calls `agent.act(obs)` without a generator under `no_grad`, with
        torch's global RNG seeded by `seed` inside a fork, so the caller's RNG streams are untouched."""
        obs_config = agent_obs_config(agent.inputs, self.env_config.obs)
        rows: list[dict] = []
        with torch.random.fork_rng(devices=range(torch.cuda.device_count())), torch.no_grad():
            torch.manual_seed(seed)
            for block in tqdm(range(self.num_blocks), desc="eval", unit="batch", disable=not progress, leave=False):
                prep = self.prepared(block)
                obs = self.observations(block, obs_config)
                scenes = list(prep.scenes) if agent.privileged else None
                plans = check_plans(agent.act(obs, scenes=scenes), prep.batch_size)
                start = block * self.batch_size
                self.plans[start : start + prep.batch_size] = plans
                poses = torch.as_tensor(plans[:, None], dtype=torch.float64, device=prep.device)
                rows += [r[0] for r in score_rows(score_poses(prep, poses, PLAN_INTERVAL_S))]
        self.rows = rows
        means = {key: float(np.mean([r[key] for r in rows])) for key in self.keys}
        return {**means, "num_scenes": float(len(rows))}

    def run_logged(self, agent, logger, step: int, seed: int = 0, progress: bool = True, images: int = 0) -> dict[str, float]:
        """`run` with the agent in eval mode, logged to a `RunLogger` as `score/<key>` at `step`, plus the
        BEV pictures of the first `images` scenes as `charts/bev_<index>`."""
        if isinstance(agent, torch.nn.Module):
            agent.eval()
        scores = self.run(agent, seed=seed, progress=progress)
        logger.log_scalars({f"score/{k}": v for k, v in scores.items() if k != "num_scenes"}, step)
        for index in range(min(images, self.num_scenes)):
            logger.log_image(f"charts/bev_{index}", self.render(index), step)
        return scores

    def render(self, index: int, extra_plans: np.ndarray | None = None, with_human: bool = True) -> np.ndarray:
        """BEV picture (384, 384, 3) uint8 of scene `index`: the last run's plan (orange, on top), the
        logged human plan when the scene has one and `with_human`, any `extra_plans` (K, 8, 3) in the
        ego frame, and the plan's scores. (`env.render()` draws one env's last step; this draws any
        evaluated scene.)"""
        from agents.base import resample_plan
        from envs.sim.bev import bev_rgb
        from envs.sim.frame import frame_from_scene

        if not 0 <= index < len(self.rows):
            raise ValueError(f"index={index}: run() has scored {len(self.rows)} scenes")
        scene = self.source.scene(index)
        plans = [self.plans[index][None]]
        if with_human and scene.human_trajectory is not None:
            plans.append(resample_plan(scene.human_trajectory)[None])
        if extra_plans is not None:
            plans.append(np.asarray(extra_plans, np.float32).reshape(-1, 8, 3))
        plans = np.concatenate(plans)
        scores = {key: self.rows[index][key] for key in self.keys}
        return bev_rgb(frame_from_scene(scene, 0), plans=plans, scores=scores, title=f"{scene.scenario_type} {scene.token}")


def evaluate(agent, env_config: NavsimConfig, split: str, num_scenes: int, batch_size: int = 16, seed: int = 0,
             progress: bool = True) -> dict[str, float]:
    """Mean PDMS and every sub-score of `agent` over the first `num_scenes` scenes of `split` (one
    pass, deterministic `act`; privileged agents receive the scenes). See `Evaluation.run`."""
    return Evaluation(env_config, split, num_scenes, batch_size).run(agent, seed=seed, progress=progress)
