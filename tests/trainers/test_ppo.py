"""PPO + RWM trainer: GAE and the clipped loss on hand-worked numbers, config validation, 2 steps from
Hydra overrides on Navsim-v1 and Navsim-v2 (every parameter moves, scorer calls are counted), and a
Ctrl-C + resume that reproduces the uninterrupted run's metrics."""

from __future__ import annotations

import math
import os
import signal

import numpy as np
import pytest
import torch

from tests.trainers.conftest import compose_config
from trainers import ppo
from trainers.common.checkpoint import latest_checkpoint
from trainers.common.logging import read_scalars
from trainers.ppo import (
    PPOConfig, RatioLevel, closed_form_entropy, episode_rewards, explained_variance, gae,
    ppo_loss, train,
)


def config(*overrides: str) -> PPOConfig:
    """`python -m trainers.ppo <overrides>` as a validated PPOConfig."""
    return compose_config("ppo", PPOConfig, *overrides)


def tiny(train_scenes, run_dir, *extra: str) -> PPOConfig:
    return config(
        "agent.kwargs.hidden=32", "env.data=files", "env.obs.cameras=[]", "device=cpu", f"train_split={train_scenes}",
        "num_envs=2", "num_samples=3", "batch_size=2", "n_epochs=2", "learning_rate=1e-3", "true_score_every=2",
        "rwm_updates=4", "rwm_batch_size=4", "rwm_width=16", "rwm_hidden=32", "eval_every=0", "progress=false",
        f"run.dir={run_dir}", *extra,
    )


# --- config ---


def test_defaults_compose():
    default = config()
    assert default.agent.name == "ego_mlp" and default.env_id == "roadloop/Navsim-v1" and default.stages == 1
    assert default.gamma == 0.99 and default.clip_range == 0.2 and default.target_kl == 0.01   # spec §8
    v2 = config("env_id=roadloop/Navsim-v2", "num_samples=1", "ratio_level=part")
    assert v2.stages == 2 and v2.metric.value == "epdms" and v2.ratio_level is RatioLevel.part


@pytest.mark.parametrize("override", ["stepz=3", "ratio_level=token", "env.obs.camras=[]"])
def test_unknown_keys_and_values_are_errors(override):
    with pytest.raises(Exception, match="stepz|token|camras"):
        config(override)


@pytest.mark.parametrize("kwargs, match", [
    ({"env_id": "roadloop/Navsim-v9"}, "env_id"), ({"env_id": "roadloop/Navsim-v2"}, "num_samples=8"),
    ({"gamma": 1.5}, "gamma=1.5"), ({"clip_range": 0.0}, "clip_range=0.0"), ({"target_kl": 0.0}, "target_kl=0.0"),
    ({"true_score_every": 0}, "true_score_every=0"), ({"ent_coef": float("nan")}, "ent_coef=nan"),
])
def test_bad_values_are_rejected_by_name(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PPOConfig(**kwargs)


# --- GAE ---


def test_gae_two_stage_episode_hand_worked():
    rewards = torch.tensor([[0.0], [1.0]])
    values = torch.tensor([[0.5], [0.8], [123.0]])      # the bootstrap row is cut off by the done
    dones = torch.tensor([[0.0], [1.0]])
    # δ1 = 1 - 0.8 = 0.2 = A1; δ0 = 0 + 0.8 - 0.5 = 0.3, A0 = 0.3 + 0.95 * 0.2 = 0.49
    advantages, returns = gae(rewards, values, dones, gamma=1.0, lam=0.95)
    torch.testing.assert_close(advantages, torch.tensor([[0.49], [0.2]]))
    torch.testing.assert_close(returns, torch.tensor([[0.99], [1.0]]))
    # γ = 0.9, λ = 0.5: δ0 = 0.9 * 0.8 - 0.5 = 0.22, A0 = 0.22 + 0.45 * 0.2 = 0.31
    advantages, _ = gae(rewards, values, dones, gamma=0.9, lam=0.5)
    torch.testing.assert_close(advantages, torch.tensor([[0.31], [0.2]]))


def test_gae_bandit_is_reward_minus_value_and_done_cuts_bootstrap():
    advantages, returns = gae(torch.tensor([[1.0, 0.25]]), torch.tensor([[0.5, 0.5], [9.0, 9.0]]),
                              torch.ones(1, 2), gamma=0.99, lam=0.95)
    torch.testing.assert_close(advantages, torch.tensor([[0.5, -0.25]]))
    torch.testing.assert_close(returns, torch.tensor([[1.0, 0.25]]))
    # an episode ending at t = 0 does not see the next episode's values or advantages
    rewards, dones = torch.tensor([[1.0], [2.0]]), torch.tensor([[1.0], [0.0]])
    values = torch.tensor([[0.0], [5.0], [1.0]])
    advantages, _ = gae(rewards, values, dones, gamma=1.0, lam=1.0)
    torch.testing.assert_close(advantages, torch.tensor([[1.0], [-2.0]]))   # A1 = 2 + 1 - 5
    with pytest.raises(ValueError, match="T\\+1"):
        gae(rewards, values[:2], dones, 1.0, 1.0)


def test_episode_rewards_pay_the_product_at_the_last_stage():
    scores = torch.tensor([[[0.5, 1.0]], [[0.8, 0.0]]])      # (T=2, B=1, G=2)
    torch.testing.assert_close(episode_rewards(scores), torch.tensor([[[0.0, 0.0]], [[0.4, 0.0]]]))
    torch.testing.assert_close(episode_rewards(torch.tensor([[0.7]])), torch.tensor([[0.7]]))


# --- the loss ---


def test_ppo_loss_clipping_hand_worked():
    logp_old = torch.zeros(2)
    logp_new = torch.full((2,), math.log(1.5), requires_grad=True)          # ρ = 1.5 > 1 + 0.2
    advantages = torch.tensor([2.0, -2.0])
    values, returns = torch.tensor([1.0, 0.0]), torch.tensor([3.0, 0.0])
    terms = ppo_loss(logp_new, logp_old, advantages, values, returns, clip=0.2, vf_coef=0.5, ent_coef=0.0)
    # A = 2: min(3.0, 1.2 * 2 = 2.4) = 2.4 (clipped); A = -2: min(-3.0, -2.4) = -3.0 (unclipped)
    assert terms.policy.item() == pytest.approx(-(2.4 - 3.0) / 2)
    assert terms.value.item() == pytest.approx((4.0 + 0.0) / 2)
    assert terms.total.item() == pytest.approx(0.3 + 0.5 * 2.0)
    assert terms.clip_fraction.item() == 1.0
    assert terms.approx_kl.item() == pytest.approx(0.5 - math.log(1.5))
    terms.total.backward()
    # the clipped sample has no policy gradient; the unclipped one gets -ρA / N = -(1.5 * -2) / 2
    torch.testing.assert_close(logp_new.grad, torch.tensor([0.0, 1.5]))


def test_ppo_loss_at_ratio_one_is_minus_mean_advantage_with_entropy_bonus():
    logp = torch.tensor([[-1.0, -2.0]], requires_grad=True)
    terms = ppo_loss(logp, logp.detach(), torch.tensor([[1.0, 3.0]]), torch.zeros(1, 2), torch.zeros(1, 2),
                     clip=0.2, vf_coef=1.0, ent_coef=0.1, entropy=torch.tensor(5.0))
    assert terms.policy.item() == pytest.approx(-2.0) and terms.total.item() == pytest.approx(-2.0 - 0.5)
    assert terms.approx_kl.item() == 0.0 and terms.clip_fraction.item() == 0.0
    terms.total.backward()
    torch.testing.assert_close(logp.grad, torch.tensor([[-0.5, -1.5]]))


def test_ppo_loss_per_part_ratios_share_the_plan_advantage():
    # (N=1, G=2, K=2) parts; advantages (1, 2) broadcast over K; ratios e^0.1 inside the clip range
    logp_old = torch.zeros(1, 2, 2)
    logp_new = torch.tensor([[[0.1, 0.0], [0.0, 0.0]]])
    terms = ppo_loss(logp_new, logp_old, torch.tensor([[1.0, -1.0]]), torch.zeros(1, 2), torch.zeros(1, 2), 0.2, 0.5, 0.0)
    assert terms.policy.item() == pytest.approx(-(math.exp(0.1) + 1 - 1 - 1) / 4)
    with pytest.raises(ValueError, match="advantages"):
        ppo_loss(logp_new, logp_old, torch.zeros(2, 2), torch.zeros(1), torch.zeros(1), 0.2, 0.5, 0.0)


def test_explained_variance_and_gaussian_entropy():
    returns = torch.tensor([0.0, 1.0, 2.0])
    assert explained_variance(returns, returns) == 1.0
    assert explained_variance(torch.full((3,), 1.0), returns) == 0.0
    assert math.isnan(explained_variance(returns, torch.ones(3)))
    from agents import make_agent

    agent = make_agent("ego_mlp", hidden=8, init_std=1.0)
    # 24 unit-variance dimensions: 24 * 0.5 * (1 + log 2π)
    assert closed_form_entropy(agent).item() == pytest.approx(12 * (1 + math.log(2 * math.pi)))
    assert closed_form_entropy(object()) is None


def test_select_samples_keeps_every_field_of_the_rows():
    from agents.base import Samples

    plans = torch.arange(3 * 2 * 8 * 3, dtype=torch.float32).view(3, 2, 8, 3)
    samples = Samples(plans=plans, logp=torch.tensor([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]),
                      tokens=torch.arange(3 * 2 * 8).view(3, 2, 8))
    picked = ppo.select_samples(samples, torch.tensor([2, 0]))
    assert picked.logp.tolist() == [[4.0, 5.0], [0.0, 1.0]] and picked.chain is None
    assert torch.equal(picked.plans[0], plans[2]) and torch.equal(picked.tokens[1], samples.tokens[0])


# --- training ---


def moved(before: dict, after: dict) -> set[str]:
    return {name for name in before if not torch.equal(before[name], after[name])}


def test_two_steps_from_hydra_overrides_move_every_parameter(train_scenes, eval_scenes, tmp_path):
    cfg = tiny(train_scenes, tmp_path, "steps=2", "eval_every=2", f"eval_split={eval_scenes}", "eval_scenes=2")
    result = train(cfg)
    assert result["step"] == 2
    # step 0 true-scores its B x G = 6 plans; step 1 uses the RWM
    assert result["scorer_plans"] == 6
    scalars = read_scalars(tmp_path)
    assert scalars[1]["rollout/is_true_reward"] == 1.0 and scalars[2]["rollout/is_true_reward"] == 0.0
    assert "rollout/true_pdms" in scalars[1] and "rollout/true_pdms" not in scalars[2]
    assert {"losses/policy", "losses/value", "losses/approx_kl", "losses/rwm_train", "charts/scorer_plans"} <= set(scalars[1])
    assert {"score/pdms", "score/dac"} <= set(scalars[2]) and all(np.isfinite(v) for v in scalars[2].values())

    from agents import make_agent
    from trainers.reward_model import RewardModelConfig, RewardWorldModel

    state = torch.load(latest_checkpoint(tmp_path), weights_only=False)
    assert moved(make_agent("ego_mlp", hidden=32).state_dict(), state["model"]) == set(state["model"])
    assert moved(ppo.ValueNetwork(16, seed=0).state_dict(), state["critic"]) == set(state["critic"])
    rwm = RewardWorldModel(RewardModelConfig(width=16, hidden=32, seed=0)).state_dict()
    assert moved(rwm, state["rwm"]) == set(rwm) - {"is_regression"}
    assert (tmp_path / "agent.pt").is_file() and (tmp_path / "reward_model.pt").is_file()


def test_navsim_v2_uses_gae_over_two_stages(train_scenes, tmp_path):
    cfg = tiny(train_scenes, tmp_path, "env_id=roadloop/Navsim-v2", "num_samples=1", "steps=2", "gamma=1.0")
    result = train(cfg)
    # stage 1 is scored by the env every step (B = 2), stage 2 only at the correction (step 0)
    assert result["step"] == 2 and result["scorer_plans"] == 2 + 2 + 2
    scalars = read_scalars(tmp_path)
    # the RWM was fit at step 0, so step 1's free stage-1 labels validate it
    assert "losses/rwm_val_dac" in scalars[2] and "losses/rwm_val_dac" not in scalars[1]
    assert "rollout/true_epdms" in scalars[1] and np.isfinite(scalars[2]["losses/total"])
    assert scalars[2]["charts/rwm_data_plans"] == 6


def test_ctrl_c_checkpoints_and_resume_reproduces_the_uninterrupted_metrics(train_scenes, tmp_path, monkeypatch):
    straight = train(tiny(train_scenes, tmp_path / "a", "steps=3", "ckpt_every=10"))

    calls = {"n": 0}
    original = ppo.scene_features

    def interrupt_in_step_two(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C during step 2's rollout
        return original(*args, **kwargs)

    monkeypatch.setattr(ppo, "scene_features", interrupt_in_step_two)
    stopped = train(tiny(train_scenes, tmp_path / "b", "steps=3", "ckpt_every=10"))
    assert stopped["step"] == 2 and latest_checkpoint(tmp_path / "b").name == "step_00000002.pt"
    monkeypatch.setattr(ppo, "scene_features", original)

    resumed = train(tiny(train_scenes, tmp_path / "b", "steps=3", "ckpt_every=10"))
    assert resumed["step"] == 3 and resumed["scorer_plans"] == straight["scorer_plans"] == 12
    a, b = read_scalars(tmp_path / "a"), read_scalars(tmp_path / "b")
    # step 3 is a correction (true scores, RWM validated after its step-1 refresh)
    assert "losses/rwm_val_total" in a[3]
    for step in (1, 2, 3):
        assert set(a[step]) == set(b[step])
        for tag in a[step]:
            if tag != "charts/steps_per_s":
                assert a[step][tag] == b[step][tag], (step, tag)
    final_a = torch.load(latest_checkpoint(tmp_path / "a"), weights_only=False)
    final_b = torch.load(latest_checkpoint(tmp_path / "b"), weights_only=False)
    for key in ("model", "critic", "rwm"):
        assert all(torch.equal(final_a[key][k], final_b[key][k]) for k in final_a[key]), key
