"""Feedback-guided refinement for GRPO (ELF-VLA, posttraining.md §1.9): a structured diagnosis of a
failed plan from the scorer's per-metric results (which sub-metric, when, against which object or
map element, how far) and a planning intent, rendered as a prompt text the policy can read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from envs.metrics.collision import no_at_fault_collision
from envs.metrics.direction import driving_direction_compliance
from envs.metrics.drivable_area import drivable_area_compliance
from envs.metrics.ego_areas import ego_areas, ego_footprint
from envs.metrics.lane_keeping import lane_keeping
from envs.metrics.result import MetricResult
from envs.metrics.scorer import Metric, PreparedScenes, score_poses, score_rows
from envs.metrics.traffic_light import traffic_light_compliance
from envs.metrics.ttc import time_to_collision
from envs.sim.geometry import polyline_distance, polyline_interpolate, polyline_project
from envs.sim.scene import STEP_S, AgentType, Scene

LOCATED_METRICS = ("nc", "ttc", "tlc", "dac", "ddc", "lk")
"""Sub-metrics with a first failing step (and for NC / TTC / TLC an object), in report order."""
METRIC_WORDS = {"nc": "collision", "ttc": "ttc", "tlc": "red light", "dac": "off road", "ddc": "wrong direction",
                "lk": "lane keeping", "c": "comfort", "ep": "progress"}
"""How each sub-metric is named in a report (words of the VLA's base vocabulary, agents.vla.prompt.WORDS)."""
SPEED_MARGIN = 0.5
"""[m/s] The plan counts as faster / slower than the reference beyond this margin."""
LOW_PROGRESS = 0.5
"""EP below this, with no other failure, reads as "too slow"."""


@dataclass
class RefineConfig:
    """ELF-VLA feedback-guided refinement of groups in which every sample failed."""

    enabled: bool = False
    """Diagnose the best sample of each all-failed group, re-sample with the report in the prompt."""
    samples: int = 4
    """R: refinements sampled per all-failed group."""
    keep: int = 1
    """At most this many refinements injected per group (LUFFY injects 1 of 8)."""
    above: float = 0.5
    """A refinement is injected only if its metric total is at least this."""
    reports_logged: int = 3
    """Reports written to TensorBoard per logged step (all of them go to `reports/step_*.txt`)."""

    def __post_init__(self):
        if self.samples < 1 or not 1 <= self.keep <= self.samples or self.reports_logged < 0:
            raise ValueError(f"refine.samples={self.samples}, refine.keep={self.keep}, refine.reports_logged="
                             f"{self.reports_logged}: need samples >= 1, 1 <= keep <= samples, reports_logged >= 0")



@dataclass(frozen=True)
class Failure:
    """Where one sub-metric of one plan first failed."""

    metric: str
    """Sub-metric key (`nc`, `ttc`, `tlc`, `dac`, `ddc`, `lk`)."""
    value: float
    """Its score (NC 0 or 0.5, DDC 0 or 0.5, else 0)."""
    time_s: float
    """[s] First failing time after t = 0."""
    object_index: int
    """Agent slot (NC, TTC: index into `scene.agents`), red-light index (TLC), or -1 (map metrics)."""
    ahead_m: float
    """[m] Object centre ahead of the ego centre at that time, in the ego frame (NaN without object)."""
    left_m: float
    """[m] Object centre left of the ego centre at that time (NaN without object)."""
    route_offset_m: float
    """[m] Signed offset of the ego centre from the route centerline at that time, left positive."""

    @property
    def distance_m(self) -> float:
        """[m] Centre-to-centre distance to the object (NaN without object)."""
        return math.hypot(self.ahead_m, self.left_m)


@dataclass(frozen=True)
class PlanDiagnosis:
    """Everything the report says about one plan (plain numbers, so reports are testable by hand)."""

    scores: dict[str, float]
    """Every sub-score and both totals (`score_rows` keys)."""
    metric: str
    """`pdms` or `epdms`: the total the report quotes."""
    failures: tuple[Failure, ...]
    """Failed located sub-metrics, earliest first."""
    plan_speed: float
    """[m/s] Mean simulated ego speed over the 4 s."""
    reference_speed: float
    """[m/s] Mean speed of the progress reference (PDM-Closed or the scene's reference plan)."""
    end_offset_m: float
    """[m] Signed offset of the final ego centre from the route centerline, left positive."""


def signed_offset(points: Tensor, line: Tensor, valid: Tensor) -> Tensor:
    """Signed distance [m] of points (B, N, 2) from polylines (B, P, 2) + valid (B, P): left of the
    line's direction positive -> (B, N)."""
    distance = polyline_distance(points, line, valid)
    foot, heading = polyline_interpolate(line, valid, polyline_project(points, line, valid), return_heading=True)
    cross = torch.cos(heading) * (points[..., 1] - foot[..., 1]) - torch.sin(heading) * (points[..., 0] - foot[..., 0])
    return torch.where(cross < 0, -distance, distance)


def metric_details(prep: PreparedScenes, states) -> dict[str, MetricResult]:
    """MetricResults (value, first failing step, responsible object) of the located sub-metrics from
    the simulated ego states (B, P, 41) of plans, computed the way the scorer does
    (`scorer._per_proposal_scores`), keeping the `step` and `agent` that the scorer drops."""
    vehicle = prep.scenes[0].vehicle
    version = "v2" if prep.config.metric is Metric.EPDMS else "v1"
    corners, center = ego_footprint(states.pose, vehicle)
    areas = ego_areas(states.pose, vehicle, prep.map_ctx)
    obs = prep.observation
    return {
        "nc": no_at_fault_collision(states.pose, states.speed, corners, areas, obs, vehicle),
        "ttc": time_to_collision(states.pose, states.speed, corners, areas, obs, vehicle, version),
        "tlc": traffic_light_compliance(corners, obs),
        "dac": drivable_area_compliance(areas),
        "ddc": driving_direction_compliance(center, areas, version),
        "lk": lane_keeping(center, areas, prep.map_ctx),
    }


def diagnose_plans(prep: PreparedScenes, poses: Tensor, interval: float = 0.5) -> list[list[PlanDiagnosis]]:
    """Diagnose plans (B, P, H, 3) in each scene's ego frame -> B lists of P `PlanDiagnosis`."""
    scored = score_poses(prep, poses, interval)
    states, rows = scored.states, score_rows(scored)
    results = metric_details(prep, states)
    vehicle = prep.scenes[0].vehicle
    _, center = ego_footprint(states.pose, vehicle)                                  # (B, P, T, 2)
    batch, plans, steps = center.shape[:3]
    line, line_valid = prep.map_ctx.centerline, prep.map_ctx.centerline_valid
    offsets = signed_offset(center.reshape(batch, plans * steps, 2), line, line_valid).view(batch, plans, steps)
    heading = states.pose[..., 2]
    obs = prep.observation
    plan_speed = states.speed.mean(-1)                                                # (B, P)
    reference_speed = prep.fixed_states.speed[:, 0].mean(-1)                          # (B,)
    diagnoses: list[list[PlanDiagnosis]] = []
    for b in range(batch):                       # report assembly is per plan (text), after the batched maths
        per_scene = []
        for p in range(plans):
            failures = []
            for name in LOCATED_METRICS:
                result = results[name]
                step = int(result.step[b, p])
                if float(result.value[b, p]) >= 1.0 or step < 0:
                    continue
                index = int(result.agent[b, p])
                ahead = left = math.nan
                if index >= 0:
                    if name == "tlc":
                        ring = obs.red_light_polygons[b, index][obs.red_light_vertex_valid[b, index]]
                        target = ring.mean(0)
                    else:
                        target = obs.center[b, min(step, obs.num_steps - 1), index]
                    delta = target - center[b, p, step]
                    cos, sin = math.cos(float(heading[b, p, step])), math.sin(float(heading[b, p, step]))
                    ahead = float(cos * delta[0] + sin * delta[1])
                    left = float(-sin * delta[0] + cos * delta[1])
                failures.append(Failure(name, float(result.value[b, p]), round(step * STEP_S, 6), index, ahead, left,
                                        float(offsets[b, p, step])))
            failures.sort(key=lambda f: f.time_s)
            per_scene.append(PlanDiagnosis(
                scores=rows[b][p], metric=prep.config.metric.value, failures=tuple(failures),
                plan_speed=float(plan_speed[b, p]), reference_speed=float(reference_speed[b]),
                end_offset_m=float(offsets[b, p, -1])))
        diagnoses.append(per_scene)
    return diagnoses


def _object_words(failure: Failure, scene: Scene | None) -> str:
    if failure.metric == "tlc":
        return "red light"
    if scene is None or not 0 <= failure.object_index < scene.agents.num_agents:
        return "object"
    kind = AgentType(int(scene.agents.types[failure.object_index]))
    return {AgentType.VEHICLE: "vehicle", AgentType.PEDESTRIAN: "pedestrian", AgentType.BICYCLE: "cyclist"}.get(kind, "obstacle")


def _side(offset_m: float) -> str:
    return "left" if offset_m > 0 else "right"


def planning_intent(diagnosis: PlanDiagnosis) -> list[str]:
    """What the plan should do differently, from the failures (ELF-VLA's "planning" level)."""
    failed = {f.metric: f for f in diagnosis.failures}
    faster = diagnosis.plan_speed > diagnosis.reference_speed + SPEED_MARGIN
    slower = diagnosis.plan_speed < diagnosis.reference_speed - SPEED_MARGIN
    intents = []
    if "tlc" in failed:
        intents.append("ran the red light , stop before the stop line")
    hit = failed.get("nc") or failed.get("ttc")
    if hit is not None:
        if hit.object_index >= 0 and hit.ahead_m > 0 and faster:
            intents.append("too fast , brake earlier")
        elif hit.object_index >= 0 and hit.ahead_m > 0:
            intents.append("keep distance , yield to the object ahead")
        else:
            intents.append("avoid the object , keep lane")
    for name, words in (("dac", "off road"), ("ddc", "wrong lane , oncoming"), ("lk", "left the lane centre")):
        if name in failed:
            toward = "right" if failed[name].route_offset_m > 0 else "left"
            intents.append(f"{words} , steer {toward}")
    if not intents and diagnosis.scores.get("ep", 1.0) < LOW_PROGRESS and (slower or not faster):
        intents.append("too slow , accelerate")
    if not intents and diagnosis.scores.get("c", 1.0) < 1.0:
        intents.append("comfort failed , drive smoother")
    return intents or ["try a different plan"]


def diagnostic_report(diagnosis: PlanDiagnosis, scene: Scene | None = None) -> str:
    """The feedback text for one failed plan: diagnosis (which sub-metrics failed, when, against which
    object or map element, how far), execution (speeds, route offset), planning intent.

    Words come from the VLA's base vocabulary; numbers have one decimal (the tokenizer splits digits).
    """
    parts = []
    for f in diagnosis.failures:
        text = f"{METRIC_WORDS[f.metric]} at {f.time_s:.1f} s"
        if f.object_index >= 0 and math.isfinite(f.ahead_m):
            where = "ahead" if f.ahead_m >= 0 else "behind"
            text += (f" with {_object_words(f, scene)} {where} {abs(f.ahead_m):.1f} m {_side(f.left_m)} "
                     f"{abs(f.left_m):.1f} m , distance {f.distance_m:.1f} m")
        else:
            text += f" , {abs(f.route_offset_m):.1f} m {_side(f.route_offset_m)} of the route centerline"
        parts.append(text)
    for name in ("ep", "c"):
        value = diagnosis.scores.get(name)
        if value is not None and value < 1.0:
            parts.append(f"{METRIC_WORDS[name]} {value:.2f}")
    total = diagnosis.scores.get(diagnosis.metric, math.nan)
    diagnosis_text = f"{diagnosis.metric} {total:.2f} ; failed : " + (" ; ".join(parts) if parts else "none")
    # "safe speed": the progress reference's (PDM-Closed's) mean speed
    execution = (f"speed {diagnosis.plan_speed:.1f} m/s , safe speed {diagnosis.reference_speed:.1f} m/s , "
                 f"final {abs(diagnosis.end_offset_m):.1f} m {_side(diagnosis.end_offset_m)} of the route centerline")
    return f"diagnosis : {diagnosis_text} . execution : {execution} . planning : {' ; '.join(planning_intent(diagnosis))}"


def report_file_text(step: int, entries: list[tuple[Scene, PlanDiagnosis, str]]) -> str:
    """Human-readable file of one step's reports: scene token, scenario, scores and the report text."""
    lines = [f"# step {step}: {len(entries)} all-failed groups"]
    for scene, diagnosis, text in entries:
        scores = " ".join(f"{k}={v:.3f}" for k, v in diagnosis.scores.items())
        lines += [f"\n## {scene.token} ({scene.scenario_type})", scores, text]
    return "\n".join(lines) + "\n"



def failure_reports(step, plans: Tensor, rewards: Tensor, rows: Tensor) -> list[tuple[Scene, PlanDiagnosis, str]]:
    """Reports of the best-rewarded plan of the groups `rows` (B',) of a `grpo_samples.StepScenes`:
    plans (B_all, G, H, 3), rewards (B_all, G) -> one (scene, diagnosis, report text) per row."""
    best = rewards.argmax(1)
    diagnoses: list[PlanDiagnosis] = []
    for prep, start, stop in step.preps:            # every group's best plan: one batched pass per scene set
        chosen = plans[start:stop][torch.arange(stop - start), best[start:stop]][:, None]
        diagnoses += [per_scene[0] for per_scene in diagnose_plans(prep, chosen.to(torch.float64))]
    return [(step.scenes[b], diagnoses[b], diagnostic_report(diagnoses[b], step.scenes[b])) for b in rows.tolist()]


def group_picture(scene: Scene, plans: Tensor, totals, metric: str, shown: int = 8) -> np.ndarray:
    """BEV picture (384, 384, 3) uint8 of a group: its plans (G, 8, 3) in the ego frame and the first
    `shown` totals (G,) of `metric`, labelled g0, g1, ..."""
    from envs.sim.bev import bev_rgb
    from envs.sim.frame import frame_from_scene

    scores = {f"g{g} {metric}": float(totals[g]) for g in range(min(shown, len(totals)))}
    return bev_rgb(frame_from_scene(scene, 0), plans=np.asarray(plans, np.float32), scores=scores,
                   title=f"{scene.scenario_type} {scene.token}")
