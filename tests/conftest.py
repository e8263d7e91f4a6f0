"""Shared pytest set-up: CPU determinism. Scene builders live in tests/scene_builders.py."""

import torch

torch.set_num_threads(1)
