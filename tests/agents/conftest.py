"""Agent test set-up: two generated scenes and their batched observation with tiny 64x32 cameras."""

import pytest

from envs.navsim_obs import ObservationConfig, build_observations
from scenarios import build_scene


@pytest.fixture(scope="session")
def scenes():
    return [build_scene("following", None, seed) for seed in (0, 1)]


@pytest.fixture(scope="session")
def obs(scenes):
    return build_observations(scenes, ObservationConfig(image_width=64, image_height=32))
