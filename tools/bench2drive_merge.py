"""Merge Bench2Drive results as the official tools do (merge_route_json, ability_benchmark 0.0.4,
efficiency_smoothness_benchmark), and keep going where they crash.

    python -m tools.bench2drive_merge --results DIR --metrics DIR --routes ROUTES.xml [--maps DIR]
        [--write-merged] [--strict-official] [--corrected]

Prints one JSON object: driving_score (0-100), success_rate, eval_num, efficiency (%), comfortness,
abilities (fractions, mean, crashed route ids), [corrected], warnings. Problems the official tools die on
become warnings that say what was done; with --strict-official they end the run with a one-line error
(exit 1). Bad arguments exit 2. Every choice: docs/bench2drive_merge.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from envs.backends.bench2drive_routes import TownJunctions, read_routes
from envs.metrics.bench2drive_results import (
    IssueLog, MergeReport, OfficialToolCrash, ability_json, merge_results, merged_json, parse_metric_info,
)

MERGED_NAME = "merged.json"
ABILITY_NAME = "merged_ability.json"
"""ability_benchmark writes `<result file without extension>_ability.json` next to merged.json."""


def read_results(folder: Path, log: IssueLog) -> tuple[list[object], list[str]]:
    """Records of every checkpoint `*.json` directly in folder (names containing 'merged.json' and hidden
    files excluded, like the official glob), in sorted file order, with a label per record."""
    records: list[object] = []
    origins: list[str] = []
    crash = "skipped (official merge_route_json crashes"
    paths = sorted(p for p in folder.glob("*.json") if MERGED_NAME not in p.name and not p.name.startswith("."))
    for path in paths:
        if not path.is_file():
            log.crash(f"{path.name}: not a file; {crash}: IsADirectoryError)")
            continue
        try:
            text = path.read_text(encoding="utf-8")
            data = json.loads(text)
        except (OSError, UnicodeDecodeError) as error:
            log.crash(f"{path.name}: cannot read ({error}); {crash})")
            continue
        except json.JSONDecodeError as error:
            what = "empty file" if not text.strip() else f"truncated or invalid JSON: {error}"
            log.crash(f"{path.name}: {what}; {crash}: JSONDecodeError)")
            continue
        if not isinstance(data, dict) or "_checkpoint" not in data:
            hint = " (an ability file)" if path.name.endswith("_ability.json") else ""
            log.crash(f"{path.name}: no '_checkpoint'{hint}; {crash}: KeyError)")
            continue
        checkpoint = data["_checkpoint"]
        file_records = checkpoint.get("records") if isinstance(checkpoint, dict) else None
        if not isinstance(file_records, list):
            log.crash(f"{path.name}: '_checkpoint.records' missing or not a list; {crash})")
            continue
        records.extend(file_records)
        origins.extend(f"{path.name} record {i}" for i in range(len(file_records)))
    if not paths:
        log.warn(f"no checkpoint *.json file in {str(folder)!r}")
    return records, origins


def read_metric_infos(metrics_dir: Path, records: list[object]) -> dict[str, object]:
    """save_name -> parsed MetricSeries from `<metrics_dir>/<save_name>/metric_info.json`, or why it failed."""
    infos: dict[str, object] = {}
    for raw in records:
        save_name = raw.get("save_name") if isinstance(raw, dict) else None
        if not isinstance(save_name, str) or save_name in infos:
            continue
        path = metrics_dir / save_name / "metric_info.json"
        try:
            infos[save_name] = parse_metric_info(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            infos[save_name] = f"no file {str(path)!r}"
        except (OSError, UnicodeDecodeError) as error:
            infos[save_name] = f"cannot read {str(path)!r} ({error})"
        except json.JSONDecodeError as error:
            infos[save_name] = f"{str(path)!r}: not valid JSON ({error})"
        except ValueError as error:
            infos[save_name] = f"{str(path)!r}: {error}"
    return infos


def write_official_files(folder: Path, report: MergeReport) -> None:
    """merged.json and merged_ability.json in the results folder, formatted like the official scripts."""
    (folder / MERGED_NAME).write_text(json.dumps(merged_json(report), indent=4), encoding="utf-8")
    (folder / ABILITY_NAME).write_text(json.dumps(ability_json(report.abilities), indent=4), encoding="utf-8")


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tools.bench2drive_merge", description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", required=True, type=Path, help="folder of leaderboard checkpoint JSONs")
    parser.add_argument("--metrics", required=True, type=Path, help="folder of <save_name>/metric_info.json")
    parser.add_argument("--routes", required=True, type=Path, help="Bench2Drive route XML")
    parser.add_argument("--maps", type=Path, help="folder of the towns' .xodr files (Traffic_Signs extra credit)")
    parser.add_argument("--write-merged", action="store_true", help="also write merged.json and merged_ability.json")
    parser.add_argument("--strict-official", action="store_true",
                        help="fail with a one-line error wherever an official tool would crash")
    parser.add_argument("--corrected", action="store_true",
                        help="also report Efficiency and Comfortness with the official unit/time-step errors fixed")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    try:
        for name in ("results", "metrics", "maps"):
            folder = getattr(args, name)
            if folder is not None and not folder.is_dir():
                raise ValueError(f"--{name}={str(folder)!r}: not a folder")
        routes = read_routes(args.routes)
        log = IssueLog(strict=args.strict_official)
        records, origins = read_results(args.results, log)
        report = merge_results(
            records, routes, read_metric_infos(args.metrics, records),
            TownJunctions(args.maps) if args.maps is not None else None,
            strict=args.strict_official, corrected=args.corrected, origins=origins, warnings=log.messages,
        )
        if args.write_merged:
            write_official_files(args.results, report)
    except OfficialToolCrash as error:
        print(f"error: the official tools would crash here: {error}", file=sys.stderr)
        return 1
    except ValueError as error:   # user error: one line, no traceback
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(report.to_json(), indent=2, allow_nan=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
