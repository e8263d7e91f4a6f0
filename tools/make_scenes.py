"""Write procedurally generated scenes as scene/1 files.

    python -m tools.make_scenes --out DIR --n 100 --seed 0 [--scenario urban_drive|following|mixed] [--plans DIR]

Scene i gets its own seed from numpy SeedSequence([seed, i]) (and, for `mixed`, its family too), so a
scene does not depend on --n and reruns write byte-identical files, named DIR/<token>.json. Bad input
exits non-zero with a one-line message. `--plans DIR` also writes each scene's human trajectory as a
plan file of the same name, ready for `python -m tools.score --scene DIR --trajectories PLANS`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from envs.scene_file import save_plan, save_scene
from scenarios import build_scene, families

MIXED = "mixed"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's usage + message -> our one-line error
        raise ValueError(message)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = _Parser(prog="python -m tools.make_scenes", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=Path, help="output folder (created if missing)")
    parser.add_argument("--n", required=True, type=int, help="number of scenes, >= 1")
    parser.add_argument("--seed", default=0, type=int, help="base seed, >= 0")
    parser.add_argument("--scenario", default="urban_drive",
                        help=f"scenario family ({', '.join(families('navsim'))}) or '{MIXED}' for a random one per scene")
    parser.add_argument("--plans", type=Path, help="also write each scene's human trajectory here (plan JSON)")
    args = parser.parse_args(argv)
    if args.n < 1:
        raise ValueError(f"--n={args.n}: must be >= 1")
    if args.seed < 0:
        raise ValueError(f"--seed={args.seed}: must be >= 0")
    if args.scenario != MIXED and args.scenario not in families("navsim"):
        raise ValueError(f"--scenario={args.scenario!r}: unknown (valid: {', '.join(families('navsim'))}, {MIXED})")
    for flag, folder in (("--out", args.out), ("--plans", args.plans)):
        if folder is not None and folder.exists() and not folder.is_dir():
            raise ValueError(f"{flag}={str(folder)!r}: exists and is not a folder")
    return args


def scene_job(seed: int, index: int, scenario: str) -> tuple[str, int]:
    """(family, scene seed) of scene `index`; depends only on (seed, index, scenario)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, index]))
    scene_seed = int(rng.integers(2**31))
    names = families("navsim")
    name = names[int(rng.integers(len(names)))] if scenario == MIXED else scenario
    return name, scene_seed


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parse_args(argv)
        args.out.mkdir(parents=True, exist_ok=True)
        if args.plans is not None:
            args.plans.mkdir(parents=True, exist_ok=True)
        # per-scene tensors are tiny: intra-op threads only add synchronisation (10x slower on a busy host)
        torch.set_num_threads(1)
        for index in tqdm(range(args.n), desc="scenes", unit="scene", file=sys.stderr):
            name, scene_seed = scene_job(args.seed, index, args.scenario)
            try:
                scene = build_scene(name, None, scene_seed)
                save_scene(scene, args.out / f"{scene.token}.json")
                if args.plans is not None:
                    save_plan(scene.human_trajectory, args.plans / f"{scene.token}.json")
            except ValueError as error:
                raise ValueError(f"scene {index} ({name}, seed {scene_seed}): {error}") from None
    except ValueError as error:  # user or scene error: one line, no traceback
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {args.n} scenes to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
