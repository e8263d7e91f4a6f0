"""trainers.sb3_ppo: SB3 PPO trains on roadloop/Bench2Drive-v0 unchanged (vector observations), the batched
SameStepVecEnv adapter hands SB3 terminal observations, and the example saves a model it can reload."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

pytest.importorskip("stable_baselines3")
from stable_baselines3 import PPO  # noqa: E402

import envs  # noqa: E402,F401  (registers the ids)
from trainers.sb3_ppo import SB3PPOConfig, parse_args, same_step_vec_env, train  # noqa: E402

ROUTES = (0, 1, 5)


@pytest.fixture(autouse=True)
def sb3_log_folder(tmp_path, monkeypatch):
    """A PPO built without tensorboard_log makes a logger folder in $SB3_LOGDIR (else a new one in /tmp)."""
    monkeypatch.setenv("SB3_LOGDIR", str(tmp_path / "sb3_logs"))


def _training_faults(model, before, steps) -> list[str]:
    """What is wrong with a PPO model after `steps` steps from parameters `before` (empty: nothing)."""
    after = list(model.policy.parameters())
    faults = []
    if not all(torch.isfinite(p).all() for p in after):
        faults.append("a parameter is not finite")
    if not all(not torch.equal(a, b) for a, b in zip(before, after)):
        faults.append("a parameter did not move")
    if model.num_timesteps != steps:
        faults.append(f"num_timesteps={model.num_timesteps}, expected {steps}")
    if len(model.ep_info_buffer) < 1:
        faults.append("no episode ended (short episodes end at the tick cap)")
    return faults


def test_sb3_ppo_trains_on_the_unchanged_env():
    """SB3's own DummyVecEnv around `gym.make` (the single env exactly as registered)."""
    env = gym.make("roadloop/Bench2Drive-v0", routes=ROUTES, max_ticks=50)
    model = PPO("MultiInputPolicy", env, n_steps=64, batch_size=32, n_epochs=2, seed=0, device="cpu")
    before = [p.detach().clone() for p in model.policy.parameters()]
    model.learn(total_timesteps=128)
    assert _training_faults(model, before, 128) == []


def test_sb3_ppo_trains_two_thousand_steps_on_the_batched_env():
    """The same PPO over the native vector env (8 routes per world step) for 2048 steps."""
    venv = same_step_vec_env(gym.make_vec("roadloop/Bench2Drive-v0", num_envs=8, vectorization_mode="vector_entry_point",
                                          routes=ROUTES, max_ticks=100))
    from stable_baselines3.common.vec_env import VecMonitor

    model = PPO("MultiInputPolicy", VecMonitor(venv), n_steps=64, batch_size=128, n_epochs=2, seed=0, device="cpu")
    before = [p.detach().clone() for p in model.policy.parameters()]
    model.learn(total_timesteps=2048)
    assert _training_faults(model, before, 2048) == []


def test_same_step_adapter_reports_terminal_observations():
    vector = gym.make_vec("roadloop/Bench2Drive-v0", num_envs=2, vectorization_mode="vector_entry_point",
                          routes=ROUTES, max_ticks=5)
    venv = same_step_vec_env(vector)
    venv.seed(3)
    obs = venv.reset()
    assert obs["ego"].shape == (2, 4)
    for _ in range(6):
        venv.step_async(np.tile(np.array([0.0, 0.5, 0.0], np.float32), (2, 1)))
        obs, reward, done, infos = venv.step_wait()
    assert done.all() and all(info["TimeLimit.truncated"] for info in infos)
    assert infos[0]["terminal_observation"]["ego"][0] > 0.0 and obs["ego"][0, 0] == 0.0
    assert reward.dtype == np.float32 and "driving_score" in infos[1]


def test_example_trains_saves_and_reloads(tmp_path):
    cfg = parse_args(["--timesteps", "256", "--num-envs", "2", "--n-steps", "128", "--batch-size", "64",
                      "--n-epochs", "1", "--routes", "0,5", "--out", str(tmp_path / "run"), "--no-progress"])
    assert cfg == SB3PPOConfig(timesteps=256, num_envs=2, n_steps=128, batch_size=64, n_epochs=1, routes="0,5",
                               out=str(tmp_path / "run"), progress=False)
    model, mean_return, folder = train(cfg)
    assert (folder / "model.zip").exists() and (folder / "config.json").exists()
    events = list((folder / "ppo_1").glob("events.out.tfevents.*"))          # TensorBoard logs in the run folder
    assert len(events) == 1 and events[0].stat().st_size > 0
    assert math.isnan(mean_return) or math.isfinite(mean_return)
    reloaded = PPO.load(folder / "model.zip", device="cpu")
    obs = {k: v[None] for k, v in gym.make("roadloop/Bench2Drive-v0", routes=(0,)).reset(seed=0)[0].items()}
    np.testing.assert_allclose(reloaded.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0])
    with pytest.raises(ValueError, match="timesteps"):
        SB3PPOConfig(timesteps=0)
