"""envs.metrics.bench2drive_results: hand-worked DS/SR, Efficiency, Comfortness and ability cases."""

from dataclasses import dataclass

import numpy as np
import pytest

from envs.metrics.bench2drive_results import (
    INFRACTION_KEYS, OFFICIAL_ROUTE_COUNT, IssueLog, MetricSeries, OfficialToolCrash, ability_json, ability_scores,
    comfort_checks, driving_score, is_success, merge_results, merged_json, merged_order, parse_metric_info,
    parse_record, record_comfortness, speed_percent, speed_values, success_rate,
)

LIMITS = {"lon_accel": 0, "lat_accel": 1, "jerk": 2, "lon_jerk": 3, "yaw_accel": 4, "yaw_rate": 5}


def record(route_id="RouteScenario_1_rep0", status="Completed", score=100.0, rc=100.0, speeds=(),
           save_name=None, index=0, **infractions):
    lists = {key: [] for key in INFRACTION_KEYS}
    lists["min_speed_infractions"] = [f"Average speed is {v}% of the surrounding traffic's one" for v in speeds]
    lists.update({k: list(v) for k, v in infractions.items()})
    raw = {"route_id": route_id, "status": status, "infractions": lists, "save_name": save_name,
           "scores": {"score_route": rc, "score_penalty": 1.0, "score_composed": score}}
    if index is not None:
        raw["index"] = index
    return raw


@dataclass(frozen=True)
class Route:                   # stand-in for envs.backends.bench2drive_routes.B2DRoute
    route_id: str
    town: str
    scenario_type: str | None
    has_scenario: bool = True


COVERED = [Route(str(100 + i), "Town01", t) for i, t in
           enumerate(("Accident", "ParkingExit", "HardBreakRoute", "InvadingTurn", "T_Junction"))]
"""One route per ability, so that strict-mode tests do not stop at an empty ability first."""


def covering_records():
    return [record(f"RouteScenario_{r.route_id}_rep0", speeds=[100], save_name="smooth") for r in COVERED]


def series(acceleration, yaw_rate=0.0, n=None):
    """MetricSeries heading +x (forward (1,0,0), right (0,1,0)); acceleration (n,3) or a 3-vector, yaw in deg/s."""
    acceleration = np.asarray(acceleration, dtype=float)
    if acceleration.ndim == 1:
        acceleration = np.tile(acceleration, (n, 1))
    n = len(acceleration)
    angular = np.zeros((n, 3))
    angular[:, 2] = yaw_rate
    return MetricSeries(acceleration, angular, np.tile([1.0, 0, 0], (n, 1)), np.tile([0, 1.0, 0], (n, 1)))


def checks(s: MetricSeries, corrected=False):
    return comfort_checks(s.acceleration[None], s.angular_velocity[None], s.forward_vector[None],
                          s.right_vector[None], corrected=corrected)[0]


# --- success, DS, SR ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("raw, expected", [
    (record(speeds=[50.0]), True),                          # min-speed entries never fail a route
    (record(status="Perfect"), True),
    (record(status="Failed - TickRuntime"), False),
    (record(status="completed"), False),                    # exact string match
    (record(route_timeout=["Route timeout."]), False),      # every other list counts, route_timeout too
    (record(red_light=["ran a red light"]), False),
    (record(outside_route_lanes=["went 3% outside"]), False),
    (record(some_new_list=["x"]), False),                   # unknown lists count like the official loop
])
def test_success_rule(raw, expected):
    assert is_success(parse_record(raw)) is expected


def test_ds_and_sr_divide_by_220_whatever_the_record_count():
    records = [parse_record(r) for r in (record(score=100.0), record(score=50.0, status="Failed"),
                                         record(score=20.5, red_light=["x"]))]
    assert driving_score(records) == pytest.approx(170.5 / 220)
    assert success_rate(records) == pytest.approx(1 / 220)
    assert OFFICIAL_ROUTE_COUNT == 220


def test_duplicates_and_reps_count_again_but_abilities_take_the_first_in_merged_order():
    raws = [record("RouteScenario_7_rep0", status="Failed", score=40.0, rc=40.0),
            record("RouteScenario_7_rep1", score=90.0), record("RouteScenario_8_rep0", score=80.0),
            record("RouteScenario_8_rep0", score=70.0, status="Failed")]
    routes = [Route("7", "Town01", "Accident"), Route("8", "Town01", "ParkingExit")]
    report = merge_results(raws, routes, {})
    assert report.eval_num == 4
    assert report.driving_score == pytest.approx(280.0 / 220)
    assert report.success_rate == pytest.approx(2 / 220)
    # merged order: route_id descending, stable: rep1 of 7 comes before rep0; the two 8_rep0 keep file order
    assert [r.score_composed for r in report.records] == [80.0, 70.0, 90.0, 40.0]
    assert report.abilities.counts["Overtaking"] == (1, 1)     # 7_rep1 (success) wins over 7_rep0
    assert report.abilities.counts["Merging"] == (1, 1)        # the first 8_rep0 (success) wins
    assert any("route 7: 2 records" in w for w in report.warnings)
    assert any("eval_num=4: not 220" in w for w in report.warnings)


@pytest.mark.parametrize("raw, field", [
    ({"status": "Completed"}, "route_id"),
    (record(score=float("nan")), "scores.score_composed"),
    (record(score="100"), "scores.score_composed"),
    ({**record(), "infractions": {"red_light": []}}, "infractions: missing"),
    ({**record(), "infractions": {**record()["infractions"], "red_light": "x"}}, "infractions.red_light"),
])
def test_parse_record_names_the_bad_field(raw, field):
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        parse_record(raw)


# --- Efficiency --------------------------------------------------------------------------------------------

def test_speed_percent_reads_the_first_number_like_the_official_pattern():
    assert speed_percent("Average speed is 95.5% of the surrounding traffic's one") == 95.5
    assert speed_percent("Average speed is 100% of it") == 100.0
    assert speed_percent("Average speed is 1.5e+18% of it") == 18.0          # official regex quirk
    assert speed_percent("Average speed is 1.5e+18% of it", corrected=True) == 1.5e18
    assert speed_percent("Average speed is nan% of it") is None
    assert speed_percent("Average speed is 3e3% of it") is None                   # no word boundary before '3%'
    assert speed_percent("Average speed is 3e3% of it", corrected=True) == 3000.0
    assert speed_percent("no percentage here") is None


def test_speed_values_keep_1000_and_drop_above():
    values = speed_values(["a 1000% b", "a 1000.01% b", "a 12% b", "nothing"])
    assert values.kept == (1000.0, 12.0) and values.dropped == (1000.01,) and values.unparsed == ("nothing",)
    assert speed_values(["a 1.5e+18% b"]).kept == (18.0,)
    assert speed_values(["a 1.5e+18% b"], corrected=True).kept == ()


def test_efficiency_is_the_unweighted_mean_of_record_means():
    raws = [record("RouteScenario_1_rep0", speeds=[100, 50]), record("RouteScenario_2_rep0", speeds=[200]),
            record("RouteScenario_3_rep0"),                               # no messages: skipped
            record("RouteScenario_4_rep0", speeds=[1500, 30])]            # 1500 dropped -> 30
    report = merge_results(raws, [], {})
    # merged order 4, 3, 2, 1: (30 + 200 + 75) / 3
    assert report.efficiency == pytest.approx((30 + 200 + 75) / 3)


def test_all_speeds_over_1000_skips_the_record_or_fails_in_strict_mode():
    raws = [record("RouteScenario_1_rep0", speeds=[1200, 5000], save_name="smooth"),
            record("RouteScenario_2_rep0", speeds=[80], save_name="smooth")]
    report = merge_results(raws, [], {})
    assert report.efficiency == 80.0
    assert any("no min-speed value at or below 1000" in w for w in report.warnings)
    smooth = {"smooth": series(np.zeros((20, 3)))}
    with pytest.raises(OfficialToolCrash, match="no min-speed value at or below 1000"):
        merge_results(raws + covering_records(), COVERED, smooth, strict=True)


def test_corrected_efficiency_drops_exponent_values_the_official_pattern_misreads():
    raws = [record(speeds=["1.5e+18", 60])]
    report = merge_results(raws, [], {}, corrected=True)
    assert report.efficiency == pytest.approx((18 + 60) / 2)
    assert report.corrected["efficiency"] == 60.0
    assert any("reads as 18 %" in w for w in report.warnings)


# --- Comfortness -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("limit, good, bad", [
    ("lon_accel", [2.35, 0, 0], [2.45, 0, 0]),
    ("lon_accel", [-4.0, 0, 0], [-4.1, 0, 0]),
    ("lat_accel", [0, 4.85, 0], [0, -4.95, 0]),
])
def test_each_acceleration_limit(limit, good, bad):
    assert checks(series(good, n=20)).all()
    failed = checks(series(bad, n=20))
    assert not failed[LIMITS[limit]] and failed.sum() == 5


def test_jerk_limits_use_a_0_1_s_step_officially_and_0_05_s_corrected():
    k = np.arange(5.0)[:, None]
    # |a| rises 0.9 m/s^2 per sample: 9 m/s^3 with the official 0.1 s (> 8.37), lon stays 0
    lateral_fast = np.hstack([0 * k, 0.5 + 0.9 * k, 0 * k])
    lateral_slow = np.hstack([0 * k, 0.5 + 0.8 * k, 0 * k])                 # 8 m/s^3
    assert not checks(series(lateral_fast))[LIMITS["jerk"]] and checks(series(lateral_fast)).sum() == 5
    assert checks(series(lateral_slow)).all()
    # a_lon rises 0.42 per sample: 4.2 m/s^3 officially (> 4.13); 0.3 per sample: 3.0 officially, 6.0 corrected
    lon_fast = np.hstack([-3.0 + 0.42 * k, 0 * k, 0 * k])
    lon_slow = np.hstack([-3.0 + 0.3 * k, 0 * k, 0 * k])
    assert not checks(series(lon_fast))[LIMITS["lon_jerk"]] and checks(series(lon_fast)).sum() == 5
    assert checks(series(lon_slow)).all()
    corrected = checks(series(lon_slow), corrected=True)
    assert not corrected[LIMITS["lon_jerk"]] and corrected.sum() == 5


def test_yaw_rate_is_compared_in_deg_per_s_officially_and_rad_per_s_corrected():
    assert checks(series([0, 0, 0], yaw_rate=0.9, n=20)).all()
    slow_turn = checks(series([0, 0, 0], yaw_rate=1.0, n=20))      # 1 deg/s: a 290 m radius at 5 m/s
    assert not slow_turn[LIMITS["yaw_rate"]] and slow_turn.sum() == 5
    # 'yaw accel' is the constant rate again (its derivative is 0), held to 1.93
    steady = checks(series([0, 0, 0], yaw_rate=2.0, n=20))
    assert not steady[LIMITS["yaw_accel"]] and not steady[LIMITS["yaw_rate"]] and steady.sum() == 4
    assert checks(series([0, 0, 0], yaw_rate=1.0, n=20), corrected=True).all()
    assert checks(series([0, 0, 0], yaw_rate=54.0, n=20), corrected=True).all()        # 0.942 rad/s
    assert not checks(series([0, 0, 0], yaw_rate=55.0, n=20), corrected=True)[LIMITS["yaw_rate"]]


def test_corrected_yaw_acceleration_is_the_derivative_of_the_rate():
    ramp = lambda step: np.arange(5.0) * step                                      # noqa: E731
    fast = checks(series([0, 0, 0], yaw_rate=ramp(6.0), n=5), corrected=True)      # 120 deg/s^2 = 2.09 rad/s^2
    assert not fast[LIMITS["yaw_accel"]] and fast.sum() == 5
    assert checks(series([0, 0, 0], yaw_rate=ramp(5.0), n=5), corrected=True).all()   # 1.75 rad/s^2


def test_official_yaw_rate_is_phase_unwrapped_like_a_heading():
    two_pi = 2 * np.pi
    assert not checks(series([0, 0, 0], yaw_rate=two_pi, n=20))[LIMITS["yaw_rate"]]   # 6.28 deg/s fails
    jump = np.r_[np.zeros(10), np.full(10, two_pi)]     # the 2*pi jump is unwrapped away: all zero
    assert checks(series([0, 0, 0], yaw_rate=jump, n=20)).all()
    # corrected never unwraps: 360 deg/s = 2*pi rad/s stays a fast turn
    jump_360 = np.r_[np.zeros(10), np.full(10, 360.0)]
    assert not checks(series([0, 0, 0], yaw_rate=jump_360, n=20), corrected=True)[LIMITS["yaw_rate"]]


def test_chunking_drops_the_partial_tail_and_short_series_are_one_piece():
    acceleration = np.zeros((45, 3))
    acceleration[26:30, 0] = 5.0     # chunk 2 fails (5 m/s^2 > 2.40 for 4 samples survives the smoothing)
    acceleration[40:45, 0] = 9.0     # tail samples 40..44 are dropped
    assert record_comfortness(series(acceleration)) == 0.5
    short = np.zeros((20, 3))
    assert record_comfortness(series(short)) == 1.0
    short[16:20, 0] = 5.0
    assert record_comfortness(series(short)) == 0.0
    assert record_comfortness(series(np.zeros((3, 3)))) == 1.0
    with pytest.raises(ValueError, match="samples=2"):
        record_comfortness(series(np.zeros((2, 3))))


def test_nan_fails_its_chunk_or_crashes_the_smoothing_like_the_official_script():
    sideways = series(np.zeros((40, 3)))
    sideways.right_vector[10, 1] = np.nan     # only a_lat (never differentiated) is NaN, mid-chunk: chunk 0 fails
    assert record_comfortness(sideways) == 0.5
    acceleration = np.zeros((40, 3))
    acceleration[10, 0] = np.nan     # the jerk pass fits its edges on smoothed NaNs: scipy raises
    with pytest.raises(ValueError):
        record_comfortness(series(acceleration))
    report = merge_results([record(save_name="a")], [], {"a": series(acceleration)})
    assert report.comfortness is None and any("smoothing failed" in w for w in report.warnings)


def test_parse_metric_info_keeps_file_order_and_rejects_missing_keys():
    step = {"acceleration": [1, 2, 3], "angular_velocity": [0, 0, 9], "forward_vector": [1, 0, 0],
            "right_vector": [0, 1, 0], "location": [0, 0, 0], "rotation": [0, 0, 0]}
    parsed = parse_metric_info({"10": step, "2": {**step, "acceleration": [4, 5, 6]}})
    assert parsed.acceleration.tolist() == [[1, 2, 3], [4, 5, 6]] and parsed.angular_velocity[1, 2] == 9
    with pytest.raises(ValueError, match="rotation"):
        parse_metric_info({"0": {k: v for k, v in step.items() if k != "rotation"}})
    with pytest.raises(ValueError, match="object of steps"):
        parse_metric_info([step])


def test_comfortness_is_the_mean_over_records_and_reports_missing_metric_data():
    smooth = series(np.zeros((40, 3)))
    half = np.zeros((40, 3))
    half[28:32, 0] = 5.0
    raws = [record("RouteScenario_1_rep0", save_name="a"), record("RouteScenario_2_rep0", save_name="b"),
            record("RouteScenario_3_rep0", save_name="c"), record("RouteScenario_4_rep0", save_name="d"),
            record("RouteScenario_5_rep0")]
    infos = {"a": smooth, "b": series(half), "c": series(np.zeros((2, 3))), "d": "no file 'd/metric_info.json'"}
    report = merge_results(raws, [], infos)
    assert report.comfortness == pytest.approx((1.0 + 0.5) / 2)
    text = "\n".join(report.warnings)
    assert "2 metric sample(s), fewer than 3" in text and "no file 'd/metric_info.json'" in text
    assert "no save_name" in text
    infos["smooth"] = smooth
    with pytest.raises(OfficialToolCrash, match="no save_name"):
        merge_results(covering_records() + raws[-1:], COVERED, infos, strict=True)
    assert merge_results(covering_records(), COVERED, infos, strict=True).comfortness == 1.0


# --- Abilities ---------------------------------------------------------------------------------------------

def test_abilities_count_types_in_two_abilities_and_leave_crashed_routes_out():
    routes = [Route("4", "Town03", "YieldToEmergencyVehicle"), Route("1", "Town01", "Accident"),
              Route("2", "Town01", "PedestrianCrossing"), Route("3", "Town02", "ParkingExit"),
              Route("5", "Town01", "HardBreakRoute")]
    records = merged_order([parse_record(r) for r in (
        record("RouteScenario_1_rep0"), record("RouteScenario_2_rep0"),
        record("RouteScenario_3_rep0", status="Failed"))])
    log = IssueLog()
    report = ability_scores(routes, records, None, log)
    assert report.counts == {"Overtaking": (1, 1), "Merging": (0, 1), "Emergency_Brake": (1, 1),
                             "Give_Way": (0, 0), "Traffic_Signs": (1, 1)}
    assert report.scores["Give_Way"] is None and report.mean == pytest.approx(3 / 4)
    assert report.crashed == (("HardBreakRoute", "5"), ("YieldToEmergencyVehicle", "4"))   # town order
    assert any("Give_Way: no evaluated route" in m for m in log.messages)
    assert ability_json(report)["crashed"] == [["HardBreakRoute", "5"], ["YieldToEmergencyVehicle", "4"]]
    with pytest.raises(OfficialToolCrash, match="ZeroDivisionError"):
        ability_scores(routes, records, None, IssueLog(strict=True))


def test_record_matches_on_the_second_underscore_field_only():
    records = [parse_record(record("RouteScenario_07_rep0")), parse_record(record("Route7"))]
    log = IssueLog()
    report = ability_scores([Route("7", "Town01", "Accident")], records, None, log)
    assert report.crashed == (("Accident", "7"),)
    assert any("has no '_<id>' part" in m for m in log.messages)


def test_route_without_scenario_is_left_out_or_crashes_in_strict_mode():
    routes = [Route("1", "Town01", None, has_scenario=False), Route("2", "Town01", "Accident")]
    records = [parse_record(record("RouteScenario_1_rep0")), parse_record(record("RouteScenario_2_rep0"))]
    log = IssueLog()
    assert ability_scores(routes, records, None, log).counts["Overtaking"] == (1, 1)
    with pytest.raises(OfficialToolCrash, match="AttributeError"):
        ability_scores(routes, records, None, IssueLog(strict=True))


def _traffic_signs(rc, lookup, **infractions):
    raws = [record("RouteScenario_9_rep0", status="Failed - Agent got blocked", score=rc, rc=rc, **infractions)]
    return ability_scores([Route("9", "Town01", "SignalizedJunctionRightTurn")],
                          [parse_record(r) for r in raws], lookup, log := IssueLog()), log


def test_traffic_signs_extra_credit_needs_rc_strictly_past_the_junction_plus_8_points():
    calls = []
    lookup = lambda route: calls.append(route.route_id) or (51, 100)                 # noqa: E731
    credited, _ = _traffic_signs(59.01, lookup)
    assert credited.counts["Traffic_Signs"] == (1, 1) and credited.counts["Merging"] == (0, 1)
    assert _traffic_signs(59.0, lookup)[0].counts["Traffic_Signs"] == (0, 1)         # (51 + 8) / 100 not exceeded
    assert _traffic_signs(80.0, lookup, red_light=["x"])[0].counts["Traffic_Signs"] == (0, 1)
    assert _traffic_signs(80.0, lookup, stop_infraction=["x"])[0].counts["Traffic_Signs"] == (0, 1)
    assert calls == ["9"] * 4


def test_traffic_signs_extra_credit_without_maps_or_junction():
    report, log = _traffic_signs(90.0, None)
    assert report.counts["Traffic_Signs"] == (0, 1)
    assert any("extra credit skipped for 1" in m for m in log.messages)
    report, log = _traffic_signs(90.0, lambda route: None)
    assert report.counts["Traffic_Signs"] == (0, 1) and any("RuntimeError" in m for m in log.messages)

    def missing(route):
        raise ValueError("town='Town01': no OpenDRIVE file")
    report, log = _traffic_signs(90.0, missing)
    assert report.counts["Traffic_Signs"] == (0, 1) and any("no OpenDRIVE file" in m for m in log.messages)


def test_success_traffic_signs_route_never_asks_for_the_junction():
    lookup = lambda route: pytest.fail("not needed for a successful route")          # noqa: E731
    records = [parse_record(record("RouteScenario_9_rep0"))]
    report = ability_scores([Route("9", "Town01", "T_Junction")], records, lookup)
    assert report.counts["Traffic_Signs"] == (1, 1)


# --- Merge and official files ------------------------------------------------------------------------------

def test_record_without_index_is_kept_with_a_warning_and_bad_records_are_skipped():
    raws = [record("RouteScenario_1_rep0", index=None, score=60.0), {"route_id": "RouteScenario_2_rep0"}]
    report = merge_results(raws, [], {}, origins=["a.json record 0", "a.json record 1"])
    assert report.eval_num == 1 and report.driving_score == pytest.approx(60 / 220)
    assert any(w.startswith("a.json record 0: record RouteScenario_1_rep0 has no 'index'; kept") for w in report.warnings)
    assert any(w.startswith("a.json record 1: status=None") for w in report.warnings)
    with pytest.raises(OfficialToolCrash, match="no 'index'"):
        merge_results(raws, [], {}, strict=True)


def test_merged_json_matches_the_official_layout():
    raws = [record("RouteScenario_1_rep0", score=10.0, index=3), record("RouteScenario_2_rep0", score=30.0, index=0)]
    report = merge_results(raws, [], {})
    merged = merged_json(report)
    assert list(merged) == ["_checkpoint", "driving score", "success rate", "eval num"]
    assert [r["route_id"] for r in merged["_checkpoint"]["records"]] == ["RouteScenario_2_rep0", "RouteScenario_1_rep0"]
    assert all("index" not in r for r in merged["_checkpoint"]["records"])
    assert merged["driving score"] == pytest.approx(40 / 220) and merged["eval num"] == 2


def test_to_json_has_the_command_keys():
    out = merge_results([record()], [Route("1", "Town01", "Accident")], {}, corrected=True).to_json()
    assert list(out) == ["driving_score", "success_rate", "eval_num", "efficiency", "comfortness", "abilities",
                         "corrected", "warnings"]
    assert list(out["abilities"]) == ["Overtaking", "Merging", "Emergency_Brake", "Give_Way", "Traffic_Signs",
                                      "mean", "crashed"]
    assert out["efficiency"] is None and out["comfortness"] is None       # nothing to average: null, warned
