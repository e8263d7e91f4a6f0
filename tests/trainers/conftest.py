"""Tiny scene folders for the trainer tests: `following` scenes saved as scene/1 files, each with its
human plan as the progress reference, so scoring skips PDM-Closed (the slow part on CPU); and the
Hydra composition of a trainer's config, as its `python -m trainers.<name> <overrides>` would see it."""

from __future__ import annotations

from dataclasses import replace

import pytest

from envs.scene_file import save_scene
from scenarios import build_scene
from trainers.common.setup import CONFIG_DIR, from_hydra, register_schema


def compose_config(name: str, schema: type, *overrides: str):
    """`python -m trainers.<name> <overrides>` as the validated `schema` dataclass."""
    from hydra import compose, initialize_config_dir

    register_schema(schema, f"{name}_schema")
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return from_hydra(compose(name, overrides=list(overrides)))


def write_scenes(folder, seeds, family: str = "following"):
    folder.mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        scene = build_scene(family, None, seed)
        save_scene(replace(scene, reference_trajectory=scene.human_trajectory), folder / f"{seed:04d}.json")
    return folder


@pytest.fixture(scope="session")
def train_scenes(tmp_path_factory):
    """Folder of 6 scenes (data=files)."""
    return write_scenes(tmp_path_factory.mktemp("train"), range(6))


@pytest.fixture(scope="session")
def eval_scenes(tmp_path_factory):
    """Folder of 3 held-out scenes (data=files)."""
    return write_scenes(tmp_path_factory.mktemp("eval"), range(100, 103))
