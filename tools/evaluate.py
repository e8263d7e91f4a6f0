"""Evaluate an agent on a NAVSIM split: mean PDMS / EPDMS and every sub-score.

    python -m tools.evaluate --agent constant_velocity --split navtest [--max-scenes 200] [--metric pdms]
    python -m tools.evaluate --agent vla_token --checkpoint runs/.../ckpt.pt --split navtest
    python -m tools.evaluate --agent pdm_closed --split navhard --metric epdms      (two-stage, official)

Prints one JSON object (means over the scenes, `num_scenes`) and a markdown table row. `navhard`
is scored the official two-stage way (spec navsim.md §2.6): stage 1 and every pre-generated
follow-up, weighted around the planned endpoint. Bad input exits non-zero with a one-line message.
"""

from __future__ import annotations

import argparse
import json
import sys

import torch

from agents import AGENTS, load_agent, make_agent
from envs.navsim import NavsimConfig
from envs.navsim_obs import ObservationConfig
from trainers.common.rollout import Evaluation


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, no usage dump
        raise ValueError(message)


def _parse_args(argv):
    parser = _Parser(prog="python -m tools.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--agent", required=True, help=f"one of {', '.join(sorted(AGENTS))}")
    parser.add_argument("--checkpoint", help="trained agent checkpoint (overrides --agent's fresh weights)")
    parser.add_argument("--split", default="navtest", help="built-in split, or a folder of scene files with --data files")
    parser.add_argument("--data", default="builtin", choices=["builtin", "files", "openscene"])
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--max-scenes", type=int, default=None, help="first N scenes (or navhard groups)")
    parser.add_argument("--families", nargs="+", default=None,
                        help="only these scenario families (built-in: also long_tail, ordinary), e.g. --families long_tail")
    parser.add_argument("--metric", default="pdms", choices=["pdms", "epdms"])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    if args.agent not in AGENTS:
        raise ValueError(f"--agent={args.agent!r}: unknown (valid: {', '.join(sorted(AGENTS))})")
    if args.max_scenes is not None and args.max_scenes < 1:
        raise ValueError(f"--max-scenes={args.max_scenes}: must be >= 1")
    return args


def _agent(args):
    agent = load_agent(args.checkpoint, map_location=args.device) if args.checkpoint else make_agent(args.agent)
    if hasattr(agent, "to"):
        agent = agent.to(args.device)
    if hasattr(agent, "eval"):
        agent.eval()
    return agent


def evaluate(args) -> dict:
    agent = _agent(args)
    obs = ObservationConfig(cameras=tuple(c for c in ObservationConfig().cameras if c in agent.inputs),
                            privileged="privileged" in agent.inputs, bev="bev" in agent.inputs)
    env_config = NavsimConfig(split=args.split, data=args.data, data_root=args.data_root, obs=obs, device=args.device,
                              families=args.families)
    if args.split == "navhard" and args.data == "builtin":
        from tools.two_stage import evaluate_two_stage

        return evaluate_two_stage(agent, env_config, max_groups=args.max_scenes, batch_size=args.batch, seed=args.seed)
    num = args.max_scenes or 10**9
    return Evaluation(env_config, args.split, num, args.batch, metric=args.metric).run(agent, seed=args.seed)


def main(argv=None) -> int:
    try:
        args = _parse_args(argv)
        torch.set_num_threads(args.threads)
        result = evaluate(args)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    metric = "epdms (two-stage)" if args.split == "navhard" and args.data == "builtin" else args.metric
    print(json.dumps({"agent": args.agent, "split": args.split, "metric": metric, **result}))
    keys = [k for k in ("nc", "dac", "ddc", "tlc", "ep", "ttc", "c", "lk", "hc", "ec", "pdms", "epdms") if k in result]
    print("| agent | " + " | ".join(keys) + " |", file=sys.stderr)
    print(f"| {args.agent} | " + " | ".join(f"{100 * result[k]:.1f}" for k in keys) + " |", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
