"""agents.baselines: constant velocity, the ego-status MLP (L1, Gaussian policy), human replay."""

import math

import numpy as np
import pytest
import torch

from agents.base import Samples, resample_plan
from agents.baselines import (
    ConstantVelocityAgent, EgoMLPConfig, EgoStatusMLPAgent, HumanAgent, constant_velocity_plans, ego_features,
)


def status_obs(vx=3.0, vy=4.0, ax=0.5, ay=-0.25, command=1, batch=1):
    status = np.zeros((batch, 4, 7), np.float32)
    status[:, -1, 3:7] = [vx, vy, ax, ay]
    return {"ego_status": status, "command": np.eye(4, dtype=np.float32)[[command] * batch]}


def test_constant_velocity_hand_case():
    # |(3, 4)| = 5 m/s -> pose k at 2.5·k m straight ahead, heading 0 (NAVSIM ConstantVelocityAgent)
    plans = ConstantVelocityAgent().act(status_obs())
    expected = np.zeros((1, 8, 3), np.float32)
    expected[0, :, 0] = 2.5 * np.arange(1, 9)
    np.testing.assert_allclose(plans, expected, atol=1e-6)
    assert plans.dtype == np.float32
    out = constant_velocity_plans(torch.tensor(status_obs(vx=2.0, vy=0.0)["ego_status"]), num_poses=2, interval=1.0)
    np.testing.assert_allclose(out[0].numpy(), [[2.0, 0, 0], [4.0, 0, 0]])


def test_ego_features_follow_navsim_order():
    feats = ego_features(status_obs(command=2))
    np.testing.assert_allclose(feats.numpy(), [[3.0, 4.0, 0.5, -0.25, 0, 0, 1, 0]])


def small_mlp(**kw):
    return EgoStatusMLPAgent(EgoMLPConfig(hidden=16, **kw))


def test_mlp_shape_is_navsims():
    agent = EgoStatusMLPAgent()
    sizes = [(m.in_features, m.out_features) for m in agent.mlp if isinstance(m, torch.nn.Linear)]
    assert sizes == [(8, 512), (512, 512), (512, 512), (512, 24)]


def test_mlp_l1_loss_hand_case():
    agent = small_mlp()
    with torch.no_grad():
        last = agent.mlp[-1]
        last.weight.zero_()
        last.bias.fill_(1.0)                       # every output is 1
    expert = torch.full((2, 8, 3), 3.0)
    assert agent.imitation_loss(status_obs(batch=2), expert).item() == pytest.approx(2.0)
    np.testing.assert_allclose(agent.act(status_obs()), np.ones((1, 8, 3)))


def test_mlp_gaussian_log_prob_hand_case():
    agent = small_mlp(init_std=0.5, learn_std=False)
    with torch.no_grad():
        agent.mlp[-1].weight.zero_()
        agent.mlp[-1].bias.zero_()                 # mean 0
    plans = torch.zeros(1, 2, 8, 3)
    plans[0, 1] = 0.5                              # one std away in all 24 coordinates
    logp, parts = agent.log_prob(status_obs(), Samples(plans=plans, logp=torch.zeros(1, 2)))
    per_dim_at_mean = -math.log(0.5) - 0.5 * math.log(2 * math.pi)
    assert parts is None
    np.testing.assert_allclose(logp.detach().numpy(), [[24 * per_dim_at_mean, 24 * (per_dim_at_mean - 0.5)]], rtol=1e-6)


def test_mlp_sample_log_prob_matches_and_is_seeded():
    agent = small_mlp()
    obs = status_obs(batch=3)
    first = agent.sample(obs, 4, torch.Generator().manual_seed(1))
    again = agent.sample(obs, 4, torch.Generator().manual_seed(1))
    assert first.plans.shape == (3, 4, 8, 3) and first.logp.shape == (3, 4)
    assert torch.equal(first.plans, again.plans)
    logp, _ = agent.log_prob(obs, first)
    torch.testing.assert_close(logp, first.logp)
    assert agent.log_std.requires_grad


def test_mlp_save_load(tmp_path):
    agent = small_mlp(seed=3)
    agent.save(tmp_path / "mlp.pt")
    loaded = EgoStatusMLPAgent.load(tmp_path / "mlp.pt")
    np.testing.assert_array_equal(agent.act(status_obs()), loaded.act(status_obs()))
    assert loaded.config == agent.config


def test_mlp_config_rejects_bad_values():
    with pytest.raises(ValueError, match="init_std"):
        EgoMLPConfig(init_std=0.0)


def test_human_replays_the_log(scenes, obs):
    plans = HumanAgent().act(obs, scenes=scenes)
    np.testing.assert_allclose(plans, np.stack([resample_plan(s.human_trajectory) for s in scenes]))
    np.testing.assert_allclose(plans[0], scenes[0].human_trajectory.poses, atol=1e-5)   # already 8 poses at 0.5 s
    with pytest.raises(ValueError, match="privileged"):
        HumanAgent().act(obs)
