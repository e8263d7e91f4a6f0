"""`VLA`: a Qwen2.5-VL backbone reading the cameras and a text prompt, with a token head (codebook
tokens from the language model) or a flow head (action expert), behind the batched agent contract.

One backbone pass over the B prompts serves all G samples of a scene: its KV cache (token head) or
last hidden states (flow head) are repeated G times. On CUDA the backbone and expert run under
bfloat16 autocast; log-probabilities are computed in float32.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from agents.base import Obs, Samples, load_checkpoint, obs_batch_size, obs_tensor, save_checkpoint
from agents.vla.codebook import Codebook, decode_tokens, encode_plans, grid_codebook, load_codebook
from agents.vla.config import Head, VLAConfig, backbone_config, check_pretrained
from agents.vla.flow_head import (
    ActionExpert, chain_log_prob, flow_matching_loss, history_extrapolation, sample_chain, time_grid,
)
from agents.vla.images import VisionInputs, vision_inputs
from agents.vla.prompt import PromptBatch, Prompter, word_level_tokenizer
from agents.vla.token_head import decode_tokens as decode_action_tokens, token_log_probs
from envs.navsim import PLAN_POSES
from envs.sim.scene import Scene


@dataclass(frozen=True)
class Prefix:
    """The encoded prompts of B scenes, ready for the backbone."""

    prompt: PromptBatch
    position_ids: Tensor = field(metadata={"dims": "3 B S"})
    """Qwen2.5-VL multimodal RoPE positions (temporal, height, width)."""
    vision: VisionInputs | None
    """None when the config has no cameras."""

    @property
    def next_position(self) -> Tensor:
        """(B,) RoPE position of the first generated token."""
        return self.position_ids.amax(dim=(0, 2)) + 1


def rope_positions(backbone, prompt: PromptBatch, vision: VisionInputs | None) -> Tensor:
    """(3, B, S) multimodal RoPE positions of left-padded prompts that share one image layout.

    Every prompt starts with the same camera block, so `get_rope_index` runs on one prompt and the
    rows are aligned by their padding: text after the last image token counts on by 1 from the
    block's largest position. Equal to `get_rope_index` on the whole batch (tested), without its
    per-row Python loop. Padding positions are 0.
    """
    mask = prompt.attention_mask.bool()
    pad = (~mask).sum(dim=1)                                                         # (B,)
    relative = torch.arange(mask.shape[1], device=mask.device)[None] - pad[:, None]     # (B, S)
    if vision is None or not bool(prompt.mm_token_type_ids.any()):
        positions = relative.clamp(min=0)
        return positions[None].expand(3, -1, -1).clone()
    row = mask[0]
    template, _ = backbone.model.get_rope_index(
        prompt.input_ids[:1, row], prompt.mm_token_type_ids[:1, row],
        image_grid_thw=vision.image_grid_thw[: len(vision.image_grid_thw) // mask.shape[0]],
    )
    last_image = int(prompt.mm_token_type_ids[0, row].nonzero().max())
    head = template[:, 0, : last_image + 1]                                              # (3, J)
    text = head.max() + (relative - last_image)                                          # (B, S)
    gathered = head[:, relative.clamp(0, last_image)]                                    # (3, B, S)
    positions = torch.where(relative > last_image, text[None], gathered)
    return torch.where(mask[None], positions, torch.zeros_like(positions))


class VLA(nn.Module):
    """Vision-language-action policy (agent names `vla_token`, `vla_flow`); see `VLAConfig`."""

    privileged = False

    def __init__(self, config: VLAConfig | None = None, *, codebook: Codebook | None = None,
                 prompter: Prompter | None = None, backbone: dict | None = None, **overrides):
        """config (or its fields as keyword overrides). codebook, prompter and backbone (a saved
        `Qwen2_5_VLConfig` dict, random weights) are given by `load` to rebuild a saved model exactly."""
        super().__init__()
        from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

        self.config = cfg = config or VLAConfig(**overrides)
        self.name = f"vla_{cfg.head.value}"
        self.inputs = frozenset({"ego_status", "command", *cfg.cameras})
        if cfg.head is Head.TOKEN and codebook is None:
            codebook = load_codebook(cfg.codebook) if cfg.codebook else grid_codebook(cfg.codebook_size)
        num_actions = len(codebook) if cfg.head is Head.TOKEN else 0
        if prompter is None:
            prompter = Prompter(self._tokenizer(cfg), num_actions)
        self.prompter = prompter
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            if backbone is not None:
                self.backbone = Qwen2_5_VLForConditionalGeneration(Qwen2_5_VLConfig.from_dict(backbone))
            elif cfg.pretrained is not None:
                self.backbone = Qwen2_5_VLForConditionalGeneration.from_pretrained(
                    str(check_pretrained(cfg.pretrained)), local_files_only=True, dtype=torch.float32)
                self._check_pretrained_ids()
            else:
                self.backbone = Qwen2_5_VLForConditionalGeneration(
                    backbone_config(cfg.preset, prompter.vocab_size, prompter.token_ids))
            if self.backbone.config.text_config.vocab_size < prompter.vocab_size:
                self.backbone.resize_token_embeddings(prompter.vocab_size)
            hidden = self.backbone.config.text_config.hidden_size
            self.expert = (ActionExpert(hidden, cfg.flow_width, cfg.flow_layers, cfg.flow_heads, PLAN_POSES)
                           if cfg.head is Head.FLOW else None)
        # plain attributes, not buffers: `.to(dtype=bfloat16)` must not round the codebook or the scale
        motions = codebook.motions if codebook is not None else torch.zeros(0, 3, dtype=torch.float64)
        self._codebook = Codebook(motions.to("cpu", torch.float64)) if len(motions) else None
        self._action_scale = torch.tensor(cfg.action_scale, dtype=torch.float32)

    @staticmethod
    def _tokenizer(cfg: VLAConfig):
        if cfg.pretrained is not None and (Path(cfg.pretrained) / "tokenizer.json").is_file():
            from transformers import AutoTokenizer

            return AutoTokenizer.from_pretrained(cfg.pretrained, local_files_only=True)
        return word_level_tokenizer(cfg.extra_words)

    def _check_pretrained_ids(self) -> None:
        config, ids = self.backbone.config, self.prompter.token_ids
        expected = {"image_pad": config.image_token_id, "vision_start": config.vision_start_token_id,
                    "vision_end": config.vision_end_token_id}
        wrong = {k: (ids[k], v) for k, v in expected.items() if ids[k] != v}
        if wrong:
            raise ValueError(f"pretrained={self.config.pretrained!r}: tokenizer and model disagree on token ids "
                             f"(token: (tokenizer, model)) {wrong}; save the matching tokenizer.json in that folder")

    # --- shared plumbing ---
    @property
    def device(self) -> torch.device:
        return self.backbone.lm_head.weight.device

    @property
    def codebook(self) -> Codebook:
        """The token head's codebook (float64) on the model's device."""
        if self._codebook is None:
            raise ValueError(f"head={self.config.head.value!r}: only the token head has a codebook")
        if self._codebook.motions.device != self.device:
            self._codebook = self._codebook.to(self.device)
        return self._codebook

    @property
    def action_scale(self) -> Tensor:
        """(3,) float32 [m, m, rad] divisor of plans for the flow head."""
        if self._action_scale.device != self.device:
            self._action_scale = self._action_scale.to(self.device)
        return self._action_scale

    def _autocast(self):
        """bfloat16 autocast on CUDA (and on CPU for bfloat16 weights); float32 otherwise."""
        device = self.device
        is_bf16 = self.backbone.lm_head.weight.dtype == torch.bfloat16
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda" or is_bf16)

    def encode(self, obs: Obs, prompt_extra: list[str] | None = None) -> Prefix:
        """Observation -> Prefix: prompt tokens (command, ego status, feedback), camera patches, positions."""
        obs_batch_size(obs)
        status = obs_tensor(obs, "ego_status", "cpu").numpy()
        command = obs_tensor(obs, "command", "cpu").numpy()
        vision = None
        if self.config.cameras:
            images = [obs_tensor(obs, c, self.device, dtype=None) for c in self.config.cameras]
            vision = vision_inputs(images, self.config.image_height, self.config.image_width, self.device)
        per_image = vision.tokens_per_image if vision is not None else 0
        prompt = self.prompter.encode(command, status, self.config.cameras, per_image, prompt_extra, self.device)
        return Prefix(prompt, rope_positions(self.backbone, prompt, vision), vision)

    def _run_backbone(self, prefix: Prefix, use_cache: bool):
        """-> last hidden states (B, S, D) and the KV cache (or None)."""
        vision = prefix.vision
        with self._autocast():
            out = self.backbone.model(
                input_ids=prefix.prompt.input_ids, attention_mask=prefix.prompt.attention_mask,
                position_ids=prefix.position_ids, use_cache=use_cache,
                pixel_values=None if vision is None else vision.pixel_values,
                image_grid_thw=None if vision is None else vision.image_grid_thw,
            )
        return out.last_hidden_state, out.past_key_values

    # --- token head ---
    def _head_weight(self) -> Tensor:
        offset = self.prompter.action_offset
        return self.backbone.lm_head.weight[offset : offset + self.prompter.num_actions]

    def _step_fn(self, prefix: Prefix, cache, repeats: int):
        """Feeds one action token per row (B·repeats rows) through the cached backbone."""
        mask = prefix.prompt.attention_mask.repeat_interleave(repeats, 0)
        start = prefix.next_position.repeat_interleave(repeats, 0)
        offset = self.prompter.action_offset

        def step(token: Tensor, index: int) -> Tensor:
            ones = torch.ones(mask.shape[0], index + 1, dtype=mask.dtype, device=mask.device)
            position = (start + index).view(1, -1, 1).expand(3, -1, 1)
            with self._autocast():
                out = self.backbone.model(input_ids=(token + offset)[:, None], attention_mask=torch.cat([mask, ones], 1),
                                          position_ids=position, past_key_values=cache, use_cache=True)
            return out.last_hidden_state[:, -1]
        return step

    def _decode(self, prefix: Prefix, repeats: int, gen, greedy: bool) -> tuple[Tensor, Tensor]:
        hidden, cache = self._run_backbone(prefix, use_cache=True)
        if repeats > 1:
            cache.batch_repeat_interleave(repeats)
        first = hidden[:, -1].repeat_interleave(repeats, 0)
        return decode_action_tokens(self._step_fn(prefix, cache, repeats), first, self._head_weight(), PLAN_POSES,
                                    self.config.temperature, gen, greedy)

    def _token_log_probs(self, prefix: Prefix, tokens: Tensor, temperature: float) -> Tensor:
        """Teacher-forced (B, G, L) log-probs of action tokens (B, G, L): one prompt pass, one pass over the L tokens."""
        batch, group, length = tokens.shape
        hidden, cache = self._run_backbone(prefix, use_cache=True)
        cache.batch_repeat_interleave(group)
        mask = prefix.prompt.attention_mask.repeat_interleave(group, 0)
        flat = tokens.reshape(batch * group, length)
        start = prefix.next_position.repeat_interleave(group, 0)
        position = (start[:, None] + torch.arange(length, device=self.device)).expand(3, -1, -1)
        ones = torch.ones(batch * group, length, dtype=mask.dtype, device=mask.device)
        with self._autocast():
            out = self.backbone.model(input_ids=flat + self.prompter.action_offset, attention_mask=torch.cat([mask, ones], 1),
                                      position_ids=position, past_key_values=cache, use_cache=True)
        predicting = torch.cat([hidden[:, -1:].repeat_interleave(group, 0), out.last_hidden_state[:, :-1]], dim=1)
        return token_log_probs(predicting, self._head_weight(), flat, temperature).view(batch, group, length)

    # --- flow head ---
    def _context(self, prefix: Prefix) -> tuple[Tensor, Tensor]:
        """(B, S, D) float32 last hidden states with padding zeroed, and (B, S) validity."""
        hidden, _ = self._run_backbone(prefix, use_cache=False)
        valid = prefix.prompt.attention_mask.bool()
        return torch.where(valid[..., None], hidden.float(), torch.zeros((), device=hidden.device)), valid

    def _velocity_fn(self, context: Tensor, valid: Tensor, rows_per_context: int):
        """velocity(x (N, H, 3), t (N,)) with row n reading context n // rows_per_context."""
        with self._autocast():
            memory = self.expert.encode_context(context)

        def velocity(x: Tensor, t: Tensor) -> Tensor:
            index = torch.arange(x.shape[0], device=x.device) // rows_per_context
            with self._autocast():
                return self.expert(x, t, memory[index], valid[index])
        return velocity

    def _flow_start(self, obs: Obs, rows_per_scene: int, gen) -> Tensor:
        """(B·rows, H, 3) start states: noise (zeros when gen is None), or the noised history extrapolation."""
        batch = obs_batch_size(obs)
        shape = (batch * rows_per_scene, PLAN_POSES, 3)
        if gen is None:
            noise = torch.zeros(shape, device=self.device)
        else:
            noise = torch.randn(shape, generator=gen, device=gen.device).to(self.device)
        start_t = self.config.start_time
        if start_t >= 1.0:
            return noise
        history = history_extrapolation(obs_tensor(obs, "ego_status", self.device)) / self.action_scale
        return (1 - start_t) * history.repeat_interleave(rows_per_scene, 0) + start_t * noise

    def _grid(self) -> Tensor:
        return time_grid(self.config.flow_steps, self.config.start_time, self.device)

    # --- the agent contract ---
    def act(self, obs: Obs, gen: torch.Generator | None = None, scenes: list[Scene] | None = None) -> np.ndarray:
        """(B, 8, 3) plans: greedy tokens / the Euler ODE from the prior's mean (gen None), else sampled."""
        prefix = self.encode(obs)
        if self.config.head is Head.TOKEN:
            tokens, _ = self._decode(prefix, 1, gen, greedy=gen is None)
            plans = decode_tokens(self.codebook, tokens)
        else:
            context, valid = self._context(prefix)
            chain, _ = sample_chain(self._velocity_fn(context, valid, 1), self._flow_start(obs, 1, gen), self._grid(),
                                    self.config.noise_level, gen, stochastic=False)
            plans = chain[:, -1] * self.action_scale
        return plans.detach().float().cpu().numpy()

    def sample(self, obs: Obs, num_samples: int, gen: torch.Generator | None = None,
               prompt_extra: list[str] | None = None) -> Samples:
        """G = num_samples plans per scene with their log-probs (temperature sampling / Flow-GRPO SDE)."""
        if num_samples < 1:
            raise ValueError(f"num_samples={num_samples}: must be >= 1")
        prefix = self.encode(obs, prompt_extra)
        batch = prefix.prompt.input_ids.shape[0]
        if self.config.head is Head.TOKEN:
            tokens, token_logp = self._decode(prefix, num_samples, gen, greedy=False)
            tokens = tokens.view(batch, num_samples, PLAN_POSES)
            plans = decode_tokens(self.codebook, tokens).float()
            return Samples(plans=plans.detach(), logp=token_logp.sum(-1).view(batch, num_samples).detach(),
                           tokens=tokens.detach())
        context, valid = self._context(prefix)
        chain, step_logp = sample_chain(self._velocity_fn(context, valid, num_samples),
                                        self._flow_start(obs, num_samples, gen), self._grid(),
                                        self.config.noise_level, gen, stochastic=True)
        chain = chain.view(batch, num_samples, *chain.shape[1:]).detach()
        step_logp = step_logp.view(batch, num_samples, -1).detach()
        return Samples(plans=(chain[:, :, -1] * self.action_scale).float(), logp=step_logp.sum(-1),
                       chain=chain, step_logp=step_logp)

    def log_prob(self, obs: Obs, samples: Samples, prompt_extra: list[str] | None = None) -> tuple[Tensor, Tensor]:
        """(B, G) log-probs of stored samples under the current weights and (B, G, L) per token or (B, G, K) per step."""
        prefix = self.encode(obs, prompt_extra)
        if self.config.head is Head.TOKEN:
            if samples.tokens is None:
                raise ValueError("samples.tokens=None: the token head re-scores its own tokens (encode plans with the codebook)")
            per_token = self._token_log_probs(prefix, samples.tokens.to(self.device), self.config.temperature)
            return per_token.sum(-1), per_token
        if samples.chain is None:
            raise ValueError("samples.chain=None: the flow head re-scores a recorded denoising chain")
        batch, group = samples.chain.shape[:2]
        chain = samples.chain.to(self.device).flatten(0, 1)
        context, valid = self._context(prefix)
        steps = chain.shape[1] - 1
        per_step = chain_log_prob(self._velocity_fn(context, valid, group * steps), chain, self._grid(),
                                  self.config.noise_level).view(batch, group, steps)
        return per_step.sum(-1), per_step

    def imitation_loss(self, obs: Obs, expert_plans: Tensor, gen: torch.Generator | None = None) -> Tensor:
        """Token head: mean cross-entropy of the expert's codebook tokens (temperature 1).
        Flow head: rectified-flow MSE on the normalised expert plans (t, ε drawn from `gen`)."""
        target = torch.as_tensor(expert_plans, dtype=torch.float32, device=self.device)
        if target.ndim != 3 or target.shape[1:] != (PLAN_POSES, 3):
            raise ValueError(f"expert_plans.shape={tuple(target.shape)}: expected (B, {PLAN_POSES}, 3)")
        prefix = self.encode(obs)
        if self.config.head is Head.TOKEN:
            tokens = encode_plans(self.codebook, target)[:, None]
            return -self._token_log_probs(prefix, tokens, 1.0).mean()
        context, valid = self._context(prefix)
        return flow_matching_loss(self._velocity_fn(context, valid, 1), target / self.action_scale, gen)

    # --- checkpoints ---
    def save(self, path: str | Path) -> None:
        """Atomic checkpoint: config, tokenizer, codebook, backbone config and all weights."""
        config = {k: (v.value if hasattr(v, "value") else v) for k, v in asdict(self.config).items()}
        save_checkpoint({
            "kind": "vla", "config": config, "prompter": self.prompter.state(),
            "codebook": self._codebook.motions.cpu() if self._codebook is not None else None,
            "backbone": self.backbone.config.to_dict(), "state_dict": self.state_dict(),
        }, path)

    @classmethod
    def load(cls, path: str | Path, map_location=None) -> "VLA":
        """A model saved with `save`; needs neither the codebook file nor the pretrained folder."""
        payload = load_checkpoint(path, "vla", map_location)
        config = VLAConfig(**{**payload["config"], "pretrained": None, "codebook": None})
        codebook = Codebook(payload["codebook"]) if payload["codebook"] is not None else None
        model = cls(config, codebook=codebook, prompter=Prompter.from_state(payload["prompter"]),
                    backbone=payload["backbone"])
        model.load_state_dict(payload["state_dict"])
        return model.to(map_location) if map_location is not None else model
