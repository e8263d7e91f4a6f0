"""PDM-Closed on a hand-built signalised road: free driving, a stopped car, a red light, batching."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from envs.sim.map import Area, Lane, RoadMap
from envs.sim.pdm_closed import PDMClosedConfig, _carry, pdm_closed_plan
from envs.sim.scene import AgentTracks, EgoHistory, LightStatus, Scene, TrafficLights
from envs.sim.vehicle import PACIFICA

LANE_W = 3.5
EGO_Y = -LANE_W / 2
STEPS = 41


def rect(x0, x1, y0, y1) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)


def signalised_road() -> RoadMap:
    """Eastbound two-lane road: RB0 (x 0..100), connector block RBC (x 100..120, inside intersection
    I), RB2 (x 120..220). Lanes `r` (y = -1.75) and `l` (y = 1.75); speed limit 15 m/s."""
    lanes, connectors = [], []
    for side, yc in (("r", EGO_Y), ("l", -EGO_Y)):
        band = (yc - LANE_W / 2, yc + LANE_W / 2)
        blocks = (("RB0", (0, 100), lanes), ("RBC", (100, 120), connectors), ("RB2", (120, 220), lanes))
        for block, (x0, x1), group in blocks:
            lane_id = {"RB0": "A", "RBC": "C", "RB2": "B"}[block] + side
            nxt = {"A": "C", "C": "B", "B": None}[lane_id[0]]
            prv = {"A": None, "C": "A", "B": "C"}[lane_id[0]]
            group.append(Lane(
                lane_id, block, rect(x0, x1, *band), np.stack([np.linspace(x0, x1, 11), np.full(11, yc)], 1),
                None if block == "RBC" else 15.0, (nxt + side,) if nxt else (), (prv + side,) if prv else (),
                is_connector=block == "RBC",
            ))
    return RoadMap(
        lanes=tuple(lanes), lane_connectors=tuple(connectors),
        roadblocks=(Area("RB0", rect(0, 100, -LANE_W, LANE_W)), Area("RB2", rect(120, 220, -LANE_W, LANE_W))),
        roadblock_connectors=(Area("RBC", rect(100, 120, -LANE_W, LANE_W)),),
        intersections=(Area("I", rect(99.5, 120.5, -LANE_W - 1, LANE_W + 1)),),
    )


def make_scene(x0: float = 10.0, speed: float = 10.0, cars=(), light: LightStatus | None = None, token="s") -> Scene:
    """Ego rear axle at (x0, -1.75) heading east at `speed`; `cars` are (x, y, speed) boxes moving east."""
    t = np.array([-1.5, -1.0, -0.5, 0.0])
    history = EgoHistory(t=t, pose=np.stack([x0 + speed * t, np.full(4, EGO_Y), np.zeros(4)], 1),
                         velocity=np.tile([speed, 0.0], (4, 1)), acceleration=np.zeros((4, 2)))
    agents = AgentTracks.empty()
    if cars:
        times = np.arange(STEPS) * 0.1
        pose = np.stack([np.stack([x + v * times, np.full(STEPS, y), np.zeros(STEPS)], 1) for x, y, v in cars])
        velocity = np.stack([np.stack([np.full(STEPS, v), np.zeros(STEPS)], 1) for _, _, v in cars])
        agents = AgentTracks(ids=tuple(f"car{i}" for i in range(len(cars))), types=np.zeros(len(cars), np.int64),
                             size=np.tile([4.5, 2.0], (len(cars), 1)), pose=pose, velocity=velocity,
                             valid=np.ones((len(cars), STEPS), bool))
    lights = TrafficLights.empty()
    if light is not None:
        lights = TrafficLights(("Cr",), np.full((1, STEPS), int(light), np.int64))
    return Scene(token=token, map=signalised_road(), route_roadblock_ids=("RB0", "RBC", "RB2"), history=history,
                 agents=agents, traffic_lights=lights)


def front_bumper_x(poses: torch.Tensor) -> torch.Tensor:
    return poses[..., 0] + PACIFICA.front_length * torch.cos(poses[..., 2])


@pytest.fixture(scope="module")
def scenes():
    return {
        "empty": make_scene(token="empty"),
        "car": make_scene(cars=[(45.0, EGO_Y, 0.0)], token="car"),
        "red": make_scene(x0=60.0, light=LightStatus.RED, token="red"),
        "green": make_scene(x0=60.0, light=LightStatus.GREEN, token="green"),
    }


@pytest.fixture(scope="module")
def batch(scenes):
    return pdm_closed_plan([scenes[k] for k in ("empty", "car", "red", "green")])


@pytest.fixture(scope="module")
def single_empty(scenes):
    return pdm_closed_plan([scenes["empty"]])


def test_empty_road_picks_the_fastest_centred_proposal(batch):
    assert batch.chosen[0].item() == 4  # centerline path, 1.0 x speed limit
    plan = batch.plans[0]
    assert plan.interval == pytest.approx(0.1) and plan.poses.shape == (50, 3)
    # First IDM step: NAVSIM reads a lead that was never filled (progress 0) -> full braking, -3 m/s^2;
    # progress moves with the old speed: 10 m/s x 0.1 s, then 9.7 m/s x 0.1 s.
    np.testing.assert_allclose(plan.poses[:2], [[1.0, 0.0, 0.0], [1.97, 0.0, 0.0]], atol=1e-12)
    # Offsetting -1 m puts the right corners off the road (y < -3.5): DAC = 0 for those 5 proposals.
    assert torch.all(batch.sub_scores.dac[0, 5:10] == 0.0) and torch.all(batch.scores[0, 5:10] == 0.0)
    assert torch.all(batch.sub_scores.dac[0, :5] == 1.0)
    assert batch.scores[0].argmax().item() == 4


def test_stopped_car_ahead_stops_the_plan_behind_it(batch):
    chosen = batch.chosen[1].item()
    assert batch.sub_scores.nc[1, chosen].item() == 1.0
    car_rear = 45.0 - 4.5 / 2
    # every centred proposal stops short of the car, and so does the simulated chosen one
    assert torch.all(front_bumper_x(batch.proposals[1, :5, -1]) < car_rear)
    assert front_bumper_x(batch.simulated.pose[1, chosen, -1]).item() < car_rear
    assert front_bumper_x(batch.trajectory[1, -1]).item() < car_rear
    # IDM creeps up to its 1 m jam gap and never closes it
    assert car_rear - front_bumper_x(batch.trajectory[1, -1]).item() > 1.0


def test_red_light_on_the_route_connector_stops_before_it(batch):
    # Connector polygon starts at x = 100: the plan halts with its bumper before the stop line.
    assert front_bumper_x(batch.trajectory[2]).max().item() < 100.0
    assert torch.all(front_bumper_x(batch.proposals[2, :5, -1]) < 100.0)
    # Same scene with a green light drives through.
    assert front_bumper_x(batch.trajectory[3, -1]).item() > 105.0


def test_plan_is_deterministic_and_batching_changes_nothing(batch, single_empty, scenes):
    again = pdm_closed_plan([scenes["empty"]])
    assert torch.equal(again.trajectory, single_empty.trajectory)
    assert torch.equal(again.scores, single_empty.scores)
    assert single_empty.chosen[0] == batch.chosen[0]
    torch.testing.assert_close(single_empty.trajectory[0], batch.trajectory[0], rtol=0, atol=1e-9)
    torch.testing.assert_close(single_empty.scores[0], batch.scores[0], rtol=0, atol=1e-9)
    torch.testing.assert_close(single_empty.proposals[0], batch.proposals[0], rtol=0, atol=1e-9)


def test_lead_buffer_carries_within_a_group():
    # NAVSIM fills one buffer per path: a proposal that writes nothing keeps the previous one's value.
    written = torch.tensor([[False, True, False, False, True, False]])
    value = torch.arange(6, dtype=torch.float64)[None] + 10
    expected = torch.tensor([[0.0, 11, 11, 0, 14, 14]], dtype=torch.float64)
    torch.testing.assert_close(_carry(written, value, group=3), expected)


def test_config_and_route_are_checked():
    with pytest.raises(ValueError, match="speed_fractions"):
        PDMClosedConfig(speed_fractions=())
    with pytest.raises(ValueError, match="output_steps"):
        PDMClosedConfig(output_steps=30)
    lost = make_scene(token="lost")
    lost = Scene(token="lost", map=lost.map, route_roadblock_ids=(), history=lost.history, agents=lost.agents,
                 traffic_lights=lost.traffic_lights)
    with pytest.raises(ValueError, match="route lane"):
        pdm_closed_plan([lost])
