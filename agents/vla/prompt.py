"""The VLA's text side: an offline word-level tokenizer (`tokenizers` WordLevel wrapped in
`PreTrainedTokenizerFast`), the driving prompt (cameras, command, ego status as rounded text,
optional feedback) and its left-padded batch encoding, with the action tokens appended to the vocab."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from torch import Tensor

SPECIAL_TOKENS = {
    "pad": "<pad>", "unk": "<unk>", "bos": "<|im_start|>", "eos": "<|im_end|>",
    "vision_start": "<|vision_start|>", "vision_end": "<|vision_end|>",
    "image_pad": "<|image_pad|>", "video_pad": "<|video_pad|>",
}
"""Role -> token string; vision strings are Qwen2.5-VL's so a pretrained tokenizer reads the same prompt."""
COMMAND_TEXT = ("turn left", "go straight", "turn right", "unknown")
"""Driving command words, in the one-hot order of `envs.sim.scene.Command`."""
CAMERA_TEXT = {
    "cam_f0": "front", "cam_l0": "front left", "cam_r0": "front right", "cam_l1": "left", "cam_r1": "right",
    "cam_l2": "rear left", "cam_r2": "rear right", "cam_b0": "back",
}
"""How each NAVSIM camera is named in the prompt."""
WORDS = (
    "0 1 2 3 4 5 6 7 8 9 . , : ; - + / ( ) % = ' \" ! ? < > "
    "camera front left right rear back command turn go straight unknown speed acceleration lateral "
    "m s s2 kmh plan feedback reasoning report trajectory previous attempt this the a an of to in on at is "
    "was were be been and or not no too than by with for from it its ego vehicle car agent agents object "
    "pedestrian cyclist bicycle obstacle lead leading ahead behind near far close distance gap "
    "collision collided crash hit at-fault fault drivable area off road offroad lane keeping change "
    "center centre centerline boundary traffic light red yellow green stop stopped line sign "
    "direction wrong oncoming progress ego_progress time ttc comfort comfortable jerk yaw rate "
    "extended history score scores pdms epdms nc dac ddc tlc ep c lk hc ec failed failure fail passed pass "
    "ok good bad unsafe safe slow slower fast faster accelerate decelerate brake braking keep maintain "
    "steer steering swerve drive driving follow yield wait reverse reversing forward backward route "
    "intersection junction curve corner exit enter merge cut cut-in blocked parked static moving "
    "low high more less increase decrease reduce earlier later early late should must avoid try instead "
    "planning execution diagnosis reason because so then first second next final step"
).split()
"""Base vocabulary of the word-level tokenizer (numbers are split into single digits)."""


def action_token(index: int) -> str:
    """Text of action token `index` (AutoVLA names them `<action_k>`)."""
    return f"<action_{index}>"


def word_level_tokenizer(extra_words: tuple[str, ...] = ()):
    """An offline `PreTrainedTokenizerFast`: lower-cased words, digits split, the special tokens first."""
    from tokenizers import AddedToken, Tokenizer, normalizers, pre_tokenizers
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    words = list(dict.fromkeys([*SPECIAL_TOKENS.values(), *WORDS, *(w.lower() for w in extra_words)]))
    backend = Tokenizer(WordLevel({w: i for i, w in enumerate(words)}, unk_token=SPECIAL_TOKENS["unk"]))
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Whitespace(), pre_tokenizers.Digits(individual_digits=True)])
    backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS.values()])
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token=SPECIAL_TOKENS["pad"], unk_token=SPECIAL_TOKENS["unk"],
        bos_token=SPECIAL_TOKENS["bos"], eos_token=SPECIAL_TOKENS["eos"], padding_side="left",
    )


def tokenizer_from_json(text: str, special: dict[str, str]):
    """A tokenizer saved with `Prompter.state()` (word-level or a pretrained one)."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(text), padding_side="left", **special)


def _number(value: float) -> str:
    return f"{round(float(value), 1) + 0.0:.1f}"      # + 0.0 turns -0.0 into 0.0


def render_prompt(command: np.ndarray, ego_status: np.ndarray, camera_text: str, extra: str | None = None) -> str:
    """One scene's prompt; command (4,) one-hot, ego_status (4, 7) (current frame last).

    Speed |v| [m/s] and longitudinal / lateral acceleration [m/s^2] of the current frame, rounded to 0.1.
    """
    vx, vy, ax, ay = (float(v) for v in ego_status[-1, 3:7])
    words = [
        SPECIAL_TOKENS["bos"], camera_text,
        "command :", COMMAND_TEXT[int(np.argmax(command))], ".",
        "speed :", _number(np.hypot(vx, vy)), "m/s . acceleration :", _number(ax), "m/s2 , lateral", _number(ay), "m/s2 .",
    ]
    if extra:
        words += ["feedback :", extra.strip(), "."]
    words.append("plan :")
    return " ".join(w for w in words if w)


@dataclass(frozen=True)
class PromptBatch:
    """B left-padded prompts."""

    input_ids: Tensor = field(metadata={"dims": "B S"})
    attention_mask: Tensor = field(metadata={"dims": "B S"})
    """1 for prompt tokens, 0 for left padding."""
    mm_token_type_ids: Tensor = field(metadata={"dims": "B S"})
    """1 at image placeholder tokens, 0 elsewhere (Qwen2.5-VL `get_rope_index`)."""


class Prompter:
    """Tokenizer + action vocabulary: renders and encodes prompts, maps action indices to token ids."""

    def __init__(self, tokenizer, num_actions: int):
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        tokenizer.padding_side = "left"
        names = [action_token(k) for k in range(num_actions)]
        missing = [n for n in names if n not in tokenizer.get_vocab()]
        if missing:
            tokenizer.add_tokens(missing, special_tokens=True)
        ids = tokenizer.convert_tokens_to_ids(names)
        if ids and ids != list(range(ids[0], ids[0] + num_actions)):
            raise ValueError(f"tokenizer: the {num_actions} action tokens did not get contiguous ids")
        self.tokenizer, self.num_actions = tokenizer, num_actions
        self.action_offset = ids[0] if ids else len(tokenizer)
        self.token_ids = {role: tokenizer.convert_tokens_to_ids(text) for role, text in SPECIAL_TOKENS.items()}
        self.token_ids["pad"] = tokenizer.pad_token_id
        if self.token_ids["bos"] is None or self.token_ids["bos"] == tokenizer.unk_token_id:
            self.token_ids["bos"] = tokenizer.pad_token_id

    @property
    def vocab_size(self) -> int:
        """Ids in use: text tokens and action tokens."""
        return len(self.tokenizer)

    def camera_text(self, cameras: tuple[str, ...], tokens_per_image: int) -> str:
        """The image part of the prompt: per camera its name and its placeholder tokens."""
        pad = " ".join([SPECIAL_TOKENS["image_pad"]] * tokens_per_image)
        return " ".join(f"{CAMERA_TEXT.get(c, c)} camera {SPECIAL_TOKENS['vision_start']} {pad} {SPECIAL_TOKENS['vision_end']}"
                        for c in cameras)

    def encode(self, command: np.ndarray, ego_status: np.ndarray, cameras: tuple[str, ...], tokens_per_image: int,
               extras: list[str] | None = None, device=None) -> PromptBatch:
        """command (B, 4), ego_status (B, 4, 7) -> left-padded PromptBatch; extras: one text (or '') per scene."""
        batch = len(command)
        if extras is not None and len(extras) != batch:
            raise ValueError(f"len(prompt_extra)={len(extras)}: expected one text per scene (B={batch})")
        images = self.camera_text(cameras, tokens_per_image) if cameras else ""
        texts = [render_prompt(command[b], ego_status[b], images, None if extras is None else extras[b]) for b in range(batch)]
        encoded = self.tokenizer(texts, padding=True, add_special_tokens=False, return_tensors="pt")
        ids = encoded["input_ids"].to(device)
        mask = encoded["attention_mask"].to(device)
        return PromptBatch(ids, mask, (ids == self.token_ids["image_pad"]).int() * mask.int())

    def state(self) -> dict:
        """What rebuilds this Prompter (`Prompter.from_state`): the tokenizer JSON and its special tokens."""
        tok = self.tokenizer
        special = {f"{k}_token": getattr(tok, f"{k}_token") for k in ("pad", "unk", "bos", "eos") if getattr(tok, f"{k}_token")}
        return {"tokenizer_json": tok.backend_tokenizer.to_str(), "special": special, "num_actions": self.num_actions}

    @classmethod
    def from_state(cls, state: dict) -> "Prompter":
        return cls(tokenizer_from_json(state["tokenizer_json"], state["special"]), state["num_actions"])
