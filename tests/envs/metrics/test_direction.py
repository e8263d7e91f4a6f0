"""direction.py: DDC thresholds, the 11-sample window, and the v2 intersection exclusion."""

import numpy as np
import pytest
import torch

from envs.metrics.direction import driving_direction_compliance
from envs.metrics.ego_areas import EgoAreas, ego_areas, ego_footprint
from envs.sim.vehicle import PACIFICA
from tests.envs.metrics.conftest import OTHER_LANE_Y, batch, build_map, straight_poses, two_lane_road


def ddc(spec, poses, version):
    pose = batch([poses])
    _, center = ego_footprint(pose, PACIFICA)
    return driving_direction_compliance(center, ego_areas(pose, PACIFICA, build_map([spec])), version)


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_driving_in_the_off_route_lane(version):
    # 7 m/s: 7 m per 1 s window -> 0, first reaching 6 m at step 9 (9 x 0.7 m)
    # 3 m/s: 3 m -> 0.5, first reaching 2 m at step 7 (7 x 0.3 m); 1 m/s: 1 m -> 1
    poses = [straight_poses(0.0, OTHER_LANE_Y, speed)[0] for speed in (7.0, 3.0, 1.0)]
    result = ddc(two_lane_road(), poses, version)
    assert result.value.tolist() == [[0.0, 0.5, 1.0]]
    assert result.step.tolist() == [[9, 7, -1]]


def test_driving_fast_in_the_route_lane_complies():
    result = ddc(two_lane_road(), [straight_poses(0.0, -1.75, 10.0)[0]], "v1")
    assert result.value.tolist() == [[1.0]]


def test_v2_ignores_off_route_driving_inside_an_intersection():
    pose, _ = straight_poses(0.0, OTHER_LANE_Y, 7.0)  # centre from x = 1.46 to 29.46
    spec = two_lane_road(intersection=(-20.0, 60.0))
    assert ddc(spec, [pose], "v1").value.tolist() == [[0.0]]
    assert ddc(spec, [pose], "v2").value.tolist() == [[1.0]]


def hand_areas(oncoming):
    """EgoAreas (1, 1, T) with only the oncoming flag set."""
    none = torch.zeros_like(oncoming)
    return EgoAreas(non_drivable=none, multiple_lanes=none, oncoming=oncoming, center_in_intersection=none,
                    rear_axle_in_intersection=none)


def line_centers(step_length, steps=41):
    x = step_length * torch.arange(steps, dtype=torch.float64)
    return torch.stack([x, torch.zeros_like(x)], -1)[None, None]


def test_window_holds_eleven_samples():
    # 11 off-route displacements of 0.19 m = 2.09 m fit one window of samples [t-10, t] -> 0.5
    # (a 10-sample window would hold only 1.9 m)
    oncoming = torch.zeros(1, 1, 41, dtype=torch.bool)
    oncoming[..., 1:12] = True
    result = driving_direction_compliance(line_centers(0.19), hand_areas(oncoming), "v1")
    assert result.value.tolist() == [[0.5]]
    assert result.step.tolist() == [[11]]
    # 12 displacements of 0.18 m: any 11 consecutive hold 1.98 m < 2 -> 1 (a 12-sample window: 2.16 m)
    oncoming[..., 12] = True
    result = driving_direction_compliance(line_centers(0.18), hand_areas(oncoming), "v1")
    assert result.value.tolist() == [[1.0]]


def test_step_zero_has_no_displacement():
    # oncoming only at step 0: d_0 = 0 whatever the position
    oncoming = torch.zeros(1, 1, 41, dtype=torch.bool)
    oncoming[..., 0] = True
    centers = line_centers(0.0)
    centers[..., 0, 0] = -100.0
    assert driving_direction_compliance(centers, hand_areas(oncoming), "v1").value.tolist() == [[1.0]]


def test_batched_equals_single():
    specs = [two_lane_road(), two_lane_road(intersection=(-20.0, 10.0))]
    poses = [[straight_poses(0.0, OTHER_LANE_Y, v)[0] for v in (7.0, 3.0)] for _ in specs]
    pose = batch(poses)
    _, center = ego_footprint(pose, PACIFICA)
    batched = driving_direction_compliance(center, ego_areas(pose, PACIFICA, build_map(specs)), "v2")
    for b in range(2):
        alone = ddc(specs[b], poses[b], "v2")
        assert torch.equal(batched.value[b], alone.value[0]) and torch.equal(batched.step[b], alone.step[0])
    assert batched.value.tolist() == [[0.0, 0.5], [0.0, 0.5]]


def test_rejects_unknown_version_and_mismatched_shapes():
    oncoming = torch.zeros(1, 1, 41, dtype=torch.bool)
    with pytest.raises(ValueError, match="version"):
        driving_direction_compliance(line_centers(0.1), hand_areas(oncoming), "v3")
    with pytest.raises(ValueError, match="center.shape"):
        driving_direction_compliance(line_centers(0.1, steps=40), hand_areas(oncoming), "v1")


def navsim_ddc(center, oncoming):
    """NAVSIM's DDC loop in numpy for one proposal: centre (T, 2), oncoming (T,) -> (value, worst window)."""
    progress = np.zeros(len(center))
    progress[1:] = np.linalg.norm(center[1:] - center[:-1], axis=-1)
    progress[~oncoming] = 0.0
    progress = progress[None]  # NAVSIM slices a (proposals, T) array
    windows = [progress[:, max(0, t - 10) : t + 1].sum(axis=-1)[0] for t in range(progress.shape[-1])]
    worst = max(windows)
    return (1.0 if worst < 2.0 else 0.5 if worst < 6.0 else 0.0), worst


def test_window_sums_add_in_numpy_order_so_threshold_ties_match():
    # bursts of equal steps whose decimal sums land on 2 m or 6 m up to the last bit; the centre
    # shuttles between x = 0 and x = step so that every displacement is exactly `step`
    cases = []
    for step in (0.2, 0.6, 0.1 + 0.1, 0.3 * 2, 0.2 / 3 * 3, 0.6000000000000001, 0.19999999999999998):
        for burst in range(8, 14):
            for start in (0, 3, 20):
                oncoming = np.zeros(41, dtype=bool)
                oncoming[start : start + burst] = True
                x = np.where(np.arange(41) % 2 == 1, step, 0.0)
                cases.append((np.stack([x, np.zeros(41)], -1), oncoming))
    centers = torch.as_tensor(np.stack([c for c, _ in cases]))[None]
    flags = torch.as_tensor(np.stack([o for _, o in cases]))[None]
    result = driving_direction_compliance(centers, hand_areas(flags), "v1")
    expected = [navsim_ddc(c, o)[0] for c, o in cases]
    assert result.value[0].tolist() == expected
    # the cases do sit on the thresholds: a plain left-to-right sum would flip some of them
    flipped = 0
    for (c, o), value in zip(cases, expected):
        d = np.zeros(41)
        d[1:] = np.linalg.norm(c[1:] - c[:-1], axis=-1)
        d[~o] = 0.0
        naive = max(sum(d[max(0, t - 10) : t + 1].tolist()) for t in range(41))
        flipped += (1.0 if naive < 2.0 else 0.5 if naive < 6.0 else 0.0) != value
    assert flipped > 0
