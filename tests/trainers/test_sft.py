"""SFT trainer: config validation, pure helpers (lr schedule, epoch sampler), 2 steps from Hydra
overrides, Ctrl-C + exact resume, and imitation raising PDMS."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from tests.trainers.conftest import compose_config
from trainers import sft
from trainers.common.checkpoint import latest_checkpoint
from trainers.common.logging import read_scalars
from trainers.sft import EpochSampler, LRSchedule, SFTConfig, lr_factor, train

REPO = Path(__file__).resolve().parents[2]


def config(*overrides: str) -> SFTConfig:
    """`python -m trainers.sft <overrides>` as a validated SFTConfig."""
    return compose_config("sft", SFTConfig, *overrides)


def tiny(train_scenes, eval_scenes, run_dir, *extra: str) -> SFTConfig:
    return config(
        "agent=ego_mlp", "agent.kwargs.hidden=32", "env.data=files", "env.obs.cameras=[]", "device=cpu",
        f"train_split={train_scenes}", f"eval_split={eval_scenes}", "batch_size=3", "lr=1e-3", "log_every=1",
        "eval_every=0", "progress=false", f"run.dir={run_dir}", *extra,
    )


# --- config ---


def test_defaults_compose_and_vla_is_an_alias_of_vla_token():
    default = config()
    assert default.agent.name == "vla_token" and default.train_split == "navtrain" and default.eval_split == "navtest"
    assert config("agent=vla").agent.name == "vla_token"
    picked = config("agent=vla_flow", "teacher=pdm_closed", "+agent.kwargs.preset=small", "env.obs.cameras=[cam_f0]")
    assert picked.agent.kwargs == {"preset": "small"} and picked.teacher is sft.Teacher.pdm_closed
    assert picked.env.obs.cameras == ("cam_f0",)


@pytest.mark.parametrize("override", ["stepz=3", "env.obs.camras=[]", "teacher=expert", "run.resume=maybe"])
def test_unknown_keys_and_values_are_errors(override):
    with pytest.raises(Exception, match="stepz|camras|expert|maybe"):
        config(override)


@pytest.mark.parametrize("field, value, match", [
    ("steps", 0, "steps=0"), ("lr", -1.0, "lr=-1.0"), ("grad_clip", float("nan"), "grad_clip=nan"),
    ("eval_every", -1, "eval_every=-1"), ("max_train_scenes", 0, "max_train_scenes=0"),
])
def test_bad_values_are_rejected_by_name(field, value, match):
    with pytest.raises(ValueError, match=match):
        SFTConfig(**{field: value})


# --- pure helpers ---


def test_lr_factor_warmup_then_cosine():
    assert [lr_factor(s, 2, 10, LRSchedule.constant) for s in (0, 1, 2, 9)] == [0.5, 1.0, 1.0, 1.0]
    # cosine over the 8 post-warm-up steps: half-way (step 6) is 0.5, the last step 0
    assert lr_factor(2, 2, 10, LRSchedule.cosine) == 1.0
    assert lr_factor(6, 2, 10, LRSchedule.cosine) == pytest.approx(0.5)
    assert lr_factor(10, 2, 10, LRSchedule.cosine) == pytest.approx(0.0)


def test_epoch_sampler_covers_each_epoch_and_round_trips():
    sampler = EpochSampler(5, np.random.default_rng(0))
    first = np.concatenate([sampler.next(2), sampler.next(2), sampler.next(1)])
    assert sorted(first.tolist()) == [0, 1, 2, 3, 4] and sampler.epoch == 1
    crossing = sampler.next(7)  # rest of nothing + a full epoch 2 + 2 of epoch 3
    assert sorted(crossing[:5].tolist()) == [0, 1, 2, 3, 4] and sampler.epoch == 3
    state, rng_state = sampler.state_dict(), sampler.rng.bit_generator.state
    expected = sampler.next(4)
    other = EpochSampler(5, np.random.default_rng(99))
    other.load_state_dict(state)
    other.rng.bit_generator.state = rng_state
    assert other.next(4).tolist() == expected.tolist()


def test_expert_data_blocks_and_teachers(train_scenes):
    from agents import make_agent
    from envs.navsim import NavsimConfig
    from envs.navsim_obs import ObservationConfig
    from envs.scene_file import load_scene

    files = sorted(train_scenes.glob("*.json"))
    human = sft.ExpertData(NavsimConfig(data="files"), str(train_scenes), None, make_agent("human"),
                           ObservationConfig(cameras=()), block=4)
    obs, expert = human.batch(np.array([5, 0, 5]))
    assert sorted(human._blocks) == [0, 1] and obs["ego_status"].shape == (3, 4, 7) and expert.shape == (3, 8, 3)
    for row, index in enumerate((5, 0, 5)):  # the logged human plans are already 8 poses at 0.5 s
        np.testing.assert_allclose(expert[row].numpy(), load_scene(files[index]).human_trajectory.poses, atol=1e-5)

    pdm = sft.ExpertData(NavsimConfig(data="files"), str(train_scenes), 1, make_agent("pdm_closed"),
                         ObservationConfig(cameras=()))
    _, plan = pdm.batch(np.array([0]))
    assert len(pdm) == 1 and torch.isfinite(plan).all() and (plan[0, 1:, 0] > plan[0, :-1, 0]).all()  # drives forward


# --- training ---


def test_two_steps_from_hydra_overrides(train_scenes, eval_scenes, tmp_path):
    cfg = tiny(train_scenes, eval_scenes, tmp_path / "run", "steps=2", "eval_every=2", "eval_scenes=2", "eval_images=1")
    result = train(cfg)
    assert result["step"] == 2 and np.isfinite(result["loss"])
    run = Path(result["run_dir"])
    scalars = read_scalars(run)
    assert set(scalars) == {0, 1, 2}
    assert {"losses/imitation", "losses/grad_norm", "charts/lr", "charts/steps_per_s"} <= set(scalars[1])
    assert {"score/pdms", "score/nc", "score/dac", "score/ep", "score/ttc", "score/c"} <= set(scalars[2])
    assert yaml.safe_load((run / "config.yaml").read_text())["agent"] == {"name": "ego_mlp", "kwargs": {"hidden": 32}}
    assert any(run.glob("events.out.tfevents.*")) and (run / "media" / "charts_bev_0_00000002.png").exists()
    assert latest_checkpoint(run).name == "step_00000002.pt"

    # every parameter the imitation loss reaches moved; log_std (the RL policy's std) is not in the loss
    from agents import load_agent, make_agent

    before = dict(make_agent("ego_mlp", hidden=32).named_parameters())
    after = dict(load_agent(run / "agent.pt").named_parameters())
    unmoved = {name for name, value in after.items() if torch.equal(value, before[name])}
    assert unmoved == {"log_std"}


def test_ctrl_c_checkpoints_and_resume_reproduces_the_uninterrupted_run(train_scenes, eval_scenes, tmp_path, monkeypatch):
    straight = train(tiny(train_scenes, eval_scenes, tmp_path / "a", "steps=4", "ckpt_every=10"))

    calls = {"n": 0}
    original = EpochSampler.next

    def interrupt_in_step_two(self, batch_size):
        calls["n"] += 1
        if calls["n"] == 2:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C in the middle of step 2
        return original(self, batch_size)

    monkeypatch.setattr(EpochSampler, "next", interrupt_in_step_two)
    stopped = train(tiny(train_scenes, eval_scenes, tmp_path / "b", "steps=4", "ckpt_every=10"))
    assert stopped["step"] == 2 and latest_checkpoint(tmp_path / "b").name == "step_00000002.pt"
    monkeypatch.setattr(EpochSampler, "next", original)

    resumed = train(tiny(train_scenes, eval_scenes, tmp_path / "b", "steps=4", "ckpt_every=10"))
    assert resumed["step"] == 4 and resumed["loss"] == straight["loss"]
    a, b = read_scalars(tmp_path / "a"), read_scalars(tmp_path / "b")
    for step in (3, 4):
        for tag in ("losses/imitation", "losses/grad_norm", "charts/lr", "charts/epoch"):
            assert a[step][tag] == b[step][tag], (step, tag)
    final_a = torch.load(latest_checkpoint(tmp_path / "a"), weights_only=False)["model"]
    final_b = torch.load(latest_checkpoint(tmp_path / "b"), weights_only=False)["model"]
    assert all(torch.equal(final_a[k], final_b[k]) for k in final_a)


def test_resume_never_starts_over(train_scenes, eval_scenes, tmp_path):
    train(tiny(train_scenes, eval_scenes, tmp_path, "steps=1"))
    again = train(tiny(train_scenes, eval_scenes, tmp_path, "steps=1", "run.resume=never"))
    assert again["step"] == 1 and len(read_scalars(tmp_path)) == 1


def test_imitation_lowers_loss_and_raises_pdms(train_scenes, eval_scenes, tmp_path):
    # the expert is the human plan; on its own scenes (reference = human) imitation must score higher
    result = train(tiny(train_scenes, eval_scenes, tmp_path, "steps=80", "lr=3e-3", "batch_size=6",
                        f"eval_split={train_scenes}", "eval_every=80", "eval_scenes=6", "eval_images=0",
                        "agent.kwargs.hidden=64"))
    scalars = read_scalars(tmp_path)
    assert scalars[80]["losses/imitation"] < 0.5 * scalars[1]["losses/imitation"]
    assert result["last_eval"]["pdms"] > result["first_eval"]["pdms"] + 0.2


def test_vla_token_two_steps(train_scenes, eval_scenes, tmp_path):
    pytest.importorskip("transformers")
    cfg = config(
        "agent=vla", "env.data=files", "env.obs.image_width=56", "env.obs.image_height=28", "device=cpu",
        f"train_split={train_scenes}", "max_train_scenes=2", "batch_size=2", "steps=2", "eval_every=0",
        "log_every=1", "progress=false", f"run.dir={tmp_path}",
    )
    from agents import make_agent

    before = {k: v.clone() for k, v in make_agent("vla_token").state_dict().items()}
    result = train(cfg)
    assert result["step"] == 2 and np.isfinite(result["loss"])
    after = torch.load(latest_checkpoint(tmp_path), weights_only=False)["model"]
    named = dict(make_agent("vla_token").named_parameters())
    assert all(not torch.equal(after[name], before[name]) for name in named)


@pytest.mark.slow
def test_cli_entry_point_runs(train_scenes, eval_scenes, tmp_path):
    args = [sys.executable, "-m", "trainers.sft", "env=navsim", "agent=ego_mlp", "env.data=files", "env.obs.cameras=[]",
            f"train_split={train_scenes}", f"eval_split={eval_scenes}", "steps=2", "batch_size=2", "eval_every=2",
            "eval_scenes=1", "progress=false", "device=cpu", f"run.dir={tmp_path}"]
    done = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert latest_checkpoint(tmp_path).name == "step_00000002.pt" and "score/pdms" in read_scalars(tmp_path)[2]


@pytest.mark.slow
def test_imitation_on_navmini_raises_held_out_pdms(tmp_path):
    # navmini (64 scenes, every family) -> the first 16 navtest scenes, scored against PDM-Closed
    cfg = config(
        "agent=ego_mlp", "env.obs.cameras=[]", "device=cpu", "train_split=navmini", "eval_split=navtest",
        "eval_scenes=16", "steps=400", "batch_size=64", "lr=1e-3", "eval_every=400", "log_every=1",
        "eval_images=0", "progress=false", f"run.dir={tmp_path}",
    )
    result = train(cfg)
    scalars = read_scalars(tmp_path)
    assert scalars[400]["losses/imitation"] < 0.5 * scalars[1]["losses/imitation"]
    assert result["last_eval"]["pdms"] > result["first_eval"]["pdms"] + 0.1
