"""The NAVSIM Gymnasium envs on a few generated scenes (data=files): API, determinism, equality with
the scoring CLI, batching, grouped scoring, bad actions and the two-stage flow."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

import envs  # noqa: F401  (registers the ids)
from envs.metrics.scorer import ScoringConfig, prepare_scenes, score_poses, score_rows
from envs.navsim import NavsimVectorEnv, plan_from_action
from envs.scene_file import load_scene, save_plan, save_scene
from scenarios import build_scene
from tools import score as score_cli

OBS = {"cameras": (), "privileged": True}


@pytest.fixture(scope="module")
def scene_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scenes")
    for seed in range(3):
        scene = build_scene("following", None, seed)
        save_scene(scene, folder / f"{scene.token}.json")
    return folder


def make(scene_dir, version=1, **kw):
    return gym.make(f"roadloop/Navsim-v{version}", data="files", split=str(scene_dir), obs=kw.pop("obs", OBS), **kw)


def cruise(obs, speed_scale=1.0):
    """A plan that keeps the current speed straight ahead (ego frame)."""
    speed = float(np.hypot(*obs["ego_status"][-1, 3:5])) * speed_scale
    action = np.zeros((8, 3), np.float32)
    action[:, 0] = speed * 0.5 * np.arange(1, 9)
    return action


@pytest.mark.parametrize("version", [1, 2])
def test_check_env(scene_dir, version):
    check_env(make(scene_dir, version).unwrapped, skip_render_check=True)


def test_v1_reward_equals_the_scoring_cli(scene_dir, tmp_path):
    env = make(scene_dir)
    obs, info = env.reset(seed=3)
    action = cruise(obs, 0.8)
    _, reward, terminated, truncated, info = env.step(action)
    assert terminated and not truncated
    save_plan(plan_from_action(action), tmp_path / "plan.json")
    out = io.StringIO()
    with redirect_stdout(out):
        code = score_cli.main(["--scene", str(scene_dir / f"{info['scene_token']}.json"), "--trajectory", str(tmp_path / "plan.json")])
    assert code == 0
    cli = json.loads(out.getvalue())
    assert reward == cli["pdms"]
    for key in ("nc", "dac", "ep", "ttc", "c"):
        assert info[key] == cli[key]


def test_same_seed_same_episode(scene_dir):
    a, b = make(scene_dir), make(scene_dir)
    obs_a, info_a = a.reset(seed=7)
    obs_b, info_b = b.reset(seed=7)
    assert info_a["scene_token"] == info_b["scene_token"]
    for key in ("ego_status", "command"):
        np.testing.assert_array_equal(obs_a[key], obs_b[key])
    action = cruise(obs_a)
    assert a.step(action)[1] == b.step(action)[1]


def test_vector_env_equals_per_scene_scoring(scene_dir):
    vec = gym.make_vec("roadloop/Navsim-v1", num_envs=3, vectorization_mode="vector_entry_point",
                       data="files", split=str(scene_dir), obs=OBS)
    assert isinstance(vec.unwrapped, NavsimVectorEnv)
    obs, info = vec.reset(seed=0)
    scenes = vec.unwrapped.scenes
    actions = np.stack([cruise({"ego_status": obs["ego_status"][b]}, 0.9) for b in range(3)])
    _, reward, terminated, _, info = vec.step(actions)
    assert terminated.all() and "final_obs" in info
    for b, scene in enumerate(scenes):
        prep = prepare_scenes([scene], ScoringConfig(metric="pdms"))
        alone = score_rows(score_poses(prep, torch.as_tensor(actions[b : b + 1, None], dtype=torch.float64), 0.5))
        assert reward[b] == alone[0][0]["pdms"]


def test_score_group_matches_single_steps(scene_dir):
    env = make(scene_dir)
    obs, _ = env.reset(seed=1)
    plans = np.stack([cruise(obs, s) for s in (0.5, 1.0, 1.3)])
    totals, table = env.unwrapped.score_group(plans)
    assert totals.shape == (3,) and set(table) >= {"nc", "ep", "pdms"}
    for g in range(3):
        env.reset(seed=1)
        assert env.step(plans[g])[1] == totals[g]


@pytest.mark.parametrize("bad, match", [
    (np.full((8, 3), np.nan, np.float32), "action"),
    (np.zeros((7, 3), np.float32), "action.shape"),
    (np.zeros((8, 2), np.float32), "action.shape"),
])
def test_bad_actions_are_rejected_by_name(scene_dir, bad, match):
    env = make(scene_dir)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=match):
        env.unwrapped.step(bad)


def test_v2_is_two_stages_with_product_reward(scene_dir):
    env = make(scene_dir, version=2)
    obs, info = env.reset(seed=2)
    first = info["scene_token"]
    obs, reward, terminated, truncated, info = env.step(cruise(obs))
    assert reward == 0.0 and not terminated and info["stage"] == 1
    assert info["scene_token"] != first  # the follow-up world
    stage_one = info["stage_one_score"]
    assert stage_one == info["epdms"]
    obs, reward, terminated, truncated, info = env.step(cruise(obs))
    assert terminated
    assert reward == pytest.approx(stage_one * info["stage_two_score"])
    assert info["stage_two_score"] == info["epdms"]


def test_privileged_observation_is_in_the_ego_frame(scene_dir):
    env = make(scene_dir)
    obs, info = env.reset(seed=0)
    scene = load_scene(scene_dir / f"{info['scene_token']}.json")
    assert obs in env.observation_space
    np.testing.assert_allclose(obs["ego_status"][-1, :3], 0.0, atol=1e-6)  # current frame is the origin
    assert obs["command"].sum() == 1.0 and obs["command"][int(scene.command)] == 1.0
    agents = obs["privileged"]["agents"][obs["privileged"]["agents_valid"] == 1]
    assert len(agents) == min(32, int(scene.agents.valid[:, 0].sum()))


def test_seen_scenes_are_prepared_and_observed_once(scene_dir):
    kwargs = dict(data="files", split=str(scene_dir), obs={"cameras": ("cam_f0",), "image_width": 32,
                                                            "image_height": 16, "privileged": True})
    vec = gym.make_vec("roadloop/Navsim-v1", num_envs=4, vectorization_mode="vector_entry_point", **kwargs)
    fresh = gym.make_vec("roadloop/Navsim-v1", num_envs=4, vectorization_mode="vector_entry_point",
                         cache_scenes=0, **kwargs)
    batch = vec.unwrapped.batch
    obs, _ = vec.reset(seed=5)
    obs_fresh, _ = fresh.reset(seed=5)
    for _ in range(4):                              # 4 x 4 draws from 3 scenes: all seen after the first steps
        actions = np.stack([cruise({"ego_status": obs["ego_status"][b]}) for b in range(4)])
        obs, reward, *_ = vec.step(actions)
        obs_fresh, reward_fresh, *_ = fresh.step(actions)
        np.testing.assert_array_equal(reward, reward_fresh)
        for key in ("ego_status", "command", "cam_f0"):
            np.testing.assert_array_equal(obs[key], obs_fresh[key])
        np.testing.assert_array_equal(obs["privileged"]["route"], obs_fresh["privileged"]["route"])
    assert len(batch.cache) == 3 and len(batch.observations) == 3        # one entry per scene
    misses = batch.cache.misses, batch.observations.misses
    vec.reset(seed=6)
    assert (batch.cache.misses, batch.observations.misses) == misses          # nothing made again
    assert len(fresh.unwrapped.batch.cache) == 0                             # cache_scenes=0 keeps nothing
