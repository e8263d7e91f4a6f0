"""`NavsimProcessVectorEnv`: the native batched NAVSIM env split over worker processes (`envs.process_vector`),
for machines with more cores than one batch can use: each worker tracks and scores its rows on one thread.
Same spaces, rewards and info layout as `NavsimVectorEnv`; the scenes drawn differ (worker k draws from
seed + k), and `score_group` scores each worker's rows there.
"""

from __future__ import annotations

import numpy as np

from envs.process_vector import ProcessVectorEnv, concat_rows


class NavsimProcessVectorEnv(ProcessVectorEnv):
    """`num_envs` Navsim-v1 (`version=1`) or Navsim-v2 rows stepped as `processes` native batches in worker
    processes (`threads` torch threads each); other keyword arguments are `NavsimVectorEnv`'s (`config`, or
    `NavsimConfig` fields such as `split`, `obs`)."""

    def __init__(self, num_envs: int, version: int = 1, processes: int = 2, threads: int = 1, **kwargs):
        if version not in (1, 2):
            raise ValueError(f"version={version!r}: expected 1 (Navsim-v1) or 2 (Navsim-v2)")
        super().__init__("envs.navsim:NavsimVectorEnv", num_envs, processes, threads, version=version, **kwargs)

    def score_group(self, plans) -> tuple[np.ndarray, dict]:
        """Score G plans per env, plans (B, G, H, 3), each worker its rows -> totals (B, G), {key: (B, G)}."""
        plans = np.asarray(plans, np.float64)
        if plans.ndim != 4 or plans.shape[0] != self.num_envs:
            raise ValueError(f"plans.shape={plans.shape}: expected (num_envs={self.num_envs}, G, H, 3)")
        parts = self.call_parts("score_group", [(self.rows(plans, k),) for k in range(len(self.pipes))])
        return concat_rows(parts, self.sizes)
