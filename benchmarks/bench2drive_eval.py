"""Wall time of one full Bench2Drive evaluation (the 220 built-in routes) of a rule-based agent.

    python benchmarks/bench2drive_eval.py [--agent privileged_rules] [--workers 2] [--batch 0] [--out DIR]
        [--route-ids 0-219] [--threads 1]

Runs `tools.bench2drive_eval` from scratch (a fresh output folder: nothing is resumed) and prints markdown
rows: what, device, batch, figure, unit: the wall time, simulated ticks per wall second, and the merged
DS / SR it scored. Route and scenario set-up are part of the wall time (they are part of an evaluation).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

from tools.bench2drive_eval import evaluate, parse_args


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--agent", default="privileged_rules")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=0, help="routes per worker vector env (0: all of them)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    parser.add_argument("--route-ids", default="0-219")
    parser.add_argument("--out", default=None, help="keep the results here (default: a temporary folder)")
    args = parser.parse_args()
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="b2d_eval_bench_"))
    if args.out and out.exists():
        shutil.rmtree(out)                      # timing a full run: never resume
    try:
        summary = evaluate(parse_args([f"agent={args.agent}", f"out={out}", f"workers={args.workers}",
                                       f"batch={args.batch}", f"threads={args.threads}",
                                       f"route_ids={args.route_ids}", "progress=true"]))
        ticks = sum(json.loads(p.read_text())["_checkpoint"]["records"][0]["meta"]["duration_game"] / 0.05
                    for p in (out / "results").glob("*.json"))
    finally:
        if not args.out:
            shutil.rmtree(out, ignore_errors=True)
    routes, wall = summary["eval_num"], summary["wall_time_s"]
    device = f"cpu, {args.workers} workers x {args.threads} thread(s)"
    batch = args.batch or "all"
    print("| what | device | batch | figure | unit |")
    print("|---|---|---|---|---|")
    print(f"| bench2drive_eval {args.agent}, {routes} routes | {device} | {batch} | {wall:.1f} | s wall |")
    print(f"| bench2drive_eval {args.agent}, simulated ticks | {device} | {batch} | {ticks / wall:.0f} | ticks/s |")
    print(f"| bench2drive_eval {args.agent}, DS / SR | {device} | {batch} | "
          f"{summary['driving_score']:.2f} / {100 * summary['success_rate']:.1f} | DS / SR % |")
    print(summary["table"])


if __name__ == "__main__":
    main()
