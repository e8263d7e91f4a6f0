"""tools.evaluate: the families filter picks exactly the scenes of those families (mean of their single-scene
results), and bad arguments are named."""

import json
import shutil

import pytest

from envs.scene_file import save_scene
from scenarios import build_scene
from tools import evaluate


@pytest.fixture(scope="module")
def mixed_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mixed")
    for i, family in enumerate(["following", "cut_in", "jaywalker", "cut_in"]):
        scene = build_scene(family, None, 100 + i)
        save_scene(scene, folder / f"{i:02d}_{scene.token}.json")
    return folder


def run(capsys, *argv: str) -> dict:
    assert evaluate.main(["--agent", "constant_velocity", "--data", "files", *argv]) == 0
    return json.loads(capsys.readouterr().out.splitlines()[0])


def test_families_filter_equals_the_mean_of_those_scenes_alone(mixed_dir, tmp_path, capsys):
    filtered = run(capsys, "--split", str(mixed_dir), "--families", "cut_in")
    assert filtered["num_scenes"] == 2.0
    singles = []
    for path in sorted(mixed_dir.glob("0[13]_*.json")):           # the two cut-ins, each in its own folder
        folder = tmp_path / path.stem
        folder.mkdir()
        shutil.copy(path, folder / path.name)
        singles.append(run(capsys, "--split", str(folder)))
    for key in ("nc", "dac", "ep", "ttc", "pdms"):
        assert filtered[key] == pytest.approx((singles[0][key] + singles[1][key]) / 2, abs=1e-12), key
    everything = run(capsys, "--split", str(mixed_dir))
    assert everything["num_scenes"] == 4.0


def test_bad_arguments_are_named(capsys):
    assert evaluate.main(["--agent", "constant_velocity", "--split", "navmini", "--families", "cut_inn"]) == 2
    assert "families=['cut_inn']: unknown ['cut_inn']" in capsys.readouterr().err
    assert evaluate.main(["--agent", "nobody"]) == 2
    assert "--agent='nobody': unknown" in capsys.readouterr().err
