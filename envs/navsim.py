"""NAVSIM pseudo-simulation as Gymnasium environments: `roadloop/Navsim-v1` (one shot, PDMS) and
`roadloop/Navsim-v2` (two stages, EPDMS), single and natively batched.

The env owns a scene source and a batch of current scenes; observations come from
`envs.navsim_obs`, tracking and scoring from `envs.metrics.scorer`, follow-up worlds from
`envs.sim.resimulate`. No physics or scoring lives here.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from envs.metrics.context import SceneCache
from envs.metrics.epdms import two_stage_weights
from envs.metrics.scorer import SCORE_KEYS, Metric, ScoringConfig, prepare_scenes, score_poses, score_rows
from envs.navsim_obs import (
    ObservationConfig,
    build_observations,
    observation_rows,
    observation_space,
    stack_observations,
)
from envs.scene_source import SceneSource, open_scene_source
from envs.sim.geometry import to_global
from envs.sim.resimulate import follow_up_scenes
from envs.sim.scene import Plan, Scene
from envs.sim.trajectory import validate_plan_poses

PLAN_POSES = 8
"""H: poses per plan (NAVSIM default 4 s at 0.5 s)."""
PLAN_INTERVAL_S = 0.5
POSE_LIMIT = 200.0
"""[m] bound of planned x, y in the action Box (4 s at 50 m/s)."""


class StageTwo(str, Enum):
    """How Navsim-v2 builds its second stage."""

    REACTIVE = "reactive"
    """Re-simulate the world from where the ego ended up, reactive IDM traffic (default)."""
    OFFICIAL = "official"
    """Pre-generated follow-ups of `navhard` groups, weighted exp(-d^2 / 0.2) around the planned
    endpoint (spec navsim.md §2.6); the observed follow-up is drawn with those weights, so the
    expected reward is the official weighted stage-2 score."""


@dataclass
class NavsimConfig:
    """Everything a NAVSIM env is built from (Hydra mirrors it under `env`)."""

    split: str = "navtest"
    """Built-in split (`navtrain`, `navtest`, `navhard`, `navmini`) or a folder of scene/1 files."""
    data: str = "builtin"
    """`builtin` (synthetic splits), `files` (scene/1 folder in `split`), `openscene` (real logs)."""
    data_root: str | None = None
    """OpenScene root (data=openscene) or the split cache folder (data=builtin; default ~/.cache)."""
    maps_root: str | None = None
    """nuPlan maps folder (data=openscene)."""
    max_scenes: int | None = None
    """Use only the first N scenes of the source (of `families`, when given)."""
    families: tuple[str, ...] | None = None
    """Only scenes of these scenario families, e.g. `[cut_in, jaywalker]`; on built-in splits `long_tail` and
    `ordinary` stand for their sets (`scenarios.splits.FAMILY_SETS`). None: every scene."""
    obs: ObservationConfig = field(default_factory=ObservationConfig)
    """Cameras, BEV and privileged vectors."""
    human_filter: bool = True
    """EPDMS (v2) stage 1: sub-metrics the human also fails count as passed (NAVSIM default)."""
    stage_two: StageTwo = StageTwo.REACTIVE
    """v2 only: how the second stage is built."""
    device: str = "cpu"
    """Torch device for tracking and scoring."""
    cache_scenes: int = 1024
    """Scenes whose prepared scoring inputs (metric cache, fixed-plan scores) and observations are kept
    in memory, least recently used dropped first: a scene drawn again is only concatenated into the
    batch. Roughly 1-2 MB per scene on the built-in maps (polygon-index rows, plus 0.3 MB of images with
    the 3 default cameras; the index store may hold up to twice as many scenes' rows before it starts
    afresh). 0 keeps nothing: every reset prepares and observes its scenes (PDM-Closed still runs once
    per scene)."""

    def __post_init__(self):
        if self.data not in ("builtin", "files", "openscene"):
            raise ValueError(f"data={self.data!r}: expected one of builtin, files, openscene")
        if self.max_scenes is not None and self.max_scenes < 1:
            raise ValueError(f"max_scenes={self.max_scenes}: must be >= 1 or None")
        if self.cache_scenes < 0:
            raise ValueError(f"cache_scenes={self.cache_scenes}: must be >= 0")
        if self.families is not None:
            self.families = (self.families,) if isinstance(self.families, str) else tuple(self.families)
            if not self.families or not all(isinstance(name, str) and name for name in self.families):
                raise ValueError(f"families={self.families!r}: expected a non-empty list of scenario family names")
        self.stage_two = StageTwo(self.stage_two)
        if isinstance(self.obs, dict):
            self.obs = ObservationConfig(**self.obs)


def _action_space() -> spaces.Box:
    low = np.tile(np.array([-POSE_LIMIT, -POSE_LIMIT, -2 * np.pi], np.float32), (PLAN_POSES, 1))
    return spaces.Box(low=low, high=-low, dtype=np.float32)


def check_plans(action: Any, batch: int) -> np.ndarray:
    """Validate a batch of plans -> float64 (B, H, 3); clear errors for NaN, inf or a wrong shape."""
    plans = np.asarray(action, dtype=np.float64)
    if plans.shape == (PLAN_POSES, 3) and batch == 1:
        plans = plans[None]
    if plans.shape != (batch, PLAN_POSES, 3):
        raise ValueError(f"action.shape={plans.shape}: expected ({batch}, {PLAN_POSES}, 3) poses (x, y, heading)")
    validate_plan_poses(torch.as_tensor(plans), name="action")
    return plans


class NavsimBatch:
    """B NAVSIM episodes stepped together: the shared engine of the single and the vector env."""

    def __init__(self, config: NavsimConfig, num_envs: int, version: int):
        self.config, self.num_envs, self.version = config, num_envs, version
        self.source: SceneSource = open_scene_source(config)
        self.metric = Metric.PDMS if version == 1 else Metric.EPDMS
        self.scenes: list[Scene] = []
        self.groups: list[Any] = []
        self.stage = 0
        self.stage_one_scores: np.ndarray | None = None
        self.last: dict[str, Any] = {}
        self.cache = SceneCache(max(config.cache_scenes, 1))
        """Prepared scoring inputs of the scenes seen (`prepare_scenes(cache=...)`)."""
        self.observations = SceneCache(max(config.cache_scenes, 1))
        """Observations of the scenes seen, one row per scene."""
        self.reference_cache: dict[str, torch.Tensor] = self.cache.references
        """PDM-Closed reference poses by scene token: each scene is planned once."""

    # --- episode control ---
    def reset(self, rng: np.random.Generator) -> tuple[dict, dict]:
        index = rng.integers(len(self.source), size=self.num_envs)
        if self.config.stage_two is StageTwo.OFFICIAL and self.version == 2:
            self.groups = [self.source.group(int(i)) for i in index]
            self.scenes = [g.now for g in self.groups]
        else:
            self.scenes = [self.source.scene(int(i)) for i in index]
        self.stage, self.stage_one_scores, self.last = 0, None, {}
        self._prepare(self.scenes, human_filter=self.config.human_filter, keep=True)
        return self.observation, self._info()

    # Inference mode (here and in `score`): bit-identical results with less per-op dispatch, worth ~10 %
    # of a warm step at these small tensor sizes. Tensors made here are only read afterwards.
    @torch.inference_mode()
    def _prepare(self, scenes: list[Scene], human_filter: bool, keep: bool) -> None:
        """Scoring inputs and observations of the current scenes; `keep`: they come from the source
        (memoised per scene) rather than re-simulated once (built afresh)."""
        config = ScoringConfig(metric=self.metric, human_filter=human_filter and self.metric is Metric.EPDMS)
        keep = keep and self.config.cache_scenes > 0
        self.prep = prepare_scenes(scenes, config, device=self.config.device, reference_cache=self.reference_cache,
                                   cache=self.cache if keep else None)
        self.observation = self._observe(keep)

    @torch.inference_mode()
    def score(self, plans: np.ndarray):
        """Score plans (B, G, H, 3) against the current scenes without changing the episode."""
        poses = torch.as_tensor(plans, dtype=torch.float64, device=self.prep.device)
        return score_poses(self.prep, poses, PLAN_INTERVAL_S)

    def step(self, action: Any, rng: np.random.Generator):
        plans = check_plans(action, self.num_envs)
        scored = self.score(plans[:, None])
        rows = [r[0] for r in score_rows(scored)]
        total = np.array([r[self.metric.value] for r in rows])
        tracked = _first_plan(scored.states)
        self.last = {"plans": plans, "tracked": tracked, "scores": rows}
        if self.version == 1 or self.stage == 1:
            terminated = np.ones(self.num_envs, bool)
            if self.version == 1:
                reward = total
            else:  # official: the drawn follow-up's score (its expectation is the weighted stage 2)
                stage_two = total
                reward = self.stage_one_scores * stage_two
                self.last["stage_two_score"] = stage_two
            info = self._info(rows, reward)
            # the finished episode's scenes again; new arrays, as Gymnasium asks of every returned observation
            return _copy_tree(self.observation), reward, terminated, np.zeros(self.num_envs, bool), info
        # --- v2, end of stage 1: build the follow-up world ---
        self.stage_one_scores = total
        self.stage = 1
        stage_one_rows, stage_one_plans = rows, plans
        official = self.config.stage_two is StageTwo.OFFICIAL
        if official:
            self.followup_index = self._draw_followups(plans, rng)
            self.scenes = [g.syn_now[k] for g, k in zip(self.groups, self.followup_index)]
        else:
            self.scenes = follow_up_scenes(self.scenes, tracked)
        self._prepare(self.scenes, human_filter=False, keep=official)  # synthetic follow-ups have no human
        info = self._info(stage_one_rows, np.zeros(self.num_envs))
        info["stage_one_plan"] = stage_one_plans
        return self.observation, np.zeros(self.num_envs), np.zeros(self.num_envs, bool), np.zeros(self.num_envs, bool), info

    def _draw_followups(self, plans: np.ndarray, rng: np.random.Generator) -> list[int]:
        """Official stage-2 weights around the planned endpoint; draw the observed follow-up from them."""
        weights = self._official_weights(plans)
        return [int(rng.choice(len(w), p=w)) for w in weights]

    def _official_weights(self, plans: np.ndarray) -> list[np.ndarray]:
        origin = torch.as_tensor(np.stack([s.ego_pose for s in self.scenes]))
        endpoint = to_global(torch.as_tensor(plans[:, -1]), origin)[:, :2]
        result = []
        for b, group in enumerate(self.groups):
            starts = torch.as_tensor(np.stack([s.ego_pose[:2] for s in group.syn_now]))[None]
            valid = torch.ones(starts.shape[:2], dtype=torch.bool)
            w = two_stage_weights(endpoint[b : b + 1], starts, valid)[0].numpy()
            result.append(w / w.sum())
        return result

    def _observe(self, keep: bool) -> dict:
        """Observations of the current scenes; with `keep`, each scene is observed once and then served
        from `self.observations` (the observation at t = 0 is a function of the scene alone)."""
        centerlines = [route.centerline for route in self.prep.routes]
        if not keep:
            return build_observations(self.scenes, self.config.obs, centerlines)
        kind = ("observation", self.config.obs)
        rows = [self.observations.get(s, kind) for s in self.scenes]
        todo = {id(s): b for b, (s, row) in enumerate(zip(self.scenes, rows)) if row is None}  # each new scene once
        if todo:
            made = observation_rows(build_observations([self.scenes[b] for b in todo.values()], self.config.obs,
                                                       [centerlines[b] for b in todo.values()]))
            for b, row in zip(todo.values(), made):
                self.observations.put(self.scenes[b], kind, row)
            by_scene = dict(zip(todo, made))
            rows = [by_scene[id(s)] if row is None else row for s, row in zip(self.scenes, rows)]
        return stack_observations(rows)

    def _info(self, rows: list[dict] | None = None, reward: np.ndarray | None = None) -> dict:
        info: dict[str, Any] = {
            "scene_token": np.array([s.token for s in self.scenes], dtype=object),
            "scenario_type": np.array([s.scenario_type for s in self.scenes], dtype=object),
            "stage": np.full(self.num_envs, self.stage),
        }
        if rows is not None:
            for key in SCORE_KEYS:
                info[key] = np.array([r[key] for r in rows])
            info["reward_terms"] = {self.metric.value: np.array([r[self.metric.value] for r in rows])}
        if self.stage_one_scores is not None:
            info["stage_one_score"] = self.stage_one_scores
        if "stage_two_score" in self.last:
            info["stage_two_score"] = self.last["stage_two_score"]
        return info

    def render(self, index: int = 0) -> np.ndarray:
        from envs.sim.bev import BEVConfig, bev_rgb
        from envs.sim.frame import frame_from_scene

        frame = frame_from_scene(self.scenes[index], 0)
        plans = tracked = scores = None
        if self.last:
            origin = torch.as_tensor(self.last["tracked"].pose[index, 0])
            plans = to_global(torch.as_tensor(self.last["plans"][index]), origin).numpy()[None, :, :2]
            tracked = self.last["tracked"].pose[index, :, :2].cpu().numpy()
            scores = self.last["scores"][index]
        title = f"{self.scenes[index].scenario_type} {self.scenes[index].token}"
        return bev_rgb(frame, BEVConfig(size=384, meters_per_pixel=0.25), plans=plans, tracked=tracked, scores=scores, title=title)


class NavsimEnv(gym.Env):
    """NAVSIM pseudo-simulation: one plan in, NAVSIM sub-scores out.

    Observation: Dict — `ego_status` (4, 7) float32: the 4 history frames (t = -1.5 .. 0 s, 2 Hz) of
    rear-axle x, y, heading in the current ego frame [m, rad], vx, vy [m/s], ax, ay [m/s^2] in the
    ego frame; `command` (4,) float32 one-hot [left, straight, right, unknown]; one (H, W, 3) uint8
    image per configured camera (default cam_l0, cam_f0, cam_r0 at 256x128); optional `bev`
    (C, S, S) uint8; optional `privileged` (agents, lanes, route) for teachers and critics.
    Action: Box (8, 3) float32: planned rear-axle x, y [m], heading [rad] at 0.5 .. 4 s in the current
    ego frame (NaN/inf or a wrong shape raises ValueError).
    Reward: v1 PDMS (NAVSIM v1.1); v2 0 after stage 1, then EPDMS(stage 1) x EPDMS(stage 2).
    Terminated: after the single step (v1) or the second (v2). Truncated: never.
    Info: every sub-score (`nc dac ddc tlc ep ttc c lk hc ec pdms epdms`), `reward_terms`,
    `scene_token`, `scenario_type`, `stage`; v2 also `stage_one_score`, `stage_two_score`.
    Versions: v1 one-shot PDMS; v2 two-stage EPDMS.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 2}

    def __init__(self, version: int = 1, render_mode: str | None = None, config: NavsimConfig | None = None, **overrides):
        self.config = config or NavsimConfig(**overrides)
        self.batch = NavsimBatch(self.config, 1, version)
        self.render_mode = render_mode
        self.observation_space = observation_space(self.config.obs)
        self.action_space = _action_space()

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        obs, info = self.batch.reset(self.np_random)
        return _first(obs), _first(info)

    def step(self, action):
        obs, reward, terminated, truncated, info = self.batch.step(action, self.np_random)
        return _first(obs), float(reward[0]), bool(terminated[0]), bool(truncated[0]), _first(info)

    def score_group(self, plans) -> tuple[np.ndarray, dict]:
        """Score G plans (G, H, 3) for the current scene in one call -> totals (G,), sub-scores {key: (G,)}."""
        totals, rows = _score_group(self.batch, np.asarray(plans, np.float64)[None])
        return totals[0], {k: v[0] for k, v in rows.items()}

    def render(self):
        return self.batch.render(0)

    @property
    def scene(self) -> Scene:
        """The current scene (privileged: for teachers such as PDM-Closed)."""
        return self.batch.scenes[0]


class NavsimVectorEnv(VectorEnv):
    """B NAVSIM envs stepped as one batch (`gymnasium.make_vec("roadloop/Navsim-v1", num_envs=B)`).

    Same spaces, rewards and infos as `NavsimEnv`, batched. Episodes of all envs end together, and the
    next batch of scenes is drawn in the same step (autoreset mode SAME_STEP): the returned
    observation is the new episode's, the finished one's is in `info["final_obs"]`.
    """

    metadata = {"render_modes": ["rgb_array"], "autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(self, num_envs: int = 1, version: int = 1, render_mode: str | None = None,
                 config: NavsimConfig | None = None, **overrides):
        if num_envs < 1:
            raise ValueError(f"num_envs={num_envs}: must be >= 1")
        self.config = config or NavsimConfig(**overrides)
        self.num_envs = num_envs
        self.batch = NavsimBatch(self.config, num_envs, version)
        self.render_mode = render_mode
        self.single_observation_space = observation_space(self.config.obs)
        self.single_action_space = _action_space()
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        return self.batch.reset(self.np_random)

    def step(self, actions):
        obs, reward, terminated, truncated, info = self.batch.step(actions, self.np_random)
        if terminated.all():
            info["final_obs"], info["final_info"] = obs, dict(info)
            obs, reset_info = self.batch.reset(self.np_random)
            info.update({k: v for k, v in reset_info.items() if k not in info})
        return obs, reward, terminated, truncated, info

    def score_group(self, plans) -> tuple[np.ndarray, dict]:
        """Score G plans per env, plans (B, G, H, 3), in one batched call -> totals (B, G), {key: (B, G)}."""
        return _score_group(self.batch, np.asarray(plans, np.float64))

    def render(self):
        return self.batch.render(0)

    @property
    def scenes(self) -> list[Scene]:
        """Current scenes (privileged: for teachers such as PDM-Closed)."""
        return list(self.batch.scenes)


def _score_group(batch: NavsimBatch, plans: np.ndarray) -> tuple[np.ndarray, dict]:
    if plans.ndim != 4 or plans.shape[0] != batch.num_envs or plans.shape[2:] != (PLAN_POSES, 3):
        raise ValueError(f"plans.shape={plans.shape}: expected ({batch.num_envs}, G, {PLAN_POSES}, 3)")
    validate_plan_poses(torch.as_tensor(plans), name="plans")
    scored = batch.score(plans)
    rows = score_rows(scored)
    table = {key: np.array([[r[key] for r in per] for per in rows]) for key in SCORE_KEYS}
    return table[batch.metric.value], table


def _first_plan(states):
    """(B, G, 41) simulated states -> those of plan 0, (B, 41)."""
    return replace(states, **{n: getattr(states, n)[:, 0] for n in states.__dataclass_fields__})


def _copy_tree(tree):
    """A copy of every array in a (nested) dict."""
    return {k: _copy_tree(v) for k, v in tree.items()} if isinstance(tree, dict) else tree.copy()


def _first(tree):
    """Element 0 of every array in a (nested) dict of batched values."""
    if isinstance(tree, dict):
        return {k: _first(v) for k, v in tree.items()}
    return tree[0]


def plan_from_action(action: np.ndarray) -> Plan:
    """An env action (8, 3) as a `Plan` (to save or score with the CLI)."""
    return Plan(PLAN_INTERVAL_S, np.asarray(action, np.float64))
