"""agents.vla.model: both heads end to end on tiny models: RoPE positions, exact re-scoring of samples,
padding independence, imitation losses, checkpoints, pretrained folders, codebook files."""

import numpy as np
import pytest
import torch

from agents.base import Samples
from agents.vla.codebook import decode_tokens, grid_codebook, save_codebook
from agents.vla.config import VLAConfig
from agents.vla.model import VLA, rope_positions


@pytest.fixture(scope="module")
def token_vla():
    return VLA(VLAConfig(head="token", codebook_size=64)).eval()


@pytest.fixture(scope="module")
def flow_vla():
    return VLA(VLAConfig(head="flow", flow_steps=4)).eval()


def pick(obs, index):
    return {k: v[index : index + 1] for k, v in obs.items()}


def test_rope_positions_equal_get_rope_index(token_vla, obs):
    prefix = token_vla.encode(obs, ["", "the lead vehicle brakes , slow down earlier"])
    prompt, vision = prefix.prompt, prefix.vision
    expected, _ = token_vla.backbone.model.get_rope_index(
        prompt.input_ids, prompt.mm_token_type_ids, vision.image_grid_thw, attention_mask=prompt.attention_mask)
    mask = prompt.attention_mask.bool()
    assert torch.equal(rope_positions(token_vla.backbone, prompt, vision)[:, mask], expected[:, mask])
    assert prefix.next_position.tolist() == [int(expected[:, b].max()) + 1 for b in range(2)]


@pytest.mark.parametrize("head", ["token", "flow"])
def test_sample_log_probs_are_re_evaluated_exactly(head, token_vla, flow_vla, obs):
    model = token_vla if head == "token" else flow_vla
    with torch.no_grad():
        samples = model.sample(obs, 3, torch.Generator().manual_seed(0))
        again = model.sample(obs, 3, torch.Generator().manual_seed(0))
        logp, parts = model.log_prob(obs, samples)
    assert samples.plans.shape == (2, 3, 8, 3) and samples.plans.dtype == torch.float32
    assert torch.isfinite(samples.logp).all() and torch.equal(samples.plans, again.plans)
    torch.testing.assert_close(logp, samples.logp, rtol=1e-5, atol=1e-5)
    if head == "token":
        assert samples.tokens.shape == (2, 3, 8) and parts.shape == (2, 3, 8)
        torch.testing.assert_close(samples.plans, decode_tokens(model.codebook, samples.tokens).float())
        assert (samples.logp < 0).all()
    else:
        assert samples.chain.shape == (2, 3, 5, 8, 3) and parts.shape == (2, 3, 4)
        torch.testing.assert_close(samples.step_logp.sum(-1), samples.logp)
        torch.testing.assert_close(samples.plans, samples.chain[:, :, -1] * model.action_scale)
        torch.testing.assert_close(parts, samples.step_logp, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("head", ["token", "flow"])
def test_padding_does_not_change_a_scene(head, token_vla, flow_vla, obs):
    """A scene's log-prob in a batch padded by a longer feedback prompt equals its log-prob alone."""
    model = token_vla if head == "token" else flow_vla
    extras = ["", "you collided with the lead vehicle ahead , brake earlier"]
    with torch.no_grad():
        samples = model.sample(obs, 2, torch.Generator().manual_seed(1), prompt_extra=extras)
        batch, _ = model.log_prob(obs, samples, prompt_extra=extras)
        first = Samples(**{k: (None if v is None else v[:1]) for k, v in vars(samples).items()})
        alone, _ = model.log_prob(pick(obs, 0), first)
        without, _ = model.log_prob(obs, samples)
    torch.testing.assert_close(batch[:1], alone, rtol=1e-5, atol=1e-4)
    assert not torch.allclose(without[1], batch[1])            # the feedback is part of the context


@pytest.mark.parametrize("head", ["token", "flow"])
def test_act_is_deterministic_and_batch_independent(head, token_vla, flow_vla, obs):
    model = token_vla if head == "token" else flow_vla
    with torch.no_grad():
        plans = model.act(obs)
        assert plans.shape == (2, 8, 3) and plans.dtype == np.float32 and np.isfinite(plans).all()
        np.testing.assert_array_equal(plans, model.act(obs))
        np.testing.assert_allclose(model.act(pick(obs, 1))[0], plans[1], atol=1e-4)
        sampled = model.act(obs, torch.Generator().manual_seed(0))
    assert sampled.shape == (2, 8, 3)


@pytest.mark.parametrize("head", ["token", "flow"])
def test_imitation_loss_trains_every_part(head, obs, scenes):
    model = VLA(VLAConfig(head=head, codebook_size=32, flow_steps=2)).train()
    expert = torch.tensor(np.stack([s.human_trajectory.poses for s in scenes]), dtype=torch.float32)
    loss = model.imitation_loss(obs, expert, **({"gen": torch.Generator().manual_seed(0)} if head == "flow" else {}))
    assert loss.ndim == 0 and torch.isfinite(loss)
    if head == "token":
        assert 0 < loss.item() < 2 * np.log(32)         # CE of a random model is near log K
    loss.backward()
    vision_grad = model.backbone.model.visual.patch_embed.proj.weight.grad
    assert vision_grad is not None and vision_grad.abs().sum() > 0
    if head == "flow":
        assert model.expert.action_out.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="expert_plans.shape"):
        model.imitation_loss(obs, expert[:, :4])


def test_token_imitation_loss_is_the_mean_cross_entropy_of_the_encoded_plan(token_vla, obs):
    plans = decode_tokens(token_vla.codebook, torch.tensor([[3, 3, 5, 5, 7, 7, 9, 9], [1, 2, 3, 4, 5, 6, 7, 8]]))
    with torch.no_grad():
        loss = token_vla.imitation_loss(obs, plans.float())
        tokens = torch.tensor([[3, 3, 5, 5, 7, 7, 9, 9], [1, 2, 3, 4, 5, 6, 7, 8]])[:, None]
        logp, _ = token_vla.log_prob(obs, Samples(plans=plans[:, None].float(), logp=torch.zeros(2, 1), tokens=tokens))
    torch.testing.assert_close(loss, -logp.sum() / 16)


@pytest.mark.parametrize("head", ["token", "flow"])
def test_save_load_round_trip(head, token_vla, flow_vla, obs, tmp_path):
    model = token_vla if head == "token" else flow_vla
    model.save(tmp_path / "vla.pt")
    loaded = VLA.load(tmp_path / "vla.pt").eval()
    assert loaded.config == model.config and loaded.name == f"vla_{head}"
    with torch.no_grad():
        np.testing.assert_array_equal(loaded.act(obs), model.act(obs))
        samples = model.sample(obs, 2, torch.Generator().manual_seed(4))
        torch.testing.assert_close(loaded.log_prob(obs, samples)[0], model.log_prob(obs, samples)[0], rtol=0, atol=0)


def test_pretrained_folder_round_trip(token_vla, obs, tmp_path):
    token_vla.backbone.save_pretrained(tmp_path / "backbone")
    token_vla.prompter.tokenizer.save_pretrained(tmp_path / "backbone")
    loaded = VLA(VLAConfig(head="token", codebook_size=64, pretrained=str(tmp_path / "backbone"))).eval()
    with torch.no_grad():
        np.testing.assert_allclose(loaded.act(obs), token_vla.act(obs), atol=1e-5)
    with pytest.raises(ValueError, match="missing config.json"):
        VLA(VLAConfig(pretrained=str(tmp_path)))


def test_codebook_file_sets_the_action_vocabulary(tmp_path, obs):
    save_codebook(grid_codebook(20), tmp_path / "cb.pt")
    model = VLA(VLAConfig(codebook=str(tmp_path / "cb.pt"))).eval()
    assert len(model.codebook) == 20 and model.prompter.num_actions == 20
    with torch.no_grad():
        assert model.sample(obs, 2, torch.Generator().manual_seed(0)).tokens.max() < 20


def test_history_start_flow(obs):
    model = VLA(VLAConfig(head="flow", flow_start="history", flow_start_t=0.5, flow_steps=3)).eval()
    with torch.no_grad():
        samples = model.sample(obs, 2, torch.Generator().manual_seed(0))
        logp, _ = model.log_prob(obs, samples)
    assert samples.chain.shape == (2, 2, 4, 8, 3)
    torch.testing.assert_close(logp, samples.logp, rtol=1e-5, atol=1e-5)


def test_log_prob_needs_the_head_s_record(token_vla, flow_vla, obs):
    bare = Samples(plans=torch.zeros(2, 1, 8, 3), logp=torch.zeros(2, 1))
    with pytest.raises(ValueError, match="samples.tokens=None"):
        token_vla.log_prob(obs, bare)
    with pytest.raises(ValueError, match="samples.chain=None"):
        flow_vla.log_prob(obs, bare)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("head", ["token", "flow"])
def test_cuda_bfloat16_autocast(head, obs):
    model = VLA(VLAConfig(head=head, flow_steps=4)).eval().to("cuda")
    with torch.no_grad():
        samples = model.sample(obs, 4, torch.Generator("cuda").manual_seed(0))
        logp, _ = model.log_prob(obs, samples)
        plans = model.act(obs)
    assert samples.plans.device.type == "cuda" and np.isfinite(plans).all()
    torch.testing.assert_close(logp, samples.logp, rtol=0.05, atol=0.5)     # bfloat16 backbone


def test_text_only_model(obs):
    model = VLA(VLAConfig(head="token", cameras=(), codebook_size=16)).eval()
    assert model.inputs == frozenset({"ego_status", "command"})
    text_obs = {"ego_status": obs["ego_status"], "command": obs["command"]}
    with torch.no_grad():
        samples = model.sample(text_obs, 2, torch.Generator().manual_seed(0), prompt_extra=["", "slow down"])
        logp, _ = model.log_prob(text_obs, samples, prompt_extra=["", "slow down"])
    torch.testing.assert_close(logp, samples.logp, rtol=1e-5, atol=1e-5)
