"""tools.bench2drive_eval: arguments, output layout, resume after a killed run, crashed routes counting 0,
and agreement with tools.bench2drive_merge on the files it writes (issue 7's open item)."""

import contextlib
import io
import json
from pathlib import Path

import pytest

from envs.backends.bench2drive_routes import read_routes
from tools import bench2drive_eval as tool
from tools import bench2drive_merge

ROUTES = "0,5,60"
"""Accident, AccidentTwoWays and DynamicObjectCrossing seed 0: three abilities; route_steer ends them fast."""
FAST = ["agent=route_steer", "agent_kwargs.throttle=0.5", "progress=false"]


def _run(out: Path, *extra: str) -> dict:
    return tool.evaluate(tool.parse_args([*FAST, f"out={out}", f"route_ids={ROUTES}", *extra]))


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """One evaluation of the three routes by two spawned workers."""
    out = tmp_path_factory.mktemp("b2d_eval")
    return out, _run(out, "workers=2")


def test_arguments_are_key_value_pairs_checked_against_the_config():
    cfg = tool.parse_args(["agent=route_steer", "agent_kwargs.throttle=0.5", "workers=0", "route_ids=0-3,7"])
    assert (cfg.agent, cfg.agent_kwargs, cfg.workers, cfg.route_ids) == ("route_steer", {"throttle": 0.5}, 0, "0-3,7")
    for bad, message in ((["agnet=x"], "agnet"), (["workers=two"], "two"), (["workers=-1"], "workers=-1"),
                         (["--workers", "2"], "key=value"), (["backend=carla"], "route XML")):
        with pytest.raises(ValueError, match=message):
            tool.parse_args(bad)
    assert tool.main(["agnet=x"]) == 2


def test_route_ids_and_contiguous_chunks():
    assert tool.parse_route_ids("0-2,5,2", 10) == [0, 1, 2, 5]
    assert tool.parse_route_ids(None, 3) == [0, 1, 2]
    for bad in ("3-1", "0-10", "x"):
        with pytest.raises(ValueError, match="route_ids"):
            tool.parse_route_ids(bad, 10)
    entries = [tool.RouteEntry(i, str(i), "Accident", "t") for i in range(7)]
    assert [[e.position for e in c] for c in tool._chunks(entries, 3)] == [[0, 1, 2], [3, 4], [5, 6]]
    assert len(tool._chunks(entries[:1], 4)) == 1


def test_output_layout_one_checkpoint_per_route_with_metric_info_and_route_xml(evaluated):
    out, summary = evaluated
    assert summary["ran"] == ["0", "5", "60"] and summary["eval_num"] == 3
    assert sorted(p.name for p in (out / "results").iterdir()) == [f"RouteScenario_{i}.json" for i in (0, 5, 60)]
    for position in (0, 5, 60):
        data = json.loads((out / "results" / f"RouteScenario_{position}.json").read_text())
        assert data["entry_status"] == "Finished" and data["_checkpoint"]["progress"] == [1, 1]
        (record,) = data["_checkpoint"]["records"]
        assert record["index"] == position and record["route_id"] == f"RouteScenario_{position}_rep0"
        assert (out / "metrics" / record["save_name"] / "metric_info.json").is_file()
    assert [r.route_id for r in read_routes(out / "routes.xml")] == ["0", "5", "60"]
    saved = json.loads((out / "summary.json").read_text())
    assert saved["driving_score"] == summary["driving_score"] and "| route_steer | 3 |" in saved["table"]
    assert set(json.loads((out / "merged.json").read_text())) == {"_checkpoint", "driving score", "success rate", "eval num"}


def test_merge_tool_gives_the_same_figures_from_the_written_files(evaluated):
    out, summary = evaluated
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = bench2drive_merge.main(["--results", str(out / "results"), "--metrics", str(out / "metrics"),
                                       "--routes", str(out / "routes.xml")])
    assert code == 0
    merged = json.loads(printed.getvalue())
    for key in ("driving_score", "success_rate", "eval_num", "efficiency", "comfortness", "abilities", "warnings"):
        assert merged[key] == summary[key], key
    records = [json.loads(p.read_text())["_checkpoint"]["records"][0] for p in sorted((out / "results").iterdir())]
    assert summary["driving_score"] == pytest.approx(sum(r["scores"]["score_composed"] for r in records) / 220)


def test_resume_runs_only_missing_corrupt_and_crashed_routes(evaluated, tmp_path):
    source, _ = evaluated
    out = tmp_path / "resumed"
    for sub in ("results", "metrics"):
        for path in (source / sub).rglob("*"):
            target = out / sub / path.relative_to(source / sub)
            target.parent.mkdir(parents=True, exist_ok=True)
            if path.is_file():
                target.write_bytes(path.read_bytes())
    results = out / "results"
    kept = (results / "RouteScenario_5.json").read_bytes()
    (results / "RouteScenario_0.json").unlink()                                       # killed before it was written
    (results / "RouteScenario_60.json").write_text('{"_checkpoint": {"rec')           # killed mid-write (no rename)
    summary = _run(out, "workers=0")
    assert summary["ran"] == ["0", "60"] and summary["eval_num"] == 3
    assert (results / "RouteScenario_5.json").read_bytes() == kept
    crashed = json.loads(kept)
    crashed["_checkpoint"]["records"][0]["status"] = "Failed - Simulation crashed"    # Bench2Drive reruns these
    (results / "RouteScenario_5.json").write_text(json.dumps(crashed))
    assert _run(out, "workers=0")["ran"] == ["5"]
    assert _run(out, "workers=0")["ran"] == []


def test_a_route_that_raises_counts_zero_and_the_others_still_run(tmp_path, monkeypatch):
    original = tool.run_routes

    def flaky(cfg, agent, positions, worker, on_done):     # any run that includes route 5 dies
        if 5 in positions:
            raise RuntimeError("route 5 cannot be loaded")
        return original(cfg, agent, positions, worker, on_done)

    monkeypatch.setattr(tool, "run_routes", flaky)
    summary = _run(tmp_path, "workers=0")
    records = {p.name: json.loads(p.read_text())["_checkpoint"] for p in (tmp_path / "results").iterdir()}
    crashed = records["RouteScenario_5.json"]
    assert crashed["records"][0]["status"] == "Failed - Simulation crashed"
    assert crashed["records"][0]["scores"] == {"score_route": 0.0, "score_penalty": 1.0, "score_composed": 0.0}
    others = [records[f"RouteScenario_{i}.json"]["records"][0] for i in (0, 60)]
    assert all(r["status"] != "Failed - Simulation crashed" for r in others)
    assert summary["driving_score"] == pytest.approx(sum(r["scores"]["score_composed"] for r in others) / 220)
    assert summary["statuses"]["Failed - Simulation crashed"] == 1
    assert "route 5 cannot be loaded" in (tmp_path / "crashes.log").read_text()
    monkeypatch.setattr(tool, "run_routes", original)
    assert _run(tmp_path, "workers=0")["ran"] == ["5"]                                 # a resume retries it


def test_a_dead_worker_leaves_its_unreported_routes_crashed(tmp_path):
    cfg = tool.parse_args([*FAST, f"out={tmp_path}"])
    entry = tool.RouteEntry(0, "0", "Accident", "t")
    tool._dead_workers(cfg, [[entry]], reported=set())
    record = tool.finished_record(tool.result_path(tmp_path, "0"))
    assert record is None                                                               # crashed: a resume reruns it
    data = json.loads(tool.result_path(tmp_path, "0").read_text())
    assert data["_checkpoint"]["records"][0]["status"] == "Failed - Simulation crashed"
