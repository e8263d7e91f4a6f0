"""envs.scene_source: the `families` filter on scene files (by each scene's scenario_type) and its errors."""

import pytest

from envs.navsim import NavsimConfig
from envs.scene_file import save_scene
from envs.scene_source import open_scene_source
from scenarios import build_scene


@pytest.fixture(scope="module")
def mixed_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mixed")
    for i, family in enumerate(["following", "cut_in", "following", "cut_in", "jaywalker"]):
        scene = build_scene(family, None, i)
        save_scene(scene, folder / f"{i:02d}_{scene.token}.json")
    return folder


def test_files_are_filtered_by_scenario_type_in_order(mixed_dir):
    source = open_scene_source(NavsimConfig(data="files", split=str(mixed_dir), families=["cut_in", "jaywalker"]))
    assert [source.scene(i).scenario_type for i in range(len(source))] == ["cut_in", "cut_in", "jaywalker"]
    first = open_scene_source(NavsimConfig(data="files", split=str(mixed_dir), families=["cut_in"], max_scenes=1))
    assert len(first) == 1 and first.scene(0).token == source.scene(0).token


def test_family_filter_errors_name_the_field(mixed_dir):
    with pytest.raises(ValueError, match=r"^families=\['merge'\]: no scene of the source"):
        open_scene_source(NavsimConfig(data="files", split=str(mixed_dir), families=["merge"]))
    with pytest.raises(ValueError, match=r"^families=\(\): expected a non-empty list"):
        NavsimConfig(families=[])
    assert NavsimConfig(families="cut_in").families == ("cut_in",)
