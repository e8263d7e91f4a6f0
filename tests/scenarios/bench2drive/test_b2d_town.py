"""scenarios/bench2drive/town.py: town names, junction approaches, light programs and stop signs."""

import math

import numpy as np
import pytest

from envs.sim.mapgen import generate_map
from envs.sim.scene import LightStatus
from scenarios.bench2drive import town
from scenarios.bench2drive.town import (
    LANE_WIDTH, TOWN_CONFIGS, approach_of, approaches, cycling, held, pick_town, scenario_programs, stop_signs,
    town_map, town_name, traffic_lights,
)
from scenarios.lanes import connector_turn

G, Y, R = int(LightStatus.GREEN), int(LightStatus.YELLOW), int(LightStatus.RED)


def state_at(program, t: float) -> int:
    """Hand evaluation of a LightProgram (prelude, then the cycle from its offset)."""
    for status, duration in program.prelude:
        if t < duration:
            return status
        t -= duration
    local = (t + program.offset) % sum(d for _, d in program.cycle)
    for status, duration in program.cycle:
        if local < duration:
            return status
        local -= duration
    raise AssertionError("unreachable")


def test_town_name_rebuilds_the_same_map():
    name = town_name("t_junction", 7)
    assert name == "Builtin_t_junction_7"
    gen = town_map(name)
    fresh = generate_map("t_junction", np.random.default_rng(7), TOWN_CONFIGS["t_junction"])
    assert [lane.id for lane in gen.map.lanes] == [lane.id for lane in fresh.map.lanes]
    assert all(np.array_equal(a.centerline, b.centerline) for a, b in zip(gen.map.lanes, fresh.map.lanes))
    for bad in ("Town12", "Builtin_moon_3", "Builtin_straight_x"):
        with pytest.raises(ValueError, match="^town="):
            town_map(bad)


def test_pick_town_takes_the_first_accepted_draw(monkeypatch):
    rng = np.random.default_rng(0)
    seen = []
    name, gen = pick_town(("straight", "curved"), lambda g: seen.append(g) or len(seen) == 3, rng)
    assert gen is seen[-1] and name.startswith(("Builtin_straight_", "Builtin_curved_"))
    monkeypatch.setattr(town, "TOWN_TRIES", 2)
    with pytest.raises(ValueError, match=r"^kinds=\('merge',\): no town in 2 draws"):
        pick_town(("merge",), lambda g: False, rng)


def test_intersection_approaches_and_their_relations():
    gen = town_map(town_name("intersection", 3))
    arms = approaches(gen)
    assert len(arms) == 4
    for arm in arms:
        # stop line from the right road edge to the centre line, as wide as the incoming lanes
        assert float(np.hypot(*np.diff(arm.stop_line, axis=0)[0])) == pytest.approx(len(arm.lanes) * LANE_WIDTH)
        left = arm.connector(gen, "left")
        right = arm.connector(gen, "right")
        assert left[0] == arm.lanes[0] and right[0] == arm.lanes[-1]    # innermost turns left, outermost right
        assert connector_turn(gen.map.lanes_by_id[left[1]]) == "left"
        assert approach_of(gen, arm.lanes[-1]) is not None
        others = sorted(arm.relation(o) for o in arms if o is not arm)
        assert others == ["left", "opposite", "right"]
    with pytest.raises(ValueError, match="^lane_id='nope'"):
        approach_of(gen, "nope")


def test_left_relation_is_traffic_from_the_ego_left():
    gen = town_map(town_name("intersection", 3))
    ego = approaches(gen)[0]
    from_left = next(a for a in approaches(gen) if ego.relation(a) == "left")
    # traffic from the left drives towards the ego's right: heading = ego heading - 90 deg
    assert math.remainder(from_left.heading - ego.heading + math.pi / 2, 2 * math.pi) == pytest.approx(0.0, abs=1e-6)


def test_two_phase_cycle_by_hand():
    phase0, phase1 = cycling(0, 0.0), cycling(1, 0.0)
    assert phase0.cycle == ((G, 12.0), (Y, 3.0), (R, 17.0)) and phase1.offset == pytest.approx(16.0)
    assert [state_at(phase0, t) for t in (0.0, 11.9, 12.0, 15.0, 31.9, 32.0)] == [G, G, Y, R, R, G]
    assert [state_at(phase1, t) for t in (0.0, 15.9, 16.0, 27.9, 28.0, 31.0, 32.0)] == [R, R, G, G, Y, R, R]
    for t in np.arange(0.0, 64.0, 0.25):            # never both green
        assert not (state_at(phase0, t) == G and state_at(phase1, t) == G)
    late = cycling(0, 40.0, prelude=((R, 5.0),))
    assert late.offset == pytest.approx(8.0) and state_at(late, 4.0) == R and state_at(late, 5.0) == G


def test_scenario_programs_hold_the_ego_green_after_its_prelude():
    gen = town_map(town_name("intersection", 3))
    arms = approaches(gen)
    ego, flow_arm = arms[0], next(a for a in arms if arms[0].relation(a) == "opposite")
    lights = traffic_lights(gen, scenario_programs(ego, (flow_arm,), ((R, 5.0),)))
    by_lanes = {tuple(l.lane_ids): l for l in lights}
    ego_light, flow_light = by_lanes[ego.connectors], by_lanes[flow_arm.connectors]
    assert [state_at(ego_light.program, t) for t in (0.0, 4.9, 5.0, 199.0)] == [R, R, G, G]
    assert state_at(flow_light.program, 0.0) == G and state_at(flow_light.program, 199.0) == G
    others = [l for l in lights if l is not ego_light and l is not flow_light]
    assert len(others) == 2 and all(state_at(l.program, t) == R for l in others for t in (0.0, 100.0))
    assert held(LightStatus.RED).cycle == ((R, 300.0),)
    assert ego_light.heading == pytest.approx(ego.heading) and np.array_equal(ego_light.stop_line, ego.stop_line)


def test_t_junction_has_one_stop_sign_on_the_minor_road():
    gen = town_map(town_name("t_junction", 3))
    signs = stop_signs(gen)
    assert len(signs) == 1
    sign = signs[0]
    minor = next(a for a in approaches(gen) if set(a.connectors) <= set(gen.stop_sign_connectors))
    assert sign.lane_ids == minor.connectors and sign.length == 3.0
    assert sign.width == pytest.approx(len(minor.lanes) * LANE_WIDTH)
    back = minor.stop_line.mean(0) - 1.5 * np.array([math.cos(minor.heading), math.sin(minor.heading)])
    assert sign.center == pytest.approx(back) and sign.heading == pytest.approx(minor.heading)
    assert stop_signs(town_map(town_name("intersection", 3))) == ()
