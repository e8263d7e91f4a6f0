"""Feedback-guided refinement: signed route offsets, hand-built diagnoses rendered as reports, and the
batched diagnosis of a plan that runs into a parked car."""

from __future__ import annotations

import math
import re
from dataclasses import replace

import numpy as np
import pytest
import torch

from agents.vla.prompt import WORDS
from envs.metrics.scorer import ScoringConfig, prepare_scenes
from envs.sim.geometry import to_global
from envs.sim.scene import AgentTracks
from scenarios import build_scene
from trainers.grpo_feedback import (
    Failure, PlanDiagnosis, RefineConfig, diagnose_plans, diagnostic_report, planning_intent, report_file_text, signed_offset,
)
from trainers.grpo_samples import StepScenes

PASS = {"nc": 1.0, "dac": 1.0, "ddc": 1.0, "tlc": 1.0, "ep": 1.0, "ttc": 1.0, "c": 1.0, "pdms": 1.0}


def diagnosis(*failures: Failure, plan_speed=10.0, reference_speed=10.0, end=0.0, **scores) -> PlanDiagnosis:
    return PlanDiagnosis({**PASS, **scores}, "pdms", failures, plan_speed, reference_speed, end)


def test_signed_offset_is_left_positive():
    line = torch.tensor([[[0.0, 0.0], [10.0, 0.0], [10.0, 10.0]]])
    valid = torch.ones(1, 3, dtype=torch.bool)
    points = torch.tensor([[[5.0, 2.0], [5.0, -1.0], [12.0, 5.0]]])
    # along +x: left is +y; on the second segment (+y direction) left is -x, so x = 12 is 2 m right
    assert signed_offset(points, line, valid)[0].tolist() == pytest.approx([2.0, -1.0, -2.0])


def test_collision_report_names_time_object_distance_and_intent():
    hit = Failure("nc", 0.0, 1.3, 0, ahead_m=4.0, left_m=3.0, route_offset_m=0.2)
    report = diagnostic_report(diagnosis(hit, plan_speed=12.3, reference_speed=8.1, nc=0.0, pdms=0.0))
    assert report == ("diagnosis : pdms 0.00 ; failed : collision at 1.3 s with object ahead 4.0 m left 3.0 m , "
                      "distance 5.0 m . execution : speed 12.3 m/s , safe speed 8.1 m/s , final 0.0 m right of the route "
                      "centerline . planning : too fast , brake earlier")
    slow = diagnosis(hit, plan_speed=8.0, reference_speed=8.1, nc=0.0)
    assert planning_intent(slow) == ["keep distance , yield to the object ahead"]
    behind = diagnosis(replace(hit, ahead_m=-4.0), nc=0.0)
    assert planning_intent(behind) == ["avoid the object , keep lane"]


def test_map_and_light_failures_steer_back_to_the_route():
    off = Failure("dac", 0.0, 2.0, -1, math.nan, math.nan, route_offset_m=2.0)
    report = diagnostic_report(diagnosis(off, dac=0.0))
    assert "off road at 2.0 s , 2.0 m left of the route centerline" in report and report.endswith("off road , steer right")
    wrong = Failure("ddc", 0.5, 1.0, -1, math.nan, math.nan, route_offset_m=-3.0)
    assert planning_intent(diagnosis(wrong)) == ["wrong lane , oncoming , steer left"]
    light = Failure("tlc", 0.0, 0.5, 0, 6.0, 0.0, 0.0)
    assert planning_intent(diagnosis(light))[0] == "ran the red light , stop before the stop line"
    assert planning_intent(diagnosis(ep=0.3, plan_speed=2.0)) == ["too slow , accelerate"]
    assert planning_intent(diagnosis(c=0.0)) == ["comfort failed , drive smoother"]
    assert planning_intent(diagnosis()) == ["try a different plan"]


def test_reports_use_the_vla_vocabulary():
    hit = Failure("ttc", 0.0, 0.8, 0, 6.0, -0.5, 0.1)
    off = Failure("lk", 0.0, 2.5, -1, math.nan, math.nan, -0.7)
    text = diagnostic_report(diagnosis(hit, off, ep=0.4, c=0.0, plan_speed=14.0), None)
    words = [w for w in re.findall(r"[a-z_\-]+|[^\sa-z0-9]", text.lower())]
    assert set(words) <= set(WORDS), set(words) - set(WORDS)


def test_refine_config_is_checked():
    with pytest.raises(ValueError, match="refine.samples=0"):
        RefineConfig(samples=0)


@pytest.fixture(scope="module")
def parked_car():
    """A `following` scene whose agents are replaced by a car parked on the human path 2 s ahead."""
    scene = build_scene("following", None, 0)
    origin = torch.as_tensor(scene.ego_pose)
    spot = to_global(torch.as_tensor(scene.human_trajectory.poses[3]), origin).numpy()     # human pose at 2 s
    agents = AgentTracks(ids=("parked",), types=np.array([0]), size=np.array([[4.5, 2.0]]),
                         pose=np.tile(spot, (1, 41, 1)), velocity=np.zeros((1, 41, 2)), valid=np.ones((1, 41), bool))
    return replace(scene, agents=agents, reference_trajectory=scene.human_trajectory)


def test_diagnosis_of_a_plan_into_a_parked_car(parked_car):
    prep = prepare_scenes([parked_car], ScoringConfig())
    human = torch.as_tensor(parked_car.human_trajectory.poses)
    plans = torch.stack([human * torch.tensor([1.3, 1.3, 1.0], dtype=torch.float64), human])[None]   # 30 % faster, human
    faster, same = diagnose_plans(prep, plans)[0]
    collision = next(f for f in faster.failures if f.metric == "nc")
    assert faster.scores["nc"] == 0.0 and faster.scores["pdms"] == 0.0 and collision.object_index == 0
    # the car sits where the human is at 2 s; 30 % faster the ego gets there before 2 s, nose first: at first
    # contact the centres are about half the two lengths apart ((5.2 + 4.5) / 2 = 4.85 m) and less than half
    # the two widths ((2.3 + 2.0) / 2) sideways
    assert 0.0 < collision.time_s < 2.0 and collision.ahead_m == pytest.approx(4.85, abs=0.5) and abs(collision.left_m) < 2.15
    assert faster.plan_speed > faster.reference_speed + 0.5
    assert planning_intent(faster)[0] == "too fast , brake earlier"
    assert "collision at" in diagnostic_report(faster, parked_car) and "with vehicle ahead" in diagnostic_report(faster, parked_car)
    assert same.scores["nc"] == 0.0 and planning_intent(same)[0] == "keep distance , yield to the object ahead"
    text = report_file_text(4, [(parked_car, faster, "report")])
    assert text.startswith("# step 4: 1 all-failed groups") and parked_car.token in text


def test_failure_reports_pick_the_best_sample_of_each_group(parked_car):
    from trainers.grpo_feedback import failure_reports

    prep = prepare_scenes([parked_car], ScoringConfig())
    human = torch.as_tensor(parked_car.human_trajectory.poses).float()
    stopped = torch.zeros_like(human)
    step = StepScenes([parked_car], 1, {}, [(prep, 0, 1)])
    (scene, best, text), = failure_reports(step, torch.stack([human, stopped])[None], torch.tensor([[0.0, 0.4]]), torch.tensor([0]))
    # the stopped plan (reward 0.4) was the best: it brakes from 5.3 m/s, far below the human 7.8 m/s
    assert scene is parked_car and best.plan_speed < 3.0 and "collision" not in text
