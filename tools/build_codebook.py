"""Build the VLA token head's action codebook from the human plans of a split (AutoVLA k-disk).

    python -m tools.build_codebook --split navmini --size 256 --out FILE [--radius 0.05] [--seed 0]
                                   [--data builtin|files] [--max-scenes N]

Each scene's human trajectory, at 8 poses every 0.5 s, gives 8 segments; `agents.vla.codebook.build_codebook`
clusters them. Prints one JSON line: tokens built, segments used, and the mean / max pose error [m] of
encoding then decoding the same plans. Bad input exits 2 with a one-line message.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from agents.base import resample_plan
from agents.vla.codebook import KDISK_RADIUS, build_codebook, decode_tokens, encode_plans, save_codebook


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's usage + message -> our one-line error
        raise ValueError(message)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = _Parser(prog="python -m tools.build_codebook", description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", required=True, help="built-in split (navtrain, navmini, ...) or, with --data files, a folder")
    parser.add_argument("--data", default="builtin", help="builtin (synthetic splits) or files (a folder of scene/1 files)")
    parser.add_argument("--data-root", default=None, help="cache folder of the built-in splits")
    parser.add_argument("--max-scenes", type=int, default=None, help="use only the first N scenes")
    parser.add_argument("--size", type=int, default=256, help="K: at most this many tokens (AutoVLA uses 2048)")
    parser.add_argument("--radius", type=float, default=KDISK_RADIUS, help="k-disk radius [m], mean box-corner distance")
    parser.add_argument("--seed", type=int, default=0, help="seed of the k-disk picks")
    parser.add_argument("--out", required=True, type=Path, help="codebook file to write")
    args = parser.parse_args(argv)
    if args.size < 1:
        raise ValueError(f"--size={args.size}: must be >= 1")
    if not args.radius > 0:
        raise ValueError(f"--radius={args.radius}: must be > 0")
    if args.data not in ("builtin", "files"):
        raise ValueError(f"--data={args.data!r}: expected builtin or files")
    return args


def expert_plans(split: str, data: str = "builtin", data_root: str | None = None, max_scenes: int | None = None) -> np.ndarray:
    """(N, 8, 3) human plans of a scene source at the env's 0.5 s sampling (scenes without one are skipped)."""
    from envs.navsim import NavsimConfig
    from envs.scene_source import open_scene_source

    source = open_scene_source(NavsimConfig(split=split, data=data, data_root=data_root, max_scenes=max_scenes))
    scenes = (source.scene(i) for i in range(len(source)))
    plans = [resample_plan(s.human_trajectory) for s in scenes if s.human_trajectory is not None]
    if not plans:
        raise ValueError(f"--split={split!r}: no scene has a human trajectory")
    return np.stack(plans)


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parse_args(argv)
        torch.set_num_threads(1)
        plans = torch.as_tensor(expert_plans(args.split, args.data, args.data_root, args.max_scenes), dtype=torch.float64)
        gen = torch.Generator().manual_seed(args.seed)
        codebook = build_codebook(plans, args.size, args.radius, gen)
        error = torch.linalg.vector_norm(decode_tokens(codebook, encode_plans(codebook, plans))[..., :2] - plans[..., :2], dim=-1)
        save_codebook(codebook, args.out)
    except ValueError as error:  # user or data error: one line, no traceback
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps({"out": str(args.out), "tokens": len(codebook), "segments": int(plans.shape[0] * plans.shape[1]),
                      "round_trip_mean_m": round(float(error.mean()), 4), "round_trip_max_m": round(float(error.max()), 4)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
