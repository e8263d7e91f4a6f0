"""Bench2Drive result aggregation as the official tools compute it (merge_route_json, ability_benchmark 0.0.4,
efficiency_smoothness_benchmark): DS, SR, Efficiency, Comfortness and the five abilities, from parsed records.

File reading lives in `tools/bench2drive_merge.py`; choices and deviations are listed in docs/bench2drive_merge.md.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from scipy.signal import savgol_filter

OFFICIAL_ROUTE_COUNT = 220
"""DS and SR denominator hard-coded in merge_route_json (bench2drive220 / 0.0.4 val both have 220 routes)."""
SUCCESS_STATUSES = ("Completed", "Perfect")
SPEED_INFRACTIONS = "min_speed_infractions"
"""The only infraction list a success may contain (logged at every checkpoint since B2D v0.0.2)."""
INFRACTION_KEYS = (
    "collisions_layout", "collisions_pedestrian", "collisions_vehicle", "red_light", "stop_infraction",
    "outside_route_lanes", SPEED_INFRACTIONS, "yield_emergency_vehicle_infractions", "scenario_timeouts",
    "route_dev", "vehicle_blocked", "route_timeout",
)
ABILITY_NAMES = ("Overtaking", "Merging", "Emergency_Brake", "Give_Way", "Traffic_Signs")
ABILITY_TYPES: dict[str, frozenset[str]] = {
    # tools/ability_benchmark.py at 0.0.4 (7ec25d1); its Traffic_Signs list repeats 5 names, a set drops them.
    "Overtaking": frozenset({
        "Accident", "AccidentTwoWays", "ConstructionObstacle", "ConstructionObstacleTwoWays", "HazardAtSideLane",
        "HazardAtSideLaneTwoWays", "ParkedObstacle", "ParkedObstacleTwoWays", "VehicleOpensDoorTwoWays"}),
    "Merging": frozenset({
        "CrossingBicycleFlow", "EnterActorFlow", "HighwayExit", "InterurbanActorFlow", "HighwayCutIn",
        "InterurbanAdvancedActorFlow", "MergerIntoSlowTraffic", "MergerIntoSlowTrafficV2",
        "NonSignalizedJunctionLeftTurn", "NonSignalizedJunctionRightTurn", "NonSignalizedJunctionLeftTurnEnterFlow",
        "ParkingExit", "SequentialLaneChange", "SignalizedJunctionLeftTurn", "SignalizedJunctionRightTurn",
        "SignalizedJunctionLeftTurnEnterFlow"}),
    "Emergency_Brake": frozenset({
        "BlockedIntersection", "DynamicObjectCrossing", "HardBreakRoute", "OppositeVehicleTakingPriority",
        "OppositeVehicleRunningRedLight", "ParkingCutIn", "PedestrianCrossing", "ParkingCrossingPedestrian",
        "StaticCutIn", "VehicleTurningRoute", "VehicleTurningRoutePedestrian", "ControlLoss"}),
    "Give_Way": frozenset({"InvadingTurn", "YieldToEmergencyVehicle"}),
    "Traffic_Signs": frozenset({
        "BlockedIntersection", "OppositeVehicleTakingPriority", "OppositeVehicleRunningRedLight", "PedestrianCrossing",
        "VehicleTurningRoute", "VehicleTurningRoutePedestrian", "EnterActorFlow", "CrossingBicycleFlow",
        "NonSignalizedJunctionLeftTurn", "NonSignalizedJunctionRightTurn", "NonSignalizedJunctionLeftTurnEnterFlow",
        "SignalizedJunctionLeftTurn", "SignalizedJunctionRightTurn", "SignalizedJunctionLeftTurnEnterFlow",
        "T_Junction", "VanillaNonSignalizedTurn", "VanillaSignalizedTurnEncounterGreenLight",
        "VanillaSignalizedTurnEncounterRedLight", "VanillaNonSignalizedTurnEncounterStopsign"}),
}
JUNCTION_MARGIN = 8
"""Dense route points added to the first junction point before comparing with RC (ability_benchmark 0.0.4)."""
MAX_SPEED_PERCENT = 1000.0
"""Efficiency drops checkpoint values above this [%]; exactly 1000 is kept (efficiency_smoothness_benchmark)."""

# Comfort bounds: nuPlan ego comfort limits as copied into efficiency_smoothness_benchmark.py (open intervals).
MIN_LON_ACCEL, MAX_LON_ACCEL = -4.05, 2.40   # [m/s^2]
MAX_ABS_LAT_ACCEL = 4.89                     # [m/s^2]
MAX_ABS_JERK = 8.37                          # [m/s^3], of |a| (x, y only)
MAX_ABS_LON_JERK = 4.13                      # [m/s^3]
MAX_ABS_YAW_ACCEL = 1.93                     # [rad/s^2]; the official check is applied to the yaw *rate*
MAX_ABS_YAW_RATE = 0.95                      # [rad/s]; the official check is applied to deg/s values
COMFORT_CHUNK = 20
"""Samples per comfort chunk; a longer episode drops its partial tail chunk."""
SAVGOL_WINDOW, SAVGOL_ORDER = 7, 2
OFFICIAL_DT = 0.1
"""[s] derivative step of the official script, although the leaderboard ticks every 0.05 s."""
CARLA_DT = 0.05
"""[s] leaderboard tick (20 Hz), used by the corrected comfort figures."""
COMFORT_LIMITS = ("lon_accel", "lat_accel", "jerk", "lon_jerk", "yaw_accel", "yaw_rate")

_OFFICIAL_PERCENT = re.compile(r"\b(\d+\.?\d*)%")   # same matches as the official pattern: '1.5e+18%' reads 18
_FULL_PERCENT = re.compile(r"([-+]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|inf|nan))%", re.IGNORECASE)


class OfficialToolCrash(ValueError):
    """Raised in strict mode where an official Bench2Drive tool would stop with an exception."""


@dataclass
class IssueLog:
    """Warnings of one merge. `crash` marks a problem the official tools die on: an error in strict mode."""

    strict: bool = False
    messages: list[str] = field(default_factory=list)

    def warn(self, message: str) -> None:
        self.messages.append(message)

    def crash(self, message: str) -> None:
        if self.strict:
            raise OfficialToolCrash(message)
        self.messages.append(message)


class RouteInfo(Protocol):
    """What the abilities need from one route of the route XML (envs.backends.bench2drive_routes.B2DRoute)."""

    @property
    def route_id(self) -> str: ...
    @property
    def town(self) -> str: ...
    @property
    def scenario_type(self) -> str | None: ...        # type of the route's first <scenario>
    @property
    def has_scenario(self) -> bool: ...               # False: no <scenarios><scenario> (official crash)


@dataclass(frozen=True)
class RouteRecord:
    """One leaderboard route record, validated. `raw` is the record as read, for merged.json."""

    route_id: str                              # "RouteScenario_<id>_rep<k>"
    status: str
    score_composed: float                      # DS of the route, 0-100
    score_route: float                         # RC of the route, 0-100
    infractions: Mapping[str, tuple[str, ...]]
    save_name: str | None
    has_index: bool
    raw: Mapping

    @property
    def route_key(self) -> str | None:
        """`route_id.split('_')[1]`, what ability_benchmark compares with the XML id; None without a '_'."""
        parts = self.route_id.split("_")
        return parts[1] if len(parts) > 1 else None


def _number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name}={value!r}: must be a finite number")
    return float(value)


def parse_record(raw: object) -> RouteRecord:
    """Validate one `_checkpoint.records[]` entry; ValueError names the bad field."""
    if not isinstance(raw, Mapping):
        raise ValueError(f"record={type(raw).__name__}: must be a JSON object")
    route_id = raw.get("route_id")
    if not isinstance(route_id, str):
        raise ValueError(f"route_id={route_id!r}: must be a string like 'RouteScenario_<id>_rep<k>'")
    status = raw.get("status")
    if not isinstance(status, str):
        raise ValueError(f"status={status!r}: must be a string")
    scores = raw.get("scores")
    if not isinstance(scores, Mapping):
        raise ValueError(f"scores={scores!r}: must be an object with score_composed and score_route")
    infractions = raw.get("infractions")
    if not isinstance(infractions, Mapping):
        raise ValueError(f"infractions={infractions!r}: must be an object of message lists")
    missing = [key for key in INFRACTION_KEYS if key not in infractions]
    if missing:
        raise ValueError(f"infractions: missing {missing}")
    lists: dict[str, tuple[str, ...]] = {}
    for key, messages in infractions.items():
        if not isinstance(messages, list) or not all(isinstance(m, str) for m in messages):
            raise ValueError(f"infractions.{key}={messages!r}: must be a list of strings")
        lists[key] = tuple(messages)
    save_name = raw.get("save_name")
    return RouteRecord(
        route_id=route_id, status=status,
        score_composed=_number(scores.get("score_composed"), "scores.score_composed"),
        score_route=_number(scores.get("score_route"), "scores.score_route"),
        infractions=lists, save_name=save_name if isinstance(save_name, str) else None,
        has_index="index" in raw, raw={k: v for k, v in raw.items() if k != "index"},
    )


def is_success(record: RouteRecord) -> bool:
    """Status exactly Completed/Perfect and every infraction list except min_speed_infractions empty."""
    return record.status in SUCCESS_STATUSES and not any(
        messages for key, messages in record.infractions.items() if key != SPEED_INFRACTIONS)


def driving_score(records: Sequence[RouteRecord], denominator: int = OFFICIAL_ROUTE_COUNT) -> float:
    """Sum of stored score_composed over `denominator` (0-100); missing routes count 0, duplicates again."""
    return sum(r.score_composed for r in records) / denominator


def success_rate(records: Sequence[RouteRecord], denominator: int = OFFICIAL_ROUTE_COUNT) -> float:
    """Successes over `denominator` (a fraction); duplicates count again."""
    return sum(1 for r in records if is_success(r)) / denominator


def merged_order(records: Sequence[RouteRecord]) -> list[RouteRecord]:
    """Records as merged.json stores them: stable sort by route_id string, descending."""
    return sorted(records, key=lambda r: r.route_id, reverse=True)


# --- Efficiency -------------------------------------------------------------------------------------------

def speed_percent(message: str, corrected: bool = False) -> float | None:
    """The first '<number>%' of a min-speed message [%]; None without one.

    Official: digits with an optional decimal part, so '1.5e+18%' reads 18. Corrected: a full float
    literal (exponent, inf, nan) right before the '%'.
    """
    match = (_FULL_PERCENT if corrected else _OFFICIAL_PERCENT).search(message)
    return float(match.group(1)) if match else None


@dataclass(frozen=True)
class SpeedValues:
    """Checkpoint values of one record's min-speed messages, split by what Efficiency does with them."""

    kept: tuple[float, ...]        # [%]
    dropped: tuple[float, ...]     # over 1000 % (and, corrected, not finite)
    unparsed: tuple[str, ...]      # messages without a number: the official script crashes on them


def speed_values(messages: Sequence[str], corrected: bool = False) -> SpeedValues:
    """Parse a record's min_speed_infractions messages the official (or corrected) way."""
    kept, dropped, unparsed = [], [], []
    for message in messages:
        value = speed_percent(message, corrected)
        if value is None:
            unparsed.append(message)
        elif value > MAX_SPEED_PERCENT or (corrected and not math.isfinite(value)):
            dropped.append(value)
        else:
            kept.append(value)
    return SpeedValues(tuple(kept), tuple(dropped), tuple(unparsed))


# --- Comfortness ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MetricSeries:
    """Per-step ego kinematics an agent logs in metric_info.json, CARLA world frame, file order."""

    acceleration: np.ndarray      # (T, 3) [m/s^2]
    angular_velocity: np.ndarray  # (T, 3) [deg/s], as CARLA reports it
    forward_vector: np.ndarray    # (T, 3) unit
    right_vector: np.ndarray      # (T, 3) unit

    @property
    def num_steps(self) -> int:
        return int(self.acceleration.shape[0])


_METRIC_KEYS = ("acceleration", "angular_velocity", "forward_vector", "right_vector", "location", "rotation")


def parse_metric_info(obj: object) -> MetricSeries:
    """metric_info.json content (an object of steps, in file order) to arrays; ValueError on bad input.

    Every step must hold the six keys the official script reads, each a list of 3 numbers (NaN allowed:
    chunks holding one fail, as in the official script).
    """
    if not isinstance(obj, Mapping):
        raise ValueError(f"metric_info={type(obj).__name__}: must be an object of steps")
    columns: dict[str, list] = {key: [] for key in _METRIC_KEYS}
    for step, values in obj.items():
        if not isinstance(values, Mapping):
            raise ValueError(f"metric_info[{step!r}]={values!r}: must be an object")
        for key in _METRIC_KEYS:
            vector = values.get(key)
            if not (isinstance(vector, list) and len(vector) == 3 and all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) for v in vector)):
                raise ValueError(f"metric_info[{step!r}].{key}={vector!r}: must be a list of 3 numbers")
            columns[key].append(vector)
    arrays = {key: np.asarray(columns[key], dtype=np.float64).reshape(-1, 3) for key in _METRIC_KEYS[:4]}
    return MetricSeries(**arrays)


def _unwrap_like_heading(values: np.ndarray) -> np.ndarray:
    """Subtract multiples of 2*pi so successive samples differ by at most pi, per row (..., n).

    The official script applies nuPlan's heading unwrap to the yaw *rate*; np.round rounds half to even there too.
    """
    steps = np.round(np.diff(values, axis=-1) / (2.0 * np.pi))
    adjustments = np.concatenate([np.zeros_like(values[..., :1]), np.cumsum(steps, axis=-1)], axis=-1)
    return values - 2.0 * np.pi * adjustments


def comfort_checks(acceleration: np.ndarray, angular_velocity: np.ndarray, forward_vector: np.ndarray,
                   right_vector: np.ndarray, corrected: bool = False) -> np.ndarray:
    """Which of the six comfort limits hold at every sample of each piece: (G, 6) bool, order COMFORT_LIMITS.

    Inputs are (G, n, 3) arrays, n >= 3 samples per piece, smoothed with window min(7, n). Official: yaw rate
    in deg/s unwrapped with 2*pi, derivative step 0.1 s, 'yaw accel' = the smoothed yaw rate again.
    Corrected: yaw rate in rad/s, no unwrap, step 0.05 s, yaw accel = derivative of the smoothed yaw rate.
    """
    n = acceleration.shape[-2]
    if n < SAVGOL_ORDER + 1:
        raise ValueError(f"samples={n}: the smoothing window must exceed polyorder {SAVGOL_ORDER} (needs >= 3)")
    window = min(SAVGOL_WINDOW, n)
    dt = CARLA_DT if corrected else OFFICIAL_DT
    acc_xy = acceleration[..., :2]
    lon = (acc_xy * forward_vector[..., :2]).sum(-1)       # (G, n) projections in the ground plane
    lat = (acc_xy * right_vector[..., :2]).sum(-1)
    magnitude = np.hypot(acc_xy[..., 0], acc_xy[..., 1])
    yaw_rate = angular_velocity[..., 2]
    yaw_rate = np.deg2rad(yaw_rate) if corrected else _unwrap_like_heading(yaw_rate)

    def smooth(x: np.ndarray, deriv: int = 0) -> np.ndarray:
        return savgol_filter(x, window, SAVGOL_ORDER, deriv=deriv, delta=dt, axis=-1)

    lon, lat, magnitude, yaw_rate = smooth(lon), smooth(lat), smooth(magnitude), smooth(yaw_rate)
    jerk, lon_jerk = smooth(magnitude, 1), smooth(lon, 1)   # derivatives of the already smoothed series
    yaw_accel = smooth(yaw_rate, 1) if corrected else yaw_rate

    def inside(x: np.ndarray, low: float, high: float) -> np.ndarray:
        return ((x > low) & (x < high)).all(-1)            # NaN fails, like the official comparison

    return np.stack([
        inside(lon, MIN_LON_ACCEL, MAX_LON_ACCEL),
        inside(lat, -MAX_ABS_LAT_ACCEL, MAX_ABS_LAT_ACCEL),
        inside(jerk, -MAX_ABS_JERK, MAX_ABS_JERK),
        inside(lon_jerk, -MAX_ABS_LON_JERK, MAX_ABS_LON_JERK),
        inside(yaw_accel, -MAX_ABS_YAW_ACCEL, MAX_ABS_YAW_ACCEL),
        inside(yaw_rate, -MAX_ABS_YAW_RATE, MAX_ABS_YAW_RATE),
    ], axis=-1)


def record_comfortness(series: MetricSeries, corrected: bool = False) -> float:
    """Passing chunks / chunks: <= 20 samples are one piece (1.0 or 0.0), longer series 20-sample chunks
    with the partial tail dropped. ValueError below 3 samples (the official script crashes there)."""
    n = series.num_steps
    if n < SAVGOL_ORDER + 1:
        raise ValueError(f"samples={n}: at least 3 metric samples are needed")
    count, size = (1, n) if n <= COMFORT_CHUNK else (n // COMFORT_CHUNK, COMFORT_CHUNK)
    arrays = (series.acceleration, series.angular_velocity, series.forward_vector, series.right_vector)
    checks = comfort_checks(*(x[: count * size].reshape(count, size, 3) for x in arrays), corrected=corrected)
    return int(checks.all(-1).sum()) / count    # a short episode scores 1.0 or 0.0


# --- Abilities --------------------------------------------------------------------------------------------

JunctionLookup = Callable[[RouteInfo], "tuple[int, int] | None"]
"""(c, n) for a route: c = 1-based index of the first junction point of its 1 m dense route, n = that route's
number of points; None when no point is in a junction; ValueError when it cannot tell (e.g. no map file)."""


@dataclass(frozen=True)
class AbilityReport:
    """Success rate per ability (None: no evaluated route), their mean, counts and the routes without a record."""

    scores: Mapping[str, float | None]
    counts: Mapping[str, tuple[int, int]]            # (successes + extra credit, evaluated routes)
    mean: float | None
    crashed: tuple[tuple[str | None, str], ...]      # (scenario type, route id), in visiting (town) order


def _first_match(route_id: str, records: Sequence[RouteRecord], log: IssueLog) -> RouteRecord | None:
    for record in records:
        key = record.route_key
        if key is None:       # never matches; without strict mode it was reported once up front
            if log.strict:
                log.crash(f"record {record.route_id!r}: route_id has no '_<id>' part "
                          "(official ability_benchmark crashes: IndexError)")
            continue
        if key == route_id:
            return record
    return None


def _extra_credit(route: RouteInfo, record: RouteRecord, junctions: JunctionLookup, log: IssueLog) -> bool:
    try:
        found = junctions(route)
    except ValueError as error:
        log.crash(f"route {route.route_id} ({route.town}): Traffic_Signs extra credit not given: {error}")
        return False
    if found is None:
        log.crash(f"route {route.route_id} ({route.town}): no junction on its dense route; Traffic_Signs extra "
                  "credit not given (official ability_benchmark raises RuntimeError)")
        return False
    first, count = found
    # Strict '>' and the +8 points margin: ability_benchmark 0.0.4; c counts from 1.
    return (record.score_route / 100.0 > float(first + JUNCTION_MARGIN) / count
            and not record.infractions["stop_infraction"] and not record.infractions["red_light"])


def ability_scores(routes: Sequence[RouteInfo], records: Sequence[RouteRecord],
                   junctions: JunctionLookup | None = None, log: IssueLog | None = None) -> AbilityReport:
    """ability_benchmark 0.0.4 on records in merged order (the first record of a route id wins).

    Routes are visited sorted by town (stable); a route without a record is `crashed` and left out of every
    denominator. A failed Traffic_Signs route with no red-light/stop infraction gets +1 success when
    score_route/100 > (c + 8)/n; `junctions` None (no maps) skips that credit with a warning.
    """
    log = log if log is not None else IssueLog()
    if not log.strict:
        for record in records:
            if record.route_key is None:
                log.warn(f"record {record.route_id!r}: route_id has no '_<id>' part, so it matches no route "
                         "(official ability_benchmark crashes: IndexError)")
    ok = {name: 0 for name in ABILITY_NAMES}
    total = {name: 0 for name in ABILITY_NAMES}
    crashed: list[tuple[str | None, str]] = []
    skipped_credit = 0
    for route in sorted(routes, key=lambda r: r.town):
        if not route.has_scenario:
            log.crash(f"route {route.route_id}: no <scenarios><scenario> element; left out of the abilities "
                      "(official ability_benchmark crashes: AttributeError)")
            continue
        record = _first_match(route.route_id, records, log)
        if record is None:
            crashed.append((route.scenario_type, route.route_id))
            continue
        success = is_success(record)
        for name in ABILITY_NAMES:
            if route.scenario_type in ABILITY_TYPES[name]:
                total[name] += 1
                ok[name] += int(success)
        if route.scenario_type in ABILITY_TYPES["Traffic_Signs"] and not success:
            if junctions is None:
                skipped_credit += 1
                if log.strict:        # the official script loads the town's map here and fails without it
                    log.crash(f"route {route.route_id}: a failed Traffic_Signs route needs its town's OpenDRIVE "
                              "map (pass --maps)")
            elif _extra_credit(route, record, junctions, log):
                ok["Traffic_Signs"] += 1
    if skipped_credit:
        log.warn(f"Traffic_Signs extra credit skipped for {skipped_credit} failed Traffic_Signs route(s): no "
                 "OpenDRIVE maps given (--maps); Traffic_Signs can be lower than the official figure")
    scores: dict[str, float | None] = {}
    for name in ABILITY_NAMES:
        if total[name]:
            scores[name] = ok[name] / total[name]
        else:
            scores[name] = None
            log.crash(f"ability {name}: no evaluated route; reported as null "
                      "(official ability_benchmark crashes: ZeroDivisionError)")
    present = [v for v in scores.values() if v is not None]
    mean = sum(present) / len(present) if present else None
    if 0 < len(present) < len(ABILITY_NAMES):
        log.warn(f"abilities mean is over the {len(present)} abilities with evaluated routes, not all 5")
    return AbilityReport(scores, {n: (ok[n], total[n]) for n in ABILITY_NAMES}, mean, tuple(crashed))


# --- Merge ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MergeReport:
    """Everything the official tools report for one result set, plus what went wrong (see to_json)."""

    driving_score: float                 # 0-100, sum of score_composed / 220
    success_rate: float                  # fraction, successes / 220
    eval_num: int                        # valid records read
    efficiency: float | None             # [%] mean over records with min-speed values
    comfortness: float | None            # fraction, mean over records with metric data
    abilities: AbilityReport
    warnings: tuple[str, ...]
    records: tuple[RouteRecord, ...]     # valid records in merged order (merged.json)
    corrected: Mapping[str, float | None] | None = None   # {"efficiency", "comfortness"} with --corrected

    def to_json(self) -> dict:
        """The command's output object; abilities' `crashed` lists route ids."""
        abilities = {**self.abilities.scores, "mean": self.abilities.mean,
                     "crashed": [route_id for _, route_id in self.abilities.crashed]}
        out = {"driving_score": self.driving_score, "success_rate": self.success_rate, "eval_num": self.eval_num,
               "efficiency": self.efficiency, "comfortness": self.comfortness, "abilities": abilities}
        if self.corrected is not None:
            out["corrected"] = dict(self.corrected)
        out["warnings"] = list(self.warnings)
        return out


def merged_json(report: MergeReport) -> dict:
    """merged.json as merge_route_json writes it (records without `index`, sorted by route_id descending)."""
    return {"_checkpoint": {"records": [dict(r.raw) for r in report.records]}, "driving score": report.driving_score,
            "success rate": report.success_rate, "eval num": report.eval_num}


def ability_json(abilities: AbilityReport) -> dict:
    """<result>_ability.json as ability_benchmark writes it (`crashed` as [scenario type, route id] pairs)."""
    return {**abilities.scores, "mean": abilities.mean, "crashed": [list(pair) for pair in abilities.crashed]}


def _series(record: RouteRecord, label: str, metric_infos: Mapping[str, object], log: IssueLog) -> MetricSeries | None:
    skip = "left out of Comfortness (official efficiency_smoothness_benchmark crashes"
    if record.save_name is None:
        log.crash(f"{label}: no save_name; {skip}: TypeError)")
        return None
    info = metric_infos.get(record.save_name)
    if info is None or isinstance(info, str):
        reason = info or f"no metric_info.json for save_name {record.save_name!r}"
        log.crash(f"{label}: {reason}; {skip})")
        return None
    try:
        series = info if isinstance(info, MetricSeries) else parse_metric_info(info)
    except ValueError as error:
        log.crash(f"{label}: {error}; {skip})")
        return None
    n = series.num_steps
    if n < SAVGOL_ORDER + 1:
        log.crash(f"{label}: {n} metric sample(s), fewer than 3; {skip}: ValueError)")
        return None
    if n < SAVGOL_WINDOW and n % 2 == 0:
        log.warn(f"{label}: {n} metric samples are smoothed with an even window of {n} "
                 "(scipy >= 1.8 does this; older scipy raises)")
    return series


def _comfort(series: MetricSeries, label: str, corrected: bool, log: IssueLog) -> tuple[float, float | None] | None:
    """(official, corrected or None) comfortness of one record; None where the smoothing fails."""
    try:
        official = record_comfortness(series)
        fixed = record_comfortness(series, corrected=True) if corrected else None
    except ValueError as error:      # scipy's edge fit rejects NaN/inf reaching a chunk's first/last window
        log.crash(f"{label}: comfort smoothing failed ({error}); left out of Comfortness "
                  "(official efficiency_smoothness_benchmark crashes: ValueError)")
        return None
    if not all(np.isfinite(x).all() for x in (series.acceleration, series.angular_velocity,
                                             series.forward_vector, series.right_vector)):
        log.warn(f"{label}: metric data holds NaN/inf; the chunks holding them fail, as in the official script")
    return official, fixed


def _efficiency(record: RouteRecord, label: str, log: IssueLog) -> float | None:
    messages = record.infractions[SPEED_INFRACTIONS]
    if not messages:
        return None                       # the official script skips such records silently
    values = speed_values(messages)
    for message in values.unparsed:
        log.crash(f"{label}: min-speed message without a number {message!r}; ignored "
                  "(official efficiency_smoothness_benchmark crashes: AttributeError)")
    for message in messages:
        official, full = speed_percent(message), speed_percent(message, corrected=True)
        if official is not None and full is not None and official != full:
            log.warn(f"{label}: min-speed message {message!r} reads as {official:g} % with the official pattern "
                     f"(the full number is {full:g})")
    if not values.kept:
        log.crash(f"{label}: no min-speed value at or below 1000 %; left out of Efficiency "
                  "(official efficiency_smoothness_benchmark crashes: ZeroDivisionError)")
        return None
    return sum(values.kept) / len(values.kept)


def _mean(values: list[float], what: str | None = None, log: IssueLog | None = None) -> float | None:
    if not values and log is not None:
        log.crash(f"{what}: no record to average; reported as null "
                  "(official efficiency_smoothness_benchmark crashes: ZeroDivisionError)")
    return sum(values) / len(values) if values else None


def merge_results(records: Sequence[object], routes: Sequence[RouteInfo], metric_infos: Mapping[str, object],
                  junctions: JunctionLookup | None = None, *, strict: bool = False, corrected: bool = False,
                  origins: Sequence[str] | None = None, warnings: Sequence[str] = ()) -> MergeReport:
    """All official Bench2Drive figures for raw leaderboard records, in reading order.

    `metric_infos` maps save_name to a MetricSeries, a raw metric_info.json object, or a string saying why it
    could not be read. `junctions` gives the Traffic_Signs junction point (see JunctionLookup); None skips
    that credit. `strict` raises OfficialToolCrash where an official tool would crash; otherwise each such
    problem is a warning that says what was done. `origins` labels records in warnings (e.g. file names),
    `warnings` are earlier ones (file reading) to keep first.
    """
    log = IssueLog(strict=strict, messages=list(warnings))
    parsed: list[RouteRecord] = []
    labels: dict[int, str] = {}
    for i, raw in enumerate(records):
        origin = origins[i] if origins is not None else f"record {i}"
        try:
            record = parse_record(raw)
        except ValueError as error:
            log.crash(f"{origin}: {error}; record skipped, counts 0 in DS/SR "
                      "(official merge_route_json crashes on it)")
            continue
        if not record.has_index:
            log.crash(f"{origin}: record {record.route_id} has no 'index'; kept "
                      "(official merge_route_json crashes: KeyError)")
        parsed.append(record)
        labels[id(record)] = f"{origin} ({record.route_id})"
    if len(parsed) != OFFICIAL_ROUTE_COUNT:
        log.warn(f"eval_num={len(parsed)}: not {OFFICIAL_ROUTE_COUNT}; DS and SR still divide by "
                 f"{OFFICIAL_ROUTE_COUNT} (missing routes count 0, duplicates count again)")
    seen: dict[str, list[str]] = {}
    for record in parsed:
        seen.setdefault(record.route_key or record.route_id, []).append(record.route_id)
    for key, ids in seen.items():
        if len(ids) > 1:
            log.warn(f"route {key}: {len(ids)} records {sorted(ids, reverse=True)}; each counts in DS, SR, "
                     f"Efficiency and Comfortness, the abilities use {sorted(ids, reverse=True)[0]}")
    ds, sr = driving_score(parsed), success_rate(parsed)
    ordered = merged_order(parsed)
    abilities = ability_scores(routes, ordered, junctions, log)
    comfort, comfort_fixed, efficiency, efficiency_fixed = [], [], [], []
    for record in ordered:                # the official script reads the metric file before the speeds
        label = labels[id(record)]
        series = _series(record, label, metric_infos, log)
        scores = _comfort(series, label, corrected, log) if series is not None else None
        if scores is not None:
            comfort.append(scores[0])
            if corrected:
                comfort_fixed.append(scores[1])
        value = _efficiency(record, label, log)
        if value is not None:
            efficiency.append(value)
        fixed = speed_values(record.infractions[SPEED_INFRACTIONS], corrected=True).kept if corrected else ()
        if fixed:
            efficiency_fixed.append(sum(fixed) / len(fixed))
    fixed_figures = {"efficiency": _mean(efficiency_fixed), "comfortness": _mean(comfort_fixed)} if corrected else None
    return MergeReport(
        driving_score=ds, success_rate=sr, eval_num=len(parsed), efficiency=_mean(efficiency, "Efficiency", log),
        comfortness=_mean(comfort, "Comfortness", log), abilities=abilities, warnings=tuple(log.messages),
        records=tuple(ordered), corrected=fixed_figures,
    )
