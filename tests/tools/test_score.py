"""`python -m tools.score`: one scene, a folder, and one-line errors (never a traceback) on bad input."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.scene_builders import add_box, constant_speed_plan, straight_road_dict
from tools import score as score_cli

ROOT = Path(__file__).resolve().parents[2]


def write(path: Path, data) -> Path:
    path.write_text(json.dumps(data))
    return path


def run_cli(args, capsys):
    code = score_cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def scene_dict():
    d = straight_road_dict()
    d["reference_trajectory"] = constant_speed_plan(10.0)
    return d


def test_single_scene_prints_every_key(tmp_path, scene_dict, capsys):
    scene = write(tmp_path / "s.json", scene_dict)
    plan = write(tmp_path / "p.json", constant_speed_plan(10.0))
    code, out, _ = run_cli(["--scene", scene, "--trajectory", plan], capsys)
    assert code == 0
    result = json.loads(out)
    assert set(result) == {"token", "nc", "dac", "ddc", "tlc", "ep", "ttc", "c", "lk", "hc", "ec", "pdms", "epdms"}
    assert result["pdms"] == 1.0 and result["token"] == scene_dict["token"]


def test_epdms_metric_flag(tmp_path, scene_dict, capsys):
    scene = write(tmp_path / "s.json", add_box(copy.deepcopy(scene_dict), "S", "vehicle", 35.0, 0.0))
    plan = write(tmp_path / "p.json", constant_speed_plan(10.0))
    code, out, _ = run_cli(["--scene", scene, "--trajectory", plan, "--metric", "epdms", "--no-human-filter"], capsys)
    assert code == 0 and json.loads(out)["epdms"] == 0.0


def test_folder_mode_reports_invalid_scenes_without_counting_them(tmp_path, scene_dict, capsys):
    scenes, plans = tmp_path / "scenes", tmp_path / "plans"
    scenes.mkdir(), plans.mkdir()
    good = copy.deepcopy(scene_dict)
    crash = add_box(copy.deepcopy(scene_dict), "S", "vehicle", 35.0, 0.0)
    crash["token"] = "crash"
    write(scenes / "a.json", good)
    write(scenes / "b.json", crash)
    write(scenes / "c.json", {**scene_dict, "token": "broken", "route": {"roadblock_ids": []}})
    for name in ("a", "b", "c"):
        write(plans / f"{name}.json", constant_speed_plan(10.0))
    code, out, err = run_cli(["--scene", scenes, "--trajectories", plans], capsys)
    lines = [json.loads(line) for line in out.strip().splitlines()]
    assert [row["valid"] for row in lines[:3]] == [True, True, False]
    assert "route.roadblock_ids" in lines[2]["error"]
    aggregate = lines[-1]
    assert aggregate["num_valid"] == 2 and aggregate["num_invalid"] == 1
    assert aggregate["aggregate"]["pdms"] == pytest.approx((1.0 + 0.0) / 2)  # the invalid scene is not a 0
    assert code == 1 and "1 of 3 scenes" in err


def _bad_cases(scene_dict):
    nan_traj = constant_speed_plan(10.0)
    nan_traj["poses"][2][0] = float("nan")
    bad_type = add_box(copy.deepcopy(scene_dict), "X", "vehicle", 30.0, 0.0)
    bad_type["agents"][0]["type"] = "truck"
    bow_tie = copy.deepcopy(scene_dict)
    bow_tie["map"]["roadblocks"][0]["polygon"] = [[0, 0], [10, 10], [10, 0], [0, 10]]
    empty_route = copy.deepcopy(scene_dict)
    empty_route["route"]["roadblock_ids"] = []
    short = constant_speed_plan(10.0)
    short["poses"] = [p[:2] for p in short["poses"]]
    return {
        "nan trajectory": (scene_dict, nan_traj, "nan"),
        "wrong shape": (scene_dict, short, "trajectory.poses"),
        "unknown agent type": (bad_type, constant_speed_plan(10.0), "truck"),
        "self-intersecting polygon": (bow_tie, constant_speed_plan(10.0), "self-intersecting"),
        "empty route": (empty_route, constant_speed_plan(10.0), "route.roadblock_ids"),
    }


@pytest.mark.parametrize("case", ["nan trajectory", "wrong shape", "unknown agent type", "self-intersecting polygon", "empty route"])
def test_bad_input_is_one_line_and_non_zero(tmp_path, scene_dict, capsys, case):
    scene_data, plan_data, needle = _bad_cases(scene_dict)[case]
    scene = tmp_path / "s.json"
    scene.write_text(json.dumps(scene_data).replace("NaN", "NaN"))
    plan = tmp_path / "p.json"
    plan.write_text(json.dumps(plan_data))
    code, out, err = run_cli(["--scene", scene, "--trajectory", plan], capsys)
    assert code != 0 and out == ""
    assert len(err.strip().splitlines()) == 1 and needle in err and "Traceback" not in err


def test_missing_files_and_flags(tmp_path, capsys):
    code, _, err = run_cli(["--scene", tmp_path / "nope.json", "--trajectory", tmp_path / "p.json"], capsys)
    assert code == 2 and "no such file" in err
    write(tmp_path / "s.json", {})
    code, _, err = run_cli(["--scene", tmp_path / "s.json"], capsys)
    assert code == 2 and "--trajectory" in err


def test_module_entry_point_runs_without_traceback(tmp_path, scene_dict):
    scene = write(tmp_path / "s.json", {**scene_dict, "agents": [{"id": "A", "type": "truck", "length": 4, "width": 2, "states": []}]})
    plan = write(tmp_path / "p.json", constant_speed_plan(10.0))
    proc = subprocess.run([sys.executable, "-m", "tools.score", "--scene", str(scene), "--trajectory", str(plan)],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and proc.stderr.startswith("error:")
