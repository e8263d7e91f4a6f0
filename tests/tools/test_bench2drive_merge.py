"""tools.bench2drive_merge on hand-built result folders: official figures, crash cases, strict mode, files."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from envs.backends.bench2drive_routes import TownJunctions, read_routes
from envs.metrics.bench2drive_results import INFRACTION_KEYS, IssueLog, merge_results
from tools.bench2drive_merge import main, read_metric_infos, read_results

REPO = Path(__file__).resolve().parents[2]

# route id -> (town, scenario type); 2 is a junction route on the test map, 6 has no record.
ROUTES = {"1": ("Town01", "Accident"), "2": ("Town01", "SignalizedJunctionRightTurn"),
          "3": ("Town01", "HardBreakRoute"), "4": ("Town01", "InvadingTurn"), "5": ("Town01", "T_Junction"),
          "6": ("Town02", "ParkingExit")}


def routes_xml() -> str:
    keypoints = "".join(f'<position x="{x}" y="-1.75" z="0"/>' for x in [*range(0, 99, 2), 99])
    body = "".join(
        f'<route id="{rid}" town="{town}"><waypoints>{keypoints}'
        f'</waypoints><scenarios><scenario name="{kind}_1" type="{kind}"/></scenarios></route>'
        for rid, (town, kind) in ROUTES.items())
    return f"<routes>{body}</routes>"


def town01_xodr() -> str:
    """Eastbound roads: 1 (x 0..50), junction road 2 (x 50..70), 3 (x 70..150); one 3.5 m lane each way."""
    def road(road_id, x0, length, junction):
        return f"""<road id="{road_id}" junction="{junction}" length="{length}"><planView>
          <geometry s="0" x="{x0}" y="0" hdg="0" length="{length}"><line/></geometry></planView>
          <lanes><laneSection s="0">
            <left><lane id="1" type="driving"><width sOffset="0" a="3.5" b="0" c="0" d="0"/></lane></left>
            <right><lane id="-1" type="driving"><width sOffset="0" a="3.5" b="0" c="0" d="0"/></lane></right>
          </laneSection></lanes></road>"""
    return f"<OpenDRIVE>{road(1, 0, 50, -1)}{road(2, 50, 20, 5)}{road(3, 70, 80, -1)}</OpenDRIVE>"


def record(rid, index, status, score, rc, speeds, **infractions):
    lists = {key: [] for key in INFRACTION_KEYS}
    lists["min_speed_infractions"] = [f"Average speed is {v}% of the surrounding traffic's one" for v in speeds]
    lists.update(infractions)
    return {"index": index, "route_id": f"RouteScenario_{rid}_rep0", "scenario_name": f"{ROUTES[rid][1]}_1",
            "weather_id": "0", "save_name": f"RouteScenario_{rid}_rep0_{ROUTES[rid][0]}_x", "status": status,
            "num_infractions": sum(map(len, lists.values())), "infractions": lists,
            "scores": {"score_route": rc, "score_penalty": score / max(rc, 1e-9), "score_composed": score},
            "meta": {"route_length": 99.0, "duration_game": 30.0, "duration_system": 90.0}, "town_name": ROUTES[rid][0]}


def checkpoint(records):
    return {"_checkpoint": {"global_record": {}, "progress": [len(records), len(records)], "records": records},
            "entry_status": "Finished", "eligible": True, "sensors": [], "values": [], "labels": []}


def metric_steps(n, bump=None):
    steps = {}
    for i in range(n):
        ax = 5.0 if bump and bump[0] <= i < bump[1] else 0.0
        steps[str(i)] = {"acceleration": [ax, 0, 0], "angular_velocity": [0, 0, 0], "forward_vector": [1, 0, 0],
                         "right_vector": [0, 1, 0], "location": [i * 0.1, 0, 0], "rotation": [0, 0, 0]}
    return steps


@pytest.fixture
def folders(tmp_path):
    """results/ (two checkpoints, 5 records), metrics/, routes.xml, maps/Town01.xodr. Hand-worked figures:
    DS = (100 + 60 + 60 + 100 + 100) / 220; SR = 3/220 (routes 1, 4, 5); Efficiency = mean(90, 50, 120, 40) = 75;
    Comfortness = (1 + 1 + 0.5 + 1 + 1) / 5; abilities O 1/1, M 0/1, E 0/1, G 1/1, T (1 + credit)/2; 6 crashed."""
    results, metrics, maps = tmp_path / "results", tmp_path / "metrics", tmp_path / "maps"
    for folder in (results, metrics, maps):
        folder.mkdir()
    blocked = "Failed - Agent got blocked"
    first = [record("1", 0, "Completed", 100.0, 100.0, [100, 80]),
             record("2", 1, blocked, 60.0, 60.0, [50], vehicle_blocked=["blocked"])]   # RC 0.60 > (51 + 8) / 100
    second = [record("3", 0, "Completed", 60.0, 100.0, [], collisions_vehicle=["hit"]),
              record("4", 1, "Perfect", 100.0, 100.0, [120]),
              record("5", 2, "Completed", 100.0, 100.0, [2000, 40])]
    (results / "eval_0.json").write_text(json.dumps(checkpoint(first)))
    (results / "eval_1.json").write_text(json.dumps(checkpoint(second)))
    for raw in first + second:
        (metrics / raw["save_name"]).mkdir()
        steps = metric_steps(45, bump=(26, 30)) if raw["route_id"].startswith("RouteScenario_3_") else metric_steps(25)
        (metrics / raw["save_name"] / "metric_info.json").write_text(json.dumps(steps))
    (tmp_path / "routes.xml").write_text(routes_xml())
    (maps / "Town01.xodr").write_text(town01_xodr())
    return tmp_path


def args(root, *extra, maps=True):
    base = ["--results", str(root / "results"), "--metrics", str(root / "metrics"), "--routes", str(root / "routes.xml")]
    return base + (["--maps", str(root / "maps")] if maps else []) + list(extra)


def run(capsys, argv):
    code = main(argv)
    captured = capsys.readouterr()
    return code, (json.loads(captured.out) if code == 0 else None), captured.err


def test_prints_the_official_figures(folders, capsys):
    code, out, _ = run(capsys, args(folders))
    assert code == 0
    assert out["driving_score"] == pytest.approx(420 / 220) and out["success_rate"] == pytest.approx(3 / 220)
    assert out["eval_num"] == 5 and out["efficiency"] == pytest.approx(75.0)
    assert out["comfortness"] == pytest.approx(4.5 / 5)
    assert out["abilities"] == {"Overtaking": 1.0, "Merging": 0.0, "Emergency_Brake": 0.0, "Give_Way": 1.0,
                                "Traffic_Signs": 1.0, "mean": pytest.approx(0.6), "crashed": ["6"]}
    assert any("eval_num=5: not 220" in w for w in out["warnings"])
    assert "corrected" not in out


def test_without_maps_the_extra_credit_is_skipped_with_a_warning(folders, capsys):
    code, out, _ = run(capsys, args(folders, maps=False))
    assert code == 0 and out["abilities"]["Traffic_Signs"] == 0.5 and out["abilities"]["mean"] == pytest.approx(0.5)
    assert any("extra credit skipped for 1" in w for w in out["warnings"])
    code, _, err = run(capsys, args(folders, "--strict-official", maps=False))
    assert code == 1 and "OpenDRIVE" in err


def test_the_hand_built_folder_passes_strict_mode_and_corrected_figures_sit_beside(folders, capsys):
    code, out, _ = run(capsys, args(folders, "--strict-official", "--corrected"))
    assert code == 0
    assert out["corrected"] == {"efficiency": pytest.approx(75.0), "comfortness": pytest.approx(0.9)}


def _empty_file(root):
    (root / "results" / "eval_2.json").write_text("")


def _truncated_file(root):
    (root / "results" / "eval_2.json").write_text('{"_checkpoint": {"records": [{"index": 0,')


def _no_checkpoint(root):
    (root / "results" / "notes.json").write_text('{"comment": "not a checkpoint"}')


def _no_index(root):
    path = root / "results" / "eval_0.json"
    data = json.loads(path.read_text())
    del data["_checkpoint"]["records"][0]["index"]
    path.write_text(json.dumps(data))


def _edit_record(root, rid, change):
    path = root / "results" / "eval_1.json"
    data = json.loads(path.read_text())
    for raw in data["_checkpoint"]["records"]:
        if raw["route_id"] == f"RouteScenario_{rid}_rep0":
            change(raw)
    path.write_text(json.dumps(data))


def _metric_path(root, rid):
    return root / "metrics" / f"RouteScenario_{rid}_rep0_Town01_x" / "metric_info.json"


def _speeds_over_1000(root):
    def change(raw):
        raw["infractions"]["min_speed_infractions"] = ["Average speed is 1500.0% of it", "Average speed is 3000.5% of it"]
    _edit_record(root, "4", change)


def _few_samples(root):
    _metric_path(root, "4").write_text(json.dumps(metric_steps(2)))


def _no_give_way_route(root):
    path = root / "results" / "eval_1.json"
    data = json.loads(path.read_text())
    data["_checkpoint"]["records"] = [r for r in data["_checkpoint"]["records"] if "_4_" not in r["route_id"]]
    path.write_text(json.dumps(data))


CRASHES = {
    "empty checkpoint": (_empty_file, "eval_2.json: empty file; skipped", {}),
    "truncated checkpoint": (_truncated_file, "eval_2.json: truncated or invalid JSON", {}),
    "no _checkpoint": (_no_checkpoint, "notes.json: no '_checkpoint'; skipped", {}),
    "record without index": (_no_index, "record RouteScenario_1_rep0 has no 'index'; kept", {}),
    "missing metric file": (lambda root: _metric_path(root, "4").unlink(), "no file", {"comfortness": 3.5 / 4}),
    "speeds all over 1000": (_speeds_over_1000, "no min-speed value at or below 1000", {"efficiency": 60.0}),
    "fewer than 3 samples": (_few_samples, "2 metric sample(s), fewer than 3", {"comfortness": 3.5 / 4}),
    "ability without route": (_no_give_way_route, "Give_Way: no evaluated route; reported as null", {}),
}


@pytest.mark.parametrize("case", CRASHES)
def test_official_crash_cases_become_warnings_or_strict_errors(folders, capsys, case):
    breaks, warning, figures = CRASHES[case]
    breaks(folders)
    code, out, _ = run(capsys, args(folders))
    assert code == 0 and any(warning in w for w in out["warnings"]), out["warnings"]
    for key, value in figures.items():
        assert out[key] == pytest.approx(value)
    code, _, err = run(capsys, args(folders, "--strict-official"))
    assert code == 1 and err.startswith("error: the official tools would crash here:") and err.count("\n") == 1
    assert warning.split(";")[0] in err


def test_missing_record_changes_the_denominators_as_documented(folders, capsys):
    _no_give_way_route(folders)
    code, out, _ = run(capsys, args(folders))
    assert out["driving_score"] == pytest.approx(320 / 220) and out["abilities"]["Give_Way"] is None
    assert out["abilities"]["crashed"] == ["4", "6"]
    assert out["abilities"]["mean"] == pytest.approx((1 + 0 + 0 + 1) / 4)


def test_write_merged_writes_official_files_and_a_rerun_survives_them(folders, capsys):
    code, first, _ = run(capsys, args(folders, "--write-merged"))
    assert code == 0
    merged = json.loads((folders / "results" / "merged.json").read_text())
    assert merged["driving score"] == pytest.approx(420 / 220) and merged["eval num"] == 5
    assert [r["route_id"][14] for r in merged["_checkpoint"]["records"]] == ["5", "4", "3", "2", "1"]
    assert all("index" not in r for r in merged["_checkpoint"]["records"])
    ability = json.loads((folders / "results" / "merged_ability.json").read_text())
    assert ability["crashed"] == [["ParkingExit", "6"]] and ability["mean"] == pytest.approx(0.6)
    code, again, _ = run(capsys, args(folders))       # merged.json skipped by name, the ability file reported
    assert code == 0 and {k: again[k] for k in ("driving_score", "eval_num", "abilities")} == {
        k: first[k] for k in ("driving_score", "eval_num", "abilities")}
    assert any("merged_ability.json: no '_checkpoint' (an ability file); skipped" in w for w in again["warnings"])
    code, _, err = run(capsys, args(folders, "--strict-official"))
    assert code == 1 and "merged_ability.json" in err


def test_library_call_gives_the_command_output(folders, capsys):
    """The evaluation tool calls merge_results on its records: same object as the command prints."""
    _, out, _ = run(capsys, args(folders, "--corrected"))
    log = IssueLog()
    records, origins = read_results(folders / "results", log)
    report = merge_results(records, read_routes(folders / "routes.xml"), read_metric_infos(folders / "metrics", records),
                           TownJunctions(folders / "maps"), corrected=True, origins=origins, warnings=log.messages)
    assert report.to_json() == out


def test_bad_arguments_exit_2_with_one_line(folders, capsys):
    code, _, err = run(capsys, ["--results", str(folders / "nope"), "--metrics", str(folders / "metrics"),
                                "--routes", str(folders / "routes.xml")])
    assert code == 2 and err == f"error: --results={str(folders / 'nope')!r}: not a folder\n"
    (folders / "routes.xml").write_text("<routes><route")
    code, _, err = run(capsys, args(folders))
    assert code == 2 and "not valid XML" in err


def test_runs_as_a_module(folders):
    done = subprocess.run([sys.executable, "-m", "tools.bench2drive_merge", *args(folders)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert math.isclose(json.loads(done.stdout)["driving_score"], 420 / 220)
