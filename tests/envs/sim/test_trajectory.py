"""Tests for envs/sim/trajectory.py: agent plan -> 10 Hz global reference poses (NAVSIM pdm_score.py)."""

import math

import pytest
import torch

from envs.sim.trajectory import plan_to_reference, validate_plan_poses

F64 = torch.float64


def straight_plan(step_m: float, count: int) -> torch.Tensor:
    """Ego-frame poses (count, 3) every `step_m` metres along +x."""
    x = step_m * torch.arange(1, count + 1, dtype=F64)
    return torch.stack([x, torch.zeros_like(x), torch.zeros_like(x)], dim=-1)


def test_eight_poses_at_half_second_give_41_global_samples():
    origin = torch.tensor([100.0, 50.0, math.pi / 2], dtype=F64)  # facing global +y
    reference = plan_to_reference(straight_plan(5.0, 8), 0.5, origin)  # 10 m/s
    assert reference.shape == (41, 3) and reference.dtype == F64
    assert reference[0].tolist() == origin.tolist()  # the true initial pose is the first knot
    # t = 0.3 s: 3 m ahead of the rear axle -> (100, 53) globally
    at_03 = torch.tensor([100.0, 53.0, math.pi / 2], dtype=F64)
    torch.testing.assert_close(reference[3], at_03, rtol=0, atol=1e-12)
    at_40 = torch.tensor([100.0, 90.0, math.pi / 2], dtype=F64)
    torch.testing.assert_close(reference[40], at_40, rtol=0, atol=1e-12)
    spacing = (reference[1:, :2] - reference[:-1, :2]).norm(dim=-1)
    torch.testing.assert_close(spacing, torch.full((40,), 1.0, dtype=F64), rtol=0, atol=1e-12)


def test_short_plan_holds_its_last_pose():
    local = torch.tensor([[1.0, 0.0, 0.1], [3.0, 0.2, 0.2], [6.0, 0.5, 0.3], [10.0, 1.0, 0.4]], dtype=F64)
    reference = plan_to_reference(local, 0.5, torch.zeros(3, dtype=F64))  # 2 s plan
    # t = 0.3 s is 60 % of the way from the origin to the first pose
    torch.testing.assert_close(reference[3], torch.tensor([0.6, 0.0, 0.06], dtype=F64), rtol=0, atol=1e-14)
    # t = 1.2 s is 40 % of the way from pose 2 to pose 3
    torch.testing.assert_close(reference[12], torch.tensor([4.2, 0.32, 0.24], dtype=F64), rtol=0, atol=1e-14)
    # from t = 2.0 s on, the clipped sample times all sit on the last pose
    torch.testing.assert_close(reference[20:], local[-1].expand(21, 3), rtol=0, atol=1e-14)
    assert torch.equal(reference[21:], reference[20:21].expand(20, 3))


def test_heading_interpolates_along_the_short_arc_across_pi():
    local = straight_plan(5.0, 8)
    local[:, 2] = 0.1 * torch.arange(1, 9, dtype=F64)
    reference = plan_to_reference(local, 0.5, torch.tensor([0.0, 0.0, 3.1], dtype=F64))
    heading = reference[:, 2]
    # unwrapped knots 3.1, 3.2, 3.3, ...: t = 0.2 s -> 3.14 (still < pi), t = 0.3 s -> 3.16 - 2 pi
    assert heading[2].item() == pytest.approx(3.14, abs=1e-12)
    assert heading[3].item() == pytest.approx(3.16 - 2 * math.pi, abs=1e-12)
    assert heading[40].item() == pytest.approx(3.9 - 2 * math.pi, abs=1e-12)
    assert (heading.abs() > 2.3).all()  # never swings the long way through 0
    assert ((heading >= -math.pi) & (heading < math.pi)).all()  # nuPlan principal_value range


def test_interval_of_0_3_s_and_its_microsecond_truncation():
    local = torch.zeros(10, 3, dtype=F64)
    local[:, 0] = torch.arange(1, 11, dtype=F64) ** 2
    reference = plan_to_reference(local, 0.3, torch.zeros(3, dtype=F64))  # 10 poses, 3 s
    assert reference.shape == (41, 3)
    assert reference[3, 0].item() == pytest.approx(1.0, abs=1e-12)  # pose 1 at 0.3 s
    assert reference[6, 0].item() == pytest.approx(4.0, abs=1e-12)  # pose 2 at 0.6 s
    # pose 3's time is int((2 * 0.3 + 0.3) * 1e6) = 899999 us and pose 4's is 1200000 us, so the
    # sample at 900000 us lies 1 us into the segment 3 -> 4: 9 + (16 - 9) / 300001
    assert reference[9, 0].item() == pytest.approx(9.0 + 7.0 / 300001, abs=1e-12)
    # pose 10 is stamped 2999999 us: t = 3.0 s and later clip to it
    assert torch.equal(reference[31:, 0], torch.full((10,), reference[30, 0].item(), dtype=F64))
    assert reference[30, 0].item() == pytest.approx(100.0, abs=1e-12)


def test_absolute_start_time_reproduces_navsim_time_jitter():
    t0 = 1617292800100000  # at this epoch, t0 + 0.1 s in float seconds truncates to t0 + 99999 us
    local = straight_plan(5.0, 8)
    jittered = plan_to_reference(local, 0.5, torch.zeros(3, dtype=F64), start_time_us=t0)
    ideal = plan_to_reference(local, 0.5, torch.zeros(3, dtype=F64))
    assert jittered[1, 0].item() == pytest.approx(5.0 * 99999 / 500000, abs=1e-13)
    assert ideal[1, 0].item() == pytest.approx(1.0, abs=1e-13)
    per_scene = plan_to_reference(
        local.expand(2, 8, 3), 0.5, torch.zeros(2, 3, dtype=F64), start_time_us=torch.tensor([0, t0])
    )
    assert torch.equal(per_scene[0], ideal) and torch.equal(per_scene[1], jittered)


def test_batch_dims_broadcast():
    plans = straight_plan(5.0, 8).expand(2, 3, 8, 3)
    origins = torch.tensor([[0.0, 0.0, 0.0], [10.0, 0.0, math.pi]], dtype=F64)[:, None, :]  # (2, 1, 3)
    reference = plan_to_reference(plans, 0.5, origins)
    assert reference.shape == (2, 3, 41, 3)
    assert reference[1, 2, 40, 0].item() == pytest.approx(10.0 - 40.0, abs=1e-12)


def test_horizon_and_dt_set_the_sample_count():
    reference = plan_to_reference(straight_plan(5.0, 10), 0.5, torch.zeros(3, dtype=F64), horizon=5.0, dt=0.5)
    assert reference.shape == (11, 3)
    assert reference[:, 0].tolist() == pytest.approx([5.0 * i for i in range(11)])


@pytest.mark.parametrize("interval", [0.25, 0.0, -0.5, float("nan"), 0.05])
def test_rejects_interval_that_is_not_a_multiple_of_0_1(interval):
    with pytest.raises(ValueError, match="interval="):
        plan_to_reference(straight_plan(5.0, 8), interval, torch.zeros(3, dtype=F64))


@pytest.mark.parametrize(
    "poses, message",
    [
        (torch.zeros(8, 2, dtype=F64), r"trajectory.poses.shape=\(8, 2\)"),
        (torch.zeros(3, dtype=F64), r"trajectory.poses.shape=\(3,\)"),
        (torch.zeros(0, 3, dtype=F64), r"H >= 1"),
        (torch.zeros(8, 3, dtype=torch.int64), r"dtype"),
        (
            torch.zeros(8, 3, dtype=F64).index_fill(0, torch.tensor([5]), math.nan),
            r"trajectory.poses\[\(5, 0\)\]=nan",
        ),
        ([[1.0, 0.0, 0.0]], r"trajectory.poses=list"),
    ],
)
def test_rejects_bad_poses(poses, message):
    with pytest.raises(ValueError, match=message):
        validate_plan_poses(poses)
    with pytest.raises(ValueError, match=message):
        plan_to_reference(poses, 0.5, torch.zeros(3, dtype=F64))


def test_validate_uses_the_given_field_name():
    with pytest.raises(ValueError, match=r"plan\[\(2, 0, 2\)\]=inf"):
        poses = torch.zeros(3, 4, 3, dtype=F64)
        poses[2, 0, 2] = math.inf
        validate_plan_poses(poses, name="plan")
    validate_plan_poses(torch.zeros(1, 3, dtype=F64))  # a single pose is a valid plan


def test_rejects_bad_origin_and_horizon():
    with pytest.raises(ValueError, match="origin"):
        plan_to_reference(straight_plan(5.0, 8), 0.5, torch.zeros(2, dtype=F64))
    with pytest.raises(ValueError, match="origin"):
        plan_to_reference(straight_plan(5.0, 8), 0.5, torch.tensor([0.0, math.nan, 0.0], dtype=F64))
    with pytest.raises(ValueError, match="horizon"):
        plan_to_reference(straight_plan(5.0, 8), 0.5, torch.zeros(3, dtype=F64), horizon=4.05)
    with pytest.raises(ValueError, match="start_time_us"):
        plan_to_reference(straight_plan(5.0, 8), 0.5, torch.zeros(3, dtype=F64), start_time_us=1.5)
