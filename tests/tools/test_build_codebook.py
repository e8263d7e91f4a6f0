"""tools.build_codebook: a codebook from a folder of scene files, its summary line, one-line errors."""

import io
import json
from contextlib import redirect_stderr, redirect_stdout

import pytest

from agents.vla.codebook import load_codebook
from envs.scene_file import save_scene
from scenarios import build_scene
from tools.build_codebook import main


@pytest.fixture(scope="module")
def scene_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scenes")
    for seed in range(2):
        scene = build_scene("following", None, seed)
        save_scene(scene, folder / f"{scene.token}.json")
    return folder


def test_builds_from_scene_files(scene_dir, tmp_path):
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(["--split", str(scene_dir), "--data", "files", "--size", "64", "--radius", "0.01", "--out", str(tmp_path / "cb.pt")])
    assert code == 0
    summary = json.loads(out.getvalue())
    book = load_codebook(tmp_path / "cb.pt")
    assert summary["tokens"] == len(book) and 2 <= len(book) <= 17      # 16 segments + the still token
    assert summary["segments"] == 16 and summary["round_trip_max_m"] < 0.1


@pytest.mark.parametrize("argv, message", [
    (["--size", "0"], "--size=0: must be >= 1"),
    (["--data", "openscene"], "--data='openscene'"),
])
def test_bad_arguments_are_one_line(argv, message, tmp_path):
    err = io.StringIO()
    with redirect_stderr(err):
        code = main(["--split", "navmini", "--out", str(tmp_path / "x.pt"), *argv])
    assert code == 2 and err.getvalue().strip() == f"error: {message}" + ("" if "size" in message else ": expected builtin or files")
    assert not (tmp_path / "x.pt").exists()
