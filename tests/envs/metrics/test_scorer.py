"""End-to-end NAVSIM scoring on hand-built scenes: plan -> LQR re-simulation -> sub-scores -> totals.

Each case is worked by hand on the straight road of tests/conftest.py (lanes 3.5 m wide, the ego's
rear axle at x = 10 at 10 m/s unless stated). Where the reference is given explicitly it is the
scene's `reference_trajectory`, so PDM-Closed does not enter the numbers.
"""

from __future__ import annotations

import copy
import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from tests.scene_builders import add_box, constant_speed_plan, straight_road_dict
from envs.metrics.context import SceneCache
from envs.metrics.scorer import (
    SCORE_KEYS,
    PreparedScenes,
    ScoringConfig,
    prepare_scenes,
    score_plans,
    score_poses,
    score_rows,
)
from envs.scene_file import load_scene, plan_from_dict, save_scene, scene_from_dict


def score(scene_dict, plan, metric="pdms", **config):
    scene = scene_from_dict(scene_dict)
    return score_plans([scene], [plan_from_dict(plan)], ScoringConfig(metric=metric, **config))[0]


def with_reference(scene_dict, speed=10.0):
    scene_dict["reference_trajectory"] = constant_speed_plan(speed)
    return scene_dict


def test_clean_drive_scores_one_on_every_key():
    result = score(with_reference(straight_road_dict()), constant_speed_plan(10.0))
    assert set(result) == set(SCORE_KEYS)
    assert all(value == 1.0 for value in result.values()), result


def test_rear_ending_a_stopped_car_is_nc_zero():
    scene = with_reference(add_box(straight_road_dict(), "S", "vehicle", 35.0, 0.0))
    result = score(scene, constant_speed_plan(10.0))
    assert result["nc"] == 0.0 and result["pdms"] == 0.0


def test_being_rear_ended_is_not_at_fault_but_fails_ttc():
    # A car 3.4 m behind closing at 5 m/s: the contact is ACTIVE_REAR (not at fault). TTC still fails:
    # its 0.9 s-ahead centroid is ahead of the ego rear axle at t = 0.1 s (navsim.md §8).
    scene = with_reference(add_box(straight_road_dict(), "B", "vehicle", 2.0, 0.0, speed=15.0))
    result = score(scene, constant_speed_plan(10.0))
    assert result["nc"] == 1.0
    assert result["ttc"] == 0.0
    assert result["pdms"] == pytest.approx((5 * 0 + 5 * 1 + 2 * 1) / 12)


def test_hitting_a_static_cone_is_nc_half():
    scene = add_box(straight_road_dict(), "K", "traffic_cone", 40.0, 0.0, length=0.5, width=0.5)
    # The reference changes to the left lane (aiming at y = 3, overshooting to ~3.5) around the cone.
    scene["reference_trajectory"] = {"interval": 0.5, "poses": [[5.0 * k, min(3.0, float(k)), 0.0] for k in range(1, 9)]}
    result = score(scene, constant_speed_plan(10.0))
    assert result["nc"] == 0.5
    # v1: EP is masked by NC*DAC before normalising, so the 0.5 carries into EP (navsim.md §8);
    # both plans progress ~40 m along the centerline.
    assert result["ep"] == pytest.approx(0.5, abs=0.01)
    v2 = score(scene, constant_speed_plan(10.0), "epdms", human_filter=False)
    assert v2["nc"] == 0.5 and v2["ep"] == pytest.approx(1.0, abs=0.02)  # v2 does not mask EP


def test_corner_off_the_road_is_dac_zero():
    result = score(with_reference(straight_road_dict()), constant_speed_plan(10.0, y=-3.0))
    assert result["dac"] == 0.0 and result["pdms"] == 0.0


def test_corner_only_in_a_roadblock_connector_is_dac_zero():
    bare = with_reference(straight_road_dict(with_intersection=True, ego_x=100.0))
    bare["map"]["intersections"] = []
    assert score(bare, constant_speed_plan(10.0))["dac"] == 0.0
    covered = with_reference(straight_road_dict(with_intersection=True, ego_x=100.0))
    assert score(covered, constant_speed_plan(10.0))["dac"] == 1.0


def test_off_route_lane_for_more_than_6m_in_1s_is_ddc_zero():
    scene = with_reference(straight_road_dict(with_oncoming=True))
    v1 = score(scene, constant_speed_plan(10.0, y=-3.5))
    assert v1["ddc"] == 0.0 and v1["dac"] == 1.0
    assert v1["pdms"] > 0.99  # DDC has weight 0 in v1.1
    v2 = score(scene, constant_speed_plan(10.0, y=-3.5), "epdms", human_filter=False)
    assert v2["ddc"] == 0.0 and v2["epdms"] == 0.0  # multiplicative in v2


def test_red_light_connector_entry_is_tlc_zero_and_human_filter_resets_it():
    scene = with_reference(straight_road_dict(with_intersection=True, ego_x=100.0))
    red = [{"t": round(0.1 * k, 1), "status": "red"} for k in range(41)]
    scene["traffic_lights"] = [{"lane_connector_id": "Ca", "states": red}]
    raw = score(scene, constant_speed_plan(10.0), "epdms", human_filter=False)
    assert raw["tlc"] == 0.0 and raw["epdms"] == 0.0
    # The human ran the same light, so the filter counts it as passed (navsim.md §2.4).
    assert score(scene, constant_speed_plan(10.0), "epdms")["tlc"] == 1.0
    green = copy.deepcopy(scene)
    green["traffic_lights"][0]["states"] = [dict(s, status="green") for s in red]
    assert score(green, constant_speed_plan(10.0), "epdms", human_filter=False)["tlc"] == 1.0


@pytest.mark.parametrize("car_x, ttc", [(29.45, 0.0), (33.0, 1.0)])
def test_stopping_just_short_of_a_car_fails_ttc(car_x, ttc):
    # The tracked stop ends with the front bumper at x = 27.1 (rear axle 23.05). A car whose rear is
    # 0.1 m beyond it is never hit (NC 1) but the constant-speed 0.9 s projection reaches it while the
    # ego still rolls at ~3 m/s (remaining 2.65 m < 0.9 s * 3.2 m/s): TTC 0. 3.7 m beyond: TTC 1.
    scene = with_reference(add_box(straight_road_dict(), "L", "vehicle", car_x, 0.0), speed=5.0)
    plan = {"interval": 0.5, "poses": [[4.0, 0, 0], [7.0, 0, 0], [8.5, 0, 0]] + [[9.0, 0, 0]] * 5}
    result = score(scene, plan)
    assert result["nc"] == 1.0
    assert result["ttc"] == ttc


def test_swerve_is_uncomfortable():
    scene = with_reference(straight_road_dict(with_oncoming=True, speed=5.0), speed=5.0)
    poses = [[2.5 * k, 2.0 * math.sin(math.pi * k / 2), 0.0] for k in range(1, 9)]
    for k in range(8):
        x0, y0 = (0.0, 0.0) if k == 0 else poses[k - 1][:2]
        poses[k][2] = math.atan2(poses[k][1] - y0, poses[k][0] - x0)
    result = score(scene, {"interval": 0.5, "poses": poses})
    assert result["c"] == 0.0 and result["dac"] == 1.0 and result["nc"] == 1.0
    assert result["pdms"] == pytest.approx(10 / 12)


def test_half_the_reference_progress_is_ep_about_half():
    # Ego at 5 m/s keeps 5 m/s (20 m, tracked exactly); the reference asks for 10 m/s, which the
    # tracker reaches with a lag, so its progress is a little under 40 m.
    scene = with_reference(straight_road_dict(speed=5.0), speed=10.0)
    result = score(scene, constant_speed_plan(5.0))
    assert 0.5 < result["ep"] < 0.6


def test_progress_under_5m_gives_ep_one():
    scene = with_reference(straight_road_dict(speed=1.0), speed=1.0)
    crawl = {"interval": 0.5, "poses": [[0.1 * k, 0.0, 0.0] for k in range(1, 9)]}
    assert score(scene, crawl)["ep"] == 1.0


def test_reference_that_collides_does_not_normalise_progress():
    # The reference drives into a stopped car; its progress is masked out (v1), so the agent that
    # stops after 11 m is normalised by itself.
    scene = with_reference(add_box(straight_road_dict(speed=5.0), "S", "vehicle", 30.0, 0.0), speed=10.0)
    stop = {"interval": 0.5, "poses": [[min(2.5 * k, 11.0), 0.0, 0.0] for k in range(1, 9)]}
    result = score(scene, stop)
    assert result["nc"] == 1.0 and result["ep"] == 1.0


def test_pdm_closed_reference_is_used_without_a_reference_trajectory():
    scene = straight_road_dict()  # no reference: PDM-Closed plans at up to the 15 m/s limit
    result = score(scene, constant_speed_plan(10.0))
    assert result["nc"] == 1.0 and result["dac"] == 1.0
    assert 0.6 < result["ep"] < 1.0  # slower than PDM-Closed's fastest safe proposal


def _three_scenes():
    a = with_reference(straight_road_dict())
    b = with_reference(add_box(straight_road_dict(), "S", "vehicle", 35.0, 0.0))
    c = with_reference(straight_road_dict(with_oncoming=True))
    return [scene_from_dict(d) for d in (a, b, c)]


@pytest.mark.parametrize("metric", ["pdms", "epdms"])
def test_batched_scores_equal_per_scene_scores(metric):
    scenes = _three_scenes()
    rng = np.random.default_rng(0)
    base = np.array(constant_speed_plan(10.0)["poses"])
    poses = base[None, None] + rng.normal(size=(3, 4, 1, 3)) * np.array([2.0, 1.0, 0.05])
    config = ScoringConfig(metric=metric)
    batched = score_rows(score_poses(prepare_scenes(scenes, config), torch.as_tensor(poses), 0.5))
    for b, scene in enumerate(scenes):
        alone = score_rows(score_poses(prepare_scenes([scene], config), torch.as_tensor(poses[b : b + 1]), 0.5))
        assert alone[0] == batched[b]


def test_scene_file_round_trip_gives_identical_scores(tmp_path):
    scene_dict = add_box(straight_road_dict(with_intersection=True), "S", "vehicle", 45.0, 3.5, speed=3.0)
    scene = scene_from_dict(scene_dict)
    save_scene(scene, tmp_path / "s.json")
    again = load_scene(tmp_path / "s.json")
    plan = plan_from_dict(constant_speed_plan(10.0, y=1.0))
    for metric in ("pdms", "epdms"):
        config = ScoringConfig(metric=metric)
        assert score_plans([scene], [plan], config) == score_plans([again], [plan], config)


def test_bad_plan_is_rejected_by_name():
    prep = prepare_scenes([scene_from_dict(with_reference(straight_road_dict()))])
    poses = torch.zeros(1, 1, 8, 3, dtype=torch.float64)
    poses[0, 0, 3, 1] = float("nan")
    with pytest.raises(ValueError, match="trajectory.poses"):
        score_poses(prep, poses, 0.5)
    with pytest.raises(ValueError, match=r"\(B=1, G, H, 3\)"):
        score_poses(prep, torch.zeros(2, 1, 8, 3, dtype=torch.float64), 0.5)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cpu_equals_cuda():
    scenes = _three_scenes()
    poses = torch.as_tensor(np.array(constant_speed_plan(10.0, y=1.0)["poses"]))[None, None].repeat(3, 2, 1, 1)
    config = ScoringConfig(metric="epdms")
    cpu = score_rows(score_poses(prepare_scenes(scenes, config), poses, 0.5))
    gpu = score_rows(score_poses(prepare_scenes(scenes, config, device="cuda"), poses.cuda(), 0.5))
    for row_cpu, row_gpu in zip(cpu, gpu):
        for a, b in zip(row_cpu, row_gpu):
            assert a == pytest.approx(b, abs=1e-9)


def test_details_say_when_and_with_whom_a_plan_fails():
    # Stopped car centred at x = 35 (rear at 32.75); the ego front is 1.461 + 5.176 / 2 = 4.049 m ahead of
    # the rear axle, which drives from x = 10 at 10 m/s: contact at x = 28.70, t = 1.87 s -> first at step 19.
    scene = scene_from_dict(with_reference(add_box(straight_road_dict(), "S", "vehicle", 35.0, 0.0)))
    prep = prepare_scenes([scene])
    poses = torch.as_tensor(np.array([constant_speed_plan(10.0)["poses"]]))[None]
    details = score_poses(prep, poses, 0.5).details
    assert set(details) == {"nc", "dac", "ddc", "tlc", "ttc", "lk"}
    nc = details["nc"]
    assert (nc.value.item(), nc.step.item(), nc.agent.item()) == (0.0, 19, 0)
    assert details["ttc"].value.item() == 0.0 and 0 <= details["ttc"].step.item() < 19
    assert (details["dac"].value.item(), details["dac"].step.item(), details["dac"].agent.item()) == (1.0, -1, -1)


def test_cache_serves_seen_scenes_with_identical_scores():
    scenes = [replace(s, token=f"scene{k}") for k, s in enumerate(_three_scenes())]   # the cache keys on tokens
    poses = torch.as_tensor(np.array(constant_speed_plan(10.0, y=1.0)["poses"]))[None, None].repeat(4, 2, 1, 1)
    poses[:, 1, :, 0] *= 0.5
    config = ScoringConfig(metric="epdms")
    cache = SceneCache()
    batch = [scenes[0], scenes[2], scenes[0], scenes[1]]                 # a scene twice in one batch
    first = prepare_scenes(batch, config, cache=cache)
    assert (cache.misses, len(cache)) == (4, 3)                          # three scenes prepared, once each
    again = prepare_scenes(batch[::-1], config, cache=cache)
    assert cache.misses == 4 and cache.hits == 4                         # nothing prepared again
    uncached = score_rows(score_poses(prepare_scenes(batch, config), poses, 0.5))
    assert score_rows(score_poses(first, poses, 0.5)) == uncached
    assert score_rows(score_poses(again, poses.flip(0), 0.5)) == uncached[::-1]
    # the fixed plans' sub-metrics are computed once in `prepare_scenes`; recomputing them changes nothing
    assert first.fixed_scores["nc"].shape == (4, 2)                      # reference and human
    assert score_rows(score_poses(replace(first, fixed_scores=None), poses, 0.5)) == uncached
    with pytest.raises(ValueError, match="config"):
        PreparedScenes.cat([first, prepare_scenes([scenes[0]], ScoringConfig(metric="pdms"))])


def test_small_cache_drops_and_moves_scenes_without_changing_scores():
    # max_scenes=2: the third scene drops the least recently used; the index store starts afresh after 4
    # scenes, and parts still in the old one are copied over when next batched
    scenes = [replace(s, token=f"scene{k}") for k, s in enumerate(_three_scenes())]
    poses = torch.as_tensor(np.array(constant_speed_plan(9.0, y=0.5)["poses"]))[None, None].repeat(3, 1, 1, 1)
    config = ScoringConfig()
    expected = score_rows(score_poses(prepare_scenes(scenes, config), poses, 0.5))
    cache = SceneCache(max_scenes=2)
    for order in ([0], [1], [2], [0, 1], [2, 0], [0, 1, 2], [2, 1, 0]):
        prep = prepare_scenes([scenes[i] for i in order], config, cache=cache)
        lanes = prep.map_ctx.lanes
        assert len(cache) <= 2 and lanes.store is not None and lanes.store is cache.index_store("lanes", lanes)
        assert score_rows(score_poses(prep, poses[: len(order)], 0.5)) == [expected[i] for i in order]
