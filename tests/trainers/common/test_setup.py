"""Run set-up shared by the trainers: device, seeds and run folder, plain configs, the trainable agent,
the SFT start (made once), the vector env, resuming in place."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import Enum

import numpy as np
import pytest
import torch

from agents import load_agent
from envs.navsim import NavsimConfig
from envs.navsim_obs import ObservationConfig
from trainers.common import setup
from trainers.common.checkpoint import checkpoint_path, rng_state, save_atomic
from trainers.common.setup import (
    AgentSpec, Resume, RunConfig, config_to_dict, eval_summary, make_train_vec, resolve_device, resume_latest, sft_start, start_run,
    trainable_agent,
)


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")


def test_start_run_seeds_everything_and_names_the_folder(tmp_path):
    assert start_run(RunConfig(seed=3, dir=str(tmp_path / "mine")), "grpo", "navsim") == tmp_path / "mine"
    first = (random.random(), np.random.rand(), torch.rand(()).item())
    folder = start_run(RunConfig(seed=3, root=str(tmp_path)), "ppo", "navsim-v2")
    assert (random.random(), np.random.rand(), torch.rand(()).item()) == first
    assert folder.parent == tmp_path and folder.name.startswith("ppo__navsim-v2__3__")


class Colour(str, Enum):
    red = "red"


@dataclass
class Nested:
    colour: Colour = Colour.red
    sizes: tuple[int, ...] = (1, 2)
    extra: dict = field(default_factory=lambda: {"shade": Colour.red})


def test_config_to_dict_gives_plain_values():
    assert config_to_dict(Nested()) == {"colour": "red", "sizes": [1, 2], "extra": {"shade": "red"}}


def test_trainable_agent_fresh_loaded_and_rejected(tmp_path):
    fresh = trainable_agent(AgentSpec("ego_mlp", {"hidden": 8}), None, torch.device("cpu"), ("sample", "log_prob"))
    assert fresh.name == "ego_mlp" and fresh.config.hidden == 8
    fresh.save(tmp_path / "mlp.pt")
    loaded = trainable_agent(AgentSpec("ego_mlp"), tmp_path / "mlp.pt", torch.device("cpu"), ("sample",))
    assert all(torch.equal(a, b) for a, b in zip(fresh.parameters(), loaded.parameters()))
    with pytest.raises(ValueError, match="holds a 'ego_mlp' agent, agent.name='vla_flow'"):
        trainable_agent(AgentSpec("vla_flow"), tmp_path / "mlp.pt", torch.device("cpu"), ("sample",))
    with pytest.raises(ValueError, match="agent.kwargs="):
        trainable_agent(AgentSpec("ego_mlp", {"widht": 3}), None, torch.device("cpu"), ("sample",))
    with pytest.raises(ValueError, match="not a trainable agent"):
        trainable_agent(AgentSpec("constant_velocity"), None, torch.device("cpu"), ("sample",))


@dataclass
class _RLConfig:
    """The fields of an RL config that `sft_start` reads."""

    env: NavsimConfig
    agent: AgentSpec
    run: RunConfig = field(default_factory=RunConfig)
    device: str = "cpu"
    train_split: str = ""
    max_train_scenes: int | None = None
    teacher: str = "human"
    progress: bool = False


def test_sft_start_trains_once_then_reuses_the_file(train_scenes, tmp_path, monkeypatch):
    cfg = _RLConfig(NavsimConfig(data="files", obs=ObservationConfig(cameras=())), AgentSpec("ego_mlp", {"hidden": 8}),
                    train_split=str(train_scenes))
    path = sft_start(cfg, tmp_path, steps=2, lr=1e-3)
    assert path == tmp_path / "sft" / "agent.pt" and path.is_file()
    assert load_agent(path).name == "ego_mlp"
    import trainers.sft

    monkeypatch.setattr(trainers.sft, "train", lambda cfg: pytest.fail("SFT ran again"))
    assert sft_start(cfg, tmp_path, steps=2, lr=1e-3) == path


@pytest.mark.filterwarnings("ignore:.*out of date:DeprecationWarning")
def test_make_train_vec_steps_a_batch(train_scenes):
    config = NavsimConfig(data="files", split=str(train_scenes), obs=ObservationConfig(cameras=()))
    vec = make_train_vec("roadloop/Navsim-v1", 3, config)
    obs, _ = vec.reset(seed=0)
    assert vec.num_envs == 3 and obs["ego_status"].shape[0] == 3
    vec.close()


def test_resume_latest_restores_parts_and_generators(tmp_path, capsys):
    layer = torch.nn.Linear(2, 1)
    gen = torch.Generator().manual_seed(5)
    assert resume_latest(tmp_path, Resume.auto, {"model": layer}, {"g": gen}, {}) == (0, {})
    saved = {k: v.clone() for k, v in layer.state_dict().items()}
    save_atomic({"step": 4, "model": saved, "rng": rng_state({"g": gen}), "config": {"lr": 0.1}, "extra": 9},
                checkpoint_path(tmp_path, 4))
    expected = torch.rand(3, generator=gen)
    with torch.no_grad():
        layer.weight.add_(1.0)
    assert resume_latest(tmp_path, Resume.never, {"model": layer}, {"g": gen}, {}) == (0, {})
    step, state = resume_latest(tmp_path, Resume.auto, {"model": layer}, {"g": gen}, {"lr": 0.2})
    assert step == 4 and state["extra"] == 9 and torch.equal(layer.weight, saved["weight"])
    assert torch.equal(torch.rand(3, generator=gen), expected)
    assert capsys.readouterr().out.strip().endswith(f"resumed {tmp_path} at step 4; changed settings: lr")


def test_hydra_schema_rejects_unknown_keys():
    from hydra import compose, initialize_config_dir

    from trainers.sft import SFTConfig

    setup.register_schema(SFTConfig, "sft_schema")
    with initialize_config_dir(str(setup.CONFIG_DIR), version_base="1.3"):
        cfg = setup.from_hydra(compose("sft", overrides=["steps=7", "agent=ego_mlp"]))
        assert isinstance(cfg, SFTConfig) and cfg.steps == 7 and cfg.agent.name == "ego_mlp"
        with pytest.raises(Exception, match="stepz"):
            compose("sft", overrides=["stepz=7"])


@dataclass
class _Knobs:
    steps: int = 1
    lr: float = 0.1
    decay: float = 0.0
    gamma: float = 1.0
    limit: int | None = None


@pytest.mark.parametrize("kwargs, match", [
    ({"steps": 0}, r"steps=0: must be >= 1"), ({"lr": 0.0}, r"lr=0.0: must be positive"),
    ({"lr": float("inf")}, r"lr=inf: must be positive and finite"), ({"decay": -1e-9}, r"decay=-1e-09: must be finite and >= 0"),
    ({"decay": float("nan")}, r"decay=nan"), ({"gamma": 1.5}, r"gamma=1.5: must be within \[0, 1\]"),
    ({"limit": 0}, r"limit=0: must be >= 1"),
])
def test_check_ranges_names_the_field(kwargs, match):
    from trainers.common.setup import check_ranges

    bounds = dict(at_least_one=("steps", "limit"), positive=("lr",), non_negative=("decay",), unit=("gamma",))
    check_ranges(_Knobs(), **bounds)            # defaults pass, limit=None passes
    with pytest.raises(ValueError, match=match):
        check_ranges(_Knobs(**kwargs), **bounds)
    with pytest.raises(RuntimeError):
        check_ranges(_Knobs(), device="cuda:x")


def test_eval_summary_compares_first_and_last_evaluation():
    result = {"step": 200, "first_eval": {"pdms": 0.551, "num_scenes": 64.0}, "last_eval": {"pdms": 0.7101, "num_scenes": 64.0}}
    assert eval_summary(result) == "evaluation pdms (64 scenes): 55.1 at the start -> 71.0 after 200 steps"
    two_stage = {"step": 3, "first_eval": {"epdms": 0.25, "pdms": 0.9}, "last_eval": {"epdms": 0.5, "pdms": 0.1, "num_scenes": 8}}
    assert eval_summary(two_stage) == "evaluation epdms (8 scenes): 25.0 at the start -> 50.0 after 3 steps"
    assert eval_summary({"step": 1, "first_eval": None, "last_eval": None}) is None
