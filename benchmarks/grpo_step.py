"""Time of one GRPO step split into env (scene draw, observations, metric cache), sampling (the policy),
simulation + scoring (tracking, every sub-metric, diagnoses, PDM-Closed labels) and update (log-probs,
backward, optimizer), from `trainers.grpo.train`'s own per-step clocks.

    python benchmarks/grpo_step.py [--agent ego_mlp|vla_token|vla_flow] [--batch 8] [--group 8] [--steps 3] [--warmup 24]
                                   [--split navmini] [--device cpu] [--cameras] [--refine] [--negatives 1]
                                   [--recovery 0.25] [--threads 2] [--preset tiny|small|qwen2_5_vl_3b]

Prints markdown rows (what, device, batch, figure, unit): mean seconds per step of each phase over
--steps steps after --warmup steps (which fill the env's per-scene caches: 24 steps of 8 draw ~95 % of navmini's
64 scenes, as a long run's steps do once it has seen its scenes; --warmup 1 times cold steps), and the harness share:
(env + simulation/scoring) / total, the part of a step that is roadloop rather than the policy. Random
start weights (no SFT), built-in split scenes, no evaluation; CUDA is synchronised before each clock read.
`--preset qwen2_5_vl_3b` builds the 3B-shaped backbone (random weights, ~12 GB in float32: a GPU figure).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch

from agents import make_agent
from envs.navsim import NavsimConfig
from envs.navsim_obs import ObservationConfig
from trainers.common.logging import read_scalars
from trainers.common.setup import AgentSpec, RunConfig
from trainers.grpo import GRPOConfig, RefineConfig, train
from trainers.grpo_samples import NegativeConfig, RecoveryConfig

PHASES = ("env", "sampling", "scoring", "update")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--agent", default="vla_token", choices=("ego_mlp", "vla_token", "vla_flow"))
    parser.add_argument("--batch", type=int, default=8, help="B scenes per step")
    parser.add_argument("--group", type=int, default=8, help="G samples per scene")
    parser.add_argument("--steps", type=int, default=3, help="timed steps (after the warm-up steps)")
    parser.add_argument("--warmup", type=int, default=24, help="untimed steps first (at least 1)")
    parser.add_argument("--split", default="navmini")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--cameras", action="store_true", help="VLA: read the 3 front cameras (default: text only)")
    parser.add_argument("--refine", action="store_true", help="feedback-guided refinement of all-failed groups")
    parser.add_argument("--negatives", type=int, default=0, help="negative slots per group")
    parser.add_argument("--recovery", type=float, default=0.0, help="recovery groups per env scene")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch CPU threads")
    parser.add_argument("--preset", default="tiny", help="VLA backbone preset (agents.vla.config.Preset)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cameras = ("cam_l0", "cam_f0", "cam_r0") if args.cameras else ()
    kwargs = {} if args.agent == "ego_mlp" else {"cameras": cameras, "preset": args.preset}
    with tempfile.TemporaryDirectory() as folder:
        init = Path(folder) / "init.pt"
        make_agent(args.agent, **kwargs).save(init)
        cfg = GRPOConfig(
            env=NavsimConfig(obs=ObservationConfig(cameras=cameras)), agent=AgentSpec(args.agent),
            run=RunConfig(dir=str(Path(folder) / "run")), device=args.device, init_checkpoint=str(init),
            train_split=args.split, max_train_scenes=None, batch_size=args.batch, group_size=args.group,
            refine=RefineConfig(enabled=args.refine), negatives=NegativeConfig(per_group=args.negatives),
            recovery=RecoveryConfig(rate=args.recovery), steps=max(1, args.warmup) + args.steps, eval_every=0,
            image_every=0, ckpt_every=max(1, args.warmup) + args.steps, progress=False)
        train(cfg)
        scalars = read_scalars(cfg.run.dir)
    first = max(1, args.warmup) + 1
    timed = [scalars[step] for step in range(first, first + args.steps)]
    device = torch.device(args.device)
    label = f"{device.type}" + (f" ({args.threads} threads)" if device.type == "cpu" else "")
    extras = [name for name, on in (("refine", args.refine), (f"neg {args.negatives}", args.negatives),
                                    (f"rec {args.recovery}", args.recovery)) if on]
    preset = "" if args.agent == "ego_mlp" else f" {args.preset}"
    what = f"GRPO step {args.agent}{preset}{' cams' if args.cameras else ''} G={args.group}" + (f" ({', '.join(extras)})" if extras else "")
    print("| what | device | batch | figure | unit |")
    print("|---|---|---|---|---|")
    for phase in PHASES:
        seconds = float(np.mean([row[f"charts/time_{phase}"] for row in timed]))
        print(f"| {what}: {phase} | {label} | {args.batch} | {seconds:.3f} | s/step |")
    total = float(np.mean([sum(row[f"charts/time_{p}"] for p in PHASES) for row in timed]))
    print(f"| {what}: total | {label} | {args.batch} | {total:.3f} | s/step |")
    harness = float(np.mean([(row["charts/time_env"] + row["charts/time_scoring"]) / sum(row[f"charts/time_{p}"] for p in PHASES)
                             for row in timed]))
    print(f"| {what}: harness share (env + scoring) | {label} | {args.batch} | {100 * harness:.1f} | % of the step |")


if __name__ == "__main__":
    main()
