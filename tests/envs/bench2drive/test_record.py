"""envs.bench2drive.record: messages, route records, checkpoint JSON, metric_info, and DS/SR through the
official merge (envs.metrics.bench2drive_results). Episodes come from tests/envs/bench2drive/test_criteria.py."""

from __future__ import annotations

import json
import math
import os
from datetime import datetime

import numpy as np
import pytest
import torch

from envs.bench2drive.criteria import RouteStatus, criteria_context, criteria_step, finalize, initial_criteria
from envs.bench2drive.record import (LABELS, STATUS_STRINGS, EpisodeLog, checkpoint_json, crashed_record,
                                     log_events, metric_info_steps, min_speed_message, outside_lanes_message,
                                     route_length, route_record, save_name_of, write_json_atomic)
from envs.bench2drive.route_scenario import ActorKind, Role
from envs.metrics.bench2drive_results import (INFRACTION_KEYS, is_success, merge_results, parse_metric_info,
                                              parse_record, speed_values)
from envs.sim.scene import LightStatus
from tests.envs.bench2drive.test_criteria import (LANE_Y, actor, drive, light_scenario, scenario, stop_scenario,
                                                  view)

WHEN = datetime(2025, 3, 4, 5, 6, 7)


def episode(scn, views, finish: bool = True):
    """Run one route through criteria + logging (+ finalize); returns (ctx, final state, log)."""
    ctx = criteria_context([scn])
    state, log = initial_criteria(ctx), EpisodeLog()
    for v in views:
        state, events = criteria_step(ctx, state, v)
        log_events([log], events, ctx)
    if finish:
        state, events = finalize(ctx, state, views[-1], rows=torch.tensor([True]))
        log_events([log], events, ctx)
    return ctx, state, log


def record_of(scn, views, index: int = 0, **kwargs) -> dict:
    _, state, log = episode(scn, views, **kwargs)
    return route_record(scn, log, state, 0, duration_game=len(views) * 0.05, duration_system=1.23456, index=index,
                        save_name=save_name_of(scn, WHEN))


def test_status_strings_follow_the_route_status_codes():
    assert STATUS_STRINGS[RouteStatus.STARTED] == "Started"
    assert STATUS_STRINGS[RouteStatus.PERFECT] == "Perfect" and STATUS_STRINGS[RouteStatus.COMPLETED] == "Completed"
    assert STATUS_STRINGS[RouteStatus.DEVIATED] == "Failed - Agent deviated from the route"
    assert STATUS_STRINGS[RouteStatus.BLOCKED] == "Failed - Agent got blocked"
    assert STATUS_STRINGS[RouteStatus.TIMED_OUT] == "Failed - Agent timed out"
    assert STATUS_STRINGS[RouteStatus.TICK_RUNTIME] == "Failed - TickRuntime"
    assert STATUS_STRINGS[RouteStatus.SIMULATION_CRASHED] == "Failed - Simulation crashed"
    assert len(STATUS_STRINGS) == len(RouteStatus)


def test_collision_red_light_stop_and_min_speed_messages():
    traffic = actor(500.0, 30.0, role=Role.BACKGROUND, speed=10.0)
    views = drive(-0.5, 1.0, 12, actors=[traffic, actor(500.0, 0.0)])                   # x = 11.5, 20 m/s
    views.append(view(12.0, speed=5.0, tick=13, actors=[traffic, actor(16.4, LANE_Y, kind=ActorKind.PEDESTRIAN)]))
    _, _, log = episode(scenario(), views, finish=False)
    assert log.infractions["collisions_pedestrian"] == [
        "Agent collided against object with type=walker.pedestrian.roadloop and id=1 at (x=12.0, y=-1.75, z=0.0)"]
    # checkpoint at point 8 (x = 8.5, tick 9) over ticks 1..8: ego 20 m/s vs traffic 10 m/s
    assert log.infractions["min_speed_infractions"] == ["Average speed is 200.0% of the surrounding traffic's one"]
    _, _, log = episode(light_scenario(), drive(0.0, 0.5, 120, lights=[LightStatus.RED]), finish=False)
    assert log.infractions["red_light"] == ["Agent ran a red light 0 at (x=50.0, y=-1.75, z=0.0)"]
    _, _, log = episode(stop_scenario(), drive(0.0, 0.5, 100), finish=False)
    assert log.infractions["stop_infraction"] == ["Agent ran a stop with id=0 at (x=45.0, y=-1.75, z=0.0)"]
    # no background vehicle: the checkpoint value is the integer 100
    assert log.infractions["min_speed_infractions"][0] == "Average speed is 100% of the surrounding traffic's one"
    assert min_speed_message(87.5) == "Average speed is 87.5% of the surrounding traffic's one"


def test_collision_message_with_backend_actor_names():
    ctx = criteria_context([scenario()])
    state, events = criteria_step(ctx, initial_criteria(ctx), view(10.0, actors=[actor(14.4, LANE_Y)]))
    log = EpisodeLog()
    log_events([log], events, ctx, actor_ids=[[4242]], actor_type_ids=[["vehicle.lincoln.mkz_2020"]])
    assert log.infractions["collisions_vehicle"] == [
        "Agent collided against object with type=vehicle.lincoln.mkz_2020 and id=4242 at (x=10.0, y=-1.75, z=0.0)"]
    log_events([None], events, ctx)                                         # rows without a log are skipped
    with pytest.raises(ValueError, match="logs"):
        log_events([log, log], events, ctx)
    with pytest.raises(ValueError, match="key"):
        log.add("collisions", "x")


def outside_views():
    """On the lane to x = 70.5, then 3.25 m beside it to x = 100.5 (30 of 100 m outside), then stop."""
    views = drive(-0.5, 1.0, 71)
    return views + [view(70.5 + k + 1, y=-5.0, tick=72 + k, speed=20.0) for k in range(30)]


def test_route_record_of_a_failed_route_outside_its_lanes():
    scn = scenario()
    record = record_of(scn, outside_views(), index=3)
    parsed = parse_record(record)
    assert list(record) == ["index", "route_id", "scenario_name", "weather_id", "save_name", "status",
                            "num_infractions", "infractions", "scores", "meta", "town_name"]
    assert list(record["infractions"]) == list(INFRACTION_KEYS)
    assert record["route_id"] == "RouteScenario_7_rep0" and record["index"] == 3
    assert record["save_name"] == "RouteScenario_7_rep0_Builtin_straight_0_Accident_1_None_03_04_05_06_07"
    assert record["status"] == "Failed"                          # stopped by the caller (finalize)
    assert record["infractions"]["outside_route_lanes"] == [
        "Agent went outside its route lanes for about 30.0 meters (30.0% of the completed route)"]
    # RC = point 100 of 150 = 66.67 %, P = 1 - 30 % = 0.7, DS = 46.669
    assert record["scores"] == {"score_route": 66.67, "score_penalty": 0.7, "score_composed": 46.669}
    assert record["meta"] == {"route_length": 150.0, "duration_game": 5.05, "duration_system": 1.235}
    assert record["num_infractions"] == 1 + len(record["infractions"]["min_speed_infractions"])
    assert parsed.score_composed == pytest.approx(46.669) and not is_success(parsed)


def test_route_record_of_a_completed_route_with_two_vehicle_collisions():
    # two separate rear-end contacts 20 m apart and > 5 s apart at 1 m per tick
    views = []
    for k in range(160):
        x = k + 0.5
        ahead = [actor(x + 4.4, LANE_Y)] if k in (10, 120) else [actor(500.0, 0.0)]
        views.append(view(x, tick=1 + k * 2, speed=20.0, actors=ahead))
    record = record_of(scenario(), views)
    assert record["status"] == "Completed"
    assert len(record["infractions"]["collisions_vehicle"]) == 2
    assert record["scores"] == {"score_route": 100.0, "score_penalty": 0.36, "score_composed": 36.0}
    assert not is_success(parse_record(record))


def test_clean_completed_route_is_a_success_and_perfect_needs_empty_lists():
    record = record_of(scenario(), drive(-0.5, 1.0, 150))
    assert record["status"] == "Completed" and record["scores"]["score_composed"] == 100.0
    assert is_success(parse_record(record))
    # a route without any entry (not even min speed) is 'Perfect'
    ctx, state, _ = episode(scenario(), drive(-0.5, 1.0, 150))
    perfect = route_record(scenario(), EpisodeLog(), state, 0, 7.5, 1.0, 0)
    assert perfect["status"] == "Perfect" and perfect["num_infractions"] == 0


@pytest.mark.parametrize("status, text, key", [
    (RouteStatus.BLOCKED, "Failed - Agent got blocked", "vehicle_blocked"),
    (RouteStatus.DEVIATED, "Failed - Agent deviated from the route", "route_dev"),
    (RouteStatus.TICK_RUNTIME, "Failed - TickRuntime", None)])
def test_failed_status_strings_and_messages(status, text, key):
    if status == RouteStatus.BLOCKED:
        views = [view(10.0, speed=0.0, tick=t) for t in (1, 1300)]
    elif status == RouteStatus.DEVIATED:
        views = drive(-0.5, 1.0, 10) + [view(9.5, y=LANE_Y + 31.0, tick=11)]
    else:
        views = drive(-0.5, 1.0, 10) + [view(11.0, tick=4001)]
    record = record_of(scenario(), views)
    assert record["status"] == text
    if key == "vehicle_blocked":
        assert record["infractions"][key] == ["Agent got blocked at (x=10.0, y=-1.75, z=0.0)"]
    elif key == "route_dev":
        assert record["infractions"][key] == ["Agent deviated from the route at (x=9.5, y=29.25, z=0.0)"]
    else:
        assert record["scores"]["score_route"] == 6.0            # RC frozen at point 9 of 150


def test_route_length_and_outside_message():
    assert route_length(np.array([[0.0, 0.0, 0.0], [3.0, 4.0, 0.0], [3.0, 4.0001234, 0.0]])) == 5.0
    # the global record reads word 8 of this message as the metres driven outside
    message = outside_lanes_message(12.34567, 100.0)
    assert message == "Agent went outside its route lanes for about 12.346 meters (12.35% of the completed route)"
    assert float(message.split(" ")[8]) == 12.346


def test_crashed_record():
    record = crashed_record(scenario(), index=5, save_name="x")
    assert record["status"] == "Failed - Simulation crashed"
    assert record["scores"] == {"score_route": 0.0, "score_penalty": 1.0, "score_composed": 0.0}
    assert record["meta"] == {"route_length": 0.0, "duration_game": 0.0, "duration_system": 0.0}
    assert all(record["infractions"][k] == [] for k in INFRACTION_KEYS) and record["num_infractions"] == 0
    parse_record(record)
    assert crashed_record(scenario(), 0, reason="Agent crashed")["status"] == "Failed - Agent crashed"
    with pytest.raises(ValueError, match="reason"):
        crashed_record(scenario(), 0, reason="meteor")


def two_records():
    """A completed route with one vehicle collision and 30 m outside its lanes (DS 70 x 0.6), and a route
    blocked at 50 % (DS 50)."""
    done = record_of(scenario(), drive(-0.5, 1.0, 150), index=0)
    done["status"], done["scores"] = "Completed", {"score_route": 100.0, "score_penalty": 0.42, "score_composed": 42.0}
    done["infractions"]["collisions_vehicle"] = ["Agent collided against object with type=vehicle.x and id=1 at ..."]
    done["infractions"]["outside_route_lanes"] = [
        "Agent went outside its route lanes for about 30.0 meters (30.0% of the completed route)"]
    done["meta"]["duration_game"], done["meta"]["duration_system"] = 10.0, 2.0
    blocked = crashed_record(scenario(route_id=8), index=1, save_name="b")
    blocked["status"] = "Failed - Agent got blocked"
    blocked["scores"] = {"score_route": 50.0, "score_penalty": 1.0, "score_composed": 50.0}
    blocked["meta"] = {"route_length": 150.0, "duration_game": 70.0, "duration_system": 3.0}
    blocked["infractions"]["vehicle_blocked"] = ["Agent got blocked at (x=75.0, y=-1.75, z=0.0)"]
    return done, blocked


def test_checkpoint_json_with_global_record():
    done, blocked = two_records()
    out = checkpoint_json([done, blocked], progress=(2, 2), sensors=["carla_camera"])
    assert list(out) == ["_checkpoint", "entry_status", "eligible", "sensors", "values", "labels"]
    assert list(out["_checkpoint"]) == ["global_record", "progress", "records"]
    assert out["entry_status"] == "Finished" and out["eligible"] is True
    g = out["_checkpoint"]["global_record"]
    assert g["index"] == -1 and g["route_id"] == -1 and g["status"] == "Failed"
    assert g["scores_mean"] == {"score_composed": 46.0, "score_route": 75.0, "score_penalty": 0.71}
    # sample std (n - 1 = 1) around the rounded means: sqrt(4^2 + 4^2) = 5.657, sqrt(2 x 25^2) = 35.355,
    # sqrt(2 x 0.29^2) = 0.410
    assert g["scores_std_dev"] == {"score_composed": 5.657, "score_route": 35.355, "score_penalty": 0.41}
    # km driven = 0.15 x 1.0 + 0.15 x 0.5 = 0.225: one collision -> 4.444 per km; outside lanes 30 m -> 0.03 km
    assert g["infractions"]["collisions_vehicle"] == 4.444 and g["infractions"]["vehicle_blocked"] == 4.444
    assert g["infractions"]["outside_route_lanes"] == 0.03
    assert g["meta"] == {"total_length": 300.0, "duration_game": 80.0, "duration_system": 5.0,
                         "exceptions": [["RouteScenario_8_rep0", 1, "Failed - Agent got blocked"]]}
    assert out["labels"] == list(LABELS) and len(out["values"]) == 15
    assert out["values"][:5] == ["46.0", "75.0", "0.71", "0.0", "4.444"]
    json.dumps(out)


def test_checkpoint_json_in_progress_and_crashed():
    done, blocked = two_records()
    partial = checkpoint_json([done], progress=(1, 2))
    assert partial["_checkpoint"]["global_record"] == {} and partial["values"] == [] and partial["labels"] == []
    assert partial["entry_status"] == "Started" and partial["eligible"] is False
    running = dict(blocked, index=-1)                                  # a route in progress is left out
    assert len(checkpoint_json([done, running], progress=(1, 2))["_checkpoint"]["records"]) == 1
    crashed = checkpoint_json([done, crashed_record(scenario(), 1, save_name="c")], progress=(2, 2))
    assert crashed["entry_status"] == "Crashed" and crashed["eligible"] is False
    single = checkpoint_json([done], progress=(1, 1))
    assert single["_checkpoint"]["global_record"]["scores_std_dev"] == {"score_composed": 0, "score_route": 0,
                                                                        "score_penalty": 0}
    with pytest.raises(ValueError, match="entry_status"):
        checkpoint_json([], (0, 0), entry_status="Done")


def test_driving_score_and_success_rate_over_220_with_a_missing_route():
    success = record_of(scenario(), drive(-0.5, 1.0, 150))                       # DS 100, success
    failed = record_of(scenario(), outside_views())                              # DS 46.669, failure
    records = []
    for route_id in range(219):                                                  # route 219 never ran
        base = success if route_id % 2 == 0 else failed
        records.append(dict(base, route_id=f"RouteScenario_{route_id}_rep0", index=route_id))
    report = merge_results(records, routes=[], metric_infos={})
    assert report.eval_num == 219
    assert report.driving_score == pytest.approx((110 * 100.0 + 109 * 46.669) / 220)
    assert report.success_rate == pytest.approx(110 / 220)
    # efficiency: every min-speed message parses (no background traffic: 100 %)
    assert report.efficiency == pytest.approx(100.0)
    assert speed_values(success["infractions"]["min_speed_infractions"]).kept[0] == 100.0


def test_write_json_atomic(tmp_path):
    path = tmp_path / "sub" / "route.json"
    write_json_atomic(path, {"a": [1, 2]})
    write_json_atomic(path, {"a": [3]})
    assert json.loads(path.read_text()) == {"a": [3]}
    assert os.listdir(path.parent) == ["route.json"]
    with pytest.raises(TypeError):
        write_json_atomic(path, {"bad": object()})
    assert json.loads(path.read_text()) == {"a": [3]} and os.listdir(path.parent) == ["route.json"]


def test_metric_info_steps():
    pose = np.array([[1.0, 2.0, 0.0], [2.0, 2.0, math.pi / 2]])
    steps = metric_info_steps(np.array([[1.0, 0.5], [0.0, 2.0]]), np.array([0.1, math.pi / 4]), pose, first_step=5)
    assert list(steps) == ["5", "6"]
    second = steps["6"]
    assert second["angular_velocity"] == pytest.approx([0.0, 0.0, 45.0])
    assert second["forward_vector"] == pytest.approx([0.0, 1.0, 0.0])
    assert second["right_vector"] == pytest.approx([1.0, 0.0, 0.0])   # heading 90 deg: right is +x
    assert second["rotation"] == pytest.approx([0.0, 0.0, 90.0]) and second["location"] == [2.0, 2.0, 0.0]
    series = parse_metric_info(json.loads(json.dumps(steps)))
    assert series.num_steps == 2 and series.acceleration[0].tolist() == [1.0, 0.5, 0.0]
    with pytest.raises(ValueError, match="shape"):
        metric_info_steps(np.zeros((3, 2)), np.zeros(2), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="finite"):
        metric_info_steps(np.full((1, 2), np.nan), np.zeros(1), np.zeros((1, 3)))
