"""Off-policy group members: plan perturbations, negatives, recovery starts and their PDM-Closed labels,
plans as re-scorable Samples for each head, slot selection and the imitation targets."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from agents.base import Samples
from agents.vla.codebook import decode_tokens, encode_plans, grid_codebook
from envs.metrics.scorer import ScoringConfig, prepare_scenes, score_poses
from envs.navsim_obs import ObservationConfig, build_observations
from scenarios import build_scene
from trainers.grpo_samples import (
    ImitationTargets, NegativeConfig, RecoveryConfig, best_slots, cat_samples, offpolicy_samples, perturb_plans,
    perturbed_negatives, recovery_labels, recovery_scenes, replace_rows, select_samples,
)


def straight(speed: float = 4.0, batch: int = 1, group: int = 1) -> torch.Tensor:
    """(B, G, 8, 3) plans at `speed` m/s straight ahead: x = speed·0.5·h."""
    h = torch.arange(1, 9, dtype=torch.float64)
    plan = torch.stack([0.5 * speed * h, 0 * h, 0 * h], -1)
    return plan.expand(batch, group, 8, 3).clone()


def test_perturb_plans_hand_worked():
    out = perturb_plans(straight(4.0), torch.tensor([[1.0]]), torch.tensor([[1.5]]))[0, 0]
    h = torch.arange(1, 9, dtype=torch.float64)
    # x stretched 1.5x (3 m per pose); y = 1 m·(h/8)²; heading = atan(2·1·(h/8)/8 / 3) = atan(h / 96)
    assert out[:, 0].tolist() == pytest.approx((3 * h).tolist())
    assert out[:, 1].tolist() == pytest.approx(((h / 8) ** 2).tolist())
    assert out[:, 2].tolist() == pytest.approx(torch.atan(h / 96).tolist())
    with pytest.raises(ValueError, match="lateral.shape"):
        perturb_plans(straight(), torch.zeros(2, 1), torch.ones(1, 1))


def test_perturbed_negatives_are_seeded_and_scale_zero_is_identity():
    plans = straight(batch=2, group=3).float()
    assert torch.equal(perturbed_negatives(plans, torch.Generator().manual_seed(0), 0.0), plans)
    a = perturbed_negatives(plans, torch.Generator().manual_seed(1), 2.0)
    b = perturbed_negatives(plans, torch.Generator().manual_seed(1), 2.0)
    assert torch.equal(a, b) and a.shape == plans.shape and not torch.equal(a, plans)
    with pytest.raises(ValueError, match="scale=-1"):
        perturbed_negatives(plans, None, -1.0)
    with pytest.raises(ValueError, match="negatives.per_group=-1"):
        NegativeConfig(per_group=-1)
    with pytest.raises(ValueError, match="recovery.rate=2"):
        RecoveryConfig(rate=2)


@pytest.fixture(scope="module")
def scene():
    return build_scene("following", None, 0)


def test_recovery_scenes_move_the_history_rigidly(scene):
    x0, y0, yaw0 = scene.ego_pose
    shifted, turned = recovery_scenes([scene, scene], [1.0, 0.0], [0.0, math.pi / 2])
    # 1 m along the current pose's left normal (-sin yaw0, cos yaw0), for every history pose
    offset = shifted.history.pose[:, :2] - scene.history.pose[:, :2]
    assert offset == pytest.approx(np.tile([-math.sin(yaw0), math.cos(yaw0)], (len(offset), 1)))
    # a quarter turn about the current rear axle: relative positions rotate by +90°, headings add 90°
    rel = scene.history.pose[:, :2] - (x0, y0)
    assert turned.history.pose[:, :2] - (x0, y0) == pytest.approx(np.stack([-rel[:, 1], rel[:, 0]], -1))
    assert np.cos(turned.history.pose[:, 2] - scene.history.pose[:, 2]) == pytest.approx(0.0, abs=1e-12)
    assert shifted.token != scene.token != turned.token and shifted.human_trajectory is None
    assert shifted.reference_trajectory is None and np.array_equal(shifted.history.velocity, scene.history.velocity)
    # rigid: what the ego sees of its own motion (ego frame) does not change
    config = ObservationConfig(cameras=())
    assert build_observations([turned], config)["ego_status"] == pytest.approx(build_observations([scene], config)["ego_status"], abs=1e-5)
    with pytest.raises(ValueError, match="len\\(lateral\\)=1"):
        recovery_scenes([scene, scene], [1.0], [0.0, 0.0])


def test_recovery_labels_are_pdm_closed_plans_that_score_well(scene):
    recovery, = recovery_scenes([scene], [0.5], [0.05])
    plans, cache = recovery_labels([recovery])
    assert plans.shape == (1, 8, 3) and set(cache) == {recovery.token} and cache[recovery.token].shape == (41, 3)
    prep = prepare_scenes([recovery], ScoringConfig(), reference_cache=cache)
    scored = score_poses(prep, torch.as_tensor(plans, dtype=torch.float64)[:, None], 0.5)
    # PDM-Closed is the progress reference of its own scene: its resampled plan keeps NC, DAC and most EP
    assert float(scored.scored.nc[0, 0]) == 1.0 and float(scored.scored.dac[0, 0]) == 1.0 and float(scored.pdms[0, 0]) > 0.5


def test_offpolicy_samples_for_each_head():
    plans = straight(6.0, 2, 3).float()
    mlp = offpolicy_samples(object(), plans)
    assert torch.equal(mlp.plans, plans) and mlp.tokens is None and mlp.logp.shape == (2, 3)

    codebook = grid_codebook(64)
    token_agent = SimpleNamespace(config=SimpleNamespace(head="token"), codebook=codebook, device="cpu")
    tokens = offpolicy_samples(token_agent, plans)
    expected = encode_plans(codebook, plans.flatten(0, 1)).view(2, 3, 8)
    assert torch.equal(tokens.tokens, expected)
    assert torch.allclose(tokens.plans, decode_tokens(codebook, expected).float())      # what gets scored is the decoding

    scale = torch.tensor([15.0, 3.0, 0.3])
    flow_agent = SimpleNamespace(config=SimpleNamespace(head="flow", flow_steps=4, start_time=1.0), action_scale=scale)
    flow = offpolicy_samples(flow_agent, plans, torch.Generator().manual_seed(0))
    chain, actions = flow.chain, plans / scale
    assert chain.shape == (2, 3, 5, 8, 3) and flow.step_logp.shape == (2, 3, 4)
    assert torch.equal(chain[:, :, -1], actions) and torch.allclose(flow.plans, plans)
    # the bridge x_t = (1 - t)·a + t·ε on the grid t = 1, 0.75, 0.5, 0.25, 0: midpoints average the ends
    noise = chain[:, :, 0]
    assert torch.allclose(chain[:, :, 2], 0.5 * actions + 0.5 * noise, atol=1e-6)
    assert torch.allclose(chain[:, :, 1], 0.25 * actions + 0.75 * noise, atol=1e-6)


def test_best_slots_hand_worked():
    plans = torch.arange(3.0).view(1, 3, 1, 1).expand(1, 3, 8, 3)
    candidates = Samples(plans=plans, logp=torch.ones(1, 3))
    rewards = torch.tensor([[0.2, 0.9, 0.5]], dtype=torch.float64)
    eligible = torch.tensor([[True, False, True]])
    slots, slot_rewards, valid = best_slots(candidates, rewards, eligible, 3)
    # eligible by reward: candidate 2 (0.5), then 0 (0.2); the third slot holds the ineligible 1, masked
    assert slots.plans[0, :, 0, 0].tolist() == [2.0, 0.0, 1.0] and slots.logp.tolist() == [[0.0, 0.0, 0.0]]
    assert slot_rewards.tolist() == [[0.5, 0.2, 0.0]] and valid.tolist() == [[True, True, False]]
    with pytest.raises(ValueError, match="keep=4"):
        best_slots(candidates, rewards, eligible, 4)


def test_sample_plumbing():
    a = Samples(plans=torch.zeros(2, 2, 8, 3), logp=torch.zeros(2, 2), tokens=torch.zeros(2, 2, 8, dtype=torch.long))
    b = Samples(plans=torch.ones(2, 1, 8, 3), logp=torch.ones(2, 1), tokens=torch.ones(2, 1, 8, dtype=torch.long))
    both = cat_samples([a, b])
    assert both.plans.shape == (2, 3, 8, 3) and both.tokens[:, 2].eq(1).all()
    picked = select_samples(both, torch.tensor([1, 0]), torch.tensor([[2, 0], [2, 2]]))
    assert picked.logp.tolist() == [[1.0, 0.0], [1.0, 1.0]]
    swapped = replace_rows(a, torch.tensor([1]), Samples(plans=torch.ones(1, 2, 8, 3), logp=torch.ones(1, 2),
                                                         tokens=torch.ones(1, 2, 8, dtype=torch.long)))
    assert swapped.logp.tolist() == [[0.0, 0.0], [1.0, 1.0]] and a.logp.sum() == 0              # a copy
    with pytest.raises(ValueError, match="samples.tokens"):
        cat_samples([a, Samples(plans=torch.ones(2, 1, 8, 3), logp=torch.ones(2, 1))])


def test_imitation_targets_from_the_human(scene):
    targets = ImitationTargets("human")
    plans = targets([scene, scene])
    assert plans.shape == (2, 8, 3) and plans[0] == pytest.approx(np.asarray(scene.human_trajectory.poses, np.float32))
    from dataclasses import replace

    with pytest.raises(ValueError, match="no human_trajectory"):
        targets([replace(scene, token="other", human_trajectory=None)])
    with pytest.raises(ValueError, match="teacher='expert'"):
        ImitationTargets("expert")
