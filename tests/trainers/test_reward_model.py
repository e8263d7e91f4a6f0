"""Tests of trainers/reward_model.py: the reward formula on hand-worked sub-scores, the geometry the
model reads, padding invariance, the FIFO dataset, and learning a synthetic scoring rule on the CPU."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from envs.metrics.scorer import Metric
from trainers.reward_model import (
    SUBSCORES, RewardDataset, RewardModelConfig, RewardWorldModel, SceneFeatures, fit_reward_model,
    plan_geometry, plan_kinematics, predicted_score, ranking_accuracy, scene_features, subscore_errors,
)

K = len(SUBSCORES)


def subscores(**values) -> torch.Tensor:
    """(K,) sub-scores: 1 except the given ones."""
    return torch.tensor([float(values.get(name, 1.0)) for name in SUBSCORES], dtype=torch.float64)


def random_scenes(batch: int, gen: torch.Generator, agents: int = 4, lanes: int = 3, points: int = 5, route: int = 6):
    rand = lambda *shape: torch.rand(*shape, generator=gen)
    agent = torch.cat([40 * rand(batch, agents, 2) - 20, torch.ones(batch, agents, 1), torch.zeros(batch, agents, 1),
                       4 * rand(batch, agents, 2) - 2, torch.full((batch, agents, 2), 2.0), torch.zeros(batch, agents, 1)], -1)
    return SceneFeatures(
        ego_status=rand(batch, 4, 7), command=torch.eye(4)[torch.randint(4, (batch,), generator=gen)],
        agents=agent, agents_valid=rand(batch, agents) > 0.3,
        lanes=40 * rand(batch, lanes, points, 2) - 20, lanes_valid=rand(batch, lanes) > 0.2,
        route=torch.stack([2.0 * torch.arange(route), torch.zeros(route)], -1).expand(batch, -1, -1).clone(),
    )


def straight_plans(end_xy: torch.Tensor) -> torch.Tensor:
    """(..., 2) endpoints -> (..., 8, 3) poses evenly spaced on the segment from the origin."""
    fraction = torch.arange(1, 9, dtype=end_xy.dtype) / 8
    xy = end_xy[..., None, :] * fraction[:, None]
    heading = torch.atan2(end_xy[..., 1], end_xy[..., 0])[..., None].expand(xy.shape[:-1])
    return torch.cat([xy, heading[..., None]], -1)


# --- the reward formula ---------------------------------------------------------------------------


def test_predicted_score_pdms_hand_worked():
    # PDMS = NC * DAC * (5 EP + 5 TTC + 2 C) / 12
    scores = torch.stack([subscores(), subscores(ep=0.5), subscores(dac=0.0), subscores(nc=0.5, ttc=0.0, c=0.0, lk=0.0)])
    expected = torch.tensor([1.0, 9.5 / 12, 0.0, 0.5 * 5 / 12], dtype=torch.float64)
    torch.testing.assert_close(predicted_score(scores, Metric.PDMS), expected)


def test_predicted_score_epdms_hand_worked():
    # EPDMS = NC * DAC * DDC * TLC * (5 EP + 5 TTC + 2 LK + 2 HC + 2 EC) / 16
    scores = torch.stack([subscores(ep=0.5, lk=0.0), subscores(tlc=0.0), subscores(ddc=0.5, ec=0.0), subscores(c=0.0)])
    expected = torch.tensor([11.5 / 16, 0.0, 0.5 * 14 / 16, 1.0], dtype=torch.float64)
    torch.testing.assert_close(predicted_score(scores, "epdms"), expected)


def test_predicted_score_keeps_leading_shape_and_rejects_wrong_k():
    scores = subscores(ep=0.25).expand(2, 3, K)
    assert predicted_score(scores, Metric.PDMS).shape == (2, 3)
    with pytest.raises(ValueError, match="last axis"):
        predicted_score(torch.ones(2, 9), Metric.PDMS)


def test_subscore_errors_per_metric():
    predicted = torch.zeros(2, K)
    labels = torch.zeros(2, K)
    labels[0, 0], labels[1, 0], labels[1, 4] = 1.0, 0.5, 0.2
    errors = subscore_errors(predicted, labels)
    assert errors[0].item() == pytest.approx(0.75) and errors[4].item() == pytest.approx(0.1)
    assert errors[[1, 2, 3, 5, 6, 7, 8, 9]].abs().sum().item() == 0.0


def test_ranking_accuracy_counts_ordered_pairs_within_scenes():
    target = torch.tensor([[0.0, 0.5, 1.0], [0.2, 0.2, 0.2]])        # scene 2 has no differing pair
    predicted = torch.tensor([[0.1, 0.3, 0.2], [9.0, 0.0, 1.0]])
    # scene 1 pairs (0,1) right, (0,2) right, (1,2) wrong -> 2/3 (each counted in both orders)
    assert ranking_accuracy(predicted, target) == pytest.approx(2 / 3)
    assert ranking_accuracy(torch.zeros(1, 3), target[:1]) == 0.5      # a constant predictor
    assert math.isnan(ranking_accuracy(predicted[1:], target[1:]))
    with pytest.raises(ValueError, match="expected equal"):
        ranking_accuracy(torch.zeros(2, 3), torch.zeros(3, 2))


# --- features -------------------------------------------------------------------------------------


def test_scene_features_from_observation_and_missing_privileged():
    obs = {"ego_status": np.zeros((2, 4, 7), np.float32), "command": np.eye(4, dtype=np.float32)[[1, 2]],
           "privileged": {"agents": np.zeros((2, 3, 9), np.float32), "agents_valid": np.array([[1, 0, 0], [0, 0, 0]], np.int8),
                          "lanes": np.zeros((2, 2, 5, 2), np.float32), "lanes_valid": np.ones((2, 2), np.int8),
                          "route": np.zeros((2, 6, 2), np.float32)}}
    scene = scene_features(obs)
    assert scene.agents_valid.dtype == torch.bool and scene.agents_valid.tolist() == [[True, False, False], [False] * 3]
    assert scene.rows(np.array([1])).command.tolist() == [[0.0, 0.0, 1.0, 0.0]]
    with pytest.raises(ValueError, match="privileged"):
        scene_features({"ego_status": obs["ego_status"], "command": obs["command"]})


def test_plan_kinematics_constant_speed_straight():
    # 10 m/s straight ahead from an ego already at 10 m/s: velocity (10, 0), zero acceleration and yaw rate
    plans = straight_plans(torch.tensor([[[40.0, 0.0]]]))
    features = plan_kinematics(plans, torch.tensor([[10.0, 0.0]]))
    assert features.shape == (1, 1, 8, 9)
    torch.testing.assert_close(features[0, 0, :, 4], torch.full((8,), 1.0))    # vx / 10 m/s
    torch.testing.assert_close(features[0, 0, :, 6:], torch.zeros(8, 3))       # ax, ay, yaw rate
    torch.testing.assert_close(features[0, 0, -1, 0], torch.tensor(4.0))       # x_end / 10 m
    # starting from rest instead: the first step accelerates 10 m/s in 0.5 s = 20 m/s^2 -> 4 after / 5
    assert plan_kinematics(plans, torch.zeros(1, 2))[0, 0, 0, 6].item() == pytest.approx(4.0)


def test_plan_geometry_agent_moved_to_pose_time():
    # an agent 10 m ahead driving away at 5 m/s; the plan stands still at the origin facing +x
    scene = random_scenes(1, torch.Generator().manual_seed(0), agents=1)
    scene = SceneFeatures(**{**scene.state(), "agents": torch.tensor([[[10.0, 0.0, 1.0, 0.0, 5.0, 0.0, 4.0, 2.0, 0.0]]]),
                             "route": torch.tensor([[[0.0, 3.0], [2.0, 3.0], [4.0, 3.0]]])})
    plans = torch.zeros(1, 1, 8, 3)
    plans[..., 0] = 1.0  # every pose at x = 1 m
    agents, route = plan_geometry(scene, plans)
    # pose h (t = 0.5 (h+1) s): agent at 10 + 5 t, offset from the pose 9 + 2.5 (h+1) m ahead
    offset = 9.0 + 2.5 * torch.arange(1, 9)
    torch.testing.assert_close(agents[0, 0, :, 0, 0], offset / 10)
    torch.testing.assert_close(agents[0, 0, :, 0, 2], offset / 10)            # distance
    # nearest route point to (1, 0) is (0, 3) or (2, 3): distance sqrt(10)
    torch.testing.assert_close(route[0, 0, :, 1], torch.full((8,), math.sqrt(10.0) / 10))


def test_padding_agents_and_lanes_do_not_change_predictions():
    gen = torch.Generator().manual_seed(1)
    scene = random_scenes(3, gen)
    plans = straight_plans(torch.rand(3, 2, 2, generator=gen) * 20)
    model = RewardWorldModel(RewardModelConfig(width=16, hidden=32))
    before = model.predict(scene, plans)
    agents = torch.where(scene.agents_valid[..., None], scene.agents, torch.full_like(scene.agents, 123.0))
    lanes = torch.where(scene.lanes_valid[..., None, None], scene.lanes, torch.full_like(scene.lanes, -77.0))
    after = model.predict(SceneFeatures(**{**scene.state(), "agents": agents, "lanes": lanes}), plans)
    torch.testing.assert_close(before, after)
    assert before.shape == (3, 2, K) and bool(((before >= 0) & (before <= 1)).all())


# --- dataset --------------------------------------------------------------------------------------


def test_dataset_fifo_capacity_and_state_roundtrip():
    gen = torch.Generator().manual_seed(2)
    data = RewardDataset(capacity=5)
    for start in (0, 3):
        plans = torch.zeros(3, 2, 8, 3)
        plans[:, :, 0, 0] = torch.arange(start, start + 3, dtype=torch.float32)[:, None]
        data.add(random_scenes(3, gen), plans, torch.ones(3, 2, K))
    assert len(data) == 5 and data.total_added == 12
    assert data.plans[:, 0, 0, 0].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]  # scene 0 (the oldest) was dropped
    copy = RewardDataset(capacity=1)
    copy.load_state_dict(data.state_dict())
    assert len(copy) == 5 and copy.capacity == 5 and torch.equal(copy.scenes.agents, data.scenes.agents)
    with pytest.raises(ValueError, match="G=3"):
        data.add(random_scenes(1, gen), torch.zeros(1, 3, 8, 3), torch.ones(1, 3, K))
    with pytest.raises(ValueError, match="within"):
        data.add(random_scenes(1, gen), torch.zeros(1, 2, 8, 3), torch.full((1, 2, K), 1.5))


# --- learning a synthetic rule --------------------------------------------------------------------


def synthetic_batch(num_scenes: int, group: int, gen: torch.Generator):
    """Rule: DAC = 1 iff |y_end| < 2 m, EP = x_end / 40, NC = 0 iff x_end > 35 m, all else 1."""
    end = torch.stack([40 * torch.rand(num_scenes, group, generator=gen),
                       8 * torch.rand(num_scenes, group, generator=gen) - 4], -1)
    labels = torch.ones(num_scenes, group, K)
    labels[..., SUBSCORES.index("dac")] = (end[..., 1].abs() < 2).float()
    labels[..., SUBSCORES.index("ep")] = end[..., 0] / 40
    labels[..., SUBSCORES.index("nc")] = (end[..., 0] <= 35).float()
    return random_scenes(num_scenes, gen), straight_plans(end), labels


def test_reward_model_learns_synthetic_rule():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(3)
    data = RewardDataset(capacity=10_000)
    data.add(*synthetic_batch(512, 4, gen))
    model = RewardWorldModel(RewardModelConfig(width=32, hidden=128))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    scenes, plans, labels = synthetic_batch(256, 4, gen)
    with torch.no_grad():
        initial = subscore_errors(model.predict(scenes, plans), labels)
    fit_reward_model(model, optimizer, data, updates=300, batch_size=64, gen=gen)
    with torch.no_grad():
        predicted = model.predict(scenes, plans)
    dac, ep, nc = (SUBSCORES.index(name) for name in ("dac", "ep", "nc"))
    accuracy = ((predicted[..., dac] > 0.5).float() == labels[..., dac]).float().mean().item()
    nc_accuracy = ((predicted[..., nc] > 0.5).float() == labels[..., nc]).float().mean().item()
    errors = subscore_errors(predicted, labels)
    print(f"dac accuracy {accuracy:.3f}, nc accuracy {nc_accuracy:.3f}, EP MAE {errors[ep]:.4f}, initial {initial.tolist()}")
    assert accuracy > 0.95 and nc_accuracy > 0.95
    assert errors[ep].item() < 0.03 < initial[ep].item()
    pdms_error = (predicted_score(predicted, Metric.PDMS) - predicted_score(labels, Metric.PDMS)).abs().mean().item()
    assert pdms_error < 0.1
