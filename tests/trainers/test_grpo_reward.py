"""The GRPO reward: hand-worked PDMS / EPDMS totals with other weights and hard masks, and equality with
the env's own totals at the default weights."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import envs  # noqa: F401  (registers the env ids)
from agents import make_agent
from envs.navsim import NavsimConfig
from envs.navsim_obs import ObservationConfig
from trainers.grpo_reward import RewardConfig, reward_from_scores


def test_reward_hand_worked():
    one = np.ones((1, 1))
    pdms = {"nc": one, "dac": one, "ep": 0.5 * one, "ttc": one, "c": 0 * one}
    assert float(reward_from_scores(pdms, RewardConfig())) == pytest.approx((5 * 0.5 + 5) / 12)
    assert float(reward_from_scores(pdms, RewardConfig(ep_weight=10))) == pytest.approx((10 * 0.5 + 5) / 17)
    hit = {**pdms, "nc": 0.5 * one}
    assert float(reward_from_scores(hit, RewardConfig())) == pytest.approx(0.5 * 7.5 / 12)
    assert float(reward_from_scores(hit, RewardConfig(hard_mask=True))) == -1.0
    epdms = {"nc": one, "dac": one, "ddc": one, "tlc": one, "ep": one, "ttc": 0 * one, "lk": one, "hc": one, "ec": one}
    assert float(reward_from_scores(epdms, RewardConfig(metric="epdms"))) == pytest.approx(11 / 16)
    with pytest.raises(ValueError, match="weights"):
        RewardConfig(ep_weight=-1.0)


def test_default_reward_equals_the_env_totals(train_scenes):
    files = dict(data="files", obs=ObservationConfig(cameras=()))
    vec = gym.make_vec("roadloop/Navsim-v1", num_envs=2, vectorization_mode="vector_entry_point",
                       config=NavsimConfig(split=str(train_scenes), **files))
    obs, _ = vec.reset(seed=0)
    plans = make_agent("ego_mlp", hidden=16).sample(obs, 3, torch.Generator().manual_seed(0)).plans
    totals, table = vec.unwrapped.score_group(plans.numpy())
    assert reward_from_scores(table, RewardConfig()).numpy() == pytest.approx(totals, abs=1e-12)
