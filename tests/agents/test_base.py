"""agents.base: Samples checks, observation helpers, plan resampling, atomic checkpoints."""

import numpy as np
import pytest
import torch

from agents.base import (
    Samples, check_scenes, load_checkpoint, obs_batch_size, obs_tensor, resample_plan, save_checkpoint,
)
from envs.sim.scene import Plan


def test_samples_checks_shapes():
    Samples(plans=torch.zeros(2, 3, 8, 3), logp=torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"plans.shape=\(2, 3, 7, 3\)"):
        Samples(plans=torch.zeros(2, 3, 7, 3), logp=torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"logp.shape=\(2,\)"):
        Samples(plans=torch.zeros(2, 3, 8, 3), logp=torch.zeros(2))
    assert Samples(plans=torch.zeros(1, 4, 8, 3), logp=torch.zeros(1, 4)).group_size == 4


def test_obs_helpers_name_the_problem():
    obs = {"ego_status": np.zeros((3, 4, 7), np.float32)}
    assert obs_batch_size(obs) == 3
    with pytest.raises(ValueError, match="add the batch axis"):
        obs_batch_size({"ego_status": np.zeros((4, 7))})
    with pytest.raises(ValueError, match="missing 'command'"):
        obs_tensor(obs, "command")
    assert obs_tensor(obs, "ego_status").dtype == torch.float32


def test_check_scenes():
    with pytest.raises(ValueError, match="privileged"):
        check_scenes(None, {}, "human")
    with pytest.raises(ValueError, match=r"len\(scenes\)=1"):
        check_scenes(["a"], {"ego_status": np.zeros((2, 4, 7))}, "human")
    assert check_scenes(("a", "b"), {}, "human") == ["a", "b"]


def test_resample_plan_from_10hz_picks_every_fifth_pose():
    poses = np.stack([np.arange(1, 51) * 0.1 * 4.0, np.zeros(50), np.zeros(50)], -1)   # 4 m/s at 0.1 s
    out = resample_plan(Plan(0.1, poses))
    np.testing.assert_allclose(out[:, 0], 2.0 * np.arange(1, 9), atol=1e-6)          # 0.5 s x 4 m/s = 2 m per pose
    assert out.dtype == np.float32 and out.shape == (8, 3)


def test_resample_plan_interpolates_from_the_origin_and_unwraps_heading():
    # 1 s plan: pose at t = 1 s is (4, 2, 3.0); t = 0.5 s is halfway from the origin
    poses = np.array([[4.0, 2.0, 3.0], [8.0, 4.0, -3.0], [12, 6, -3.0], [16, 8, -3.0]])
    out = resample_plan(Plan(1.0, poses), interval=0.5, num_poses=4)
    np.testing.assert_allclose(out[0], [2.0, 1.0, 1.5], atol=1e-6)
    # heading 3.0 -> -3.0 is +0.283 rad through pi, so the midpoint is pi (wrapped to -pi or pi)
    assert abs(abs(out[2, 2]) - np.pi) < 1e-5
    with pytest.raises(ValueError, match="4.00 s are needed"):
        resample_plan(Plan(0.5, poses))


def test_checkpoint_round_trip_and_kind(tmp_path):
    path = tmp_path / "sub" / "a.pt"
    save_checkpoint({"kind": "x", "value": torch.arange(3)}, path)
    assert list(path.parent.iterdir()) == [path]          # no temporary file left behind
    assert torch.equal(load_checkpoint(path, "x")["value"], torch.arange(3))
    with pytest.raises(ValueError, match="kind 'x', expected 'y'"):
        load_checkpoint(path, "y")
    with pytest.raises(ValueError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing.pt", "x")
