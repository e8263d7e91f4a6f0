"""GRPO trainer: config, hand-worked advantages / losses / policy shaping, 2 steps from Hydra
overrides, exact resume, the injection paths (refinement, negatives, recoveries), both VLA heads."""

from __future__ import annotations

import math

import pytest
import torch

from agents import load_agent, make_agent
from tests.trainers.conftest import compose_config
from trainers.common.logging import read_scalars
from trainers.grpo import AdvantageMode, GRPOConfig, group_advantages, grpo_loss, injection_weights, train

S3 = math.sqrt(1 / 3)      # Bessel std of {1, 0, 0, 1} and of {1, 0, 0}
S2 = math.sqrt(1 / 2)


def config(*overrides: str) -> GRPOConfig:
    """`python -m trainers.grpo <overrides>` as a validated GRPOConfig."""
    return compose_config("grpo", GRPOConfig, *overrides)


# --- config ---


def test_defaults_compose_to_the_front_door():
    default = config()
    assert default.agent.name == "vla_token" and default.env.data == "builtin" and default.init_checkpoint is None
    assert default.group_size == 8 and default.reward.ep_weight == 5.0 and default.advantage is AdvantageMode.dr_grpo
    assert default.kl_coef == 0.04 and default.imitation_coef == 0.0 and default.noise_level is None
    flow = config("agent=vla_flow")                      # configs/grpo_agent/vla_flow.yaml
    assert flow.noise_level == 0.3 and config("agent=vla_flow", "noise_level=0.7").noise_level == 0.7
    assert flow.lr == 5e-5 and default.lr == 1e-4 and config("agent=vla_flow", "lr=1e-4").lr == 1e-4
    assert flow.agent.kwargs["cameras"] == [] and default.agent.kwargs["cameras"] == []    # text prompt only
    picked = config("agent=vla_flow", "reward.metric=epdms", "advantage=dr_grpo", "refine.enabled=true", "recovery.rate=0.5")
    assert picked.agent.name == "vla_flow" and picked.reward.metric.value == "epdms" and picked.refine.enabled
    assert picked.reward.weighted == ("ep", "ttc", "lk", "hc", "ec") and picked.recovery.rate == 0.5


@pytest.mark.parametrize("override", ["group_sise=4", "reward.metric=ppdms", "advantage=mean", "refine.enable=true"])
def test_unknown_keys_and_values_are_errors(override):
    with pytest.raises(Exception, match="sise|ppdms|mean|enable"):
        config(override)


@pytest.mark.parametrize("kwargs, match", [
    ({"group_size": 1}, "group_size=1"), ({"clip_eps": -0.1}, "clip_eps=-0.1"), ({"lr": 0.0}, "lr=0.0"),
    ({"kl_coef": float("nan")}, "kl_coef=nan"), ({"step_discount": 1.5}, "step_discount=1.5"),
])
def test_bad_values_are_rejected_by_name(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GRPOConfig(**kwargs)


# --- advantages ---


def test_std_advantages_and_an_all_equal_group():
    rewards = torch.tensor([[1.0, 0.0, 0.0, 1.0], [0.5, 0.5, 0.5, 0.5]])
    adv, zero = group_advantages(rewards, torch.ones(2, 4, dtype=torch.bool), "std", eps=0.0)
    # group 0: mean 0.5, Bessel std sqrt(1/3) -> ±0.5 / 0.57735 = ±0.866; group 1: all equal -> 0, flagged
    assert adv[0].tolist() == pytest.approx([0.5 / S3, -0.5 / S3, -0.5 / S3, 0.5 / S3])
    assert adv[1].tolist() == [0.0] * 4 and zero.tolist() == [False, True]
    adv_eps, _ = group_advantages(rewards, torch.ones(2, 4, dtype=torch.bool), "std", eps=1e-4)
    assert float(adv_eps[0, 0]) == pytest.approx(0.5 / (S3 + 1e-4))


def test_invalid_members_are_ignored_and_get_zero():
    rewards = torch.tensor([[1.0, 0.0, 0.0, 99.0]])
    valid = torch.tensor([[True, True, True, False]])
    adv, zero = group_advantages(rewards, valid, "std", eps=0.0)
    # mean 1/3, deviations (2/3, -1/3, -1/3), Bessel std sqrt((4/9 + 1/9 + 1/9) / 2) = sqrt(1/3)
    assert adv[0].tolist() == pytest.approx([(2 / 3) / S3, -(1 / 3) / S3, -(1 / 3) / S3, 0.0]) and not zero[0]
    _, lonely = group_advantages(rewards, torch.tensor([[True, False, False, False]]))
    assert lonely.tolist() == [True]


def test_dr_grpo_only_centres():
    adv, _ = group_advantages(torch.tensor([[1.0, 0.0, 0.0, 1.0]]), torch.ones(1, 4, dtype=torch.bool), AdvantageMode.dr_grpo)
    assert adv[0].tolist() == [0.5, -0.5, -0.5, 0.5]


def test_dr_grpo_keeps_a_crash_above_progress_noise():
    # group 0: every plan safe, EP differs a little (PDMS 0.80 / 0.81); group 1: one plan crashes (PDMS 0)
    rewards = torch.tensor([[0.80, 0.81], [0.0, 0.9]])
    valid = torch.ones(2, 2, dtype=torch.bool)
    std, _ = group_advantages(rewards, valid, "std", eps=0.0)
    # Bessel std of a pair (a, b) is |a - b| / sqrt(2): both groups get ±1/sqrt(2), the noise weighs as much as the crash
    assert std.flatten().tolist() == pytest.approx([-S2, S2, -S2, S2])
    dr, _ = group_advantages(rewards, valid, "dr_grpo")
    assert dr.flatten().tolist() == pytest.approx([-0.005, 0.005, -0.45, 0.45])      # the crash weighs 90x more


def test_advantage_inputs_are_checked():
    with pytest.raises(ValueError, match="rewards.shape"):
        group_advantages(torch.zeros(2, 3), torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="non-finite"):
        group_advantages(torch.tensor([[float("nan"), 1.0]]), torch.ones(1, 2, dtype=torch.bool))


# --- loss ---


def test_on_policy_loss_is_minus_mean_advantage_with_reinforce_gradient():
    logp = torch.tensor([[-1.0, -2.0]], requires_grad=True)
    adv = torch.tensor([[1 / math.sqrt(2), -1 / math.sqrt(2)]])
    loss, stats = grpo_loss(logp, logp.detach(), adv, clip_eps=0.2)
    loss.backward()
    assert float(loss.detach()) == pytest.approx(0.0, abs=1e-7) and stats["ratio_mean"] == 1.0 and stats["clip_frac"] == 0.0
    assert logp.grad[0].tolist() == pytest.approx((-adv[0] / 2).tolist())                # -A / n


def test_clipping_hand_worked():
    old = torch.zeros(1, 3)
    new = torch.log(torch.tensor([[1.5, 0.5, 1.1]])).requires_grad_(True)
    adv = torch.tensor([[1.0, -1.0, 1.0]])
    loss, stats = grpo_loss(new, old, adv, clip_eps=0.2)
    loss.backward()
    # -min(1.5, 1.2) = -1.2 (clipped); -min(-0.5, -0.8) = 0.8 (clipped); -min(1.1, 1.1) = -1.1
    assert float(loss.detach()) == pytest.approx((-1.2 + 0.8 - 1.1) / 3)
    assert stats["clip_frac"] == pytest.approx(2 / 3)
    assert new.grad[0].tolist() == pytest.approx([0.0, 0.0, -1.1 / 3])                  # clipped units pass no gradient
    loss_high, _ = grpo_loss(new, old, adv, clip_eps=0.2, clip_eps_high=0.6)
    assert float(loss_high) == pytest.approx((-1.5 + 0.8 - 1.1) / 3)                   # 1.5 < 1 + 0.6: not clipped


def test_k3_kl_weights_and_units():
    new = torch.zeros(1, 2, 2, requires_grad=True)
    ref = torch.full((1, 2, 2), math.log(2.0))
    k3 = 2.0 - math.log(2.0) - 1.0                                                      # exp(d) - d - 1 at d = log 2
    loss, stats = grpo_loss(new, new.detach(), torch.zeros(1, 2), 0.2, ref_logp=ref, kl_coef=0.5)
    assert float(loss) == pytest.approx(0.5 * k3) and stats["kl"] == pytest.approx(k3)
    # per-token units averaged with unit weights 1:3; sample weights 1:0 keep only sample 0
    new = torch.log(torch.tensor([[[1.0, 1.1], [2.0, 2.0]]]))
    loss, _ = grpo_loss(new, torch.zeros(1, 2, 2), torch.tensor([[1.0, 1.0]]), 0.2, weights=torch.tensor([[1.0, 0.0]]),
                        unit_weights=torch.tensor([1.0, 3.0]))
    assert float(loss) == pytest.approx(-(0.25 * 1.0 + 0.75 * 1.1))
    empty = torch.zeros(1, 2, requires_grad=True)
    loss, _ = grpo_loss(empty, empty.detach(), torch.ones(1, 2), 0.2, weights=torch.zeros(1, 2))
    loss.backward()                                                                     # all groups dropped: 0 with a graph
    assert float(loss) == 0.0 and empty.grad.tolist() == [[0.0, 0.0]]


def test_injection_weights_hand_worked_and_stable():
    logp = torch.log(torch.tensor([0.1, 0.3], dtype=torch.float64)).requires_grad_(True)
    weights = injection_weights(logp, 0.1)
    weights.sum().backward()
    assert weights.tolist() == pytest.approx([0.5, 0.75])                             # p / (p + 0.1)
    assert logp.grad.tolist() == pytest.approx([0.1 * 0.1 / 0.2**2, 0.1 * 0.3 / 0.4**2])   # γp / (p + γ)²
    extreme = torch.tensor([800.0, -1e4], requires_grad=True)
    shaped = injection_weights(extreme, 0.1)
    shaped.sum().backward()
    naive = extreme.detach().exp() / (extreme.detach().exp() + 0.1)                    # inf / inf = nan
    assert shaped.tolist() == [1.0, 0.0] and torch.isfinite(extreme.grad).all() and torch.isnan(naive[0])
    with pytest.raises(ValueError, match="gamma=0"):
        injection_weights(logp, 0)


def test_injected_samples_are_shaped_not_clipped():
    # one injected token with p = 0.3 and A = 1: loss -f(p) = -0.75, d/dlogp = -γp/(p+γ)² = -0.1875
    new = torch.tensor([[math.log(0.3)]], requires_grad=True)
    loss, stats = grpo_loss(new, torch.full((1, 1), -50.0), torch.ones(1, 1), 0.2, injected=torch.ones(1, 1, dtype=torch.bool))
    loss.backward()
    assert float(loss) == pytest.approx(-0.75) and float(new.grad) == pytest.approx(-0.1875)
    assert stats["injected_weight"] == pytest.approx(0.75) and stats["clip_frac"] == 0.0
    # a 24-dimensional density: p is the per-dimension likelihood, the gradient per unit log-prob is the same
    dense = torch.tensor([[24 * math.log(0.3)]], requires_grad=True)
    loss, _ = grpo_loss(dense, dense.detach(), torch.ones(1, 1), 0.2, injected=torch.ones(1, 1, dtype=torch.bool), unit_dims=24)
    loss.backward()
    assert float(loss) == pytest.approx(-0.75) and float(dense.grad) == pytest.approx(-0.1875)


# --- training ---


def tiny(train_scenes, eval_scenes, run_dir, init, *extra: str) -> GRPOConfig:
    return config(
        "agent=ego_mlp", "env.data=files", "env.obs.cameras=[]", "device=cpu", f"init_checkpoint={init}",
        f"train_split={train_scenes}", f"eval_split={eval_scenes}", "batch_size=2", "group_size=3", "lr=1e-3",
        "eval_every=0", "image_every=0", "progress=false", f"run.dir={run_dir}", *extra,
    )


@pytest.fixture(scope="module")
def init_agent(tmp_path_factory):
    path = tmp_path_factory.mktemp("init") / "agent.pt"
    make_agent("ego_mlp", hidden=16, init_std=0.5).save(path)
    return path


def test_two_steps_from_hydra_overrides_move_every_parameter(train_scenes, eval_scenes, init_agent, tmp_path):
    cfg = tiny(train_scenes, eval_scenes, tmp_path / "run", init_agent, "steps=2", "eval_every=2", "eval_scenes=2",
               "image_every=2", "kl_coef=0.1")
    result = train(cfg)
    assert result["step"] == 2 and result["first_eval"]["num_scenes"] == 2.0
    metrics = result["last_metrics"]
    assert result["scorer_plans"] == metrics["charts/scorer_plans"] == 2 * 2 * 3     # steps x B x G
    assert math.isfinite(metrics["losses/total"]) and 0.0 <= metrics["rollout/pdms"] <= 1.0
    for key in ("rollout/nc_fail", "rollout/zero_var_frac", "losses/clip_frac", "losses/kl", "losses/entropy",
                "charts/time_sampling", "charts/time_scoring", "charts/time_update"):
        assert key in metrics
    before, after = load_agent(init_agent), load_agent(tmp_path / "run" / "agent.pt")
    for (name, old), new in zip(before.named_parameters(), after.parameters()):
        assert not torch.equal(old, new), name
    assert (tmp_path / "run" / "media" / "rollout_group_0_00000002.png").is_file()


def test_resume_reproduces_the_uninterrupted_metrics(train_scenes, eval_scenes, init_agent, tmp_path):
    train(tiny(train_scenes, eval_scenes, tmp_path / "a", init_agent, "steps=3", "ckpt_every=1"))
    train(tiny(train_scenes, eval_scenes, tmp_path / "b", init_agent, "steps=2"))
    resumed = train(tiny(train_scenes, eval_scenes, tmp_path / "b", init_agent, "steps=3"))
    assert resumed["step"] == 3
    a, b = read_scalars(tmp_path / "a")[3], read_scalars(tmp_path / "b")[3]
    for tag in a:
        if not tag.startswith("charts/time") and tag != "charts/steps_per_s":
            assert a[tag] == b[tag], tag


def test_injection_paths_fill_groups(train_scenes, eval_scenes, init_agent, tmp_path):
    # fail_score 1: every sample fails, so every group is refined and every perturbation is a negative
    cfg = tiny(train_scenes, eval_scenes, tmp_path / "run", init_agent, "steps=1", "fail_score=1.0",
               "refine.enabled=true", "refine.samples=2", "refine.above=0.0", "negatives.per_group=1",
               "recovery.rate=0.5", "recovery.above=0.0")
    metrics = train(cfg)["last_metrics"]
    assert metrics["rollout/all_failed_frac"] == 1.0
    # scorer plans: 3 groups x (3 samples + 2 refinements + 1 negative + 1 recovery label candidate)
    assert metrics["charts/scorer_plans"] == 3 * (3 + 2 + 1 + 1)
    # 2 env groups + 1 recovery group: refinements and negatives in all 3, the label in the recovery group
    assert metrics["rollout/injected_refine"] == 1.0 and metrics["rollout/injected_negative"] == 1.0
    assert metrics["rollout/injected_recovery"] == pytest.approx(1 / 3)
    assert 0.0 < metrics["losses/injected_grad_share"] < 1.0
    report = (tmp_path / "run" / "reports" / "step_00000001.txt").read_text()
    assert report.count("diagnosis :") == 3 and "planning :" in report


@pytest.mark.parametrize("head, extra", [("vla_token", ()), ("vla_flow", ("step_discount=0.6", "noise_level=0.5"))])
def test_vla_heads_take_a_step_with_feedback_and_negatives(head, extra, train_scenes, eval_scenes, tmp_path):
    kwargs = {"cameras": (), "flow_steps": 3} if head == "vla_flow" else {"cameras": (), "codebook_size": 64}
    init = tmp_path / "init.pt"
    make_agent(head, **kwargs).save(init)
    cfg = tiny(train_scenes, eval_scenes, tmp_path / "run", init, f"agent={head}", "steps=1", "batch_size=1",
               "group_size=2", "fail_score=1.0", "refine.enabled=true", "refine.samples=1", "refine.above=0.0",
               "negatives.per_group=1", "kl_coef=0.1", "imitation_coef=0.1", "drop_zero_variance=false", *extra)
    metrics = train(cfg)["last_metrics"]
    assert math.isfinite(metrics["losses/total"]) and metrics["rollout/injected_refine"] == 1.0
    assert metrics["rollout/injected_negative"] == 1.0 and 0.0 < metrics["losses/injected_weight"] < 1.0
    assert metrics["losses/logp_gap"] < 1e-4          # the update re-scores the samples with the sampler's log-probs
    before, after = load_agent(init), load_agent(tmp_path / "run" / "agent.pt")
    moved = [not torch.equal(a, b) for a, b in zip(before.parameters(), after.parameters())]
    assert any(moved) and after.config.noise_level == (0.5 if head == "vla_flow" else 0.7)


def test_temperature_sets_the_sampling_temperature_of_the_trained_agent(train_scenes, eval_scenes, init_agent, tmp_path):
    init = tmp_path / "init.pt"
    make_agent("vla_token", cameras=(), codebook_size=64).save(init)
    cfg = tiny(train_scenes, eval_scenes, tmp_path / "run", init, "agent=vla_token", "steps=1", "batch_size=1",
               "group_size=2", "temperature=0.5")
    metrics = train(cfg)["last_metrics"]
    assert load_agent(tmp_path / "run" / "agent.pt").config.temperature == 0.5 and metrics["losses/logp_gap"] < 1e-4
    with pytest.raises(ValueError, match="temperature=0.5: agent 'ego_mlp' samples without a temperature"):
        train(tiny(train_scenes, eval_scenes, tmp_path / "mlp", init_agent, "steps=1", "temperature=0.5"))
    with pytest.raises(ValueError, match="temperature=0.0"):
        GRPOConfig(temperature=0.0)


def test_ctrl_c_finishes_the_step_and_saves(train_scenes, eval_scenes, init_agent, tmp_path, monkeypatch):
    import os
    import signal

    from trainers import grpo
    from trainers.common.checkpoint import latest_checkpoint

    score = grpo.reward_from_scores

    def interrupted(*args, **kwargs):          # Ctrl-C arrives while step 1 is being scored
        monkeypatch.setattr(grpo, "reward_from_scores", score)
        os.kill(os.getpid(), signal.SIGINT)
        return score(*args, **kwargs)

    monkeypatch.setattr(grpo, "reward_from_scores", interrupted)
    result = train(tiny(train_scenes, eval_scenes, tmp_path / "run", init_agent, "steps=5"))
    assert result["step"] == 1 and latest_checkpoint(tmp_path / "run").name == "step_00000001.pt"
    assert not (tmp_path / "run" / "agent.pt").exists()


def test_without_init_checkpoint_it_runs_its_own_sft(train_scenes, eval_scenes, tmp_path):
    cfg = tiny(train_scenes, eval_scenes, tmp_path / "run", "null", "sft_steps=2", "steps=1", "+agent.kwargs.hidden=16")
    assert cfg.init_checkpoint is None
    train(cfg)
    sft_agent = tmp_path / "run" / "sft" / "agent.pt"
    assert sft_agent.is_file() and (tmp_path / "run" / "agent.pt").is_file()
    assert str(sft_agent) in (tmp_path / "run" / "config.yaml").read_text()
