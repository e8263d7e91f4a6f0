"""Deterministic evaluation: observation trimming, batching helpers, equality with the env's reward,
the privileged path, RNG isolation and the BEV picture."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import envs  # noqa: F401  (registers the ids)
from agents import make_agent
from envs.navsim import NavsimConfig
from envs.navsim_obs import ObservationConfig
from trainers.common.rollout import Evaluation, agent_obs_config, evaluate, select_obs, stack_obs

FILES = dict(data="files", obs=ObservationConfig(cameras=()))


def test_agent_obs_config_keeps_only_what_the_agent_reads():
    full = ObservationConfig(cameras=("cam_l0", "cam_f0"), bev=True, privileged=True)
    trimmed = agent_obs_config(frozenset({"ego_status", "cam_f0", "bev"}), full)
    assert trimmed.cameras == ("cam_f0",) and trimmed.bev and not trimmed.privileged
    assert agent_obs_config(frozenset(), full).cameras == ()
    with pytest.raises(ValueError, match="cam_b0"):
        agent_obs_config(frozenset({"cam_b0"}), full)


def test_stack_and_select_nested_observations():
    a = {"x": np.array([[1], [2]]), "p": {"y": np.array([10, 20])}}
    b = {"x": np.array([[3]]), "p": {"y": np.array([30])}}
    both = stack_obs([a, b])
    assert both["x"].tolist() == [[1], [2], [3]] and both["p"]["y"].tolist() == [10, 20, 30]
    picked = select_obs(both, np.array([2, 0]))
    assert picked["x"].tolist() == [[3], [1]] and picked["p"]["y"].tolist() == [30, 10]


def test_human_replay_scores_one_on_scenes_referenced_by_their_human(train_scenes):
    # the reference is the human plan, so its progress ratio is 1 (up to the float32 plan); the
    # logged human passes every check
    scores = evaluate(make_agent("human"), NavsimConfig(**FILES), str(train_scenes), num_scenes=4, batch_size=3, progress=False)
    assert scores["num_scenes"] == 4
    for key in ("pdms", "nc", "dac", "ep", "ttc", "c"):
        assert scores[key] == pytest.approx(1.0, abs=1e-6), key


@pytest.mark.filterwarnings("ignore:.*out of date:DeprecationWarning")  # gymnasium: v1 next to v2
def test_scores_equal_the_vector_env_rewards(train_scenes):
    agent = make_agent("constant_velocity")
    evaluation = Evaluation(NavsimConfig(**FILES), str(train_scenes), num_scenes=6, batch_size=4)
    evaluation.run(agent, progress=False)
    by_token = {evaluation.source.scene(i).token: row for i, row in enumerate(evaluation.rows)}
    vec = gym.make_vec("roadloop/Navsim-v1", num_envs=3, vectorization_mode="vector_entry_point",
                       split=str(train_scenes), **FILES)
    obs, _ = vec.reset(seed=0)
    _, reward, _, _, info = vec.step(agent.act(obs))
    for b, token in enumerate(info["scene_token"]):
        assert reward[b] == by_token[token]["pdms"]
        assert info["ep"][b] == by_token[token]["ep"]


def test_mean_is_over_scenes_and_plans_are_kept(train_scenes):
    evaluation = Evaluation(NavsimConfig(**FILES), str(train_scenes), num_scenes=5, batch_size=2)
    assert evaluation.num_blocks == 3
    scores = evaluation.run(make_agent("constant_velocity"), progress=False)
    assert scores["pdms"] == pytest.approx(np.mean([r["pdms"] for r in evaluation.rows]), abs=1e-12)
    status = np.stack([evaluation.observations(k, ObservationConfig(cameras=()))["ego_status"] for k in (0, 1)]).reshape(4, 4, 7)
    speed = np.hypot(status[:, -1, 3], status[:, -1, 4])
    np.testing.assert_allclose(evaluation.plans[:4, -1, 0], 4.0 * speed, rtol=1e-5)  # constant velocity: 4 s ahead


def test_evaluation_leaves_the_callers_rng_alone(train_scenes):
    class NoisyAgent:
        name, inputs, privileged = "noisy", frozenset({"ego_status"}), False

        def act(self, obs, gen=None, scenes=None):
            plans = np.zeros((len(obs["ego_status"]), 8, 3), np.float32)
            plans[..., 0] = np.arange(1, 9) * (1.0 + torch.rand(()).item())
            return plans

    evaluation = Evaluation(NavsimConfig(**FILES), str(train_scenes), num_scenes=2, batch_size=2)
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    first = evaluation.run(NoisyAgent(), seed=5, progress=False)
    assert torch.equal(torch.rand(3), expected)
    assert evaluation.run(NoisyAgent(), seed=5, progress=False) == first  # same seed, same plans


def test_bad_plans_and_arguments_are_rejected(train_scenes):
    class NaNAgent:
        name, inputs, privileged = "nan", frozenset(), False

        def act(self, obs, gen=None, scenes=None):
            return np.full((len(obs["ego_status"]), 8, 3), np.nan, np.float32)

    with pytest.raises(ValueError, match="action"):
        evaluate(NaNAgent(), NavsimConfig(**FILES), str(train_scenes), num_scenes=1, batch_size=1, progress=False)
    with pytest.raises(ValueError, match="num_scenes=0"):
        Evaluation(NavsimConfig(**FILES), str(train_scenes), num_scenes=0, batch_size=1)


def test_render_draws_the_last_plan(train_scenes):
    evaluation = Evaluation(NavsimConfig(**FILES), str(train_scenes), num_scenes=1, batch_size=1)
    with pytest.raises(ValueError, match="index=0"):
        evaluation.render(0)
    evaluation.run(make_agent("constant_velocity"), progress=False)
    image = evaluation.render(0, extra_plans=np.zeros((8, 3), np.float32))
    assert image.shape == (384, 384, 3) and image.dtype == np.uint8
    assert (image == np.array([255, 140, 0], np.uint8)).all(-1).any()  # the plan's orange


def test_run_logged_writes_the_scores_under_score_namespace(train_scenes, tmp_path):
    from trainers.common.logging import RunLogger, read_scalars

    agent = make_agent("constant_velocity")
    evaluation = Evaluation(NavsimConfig(**FILES), str(train_scenes), num_scenes=3, batch_size=3)
    with RunLogger(tmp_path / "run", {"seed": 0}) as logger:
        scores = evaluation.run_logged(agent, logger, step=7, progress=False, images=1)
    logged = read_scalars(tmp_path / "run")[7]
    assert logged == {f"score/{k}": v for k, v in scores.items() if k != "num_scenes"}
    assert (tmp_path / "run" / "media" / "charts_bev_0_00000007.png").is_file()
