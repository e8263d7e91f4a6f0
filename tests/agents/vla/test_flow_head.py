"""agents.vla.flow_head: the Flow-GRPO SDE step and its log-density, ODE/SDE chains, re-scoring,
the rectified-flow loss and the history extrapolation."""

import math

import pytest
import torch

from agents.vla.flow_head import (
    ActionExpert, chain_log_prob, flow_matching_loss, gaussian_log_density, history_extrapolation, sample_chain,
    sde_mean_std, time_grid,
)


def test_time_grid():
    torch.testing.assert_close(time_grid(4), torch.tensor([1.0, 0.75, 0.5, 0.25, 0.0]))
    torch.testing.assert_close(time_grid(2, start=0.6), torch.tensor([0.6, 0.3, 0.0]))
    with pytest.raises(ValueError, match="steps=0"):
        time_grid(0)


def test_sde_step_hand_case():
    # t = 0.5 -> 0.25, a = 0.7: sigma = 0.7·sqrt(0.5/0.5) = 0.7, dt = -0.25
    x, v = torch.full((1, 8, 3), 2.0), torch.full((1, 8, 3), 1.0)
    mean, std = sde_mean_std(x, v, torch.tensor([0.5]), torch.tensor([0.25]), 0.7, t_first_step=0.75)
    # mean = 2·(1 + 0.49·(-0.25)/1) + 1·(1 + 0.49·0.5/1)·(-0.25) = 1.755 - 0.31125
    torch.testing.assert_close(mean, torch.full((1, 8, 3), 1.755 - 0.31125))
    torch.testing.assert_close(std.flatten(), torch.tensor([0.7 * 0.5]))


def test_sde_first_step_uses_the_second_time_in_the_denominator():
    # flow_grpo: at t = 1, sigma = a·sqrt(1 / (1 - t_1)); with t_1 = 0.75: 0.7·2 = 1.4, std = 1.4·sqrt(0.25)
    x, v = torch.zeros(1, 8, 3), torch.ones(1, 8, 3)
    mean, std = sde_mean_std(x, v, torch.tensor([1.0]), torch.tensor([0.75]), 0.7, t_first_step=0.75)
    torch.testing.assert_close(std.flatten(), torch.tensor([0.7]))
    torch.testing.assert_close(mean, torch.full((1, 8, 3), -0.25))          # (1 - t) = 0: plain Euler drift


def test_one_step_log_prob_equals_normal_log_density():
    gen = torch.Generator().manual_seed(0)
    start = torch.randn(3, 8, 3, generator=gen)
    velocity = lambda x, t: 0.5 * x + t.view(-1, 1, 1)
    chain, step_logp = sample_chain(velocity, start, time_grid(1, start=0.8), 0.7, gen, stochastic=True)
    assert chain.shape == (3, 2, 8, 3) and step_logp.shape == (3, 1)
    # by hand: t = 0.8 -> 0, sigma = 0.7·sqrt(0.8/0.2) = 1.4, dt = -0.8
    t, dt, sigma = 0.8, -0.8, 1.4
    v = 0.5 * start + t
    mean = start * (1 + sigma**2 * dt / (2 * t)) + v * (1 + sigma**2 * (1 - t) / (2 * t)) * dt
    std = sigma * math.sqrt(-dt)
    by_hand = torch.distributions.Normal(mean, std).log_prob(chain[:, 1]).sum((-1, -2))
    torch.testing.assert_close(step_logp[:, 0], by_hand)
    torch.testing.assert_close(gaussian_log_density(chain[:, 1], mean, torch.tensor(std)), by_hand)


def test_chain_log_prob_re_scores_the_sampled_chain():
    gen = torch.Generator().manual_seed(1)
    velocity = lambda x, t: torch.sin(x) * t.view(-1, 1, 1) - 0.3
    grid = time_grid(5)
    chain, step_logp = sample_chain(velocity, torch.randn(4, 8, 3, generator=gen), grid, 0.7, gen, stochastic=True)
    torch.testing.assert_close(chain_log_prob(velocity, chain, grid, 0.7), step_logp, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="steps"):
        chain_log_prob(velocity, chain, time_grid(4), 0.7)


def test_ode_with_a_constant_velocity_is_exact():
    # rectified flow with v = eps - x0 constant: Euler from x_1 = eps lands exactly on x0
    eps, x0 = torch.ones(2, 8, 3), torch.full((2, 8, 3), -2.0)
    chain, logp = sample_chain(lambda x, t: eps - x0, eps, time_grid(4), 0.7, None, stochastic=False)
    assert logp is None
    torch.testing.assert_close(chain[:, -1], x0)
    torch.testing.assert_close(chain[:, 2], 0.5 * eps + 0.5 * x0)


def test_flow_matching_loss_hand_case():
    actions = torch.full((5, 8, 3), 0.5)
    gen = torch.Generator().manual_seed(3)
    loss = flow_matching_loss(lambda x, t: torch.zeros_like(x), actions, gen)
    replay = torch.Generator().manual_seed(3)
    torch.rand(5, generator=replay)
    noise = torch.randn(5, 8, 3, generator=replay)
    torch.testing.assert_close(loss, ((noise - actions) ** 2).mean())
    # the exact velocity (eps - x0), recovered from x_t and t, gives zero loss
    exact = lambda x, t: (x - actions) / t.view(-1, 1, 1)
    assert flow_matching_loss(exact, actions, torch.Generator().manual_seed(3)).item() == pytest.approx(0.0, abs=1e-8)


def test_history_extrapolation_hand_cases():
    status = torch.zeros(2, 4, 7)
    status[:, -1, 3] = 4.0                       # 4 m/s
    status[1, -2, 2] = -0.1                      # heading 0.5 s ago was -0.1: turning left at 0.2 rad/s
    poses = history_extrapolation(status)
    torch.testing.assert_close(poses[0, :, 0], 2.0 * torch.arange(1, 9, dtype=torch.float32))
    assert poses[0, :, 1:].abs().max() == 0
    t = 4.0
    torch.testing.assert_close(poses[1, -1], torch.tensor([4 * math.sin(0.2 * t) / 0.2, 4 * (1 - math.cos(0.2 * t)) / 0.2, 0.2 * t]))


def test_expert_shapes_and_padding_mask():
    expert = ActionExpert(context_dim=16, width=32, layers=2, heads=4)
    memory = expert.encode_context(torch.randn(2, 5, 16))
    valid = torch.tensor([[True] * 5, [False, False, True, True, True]])
    x, t = torch.randn(2, 8, 3), torch.tensor([0.3, 0.9])
    out = expert(x, t, memory, valid)
    assert out.shape == (2, 8, 3)
    # masked memory slots do not matter
    changed = memory.clone()
    changed[1, :2] = 100.0
    torch.testing.assert_close(expert(x, t, changed, valid), out)
