"""roadloop/Bench2Drive-v0 on a few built-in routes: check_env (vector and BEV observations), seeding, bad
actions, batched == single, autoreset, episode-end records, DS reward telescoping, waypoint actions, reward
modes, and the CARLA backend against the in-process stand-in."""

from __future__ import annotations

import sys

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

import envs  # noqa: F401  (registers the ids)
from envs.bench2drive.env import Bench2DriveVectorEnv
from envs.metrics.bench2drive_results import parse_metric_info, parse_record

ROUTES = (0, 1, 5)
"""Accident seeds 0 and 1, AccidentTwoWays seed 0: no ControlLoss noise, so rows do not share random draws."""
ENV_ID = "roadloop/Bench2Drive-v0"
CRUISE = np.array([0.0, 0.4, 0.0], np.float32)


def make(**kw):
    return gym.make(ENV_ID, routes=kw.pop("routes", ROUTES), **kw)


def drive(obs):
    """Steer at the second target point (CARLA sign: positive right), gentle throttle."""
    x, y = obs["target_points"][..., 1, 0], obs["target_points"][..., 1, 1]
    steer = np.clip(-2.0 * np.arctan2(y, np.maximum(x, 1.0)), -1.0, 1.0)
    return np.stack([steer, np.full_like(steer, 0.4), np.zeros_like(steer)], -1).astype(np.float32)


@pytest.mark.parametrize("obs", [{}, {"bev": True, "bev_size": 64, "privileged": True}])
def test_check_env(obs):
    check_env(make(obs=obs).unwrapped, skip_render_check=True)


def test_same_seed_same_episode_and_route_option():
    a, b = make(), make()
    obs_a, info_a = a.reset(seed=11)
    obs_b, info_b = b.reset(seed=11)
    assert info_a["route_id"] == info_b["route_id"]
    for _ in range(30):
        obs_a, reward_a, *_ = a.step(drive(obs_a))
        obs_b, reward_b, *_ = b.step(drive(obs_b))
    for key in obs_a:
        np.testing.assert_array_equal(obs_a[key], obs_b[key])
    assert reward_a == reward_b
    _, info = a.reset(options={"route_id": 5})
    assert info["route_id"] == 5 and info["scenario_type"] == "AccidentTwoWays" and info["route_completion"] == 0.0
    with pytest.raises(ValueError, match="route_id=7"):
        a.reset(options={"route_id": 7})


def test_bad_actions_are_rejected():
    env = make().unwrapped
    with pytest.raises(RuntimeError, match="reset"):
        env.step(CRUISE)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"action.shape=\(2,\)"):
        env.step(np.zeros(2, np.float32))
    with pytest.raises(ValueError, match="finite"):
        env.step(np.array([0.0, np.nan, 0.0]))
    with pytest.raises(ValueError, match=r"action.throttle=1.5: must lie in \[0, 1\]"):
        env.step(np.array([0.0, 1.5, 0.0]))
    with pytest.raises(ValueError, match="action.steer"):
        env.step(np.array([-1.2, 0.0, 0.0]))
    waypoints = make(action="waypoints").unwrapped
    waypoints.reset(seed=0)
    with pytest.raises(ValueError, match=r"expected \(1, 6, 2\)"):
        waypoints.step(np.zeros((6, 3)))


@pytest.mark.parametrize("kwargs, message", [
    ({"reward": "dense"}, "reward='dense': expected one of ds, carl, sparse"),
    ({"action": "steer"}, "action='steer': expected one of control, waypoints"),
    ({"routes": (3, 999)}, r"routes=\[999\]: not built-in route ids"),
    ({"backend": "carla"}, "backend=carla needs the path of a Bench2Drive route XML"),
    ({"max_ticks": 1}, "max_ticks=1: must be an int >= 2"),
])
def test_bad_config_is_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        gym.make(ENV_ID, **kwargs)


def test_batched_equals_single():
    vector = gym.make_vec(ENV_ID, num_envs=3, vectorization_mode="vector_entry_point", routes=ROUTES)
    assert isinstance(vector.unwrapped, Bench2DriveVectorEnv)
    obs, info = vector.reset(seed=0, options={"route_ids": list(ROUTES)})
    singles = [make() for _ in ROUTES]
    single_obs = [env.reset(seed=0, options={"route_id": r})[0] for env, r in zip(singles, ROUTES)]
    for _ in range(40):
        actions = drive(obs)
        obs, reward, terminated, truncated, info = vector.step(actions)
        for b, env in enumerate(singles):
            single_obs[b], single_reward, *_, single_info = env.step(actions[b])
            for key in obs:
                np.testing.assert_allclose(obs[key][b], single_obs[b][key], rtol=1e-6, atol=1e-6)
            assert reward[b] == pytest.approx(single_reward, abs=1e-12)
            assert info["route_completion"][b] == single_info["route_completion"]
    assert info["route_id"].tolist() == list(ROUTES)


def test_episode_end_record_metric_info_and_ds_reward():
    env = make(max_ticks=60)
    obs, info = env.reset(seed=0, options={"route_id": 0})
    total, steps = 0.0, 0
    while True:
        obs, reward, terminated, truncated, info = env.step(drive(obs))
        total, steps = total + reward, steps + 1
        if terminated or truncated:
            break
    assert truncated and not terminated and steps == 61     # past the tick cap: Failed - TickRuntime
    assert info["status"] == "Failed - TickRuntime"
    record = parse_record(info["record"])
    assert record.status == "Failed - TickRuntime" and record.route_id == "RouteScenario_0_rep0"
    assert record.score_composed == pytest.approx(info["driving_score"], abs=1e-4)
    assert total == pytest.approx(info["driving_score"] / 100, abs=1e-9)   # DS increments telescope
    assert len(info["metric_info"]) == 61 and parse_metric_info(info["metric_info"]) is not None
    with pytest.raises(RuntimeError, match="reset"):
        env.step(CRUISE)


@pytest.mark.parametrize("mode, names", [("sparse", {"driving_score"}), ("carl", {"progress", "terminal"})])
def test_reward_modes_in_the_env(mode, names):
    env = make(reward=mode, max_ticks=20)
    obs, _ = env.reset(seed=0, options={"route_id": 1})
    rewards = []
    for _ in range(21):
        obs, reward, terminated, truncated, info = env.step(drive(obs))
        rewards.append(reward)
        assert set(info["reward_terms"]) == names
    assert truncated
    if mode == "sparse":
        assert rewards[:-1] == [0.0] * 20 and rewards[-1] == pytest.approx(info["driving_score"] / 100)
    else:
        assert sum(rewards) == pytest.approx(info["route_completion"] / 100)   # no infraction, below the limit


def test_terminate_on_collision_ends_at_the_crash():
    """Route 0 (Accident): steering along the route at 0.6 throttle runs into the accident's props."""
    env = make(reward="carl", terminate_on_collision=True)
    obs, _ = env.reset(seed=0, options={"route_id": 0})
    for _ in range(400):
        action = drive(obs)
        action[1] = 0.6
        obs, reward, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            break
    assert terminated and info["status"] == "Failed" and reward < -0.99      # CaRL terminal penalty
    assert info["reward_terms"]["terminal"] == -1.0 and len(info["infractions"]) == 1
    record = parse_record(info["record"])
    assert len(record.infractions["collisions_layout"]) == 1 and record.score_composed < record.score_route


def test_vector_autoreset_same_step():
    vector = gym.make_vec(ENV_ID, num_envs=2, vectorization_mode="vector_entry_point", routes=ROUTES, max_ticks=20)
    obs, _ = vector.reset(seed=1)
    for step in range(21):
        obs, reward, terminated, truncated, info = vector.step(drive(obs))
    assert truncated.all() and not terminated.any()
    assert info["_final_obs"].all() and info["final_info"]["status"].tolist() == ["Failed - TickRuntime"] * 2
    assert "final_obs" not in info["final_info"] and info["final_info"]["tick"].tolist() == [20, 20]   # last scored
    assert all(parse_record(r).status == "Failed - TickRuntime" for r in info["record"])
    assert info["tick"].tolist() == [0, 0] and info["route_completion"].tolist() == [0.0, 0.0]   # new episodes
    assert info["final_obs"][0]["ego"][0] > 0.0 and obs["ego"][:, 0].tolist() == [0.0, 0.0]   # speed kept / reset
    obs, *_ = vector.step(drive(obs))
    assert vector.unwrapped.batch.crit.tick.tolist() == [1, 1]


def test_waypoints_drive_forward():
    env = make(action="waypoints")
    obs, _ = env.reset(seed=0, options={"route_id": 0})
    plan = (obs["target_points"][:6] * np.array([0.5, 1.0])).astype(np.float32)   # ~5 m/s along the route
    for _ in range(40):
        obs, reward, *_ = env.step(plan)
    assert obs["ego"][0] > 2.0


def test_carla_backend_runs_the_env_on_the_standin(tmp_path, monkeypatch):
    from tests.envs.bench2drive.carla_standin import StandinServer, make_carla_module
    from tests.envs.bench2drive.test_carla_backend import FAST, route_of, turn_scenario

    server = StandinServer({"Town01": turn_scenario()})
    monkeypatch.setitem(sys.modules, "carla", make_carla_module(server))
    route, extras = route_of(server.towns["Town01"])
    points = "".join(f'<position x="{x}" y="{y}" z="{z}"/>' for x, y, z in route.keypoints)
    x, y, z, yaw = extras.trigger
    (tmp_path / "routes.xml").write_text(
        f'<routes><route id="{route.route_id}" town="Town01"><waypoints>{points}</waypoints><scenarios>'
        f'<scenario name="Accident_1" type="Accident"><trigger_point x="{x}" y="{y}" z="{z}" yaw="{yaw}"/>'
        f'</scenario></scenarios></route></routes>')
    env = gym.make(ENV_ID, backend="carla", routes=str(tmp_path / "routes.xml"), carla=dict(FAST), max_ticks=30)
    obs, info = env.reset(seed=0)
    assert info["scenario_type"] == "Accident" and obs["target_points"][0, 0] > 0
    for _ in range(31):
        obs, reward, terminated, truncated, info = env.step(drive(obs))
    assert truncated and parse_record(info["record"]).status == "Failed - TickRuntime"
    assert info["route_completion"] > 0 and info["record"]["route_id"] == "RouteScenario_3_rep0"
    with pytest.raises(ValueError, match="num_envs=2"):
        gym.make_vec(ENV_ID, num_envs=2, vectorization_mode="vector_entry_point", backend="carla",
                     routes=str(tmp_path / "routes.xml"), carla=dict(FAST))
    env.close()
