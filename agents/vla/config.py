"""`VLAConfig`: every knob of the VLA agent, and the Qwen2.5-VL backbone shapes of its presets
(`tiny`, `small`, `qwen2_5_vl_3b`), all built from scratch with random weights unless `pretrained`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
"""Any one of these makes a folder a loadable `from_pretrained` checkpoint."""


class Head(str, Enum):
    """How actions come out of the backbone."""

    TOKEN = "token"
    """AutoVLA-style: 8 codebook tokens decoded autoregressively by the language model."""
    FLOW = "flow"
    """pi0-style: a flow-matching action expert cross-attending to the backbone's last hidden states."""


class Preset(str, Enum):
    """Backbone sizes (Qwen2.5-VL architecture)."""

    TINY = "tiny"
    """hidden 128, 2 layers, vision depth 2: about 1 M parameters, trains on CPU in minutes."""
    SMALL = "small"
    """hidden 256, 4 layers, vision depth 4."""
    QWEN2_5_VL_3B = "qwen2_5_vl_3b"
    """The real Qwen2.5-VL-3B shapes (hidden 2048, 36 layers, vision depth 32), random weights."""


class FlowStart(str, Enum):
    """Where the flow head's integration starts."""

    NOISE = "noise"
    """Pure noise at t = 1 (rectified flow)."""
    HISTORY = "history"
    """SpanVLA-style: the constant-turn-rate extrapolation of the ego history, noised to t = `flow_start_t`."""


@dataclass
class VLAConfig:
    """The VLA agent (Hydra mirrors it under `agent`)."""

    # --- backbone ---
    head: Head = Head.TOKEN
    """`token` (codebook tokens from the language model) or `flow` (flow-matching action expert)."""
    preset: Preset = Preset.TINY
    """Backbone shapes when `pretrained` is None."""
    pretrained: str | None = None
    """Folder of a local `from_pretrained` Qwen2.5-VL checkpoint (never downloaded); None: random weights."""
    seed: int = 0
    """Seed of every random initialisation (the model is reproducible from its config)."""

    # --- inputs ---
    cameras: tuple[str, ...] = ("cam_l0", "cam_f0", "cam_r0")
    """Observation camera keys fed to the vision tower, in prompt order; empty: text only."""
    image_height: int = 28
    """[px] Height the cameras are resized to; a multiple of 28 (patch 14 x merge 2)."""
    image_width: int = 56
    """[px] Width the cameras are resized to; a multiple of 28. 28x56 gives 2 image tokens per camera."""
    extra_words: tuple[str, ...] = ()
    """Words added to the offline word-level vocabulary (e.g. for feedback reports in `prompt_extra`)."""

    # --- token head ---
    codebook: str | None = None
    """Codebook file from `tools/build_codebook.py`; None: the built-in speed x yaw-rate grid."""
    codebook_size: int = 256
    """K of the built-in grid codebook (ignored when `codebook` is a file)."""
    temperature: float = 1.0
    """Sampling temperature of the token head; `sample` and `log_prob` use the same (TRL convention)."""

    # --- flow head ---
    flow_layers: int = 2
    """Transformer layers of the action expert (self-attention over poses + cross-attention to the backbone)."""
    flow_width: int = 128
    """Width of the action expert."""
    flow_heads: int = 4
    """Attention heads of the action expert."""
    flow_steps: int = 10
    """K: integration steps (Euler ODE for `act`, Flow-GRPO SDE for `sample`)."""
    noise_level: float = 0.7
    """a: Flow-GRPO SDE noise level, std = a·sqrt(t / (1 - t))·sqrt(-dt) (posttraining.md §1.6)."""
    flow_start: FlowStart = FlowStart.NOISE
    """Integrate from pure noise or from the noised history extrapolation (SpanVLA option)."""
    flow_start_t: float = 0.6
    """Flow time of the history start, x = (1 - t)·extrapolation + t·noise (flow_start=history only)."""
    action_scale: tuple[float, float, float] = (15.0, 3.0, 0.3)
    """[m, m, rad] Plans are divided by this before the flow (normalised actions ~ unit scale)."""

    def __post_init__(self):
        try:
            self.head, self.preset, self.flow_start = Head(self.head), Preset(self.preset), FlowStart(self.flow_start)
        except ValueError as error:
            raise ValueError(f"{error}; valid heads {[h.value for h in Head]}, presets {[p.value for p in Preset]}, "
                             f"flow starts {[s.value for s in FlowStart]}") from None
        self.cameras, self.extra_words = tuple(self.cameras), tuple(self.extra_words)
        self.action_scale = tuple(float(s) for s in self.action_scale)
        for name in ("image_height", "image_width"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= 28 and value % 28 == 0):
                raise ValueError(f"{name}={value!r}: must be a positive multiple of 28 (patch 14 x merge 2)")
        for name in ("codebook_size", "flow_layers", "flow_width", "flow_heads", "flow_steps"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= 1):
                raise ValueError(f"{name}={value!r}: must be an integer >= 1")
        if self.flow_width % self.flow_heads:
            raise ValueError(f"flow_width={self.flow_width}: must be divisible by flow_heads={self.flow_heads}")
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ValueError(f"temperature={self.temperature!r}: must be > 0 (act decodes greedily)")
        if not (math.isfinite(self.noise_level) and self.noise_level > 0):
            raise ValueError(f"noise_level={self.noise_level!r}: must be > 0 (Flow-GRPO uses 0.7)")
        if not (0.0 < self.flow_start_t <= 1.0):
            raise ValueError(f"flow_start_t={self.flow_start_t!r}: must be in (0, 1]")
        if len(self.action_scale) != 3 or not all(math.isfinite(s) and s > 0 for s in self.action_scale):
            raise ValueError(f"action_scale={self.action_scale!r}: need 3 positive scales (x, y, heading)")
        if self.pretrained is not None:
            check_pretrained(self.pretrained)

    @property
    def start_time(self) -> float:
        """Flow time the integration starts from."""
        return 1.0 if self.flow_start is FlowStart.NOISE else self.flow_start_t


def check_pretrained(path: str) -> Path:
    """The folder of a local checkpoint; ValueError naming the path and the missing files otherwise."""
    folder = Path(path)
    if not folder.is_dir():
        raise ValueError(f"pretrained={path!r}: not a folder (a local from_pretrained checkpoint; nothing is downloaded)")
    missing = [] if (folder / "config.json").is_file() else ["config.json"]
    if not any((folder / name).is_file() for name in WEIGHT_FILES):
        missing.append(" or ".join(WEIGHT_FILES))
    if missing:
        raise ValueError(f"pretrained={path!r}: missing {', '.join(missing)}")
    return folder


def backbone_config(preset: Preset, vocab_size: int, token_ids: dict[str, int]):
    """A `Qwen2_5_VLConfig` of the preset's shapes with a vocabulary of at least `vocab_size`.

    token_ids: ids of pad, bos, eos, vision_start, vision_end, image_pad and video_pad in that vocabulary.
    """
    from transformers import Qwen2_5_VLConfig

    preset = Preset(preset)
    if preset is Preset.QWEN2_5_VL_3B:
        # Qwen/Qwen2.5-VL-3B-Instruct config.json shapes
        text = dict(vocab_size=max(vocab_size, 151936), hidden_size=2048, intermediate_size=11008,
                    num_hidden_layers=36, num_attention_heads=16, num_key_value_heads=2, rope_theta=1e6,
                    max_position_embeddings=128000, rope_scaling={"type": "mrope", "mrope_section": [16, 24, 24]})
        vision = dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, out_hidden_size=2048,
                      window_size=112, fullatt_block_indexes=[7, 15, 23, 31], tokens_per_second=2)
        tie = True
    else:
        width, layers, vision_width, depth = (128, 2, 64, 2) if preset is Preset.TINY else (256, 4, 128, 4)
        # head_dim 32 -> mrope sections must sum to 16
        text = dict(vocab_size=vocab_size, hidden_size=width, intermediate_size=2 * width, num_hidden_layers=layers,
                    num_attention_heads=width // 32, num_key_value_heads=max(1, width // 64),
                    max_position_embeddings=2048, rope_scaling={"type": "mrope", "mrope_section": [4, 6, 6]})
        vision = dict(depth=depth, hidden_size=vision_width, intermediate_size=2 * vision_width, num_heads=4,
                      out_hidden_size=width, window_size=56, fullatt_block_indexes=[depth - 1])
        tie = False
    text.update(bos_token_id=token_ids["bos"], eos_token_id=token_ids["eos"], pad_token_id=token_ids["pad"])
    vision.update(patch_size=14, spatial_merge_size=2, temporal_patch_size=2)
    return Qwen2_5_VLConfig(
        text_config=text, vision_config=vision, tie_word_embeddings=tie,
        image_token_id=token_ids["image_pad"], video_token_id=token_ids["video_pad"],
        vision_start_token_id=token_ids["vision_start"], vision_end_token_id=token_ids["vision_end"],
    )
