"""scenarios/bench2drive/routes.py: the 220-route built-in set and its leaderboard-2.0 route XML."""

import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from envs.backends.bench2drive_routes import read_routes
from envs.metrics.bench2drive_results import ability_scores
from scenarios import SCENARIOS, route_rngs
from scenarios.bench2drive import (
    B2D_SCENARIO_TYPES, build_builtin_route, build_route, builtin_route_set, write_route_xml,
)


def test_builtin_set_ids_types_and_seeds():
    routes = builtin_route_set()
    assert len(routes) == 220
    assert [r.route_id for r in routes] == [str(i) for i in range(220)]
    assert routes[0].scenario_type == "Accident" and routes[4].scenario_type == "Accident"
    assert routes[5].scenario_type == "AccidentTwoWays" and routes[219].scenario_type == B2D_SCENARIO_TYPES[-1]
    assert [(r.index, r.seed) for r in routes[10:15]] == [(10, 0), (11, 1), (12, 2), (13, 3), (14, 4)]
    assert all(r.has_scenario for r in routes)
    for name in B2D_SCENARIO_TYPES:
        assert sum(r.scenario_type == name for r in routes) == 5


def test_builtin_route_is_the_types_route_at_its_seed():
    entry = builtin_route_set()[17]                       # type 3, seed 2
    scenario = build_builtin_route(17)
    assert (entry.scenario_type, entry.seed) == ("ParkedObstacleTwoWays", 2)
    assert scenario.route_id == 17 and scenario.scenario_type == "ParkedObstacleTwoWays" and scenario.seed == 2
    assert scenario.town == entry.town
    assert np.array_equal(scenario.route, build_route("ParkedObstacleTwoWays", 2).route)
    for bad in (220, -1, True, 3.0):
        with pytest.raises(ValueError, match="^route_id="):
            build_builtin_route(bad)


def test_builtin_routes_feed_the_ability_tool():
    routes = builtin_route_set()[:10]                     # Accident (O) and AccidentTwoWays (O), no records
    report = ability_scores(routes, [])
    assert len(report.crashed) == 10 and report.counts["Overtaking"] == (0, 0)
    assert {name for name, _ in report.crashed} == {"Accident", "AccidentTwoWays"}


def test_route_xml_round_trip(tmp_path):
    flow_id = B2D_SCENARIO_TYPES.index("SignalizedJunctionLeftTurn") * 5 + 1
    scenarios = [build_builtin_route(i) for i in (0, flow_id, 219)]
    path = tmp_path / "routes.xml"
    write_route_xml(scenarios, path)
    parsed = read_routes(path)
    assert [r.route_id for r in parsed] == ["0", str(flow_id), "219"]
    for route, scenario in zip(parsed, scenarios):
        assert route.town == scenario.town and route.scenario_type == scenario.scenario_type and route.has_scenario
        keys = scenario.route[::2, :2]
        if (len(scenario.route) - 1) % 2:
            keys = np.concatenate([keys, scenario.route[-1:, :2]])
        assert route.keypoints[:, :2] == pytest.approx(keys, abs=5e-4)
        assert np.all(route.keypoints[:, 2] == 0.0)
    assert not list(tmp_path.glob(".*.tmp"))              # written atomically
    root = ET.parse(path).getroot()
    accident = root.find("route").find("scenarios").find("scenario")
    params = SCENARIOS["Accident"].sample_params(route_rngs("Accident", 0)[0])
    assert accident.get("name") == "Accident_1" and accident.get("type") == "Accident"
    assert float(accident.find("distance").get("value")) == pytest.approx(params.distance, abs=5e-4)
    assert accident.find("direction").get("value") == "right"
    trigger = accident.find("trigger_point")
    x, y, heading = scenarios[0].route[scenarios[0].trigger_index]
    assert (float(trigger.get("x")), float(trigger.get("y"))) == pytest.approx((x, y), abs=5e-4)
    assert float(trigger.get("yaw")) == pytest.approx(math.degrees(heading), abs=5e-4)
    flow = root.findall("route")[1].find("scenarios").find("scenario")
    interval = flow.find("source_dist_interval")
    flow_params = SCENARIOS["SignalizedJunctionLeftTurn"].sample_params(route_rngs("SignalizedJunctionLeftTurn", 1)[0])
    assert float(interval.get("from")) == pytest.approx(flow_params.source_dist_interval_from, abs=5e-4)
    assert float(interval.get("to")) == pytest.approx(flow_params.source_dist_interval_to, abs=5e-4)
    assert flow.find("source_dist_interval_to") is None
    with pytest.raises(ValueError, match="^routes:"):
        write_route_xml(["Accident"], tmp_path / "bad.xml")
