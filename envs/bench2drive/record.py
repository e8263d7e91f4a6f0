"""Leaderboard output of Bench2Drive routes (spec bench2drive.md §3.8): infraction messages from the criteria's
events, the route record, the checkpoint JSON with its global record, metric_info.json steps and atomic
JSON writes. Python-side and per route; the hot path (`envs.bench2drive.criteria`) only produces numbers.

Message templates are the ones scenario_runner's criteria write (parsers and the efficiency tool read them);
scores and the global record follow leaderboard/utils/statistics_manager.py.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import torch

from envs.bench2drive.criteria import PENALTY, CriteriaContext, CriteriaState, RouteStatus, TickEvents
from envs.bench2drive.route_scenario import ActorKind, RouteScenario
from envs.metrics.bench2drive_results import INFRACTION_KEYS

STATUS_STRINGS: tuple[str, ...] = (
    "Started", "Perfect", "Completed", "Failed", "Failed - Agent deviated from the route",
    "Failed - Agent got blocked", "Failed - Agent timed out", "Failed - TickRuntime", "Failed - Simulation crashed",
    "Failed - Agent crashed", "Failed - Agent couldn't be set up", "Failed - Agent's sensors were invalid",
)
"""Route status string of each `RouteStatus` code (statistics_manager; 'Started' = record not finished)."""
ELIGIBLE = {"Started": False, "Finished": True, "Rejected": False, "Crashed": False, "Invalid": False}
"""Entry statuses of a checkpoint file and whether each is eligible (statistics_manager)."""
LABELS: tuple[str, ...] = (
    "Avg. driving score", "Avg. route completion", "Avg. infraction penalty", "Collisions with pedestrians",
    "Collisions with vehicles", "Collisions with layout", "Red lights infractions", "Stop sign infractions",
    "Off-road infractions", "Route deviations", "Route timeouts", "Agent blocked",
    "Yield emergency vehicles infractions", "Scenario timeouts", "Min speed infractions",
)
_VALUE_KEYS = ("collisions_pedestrian", "collisions_vehicle", "collisions_layout", "red_light", "stop_infraction",
               "outside_route_lanes", "route_dev", "route_timeout", "vehicle_blocked",
               "yield_emergency_vehicle_infractions", "scenario_timeouts", "min_speed_infractions")
"""Global infraction values after the three mean scores, in LABELS order."""
ACTOR_TYPE_IDS = {
    ActorKind.VEHICLE: "vehicle.roadloop.car", ActorKind.PEDESTRIAN: "walker.pedestrian.roadloop",
    ActorKind.BICYCLE: "vehicle.roadloop.bicycle", ActorKind.STATIC: "static.prop.roadloop",
    ActorKind.EMERGENCY: "vehicle.roadloop.emergency",
}
"""CARLA-style blueprint ids of built-in actors; the substrings 'vehicle' / 'walker' / 'static' are what the
leaderboard classifies collisions by."""
ROUND_DIGITS, ROUND_DIGITS_SCORE = 3, 6   # statistics_manager


def _at(x: float, y: float, z: float = 0.0) -> str:
    """'(x=.., y=.., z=..)' with the criteria's 3-decimal rounding; the built-in world is flat (z = 0)."""
    return f"(x={round(x, 3)}, y={round(y, 3)}, z={round(z, 3)})"


def min_speed_message(percent: float | int) -> str:
    """MinSpeedTest message; `percent` is already rounded to 2 decimals, or the int 100."""
    return f"Average speed is {percent}% of the surrounding traffic's one"


def outside_lanes_message(wrong_m: float, total_m: float) -> str:
    """OutsideRouteLanesTest message (the global record parses word 8, the metres)."""
    percent = wrong_m / total_m * 100
    return (f"Agent went outside its route lanes for about {round(wrong_m, 3)} meters "
            f"({round(percent, 2)}% of the completed route)")


@dataclass
class EpisodeLog:
    """The messages of one route, per leaderboard infraction list, in the order they happened."""

    infractions: dict[str, list[str]] = field(default_factory=lambda: {key: [] for key in INFRACTION_KEYS})

    def add(self, key: str, message: str) -> None:
        if key not in self.infractions:
            raise ValueError(f"key={key!r}: not a leaderboard infraction list ({', '.join(INFRACTION_KEYS)})")
        self.infractions[key].append(message)


def log_events(logs: Sequence[EpisodeLog | None], events: TickEvents, ctx: CriteriaContext,
               actor_ids: Sequence[Sequence[int]] | None = None,
               actor_type_ids: Sequence[Sequence[str]] | None = None) -> None:
    """Append the messages of one tick's (or finalize's) events to the routes' logs (None: row not logged).

    Only rows with an event leave the device. Collision messages name the other actor by `actor_ids[b][slot]`
    and `actor_type_ids[b][slot]` when given (CARLA backend), else by slot and ACTOR_TYPE_IDS of its kind.
    """
    if len(logs) != events.done.shape[0]:
        raise ValueError(f"logs has {len(logs)} entries: expected one per route ({events.done.shape[0]})")
    rows = events.any().nonzero().flatten().tolist()
    if not rows:
        return
    pick = torch.as_tensor(rows, device=events.done.device)
    columns = {name: getattr(events, name)[pick].tolist() for name in (
        "collision_key", "collision_actor", "collision_kind", "red_light", "stop_sign", "min_speed",
        "min_speed_percent", "min_speed_default", "route_dev", "blocked", "route_timeout", "scenario_timeout",
        "ytev", "ego_xy")}
    light_center, stop_center = ctx.light_center[pick].tolist(), ctx.stop_center[pick].tolist()
    for i, b in enumerate(rows):
        log = logs[b]
        if log is None:
            continue
        x, y = columns["ego_xy"][i]
        if columns["collision_key"][i] >= 0:
            slot = columns["collision_actor"][i]
            type_id = (actor_type_ids[b][slot] if actor_type_ids is not None
                       else ACTOR_TYPE_IDS[ActorKind(columns["collision_kind"][i])])
            other = actor_ids[b][slot] if actor_ids is not None else slot
            log.add(INFRACTION_KEYS[columns["collision_key"][i]],
                    f"Agent collided against object with type={type_id} and id={other} at {_at(x, y)}")
        if columns["red_light"][i] >= 0:
            light = columns["red_light"][i]
            log.add("red_light", f"Agent ran a red light {light} at {_at(*light_center[i][light])}")
        if columns["stop_sign"][i] >= 0:
            stop = columns["stop_sign"][i]
            log.add("stop_infraction", f"Agent ran a stop with id={stop} at {_at(*stop_center[i][stop])}")
        if columns["min_speed"][i]:
            value = 100 if columns["min_speed_default"][i] else round(columns["min_speed_percent"][i], 2)
            log.add("min_speed_infractions", min_speed_message(value))
        if columns["ytev"][i]:
            log.add("yield_emergency_vehicle_infractions", "Agent failed to yield to an emergency vehicle")
        if columns["scenario_timeout"][i]:
            log.add("scenario_timeouts", "Agent timed out a scenario")
        if columns["route_dev"][i]:
            log.add("route_dev", f"Agent deviated from the route at {_at(x, y)}")
        if columns["blocked"][i]:
            log.add("vehicle_blocked", f"Agent got blocked at {_at(x, y)}")
        if columns["route_timeout"][i]:
            log.add("route_timeout", "Route timeout.")


def route_length(route: np.ndarray) -> float:
    """[m] dense-route length rounded to 3 decimals (statistics_manager compute_route_length)."""
    steps = np.diff(np.asarray(route, dtype=np.float64)[:, :2], axis=0)
    return round(float(sum(math.hypot(dx, dy) for dx, dy in steps)), ROUND_DIGITS)


def _completion(route: np.ndarray, index: int) -> float:
    """RouteCompletionTest value at route point `index`: accumulated-length percentage, 2 decimals."""
    steps = [math.hypot(dx, dy) for dx, dy in np.diff(np.asarray(route, dtype=np.float64)[:, :2], axis=0)]
    accum = [0.0]
    for step in steps:
        accum.append(accum[-1] + step)
    return round(accum[index] / accum[-1] * 100, 2)


def save_name_of(scenario: RouteScenario, when: datetime | None = None) -> str:
    """'<route_id>_<town>_<scenario_name>_<weather_id>_<MM_DD_HH_MM_SS>', the agent's output folder name."""
    stamp = (when or datetime.now()).strftime("%m_%d_%H_%M_%S")
    route = f"RouteScenario_{scenario.route_id}_rep0"
    return f"{route}_{scenario.town}_{scenario.scenario_name}_{scenario.weather_id}_{stamp}"


def _record(scenario: RouteScenario, index: int, status: str, infractions: Mapping[str, list[str]],
            scores: tuple[float, float, float], meta: tuple[float, float, float], save_name: str | None) -> dict:
    """A route record with statistics_manager's keys in its order (town_name is set last there)."""
    return {
        "index": index, "route_id": f"RouteScenario_{scenario.route_id}_rep0", "scenario_name": scenario.scenario_name,
        "weather_id": scenario.weather_id, "save_name": save_name if save_name is not None else save_name_of(scenario),
        "status": status, "num_infractions": sum(len(m) for m in infractions.values()),
        "infractions": {key: list(infractions[key]) for key in INFRACTION_KEYS},
        "scores": {"score_route": scores[0], "score_penalty": scores[1], "score_composed": scores[2]},
        "meta": {"route_length": meta[0], "duration_game": meta[1], "duration_system": meta[2]},
        "town_name": scenario.town,
    }


def route_record(scenario: RouteScenario, log: EpisodeLog, state: CriteriaState, row: int, duration_game: float,
                 duration_system: float, index: int, save_name: str | None = None) -> dict:
    """The leaderboard record of route `row` of a batch, from its log and final (finalized) criteria state.

    Scores as statistics_manager computes them: RC from the RouteCompletion index (100 when completed),
    penalty = (1 - outside %/100) x every event's coefficient, DS = round(RC x penalty, 6).
    """
    code = int(state.status[row])
    wrong_m, total_m = float(state.wrong_m[row]), float(state.total_m[row])
    infractions = {key: list(messages) for key, messages in log.infractions.items()}
    penalty = 1.0
    if wrong_m > 0:
        infractions["outside_route_lanes"] = [outside_lanes_message(wrong_m, total_m)]
        penalty *= 1 - wrong_m / total_m * 100 / 100
    for key in ("collisions_layout", "collisions_pedestrian", "collisions_vehicle", "red_light", "stop_infraction",
                "yield_emergency_vehicle_infractions", "scenario_timeouts"):
        for _ in infractions[key]:
            penalty *= PENALTY[key]
    if code in (RouteStatus.PERFECT, RouteStatus.COMPLETED):
        score_route = 100.0
        count = sum(len(m) for m in infractions.values())
        status = STATUS_STRINGS[RouteStatus.COMPLETED if count else RouteStatus.PERFECT]
    else:
        score_route = _completion(scenario.route, int(state.route_index[row]))
        status = STATUS_STRINGS[code] if code != RouteStatus.STARTED else STATUS_STRINGS[RouteStatus.FAILED]
    scores = (round(score_route, ROUND_DIGITS_SCORE), round(penalty, ROUND_DIGITS_SCORE),
              round(max(score_route * penalty, 0.0), ROUND_DIGITS_SCORE))
    meta = (route_length(scenario.route), round(duration_game, ROUND_DIGITS), round(duration_system, ROUND_DIGITS))
    return _record(scenario, index, status, infractions, scores, meta, save_name)


def crashed_record(scenario: RouteScenario, index: int, reason: str = "Simulation crashed",
                   save_name: str | None = None) -> dict:
    """Record of a route that could not run: 'Failed - <reason>', RC 0, DS 0.

    As statistics_manager writes a route whose world or scenario failed to load: no infraction, penalty
    1.0, route length and durations 0.
    """
    status = f"Failed - {reason}"
    if status not in STATUS_STRINGS:
        raise ValueError(f"reason={reason!r}: not a leaderboard failure message "
                         f"({', '.join(s[9:] for s in STATUS_STRINGS if s.startswith('Failed - '))})")
    empty = {key: [] for key in INFRACTION_KEYS}
    return _record(scenario, index, status, empty, (0.0, 1.0, 0.0), (0.0, 0.0, 0.0), save_name)


def _global_record(records: Sequence[Mapping], total_routes: int) -> dict:
    """statistics_manager compute_global_statistics over the records (means divide by total_routes)."""
    status = "Perfect"
    means = {"score_composed": 0.0, "score_route": 0.0, "score_penalty": 0.0}
    meta = {"total_length": 0, "duration_game": 0, "duration_system": 0, "exceptions": []}
    for record in records:
        for key in means:
            means[key] += record["scores"][key] / total_routes
        for key in ("duration_game", "duration_system"):
            meta[key] += record["meta"][key]
        meta["total_length"] += record["meta"]["route_length"]
        result = "Failed" if "Failed" in record["status"] else record["status"]
        if result == "Failed":
            meta["exceptions"].append([record["route_id"], record["index"], record["status"]])
            status = result
        elif status == "Perfect" and result != "Perfect":
            status = result
    means = {key: round(value, ROUND_DIGITS_SCORE) for key, value in means.items()}
    if total_routes == 1:
        spread = {key: 0 for key in means}
    else:
        spread = {key: round(math.sqrt(sum((r["scores"][key] - means[key]) ** 2 for r in records)
                                       / float(total_routes - 1)), ROUND_DIGITS) for key in means}
    km_driven = 0.0
    infractions = {key: 0 for key in INFRACTION_KEYS}
    for record in records:
        km_driven += record["meta"]["route_length"] / 1000 * record["scores"]["score_route"] / 100
        for key in INFRACTION_KEYS:
            messages = record["infractions"][key]
            if key == "outside_route_lanes":   # metres parsed back from the message, as the leaderboard does
                infractions[key] += float(messages[0].split(" ")[8]) / 1000 if messages else 0.0
            else:
                infractions[key] += len(messages)
    km_driven = max(km_driven, 0.001)
    for key in INFRACTION_KEYS:
        value = infractions[key] if key == "outside_route_lanes" else infractions[key] / km_driven
        infractions[key] = round(value, ROUND_DIGITS)
    return {"index": -1, "route_id": -1, "status": status, "infractions": infractions, "scores_mean": means,
            "scores_std_dev": spread, "meta": meta}


def checkpoint_json(records: Sequence[Mapping], progress: tuple[int, int], entry_status: str = "Started",
                    sensors: Sequence[str] = (), finished: bool | None = None) -> dict:
    """One evaluation process's results file (`--checkpoint`), spec §3.8a.

    `progress` = (routes done, routes total). When `finished` (default: done == total) the global record,
    values and labels are filled and the entry status becomes Finished, or Crashed / Rejected when a record
    says the simulation crashed / the sensors were invalid; otherwise `entry_status` is kept.
    """
    if entry_status not in ELIGIBLE:
        raise ValueError(f"entry_status={entry_status!r}: expected one of {', '.join(ELIGIBLE)}")
    done, total = progress
    kept = [dict(r) for r in records if r.get("index", 0) != -1]   # index -1: route still running
    finished = done >= total if finished is None else finished
    global_record, values, labels = {}, [], []
    if finished:
        global_record = _global_record(kept, total)
        means, counts = global_record["scores_mean"], global_record["infractions"]
        values = [str(means["score_composed"]), str(means["score_route"]), str(means["score_penalty"])]
        values += [str(counts[key]) for key in _VALUE_KEYS]
        labels = list(LABELS)
        entry_status = "Finished"
        for record in kept:
            if "Simulation crashed" in record["status"]:
                entry_status = "Crashed"
            elif "Agent's sensors were invalid" in record["status"]:
                entry_status = "Rejected"
    return {"_checkpoint": {"global_record": global_record, "progress": [done, total], "records": kept},
            "entry_status": entry_status, "eligible": ELIGIBLE[entry_status], "sensors": list(sensors),
            "values": values, "labels": labels}


def write_json_atomic(path: str | os.PathLike, obj: object) -> None:
    """Write `obj` as JSON (indent 4, as the leaderboard) to a temporary file beside `path`, then rename it."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".tmp_", suffix=".json")
    try:
        with os.fdopen(handle, "w") as file:
            json.dump(obj, file, indent=4)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def metric_info_steps(acceleration, yaw_rate, pose, first_step: int = 0) -> dict[str, dict[str, list[float]]]:
    """metric_info.json content (AutonomousAgent.get_metric_info per agent step) from ego series.

    acceleration (T, 2) or (T, 3) [m/s^2] world frame; yaw_rate (T,) [rad/s]; pose (T, 3) x, y [m], heading
    [rad]. Angular velocity is written in deg/s and rotation as [roll, pitch, yaw] in degrees, as CARLA
    reports them; vectors are in our right-handed world frame (right = heading - 90 deg), z = 0.
    """
    acc = np.asarray(torch.as_tensor(acceleration).cpu(), dtype=np.float64)
    rate = np.asarray(torch.as_tensor(yaw_rate).cpu(), dtype=np.float64).reshape(-1)
    poses = np.asarray(torch.as_tensor(pose).cpu(), dtype=np.float64)
    steps = len(rate)
    if acc.ndim != 2 or acc.shape[0] != steps or acc.shape[1] not in (2, 3) or poses.shape != (steps, 3):
        raise ValueError(f"acceleration.shape={acc.shape!r}, yaw_rate.shape={rate.shape!r}, pose.shape="
                         f"{poses.shape!r}: need (T, 2|3), (T,), (T, 3)")
    for name, values in (("acceleration", acc), ("yaw_rate", rate), ("pose", poses)):
        if not np.isfinite(values).all():
            raise ValueError(f"{name}: must be finite")
    cos, sin, zero = np.cos(poses[:, 2]), np.sin(poses[:, 2]), np.zeros(steps)
    columns = {   # (T, 3) each, made in numpy and turned into lists once: a route has thousands of steps
        "acceleration": np.concatenate([acc, np.zeros((steps, 3 - acc.shape[1]))], 1),
        "angular_velocity": np.stack([zero, zero, rate * (180.0 / math.pi)], 1),
        "forward_vector": np.stack([cos, sin, zero], 1),
        "right_vector": np.stack([sin, -cos, zero], 1),
        "location": np.stack([poses[:, 0], poses[:, 1], zero], 1),
        "rotation": np.stack([zero, zero, poses[:, 2] * (180.0 / math.pi)], 1),
    }
    rows = zip(*(values.tolist() for values in columns.values()))
    return {str(first_step + t): dict(zip(columns, row)) for t, row in enumerate(rows)}
