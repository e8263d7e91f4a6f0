"""envs.bench2drive.reward: the three reward modes on hand-worked criteria values."""

import pytest
import torch

from envs.bench2drive.reward import (CARL_TERMINAL_PENALTY, RewardInputs, RewardMode, reward_terms, speeding_factor,
                                     total_reward)


def inputs(rc, rc_prev, penalty, penalty_prev, speed=5.0, limit=10.0, outside=False, hard=False, end=False):
    t = lambda v: torch.tensor([v], dtype=torch.float64)
    b = lambda v: torch.tensor([v])
    return RewardInputs(t(rc), t(rc_prev), t(penalty), t(penalty_prev), t(speed), t(limit), b(outside), b(hard), b(end))


def test_ds_increment_on_a_collision_tick():
    # RC 10 -> 12 % while a vehicle collision drops P 1 -> 0.6: DS 10 -> 7.2, i.e. -0.028 as a fraction
    terms = reward_terms("ds", inputs(12.0, 10.0, 0.6, 1.0))
    assert terms["progress"].item() == pytest.approx(0.02 * 0.6)
    assert terms["penalty"].item() == pytest.approx(0.10 * -0.4)
    assert total_reward(terms).item() == pytest.approx(-0.028)


def test_ds_rewards_telescope_to_the_final_driving_score():
    rc = [0.0, 5.0, 5.0, 20.0, 100.0]
    penalty = [1.0, 1.0, 0.7, 0.7, 0.49]          # a red light, then a second one
    total = sum(total_reward(reward_terms(RewardMode.DS, inputs(rc[t], rc[t - 1], penalty[t], penalty[t - 1]))).item()
                for t in range(1, len(rc)))
    assert total == pytest.approx(0.49)


def test_carl_progress_times_penalty_and_soft_factors():
    terms = reward_terms("carl", inputs(12.0, 10.0, 0.6, 0.6, speed=12.0, limit=10.0, hard=True))
    assert terms["progress"].item() == pytest.approx(0.02 * 0.6 * 0.8)   # 2 m/s over a 10 m/s limit -> x0.8
    assert terms["terminal"].item() == -CARL_TERMINAL_PENALTY
    outside = reward_terms("carl", inputs(12.0, 10.0, 1.0, 1.0, outside=True))
    assert outside["progress"].item() == 0.0 and outside["terminal"].item() == 0.0


def test_speeding_factor():
    factor = speeding_factor(torch.tensor([5.0, 10.0, 15.0, 25.0]), torch.tensor([10.0] * 4))
    assert factor.tolist() == [1.0, 1.0, 0.5, 0.0]


def test_sparse_pays_the_driving_score_at_the_end_only():
    assert total_reward(reward_terms("sparse", inputs(80.0, 79.0, 0.5, 0.5))).item() == 0.0
    assert total_reward(reward_terms("sparse", inputs(80.0, 79.0, 0.5, 0.5, end=True))).item() == pytest.approx(0.4)


def test_unknown_mode_is_rejected():
    with pytest.raises(ValueError, match="reward='dense': expected one of ds, carl, sparse"):
        reward_terms("dense", inputs(1.0, 0.0, 1.0, 1.0))


def test_mode_specific_inputs_may_be_left_out():
    # 'ds' reads only RC and P: hard_infraction and episode_end may stay None (the env skips computing them)
    t = lambda v: torch.tensor([v], dtype=torch.float64)  # noqa: E731
    partial = RewardInputs(t(12.0), t(10.0), t(0.6), t(1.0), t(5.0), t(10.0), torch.tensor([False]))
    assert total_reward(reward_terms("ds", partial)).item() == pytest.approx(-0.028)
    with pytest.raises(ValueError, match="hard_infraction"):
        reward_terms("carl", partial)
    with pytest.raises(ValueError, match="episode_end"):
        reward_terms("sparse", partial)
