"""Camera images -> Qwen2.5-VL vision inputs (`pixel_values`, `image_grid_thw`) in torch, without
torchvision or a processor: resize, CLIP normalisation, and the processor's patch layout."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor
from torch.nn import functional as F

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
"""OpenAI CLIP RGB mean (Qwen2-VL image processor `image_mean`)."""
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
"""OpenAI CLIP RGB std (`image_std`)."""
PATCH = 14
"""Vision patch size [px] (Qwen2.5-VL `patch_size`)."""
MERGE = 2
"""Patches merged per side into one language token (`spatial_merge_size`)."""
TEMPORAL_PATCH = 2
"""Frames per temporal patch; a still image is repeated (`temporal_patch_size`)."""


@dataclass(frozen=True)
class VisionInputs:
    """N images (N = B x cameras, batch-major) in the layout the Qwen2.5-VL vision tower reads."""

    pixel_values: Tensor = field(metadata={"dims": "N*P C*2*14*14"})
    """float32 normalised patches, P = grid_h·grid_w per image."""
    image_grid_thw: Tensor = field(metadata={"dims": "N 3"})
    """int64 (1, grid_h, grid_w) per image."""

    @property
    def tokens_per_image(self) -> int:
        """Language tokens each image becomes after the 2x2 merge."""
        return int(self.image_grid_thw[0, 1] * self.image_grid_thw[0, 2]) // (MERGE * MERGE)


def patchify(images: Tensor) -> Tensor:
    """(N, C, h, w) normalised float images (h, w multiples of 28) -> (N·h/14·w/14, C·2·14·14) patches.

    Patch order is (row block, column block, row in 2x2 block, column in block) and each patch is
    (channel, time, y, x), the layout of transformers' Qwen2-VL image processor `patchify`.
    """
    n, c, h, w = images.shape
    if h % (PATCH * MERGE) or w % (PATCH * MERGE):
        raise ValueError(f"images.shape={tuple(images.shape)}: height and width must be multiples of {PATCH * MERGE}")
    gh, gw = h // PATCH, w // PATCH
    blocks = images.reshape(n, c, gh // MERGE, MERGE, PATCH, gw // MERGE, MERGE, PATCH)
    blocks = blocks.permute(0, 2, 5, 3, 6, 1, 4, 7)                 # (N, gh/2, gw/2, 2, 2, C, 14, 14)
    blocks = blocks[:, :, :, :, :, :, None].expand(*blocks.shape[:6], TEMPORAL_PATCH, PATCH, PATCH)
    return blocks.reshape(n * gh * gw, c * TEMPORAL_PATCH * PATCH * PATCH)


def vision_inputs(cameras: list[Tensor], height: int, width: int, device=None) -> VisionInputs:
    """Camera batches [(B, H, W, 3) uint8] -> VisionInputs of the B x len(cameras) images, resized to (height, width).

    Images are ordered scene-major (scene 0's cameras, then scene 1's), matching the prompt order.
    Resizing is bilinear with antialiasing (the processor uses bicubic PIL; close, not identical).
    """
    if not cameras:
        raise ValueError("cameras=[]: no images to encode")
    batch = cameras[0].shape[0]
    for k, image in enumerate(cameras):
        if image.ndim != 4 or image.shape[-1] != 3 or image.shape[0] != batch:
            raise ValueError(f"cameras[{k}].shape={tuple(image.shape)}: expected (B={batch}, H, W, 3) uint8")
    stacked = torch.stack([torch.as_tensor(image, device=device) for image in cameras], 1)   # (B, C, H, W, 3)
    pixels = stacked.flatten(0, 1).permute(0, 3, 1, 2).float() / 255.0                    # (N, 3, H, W)
    if pixels.shape[-2:] != (height, width):
        pixels = F.interpolate(pixels, size=(height, width), mode="bilinear", align_corners=False, antialias=True)
    mean = torch.tensor(CLIP_MEAN, device=pixels.device).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, device=pixels.device).view(1, 3, 1, 1)
    patches = patchify((pixels - mean) / std)
    grid = torch.tensor([1, height // PATCH, width // PATCH], device=pixels.device).repeat(pixels.shape[0], 1)
    return VisionInputs(pixel_values=patches, image_grid_thw=grid)
