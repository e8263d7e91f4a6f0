"""tools.make_scenes: deterministic files, per-index seeds, one-line errors."""

import subprocess
import sys
from pathlib import Path

import pytest

from scenarios import SCENARIOS

from envs.scene_file import load_scene
from tools.make_scenes import main, scene_job

REPO = Path(__file__).resolve().parents[2]


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tools.make_scenes", *args], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_two_runs_write_identical_files(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    runs = [start("--out", str(out), "--n", "3", "--seed", "5", "--scenario", "following") for out in (first, second)]
    for run in runs:        # both run at once: the start-up (torch import) dominates
        _, stderr = run.communicate(timeout=300)
        assert run.returncode == 0, stderr
    names = sorted(p.name for p in first.glob("*.json"))
    assert len(names) == 3 and names == sorted(p.name for p in second.glob("*.json"))
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes()
        scene = load_scene(first / name)
        assert f"{scene.token}.json" == name and scene.scenario_type == "following"


def test_bad_argument_in_a_subprocess_is_one_line_without_traceback(tmp_path):
    run = start("--out", str(tmp_path / "out"), "--n=-1")
    stdout, stderr = run.communicate(timeout=300)
    assert run.returncode != 0
    assert stderr.strip().splitlines() == ["error: --n=-1: must be >= 1"]
    assert "Traceback" not in stderr + stdout and not (tmp_path / "out").exists()


def test_scene_seed_depends_on_seed_and_index_not_on_n():
    jobs = [scene_job(0, i, "mixed") for i in range(5)]
    assert jobs[:3] == [scene_job(0, i, "mixed") for i in range(3)]
    assert len({seed for _, seed in jobs}) == 5
    assert {name for name, _ in jobs} <= set(SCENARIOS)
    assert scene_job(1, 0, "mixed") != scene_job(0, 0, "mixed")
    assert scene_job(0, 2, "following") == ("following", scene_job(0, 2, "mixed")[1])


@pytest.mark.parametrize("args, message", [
    (["--n", "abc"], "argument --n: invalid int value: 'abc'"),
    (["--n", "2", "--seed", "-3"], "--seed=-3: must be >= 0"),
    (["--n", "1", "--scenario", "bogus"], "--scenario='bogus': unknown"),
    ([], "the following arguments are required: --n"),
])
def test_bad_arguments_give_one_line_errors(tmp_path, capsys, args, message):
    assert main(["--out", str(tmp_path / "out"), *args]) != 0
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert not (tmp_path / "out").exists()


def test_out_must_be_a_folder(tmp_path, capsys):
    target = tmp_path / "file.json"
    target.write_text("{}")
    assert main(["--out", str(target), "--n", "1"]) != 0
    assert "not a folder" in capsys.readouterr().err


def test_mixed_draws_only_navsim_families():
    from scenarios import families
    from tools.make_scenes import scene_job

    drawn = {scene_job(0, index, "mixed")[0] for index in range(300)}
    assert drawn <= set(families("navsim"))
    assert len(drawn) > 5  # the draw really mixes
    assert not drawn & set(families("bench2drive"))
