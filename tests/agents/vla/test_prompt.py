"""agents.vla.prompt: rendered text, word-level tokenizer, left padding, action ids, state round trip."""

import numpy as np
import pytest

from agents.vla.prompt import Prompter, action_token, render_prompt, word_level_tokenizer


def status(vx, vy, ax, ay):
    frames = np.zeros((4, 7), np.float32)
    frames[-1, 3:7] = [vx, vy, ax, ay]
    return frames


def test_render_prompt_hand_case():
    text = render_prompt(np.array([0, 0, 1, 0]), status(3.0, 4.0, 1.26, -0.04), "", "too close to the lead")
    assert text == ("<|im_start|> command : turn right . speed : 5.0 m/s . acceleration : 1.3 m/s2 , lateral 0.0 m/s2 . "
                    "feedback : too close to the lead . plan :")


def test_word_level_tokenizer_splits_digits_and_maps_unknowns():
    tok = word_level_tokenizer(extra_words=("Zebra",))
    ids = tok("speed : 12.5 zebra quux", add_special_tokens=False)["input_ids"]
    words = tok.convert_ids_to_tokens(ids)
    assert words == ["speed", ":", "1", "2", ".", "5", "zebra", "<unk>"]
    assert tok.convert_tokens_to_ids("<pad>") == 0


def test_prompter_pads_left_and_places_image_tokens():
    prompter = Prompter(word_level_tokenizer(), num_actions=5)
    command = np.eye(4)[[1, 1]]
    batch = prompter.encode(command, np.stack([status(1, 0, 0, 0)] * 2), ("cam_f0",), 2, extras=["", "brake earlier"])
    mask = batch.attention_mask
    # the feedback adds 5 tokens (feedback : brake earlier .) so scene 0 gets 5 pads on the left
    assert mask.shape[0] == 2 and mask[1].all() and (mask[0, :5] == 0).all() and mask[0, 5:].all()
    assert int(batch.mm_token_type_ids[0].sum()) == 2 == int(batch.mm_token_type_ids[1].sum())
    words = prompter.tokenizer.convert_ids_to_tokens(batch.input_ids[0, 5:].tolist())
    assert words[:6] == ["<|im_start|>", "front", "camera", "<|vision_start|>", "<|image_pad|>", "<|image_pad|>"]
    with pytest.raises(ValueError, match="prompt_extra"):
        prompter.encode(command, np.stack([status(1, 0, 0, 0)] * 2), (), 0, extras=["a"])


def test_action_tokens_are_contiguous_after_the_text_vocab():
    tok = word_level_tokenizer()
    text_size = len(tok)
    prompter = Prompter(tok, num_actions=7)
    assert prompter.action_offset == text_size and prompter.vocab_size == text_size + 7
    assert prompter.tokenizer.convert_ids_to_tokens(text_size + 6) == action_token(6)
    assert Prompter(word_level_tokenizer(), num_actions=0).action_offset == text_size


def test_prompter_state_round_trip():
    prompter = Prompter(word_level_tokenizer(("custom",)), num_actions=4)
    copy = Prompter.from_state(prompter.state())
    a = prompter.encode(np.eye(4)[[0]], status(2, 0, 0, 0)[None], (), 0, ["custom words"])
    b = copy.encode(np.eye(4)[[0]], status(2, 0, 0, 0)[None], (), 0, ["custom words"])
    assert a.input_ids.tolist() == b.input_ids.tolist() and copy.action_offset == prompter.action_offset
    assert copy.token_ids == prompter.token_ids
