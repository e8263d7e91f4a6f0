"""Score planned trajectories on scene files the NAVSIM way.

    python -m tools.score --scene S.json --trajectory T.json [--metric pdms|epdms]
    python -m tools.score --scene SCENES/ --trajectories PLANS/ [--metric epdms] [--batch 64]

One scene prints one JSON object with every sub-score and both totals. A folder prints one JSON
line per scene (`valid: false` with the error for a scene that could not be scored) and a last
line with the aggregate: the mean over valid scenes of each sub-score and of the per-scene totals
(NAVSIM's aggregation; invalid scenes are reported, not counted as 0). Bad input exits non-zero
with a one-line message.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tqdm import tqdm

from envs.metrics.scorer import SCORE_KEYS, Metric, ScoringConfig, score_plans
from envs.scene_file import load_plan, load_scene


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tools.score", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scene", required=True, type=Path, help="scene/1 JSON file, or a folder of them")
    parser.add_argument("--trajectory", type=Path, help="plan JSON for a single --scene file")
    parser.add_argument("--trajectories", type=Path, help="folder of plan JSONs named like the scene files")
    parser.add_argument("--metric", default="pdms", choices=[m.value for m in Metric])
    parser.add_argument("--no-human-filter", action="store_true", help="EPDMS: do not filter with the human plan")
    parser.add_argument(
        "--prefix-human-filter-bug", action="store_true",
        help="EPDMS: reproduce NAVSIM before 359c7f7 (the filter did not reach the final score)",
    )
    parser.add_argument("--batch", type=int, default=64, help="scenes scored per batch in folder mode")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    return parser.parse_args(argv)


def _config(args: argparse.Namespace) -> ScoringConfig:
    return ScoringConfig(
        metric=Metric(args.metric),
        human_filter=not args.no_human_filter,
        human_filter_fixed=not args.prefix_human_filter_bug,
    )


def _score_one(args: argparse.Namespace) -> None:
    if args.trajectory is None:
        raise ValueError("--trajectory: required when --scene is a file")
    scene = load_scene(args.scene)
    plan = load_plan(args.trajectory)
    (scores,) = score_plans([scene], [plan], _config(args), device=args.device)
    print(json.dumps({"token": scene.token, **scores}))


def _score_folder(args: argparse.Namespace) -> int:
    if args.trajectories is None or not args.trajectories.is_dir():
        raise ValueError(f"--trajectories={str(args.trajectories)!r}: a folder of plans is required when --scene is a folder")
    if args.batch < 1:
        raise ValueError(f"--batch={args.batch}: must be >= 1")
    files = sorted(args.scene.glob("*.json"))
    if not files:
        raise ValueError(f"--scene={str(args.scene)!r}: no *.json scene files in the folder")
    config = _config(args)
    rows: list[dict] = []
    loaded: list[tuple[int, object, object]] = []
    for i, path in enumerate(files):
        row = {"file": path.name, "token": None, "valid": False}
        rows.append(row)
        try:
            plan_path = args.trajectories / path.name
            if not plan_path.exists():
                raise ValueError(f"trajectory file {str(plan_path)!r} is missing")
            scene, plan = load_scene(path), load_plan(plan_path)
            row["token"] = scene.token
            loaded.append((i, scene, plan))
        except ValueError as error:
            row["error"] = str(error)
    for start in tqdm(range(0, len(loaded), args.batch), desc="scoring", unit="batch", file=sys.stderr, disable=len(loaded) <= args.batch):
        chunk = loaded[start : start + args.batch]
        try:
            results = score_plans([s for _, s, _ in chunk], [p for _, _, p in chunk], config, device=args.device)
        except ValueError:
            # One bad scene must not sink its batch: isolate by scoring one at a time.
            results = []
            for i, scene, plan in chunk:
                try:
                    results.extend(score_plans([scene], [plan], config, device=args.device))
                except ValueError as error:
                    rows[i]["error"] = str(error)
                    results.append(None)
        for (i, _, _), scores in zip(chunk, results):
            if scores is not None:
                rows[i].update(scores, valid=True)
    for row in rows:
        print(json.dumps(row))
    valid = [r for r in rows if r["valid"]]
    aggregate = {key: (sum(r[key] for r in valid) / len(valid) if valid else None) for key in SCORE_KEYS}
    print(json.dumps({"aggregate": aggregate, "num_scenes": len(rows), "num_valid": len(valid), "num_invalid": len(rows) - len(valid)}))
    if len(valid) < len(rows):
        print(f"error: {len(rows) - len(valid)} of {len(rows)} scenes could not be scored (see their 'error')", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    try:
        if not args.scene.exists():
            raise ValueError(f"--scene={str(args.scene)!r}: no such file or folder")
        if args.scene.is_dir():
            return _score_folder(args)
        _score_one(args)
        return 0
    except ValueError as error:  # user error: one line, no traceback
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
