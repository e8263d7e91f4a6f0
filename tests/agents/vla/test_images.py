"""agents.vla.images: patch layout (checked against transformers' Qwen2-VL processor), resize, normalisation."""

import numpy as np
import pytest
import torch

from agents.vla.images import CLIP_MEAN, CLIP_STD, patchify, vision_inputs


def test_patch_layout_by_hand():
    # one-channel 28x56 image whose pixel value is its 14x14 patch index (row-major over the 2x4 grid)
    patch_id = torch.arange(8).view(2, 4).repeat_interleave(14, 0).repeat_interleave(14, 1)
    image = patch_id[None, None].float()                          # (1, 1, 28, 56)
    patches = patchify(image)
    assert patches.shape == (8, 1 * 2 * 14 * 14)
    # order: 2x2 merge block (0, 1 | 4, 5) first, then block (2, 3 | 6, 7)
    assert patches[:, 0].tolist() == [0, 1, 4, 5, 2, 3, 6, 7]
    assert (patches == patches[:, :1]).all()                     # each row is one patch, repeated in time


def test_patchify_matches_the_transformers_processor():
    pil = pytest.importorskip("transformers.models.qwen2_vl.image_processing_pil_qwen2_vl")
    image = np.random.default_rng(0).random((3, 56, 84), dtype=np.float32)
    expected, grid_h, grid_w = pil.Qwen2VLImageProcessorPil().patchify(image, 14, 2, 2)
    assert (grid_h, grid_w) == (4, 6)
    np.testing.assert_array_equal(patchify(torch.from_numpy(image)[None]).numpy(), expected)


def test_vision_inputs_normalise_and_order_scene_major():
    white = np.full((2, 28, 56, 3), 255, np.uint8)
    black = np.zeros((2, 28, 56, 3), np.uint8)
    inputs = vision_inputs([torch.from_numpy(white), torch.from_numpy(black)], 28, 56)
    assert inputs.pixel_values.shape == (4 * 8, 3 * 2 * 14 * 14)
    assert inputs.image_grid_thw.tolist() == [[1, 2, 4]] * 4 and inputs.tokens_per_image == 2
    per_image = inputs.pixel_values.view(4, 8, 3, 2 * 14 * 14)
    red_white, red_black = (1 - CLIP_MEAN[0]) / CLIP_STD[0], -CLIP_MEAN[0] / CLIP_STD[0]
    # scene 0 white, scene 0 black, scene 1 white, scene 1 black
    for index, value in enumerate([red_white, red_black, red_white, red_black]):
        torch.testing.assert_close(per_image[index, :, 0], torch.full((8, 392), value))


def test_vision_inputs_resize_and_errors():
    image = torch.full((1, 32, 64, 3), 128, dtype=torch.uint8)
    inputs = vision_inputs([image], 28, 56)
    torch.testing.assert_close(inputs.pixel_values.view(8, 3, -1)[:, 1], torch.full((8, 392), (128 / 255 - CLIP_MEAN[1]) / CLIP_STD[1]))
    with pytest.raises(ValueError, match="cameras"):
        vision_inputs([], 28, 56)
    with pytest.raises(ValueError, match=r"cameras\[1\].shape"):
        vision_inputs([image, torch.zeros(2, 32, 64, 3, dtype=torch.uint8)], 28, 56)
    with pytest.raises(ValueError, match="multiples of 28"):
        patchify(torch.zeros(1, 3, 28, 30))
